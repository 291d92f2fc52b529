"""Embed a gallery of image files in batches, robust to bad files, with an optional on-disk cache.

:func:`iter_embed_paths` is a generator (see :mod:`lfs_gui.jobs`): it yields :class:`Progress` per
batch and returns an :class:`EmbedResult`. Images are decoded with PIL in a ``torch`` ``DataLoader``
(optionally with worker processes); a file that cannot be decoded is skipped and reported, never
fatal. Decoding normalises odd modes (CMYK, 16-bit, greyscale, palette, alpha) to 8-bit RGB and
applies the EXIF orientation, so the model sees the photo upright (use :func:`load_rgb` to display
the same pixels the model saw).

The cache (``cache_dir``; never the images' own folder) holds one ``.npz`` per (model identity,
file list); it also stores a signature of the files' sizes and mtimes, so a changed file makes the
entry stale and it is recomputed. A corrupt cache file is recomputed with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..jobs import Progress, atomic_path, run_generator
from .images import load_rgb, upright_size  # noqa: F401 - re-exported: the decoder the model uses
from ..models.base import EmbeddingModel, Preprocessing

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class EmbedResult:
    """``embeddings[j]`` belongs to the j-th path whose ``ok`` is True; ``failures`` = (path, reason)."""

    embeddings: np.ndarray
    ok: np.ndarray
    failures: list[tuple[Path, str]] = field(default_factory=list)
    from_cache: bool = False

    def ok_paths(self, paths: Sequence[str | os.PathLike]) -> list[Path]:
        """The paths that have an embedding, in ``embeddings`` order."""
        return [Path(p) for p, good in zip(paths, self.ok) if good]


class _ImageFiles(Dataset):
    """``(index, tensor, ok, reason)`` per path; failures give a zero tensor and the reason."""

    def __init__(self, paths: Sequence[Path], pre: Preprocessing) -> None:
        self.paths = list(paths)
        self.pre = pre

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, bool, str]:
        try:
            return i, self.pre.to_tensor(load_rgb(self.paths[i])), True, ""
        except Exception as exc:  # noqa: BLE001 - any decoder error means "skip this file"
            reason = f"{type(exc).__name__}: {exc}".strip()[:300]
            size = self.pre.input_size
            return i, torch.zeros(3, size, size), False, reason


def _cache_file(cache_dir: Path, model: EmbeddingModel, paths: Sequence[Path]) -> Path:
    h = hashlib.sha256(f"v{CACHE_VERSION}\n{model.identity()}\n".encode())
    for p in paths:
        h.update(os.fsencode(p) + b"\n")
    return cache_dir / f"embed-{h.hexdigest()[:32]}.npz"


def _signature(paths: Sequence[Path]) -> str:
    """Hash of every file's size and mtime (``missing`` for absent files)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(b"missing\n")
    return h.hexdigest()


def _read_cache(file: Path, signature: str, n: int, dim: int) -> EmbedResult | None:
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            if str(z["signature"]) != signature:
                log.info("embedding cache %s is stale (files changed); recomputing", file)
                return None
            emb = np.ascontiguousarray(z["embeddings"], dtype=np.float32)
            ok = z["ok"].astype(bool)
            failures = [(Path(str(p)), str(r)) for p, r in zip(z["failed_paths"], z["failed_reasons"])]
    except Exception as exc:  # noqa: BLE001 - zip/npy/key errors all mean "corrupt"
        log.warning("embedding cache %s is unreadable (%s); recomputing", file, exc)
        return None
    if ok.shape != (n,) or emb.shape != (int(ok.sum()), dim):
        log.warning("embedding cache %s has inconsistent shapes; recomputing", file)
        return None
    return EmbedResult(emb, ok, failures, from_cache=True)


def _write_cache(file: Path, signature: str, res: EmbedResult) -> None:
    try:
        with atomic_path(file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, embeddings=res.embeddings, ok=res.ok, signature=np.array(signature),
                     failed_paths=np.array([str(p) for p, _ in res.failures], dtype=str),
                     failed_reasons=np.array([r for _, r in res.failures], dtype=str))
    except OSError as exc:
        log.warning("could not write embedding cache %s: %s", file, exc)


def iter_embed_paths(
    model: EmbeddingModel,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> Generator[Progress, None, EmbedResult]:
    """Embed ``paths`` with ``model``; yields :class:`Progress` per batch, returns :class:`EmbedResult`.

    Each ``yield`` is a cancel point (closing the generator stops the loader's workers).
    """
    plist = [Path(os.path.abspath(p)) for p in paths]
    n = len(plist)
    cache_file: Path | None = None
    signature = ""
    if cache_dir is not None:
        cdir = Path(os.path.abspath(cache_dir))
        if any(p.parent == cdir for p in plist):
            raise ValueError(f"cache_dir {cdir} is an image folder; caches never go next to the images")
        cache_file = _cache_file(cdir, model, plist)
        signature = _signature(plist)
        cached = _read_cache(cache_file, signature, n, model.dim)
        if cached is not None:
            log.info("embeddings for %d images loaded from %s", n, cache_file)
            yield Progress(n, n, "loaded embeddings from cache")
            return cached

    yield Progress(0, n, f"embedding {n} images")
    ok = np.zeros(n, dtype=bool)
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    failures: dict[int, str] = {}
    loader = DataLoader(_ImageFiles(plist, model.preprocessing), batch_size=max(1, batch_size), shuffle=False,
                        num_workers=max(0, num_workers), collate_fn=_collate)
    done = 0
    it = iter(loader)
    try:
        for idx, x, good, reasons in it:
            for i, g, r in zip(idx.tolist(), good.tolist(), reasons):
                if not g:
                    failures[i] = r
                    log.warning("skipping %s: %s", plist[i], r)
            if good.any():
                with torch.inference_mode():  # exited before the yield: grad mode must not leak out
                    emb = model.embed_batch(x[good])  # to the model's device and back as float32
                chunks.append((idx[good].numpy(), emb))
                ok[idx[good].numpy()] = True
            done += len(idx)
            yield Progress(done, n, f"embedded {done}/{n} images")
    finally:
        del it  # shuts worker processes down at once when the consumer stops early

    if chunks:
        order = np.concatenate([c[0] for c in chunks])
        emb_all = np.concatenate([c[1] for c in chunks])
        emb_all = emb_all[np.argsort(order, kind="stable")]
    else:
        emb_all = np.zeros((0, model.dim), np.float32)
    res = EmbedResult(np.ascontiguousarray(emb_all, dtype=np.float32), ok,
                      [(plist[i], failures[i]) for i in sorted(failures)])
    if cache_file is not None:
        _write_cache(cache_file, signature, res)
    return res


def _collate(items: list[tuple[int, torch.Tensor, bool, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    idx, xs, good, reasons = zip(*items)
    return torch.tensor(idx), torch.stack(xs), torch.tensor(good, dtype=torch.bool), list(reasons)


def embed_paths(
    model: EmbeddingModel,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    on_progress: Callable[[Any], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> EmbedResult:
    """Blocking wrapper around :func:`iter_embed_paths` (raises ``Cancelled`` when cancelled)."""
    return run_generator(iter_embed_paths(model, paths, batch_size, num_workers, cache_dir),
                         on_item=on_progress, should_cancel=should_cancel)
