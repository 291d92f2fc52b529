"""The pair figure: two originals with their heat maps, the ξ2 masks, the decoder's reconstructions,
the pixel-flipping curve and a caption with every setting used. Qt-free (matplotlib Agg, no pyplot).

Heat maps live in the model-input frame; they are drawn inside the crop box of each original
(:func:`lfs_gui.figures.overlay.heat_to_original`), never stretched over the whole image. The crop
box is outlined (dashed) when it does not cover the whole image. The same helpers
(:func:`check_figure_suffix`, :func:`write_figure`, :func:`overlay_rgb`) serve the retrieval sheet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.figures.overlay import blend, heat_to_original, mask_to_original
from lfs_gui.jobs import atomic_path

log = logging.getLogger(__name__)

FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
PANEL_INCHES = 2.6  # side of one image panel


def check_figure_suffix(path: str | Path) -> str:
    """matplotlib format for ``path``'s suffix; ``ValueError`` naming the supported ones otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(f"{path}: unsupported figure format {suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join(FIGURE_FORMATS)}")
    return FIGURE_FORMATS[suffix]


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def write_figure(fig: Any, path: str | Path, dpi: int) -> Path:
    """Save ``fig`` to ``path`` (format by suffix) atomically; the figure size is kept exactly."""
    path = Path(path)
    fmt = check_figure_suffix(path)
    meta = {"Creator": "lfs-gui"} if fmt in ("png", "pdf", "svg") else None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
    log.info("figure written to %s", path)
    return path


def load_original(session: Any, query: Any) -> Any:
    """The original RGB image of a gallery id or external path (``ImageError`` naming the file)."""
    from lfs_gui.data.images import open_image

    return open_image(session.image_path(query))


def overlay_rgb(img: Any, heat: np.ndarray | None, preprocessing: Any, cmap: str = "jet", alpha: float = 0.5,
                mask: np.ndarray | None = None) -> np.ndarray:
    """``img`` with ``heat`` (model-input frame) blended inside its crop box; plain image when ``heat`` is None."""
    if heat is None:
        return np.asarray(img.convert("RGB"))
    w, h = img.size
    heat_o = heat_to_original(heat, preprocessing, w, h)
    m = mask_to_original(mask, preprocessing, w, h) if mask is not None else None
    return blend(img, heat_o, alpha=alpha, cmap=cmap, mask=m)


def mask_rgb(img: Any, mask: np.ndarray | None, preprocessing: Any, dim: float = 0.25) -> np.ndarray:
    """``img`` with the pixels outside the ξ2 mask (mapped through the crop box) darkened."""
    base = np.asarray(img.convert("RGB"), dtype=np.float32)
    if mask is None:
        return base.astype(np.uint8)
    w, h = img.size
    m = mask_to_original(mask, preprocessing, w, h)
    out = np.where(m[..., None], base, base * dim)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def draw_crop_box(ax: Any, preprocessing: Any, width: int, height: int) -> None:
    """Outline the model's crop box on an original-image axis when it is smaller than the image."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = preprocessing.crop_box(width, height)
    if x0 <= 0.5 and y0 <= 0.5 and x1 >= width - 0.5 and y1 >= height - 0.5:
        return
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.8, ec="white"))


def image_axis(ax: Any, rgb: np.ndarray, title: str, color: str | None = None) -> None:
    ax.imshow(rgb, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    if color is not None:
        for sp in ax.spines.values():
            sp.set_edgecolor(color)
            sp.set_linewidth(3)


def describe_image(session: Any, query: Any) -> str:
    """``#12 (birds)`` for a gallery id, the file name for an external image."""
    if isinstance(query, (int, np.integer)):
        cls = session.class_of(int(query))
        return f"#{int(query)}" + (f" ({cls})" if cls else "")
    return Path(query).name


def pair_caption(session: Any, query: Any, target: Any, explanation: Any, curve: Any = None) -> str:
    """Similarity, decision and every setting used (method, p, ξ1, ξ2, perturbation, steps, seed)."""
    st = dict(explanation.settings or {})
    sim, similar = float(explanation.similarity), bool(explanation.similar)
    xi1 = st.get("xi1")
    parts = [f"query {describe_image(session, query)} vs target {describe_image(session, target)}: "
             f"cosine similarity {sim:.4f} → {'SIMILAR' if similar else 'DISSIMILAR'}"
             + (f" (ξ1 = {float(xi1):g})" if xi1 is not None else "")]
    cfg = [f"method {explanation.method}"]
    for key, name in (("p", "p"), ("xi1", "ξ1"), ("xi2", "ξ2"), ("seed", "map seed")):
        if key in st and st[key] is not None:
            cfg.append(f"{name} {st[key]:g}" if isinstance(st[key], (int, float)) else f"{name} {st[key]}")
    dec = getattr(session, "decoder", None)
    if dec is not None:
        cfg.append(f"decoder {getattr(dec, 'kind', '?')}{getattr(dec, 'size', '')}")
    cfg.append(f"model {session.model_info.get('name', '?')}")
    lines = [parts[0], "; ".join(cfg)]
    if curve is not None:
        cs = dict(curve.settings or {})
        lines.append("curve: " + "; ".join(f"{k} {cs[k]}" for k in ("perturbation", "mode", "steps", "superpixel", "seed")
                                           if k in cs) + f"; AUC {float(curve.auc):.4f} ({curve.direction})")
    return "\n".join(lines)


