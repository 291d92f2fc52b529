"""Explanation controls: method, p, ξ1, ξ2 (recompute) and colormap, opacity, mask-only (redraw).

Every control writes straight into :class:`~lfs_gui.viewer_state.ViewerState` while it is dragged; the state's
events bring the controls back in line when something else changes the settings (a new session
suggests its own ξ1).
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QWidget

from lfs_gui.figures.spec import COLORMAPS
from lfs_gui.viewer_state import ExplainSettings, ViewSettings, ViewerState

CMAPS = COLORMAPS  # jet (the paper's) next to perceptually uniform maps; the CLI's --cmap offers the same


class ValueSlider(QWidget):
    """A horizontal ``QSlider`` over a float range with a label ``name value``."""

    def __init__(
        self,
        name: str,
        lo: float,
        hi: float,
        step: float,
        on_change: Callable[[float], None],
        object_name: str,
        tooltip: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.name, self.lo, self.step = name, lo, step
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName=object_name)
        self.slider.setRange(0, round((hi - lo) / step))
        self.slider.setTracking(True)
        self.slider.setMinimumWidth(56)
        self.slider.setToolTip(tooltip)
        self.label = QLabel()
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance(f"{name} -0.00") + 4)  # never cut
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        lay.addWidget(self.label)
        lay.addWidget(self.slider, 1)
        self._on_change = on_change
        self.slider.valueChanged.connect(self._changed)

    def value(self) -> float:
        return round(self.lo + self.slider.value() * self.step, 6)

    def set_value(self, value: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round((float(value) - self.lo) / self.step))
        self.slider.blockSignals(False)
        self._relabel()

    def _relabel(self) -> None:
        self.label.setText(f"{self.name} {self.value():.2f}")

    def _changed(self, _v: int) -> None:
        self._relabel()
        self._on_change(self.value())


class ExplainControls(QWidget):
    """One row of controls under the pair."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("explainControls")
        self._state = state
        self.method = QComboBox(objectName="methodCombo")
        self.method.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.method.setToolTip("Explanation method (explainlfs is instant; the others run in the background)")
        self.target = QComboBox(objectName="targetCombo")
        self.target.addItem("decision", "decision")
        self.target.addItem("similarity", "similarity")
        self.target.setToolTip("the question every map and curve answers: decision (what makes the pair similar, "
                               "or dissimilar, as judged at ξ1) or similarity (what makes the two alike). Methods "
                               "that cannot answer it on a pair say so")
        self.p = ValueSlider("p", 0.0, 3.0, 0.01, lambda v: state.update_explain(p=v), "pSlider",
                             "perturbation size p: h(p) = h + R·p", self)
        self.xi1 = ValueSlider("ξ1", -1.0, 1.0, 0.01, lambda v: state.update_explain(xi1=v), "xi1Slider",
                               "similarity threshold ξ1: the pair is 'similar' when cosine > ξ1", self)
        self.xi2 = ValueSlider("ξ2", 0.0, 1.0, 0.01, lambda v: state.update_explain(xi2=v), "xi2Slider",
                               "mask threshold ξ2: mask = heat > ξ2", self)
        self.opacity = ValueSlider("opacity", 0.0, 1.0, 0.05, lambda v: state.update_view(opacity=v),
                                   "opacitySlider", "heat-map opacity", self)
        self.cmap = QComboBox(objectName="cmapCombo")
        self.cmap.addItems(CMAPS)
        self.cmap.setToolTip("colormap")
        self.maskOnly = QCheckBox("mask only (ξ2)", objectName="maskOnly")
        self.maskOnly.setToolTip("draw only the cells whose heat exceeds ξ2")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.method)
        lay.addWidget(self.target)
        for w in (self.p, self.xi1, self.xi2, self.opacity):
            lay.addWidget(w, 1)
        lay.addWidget(self.cmap)
        lay.addWidget(self.maskOnly)

        self.method.currentTextChanged.connect(lambda m: m and state.update_explain(method=m))
        self.target.currentIndexChanged.connect(lambda _i: state.update_explain(target=str(self.target.currentData())))
        self.cmap.currentTextChanged.connect(lambda c: state.update_view(cmap=c))
        self.maskOnly.toggled.connect(lambda on: state.update_view(mask_only=bool(on)))
        state.sessionChanged.connect(self._on_session)
        state.explainSettingsChanged.connect(self._on_explain)
        state.viewSettingsChanged.connect(self._on_view)
        self._on_explain(state.explain)
        self._on_view(state.view)

    def _on_session(self, session: Any) -> None:
        methods = list(session.methods()) if session is not None else []
        self.method.blockSignals(True)
        self.method.clear()
        self.method.addItems(methods)
        cur = self._state.explain.method
        if cur in methods:
            self.method.setCurrentText(cur)
        self.method.blockSignals(False)
        self.setEnabled(session is not None)

    def _on_explain(self, s: ExplainSettings) -> None:
        self.p.set_value(s.p)
        self.xi1.set_value(s.xi1)
        self.xi2.set_value(s.xi2)
        if self.method.currentText() != s.method:
            self.method.blockSignals(True)
            self.method.setCurrentText(s.method)
            self.method.blockSignals(False)
        if self.target.currentData() != s.target:
            self.target.blockSignals(True)
            self.target.setCurrentIndex(max(self.target.findData(s.target), 0))
            self.target.blockSignals(False)
        # p and ξ1 only mean something to ExplainLFS-style methods.
        lfs = s.method.startswith("explainlfs")
        self.p.setEnabled(lfs)
        self.xi1.setEnabled(True)

    def _on_view(self, v: ViewSettings) -> None:
        self.opacity.set_value(v.opacity)
        if self.cmap.currentText() != v.cmap:
            self.cmap.blockSignals(True)
            self.cmap.setCurrentText(v.cmap)
            self.cmap.blockSignals(False)
        self.maskOnly.blockSignals(True)
        self.maskOnly.setChecked(v.mask_only)
        self.maskOnly.blockSignals(False)


