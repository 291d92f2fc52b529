"""Search an on-disk IVF index at both ends without loading it: most similar and most dissimilar.

:class:`IvfIndex` opens what :mod:`lfs_gui.index.ivf_build` wrote. Only the header (coarse
centroids, codec, list offsets: a few MB) is read into memory; FAISS memory-maps the inverted lists
(``ivf.ivfdata``) and the float32 embeddings are a read-only ``numpy`` memmap, so the resident
memory does not grow with the gallery (the kernel pages in what a query touches).

Search, for each query ``q`` (unit vector, inner product = cosine):

* the lists are ranked, for each end ``s = +1`` (top) and ``s = -1`` (bottom), by the expected
  extreme of ``s·<q, x>`` over their members: ``s·<q, c_l> + sqrt(sum_j q_j² v_lj) · sqrt(2 ln n_l)``
  (centroid ``c_l``, per-dimension mean square ``v_l`` of the members around it, size ``n_l``; the
  last factor is the expected maximum of ``n_l`` standard normals). Ranking by the centroid alone
  misses the extremes: the most dissimilar items are outliers of their lists, more often found in
  wide and large lists (on clustered data the 95th percentile of the rank of the list holding a
  bottom-20 item drops from 71 to 47 of 1024 with the spread term; the top end is unchanged);
* **top-k** scans the ``nprobe`` best lists for ``q``;
* **bottom-k** scans the ``nprobe_bottom`` best lists for ``-q`` (those whose centroids are
  farthest from ``q``) for the largest ``<-q, x>``, i.e. the smallest cosine. A graph index cannot
  do this (its search never reaches the far side of the distribution from its entry points: HNSW's
  bottom-20 recall is ~0.3-0.4 on clustered data), IVF's list ranking can;
* each end's ``k + rerank`` best candidates under the quantised codes are re-scored exactly from
  the stored float32 vectors, so the returned cosines are exact and the order is the true one.

Loading never hands unverified bytes to FAISS: the header must match the sidecar's sha256 and the
data file its recorded size (FAISS maps the data file blindly; a truncated one crashes the process
on first access). ``faiss.IO_FLAG_MMAP`` is not used: on a merged on-disk index it segfaults in
faiss-cpu 1.15.1; the plain read already maps the lists. ``IO_FLAG_ONDISK_SAME_DIR`` finds the data
file next to the header, so the folder can be moved.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mmap
from pathlib import Path

import faiss
import numpy as np

from lfs_gui.index.ivf_build import IVF_DATA_FILE, IVF_INDEX_FILE, IVF_LISTS_FILE, IvfInfo, quiet_stdout

log = logging.getLogger(__name__)

DEFAULT_RERANK = 64
_Res = tuple[np.ndarray, np.ndarray]
_HEADERS = {"sq8": b"IwSq", "pq": b"IwPQ"}


class IvfLoadError(ValueError):
    """The IVF files could not be opened; the message names the file and the fix."""


def open_ivf(folder: str | Path, info: IvfInfo, fix: str) -> tuple[faiss.IndexIVF, np.ndarray]:
    """Validate and read ``ivf.index`` (+ map ``ivf.ivfdata``) and ``ivf.lists.npy`` in ``folder``.

    Returns the FAISS index and the (nlist, dim + 1) list statistics; ``fix`` ends each error.
    """
    folder = Path(folder)
    head, data, lists_file = folder / IVF_INDEX_FILE, folder / IVF_DATA_FILE, folder / IVF_LISTS_FILE
    for p in (head, data, lists_file):
        if not p.is_file():
            raise IvfLoadError(f"{p}: missing; {fix}")
    raw = head.read_bytes()
    if hashlib.sha256(raw).hexdigest() != info.index_sha256:
        raise IvfLoadError(f"{head}: corrupt or truncated ({len(raw)} bytes, checksum differs from the sidecar); {fix}")
    if raw[:4] != _HEADERS[info.quantizer]:
        raise IvfLoadError(f"{head}: header {raw[:4]!r} is not an IVF-{info.quantizer} index; {fix}")
    del raw
    size = data.stat().st_size
    if size != info.ivfdata_bytes:
        raise IvfLoadError(f"{data}: {size} bytes, the sidecar says {info.ivfdata_bytes} (truncated or replaced); {fix}")
    stats_raw = lists_file.read_bytes()
    if hashlib.sha256(stats_raw).hexdigest() != info.lists_sha256:
        raise IvfLoadError(f"{lists_file}: corrupt or truncated (checksum differs from the sidecar); {fix}")
    stats = np.load(io.BytesIO(stats_raw), allow_pickle=False)
    if stats.shape != (info.nlist, info.dim + 1) or stats.dtype != np.float32:
        raise IvfLoadError(f"{lists_file}: shape {stats.shape}, expected ({info.nlist}, {info.dim + 1}); {fix}")
    try:
        with quiet_stdout():  # FAISS prints the data file's new folder when the index was moved
            index = faiss.read_index(str(head), faiss.IO_FLAG_ONDISK_SAME_DIR)
    except RuntimeError as exc:
        raise IvfLoadError(f"{head}: FAISS cannot read it ({str(exc).splitlines()[0]}); {fix}") from exc
    lists = faiss.downcast_InvertedLists(index.invlists)
    if not isinstance(lists, faiss.OnDiskInvertedLists) or lists.totsize > size:
        raise IvfLoadError(f"{head}: its lists are not an on-disk file of {size} bytes; {fix}")
    if (index.d, index.ntotal, index.nlist) != (info.dim, info.count, info.nlist):
        raise IvfLoadError(f"{head}: holds {index.ntotal} x {index.d} in {index.nlist} lists, the sidecar says "
                           f"{info.count} x {info.dim} in {info.nlist}; {fix}")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IvfLoadError(f"{head}: metric is not inner product; {fix}")
    return index, stats


def map_vectors(path: str | Path, what: str = "embeddings", fix: str = "") -> np.ndarray:
    """A read-only (count, dim) float32 view of a ``.npy`` file, memory-mapped for random access.

    The kernel's read-ahead is switched off (``MADV_RANDOM``): the re-rank touches scattered rows,
    and read-ahead would page in ~32 neighbours per row and grow the resident size for nothing.
    A header that does not describe a C-ordered 2-D float32 matrix filling the file is an error.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(fh) if major == 1
                                     else np.lib.format.read_array_header_2_0(fh))
            offset = fh.tell()
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise IvfLoadError(f"{path}: not a readable .npy file ({exc}); {fix}") from exc
    if len(shape) != 2 or fortran or dtype != np.float32:
        raise IvfLoadError(f"{path}: {what} must be a C-ordered 2-D float32 matrix, got {dtype} {shape}; {fix}")
    need = offset + 4 * shape[0] * shape[1]
    if len(mm) < need:
        raise IvfLoadError(f"{path}: truncated ({len(mm)} bytes, the header needs {need}); {fix}")
    if hasattr(mm, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mm.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mm, dtype=np.float32, count=shape[0] * shape[1], offset=offset).reshape(shape)


