"""Open any supported model file, detecting its format, plus the safe checkpoint reader.

Formats recognised by :func:`load_model` (``kind`` forces one):

``"dml"``
    Deep-Metric-Learning-Baselines ``checkpoint.pth.tar``: a dict with ``state_dict`` and ``opt``
    (an ``argparse.Namespace``); see :mod:`lfs_gui.models.dml`.
``"torchvision"``
    lfs-gui's torchvision backbone + linear head file (``format == "lfs-gui-torchvision-head"``);
    see :mod:`lfs_gui.models.torchvision_models`.
``"efficientnet"``
    lfs-gui's EfficientNet-Lite0 head file (``format == "lfs-gui-efficientnet-head"``), the demo
    model's format; see :mod:`lfs_gui.models.efficientnet`.
``"torchscript"``
    A ``torch.jit.save`` zip with a JSON sidecar; see :mod:`lfs_gui.models.torchscript`.
``"facenet"``
    A facenet-pytorch ``InceptionResnetV1`` state dict; see :mod:`lfs_gui.models.facenet`.

All pickled files are read onto the CPU with ``torch.load(weights_only=True)`` and the allow-list of
:mod:`lfs_gui.models.safe_load` (:func:`read_checkpoint`); a file that needs arbitrary unpickling is
refused with :class:`TrustRequired` unless the user passed ``trust_checkpoint=True``. Models are then
moved to the requested device (:func:`load_model`'s ``device``).
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..device import resolve_device
from .base import EmbeddingModel, ModelLoadError
from .checkpoint import (  # noqa: F401 - re-exported for callers of the loader
    check_file,
    load_state_dict_strict,
    prepare_module,
    read_checkpoint,
)
from .safe_load import TrustRequired

__all__ = ["KINDS", "TrustRequired", "check_file", "detect_kind", "load_demo_model", "load_model", "read_checkpoint"]

log = logging.getLogger(__name__)

KINDS = ("dml", "torchvision", "efficientnet", "torchscript", "facenet")

# ---------------------------------------------------------------------------------------------
# format detection
# ---------------------------------------------------------------------------------------------


def detect_kind(path: str | Path, trust_checkpoint: bool = False) -> str:
    """Which of :data:`KINDS` ``path`` holds (reads the file; raises :class:`ModelLoadError`)."""
    p = check_file(path)
    if _is_torchscript(p):
        return "torchscript"
    obj = _read_any(p, trust_checkpoint)
    return _kind_of(obj, p)


def _is_torchscript(p: Path) -> bool:
    """A TorchScript archive is a zip with ``*/code/`` and ``*/constants.pkl`` entries."""
    if not zipfile.is_zipfile(p):
        return False
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def _read_any(p: Path, trust_checkpoint: bool) -> Any:
    return read_checkpoint(p, trust_checkpoint=trust_checkpoint)


def _kind_of(obj: Any, p: Path) -> str:
    if isinstance(obj, dict):
        fmt = obj.get("format")
        if fmt == "lfs-gui-efficientnet-head":
            return "efficientnet"
        if fmt == "lfs-gui-torchvision-head":
            return "torchvision"
        if "state_dict" in obj and "opt" in obj:
            return "dml"
        keys = [k for k in obj if isinstance(k, str)]
        if any(k.startswith(("block8.", "repeat_1.", "conv2d_1a.")) for k in keys):
            return "facenet"
    raise ModelLoadError(
        f"{p}: unrecognised model file. Supported: a Deep-Metric-Learning-Baselines checkpoint.pth.tar, "
        f"an lfs-gui torchvision/EfficientNet head file, a TorchScript .pt with a .json sidecar, or a "
        f"facenet-pytorch InceptionResnetV1 state dict; pass kind=... to force one of {KINDS}"
    )


def load_model(path: str | Path, trust_checkpoint: bool = False, kind: str | None = None,
               device: str | torch.device | None = None) -> EmbeddingModel:
    """Load any supported model file as an :class:`EmbeddingModel` (eval mode, frozen weights).

    The file is read onto the CPU and the model then moved to ``device`` (``None``: stays on the
    CPU; a string is resolved by :func:`lfs_gui.device.resolve_device`, which raises
    :class:`~lfs_gui.device.DeviceError` for a device this machine lacks). ``kind`` (one of
    :data:`KINDS`) skips detection; the pickled formats are read only once. A checkpoint that names
    a global outside the allow-list raises :class:`TrustRequired` unless ``trust_checkpoint``.
    """
    target = _target_device(device)
    return _load_cpu(path, trust_checkpoint, kind).to(target)


def _target_device(device: str | torch.device | None) -> torch.device:
    """Resolve before reading anything, so a missing device fails fast."""
    return torch.device("cpu") if device is None else resolve_device(device)


def _load_cpu(path: str | Path, trust_checkpoint: bool, kind: str | None) -> EmbeddingModel:
    p = check_file(path)
    if kind is not None and kind not in KINDS:
        raise ModelLoadError(f"{p}: unknown model kind {kind!r}; use one of {KINDS}")
    if kind == "torchscript" or (kind is None and _is_torchscript(p)):
        from .torchscript import load_torchscript

        log.info("loading %s as torchscript", p)
        return load_torchscript(p)
    obj = _read_any(p, trust_checkpoint)
    if kind is None:
        kind = _kind_of(obj, p)
    log.info("loading %s as %s", p, kind)
    if kind == "dml":
        from .dml import dml_from_checkpoint

        return dml_from_checkpoint(obj, p)
    if kind == "torchvision":
        from .torchvision_models import torchvision_from_checkpoint

        return torchvision_from_checkpoint(obj, p)
    if kind == "efficientnet":
        from .efficientnet import efficientnet_from_checkpoint

        return efficientnet_from_checkpoint(obj, p)
    from .facenet import facenet_from_state

    return facenet_from_state(obj, p)


def demo_model_path() -> Path:
    """``models/demo/head.pt`` in the project's data folder."""
    from ..paths import models_dir

    return models_dir() / "demo" / "head.pt"


def load_demo_model(device: str | torch.device | None = None) -> EmbeddingModel:
    """The committed demo model: ImageNet EfficientNet-Lite0 + the trained head in ``models/demo/``,
    read onto the CPU and moved to ``device`` (``None``: CPU)."""
    target = _target_device(device)
    p = demo_model_path()
    if not p.is_file():
        raise ModelLoadError(
            f"{p}: the demo model head is missing; run the demo trainer to create it "
            f"(or reinstall lfs-gui, which ships it)"
        )
    from .efficientnet import load_efficientnet_head

    return load_efficientnet_head(p).to(target)
