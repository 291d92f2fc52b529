"""``emsnn``: Utkin, Kovalev & Kasimov 2021, "An explanation method for Siamese neural networks".

As the thesis describes it (Costa 2022, §3.1.1): build the prototype of the image's class,
c_k = mean of the gallery embeddings of class k (Eq. 3.2); take the ``k`` embedding features
closest to the prototype (|h_j − c_j| smallest) as the important ones; perturb only those,
randomly, ``n`` times (Gaussian, per-feature scale = the gallery's standard deviation of that
feature × ``scale``); decode every perturbed embedding and take the mean absolute change of the
reconstruction, summed over colours, as the map (min–max normalised). The decoder is the same one
ExplainLFS uses (the thesis' simplification of Utkin's autoencoder).

Image 2 (a gallery image) uses its class' prototype; image 1 uses its own class when known,
else image 2's class (the class the pair is being compared in). The noise generator is seeded by
``seed`` and the pair, so the map is reproducible. The prototypes and the standard deviation come
from ``PairInput.prototypes`` (computed once per gallery by the session) or, failing that, from the
gallery arrays of the pair.

Target: each image's map explains its membership in its class — the same-class/different-class
decision — and does not depend on the other image, so it answers only ``decision`` on a dissimilar
pair (asked what makes two images of different classes alike, it has no answer).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lfs_gui.explain.base import (
    DEFAULT_TARGET,
    Explainer,
    ExplainerUnavailable,
    HeatPair,
    PairInput,
    make_cost,
    pair_seed,
    unit_map,
)
from lfs_gui.explain.explainlfs import decode
from lfs_gui.explain.prototypes import ClassPrototypes


class EMSNNExplainer(Explainer):
    """Prototype-referenced random perturbation of the top-k features through the decoder."""

    name = "emsnn"
    needs = frozenset({"decoder", "gallery"})
    summary = "EMSNN (Utkin et al. 2021): class prototype, top-k features, random perturbations"
    targets = frozenset({"decision"})
    why_not_similarity = "its maps explain each image's membership in its own class, not what two images of different classes share"

    def __init__(self, model=None, decoder=None, *, k: int = 20, n: int = 50, scale: float = 1.0, seed: int = 0,
                 target: str = DEFAULT_TARGET) -> None:
        super().__init__(model, decoder, target=target)
        if k <= 0 or n <= 0 or not np.isfinite(scale) or scale <= 0:
            raise ValueError("emsnn needs k > 0, n > 0 and a positive finite scale")
        self.k, self.n, self.scale, self.seed = int(k), int(n), float(scale), int(seed)
        self._store(k=self.k, n=self.n, scale=self.scale, seed=self.seed)

    def _prototype(self, protos: ClassPrototypes, label: Any) -> np.ndarray:
        proto = protos.mean_of(label)
        if proto is None:
            raise ExplainerUnavailable(f"{self.name}: no gallery image has label {label!r}; no prototype")
        return proto

    def _heat(self, h: np.ndarray, proto: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h = np.asarray(h, np.float64)
        k = min(self.k, h.size)
        idx = np.argsort(np.abs(h - proto), kind="stable")[:k]
        sigma = np.where(std[idx] > 0, std[idx], np.abs(h).mean() + 1e-12) * self.scale
        batch = np.repeat(h[None], self.n + 1, axis=0)
        batch[1:, idx] += rng.standard_normal((self.n, k)) * sigma
        out = decode(self.decoder, batch)
        return unit_map(np.abs(out[1:] - out[0:1]).sum(axis=1).mean(axis=0))

    def _explain(self, pair: PairInput) -> HeatPair:
        protos = pair.prototypes
        if protos is None and (pair.gallery is None or pair.gallery_labels is None):
            raise ExplainerUnavailable(f"{self.name} needs gallery embeddings and labels (class prototypes)")
        label2 = pair.label2
        if label2 is None:
            raise ExplainerUnavailable(f"{self.name} needs the class label of the test image (image 2)")
        if protos is None:
            protos = ClassPrototypes.from_gallery(pair.gallery, pair.gallery_labels)
        label1 = pair.label1 if pair.label1 is not None else label2
        rng = np.random.default_rng(pair_seed(self.seed, pair.h1, pair.h2))
        c2, std = self._prototype(protos, label2), protos.std
        c1 = c2 if label1 == label2 else self._prototype(protos, label1)
        heat1 = self._heat(pair.h1, c1, std, rng)
        heat2 = self._heat(pair.h2, c2, std, rng)
        return self._result(pair, heat1, heat2, make_cost(decoder_calls=2 * (self.n + 1)), prototype1=c1, prototype2=c2)
