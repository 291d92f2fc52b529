"""The retrieval sheet (the paper's Figs. 7–8): a query, its most similar and most dissimilar images.

Layout: the query on the left (centred on both rows); the top row holds the k most similar gallery
images, the bottom row the k most dissimilar, each with the heat map of the (query, retrieval) pair
on the retrieval drawn as the :class:`~lfs_gui.figures.spec.ViewSpec` says (colormap, opacity, mask
view, crop box, unseen area), its rank, cosine score and class, and a green (same class as the query)
or red (different class) frame; unlabelled pairs get no frame. A colour bar on the right, a caption
and the metadata with every setting. :func:`iter_retrieval_sheet` is a generator (one
:class:`~lfs_gui.jobs.Progress` per explained panel, plus the slow methods' own progress; every yield
is a cancel point), so the app runs it as a cancellable background job. Qt-free.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.figures.output import check_figure_suffix, new_figure, write_figure
from lfs_gui.figures.pair import describe_image, session_identity
from lfs_gui.figures.panels import ImageSource, add_colorbar, heat_panel, inches_to_frac
from lfs_gui.figures.spec import ViewSpec
from lfs_gui.jobs import Progress, run_generator

log = logging.getLogger(__name__)

SAME, DIFFERENT = "#1a9641", "#d7191c"
PT = 1.0 / 72.0


def frame_color(same_class: bool | None) -> str | None:
    """Green for same class, red for different, None when a label is missing."""
    return None if same_class is None else (SAME if same_class else DIFFERENT)


def _explain_settings(settings: dict | None) -> tuple[float | None, float, dict]:
    st = dict(settings or {})
    st.pop("method", None)
    xi1 = st.pop("xi1", None)
    xi2 = st.pop("xi2", 0.7)
    return (None if xi1 is None else float(xi1)), float(xi2), st


def _fmt_settings(d: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool))


def _relay(gen: Generator[Any, None, Any], done: int, total: int, prefix: str) -> Generator[Progress, None, Any]:
    """Re-yield a slow explainer's progress as the sheet's (same ``done``/``total``, its message
    appended), so a progress bar never runs backwards; every item stays a cancel point."""
    try:
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            msg = getattr(item, "message", "")
            yield Progress(done, total, f"{prefix}: {msg}" if msg else prefix)
    finally:
        gen.close()


def iter_retrieval_sheet(path: str | Path, session: Any, query: Any, retrievals: Any, method: str = "explainlfs",
                         settings: dict | None = None, spec: ViewSpec | None = None) -> Generator[Progress, None, Path]:
    """Explain every retrieval with ``method`` and write the sheet to ``path`` (PNG/SVG/PDF by suffix).

    Yields a :class:`Progress` per panel (and the slow methods' own progress); returns the path.
    Each retrieval's heat map is ``session.iter_explain(query, id, method, xi1=..., xi2=..., **settings)``.
    """
    path = Path(path)
    check_figure_suffix(path)
    spec = spec or ViewSpec()
    xi1, xi2, extra = _explain_settings(settings)
    rows = [("most similar", list(retrievals.similar)), ("most dissimilar", list(retrievals.dissimilar))]
    k = max(1, max(len(hits) for _, hits in rows))
    total = sum(len(h) for _, h in rows) + 1
    pre = session.preprocessing
    fs = spec.font_size
    W = spec.width_in
    ml, mr, g = 0.22, 0.04, 0.04
    cbw = (0.07 + 0.05 + 3.2 * (fs - 1) * PT) if spec.colorbar else 0.0
    P = (W - ml - mr - cbw - g * (k + 1)) / (k + 1)
    tfs = max(4.0, min(fs - 1, P * 72 / 9 / 0.55))  # titles shrink with very small panels
    th = 2 * 1.3 * tfs * PT
    sources: dict[Any, ImageSource] = {}

    def source(key: Any) -> ImageSource:
        if key not in sources:
            sources[key] = ImageSource.from_path(session.image_path(key))
        return sources[key]

    all_keys = [query] + [int(h.id) for _, hits in rows for h in hits]
    aspect = float(np.clip(np.median([source(q).size[1] / source(q).size[0] for q in all_keys]), 0.6, 1.4))
    Ph = P * aspect
    yield Progress(0, total, "retrieval sheet: laying out")
    head_h = 1.9 * fs * PT
    # caption is written after the panels (it names the settings actually used); reserve its room now
    cap_chars = max(20, int((W - 0.1) * 72 / (0.53 * (fs - 1))))
    cap_h = 4 * 1.22 * (fs - 1) * PT + 0.04
    H = 0.04 + head_h + 2 * (th + Ph) + g + 0.06 + cap_h + 0.03
    fig = new_figure(W, H, dpi=spec.dpi)
    top = H - 0.04 - head_h
    qname = describe_image(session, query)
    fig.text(ml / W, (H - 0.04 - head_h * 0.55) / H,
             f"query {qname}: {len(rows[0][1])} most similar (top) and {len(rows[1][1])} most dissimilar (bottom); "
             f"method {method}", fontsize=fs + 0.5, va="center", ha="left")
    qy = top - (2 * (th + Ph) + g) / 2 - Ph / 2
    ax = fig.add_axes(inches_to_frac(fig, ml, qy, P, Ph))
    qsrc = source(query)
    heat_panel(ax, qsrc, None, pre.crop_box(*qsrc.size), spec,
               title=f"query\n{qname}")
    ax.title.set_fontsize(tfs)
    yield Progress(1, total, "retrieval sheet: query")
    decisions: list[str] = []
    used: dict = {}
    done = 1
    for r, (row_name, hits) in enumerate(rows):
        y = top - th - Ph - r * (th + Ph + g)
        for c, hit in enumerate(hits):
            hid = int(hit.id)
            ex = yield from _relay(session.iter_explain(query, hid, method, xi1=xi1, xi2=xi2, **extra), done, total,
                                   f"retrieval sheet: {row_name} {c + 1}/{len(hits)}")
            used = dict(ex.settings)
            src = source(hid)
            ax = fig.add_axes(inches_to_frac(fig, ml + (c + 1) * (P + g), y, P, Ph))
            cls = session.class_of(hid) or ""
            title = f"{'+' if r == 0 else '−'}{hit.rank}  s={hit.score:.3f}".replace("=-", "=−") + f"\n#{hid} {cls}".rstrip()
            mask = getattr(ex, "mask2", None)
            heat_panel(ax, src, ex.heat2, pre.crop_box(*src.size), spec, mask=mask, title=title,
                       frame=frame_color(hit.same_class))
            ax.title.set_fontsize(tfs)
            if c == 0:
                ax.set_ylabel(row_name, fontsize=tfs)
            decisions.append("S" if ex.similar else "D")
            done += 1
            yield Progress(done, total, f"retrieval sheet: {row_name} {c + 1}/{len(hits)}")
    if spec.colorbar:
        cax = fig.add_axes(inches_to_frac(fig, W - mr - cbw, top - 2 * (th + Ph) - g + 0.1 * Ph, 0.07,
                                          2 * (th + Ph) + g - 0.2 * Ph - th))
        add_colorbar(fig, cax, spec, xi2=xi2)
    shown = {key: used[key] for key in ("p", "xi1", "xi2", "seed") if key in used}
    ident = session_identity(session, query, query)["model"]
    caption_text = (f"{ident.get('index', '?')}: model {ident.get('name', ident.get('source', '?'))}; method {method}"
                    + (f" ({_fmt_settings(shown)})" if shown else "")
                    + f"; rank, cosine score s, id and class above each image; frame: green = same class as the query, "
                    f"red = different class; view: {spec.cmap} colormap, opacity {spec.opacity:g}"
                    + (f", heat only where > ξ2 = {xi2:g}" if spec.mask_view else "")
                    + ("; dashed box = the model's crop; hatched = not seen by the model" if spec.mark_unseen else "")
                    + f"; decisions at ξ1: {''.join(decisions)} (S similar, D dissimilar).")
    lines = textwrap.wrap(caption_text, cap_chars)[:4]
    fig.text(0.05 / W, 0.03 / H, "\n".join(lines), fontsize=fs - 1, va="bottom", ha="left", linespacing=1.22,
             gid="caption")
    settings_meta = {"sheet": {"query": session_identity(session, query, query)["pair"]["query"], "method": method,
                               "explanation": used, "similar": [[int(h.id), h.rank, h.score, h.same_class] for h in rows[0][1]],
                               "dissimilar": [[int(h.id), h.rank, h.score, h.same_class] for h in rows[1][1]],
                               "decisions": "".join(decisions)},
                     "model": ident, "view": spec.describe()}
    yield Progress(total, total, "retrieval sheet: writing the file")
    return write_figure(fig, path, spec.dpi, title=f"lfs-gui retrieval sheet: query {qname}", caption=caption_text,
                        settings=settings_meta)


def save_retrieval_sheet(path: str | Path, session: Any, query: Any, retrievals: Any, method: str = "explainlfs",
                         settings: dict | None = None, spec: ViewSpec | None = None) -> Path:
    """The whole sheet at once (see :func:`iter_retrieval_sheet`)."""
    return run_generator(iter_retrieval_sheet(path, session, query, retrievals, method, settings, spec))
