"""ExplainLFS behind the :class:`~lfs_gui.explain.base.Explainer` interface (no change to the method).

* ``explainlfs`` — Bello et al. 2024, Algorithm 1: both embeddings perturbed by R·p, one decoder
  batch of 4 embeddings (g(h¹), g(h²), g(h¹+Rp), g(h²+Rp)).
* ``explainlfs-thesis`` — Costa 2022, §4.1: only the test embedding is perturbed; the query's map
  comes from the thesis' *swap* trial (query and test exchanged, the same formula applied to h¹).
  Because R = f(|h¹ − h²|) is symmetric in the pair, the swapped trial perturbs h¹ by exactly the
  same R·p as Algorithm 1 does, so both names give identical maps; the thesis form costs two
  decoder batches of 3 and keeps the thesis' swap trial (a HeatPair) in ``extras["swap"]``.

The result is the method's own :class:`~lfs_gui.explain.base.HeatPair` (masks at ξ2, reconstructions,
relevance in ``extras``) under this explainer's name and settings.

``xi1`` comes from the :class:`~lfs_gui.explain.base.PairInput` (the app's threshold), so the
similar/dissimilar decision is the same for every method.

Target: R switches with the decision (1 − d̄ for a similar pair, d̄ for a dissimilar one), so the
published method answers the ``decision`` target. On a dissimilar pair its map marks what makes the
two *different*; asked what makes them alike (``similarity``) it raises
:class:`~lfs_gui.explain.base.TargetUnavailable` rather than answer the other question (R = 1 − d̄
there would be a different method).
"""

from __future__ import annotations

from dataclasses import replace

from lfs_gui.explain.base import DEFAULT_TARGET, Explainer, HeatPair, PairInput, make_cost
from lfs_gui.explain.explainlfs import ExplainLFS

DECISION_ONLY = frozenset({"decision"})
WHY_DECISION_ONLY = ("its relevance R = d̄ marks the latent features where the two embeddings differ most, "
                     "i.e. what makes them different (use target 'decision')")


class ExplainLFSExplainer(Explainer):
    """The published method (paper, perturb both). Settings: ``p`` (0.3), ``xi2`` mask threshold (0.7)."""

    name = "explainlfs"
    needs = frozenset({"decoder"})
    summary = "ExplainLFS as published (Bello et al. 2024): |g(h) − g(h + R·p)|, both images"
    perturb = "both"
    targets = DECISION_ONLY
    why_not_similarity = WHY_DECISION_ONLY

    def __init__(self, model=None, decoder=None, *, p: float = 0.3, xi2: float = 0.7, target: str = DEFAULT_TARGET) -> None:
        super().__init__(model, decoder, target=target)
        self.p, self.xi2 = float(p), float(xi2)
        self._store(p=self.p, xi2=self.xi2)

    def _method(self, pair: PairInput) -> ExplainLFS:
        return ExplainLFS(self.decoder, p=self.p, xi1=pair.xi1, xi2=self.xi2, perturb=self.perturb)

    def _explain(self, pair: PairInput) -> HeatPair:
        e = self._method(pair).explain(pair.h1, pair.h2, pair.similarity)
        assert e.heat1 is not None
        return replace(e, method=self.name, cost=make_cost(decoder_calls=4), settings=self.settings(), target=self.target)


class ExplainLFSThesisExplainer(ExplainLFSExplainer):
    """Costa's thesis form: perturb the test embedding only; the query map from the swap trial."""

    name = "explainlfs-thesis"
    summary = "ExplainLFS, thesis form (Costa 2022): test embedding perturbed; query map by swapping"
    perturb = "test"

    def _explain(self, pair: PairInput) -> HeatPair:
        method = self._method(pair)
        e = method.explain(pair.h1, pair.h2, pair.similarity)
        swap = method.explain(pair.h2, pair.h1, pair.similarity)
        return replace(e, method=self.name, heat1=swap.heat2, mask1=swap.mask2, cost=make_cost(decoder_calls=6),
                       settings=self.settings(), extras={**e.extras, "swap": swap}, target=self.target)
