"""torchvision backbones with a linear embedding head, from an lfs-gui head file.

File format (``torch.save`` of a dict, read with ``weights_only=True``)::

    {"format": "lfs-gui-torchvision-head", "version": 1,
     "meta": {"arch": "resnet18", "dim": 128,                 # required
              "input_size": 224, "resize": 256,               # optional (defaults shown;
              "mean": [0.485, 0.456, 0.406],                  #  resize None = squash whole
              "std": [0.229, 0.224, 0.225]},                  #  image, no crop)
     "state_dict": {"backbone.<torchvision key>": Tensor, ...,
                    "head.weight": Tensor(dim, C), "head.bias": Tensor(dim)}}

``backbone.*`` are the keys of ``torchvision.models.<arch>()``'s own state dict, with its classifier
(``fc.*`` or ``classifier.*``) left out (if present it is ignored). ``meta`` holds only JSON-able
values. The embedding is ``head(GAP(features(x)))``, L2-normalised; ``features`` is the last conv
map (ResNet ``layer4``, GoogLeNet ``inception5b``, ``.features`` for MobileNet/EfficientNet/DenseNet,
DenseNet with its final ReLU). Weights are never downloaded: backbones are built with
``weights=None``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from ..jobs import atomic_path
from .base import IMAGENET_MEAN, IMAGENET_STD, ModelLoadError, PooledHeadEmbedder, Preprocessing, global_avg_pool
from .checkpoint import load_state_dict_strict, prepare_module, read_checkpoint

log = logging.getLogger(__name__)

FORMAT = "lfs-gui-torchvision-head"
VERSION = 1


def _resnet_features(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    return m.layer4(m.layer3(m.layer2(m.layer1(x))))


def _googlenet_features(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = m._transform_input(x)
    x = m.maxpool2(m.conv3(m.conv2(m.maxpool1(m.conv1(x)))))
    for name in ("inception3a", "inception3b", "maxpool3", "inception4a", "inception4b", "inception4c",
                 "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b"):
        x = getattr(m, name)(x)
    return x


def _plain_features(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.features(x)


def _densenet_features(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.relu(m.features(x))


# arch -> (constructor kwargs, classifier attribute, feature function, feature channels)
ARCHS: dict[str, tuple[dict[str, Any], str, Callable[[nn.Module, torch.Tensor], torch.Tensor], int]] = {
    "resnet18": ({}, "fc", _resnet_features, 512),
    "resnet34": ({}, "fc", _resnet_features, 512),
    "resnet50": ({}, "fc", _resnet_features, 2048),
    "resnet101": ({}, "fc", _resnet_features, 2048),
    "googlenet": ({"aux_logits": False, "init_weights": False}, "fc", _googlenet_features, 1024),
    "mobilenet_v2": ({}, "classifier", _plain_features, 1280),
    "efficientnet_b0": ({}, "classifier", _plain_features, 1280),
    "densenet121": ({}, "classifier", _densenet_features, 1024),
}


class TorchvisionEmbeddingNet(nn.Module):
    """``backbone`` (torchvision model without classifier) + ``head`` (``Linear(C, dim)``)."""

    def __init__(self, arch: str, dim: int) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unsupported torchvision arch {arch!r}; supported: {sorted(ARCHS)}")
        kwargs, clf, self._features, channels = ARCHS[arch]
        net = getattr(torchvision.models, arch)(weights=None, **kwargs)
        delattr(net, clf)
        self.arch = arch
        self.backbone = net
        self.head = nn.Linear(channels, dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(self.backbone, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(global_avg_pool(self.features(x)))


class TorchvisionEmbedder(PooledHeadEmbedder):
    """A torchvision backbone + linear head; features = last conv map."""


def _preprocessing_from_meta(meta: dict[str, Any]) -> Preprocessing:
    return Preprocessing.from_dict({
        "input_size": meta.get("input_size", 224),
        "resize": meta.get("resize", 256),
        "mean": meta.get("mean", IMAGENET_MEAN),
        "std": meta.get("std", IMAGENET_STD),
    })


def build_torchvision_embedder(arch: str, dim: int, preprocessing: Preprocessing | None = None,
                               source: str = "") -> TorchvisionEmbedder:
    """A randomly initialised (torch RNG) embedder - to train, or to save as a fixture."""
    net = prepare_module(TorchvisionEmbeddingNet(arch, dim))
    return TorchvisionEmbedder(module=net, dim=dim, preprocessing=preprocessing or Preprocessing(),
                               name=f"{arch}+head{dim}", source=source or arch)


def save_torchvision_head(path: str | Path, model: TorchvisionEmbedder) -> None:
    """Write ``model`` in the format of the module docstring (atomically)."""
    net = model.module
    meta = {"arch": net.arch, "dim": int(model.dim), **model.preprocessing.to_dict()}
    meta["mean"], meta["std"] = list(meta["mean"]), list(meta["std"])
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, "meta": meta, "state_dict": state}, tmp)


def torchvision_from_checkpoint(obj: Any, path: str | Path) -> TorchvisionEmbedder:
    """Build the embedder from an already-read head-file dict."""
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not an lfs-gui torchvision head file (format != {FORMAT!r})")
    if obj.get("version") != VERSION:
        raise ModelLoadError(f"{path}: version {obj.get('version')!r} not supported (expected {VERSION}); update lfs-gui")
    meta, state = obj.get("meta"), obj.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise ModelLoadError(f"{path}: needs a 'meta' dict and a 'state_dict' dict (see lfs_gui.models.torchvision_models)")
    arch = meta.get("arch")
    if arch not in ARCHS:
        raise ModelLoadError(f"{path}: meta.arch={arch!r} is not supported; use one of {sorted(ARCHS)}")
    w = state.get("head.weight")
    if not isinstance(w, torch.Tensor) or w.ndim != 2:
        raise ModelLoadError(f"{path}: no 2-D 'head.weight'; the file needs the embedding head")
    dim = int(w.shape[0])
    if meta.get("dim") is not None and int(meta["dim"]) != dim:
        raise ModelLoadError(f"{path}: meta.dim={meta['dim']} but head.weight gives {dim}-d embeddings; fix meta.dim")
    clf = ARCHS[arch][1]
    dropped = [k for k in state if k.startswith(f"backbone.{clf}.")]
    if dropped:
        log.info("%s: ignoring the backbone classifier keys %s", path, dropped)
    state = {k: v for k, v in state.items() if k not in dropped}
    try:
        pre = _preprocessing_from_meta(meta)
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{path}: invalid preprocessing in meta: {exc}") from exc
    model = build_torchvision_embedder(arch, dim, pre, source=str(path))
    load_state_dict_strict(model.module, state, path, f"torchvision {arch} + head")
    model._identity = None
    return model


def load_torchvision_head(path: str | Path) -> TorchvisionEmbedder:
    """Read a torchvision head file (``weights_only=True``)."""
    return torchvision_from_checkpoint(read_checkpoint(path), path)
