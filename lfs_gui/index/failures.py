"""Where a retrieval model fails: every query's AP and R@1 over a labelled gallery, and its failures.

Every gallery item is a query against all the others (leave-one-out, as
:func:`lfs_gui.index.recall.retrieval_metrics` counts Recall@K). For query ``i`` the
:class:`QueryScores` arrays hold its top-1 neighbour (ties by the smaller id, as Recall@K breaks
them), the nearest same-class image ("correct") and the nearest other-class image ("wrong") with
their cosines, the rank of the nearest correct image, and its AP over the whole ranked gallery.

A **failure** is a query whose top-1 is of another class; there are exactly ``(1 - R@1) * N`` of
them. Failures are sorted by their **margin** ``s(wrong) - s(correct)``: how far the wrong
neighbour beats the nearest correct one (positive for failures, negative for hits; ``nan`` when the
query's class has no other member, which is always a failure and sorts last).

AP is ``(1/R) * sum_t t / rank_t`` over the query's R same-class images, ``rank_t`` the rank of the
t-th of them; a same-class and an other-class image with exactly equal cosines count in the
same-class image's favour. Everything is computed from arrays (embeddings, labels), chunked over
queries so the (N, N) score matrix never sits in memory at once, as a generator yielding
:class:`~lfs_gui.jobs.Progress` per chunk (each yield is a cancel point).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from dataclasses import dataclass

import numpy as np

from lfs_gui.index.recall import _check
from lfs_gui.jobs import Progress, run_generator

log = logging.getLogger(__name__)

_CHUNK_BYTES = 32 << 20  # one (chunk, N) float32 score matrix (a few such temporaries at once)


@dataclass(frozen=True)
class QueryScores:
    """Per-query retrieval outcome over a labelled gallery, all arrays of length N (row = image id).

    Ids are ``-1`` and cosines ``nan`` where no such image exists (no other member of the class,
    or no other class at all); ``correct_rank`` is then 0 and ``ap`` is ``nan``.
    """

    labels: np.ndarray  # int64 class index of each query
    top1: np.ndarray  # int64 id of the nearest other image
    top1_score: np.ndarray  # float32
    correct: np.ndarray  # int64 id of the nearest same-class image
    correct_score: np.ndarray  # float32
    correct_rank: np.ndarray  # int64, 1-based rank of ``correct`` in the query's ranking
    wrong: np.ndarray  # int64 id of the nearest other-class image
    wrong_score: np.ndarray  # float32
    ap: np.ndarray  # float64 average precision over the whole ranking

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def hit1(self) -> np.ndarray:
        """True where the top-1 neighbour is of the query's class (the query's R@1)."""
        return self.labels[self.top1] == self.labels

    @property
    def margin(self) -> np.ndarray:
        """``s(wrong) - s(correct)``: > 0 the wrong neighbour wins (failures), < 0 the correct one."""
        return self.wrong_score.astype(np.float64) - self.correct_score.astype(np.float64)

    @property
    def recall_at_1(self) -> float:
        return float(self.hit1.mean()) if len(self) else float("nan")

    @property
    def mean_ap(self) -> float:
        """Mean AP over queries whose class has another member (nan when none has)."""
        ok = np.isfinite(self.ap)
        return float(self.ap[ok].mean()) if ok.any() else float("nan")

    def take(self, order: np.ndarray) -> "QueryScores":
        """The scores with rows permuted/subset by ``order`` (ids inside keep their numbering)."""
        return QueryScores(**{k: getattr(self, k)[order] for k in self.__dataclass_fields__})


def iter_query_scores(embeddings: np.ndarray, labels: Iterable[int | None] | np.ndarray,
                      chunk_bytes: int = _CHUNK_BYTES) -> Generator[Progress, None, QueryScores]:
    """Compute :class:`QueryScores` for every item (leave-one-out); yields Progress per chunk."""
    x, lab = _check(embeddings, list(labels) if not isinstance(labels, np.ndarray) else labels)
    n = x.shape[0]
    out = {k: np.empty(n, np.int64) for k in ("top1", "correct", "correct_rank", "wrong")}
    out.update({k: np.empty(n, np.float32) for k in ("top1_score", "correct_score", "wrong_score")})
    out["ap"] = np.empty(n, np.float64)
    members = _class_members(lab)
    step = max(1, chunk_bytes // (4 * n))
    yield Progress(0, n, "scoring queries")
    for s in range(0, n, step):
        e = min(n, s + step)
        _score_chunk(x, lab, members, s, e, out)
        yield Progress(e, n, "scoring queries")
    res = QueryScores(labels=lab, **out)
    log.debug("query scores over %d items: R@1 %.4f, mAP %.4f", n, res.recall_at_1, res.mean_ap)
    return res


def query_scores(embeddings: np.ndarray, labels: Iterable[int | None] | np.ndarray) -> QueryScores:
    """:func:`iter_query_scores` run to completion."""
    return run_generator(iter_query_scores(embeddings, labels))


def _class_members(lab: np.ndarray) -> np.ndarray:
    """(n_labels, max class size) table of each label's ids (ascending), padded with -1."""
    order = np.argsort(lab, kind="stable")
    uniq, start, counts = np.unique(lab[order], return_index=True, return_counts=True)
    table = np.full((int(lab.max()) + 1, int(counts.max())), -1, np.int64)
    pos = np.arange(len(order)) - np.repeat(start, counts)
    table[lab[order], pos] = order
    return table


