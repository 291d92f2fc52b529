"""On-disk IVF at 1M and 10M vectors: build time, disk size, resident memory, latency, recall at both ends.

Vectors are synthetic but shaped like metric-learning embeddings, not isotropic noise (which makes
every method look good): ``x = 0.5·m + c_k + s_k·g`` L2-normalised, with ``m`` a mean direction
shared by all (real embeddings are not centred), ``K = n / 1000`` class centres ``c_k`` with
Zipf-like class sizes, and a per-class spread ``s_k`` around 0.8 (``c_k``, ``g`` of unit expected
norm). Same-class cosines come out around 0.65, different-class around 0.13.

The vectors are generated in chunks straight into a memory-mapped ``.npy`` under ``--workdir``
(10M x 128 = 5.1 GB: check ``df -h``); exact top-20/bottom-20 of ``--queries`` gallery items
(themselves excluded) come from a chunked brute-force pass. The build and the searches each run in
a fresh subprocess so their memory is their own: ``peak`` is the build's VmHWM, ``open`` / ``after``
the searcher's anonymous (heap) and file-backed resident memory after opening and after all
queries. Latency is per single query (both ends), median and 95th percentile.

    nice -n 10 .venv/bin/python bench/bench_scale.py [--sizes 1000000 10000000] [--dim 128] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("bench_scale")
K = 20
_CHUNK = 250_000


def clustered_vectors(path: Path, n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Write (or reuse) ``n`` synthetic unit vectors to ``path`` (.npy) in chunks; returns a memmap."""
    if path.is_file():
        x = np.load(path, mmap_mode="r")
        if x.shape == (n, dim):
            return x
    rng = np.random.default_rng(seed)
    n_class = max(100, n // 1000)
    mean = rng.standard_normal(dim).astype(np.float32)
    mean /= np.linalg.norm(mean)
    centres = (rng.standard_normal((n_class, dim)) / np.sqrt(dim)).astype(np.float32)
    spread = (0.8 * np.exp(0.3 * rng.standard_normal(n_class))).astype(np.float32)
    weights = 1.0 / np.arange(1, n_class + 1) ** 0.7
    weights /= weights.sum()
    tmp = path.with_suffix(".tmp.npy")
    x = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
    for s in range(0, n, _CHUNK):
        m = min(_CHUNK, n - s)
        lab = rng.choice(n_class, size=m, p=weights)
        g = rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
        v = 0.5 * mean + centres[lab] + spread[lab, None] * g
        x[s:s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    x.flush()
    del x
    tmp.rename(path)
    return np.load(path, mmap_mode="r")


def ground_truth(x: np.ndarray, qids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-K and bottom-K ids (query itself excluded) by a chunked pass over ``x``."""
    q = np.ascontiguousarray(x[qids])
    keys: list[list[np.ndarray]] = [[], []]  # per end: (nq, K) candidate keys per chunk (larger = better)
    ids: list[list[np.ndarray]] = [[], []]
    for s in range(0, x.shape[0], _CHUNK):
        sc = q @ np.asarray(x[s:s + _CHUNK]).T
        own = qids[:, None] == np.arange(s, s + sc.shape[1])[None, :]
        for end, key in enumerate((np.where(own, -np.inf, sc), np.where(own, -np.inf, -sc))):
            part = np.argpartition(-key, K - 1, axis=1)[:, :K]
            keys[end].append(np.take_along_axis(key, part, 1))
            ids[end].append(part + s)
    out = []
    for end in (0, 1):
        kk, ii = np.concatenate(keys[end], axis=1), np.concatenate(ids[end], axis=1)
        order = np.argsort(-kk, axis=1, kind="stable")[:, :K]
        out.append(np.take_along_axis(ii, order, 1))
    return out[0], out[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / K for f, t in zip(found, truth)]))


class PeakAnon:
    """Samples this process's anonymous resident memory every 0.2 s (VmHWM also counts mapped page cache)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, memory()["RssAnon"])

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, memory()["RssAnon"])


def memory() -> dict[str, float]:
    """Anonymous / file-backed resident MB and the peak (VmHWM) of this process."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmHWM", "VmRSS"):
            out[key] = int(val.split()[0]) / 1024
    return out


def worker_build(vectors: Path, out: Path, quantizer: str) -> dict:
    from lfs_gui.index.ivf_build import iter_build_ivf
    from lfs_gui.index.ivf_files import IvfSettings, NpyRows
    from lfs_gui.jobs import run_generator

    x = NpyRows(vectors)
    peak = PeakAnon()
    t = time.perf_counter()
    info = run_generator(iter_build_ivf(x, out, IvfSettings(quantizer=quantizer)))
    return {"seconds": time.perf_counter() - t, "info": info.to_dict(), "mem": memory(), "peak_anon": peak.stop()}


def worker_search(vectors: Path, out: Path, gt: Path, probes: list[tuple[int, int]]) -> dict:
    from lfs_gui.index.ivf import IvfSearcher, open_ivf
    from lfs_gui.index.ivf_files import IvfInfo, NpyRows

    before = memory()
    info = IvfInfo.from_dict(json.loads((out / "info.json").read_text()))
    index, stats = open_ivf(out, info, "rebuild it")
    x = NpyRows(vectors)
    searcher = IvfSearcher(index, stats, x, info.nprobe, info.nprobe_bottom, info.rerank)
    opened = memory()
    z = np.load(gt)
    qids, t_true, b_true = z["qids"], z["top"], z["bottom"]
    rows = []
    for top_p, bot_p in probes or [(info.nprobe, info.nprobe_bottom)]:
        searcher.set_nprobe(top_p, bot_p)
        times, tops, bots = [], [], []
        for j, qi in enumerate(qids):
            q = x[np.array([qi])]
            t = time.perf_counter()
            (_, ti), (_, bi) = searcher.search(q, K, np.array([qi]), (True, True))
            times.append(time.perf_counter() - t)
            tops.append(ti[0])
            bots.append(bi[0])
        rows.append({"nprobe": top_p, "nprobe_bottom": bot_p, "top": recall(np.array(tops), t_true),
                     "bottom": recall(np.array(bots), b_true), "ms_median": 1000 * float(np.median(times[1:])),
                     "ms_p95": 1000 * float(np.percentile(times[1:], 95))})
    return {"rows": rows, "mem_before": before, "mem_open": opened, "mem_after": memory()}


def run_worker(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_size(n: int, dim: int, work: Path, nq: int, quantizer: str, probes: list[tuple[int, int]]) -> None:
    t = time.perf_counter()
    vec_path = work / f"vectors-{n}x{dim}.npy"
    x = clustered_vectors(vec_path, n, dim)
    log.info("n=%d: vectors ready in %.0f s (%s, %.2f GB)", n, time.perf_counter() - t, vec_path,
             vec_path.stat().st_size / 1e9)
    gt_path = work / f"gt-{n}x{dim}-{nq}.npz"
    if not gt_path.is_file():
        t = time.perf_counter()
        qids = np.sort(np.random.default_rng(1).choice(n, nq, replace=False))
        top, bottom = ground_truth(x, qids)
        np.savez(gt_path, qids=qids, top=top, bottom=bottom)
        log.info("n=%d: brute-force truth for %d queries in %.0f s", n, nq, time.perf_counter() - t)
    del x
    out = work / f"ivf-{quantizer}-{n}x{dim}"
    if not (out / "info.json").is_file():
        b = run_worker("build", str(vec_path), str(out), quantizer)
        (out / "info.json").write_text(json.dumps(b["info"]))
        disk = sum(p.stat().st_size for p in out.iterdir() if p.name != "info.json")
        log.info("n=%d: build %.0f s, peak RSS %.0f MB (anonymous %.0f MB), IVF files %.2f GB (+ %.2f GB float32 "
                 "vectors); %s", n, b["seconds"], b["mem"]["VmHWM"], b["peak_anon"], disk / 1e9,
                 vec_path.stat().st_size / 1e9, {k: b["info"][k] for k in ("quantizer", "nlist", "nprobe",
                                                                          "nprobe_bottom", "train_size", "outliers")})
    probe_args = [f"{a}:{b}" for a, b in probes]
    r = run_worker("search", str(vec_path), str(out), str(gt_path), *probe_args)
    m0, m1, m2 = r["mem_before"], r["mem_open"], r["mem_after"]
    log.info("n=%d: searcher RSS anon/file MB: interpreter %.0f/%.0f, opened %.0f/%.0f, after %d queries %.0f/%.0f",
             n, m0["RssAnon"], m0["RssFile"], m1["RssAnon"], m1["RssFile"], nq, m2["RssAnon"], m2["RssFile"])
    log.info("  nprobe top/bottom | recall@%d top | bottom | ms median | p95", K)
    for row in r["rows"]:
        log.info("  %5d / %5d      | %.3f        | %.3f  | %6.1f    | %6.1f", row["nprobe"], row["nprobe_bottom"],
                 row["top"], row["bottom"], row["ms_median"], row["ms_p95"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        kind, *rest = argv[1:]
        if kind == "build":
            res = worker_build(Path(rest[0]), Path(rest[1]), rest[2])
        else:
            probes = [tuple(int(v) for v in a.split(":")) for a in rest[3:]]
            res = worker_search(Path(rest[0]), Path(rest[1]), Path(rest[2]), probes)  # type: ignore[arg-type]
        print(json.dumps(res))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--quantizer", choices=("sq8", "pq"), default="sq8")
    ap.add_argument("--probe", action="append", default=[], metavar="TOP:BOTTOM",
                    help="nprobe for the top and bottom end (repeatable; default: the index's own)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lfs-gui-bench-scale"))
    ap.add_argument("--keep", action="store_true", help="keep the vectors and indexes for another run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    args.workdir.mkdir(parents=True, exist_ok=True)
    probes = [tuple(int(v) for v in p.split(":")) for p in args.probe]
    try:
        for n in args.sizes:
            bench_size(n, args.dim, args.workdir, args.queries, args.quantizer, probes)  # type: ignore[arg-type]
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
