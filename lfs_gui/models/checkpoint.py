"""Reading checkpoint files safely and preparing the modules built from them (a leaf module).

Every model format (:mod:`~lfs_gui.models.dml`, :mod:`~lfs_gui.models.torchvision_models`,
:mod:`~lfs_gui.models.efficientnet`, :mod:`~lfs_gui.models.facenet`,
:mod:`~lfs_gui.models.torchscript`) and the format-detecting :func:`lfs_gui.models.loader.load_model`
share these helpers; they live here so that the format modules never import the loader that
dispatches to them. Pickled files are read with ``torch.load(weights_only=True)``
(:func:`read_checkpoint`); a file that needs arbitrary unpickling is refused unless the user passed
``trust_checkpoint=True``.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .base import ModelLoadError

log = logging.getLogger(__name__)

_TRUST_HINT = (
    "pass trust_checkpoint=True (CLI: --trust-checkpoint) only if you trust where the file came from: "
    "loading it runs arbitrary Python code from the pickle"
)


def check_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if it is a non-empty regular file, else :class:`ModelLoadError`."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"{p}: no such file; check the path")
    if not p.is_file():
        raise ModelLoadError(f"{p}: not a regular file; pass the checkpoint file itself, not a folder")
    if p.stat().st_size == 0:
        raise ModelLoadError(f"{p}: the file is empty (interrupted download or copy?); fetch it again")
    return p


def read_checkpoint(
    path: str | Path, trust_checkpoint: bool = False, allowed_globals: Sequence[Any] = ()
) -> Any:
    """``torch.load`` a pickled checkpoint onto the CPU, safely.

    Always tries ``weights_only=True`` first, with ``allowed_globals`` added only for this call
    (``torch.serialization.safe_globals``, so global state is untouched). If the pickle references
    another global, it is loaded with ``weights_only=False`` only when ``trust_checkpoint`` is set
    (logged as a warning); otherwise a :class:`ModelLoadError` explains the risk and the fix.
    Corrupt or truncated files raise :class:`ModelLoadError` too.
    """
    p = check_file(path)
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Unsupported global" not in msg:
            raise ModelLoadError(
                f"{p}: not a readable PyTorch checkpoint (corrupt, truncated or another file type): "
                f"{_last_line(msg)}; re-download or re-save the file"
            ) from exc
        m = re.search(r"GLOBAL ([\w.]+)", msg)
        what = m.group(1) if m else "a non-allowlisted Python object"
        if not trust_checkpoint:
            raise ModelLoadError(
                f"{p}: the checkpoint pickles {what}, which the safe loader (weights_only=True) refuses; "
                f"{_TRUST_HINT}"
            ) from exc
        log.warning("%s: loading with weights_only=False because trust_checkpoint=True (it pickles %s)", p, what)
        try:
            return torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - anything an arbitrary pickle raises
            raise ModelLoadError(f"{p}: could not unpickle even with trust_checkpoint=True: {exc2}") from exc2
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelLoadError(
            f"{p}: not a readable PyTorch checkpoint (corrupt, truncated or another file type): "
            f"{_last_line(str(exc))}; re-download or re-save the file"
        ) from exc


def _last_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else msg[:200]


def prepare_module(module: torch.nn.Module) -> torch.nn.Module:
    """Put a loaded model in inference form: CPU, eval mode, parameters frozen.

    Explanations need gradients w.r.t. inputs and feature maps only, never w.r.t. weights.
    """
    module.cpu().eval()
    for param in module.parameters():  # not requires_grad_(): ScriptModules lack it
        param.requires_grad_(False)
    return module


def load_state_dict_strict(module: torch.nn.Module, state: dict, path: str | Path, what: str) -> None:
    """``load_state_dict(strict=True)`` with a :class:`ModelLoadError` naming missing/extra keys and shape mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    bad = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    ]
    if missing or extra or bad:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}")
        if bad:
            parts.append(f"shape mismatch {bad[:3]}")
        raise ModelLoadError(f"{path}: does not match the {what} architecture ({'; '.join(parts)}); "
                             f"check that the file is a {what} checkpoint")
    non_tensor = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if non_tensor:
        raise ModelLoadError(f"{path}: state-dict entries are not tensors: {non_tensor[:5]}")
    module.load_state_dict(state, strict=True)
