"""Writing an evaluation: summaries, the paired comparison, curves, mean-curve PNG/SVG, settings.

Files (all written atomically, so a partial run leaves complete files):

* ``summary.csv`` — :data:`~lfs_gui.metrics.summary.SUMMARY_COLUMNS`: target, perturbation, mode,
  order (morf / lerf / srg), pair type, method, n, n_undefined, AUC mean ± 95 % CI, direction, the
  paired difference to ``random`` (± CI, fraction of pairs better), gap closed ± CI (with the
  oracle), cost;
* ``summary.md`` — the same as Markdown tables with the protocol and score directions spelled out;
* ``paired.csv`` — the paired columns only (method against ``random`` and the oracle, per setting);
* ``curves.csv`` (``curves.csv.gz`` with ``compress=True``) — long format, one row per method × pair ×
  curve setting × step: sim, ratio, value, the cell perturbed at that step, the noise digest;
* ``mean_curves_<perturbation>_<mode>_<order>.png`` / ``.svg`` — mean scored curve per method with a
  95 % band: sim_k/sim_0 for similar pairs, sim_k − sim_0 for dissimilar ones (matplotlib Agg, no Qt);
* ``settings.json`` — everything needed to rerun it (target included).
"""

from __future__ import annotations

import csv
import gzip
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
from lfs_gui.metrics.evaluate import CurveRecord
from lfs_gui.metrics.oracle import ORACLE
from lfs_gui.metrics.summary import SUMMARY_COLUMNS, summarize

log = logging.getLogger(__name__)

PAIRED_COLUMNS = ["target", "perturbation", "mode", "order", "pair_type", "method", "n", "vs_random_mean", "vs_random_ci95",
                  "better_than_random", "gap_closed", "gap_closed_ci95"]
CURVE_COLUMNS = ["method", "target", "perturbation", "mode", "order", "pair_type", "pair", "i", "j", "similarity", "sim0",
                 "auc", "noise", "step", "cell", "sim", "ratio", "value"]


def _csv_bytes(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in columns})
    return buf.getvalue().encode()


