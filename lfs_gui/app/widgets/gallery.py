"""Gallery panel: a virtualised thumbnail grid with class and file-name filters.

:class:`GalleryModel` is a ``QAbstractListModel`` over the (filtered) gallery ids, one int64 array;
thumbnails come from the shared :class:`~lfs_gui.app.thumbnails.ThumbnailCache` (decoded lazily off the
GUI thread), so only the rows the ``QListView`` actually paints are ever decoded, and an item is made
only when its row is painted. Selecting an item (click or arrow keys) makes it the query.

Large galleries (indexes from :data:`lfs_gui.index.row_table.LAZY_ROWS` images on, whose rows are read
lazily) are filtered with vectorised Arrow/numpy passes on a worker thread (a pause in typing starts
one; the latest wins); small ones are filtered at once on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from PySide6.QtCore import (
    QAbstractListModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer,
)
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QLineEdit, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem,
    QVBoxLayout, QWidget,
)

from lfs_gui.app.thumbnails import ThumbnailCache
from lfs_gui.app.workers import JobChannel
from lfs_gui.jobs import run_generator
from lfs_gui.viewer_state import QueryRef, ViewerState

log = logging.getLogger(__name__)

IdRole = Qt.ItemDataRole.UserRole + 1
ALL_CLASSES = "All classes"


class GalleryModel(QAbstractListModel):
    """Rows are gallery ids that pass the current filter, held as one int64 array (``None``: every
    id), so a 10M-image gallery costs no Python object per image; items are asked for when painted."""

    def __init__(self, thumbs: ThumbnailCache, parent: Any = None) -> None:
        super().__init__(parent)
        self._thumbs = thumbs
        self._items: Sequence[Any] = []
        self._rows: np.ndarray | None = None
        self._row_of_path: dict[str, int] = {}  # painted rows only: where a finished thumbnail goes
        thumbs.ready.connect(self._on_thumb)

    def set_items(self, items: Sequence[Any]) -> None:
        self.set_rows(items, None)

    def set_rows(self, items: Sequence[Any], rows: np.ndarray | None) -> None:
        """Show ``items[rows]`` (ascending ids; ``None``: all of them)."""
        self.beginResetModel()
        self._items = items
        self._rows = None if rows is None else np.asarray(rows, np.int64)
        self._row_of_path.clear()
        self.endResetModel()

    def set_filter(self, class_name: str | None, text: str) -> None:
        """Filter here, on the calling thread (small galleries; large ones: the panel's worker)."""
        from lfs_gui.index.row_table import iter_filter_ids  # here: the index package loads faiss, not before the first paint

        self.set_rows(self._items, run_generator(iter_filter_ids(self._items, class_name, text)))

    def items(self) -> Sequence[Any]:
        return self._items

    def total(self) -> int:
        return len(self._items)

    def gallery_id(self, row: int) -> int:
        return int(row if self._rows is None else self._rows[row])

    def row_of(self, gallery_id: int) -> int | None:
        if self._rows is None:
            return gallery_id if 0 <= gallery_id < len(self._items) else None
        r = int(np.searchsorted(self._rows, gallery_id))
        return r if r < len(self._rows) and self._rows[r] == gallery_id else None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(self._items) if self._rows is None else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= self.rowCount():
            return None
        gid = self.gallery_id(index.row())
        if role == IdRole:
            return gid
        item = self._items[gid]
        if role == Qt.ItemDataRole.DecorationRole:
            if len(self._row_of_path) > 4096:  # only what is on screen matters
                self._row_of_path.clear()
            self._row_of_path[str(item.path)] = index.row()
            return self._thumbs.get(item.path) or self._thumbs.placeholder()
        if role == Qt.ItemDataRole.ToolTipRole:
            cls = f"\nclass: {item.class_name}" if item.class_name is not None else ""
            return f"#{gid}  {item.relpath}{cls}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return str(item.relpath)
        return None

    def _on_thumb(self, path: str) -> None:
        row = self._row_of_path.get(path)
        if row is not None and row < self.rowCount():
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def _tagged(items: Any, gen: Generator[Any, None, Any]) -> Generator[Any, None, tuple[Any, Any]]:
    """``gen``'s result paired with the items it filtered (a result for an older gallery is dropped)."""
    return items, (yield from gen)


class ThumbnailDelegate(QStyledItemDelegate):
    """Draws a thumbnail centred in its grid cell, with a selection/focus frame around the cell."""

    def __init__(self, cell: QSize, parent: Any = None) -> None:
        super().__init__(parent)
        self.cell = cell

    def sizeHint(self, _option: QStyleOptionViewItem, _index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.cell

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        r = option.rect.adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(option.rect, option.palette.highlight())
        pix = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pix, QPixmap) and not pix.isNull():
            inner = r.adjusted(2, 2, -2, -2) if selected else r
            scaled = pix.size().scaled(inner.size(), Qt.AspectRatioMode.KeepAspectRatio)
            x = inner.x() + (inner.width() - scaled.width()) // 2
            y = inner.y() + (inner.height() - scaled.height()) // 2
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawPixmap(x, y, scaled.width(), scaled.height(), pix)


class GalleryPanel(QWidget):
    """Filters, the grid and a count; writes the selected item into ``state`` as the query."""

    def __init__(self, state: ViewerState, thumbs: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryPanel")
        self._state = state
        self.classCombo = QComboBox(objectName="galleryClassFilter")
        self.classCombo.setToolTip("Show one class only")
        self.nameEdit = QLineEdit(objectName="galleryNameFilter")
        self.nameEdit.setPlaceholderText("filter by file name")
        self.nameEdit.setClearButtonEnabled(True)
        self.view = QListView(objectName="galleryView")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(200)
        self.view.setIconSize(QSize(92, 92))
        self.view.setGridSize(QSize(96, 96))
        self.view.setItemDelegate(ThumbnailDelegate(QSize(96, 96), self.view))
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.model = GalleryModel(thumbs, self)
        self.view.setModel(self.model)
        self.countLabel = QLabel("no gallery", objectName="galleryCount")
        # large (lazily read) galleries are filtered on a worker, the latest filter winning
        self.filter_channel = JobChannel("gallery-filter", self)
        self.filter_channel.done.connect(self._on_filtered)
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self._apply_filter)

        top = QHBoxLayout()
        top.addWidget(self.classCombo, 1)
        top.addWidget(self.nameEdit, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.countLabel)

        self.classCombo.currentIndexChanged.connect(self._apply_filter)
        self.nameEdit.textChanged.connect(self._on_text)
        self.view.selectionModel().currentChanged.connect(self._on_current)
        state.sessionChanged.connect(self._on_session)
        state.queryChanged.connect(self._on_query)

    # -- state -> widget ------------------------------------------------------------------------
    def _on_session(self, session: Any) -> None:
        self.classCombo.blockSignals(True)
        self.classCombo.clear()
        self.classCombo.addItem(ALL_CLASSES)
        if session is not None:
            self.classCombo.addItems([str(c) for c in session.gallery.classes])
        self.classCombo.blockSignals(False)
        self.nameEdit.blockSignals(True)
        self.nameEdit.clear()
        self.nameEdit.blockSignals(False)
        self.filter_channel.cancel()
        self.model.set_items(session.gallery.items if session is not None else [])
        self._update_count()

    def _on_query(self, query: QueryRef | None) -> None:
        if query is None or query.id is None:
            self.view.selectionModel().clearSelection()
            return
        row = self.model.row_of(query.id)
        if row is None:
            return
        idx = self.model.index(row)
        if self.view.currentIndex() != idx:
            self.view.selectionModel().setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.scrollTo(idx)

    # -- widget -> state ------------------------------------------------------------------------
    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        session = self._state.session
        if not current.isValid() or session is None:
            return
        gid = self.model.gallery_id(current.row())
        item = session.gallery.items[gid]
        self._state.set_query(QueryRef(id=gid, path=item.path, label=item.label, class_name=item.class_name))

    def _on_text(self, *_: Any) -> None:
        if self._lazy():
            self._debounce.start()  # one filter pass over millions of names per pause in typing
        else:
            self._apply_filter()

    def _lazy(self) -> bool:
        from lfs_gui.index.row_table import LazyItems  # a session is open: faiss is loaded anyway

        return isinstance(self.model.items(), LazyItems)

    def _apply_filter(self, *_: Any) -> None:
        cls = self.classCombo.currentText()
        cls_name, text = (None if cls in ("", ALL_CLASSES) else cls), self.nameEdit.text()
        if not self._lazy():
            self.model.set_filter(cls_name, text)
            self._filtered()
            return
        from lfs_gui.index.row_table import iter_filter_ids

        items = self.model.items()
        self.countLabel.setText("filtering…")
        self.filter_channel.start(lambda: _tagged(items, iter_filter_ids(items, cls_name, text)))

    def _on_filtered(self, result: tuple[Any, np.ndarray | None]) -> None:
        items, ids = result
        if items is self.model.items():
            self.model.set_rows(items, ids)
            self._filtered()

    def _filtered(self) -> None:
        self._update_count()
        self._on_query(self._state.query)

    def shutdown(self) -> None:
        """Stop a running filter (the window calls this when it closes)."""
        self._debounce.stop()
        self.filter_channel.shutdown()

    def _update_count(self) -> None:
        session = self._state.session
        total = self.model.total()
        shown = self.model.rowCount()
        ncls = len(session.gallery.classes) if session is not None else 0
        text = f"{total} images" + (f", {ncls} classes" if ncls else "")
        if shown != total:
            text = f"{shown} of {text} shown"
        self.countLabel.setText(text if total else "no gallery")
