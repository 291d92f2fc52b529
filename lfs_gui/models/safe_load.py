"""The weights-only allow-list for real checkpoints, and the trust decision (no Qt, a leaf module).

Research checkpoints are more than tensors. Deep-Metric-Learning-Baselines saves
``{"state_dict", "opt", "progress"}``: ``opt`` is an ``argparse.Namespace`` holding a
``torch.device``, and ``progress`` (its ``LOGGER.progress_saver``) holds numpy float64/int64 scalars
(``np.round``, ``np.mean``, sklearn's NMI). ``torch.load(weights_only=True)`` refuses those globals,
so :func:`safe_torch_load` adds, for that one call, exactly the globals such files need
(:data:`ALLOWED_NAMES`) and nothing that can run code:

``argparse.Namespace``
    a plain attribute bag: rebuilt with ``object.__new__`` and ``__dict__.update`` (no
    ``__setstate__``/``__init__`` runs).
``numpy.dtype`` (numpy 1 and 2 pickle dtypes under this name)
    bound to :func:`_numeric_dtype`, which builds only plain numeric dtypes from their two-letter
    code (``'f8'``, ``'i8'``, ``'b1'``...): no object, structured or string dtypes.
``numpy._core.multiarray.scalar`` (numpy 2) and ``numpy.core.multiarray.scalar`` (numpy 1)
    bound to :func:`_numeric_scalar`: a numeric scalar from a numeric dtype and its raw bytes.
the concrete dtype classes (``numpy.dtypes.Float64DType``, ``Int64DType``, ...)
    the unpickler restores a dtype's byte order with ``dtype.__setstate__`` (numpy's C code), which
    it allows only on allow-listed types; calling these classes makes a numeric dtype, nothing more.
``torch.device``
    only when this torch's default list lacks it (it has it since 2.4).

Every other global (``os.system``, ``builtins.eval``, a training script's own classes...) is still
refused: without ``trust_checkpoint`` :class:`TrustRequired` names the file, the global(s) and the
flag; with it the file is loaded with ``weights_only=False`` (logged), which runs the pickle's code.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
import zipfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import ModelLoadError

log = logging.getLogger(__name__)

TRUST_FLAG = "--trust-checkpoint"
_NUMERIC_KINDS = "biufc"
_DTYPE_CODE = re.compile(r"^[<>=|]?[biufc]\d{1,2}$")


class TrustRequired(ModelLoadError):
    """The checkpoint's pickle names a global outside the allow-list; loading it needs trust.

    ``path``: the file; ``global_name``: the first offending global (``module.name``);
    ``global_names``: all of them that could be listed. Callers (the app) can ask the user and
    retry with ``trust_checkpoint=True``.
    """

    def __init__(self, path: str | Path, global_name: str, global_names: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.global_name = global_name
        self.global_names = tuple(dict.fromkeys([global_name, *global_names]))
        names = ", ".join(self.global_names)
        super().__init__(
            f"{self.path}: the checkpoint pickles {names}, which the safe loader (weights_only=True) refuses; "
            f"pass trust_checkpoint=True (CLI: {TRUST_FLAG}) only if you trust where the file came from: "
            f"loading it runs arbitrary Python code from the pickle"
        )


def _numeric_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``numpy.dtype`` for pickles: only plain numeric dtypes (``'f8'``, ``'<i8'``, ``'b1'``...)."""
    if not isinstance(spec, str) or not _DTYPE_CODE.match(spec):
        raise pickle.UnpicklingError(f"GLOBAL numpy.dtype[{spec!r}] refused: not a plain numeric dtype")
    return np.dtype(spec, bool(align), bool(copy))


