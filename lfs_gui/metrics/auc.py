"""Areas under curves and their confidence intervals.

The selectivity score is the area under the pixel-flipping curve (Samek et al. 2017, "Evaluating
the visualization of what a deep neural network has learned"; ExplainLFS paper §4.3.1 and
Table 4). Here: trapezoid rule over the steps x = 0..K, **divided by K**, so the score is the mean
height of the curve and is comparable across step counts: a flat ratio curve sim_k/sim_0 ≡ 1
scores 1.0, a curve that falls to 0 at once scores ≈ 0.5/K.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def trapezoid_auc(y: Sequence[float] | np.ndarray, x: Sequence[float] | np.ndarray | None = None, normalize: bool = True) -> float:
    """Trapezoid-rule area under ``y`` over ``x`` (default 0, 1, ..., K); divided by the x-range when ``normalize``.

    NaN in ``y`` gives NaN. Fewer than two points: the single value (normalised) or 0 (raw).
    """
    yy = np.asarray(y, np.float64)
    if yy.ndim != 1:
        raise ValueError(f"curve must be 1-D, got shape {yy.shape}")
    if yy.size == 0:
        return float("nan")
    xx = np.arange(yy.size, dtype=np.float64) if x is None else np.asarray(x, np.float64)
    if xx.shape != yy.shape:
        raise ValueError(f"x and y differ in shape: {xx.shape} vs {yy.shape}")
    if yy.size == 1:
        return float(yy[0]) if normalize else 0.0
    area = float(np.sum((xx[1:] - xx[:-1]) * (yy[1:] + yy[:-1]) / 2.0))
    if normalize:
        span = float(xx[-1] - xx[0])
        return area / span if span != 0 else float("nan")
    return area


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(mean, half-width of the 95 % confidence interval of the mean), Student t; NaNs ignored.

    One value: half-width NaN. No values: (NaN, NaN).
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    m = float(v.mean())
    if v.size == 1:
        return m, float("nan")
    se = float(v.std(ddof=1)) / math.sqrt(v.size)
    try:
        from scipy.stats import t

        q = float(t.ppf(0.975, v.size - 1))
    except ImportError:  # pragma: no cover - scipy is a dependency; normal approximation otherwise
        q = 1.959964
    return m, q * se
