"""Selectivity: the pixel-flipping curve of a pair explanation, as a live generator.

Costa 2022 (thesis) §4.2 and Bello et al. 2024 (paper) §4.3.1, after Samek et al. 2017:

1. the heat map (resampled to ``heat_size``, default S = 40) is cut into ``superpixel``×``superpixel``
   cells (default 5×5 → an 8×8 grid; the superpixel must divide ``heat_size``); a cell's relevance
   is the *sum* of its heat; cells are ranked by :mod:`ranking` (ties broken by the pair's
   ``random`` map, never raster order; ``order="morf"`` most relevant first, ``"lerf"`` least);
2. the grid is mapped onto the model input by proportional block edges round(k·H/G) (28-px
   blocks at 224; input sizes that the grid does not divide give blocks that differ by one pixel);
3. step k replaces the first k cells with the perturbation (default N(0, 1) in normalised space,
   the thesis' choice; see :mod:`perturbations`) and re-measures the similarity; 20 steps (at most
   the number of cells: more is an error);
4. **similar** pair: only the test image (image 2) is perturbed, against the unperturbed reference;
   **dissimilar** pair: both images, at the same cells. Following the thesis (Fig. 4.4: "the
   reference image is also perturbed in the same superpixels that the test image"), cells are
   ranked by the *test* map; ``rank_dissimilar="sum"`` ranks by heat1 + heat2 instead.

The curve of a **similar** pair is ratio_k = sim_k / sim_0 (thesis Fig. 5.12's normalised
similarity; NaN when sim_0 ≤ 0.05); its score is the trapezoid AUC over x = 0..K divided by K
(:func:`auc.trapezoid_auc`). For a **dissimilar** pair the ratio breaks down (sim_0 is often near
zero or negative, and +0.1 is ×1.5 at 0.2 but ×1.2 at 0.5), so its curve is the similarity gain
sim_k − sim_0 (the paper's Fig. 9b plots the raw similarity), scored by the same AUC. ``value`` on
points and ``values`` on curves hold the scored quantity; ``ratio``/``ratios`` and raw ``sim``/``sims``
are kept.

**Direction.** The map answers a ``target`` (:data:`lfs_gui.explain.base.TARGETS`): the score it
explains is t = s, or t = −s for ``decision`` on a dissimilar pair. Deleting the most relevant cells
first should lower t: the AUC is *lower is better* when t = s and *higher is better* when t = −s;
``lerf`` and ``mode="insertion"`` (RISE, Petsiuk et al. 2018: start from the fully perturbed
image(s) and restore cells) each swap the direction. :meth:`Selectivity.lower_is_better` says which.

Runs on the model's device: the perturbation's replacement images are drawn on the CPU from the
seed (the same noise on every device) and moved; masks, forwards and cosines stay on the device;
the curve comes back as numpy. :meth:`Selectivity.iter_curve` yields a :class:`CurvePoint` per step
(every yield is a cancel point), computes ``chunk`` steps per forward batch (default: the device's
``curve_chunk``, :func:`lfs_gui.device.batch_defaults`) and returns the :class:`Curve`. Inputs are
never modified.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.explain.base import DEFAULT_TARGET, accumulate_dtype, check_target, target_sign
from lfs_gui.explain.resample import block_edges
from lfs_gui.jobs import run_generator
from lfs_gui.metrics.auc import trapezoid_auc
from lfs_gui.metrics.perturbations import Perturbation, make_perturbation
from lfs_gui.metrics.ranking import cell_scores, check_order, grid_of, rank_cells
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
    """A finished curve; ``settings`` has everything needed to reproduce it (``target``, ``order``,
    ``mode``, perturbation, seed ...). ``order`` holds the perturbed cells (flat grid indices) in order."""

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


def tensor_digest(*tensors: torch.Tensor) -> int:
    """crc32 of the tensors' bytes (CPU float32): identifies the noise a curve used."""
    crc = 0
    for t in tensors:
        crc = zlib.crc32(np.ascontiguousarray(t.detach().cpu().float().numpy()).tobytes(), crc)
    return crc


