"""The failure sheet: the worst N retrieval failures of a model, one triplet per row.

Each row is a query whose top-1 neighbour is of another class (see :mod:`lfs_gui.index.failures`):
the query and its wrong top-1, then the query and its nearest same-class image, both pairs
explained with the same method and settings, so a reader sees what the model matched in the wrong
image and what it ignored in the right one. Panels are drawn by the pair figure's pieces
(:func:`lfs_gui.figures.panels.heat_panel`) as a :class:`~lfs_gui.figures.spec.ViewSpec` says: heat
inside each image's crop box, the unseen area hatched, photos embedded at the size the page needs; the
wrong image is framed red, the correct one green. The row title gives the margin
``s(wrong) - s(correct)`` and the rank of the nearest correct image. Qt-free (matplotlib Agg).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.figures.output import check_figure_suffix, new_figure, write_figure
from lfs_gui.figures.pair import describe_image, session_identity
from lfs_gui.figures.panels import ImageSource, heat_panel
from lfs_gui.figures.sheet import DIFFERENT, SAME, _explain_settings, _fmt_settings
from lfs_gui.figures.spec import ViewSpec
from lfs_gui.jobs import Progress, run_generator

PANEL_INCHES = 2.08

log = logging.getLogger(__name__)


def save_failure_sheet(path: str | Path, session: Any, scores: Any, ids: Sequence[int], method: str = "explainlfs",
                       settings: dict | None = None, dpi: int = 150, cmap: str = "jet", alpha: float = 0.5,
                       spec: ViewSpec | None = None) -> Path:
    """Write one row per failing query in ``ids`` (e.g. ``failure_ids(scores)[:N]``) to ``path``.

    ``scores`` is the :class:`~lfs_gui.index.failures.QueryScores` of ``session``'s gallery;
    ``settings`` (p, ξ1, ξ2, seed ...) go to ``session.explain`` for both pairs of every row.
    ``spec`` (default: ``dpi``, ``cmap``, ``alpha``) says how heat maps are drawn.
    """
    return run_generator(iter_failure_sheet(path, session, scores, ids, method, settings, dpi, cmap, alpha, spec))


def iter_failure_sheet(path: str | Path, session: Any, scores: Any, ids: Sequence[int], method: str = "explainlfs",
                       settings: dict | None = None, dpi: int = 150, cmap: str = "jet", alpha: float = 0.5,
                       spec: ViewSpec | None = None) -> Generator[Progress, None, Path]:
    """:func:`save_failure_sheet` as a job: yields Progress per row (each a cancel point; nothing is
    written when it is cancelled), returns the path."""
    spec = spec or ViewSpec(dpi=dpi, cmap=cmap, opacity=alpha)
    path = Path(path)
    check_figure_suffix(path)
    ids = [int(i) for i in ids]
    if not ids:
        raise ValueError("no failures to draw: every query's top-1 is of its own class")
    xi1, xi2, extra = _explain_settings(settings)
    pre = session.preprocessing
    panel = PANEL_INCHES
    caption_h = 0.5
    fig = new_figure(panel * 4 + 0.5, (panel + 0.55) * len(ids) + caption_h + 0.2)
    h = fig.get_figheight()
    gs = fig.add_gridspec(len(ids), 4, left=0.05, right=0.98, top=1 - 0.45 / h, bottom=(caption_h + 0.05) / h,
                          hspace=0.55, wspace=0.06)
    used: dict = {}
    for r, q in enumerate(ids):
        yield Progress(r, len(ids) + 1, f"failure sheet: row {r + 1} of {len(ids)}")
        wrong, correct = int(scores.top1[q]), int(scores.correct[q])
        qsrc = ImageSource.from_path(session.image_path(q))
        cols = [(wrong, DIFFERENT, f"wrong top-1 {describe_image(session, wrong)}\ns = {scores.top1_score[q]:.3f}")]
        if correct >= 0:
            cols.append((correct, SAME, f"nearest same class {describe_image(session, correct)}\n"
                                        f"s = {scores.correct_score[q]:.3f}, rank {int(scores.correct_rank[q])}"))
        for k, (other, color, title) in enumerate(cols):
            ex = session.explain(q, other, method, xi1=xi1, xi2=xi2, **extra)
            used = ex.settings
            ax = fig.add_subplot(gs[r, 2 * k])
            heat_panel(ax, qsrc, ex.heat1, pre.crop_box(*qsrc.size), spec, mask=getattr(ex, "mask1", None),
                       title=f"query {describe_image(session, q)}\n" + ("vs wrong" if k == 0 else "vs same class"))
            if k == 0:
                m = float(scores.margin[q])
                ax.set_ylabel(f"#{r + 1}  margin {m:+.3f}" if np.isfinite(m) else f"#{r + 1}", fontsize=8,
                              fontweight="bold")
            src = ImageSource.from_path(session.image_path(other))
            ax = fig.add_subplot(gs[r, 2 * k + 1])
            heat_panel(ax, src, ex.heat2, pre.crop_box(*src.size), spec, mask=getattr(ex, "mask2", None), title=title,
                       frame=color)
        if correct < 0:
            ax = fig.add_subplot(gs[r, 2:])
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no other image of this class", ha="center", va="center", fontsize=8)
    shown = {k: used[k] for k in ("p", "xi1", "xi2", "seed") if k in used}
    caption = (f"{session.name}: model {session.model_info.get('name', '?')}; method {method}"
               + (f" ({_fmt_settings(shown)})" if shown else "")
               + f"; the {len(ids)} failures with the largest margin s(wrong) - s(correct)\n"
               "each row: the query explained against its wrong top-1 (red), and against its nearest "
               f"same-class image (green)\n{spec.cmap} heat maps inside each image's crop box (dashed), "
               "hatched = not seen by the model")
    fig.text(0.02, 0.08 / h, caption, fontsize=7, va="bottom", ha="left")
    meta = {"failures": {"ids": ids, "method": method, "explanation": used}, "model": session_identity(session, 0, 0)["model"],
            "view": spec.describe()}
    yield Progress(len(ids), len(ids) + 1, f"writing {path.name}")
    return write_figure(fig, path, spec.dpi, title="lfs-gui failure sheet", caption=caption, settings=meta)
