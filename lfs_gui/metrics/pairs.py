"""Which pairs an evaluation scores: seeded sampling of similar and dissimilar pairs from a gallery.

Each sampled query i (in a seeded random order) contributes at most one *similar* pair (same class
when labels exist, and cosine > ξ1) and one *dissimilar* pair (different class when labels exist,
and cosine ≤ ξ1), its partner j drawn at random among the candidates; i is image 1
(query/reference), j image 2 (test), as in retrieval. Unlabelled items (label None or < 0) are
never a query and never a partner when the gallery has labels. Cosines are those of the stored
embeddings (the index); :class:`~lfs_gui.metrics.evaluate.Evaluation` re-embeds each pair once and
uses those embeddings for the map and the curve alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairSpec:
    """A sampled pair: gallery indices ``i`` (query) and ``j`` (test), their stored cosine and type."""

    i: int
    j: int
    similarity: float
    similar: bool

    @property
    def pair_type(self) -> str:
        return "similar" if self.similar else "dissimilar"


def labels_or_none(labels: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray | None:
    """Labels as int64 (None → −1), or ``None`` when there are none or none is known."""
    if labels is None:
        return None
    lab = np.asarray([-1 if v is None else v for v in labels], dtype=np.int64)
    if lab.shape != (n,):
        raise ValueError(f"labels has {lab.shape[0]} entries for {n} embeddings")
    return lab if (lab >= 0).any() else None


def sample_pairs(embeddings: np.ndarray, labels: Sequence[Any] | np.ndarray | None, n: int, xi1: float, seed: int = 0) -> list[PairSpec]:
    """Up to ``n`` similar and ``n`` dissimilar pairs (similar first), seeded; see the module docstring."""
    e = np.asarray(embeddings, np.float32)
    lab = labels_or_none(labels, len(e))
    rng = np.random.default_rng(seed)
    sim_pairs: list[PairSpec] = []
    dis_pairs: list[PairSpec] = []
    idx = np.arange(len(e))
    for i in rng.permutation(len(e)):
        if len(sim_pairs) >= n and len(dis_pairs) >= n:
            break
        if lab is not None and lab[i] < 0:
            continue
        s = e @ e[i]
        same = (lab == lab[i]) if lab is not None else np.ones(len(e), bool)
        other = (lab != lab[i]) & (lab >= 0) if lab is not None else np.ones(len(e), bool)
        if len(sim_pairs) < n:
            cand = idx[same & (s > xi1) & (idx != i)]
            if cand.size:
                j = int(rng.choice(cand))
                sim_pairs.append(PairSpec(int(i), j, float(s[j]), True))
        if len(dis_pairs) < n:
            cand = idx[other & (s <= xi1) & (idx != i)]
            if cand.size:
                j = int(rng.choice(cand))
                dis_pairs.append(PairSpec(int(i), j, float(s[j]), False))
    if len(sim_pairs) < n or len(dis_pairs) < n:
        log.warning("found %d similar and %d dissimilar pairs of the %d asked for (xi1=%.3f)", len(sim_pairs), len(dis_pairs), n, xi1)
    return sim_pairs + dis_pairs
