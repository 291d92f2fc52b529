"""Time the failure finder (every query's AP, R@1, nearest correct/wrong) on a synthetic gallery.

Random clustered unit vectors (16 000 x 512 in 200 classes by default, CUB/Cars-sized and more);
prints seconds for :func:`lfs_gui.index.failures.query_scores`, for Recall@1/2/4/8 + mAP@R
(:func:`lfs_gui.index.recall.retrieval_metrics`, what the index already computes) and the floor
measured in the same run: the bare chunked score matrix ``x @ x.T`` (no selection, no sort), which
any exact leave-one-out metric must compute. Peak extra memory of the score chunks is bounded by
the chunk size (32 MB per temporary), never the full N x N matrix.

    .venv/bin/python bench/bench_failures.py [--n 16000] [--dim 512] [--classes 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lfs_gui.index.failures import _CHUNK_BYTES, failure_ids, query_scores
from lfs_gui.index.recall import retrieval_metrics


def clustered(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, classes, n)
    x = rng.standard_normal((classes, d))[lab] * 0.09 + rng.standard_normal((n, d)) / np.sqrt(d) * 6
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return np.ascontiguousarray(x), lab.astype(np.int64)


def floor_seconds(x: np.ndarray) -> float:
    n = x.shape[0]
    step = max(1, _CHUNK_BYTES // (4 * n))
    t = time.perf_counter()
    for s in range(0, n, step):
        _ = x[s:s + step] @ x.T
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=200)
    args = ap.parse_args()
    x, lab = clustered(args.n, args.dim, args.classes)
    floor = floor_seconds(x)
    t = time.perf_counter()
    qs = query_scores(x, lab)
    t_fail = time.perf_counter() - t
    t = time.perf_counter()
    m = retrieval_metrics(x, lab)
    t_rec = time.perf_counter() - t
    n_fail = len(failure_ids(qs))
    print(f"gallery {args.n} x {args.dim}, {args.classes} classes: R@1 {qs.recall_at_1:.4f} "
          f"(index's Recall@1 {m.recall[1]:.4f}), mAP {qs.mean_ap:.4f}, {n_fail} failures "
          f"(= (1 - R@1) * N = {round((1 - m.recall[1]) * args.n)})")
    print(f"{'what':<48} {'seconds':>8} {'x floor':>8}")
    for name, sec in (("floor: chunked x @ x.T (scores only)", floor),
                      ("failure finder (AP, R@1, correct/wrong, ranks)", t_fail),
                      ("Recall@1/2/4/8 + mAP@R (lfs_gui.index.recall)", t_rec)):
        print(f"{name:<48} {sec:>8.2f} {sec / floor:>8.2f}")


if __name__ == "__main__":
    main()