class CurveControls(QWidget):
    """Pixel-flipping settings: steps, perturbation (what replaces a superpixel), order and seed.

    Written into :class:`~lfs_gui.viewer_state.ViewerState`; a change restarts the pair's curves.
    """

    PERTURBATIONS = (
        ("noise", "N(0,1) noise (thesis)"),
        ("fill", "white fill (deletion)"),
        ("uniform", "uniform noise"),
        ("blur", "blur"),
    )

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        from PySide6.QtWidgets import QSpinBox

        super().__init__(parent)
        self.setObjectName("curveControls")
        self._state = state
        self.steps = QSpinBox(objectName="curveSteps", minimum=1, maximum=64)
        self.steps.setToolTip("superpixels perturbed, most relevant first (paper: 20)")
        self.perturbation = QComboBox(objectName="curvePerturbation")
        for key, text in self.PERTURBATIONS:
            self.perturbation.addItem(text, key)
        self.perturbation.setToolTip("what replaces a superpixel at each step")
        self.order = QComboBox(objectName="curveOrder")
        self.order.addItem("most relevant first", "morf")
        self.order.addItem("least relevant first", "lerf")
        self.order.setToolTip("perturb the most (MoRF) or the least (LeRF) relevant superpixels first")
        self.seed = QSpinBox(objectName="curveSeed", minimum=0, maximum=2**31 - 1)
        self.seed.setToolTip("seed of the perturbation noise (curves are reproducible)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        for text, w in (("steps", self.steps), ("", self.perturbation), ("", self.order), ("seed", self.seed)):
            if text:
                lay.addWidget(QLabel(text))
            lay.addWidget(w)
        self._sync(state.curve)
        state.curveSettingsChanged.connect(self._sync)
        self.steps.valueChanged.connect(lambda v: state.update_curve(steps=int(v)))
        self.seed.valueChanged.connect(lambda v: state.update_curve(seed=int(v)))
        self.perturbation.currentIndexChanged.connect(
            lambda _i: state.update_curve(perturbation=str(self.perturbation.currentData()))
        )
        self.order.currentIndexChanged.connect(lambda _i: state.update_curve(order=str(self.order.currentData())))

    def _sync(self, cs: Any) -> None:
        for w in (self.steps, self.perturbation, self.order, self.seed):
            w.blockSignals(True)
        self.steps.setValue(int(cs.steps))
        self.seed.setValue(int(cs.seed))
        idx = self.perturbation.findData(cs.perturbation)
        self.perturbation.setCurrentIndex(max(idx, 0))
        self.order.setCurrentIndex(max(self.order.findData(cs.order), 0))
        for w in (self.steps, self.perturbation, self.order, self.seed):
            w.blockSignals(False)
