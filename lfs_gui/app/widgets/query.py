"""Query panel: the current query image, its class and Recall@K; accepts dropped image files.

Dropping a file (or the "Open image…" button) emits :attr:`QueryPanel.imageRequested`; the main window
embeds it in a worker (the model is slow) and then writes an external :class:`QueryRef` into the state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from lfs_gui.app.thumbnails import ThumbnailCache
from lfs_gui.viewer_state import QueryRef, ViewerState

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _dropped_image(event: QDragEnterEvent | QDropEvent) -> Path | None:
    mime = event.mimeData()
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            p = Path(url.toLocalFile())
            if p.suffix.lower() in IMAGE_SUFFIXES:
                return p
    return None


class QueryPanel(QWidget):
    """Shows the query; emits :attr:`imageRequested` (a path, or ``None`` to open a file dialog)."""

    imageRequested = Signal(object)

    def __init__(self, state: ViewerState, thumbs: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queryPanel")
        self._state = state
        self._thumbs = thumbs
        self.title = QLabel("<b>Query</b>")
        self.image = QLabel("drop an image here", objectName="queryImage", alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(QSize(150, 150))
        self.image.setStyleSheet("QLabel#queryImage { border: 1px dashed #999; color: #888; }")
        self.name = QLabel(objectName="queryName", alignment=Qt.AlignmentFlag.AlignCenter)
        self.name.setWordWrap(True)
        self.recall = QLabel(objectName="queryRecall", alignment=Qt.AlignmentFlag.AlignCenter)
        self.recall.setTextFormat(Qt.TextFormat.RichText)
        self.openButton = QPushButton("Open image…", objectName="queryOpenButton")
        self.openButton.setToolTip("Use an image file from disk as the query (or drop one here)")
        self.openButton.clicked.connect(lambda: self.imageRequested.emit(None))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.name)
        lay.addWidget(self.recall)
        lay.addStretch(1)
        lay.addWidget(self.openButton)
        self.setAcceptDrops(True)
        self.setFixedWidth(170)
        state.queryChanged.connect(self._on_query)
        state.retrievalsChanged.connect(self._on_retrievals)
        thumbs.ready.connect(self._on_thumb)

    def set_image_size(self, px: int) -> None:
        """Side of the query image (smaller on a laptop screen, see :mod:`lfs_gui.app.layout`)."""
        if px != self.image.width():
            self.image.setFixedSize(QSize(px, px))
            self.setFixedWidth(max(px + 20, 170))  # the Recall@K line needs 170 px
            q = self._state.query
            if q is not None:
                self._show_pixmap(self._thumbs.get(q.path))

    def _on_query(self, query: QueryRef | None) -> None:
        if query is None:
            self.image.clear()
            self.image.setText("drop an image here")
            self.name.clear()
            self.recall.clear()
            return
        self._show_pixmap(self._thumbs.get(query.path))
        where = "external image" if query.external else f"#{query.id}"
        cls = f"<br>class: {query.class_name}" if query.class_name else ""
        self.name.setText(f"{query.path.name}<br><small>{where}{cls}</small>")

    def _on_thumb(self, path: str) -> None:
        q = self._state.query
        if q is not None and str(q.path) == path:
            self._show_pixmap(self._thumbs.get(path))

    def _show_pixmap(self, pixmap: QPixmap | None) -> None:
        if pixmap is None:
            self.image.setText("loading…")
            return
        self.image.setPixmap(
            pixmap.scaled(self.image.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        )

    def _on_retrievals(self, retrievals: Any) -> None:
        recall = getattr(retrievals, "recall", None)
        if not recall:
            self.recall.setText("<small>Recall@K: no labels</small>" if retrievals is not None else "")
            return
        parts = []
        for k in sorted(recall):
            v = float(recall[k])
            color = "#2e9d3a" if v >= 1.0 else "#d0312d"
            parts.append(f"<span style='color:{color}'>R@{k} {v:.0f}</span>")
        self.recall.setText(" ".join(parts))
        self.recall.setToolTip("Recall@K of this query: 1 when a same-class item is among its top K")

    # -- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_image(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = _dropped_image(event)
        if path is not None:
            event.acceptProposedAction()
            self.imageRequested.emit(path)
