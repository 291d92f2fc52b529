"""Curves panel: the pixel-flipping curve streamed point by point, random's for reference (the floor),
the greedy oracle's on request (the limit), continuity.

The panel is passive: the controller calls :meth:`CurvesPanel.reset`, :meth:`add_point` and
:meth:`finish` as worker items arrive, and :meth:`reset_oracle` around the oracle job that the
``oracleButton`` asks for. Each curve is one ``PlotDataItem`` whose data grows by one point per worker
item; the legend shows the AUC when a curve completes.

Redraws are throttled to one per :data:`REDRAW_INTERVAL_MS` (the first point of a burst at once, the
rest on a timer; :meth:`finish` draws at once), the x range is fixed to the curve's steps and the y
range only grows, and the axes are cached as pixmaps. A repaint of the plot cost the GUI thread ~8 ms
of Python (pyqtgraph's axes and grid), twice per point; meanwhile the curve's worker waits for the GIL
between its torch ops (bench/README.md).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QGraphicsItem, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QTabWidget, QVBoxLayout, QWidget,
)

log = logging.getLogger(__name__)

pg.setConfigOptions(antialias=True, background="w", foreground="k")
REDRAW_INTERVAL_MS = 100

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
        self.dirty = False
        self.item = plot.plot([], [], name=name, **style)

    def clear(self) -> None:
        self.xs, self.ys = [], []
        self.dirty = False
        self.item.setData([], [])

    def add(self, x: float, y: float, draw: bool = True) -> None:
        """Record a point and draw it (``draw=False``: at the next :meth:`flush`)."""
        self.xs.append(float(x))
        self.ys.append(float(y))
        self.dirty = True
        if draw:
            self.flush()

    def flush(self) -> None:
        if self.dirty:
            self.dirty = False
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
        self.redraws = 0  # plot updates drawn (for tests and the benchmark)
        self.redraw_interval_ms = REDRAW_INTERVAL_MS  # 0 draws every point (the benchmark's "before")
        self.managed_ranges = True  # False: pyqtgraph autoranges on every redraw (the benchmark's "before")
        self._y_range: tuple[float, float] | None = None
        self._status_text: tuple[QLabel, str] | None = None
        self._last_flush = 0.0
        self._redraw = QTimer(self, singleShot=True)
        self._redraw.timeout.connect(self.flush)

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
            # The axes (their grid lines and tick labels) are drawn once into a pixmap and blitted on
            # every repaint until their range changes; replaying them cost most of a repaint.
            item.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
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
        self._redraw.stop()
        self._status_text = None
        self.steps = steps
        vb = self.plot.getViewBox()
        self._y_range = None
        if steps > 0 and self.managed_ranges:
            # x is fixed to the steps and y only ever grows (see flush): the axes and the grid are not
            # rebuilt on every redraw, and a redraw is one paint, not two (autorange repaints again)
            vb.disableAutoRange()
            vb.setXRange(0, steps, padding=0.03)
        else:
            vb.enableAutoRange()
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
        s.add(point.step, point.ratio if value != value else value, draw=False)  # NaN: older points carry only ratio
        if tag != "oracle":
            name = self.method if tag == "method" else "random"
            self._status_text = (self.status, f"{name}: step {point.step}/{self.steps}  sim {point.sim:.3f}")
        self._schedule()

    def _schedule(self) -> None:
        """Draw now if the last redraw is older than the interval, else once the interval is over."""
        if self._redraw.isActive():
            return
        wait_ms = self.redraw_interval_ms - 1000 * (time.monotonic() - self._last_flush)
        if wait_ms <= 0:
            self.flush()
        else:
            self._redraw.start(int(wait_ms) + 1)

    def flush(self) -> None:
        """Draw every pending point (and the latest status line) now."""
        self._redraw.stop()
        drew = False
        for s in (*self.series.values(), *([self.continuity] if self.continuity is not None else [])):
            drew = drew or s.dirty
            s.flush()
        if drew and self.managed_ranges and self.steps > 0:
            self._grow_y_range()
        if self._status_text is not None:
            label, text = self._status_text
            label.setText(text)
            self._status_text = None
        self.redraws += int(drew)
        self._last_flush = time.monotonic()

    def _grow_y_range(self) -> None:
        """Widen the y range to hold every point drawn so far (never shrinks during a curve)."""
        ys = np.array([y for s in self.series.values() for y in s.ys], dtype=float)
        ys = ys[np.isfinite(ys)]
        if not ys.size:
            return
        lo, hi = float(ys.min()), float(ys.max())
        cur = self._y_range
        if cur is not None and cur[0] <= lo and hi <= cur[1]:
            return
        if cur is not None:
            lo, hi = min(lo, cur[0]), max(hi, cur[1])
        pad = 0.15 * max(hi - lo, 0.02)
        self._y_range = (lo - pad, hi + pad)
        self.plot.getViewBox().setYRange(*self._y_range, padding=0)

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
        self.flush()
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
        self.flush()
        self.cont.clear()
        self.continuity = None
        if method is not None:
            self.continuity = _Series(self.cont, method, STYLES["method"])
        self.contStatus.setText(message)

    def add_continuity(self, point: Any) -> None:
        if self.continuity is not None:
            self.continuity.add(point.step, point.diff, draw=False)
            self._status_text = (self.contStatus, f"step {point.step}")
            self._schedule()

    def finish_continuity(self, result: Any) -> None:
        self.flush()
        self.contStatus.setText("done" if self.continuity is not None else "")
