"""The retrieval sheet (the paper's Figs. 7–8): a query, its most similar and most dissimilar images.

Layout: the query on the left (spanning both rows); the top row holds the k most similar gallery
images, the bottom row the k most dissimilar, each with the heat map of the (query, retrieval) pair
on the retrieval (mapped through its crop box), its rank, cosine score and class, and a green
(same class as the query) or red (different class) frame; unlabelled pairs get no frame.
Qt-free (matplotlib Agg, no pyplot).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lfs_gui.figures.pair import (
    PANEL_INCHES,
    check_figure_suffix,
    describe_image,
    draw_crop_box,
    image_axis,
    load_original,
    new_figure,
    overlay_rgb,
    write_figure,
)

log = logging.getLogger(__name__)

SAME, DIFFERENT = "#1a9641", "#d7191c"


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
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


def save_retrieval_sheet(path: str | Path, session: Any, query: Any, retrievals: Any, method: str = "explainlfs",
                         settings: dict | None = None, dpi: int = 200, cmap: str = "jet", alpha: float = 0.5,
                         explanations: dict[int, Any] | None = None) -> Path:
    """Write the sheet for ``retrievals`` (a ``session.Retrievals``) to ``path`` (PNG/SVG/PDF by suffix).

    Each retrieval's heat map is ``explanations[id]`` when given (a background job computes them one by
    one, cancellable), else ``session.explain(query, id, method, **settings)``.
    """
    path = Path(path)
    check_figure_suffix(path)
    xi1, xi2, extra = _explain_settings(settings)
    rows = [("most similar", list(retrievals.similar)), ("most dissimilar", list(retrievals.dissimilar))]
    k = max(1, max(len(hits) for _, hits in rows))
    pre = session.preprocessing
    panel = PANEL_INCHES * 0.8
    caption_h = 0.55
    fig = new_figure(panel * (k + 1) + 0.3, panel * 2 + 0.65 + caption_h)
    h = fig.get_figheight()
    gs = fig.add_gridspec(2, k + 1, left=0.04, right=0.99, top=1 - 0.5 / h, bottom=(caption_h + 0.1) / h,
                          hspace=0.35, wspace=0.08)
    qimg = load_original(session, query)
    ax = fig.add_subplot(gs[:, 0])
    image_axis(ax, overlay_rgb(qimg, None, pre), f"query {describe_image(session, query)}")
    decisions: list[str] = []
    used: dict = {}
    for r, (row_name, hits) in enumerate(rows):
        for c, hit in enumerate(hits):
            ex = (explanations[int(hit.id)] if explanations is not None
                  else session.explain(query, int(hit.id), method, xi1=xi1, xi2=xi2, **extra))
            used = ex.settings
            img = load_original(session, int(hit.id))
            ax = fig.add_subplot(gs[r, c + 1])
            cls = session.class_of(int(hit.id)) or ""
            title = f"{'+' if r == 0 else '−'}{hit.rank}  s = {hit.score:.3f}\n#{int(hit.id)} {cls}".rstrip()
            image_axis(ax, overlay_rgb(img, ex.heat2, pre, cmap=cmap, alpha=alpha), title, frame_color(hit.same_class))
            draw_crop_box(ax, pre, *img.size)
            if c == 0:
                ax.set_ylabel(row_name, fontsize=9)
            decisions.append("S" if ex.similar else "D")
        if not hits:
            fig.add_subplot(gs[r, 1]).set_axis_off()
    shown = {key: used[key] for key in ("p", "xi1", "xi2", "seed") if key in used}
    caption = (f"{session.name}: model {session.model_info.get('name', '?')}; method {method}"
               + (f" ({_fmt_settings(shown)})" if shown else "")
               + f"; top row: {len(rows[0][1])} most similar, bottom row: {len(rows[1][1])} most dissimilar "
               "(rank, cosine score, id, class)\nframe: green = same class as the query, red = different class; "
               "heat maps drawn inside each image's crop box (dashed when smaller than the image)")
    fig.text(0.02, 0.08 / h, caption, fontsize=7, va="bottom", ha="left")
    log.debug("sheet decisions %s", "".join(decisions))
    return write_figure(fig, path, dpi)
