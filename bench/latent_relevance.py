"""Issue 11's verdict on the demo: explainlfs-latent against the baselines, and whether R is the right relevance.

    python bench/latent_relevance.py [--pairs 10] [--perturbation fill noise] [--rise-masks 100]
                                     [--oracle-cache DIR] [--out DIR]

Not a timing. Runs the protocol of ``lfs-gui evaluate`` (:class:`~lfs_gui.metrics.evaluate.Evaluation`:
the same pairs, seed 0, ξ1 suggested, the ``decision`` target, MoRF deletion, 20 steps, ties broken
by the pair's random map, the same noise for every method on a pair) once per perturbation, with

* the baselines ``random``, ``grad-sim``, ``rise-sim`` (``--rise-masks``) and ``explainlfs`` (paper);
* ``explainlfs-latent`` with its perturbation image matched to the curve's (``fill`` → white,
  ``noise`` → N(0, 1)), and with the fixed ``fill`` image the app uses whatever the curve;
* the same greedy with three other relevances (issue 11: "whether R itself is the right relevance"):
  none (the plain cosine), the per-dimension contribution |ĥ¹_j ĥ²_j| to the cosine, and a relevance
  *learned from the gallery*: the weights w of a logistic regression of "same class" on the
  per-dimension products ĥ¹_j ĥ²_j over every gallery pair, so that Σ_j w_j ĥ¹_j ĥ²_j is the
  linear score that best tells a same-class pair from another.

It prints, per perturbation and pair type, each method's AUC and its paired difference to random,
grad-sim and rise-sim (mean ± 95 % t-interval over the pairs; similar pairs: lower is better,
dissimilar: higher), and, where ``--oracle-cache`` holds the greedy oracle's curve for a pair (as
``lfs-gui evaluate --bounds --oracle-cache DIR`` leaves it; nothing is computed here), the gap closed.
It also prints how well each relevance-weighted score separates same-class from other gallery pairs
(ROC AUC; the learned weights held out by a two-fold split of the images) and how R relates to the
contribution. ``--out`` writes every curve record as CSV.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lfs_gui.explain.explainlfs import relevance as explainlfs_relevance
from lfs_gui.explain.latent_greedy import ExplainLFSLatentExplainer
from lfs_gui.metrics.bounds import gap_closed, paired_difference
from lfs_gui.metrics.evaluate import Evaluation, curve_key
from lfs_gui.metrics.oracle import Oracle, OracleCache
from lfs_gui.session import Session

log = logging.getLogger("latent_relevance")


class FixedWeightLatent(ExplainLFSLatentExplainer):
    """explainlfs-latent with a fixed per-dimension relevance (here: learned from the gallery)."""

    def __init__(self, w: np.ndarray, **kw) -> None:
        super().__init__(**kw)
        self.w = np.asarray(w, np.float64)

    def weight(self, pair) -> np.ndarray:
        return self.w


def learn_weights(e: np.ndarray, lab: np.ndarray, rows: np.ndarray | None = None, iters: int = 200) -> np.ndarray:
    """Logistic regression of 'same class' on ĥ_i ⊙ ĥ_j over the pairs i < j of ``rows`` (balanced
    classes, L2 1e-3); returns w scaled to max |w| = 1."""
    idx = np.arange(len(e)) if rows is None else rows
    ii, jj = np.triu_indices(len(idx), 1)
    ii, jj = idx[ii], idx[jj]
    ok = (lab[ii] >= 0) & (lab[jj] >= 0)
    ii, jj = ii[ok], jj[ok]
    x = torch.from_numpy((e[ii] * e[jj]).astype(np.float64))
    y = torch.from_numpy((lab[ii] == lab[jj]).astype(np.float64))
    pos = float(y.mean())
    sw = torch.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = x @ w * 10 + b
        loss = (sw * torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")).mean() + 1e-3 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    v = w.detach().numpy()
    return v / max(float(np.abs(v).max()), 1e-12)


def roc_auc(score: np.ndarray, y: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    s_sorted = score[order]
    # average ranks over ties
    _, inv, counts = np.unique(s_sorted, return_inverse=True, return_counts=True)
    cum = np.cumsum(counts)
    avg = (cum - (counts - 1) / 2.0)[inv]
    ranks[order] = avg
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def separation(e: np.ndarray, lab: np.ndarray, xi1: float) -> dict[str, float]:
    """ROC AUC of same-class vs other gallery pairs for each relevance-weighted score (2-fold for
    the learned weights: trained on pairs inside one half of the images, scored inside the other)."""
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(e))
    halves = [perm[: len(e) // 2], perm[len(e) // 2:]]
    out: dict[str, list[float]] = {"cosine (R = 1)": [], "R (ExplainLFS, 1 − d̄)": [], "contribution |ĥ¹ĥ²|": [], "learned": []}
    for k in (0, 1):
        w = learn_weights(e, lab, halves[k])
        idx = halves[1 - k]
        ii, jj = np.triu_indices(len(idx), 1)
        ii, jj = idx[ii], idx[jj]
        ok = (lab[ii] >= 0) & (lab[jj] >= 0)
        ii, jj = ii[ok], jj[ok]
        y = lab[ii] == lab[jj]
        prod = e[ii] * e[jj]
        cos = prod.sum(1)
        r = np.stack([explainlfs_relevance(e[a], e[b], True) for a, b in zip(ii, jj)])
        c = np.abs(prod) / np.maximum(np.abs(prod).max(1, keepdims=True), 1e-12)
        out["cosine (R = 1)"].append(roc_auc(cos, y))
        out["R (ExplainLFS, 1 − d̄)"].append(roc_auc((r * prod).sum(1), y))
        out["contribution |ĥ¹ĥ²|"].append(roc_auc((c * prod).sum(1), y))
        out["learned"].append(roc_auc(prod @ w, y))
    return {k: float(np.mean(v)) for k, v in out.items()}


def fmt(iv) -> str:
    if iv.n == 0 or not np.isfinite(iv.mean):
        return "–"
    star = "**" if iv.excludes_zero() else ""
    return f"{star}{iv.mean:+.3f} ± {iv.ci95:.3f}{star}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=10, help="similar and dissimilar pairs each (default 10)")
    ap.add_argument("--perturbation", nargs="+", default=["fill", "noise"], choices=["fill", "noise"])
    ap.add_argument("--pair-types", nargs="+", default=["similar", "dissimilar"], choices=["similar", "dissimilar"])
    ap.add_argument("--rise-masks", type=int, default=100)
    ap.add_argument("--methods", nargs="+", default=["random", "grad-sim", "rise-sim", "explainlfs", "explainlfs-latent"],
                    help="registered methods next to the relevance variants (random is always added)")
    ap.add_argument("--oracle-cache", type=Path, default=None, help="folder of cached oracle curves (read only)")
    ap.add_argument("--out", type=Path, default=None, help="folder for records.csv")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t_start = time.perf_counter()
    s = Session.open_demo()
    m = s.model
    e = np.ascontiguousarray(s.embeddings, np.float32)
    lab = np.array([-1 if s.label_of(i) is None else s.label_of(i) for i in range(len(s.gallery))])
    images = [s.image_path(i) for i in range(len(s.gallery))]
    xi1 = s.suggested_xi1()
    w_learned = learn_weights(e, lab)
    print(f"demo: {len(e)} images, xi1 {xi1:.3f}; learned relevance: {int((w_learned > 0).sum())} of {len(w_learned)} "
          f"weights positive, median |w| {float(np.median(np.abs(w_learned))):.2f} (max 1)")
    sep = separation(e, lab, xi1)
    print("same-class separation of gallery pairs (ROC AUC): " + ", ".join(f"{k} {v:.3f}" for k, v in sep.items()))
    records = []
    for pert in args.perturbation:
        extra = {
            "latent R (app: fill)": ExplainLFSLatentExplainer(model=m, baseline="fill", relevance="explainlfs"),
            "latent R=1": ExplainLFSLatentExplainer(model=m, baseline=pert, relevance="none"),
            "latent contribution": ExplainLFSLatentExplainer(model=m, baseline=pert, relevance="contribution"),
            "latent learned": FixedWeightLatent(w_learned, model=m, baseline=pert),
        }
        if pert == "fill":
            extra.pop("latent R (app: fill)")  # the same as explainlfs-latent matched to fill
        ev = Evaluation(m, s.decoder, images, e, lab, methods=args.methods,
                        n_pairs=args.pairs, perturbations=[pert], orders=["morf"], xi1=xi1,
                        method_settings={"rise-sim": {"n_masks": args.rise_masks}, "explainlfs-latent": {"baseline": pert}},
                        explainers=extra, pair_types=args.pair_types)
        t0 = time.perf_counter()
        gen = ev.iter_run()
        try:
            while True:
                p = next(gen)
                log.info("%s", p.message)
        except StopIteration as stop:
            recs = stop.value
        records += recs
        print(f"\n{pert}: {len(ev.pairs)} pairs in {time.perf_counter() - t0:.0f} s")
        cache = OracleCache(args.oracle_cache) if args.oracle_cache else None
        key = curve_key(pert, "deletion", "morf")
        for ptype in args.pair_types:
            rows = [r for r in recs if r.pair_type == ptype]
            pairs = sorted({r.pair for r in rows})
            auc = {name: np.array([next((r.auc for r in rows if r.pair == n and r.method == name), np.nan) for n in pairs])
                   for name in ev.explainers}
            oracle = np.full(len(pairs), np.nan)
            if cache is not None:
                orc = Oracle(ev.curves[key], cache=cache)
                for k, n in enumerate(pairs):
                    spec = ev.pairs[n]
                    x1, x2 = ev._tensor(spec.i), ev._tensor(spec.j)
                    if cache.get(orc.key(m, x1, x2, spec.similar, seed=ev.seed + n)) is not None:  # never computed here
                        oracle[k] = orc(m, x1, x2, spec.similar, seed=ev.seed + n).auc
            better = "lower" if ptype == "similar" else "higher"
            n_orc = int(np.isfinite(oracle).sum())
            print(f"\n{pert}, {ptype} pairs (n = {len(pairs)}; AUC, {better} is better; oracle cached for {n_orc})")
            print("| method | AUC | − random | − grad-sim | − rise-sim | − explainlfs-latent (R) | better than random | gap closed |")
            print("|---|---|---|---|---|---|---|---|")
            for name, a in auc.items():
                sign = 1 if ptype == "similar" else -1
                frac = float(np.mean(sign * (a - auc["random"]) < 0)) if name != "random" else float("nan")
                gc = gap_closed(auc["random"], a, oracle) if n_orc else None
                gtxt = "–" if gc is None or not np.isfinite(gc.mean) else f"{gc.mean:+.2f} ± {gc.ci95:.2f} (n {gc.n})"
                vs = {b: fmt(paired_difference(a, auc[b])) if b in auc else "–"
                      for b in ("random", "grad-sim", "rise-sim", "explainlfs-latent")}
                print(f"| {name} | {np.nanmean(a):.3f} | {vs['random']} | {vs['grad-sim']} | {vs['rise-sim']} | "
                      f"{vs['explainlfs-latent']} | "
                      f"{'–' if not np.isfinite(frac) else f'{100 * frac:.0f} %'} | {gtxt} |", flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "records.csv", "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["method", "pair", "pair_type", "perturbation", "i", "j", "auc", "ms", "model_calls"])
            for r in records:
                wr.writerow([r.method, r.pair, r.pair_type, r.perturbation, r.i, r.j, f"{r.auc:.6f}", f"{r.ms:.2f}", r.model_calls])
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
