"""What an on-disk IVF index is made of: its files, settings, sidecar record, and row access by file reads.

Files, next to the index folder's ``embeddings.npy`` (:mod:`lfs_gui.index.ivf_build` writes them,
:mod:`lfs_gui.index.ivf` reads them):

* ``ivf.index``     - the FAISS header: coarse centroids, codec, offsets of the lists (a few MB);
* ``ivf.ivfdata``   - the inverted lists (FAISS ``OnDiskInvertedLists``: an 8-bit or PQ code and an
  id per vector), memory-mapped by the searcher;
* ``ivf.lists.npy`` - float32 (nlist + 1, dim + 1): per list its size and the mean square of its
  members around the centroid per dimension (the searcher's list ranking, see :mod:`.ivf`).

The lists are ``0 .. nlist-1`` (one per centroid) plus list ``nlist``, the **outlier list**: the
``outliers`` fraction of vectors farthest from their centroid (a residual norm above
``outlier_norm``, the quantile estimated on the training sample). Those are the vectors a list's
centroid and spread describe worst, and the ones most often among the most dissimilar items of a
query; the searcher scans the outlier list for every query. Codes are of the vectors themselves
(not of residuals), so one codec serves both kinds of list.

:class:`IvfInfo` is the ``ivf`` object of the index sidecar. :class:`NpyRows` reads rows of a
``.npy`` matrix with ``pread`` instead of a memory map: a build streams the whole matrix and the
re-rank reads scattered rows, and neither should count the page cache as the process's memory (on
kernels with large page-cache folios one touched row maps up to 2 MB around it).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

IVF_INDEX_FILE = "ivf.index"
IVF_DATA_FILE = "ivf.ivfdata"
IVF_LISTS_FILE = "ivf.lists.npy"
IVF_FILES = (IVF_INDEX_FILE, IVF_DATA_FILE, IVF_LISTS_FILE)
QUANTIZERS = ("sq8", "pq")
IVF_MIN_COUNT = 1000  # fewer vectors than this: use flat (exact and faster)
MAX_NLIST = 8192
TRAIN_PER_LIST = 64
OUTLIERS = 0.02
BOTTOM_PROBE_FACTOR = 2  # the bottom end probes this many times more lists (its items are extremes),
MIN_PROBE_BOTTOM = 64  # and at least this many (small indexes have small, noisy lists; scanning is cheap)
_BLOCK_BYTES = 128 << 20  # float32 rows per add block


@dataclass
class IvfSettings:
    """How to build and search; 0 = chosen from the size (:func:`resolve_settings`).

    ``nprobe`` / ``nprobe_bottom``: lists scanned for the top / bottom end; ``rerank``: candidates
    per end re-scored exactly beyond k; ``outliers``: fraction of vectors in the outlier list."""

    quantizer: str = "sq8"
    nlist: int = 0
    pq_m: int = 0
    train_size: int = 0
    nprobe: int = 0
    nprobe_bottom: int = 0
    rerank: int = 0
    outliers: float = OUTLIERS
    block_rows: int = 0
    workers: int = 1
    seed: int = 0


@dataclass
class IvfInfo:
    """The sidecar's record of the IVF files (sha256 of ``ivf.index`` and ``ivf.lists.npy``)."""

    quantizer: str
    nlist: int
    pq_m: int
    nprobe: int
    nprobe_bottom: int
    rerank: int
    train_size: int
    count: int
    dim: int
    outliers: int
    outlier_norm: float
    index_sha256: str
    ivfdata_bytes: int
    lists_sha256: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> "IvfInfo":
        """Parse a sidecar's ``ivf`` object; raises ``ValueError`` naming the bad field."""
        if not isinstance(d, dict):
            raise ValueError("'ivf' must be an object")
        out: dict = {}
        for f in fields(cls):
            v = d.get(f.name)
            if f.type == "str":
                ok = isinstance(v, str)
            elif f.type == "float":
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            else:
                ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
            if not ok:
                raise ValueError(f"field 'ivf.{f.name}' missing or not a non-negative {f.type}")
            out[f.name] = v
        if out["quantizer"] not in QUANTIZERS:
            raise ValueError(f"'ivf.quantizer' is {out['quantizer']!r}, not one of {', '.join(QUANTIZERS)}")
        return cls(**out)