def _numeric_scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy...multiarray.scalar`` for pickles: a numeric scalar from its dtype and raw bytes."""
    if (not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.hasobject
            or dtype.fields is not None or not isinstance(data, bytes)):
        raise pickle.UnpicklingError(f"GLOBAL numpy.scalar[{getattr(dtype, 'str', type(dtype).__name__)!r}] "
                                     "refused: not a plain numeric scalar")
    return _numpy_scalar()(dtype, data)


def _numpy_scalar() -> Callable[..., Any]:
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


def _torch_allows_device() -> bool:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return "torch.device" in _get_allowed_globals()
    except (ImportError, AttributeError):  # pragma: no cover - another torch layout: add it ourselves
        return False


@lru_cache(maxsize=1)
def allowed_globals() -> tuple[Any, ...]:
    """The allow-list as ``torch.serialization.safe_globals`` takes it (objects or ``(object, name)``)."""
    entries: list[Any] = [
        argparse.Namespace,
        (_numeric_dtype, "numpy.dtype"),
        (_numeric_scalar, "numpy._core.multiarray.scalar"),
        (_numeric_scalar, "numpy.core.multiarray.scalar"),
    ]
    codes = np.typecodes["AllInteger"] + np.typecodes["AllFloat"] + "?"
    entries += sorted({type(np.dtype(c)) for c in codes}, key=lambda t: t.__qualname__)
    if not _torch_allows_device():
        entries.append(torch.device)  # pragma: no cover - torch >= 2.4 allows it by default
    return tuple(entries)


def _entry_name(entry: Any) -> str:
    return entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"


ALLOWED_NAMES: tuple[str, ...] = tuple(_entry_name(e) for e in allowed_globals())


def safe_torch_load(path: Path, trust_checkpoint: bool = False, extra_globals: Sequence[Any] = ()) -> Any:
    """``torch.load`` onto the CPU with ``weights_only=True`` and the allow-list (for this call only).

    A refused global raises :class:`TrustRequired` unless ``trust_checkpoint``; then the file is
    loaded with ``weights_only=False`` (a warning is logged). Unreadable files raise
    :class:`ModelLoadError` naming the file.
    """
    try:
        with torch.serialization.safe_globals([*allowed_globals(), *extra_globals]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = refused_global(str(exc))
        if name is None:
            raise _unreadable(path, exc) from exc
        if not trust_checkpoint:
            raise TrustRequired(path, name, _all_refused(path, extra_globals)) from exc
        log.warning("%s: loading with weights_only=False because trust_checkpoint=True (it pickles %s)", path, name)
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - anything an arbitrary pickle raises
            raise ModelLoadError(f"{path}: could not unpickle even with trust_checkpoint=True: {exc2}") from exc2
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise _unreadable(path, exc) from exc


def refused_global(message: str) -> str | None:
    """The global a weights-only ``UnpicklingError`` message refuses (``module.name``), else ``None``."""
    m = re.search(r"GLOBAL ([\w.]+(?:\[[^\]]*\])?)", message)
    if m:
        name = m.group(1)
        return name if "." in name else f"builtins.{name}"  # torch prints builtins without the module
    m = re.search(r"(?:Can only build|Can only create new object|unrecognized function).*?<class '([\w.]+)'>",
                  message, re.S)
    return m.group(1) if m else None


def refused_globals(path: str | Path, extra_globals: Sequence[Any] = ()) -> list[str] | None:
    """The globals the pickle of ``path`` names outside torch's and our allow-lists, found by scanning
    its opcodes (nothing is unpickled, no tensor is read): ``[]`` when it loads without trust,
    ``None`` when the file cannot be scanned (TorchScript, corrupt, an unusual pickle) — then only
    loading it tells."""
    from torch import _weights_only_unpickler as wou

    try:
        with torch.serialization.safe_globals([*allowed_globals(), *extra_globals]):
            if zipfile.is_zipfile(path):
                return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
            found: set[str] = set()
            with open(path, "rb") as f:  # legacy format: magic number, protocol, sys info, then the object
                for _ in range(4):
                    found |= wou.get_globals_in_pkl(f)
            safe = set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())
            return sorted(found - safe)
    except Exception:  # noqa: BLE001 - anything a damaged or unusual file raises: "cannot tell"
        return None


def check_trust(path: str | Path, trust_checkpoint: bool = False) -> None:
    """Raise :class:`TrustRequired` if ``path`` cannot load without trust, without loading it (a scan:
    cheap enough to ask the user before any work starts). Files that cannot be scanned pass; the
    loader still refuses them if they need trust."""
    if trust_checkpoint:
        return
    names = refused_globals(path)
    if names:
        raise TrustRequired(path, names[0], names)


def _all_refused(path: Path, extra_globals: Sequence[Any]) -> list[str]:
    """Every global of the checkpoint outside the allow-lists (best effort, for the message)."""
    return refused_globals(path, extra_globals) or []


def _unreadable(path: Path, exc: BaseException) -> ModelLoadError:
    msg = str(exc).split("WeightsUnpickler error:", 1)[-1]
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    detail = lines[0] if lines else type(exc).__name__
    return ModelLoadError(f"{path}: not a readable PyTorch checkpoint (corrupt, truncated or another file type): "
                          f"{detail[:200]}; re-download or re-save the file")
