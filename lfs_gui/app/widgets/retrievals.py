"""Retrievals panel: the k most similar and k most dissimilar gallery items in two rows.

Each tile shows the thumbnail, cosine score, rank and class, framed green when the labels say "same
class" and red when they say "different class" (no frame colour without labels). Clicking a tile (or
Enter on the focused row) opens that pair; ←/→ move along a row, ↑/↓ switch rows.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from lfs_gui.app.thumbnails import ThumbnailCache
from lfs_gui.viewer_state import ViewerState

GREEN, RED, NEUTRAL, SELECTED = "#2e9d3a", "#d0312d", "#9a9a9a", "#1f6fd1"


class RetrievalTile(QFrame):
    """One retrieved item; emits :attr:`clicked` with its gallery id."""

    clicked = Signal(int)
    MIN_WIDTH = 84  # "#6 · mammals" fits under a small thumbnail

    def __init__(self, thumb_size: int = 80, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hit: Any = None
        self._selected = False
        self._pixmap: Any = None
        self._lines: tuple[str, str] = ("", "")
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(QSize(thumb_size, thumb_size))
        self.caption = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(False)
        f = self.caption.font()
        f.setPointSizeF(max(6.0, f.pointSizeF() * 0.85))
        self.caption.setFont(f)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(3, 3, 3, 3)
        lay.setSpacing(1)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.caption)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFixedWidth(max(thumb_size + 12, self.MIN_WIDTH))

    def set_hit(self, hit: Any, class_name: str | None, pixmap: Any) -> None:
        self.hit = hit
        score = f"{hit.score:+.3f}" if hit.score < 0 else f"{hit.score:.3f}"
        cls = f" · {class_name}" if class_name else ""
        mark = {True: " ✓", False: " ✗"}.get(hit.same_class, "")
        self._lines = (f"{score}{mark}", f"#{hit.rank}{cls}")
        self._apply_caption()
        self.caption.setToolTip(f"gallery id {hit.id}, rank {hit.rank}, cosine {hit.score:.4f}{cls}")
        self.setToolTip(self.caption.toolTip())
        self.set_pixmap(pixmap)
        self._restyle()

    def set_thumb_size(self, px: int) -> None:
        """Thumbnail side in pixels (the window picks it from its height: smaller on a laptop)."""
        self.image.setFixedSize(QSize(px, px))
        self.setFixedWidth(max(px + 12, self.MIN_WIDTH))
        self.set_pixmap(self._pixmap)
        self._apply_caption()

    def set_caption(self, first: str, second: str) -> None:
        """Replace the two caption lines (e.g. with another model's rank of this image)."""
        self._lines = (first, second)
        self._apply_caption()

    def _apply_caption(self) -> None:
        """The caption, its class name elided ("#6 · mamm…") rather than cut when the tile is narrow."""
        fm = self.caption.fontMetrics()
        width = self.width() - 14
        self.caption.setText("\n".join(fm.elidedText(t, Qt.TextElideMode.ElideRight, width) for t in self._lines))

    def set_pixmap(self, pixmap: Any) -> None:
        self._pixmap = pixmap
        if pixmap is not None:
            self.image.setPixmap(
                pixmap.scaled(self.image.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            )

    def set_selected(self, selected: bool) -> None:
        if selected != self._selected:
            self._selected = selected
            self._restyle()

    def _restyle(self) -> None:
        same = None if self.hit is None else self.hit.same_class
        color = {True: GREEN, False: RED}.get(same, NEUTRAL)
        width = 3 if same is not None else 1
        bg = "background: #dce9fb;" if self._selected else ""
        outline = f"outline: 2px solid {SELECTED};" if self._selected else ""
        self.setStyleSheet(f"RetrievalTile {{ border: {width}px solid {color}; border-radius: 3px; {bg}{outline} }}")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.hit is not None:
            self.clicked.emit(int(self.hit.id))
        super().mousePressEvent(event)


class RetrievalRow(QWidget):
    """A titled row of tiles (``objectName`` set by the panel); :attr:`clicked` relays a tile's id."""

    clicked = Signal(int)

    def __init__(self, title: str, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.title = QLabel(f"<b>{title}</b>")
        self.tiles: list[RetrievalTile] = []
        self._row = QHBoxLayout()
        self._row.setSpacing(4)
        self._row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.title)
        lay.addLayout(self._row)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def ensure(self, n: int, thumb: int = 80) -> None:
        while len(self.tiles) < n:
            tile = RetrievalTile(thumb_size=thumb, parent=self)
            tile.setObjectName(f"{self.objectName()}Tile{len(self.tiles)}")
            tile.clicked.connect(self.clicked)
            self._row.insertWidget(len(self.tiles), tile)
            self.tiles.append(tile)
        for i, tile in enumerate(self.tiles):
            tile.setVisible(i < n)


class RetrievalsPanel(QWidget):
    """Both rows plus keyboard navigation; clicking writes the target into ``state``."""

    def __init__(self, state: ViewerState, thumbs: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("retrievalsPanel")
        self._state = state
        self._thumbs = thumbs
        self.similar = RetrievalRow("Most similar", "retrievalsSimilar", self)
        self.dissimilar = RetrievalRow("Most dissimilar", "retrievalsDissimilar", self)
        self.similar.clicked.connect(state.set_target)
        self.dissimilar.clicked.connect(state.set_target)
        self.hint = QLabel("Pick a query in the gallery (or File ▸ Open image as query).", objectName="retrievalsHint")
        self.hint.setStyleSheet("color: #777;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.hint)
        lay.addWidget(self.similar)
        lay.addWidget(self.dissimilar)
        lay.addStretch(1)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._focus_row = 0
        self._focus_col = 0
        self.thumb = 80
        state.retrievalsChanged.connect(self._on_retrievals)
        state.targetChanged.connect(self._on_target)
        thumbs.ready.connect(self._on_thumb)

    def set_thumb_size(self, px: int) -> None:
        """Thumbnail side of every tile (see :func:`lfs_gui.app.layout.adapt_to_height`)."""
        if px != self.thumb:
            self.thumb = px
            for row in (self.similar, self.dissimilar):
                for tile in row.tiles:
                    tile.set_thumb_size(px)

    def tiles(self) -> list[RetrievalTile]:
        """Every visible tile, similar row first."""
        return [t for row in (self.similar, self.dissimilar) for t in row.tiles if t.isVisibleTo(self) and t.hit]

    def _rows(self) -> list[list[RetrievalTile]]:
        return [[t for t in row.tiles if not t.isHidden() and t.hit is not None] for row in (self.similar, self.dissimilar)]

    def _on_retrievals(self, retrievals: Any) -> None:
        session = self._state.session
        self.hint.setVisible(retrievals is None)
        for row, hits in ((self.similar, getattr(retrievals, "similar", [])), (self.dissimilar, getattr(retrievals, "dissimilar", []))):
            row.ensure(len(hits), self.thumb)
            for tile, hit in zip(row.tiles, hits):
                item = session.gallery.items[hit.id]
                tile.set_hit(hit, item.class_name, self._thumbs.get(item.path))
        self._on_target(self._state.target)

    def _on_target(self, target: int | None) -> None:
        for r, row in enumerate(self._rows()):
            for c, tile in enumerate(row):
                sel = target is not None and tile.hit.id == target
                tile.set_selected(sel)
                if sel:
                    self._focus_row, self._focus_col = r, c

    def _on_thumb(self, path: str) -> None:
        session = self._state.session
        if session is None:
            return
        for row in self._rows():
            for tile in row:
                item = session.gallery.items[tile.hit.id]
                if str(item.path) == path:
                    tile.set_pixmap(self._thumbs.get(path))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        rows = self._rows()
        if not any(rows):
            return super().keyPressEvent(event)
        r, c = self._focus_row, self._focus_col
        key = event.key()
        if key == Qt.Key.Key_Left:
            c -= 1
        elif key == Qt.Key.Key_Right:
            c += 1
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            r = 1 - r if rows[1 - r] else r
        else:
            return super().keyPressEvent(event)
        c = max(0, min(c, len(rows[r]) - 1))
        self._state.set_target(int(rows[r][c].hit.id))
        event.accept()
