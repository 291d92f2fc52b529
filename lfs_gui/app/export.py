"""Export actions: build a job (a generator factory) that calls the Qt-free figure functions.

The figures are written by :mod:`lfs_gui.figures` (matplotlib, no Qt) in a worker thread, from a
snapshot of the state taken when the user asked, so a click during the export changes nothing in it.
Each job yields Progress at its cancel points: before drawing, and for the retrieval sheet after each
retrieval's explanation (computed here, one by one, through ``Session.iter_explain``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from lfs_gui.jobs import Progress
from lfs_gui.viewer_state import ViewerState

FIGURE_SUFFIXES = {".png", ".svg", ".pdf"}
DATA_SUFFIXES = {".csv", ".json"}

ExportJob = Callable[[], Generator[Progress, None, str]]


def export_job(what: str, path: Path, state: ViewerState, curves: dict[str, Any]) -> ExportJob:
    """A factory for the export job; raises ``ValueError`` (shown to the user) when nothing fits."""
    session, query, target, expl = state.session, state.query, state.target, state.explanation
    suffix = path.suffix.lower()
    if session is None or query is None:
        raise ValueError("Pick a query first.")
    if what == "pair":
        if target is None or expl is None:
            raise ValueError("Click a retrieval to open a pair first.")
        if suffix not in FIGURE_SUFFIXES:
            raise ValueError(f"{path.name}: use .png, .svg or .pdf")
        curve = curves.get("method") if curves else None

        def run() -> Generator[Progress, None, str]:
            yield Progress(0, 1, f"drawing {path.name}")
            from lfs_gui import figures

            figures.save_pair_figure(path, session, query.key, target, expl, curve=curve)
            return str(path)

        return run
    if what == "sheet":
        if state.retrievals is None:
            raise ValueError("Pick a query first.")
        if suffix not in FIGURE_SUFFIXES:
            raise ValueError(f"{path.name}: use .png, .svg or .pdf")
        retrievals, method, settings = state.retrievals, state.explain.method, state.explain.kwargs()

        def run() -> Generator[Progress, None, str]:
            hits = [int(h.id) for h in (*retrievals.similar, *retrievals.dissimilar)]
            explanations: dict[int, Any] = {}
            for i, hit in enumerate(hits):
                yield Progress(i, len(hits) + 1, f"explaining retrieval {i + 1}/{len(hits)}")
                explanations[hit] = yield from _quiet(session.iter_explain(query.key, hit, method, **settings))
            yield Progress(len(hits), len(hits) + 1, f"drawing {path.name}")
            from lfs_gui import figures

            figures.save_retrieval_sheet(path, session, query.key, retrievals, method, settings,
                                         explanations=explanations)
            return str(path)

        return run
    if what == "curve":
        curve = curves.get("method") if curves else None
        if curve is None:
            raise ValueError("Wait for the pixel-flipping curve to finish first.")
        if suffix not in DATA_SUFFIXES:
            raise ValueError(f"{path.name}: use .csv or .json")
        settings = dict(getattr(curve, "settings", {}) or {})
        settings.update({"method": state.explain.method, **state.explain.kwargs()})

        def run() -> Generator[Progress, None, str]:
            yield Progress(0, 1, f"writing {path.name}")
            from lfs_gui import figures

            figures.save_curve_data(path, curve, settings)
            return str(path)

        return run
    raise ValueError(f"unknown export {what!r}")


def _quiet(gen: Generator[Any, None, Any]) -> Generator[None, None, Any]:
    """``gen``'s cancel points without its progress messages (the sheet job reports its own)."""
    try:
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value
            yield None
    finally:
        gen.close()
