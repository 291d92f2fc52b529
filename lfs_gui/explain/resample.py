"""Resampling heat maps between resolutions, so maps from any method compare alike.

Decoder-side methods give maps at the decoder's S×S (40 or 64), model-side ones at the feature
map's h×w (7×7 for a ResNet at 224) or at the input's H×W (RISE). Metrics and the GUI bring them
to one frame with :func:`resize_map`: *area* averaging when shrinking (each output cell is the
mean of the input cells it covers, so no relevance is skipped — OpenCV ``INTER_AREA`` /
``torch.nn.functional.interpolate(mode="area")``), *bilinear* with ``align_corners=False`` when
enlarging (pixel centres aligned, as in Grad-CAM's upsampling of its coarse map).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _size2(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def resize_map(heat: np.ndarray | torch.Tensor, size: int | tuple[int, int], mode: str = "auto") -> np.ndarray:
    """Resample a 2-D map to ``size`` ((h, w) or S for S×S) → float32 numpy.

    ``mode``: ``"area"``, ``"bilinear"``, ``"nearest"`` or ``"auto"`` (area when shrinking in both
    directions, else bilinear). Values of a [0, 1] map stay in [0, 1] (both are convex
    combinations); the input is not modified.
    """
    arr = heat.detach().cpu().float().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat, np.float32)
    if arr.ndim != 2:
        raise ValueError(f"heat map must be 2-D, got shape {arr.shape}")
    th, tw = _size2(size)
    if th <= 0 or tw <= 0:
        raise ValueError(f"target size must be positive, got {(th, tw)}")
    if arr.shape == (th, tw):
        return arr.astype(np.float32, copy=True)
    if mode == "auto":
        mode = "area" if th <= arr.shape[0] and tw <= arr.shape[1] else "bilinear"
    t = torch.from_numpy(np.ascontiguousarray(arr, np.float32))[None, None]
    if mode == "area":
        out = F.interpolate(t, size=(th, tw), mode="area")
    elif mode == "bilinear":
        out = F.interpolate(t, size=(th, tw), mode="bilinear", align_corners=False)
    elif mode == "nearest":
        out = F.interpolate(t, size=(th, tw), mode="nearest")
    else:
        raise ValueError(f"mode must be 'auto', 'area', 'bilinear' or 'nearest', got {mode!r}")
    return out[0, 0].numpy().astype(np.float32)


def block_edges(n: int, blocks: int) -> np.ndarray:
    """Proportional edges of ``blocks`` blocks over ``n`` pixels: ``round(k·n/blocks)``, k = 0..blocks.

    Divisible sizes give equal blocks (224 px / 8 → 28 px); others differ by at most one pixel.
    """
    if blocks <= 0 or n <= 0:
        raise ValueError(f"need n > 0 and blocks > 0, got n={n}, blocks={blocks}")
    return np.round(np.arange(blocks + 1) * (n / blocks)).astype(int)


def block_sums(heat: np.ndarray, grid: int | tuple[int, int]) -> np.ndarray:
    """Sum of ``heat`` over each cell of a ``grid`` (gh, gw) of proportional blocks → (gh, gw) float64."""
    heat = np.asarray(heat, np.float64)
    gh, gw = _size2(grid)
    ey, ex = block_edges(heat.shape[0], gh), block_edges(heat.shape[1], gw)
    out = np.zeros((gh, gw), np.float64)
    for i in range(gh):
        for j in range(gw):
            out[i, j] = heat[ey[i] : ey[i + 1], ex[j] : ex[j + 1]].sum()
    return out
