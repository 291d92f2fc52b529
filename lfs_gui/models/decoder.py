"""Decoders g: embedding -> image, the inverse map ExplainLFS perturbs through.

Two architectures:

* :class:`DenseDecoder` — the paper's decoder (Bello et al. 2024, §3.1, Fig. 3): one dense layer
  N -> 3·S·S with no hidden layer (S = 40 in the paper), output squashed to [0, 1] by a sigmoid
  (or clamped). For a clamped dense decoder ExplainLFS' heat is image-independent
  (|W·R·p|, see docs/FINDINGS.md); the sigmoid makes it depend on the image through saturation.
* :class:`ConvDecoder` — a small DCGAN-style upsampling decoder (dense -> 4×4 map -> transposed
  convolutions) that reconstructs better at 64 px with fewer parameters than a dense layer.

A decoder file (``torch.save`` of a plain dict, loaded with ``weights_only=True``) holds::

    {"format": "lfs-gui-decoder", "version": 1, "kind": "dense"|"conv", "dim": N, "size": S,
     "config": {...constructor kwargs...}, "state_dict": {...}, "meta": {...training report...}}
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lfs_gui.device import resolve_device
from lfs_gui.jobs import atomic_path
from lfs_gui.models.base import ModelLoadError

log = logging.getLogger(__name__)

DECODER_FORMAT = "lfs-gui-decoder"
DECODER_VERSION = 1


class Decoder(nn.Module):
    """Base: ``forward(h: (B, dim)) -> (B, 3, size, size)`` in [0, 1]."""

    kind = "base"

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        if dim <= 0 or size <= 0:
            raise ValueError(f"decoder needs dim > 0 and size > 0, got dim={dim}, size={size}")
        self.dim = int(dim)
        self.size = int(size)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "size": self.size}


class DenseDecoder(Decoder):
    """The paper's decoder: a single dense layer N -> 3·S·S (no hidden layer)."""

    kind = "dense"

    def __init__(self, dim: int, size: int = 40, output: str = "sigmoid") -> None:
        super().__init__(dim, size)
        if output not in ("sigmoid", "clamp"):
            raise ValueError(f"output must be 'sigmoid' or 'clamp', got {output!r}")
        self.output = output
        self.linear = nn.Linear(dim, 3 * size * size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.linear(h).view(-1, 3, self.size, self.size)
        return torch.sigmoid(y) if self.output == "sigmoid" else y.clamp(0.0, 1.0)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "output": self.output}


class ConvDecoder(Decoder):
    """Dense projection to a 4×4 map, then stride-2 transposed convolutions up to ``size``.

    ``size`` must be 4·2^k (32, 64, 128). Sigmoid output.
    """

    kind = "conv"

    def __init__(self, dim: int, size: int = 64, width: int = 128) -> None:
        super().__init__(dim, size)
        n_up = math.log2(size / 4)
        if n_up != int(n_up) or n_up < 1:
            raise ValueError(f"ConvDecoder size must be 4·2^k (e.g. 32, 64, 128), got {size}")
        self.width = int(width)
        self.project = nn.Sequential(nn.Linear(dim, width * 16), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        ch = width
        for i in range(int(n_up)):
            out = 3 if i == int(n_up) - 1 else max(ch // 2, 16)
            layers.append(nn.ConvTranspose2d(ch, out, kernel_size=4, stride=2, padding=1))
            if out != 3:
                layers += [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            ch = out
        self.up = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.project(h).view(-1, self.width, 4, 4)
        return torch.sigmoid(self.up(x))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "width": self.width}


DECODERS: dict[str, type[Decoder]] = {"dense": DenseDecoder, "conv": ConvDecoder}


def make_decoder(kind: str, dim: int, size: int | None = None, **kwargs: Any) -> Decoder:
    """Build a decoder by name (``dense`` default S=40, ``conv`` default S=64)."""
    try:
        cls = DECODERS[kind]
    except KeyError:
        raise ValueError(f"unknown decoder kind {kind!r}; choose one of {sorted(DECODERS)}") from None
    if size is not None:
        kwargs["size"] = size
    return cls(dim, **kwargs)


def save_decoder(path: str | Path, decoder: Decoder, meta: dict[str, Any] | None = None) -> Path:
    """Write a decoder file atomically (temp file + rename)."""
    path = Path(path)
    payload = {
        "format": DECODER_FORMAT,
        "version": DECODER_VERSION,
        "kind": decoder.kind,
        "dim": decoder.dim,
        "size": decoder.size,
        "config": decoder.config(),
        "state_dict": {k: v.detach().cpu() for k, v in decoder.state_dict().items()},
        "meta": dict(meta or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_decoder(path: str | Path, expected_dim: int | None = None, expected_size: int | None = None,
                 device: str | torch.device | None = None) -> Decoder:
    """Load a decoder file (``weights_only=True``, onto the CPU), validating format, dimension and
    image size, then move it to ``device`` (``None``: stays on the CPU).

    Raises :class:`ModelLoadError` naming the file and the fix (:class:`~lfs_gui.device.DeviceError`
    for a device this machine lacks).
    """
    target = torch.device("cpu") if device is None else resolve_device(device)
    path = Path(path)
    fix = "train one with `lfs-gui train-decoder INDEX --out FILE`"
    if not path.is_file():
        raise ModelLoadError(f"{path}: decoder file not found; {fix}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with globals, not a torch file ...
        raise ModelLoadError(f"{path}: not a readable decoder file ({exc.__class__.__name__}: {exc}); {fix}") from exc
    if not isinstance(payload, dict) or payload.get("format") != DECODER_FORMAT:
        raise ModelLoadError(f"{path}: not an lfs-gui decoder file (missing format tag); {fix}")
    if int(payload.get("version", -1)) > DECODER_VERSION:
        raise ModelLoadError(f"{path}: decoder format version {payload.get('version')} is newer than this lfs-gui; upgrade")
    kind, dim, size = payload.get("kind"), int(payload.get("dim", -1)), int(payload.get("size", -1))
    if expected_dim is not None and dim != expected_dim:
        raise ModelLoadError(
            f"{path}: decoder expects {dim}-d embeddings but the model gives {expected_dim}-d; "
            f"use the decoder trained for this model or {fix}"
        )
    if expected_size is not None and size != expected_size:
        raise ModelLoadError(f"{path}: decoder outputs {size}px images, {expected_size}px were asked for; {fix}")
    config = dict(payload.get("config", {}))
    config.pop("dim", None)
    try:
        decoder = make_decoder(str(kind), dim, **config)
        decoder.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path}: decoder weights do not match its declared architecture ({exc}); {fix}") from exc
    decoder.meta = dict(payload.get("meta", {}))  # type: ignore[attr-defined]
    decoder.source = str(path)  # type: ignore[attr-defined]
    decoder.eval()
    return decoder.to(target)
