"""The window's second model: open another index over the same gallery and compare.

*File ▸ Compare with a second index…* opens index B in a worker, checks that it covers the same
images as the open index A (matched by relative path; :class:`~lfs_gui.index.compare.GalleryMismatch`
says how many differ) and scores every query under both (:func:`lfs_gui.index.compare.iter_compare`).
Then a **Disagreements** tab lists the queries one model gets right and the other wrong, and a
**Two models** pair tab shows, for the current query, both models' retrievals with rank changes and
the current pair explained under both (a worker job per query/pair/settings change; a new one
replaces the old). Opening another session closes the comparison (B may not match it).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog

from lfs_gui.app.controller import _relay
from lfs_gui.app.widgets.failures import DisagreementsPanel
from lfs_gui.app.widgets.two_models import TwoModelsView
from lfs_gui.app.workers import JobChannel
from lfs_gui.jobs import Progress

log = logging.getLogger(__name__)


def compare_job(session_a: Any, path_b: str) -> Generator[Progress, None, tuple[Any, Any, Any]]:
    """Open index B, align it with A's gallery and score both; returns ``(session_b, Comparison, arrays_a)``."""
    from lfs_gui.index.compare import GalleryArrays, iter_compare
    from lfs_gui.session import Session

    session_b = yield from Session.iter_open_index(path_b)
    a = GalleryArrays.from_gallery(session_a.embeddings, session_a.gallery, session_a.name or "A")
    b = GalleryArrays.from_gallery(session_b.embeddings, session_b.gallery, session_b.name or "B")
    if a.name == b.name:
        b = GalleryArrays(b.embeddings, b.labels, b.relpaths, b.classes, name=f"{b.name} (B)")
    cmp = yield from iter_compare(a, b)
    return session_b, cmp, a


def two_models_job(a: Any, b: Any, perm: np.ndarray, inv: np.ndarray, query: Any, target: int | None,
                   method: str, settings: dict, k: int) -> Generator[tuple[str, Any], None, None]:
    """Model B's side of the current query and pair: yields ``("rows", dict)`` then ``("heat", HeatPair)``."""
    from lfs_gui.index.compare import rank_in
    from lfs_gui.session import is_gallery_id

    gid = is_gallery_id(query)
    qb = int(perm[int(query)]) if gid else query
    ret_a = a.retrieve(query, k)
    ret_b = b.retrieve(qb, k)
    row_a = a.embeddings @ a.vector(query)
    row_b = b.embeddings @ b.vector(qb)
    ids_a = np.array([h.id for h in ret_a.similar], np.int64)
    ids_b = inv[np.array([h.id for h in ret_b.similar], np.int64)]  # in A's numbering
    yield ("rows", {"ret_a": ret_a, "ret_b": ret_b, "ids_b": ids_b,
                    "rank_a_in_b": rank_in(row_b, perm[ids_a], exclude=qb if gid else None),
                    "rank_b_in_a": rank_in(row_a, ids_b, exclude=int(query) if gid else None)})
    if target is not None:
        st = {**settings, "xi1": b.suggested_xi1()}  # each model decides at its own ξ1
        ex = yield from _relay("progress", b.iter_explain(qb, int(perm[target]), method, **st))
        yield ("heat", ex)


