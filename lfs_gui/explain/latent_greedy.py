"""``explainlfs-latent``: rank image cells by a greedy search in latent space, with ExplainLFS' relevance.

Why (``docs/RESULTS.md``, section "Latent-relevance methods (issue 11)"; ``../shared/FINDINGS.md``,
second prototype).
ExplainLFS asks which latent dimensions carry the decision (its relevance R, Eq. 2–3) and maps them
to pixels through a decoder that only sees the pooled embedding, so its map cannot know where, in
*this* image, those dimensions come from; on the demo it scores at random level. The greedy oracle
of the faithfulness protocol shows what a good ranking does instead: it perturbs cells that matter
*together* (single-cell scores miss the interaction and the renormalisation of the embedding).

This method maps the latent question through the *encoder*, and does the oracle's greedy search in
latent space, where a candidate costs a few hundred multiply-adds instead of a model forward:

1. For a model whose embedding is e = W·mean_i f(i) + b (conv features f at locations i, global
   average pooling, an affine head; ``model.linear_head()``), project every location:
   u(i) = W f(i). One forward of the two images.
2. Predict the embedding of the image with a *set* S of cells replaced by the perturbation: location i
   is taken to move from u(i) towards u_p(i), the projected feature of the perturbation image itself
   (a white image for ``baseline="fill"``, an N(0, 1) image for ``"noise"``; one more forward, cached
   per model), in proportion a_i(S) = Σ_{c∈S} K(i, c), the share of location i's footprint that the
   cells cover (``K``: :func:`coverage`; rows sum to 1). Because the pooling is a mean, the
   prediction is additive in the cells before normalisation:
   e(S) = e + Σ_{c∈S} d(c), d(c) = (1/n) Σ_i K(i, c) (u_p(i) − u(i)).
   It is exact when each feature location sees only its own footprint (tested on such a model); for a
   real CNN it ignores the receptive field's spill into neighbouring locations.
3. Greedy, as the oracle does it but on the prediction: at each step add the cell that moves the
   relevance-weighted similarity s_R(S) = Σ_j R_j ê¹_j(S) ê²_j(S) furthest in the target's direction
   (down for a similar pair: only the test image moves; up for a dissimilar pair under the
   ``decision`` target: both images move at the same cells, as the curve perturbs them), with the
   renormalisation of each embedding included. R is ExplainLFS' relevance of the unperturbed pair
   (``relevance="explainlfs"``) in the form of the question: 1 − d̄ (where the two agree) for a
   similar pair or the ``similarity`` target, d̄ (where they differ) for the ``decision`` on a
   dissimilar pair, so every target is answered; ``"none"`` uses the plain cosine (R = 1), ``"contribution"`` the
   per-dimension contribution |ĥ¹_j ĥ²_j| to the cosine.
4. The map is the greedy rank: the first cell gets 1, the last 0, constant over each cell, drawn at
   the model-input resolution on the same proportional cell edges as the selectivity curve.

Measured on the demo (RESULTS, issue 11): the prediction of step 2 does *not* hold for
EfficientNet-Lite0 (predicted and real effects of cell sets correlate at 0.02–0.25; cells interact),
so the greedy is a heuristic there: its AUC is close to grad-sim's and far better than the published
map's, but it does not approach the oracle. Weighting by R changed the AUC by ≤ 0.004.

Cost: 2 model forwards for the pair (+1 for the perturbation image, once per model and baseline),
no backward pass, no decoder; the greedy is O(grid⁴ · dim) arithmetic (8×8 grid, 128-d: ~0.5 M
multiply-adds). ``grid`` should be the curve's grid (8 = the default 5-px superpixels on a 40-px
frame): the ranking is of those cells. Settings: ``grid``, ``baseline``, ``relevance``, ``spread``
(0: a location's footprint is its stride box; > 0: a Gaussian of that many feature strides).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import torch

from lfs_gui.explain.base import DEFAULT_TARGET, Explainer, ExplainerUnavailable, HeatPair, PairInput, make_cost
from lfs_gui.explain.explainlfs import relevance as explainlfs_relevance
from lfs_gui.explain.resample import block_edges

log = logging.getLogger(__name__)

BASELINES = ("fill", "noise", "zero")
RELEVANCES = ("explainlfs", "none", "contribution")


def coverage(feat_hw: tuple[int, int], grid: int, size_hw: tuple[int, int], spread: float = 0.0) -> np.ndarray:
    """K (h·w locations, grid² cells): the share of each feature location's footprint in each cell.

    A location's footprint is its stride box on the input (``spread`` 0) or a Gaussian of ``spread``
    strides around its centre; cells are the selectivity's proportional blocks
    (:func:`~lfs_gui.explain.resample.block_edges`). Rows sum to 1 (the whole image covers every
    location). Separable: K = A_y ⊗ A_x.
    """
    if grid <= 0 or spread < 0:
        raise ValueError(f"grid must be positive and spread >= 0, got grid={grid}, spread={spread}")
    axes = []
    for n_loc, n_px in zip(feat_hw, size_hw):
        stride = n_px / n_loc
        px = np.arange(n_px) + 0.5
        if spread == 0:
            w = (np.floor(px[None] / stride) == np.arange(n_loc)[:, None]).astype(np.float64)
        else:
            centres = (np.arange(n_loc) + 0.5) * stride
            w = np.exp(-0.5 * ((px[None] - centres[:, None]) / (spread * stride)) ** 2)
        w /= w.sum(1, keepdims=True)
        cell = np.searchsorted(block_edges(n_px, grid)[1:], np.arange(n_px), side="right")
        axes.append(np.stack([w[:, cell == g].sum(1) for g in range(grid)], axis=1))
    ay, ax = axes
    return np.einsum("ac,bd->abcd", ay, ax).reshape(ay.shape[0] * ax.shape[0], grid * grid)


def projected_locations(f: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
    """u(i) = W f(i): (B, C, h, w) features → (B, h·w, dim) float64."""
    u = torch.einsum("dc,bchw->bhwd", weight.detach().double().cpu(), f.detach().double().cpu())
    return u.reshape(u.shape[0], -1, u.shape[-1]).numpy()


def cell_deltas(u: np.ndarray, u_p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """d(c) = (1/n) Σ_i K(i, c) (u_p(i) − u(i)): (n, dim), (n, dim), (n, cells) → (cells, dim)."""
    return k.T @ (u_p - u) / u.shape[0]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def greedy_order(e1: np.ndarray, d1: np.ndarray, e2: np.ndarray, d2: np.ndarray, *, both: bool, lower: bool,
                 weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy cell order on the additive prediction e_t(S) = e_t + Σ_{c∈S} d_t(c).

    The score of a set is Σ_j w_j ê¹_j(S) ê²_j(S) (w = 1: the cosine). ``both``: both images move
    (a dissimilar pair's curve), else only image 2. ``lower``: each step takes the cell that gives
    the lowest score, else the highest. Returns (order of all cells, predicted score after each step).
    """
    w = np.ones_like(e1) if weight is None else np.asarray(weight, np.float64)
    remaining = np.arange(d2.shape[0])
    a1, a2 = e1.astype(np.float64).copy(), e2.astype(np.float64).copy()
    order, scores = [], []
    while remaining.size:
        c2 = _unit(a2[None] + d2[remaining])
        c1 = _unit(a1[None] + d1[remaining]) if both else _unit(a1)[None]
        s = (w * c1 * c2).sum(-1)
        best = int(np.argmin(s) if lower else np.argmax(s))
        c = int(remaining[best])
        order.append(c)
        scores.append(float(s[best]))
        a2 = a2 + d2[c]
        if both:
            a1 = a1 + d1[c]
        remaining = np.delete(remaining, best)
    return np.asarray(order, np.int64), np.asarray(scores, np.float64)


