"""A tiny model with a known answer, shared by the explainer, selectivity and continuity tests.

3×3 conv → ReLU → 4×4 average pool (8×8 feature map at 32 px) → zeroed outside a fixed 2×2 feature
square → global average pool → affine head. Its similarity depends only on the pixels under that
square (rows/cols 8..16, plus the conv's one-pixel halo).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lfs_gui.explain.base import PairInput
from lfs_gui.models.base import EmbeddingModel, FeaturesUnavailable, Preprocessing, global_avg_pool

REGION = (2, 4, 2, 4)  # feature rows y0:y1, cols x0:x1 on the 8×8 map


class TinyNet(nn.Module):
    def __init__(self, c: int = 8, dim: int = 6, bias: float = 0.05) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(c, dim)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g))
            self.fc.bias.fill_(bias)
        mask = torch.zeros(1, 1, 8, 8)
        y0, y1, x0, x1 = REGION
        mask[..., y0:y1, x0:x1] = 1
        self.register_buffer("mask", mask)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x))) * self.mask


class TinyModel(EmbeddingModel):
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.module.fc(global_avg_pool(fmap))

    def linear_head(self):
        return self.module.fc.weight, self.module.fc.bias


class NoSplitModel(TinyModel):
    """Like a TorchScript file without a feature split."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise FeaturesUnavailable("this TorchScript model exports no forward_features")

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.module.fc(global_avg_pool(self.module.features(x))), dim=1)


def tiny_model(cls: type = TinyModel) -> EmbeddingModel:
    net = TinyNet().eval().requires_grad_(False)
    return cls(module=net, dim=6, preprocessing=Preprocessing(input_size=32, resize=None), name="tiny")


def pattern_pair(noise: float = 0.2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A structured image and a slightly noisy copy (a similar pair)."""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x1 = torch.stack([torch.sin(xx / 3) * 2, torch.cos(yy / 4) * 2, torch.full_like(xx, 1.5)])[None]
    x2 = x1 + noise * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return x1, x2


def make_pair(model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, xi1: float = 0.3) -> PairInput:
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(12, 6)).astype(np.float32)
    return PairInput.from_tensors(model, x1, x2, xi1=xi1, gallery=gallery, gallery_labels=np.arange(12) % 3, label2=1)


# -- a model with known cell importances (the planted case of tests/test_evaluate.py) -------------------

PLANT_GRID = 8  # cells per side: 4-px blocks at 32 px = the selectivity's 8×8 grid (superpixel 5 on 40)
PLANT_MEAN = (128 / 255, 128 / 255, 128 / 255)  # grey 128 is exactly 0 after normalisation


class PlantedNet(nn.Module):
    """e = flatten(W_cell · avgpool_4(x)) in normalised space: each 4-px cell is its own block of the
    embedding, weighted by a fixed positive W_cell. Filling a cell with the mean colour (0 after
    normalisation, :data:`MEAN_FILL`) zeroes exactly its block, so the cosine's per-cell terms
    W_c²⟨a1_c, a2_c⟩/(‖e1‖‖e2‖) are the true cell importances under that fill."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.exp(1.5 * torch.randn(1, 1, PLANT_GRID, PLANT_GRID, generator=g)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 32 // PLANT_GRID) * self.w


class PlantedModel(EmbeddingModel):
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        return fmap.flatten(1)

    def cell_contributions(self, x1: torch.Tensor, x2: torch.Tensor) -> np.ndarray:
        """The exact per-cell terms of cos(e1, e2) → (8, 8) float64 (they sum to the cosine)."""
        with torch.no_grad():
            f = self.forward_features(torch.cat([x1, x2]).to(self.device)).double()
        e = f.flatten(1)
        per = (f[0] * f[1]).sum(0) / (e[0].norm() * e[1].norm())
        return per.cpu().numpy()


def planted_model() -> PlantedModel:
    net = PlantedNet().eval().requires_grad_(False)
    pre = Preprocessing(input_size=32, resize=None, mean=PLANT_MEAN, std=(0.25, 0.25, 0.25))
    return PlantedModel(module=net, dim=3 * PLANT_GRID * PLANT_GRID, preprocessing=pre, name="planted")


def mean_fill():
    """The ``fill`` perturbation with the planted model's mean colour (0 in normalised space)."""
    from lfs_gui.metrics.perturbations import FillPerturbation

    return FillPerturbation(color=PLANT_MEAN)


def planted_gallery(n_classes: int = 2, per_class: int = 4, seed: int = 0) -> tuple[list, np.ndarray]:
    """PIL images (32×32): a random 8×8 colour mosaic per class, each image a noisy copy of it."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(n_classes):
        base = rng.uniform(0.0, 1.0, (PLANT_GRID, PLANT_GRID, 3))
        for _ in range(per_class):
            cells = np.clip(base + rng.normal(0, 0.08, base.shape), 0, 1)
            arr = np.kron(cells, np.ones((4, 4, 1)))
            images.append(Image.fromarray((arr * 255).astype(np.uint8)))
            labels.append(c)
    return images, np.asarray(labels)