class CompareActions(QObject):
    """See module docstring."""

    compared = Signal(object)  # Comparison
    updated = Signal()  # the Two models view shows the current query and pair under both models

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.state = window.state
        self.session_b: Any = None
        self.cmp: Any = None
        self.perm = self.inv = None
        self.panel = DisagreementsPanel(window)  # parented and hidden until a comparison adds their tabs
        self.view = TwoModelsView(window)
        self.panel.hide()
        self.view.hide()
        self.channel = window.register_channel(JobChannel("compare", self), "Could not compare the two indexes")
        self.view_channel = JobChannel("two-models", self)
        self.channel.done.connect(self._on_compared)
        self.view_channel.item.connect(self._on_view_item)
        self.view_channel.failed.connect(lambda exc, _tb: self.view.pairInfo.setText(f"model B: {exc}"))
        self.panel.disagreementActivated.connect(self.open_disagreement)
        self.view.targetRequested.connect(self.state.set_target)
        self.state.sessionChanged.connect(lambda _s: self.close_comparison())
        for sig in (self.state.queryChanged, self.state.targetChanged, self.state.explainSettingsChanged):
            sig.connect(lambda *_: self.update_view())
        self.state.explanationChanged.connect(self._on_explanation_a)
        self.state.viewSettingsChanged.connect(lambda v: self.view.set_view(v.cmap, v.opacity))
        window.thumbs.ready.connect(self._on_thumb)

    # -- opening B ----------------------------------------------------------------------------------
    def choose_second_index(self) -> None:
        if self.state.session is None:
            self.window.show_error("Nothing to compare", "Open an index (or the demo) first.")
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Second index over the same gallery", "",
                                              "lfs-gui index (*.json *.faiss *.index);;All files (*)")
        if path:
            self.open_second(path)

    def open_second(self, path: str) -> int | None:
        """Open index ``path`` as model B and compare it with the open session (a worker job)."""
        session = self.state.session
        if session is None:
            return None
        self.window.jobLabel.setText("opening the second index…")
        return self.channel.start(lambda a=session, p=str(path): compare_job(a, p))

    def _on_compared(self, result: tuple[Any, Any, Any]) -> None:
        self.session_b, self.cmp, gal = result
        self.perm = self.cmp.perm
        self.inv = np.empty_like(self.perm)
        self.inv[self.perm] = np.arange(len(self.perm))
        w = self.window
        if w.leftTabs.indexOf(self.panel) < 0:
            w.leftTabs.addTab(self.panel, "Two models")
            w.pairTabs.addTab(self.view, "Two models")
        self.panel.set_comparison(self.cmp, gal, (self.state.session.name, self.session_b.name))
        self.view.info.setText(f"A = <b>{self.state.session.name}</b> ({self.state.session.model_info.get('name', '?')})"
                               f" · B = <b>{self.session_b.name}</b> ({self.session_b.model_info.get('name', '?')}); "
                               "each tile: its rank under the other model")
        w.leftTabs.setCurrentWidget(self.panel)
        self.compared.emit(self.cmp)
        self.update_view()

    def close_comparison(self) -> None:
        """Forget model B (a new session A need not cover B's images) and remove its tabs."""
        self.channel.cancel()
        self.view_channel.cancel()
        self.session_b = self.cmp = self.perm = self.inv = None
        w = self.window
        for tabs, widget in ((w.leftTabs, self.panel), (w.pairTabs, self.view)):
            i = tabs.indexOf(widget)
            if i >= 0:
                tabs.removeTab(i)
                widget.hide()
        self.panel.set_comparison(None, None)

    # -- the current query under both models -------------------------------------------------------------
    def open_disagreement(self, query: int) -> None:
        self.window.select_query(int(query))
        self.window.pairTabs.setCurrentWidget(self.view)

    def update_view(self) -> int | None:
        st = self.state
        if self.session_b is None or st.session is None or st.query is None:
            return None
        self.view.show_pair(st.session, st.query.key, st.target)
        self.view.set_view(st.view.cmap, st.view.opacity)
        if st.explanation is not None:
            self.view.set_heat(0, st.explanation)
        a, b, perm, inv = st.session, self.session_b, self.perm, self.inv
        q, t, es, k = st.query.key, st.target, st.explain, st.k
        kw = {key: v for key, v in es.kwargs().items() if key != "xi1"}
        self.view.thumb = min(48, self.window.retrievals.thumb)
        return self.view_channel.start(lambda: two_models_job(a, b, perm, inv, q, t, es.method, kw, k))

    def _on_view_item(self, item: tuple[str, Any]) -> None:
        tag, value = item
        if tag == "rows":
            self.view.set_rows(self.state.session.gallery, value["ret_a"], value["ids_b"], value["ret_b"],
                               value["rank_a_in_b"], value["rank_b_in_a"], self.window.thumbs)
            if self.state.target is None:
                self.updated.emit()
        elif tag == "heat":
            self.view.set_heat(1, value)
            self.updated.emit()

    def _on_explanation_a(self, expl: Any) -> None:
        if self.session_b is not None and expl is not None:
            self.view.set_heat(0, expl)

    def _on_thumb(self, path: str) -> None:
        if self.session_b is not None and self.state.session is not None:
            self.view.refresh_thumb(self.state.session.gallery, path, self.window.thumbs)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        self.view_channel.shutdown(timeout_ms)
