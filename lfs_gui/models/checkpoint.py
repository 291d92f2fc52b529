"""Reading checkpoint files safely and preparing the modules built from them (a leaf module).

Every model format (:mod:`~lfs_gui.models.dml`, :mod:`~lfs_gui.models.torchvision_models`,
:mod:`~lfs_gui.models.efficientnet`, :mod:`~lfs_gui.models.facenet`,
:mod:`~lfs_gui.models.torchscript`) and the format-detecting :func:`lfs_gui.models.loader.load_model`
share these helpers; they live here so that the format modules never import the loader that
dispatches to them. Pickled files are read with ``torch.load(weights_only=True)`` and the allow-list
of :mod:`lfs_gui.models.safe_load` (:func:`read_checkpoint`); a file that needs arbitrary unpickling
is refused unless the user passed ``trust_checkpoint=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .base import ModelLoadError
from .safe_load import safe_torch_load

log = logging.getLogger(__name__)


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

    Always tries ``weights_only=True`` first, with the allow-list of :mod:`lfs_gui.models.safe_load`
    (numpy scalars, ``argparse.Namespace``, ...) plus ``allowed_globals``, added only for this call.
    If the pickle names another global, it is loaded with ``weights_only=False`` only when
    ``trust_checkpoint`` is set (logged as a warning); otherwise
    :class:`~lfs_gui.models.safe_load.TrustRequired` (a :class:`ModelLoadError`) names the file, the
    global and the flag. Corrupt or truncated files raise :class:`ModelLoadError` too.
    """
    return safe_torch_load(check_file(path), trust_checkpoint=trust_checkpoint, extra_globals=allowed_globals)


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
