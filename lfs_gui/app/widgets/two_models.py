"""Two models over the same gallery: the current query's retrievals of both, and the pair under both.

Row A holds model A's (the open index's) k most similar images, row B model B's, aligned by rank;
each tile's caption gives the image's rank under the *other* model with the change marked
(``B#5 ↓4``: B ranks it four places lower; ``B#1 =``: same rank). Clicking a tile of either row
opens that pair (in A's numbering). Below, the current pair explained under both models with the
same method and settings (each model with its own ξ1): A's heat (the window's explanation) and
B's, side by side. The view is passive: :class:`lfs_gui.app.compare_actions.CompareActions` feeds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lfs_gui.app.widgets.pair_view import HeatTile, _ImageCache, heat_image
from lfs_gui.app.widgets.retrievals import RetrievalTile


def rank_change(rank: int, other: int, name: str) -> str:
    """``B#5 ↓4`` / ``B#2 ↑1`` / ``B#1 =``: the other model's rank of an image and the move."""
    if other == rank:
        return f"{name}#{other} ="
    return f"{name}#{other} {'↓' if other > rank else '↑'}{abs(other - rank)}"


class CompactTile(RetrievalTile):
    """A retrieval tile for the two-model rows: narrower (its captions are short)."""

    MIN_WIDTH = 70


class ModelRow(QWidget):
    """A titled row of retrieval tiles; :attr:`clicked` gives a tile's id (A's numbering)."""

    clicked = Signal(int)

    def __init__(self, title: str, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.title = QLabel(title)
        self.title.setFixedWidth(18)
        self.title.setWordWrap(True)
        self.tiles: list[RetrievalTile] = []
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(3)
        self.row.addWidget(self.title)
        self.row.addStretch(1)

    def show_hits(self, ids: list[int], hits: list[Any], captions: list[tuple[str, str]], classes: list[str | None],
                  pixmaps: list[Any], thumb: int) -> None:
        while len(self.tiles) < len(hits):
            tile = CompactTile(thumb_size=thumb, parent=self)
            tile.setObjectName(f"{self.objectName()}Tile{len(self.tiles)}")
            tile.clicked.connect(lambda _i, t=tile: self.clicked.emit(int(t.property("aId"))))
            self.row.insertWidget(len(self.tiles) + 1, tile)
            self.tiles.append(tile)
        for k, tile in enumerate(self.tiles):
            tile.setVisible(k < len(hits))
            if k < len(hits):
                tile.setProperty("aId", int(ids[k]))
                tile.set_hit(hits[k], classes[k], pixmaps[k])
                tile.set_caption(*captions[k])


class TwoModelsView(QWidget):
    """See module docstring."""

    targetRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("twoModelsView")
        self._images = _ImageCache()
        self.info = QLabel("Open a second index over the same gallery: File ▸ Compare with a second index…",
                           objectName="twoModelsInfo")
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setWordWrap(True)
        self.rowA = ModelRow("<b>A</b>", "twoModelsRowA")
        self.rowB = ModelRow("<b>B</b>", "twoModelsRowB")
        for row in (self.rowA, self.rowB):
            row.clicked.connect(self.targetRequested)
        self.tiles = [HeatTile("A: query", "twoModelsAQuery"), HeatTile("A: target", "twoModelsATarget"),
                      HeatTile("B: query", "twoModelsBQuery"), HeatTile("B: target", "twoModelsBTarget")]
        grid = QGridLayout()
        grid.setSpacing(3)
        for i, t in enumerate(self.tiles):
            t.setMinimumSize(70, 70)
            grid.addWidget(t, i // 2, i % 2)  # A's pair on top, B's below
        self.pairInfo = QLabel(objectName="twoModelsPairInfo")
        self.pairInfo.setTextFormat(Qt.TextFormat.RichText)
        self.pairInfo.setWordWrap(True)
        rows = QVBoxLayout()
        rows.setSpacing(2)
        rows.addWidget(self.rowA)
        rows.addWidget(self.rowB)
        rows.addStretch(1)
        pair = QVBoxLayout()
        pair.setSpacing(2)
        pair.addWidget(self.pairInfo)
        pair.addLayout(grid, 1)
        body = QHBoxLayout()
        body.addLayout(rows, 3)
        body.addLayout(pair, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.info)
        lay.addLayout(body, 1)
        self.heats: list[Any] = [None, None]
        self.cmap, self.opacity = "jet", 0.5
        self.thumb = 48

    def set_rows(self, gallery: Any, ret_a: Any, ids_b: np.ndarray, ret_b: Any, rank_a_in_b: np.ndarray,
                 rank_b_in_a: np.ndarray, thumbs: Any) -> None:
        """Both models' top-k (B's ids given in A's numbering as ``ids_b``), captioned with the other's rank."""
        ids_a = [int(h.id) for h in ret_a.similar]

        def fill(row: ModelRow, ids: list[int], hits: list[Any], other: np.ndarray, name: str) -> None:
            items = [gallery.items[i] for i in ids]
            captions = [(f"#{h.rank}{' ✓' if h.same_class else ' ✗' if h.same_class is False else ''} {h.score:.2f}",
                         rank_change(h.rank, int(o), name)) for h, o in zip(hits, other)]
            row.show_hits(ids, hits, captions, [it.class_name for it in items], [thumbs.get(it.path) for it in items],
                          self.thumb)

        fill(self.rowA, ids_a, list(ret_a.similar), rank_a_in_b, "B")
        fill(self.rowB, [int(i) for i in ids_b], list(ret_b.similar), rank_b_in_a, "A")

    def refresh_thumb(self, gallery: Any, path: str, thumbs: Any) -> None:
        for row in (self.rowA, self.rowB):
            for tile in row.tiles:
                if tile.isVisible() and str(gallery.items[int(tile.property("aId"))].path) == path:
                    tile.set_pixmap(thumbs.get(path))

    def show_pair(self, session: Any, query: Any, target: int | None) -> None:
        """The pair's images in all four tiles (A and B see the same files)."""
        self.heats = [None, None]
        for t in self.tiles:
            t.set_overlay(None, 0)
            t.set_image(None)
        self.pairInfo.setText("")
        if target is None:
            return
        prep = session.preprocessing
        for t, image in zip(self.tiles, (query, target, query, target)):
            pix, size = self._images.get(session.image_path(image))
            t.set_image(pix, size, prep.crop_box(*size))

    def set_heat(self, which: int, explanation: Any) -> None:
        """``which`` 0: model A's explanation of the pair, 1: model B's."""
        self.heats[which] = explanation
        self.redraw()
        parts = []
        for name, ex in zip("AB", self.heats):
            if ex is None:
                parts.append(f"{name}: computing…")
                continue
            color = "#2e9d3a" if ex.similar else "#d0312d"
            parts.append(f"{name}: cosine <b>{ex.similarity:.3f}</b> → <b style='color:{color}'>"
                         f"{'similar' if ex.similar else 'dissimilar'}</b> (ξ1 = {ex.settings.get('xi1', 0):.2f})")
        method = next((ex.method for ex in self.heats if ex is not None), "")
        self.pairInfo.setText(f"{method} · " + " · ".join(parts))

    def set_view(self, cmap: str, opacity: float) -> None:
        self.cmap, self.opacity = cmap, float(opacity)
        self.redraw()

    def redraw(self) -> None:
        for k, ex in enumerate(self.heats):
            for t, heat in zip(self.tiles[2 * k: 2 * k + 2], (None, None) if ex is None else (ex.heat1, ex.heat2)):
                t.set_overlay(None if heat is None else heat_image(np.asarray(heat), self.cmap), self.opacity)
