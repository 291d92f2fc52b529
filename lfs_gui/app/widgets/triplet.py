"""The failure triplet: a query, its wrong top-1 and its nearest same-class image, both pairs explained.

Opened from the Failures panel. Left: the query against its wrong top-1 (red frame) and against
its nearest same-class image (green), each pair explained with the same method and settings, heat
drawn inside each image's crop box (:class:`~lfs_gui.app.widgets.pair_view.HeatTile`). Right: the
pixel-flipping curves of both pairs, streamed from a worker, legend beside the plot. The view is
passive: :class:`lfs_gui.app.failure_actions.FailureActions` feeds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from lfs_gui.app.widgets.curves import STYLES, _Series, legend_beside
from lfs_gui.app.widgets.pair_view import HeatTile, _ImageCache, heat_image

WRONG, RIGHT = "#d0312d", "#2e9d3a"
CURVE_STYLES = {
    "wrong": {**STYLES["method"], "pen": pg.mkPen(WRONG, width=2), "symbolBrush": WRONG},
    "right": {**STYLES["method"], "pen": pg.mkPen(RIGHT, width=2), "symbolBrush": RIGHT},
}


class TripletView(QWidget):
    """See module docstring. ``show_triplet`` → ``set_explanations`` → curve points."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tripletView")
        self._images = _ImageCache()
        self.info = QLabel("Pick a failure in the Failures panel (left) to see its triplet.", objectName="tripletInfo")
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setWordWrap(True)
        self.queryWrong = HeatTile("query (vs wrong)", "tripletQueryWrong")
        self.wrong = HeatTile("wrong top-1", "tripletWrong")
        self.queryRight = HeatTile("query (vs same class)", "tripletQueryRight")
        self.right = HeatTile("nearest same class", "tripletRight")
        self.tiles = (self.queryWrong, self.wrong, self.queryRight, self.right)
        for t in self.tiles:
            t.setMinimumSize(90, 90)
        self.plotWidget = pg.PlotWidget(objectName="tripletPlot")
        self.plot: pg.PlotItem = self.plotWidget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "similarity (relative)")
        legend_beside(self.plot)
        menu = self.plot.getViewBox().menu
        menu.setParent(self, menu.windowFlags())
        self.plotWidget.setMinimumWidth(260)
        self.series: dict[str, _Series] = {}
        self.explanations: tuple[Any, Any] = (None, None)
        self.opacity, self.cmap = 0.5, "jet"
        grid = QGridLayout()
        grid.setSpacing(4)
        for i, tile in enumerate(self.tiles):
            grid.addWidget(tile, 0, i)
        row = QHBoxLayout()
        row.addLayout(grid, 3)
        row.addWidget(self.plotWidget, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.info)
        lay.addLayout(row, 1)
        self.triplet: tuple[int, int, int] | None = None

    def show_triplet(self, session: Any, query: int, wrong: int, correct: int, text: str) -> None:
        """Show the three images (``correct`` -1: the class has no other image) and clear heat and curves."""
        self.triplet = (query, wrong, correct)
        self.info.setText(text)
        prep = session.preprocessing
        for tile, image in zip(self.tiles, (query, wrong, query, correct)):
            tile.set_overlay(None, 0)
            if image < 0:
                tile.set_image(None)
                continue
            pix, size = self._images.get(session.image_path(image))
            tile.set_image(pix, size, prep.crop_box(*size))
        self.explanations = (None, None)
        self.reset_curves()

    def set_explanations(self, wrong: Any, right: Any) -> None:
        self.explanations = (wrong, right)
        self.redraw()

    def set_view(self, cmap: str, opacity: float) -> None:
        self.cmap, self.opacity = cmap, float(opacity)
        self.redraw()

    def redraw(self) -> None:
        heats = []
        for ex in self.explanations:
            heats += [None, None] if ex is None else [ex.heat1, ex.heat2]
        for tile, heat in zip(self.tiles, heats):
            if heat is None:
                tile.set_overlay(None, 0)
            else:
                tile.set_overlay(heat_image(np.asarray(heat), self.cmap), self.opacity)

    # -- curves (worker items) -----------------------------------------------------------------------
    def reset_curves(self) -> None:
        self.plot.clear()
        if self.plot.legend is not None:
            self.plot.legend.clear()
        self.series = {tag: _Series(self.plot, name, CURVE_STYLES[tag])
                       for tag, name in (("wrong", "vs wrong"), ("right", "vs same class"))}

    def add_point(self, tag: str, point: Any) -> None:
        s = self.series.get(tag)
        if s is not None:
            value = getattr(point, "value", float("nan"))
            s.add(point.step, point.ratio if value != value else value)

    def finish(self, tag: str, curve: Any) -> None:
        s = self.series.get(tag)
        auc = getattr(curve, "auc", None)
        if s is not None and auc is not None and auc == auc:
            s.rename(self.plot, f"{s.name}  AUC {float(auc):.3f}")

    def point_count(self, tag: str) -> int:
        s = self.series.get(tag)
        return 0 if s is None else len(s.xs)
