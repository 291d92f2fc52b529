"""Cosine-similarity search over L2-normalised embeddings: top-k (most similar) and bottom-k.

:class:`EmbeddingIndex` keeps the float32 (count, dim) matrix in memory (the explainer needs it) and,
for the approximate kinds, a FAISS graph index or an on-disk IVF searcher. Metric: inner product of
unit vectors = cosine.

Kinds:

* ``flat`` - exact. Both ends come from ONE matrix-vector product over the stored matrix plus an
  ``argpartition`` per end, so "most similar" and "most dissimilar" cost one pass together.
* ``hnsw`` - approximate (``faiss.IndexHNSWFlat``, inner product, M=32, efSearch=256). Top-k is a
  graph search for ``q``; bottom-k is a graph search for ``-q`` (max of ``-q.x`` = min of ``q.x``),
  which is also approximate and usually less accurate than top-k.
* ``ivf`` - approximate, on disk (:mod:`lfs_gui.index.ivf`): inverted lists memory-mapped, the
  matrix memory-mapped too, both ends re-ranked exactly; built by
  :func:`lfs_gui.index.ivf.iter_ivf_index` (``lfs-gui index --kind ivf``), not by this constructor.
* ``auto`` - ``flat`` below :data:`AUTO_FLAT_MAX` (200 000) vectors, ``ivf`` from there on (a flat
  pass over 200k x 512 floats is ~400 MB of memory traffic, tens of ms per query, and the whole
  matrix in memory). ``auto`` never picks ``hnsw``: its bottom end misses most of the most dissimilar
  items on clustered data (bottom-20 recall 0.29-0.42 at 200k, bench/README.md), IVF's does not.

Results are faiss-style ``(D, I)``: cosines and 0-based image ids; single-query methods return 1-D
arrays, batched ones ``(nq, k)``. ``k`` is clamped to the number of candidates (the gallery minus
the excluded query); ``hnsw`` batch rows that found fewer hits are padded with ``I = -1``,
``D = nan``. Ties are broken by the smaller id. Persistence (one API): :func:`lfs_gui.index.store.save_index` / :func:`~lfs_gui.index.store.load_index`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from lfs_gui.index.sidecar import IndexMeta

log = logging.getLogger(__name__)

KINDS = ("flat", "hnsw", "ivf")
AUTO_FLAT_MAX = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
_CHUNK_BYTES = 128 << 20  # score-matrix budget for batched flat search
Exclude = Sequence[int | None] | np.ndarray | None
_Res = tuple[np.ndarray, np.ndarray]  # (D, I)


def choose_kind(kind: str, count: int) -> str:
    """Resolve ``auto`` by gallery size; validate the others."""
    if kind == "auto":
        return "flat" if count < AUTO_FLAT_MAX else "ivf"
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; use auto, {', '.join(KINDS)}")
    return kind


def as_embeddings(x: np.ndarray, normalize: bool = False, what: str = "embeddings") -> np.ndarray:
    """Check/convert to a float32 C-contiguous 2-D matrix of unit rows."""
    x = np.ascontiguousarray(np.asarray(x), dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{what}: expected a (count, dim) matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: contains NaN or inf values")
    norms = np.linalg.norm(x, axis=1)
    if normalize:
        if (norms == 0).any():
            raise ValueError(f"{what}: row {int(np.argmax(norms == 0))} is all zeros and has no direction")
        x = np.ascontiguousarray(x / norms[:, None], dtype=np.float32)
    elif x.shape[0] and np.abs(norms - 1.0).max() > 1e-3:
        bad = int(np.argmax(np.abs(norms - 1.0)))
        raise ValueError(f"{what}: row {bad} has norm {norms[bad]:.4f}; L2-normalise first (normalize=True)")
    return x


class EmbeddingIndex:
    """Top-k / bottom-k cosine search over a gallery's embeddings (row ``i`` = image id ``i``)."""

    def __init__(self, embeddings: np.ndarray, kind: str = "flat", meta: IndexMeta | None = None,
                 *, normalize: bool = False, faiss_index: faiss.Index | None = None, ivf: Any = None) -> None:
        """Build (or wrap, when ``faiss_index`` is given by the loader) an index over ``embeddings``;
        ``ivf``: the :class:`~lfs_gui.index.ivf.IvfSearcher` of kind ``ivf`` (its matrix, memory-mapped,
        is checked when built, not here: that would read the whole file)."""
        self._ivf = ivf
        if ivf is not None:
            if kind != "ivf" or tuple(embeddings.shape) != tuple(ivf.rows.shape) or embeddings.dtype != np.float32:
                raise ValueError(f"an ivf searcher over {tuple(ivf.rows.shape)} needs kind 'ivf' and that float32 matrix")
            self._x = embeddings
        else:
            self._x = as_embeddings(embeddings, normalize)
            self._x.setflags(write=False)
        self.kind = choose_kind(kind, self._x.shape[0])
        if self.kind == "ivf" and ivf is None:
            raise ValueError(f"{self._x.shape[0]} vectors: kind ivf is built on disk, with "
                             "lfs_gui.index.ivf.iter_ivf_index (`lfs-gui index --kind ivf`)")
        self.meta = meta if meta is not None else IndexMeta()
        n = self._x.shape[0]
        if (self.meta.relpaths and len(self.meta.relpaths) != n) or (self.meta.labels and len(self.meta.labels) != n):
            raise ValueError(f"metadata describes {len(self.meta.relpaths)} images, embeddings have {n} rows")
        self._hnsw: faiss.Index | None = None
        if self.kind == "hnsw":
            if faiss_index is None:
                faiss_index = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
                faiss_index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                faiss_index.add(self._x)
            faiss_index.hnsw.efSearch = HNSW_EF_SEARCH
            self._hnsw = faiss_index
        log.debug("EmbeddingIndex(%s): %d x %d", self.kind, *self._x.shape)

    # -- properties -----------------------------------------------------------------------------
    @property
    def embeddings(self) -> np.ndarray:
        """The stored (count, dim) float32 matrix (read-only)."""
        return self._x

    @property
    def dim(self) -> int:
        return int(self._x.shape[1])

    def __len__(self) -> int:
        return int(self._x.shape[0])

    @property
    def ivf(self) -> Any:
        """The :class:`~lfs_gui.index.ivf.IvfSearcher` of an ``ivf`` index (None otherwise)."""
        return self._ivf

    def faiss_index(self) -> faiss.Index:
        """A FAISS index over the embeddings (the graph for ``hnsw``, the on-disk IVF for ``ivf``, a new
        IndexFlatIP for ``flat``)."""
        if self._ivf is not None:
            return self._ivf.index
        if self._hnsw is not None:
            return self._hnsw
        idx = faiss.IndexFlatIP(self.dim)
        idx.add(self._x)
        return idx

    def set_ef_search(self, ef: int) -> None:
        """Trade speed for recall on ``hnsw`` (no effect on ``flat``)."""
        if self._hnsw is not None:
            self._hnsw.hnsw.efSearch = int(ef)

    # -- single query ---------------------------------------------------------------------------
    def most_similar(self, query: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)``, descending cosine; ``exclude`` (the query's own id) never appears."""
        (d, i), _ = self.both_ends(query, k, exclude, want=(True, False))
        return d, i

    def most_dissimilar(self, query: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)``, lowest cosine first; ``exclude`` never appears."""
        _, (d, i) = self.both_ends(query, k, exclude, want=(False, True))
        return d, i

    def both_ends(self, query: np.ndarray, k: int, exclude: int | None = None,
                  want: tuple[bool, bool] = (True, True)) -> tuple[_Res, _Res]:
        """``((D_top, I_top), (D_bottom, I_bottom))`` for one query, in one pass for ``flat``."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        top, bot = self.both_ends_batch(q, k, None if exclude is None else [exclude], want)
        return _strip(top), _strip(bot)

    # -- batches --------------------------------------------------------------------------------
    def most_similar_batch(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` of shape (nq, k); ``exclude[j]`` is query ``j``'s own id or None."""
        return self.both_ends_batch(queries, k, exclude, want=(True, False))[0]

    def most_dissimilar_batch(self, queries: np.ndarray, k: int, exclude: Exclude = None) -> tuple[np.ndarray, np.ndarray]:
        """``(D, I)`` of shape (nq, k), lowest cosine first."""
        return self.both_ends_batch(queries, k, exclude, want=(False, True))[1]

    def both_ends_batch(self, queries: np.ndarray, k: int, exclude: Exclude = None,
                        want: tuple[bool, bool] = (True, True)) -> tuple[_Res, _Res]:
        """Top-k and bottom-k for each query row; unwanted ends come back empty ``(nq, 0)``."""
        q = self._check_queries(queries)
        ex = self._check_exclude(exclude, q.shape[0])
        n = len(self)
        kk = max(0, min(int(k), n - (1 if (ex >= 0).any() else 0)))
        if kk == 0 or not any(want):
            empty = (np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64))
            return empty, empty
        if self.kind == "flat":
            return _flat_ends(self._x, q, kk, ex, want)
        if self._ivf is not None:
            return self._ivf.search(q, kk, ex, want)
        return self._hnsw_ends(q, kk, ex, want)

    def _hnsw_ends(self, q: np.ndarray, k: int, ex: np.ndarray, want: tuple[bool, bool]) -> tuple[_Res, _Res]:
        assert self._hnsw is not None
        out = []
        for sign, w in ((1.0, want[0]), (-1.0, want[1])):
            if not w:
                out.append((np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64)))
                continue
            d, i = self._hnsw.search(np.ascontiguousarray(sign * q), min(k + 1, len(self)))
            d_out = np.full((q.shape[0], k), np.nan, np.float32)
            i_out = np.full((q.shape[0], k), -1, np.int64)
            for r in range(q.shape[0]):
                keep = (i[r] >= 0) & (i[r] != ex[r])
                ids, ds = i[r][keep][:k], sign * d[r][keep][:k]
                i_out[r, : len(ids)], d_out[r, : len(ids)] = ids, ds
            out.append((d_out, i_out))
        return out[0], out[1]

    # -- input checks ---------------------------------------------------------------------------
    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries: expected shape (nq, {self.dim}), got {np.shape(queries)}")
        if not np.isfinite(q).all():
            raise ValueError("queries: contain NaN or inf values")
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ValueError("queries: a zero vector has no cosine similarity")
        return np.ascontiguousarray(q / norms, dtype=np.float32)

    def _check_exclude(self, exclude: Exclude, nq: int) -> np.ndarray:
        if exclude is None:
            return np.full(nq, -1, np.int64)
        ex = np.array([-1 if e is None else int(e) for e in exclude], dtype=np.int64)
        if ex.shape[0] != nq:
            raise ValueError(f"exclude: {ex.shape[0]} entries for {nq} queries")
        if ((ex < -1) | (ex >= len(self))).any():
            raise ValueError(f"exclude: ids must be in 0..{len(self) - 1} or None")
        return ex


def _strip(res: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """First row of a batch result, without ``-1`` padding."""
    d, i = res[0][0], res[1][0]
    keep = i >= 0
    return d[keep], i[keep]


def _select(scores: np.ndarray, k: int, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """k best of each row (sorted; ties by smaller id) via argpartition."""
    key = -scores if descending else scores
    n = scores.shape[1]
    part = np.argpartition(key, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), key.shape).copy()
    vals = np.take_along_axis(key, part, axis=1)
    order = np.lexsort((part, vals), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return np.take_along_axis(scores, ids, axis=1), ids


def _flat_ends(x: np.ndarray, q: np.ndarray, k: int, ex: np.ndarray, want: tuple[bool, bool]) -> tuple[_Res, _Res]:
    """Exact both ends: one (chunk, n) score matrix per chunk of queries serves top and bottom."""
    nq, n = q.shape[0], x.shape[0]
    top_d = np.zeros((nq, k if want[0] else 0), np.float32)
    top_i = np.zeros((nq, k if want[0] else 0), np.int64)
    bot_d = np.zeros((nq, k if want[1] else 0), np.float32)
    bot_i = np.zeros((nq, k if want[1] else 0), np.int64)
    step = max(1, _CHUNK_BYTES // (4 * max(n, 1)))
    for s in range(0, nq, step):
        e = min(nq, s + step)
        scores = q[s:e] @ x.T  # (chunk, n): the single pass
        rows = np.nonzero(ex[s:e] >= 0)[0]
        cols = ex[s:e][rows]
        if want[0]:
            scores[rows, cols] = -np.inf
            top_d[s:e], top_i[s:e] = _select(scores, k, descending=True)
        if want[1]:
            scores[rows, cols] = np.inf
            bot_d[s:e], bot_i[s:e] = _select(scores, k, descending=False)
    return (top_d, top_i), (bot_d, bot_i)
