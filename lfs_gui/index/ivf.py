"""Search an on-disk IVF index at both ends without loading it: most similar and most dissimilar.

Opens what :mod:`lfs_gui.index.ivf_build` wrote (files: :mod:`lfs_gui.index.ivf_files`). Only the
header (centroids, codec, list offsets: a few MB) and the list statistics are read into memory;
FAISS memory-maps the inverted lists and the exact re-rank reads the few rows it needs from
``embeddings.npy`` with ``pread``, so the process's own memory does not grow with the gallery (the
kernel's page cache holds what queries touched, and gives it back under pressure).

Search, for each query ``q`` (unit vector, inner product = cosine):

* the lists are ranked, for each end ``s = +1`` (top) and ``s = -1`` (bottom), by the expected
  extreme of ``s·<q, x>`` over their members: ``s·<q, c_l> + sqrt(sum_j q_j² v_lj) · sqrt(2 ln n_l)``
  (centroid ``c_l``, per-dimension mean square ``v_l`` of the members around it, size ``n_l``; the
  last factor is the expected maximum of ``n_l`` standard normals). Ranking by the centroid alone
  misses the extremes: the most dissimilar items are outliers of their lists, more often in wide
  and large lists;
* **top-k** scans the ``nprobe`` best lists for ``q``, **bottom-k** the ``nprobe_bottom`` best lists
  for ``-q`` (those whose centroids are farthest from ``q``) for the largest ``<-q, x>``, i.e. the
  smallest cosine. The bottom end also scans the outlier list (the vectors farthest from their
  centroids, which no list statistic describes; on clustered data it holds most of the bottom-20
  items the ranked lists miss), and so does the top end for a query that is itself an outlier
  (farther from every centroid than the outlier threshold: its neighbours are scattered). A graph index cannot serve the bottom end (its search never
  reaches the far side of the distribution from its entry points: HNSW's bottom-20 recall is ~0.3-0.4
  on clustered data), IVF's list ranking can;
* each end's ``k + rerank`` best candidates under the quantised codes are re-scored exactly from
  the stored float32 vectors, so the returned cosines are exact and the order is the true one.

Figures (recall, latency, memory at 1M and 10M vectors): bench/bench_scale.py and bench/README.md.

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
from collections.abc import Generator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.index.ivf_build import iter_build_ivf, quiet_stdout
from lfs_gui.index.ivf_files import IVF_DATA_FILE, IVF_INDEX_FILE, IVF_LISTS_FILE, IvfInfo, IvfSettings, NpyRows
from lfs_gui.index.sidecar import IndexLoadError, IndexMeta
from lfs_gui.jobs import Progress

log = logging.getLogger(__name__)

DEFAULT_RERANK = 64
_Res = tuple[np.ndarray, np.ndarray]
_HEADERS = {"sq8": b"IwSq", "pq": b"IwPQ"}


class IvfLoadError(IndexLoadError):
    """The IVF files could not be opened; the message names the file and the fix."""


def iter_ivf_index(embeddings: str | Path, folder: str | Path, settings: IvfSettings | None = None,
                   meta: IndexMeta | None = None) -> Generator[Progress, None, EmbeddingIndex]:
    """Build the IVF files in ``folder`` from the ``.npy`` matrix ``embeddings`` (unit rows) and return
    the ``ivf`` :class:`EmbeddingIndex` over them (``save_index`` then records them in the sidecar)."""
    rows = NpyRows(embeddings)
    info = yield from iter_build_ivf(rows, folder, settings)
    index, stats = open_ivf(folder, info, "build the index again")
    return EmbeddingIndex(np.load(embeddings, mmap_mode="r"), "ivf", meta, ivf=IvfSearcher(index, stats, rows, info))


def open_ivf_searcher(folder: Path, record: object, embeddings: Path, fix: str) -> "IvfSearcher":
    """The searcher of an index folder whose sidecar's ``ivf`` object is ``record`` (see :mod:`.ivf_files`)."""
    try:
        info = IvfInfo.from_dict(record)
        rows = NpyRows(embeddings)
    except ValueError as exc:
        raise IvfLoadError(f"{folder}: {exc}; {fix}") from exc
    index, stats = open_ivf(folder, info, fix)
    return IvfSearcher(index, stats, rows, info)


def open_ivf(folder: str | Path, info: IvfInfo, fix: str) -> tuple[faiss.IndexIVF, np.ndarray]:
    """Validate and read ``ivf.index`` (+ map ``ivf.ivfdata``) and ``ivf.lists.npy`` in ``folder``.

    Returns the FAISS index and the (nlist + 1, dim + 1) list statistics; ``fix`` ends each error.
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
    if stats.shape != (info.nlist + 1, info.dim + 1) or stats.dtype != np.float32:
        raise IvfLoadError(f"{lists_file}: shape {stats.shape}, expected ({info.nlist + 1}, {info.dim + 1}); {fix}")
    try:
        with quiet_stdout():  # FAISS prints the data file's new folder when the index was moved
            index = faiss.read_index(str(head), faiss.IO_FLAG_ONDISK_SAME_DIR)
    except RuntimeError as exc:
        raise IvfLoadError(f"{head}: FAISS cannot read it ({str(exc).splitlines()[0]}); {fix}") from exc
    lists = faiss.downcast_InvertedLists(index.invlists)
    if not isinstance(lists, faiss.OnDiskInvertedLists) or lists.totsize > size:
        raise IvfLoadError(f"{head}: its lists are not an on-disk file of {size} bytes; {fix}")
    if (index.d, index.ntotal, index.nlist) != (info.dim, info.count, info.nlist + 1):
        raise IvfLoadError(f"{head}: holds {index.ntotal} x {index.d} in {index.nlist} lists, the sidecar says "
                           f"{info.count} x {info.dim} in {info.nlist} + 1; {fix}")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IvfLoadError(f"{head}: metric is not inner product; {fix}")
    return index, stats


def _rows_dot(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``q @ m.T``; for a few queries without BLAS, whose threads add tens of ms of latency to a
    matrix-vector product on a busy machine (measured: 0.4 ms with einsum, 18-28 ms with BLAS)."""
    return np.einsum("ij,kj->ki", m, q) if q.shape[0] <= 4 else q @ m.T


