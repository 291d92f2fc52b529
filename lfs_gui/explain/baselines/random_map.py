"""``random``: a seeded uniform random map per image — the floor every method must beat.

A method whose selectivity curve is no steeper than this one's finds nothing the model uses
(Samek et al. 2017, "Evaluating the visualization of what a deep neural network has learned",
compare against random orderings). The map is drawn from a generator seeded by ``seed`` *and* the
pair's embeddings, so explaining the same pair twice gives the same map while different pairs get
independent maps.
"""

from __future__ import annotations

import numpy as np

from lfs_gui.explain.base import Explainer, HeatPair, PairInput, make_cost, pair_seed


class RandomExplainer(Explainer):
    """Uniform i.i.d. [0, 1) values at ``size``×``size`` (default 40, the paper's S)."""

    name = "random"
    needs = frozenset()
    summary = "seeded random map (the floor)"

    def __init__(self, model=None, decoder=None, *, size: int = 40, seed: int = 0) -> None:
        super().__init__(model, decoder)
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.size, self.seed = int(size), int(seed)
        self._store(size=self.size, seed=self.seed)

    def _explain(self, pair: PairInput) -> HeatPair:
        rng = np.random.default_rng(pair_seed(self.seed, pair.h1, pair.h2))
        heat = rng.random((2, self.size, self.size)).astype(np.float32)
        return self._result(pair, heat[0], heat[1], make_cost())
