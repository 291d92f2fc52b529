"""Deep-Metric-Learning-Baselines checkpoints (github.com/Confusezius/Deep-Metric-Learning-Baselines).

Format of ``checkpoint.pth.tar`` (``torch.save`` of a dict)::

    {"state_dict": network.state_dict(), "opt": argparse.Namespace(...), "progress": {...}}

The network is ``netlib.ResNet50`` or ``netlib.GoogLeNet``: the backbone sits in ``self.model``
(Cadene ``pretrainedmodels`` ResNet50 = torchvision's ResNet50 with ``fc`` renamed ``last_linear``;
GoogLeNet = a copy of torchvision's), ``model.last_linear`` is replaced by
``Linear(features, opt.embed_dim)``, and ``self.layer_blocks`` is a ``ModuleList`` aliasing the
backbone's blocks, so every block appears twice in the state dict (``model.layer1.*`` and
``layer_blocks.0.*``). Keys are ``model.conv1.weight``, ..., ``model.last_linear.weight``; a
``module.`` prefix (``DataParallel``) is stripped and the ``layer_blocks.*`` aliases and GoogLeNet's
untrained ``aux1``/``aux2`` heads are ignored.

The architecture is read from the keys (``opt.arch`` only cross-checks), the embedding size from
``last_linear.weight``. Test transform: ``Resize(256) -> CenterCrop(224)`` (227 for GoogLeNet),
ImageNet mean/std. DML-Baselines' GoogLeNet forward does not apply torchvision's
``transform_input``, so neither do we. Output is always L2-normalised (DML-Baselines skips it only
for the N-pair loss; retrieval here is cosine).

Such files (``opt`` holds a ``torch.device``, ``progress`` numpy float64/int64 scalars) load with
``weights_only=True`` through the allow-list of :mod:`lfs_gui.models.safe_load`; a pickle naming any
other global needs ``trust_checkpoint=True``.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torchvision

from .base import IMAGENET_MEAN, IMAGENET_STD, EmbeddingModel, ModelLoadError, Preprocessing, global_avg_pool
from .checkpoint import load_state_dict_strict, prepare_module, read_checkpoint

log = logging.getLogger(__name__)

_RESNET_LAYOUTS = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("basic", (3, 4, 6, 3)): "resnet34",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
    ("bottleneck", (3, 8, 36, 3)): "resnet152",
}


class _DMLNet(nn.Module):
    """``self.model`` = torchvision backbone whose classifier is ``last_linear`` (the state-dict layout)."""

    def __init__(self, arch: str, embed_dim: int) -> None:
        super().__init__()
        if arch == "googlenet":
            net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False)
        else:
            net = getattr(torchvision.models, arch)(weights=None)
        in_features = net.fc.in_features
        del net.fc
        net.last_linear = nn.Linear(in_features, embed_dim)
        self.arch = arch
        self.model = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.arch == "googlenet":
            x = m.maxpool2(m.conv3(m.conv2(m.maxpool1(m.conv1(x)))))
            for name in ("inception3a", "inception3b", "maxpool3", "inception4a", "inception4b", "inception4c",
                         "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b"):
                x = getattr(m, name)(x)
            return x
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.last_linear(global_avg_pool(self.features(x)))


class DMLEmbedder(EmbeddingModel):
    """A DML-Baselines ResNet/GoogLeNet: conv features -> GAP -> ``last_linear``, L2-normalised."""

    opt: dict | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        # GoogLeNet's dropout sits between pooling and last_linear: identity in eval mode.
        return self.module.model.last_linear(global_avg_pool(fmap))

    def linear_head(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        lin = self.module.model.last_linear
        return lin.weight.detach().clone(), lin.bias.detach().clone()


def dml_preprocessing(arch: str) -> Preprocessing:
    """DML-Baselines' test transform for ``arch``."""
    return Preprocessing(input_size=227 if arch == "googlenet" else 224, resize=256,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _clean_state(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("layer_blocks.") or k.startswith(("model.aux1.", "model.aux2.")):
            continue
        out[k] = v
    return out


def detect_dml_arch(state: dict[str, Any], path: str | Path) -> str:
    """torchvision architecture name from the ``model.*`` keys of a cleaned DML state dict."""
    keys = list(state)
    if any(k.startswith("model.inception5b.") for k in keys):
        return "googlenet"
    if not any(k.startswith("model.layer4.") for k in keys):
        raise ModelLoadError(
            f"{path}: state_dict has neither ResNet ('model.layer4.*') nor GoogLeNet ('model.inception5b.*') keys; "
            f"only DML-Baselines ResNet and GoogLeNet checkpoints are supported"
        )
    blocks = []
    for layer in range(1, 5):
        idx = {int(m.group(1)) for k in keys if (m := re.match(rf"model\.layer{layer}\.(\d+)\.", k))}
        blocks.append(max(idx) + 1 if idx else 0)
    kind = "bottleneck" if "model.layer1.0.conv3.weight" in state else "basic"
    arch = _RESNET_LAYOUTS.get((kind, tuple(blocks)))
    if arch is None:
        raise ModelLoadError(f"{path}: unsupported ResNet layout {kind} {blocks}; supported: {sorted(_RESNET_LAYOUTS.values())}")
    return arch


def dml_from_checkpoint(obj: Any, path: str | Path) -> DMLEmbedder:
    """Build the embedder from an already-read checkpoint dict."""
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ModelLoadError(f"{path}: not a DML-Baselines checkpoint (expected a dict with 'state_dict' and 'opt')")
    raw = obj["state_dict"]
    if not isinstance(raw, dict) or not raw:
        raise ModelLoadError(f"{path}: 'state_dict' is empty or not a dict; the checkpoint is damaged")
    state = _clean_state(raw)
    arch = detect_dml_arch(state, path)
    w = state.get("model.last_linear.weight")
    if not isinstance(w, torch.Tensor) or w.ndim != 2:
        raise ModelLoadError(f"{path}: no 'model.last_linear.weight' matrix; not a DML-Baselines embedding network")
    dim = int(w.shape[0])
    opt = obj.get("opt")
    opt_d = vars(opt) if isinstance(opt, argparse.Namespace) else (opt if isinstance(opt, dict) else {})
    opt_arch, opt_dim = opt_d.get("arch"), opt_d.get("embed_dim")
    if isinstance(opt_arch, str) and not opt_arch.startswith(arch[:6]):
        log.warning("%s: opt.arch=%r but the weights look like %s; using %s", path, opt_arch, arch, arch)
    if opt_dim is not None and int(opt_dim) != dim:
        log.warning("%s: opt.embed_dim=%s but last_linear gives %d-d; using %d", path, opt_dim, dim, dim)
    net = _DMLNet(arch, dim)
    load_state_dict_strict(net, state, path, f"DML-Baselines {arch}")
    prepare_module(net)
    model = DMLEmbedder(module=net, dim=dim, preprocessing=dml_preprocessing(arch),
                        name=f"dml-{arch}-{dim}", source=str(path))
    model.opt = {k: v for k, v in opt_d.items() if isinstance(v, (str, int, float, bool, type(None)))}
    log.info("%s: DML-Baselines %s, %d-d embedding", path, arch, dim)
    return model


def load_dml_checkpoint(path: str | Path, trust_checkpoint: bool = False) -> DMLEmbedder:
    """Load a DML-Baselines ``checkpoint.pth.tar`` onto the CPU (``weights_only=True`` + the allow-list)."""
    obj = read_checkpoint(path, trust_checkpoint=trust_checkpoint)
    return dml_from_checkpoint(obj, path)

