"""Selectivity: the pixel-flipping curve of a pair explanation, as a live generator.

Costa 2022 (thesis) §4.2 and Bello et al. 2024 (paper) §4.3.1, after Samek et al. 2017:

1. the heat map (resampled to ``heat_size``, default S = 40) is cut into ``superpixel``×``superpixel``
   cells (default 5×5 → an 8×8 grid); a cell's relevance is the *sum* of its heat;
2. the grid is mapped onto the model input by proportional block edges round(k·H/G) (28-px
   blocks at 224; sizes that do not divide differ by at most a pixel);
3. step k replaces the k most relevant cells with the perturbation (default N(0, 1) in normalised
   space, the thesis' choice; see :mod:`perturbations`) and re-measures the similarity; 20 steps;
4. **similar** pair: only the test image (image 2) is perturbed, against the unperturbed reference;
   **dissimilar** pair: both images, at the same cells. Following the thesis (Fig. 4.4: "the
   reference image is also perturbed in the same superpixels that the test image"), cells are
   ranked by the *test* map; ``rank_dissimilar="sum"`` ranks by heat1 + heat2 instead.

The curve of a **similar** pair is ratio_k = sim_k / sim_0 (thesis Fig. 5.12's normalised
similarity); its score is the trapezoid AUC over x = 0..K divided by K (:func:`auc.trapezoid_auc`),
and a deletion curve should fall (lower is better). For a **dissimilar** pair the ratio breaks
down: sim_0 is often near zero or negative (on the demo, 94 % of the most dissimilar retrievals and a
third of sampled dissimilar pairs), where sim_k / sim_0 explodes or *falls* when the similarity rises
as expected, and elsewhere it is not comparable across pairs (+0.1 is ×1.5 at 0.2, ×1.2 at 0.5). Its curve is therefore
the similarity gain sim_k − sim_0 (the paper's Fig. 9b plots the raw similarity), scored by the
same trapezoid AUC, higher is better. ``value`` on points and ``values`` on curves hold the scored
quantity; ``ratio``/``ratios`` (NaN when sim_0 ≤ 0.05) and raw ``sim``/``sims`` are kept. ``mode="insertion"`` (RISE, Petsiuk et al. 2018)
starts from the fully perturbed image(s) and restores the most relevant cells first; the ratio is
against the unperturbed pair's similarity and the directions swap.

:meth:`Selectivity.iter_curve` yields a :class:`CurvePoint` per step (the GUI draws as they come;
every yield is a cancel point), computes ``chunk`` steps per model forward batch, and returns the
:class:`Curve`. Inputs are never modified; a seed makes curves reproducible.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.explain.resample import block_edges, block_sums, resize_map
from lfs_gui.jobs import run_generator
from lfs_gui.metrics.auc import trapezoid_auc
from lfs_gui.metrics.perturbations import Perturbation, make_perturbation
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)

MODES = ("deletion", "insertion")


RATIO_MIN_SIM = 0.05
"""sim_k / sim_0 is reported only when sim_0 exceeds this (else NaN)."""


@dataclass(frozen=True)
class CurvePoint:
    """One step: ``sim`` after perturbing ``step`` cells; ``ratio`` = sim / reference similarity;
    ``value`` = the scored quantity (the ratio for a similar pair, sim − sim_0 for a dissimilar one)."""

    step: int
    sim: float
    ratio: float
    value: float = float("nan")


@dataclass(frozen=True)
class Curve:
    """A finished curve; ``settings`` has everything needed to reproduce it."""

    steps: np.ndarray
    sims: np.ndarray
    ratios: np.ndarray
    auc: float
    auc_sim: float
    order: np.ndarray
    lower_is_better: bool
    settings: dict[str, Any] = field(default_factory=dict)
    values: np.ndarray | None = None  # what ``auc`` scores: ratios (similar) or sim_k − sim_0 (dissimilar)
    value_name: str = "sim_k / sim_0"

    @property
    def direction(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"


def _ratio(sim: float, ref: float) -> float:
    return sim / ref if ref > RATIO_MIN_SIM else float("nan")


def curve_value(sim: float, ref: float, similar: bool) -> float:
    """The scored quantity of one step (see the module docstring)."""
    return _ratio(sim, ref) if similar else sim - ref


def value_name(similar: bool) -> str:
    return "sim_k / sim_0" if similar else "sim_k − sim_0"


class Selectivity:
    """Pixel-flipping selectivity of a pair explanation (settings here, data at call)."""

    def __init__(
        self,
        steps: int = 20,
        superpixel: int = 5,
        heat_size: int = 40,
        perturbation: str | Perturbation = "noise",
        mode: str = "deletion",
        rank_dissimilar: str = "test",
        chunk: int = 3,
        seed: int = 0,
        **perturbation_settings: Any,
    ) -> None:
        if steps <= 0 or superpixel <= 0 or heat_size <= 0 or chunk <= 0:
            raise ValueError("steps, superpixel, heat_size and chunk must be positive")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if rank_dissimilar not in ("test", "sum"):
            raise ValueError(f"rank_dissimilar must be 'test' (thesis) or 'sum', got {rank_dissimilar!r}")
        self.grid = math.ceil(heat_size / superpixel)
        self.steps = min(int(steps), self.grid * self.grid)
        self.superpixel, self.heat_size, self.chunk, self.seed = int(superpixel), int(heat_size), int(chunk), int(seed)
        self.mode, self.rank_dissimilar = mode, rank_dissimilar
        self.perturbation = make_perturbation(perturbation, **perturbation_settings)

    def settings(self) -> dict[str, Any]:
        return {
            "metric": "selectivity", "steps": self.steps, "superpixel": self.superpixel, "heat_size": self.heat_size,
            "grid": self.grid, "mode": self.mode, "rank_dissimilar": self.rank_dissimilar, "chunk": self.chunk,
            "seed": self.seed, **self.perturbation.settings(),
        }

    def lower_is_better(self, similar: bool) -> bool:
        """Score direction: deletion on similar pairs and insertion on dissimilar ones should fall."""
        return (self.mode == "deletion") == bool(similar)

    def order(self, heat1: np.ndarray | None, heat2: np.ndarray, similar: bool) -> np.ndarray:
        """Flat grid indices, most relevant first (ties: lower index first)."""
        rel = block_sums(resize_map(heat2, self.heat_size), self.grid)
        if not similar and self.rank_dissimilar == "sum" and heat1 is not None:
            rel = rel + block_sums(resize_map(heat1, self.heat_size), self.grid)
        return np.argsort(-rel.ravel(), kind="stable")

    def _cell_masks(self, order: np.ndarray, h: int, w: int) -> torch.Tensor:
        """(steps + 1, 1, H, W) bool: cumulative union of the first k cells, k = 0..steps."""
        ey, ex = block_edges(h, self.grid), block_edges(w, self.grid)
        masks = torch.zeros(self.steps + 1, 1, h, w, dtype=torch.bool)
        for k in range(1, self.steps + 1):
            i, j = divmod(int(order[k - 1]), self.grid)
            masks[k:, 0, ey[i] : ey[i + 1], ex[j] : ex[j + 1]] = True
        return masks

    def iter_curve(
        self,
        model: EmbeddingModel,
        x1: torch.Tensor,
        x2: torch.Tensor,
        heat1: np.ndarray | None,
        heat2: np.ndarray,
        similar: bool,
    ) -> Generator[CurvePoint, None, Curve]:
        """Yield the curve point by point (step 0 first) and return the :class:`Curve`."""
        x1 = x1 if x1.dim() == 4 else x1.unsqueeze(0)
        x2 = x2 if x2.dim() == 4 else x2.unsqueeze(0)
        h, w = x2.shape[-2:]
        order = self.order(heat1, heat2, similar)
        masks = self._cell_masks(order, h, w)
        gen = torch.Generator().manual_seed(self.seed)
        src2 = self.perturbation.source(x2, model.preprocessing, gen)
        src1 = self.perturbation.source(x1, model.preprocessing, gen)
        both = not similar
        insertion = self.mode == "insertion"

        def embed(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return F.normalize(model.embed_tensor(batch).double(), dim=1)

        sims: list[float] = []
        done = 0
        try:
            e0 = embed(torch.cat([x1, x2]))
            ref1, sim_orig = e0[0], float(e0[0] @ e0[1])
            if not insertion:
                sims.append(sim_orig)
                yield CurvePoint(0, sim_orig, _ratio(sim_orig, sim_orig), curve_value(sim_orig, sim_orig, similar))
                done = 1
            while done <= self.steps:
                ks = list(range(done, min(done + self.chunk, self.steps + 1)))
                m = masks[ks]
                keep = ~m if insertion else m  # where the source replaces the image
                p2 = torch.where(keep, src2, x2)
                if both:
                    p1 = torch.where(keep, src1, x1)
                    e = embed(torch.cat([p1, p2]))
                    batch_sims = (e[: len(ks)] * e[len(ks) :]).sum(1)
                else:
                    batch_sims = embed(p2) @ ref1
                for k, s in zip(ks, batch_sims.tolist()):
                    sims.append(float(s))
                    done = k + 1
                    yield CurvePoint(k, float(s), _ratio(float(s), sim_orig), curve_value(float(s), sim_orig, similar))
        finally:
            log.debug("selectivity curve %s after %d of %d points", "finished" if done > self.steps else "stopped", done, self.steps + 1)
        sims_a = np.asarray(sims, np.float64)
        ratios = np.array([_ratio(s, sim_orig) for s in sims], np.float64)
        values = np.array([curve_value(s, sim_orig, similar) for s in sims], np.float64)
        settings = {**self.settings(), "similar": bool(similar), "input_size": [int(h), int(w)], "sim_orig": sim_orig,
                    "score": f"trapezoid AUC of {value_name(similar)} over steps / K"}
        return Curve(
            steps=np.arange(self.steps + 1),
            sims=sims_a,
            ratios=ratios,
            values=values,
            value_name=value_name(similar),
            auc=trapezoid_auc(values),
            auc_sim=trapezoid_auc(sims_a),
            order=order[: self.steps].copy(),
            lower_is_better=self.lower_is_better(similar),
            settings=settings,
        )

    def __call__(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, heat1: np.ndarray | None, heat2: np.ndarray, similar: bool) -> Curve:
        """The whole curve at once."""
        return run_generator(self.iter_curve(model, x1, x2, heat1, heat2, similar))
