"""Build an on-disk IVF index for galleries that do not fit in memory: train, add in blocks, merge.

The inverted lists of an IVF index are the bulk of it (one code per vector); the coarse quantiser
(``nlist`` centroids) and the codec are small. So the index is built in three steps, none of which
holds more than one block of vectors in memory:

1. **train** the coarse quantiser (spherical k-means: centroids of unit length, inner product) and
   the codec (8-bit scalar or product quantisation) on a random sample of the vectors;
2. **add** the vectors block by block (``block_rows`` rows, read from a possibly memory-mapped
   matrix), each into its own copy of the trained index, written to a temporary block file; blocks
   run on ``workers`` threads (FAISS releases the GIL; it also parallelises inside one add);
3. **merge** the blocks' lists into FAISS' ``OnDiskInvertedLists`` (``ivf.ivfdata``, a flat file
   the searcher memory-maps) and write the small ``ivf.index`` header that points at it.

Files (in the index folder; the caller writes its sidecar last, see :mod:`lfs_gui.index.sidecar`):
``ivf.index`` (quantiser, codec, list offsets; written atomically) and ``ivf.ivfdata`` (the lists;
unlinked first, so a reader that has the old one mapped keeps its old inode). The returned
:class:`IvfInfo` goes into the sidecar: the searcher checks the header's sha256 and the data file's
size before FAISS reads either (a short ``ivfdata`` would crash the process on first access).

Sizes: ``nlist`` ~ 4·sqrt(n) rounded to a power of two (at most ``n / 39``: k-means wants ~39
training points per centroid, and at most 8192), trained on 64 samples per list.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np

from lfs_gui.jobs import Progress, atomic_path

log = logging.getLogger(__name__)
T = TypeVar("T")

IVF_INDEX_FILE = "ivf.index"
IVF_DATA_FILE = "ivf.ivfdata"
IVF_LISTS_FILE = "ivf.lists.npy"
QUANTIZERS = ("sq8", "pq")
IVF_MIN_COUNT = 1000  # fewer vectors than this: use flat (exact and faster)
MAX_NLIST = 8192
TRAIN_PER_LIST = 64
BOTTOM_PROBE_FACTOR = 4  # the bottom end probes this many times more lists (its items are outliers)
_BLOCK_BYTES = 128 << 20  # float32 rows per add block


@dataclass
class IvfSettings:
    """How to build (``quantizer``, ``nlist``, ``pq_m``, ``train_size``) and search (``nprobe``,
    ``rerank``); 0 = choose from the size. ``rerank`` candidates per end are re-scored exactly."""

    quantizer: str = "sq8"
    nlist: int = 0
    pq_m: int = 0
    train_size: int = 0
    nprobe: int = 0
    nprobe_bottom: int = 0
    rerank: int = 0
    block_rows: int = 0
    workers: int = 1
    seed: int = 0


@dataclass
class IvfInfo:
    """What the sidecar records about the IVF files (``index_sha256`` of ``ivf.index``)."""

    quantizer: str
    nlist: int
    pq_m: int
    nprobe: int
    nprobe_bottom: int
    rerank: int
    train_size: int
    count: int
    dim: int
    index_sha256: str
    ivfdata_bytes: int
    lists_sha256: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "IvfInfo":
        """Parse a sidecar's ``ivf`` entry; raises ``ValueError`` naming the bad field."""
        if not isinstance(d, dict):
            raise ValueError("'ivf' must be an object")
        out = {}
        for name, f in cls.__dataclass_fields__.items():
            v = d.get(name)
            ok = isinstance(v, str) if f.type == "str" else isinstance(v, int) and not isinstance(v, bool) and v >= 0
            if not ok:
                raise ValueError(f"field 'ivf.{name}' missing or not a {f.type}")
            out[name] = v
        if out["quantizer"] not in QUANTIZERS:
            raise ValueError(f"'ivf.quantizer' is {out['quantizer']!r}, not one of {', '.join(QUANTIZERS)}")
        return cls(**out)