class IvfSearcher:
    """Both ends over an opened IVF index, re-ranked exactly from ``rows`` (row = image id): an array,
    a memmap or a :class:`~lfs_gui.index.ivf_files.NpyRows` (anything with ``shape`` and ``rows[ids]``);
    ``info`` gives the probes, the re-rank depth and the outlier threshold."""

    def __init__(self, index: faiss.IndexIVF, stats: np.ndarray, rows: Any, info: IvfInfo) -> None:
        if tuple(rows.shape) != (index.ntotal, index.d):
            raise ValueError(f"embeddings {tuple(rows.shape)} do not match the IVF index ({index.ntotal}, {index.d})")
        self.index = index
        self.rows = rows
        self.info = info
        self.nlist = index.nlist - 1  # the last list holds the outliers
        self.centroids = np.ascontiguousarray(index.quantizer.reconstruct_n(0, self.nlist), dtype=np.float32)
        counts = stats[: self.nlist, 0].astype(np.float64)
        self._spread = np.ascontiguousarray(stats[: self.nlist, 1:])  # q² · row = mean square along q
        self._z = np.sqrt(2.0 * np.log(np.maximum(counts, 1.0))).astype(np.float32)
        self._empty = counts == 0
        self._outliers = int(stats[self.nlist, 0]) > 0
        # a unit query farther than the outliers' distance from every centroid is an outlier itself
        self._outlier_cos = 1.0 - info.outlier_norm ** 2 / 2.0 if info.outlier_norm > 0 else -np.inf
        self.nprobe = self.nprobe_bottom = 1
        self.set_nprobe(info.nprobe, info.nprobe_bottom)
        self.rerank = info.rerank or DEFAULT_RERANK

    def set_nprobe(self, nprobe: int, nprobe_bottom: int | None = None) -> None:
        """Lists scanned for the top end and the bottom end (more = slower, higher recall)."""
        self.nprobe = max(1, min(int(nprobe), self.nlist))
        self.nprobe_bottom = max(1, min(int(nprobe_bottom or nprobe), self.nlist))

    def list_scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(top score, bottom score, query is an outlier)`` per query and list (see the module docstring)."""
        cs = _rows_dot(q, self.centroids)
        bonus = np.sqrt(np.maximum(_rows_dot(q * q, self._spread), 0.0)) * self._z
        top, bottom = cs + bonus, bonus - cs
        top[:, self._empty] = bottom[:, self._empty] = -np.inf
        return top, bottom, cs.max(axis=1) < self._outlier_cos

    def search(self, q: np.ndarray, k: int, ex: np.ndarray, want: tuple[bool, bool]) -> tuple[_Res, _Res]:
        """``((D_top, I_top), (D_bottom, I_bottom))`` for unit queries ``q``; ``ex[j]`` = id to drop or -1."""
        nq, n = q.shape[0], self.rows.shape[0]
        top, bottom, odd = self.list_scores(q)
        out: list[_Res] = []
        for sign, w, score, p in ((1.0, want[0], top, self.nprobe), (-1.0, want[1], bottom, self.nprobe_bottom)):
            if not w:
                out.append((np.zeros((nq, 0), np.float32), np.zeros((nq, 0), np.int64)))
                continue
            lists = np.argpartition(-score, p - 1, axis=1)[:, :p] if p < self.nlist else np.tile(np.arange(p), (nq, 1))
            # the bottom end always scans the outlier list; the top end for outlier queries (their
            # neighbours are scattered), others find theirs in the lists near them
            scan = self._outliers and (sign < 0 or odd.any())
            if scan:
                extra = np.where((sign < 0) | odd, self.nlist, -1)  # -1: faiss skips the slot
                lists = np.concatenate([lists, extra[:, None]], axis=1)
            lists = np.ascontiguousarray(lists, dtype=np.int64)
            self.index.nprobe = lists.shape[1]
            kc = min(n, k + self.rerank + 1)
            zero = np.zeros(lists.shape, np.float32)  # codes are of the vectors: no coarse term to add
            _, cand = self.index.search_preassigned(np.ascontiguousarray(sign * q, dtype=np.float32), kc, lists, zero)
            out.append(self._rerank(q, cand, k, ex, top=sign > 0))
        return out[0], out[1]

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int, ex: np.ndarray, top: bool) -> _Res:
        """Exact cosines of the candidates from the stored vectors; the k best, ``-1``/nan padded."""
        nq, n = q.shape[0], self.rows.shape[0]
        d_out = np.full((nq, k), np.nan, np.float32)
        i_out = np.full((nq, k), -1, np.int64)
        for r in range(nq):
            ids = cand[r]
            ids = np.unique(ids[(ids >= 0) & (ids < n) & (ids != ex[r])])  # sorted: ties go to the smaller id
            if ids.size == 0:
                continue
            s = np.asarray(self.rows[ids], dtype=np.float32) @ q[r]
            order = np.argsort(-s if top else s, kind="stable")[:k]
            i_out[r, : order.size], d_out[r, : order.size] = ids[order], s[order]
        return d_out, i_out
