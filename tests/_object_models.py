"""A tiny model whose features detect coloured objects, and synthetic pairs with those objects.

``ColourNet``: 1×1 conv of the normalised input into "redness", "greenness" and "blueness" (ReLU of a
colour minus the other two), 8×8 average pooling (an 8×8 feature grid at 64 px), global average
pooling and a linear head. Grey textured backgrounds give near-zero features, so only the objects
carry the embedding: the known answer for correspondence and attribute tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from lfs_gui.models.base import PooledHeadEmbedder, Preprocessing

SIZE = 64
CELL = 8  # pixels per feature cell
OBJECT = 16  # object side in pixels (2×2 cells)


class ColourNet(nn.Module):
    def __init__(self, dim: int = 5, bias: bool = False, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]]).view(3, 3, 1, 1))
        self.pool = nn.AvgPool2d(CELL)
        self.head = nn.Linear(3, dim, bias=bias)
        with torch.no_grad():
            # near-orthogonal colour channels (a real model also keeps different objects apart)
            w = torch.randn(dim, 3, generator=g) * 0.1
            w[:3] += torch.eye(3)
            self.head.weight.copy_(w)
            if bias:
                self.head.bias.copy_(torch.randn(dim, generator=g) * 0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x)))


class ScriptedColourNet(nn.Module):
    """:class:`ColourNet` with the feature split exported, for a TorchScript model file."""

    def __init__(self) -> None:
        super().__init__()
        self.net = ColourNet(dim=5)

    @torch.jit.export
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    @torch.jit.export
    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.net.head(f.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def write_colour_torchscript(path: Path) -> Path:
    """``path`` (.pt, TorchScript) + its JSON sidecar: the colour model as a real model file (no
    ``linear_head()``: lfs-gui sees a model without the GAP + affine split)."""
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(ScriptedColourNet().eval()), str(path))
    path.with_suffix(".json").write_text(json.dumps(
        {"dim": 5, "input_size": SIZE, "resize": None, "mean": [0.5] * 3, "std": [0.5] * 3, "name": "colour"}))
    return path


def colour_model(bias: bool = False, dim: int = 5) -> PooledHeadEmbedder:
    net = ColourNet(dim=dim, bias=bias).eval().requires_grad_(False)
    pre = Preprocessing(input_size=SIZE, resize=None, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return PooledHeadEmbedder(module=net, dim=dim, preprocessing=pre, name="colour")


COLOURS = {"red": (230, 20, 20), "green": (20, 220, 20), "blue": (20, 20, 230)}


def scene(objects: dict[str, tuple[int, int]], seed: int = 0, size: int = SIZE) -> np.ndarray:
    """RGB uint8 (size, size, 3): grey noise background with a square per ``{colour: (row, col)}``
    (top-left pixel of the square)."""
    rng = np.random.default_rng(seed)
    img = np.clip(128 + rng.normal(0, 12, (size, size, 1)), 0, 255).repeat(3, axis=2)
    for name, (r, c) in objects.items():
        img[r:r + OBJECT, c:c + OBJECT] = COLOURS[name]
    return img.astype(np.uint8)


def to_input(model: PooledHeadEmbedder, rgb: np.ndarray) -> torch.Tensor:
    from PIL import Image

    return model.preprocessing.to_tensor(Image.fromarray(rgb)).unsqueeze(0)
