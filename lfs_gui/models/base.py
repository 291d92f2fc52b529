"""The embedding-model interface and its declared preprocessing.

An :class:`EmbeddingModel` maps images to L2-normalised embeddings. It declares its
:class:`Preprocessing` (resize rule, centre crop, mean/std) so that a heat map computed in the
model-input frame can be mapped back onto the original image (:meth:`Preprocessing.crop_box`),
never stretched over it. Models that end in ``conv features -> global average pooling -> affine head``
expose that split (:meth:`EmbeddingModel.forward_features`, :meth:`EmbeddingModel.forward_head`,
:meth:`EmbeddingModel.linear_head`) for the gradient and decomposition baselines.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..device import autocast

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ModelLoadError(ValueError):
    """A checkpoint could not be loaded; the message names the file and the fix."""


class FeaturesUnavailable(NotImplementedError):
    """The model exposes no conv feature map (e.g. a TorchScript file without a split)."""


@dataclass(frozen=True)
class Preprocessing:
    """torchvision-style test transform: ``Resize(resize) -> CenterCrop(input_size) -> Normalize``.

    ``resize`` is the target of the *shorter* side (torchvision ``Resize(int)``); ``None`` means the
    whole image is resized to ``input_size x input_size`` (no crop; aspect ratio not kept, as the
    model itself sees it).
    """

    input_size: int = 224
    resize: int | None = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) after the resize step, with torchvision's rounding for ``Resize(int)``."""
        if self.resize is None:
            return self.input_size, self.input_size
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.resize, int(self.resize * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Region ``(x0, y0, x1, y1)`` of the original image (pixels, floats) the model input covers.

        May extend past the image when the crop is larger than the resized image (torchvision pads
        with zeros there).
        """
        rw, rh = self.resized_size(width, height)
        c = self.input_size
        left = int(round((rw - c) / 2.0))
        top = int(round((rh - c) / 2.0))
        sx, sy = width / rw, height / rh
        return left * sx, top * sy, (left + c) * sx, (top + c) * sy

    def to_input_coords(self, x: float, y: float, width: int, height: int) -> tuple[float, float]:
        """Original-image pixel ``(x, y)`` -> model-input pixel."""
        x0, y0, x1, y1 = self.crop_box(width, height)
        c = self.input_size
        return (x - x0) * c / (x1 - x0), (y - y0) * c / (y1 - y0)

    def to_original_coords(self, u: float, v: float, width: int, height: int) -> tuple[float, float]:
        """Model-input pixel ``(u, v)`` -> original-image pixel."""
        x0, y0, x1, y1 = self.crop_box(width, height)
        c = self.input_size
        return x0 + u * (x1 - x0) / c, y0 + v * (y1 - y0) / c

    def resize_crop(self, img: Image.Image) -> Image.Image:
        """The RGB view the model sees, before normalisation (``input_size`` square)."""
        img = img.convert("RGB")
        rw, rh = self.resized_size(*img.size)
        img = img.resize((rw, rh), Image.BILINEAR)
        if self.resize is None:
            return img
        c = self.input_size
        left = int(round((rw - c) / 2.0))
        top = int(round((rh - c) / 2.0))
        return img.crop((left, top, left + c, top + c))

    def to_tensor(self, img: Image.Image) -> torch.Tensor:
        """(3, input_size, input_size) float32, normalised."""
        arr = np.asarray(self.resize_crop(img), dtype=np.float32) / 255.0
        t = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        return (t - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of the normalisation: (..., 3, H, W) -> RGB in [0, 1] (not clamped)."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
        return x * std + mean

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(
            input_size=int(d["input_size"]),
            resize=None if d.get("resize") is None else int(d["resize"]),
            mean=tuple(float(v) for v in d.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
        )


@dataclass
class EmbeddingModel(ABC):
    """A model that maps images to L2-normalised embeddings (eval mode; loaded on the CPU, then moved).

    Subclasses set ``module`` (the ``torch.nn.Module``), ``dim``, ``preprocessing``, ``name`` and
    ``source`` (file it was loaded from, or a package name) and implement :meth:`forward_features`
    and :meth:`forward_head`; models without a feature split override :meth:`embed_tensor` and raise
    :class:`FeaturesUnavailable` from :meth:`forward_features`.
    """

    module: torch.nn.Module
    dim: int
    preprocessing: Preprocessing
    name: str
    source: str = ""
    _identity: str | None = field(default=None, repr=False)

    # -- the split used by gradient/decomposition baselines --------------------------------
    @abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input (B, 3, H, W) -> last conv feature map (B, C, h, w)."""

    @abstractmethod
    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        """Feature map (B, C, h, w) -> unnormalised embedding (B, dim) (pooling included)."""

    def linear_head(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(W, b)`` with ``forward_head(f) == W @ mean_hw(f) + b`` (eval mode), else ``None``.

        Used by the similarity-decomposition baseline; batch-norm after the linear layer is folded in.
        """
        return None

    # -- where it runs (lfs_gui.device decides; checkpoints are read onto the CPU, then moved) ------
    @property
    def device(self) -> torch.device:
        """The device of the model's parameters (CPU for a parameter-free module)."""
        for t in self.module.parameters():
            return t.device
        for t in self.module.buffers():
            return t.device
        return torch.device("cpu")

    def to(self, device: torch.device | str) -> "EmbeddingModel":
        """Move the model to ``device`` (in place; returns ``self``). Inputs must be moved by the caller."""
        self.module.to(torch.device(device))
        return self

    # -- embedding ---------------------------------------------------------------------------
    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input (B, 3, H, W) -> L2-normalised embedding (B, dim). Differentiable."""
        return F.normalize(self.forward_head(self.forward_features(x)), dim=1)

    def embed_batch(self, x: torch.Tensor, amp: bool = False) -> np.ndarray:
        """Normalised input batch (B, 3, H, W) -> (B, dim) float32 C-contiguous, L2-normalised.

        The one place embedding crosses devices: ``x`` (on any device) is moved to the model's
        device; ``amp`` runs the forward in mixed precision on an accelerator
        (:func:`lfs_gui.device.autocast`; ignored on the CPU); the output is renormalised in float32
        on the way back, so stored embeddings are float32 unit vectors whatever computed them.
        """
        with torch.inference_mode(), autocast(self.device, amp):
            out = self.embed_tensor(x.to(self.device, non_blocking=True))
        out = F.normalize(out.float(), dim=1).cpu()
        return np.ascontiguousarray(out.numpy(), dtype=np.float32)

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 16, amp: bool = False) -> np.ndarray:
        """PIL images -> (B, dim) float32 C-contiguous, L2-normalised (on the model's device)."""
        out = [self.embed_batch(torch.stack([self.preprocessing.to_tensor(im) for im in images[i : i + batch_size]]),
                                amp=amp)
               for i in range(0, len(images), max(1, batch_size))]
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    # -- identity for caches and index sidecars ------------------------------------------------
    def identity(self) -> str:
        """Stable hash of class, preprocessing and weights (changes when any of them does)."""
        if self._identity is None:
            h = hashlib.sha256()
            h.update(type(self).__name__.encode())
            h.update(repr(sorted(self.preprocessing.to_dict().items())).encode())
            for k, v in self.module.state_dict().items():
                h.update(k.encode())
                t = v.detach().cpu().contiguous()
                h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
            self._identity = f"{self.name}:{h.hexdigest()[:16]}"
        return self._identity

    def describe(self) -> dict:
        """Small JSON-able summary (for status bars, sidecars and ``demo --check``)."""
        return {
            "name": self.name,
            "class": type(self).__name__,
            "dim": self.dim,
            "source": self.source,
            "identity": self.identity(),
            "preprocessing": self.preprocessing.to_dict(),
        }


class PooledHeadEmbedder(EmbeddingModel):
    """For a ``module`` with ``features(x) -> (B, C, h, w)`` and a ``head`` that is an ``nn.Linear`` on
    the pooled features (or ``nn.Identity``): features -> global average pooling -> head."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.module.features(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.module.head(global_avg_pool(fmap))

    def linear_head(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        head = self.module.head
        if isinstance(head, torch.nn.Linear):
            return head.weight.detach().clone(), None if head.bias is None else head.bias.detach().clone()
        return torch.eye(self.dim), None  # identity head: the embedding is the pooled features


def global_avg_pool(fmap: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, C)."""
    return fmap.mean(dim=(2, 3))


def check_finite(name: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():
        raise ModelLoadError(f"{name}: contains NaN or inf values")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (float64 accumulation)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = math.sqrt(float(a @ a)), math.sqrt(float(b @ b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a @ b / (na * nb))
