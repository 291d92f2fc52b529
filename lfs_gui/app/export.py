"""Export actions: build a job (a generator factory) that calls the Qt-free figure functions.

The figures are written by :mod:`lfs_gui.figures` (matplotlib, no Qt) in a worker thread, from a
snapshot of the state taken when the user asked, so a click during the export changes nothing in it.
Each job yields Progress at its cancel points: before drawing, and for the retrieval sheet after each
retrieval's explanation (:func:`lfs_gui.figures.iter_retrieval_sheet` explains them one by one).
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


def view_spec(state: ViewerState, **options: Any) -> Any:
    """The figure's :class:`~lfs_gui.figures.ViewSpec` from what the window shows (colormap, opacity,
    mask view) plus the export dialog's ``options`` (size, dpi)."""
    from lfs_gui.figures import ViewSpec

    v = state.view
    return ViewSpec(cmap=v.cmap, opacity=v.opacity, mask_view=v.mask_only, **options)


def export_job(what: str, path: Path, state: ViewerState, curves: dict[str, Any], match: Any = None,
               **options: Any) -> ExportJob:
    """A factory for the export job; raises ``ValueError`` (shown to the user) when nothing fits.
    ``options`` (``size``, ``dpi``, ...) complete the window's view into the figure's ViewSpec; ``match``
    (the pair view's :class:`~lfs_gui.match_state.MatchState`) adds its point, lines and attribute."""
    session, query, target, expl = state.session, state.query, state.target, state.explanation
    suffix = path.suffix.lower()
    if session is None or query is None:
        raise ValueError("Pick a query first.")
    if what == "pair":
        if target is None or expl is None:
            raise ValueError("Click a retrieval to open a pair first.")
        if suffix not in FIGURE_SUFFIXES:
            raise ValueError(f"{path.name}: use .png, .svg or .pdf")
        spec = view_spec(state, **options)
        snap = None if match is None else {k: getattr(match, k) for k in
                                           ("enabled", "point", "lines", "correspondence", "attributes", "attribute")}

        def run() -> Generator[Progress, None, str]:
            yield Progress(0, 1, f"drawing {path.name}")
            from dataclasses import replace

            from lfs_gui import figures

            data = figures.PairData.from_session(session, query.key, target, expl, curves)
            fig_spec = spec
            if snap is not None:  # the match tools' point, lines and attribute (issue 12)
                from lfs_gui.figures.correspondence import window_extras

                ex, fig_spec, rows = window_extras(snap, expl, spec, session.preprocessing, tuple(s.size for s in data.sources))
                data = replace(data, explanation=ex, extra_rows=rows)
            figures.save_pair_figure(path, data, fig_spec)
            return str(path)

        return run
    if what == "sheet":
        if state.retrievals is None:
            raise ValueError("Pick a query first.")
        if suffix not in FIGURE_SUFFIXES:
            raise ValueError(f"{path.name}: use .png, .svg or .pdf")
        retrievals, method, settings = state.retrievals, state.explain.method, state.explain.kwargs()
        spec = view_spec(state, **options)

        def run() -> Generator[Progress, None, str]:
            from lfs_gui import figures

            return str((yield from figures.iter_retrieval_sheet(path, session, query.key, retrievals, method, settings, spec)))

        return run
    if what == "curve":
        curve = curves.get("method") if curves else None
        if curve is None:
            raise ValueError("Wait for the pixel-flipping curve to finish first.")
        if suffix not in DATA_SUFFIXES:
            raise ValueError(f"{path.name}: use .csv or .json")
        spec = view_spec(state, **options)

        def run() -> Generator[Progress, None, str]:
            yield Progress(0, 1, f"writing {path.name}")
            from lfs_gui import figures

            data = figures.PairData.from_session(session, query.key, target, expl, curves)
            figures.save_curve_data(path, data.curves, data.context(spec), labels={"method": state.explain.method})
            return str(path)

        return run
    raise ValueError(f"unknown export {what!r}")