def rank_map(order: np.ndarray, grid: int, size_hw: tuple[int, int]) -> np.ndarray:
    """The greedy rank as a map: cell order[k] gets 1 − k/cells, constant over the cell's block."""
    n = grid * grid
    value = np.empty(n, np.float64)
    value[np.asarray(order)] = 1.0 - np.arange(len(order)) / n
    h, w = size_hw
    ey, ex = block_edges(h, grid), block_edges(w, grid)
    ry = np.searchsorted(ey[1:], np.arange(h), side="right")
    rx = np.searchsorted(ex[1:], np.arange(w), side="right")
    cells = value.reshape(grid, grid)[ry[:, None], rx[None, :]]
    lo = cells.min()
    return ((cells - lo) / max(cells.max() - lo, 1e-12)).astype(np.float32)


def baseline_image(baseline: str, like: torch.Tensor, preprocessing: Any, seed: int) -> torch.Tensor:
    """The perturbation image (1, 3, H, W) in normalised input space, as the selectivity curve's
    perturbations of the same names build it: white (``fill``), N(0, 1) (``noise``), the mean colour
    (``zero``). Built here rather than imported, so ``explain`` does not depend on ``metrics``."""
    shape = (1, *like.shape[1:])
    if baseline == "noise":
        return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32).to(like.dtype)
    if baseline == "zero":
        return torch.zeros(shape, dtype=like.dtype)
    mean = torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((1.0 - mean) / std).expand(shape).to(like.dtype).clone()


