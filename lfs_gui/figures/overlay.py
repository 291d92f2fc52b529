"""Heat maps onto original images: the one coordinate mapping, written once.

A heat map lives in the model-input frame (``crop(resize(original))``). To draw it on the original
image it is resampled into the crop box of that image (``Preprocessing.crop_box``); outside the box
there is no heat (NaN), never a stretched map. The area outside the box is what the model never saw:
:func:`grey_unseen` marks it so that it does not read as "no relevance". Figures draw photos at
the size the page needs (:func:`fit_image`), so every function here takes the box in the pixel frame
of the image it draws on (:func:`scale_box`). Qt-free: the GUI and the figure code both use this.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # the app imports this module before the first paint: no torch at import time
    from lfs_gui.models.base import Preprocessing

Box = tuple[float, float, float, float]


def heat_to_box(heat: np.ndarray, box: Box, width: int, height: int) -> np.ndarray:
    """Map an S×S heat map into ``box`` (x0, y0, x1, y1 in pixels) of a ``height``×``width`` image:
    float32, NaN outside the box."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heat must be 2-D, got shape {heat.shape}")
    x0, y0, x1, y1 = box
    out = np.full((height, width), np.nan, dtype=np.float32)
    # Integer pixel range of the image covered by the box (clipped to the image).
    ix0, iy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    ix1, iy1 = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    # Sample the heat map at the centres of the covered pixels (bilinear).
    xs = (np.arange(ix0, ix1) + 0.5 - x0) / (x1 - x0) * heat.shape[1] - 0.5
    ys = (np.arange(iy0, iy1) + 0.5 - y0) / (y1 - y0) * heat.shape[0] - 0.5
    out[iy0:iy1, ix0:ix1] = _bilinear(heat, ys, xs)
    return out


def heat_to_original(heat: np.ndarray, preprocessing: Preprocessing, width: int, height: int) -> np.ndarray:
    """Map an S×S heat map onto a ``height``×``width`` original: float32, NaN outside the crop box."""
    return heat_to_box(heat, preprocessing.crop_box(width, height), width, height)


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
    """Alpha-blend a heat map (already in the image's coordinates) over ``img``: RGB uint8.

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


def mask_to_box(mask: np.ndarray, box: Box, width: int, height: int) -> np.ndarray:
    """Bool S×S mask -> bool ``height``×``width`` mask inside ``box`` (False outside it)."""
    m = heat_to_box(np.asarray(mask, dtype=np.float32), box, width, height)
    return np.nan_to_num(m, nan=0.0) >= 0.5


def mask_to_original(mask: np.ndarray, preprocessing: Preprocessing, width: int, height: int) -> np.ndarray:
    """Bool S×S mask -> bool original-size mask (False outside the crop box)."""
    return mask_to_box(mask, preprocessing.crop_box(width, height), width, height)


def inside_box(box: Box, width: int, height: int) -> np.ndarray:
    """Bool ``height``×``width``: True on the pixels whose centre lies inside ``box``."""
    x0, y0, x1, y1 = box
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    return ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]


def box_covers(box: Box, width: int, height: int, tol: float = 0.5) -> bool:
    """True when ``box`` covers the whole ``width``×``height`` image (nothing is unseen)."""
    x0, y0, x1, y1 = box
    return x0 <= tol and y0 <= tol and x1 >= width - tol and y1 >= height - tol


def grey_unseen(rgb: np.ndarray, box: Box, amount: float = 0.55) -> np.ndarray:
    """``rgb`` (H×W×3 uint8) with the pixels outside ``box`` washed towards mid-grey by ``amount``:
    the part of the photo the model never saw. A new array; ``rgb`` is not modified."""
    h, w = rgb.shape[:2]
    outside = ~inside_box(box, w, h)
    if not outside.any():
        return np.array(rgb, copy=True)
    out = rgb.astype(np.float32)
    out[outside] = out[outside] * (1 - amount) + 128.0 * amount
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def scale_box(box: Box, from_size: tuple[int, int], to_size: tuple[int, int]) -> Box:
    """``box`` in the pixel frame of a ``from_size`` (w, h) image -> the frame of a ``to_size`` image."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    x0, y0, x1, y1 = box
    return x0 * sx, y0 * sy, x1 * sx, y1 * sy


def fit_size(size: tuple[int, int], max_w: float, max_h: float) -> tuple[int, int]:
    """The (w, h) in whole pixels an image of ``size`` takes when fitted (aspect kept) into
    ``max_w``×``max_h`` pixels, never larger than ``size`` (photos are downsampled, never upsampled)."""
    w, h = size
    s = min(max_w / w, max_h / h, 1.0)
    return max(1, math.ceil(w * s - 1e-6)), max(1, math.ceil(h * s - 1e-6))


def fit_image(img: Image.Image, max_w: float, max_h: float) -> Image.Image:
    """``img`` downsampled (Lanczos) to fit ``max_w``×``max_h`` pixels; the same object if it fits."""
    target = fit_size(img.size, max_w, max_h)
    if target == img.size:
        return img
    return img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