def _rows_dot(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``q @ m.T``; for a few queries without BLAS, whose threads add tens of ms of latency to a
    matrix-vector product on a busy machine (measured: 0.4 ms with einsum, 18-28 ms with BLAS)."""
    return np.einsum("ij,kj->ki", m, q) if q.shape[0] <= 4 else q @ m.T


class IvfSearcher:
    """Both ends over an opened IVF index, re-ranked exactly from ``embeddings`` (row = image id)."""

    def __init__(self, index: faiss.IndexIVF, stats: np.ndarray, embeddings: np.ndarray, nprobe: int,
                 nprobe_bottom: int, rerank: int = 0) -> None:
        if embeddings.shape != (index.ntotal, index.d):
            raise ValueError(f"embeddings {embeddings.shape} do not match the IVF index ({index.ntotal}, {index.d})")
        self.index = index
        self.x = embeddings
        self.centroids = np.ascontiguousarray(index.quantizer.reconstruct_n(0, index.nlist), dtype=np.float32)
        counts = stats[:, 0].astype(np.float64)
        self._spread = np.ascontiguousarray(stats[:, 1:])  # (nlist, dim): q² · row = mean square along q
        self._z = np.sqrt(2.0 * np.log(np.maximum(counts, 1.0))).astype(np.float32)
        self._empty = counts == 0
        self.nprobe = self.nprobe_bottom = 1
        self.set_nprobe(nprobe, nprobe_bottom)
        self.rerank = int(rerank) or DEFAULT_RERANK

    def set_nprobe(self, nprobe: int, nprobe_bottom: int | None = None) -> None:
        """Lists scanned for the top end and the bottom end (more = slower, higher recall)."""
        nl = self.index.nlist
        self.nprobe = max(1, min(int(nprobe), nl))
        self.nprobe_bottom = max(1, min(int(nprobe_bottom or nprobe), nl))

    def list_scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q·c, top score, bottom score)`` per query and list (see the module docstring)."""
        cs = _rows_dot(q, self.centroids)
        bonus = np.sqrt(np.maximum(_rows_dot(q * q, self._spread), 0.0)) * self._z
        top, bottom = cs + bonus, bonus - cs
        top[:, self._empty] = bottom[:, self._empty] = -np.inf
        return cs, top, bottom

    def search(self, q: np.ndarray, k: int, ex: np.ndarray, want: tuple[bool, bool]) -> tuple[_Res, _Res]:
        """``((D_top, I_top), (D_bottom, I_bottom))`` for unit queries ``q``; ``ex[j]`` = id to drop or -1."""
        nq, n = q.shape[0], self.x.shape[0]
        cs, top, bottom = self.list_scores(q)
        out: list[_Res] = []
        for sign, w, score, p in ((1.0, want[0], top, self.nprobe), (-1.0, want[1], bottom, self.nprobe_bottom)):
            if not w:
                out.append((np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)))
                continue
            lists = np.argpartition(-score, p - 1, axis=1)[:, :p] if p < score.shape[1] else np.tile(np.arange(p), (nq, 1))
            lists = np.ascontiguousarray(lists, dtype=np.int64)
            coarse = np.ascontiguousarray(sign * np.take_along_axis(cs, lists, 1), dtype=np.float32)
            self.index.nprobe = p
            kc = min(n, k + self.rerank + 1)
            _, cand = self.index.search_preassigned(np.ascontiguousarray(sign * q, dtype=np.float32), kc, lists, coarse)
            out.append(self._rerank(q, cand, k, ex, top=sign > 0))
        return out[0], out[1]

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int, ex: np.ndarray, top: bool) -> _Res:
        """Exact cosines of the candidates from the stored vectors; the k best, ``-1``/nan padded."""
        nq, n = q.shape[0], self.x.shape[0]
        d_out = np.full((nq, k), np.nan, np.float32)
        i_out = np.full((nq, k), -1, np.int64)
        for r in range(nq):
            ids = cand[r]
            ids = np.unique(ids[(ids >= 0) & (ids < n) & (ids != ex[r])])  # sorted: ties go to the smaller id
            if ids.size == 0:
                continue
            s = np.asarray(self.x[ids], dtype=np.float32) @ q[r]
            order = np.argsort(-s if top else s, kind="stable")[:k]
            i_out[r, : order.size], d_out[r, : order.size] = ids[order], s[order]
        return d_out, i_out
