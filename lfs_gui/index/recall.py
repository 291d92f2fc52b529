"""Retrieval metrics over a labelled gallery: Recall@K (DML-Baselines definition) and mAP@R.

Recall@K follows Deep-Metric-Learning-Baselines' ``eval_metrics_one_dataset``: every gallery item
is a query against all the others (leave-one-out); its K nearest neighbours exclude itself, and
Recall@K is the fraction of queries with at least one same-label item among them. (DML-Baselines
drops the first returned neighbour assuming it is the query; we exclude the query's own id, which
is the same unless there are exact duplicates.) Neighbours are ranked by cosine (= L2 order for
unit vectors), ties by the smaller id.

mAP@R (Musgrave et al., "A Metric Learning Reality Check"): with R = (class size - 1) for the
query, AP@R = (1/R) * sum_{i<=R} P@i * rel_i over its R nearest neighbours; the mean is over
queries whose class has another member (R > 0).

Both are exact, vectorised and chunked over queries so the score matrix stays small.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

DML_KS = (1, 2, 4, 8)
_CHUNK_BYTES = 64 << 20


@dataclass(frozen=True)
class RetrievalMetrics:
    """``recall[k]`` in [0, 1]; ``map_at_r`` (nan when no class has two members)."""

    recall: dict[int, float]
    map_at_r: float
    n_queries: int


def _check(embeddings: np.ndarray, labels: Sequence[int | None] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings: expected (count, dim), got shape {x.shape}")
    lab = np.array([-1 if v is None else v for v in labels], dtype=np.int64)
    if lab.shape[0] != x.shape[0]:
        raise ValueError(f"labels: {lab.shape[0]} entries for {x.shape[0]} embeddings")
    if (lab < 0).any():
        raise ValueError("labels: every item needs a label for recall (subset the gallery to labelled items)")
    if x.shape[0] < 2:
        raise ValueError("recall needs at least two items")
    return x, lab


def _nearest(x: np.ndarray, rows: slice, k: int) -> np.ndarray:
    """Ids of the ``k`` nearest neighbours (cosine) of ``x[rows]``, excluding each query itself."""
    q = x[rows]
    scores = q @ x.T
    ids = np.arange(rows.start, rows.start + q.shape[0])
    scores[np.arange(q.shape[0]), ids] = -np.inf
    n = x.shape[0]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (q.shape[0], 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)[:, : min(k, n - 1)]


def retrieval_metrics(embeddings: np.ndarray, labels: Sequence[int | None] | np.ndarray,
                      ks: Iterable[int] = DML_KS) -> RetrievalMetrics:
    """Leave-one-out Recall@k for each k in ``ks`` and mAP@R, in one chunked pass."""
    x, lab = _check(embeddings, labels)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    n = x.shape[0]
    _, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    r_all = counts[inv] - 1
    kmax = min(max(ks[-1], int(r_all.max())), n - 1)
    hits = {k: 0 for k in ks}
    ap_sum, ap_n = 0.0, 0
    step = max(1, _CHUNK_BYTES // (4 * n))
    for s in range(0, n, step):
        e = min(n, s + step)
        nn = _nearest(x, slice(s, e), kmax)
        rel = lab[nn] == lab[s:e, None]  # (chunk, kmax)
        first_hit = np.where(rel.any(axis=1), rel.argmax(axis=1), kmax)
        for k in ks:
            hits[k] += int((first_hit < k).sum())
        r = r_all[s:e]
        pos = np.arange(1, kmax + 1)
        within = pos[None, :] <= r[:, None]
        prec = np.cumsum(rel & within, axis=1) / pos[None, :]
        ok = r > 0
        ap = (prec * (rel & within)).sum(axis=1)[ok] / r[ok]
        ap_sum += float(ap.sum())
        ap_n += int(ok.sum())
    recall = {k: hits[k] / n for k in ks}
    map_r = ap_sum / ap_n if ap_n else float("nan")
    log.debug("retrieval metrics over %d items: %s, mAP@R %.4f", n, recall, map_r)
    return RetrievalMetrics(recall=recall, map_at_r=map_r, n_queries=n)


def recall_at_k(embeddings: np.ndarray, labels: Sequence[int | None] | np.ndarray,
                ks: Iterable[int] = DML_KS) -> dict[int, float]:
    """Leave-one-out Recall@k (DML-Baselines definition), ``{k: fraction}``."""
    return retrieval_metrics(embeddings, labels, ks).recall


def map_at_r(embeddings: np.ndarray, labels: Sequence[int | None] | np.ndarray) -> float:
    """Mean AP@R with R = class size - 1 (queries of singleton classes are left out)."""
    return retrieval_metrics(embeddings, labels, (1,)).map_at_r


def query_recall(labels: Sequence[int | None] | np.ndarray, query_label: int | None,
                 ranked_ids: Sequence[int] | np.ndarray, ks: Iterable[int] = DML_KS) -> dict[int, float]:
    """Per-query Recall@k for the GUI: ``1.0`` if a same-class item is among the first k ids.

    ``ranked_ids`` are gallery ids, most similar first, without the query itself (as
    :meth:`EmbeddingIndex.most_similar` returns them with ``exclude``); ``-1`` padding is ignored.
    Returns ``{}`` for an unlabelled query (nothing to measure).
    """
    if query_label is None or query_label < 0:
        return {}
    ids = np.asarray(ranked_ids, dtype=np.int64).ravel()
    ids = ids[ids >= 0]
    lab = np.array([-1 if labels[i] is None else labels[i] for i in ids.tolist()], dtype=np.int64)  # only the ranked
    rel = lab == int(query_label)
    return {int(k): float(rel[: int(k)].any()) for k in ks}


XI1_DECIMALS = 2
"""ξ1 has one value and one rounding everywhere (the app's slider step is 0.01; the CLI, evaluate and the
app all take this function's value as is)."""


def suggest_xi1(emb: np.ndarray, labels: Sequence[int | None] | np.ndarray | None, max_items: int = 2000,
                seed: int = 0) -> float:
    """The similar/dissimilar threshold ξ1 for a model: the cosine that best separates same-class from
    different-class pairs of a labelled gallery (maximum balanced accuracy, on ≤ ``max_items`` items).

    The paper's 0.3 is FaceNet's; other models need their own (a prototype on the demo's images
    measured ~0.34 for raw EfficientNet features). Unlabelled items (``None`` or < 0) take no part;
    returns 0.3 when fewer than 3 items are labelled or all share one class.
    """
    if labels is None:
        return 0.3
    labels = (labels if isinstance(labels, np.ndarray) and labels.dtype.kind == "i"  # millions: no loop, no copy
              else np.asarray(labels, dtype=np.int64) if isinstance(labels, np.ndarray)
              else np.array([-1 if v is None else v for v in labels], dtype=np.int64))
    idx = np.flatnonzero(labels >= 0)  # unlabelled items take no part
    if len(idx) < 3:
        return 0.3
    if len(idx) > max_items:
        idx = np.random.default_rng(seed).choice(idx, max_items, replace=False)
    x, lab = np.asarray(emb[idx], np.float64), labels[idx]
    sims = x @ x.T
    iu = np.triu_indices(len(idx), 1)
    s, same = sims[iu], (lab[:, None] == lab[None, :])[iu]
    if same.all() or not same.any():
        return 0.3
    cand = np.unique(np.round(s, 3))
    pos = np.sort(s[same])
    neg = np.sort(s[~same])
    tpr = 1.0 - np.searchsorted(pos, cand, side="right") / len(pos)
    tnr = np.searchsorted(neg, cand, side="right") / len(neg)
    return float(round(float(cand[int(np.argmax(tpr + tnr))]), XI1_DECIMALS))
