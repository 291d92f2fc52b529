"""What replaces a superpixel in a selectivity curve: noise, uniform noise, a fill colour, a blur.

Quantus-style objects (Hedström et al. 2023): settings at construction, data at call. A
perturbation builds, for images x (B, 3, H, W) in *normalised* model-input space, a full-size
**replacement image** ``source(x)``; a curve step copies the next superpixel from it. For the
noise perturbations that is the same as drawing fresh noise per superpixel (pixels are
independent), and it lets a batch of steps be built with one ``torch.where``.

* ``noise`` — N(0, σ²) in normalised space, σ = 1: the thesis' choice (Costa 2022, §4.2).
* ``uniform`` — RGB values U(low, high) (default U(0, 1)), converted to normalised space.
* ``fill`` — a constant RGB colour (default white, the background of the demo's cut-outs),
  converted to normalised space: the deletion of RISE (Petsiuk et al. 2018) with a chosen colour.
* ``blur`` — a Gaussian blur of the image itself (σ = ``sigma`` × image height, default 0.05 ≈
  11 px at 224): removes detail without adding out-of-distribution colours (RISE insertion's start).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from lfs_gui.models.base import Preprocessing


def rgb_to_normalized(rgb: tuple[float, float, float] | torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    """RGB in [0, 1] (3,) → the model's normalised space, shaped (1, 3, 1, 1)."""
    rgb_t = torch.as_tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1)
    mean = torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (rgb_t - mean) / std


class Perturbation(ABC):
    """Replacement-image builder. ``source(x, preprocessing, gen)`` → tensor shaped like ``x``."""

    name: ClassVar[str] = "base"

    def __init__(self, **settings: Any) -> None:
        self._settings = settings

    def settings(self) -> dict[str, Any]:
        return {"perturbation": self.name, **self._settings}

    @abstractmethod
    def source(self, x: torch.Tensor, preprocessing: Preprocessing, gen: torch.Generator) -> torch.Tensor:
        """The replacement image for ``x`` (B, 3, H, W); ``x`` is not modified."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._settings})"


class NoisePerturbation(Perturbation):
    name = "noise"

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__(sigma=float(sigma))
        self.sigma = float(sigma)

    def source(self, x: torch.Tensor, preprocessing: Preprocessing, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x.dtype) * self.sigma


class UniformPerturbation(Perturbation):
    name = "uniform"

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        if not high > low:
            raise ValueError(f"uniform perturbation needs high > low, got {low}, {high}")
        super().__init__(low=float(low), high=float(high))
        self.low, self.high = float(low), float(high)

    def source(self, x: torch.Tensor, preprocessing: Preprocessing, gen: torch.Generator) -> torch.Tensor:
        rgb = self.low + (self.high - self.low) * torch.rand(x.shape, generator=gen, dtype=torch.float32)
        mean = torch.tensor(preprocessing.mean).view(1, 3, 1, 1)
        std = torch.tensor(preprocessing.std).view(1, 3, 1, 1)
        return ((rgb - mean) / std).to(x.dtype)


class FillPerturbation(Perturbation):
    name = "fill"

    def __init__(self, color: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> None:
        color = tuple(float(c) for c in color)  # type: ignore[assignment]
        if len(color) != 3:
            raise ValueError(f"fill colour must be 3 RGB values in [0, 1], got {color}")
        super().__init__(color=list(color))
        self.color = color

    def source(self, x: torch.Tensor, preprocessing: Preprocessing, gen: torch.Generator) -> torch.Tensor:
        return rgb_to_normalized(self.color, preprocessing).to(x.dtype).expand(x.shape).clone()


class BlurPerturbation(Perturbation):
    name = "blur"

    def __init__(self, sigma: float = 0.05) -> None:
        if not sigma > 0:
            raise ValueError(f"blur sigma (fraction of the image height) must be > 0, got {sigma}")
        super().__init__(sigma=float(sigma))
        self.sigma = float(sigma)

    def source(self, x: torch.Tensor, preprocessing: Preprocessing, gen: torch.Generator) -> torch.Tensor:
        s = max(self.sigma * x.shape[-2], 0.5)
        r = max(1, min(int(3 * s), x.shape[-2] - 1, x.shape[-1] - 1))
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / s) ** 2)
        k = (k / k.sum()).to(x.dtype)
        c = x.shape[1]
        y = F.pad(x, (r, r, 0, 0), mode="reflect")
        y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        y = F.pad(y, (0, 0, r, r), mode="reflect")
        return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.name: cls for cls in (NoisePerturbation, UniformPerturbation, FillPerturbation, BlurPerturbation)
}


def make_perturbation(spec: str | Perturbation, **settings: Any) -> Perturbation:
    """A :class:`Perturbation` from its name (``noise``, ``uniform``, ``fill``, ``blur``) or as is."""
    if isinstance(spec, Perturbation):
        return spec
    try:
        return PERTURBATIONS[spec](**settings)
    except KeyError:
        raise ValueError(f"unknown perturbation {spec!r}; choose one of {sorted(PERTURBATIONS)}") from None
