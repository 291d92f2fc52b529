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