class _BaselineFeatures:
    """Projected features of the perturbation image, per (model, baseline, input size): one forward each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[Any, np.ndarray]] = {}

    def get(self, model: Any, baseline: str, like: torch.Tensor, seed: int) -> tuple[np.ndarray, bool]:
        """(u_p (h·w, dim), whether a forward ran) for inputs shaped and typed like ``like``."""
        key = (id(model), baseline, tuple(like.shape[1:]), like.dtype, seed)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0]() is model:
            return hit[1], False
        import weakref

        src = baseline_image(baseline, like, model.preprocessing, seed)
        device = getattr(model, "device", torch.device("cpu"))
        with torch.inference_mode():
            f = model.forward_features(src.to(device))
        weight = model.linear_head()[0]
        u_p = projected_locations(f, weight)[0]
        with self._lock:
            self._cache[key] = (weakref.ref(model), u_p)
            if len(self._cache) > 16:
                self._cache.pop(next(iter(self._cache)))
        return u_p, True


BASELINE_FEATURES = _BaselineFeatures()


def latent_weight(kind: str, h1: np.ndarray, h2: np.ndarray, similar: bool) -> np.ndarray | None:
    """The per-dimension weight of the similarity the greedy moves (``None``: the plain cosine)."""
    if kind == "none":
        return None
    if kind == "explainlfs":
        return explainlfs_relevance(h1, h2, similar).astype(np.float64)
    c = np.abs(np.asarray(h1, np.float64) * np.asarray(h2, np.float64))
    return c / max(float(c.max()), 1e-12)


class ExplainLFSLatentExplainer(Explainer):
    """Greedy cell ranking in latent space (see the module docstring): 2 forwards, no backward."""

    name = "explainlfs-latent"
    needs = frozenset({"model", "features", "linear_head"})
    summary = "ExplainLFS relevance, greedy over image cells in latent space (encoder, no decoder)"

    def __init__(self, model=None, decoder=None, *, target: str = DEFAULT_TARGET, grid: int = 8, baseline: str = "fill",
                 relevance: str = "explainlfs", spread: float = 0.0, seed: int = 0) -> None:
        super().__init__(model, decoder, target=target)
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if relevance not in RELEVANCES:
            raise ValueError(f"relevance must be one of {RELEVANCES}, got {relevance!r}")
        if int(grid) <= 0 or not np.isfinite(spread) or spread < 0:
            raise ValueError(f"grid must be positive and spread >= 0, got grid={grid}, spread={spread}")
        self.grid, self.baseline, self.relevance = int(grid), baseline, relevance
        self.spread, self.seed = float(spread), int(seed)
        self._store(grid=self.grid, baseline=baseline, relevance=relevance,
                    spread=self.spread, seed=self.seed)

    def _explain(self, pair: PairInput) -> HeatPair:
        x1, x2 = pair.require_tensors(self.name)
        head = self.model.linear_head()
        if head is None:
            raise ExplainerUnavailable(f"{self.name} needs a model ending in global average pooling + an affine head")
        weight, bias = head
        device = getattr(self.model, "device", torch.device("cpu"))
        with torch.inference_mode():
            f = self.model.forward_features(torch.cat([x1, x2]).to(device))
        if f.dim() != 4:
            raise ExplainerUnavailable(f"{self.name} needs a (B, C, h, w) feature map, the model gives {tuple(f.shape)}")
        u = projected_locations(f, weight)
        u_p, fresh = BASELINE_FEATURES.get(self.model, self.baseline, x2, self.seed)
        b = np.zeros(u.shape[-1]) if bias is None else bias.detach().double().cpu().numpy()
        size_hw = (int(x2.shape[-2]), int(x2.shape[-1]))
        k = coverage((int(f.shape[-2]), int(f.shape[-1])), self.grid, size_hw, self.spread)
        e1, e2 = u[0].mean(0) + b, u[1].mean(0) + b
        d1, d2 = cell_deltas(u[0], u_p, k), cell_deltas(u[1], u_p, k)
        decision_dissimilar = self.sign(pair) < 0
        both = not pair.similar  # the curve perturbs both images of a dissimilar pair
        # R in the form of the question: "what makes them alike" (similar pairs, or the similarity
        # target) weights the dimensions where they agree (1 − d̄), the decision on a dissimilar pair
        # those where they differ (d̄), as ExplainLFS Eq. 3 does
        w = latent_weight(self.relevance, pair.h1, pair.h2, pair.similar or self.target == "similarity")
        order, predicted = greedy_order(e1, d1, e2, d2, both=both, lower=not decision_dissimilar, weight=w)
        if both:
            # image 1's map: the same cells (the curve perturbs both at the test map's cells)
            heat1 = heat2 = rank_map(order, self.grid, size_hw)
        else:
            heat2 = rank_map(order, self.grid, size_hw)
            o1, _ = greedy_order(e2, d2, e1, d1, both=False, lower=True, weight=w)
            heat1 = rank_map(o1, self.grid, size_hw)
        return self._result(pair, heat1, heat2.copy(), make_cost(model_forwards=2 + int(fresh)),
                            order=order, predicted=predicted, relevance=w)
