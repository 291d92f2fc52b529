"""Summaries of an evaluation: per method and curve setting, paired with ``random`` and the oracle.

One row per (target, perturbation, mode, order, pair type, method), where ``order`` is ``morf``,
``lerf`` or ``srg`` (the symmetric relevance gain of each pair's two curves,
:func:`~lfs_gui.metrics.bounds.symmetric_relevance_gain`; higher is better). Every comparison is
paired: the method's score on a pair against ``random``'s and the oracle's on the same pair, curve
settings and noise (:mod:`lfs_gui.metrics.bounds`).

Columns (:data:`SUMMARY_COLUMNS`): ``n`` pairs with a finite score, ``n_undefined`` pairs without one
(a similar pair with sim_0 ≤ 0.05 has no ratio curve: counted here, not dropped silently),
``auc_mean`` ± ``auc_ci95``, ``direction`` (lower/higher is better), ``vs_random_mean`` ±
``vs_random_ci95`` and ``better_than_random`` (fraction of pairs), ``gap_closed`` ±
``gap_closed_ci95`` (when the oracle ran), then cost (ms per explanation, model and decoder calls) and
the mean AUC of the raw similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lfs_gui.metrics.auc import mean_ci95
from lfs_gui.metrics.bounds import gap_closed, paired_difference, symmetric_relevance_gain
from lfs_gui.metrics.evaluate import CurveRecord
from lfs_gui.metrics.oracle import ORACLE

SUMMARY_COLUMNS = [
    "target", "perturbation", "mode", "order", "pair_type", "method", "n", "n_undefined", "auc_mean", "auc_ci95",
    "direction", "vs_random_mean", "vs_random_ci95", "better_than_random", "gap_closed", "gap_closed_ci95",
    "ms_per_explanation", "model_calls", "decoder_calls", "auc_sim_mean",
]

Group = tuple[str, str, str, str, str]  # target, perturbation, mode, order, pair type
PairKey = tuple[int, int]


def scores_by_group(records: Sequence[CurveRecord]) -> dict[Group, dict[str, dict[PairKey, float]]]:
    """Per-pair scores: group → method → (i, j) → AUC, plus ``srg`` groups built from morf and lerf."""
    out: dict[Group, dict[str, dict[PairKey, float]]] = {}
    lower: dict[tuple[Group, str, PairKey], bool] = {}
    for r in records:
        g = (r.target, r.perturbation, r.mode, r.order, r.pair_type)
        out.setdefault(g, {}).setdefault(r.method, {})[(r.i, r.j)] = float(r.auc)
        lower[(g, r.method, (r.i, r.j))] = r.lower_is_better
    for (t, p, m, o, pt), by_method in list(out.items()):
        if o != "morf" or (t, p, m, "lerf", pt) not in out:
            continue
        lerf = out[(t, p, m, "lerf", pt)]
        srg: dict[str, dict[PairKey, float]] = {}
        for method, vals in by_method.items():
            for key, auc in vals.items():
                if key in lerf.get(method, {}):
                    srg.setdefault(method, {})[key] = symmetric_relevance_gain(
                        auc, lerf[method][key], lower[((t, p, m, o, pt), method, key)])
        out[(t, p, m, "srg", pt)] = srg
    return out


def _direction(group: Group, records: Sequence[CurveRecord]) -> str:
    if group[3] == "srg":
        return "higher"
    for r in records:
        if (r.target, r.perturbation, r.mode, r.order, r.pair_type) == group:
            return "lower" if r.lower_is_better else "higher"
    return ""


def summarize(records: Sequence[CurveRecord]) -> list[dict[str, Any]]:
    """Rows as in the module docstring, sorted by group then by score (best first)."""
    cost: dict[tuple[str, str], list[CurveRecord]] = {}
    sims: dict[tuple[Group, str], list[float]] = {}
    for r in records:
        cost.setdefault((r.method, r.pair_type), []).append(r)
        sims.setdefault(((r.target, r.perturbation, r.mode, r.order, r.pair_type), r.method), []).append(r.auc_sim)
    rows: list[dict[str, Any]] = []
    for group, by_method in scores_by_group(records).items():
        direction = _direction(group, records)
        base = by_method.get("random", {})
        orc = by_method.get(ORACLE, {})
        for method, vals in by_method.items():
            keys = sorted(vals)
            v = np.array([vals[k] for k in keys], np.float64)
            m, ci = mean_ci95(v)
            row: dict[str, Any] = dict(zip(("target", "perturbation", "mode", "order", "pair_type"), group))
            row.update(method=method, n=int(np.isfinite(v).sum()), n_undefined=int((~np.isfinite(v)).sum()),
                       auc_mean=m, auc_ci95=ci, direction=direction)
            common = [k for k in keys if k in base]
            if common and method != "random":
                d = paired_difference([vals[k] for k in common], [base[k] for k in common])
                diffs = np.array([vals[k] - base[k] for k in common], np.float64)
                diffs = diffs[np.isfinite(diffs)]
                better = diffs < 0 if direction == "lower" else diffs > 0
                row.update(vs_random_mean=d.mean, vs_random_ci95=d.ci95,
                           better_than_random=float(better.mean()) if diffs.size else float("nan"))
            trio = [k for k in keys if k in base and k in orc]
            if trio:
                gc = gap_closed([base[k] for k in trio], [vals[k] for k in trio], [orc[k] for k in trio])
                row.update(gap_closed=gc.mean, gap_closed_ci95=gc.ci95)
            rs = cost.get((method, group[4]), [])
            if rs:
                row.update(ms_per_explanation=float(np.mean([r.ms for r in rs])),
                           model_calls=float(np.mean([r.model_calls for r in rs])),
                           decoder_calls=float(np.mean([r.decoder_calls for r in rs])))
            s = sims.get((group, method))
            if s:
                row["auc_sim_mean"] = float(np.nanmean(s)) if np.isfinite(s).any() else float("nan")
            rows.append(row)

    def key(r: dict[str, Any]) -> tuple:
        a = r["auc_mean"] if np.isfinite(r["auc_mean"]) else float("inf")
        return (r["target"], r["perturbation"], r["mode"], ("morf", "lerf", "srg").index(r["order"]),
                r["pair_type"] != "similar", a if r["direction"] == "lower" else -a)

    rows.sort(key=key)
    return rows
