"""One place decides where models, decoders and curves run: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

:func:`resolve_device` turns the user's choice (CLI ``--device``, the app's remembered setting) into a
``torch.device`` or raises :class:`DeviceError` naming the device asked for and what is available
(the CLI maps it to exit code 2). ``auto`` = CUDA if available, else MPS, else CPU.

:class:`BatchSettings` holds the batch sizes that depend on the device (small on CPU, large on an
accelerator): embedding batch, selectivity-curve chunk (steps per forward batch), RISE mask batch,
the greedy oracle's candidate batch and the image-decoding worker processes of an embedding run (none
on CPU, where the forward already uses every core; several on an accelerator, which one process
decoding JPEGs cannot keep busy). :func:`batch_defaults` gives the defaults for a device; every
field can be overridden by the caller.

CPU results are the reference: checkpoints are read onto the CPU and then moved, embeddings are stored
as float32 whatever the device computed them in, and mixed precision is only ever used for embedding
(opt-in, accelerators only).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_SPEC = re.compile(r"^(auto|cpu|mps|cuda(?::\d+)?)$")


class DeviceError(ValueError):
    """The requested device does not exist here; the message names it and what is available."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Devices usable on this machine, CPU first (``cuda:0`` ... ``cuda:N-1``, ``mps``)."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    return out


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` for ``spec`` (``None`` means ``auto``), checked against this machine."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if not _SPEC.match(spec):
        raise DeviceError(f"unknown device {spec!r}; use one of auto, cpu, cuda, cuda:N, mps "
                          f"(available here: {', '.join(available_devices())})")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise DeviceError(f"device 'mps' (Apple GPU) is not available on this machine; "
                              f"available: {', '.join(available_devices())}; use --device auto or cpu")
        return torch.device("mps")
    # cuda or cuda:N
    if not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} is not available: this PyTorch build sees no CUDA GPU "
                          f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                          f"available: {', '.join(available_devices())}; use --device auto or cpu")
    index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        raise DeviceError(f"device {spec!r} does not exist: this machine has {count} CUDA GPU(s) "
                          f"(cuda:0..cuda:{count - 1}); available: {', '.join(available_devices())}")
    return torch.device("cuda", index)


def usable_device(spec: str | None) -> str:
    """``spec`` if this machine has it, else ``"auto"`` (logged): for a remembered choice (the app's
    settings may come from another computer), which must never block a launch. Explicit requests
    (``--device``) go through :func:`resolve_device` and fail instead."""
    spec = (spec or "auto").strip().lower()
    try:
        resolve_device(spec)
    except DeviceError as exc:
        log.warning("the chosen device is not usable here (%s); using auto", exc)
        return "auto"
    return spec


def is_accelerator(device: torch.device | str) -> bool:
    return torch.device(device).type in ("cuda", "mps")


def describe_device(device: torch.device | str) -> str:
    """A short human-readable name, e.g. ``cuda:0 (NVIDIA H200)`` or ``cpu``."""
    d = torch.device(device)
    if d.type == "cuda":
        try:
            return f"{d} ({torch.cuda.get_device_name(d)})"
        except Exception:  # noqa: BLE001 - only cosmetic
            return str(d)
    return str(d)


@dataclass(frozen=True)
class BatchSettings:
    """Batch sizes that depend on the device (see :func:`batch_defaults`).

    ``embed``: images per embedding forward; ``curve_chunk``: selectivity/continuity steps per forward
    batch; ``rise_masks``: RISE masks per forward batch; ``oracle``: candidate cells per forward batch of
    the greedy oracle; ``workers``: image-decoding worker processes while embedding a gallery;
    ``amp``: mixed precision for *embedding only* (accelerators; stored embeddings stay float32).
    """

    embed: int = 32
    curve_chunk: int = 3
    rise_masks: int = 16
    oracle: int = 16
    workers: int = 0
    amp: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, **changes: Any) -> "BatchSettings":
        """A copy with the non-``None`` ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# Curves, RISE and the oracle on a CPU: more than ~4 images per forward is slower per image (bench_explainers,
# 2 cores: batch 4 at 0.9× a single forward per image, batch 16 at 1.7×; rise-sim 1.3× vs 3.0× per masked image).
_CPU = BatchSettings(embed=32, curve_chunk=3, rise_masks=2, oracle=4)
_ACCEL = BatchSettings(embed=256, curve_chunk=21, rise_masks=256, oracle=64,
                       workers=min(8, max(1, (os.cpu_count() or 2) - 1)))  # leave a core to the main process


def batch_defaults(device: torch.device | str) -> BatchSettings:
    """Default :class:`BatchSettings` for ``device`` (small on CPU, large on an accelerator)."""
    return _ACCEL if is_accelerator(device) else _CPU


def autocast(device: torch.device | str, enabled: bool):
    """Mixed-precision context for embedding on an accelerator (a no-op on CPU or when disabled)."""
    d = torch.device(device)
    if not enabled or d.type not in ("cuda", "mps"):
        import contextlib

        return contextlib.nullcontext()
    dtype = torch.bfloat16 if d.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=d.type, dtype=dtype)
