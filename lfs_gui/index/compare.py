"""Two models over the same gallery: align their indexes by image, find where they disagree.

Two indexes (another checkpoint, an earlier epoch) cover the same gallery when they hold the same
set of relative image paths; their rows may come in any order. :func:`align` gives the permutation
that puts index B's rows in index A's order and raises :class:`GalleryMismatch` (saying how many
images differ, with examples) otherwise. Labels are compared by class *name*, so two indexes that
number the classes differently still compare.

A **disagreement** is a query whose top-1 is right under one model and wrong under the other; it is
scored by the failing model's margin (how far its wrong neighbour beats its nearest correct image,
see :mod:`lfs_gui.index.failures`) and the list is sorted by it, largest first. Everything works on
arrays (embeddings, labels, relative paths).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from lfs_gui.index.failures import QueryScores, iter_query_scores, sort_by_margin
from lfs_gui.jobs import Progress, run_generator

log = logging.getLogger(__name__)


class GalleryMismatch(ValueError):
    """The two indexes do not cover the same images (the message says how many differ)."""


@dataclass(frozen=True)
class GalleryArrays:
    """What the failure finder and the comparison need of an index: arrays, no per-item objects."""

    embeddings: np.ndarray  # (n, dim) float32 unit rows
    labels: np.ndarray  # (n,) int64 class index, -1 unlabelled
    relpaths: np.ndarray  # (n,) str, relative to the gallery root
    classes: list[str]
    name: str = ""

    @classmethod
    def from_index(cls, index, name: str = "") -> "GalleryArrays":
        """From an :class:`~lfs_gui.index.faiss_index.EmbeddingIndex` and its sidecar metadata."""
        meta = index.meta
        return cls(embeddings=index.embeddings, labels=meta.labels_array(),
                   relpaths=np.asarray(meta.relpaths, dtype=str), classes=list(meta.classes), name=name)

    @classmethod
    def from_gallery(cls, embeddings: np.ndarray, gallery, name: str = "") -> "GalleryArrays":
        """From an open session's embeddings and :class:`~lfs_gui.data.gallery_types.Gallery`."""
        return cls(embeddings=embeddings, labels=gallery.labels_array(),
                   relpaths=np.asarray(gallery.relpaths, dtype=str), classes=list(gallery.classes), name=name)

    def check_labelled(self) -> None:
        """Failures and comparisons need a class for every image."""
        missing = int((self.labels < 0).sum())
        if missing:
            raise ValueError(f"{self.name or 'the index'}: {missing} of {len(self.labels)} images have no class; "
                             "failures need a labelled gallery (class = sub-folder, or CUB/Cars)")


def _examples(values: np.ndarray, k: int = 3) -> str:
    shown = ", ".join(repr(str(v)) for v in values[:k])
    return shown + (", ..." if len(values) > k else "")


def align(a: GalleryArrays, b: GalleryArrays) -> np.ndarray:
    """``perm`` with ``b.relpaths[perm] == a.relpaths`` (and equal class names), or :class:`GalleryMismatch`."""
    ra, rb = a.relpaths, b.relpaths
    for g, r in ((a, ra), (b, rb)):
        uniq = np.unique(r)
        if len(uniq) != len(r):
            raise GalleryMismatch(f"{g.name}: {len(r) - len(uniq)} relative paths occur twice; rebuild that index")
    only_a = np.setdiff1d(ra, rb)
    only_b = np.setdiff1d(rb, ra)
    if len(only_a) or len(only_b):
        raise GalleryMismatch(
            f"the indexes do not cover the same images: {len(only_a)} of {a.name}'s {len(ra)} images are not in "
            f"{b.name}" + (f" (e.g. {_examples(only_a)})" if len(only_a) else "")
            + f", and {len(only_b)} of {b.name}'s {len(rb)} are not in {a.name}"
            + (f" (e.g. {_examples(only_b)})" if len(only_b) else "")
            + "; build both indexes over the same gallery and split")
    ia, ib = np.argsort(ra, kind="stable"), np.argsort(rb, kind="stable")
    perm = np.empty(len(ra), np.int64)
    perm[ia] = ib
    ca = _class_names(a)
    cb = _class_names(b)[perm]
    differ = np.flatnonzero(ca != cb)
    if len(differ):
        raise GalleryMismatch(f"{len(differ)} images have another class in {b.name} than in {a.name} "
                              f"(e.g. {_examples(ra[differ])}); build both indexes over the same gallery")
    return perm


def _class_names(g: GalleryArrays) -> np.ndarray:
    names = np.asarray(list(g.classes) + [""], dtype=object)
    return names[np.where(g.labels >= 0, g.labels, len(g.classes))]


@dataclass(frozen=True)
class Comparison:
    """Both models' query scores in A's image order, and where they disagree."""

    a: QueryScores
    b: QueryScores  # B's ids are translated to A's numbering
    perm: np.ndarray  # B's row of each of A's images
    ids: np.ndarray  # disagreeing queries (A's ids), largest failing margin first
    a_right: np.ndarray  # bool per disagreement: A's top-1 right, B's wrong

    @property
    def margin(self) -> np.ndarray:
        """The failing model's margin of each disagreement."""
        return np.where(self.a_right, self.b.margin[self.ids], self.a.margin[self.ids])


def iter_compare(a: GalleryArrays, b: GalleryArrays) -> Generator[Progress, None, Comparison]:
    """Align B to A, score every query under both models, and list the disagreements."""
    a.check_labelled()
    b.check_labelled()
    perm = align(a, b)
    sa = yield from _relabel(iter_query_scores(a.embeddings, a.labels), f"model A ({a.name})")
    eb = np.ascontiguousarray(b.embeddings[perm])
    sb = yield from _relabel(iter_query_scores(eb, a.labels), f"model B ({b.name})")
    disagree = np.flatnonzero(sa.hit1 != sb.hit1)
    a_right = sa.hit1[disagree]
    margin = np.where(a_right, sb.margin[disagree], sa.margin[disagree])
    order = sort_by_margin(margin)
    log.info("compare %s vs %s: R@1 %.4f vs %.4f, %d disagreements", a.name, b.name, sa.recall_at_1,
             sb.recall_at_1, len(disagree))
    return Comparison(a=sa, b=sb, perm=perm, ids=disagree[order], a_right=a_right[order])


def compare(a: GalleryArrays, b: GalleryArrays) -> Comparison:
    """:func:`iter_compare` run to completion."""
    return run_generator(iter_compare(a, b))


def _relabel(gen: Generator[Progress, None, QueryScores], who: str) -> Generator[Progress, None, QueryScores]:
    """Forward ``gen``'s progress with ``who`` in its message."""
    try:
        while True:
            p = next(gen)
            yield Progress(p.done, p.total, f"{p.message}: {who}")
    except StopIteration as stop:
        return stop.value


def rank_in(scores_row: np.ndarray, ids: Sequence[int] | np.ndarray, exclude: int | None = None) -> np.ndarray:
    """1-based rank of each id in the ranking by ``scores_row`` (cosine desc, ties by smaller id),
    ``exclude`` (the query itself) left out: where another model ranks this model's retrievals."""
    s = np.asarray(scores_row, np.float32).copy()
    if exclude is not None:
        s[int(exclude)] = -np.inf
    ids = np.asarray(ids, np.int64)
    pos = np.arange(len(s))
    out = np.empty(len(ids), np.int64)
    for k, j in enumerate(ids):  # a few ids, each one pass over the row (no (k, n) temporary)
        v = s[j]
        out[k] = 1 + int((s > v).sum()) + int(((s == v) & (pos < j)).sum())
    return out