def _score_chunk(x: np.ndarray, lab: np.ndarray, members: np.ndarray, s: int, e: int, out: dict) -> None:
    """Fill ``out[*][s:e]`` for queries ``s..e-1`` (one (chunk, n) score matrix, reused in place)."""
    rows = np.arange(e - s)
    ids = np.arange(s, e)
    scores = x[s:e] @ x.T  # (chunk, n)
    scores[rows, ids] = -np.inf  # never its own neighbour
    top1 = np.argmax(scores, axis=1)  # the first maximum = the smaller id among ties
    out["top1"][s:e] = top1
    out["top1_score"][s:e] = scores[rows, top1]

    # Same-class ids of each query (ascending; pads point at the query itself, already -inf).
    mem = members[lab[s:e]]  # (chunk, m)
    mem = np.where(mem >= 0, mem, ids[:, None])
    rel = np.take_along_axis(scores, mem, axis=1)  # the query itself and the pads are -inf
    r = np.isfinite(rel).sum(axis=1)  # R: same-class images of each query
    best = np.argmax(rel, axis=1)  # first maximum: the smaller id among ties
    out["correct"][s:e] = np.where(r > 0, mem[rows, best], -1)
    out["correct_score"][s:e] = np.where(r > 0, rel[rows, best], np.nan)

    np.put_along_axis(scores, mem, -np.inf, axis=1)  # now only the other-class cosines are finite
    wrong = np.argmax(scores, axis=1)
    w_score = scores[rows, wrong]
    exists = np.isfinite(w_score)
    out["wrong"][s:e] = np.where(exists, wrong, -1)
    out["wrong_score"][s:e] = np.where(exists, w_score, np.nan)

    # rank of the t-th best same-class image = t + the other-class images with a higher cosine.
    rel = -np.sort(-rel, axis=1)
    scores.sort(axis=1)  # in place: the other-class cosines ascending, the -inf in front
    t = np.arange(1, rel.shape[1] + 1)[None, :]
    ranks = t + _count_above(scores, rel)
    ap = np.where(t <= r[:, None], t / ranks, 0.0).sum(axis=1)
    out["ap"][s:e] = np.where(r > 0, ap / np.maximum(r, 1), np.nan)
    out["correct_rank"][s:e] = np.where(r > 0, ranks[:, 0], 0)


def _count_above(sorted_rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, how many entries of ascending ``sorted_rows`` are strictly greater than each value.

    A vectorised binary search (``searchsorted(..., side="right")`` row by row, without a loop over
    rows): ``log2(n)`` gathers of a (chunk, m) index array.
    """
    n = sorted_rows.shape[1]
    lo = np.zeros(values.shape, np.int64)  # invariant: sorted[:lo] <= v
    hi = np.full(values.shape, n, np.int64)  # invariant: sorted[hi:] > v
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        le = np.take_along_axis(sorted_rows, np.minimum(mid, n - 1), axis=1) <= values
        lo = np.where(active & le, mid + 1, lo)
        hi = np.where(active & ~le, mid, hi)
    return n - lo


# -- what the failures panel and command show ----------------------------------------------------------
def failure_ids(scores: QueryScores, query_classes: Iterable[int] | None = None,
                neighbour_classes: Iterable[int] | None = None) -> np.ndarray:
    """Ids of the failing queries, largest margin first (nan margins last, ties by smaller id).

    ``query_classes`` keeps failures whose query is of one of these classes, ``neighbour_classes``
    those whose wrong top-1 is (e.g. "which queries are confused *with* class c").
    """
    keep = ~scores.hit1
    if query_classes is not None:
        keep &= np.isin(scores.labels, np.fromiter(query_classes, np.int64))
    if neighbour_classes is not None:
        keep &= np.isin(scores.labels[scores.top1], np.fromiter(neighbour_classes, np.int64))
    ids = np.flatnonzero(keep)
    return ids[sort_by_margin(scores.margin[ids])]


def sort_by_margin(margin: np.ndarray) -> np.ndarray:
    """Order putting the largest margin first, nan last; stable, so ties keep their (id) order."""
    key = np.where(np.isnan(margin), -np.inf, margin)
    return np.argsort(-key, kind="stable")


@dataclass(frozen=True)
class ClassTable:
    """Per-class R@1 (arrays indexed by class index; classes without queries have ``count`` 0)."""

    count: np.ndarray  # int64 queries of the class
    hits: np.ndarray  # int64 queries whose top-1 is of the class
    mean_ap: np.ndarray  # float64 (nan when no query of the class has a same-class image)

    @property
    def recall_at_1(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.hits / np.maximum(self.count, 1), np.nan)

    @property
    def failures(self) -> np.ndarray:
        return self.count - self.hits

    def worst_first(self) -> np.ndarray:
        """Class indices with queries, lowest R@1 first (then most failures, then index)."""
        present = np.flatnonzero(self.count > 0)
        r1 = self.recall_at_1[present]
        return present[np.lexsort((present, -self.failures[present], r1))]


def class_table(scores: QueryScores, n_classes: int | None = None) -> ClassTable:
    """Per-class count, R@1 hits and mean AP of ``scores``."""
    lab = scores.labels
    n_cls = max(int(lab.max()) + 1 if len(lab) else 0, n_classes or 0)
    count = np.bincount(lab, minlength=n_cls)
    hits = np.bincount(lab, weights=scores.hit1.astype(np.float64), minlength=n_cls).astype(np.int64)
    ok = np.isfinite(scores.ap)
    ap_sum = np.bincount(lab[ok], weights=scores.ap[ok], minlength=n_cls)
    ap_n = np.bincount(lab[ok], minlength=n_cls)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ap = np.where(ap_n > 0, ap_sum / np.maximum(ap_n, 1), np.nan)
    return ClassTable(count=count, hits=hits, mean_ap=mean_ap)
