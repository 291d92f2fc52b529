"""The drawing pieces every figure is made of (pair figure, retrieval sheet, failure sheets).

* :class:`ImageSource`: a photo to draw, decoded at the size the page needs (JPEG draft mode, then
  Lanczos), never at full resolution: a 4000-px photo in a 1.5-inch panel at 300 DPI is embedded
  at 450 px, in PNG, SVG and PDF alike.
* :func:`heat_panel`: photo + heat map inside the model's crop box (optionally only where heat > ξ2),
  the area the model never saw greyed and hatched, the crop box outlined, optional coloured frame.
  Axes data coordinates are the *original* image's pixels, whatever size was embedded, so boxes,
  points and lines are placed in one frame.
* :func:`recon_panel`, :func:`add_colorbar`, :func:`draw_correspondence`, :func:`fit_text`.
Qt-free (matplotlib artists only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lfs_gui.figures.overlay import (
    Box,
    blend,
    box_covers,
    fit_image,
    fit_size,
    grey_unseen,
    heat_to_box,
    mask_to_box,
    scale_box,
)
from lfs_gui.figures.spec import Correspondence, ViewSpec

MATCH_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#17becf")


@dataclass(frozen=True, eq=False)
class ImageSource:
    """A photo to draw: a file decoded on demand (EXIF-upright, as the model saw it) or an image in memory."""

    size: tuple[int, int]  # (w, h) of the upright original: the frame of the crop box
    path: Path | None = None
    image: Image.Image | None = None

    @classmethod
    def from_path(cls, path: str | Path) -> "ImageSource":
        from lfs_gui.data.images import open_image, upright_size

        try:
            size = upright_size(path)
        except Exception:  # noqa: BLE001 - let the data layer name the file and the fix (ImageError)
            size = open_image(path).size
        return cls(size=size, path=Path(path))

    @classmethod
    def from_image(cls, image: Image.Image) -> "ImageSource":
        return cls(size=image.size, image=image.convert("RGB"))

    def load(self, max_w: float, max_h: float) -> Image.Image:
        """The photo fitted into ``max_w``×``max_h`` pixels (downsampled only, aspect kept)."""
        if self.image is not None:
            return fit_image(self.image, max_w, max_h)
        from lfs_gui.data.images import load_rgb

        need = fit_size(self.size, max_w, max_h)
        img = load_rgb(self.path, draft=max(need))  # type: ignore[arg-type]
        if img.size != self.size and img.size[0] * self.size[1] != img.size[1] * self.size[0]:
            img = img.resize(self.size)  # draft never changes the aspect; this is only a guard
        return fit_image(img, *need) if img.size != need else img


def axes_pixels(ax: Any, dpi: float) -> tuple[float, float]:
    """Width and height in pixels of ``ax``'s box when the figure is rendered at ``dpi``."""
    fig = ax.get_figure()
    pos = ax.get_position()
    w_in, h_in = fig.get_size_inches()
    return pos.width * w_in * dpi, pos.height * h_in * dpi


def fit_text(text: str, width_in: float, font_size: float) -> str:
    """``text`` shortened with an ellipsis to fit ``width_in`` inches at ``font_size`` points (DejaVu Sans
    averages ~0.55 em per character)."""
    room = max(4, int(width_in * 72 / (0.55 * font_size)))
    return text if len(text) <= room else text[: room - 1] + "…"


def _bare(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_linewidth(0.4)
        sp.set_edgecolor("0.6")


def set_frame(ax: Any, color: str | None, width: float = 2.0) -> None:
    """A coloured frame around an image panel (green/red for same/different class)."""
    if color is None:
        return
    for sp in ax.spines.values():
        sp.set_edgecolor(color)
        sp.set_linewidth(width)


def heat_panel(ax: Any, source: ImageSource, heat: np.ndarray | None, box: Box, spec: ViewSpec,
               mask: np.ndarray | None = None, title: str = "", frame: str | None = None) -> dict:
    """Draw ``source`` with ``heat`` (model-input frame) inside its crop ``box`` (original pixels).

    Returns ``{"embedded": (w, h), "box": box}``: the pixel size actually embedded and the box in
    the axes' data frame (original pixels).
    """
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path as MPath

    W, H = source.size
    need_w, need_h = axes_pixels(ax, spec.dpi)
    img = source.load(need_w, need_h)
    w, h = img.size
    b = scale_box(box, (W, H), (w, h))
    if heat is None:
        rgb = np.asarray(img.convert("RGB"))
    else:
        hm = heat_to_box(heat, b, w, h)
        m = mask_to_box(mask, b, w, h) if (spec.mask_view and mask is not None) else None
        rgb = blend(img, hm, alpha=spec.opacity, cmap=spec.cmap, mask=m)
    unseen = not box_covers(box, W, H)
    if spec.mark_unseen and unseen:
        rgb = grey_unseen(rgb, b)
    ax.imshow(rgb, extent=(0, W, H, 0), interpolation="none", resample=False)
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)
    _bare(ax)
    x0, y0, x1, y1 = box
    if spec.mark_unseen and unseen:
        outer = [(0, 0), (W, 0), (W, H), (0, H), (0, 0)]
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        inner = [(cx0, cy0), (cx0, cy1), (cx1, cy1), (cx1, cy0), (cx0, cy0)]
        codes = [MPath.MOVETO] + [MPath.LINETO] * 3 + [MPath.CLOSEPOLY]
        path = MPath(outer + inner, codes + codes)
        ax.add_patch(PathPatch(path, facecolor="none", edgecolor=(1, 1, 1, 0.75), hatch="////", lw=0,
                               gid="unseen-area", label="not seen by the model"))
    if spec.crop_box:
        lw = 0.8
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="0.1", lw=lw * 1.8, gid="crop-box-under"))
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=lw, ls=(0, (3, 2)),
                               gid="crop-box"))
    if title:
        w_in = ax.get_position().width * ax.get_figure().get_size_inches()[0]
        ax.set_title("\n".join(fit_text(t, w_in, spec.font_size) for t in title.split("\n")),
                     fontsize=spec.font_size, pad=2)
    set_frame(ax, frame)
    return {"embedded": (w, h), "box": box}


