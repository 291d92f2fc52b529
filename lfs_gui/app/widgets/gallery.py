"""Gallery panel: a virtualised thumbnail grid with class and file-name filters.

:class:`GalleryModel` is a ``QAbstractListModel`` over the (filtered) gallery ids; thumbnails come
from the shared :class:`~lfs_gui.app.thumbnails.ThumbnailCache` (decoded lazily off the GUI thread), so
only the rows the ``QListView`` actually paints are ever decoded. Selecting an item (click or arrow
keys) makes it the query.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QAbstractListModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QLineEdit, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem,
    QVBoxLayout, QWidget,
)

from lfs_gui.app.thumbnails import ThumbnailCache
from lfs_gui.viewer_state import QueryRef, ViewerState

log = logging.getLogger(__name__)

IdRole = Qt.ItemDataRole.UserRole + 1
ALL_CLASSES = "All classes"


class GalleryModel(QAbstractListModel):
    """Rows are gallery ids that pass the current filter."""

    def __init__(self, thumbs: ThumbnailCache, parent: Any = None) -> None:
        super().__init__(parent)
        self._thumbs = thumbs
        self._items: list[Any] = []
        self._rows: list[int] = []
        self._row_of_path: dict[str, int] = {}
        thumbs.ready.connect(self._on_thumb)

    def set_items(self, items: list[Any]) -> None:
        self._items = list(items)
        self.set_filter(None, "")

    def set_filter(self, class_name: str | None, text: str) -> None:
        text = text.strip().lower()
        self.beginResetModel()
        self._rows = [
            i
            for i, it in enumerate(self._items)
            if (class_name is None or it.class_name == class_name)
            and (not text or text in str(it.relpath).lower())
        ]
        self._row_of_path = {str(self._items[i].path): r for r, i in enumerate(self._rows)}
        self.endResetModel()

    def total(self) -> int:
        return len(self._items)

    def gallery_id(self, row: int) -> int:
        return self._rows[row]

    def row_of(self, gallery_id: int) -> int | None:
        try:
            return self._rows.index(gallery_id)
        except ValueError:
            return None

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        gid = self._rows[index.row()]
        item = self._items[gid]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbs.get(item.path) or self._thumbs.placeholder()
        if role == Qt.ItemDataRole.ToolTipRole:
            cls = f"\nclass: {item.class_name}" if item.class_name is not None else ""
            return f"#{gid}  {item.relpath}{cls}"
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return str(item.relpath)
        if role == IdRole:
            return gid
        return None

    def _on_thumb(self, path: str) -> None:
        row = self._row_of_path.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


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

        top = QHBoxLayout()
        top.addWidget(self.classCombo, 1)
        top.addWidget(self.nameEdit, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.countLabel)

        self.classCombo.currentIndexChanged.connect(self._apply_filter)
        self.nameEdit.textChanged.connect(self._apply_filter)
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

    def _apply_filter(self, *_: Any) -> None:
        cls = self.classCombo.currentText()
        self.model.set_filter(None if cls in ("", ALL_CLASSES) else cls, self.nameEdit.text())
        self._update_count()
        self._on_query(self._state.query)

    def _update_count(self) -> None:
        session = self._state.session
        total = self.model.total()
        shown = self.model.rowCount()
        ncls = len(session.gallery.classes) if session is not None else 0
        text = f"{total} images" + (f", {ncls} classes" if ncls else "")
        if shown != total:
            text = f"{shown} of {text} shown"
        self.countLabel.setText(text if total else "no gallery")
