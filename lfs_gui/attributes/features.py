"""The frozen feature maps of a gallery, computed once and cached, so attribute training is cheap on a CPU.

The attribute head (:mod:`lfs_gui.attributes.predictor`) reads the embedding model's last conv map,
and the model stays frozen, so every training epoch would recompute the same maps: they are computed
once (one forward per image, in batches: a generator yielding Progress, each yield a cancel point)
and kept as float16. Wide maps are reduced to ``reduce_to`` channels by PCA fitted on the first
``fit_images`` images (all locations): a CUB test half at 2048 channels would take 1.2 GB, at 256
channels 150 MB. The projection is linear, so the trained 1×1 conv absorbs it on save.

Cache: one ``.npz`` per (model identity, input size, reduction, file list + sizes + mtimes) under
``<user cache>/attribute-features/``; a changed image file or model makes a new entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lfs_gui.jobs import Progress, atomic_path
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class FeatureMaps:
    """``maps`` (N, r, h, w) float16 = ``proj``ᵀ (f − ``mean``) per location (or f itself when ``proj``
    is None); ``ok[i]`` False for files that could not be decoded (their maps are zeros)."""

    maps: np.ndarray
    ok: np.ndarray
    in_channels: int
    proj: np.ndarray | None = None
    mean: np.ndarray | None = None
    from_cache: bool = False


def _cache_file(model: EmbeddingModel, paths: Sequence[Path], reduce_to: int, fit_images: int) -> Path:
    from lfs_gui.paths import user_cache_dir

    h = hashlib.sha256(f"v{CACHE_VERSION}\n{model.identity()}\n{model.preprocessing.to_dict()}\n{reduce_to}\n{fit_images}\n".encode())
    for p in paths:
        try:
            st = os.stat(p)
            sig = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            sig = "missing"
        h.update(os.fsencode(p) + f"|{sig}\n".encode())
    return user_cache_dir() / "attribute-features" / f"features-{h.hexdigest()[:32]}.npz"


def _read_cache(path: Path, n: int) -> FeatureMaps | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            maps, ok, c = z["maps"], z["ok"], int(z["in_channels"])
            proj = z["proj"] if "proj" in z.files else None
            mean = z["mean"] if "mean" in z.files else None
    except Exception as exc:  # noqa: BLE001 - a damaged cache is recomputed
        log.warning("%s: unreadable feature cache (%s); recomputing", path, exc)
        return None
    if maps.ndim != 4 or maps.shape[0] != n or ok.shape != (n,):
        log.warning("%s: feature cache has the wrong shape; recomputing", path)
        return None
    return FeatureMaps(maps, ok.astype(bool), c, proj, mean, from_cache=True)


def _write_cache(path: Path, fm: FeatureMaps) -> None:
    arrays = {"maps": fm.maps, "ok": fm.ok, "in_channels": np.array(fm.in_channels)}
    if fm.proj is not None:
        arrays.update(proj=fm.proj, mean=fm.mean)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    except OSError as exc:  # a cache that cannot be written only costs time
        log.warning("%s: cannot write the feature cache (%s)", path, exc)


def fit_pca(raw: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` principal directions of location vectors ``raw`` (M, C): (proj (C, k), mean (C,))."""
    x = raw.double()
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / max(1, x.shape[0] - 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    proj = vecs[:, -k:].flip(1)
    return proj.float().numpy(), mean.float().numpy()


def _project(f: torch.Tensor, proj: np.ndarray | None, mean: np.ndarray | None) -> np.ndarray:
    """(B, C, h, w) -> (B, r, h, w) float16."""
    if proj is not None:
        p = torch.from_numpy(proj).to(f.dtype)
        m = torch.from_numpy(mean).to(f.dtype).view(1, -1, 1, 1)
        f = torch.einsum("bchw,cr->brhw", f - m, p)
    return f.numpy().astype(np.float16)


def iter_feature_maps(model: EmbeddingModel, paths: Sequence[str | Path], batch: int = 16, reduce_to: int = 256,
                      fit_images: int = 64, use_cache: bool = True) -> Generator[Progress, None, FeatureMaps]:
    """Feature maps of every image in ``paths`` (see the module docstring); a generator of Progress."""
    from lfs_gui.data.images import load_rgb

    paths = [Path(p) for p in paths]
    n = len(paths)
    if n == 0:
        raise ValueError("no images to compute feature maps for")
    cache = _cache_file(model, paths, reduce_to, fit_images)
    if use_cache and cache.is_file():
        fm = _read_cache(cache, n)
        if fm is not None:
            yield Progress(n, n, f"features: {n} images from the cache")
            return fm
    pre, dev = model.preprocessing, model.device
    maps: np.ndarray | None = None
    ok = np.zeros(n, bool)
    held: list[tuple[int, torch.Tensor]] = []  # raw maps kept until the PCA is fitted
    proj = mean = None
    channels = 0
    for start in range(0, n, batch):
        xs, idx = [], []
        for i in range(start, min(n, start + batch)):
            try:
                xs.append(pre.to_tensor(load_rgb(paths[i])))
                idx.append(i)
                ok[i] = True
            except Exception as exc:  # noqa: BLE001 - an undecodable file is skipped, not fatal
                log.warning("%s: cannot be decoded (%s); left out of attribute training", paths[i], exc)
        if xs:
            with torch.inference_mode():
                f = model.forward_features(torch.stack(xs).to(dev)).float().cpu()
            channels = int(f.shape[1])
            if maps is None:
                r = min(reduce_to, channels) if reduce_to > 0 else channels
                maps = np.zeros((n, r, f.shape[2], f.shape[3]), np.float16)
            if maps.shape[1] < channels and proj is None:
                held.extend(zip(idx, f))
                if len(held) >= fit_images or start + batch >= n:
                    raw = torch.stack([t for _, t in held])  # (m, C, h, w)
                    proj, mean = fit_pca(raw.permute(0, 2, 3, 1).reshape(-1, channels), maps.shape[1])
                    maps[[i for i, _ in held]] = _project(raw, proj, mean)
                    held = []
            else:
                maps[idx] = _project(f, proj, mean)
        yield Progress(min(n, start + batch), n, f"features: {min(n, start + batch)}/{n} images")
    if maps is None:
        raise ValueError(f"none of the {n} images could be decoded (e.g. {paths[0]})")
    fm = FeatureMaps(maps, ok, channels, proj, mean)
    if use_cache:
        _write_cache(cache, fm)
    return fm
