"""Training a decoder g on (embedding, image) pairs, independent of the embedding model.

The target image is what the model sees — ``Preprocessing.resize_crop`` of the original — scaled
to S×S, so the decoder's output (and so every heat map) lives in the model-input frame
(docs/DESIGN.md, "Coordinates"). The loss is the paper's Eq. 1, Σ‖x − g(h)‖² per image, averaged over
the batch; reports give the per-pixel MSE, for training and a held-out validation split.

Training is a generator (``iter_train_decoder``): it yields an :class:`EpochReport` per epoch
(cancel by closing it) and returns a :class:`TrainResult`. :func:`decoder_target` is the model's view of one
image; :func:`lfs_gui.data.decoder_targets.iter_decoder_targets` prepares a gallery's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from lfs_gui.device import resolve_device
from lfs_gui.jobs import Progress
from lfs_gui.models.base import Preprocessing
from lfs_gui.models.decoder import Decoder, make_decoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochReport(Progress):
    """Progress of one finished epoch (``done``/``total`` epochs) with its losses."""

    train_mse: float = float("nan")
    val_mse: float = float("nan")


@dataclass
class TrainResult:
    decoder: Decoder
    history: list[EpochReport] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    seconds: float = 0.0
    best_epoch: int | None = None

    def _final(self) -> EpochReport | None:
        if not self.history:
            return None
        return self.history[self.best_epoch - 1] if self.best_epoch else self.history[-1]

    @property
    def final_val_mse(self) -> float:
        r = self._final()
        return r.val_mse if r else float("nan")

    @property
    def final_train_mse(self) -> float:
        r = self._final()
        return r.train_mse if r else float("nan")

    def meta(self) -> dict:
        """Training report stored in the decoder file."""
        return {
            "epochs": len(self.history),
            "best_epoch": self.best_epoch,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "train_mse": self.final_train_mse,
            "val_mse": self.final_val_mse,
            "seconds": round(self.seconds, 2),
        }


def decoder_target(img: Image.Image, preprocessing: Preprocessing, size: int) -> np.ndarray:
    """The model's view of ``img`` at ``size``×``size``: (3, S, S) float32 in [0, 1]."""
    view = preprocessing.resize_crop(img).resize((size, size), Image.BILINEAR)
    return np.asarray(view, dtype=np.float32).transpose(2, 0, 1) / 255.0


def decoder_targets(images: Iterable[Image.Image], preprocessing: Preprocessing, size: int) -> np.ndarray:
    """Stack of :func:`decoder_target` for several images: (M, 3, S, S)."""
    arrs = [decoder_target(im, preprocessing, size) for im in images]
    return np.stack(arrs) if arrs else np.zeros((0, 3, size, size), np.float32)


def _mse(decoder: Decoder, h: torch.Tensor, rows: Callable[[np.ndarray], torch.Tensor], idx: np.ndarray,
         batch: int = 256) -> float:
    """Per-pixel MSE of ``decoder`` on the pairs ``idx`` (``h[j]`` is the embedding of ``idx[j]``;
    ``rows`` reads their targets), a batch at a time."""
    if len(idx) == 0:
        return float("nan")
    decoder.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(idx), batch):
            x = rows(idx[i : i + batch])
            total += float(((decoder(h[i : i + batch]) - x) ** 2).sum())
            count += x.numel()
    return total / count


