"""Class prototypes of a gallery, computed once per gallery (EMSNN's reference points).

EMSNN (Utkin et al. 2021) compares an embedding with its class prototype c_k (the mean embedding of
class k) and scales its perturbations by the gallery's per-feature standard deviation. Both depend on
the gallery only, so :class:`ClassPrototypes` computes them in one chunked pass (float64
accumulators, no float64 copy of the gallery) and a session keeps them: explaining a pair then costs
a lookup instead of a pass over every embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_CHUNK_ROWS = 16384


@dataclass(frozen=True)
class ClassPrototypes:
    """``means[i]`` is the mean embedding (float64) of the gallery rows labelled ``labels[i]``; ``std``
    the per-feature standard deviation over all gallery rows (float64, population form as ``np.std``)."""

    labels: np.ndarray
    means: np.ndarray
    std: np.ndarray

    @classmethod
    def from_gallery(cls, embeddings: np.ndarray, labels: np.ndarray) -> ClassPrototypes:
        """Prototypes of ``embeddings`` (M, N) grouped by ``labels`` (M,); negative labels (unlabelled
        rows) join the standard deviation but get no prototype. The inputs are not modified."""
        x = np.asarray(embeddings)
        lab = np.asarray(labels)
        if x.ndim != 2 or lab.shape != (x.shape[0],):
            raise ValueError(f"prototypes need (M, N) embeddings and (M,) labels, got {x.shape} and {lab.shape}")
        if x.shape[0] == 0:
            raise ValueError("prototypes need a non-empty gallery")
        order = np.argsort(lab, kind="stable")
        sorted_lab = lab[order]
        uniq, starts = np.unique(sorted_lab, return_index=True)
        ends = np.append(starts[1:], len(order))
        keep = [i for i, u in enumerate(uniq.tolist()) if not (isinstance(u, (int, np.integer)) and u < 0)]
        means = np.stack([x[order[starts[i]:ends[i]]].mean(axis=0, dtype=np.float64) for i in keep]) if keep \
            else np.zeros((0, x.shape[1]))
        return cls(labels=uniq[keep], means=means, std=_chunked_std(x))

    def mean_of(self, label: Any) -> np.ndarray | None:
        """The prototype of class ``label`` (``None`` when no gallery row has that label)."""
        hit = np.flatnonzero(self.labels == label)
        return self.means[int(hit[0])] if hit.size else None


def _chunked_std(x: np.ndarray) -> np.ndarray:
    """``x.std(axis=0)`` in float64, two passes over row chunks (memory: one chunk, not a copy of x)."""
    n = x.shape[0]
    total = np.zeros(x.shape[1], np.float64)
    for a in range(0, n, _CHUNK_ROWS):
        total += x[a:a + _CHUNK_ROWS].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(x.shape[1], np.float64)
    for a in range(0, n, _CHUNK_ROWS):
        d = x[a:a + _CHUNK_ROWS].astype(np.float64) - mean
        sq += np.einsum("ij,ij->j", d, d)
    return np.sqrt(sq / n)
