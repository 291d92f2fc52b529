"""Writing an evaluation: summaries, the paired comparison, curves, mean-curve PNG/SVG, settings.

Files (all written atomically, so a partial run leaves complete files):

* ``summary.csv`` — ``method, pair_type, n, auc_mean, auc_ci95, ms_per_explanation, model_calls``
  then ``perturbation, direction, decoder_calls, auc_sim_mean``;
* ``summary.md`` — the same as a Markdown table, with the score directions spelled out, then the
  paired comparison against ``random``;
* ``paired.csv`` — each method against ``random`` on the same pairs: mean AUC difference ± 95 % CI
  and the fraction of pairs where it scored better;
* ``curves.csv`` — long format, one row per method × pair × perturbation × step (sim, ratio, value);
* ``mean_curves_<perturbation>.png`` / ``.svg`` — the mean scored curve per method with a 95 % band:
  sim_k/sim_0 for similar pairs, sim_k − sim_0 for dissimilar ones (matplotlib Agg canvas, no Qt);
* ``settings.json`` — everything needed to rerun it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.jobs import atomic_path, atomic_write_bytes
from lfs_gui.metrics.auc import mean_ci95
from lfs_gui.metrics.evaluate import CurveRecord, summarize

log = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["method", "pair_type", "n", "auc_mean", "auc_ci95", "ms_per_explanation", "model_calls",
                   "perturbation", "direction", "decoder_calls", "auc_sim_mean"]


def _csv_bytes(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in columns})
    return buf.getvalue().encode()


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as Markdown, sorted by perturbation, pair type and AUC in its good direction."""
    lines = [
        "| perturbation | pair type | method | n | AUC (mean ± 95% CI) | better | ms / explanation | model calls | decoder calls |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    def key(r: dict[str, Any]) -> tuple:
        a = r["auc_mean"] if not math.isnan(r["auc_mean"]) else float("inf")
        return (r["perturbation"], r["pair_type"] != "similar", a if r["direction"] == "lower" else -a)
    for r in sorted(rows, key=key):
        lines.append(
            f"| {r['perturbation']} | {r['pair_type']} | {r['method']} | {r['n']} | {_fmt(r['auc_mean'])} ± {_fmt(r['auc_ci95'])} "
            f"| {r['direction']} | {_fmt(r['ms_per_explanation'], 1)} | {_fmt(r['model_calls'], 0)} | {_fmt(r['decoder_calls'], 0)} |"
        )
    return "\n".join(lines) + "\n"


def plot_mean_curves(records: Sequence[CurveRecord], perturbation: str, out_stem: Path) -> list[Path]:
    """Mean scored curves (± 95 % CI) per method for one perturbation → ``out_stem``.png and .svg:
    sim_k/sim_0 for similar pairs, sim_k − sim_0 for dissimilar ones."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    recs = [r for r in records if r.perturbation == perturbation]
    if not recs:
        return []
    fig = Figure(figsize=(10, 4), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=False)
    for ax, ptype in zip(axes, ("similar", "dissimilar")):
        methods = sorted({r.method for r in recs if r.pair_type == ptype})
        for m in methods:
            curves = [r.values or r.ratios for r in recs if r.pair_type == ptype and r.method == m]
            k = min(len(c) for c in curves)
            arr = np.array([c[:k] for c in curves], np.float64)
            stats = [mean_ci95(arr[:, s]) for s in range(k)]
            mean = np.array([s[0] for s in stats])
            ci = np.nan_to_num(np.array([s[1] for s in stats]))
            x = np.arange(k)
            ax.plot(x, mean, label=f"{m} (n={len(curves)})", lw=1.8 if m.startswith("explainlfs") else 1.2,
                    ls="--" if m == "random" else "-")
            ax.fill_between(x, mean - ci, mean + ci, alpha=0.15)
        ax.set_title(f"{ptype} pairs — {perturbation}")
        ax.set_xlabel("superpixels perturbed")
        ax.set_ylabel("sim_k / sim_0" if ptype == "similar" else "sim_k − sim_0")
        ax.grid(alpha=0.3)
        if methods:
            ax.legend(fontsize=7)
    paths = []
    for ext in ("png", "svg"):
        p = out_stem.with_suffix(f".{ext}")
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=ext, dpi=120)
        paths.append(p)
    return paths


PAIRED_COLUMNS = ["perturbation", "pair_type", "method", "n", "diff_mean", "diff_ci95", "better_fraction"]


def paired_vs_random(aucs: dict[tuple[str, str, str, int, int], float]) -> list[dict[str, Any]]:
    """Each method against ``random`` on the *same* pairs and noise: the mean AUC difference (± 95 % CI)
    and the fraction of pairs where the method's curve scored better (lower AUC for similar pairs,
    higher for dissimilar ones). ``aucs`` maps (perturbation, pair_type, method, i, j) to the AUC.

    Paired differences are far tighter than the per-method CIs of the summary, because pairs differ
    much more from each other than methods do on one pair.
    """
    groups: dict[tuple[str, str], dict[str, dict[tuple[int, int], float]]] = {}
    for (pert, ptype, method, i, j), auc in aucs.items():
        groups.setdefault((pert, ptype), {}).setdefault(method, {})[(i, j)] = auc
    rows = []
    for (pert, ptype), by_method in sorted(groups.items()):
        base = by_method.get("random")
        if base is None:
            continue
        for method, vals in by_method.items():
            if method == "random":
                continue
            keys = sorted(set(vals) & set(base))
            diff = np.array([vals[k] - base[k] for k in keys], np.float64)
            diff = diff[np.isfinite(diff)]
            if diff.size == 0:
                continue
            m, ci = mean_ci95(diff)
            better = diff < 0 if ptype == "similar" else diff > 0
            rows.append({"perturbation": pert, "pair_type": ptype, "method": method, "n": int(diff.size),
                         "diff_mean": m, "diff_ci95": ci, "better_fraction": float(better.mean())})
    rows.sort(key=lambda r: (r["perturbation"], r["pair_type"] != "similar",
                             r["diff_mean"] if r["pair_type"] == "similar" else -r["diff_mean"]))
    return rows


def paired_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| perturbation | pair type | method | n | AUC − random's (mean ± 95% CI) | better than random on |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['perturbation']} | {r['pair_type']} | {r['method']} | {r['n']} | "
                     f"{r['diff_mean']:+.4f} ± {r['diff_ci95']:.4f} | {100 * r['better_fraction']:.0f}% |")
    return "\n".join(lines) + "\n"


def aucs_from_records(records: Sequence[CurveRecord]) -> dict[tuple[str, str, str, int, int], float]:
    return {(r.perturbation, r.pair_type, r.method, int(r.i), int(r.j)): float(r.auc) for r in records}


def aucs_from_curves_csv(path: str | Path) -> dict[tuple[str, str, str, int, int], float]:
    """The per-pair AUCs of a previous run, read back from its ``curves.csv``."""
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["step"] == "0":
                out[(row["perturbation"], row["pair_type"], row["method"], int(row["i"]), int(row["j"]))] = float(row["auc"])
    return out


def write_report(records: Sequence[CurveRecord], out_dir: str | Path, settings: dict[str, Any] | None = None,
                 complete: bool = True) -> dict[str, Path]:
    """Write every output for ``records`` into ``out_dir``; returns name → path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(records)
    written: dict[str, Path] = {}
    atomic_write_bytes(out / "summary.csv", _csv_bytes(rows, SUMMARY_COLUMNS))
    written["summary.csv"] = out / "summary.csv"
    head = "# Selectivity of pair explainers\n\n"
    if not complete:
        head += "**Partial results: the run was interrupted.**\n\n"
    head += ("AUC = trapezoid area over steps 0..K, divided by K. "
             "Similar pairs: area under sim_k/sim_0 (a flat curve gives 1); deletion should lower the similarity "
             "(lower AUC is better). Dissimilar pairs: both images perturbed at the same superpixels; area under the "
             "gain sim_k − sim_0 (flat = 0): sim_0 is often near zero or negative for dissimilar pairs, where the "
             "ratio is undefined, and elsewhere it is not comparable across pairs; the similarity should rise "
             "(higher is better).\n\n")
    paired = paired_vs_random(aucs_from_records(records))
    body = head + markdown_table(rows)
    if paired:
        atomic_write_bytes(out / "paired.csv", _csv_bytes(paired, PAIRED_COLUMNS))
        written["paired.csv"] = out / "paired.csv"
        body += "\n## Against random, pair by pair\n\n" + paired_markdown(paired)
    atomic_write_bytes(out / "summary.md", body.encode())
    written["summary.md"] = out / "summary.md"
    curve_rows = []
    for r in records:
        for step, (s, q, v) in enumerate(zip(r.sims, r.ratios, r.values or r.ratios)):
            curve_rows.append({"method": r.method, "pair_type": r.pair_type, "perturbation": r.perturbation, "i": r.i, "j": r.j,
                               "similarity": r.similarity, "auc": r.auc, "step": step, "sim": s, "ratio": q, "value": v})
    cols = ["method", "pair_type", "perturbation", "i", "j", "similarity", "auc", "step", "sim", "ratio", "value"]
    atomic_write_bytes(out / "curves.csv", _csv_bytes(curve_rows, cols))
    written["curves.csv"] = out / "curves.csv"
    for pert in sorted({r.perturbation for r in records}):
        for p in plot_mean_curves(records, pert, out / f"mean_curves_{pert}"):
            written[p.name] = p
    meta = {**(settings or {}), "complete": complete, "n_records": len(records)}
    atomic_write_bytes(out / "settings.json", json.dumps(meta, indent=2, default=str).encode())
    written["settings.json"] = out / "settings.json"
    return written
