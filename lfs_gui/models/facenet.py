"""FaceNet-style face verification: InceptionResnetV1, 512-d (ExplainLFS paper, section 4.1).

An own implementation of the InceptionResnetV1 architecture whose module names match
facenet-pytorch's (``conv2d_1a`` ... ``repeat_1..3``, ``block8``, ``last_linear`` (no bias),
``last_bn``), so its state dicts (e.g. ``20180402-114759-vggface2.pt``) load unchanged; the
classification layer ``logits.*`` is ignored when present. Weights are user-supplied (nothing is
downloaded).

Preprocessing: the whole (already aligned) face crop is resized to 160x160, no centre crop, and
standardised like facenet-pytorch's ``fixed_image_standardization``: ``(x*255 - 127.5) / 128``,
i.e. mean 0.5, std 128/255. Features are ``block8``'s map (1792 x 3 x 3); the head is
GAP -> ``last_linear`` -> ``last_bn`` (folded into ``(W, b)`` by :meth:`FaceNetEmbedder.linear_head`).
Pairs are compared with cosine similarity; :attr:`FaceNetEmbedder.suggested_xi1` is the
similarity threshold suggested for the ExplainLFS pair mode.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .base import EmbeddingModel, ModelLoadError, Preprocessing, global_avg_pool
from .checkpoint import load_state_dict_strict, prepare_module, read_checkpoint

log = logging.getLogger(__name__)

FACENET_PREPROCESSING = Preprocessing(input_size=160, resize=None, mean=(0.5, 0.5, 0.5), std=(128 / 255,) * 3)
EMBED_DIM = 512


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3, as in the TF original) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class _Residual(nn.Module):
    """Inception-ResNet block: concat(branches) -> 1x1 ``conv2d`` -> ``x + scale * out`` -> ReLU."""

    def __init__(self, branches: list[nn.Module], cat_ch: int, ch: int, scale: float, relu: bool = True) -> None:
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(f"branch{i}", b)
        self._n = len(branches)
        self.scale = scale
        self.conv2d = nn.Conv2d(cat_ch, ch, kernel_size=1)
        self.relu = nn.ReLU() if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self._n)], 1)
        out = x + self.scale * self.conv2d(out)
        return self.relu(out) if self.relu is not None else out


def _block35(scale: float) -> _Residual:
    return _Residual([
        BasicConv2d(256, 32, 1),
        nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
        nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1), BasicConv2d(32, 32, 3, padding=1)),
    ], 96, 256, scale)


def _block17(scale: float) -> _Residual:
    return _Residual([
        BasicConv2d(896, 128, 1),
        nn.Sequential(BasicConv2d(896, 128, 1), BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
                      BasicConv2d(128, 128, (7, 1), padding=(3, 0))),
    ], 256, 896, scale)


def _block8(scale: float, relu: bool = True) -> _Residual:
    return _Residual([
        BasicConv2d(1792, 192, 1),
        nn.Sequential(BasicConv2d(1792, 192, 1), BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
                      BasicConv2d(192, 192, (3, 1), padding=(1, 0))),
    ], 384, 1792, scale, relu)


class _Concat(nn.Module):
    """Reduction block: parallel ``branch0..n`` concatenated on channels."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(f"branch{i}", b)
        self._n = len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self._n)], 1)


class InceptionResnetV1(nn.Module):
    """InceptionResnetV1 trunk + 512-d embedding head, facenet-pytorch's parameter names."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[_block35(0.17) for _ in range(5)])
        self.mixed_6a = _Concat([
            BasicConv2d(256, 384, 3, stride=2),
            nn.Sequential(BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, padding=1),
                          BasicConv2d(192, 256, 3, stride=2)),
            nn.MaxPool2d(3, stride=2),
        ])
        self.repeat_2 = nn.Sequential(*[_block17(0.10) for _ in range(10)])
        self.mixed_7a = _Concat([
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2)),
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2)),
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, padding=1),
                          BasicConv2d(256, 256, 3, stride=2)),
            nn.MaxPool2d(3, stride=2),
        ])
        self.repeat_3 = nn.Sequential(*[_block8(0.20) for _ in range(5)])
        self.block8 = _block8(1.0, relu=False)
        self.last_linear = nn.Linear(1792, EMBED_DIM, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBED_DIM, eps=0.001)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                     "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8"):
            x = getattr(self, name)(x)
        return x

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.last_bn(self.last_linear(global_avg_pool(fmap)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FaceNetEmbedder(EmbeddingModel):
    """Face embeddings for verification; compare pairs by cosine similarity."""

    suggested_xi1: float = 0.3

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.module.head(fmap)

    def linear_head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``last_linear`` with the eval-mode ``last_bn`` folded in."""
        bn: nn.BatchNorm1d = self.module.last_bn
        scale = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
        w = self.module.last_linear.weight.detach() * scale[:, None]
        b = bn.bias.detach() - scale * bn.running_mean.detach()
        return w.clone(), b.clone()


def facenet_from_state(obj: Any, path: str | Path) -> FaceNetEmbedder:
    """Build the embedder from an already-read facenet-pytorch state dict."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) and "opt" not in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path}: expected a facenet-pytorch InceptionResnetV1 state dict, got {type(obj).__name__}")
    state = {k.removeprefix("module."): v for k, v in obj.items() if isinstance(k, str)}
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    net = InceptionResnetV1()
    load_state_dict_strict(net, state, path, "facenet-pytorch InceptionResnetV1")
    prepare_module(net)
    return FaceNetEmbedder(module=net, dim=EMBED_DIM, preprocessing=FACENET_PREPROCESSING,
                           name="facenet-inception-resnet-v1", source=str(path))


def load_facenet(path: str | Path, trust_checkpoint: bool = False) -> FaceNetEmbedder:
    """Load facenet-pytorch InceptionResnetV1 weights (``weights_only=True`` unless trusted)."""
    return facenet_from_state(read_checkpoint(path, trust_checkpoint=trust_checkpoint), path)
