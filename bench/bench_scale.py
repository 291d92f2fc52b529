"""On-disk IVF at 1M and 10M vectors: build time, disk size, resident memory, latency, recall at both ends.

Vectors are synthetic but shaped like metric-learning embeddings, not isotropic noise (which makes
every method look good): ``x = 0.5·m + c_k + s_k·g`` L2-normalised, with ``m`` a mean direction
shared by all (real embeddings are not centred), ``K = n / 1000`` class centres ``c_k`` with
Zipf-like class sizes, and a per-class spread ``s_k`` around 0.8 (``c_k``, ``g`` of unit expected
norm). Same-class cosines come out around 0.65, different-class around 0.13.

The vectors are generated in chunks straight into a memory-mapped ``.npy`` under ``--workdir``
(10M x 128 = 5.1 GB: check ``df -h``); exact top-20/bottom-20 of ``--queries`` gallery items
(themselves excluded) come from a chunked brute-force pass. Three fresh subprocesses, so their memory
is their own:

* **build** - the IVF files (``lfs_gui.index.ivf.iter_ivf_index``) and an index folder around them
  (the vectors hard-linked in as ``embeddings.npy``, a synthetic row table of 1000 pseudo-classes,
  the sidecar): build time, peak resident memory (VmHWM, which also counts mapped page cache) and
  peak anonymous memory;
* **search** - ``load_index`` (as the CLI and the app do), then single queries, both ends at once:
  recall@20 of each end against brute force, wall time (median, 95th percentile) and CPU time
  (median; on a busy shared machine the wall time mostly measures the others);
* **app** - the main window (offscreen) on the index: open, scroll the gallery to its last row,
  click an image and wait for its retrievals; resident memory before, after opening, after that.

Memory is reported as anonymous / file-backed resident MB: the first is the process's own, the
second the page cache of memory-mapped files (reclaimable; it grows with what queries touched).
With ``--keep``, a later run reuses the vectors, the truth, the index folders and the IVF files
(``ivf-<quantizer>-<n>x<dim>/``, linked, with that build's own time and peak memory, which it reports).

    nice -n 10 .venv/bin/python bench/bench_scale.py [--sizes 1000000 10000000] [--dim 128] [--keep]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


def synthetic_rows(n: int) -> tuple[list[str], list[int], list[str]]:
    """Relative paths (folders of 1000 images) and pseudo-labels (1000 classes) for the row table."""
    return [f"{i // 1000:05d}/{i:08d}.jpg" for i in range(n)], [i % 1000 for i in range(n)], \
        [f"class{k:03d}" for k in range(1000)]


def worker_build(vectors: Path, folder: Path, quantizer: str, reuse: Path) -> dict:
    """The index folder: IVF files built from ``vectors`` (or linked from an earlier build in ``reuse``),
    the vectors hard-linked in as ``embeddings.npy``, a synthetic row table, the sidecar."""
    from lfs_gui.index import IndexMeta, save_index
    from lfs_gui.index.faiss_index import EmbeddingIndex
    from lfs_gui.index.ivf import IvfSearcher, iter_ivf_index, open_ivf
    from lfs_gui.index.ivf_files import IVF_FILES, IvfInfo, IvfSettings, NpyRows
    from lfs_gui.index.store import staged_embeddings_path
    from lfs_gui.jobs import run_generator

    folder.mkdir(parents=True, exist_ok=True)
    staged = staged_embeddings_path(folder)
    staged.unlink(missing_ok=True)
    os.link(vectors, staged)  # the same 5 GB, not a copy
    peak = PeakAnon()
    t = time.perf_counter()
    if (reuse / "info.json").is_file():  # an earlier run's IVF files (--keep): link, do not rebuild
        info = IvfInfo.from_dict(json.loads((reuse / "info.json").read_text()))
        for name in IVF_FILES:
            (folder / name).unlink(missing_ok=True)
            os.link(reuse / name, folder / name)
        index, stats = open_ivf(folder, info, "rebuild")
        rows = NpyRows(staged)
        ix = EmbeddingIndex(np.load(staged, mmap_mode="r"), "ivf", ivf=IvfSearcher(index, stats, rows, info))
        earlier = json.loads((reuse / "info.json").read_text())  # that build's own figures
        seconds, build_peak = float(earlier.get("seconds", 0.0)), float(earlier.get("peak_anon", 0.0))
        peak.stop()
        reused = True
    else:
        ix = run_generator(iter_ivf_index(staged, folder, IvfSettings(quantizer=quantizer)))
        seconds, build_peak = time.perf_counter() - t, peak.stop()
        reused = False
        reuse.mkdir(parents=True, exist_ok=True)  # for a later --keep run: the files and this build's figures
        for name in IVF_FILES:
            (reuse / name).unlink(missing_ok=True)
            os.link(folder / name, reuse / name)
        (reuse / "info.json").write_text(json.dumps({**ix.ivf.info.to_dict(), "seconds": round(seconds),
                                                     "peak_anon": round(build_peak)}))
    mem = memory()
    rels, labels, classes = synthetic_rows(len(ix))
    gallery = folder.parent / f"gallery-{len(ix)}"
    for i in np.unique(np.linspace(0, len(ix) - 1, 16).astype(int)):  # what opening checks is there
        (gallery / rels[i]).parent.mkdir(parents=True, exist_ok=True)
        (gallery / rels[i]).touch()
    t = time.perf_counter()
    save_index(ix, folder, IndexMeta(relpaths=rels, labels=labels, classes=classes, gallery_root=str(gallery),
                                     gallery_kind="folder", gallery_name=f"synthetic-{len(ix)}"), staged_embeddings=staged)
    return {"seconds": seconds, "save_seconds": time.perf_counter() - t, "info": ix.ivf.info.to_dict(), "mem": mem,
            "peak_anon": build_peak, "reused": reused}


def worker_search(folder: Path, gt: Path, probes: list[tuple[int, int]]) -> dict:
    """Recall and latency of single queries through ``load_index`` (what the CLI and the app use)."""
    import faiss

    from lfs_gui.index import load_index

    before = memory()
    t = time.perf_counter()
    ix = load_index(folder)
    open_s = time.perf_counter() - t
    opened = memory()
    faiss.omp_set_num_threads(1)  # one query at a time runs on one thread; idle OpenMP threads only spin
    z = np.load(gt)
    qids, t_true, b_true = z["qids"], z["top"], z["bottom"]
    rows = []
    for top_p, bot_p in probes or [(ix.ivf.nprobe, ix.ivf.nprobe_bottom)]:
        ix.ivf.set_nprobe(top_p, bot_p)
        times, cpu, tops, bots = [], [], [], []
        for qi in qids:
            q = ix.ivf.rows[int(qi)]
            t, c = time.perf_counter(), time.process_time()
            (_, ti), (_, bi) = ix.both_ends(q, K, exclude=int(qi))
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            tops.append(np.pad(ti, (0, K - len(ti)), constant_values=-1))
            bots.append(np.pad(bi, (0, K - len(bi)), constant_values=-1))
        rows.append({"nprobe": top_p, "nprobe_bottom": bot_p, "top": recall(np.array(tops), t_true),
                     "bottom": recall(np.array(bots), b_true), "ms_median": 1000 * float(np.median(times[1:])),
                     "ms_p95": 1000 * float(np.percentile(times[1:], 95)),
                     "cpu_ms_median": 1000 * float(np.median(cpu[1:]))})
    return {"rows": rows, "open_s": open_s, "mem_before": before, "mem_open": opened, "mem_after": memory()}


def worker_app(folder: Path) -> dict:
    """The window (offscreen) on the index: open, paint, scroll the gallery to its end, run a query."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from lfs_gui.app.main_window import MainWindow
    from lfs_gui.session import Session

    def pump(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    pump(0.5)
    before = memory()
    t = time.perf_counter()
    session = Session.open_index(folder)
    win.set_session(session)
    app.processEvents()
    open_s = time.perf_counter() - t
    pump(1.0)
    opened = memory()
    view, model = win.gallery.view, win.gallery.model
    t = time.perf_counter()
    view.scrollToBottom()
    app.processEvents()
    scroll_s = time.perf_counter() - t
    got = []
    win.state.retrievalsChanged.connect(got.append)
    t = time.perf_counter()
    view.setCurrentIndex(model.index(model.rowCount() - 3))
    while not got and time.perf_counter() - t < 120:
        app.processEvents()
        time.sleep(0.005)
    query_s = time.perf_counter() - t
    pump(1.0)
    after = memory()
    win.shutdown()
    win.close()
    return {"rows": model.rowCount(), "open_s": open_s, "scroll_s": scroll_s, "query_s": query_s,
            "mem_before": before, "mem_open": opened, "mem_after": after}


_WORKERS = {"build": "worker_build", "search": "worker_search", "app": "worker_app"}


def run_worker(kind: str, **kwargs: object) -> dict:
    """Run ``worker_<kind>(**kwargs)`` in a fresh interpreter (its memory is its own); its JSON result.

    The arguments travel as one JSON object of keywords, not as positions: a worker that reads them
    differently (e.g. the script edited while a long run was under way, as happened to a 10M run
    whose search worker took the truth file for a ``TOP:BOTTOM`` probe) fails naming the keyword."""
    args = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()})
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worker_main(kind: str, args: str) -> dict:
    """The child side of :func:`run_worker`."""
    kwargs = json.loads(args)
    paths = {"vectors", "folder", "reuse", "gt"}
    kwargs = {k: Path(v) if k in paths else v for k, v in kwargs.items()}
    if "probes" in kwargs:
        kwargs["probes"] = [tuple(p) for p in kwargs["probes"]]
    return globals()[_WORKERS[kind]](**kwargs)


