"""The controller: turns state changes into core calls, on the GUI thread or in a worker.

* query -> ``Session.retrieve`` (milliseconds: GUI thread) -> ``state.retrievals``; the top similar
  hit becomes the target so the pair view is never empty after a query change.
* pair or explain settings -> ``Session.explain``: a method the session calls instant (decoder-only,
  its gallery statistics cached: ExplainLFS costs well under 5 ms once embeddings are cached) runs
  directly on the GUI thread and redraws while a slider is dragged; the others (model-side methods,
  EMSNN before its class prototypes exist) run on the ``explain`` channel.
* explanation -> (debounced) the pixel-flipping curve and random's reference curve on the ``curve``
  channel, streamed point by point into the :class:`CurvesPanel`. A new pair cancels the old run and the
  channel's generation counter drops anything it still emits. Both curves ask the map's question
  (``ExplainSettings.target``) in the chosen order (``CurveSettings.order``).
* the panel's oracle button -> the greedy oracle's curve for the pair on the ``oracle`` channel (long:
  progress in the status line, the button cancels it), drawn next to random's; a new pair or curve
  setting cancels it.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from lfs_gui.app.widgets.curves import CurvesPanel
from lfs_gui.app.workers import JobChannel
from lfs_gui.viewer_state import ViewerState

log = logging.getLogger(__name__)

def runs_on_gui_thread(session: Any, method: str) -> bool:
    """Only what costs milliseconds now runs on the GUI thread (``Session.is_instant``: decoder-only
    methods whose gallery statistics are cached); everything else goes to a worker."""
    return bool(session.is_instant(method))


def _relay(tag: str, gen: Generator[Any, None, Any]) -> Generator[tuple[str, Any], None, Any]:
    try:
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            yield (tag, item)
    finally:
        gen.close()


def pair_curves(
    session: Any, query: Any, target: int, explanation: Any, steps: int, perturbation: str, seed: int,
    random_points: tuple[list[Any], Any] | None, xi1: float | None = None, order: str = "morf",
) -> Generator[tuple[str, Any], None, None]:
    """The method's curve, then random's (replayed when cached), for the map's question and ``order``.
    Yields ``(tag, CurvePoint)`` and ``(tag + "-done", Curve)`` items; each is a cancel point."""
    curve = yield from _relay(
        "method", session.iter_curve(query, target, explanation, steps=steps, perturbation=perturbation, seed=seed,
                                     order=order)
    )
    yield ("method-done", curve)
    if random_points is not None:
        for pt in random_points[0]:
            yield ("random", pt)
        yield ("random-done", random_points[1])
        return
    rnd = yield from _relay(
        "random", session.iter_random_curve(query, target, steps=steps, perturbation=perturbation, seed=seed, xi1=xi1,
                                            question=getattr(explanation, "target", "decision"), order=order)
    )
    yield ("random-done", rnd)


def oracle_curve(session: Any, query: Any, target: int, explanation: Any, steps: int, perturbation: str, seed: int,
                 order: str = "morf") -> Generator[tuple[str, Any], None, None]:
    """The greedy oracle's curve: ``("oracle-progress", Progress)``, ``("oracle", CurvePoint)`` and
    ``("oracle-done", Curve)`` items; each is a cancel point."""
    from lfs_gui.jobs import Progress

    gen = session.iter_oracle_curve(query, target, explanation, steps=steps, perturbation=perturbation, seed=seed,
                                    order=order)
    curve = None
    try:
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                curve = stop.value
                break
            yield ("oracle-progress" if isinstance(item, Progress) else "oracle", item)
    finally:
        gen.close()
    yield ("oracle-done", curve)


class Controller(QObject):
    """Owns the worker channels and reacts to :class:`ViewerState` events."""

    curveFinished = Signal(object)  # {"method": Curve, "random": Curve}
    explainFailed = Signal(str)

    def __init__(self, state: ViewerState, curves: CurvesPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.curves = curves
        self.curve_channel = JobChannel("curve", self)
        self.explain_channel = JobChannel("explain", self)
        self.continuity_channel = JobChannel("continuity", self)
        self.oracle_channel = JobChannel("oracle", self)
        self.auto_open_top = True
        self.curve_delay_ms = 120  # debounce while a slider is dragged
        self._curve_timer = QTimer(self, singleShot=True)
        self._curve_timer.timeout.connect(self.start_curve)
        self._random_cache: dict[tuple, tuple[list[Any], Any]] = {}
        self._random_points: list[Any] = []
        self._curves: dict[str, Any] = {}
        self.last_curves: dict[str, Any] = {}

        state.sessionChanged.connect(self._on_session)
        state.queryChanged.connect(self._on_query)
        state.kChanged.connect(lambda _k: self._on_query(state.query))
        state.targetChanged.connect(self._on_pair)
        state.explainSettingsChanged.connect(self._on_pair)
        state.curveSettingsChanged.connect(lambda _s: self.schedule_curve())
        state.explanationChanged.connect(lambda _e: self.schedule_curve())
        self.explain_channel.done.connect(self._on_slow_explanation)
        self.explain_channel.item.connect(self._on_explain_progress)
        self.explain_channel.failed.connect(lambda exc, _tb: self.explainFailed.emit(str(exc)))
        self.curve_channel.item.connect(self._on_curve_item)
        self.curve_channel.failed.connect(self._on_curve_failed)
        self.continuity_channel.item.connect(self.curves.add_continuity)
        self.continuity_channel.done.connect(self.curves.finish_continuity)
        self.continuity_channel.failed.connect(lambda exc, _tb: self.curves.contStatus.setText(f"failed: {exc}"))
        self.curves.currentChanged.connect(lambda _i: self.start_continuity())
        self.oracle_channel.item.connect(self._on_oracle_item)
        self.oracle_channel.failed.connect(self._on_oracle_failed)
        self.curves.oracleButton.clicked.connect(self.toggle_oracle)

    # -- session / query ---------------------------------------------------------------------------
    def _on_session(self, session: Any) -> None:
        self.cancel_all()
        self._random_cache.clear()
        self.curves.reset(None)
        self.curves.reset_continuity(None)
        if session is None:
            return
        changes: dict[str, Any] = {}
        try:
            changes["xi1"] = round(float(session.suggested_xi1()), 2)
        except Exception as exc:  # noqa: BLE001 - a suggestion is optional
            log.warning("no suggested ξ1: %s", exc)
        methods = list(session.methods())
        if methods and self.state.explain.method not in methods:
            changes["method"] = methods[0]
        if changes:
            self.state.update_explain(**changes)

    def _on_query(self, query: Any) -> None:
        session = self.state.session
        if session is None or query is None:
            self.state.set_retrievals(None)
            self._on_pair()
            return
        retrievals = session.retrieve(query.key, k=self.state.k)
        self.state.set_retrievals(retrievals)
        if self.auto_open_top and retrievals.similar:
            self.state.set_target(int(retrievals.similar[0].id))
        else:
            self._on_pair()

    # -- explanation -------------------------------------------------------------------------------
    def _on_pair(self, *_: Any) -> None:
        st = self.state
        self._curve_timer.stop()
        self.curve_channel.cancel()
        self.continuity_channel.cancel()
        self.cancel_oracle()
        self.last_curves = {}
        if st.session is None or st.query is None or st.target is None:
            self.explain_channel.cancel()
            st.set_explanation(None)
            self.curves.reset(None)
            return
        s = st.explain
        if runs_on_gui_thread(st.session, s.method):
            self.explain_channel.cancel()
            try:
                expl = st.session.explain(st.query.key, st.target, s.method, **s.kwargs())
            except Exception as exc:  # noqa: BLE001 - shown in the UI, logged
                log.exception("explain failed")
                st.set_explanation(None)  # never leave the previous pair's heat under the new pair
                self.explainFailed.emit(str(exc))
                return
            st.set_explanation(expl)
        else:
            st.set_explanation(None)  # never show the previous pair's heat under the new pair
            self.curves.reset(s.method, st.curve.steps, f"{s.method}: computing the explanation (runs the model)…")
            self.explain_channel.start(
                lambda sess=st.session, q=st.query.key, t=st.target, m=s.method, kw=s.kwargs():
                sess.iter_explain(q, t, m, **kw)
            )

    def _on_explain_progress(self, item: Any) -> None:
        message = getattr(item, "message", "")
        if message:
            self.curves.status.setText(f"computing the explanation: {message}")

    def _on_slow_explanation(self, expl: Any) -> None:
        self.state.set_explanation(expl)

    # -- curves ------------------------------------------------------------------------------------
    def schedule_curve(self) -> None:
        self._curve_timer.stop()
        self.curve_channel.cancel()
        self.cancel_oracle()
        self.last_curves = {}
        st = self.state
        if st.explanation is None:
            return
        self.curves.reset(st.explain.method, st.curve.steps, "waiting…")
        self._curve_timer.start(self.curve_delay_ms)

    def start_curve(self) -> int | None:
        """Start the current pair's curves now; returns the job's generation."""
        st = self.state
        if st.session is None or st.query is None or st.target is None or st.explanation is None:
            return None
        cs = st.curve
        key = (self._query_key(), st.target, cs.steps, cs.perturbation, cs.seed, st.explain.xi1, cs.order,
               getattr(st.explanation, "target", "decision"))
        cached = self._random_cache.get(key)
        self.curves.reset(st.explain.method, cs.steps, "computing…")
        self.curves.set_pair_type(bool(st.explanation.similar))
        self.curves.set_order(cs.order)
        self._random_points = []
        self._curves = {}
        self._random_key = key
        sess, q, t, e, xi1 = st.session, st.query.key, st.target, st.explanation, st.explain.xi1
        gen = self.curve_channel.start(
            lambda: pair_curves(sess, q, t, e, cs.steps, cs.perturbation, cs.seed, cached, xi1, cs.order))
        self.start_continuity()
        return gen

    def _query_key(self) -> Any:
        q = self.state.query
        return ("id", q.id) if q.id is not None else ("path", str(q.path))

    def _on_curve_item(self, item: tuple[str, Any]) -> None:
        tag, value = item
        if tag.endswith("-done"):
            base = tag[: -len("-done")]
            self._curves[base] = value
            self.curves.finish(base, value)
            if base == "random":
                self._random_cache[self._random_key] = (list(self._random_points), value)
            if {"method", "random"} <= self._curves.keys():
                self.last_curves = dict(self._curves)
                self.curves.status.setText(self._summary())
                self.curveFinished.emit(self.last_curves)
            return
        if tag == "random":
            self._random_points.append(value)
        self.curves.add_point(tag, value)

    def _summary(self) -> str:
        parts = []
        for tag in ("method", "random"):
            c = self._curves.get(tag)
            auc = getattr(c, "auc", None)
            name = self.state.explain.method if tag == "method" else "random"
            if auc is not None:
                parts.append(f"{name} AUC {float(auc):.3f}")
        perturb = self.state.curve.perturbation
        return " · ".join(parts) + f"   ({self.state.curve.steps} steps, {perturb} perturbation)"

    def _on_curve_failed(self, exc: Any, _tb: str) -> None:
        self.curves.status.setText(f"curve failed: {exc}")

    # -- the oracle (on request) -------------------------------------------------------------------
    def toggle_oracle(self) -> int | None:
        """Start the oracle's curve for the current pair, or cancel it if it is running."""
        if self.oracle_channel.is_busy():
            self.cancel_oracle()
            self.curves.status.setText("oracle cancelled")
            return None
        return self.start_oracle()

    def start_oracle(self) -> int | None:
        st = self.state
        if st.session is None or st.query is None or st.target is None or st.explanation is None:
            return None
        cs = st.curve
        self.curves.reset_oracle(running=True)
        sess, q, t, e = st.session, st.query.key, st.target, st.explanation
        return self.oracle_channel.start(lambda: oracle_curve(sess, q, t, e, cs.steps, cs.perturbation, cs.seed, cs.order))

    def cancel_oracle(self) -> None:
        if self.oracle_channel.is_busy():
            self.oracle_channel.cancel()
        self.curves.reset_oracle(running=False)

    def _on_oracle_item(self, item: tuple[str, Any]) -> None:
        tag, value = item
        if tag == "oracle-progress":
            self.curves.status.setText(f"oracle (greedy, {value.total} candidate forwards): {value.message} "
                                       f"{value.done}/{value.total}")
        elif tag == "oracle-done":
            self.curves.finish("oracle", value)
            self.curves.reset_oracle(running=False, keep=True)
            self.last_curves = {**self.last_curves, "oracle": value}
            self.curves.status.setText(self._summary() + (f" · oracle AUC {value.auc:.3f}" if value is not None else ""))
        else:
            self.curves.add_point("oracle", value)

    def _on_oracle_failed(self, exc: Any, _tb: str) -> None:
        self.curves.reset_oracle(running=False, keep=True)
        self.curves.status.setText(f"oracle failed: {exc}")

    # -- continuity --------------------------------------------------------------------------------
    def start_continuity(self) -> int | None:
        st = self.state
        if self.curves.currentIndex() != 1 or st.session is None or st.query is None or st.target is None:
            return None
        method = st.explain.method
        self.curves.reset_continuity(method, "computing…")
        kw = {k: v for k, v in st.explain.kwargs().items() if k in ("p", "xi1")}
        sess, q, t = st.session, st.query.key, st.target
        return self.continuity_channel.start(lambda: sess.iter_continuity(q, t, method, **kw))

    # -- shutdown ----------------------------------------------------------------------------------
    def cancel_all(self) -> None:
        self._curve_timer.stop()
        for ch in (self.curve_channel, self.explain_channel, self.continuity_channel, self.oracle_channel):
            ch.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        self._curve_timer.stop()
        ok = True
        for ch in (self.curve_channel, self.explain_channel, self.continuity_channel, self.oracle_channel):
            ok = ch.shutdown(timeout_ms) and ok
        return ok
