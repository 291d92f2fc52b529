"""Build an on-disk IVF index for galleries that do not fit in memory: train, add in blocks, merge.

The inverted lists of an IVF index are the bulk of it (one code per vector); the coarse quantiser
(``nlist`` centroids) and the codec are small. So the index is built in three steps, none of which
holds more than one block of vectors in memory (files and settings: :mod:`lfs_gui.index.ivf_files`):

1. **train** on a random sample: spherical k-means for the centroids (unit length: inner product =
   cosine), the codec (8-bit scalar or product quantisation) on the vectors, and the outlier
   threshold (the ``1 - outliers`` quantile of the sample's distances to their centroid);
2. **add** the vectors block by block (``block_rows`` rows read from the matrix, e.g.
   :class:`~lfs_gui.index.ivf_files.NpyRows`), each block into its own copy of the trained index
   written to a temporary file, on ``workers`` threads (FAISS releases the GIL and also
   parallelises inside one add). A vector goes to its nearest centroid's list, or to the outlier
   list when it is farther than the threshold; each block also sums, per list, the squares of its
   members' offsets from the centroid (the searcher's list statistics);
3. **merge** the blocks' lists into FAISS' ``OnDiskInvertedLists`` (``ivf.ivfdata``) and write the
   header ``ivf.index`` that points at it, and ``ivf.lists.npy``.

``ivf.ivfdata`` is unlinked before it is rewritten (a reader that has the old one mapped keeps its
inode); the header and the statistics are written atomically. The caller records the returned
:class:`IvfInfo` in its sidecar, written last (:mod:`lfs_gui.index.sidecar`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

from lfs_gui.index.ivf_files import (
    IVF_DATA_FILE,
    IVF_INDEX_FILE,
    IVF_LISTS_FILE,
    IvfInfo,
    IvfSettings,
    resolve_settings,
)
from lfs_gui.jobs import Progress, atomic_path
from lfs_gui.killpoints import kill_point

log = logging.getLogger(__name__)
T = TypeVar("T")
HELD_OUT = 100_000  # vectors (not trained on) whose distances to the centroids set the outlier threshold


def _check_unit(b: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(b, axis=1)
    if not np.isfinite(b).all() or np.abs(norms - 1.0).max(initial=0.0) > 1e-3:
        raise ValueError(f"{what}: not finite unit vectors; L2-normalise the embeddings first")
    return b


def _rows(x: Any, key: slice | np.ndarray, what: str) -> np.ndarray:
    return _check_unit(np.ascontiguousarray(x[key], dtype=np.float32), what)


def _train(sample: np.ndarray, held_out: np.ndarray, s: IvfSettings) -> tuple[faiss.IndexIVF, np.ndarray, float]:
    """The trained, empty index (nlist + 1 lists), its nlist centroids, and the outlier threshold (a
    quantile over ``held_out`` vectors: the training sample sits closer to the centroids it made)."""
    dim = sample.shape[1]
    km = faiss.Kmeans(dim, s.nlist, niter=10, spherical=True, seed=s.seed, max_points_per_centroid=256)
    km.train(sample)
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    quant = faiss.IndexFlatIP(dim)
    quant.add(np.concatenate([centroids, np.zeros((1, dim), np.float32)]))  # the outlier list's "centroid"
    if s.quantizer == "pq":
        index = faiss.IndexIVFPQ(quant, dim, s.nlist + 1, s.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFScalarQuantizer(quant, dim, s.nlist + 1, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quant.this.disown()
    index.by_residual = False  # codes of the vectors themselves: the outlier list has no centroid
    index.train(sample)  # the codec only: the quantiser already holds its centroids
    dist = np.linalg.norm(held_out - centroids[_assign(km.index, held_out)], axis=1)
    threshold = float(np.quantile(dist, 1.0 - s.outliers)) if s.outliers > 0 else float("inf")
    return index, centroids, threshold


def _assign(quant: faiss.Index, b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(quant.search(b, 1)[1][:, 0], dtype=np.int64)


def iter_build_ivf(x: Any, folder: str | Path, settings: IvfSettings | None = None
                   ) -> Generator[Progress, None, IvfInfo]:
    """Build the IVF files in ``folder`` from the unit rows of ``x`` (an array, memmap or NpyRows)."""
    n, dim = int(x.shape[0]), int(x.shape[1])
    s = resolve_settings(settings or IvfSettings(), n, dim)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(".ivf-build-*"):  # blocks of a build that was killed
        shutil.rmtree(old, ignore_errors=True)
    picked = np.random.default_rng(s.seed).choice(n, size=min(n, s.train_size + HELD_OUT), replace=False)
    rows = np.sort(picked[: s.train_size])
    held = np.sort(picked[s.train_size:]) if s.train_size < n else rows[:HELD_OUT]  # tiny n: reuse the sample
    yield Progress(0, n, f"training IVF ({s.quantizer}, {s.nlist} lists) on {s.train_size} vectors")
    t0 = time.perf_counter()
    index, centroids, threshold = _train(_rows(x, rows, "the training sample"), _rows(x, held, "the held-out sample"), s)
    log.info("IVF trained in %.1f s; outlier distance > %.3f", time.perf_counter() - t0, threshold)
    trained = faiss.serialize_index(index)
    quant = faiss.IndexFlatIP(dim)
    quant.add(centroids)
    starts = list(range(0, n, s.block_rows))
    tmp = Path(tempfile.mkdtemp(prefix=".ivf-build-", dir=folder))
    try:
        def add_block(j: int) -> tuple[str, np.ndarray]:
            b0, b1 = starts[j], min(n, starts[j] + s.block_rows)
            b, ids = _rows(x, slice(b0, b1), f"rows {b0}..{b1 - 1}"), np.arange(b0, b1, dtype=np.int64)
            assign = _assign(quant, b)
            moments, far = _list_moments(b, assign, centroids, threshold)
            assign[far] = s.nlist
            part = faiss.deserialize_index(trained)
            part.add_core(b1 - b0, faiss.swig_ptr(b), faiss.swig_ptr(ids), faiss.swig_ptr(assign))
            name = str(tmp / f"block{j:05d}.index")
            faiss.write_index(part, name)
            return name, moments

        names: list[str] = []
        moments = np.zeros((s.nlist + 1, dim + 1), np.float64)
        with ThreadPoolExecutor(max_workers=s.workers) as pool:
            for name, mom in _in_order(pool, add_block, len(starts), s.workers):
                names.append(name)
                moments += mom
                kill_point(f"ivf:block:{len(names)}")  # a killed build leaves .ivf-build-*; the next one removes it
                yield Progress(min(n, len(names) * s.block_rows), n, f"added block {len(names)}/{len(starts)}")
        yield Progress(n, n, "merging the inverted lists on disk")
        with quiet_stdout():  # FAISS printf()s "resizing <file>", which would corrupt `--json` output
            size = _merge_on_disk(index, names, folder / IVF_DATA_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stats = moments.astype(np.float32)
    stats[:, 1:] /= np.maximum(moments[:, :1], 1.0).astype(np.float32)  # sums of squares -> mean squares
    with atomic_path(folder / IVF_LISTS_FILE) as t, open(t, "wb") as fh:
        np.save(fh, stats, allow_pickle=False)
    with atomic_path(folder / IVF_INDEX_FILE) as t:
        faiss.write_index(index, str(t))
    sha = hashlib.sha256((folder / IVF_INDEX_FILE).read_bytes()).hexdigest()
    lists_sha = hashlib.sha256((folder / IVF_LISTS_FILE).read_bytes()).hexdigest()
    outliers = int(stats[s.nlist, 0])
    log.info("IVF index of %d x %d (%s, %d lists, %d outliers) in %s", n, dim, s.quantizer, s.nlist, outliers, folder)
    return IvfInfo(s.quantizer, s.nlist, s.pq_m, s.nprobe, s.nprobe_bottom, s.rerank, s.train_size, n, dim,
                   outliers, threshold if np.isfinite(threshold) else 0.0, sha, size, lists_sha)


def _list_moments(b: np.ndarray, assign: np.ndarray, centroids: np.ndarray, threshold: float,
                  chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """``(moments, outlier mask)``: per list (the outlier list last) its count and the sum of the
    squared offsets of its members from their centroid per dimension; the mask marks the rows
    farther than ``threshold`` from their centroid (they go to the outlier list)."""
    nlist, dim = centroids.shape
    out = np.zeros((nlist + 1, dim + 1), np.float64)
    far = np.zeros(len(b), bool)
    for s in range(0, b.shape[0], chunk):  # chunked: temporaries of ``chunk`` rows, not of the block
        a = assign[s:s + chunk].copy()
        off = b[s:s + chunk] - centroids[a]
        sq = np.square(off)
        far[s:s + chunk] = sq.sum(axis=1) > threshold ** 2
        a[far[s:s + chunk]] = nlist
        order = np.argsort(a, kind="stable")
        lists, first, counts = np.unique(a[order], return_index=True, return_counts=True)
        out[lists, 0] += counts
        out[lists, 1:] += np.add.reduceat(sq[order], first, axis=0, dtype=np.float64)
    return out, far


def _in_order(pool: ThreadPoolExecutor, fn: Callable[[int], T], count: int, window: int) -> Iterator[T]:
    """``fn(0), fn(1), ...`` in order, at most ``window`` in flight (closing the iterator waits for those only)."""
    pending: deque[Future[T]] = deque()
    try:
        for j in range(count):
            pending.append(pool.submit(fn, j))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send what C code prints to file descriptor 1 to /dev/null meanwhile (FAISS' on-disk lists
    ``printf`` status lines; Python's own ``sys.stdout`` is flushed first and unaffected after)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        _libc_fflush()
        os.dup2(saved, 1)
        os.close(saved)


def _libc_fflush() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library handle (e.g. Windows): nothing buffered to drop
        pass


def _merge_on_disk(index: faiss.IndexIVF, block_files: list[str], data_file: Path) -> int:
    """Merge the blocks' lists into ``data_file`` and attach them to ``index``; returns its size."""
    blocks = [faiss.read_index(f, faiss.IO_FLAG_MMAP) for f in block_files]  # their lists stay on disk
    vec = faiss.InvertedListsPtrVector()
    for b in blocks:
        vec.push_back(b.invlists)
    data_file.unlink(missing_ok=True)  # a reader may have the old file mapped: keep its inode intact
    lists = faiss.OnDiskInvertedLists(index.nlist, index.code_size, str(data_file))
    total = lists.merge_from_multiple(vec.data(), vec.size(), False, False)
    index.ntotal = total
    index.replace_invlists(lists, True)
    lists.this.disown()
    del blocks
    with open(data_file, "rb+") as fh:
        os.fsync(fh.fileno())
    return data_file.stat().st_size
