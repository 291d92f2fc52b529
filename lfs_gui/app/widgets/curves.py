"""Curves panel: the pixel-flipping curve streamed point by point, random's for reference (the floor),
the greedy oracle's on request (the limit), continuity.

The panel is passive: the controller calls :meth:`CurvesPanel.reset`, :meth:`add_point` and
:meth:`finish` as worker items arrive, and :meth:`reset_oracle` around the oracle job that the
``oracleButton`` asks for. Each curve is one ``PlotDataItem`` whose data grows by one point per worker
item; the legend shows the AUC when a curve completes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QTabWidget, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

pg.setConfigOptions(antialias=True, background="w", foreground="k")

STYLES = {
    "method": dict(pen=pg.mkPen("#1f6fd1", width=2), symbol="o", symbolSize=6, symbolBrush="#1f6fd1", symbolPen=None),
    "random": dict(pen=pg.mkPen("#888888", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine), symbol="o",
                   symbolSize=5, symbolBrush=None, symbolPen=pg.mkPen("#888888")),
    "oracle": dict(pen=pg.mkPen("#111111", width=1.5, style=pg.QtCore.Qt.PenStyle.DotLine), symbol="t",
                   symbolSize=5, symbolBrush="#111111", symbolPen=None),
}
ORACLE_IDLE = "Oracle curve"
ORACLE_TIP = ("the greedy oracle: at each step the superpixel that moves the score most — the best any map "
              "could do on this pair (~1 100 forwards for 20 steps; runs in the background, cached per pair)")


def curve_auc(curve: Any) -> float | None:
    auc = getattr(curve, "auc", None)
    return None if auc is None else float(auc)


def legend_beside(plot: pg.PlotItem) -> pg.LegendItem:
    """Give ``plot`` a legend in its own column right of the axes, so it never covers the data (a
    legend inside the view box hid the curves on a short plot; width is cheaper than height)."""
    legend = pg.LegendItem(colCount=1, brush=None, pen=None, verSpacing=-4)
    legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)  # rows stay together
    plot.layout.addItem(legend, 2, 3)  # row of the view box, right of the right axis
    plot.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop)
    plot.legend = legend  # PlotItem.plot(name=...) adds each curve to it
    return legend


class _Series:
    """One growing curve on a plot."""

    def __init__(self, plot: pg.PlotItem, name: str, style: dict) -> None:
        self.name = name
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.item = plot.plot([], [], name=name, **style)

    def clear(self) -> None:
        self.xs, self.ys = [], []
        self.item.setData([], [])

    def add(self, x: float, y: float) -> None:
        self.xs.append(float(x))
        self.ys.append(float(y))
        self.item.setData(np.asarray(self.xs), np.asarray(self.ys))

    def rename(self, plot: pg.PlotItem, name: str) -> None:
        self.name = name
        legend = plot.legend
        if legend is not None:
            for sample, label in legend.items:
                if sample.item is self.item:
                    label.setText(name)


class CurvesPanel(QTabWidget):
    """Tab 1: pixel flipping (``curvePlot``); tab 2: continuity (``continuityPlot``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("curveTabs")
        self.plotWidget, self.status = self._add_page(
            "Pixel flipping", "curvePlot", "curveStatus", "step (superpixels flipped, most relevant first)", "sim_k / sim_0", ""
        )
        self.plot: pg.PlotItem = self.plotWidget.getPlotItem()
        self.oracleButton = QPushButton(ORACLE_IDLE, objectName="oracleButton")
        self.oracleButton.setToolTip(ORACLE_TIP)
        self.oracleButton.setEnabled(False)
        self._status_row(self.status, self.oracleButton)
        legend_beside(self.plot)
        self.contWidget, self.contStatus = self._add_page(
            "Continuity", "continuityPlot", "continuityStatus", "step", "heat-map difference",
            "Open this tab to compute the continuity of the current method.",
        )
        self.cont: pg.PlotItem = self.contWidget.getPlotItem()

        # pyqtgraph creates its context menus without a parent; tie them to this panel's lifetime.
        for item in (self.plot, self.cont):
            menu = item.getViewBox().menu
            menu.setParent(self, menu.windowFlags())
        self.series: dict[str, _Series] = {}
        self.steps = 0
        self.method = ""
        self.continuity: _Series | None = None

    def _add_page(self, title: str, plot_name: str, status_name: str, x_label: str, y_label: str,
                  message: str) -> tuple[pg.PlotWidget, QLabel]:
        """A tab with a plot over a one-line status label."""
        widget = pg.PlotWidget()
        widget.setObjectName(plot_name)
        item = widget.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setLabel("bottom", x_label)
        item.setLabel("left", y_label)
        # Values are shown as they are: pyqtgraph's automatic SI prefix would turn a gain of 0.0004 into
        # "400" with a "(x0.001)" label, which reads as nonsense for sim_k − sim_0.
        for side in ("left", "bottom"):
            item.getAxis(side).enableAutoSIPrefix(False)
        status = QLabel(message, objectName=status_name)
        # Text changes every point: a fixed-size label repaints itself only, never relayouts the window.
        status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(widget, 1)
        lay.addWidget(status)
        self.addTab(page, title)
        return widget, status

    @staticmethod
    def _status_row(status: QLabel, button: QPushButton) -> None:
        """Put ``button`` on the status line, to the right of the label."""
        page_layout = status.parentWidget().layout()
        index = page_layout.indexOf(status)
        page_layout.takeAt(index)
        row = QHBoxLayout()
        row.addWidget(status, 1)
        row.addWidget(button)
        page_layout.insertLayout(index, row)

    # -- pixel flipping -------------------------------------------------------------------------
    def reset(self, method: str | None = None, steps: int = 0, message: str = "") -> None:
        """Clear the plot; ``method`` None leaves it empty (no pair).

        Every click resets the panel on the GUI thread: for the same method the plot items are emptied
        and reused (building new pyqtgraph items cost tens of milliseconds per click)."""
        self.steps = steps
        if method is not None and method == self.method and self.series:
            for tag, s in self.series.items():
                s.clear()
                s.rename(self.plot, method if tag == "method" else "random")
        else:
            self.plot.clear()
            if self.plot.legend is not None:
                self.plot.legend.clear()
            self.series = {}
            if method is not None:
                self.series["method"] = _Series(self.plot, method, STYLES["method"])
                self.series["random"] = _Series(self.plot, "random", STYLES["random"])
        self.method = method or ""
        self.status.setText(message)
        self.oracleButton.setEnabled(method is not None)
        self.reset_oracle(running=False)

    def reset_oracle(self, running: bool, keep: bool = False) -> None:
        """Before (``running``) or after the oracle job: the button reads Cancel while it runs; the
        oracle's series is cleared unless ``keep`` (a finished curve stays until the pair changes)."""
        self.oracleButton.setText("Cancel oracle" if running else ORACLE_IDLE)
        if keep:
            return
        s = self.series.pop("oracle", None)
        if s is not None:
            self.plot.removeItem(s.item)
            if self.plot.legend is not None:
                self.plot.legend.removeItem(s.item)
        if running:
            self.series["oracle"] = _Series(self.plot, "oracle (greedy)", STYLES["oracle"])

    def add_point(self, tag: str, point: Any) -> None:
        s = self.series.get(tag)
        if s is None:
            return
        value = getattr(point, "value", float("nan"))
        s.add(point.step, point.ratio if value != value else value)  # NaN check: older points carry only ratio
        if tag != "oracle":
            name = self.method if tag == "method" else "random"
            self.status.setText(f"{name}: step {point.step}/{self.steps}  sim {point.sim:.3f}")

    def set_order(self, order: str) -> None:
        first = "least" if order == "lerf" else "most"
        self.plot.setLabel("bottom", f"step (superpixels flipped, {first} relevant first)")

    def set_pair_type(self, similar: bool) -> None:
        """Similar pairs plot sim_k/sim_0; dissimilar ones the gain sim_k − sim_0 (see metrics.selectivity)."""
        self.plot.setLabel("left", "sim_k / sim_0" if similar else "sim_k − sim_0")

    def finish(self, tag: str, curve: Any) -> None:
        s = self.series.get(tag)
        if s is None:
            return
        auc = curve_auc(curve)
        base = {"method": self.method, "oracle": "oracle (greedy)"}.get(tag, tag)
        if auc is None:
            s.rename(self.plot, base)
        elif auc != auc:  # NaN: a similar pair starting at sim_0 <= 0.05 has no ratio curve
            s.rename(self.plot, f"{base}  AUC n/a (sim_0 ≤ 0.05)")
        else:
            s.rename(self.plot, f"{base}  AUC {auc:.3f}")

    def point_count(self, tag: str = "method") -> int:
        """Points currently drawn for ``tag`` (read from the plot item itself)."""
        s = self.series.get(tag)
        if s is None:
            return 0
        x, _y = s.item.getData()
        return 0 if x is None else len(x)

    # -- continuity -----------------------------------------------------------------------------
    def reset_continuity(self, method: str | None, message: str = "") -> None:
        self.cont.clear()
        self.continuity = None
        if method is not None:
            self.continuity = _Series(self.cont, method, STYLES["method"])
        self.contStatus.setText(message)

    def add_continuity(self, point: Any) -> None:
        if self.continuity is not None:
            self.continuity.add(point.step, point.diff)
            self.contStatus.setText(f"step {point.step}")

    def finish_continuity(self, result: Any) -> None:
        self.contStatus.setText("done" if self.continuity is not None else "")