def parse_probe(text: str) -> tuple[int, int]:
    """``TOP:BOTTOM`` (two positive integers) for ``--probe``."""
    try:
        top, bottom = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not TOP:BOTTOM, e.g. 256:1024") from None
    if top < 1 or bottom < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: nprobe values must be at least 1")
    return top, bottom


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
    folder = work / f"index-{quantizer}-{n}x{dim}"
    if not (folder / "index.json").is_file():
        b = run_worker("build", vectors=vec_path, folder=folder, quantizer=quantizer,
                       reuse=work / f"ivf-{quantizer}-{n}x{dim}")
        ivf_bytes = sum((folder / name).stat().st_size for name in ("ivf.index", "ivf.ivfdata", "ivf.lists.npy"))
        log.info("n=%d: IVF build %.0f s%s (peak anonymous %.0f MB), index folder saved in %.0f s; IVF "
                 "files %.2f GB + %.2f GB float32 embeddings; %s", n, b["seconds"],
                 " (the earlier build's, files reused)" if b["reused"] else "", b["peak_anon"], b["save_seconds"], ivf_bytes / 1e9, vec_path.stat().st_size / 1e9,
                 {k: b["info"][k] for k in ("quantizer", "nlist", "nprobe", "nprobe_bottom", "train_size", "outliers")})
    r = run_worker("search", folder=folder, gt=gt_path, probes=[list(p) for p in probes])
    m0, m1, m2 = r["mem_before"], r["mem_open"], r["mem_after"]
    log.info("n=%d: load_index %.1f s; RSS anon/file MB: interpreter %.0f/%.0f, opened %.0f/%.0f, after %d queries "
             "%.0f/%.0f", n, r["open_s"], m0["RssAnon"], m0["RssFile"], m1["RssAnon"], m1["RssFile"], nq,
             m2["RssAnon"], m2["RssFile"])
    log.info("  nprobe top/bottom | recall@%d top | bottom | wall ms median | p95    | CPU ms median "
             "(load average %.1f)", K, os.getloadavg()[0])
    for row in r["rows"]:
        log.info("  %5d / %5d      | %.3f        | %.3f  | %6.1f         | %6.1f | %6.1f", row["nprobe"],
                 row["nprobe_bottom"], row["top"], row["bottom"], row["ms_median"], row["ms_p95"], row["cpu_ms_median"])
    a = run_worker("app", folder=folder)
    m0, m1, m2 = a["mem_before"], a["mem_open"], a["mem_after"]
    log.info("n=%d: app (offscreen window): open %.1f s, gallery of %d rows scrolled to its end in %.2f s, a query's "
             "retrievals in %.2f s; RSS anon/file MB: empty window %.0f/%.0f, index open %.0f/%.0f, after scroll + "
             "query %.0f/%.0f", n, a["open_s"], a["rows"], a["scroll_s"], a["query_s"], m0["RssAnon"], m0["RssFile"],
             m1["RssAnon"], m1["RssFile"], m2["RssAnon"], m2["RssFile"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        print(json.dumps(worker_main(argv[1], argv[2])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--quantizer", choices=("sq8", "pq"), default="sq8")
    ap.add_argument("--probe", action="append", default=[], metavar="TOP:BOTTOM", type=parse_probe,
                    help="nprobe for the top and bottom end (repeatable; default: the index's own)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lfs-gui-bench-scale"))
    ap.add_argument("--keep", action="store_true", help="keep the vectors and indexes for another run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    args.workdir.mkdir(parents=True, exist_ok=True)
    probes = args.probe
    try:
        for n in args.sizes:
            bench_size(n, args.dim, args.workdir, args.queries, args.quantizer, probes)  # type: ignore[arg-type]
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
