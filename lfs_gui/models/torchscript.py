"""TorchScript embedding models (``torch.jit.save`` archives) with a JSON preprocessing sidecar.

A TorchScript file carries code and weights but not the preprocessing the model expects, so
``model.pt`` must come with ``model.json`` (same stem, same folder)::

    {"dim": 128,                       # required: embedding size the module returns
     "input_size": 224,                # required: side of the square model input
     "resize": 256,                    # optional, default 256: Resize(shorter side) before the
                                       #   centre crop; null = squash the whole image, no crop
     "mean": [0.485, 0.456, 0.406],    # optional, default ImageNet
     "std": [0.229, 0.224, 0.225],     # optional, default ImageNet
     "name": "my-model"}               # optional display name

The module's ``forward`` maps a normalised ``(B, 3, input_size, input_size)`` float tensor to
``(B, dim)`` embeddings (normalised here). If the module also exports ``forward_features`` and
``forward_head`` (``@torch.jit.export``) they are used as the feature split; otherwise
:meth:`TorchScriptEmbedder.forward_features` raises :class:`FeaturesUnavailable` and only the
model-agnostic explanations apply. TorchScript archives contain no pickled Python objects (no
arbitrary code at load time), but the model still runs the file's TorchScript code: only load
models you trust to behave.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .base import IMAGENET_MEAN, IMAGENET_STD, EmbeddingModel, FeaturesUnavailable, ModelLoadError, Preprocessing
from .checkpoint import check_file, prepare_module

log = logging.getLogger(__name__)


def sidecar_path(path: str | Path) -> Path:
    """``model.pt`` -> ``model.json``."""
    return Path(path).with_suffix(".json")


def read_sidecar(path: str | Path) -> tuple[Preprocessing, int, str | None]:
    """Parse and validate the JSON sidecar of the TorchScript file ``path``."""
    side = sidecar_path(path)
    if not side.is_file():
        raise ModelLoadError(
            f"{path}: TorchScript models need a preprocessing sidecar {side.name} next to them "
            f'(e.g. {{"dim": 128, "input_size": 224, "resize": 256, "mean": [...], "std": [...]}}); '
            f"see lfs_gui.models.torchscript"
        )
    try:
        meta: Any = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{side}: not valid JSON ({exc}); fix or re-create the sidecar") from exc
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{side}: must be a JSON object with dim/input_size/resize/mean/std")
    missing = [k for k in ("dim", "input_size") if k not in meta]
    if missing:
        raise ModelLoadError(f"{side}: missing required key(s) {missing}")
    try:
        dim = int(meta["dim"])
        pre = Preprocessing.from_dict({
            "input_size": meta["input_size"],
            "resize": meta.get("resize", 256),
            "mean": meta.get("mean", IMAGENET_MEAN),
            "std": meta.get("std", IMAGENET_STD),
        })
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{side}: invalid value ({exc}); dim/input_size/resize are integers, mean/std 3 numbers") from exc
    if dim <= 0 or pre.input_size <= 0 or (pre.resize is not None and pre.resize < pre.input_size):
        raise ModelLoadError(f"{side}: need dim > 0, input_size > 0 and resize >= input_size (or null)")
    if len(pre.mean) != 3 or len(pre.std) != 3 or any(s <= 0 for s in pre.std):
        raise ModelLoadError(f"{side}: mean and std need 3 values each, std > 0")
    name = meta.get("name")
    return pre, dim, name if isinstance(name, str) else None


class TorchScriptEmbedder(EmbeddingModel):
    """A scripted/traced module; feature split only if the module exports one."""

    def has_feature_split(self) -> bool:
        return hasattr(self.module, "forward_features") and hasattr(self.module, "forward_head")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_feature_split():
            raise FeaturesUnavailable(
                f"{self.source}: this TorchScript model exports no forward_features/forward_head; "
                f"gradient/decomposition baselines need them"
            )
        return self.module.forward_features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        if not self.has_feature_split():
            raise FeaturesUnavailable(f"{self.source}: this TorchScript model exports no forward_head")
        return self.module.forward_head(fmap)

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.module(x), dim=1)


def load_torchscript(path: str | Path) -> TorchScriptEmbedder:
    """``torch.jit.load`` ``path`` on the CPU with its sidecar; checks the output shape once."""
    p = check_file(path)
    pre, dim, name = read_sidecar(p)
    try:
        with warnings.catch_warnings():
            # torch >= 2.9 marks TorchScript deprecated; loading existing archives still works.
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*deprecated.*")
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - jit raises RuntimeError/ValueError/... for bad archives
        raise ModelLoadError(
            f"{p}: not a loadable TorchScript archive ({str(exc).strip().splitlines()[0][:200]}); "
            f"save it with torch.jit.save(torch.jit.script(model), path)"
        ) from exc
    prepare_module(module)
    model = TorchScriptEmbedder(module=module, dim=dim, preprocessing=pre, name=name or p.stem, source=str(p))
    probe = torch.zeros(1, 3, pre.input_size, pre.input_size)
    try:
        with torch.inference_mode():
            out = module(probe)
    except Exception as exc:  # noqa: BLE001 - whatever the scripted code raises
        raise ModelLoadError(
            f"{p}: the model fails on a (1, 3, {pre.input_size}, {pre.input_size}) input ({exc}); "
            f"check input_size in {sidecar_path(p).name}"
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, dim):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelLoadError(
            f"{p}: forward returns {shape} but the sidecar declares dim={dim}; "
            f"fix 'dim' in {sidecar_path(p).name} or make forward return (B, dim)"
        )
    log.info("%s: TorchScript model, %d-d, feature split: %s", p, dim, model.has_feature_split())
    return model
