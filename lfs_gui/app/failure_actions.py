"""The window's failure finder: the Failures tab, the failure triplet, and their exports.

Every query's AP and R@1 (:mod:`lfs_gui.index.failures`) are computed in a worker the first time
the Failures tab is shown for a labelled gallery (or on *Find failures*). Clicking a failure makes
it the query (so the Pair tab shows it against its wrong top-1) and opens the **Failure triplet**
tab: both pairs explained with the window's method and settings, and both pixel-flipping curves,
in one worker job that a new click or a settings change replaces. The failure sheet and the
per-query CSV are written in the window's export channel. Core modules are imported inside the
jobs, never at window construction (torch stays off the first paint).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from lfs_gui.app.controller import _relay
from lfs_gui.app.widgets.failures import FailuresPanel
from lfs_gui.app.widgets.triplet import TripletView
from lfs_gui.app.workers import JobChannel
from lfs_gui.jobs import Progress

log = logging.getLogger(__name__)


def scores_job(session: Any) -> Generator[Progress, None, tuple[Any, Any]]:
    """Every query's AP / R@1 of ``session``'s gallery; returns ``(GalleryArrays, QueryScores)``."""
    from lfs_gui.index.compare import GalleryArrays
    from lfs_gui.index.failures import iter_query_scores

    gal = GalleryArrays.from_gallery(session.embeddings, session.gallery, session.name)
    gal.check_labelled()
    scores = yield from iter_query_scores(gal.embeddings, gal.labels)
    return gal, scores


def triplet_job(session: Any, query: int, wrong: int, correct: int, method: str, settings: dict,
                curve: Any) -> Generator[tuple[str, Any], None, None]:
    """Explain (query, wrong) and (query, correct) with the same method and settings, then stream both
    curves: yields ``("progress", Progress)``, ``("expl", (wrong_pair, right_pair))``, ``(tag, CurvePoint)``
    and ``(tag + "-done", Curve)`` for tags ``wrong`` and ``right``."""
    ex_w = yield from _relay("progress", session.iter_explain(query, wrong, method, **settings))
    ex_r = None
    if correct >= 0:
        ex_r = yield from _relay("progress", session.iter_explain(query, correct, method, **settings))
    yield ("expl", (ex_w, ex_r))
    for tag, other, ex in (("wrong", wrong, ex_w), ("right", correct, ex_r)):
        if ex is None:
            continue
        c = yield from _relay(tag, session.iter_curve(query, other, ex, steps=curve.steps,
                                                      perturbation=curve.perturbation, seed=curve.seed))
        yield (f"{tag}-done", c)


class FailureActions(QObject):
    """See module docstring. Owns the Failures panel, the triplet view and their job channels."""

    tripletFinished = Signal(object)  # {"wrong": Curve, "right": Curve}

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.state = window.state
        self.panel = FailuresPanel()
        self.view = TripletView()
        window.leftTabs.addTab(self.panel, "Failures")
        window.pairTabs.addTab(self.view, "Failure triplet")
        self.scores_channel = window.register_channel(JobChannel("failures", self), "Could not find the failures")
        self.triplet_channel = JobChannel("triplet", self)
        self.gal: Any = None
        self.scores: Any = None
        self.curves: dict[str, Any] = {}
        self._query: int | None = None

        self.panel.computeRequested.connect(self.compute)
        self.panel.failureActivated.connect(self.open_failure)
        self.panel.exportSheetRequested.connect(lambda: self.export_sheet())
        self.panel.exportCsvRequested.connect(lambda: self.export_csv())
        self.scores_channel.done.connect(self._on_scores)
        self.triplet_channel.item.connect(self._on_triplet_item)
        self.triplet_channel.failed.connect(lambda exc, _tb: self.view.info.setText(f"triplet failed: {exc}"))
        window.leftTabs.currentChanged.connect(lambda _i: self._maybe_compute())
        self.state.sessionChanged.connect(self._on_session)
        self.state.explainSettingsChanged.connect(lambda _s: self._restart())
        self.state.curveSettingsChanged.connect(lambda _s: self._restart())
        self.state.viewSettingsChanged.connect(lambda v: self.view.set_view(v.cmap, v.opacity))

    # -- scores -------------------------------------------------------------------------------------
    def _on_session(self, session: Any) -> None:
        for ch in (self.scores_channel, self.triplet_channel):
            ch.cancel()
        self.gal = self.scores = None
        self._query = None
        self.panel.set_scores(None, None)
        if session is not None and not session.gallery.has_labels:
            self.panel.summary.setText("This gallery has no classes: failures need a labelled gallery.")
        self.panel.computeButton.setEnabled(session is not None and session.gallery.has_labels)
        self._maybe_compute()

    def _maybe_compute(self) -> None:
        """Compute when the Failures tab is showing and nothing is computed or running yet."""
        session = self.state.session
        if (self.window.leftTabs.currentWidget() is self.panel and session is not None and self.scores is None
                and session.gallery.has_labels and not self.scores_channel.is_busy()):
            self.compute()

    def compute(self) -> int | None:
        """Start computing every query's AP and R@1; returns the job's generation."""
        session = self.state.session
        if session is None:
            return None
        self.panel.summary.setText("scoring every query against the gallery…")
        return self.scores_channel.start(lambda s=session: scores_job(s))

    def _on_scores(self, result: tuple[Any, Any]) -> None:
        self.gal, self.scores = result
        self.panel.set_scores(self.scores, self.gal)

    # -- the triplet --------------------------------------------------------------------------------
    def open_failure(self, query: int) -> None:
        """Make the failing ``query`` the window's query and show its triplet."""
        self.window.select_query(int(query))
        self.window.pairTabs.setCurrentWidget(self.view)
        self._query = int(query)
        self._restart()

    def _restart(self) -> None:
        session, s, q = self.state.session, self.scores, self._query
        if session is None or s is None or q is None:
            return
        wrong, correct = int(s.top1[q]), int(s.correct[q])
        cls = self.panel.class_label
        text = (f"query <b>#{q}</b> {cls(int(s.labels[q]))} · wrong top-1 <b style='color:#d0312d'>#{wrong}</b> "
                f"{cls(int(s.labels[wrong]))} s = {s.top1_score[q]:.3f}")
        if correct >= 0:
            text += (f" · nearest same class <b style='color:#2e9d3a'>#{correct}</b> s = {s.correct_score[q]:.3f}, "
                     f"rank {int(s.correct_rank[q])} · margin <b>{float(s.margin[q]):+.3f}</b>")
        else:
            text += " · no other image of its class"
        es = self.state.explain
        text += f" · {es.method}"
        self.view.show_triplet(session, q, wrong, correct, text)
        self.curves = {}
        st, curve = es.kwargs(), self.state.curve
        self.triplet_channel.start(lambda: triplet_job(session, q, wrong, correct, es.method, st, curve))

    def _on_triplet_item(self, item: tuple[str, Any]) -> None:
        tag, value = item
        if tag == "expl":
            self.view.set_view(self.state.view.cmap, self.state.view.opacity)
            self.view.set_explanations(*value)
        elif tag.endswith("-done"):
            self.curves[tag[:-5]] = value
            self.view.finish(tag[:-5], value)
            want = {"wrong", "right"} if self.view.triplet and self.view.triplet[2] >= 0 else {"wrong"}
            if want <= self.curves.keys():
                self.tripletFinished.emit(dict(self.curves))
        elif tag in ("wrong", "right"):
            self.view.add_point(tag, value)

    # -- exports ------------------------------------------------------------------------------------
    def export_sheet(self, path: str | Path | None = None, count: int | None = None) -> int | None:
        """Write the worst ``count`` failures of the list (as filtered) as a sheet, in the export channel."""
        if self.scores is None:
            self.window.show_error("Export failed", "Find the failures first (the Failures tab).")
            return None
        ids = self.panel.visible_ids()[: count or self.panel.sheetCount.value()]
        if len(ids) == 0:
            self.window.show_error("Export failed", "No failures to draw with this class filter.")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.window, "Export the failure sheet", "failure_sheet.pdf",
                                                  "Figures (*.pdf *.png *.svg)")
            if not path:
                return None
        from lfs_gui.figures import check_figure_suffix

        try:
            check_figure_suffix(path)
        except ValueError as exc:
            self.window.show_error("Export failed", str(exc))
            return None
        session, scores, es = self.state.session, self.scores, self.state.explain
        method, settings, view = es.method, es.kwargs(), self.state.view

        def run() -> Generator[Progress, None, str]:
            from lfs_gui.figures.failure_sheet import iter_failure_sheet

            out = yield from iter_failure_sheet(path, session, scores, ids, method, settings, cmap=view.cmap,
                                                alpha=view.opacity)
            return str(out)

        return self.window.export_channel.start(run)

    def export_csv(self, path: str | Path | None = None) -> int | None:
        """Write every query's AP, R@1, top-1, nearest correct image and margin (CSV)."""
        if self.scores is None:
            self.window.show_error("Export failed", "Find the failures first (the Failures tab).")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.window, "Export the per-query table", "queries.csv",
                                                  "CSV (*.csv)")
            if not path:
                return None
        scores, gal = self.scores, self.gal

        def run() -> Generator[Progress, None, str]:
            from lfs_gui.index.failure_tables import write_query_csv

            yield Progress(0, 1, f"writing {Path(path).name}")
            return str(write_query_csv(path, scores, gal))

        return self.window.export_channel.start(run)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        self.triplet_channel.shutdown(timeout_ms)
