"""``explainlfs-adaptive``: the oracle's greedy, re-linearised: one gradient of the R-weighted similarity per step.

Why (``docs/RESULTS.md``, section "Latent-relevance methods"). The greedy oracle of the
faithfulness protocol perturbs, at each step, the cell that moves the score most *given the cells
already perturbed*; on the demo its edge over every map is interaction (on ``fill`` it scatters
white cells over the object, a pattern whose joint effect no single-cell score predicts, and which
the additive predictions of ``explainlfs-latent`` miss). This method follows the same path at a
fraction of the cost: at each step it linearises the target score around the *current* perturbed
image and takes the cell with the largest first-order effect.

With a cell mask m ∈ [0, 1]^{grid²} (upsampled to the input on the curve's proportional cell
edges), the perturbed image is x(m) = x + (x_p − x) ⊙ m, x_p the perturbation image (white for
``baseline="fill"``, a seeded N(0, 1) draw for ``"noise"``). The score is ExplainLFS' relevance-
weighted similarity s_R(m) = Σ_j R_j ê¹_j(m) ê²_j(m) (R: Eq. 2–3 of the paper for the unperturbed
pair; ``relevance="none"``: the plain cosine), signed by the target (decision on a dissimilar pair:
raise it). Only the test image moves for a similar pair; both images move at the same cells for a
dissimilar one, as the selectivity curve perturbs them. Step k: ∂s_R/∂m at the current binary mask
(one forward + one backward), then the ``per_step`` remaining cells with the most negative
(similar) or positive (dissimilar, ``decision``) derivative join the mask. After ``steps`` cells the
remaining ones are ranked by the last derivative. The map is the rank (:func:`rank_map`).

Image 1's map: for a dissimilar pair the same cells (the curve perturbs both there); for a similar
pair, where the curve moves only the test image, one linearisation of image 1 moving against image 2.

Cost: ⌈steps / per_step⌉ forward + backward passes of one image (similar pair; + 1 for image 1's
map, + 2 plain forwards) or two (dissimilar, + 1 forward), on the model's device; no decoder.
Defaults (20 steps, 1 per step) follow the curve's 20 steps: 21 forward + backward passes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.explain.base import Explainer, HeatPair, PairInput, make_cost
from lfs_gui.explain.latent_greedy import BASELINES, RELEVANCES, latent_weight, rank_map
from lfs_gui.explain.resample import block_edges


def upsample_cells(m: torch.Tensor, grid: int, size_hw: tuple[int, int]) -> torch.Tensor:
    """(grid²,) cell values → (1, 1, H, W) on the proportional cell edges (differentiable)."""
    h, w = size_hw
    ry = torch.as_tensor(np.diff(block_edges(h, grid)))
    rx = torch.as_tensor(np.diff(block_edges(w, grid)))
    return m.view(1, 1, grid, grid).repeat_interleave(ry, dim=2).repeat_interleave(rx, dim=3)


def perturbation_image(baseline: str, like: torch.Tensor, preprocessing, seed: int) -> torch.Tensor:
    """The image that replaces perturbed cells (normalised input space), shaped like ``like``."""
    if baseline == "zero":
        return torch.zeros_like(like)
    from lfs_gui.metrics.perturbations import make_perturbation

    gen = torch.Generator().manual_seed(seed)
    return make_perturbation(baseline).source(like.cpu(), preprocessing, gen).to(like.device, like.dtype)


class ExplainLFSAdaptiveExplainer(Explainer):
    """Greedy cell ranking by re-linearising the R-weighted similarity after each pick."""

    name = "explainlfs-adaptive"
    needs = frozenset({"model"})
    summary = "ExplainLFS relevance, greedy over cells with one gradient per step (encoder, no decoder)"

    def __init__(self, model=None, decoder=None, *, target: str = "decision", grid: int = 8, steps: int = 20,
                 per_step: int = 1, baseline: str = "fill", relevance: str = "explainlfs", seed: int = 0) -> None:
        super().__init__(model, decoder)
        from lfs_gui.explain.baselines.gradsim import check_target

        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if relevance not in RELEVANCES:
            raise ValueError(f"relevance must be one of {RELEVANCES}, got {relevance!r}")
        if min(int(grid), int(steps), int(per_step)) <= 0:
            raise ValueError(f"grid, steps and per_step must be positive, got {grid}, {steps}, {per_step}")
        self.target = check_target(target)
        self.grid, self.steps, self.per_step = int(grid), min(int(steps), int(grid) ** 2), int(per_step)
        self.baseline, self.relevance, self.seed = baseline, relevance, int(seed)
        self._store(target=self.target, grid=self.grid, steps=self.steps, per_step=self.per_step,
                    baseline=baseline, relevance=relevance, seed=self.seed)

    def passes(self) -> int:
        """Forward + backward passes per explanation (per image moved)."""
        return math.ceil(self.steps / self.per_step)

    def _explain(self, pair: PairInput) -> HeatPair:
        device = getattr(self.model, "device", torch.device("cpu"))
        x1, x2 = (t.to(device) for t in pair.require_tensors(self.name))
        size_hw = (int(x2.shape[-2]), int(x2.shape[-1]))
        p1 = perturbation_image(self.baseline, x1, self.model.preprocessing, self.seed)
        p2 = perturbation_image(self.baseline, x2, self.model.preprocessing, self.seed + 1)
        both = not pair.similar
        raise_it = self.target == "decision" and not pair.similar
        w = latent_weight(self.relevance, pair.h1, pair.h2, pair.similar)
        weight = torch.ones(len(pair.h1), dtype=torch.float64, device=device) if w is None else torch.as_tensor(w, device=device)
        n = self.grid * self.grid
        with torch.no_grad():
            e1_fixed = F.normalize(self.model.embed_tensor(x1).double(), dim=1)[0]
        chosen: list[int] = []
        grad = np.zeros(n)
        passes = 0
        while len(chosen) < self.steps:
            m = torch.zeros(n, dtype=x2.dtype, device=device)
            if chosen:
                m[chosen] = 1
            m.requires_grad_(True)
            with torch.enable_grad():
                mask = upsample_cells(m, self.grid, size_hw)
                e2 = F.normalize(self.model.embed_tensor(x2 + (p2 - x2) * mask).double(), dim=1)[0]
                e1 = F.normalize(self.model.embed_tensor(x1 + (p1 - x1) * mask).double(), dim=1)[0] if both else e1_fixed
                s = (weight * e1 * e2).sum()
                (g,) = torch.autograd.grad(s, m)
            passes += 1
            grad = g.detach().double().cpu().numpy() * (-1.0 if raise_it else 1.0)  # lower = better cell
            grad[chosen] = np.inf
            chosen += [int(c) for c in np.argsort(grad, kind="stable")[: self.per_step]]
        chosen = chosen[: self.steps]
        rest = [int(c) for c in np.argsort(grad, kind="stable") if int(c) not in chosen]
        order = np.asarray(chosen + rest, np.int64)
        heat2 = rank_map(order, self.grid, size_hw)
        images = 2 if both else 1
        forwards, backwards = passes * images + 1, passes * images
        if both:  # the curve perturbs both images at the same cells: one map for both
            heat1 = heat2.copy()
        else:  # the reference's own map: one linearisation of image 1 moving against image 2
            with torch.no_grad():
                e2_fixed = F.normalize(self.model.embed_tensor(x2).double(), dim=1)[0]
            m = torch.zeros(n, dtype=x1.dtype, device=device, requires_grad=True)
            with torch.enable_grad():
                e1 = F.normalize(self.model.embed_tensor(x1 + (p1 - x1) * upsample_cells(m, self.grid, size_hw)).double(), dim=1)[0]
                (g1,) = torch.autograd.grad((weight * e1 * e2_fixed).sum(), m)
            heat1 = rank_map(np.argsort(g1.detach().double().cpu().numpy(), kind="stable"), self.grid, size_hw)
            forwards, backwards = forwards + 2, backwards + 1
        return self._result(pair, heat1, heat2, make_cost(model_forwards=forwards, model_backwards=backwards),
                            order=order, relevance=w)