def save_pair_figure(path: str | Path, session: Any, query: Any, target: int, explanation: Any,
                     curve: Any = None, random_curve: Any = None, dpi: int = 200, cmap: str = "jet",
                     alpha: float = 0.5, extra_rows: Sequence[tuple[str, str, np.ndarray, np.ndarray]] = (),
                     decorate: Callable[[Any, dict[str, Any]], None] | None = None) -> Path:
    """Write the pair figure to ``path`` (PNG at ``dpi``, SVG or PDF by suffix); returns the path.

    Columns: query, target (and the curve when given). Rows: heat overlay, ξ2 mask, decoder
    reconstruction (when the explanation has them), then ``extra_rows`` ``(query title, target title,
    query RGB, target RGB)`` (e.g. SANE's attribute maps). Caption: similarity, decision, all settings.
    ``decorate(fig, axes)`` draws on top before saving (``axes``: ``query_heat``, ``target_heat``,
    ``query_mask``, ``target_mask``; e.g. correspondence lines, :mod:`lfs_gui.figures.correspondence`).
    """
    from lfs_gui.figures.curves import draw_curve

    path = Path(path)
    check_figure_suffix(path)
    pre = session.preprocessing
    imgs = [load_original(session, query), load_original(session, target)]
    heats = [explanation.heat1, explanation.heat2]
    masks = [explanation.mask1, explanation.mask2]
    recons = [explanation.recon1, explanation.recon2]
    has_recon = any(r is not None for r in recons)
    base_rows = 3 if has_recon else 2
    rows, cols = base_rows + len(extra_rows), 3 if curve is not None else 2
    caption_h = 0.75 if curve is None else 0.95
    fig = new_figure(PANEL_INCHES * (2 if curve is None else 3.25) + (0.6 if curve is not None else 0), PANEL_INCHES * rows + caption_h)
    gs = fig.add_gridspec(rows, cols, left=0.03, right=0.98, top=1 - 0.25 / fig.get_figheight(),
                          bottom=(caption_h + 0.05) / fig.get_figheight(), hspace=0.22,
                          wspace=0.12 if curve is None else 0.45, width_ratios=[1.0, 1.0, 1.25][:cols])
    xi2 = explanation.settings.get("xi2", "?")
    axes: dict[str, Any] = {}
    for c, (img, heat, mask, recon, q) in enumerate(zip(imgs, heats, masks, recons, (query, target))):
        who = "query" if c == 0 else "target"
        ax = fig.add_subplot(gs[0, c])
        image_axis(ax, overlay_rgb(img, heat, pre, cmap=cmap, alpha=alpha), f"{who} {describe_image(session, q)}: heat")
        draw_crop_box(ax, pre, *img.size)
        axes[f"{who}_heat"] = ax
        ax = fig.add_subplot(gs[1, c])
        axes[f"{who}_mask"] = ax
        image_axis(ax, mask_rgb(img, mask, pre), f"{who}: mask (heat > ξ2 = {xi2})"
                   + ("" if mask is None else f", {100 * float(np.mean(mask)):.0f}%"))
        draw_crop_box(ax, pre, *img.size)
        if has_recon:
            ax = fig.add_subplot(gs[2, c])
            if recon is not None:
                rgb = np.clip(np.asarray(recon, np.float32).transpose(1, 2, 0), 0, 1)
                image_axis(ax, rgb, f"{who}: decoder g(h) ({rgb.shape[0]} px, model view)")
            else:
                ax.set_axis_off()
        for r, row in enumerate(extra_rows):
            ax = fig.add_subplot(gs[base_rows + r, c])
            image_axis(ax, row[2 + c], row[c])
            draw_crop_box(ax, pre, *img.size)
    if curve is not None:
        ax = fig.add_subplot(gs[:, 2])
        draw_curve(ax, curve, label=explanation.method, random_curve=random_curve)
    if decorate is not None:
        decorate(fig, axes)
    fig.text(0.02, 0.08 / fig.get_figheight(), pair_caption(session, query, target, explanation, curve),
             fontsize=7, va="bottom", ha="left", wrap=True)
    return write_figure(fig, path, dpi)
