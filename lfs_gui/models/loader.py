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

All pickled files are read with ``torch.load(weights_only=True)``
(:func:`lfs_gui.models.checkpoint.read_checkpoint`); a file that needs arbitrary unpickling is
refused unless the user passed ``trust_checkpoint=True``.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

from .base import EmbeddingModel, ModelLoadError
from .checkpoint import (  # noqa: F401 - re-exported for callers of the loader
    check_file,
    load_state_dict_strict,
    prepare_module,
    read_checkpoint,
)

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
    import argparse

    return read_checkpoint(p, trust_checkpoint=trust_checkpoint, allowed_globals=[argparse.Namespace])


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


def load_model(path: str | Path, trust_checkpoint: bool = False, kind: str | None = None) -> EmbeddingModel:
    """Load any supported model file as an :class:`EmbeddingModel` (CPU, eval, frozen).

    ``kind`` (one of :data:`KINDS`) skips detection; the pickled formats are read only once.
    """
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


def load_demo_model() -> EmbeddingModel:
    """The committed demo model: ImageNet EfficientNet-Lite0 + the trained head in ``models/demo/``."""
    p = demo_model_path()
    if not p.is_file():
        raise ModelLoadError(
            f"{p}: the demo model head is missing; run the demo trainer to create it "
            f"(or reinstall lfs-gui, which ships it)"
        )
    from .efficientnet import load_efficientnet_head

    return load_efficientnet_head(p)