def _fmt(v: Any, digits: int = 3, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _pm(mean: Any, ci: Any, digits: int = 3, sign: bool = False) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{_fmt(mean, digits, sign)} ± {_fmt(ci, digits)}"


ORDER_TITLES = {"morf": "most relevant first (MoRF)", "lerf": "least relevant first (LeRF)",
                "srg": "symmetric relevance gain = LeRF − MoRF, signed so that higher is better"}


def markdown_tables(rows: Sequence[dict[str, Any]]) -> str:
    """One table per target × perturbation × mode × order, similar pairs first."""
    out: list[str] = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["perturbation"], r["mode"], r["order"]), []).append(r)
    for (target, pert, mode, order), rs in groups.items():
        out.append(f"### target {target} · {pert} · {mode} · {ORDER_TITLES.get(order, order)}\n")
        out.append("| pair type | method | n (undef.) | AUC ± 95% CI | better | − random (paired) | better than random on "
                   "| gap closed ± 95% CI | ms / expl. | model calls |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rs:
            und = f" ({r['n_undefined']})" if r.get("n_undefined") else ""
            better = r.get("better_than_random")
            out.append(
                f"| {r['pair_type']} | {r['method']} | {r['n']}{und} | {_pm(r['auc_mean'], r['auc_ci95'])} | {r['direction']} "
                f"| {_pm(r.get('vs_random_mean'), r.get('vs_random_ci95'), 4, sign=True)} "
                f"| {'–' if better is None or math.isnan(better) else f'{100 * better:.0f}%'} "
                f"| {_pm(r.get('gap_closed'), r.get('gap_closed_ci95'), 2, sign=False)} "
                f"| {_fmt(r.get('ms_per_explanation'), 1)} | {_fmt(r.get('model_calls'), 0)} |")
        out.append("")
    return "\n".join(out)


def plot_mean_curves(records: Sequence[CurveRecord], perturbation: str, out_stem: Path, mode: str = "deletion",
                     order: str = "morf") -> list[Path]:
    """Mean scored curves (± 95 % CI) per method for one curve setting → ``out_stem``.png and .svg."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    recs = [r for r in records if r.perturbation == perturbation and r.mode == mode and r.order == order]
    if not recs:
        return []
    ptypes = [t for t in ("similar", "dissimilar") if any(r.pair_type == t for r in recs)]  # no empty panel
    fig = Figure(figsize=(5 * len(ptypes), 4), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(ptypes), sharey=False))
    for ax, ptype in zip(axes, ptypes):
        methods = sorted({r.method for r in recs if r.pair_type == ptype})
        for m in methods:
            curves = [r.values or r.ratios for r in recs if r.pair_type == ptype and r.method == m]
            k = min(len(c) for c in curves)
            arr = np.array([c[:k] for c in curves], np.float64)
            stats = [mean_ci95(arr[:, s]) for s in range(k)]
            mean = np.array([s[0] for s in stats])
            ci = np.nan_to_num(np.array([s[1] for s in stats]))
            x = np.arange(k)
            style = {"random": "--", ORACLE: ":"}.get(m, "-")
            ax.plot(x, mean, label=f"{m} (n={len(curves)})", lw=1.8 if m.startswith("explainlfs") or m == ORACLE else 1.2,
                    ls=style, color="k" if m == ORACLE else None)
            ax.fill_between(x, mean - ci, mean + ci, alpha=0.15)
        target = recs[0].target
        ax.set_title(f"{ptype} pairs — {perturbation}, {mode}, {order.upper()} (target {target})", fontsize=9)
        ax.set_xlabel("superpixels perturbed" if mode == "deletion" else "superpixels restored")
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


def curve_rows(records: Sequence[CurveRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        for step, (s, q, v) in enumerate(zip(r.sims, r.ratios, r.values or r.ratios)):
            rows.append({"method": r.method, "target": r.target, "perturbation": r.perturbation, "mode": r.mode,
                         "order": r.order, "pair_type": r.pair_type, "pair": r.pair, "i": r.i, "j": r.j,
                         "similarity": r.similarity, "sim0": r.sim0, "auc": r.auc, "noise": r.noise, "step": step,
                         "cell": r.cells[step - 1] if 0 < step <= len(r.cells) else -1,  # perturbed (restored) at this step
                         "sim": s, "ratio": q, "value": v})
    return rows


def aucs_from_curves_csv(path: str | Path) -> dict[tuple, float]:
    """Per-pair AUCs of a previous run from its ``curves.csv`` (or ``.csv.gz``):
    (target, perturbation, mode, order, pair_type, method, i, j) → AUC (older files: target "", deletion, morf)."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    out = {}
    with opener(p, "rt", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["step"] == "0":
                key = (row.get("target", ""), row["perturbation"], row.get("mode", "deletion"), row.get("order", "morf"),
                       row["pair_type"], row["method"], int(row["i"]), int(row["j"]))
                out[key] = float(row["auc"])
    return out


def write_report(records: Sequence[CurveRecord], out_dir: str | Path, settings: dict[str, Any] | None = None,
                 complete: bool = True, compress: bool = False) -> dict[str, Path]:
    """Write every output for ``records`` into ``out_dir``; returns name → path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(records)
    written: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        atomic_write_bytes(out / name, data)
        written[name] = out / name

    put("summary.csv", _csv_bytes(rows, SUMMARY_COLUMNS))
    put("paired.csv", _csv_bytes([r for r in rows if r["method"] != "random"], PAIRED_COLUMNS))
    target = (settings or {}).get("target") or (records[0].target if records else "")
    head = "# Selectivity of pair explainers\n\n"
    if not complete:
        head += "**Partial results: the run was interrupted.**\n\n"
    head += (f"Every method answers the target **{target}** (similarity: what makes the two images alike; decision: "
             "the similarity for similar pairs, its negative for dissimilar ones). "
             "AUC = trapezoid area over steps 0..K, divided by K. Similar pairs: area under sim_k/sim_0 (flat = 1; "
             "undefined when sim_0 ≤ 0.05, counted in 'undef.'). Dissimilar pairs: both images perturbed at the same "
             "superpixels; area under the gain sim_k − sim_0 (flat = 0). 'better' is the score's good direction. "
             "Ties in a map are broken by the pair's random map, so a constant map scores as random. "
             "'− random (paired)' is the mean per-pair difference to random on the same pairs and noise; "
             "gap closed = (random − method) / (random − oracle), a ratio of paired means with a delta-method 95 % "
             "interval (oracle: greedy, the attainable limit for the same pair, steps, perturbation and noise).\n\n")
    unav = (settings or {}).get("unavailable") or {}
    if unav:
        head += "Methods that cannot answer the target on some pairs (not scored there):\n\n"
        head += "".join(f"- {k}: {v['pairs']} pairs — {v['reason']}\n" for k, v in unav.items()) + "\n"
    put("summary.md", (head + markdown_tables(rows)).encode())
    data = _csv_bytes(curve_rows(records), CURVE_COLUMNS)
    if compress:
        put("curves.csv.gz", gzip.compress(data, mtime=0))
    else:
        put("curves.csv", data)
    for pert, mode, order in sorted({(r.perturbation, r.mode, r.order) for r in records}):
        for p in plot_mean_curves(records, pert, out / f"mean_curves_{pert}_{mode}_{order}", mode, order):
            written[p.name] = p
    meta = {**(settings or {}), "complete": complete, "n_records": len(records)}
    put("settings.json", json.dumps(meta, indent=2, default=str).encode())
    return written