def recon_panel(ax: Any, recon: np.ndarray | None, title: str, font_size: float) -> None:
    """The decoder's reconstruction (3, S, S) in [0, 1], at its own resolution (no smoothing)."""
    if recon is None:
        ax.set_axis_off()
        return
    rgb = np.clip(np.asarray(recon, np.float32).transpose(1, 2, 0), 0, 1)
    ax.imshow(rgb, interpolation="none", resample=False)
    _bare(ax)
    ax.set_title(title, fontsize=font_size, pad=2)


def add_colorbar(fig: Any, cax: Any, spec: ViewSpec, xi2: float | None = None) -> Any:
    """A vertical colour bar of the heat scale (heat maps are normalised to [0, 1]); with the mask
    view, ξ2 is marked on it."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    sm = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=spec.cmap)
    cb = fig.colorbar(sm, cax=cax, ticks=[0, 0.5, 1])
    cb.ax.tick_params(labelsize=spec.font_size - 1, length=2, width=0.5, pad=1)
    cb.outline.set_linewidth(0.4)
    cb.set_label("relevance", fontsize=spec.font_size - 1, labelpad=1)
    cax.set_gid("colorbar")
    if spec.mask_view and xi2 is not None:
        cax.axhline(float(xi2), color="k", lw=0.8)
        cax.text(1.0, float(xi2), " ξ2", transform=cax.get_yaxis_transform(), fontsize=spec.font_size - 1,
                 va="center", ha="left")
    return cb


def to_original(points: np.ndarray, box: Box) -> np.ndarray:
    """Normalised model-input coordinates (u, v) -> original-image pixels through ``box``."""
    x0, y0, x1, y1 = box
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return np.stack([x0 + p[:, 0] * (x1 - x0), y0 + p[:, 1] * (y1 - y0)], axis=1)


def draw_correspondence(fig: Any, ax1: Any, ax2: Any, corr: Correspondence, box1: Box, box2: Box,
                        font_size: float) -> int:
    """Numbered points on both images, and (``style="lines"``) a line from each to its match across the
    panels. Returns the number of matches drawn."""
    from matplotlib.patches import ConnectionPatch

    if corr is None or len(corr) == 0:
        return 0
    p1, p2 = to_original(corr.points1, box1), to_original(corr.points2, box2)
    w = corr.weights
    wn = np.ones(len(p1)) if w is None or not np.ptp(w) else (w - w.min()) / np.ptp(w)
    for i, ((xa, ya), (xb, yb)) in enumerate(zip(p1, p2)):
        color = MATCH_COLORS[i % len(MATCH_COLORS)]
        size = 3.0 + 3.0 * float(wn[i])
        for ax, (x, y) in ((ax1, (xa, ya)), (ax2, (xb, yb))):
            ax.plot([x], [y], "o", ms=size, mfc=color, mec="white", mew=0.6, gid=f"match-point-{i}")
            if corr.style == "points" and len(p1) <= 12:
                ax.annotate(str(i + 1), (x, y), xytext=(2, 2), textcoords="offset points", color="white",
                            fontsize=font_size - 1, fontweight="bold")
        if corr.style == "lines":
            con = ConnectionPatch(xyA=(xa, ya), coordsA=ax1.transData, xyB=(xb, yb), coordsB=ax2.transData,
                                  color=color, lw=0.5 + 1.0 * float(wn[i]), alpha=0.9, gid=f"match-line-{i}")
            fig.add_artist(con)
    return len(p1)


def inches_to_frac(fig: Any, left: float, bottom: float, width: float, height: float) -> list[float]:
    """An axes rectangle given in inches from the figure's bottom-left corner, as figure fractions."""
    W, H = fig.get_size_inches()
    return [left / W, bottom / H, width / W, height / H]


def ceil_to(x: float, step: float = 0.01) -> float:
    return math.ceil(x / step) * step
