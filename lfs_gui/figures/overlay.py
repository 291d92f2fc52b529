"""Heat maps onto original images: the one coordinate mapping, written once.

A heat map lives in the model-input frame (``crop(resize(original))``). To draw it on the original
image it is resampled into the crop box of that image (``Preprocessing.crop_box``); outside the box
there is no heat (NaN), never a stretched map. Qt-free: the GUI and the figure code both use this.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from lfs_gui.models.base import Preprocessing


def heat_to_original(heat: np.ndarray, preprocessing: Preprocessing, width: int, height: int) -> np.ndarray:
    """Map an S×S heat map onto a ``height``×``width`` original: float32, NaN outside the crop box."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heat must be 2-D, got shape {heat.shape}")
    x0, y0, x1, y1 = preprocessing.crop_box(width, height)
    out = np.full((height, width), np.nan, dtype=np.float32)
    # Integer pixel range of the original covered by the crop box (clipped to the image).
    ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    ix1, iy1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    # Sample the heat map at the centres of the covered original pixels (bilinear).
    xs = (np.arange(ix0, ix1) + 0.5 - x0) / (x1 - x0) * heat.shape[1] - 0.5
    ys = (np.arange(iy0, iy1) + 0.5 - y0) / (y1 - y0) * heat.shape[0] - 0.5
    out[iy0:iy1, ix0:ix1] = _bilinear(heat, ys, xs)
    return out


def _bilinear(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    h, w = img.shape
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0)[:, None]
    wx = (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bot = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return (top * (1 - wy) + bot * wy).astype(np.float32)


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """Heat (H×W in [0,1], NaN = none) -> RGBA uint8 with alpha 0 where NaN.

    Uses matplotlib's colormaps (imported lazily).
    """
    from matplotlib import colormaps

    valid = np.isfinite(heat)
    rgba = colormaps[cmap](np.where(valid, np.clip(heat, 0, 1), 0.0), bytes=True)
    rgba[..., 3] = np.where(valid, 255, 0).astype(np.uint8)
    return rgba


def blend(
    img: Image.Image,
    heat_orig: np.ndarray,
    alpha: float = 0.5,
    cmap: str = "jet",
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Alpha-blend a heat map (already in original coordinates) over ``img``: RGB uint8.

    With ``mask`` (bool, same shape) only masked pixels get the overlay (the paper's ξ2 masks).
    """
    base = np.asarray(img.convert("RGB"), dtype=np.float32)
    if heat_orig.shape != base.shape[:2]:
        raise ValueError(f"heat {heat_orig.shape} does not match image {base.shape[:2]}")
    rgba = colorize(heat_orig, cmap).astype(np.float32)
    a = (rgba[..., 3:4] / 255.0) * float(alpha)
    if mask is not None:
        a = a * mask[..., None].astype(np.float32)
    out = base * (1 - a) + rgba[..., :3] * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def mask_to_original(mask: np.ndarray, preprocessing: Preprocessing, width: int, height: int) -> np.ndarray:
    """Bool S×S mask -> bool original-size mask (False outside the crop box)."""
    m = heat_to_original(np.asarray(mask, dtype=np.float32), preprocessing, width, height)
    return np.nan_to_num(m, nan=0.0) >= 0.5