@dataclass
class PreparedPair:
    """One pair on the model's device, ready for curves: inputs, replacement images, cell masks,
    the unperturbed embeddings. Built by :meth:`Selectivity.prepare`; shared by the oracle."""

    model: EmbeddingModel
    x1: torch.Tensor
    x2: torch.Tensor
    src1: torch.Tensor
    src2: torch.Tensor
    cells: torch.Tensor  # (grid·grid, 1, H, W) bool: each cell's pixels
    similar: bool
    ref1: torch.Tensor  # unperturbed embedding of image 1
    sim_orig: float
    noise: int
    input_size: tuple[int, int]

    def union(self, cell_lists: list[list[int]] | list[np.ndarray]) -> torch.Tensor:
        """(n, 1, H, W) bool masks, each the union of the listed cells."""
        out = torch.zeros(len(cell_lists), *self.cells.shape[1:], dtype=torch.bool, device=self.cells.device)
        for k, cells in enumerate(cell_lists):
            if len(cells):
                out[k] = self.cells[torch.as_tensor(np.asarray(cells, np.int64), device=self.cells.device)].any(0)
        return out


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
        chunk: int | None = None,
        seed: int = 0,
        target: str = DEFAULT_TARGET,
        order: str = "morf",
        **perturbation_settings: Any,
    ) -> None:
        if steps <= 0 or (chunk is not None and chunk <= 0):
            raise ValueError("steps and chunk must be positive")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if rank_dissimilar not in ("test", "sum"):
            raise ValueError(f"rank_dissimilar must be 'test' (thesis) or 'sum', got {rank_dissimilar!r}")
        self.grid = grid_of(int(heat_size), int(superpixel))
        cells = self.grid * self.grid
        if steps > cells:
            raise ValueError(f"{steps} steps is more than the {cells} cells of the {self.grid}×{self.grid} grid "
                             f"({superpixel}-px superpixels on {heat_size}); use at most {cells} steps or smaller superpixels")
        self.steps = int(steps)
        self.superpixel, self.heat_size, self.seed = int(superpixel), int(heat_size), int(seed)
        self.chunk = None if chunk is None else int(chunk)
        self.mode, self.rank_dissimilar = mode, rank_dissimilar
        self.target, self.order_name = check_target(target), check_order(order)
        self.perturbation = make_perturbation(perturbation, **perturbation_settings)

    @property
    def cells(self) -> int:
        return self.grid * self.grid

    def settings(self) -> dict[str, Any]:
        return {
            "metric": "selectivity", "steps": self.steps, "superpixel": self.superpixel, "heat_size": self.heat_size,
            "grid": self.grid, "mode": self.mode, "order": self.order_name, "target": self.target,
            "rank_dissimilar": self.rank_dissimilar, "chunk": self.chunk, "seed": self.seed, **self.perturbation.settings(),
        }

    def lower_is_better(self, similar: bool) -> bool:
        """Score direction of this curve's AUC for a pair of this type (module docstring, "Direction")."""
        falls = target_sign(self.target, similar) > 0
        if self.mode == "insertion":
            falls = not falls
        if self.order_name == "lerf":
            falls = not falls
        return falls

    def order(self, heat1: np.ndarray | None, heat2: np.ndarray, similar: bool,
              ties: tuple[np.ndarray | None, np.ndarray] | None = None) -> np.ndarray:
        """Flat grid indices in perturbation order (all cells). ``ties``: the pair's random maps
        (heat1, heat2) whose cell sums break ties; ``None`` breaks them by a permutation seeded by ``seed``."""
        scores = cell_scores(heat1, heat2, similar, self.heat_size, self.grid, self.rank_dissimilar)
        if ties is None:
            tie = np.random.default_rng(self.seed).permutation(self.cells).astype(np.float64)
        else:
            tie = cell_scores(ties[0], ties[1], similar, self.heat_size, self.grid, self.rank_dissimilar)
        return rank_cells(scores, tie, self.order_name)

    def chunk_for(self, device: torch.device) -> int:
        if self.chunk is not None:
            return self.chunk
        from lfs_gui.device import batch_defaults

        return batch_defaults(device).curve_chunk

    # -- the shared machinery (also used by lfs_gui.metrics.oracle) ----------------------------------
    def prepare(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, similar: bool,
                seed: int | None = None) -> PreparedPair:
        """Move the pair to the model's device, draw the replacement images (CPU generator, ``seed``
        or the curve's), build the cell masks, embed the unperturbed pair."""
        device = model.device
        x1 = (x1 if x1.dim() == 4 else x1.unsqueeze(0)).detach().cpu()
        x2 = (x2 if x2.dim() == 4 else x2.unsqueeze(0)).detach().cpu()
        h, w = x2.shape[-2:]
        gen = torch.Generator().manual_seed(self.seed if seed is None else int(seed))
        src2 = self.perturbation.source(x2, model.preprocessing, gen)
        src1 = self.perturbation.source(x1, model.preprocessing, gen)
        noise = tensor_digest(src2, src1)
        ey, ex = block_edges(h, self.grid), block_edges(w, self.grid)
        cells = torch.zeros(self.cells, 1, h, w, dtype=torch.bool)
        for c in range(self.cells):
            i, j = divmod(c, self.grid)
            cells[c, 0, ey[i] : ey[i + 1], ex[j] : ex[j + 1]] = True
        x1d, x2d = x1.to(device), x2.to(device)
        e0 = self.embed(model, torch.cat([x1d, x2d]))
        return PreparedPair(model, x1d, x2d, src1.to(device), src2.to(device), cells.to(device), bool(similar),
                            e0[0], float(e0[0] @ e0[1]), noise, (int(h), int(w)))

    @staticmethod
    def embed(model: EmbeddingModel, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return F.normalize(model.embed_tensor(batch).to(accumulate_dtype(batch.device)), dim=1)

    def sims(self, p: PreparedPair, masks: torch.Tensor) -> list[float]:
        """Similarity after perturbing each mask (n, 1, H, W) bool (insertion: restoring it) — one forward batch."""
        keep = ~masks if self.mode == "insertion" else masks  # where the source replaces the image
        p2 = torch.where(keep, p.src2, p.x2)
        n = len(masks)
        if p.similar:
            return (self.embed(p.model, p2) @ p.ref1).tolist()
        p1 = torch.where(keep, p.src1, p.x1)
        e = self.embed(p.model, torch.cat([p1, p2]))
        return (e[:n] * e[n:]).sum(1).tolist()

    def finish(self, sims: list[float], order: np.ndarray, similar: bool, sim_orig: float, noise: int,
               input_size: tuple[int, int], **extra: Any) -> Curve:
        """The :class:`Curve` of the similarities ``sims`` (steps 0..K) measured for cell ``order`` on a
        pair whose unperturbed similarity is ``sim_orig`` (``noise``: the digest of its replacement images)."""
        ref = sim_orig
        sims_a = np.asarray(sims, np.float64)
        values = np.array([curve_value(s, ref, similar) for s in sims], np.float64)
        settings = {**self.settings(), "similar": bool(similar), "input_size": list(input_size), "sim_orig": ref,
                    "noise_crc32": int(noise), "score": f"trapezoid AUC of {value_name(similar)} over steps / K",
                    "direction": "lower" if self.lower_is_better(similar) else "higher", **extra}
        return Curve(
            steps=np.arange(len(sims)), sims=sims_a, ratios=np.array([_ratio(s, ref) for s in sims], np.float64),
            values=values, value_name=value_name(similar), auc=trapezoid_auc(values), auc_sim=trapezoid_auc(sims_a),
            order=np.asarray(order[: self.steps]).copy(), lower_is_better=self.lower_is_better(similar), settings=settings,
        )

    # -- curves ----------------------------------------------------------------------------------------
    def iter_curve_for_order(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, order: np.ndarray,
                             similar: bool, seed: int | None = None) -> Generator[CurvePoint, None, Curve]:
        """The curve of a given cell order (flat indices, at least ``steps`` of them)."""
        order = np.asarray(order, np.int64)
        if len(order) < self.steps:
            raise ValueError(f"the order has {len(order)} cells, the curve needs {self.steps}")
        p = self.prepare(model, x1, x2, similar, seed)
        chunk = self.chunk_for(model.device)
        insertion = self.mode == "insertion"
        sims: list[float] = []
        done = 0
        try:
            if not insertion:
                sims.append(p.sim_orig)
                yield CurvePoint(0, p.sim_orig, _ratio(p.sim_orig, p.sim_orig), curve_value(p.sim_orig, p.sim_orig, similar))
                done = 1
            while done <= self.steps:
                ks = list(range(done, min(done + chunk, self.steps + 1)))
                for k, s in zip(ks, self.sims(p, p.union([order[:k] for k in ks]))):
                    sims.append(float(s))
                    done = k + 1
                    yield CurvePoint(k, float(s), _ratio(float(s), p.sim_orig), curve_value(float(s), p.sim_orig, similar))
        finally:
            log.debug("selectivity curve %s after %d of %d points", "finished" if done > self.steps else "stopped", done, self.steps + 1)
        return self.finish(sims, order, similar, p.sim_orig, p.noise, p.input_size)

    def iter_curve(
        self,
        model: EmbeddingModel,
        x1: torch.Tensor,
        x2: torch.Tensor,
        heat1: np.ndarray | None,
        heat2: np.ndarray,
        similar: bool,
        *,
        ties: tuple[np.ndarray | None, np.ndarray] | None = None,
        seed: int | None = None,
    ) -> Generator[CurvePoint, None, Curve]:
        """Yield the curve point by point (step 0 first) and return the :class:`Curve`.

        ``ties``: the pair's ``random`` maps (see :meth:`order`); ``seed``: the noise seed for this
        curve (default: the constructor's).
        """
        order = self.order(heat1, heat2, similar, ties)
        return (yield from self.iter_curve_for_order(model, x1, x2, order, similar, seed))

    def __call__(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, heat1: np.ndarray | None, heat2: np.ndarray,
                 similar: bool, *, ties: tuple[np.ndarray | None, np.ndarray] | None = None, seed: int | None = None) -> Curve:
        """The whole curve at once."""
        return run_generator(self.iter_curve(model, x1, x2, heat1, heat2, similar, ties=ties, seed=seed))
