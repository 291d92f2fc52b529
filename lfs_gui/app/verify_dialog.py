"""File ▸ Compare two images…: verify any two image files, no gallery needed.

The paper's first experiment (FaceNet face verification) as a window: pick two files; the dialog
shows their cosine similarity and the decision at ξ1 (the user's, else the model card's — 0.3 for
FaceNet — else the open gallery's suggestion, else the paper's 0.3; :func:`lfs_gui.verify.decision_xi1`),
explains the pair with any method that needs no gallery, streams its pixel-flipping curve and
random's, and exports the pair figure and the curve data. The model (and decoder) is the open
index's, or the demo's when none is open (:mod:`lfs_gui.verify`); everything slow runs in one worker
job that a new request replaces.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
)

from lfs_gui.app.controller import _relay, pair_curves
from lfs_gui.app.widgets.curves import STYLES, _Series, legend_beside
from lfs_gui.app.widgets.pair_view import HeatTile, _ImageCache, heat_image
from lfs_gui.app.workers import JobChannel

log = logging.getLogger(__name__)


def verify_job(session: Any, pair: Any, a: str, b: str, method: str, settings: dict, user_xi1: float | None,
               curve: Any) -> Generator[tuple[str, Any], None, None]:
    """Open the pair session (once), decide ξ1, explain, then stream both curves.

    Yields ``("session", pair_session)``, ``("xi1", (value, source))``, ``("expl", HeatPair)``, then the
    items of :func:`lfs_gui.app.controller.pair_curves`."""
    from lfs_gui.verify import decision_xi1, iter_open_pair, pair_session_from

    if pair is None:
        pair = pair_session_from(session) if session is not None else (yield from _relay("progress", iter_open_pair()))
        yield ("session", pair)
    gallery_xi1 = session.suggested_xi1() if session is not None and session.gallery.has_labels else None
    xi1, source = decision_xi1(user_xi1, pair.model, gallery_xi1)
    yield ("xi1", (xi1, source))
    ex = yield from _relay("progress", pair.iter_explain(a, b, method, **{**settings, "xi1": xi1}))
    yield ("expl", ex)
    yield from pair_curves(pair, a, b, ex, curve.steps, curve.perturbation, curve.seed, None, xi1)


class VerifyDialog(QDialog):
    """See module docstring."""

    finished_curves = Signal(object)  # {"method": Curve, "random": Curve}

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.setObjectName("verifyDialog")
        self.setWindowTitle("Compare two images")
        self.window_ = window
        self.state = window.state
        self.paths: list[str | None] = [None, None]
        self.pair: Any = None  # the pair session, made by the first job
        self.explanation: Any = None
        self.curves: dict[str, Any] = {}
        self.user_xi1: float | None = None
        self._images = _ImageCache()
        self.channel = JobChannel("verify", self)

        self.pick = [QPushButton("Image 1…", objectName="verifyPick1"), QPushButton("Image 2…", objectName="verifyPick2")]
        self.names = [QLabel("(none)", objectName="verifyName1"), QLabel("(none)", objectName="verifyName2")]
        for k, btn in enumerate(self.pick):
            btn.clicked.connect(lambda _c=False, k=k: self.choose(k))
        self.model = QLabel(objectName="verifyModel")
        self.method = QComboBox(objectName="verifyMethod")
        self.method.addItem(self.state.explain.method)
        self.method.currentTextChanged.connect(lambda _m: self.recompute())
        self.xi1 = QDoubleSpinBox(objectName="verifyXi1", minimum=-1.0, maximum=1.0, singleStep=0.01, decimals=2)
        self.xi1.setToolTip("ξ1: the pair is 'same' (similar) when cosine > ξ1; edit to use your own")
        self.xi1.valueChanged.connect(self._on_user_xi1)
        self.xi1Source = QLabel(objectName="verifyXi1Source")
        self.verdict = QLabel("Pick two image files.", objectName="verifyVerdict")
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.tiles = [HeatTile("image 1 + heat", "verifyHeat1"), HeatTile("image 2 + heat", "verifyHeat2")]
        self.plotWidget = pg.PlotWidget(objectName="verifyPlot")
        self.plot = self.plotWidget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step (superpixels flipped)")
        legend_beside(self.plot)
        menu = self.plot.getViewBox().menu
        menu.setParent(self, menu.windowFlags())
        self.series: dict[str, _Series] = {}
        self.exportFigure = QPushButton("Export figure…", objectName="verifyExportFigure")
        self.exportFigure.clicked.connect(lambda: self.export_figure())
        self.exportData = QPushButton("Export curve data…", objectName="verifyExportData")
        self.exportData.clicked.connect(lambda: self.export_curve_data())
        self._layout()
        self.channel.item.connect(self._on_item)
        self.channel.failed.connect(lambda exc, _tb: self.verdict.setText(f"<span style='color:#d0312d'>{exc}</span>"))
        self._describe_model()
        self.resize(980, 520)

    def _layout(self) -> None:
        top = QGridLayout()
        for k in range(2):
            top.addWidget(self.pick[k], k, 0)
            top.addWidget(self.names[k], k, 1)
        top.setColumnStretch(1, 1)
        opts = QHBoxLayout()
        for w in (QLabel("method"), self.method, QLabel("ξ1"), self.xi1, self.xi1Source):
            opts.addWidget(w)
        opts.addStretch(1)
        opts.addWidget(self.model)
        body = QHBoxLayout()
        for t in self.tiles:
            body.addWidget(t, 2)
        body.addWidget(self.plotWidget, 3)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.exportFigure)
        buttons.addWidget(self.exportData)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(opts)
        lay.addWidget(self.verdict)
        lay.addLayout(body, 1)
        lay.addLayout(buttons)
        self._set_exports(False)

    def _set_exports(self, on: bool) -> None:
        self.exportFigure.setEnabled(on and self.explanation is not None)
        self.exportData.setEnabled(on and "method" in self.curves)

    def _describe_model(self) -> None:
        s = self.state.session
        name = s.model_info.get("name", "?") if s is not None else "the demo model"
        where = f"the open index ({s.name})" if s is not None else "no index open"
        self.model.setText(f"model: {name} — {where}")

    # -- input ----------------------------------------------------------------------------------------
    def choose(self, k: int) -> None:
        from lfs_gui.app.window_actions import IMAGE_FILTER

        path, _ = QFileDialog.getOpenFileName(self, f"Image {k + 1}", "", IMAGE_FILTER)
        if path:
            self.set_image(k, path)

    def set_image(self, k: int, path: str | Path) -> int | None:
        """Use ``path`` as image ``k`` (0 or 1); starts the comparison once both are set."""
        self.paths[k] = str(Path(path).resolve())
        self.names[k].setText(Path(path).name)
        self.names[k].setToolTip(self.paths[k])
        return self.recompute()

    def _on_user_xi1(self, value: float) -> None:
        self.user_xi1 = float(value)
        self.recompute()

    def recompute(self) -> int | None:
        """(Re)start the job for the two images with the current method, ξ1 and curve settings."""
        a, b = self.paths
        if a is None or b is None:
            return None
        self.explanation, self.curves = None, {}
        self._set_exports(False)
        for t in self.tiles:
            t.set_overlay(None, 0)
        for t, p in zip(self.tiles, (a, b)):
            try:
                pix, size = self._images.get(Path(p))
                prep = self.pair.preprocessing if self.pair is not None else (
                    self.state.session.preprocessing if self.state.session is not None else None)
                t.set_image(pix, size, prep.crop_box(*size) if prep is not None else None)
            except OSError as exc:
                self.verdict.setText(f"{Path(p).name}: {exc}")
                return None
        self.plot.clear()
        self.plot.legend.clear()
        self.series = {"method": _Series(self.plot, self.method.currentText(), STYLES["method"]),
                       "random": _Series(self.plot, "random", STYLES["random"])}
        self.verdict.setText("computing…")
        session, pair, method = self.state.session, self.pair, self.method.currentText()
        settings = {k: v for k, v in self.state.explain.kwargs().items() if k != "xi1"}
        curve, user = self.state.curve, self.user_xi1
        return self.channel.start(lambda: verify_job(session, pair, a, b, method, settings, user, curve))

    # -- results --------------------------------------------------------------------------------------
    def _on_item(self, item: tuple[str, Any]) -> None:
        tag, value = item
        if tag == "session":
            self.pair = value
            methods = list(value.methods())
            current = self.method.currentText()
            self.method.blockSignals(True)
            self.method.clear()
            self.method.addItems(methods)
            self.method.setCurrentText(current if current in methods else methods[0])
            self.method.blockSignals(False)
        elif tag == "xi1":
            xi1, source = value
            self.xi1.blockSignals(True)
            self.xi1.setValue(xi1)
            self.xi1.blockSignals(False)
            self.xi1Source.setText({"user": "(yours)", "model card": "(the model card's)", "gallery": "(suggested "
                                    "for the open gallery)", "paper": "(the paper's; the model has no card value)"}[source])
        elif tag == "expl":
            self._on_explanation(value)
        elif tag.endswith("-done"):
            self.curves[tag[:-5]] = value
            s = self.series.get(tag[:-5])
            auc = getattr(value, "auc", None)
            if s is not None and auc is not None and auc == auc:
                s.rename(self.plot, f"{s.name}  AUC {float(auc):.3f}")
            self._set_exports(True)
            if {"method", "random"} <= self.curves.keys():
                self.finished_curves.emit(dict(self.curves))
        elif tag in self.series:
            v = getattr(value, "value", float("nan"))
            self.series[tag].add(value.step, value.ratio if v != v else v)

    def _on_explanation(self, ex: Any) -> None:
        self.explanation = ex
        view = self.state.view
        for tile, heat in zip(self.tiles, (ex.heat1, ex.heat2)):
            tile.set_overlay(heat_image(heat, view.cmap), view.opacity)
        same = bool(ex.similar)
        color = "#2e9d3a" if same else "#d0312d"
        self.verdict.setText(
            f"cosine similarity <b>{ex.similarity:.4f}</b> → <b style='color:{color}'>"
            f"{'same (similar)' if same else 'different (dissimilar)'}</b> at ξ1 = {ex.settings.get('xi1'):.2f}"
            f" · {ex.method}")
        self.plot.setLabel("left", "sim_k / sim_0" if same else "sim_k − sim_0")
        self._set_exports(True)

    # -- exports --------------------------------------------------------------------------------------
    def export_figure(self, path: str | Path | None = None) -> int | None:
        if self.explanation is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the pair figure", "pair.pdf", "Figures (*.pdf *.png *.svg)")
            if not path:
                return None
        data, spec = self._figure_data()

        def run() -> Generator[Any, None, str]:
            from lfs_gui.figures import save_pair_figure
            from lfs_gui.jobs import Progress

            yield Progress(0, 1, f"drawing {Path(path).name}")
            return str(save_pair_figure(path, data, spec))

        return self.window_.export_channel.start(run)

    def _figure_data(self) -> tuple[Any, Any]:
        """The pair's figure data and the window's view (colormap, opacity, mask view), as the app exports."""
        from lfs_gui.app.export import view_spec
        from lfs_gui.figures import PairData

        a, b = self.paths
        return PairData.from_session(self.pair, a, b, self.explanation, dict(self.curves)), view_spec(self.state)

    def export_curve_data(self, path: str | Path | None = None) -> int | None:
        curve = self.curves.get("method")
        if curve is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the curve data", "curve.csv", "Curve data (*.csv *.json)")
            if not path:
                return None
        data, spec = self._figure_data()
        method = self.explanation.method

        def run() -> Generator[Any, None, str]:
            from lfs_gui.figures import save_curve_data
            from lfs_gui.jobs import Progress

            yield Progress(0, 1, f"writing {Path(path).name}")
            save_curve_data(path, data.curves, data.context(spec), labels={"method": method})
            return str(path)

        return self.window_.export_channel.start(run)

    def done(self, result: int) -> None:  # noqa: D102 (closing the dialog stops its job)
        self.channel.cancel()
        super().done(result)


def show_verify_dialog(window: Any) -> VerifyDialog:
    """The window's one Compare-two-images dialog (made on first use; its job shows in the status bar)."""
    dialog = getattr(window, "verifyDialog", None)
    if dialog is None:
        dialog = VerifyDialog(window)
        window.register_channel(dialog.channel, "Comparing two images failed")
        window.verifyDialog = dialog
    dialog._describe_model()
    dialog.show()
    dialog.raise_()
    return dialog