def iter_train_decoder(
    embeddings: np.ndarray,
    images: np.ndarray,
    kind: str = "dense",
    size: int | None = None,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 2e-3,
    optimizer: str = "adamax",
    val_fraction: float = 0.1,
    seed: int = 0,
    decoder: Decoder | None = None,
    keep_best: bool = False,
    weight_decay: float = 0.0,
    device: str | torch.device | None = None,
) -> Generator[EpochReport, None, TrainResult]:
    """Train a decoder on ``embeddings`` (M, N) → ``images`` (M, 3, S, S) in [0, 1].

    ``images`` may be a memory map (e.g. from :func:`lfs_gui.data.decoder_targets.iter_decoder_targets`):
    it is read a batch at a time and never copied whole, so the targets are held in memory once at most.

    ``optimizer`` is ``adamax`` (the paper) or ``adam``. A seeded ``val_fraction`` of the pairs is
    held out for the validation MSE reported each epoch. Pass ``decoder`` to continue training one.
    ``keep_best`` restores, at the end, the weights of the epoch with the lowest validation MSE
    (early stopping; the result's ``best_epoch`` says which). Training runs on ``device``
    (``None``: the decoder's own device, the CPU for a new one); the split, the batch order and a new
    decoder's initial weights are drawn on the CPU from ``seed``, so they do not depend on the device.
    The returned decoder stays on ``device``.
    """
    emb = np.array(embeddings, dtype=np.float32)  # copied (small); inputs are never mutated or aliased
    img = images if isinstance(images, np.ndarray) else np.asarray(images, dtype=np.float32)
    if emb.ndim != 2 or img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
        raise ValueError(f"need embeddings (M, N) and images (M, 3, S, S); got {emb.shape} and {img.shape}")
    if len(emb) != len(img):
        raise ValueError(f"{len(emb)} embeddings but {len(img)} images")
    if len(emb) < 2:
        raise ValueError("need at least 2 (embedding, image) pairs to train a decoder")
    if not (np.isfinite(emb).all() and all(np.isfinite(img[i : i + 1024]).all() for i in range(0, len(img), 1024))):
        raise ValueError("embeddings or images contain NaN/inf")
    if optimizer not in ("adamax", "adam"):
        raise ValueError(f"optimizer must be 'adamax' or 'adam', got {optimizer!r}")
    s = img.shape[2]
    if size is not None and size != s:
        raise ValueError(f"images are {s}px but size={size} was asked for")

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(emb), generator=gen)
    n_val = int(round(len(emb) * val_fraction)) if val_fraction > 0 else 0
    n_val = min(n_val, len(emb) - 1)
    val_idx, tr_idx = perm[:n_val], perm[n_val:]

    if decoder is None:
        decoder = make_decoder(kind, emb.shape[1], size=s)
    elif decoder.dim != emb.shape[1] or decoder.size != s:
        raise ValueError(f"decoder is {decoder.dim}-d → {decoder.size}px but data is {emb.shape[1]}-d → {s}px")
    target = next(decoder.parameters()).device if device is None else resolve_device(device)
    decoder.to(target)
    h_all = torch.from_numpy(emb).to(target)
    h_tr, h_val = h_all[tr_idx.to(target)], h_all[val_idx.to(target)]
    tr_np, val_np = tr_idx.numpy(), val_idx.numpy()

    def rows(idx: np.ndarray) -> torch.Tensor:
        """The targets of pairs ``idx``, read from ``images`` (only this batch is copied)."""
        return torch.from_numpy(np.ascontiguousarray(img[idx], dtype=np.float32)).to(target)

    opt_cls = torch.optim.Adamax if optimizer == "adamax" else torch.optim.Adam
    opt = opt_cls(decoder.parameters(), lr=lr, weight_decay=weight_decay)
    best: tuple[float, int, dict] | None = None
    result = TrainResult(decoder=decoder, n_train=len(tr_idx), n_val=n_val)
    t0 = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            decoder.train()
            order = torch.randperm(len(h_tr), generator=gen)
            for i in range(0, len(order), batch_size):
                b = order[i : i + batch_size]
                if len(b) < 2 and isinstance(decoder, torch.nn.Module) and decoder.kind == "conv":
                    continue  # batch-norm needs > 1 sample
                opt.zero_grad(set_to_none=True)
                x = rows(tr_np[b.numpy()])
                loss = ((decoder(h_tr[b.to(target)]) - x) ** 2).sum() / len(b)  # Eq. 1 per image
                loss.backward()
                opt.step()
            report = EpochReport(
                done=epoch,
                total=epochs,
                message=f"epoch {epoch}/{epochs}",
                train_mse=_mse(decoder, h_tr, rows, tr_np),
                val_mse=_mse(decoder, h_val, rows, val_np),
            )
            result.history.append(report)
            if keep_best and n_val and (best is None or report.val_mse < best[0]):
                best = (report.val_mse, epoch, {k: v.detach().clone() for k, v in decoder.state_dict().items()})
            log.debug("decoder %s", report)
            yield report
        if best is not None:
            decoder.load_state_dict(best[2])
            result.best_epoch = best[1]
    finally:
        decoder.eval()
        result.seconds = time.perf_counter() - t0
    return result
