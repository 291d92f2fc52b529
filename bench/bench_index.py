"""Time top-k + bottom-k (k=20) search per index kind against a plain numpy matmul.

Random unit 512-d vectors (10k and 100k by default); single queries and batches of 64. Prints
milliseconds per query. ``numpy matmul`` is the bare score computation (no selection), the floor
for any exact method; ``faiss flat x2`` is IndexFlatIP searched with q and -q (two passes).

    .venv/bin/python bench/bench_index.py [--sizes 10000 100000] [--dim 512] [--repeat 20]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

import faiss
import numpy as np

from lfs_gui.index import EmbeddingIndex

log = logging.getLogger("bench_index")
K = 20


def unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def per_query_ms(fn: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, repeat: int) -> float:
    """Median over ``repeat`` calls of ms per query, calling ``fn`` on ``batch`` rows at a time."""
    fn(queries[:batch])  # warm-up
    times = []
    for r in range(repeat):
        q = queries[(r * batch) % len(queries):][:batch]
        if len(q) < batch:
            q = queries[:batch]
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times)) / batch


def bench_size(n: int, dim: int, repeat: int) -> list[tuple[str, int, float]]:
    x = unit(n, dim, seed=0)
    queries = unit(2048, dim, seed=1)
    rows: list[tuple[str, int, float]] = []
    t = time.perf_counter()
    flat = EmbeddingIndex(x, "flat")
    t_flat = time.perf_counter() - t
    t = time.perf_counter()
    hnsw = EmbeddingIndex(x, "hnsw")
    t_hnsw = time.perf_counter() - t
    fidx = faiss.IndexFlatIP(dim)
    fidx.add(x)
    log.info("n=%d: build flat %.2f s, hnsw %.1f s", n, t_flat, t_hnsw)
    cases: dict[str, Callable[[np.ndarray], object]] = {
        "numpy matmul (scores only)": lambda q: q @ x.T,
        "flat (one pass, both ends)": lambda q: flat.both_ends_batch(q, K),
        "faiss flat x2 (q and -q)": lambda q: (fidx.search(q, K), fidx.search(-q, K)),
        "hnsw (q and -q)": lambda q: hnsw.both_ends_batch(q, K),
    }
    for batch in (1, 64):
        for name, fn in cases.items():
            rows.append((name, batch, per_query_ms(fn, queries, batch, repeat)))
    rows.append((f"build: flat {t_flat:.2f} s, hnsw {t_hnsw:.1f} s", 0, float("nan")))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    log.info("faiss %s, %d threads; k=%d, dim=%d", faiss.__version__, faiss.omp_get_max_threads(), K, args.dim)
    for n in args.sizes:
        log.info("\n== %d vectors x %d ==", n, args.dim)
        log.info("%-30s %8s %8s", "method", "batch", "ms/query")
        for name, batch, ms in bench_size(n, args.dim, args.repeat):
            if batch:
                log.info("%-30s %8d %8.3f", name, batch, ms)
            else:
                log.info("%s", name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