def auto_nlist(n: int) -> int:
    """Lists for ``n`` vectors: ~4·sqrt(n) as a power of two, at most n/39 (k-means wants 39 training
    points per centroid) and :data:`MAX_NLIST` (training cost)."""
    want = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    return int(max(1, min(want, MAX_NLIST, n // 39)))


def auto_nprobe(nlist: int) -> int:
    """Lists probed for the top end: 1/32 of them, at least 16 (see bench/README.md)."""
    return int(min(nlist, max(16, nlist // 32)))


def auto_pq_m(dim: int) -> int:
    """PQ sub-quantisers: one byte per 4 dimensions (the largest divisor of ``dim`` not above dim/4)."""
    m = max(1, dim // 4)
    while dim % m:
        m -= 1
    return m


def resolve_settings(s: IvfSettings, n: int, dim: int) -> IvfSettings:
    """``s`` with its zeros filled for ``n`` vectors of ``dim``; raises ``ValueError`` for bad values."""
    if s.quantizer not in QUANTIZERS:
        raise ValueError(f"unknown IVF quantizer {s.quantizer!r}; use {' or '.join(QUANTIZERS)}")
    if n < IVF_MIN_COUNT:
        raise ValueError(f"an IVF index needs at least {IVF_MIN_COUNT} vectors, got {n}; use --kind flat")
    nlist = s.nlist or auto_nlist(n)
    if not 1 <= nlist <= n // 39:
        raise ValueError(f"nlist {nlist} must be between 1 and {n // 39} for {n} vectors (39 per list to train)")
    if not 0 <= s.outliers < 0.5:
        raise ValueError(f"outliers must be a fraction in [0, 0.5), got {s.outliers}")
    pq_m = (s.pq_m or auto_pq_m(dim)) if s.quantizer == "pq" else 0
    if pq_m and dim % pq_m:
        raise ValueError(f"pq_m {pq_m} must divide the dimension {dim}")
    train = min(n, s.train_size or max(TRAIN_PER_LIST * nlist, 256 * 39 if pq_m else 0))
    nprobe = min(nlist, s.nprobe or auto_nprobe(nlist))
    nprobe_bottom = min(nlist, s.nprobe_bottom or max(MIN_PROBE_BOTTOM, BOTTOM_PROBE_FACTOR * nprobe))
    block = s.block_rows or max(1024, _BLOCK_BYTES // (4 * dim))
    return IvfSettings(s.quantizer, nlist, pq_m, train, nprobe, nprobe_bottom, s.rerank, s.outliers, block,
                       max(1, s.workers), s.seed)


class NpyRows:
    """Rows of a 2-D float32 C-order ``.npy`` file, read with ``pread`` (see the module docstring).

    ``rows[i]``, ``rows[a:b]`` and ``rows[int_array]`` return new float32 arrays; ``shape`` as for an array.
    Raises ``ValueError`` naming the file when its header is not such a matrix or the file is short.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            try:
                major, _ = np.lib.format.read_magic(fh)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(fh) if major == 1
                                         else np.lib.format.read_array_header_2_0(fh))
            except ValueError as exc:
                raise ValueError(f"{self.path}: not a .npy file ({exc})") from exc
            self.offset = fh.tell()
        if len(shape) != 2 or fortran or dtype != np.float32:
            raise ValueError(f"{self.path}: expected a C-ordered 2-D float32 matrix, got {dtype} {shape}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.row_bytes = 4 * self.shape[1]
        need = self.offset + self.row_bytes * self.shape[0]
        size = self.path.stat().st_size
        if size < need:
            raise ValueError(f"{self.path}: truncated ({size} bytes, its header needs {need})")
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[np.array([key])][0]
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("NpyRows: only contiguous slices")
            count = max(0, stop - start)
            raw = os.pread(self._fd, count * self.row_bytes, self.offset + start * self.row_bytes)
            return np.frombuffer(raw, np.float32).reshape(count, self.shape[1]).copy()
        ids = np.asarray(key, np.int64).reshape(-1)
        out = np.empty((len(ids), self.shape[1]), np.float32)
        for j, i in enumerate(ids.tolist()):
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"row {i} out of range 0..{self.shape[0] - 1}")
            out[j] = np.frombuffer(os.pread(self._fd, self.row_bytes, self.offset + i * self.row_bytes), np.float32)
        return out

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, AttributeError):
            pass
