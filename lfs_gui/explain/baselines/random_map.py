"""``random``: a seeded uniform random map per image — the floor every method must beat.

A method whose selectivity curve is no steeper than this one's finds nothing the model uses
(Samek et al. 2017, "Evaluating the visualization of what a deep neural network has learned",
compare against random orderings). The map is drawn from a generator seeded by ``seed`` *and* the
pair's embeddings (:func:`random_heat`), so explaining the same pair twice gives the same map while
different pairs get independent maps.

The same map breaks ties in every other method's ranking (:mod:`lfs_gui.metrics.ranking`): cells
with equal heat are taken in the order this map gives them, so a constant map scores exactly as
``random`` does. The map does not depend on the target: it answers both (equally badly).
"""

from __future__ import annotations

import numpy as np

from lfs_gui.explain.base import DEFAULT_TARGET, Explainer, HeatPair, PairInput, make_cost, pair_seed

RANDOM_SIZE = 40
"""Default side of the random map: the paper's S, the selectivity's heat frame."""


def random_heat(h1: np.ndarray, h2: np.ndarray, seed: int = 0, size: int = RANDOM_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The ``random`` method's two maps (size × size float32, uniform [0, 1)) for the pair (h1, h2)."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    rng = np.random.default_rng(pair_seed(seed, h1, h2))
    heat = rng.random((2, int(size), int(size))).astype(np.float32)
    return heat[0], heat[1]


class RandomExplainer(Explainer):
    """Uniform i.i.d. [0, 1) values at ``size``×``size`` (default 40, the paper's S)."""

    name = "random"
    needs = frozenset()
    summary = "seeded random map (the floor)"

    def __init__(self, model=None, decoder=None, *, size: int = RANDOM_SIZE, seed: int = 0, target: str = DEFAULT_TARGET) -> None:
        super().__init__(model, decoder, target=target)
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.size, self.seed = int(size), int(seed)
        self._store(size=self.size, seed=self.seed)

    def _explain(self, pair: PairInput) -> HeatPair:
        heat1, heat2 = random_heat(pair.h1, pair.h2, self.seed, self.size)
        return self._result(pair, heat1, heat2, make_cost())