def auto_nlist(n: int) -> int:
    """Number of lists for ``n`` vectors (see the module docstring)."""
    want = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    return int(max(1, min(want, MAX_NLIST, n // 39)))


def auto_nprobe(nlist: int) -> int:
    """Lists probed per end: 1/32 of them, at least 16 (measured in bench/bench_scale.py)."""
    return int(min(nlist, max(16, nlist // 32)))


def auto_pq_m(dim: int) -> int:
    """PQ sub-quantisers: one byte per 4 dimensions (the largest divisor of ``dim`` not above dim/4)."""
    m = max(1, dim // 4)
    while dim % m:
        m -= 1
    return m


def resolve_settings(s: IvfSettings, n: int, dim: int) -> IvfSettings:
    """Fill the zeros of ``s`` for ``n`` vectors of ``dim``; raises ``ValueError`` for bad values."""
    if s.quantizer not in QUANTIZERS:
        raise ValueError(f"unknown IVF quantizer {s.quantizer!r}; use {' or '.join(QUANTIZERS)}")
    if n < IVF_MIN_COUNT:
        raise ValueError(f"an IVF index needs at least {IVF_MIN_COUNT} vectors, got {n}; use kind flat")
    nlist = s.nlist or auto_nlist(n)
    if not 1 <= nlist <= n // 39:
        raise ValueError(f"nlist {nlist} must be between 1 and {n // 39} for {n} vectors (39 per list to train)")
    pq_m = (s.pq_m or auto_pq_m(dim)) if s.quantizer == "pq" else 0
    if pq_m and dim % pq_m:
        raise ValueError(f"pq_m {pq_m} must divide the dimension {dim}")
    train = min(n, s.train_size or max(TRAIN_PER_LIST * nlist, 256 * 39 if pq_m else 0))
    nprobe = min(nlist, s.nprobe or auto_nprobe(nlist))
    nprobe_bottom = min(nlist, s.nprobe_bottom or BOTTOM_PROBE_FACTOR * nprobe)
    block = s.block_rows or max(1024, _BLOCK_BYTES // (4 * dim))
    return IvfSettings(s.quantizer, nlist, pq_m, train, nprobe, nprobe_bottom, s.rerank or 0, block,
                       max(1, s.workers), s.seed)


def empty_index(dim: int, s: IvfSettings) -> faiss.IndexIVF:
    """An untrained IVF index (inner product) for resolved settings ``s``."""
    quant = faiss.IndexFlatIP(dim)
    if s.quantizer == "pq":
        index = faiss.IndexIVFPQ(quant, dim, s.nlist, s.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFScalarQuantizer(quant, dim, s.nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quant.this.disown()
    index.cp.seed = s.seed
    return index


def _check_unit(b: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(b, axis=1)
    if not np.isfinite(b).all() or np.abs(norms - 1.0).max(initial=0.0) > 1e-3:
        raise ValueError(f"{what}: not finite unit vectors; L2-normalise the embeddings first")
    return b


def _block(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    return _check_unit(np.ascontiguousarray(x[start:stop], dtype=np.float32), f"rows {start}..{stop - 1}")


def iter_build_ivf(x: np.ndarray, folder: str | Path, settings: IvfSettings | None = None
                   ) -> Generator[Progress, None, IvfInfo]:
    """Build ``ivf.index`` + ``ivf.ivfdata`` in ``folder`` from unit rows ``x`` (may be a memmap)."""
    n, dim = int(x.shape[0]), int(x.shape[1])
    s = resolve_settings(settings or IvfSettings(), n, dim)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(s.seed)
    rows = np.sort(rng.choice(n, size=s.train_size, replace=False))
    yield Progress(0, n, f"training IVF ({s.quantizer}, {s.nlist} lists) on {s.train_size} vectors")
    sample = _check_unit(np.ascontiguousarray(x[rows], dtype=np.float32), "the training sample")
    index = empty_index(dim, s)
    t0 = time.perf_counter()
    index.train(sample)
    del sample
    log.info("IVF trained in %.1f s", time.perf_counter() - t0)
    trained = faiss.serialize_index(index)
    starts = list(range(0, n, s.block_rows))
    tmp = Path(tempfile.mkdtemp(prefix=".ivf-build-", dir=folder))
    try:
        centroids = index.quantizer.reconstruct_n(0, s.nlist)

        def add_block(j: int) -> tuple[str, np.ndarray]:
            b0, b1 = starts[j], min(n, starts[j] + s.block_rows)
            part = faiss.deserialize_index(trained)
            b, ids = _block(x, b0, b1), np.arange(b0, b1, dtype=np.int64)
            assign = np.ascontiguousarray(part.quantizer.search(b, 1)[1][:, 0])
            part.add_core(b1 - b0, faiss.swig_ptr(b), faiss.swig_ptr(ids), faiss.swig_ptr(assign))
            name = str(tmp / f"block{j:05d}.index")
            faiss.write_index(part, name)
            return name, _list_moments(b, assign, centroids)

        names: list[str] = []
        moments = np.zeros((s.nlist, dim + 1), np.float64)
        with ThreadPoolExecutor(max_workers=s.workers) as pool:
            for name, mom in _in_order(pool, add_block, len(starts), s.workers):
                names.append(name)
                moments += mom
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
    log.info("IVF index of %d x %d (%s, %d lists) in %s", n, dim, s.quantizer, s.nlist, folder)
    return IvfInfo(s.quantizer, s.nlist, s.pq_m, s.nprobe, s.nprobe_bottom, s.rerank, s.train_size, n, dim, sha,
                   size, lists_sha)


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


def _list_moments(b: np.ndarray, assign: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Per list: [count, sum over members of (x - centroid)**2 per dimension] for rows ``b``."""
    out = np.zeros((centroids.shape[0], b.shape[1] + 1), np.float64)
    out[:, 0] = np.bincount(assign, minlength=centroids.shape[0])
    for s in range(0, b.shape[0], chunk):  # chunked: a few temporaries of ``chunk`` rows, not of the block
        a = assign[s:s + chunk]
        order = np.argsort(a, kind="stable")
        lists, starts = np.unique(a[order], return_index=True)
        sq = np.square(b[s:s + chunk][order] - centroids[a[order]])
        out[lists, 1:] += np.add.reduceat(sq, starts, axis=0, dtype=np.float64)
    return out


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
