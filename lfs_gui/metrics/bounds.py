"""Scores between their bounds: paired differences, gap closed (random → oracle), symmetric relevance gain.

Per pair, ``random`` (:mod:`lfs_gui.explain.baselines.random_map`) is the floor and the greedy
oracle (:mod:`lfs_gui.metrics.oracle`) the limit of a selectivity AUC. Everything here is *paired*:
the three scores of one pair come from the same pair, steps, perturbation and noise, so their
differences are far tighter than the spread of scores across pairs.

* :func:`paired_difference` — mean of a − b over pairs with a Student-t 95 % interval.
* :func:`gap_closed` — G = mean(random − method) / mean(random − oracle): the fraction of the range
  from the floor to the limit that the method covers (0 = random, 1 = the oracle; negative = worse
  than random). The sign convention needs no direction: it is the same for lower-is-better and
  higher-is-better scores. A ratio of means, not a mean of per-pair ratios (those explode on pairs
  where the oracle barely beats random); its 95 % interval is the delta-method (linearised) interval
  of a ratio of paired means, sd(a − G·d) / (√n · |mean d|) · t, with a = random − method and
  d = random − oracle per pair.
* :func:`symmetric_relevance_gain` — SRG = AUC(lerf) − AUC(morf) of one pair's two curves, signed so
  that higher is always better (Blücher, Vielhaben & Strodthoff 2024, TMLR): the perturbation's own
  effect on the score appears in both curves and cancels; random's SRG is 0 in expectation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lfs_gui.metrics.auc import mean_ci95


def _t975(df: int) -> float:
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, df))
    except ImportError:  # pragma: no cover - scipy is a dependency
        return 1.959964


@dataclass(frozen=True)
class Interval:
    """A mean with the half-width of its 95 % interval over ``n`` pairs (NaN when undefined)."""

    mean: float
    ci95: float
    n: int

    @property
    def lo(self) -> float:
        return self.mean - self.ci95

    @property
    def hi(self) -> float:
        return self.mean + self.ci95

    def excludes_zero(self) -> bool:
        return bool(np.isfinite(self.ci95) and (self.lo > 0 or self.hi < 0))


def _finite_rows(*columns: Sequence[float] | np.ndarray) -> list[np.ndarray]:
    arrs = [np.asarray(c, np.float64) for c in columns]
    n = {a.shape for a in arrs}
    if len(n) != 1:
        raise ValueError(f"paired scores must have the same length, got {[a.shape for a in arrs]}")
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrs])
    return [a[ok] for a in arrs]


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> Interval:
    """Mean of a_i − b_i over the pairs where both are finite, with its t-interval."""
    fa, fb = _finite_rows(a, b)
    m, ci = mean_ci95(fa - fb)
    return Interval(m, ci, int(fa.size))


@dataclass(frozen=True)
class GapClosed(Interval):
    """:func:`gap_closed`'s result; ``per_pair`` holds (random − method)/(random − oracle) per pair
    (NaN where the oracle is within 1e-9 of random), for plots and medians."""

    per_pair: tuple[float, ...] = ()

    @property
    def median_per_pair(self) -> float:
        v = np.asarray(self.per_pair, np.float64)
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else float("nan")


def gap_closed(random: Sequence[float] | np.ndarray, method: Sequence[float] | np.ndarray,
               oracle: Sequence[float] | np.ndarray) -> GapClosed:
    """Fraction of the random → oracle gap the method closes, paired over pairs (module docstring).

    The three sequences hold one score per pair, in the same pair order; pairs where any is NaN are
    left out (``n`` counts the rest). Fewer than 2 pairs, or an oracle no better than random on
    average: interval NaN.
    """
    r, m, o = _finite_rows(random, method, oracle)
    a, d = r - m, r - o
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(np.abs(d) > 1e-9, a / d, np.nan)
    n = int(a.size)
    if n == 0 or abs(float(d.mean())) <= 1e-12:
        return GapClosed(float("nan"), float("nan"), n, tuple(per.tolist()))
    g = float(a.mean() / d.mean())
    if n < 2:
        return GapClosed(g, float("nan"), n, tuple(per.tolist()))
    resid = a - g * d
    half = _t975(n - 1) * float(resid.std(ddof=1)) / (math.sqrt(n) * abs(float(d.mean())))
    return GapClosed(g, half, n, tuple(per.tolist()))


def symmetric_relevance_gain(auc_morf: float, auc_lerf: float, morf_lower_is_better: bool) -> float:
    """SRG of one pair: AUC(lerf) − AUC(morf) when the morf curve should fall, else the reverse (higher is better)."""
    diff = float(auc_lerf) - float(auc_morf)
    return diff if morf_lower_is_better else -diff
