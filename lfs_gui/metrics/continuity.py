"""Continuity: the paper's shift test, as a generator.

Bello et al. 2024, §4.3.2 and Fig. 10–11 (after Montavon et al. 2018, "Methods for interpreting
and understanding deep neural networks"): an image x is displaced left→right until it has left the
frame (steps 1..K/2), then right→left back to its place (steps K/2+1..K; K = 20). For each
displaced x′ the method explains the pair and DIFF = ‖H(x) − H(x′)‖₂.

Reading of "H(x), H(x′): the output of applying the method to the inference on a pair composed of
x and one of its displacements x′" (``mode="pair"``, default): explain (x, x′) and compare its two
maps, heat1 = H(x) and heat2 = H(x′). ``mode="reference"`` keeps a third image r fixed and compares
the test maps of (r, x) and (r, x′). Maps are resampled to ``heat_size`` (default 40) before the
norm, so methods at different resolutions compare alike. Vacated pixels take ``fill`` (RGB, default
white, converted to the model's normalised space; ``None`` = 0, the dataset mean).
A smooth, continuous explainer gives a curve that rises to its maximum when x′ has left the frame
and falls back to 0 at the last step (x′ = x).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lfs_gui.explain.base import Explainer, PairInput
from lfs_gui.explain.resample import resize_map
from lfs_gui.jobs import run_generator
from lfs_gui.metrics.perturbations import rgb_to_normalized
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContinuityPoint:
    step: int
    shift_px: int
    diff: float


@dataclass(frozen=True)
class ContinuityCurve:
    """DIFF per step (lower = more continuous for a given displacement)."""

    steps: np.ndarray
    shifts: np.ndarray
    diffs: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_diff(self) -> float:
        return float(np.mean(self.diffs)) if self.diffs.size else float("nan")


def shift_image(x: torch.Tensor, dx: int, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``x`` (B, 3, H, W) moved ``dx`` pixels right (left if negative); vacated pixels = ``fill``. New tensor."""
    w = x.shape[-1]
    out = torch.empty_like(x)
    out[...] = fill if isinstance(fill, float) else fill.to(x.dtype)
    if dx >= w or dx <= -w:
        return out
    if dx >= 0:
        out[..., dx:] = x[..., : w - dx]
    else:
        out[..., : w + dx] = x[..., -dx:]
    return out


def shift_schedule(width: int, steps: int) -> list[int]:
    """Displacements for steps 1..K: out to the right in K/2 equal moves, then back to 0."""
    half = max(1, steps // 2)
    out = [round(width * t / half) for t in range(1, half + 1)]
    out += [round(width * (steps - t) / half) for t in range(half + 1, steps + 1)]
    return out


class Continuity:
    """The shift test. ``iter_curve`` yields a :class:`ContinuityPoint` per step and returns the curve."""

    def __init__(self, steps: int = 20, heat_size: int = 40, mode: str = "pair", fill: tuple[float, float, float] | None = (1.0, 1.0, 1.0), xi1: float = 0.3) -> None:
        if steps <= 0 or heat_size <= 0:
            raise ValueError("steps and heat_size must be positive")
        if mode not in ("pair", "reference"):
            raise ValueError(f"mode must be 'pair' (paper) or 'reference', got {mode!r}")
        self.steps, self.heat_size, self.mode, self.fill, self.xi1 = int(steps), int(heat_size), mode, fill, float(xi1)

    def settings(self) -> dict[str, Any]:
        return {"metric": "continuity", "steps": self.steps, "heat_size": self.heat_size, "mode": self.mode,
                "fill": None if self.fill is None else list(self.fill), "xi1": self.xi1}

    def iter_curve(
        self, explainer: Explainer, model: EmbeddingModel, x: torch.Tensor, reference: torch.Tensor | None = None, **context: Any
    ) -> Generator[ContinuityPoint, None, ContinuityCurve]:
        """Shift ``x`` (1, 3, H, W); ``reference`` is needed for ``mode="reference"``; ``context`` goes to :class:`PairInput`."""
        x = x if x.dim() == 4 else x.unsqueeze(0)
        if self.mode == "reference":
            if reference is None:
                raise ValueError("continuity mode 'reference' needs a reference image")
            reference = reference if reference.dim() == 4 else reference.unsqueeze(0)
        fill = 0.0 if self.fill is None else rgb_to_normalized(self.fill, model.preprocessing)
        s = self.heat_size

        def heats(a: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
            r = explainer.explain(PairInput.from_tensors(model, a, b, xi1=self.xi1, **context))
            return resize_map(r.heat1, s), resize_map(r.heat2, s)

        base = heats(reference, x)[1] if self.mode == "reference" else None
        shifts = shift_schedule(x.shape[-1], self.steps)
        diffs: list[float] = []
        try:
            for t, dx in enumerate(shifts, start=1):
                xs = shift_image(x, dx, fill)
                if self.mode == "pair":
                    h1, h2 = heats(x, xs)
                    d = float(np.linalg.norm(h1.astype(np.float64) - h2))
                else:
                    d = float(np.linalg.norm(base.astype(np.float64) - heats(reference, xs)[1]))  # type: ignore[union-attr]
                diffs.append(d)
                yield ContinuityPoint(t, int(dx), d)
        finally:
            log.debug("continuity curve: %d of %d steps", len(diffs), self.steps)
        return ContinuityCurve(
            steps=np.arange(1, self.steps + 1), shifts=np.asarray(shifts), diffs=np.asarray(diffs),
            settings={**self.settings(), "method": explainer.settings()},
        )

    def __call__(self, explainer: Explainer, model: EmbeddingModel, x: torch.Tensor, reference: torch.Tensor | None = None, **context: Any) -> ContinuityCurve:
        return run_generator(self.iter_curve(explainer, model, x, reference, **context))
