"""Which cells a selectivity curve perturbs first: relevance per cell, fair ties, the two orders.

A heat map is resampled to the ``heat_size`` frame and cut into ``superpixel``×``superpixel`` cells
(:func:`grid_of`: the superpixel must divide the frame, so every cell has the same size — an
error otherwise, never a silent change of the cell size); a cell's relevance is the sum of its heat
(:func:`cell_scores`).

**Ties.** Cells with equal relevance (Grad-CAM's ReLU zeros, a constant map, a coarse map upsampled)
must not be taken in raster order (top-left first), which would favour or punish a method by where
the image's content happens to be. :func:`rank_cells` breaks ties by a second score per cell, the
``random`` method's map of the same pair (:func:`lfs_gui.explain.baselines.random_map.random_heat`):
one seeded permutation per pair, the same permutation ``random`` itself ranks by, so a constant map
scores exactly as ``random``. Scores equal within 1e-6 of the largest |score| count as ties
(float noise of resampling is not a ranking).

**Orders.** ``morf`` (most relevant first, the classic pixel flipping) and ``lerf`` (least relevant
first). Their difference is the symmetric relevance gain (Blücher, Vielhaben & Strodthoff 2024,
"Decoupling pixel flipping and occlusion strategy for consistent XAI benchmarks", TMLR), which
cancels the part of a curve's drop that the perturbation causes by itself.
"""

from __future__ import annotations

import numpy as np

from lfs_gui.explain.resample import block_sums, resize_map

ORDERS = ("morf", "lerf")
TIE_TOLERANCE = 1e-6


def grid_of(heat_size: int, superpixel: int) -> int:
    """Cells per side for ``superpixel`` on a ``heat_size`` frame; ValueError if it does not divide it."""
    if heat_size <= 0 or superpixel <= 0:
        raise ValueError(f"heat_size and superpixel must be positive, got {heat_size}, {superpixel}")
    if heat_size % superpixel:
        divisors = [d for d in range(1, heat_size + 1) if heat_size % d == 0]
        raise ValueError(f"superpixel {superpixel} does not divide the {heat_size}×{heat_size} heat frame; "
                         f"use one of {divisors} (or another heat_size)")
    return heat_size // superpixel


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS} (most / least relevant first), got {order!r}")
    return order


def cell_scores(heat1: np.ndarray | None, heat2: np.ndarray, similar: bool, heat_size: int, grid: int,
                rank_dissimilar: str = "test") -> np.ndarray:
    """Relevance per cell, flat (grid·grid,) float64: summed heat of the test map (dissimilar pairs with
    ``rank_dissimilar="sum"``: of both maps)."""
    rel = block_sums(resize_map(heat2, heat_size), grid)
    if not similar and rank_dissimilar == "sum" and heat1 is not None:
        rel = rel + block_sums(resize_map(heat1, heat_size), grid)
    return rel.ravel()


def _snap(scores: np.ndarray) -> np.ndarray:
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
    finite = s[np.isfinite(s)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    if scale == 0.0:
        return s
    return np.round(s / (scale * TIE_TOLERANCE))


def rank_cells(scores: np.ndarray, tie_scores: np.ndarray | None, order: str = "morf") -> np.ndarray:
    """Flat cell indices in perturbation order: by ``scores`` (most relevant first for ``morf``, least
    for ``lerf``), ties by ``tie_scores`` in the same direction (None: by index — only for callers
    that have no pair; evaluate and the app always pass the random map's scores)."""
    check_order(order)
    primary = _snap(scores)
    tie = np.zeros_like(primary) if tie_scores is None else np.asarray(tie_scores, np.float64)
    if tie.shape != primary.shape:
        raise ValueError(f"tie scores have shape {tie.shape}, cell scores {primary.shape}")
    if order == "morf":
        return np.lexsort((-tie, -primary))
    return np.lexsort((tie, primary))
