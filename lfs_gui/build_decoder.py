"""The decoder half of a build: which split it learns from, that split's embeddings, its training.

ExplainLFS's decoder maps embeddings back to images and is trained on (embedding, the model's view
of the image) pairs. The paper trains it on the training images of CUB (5 924) and Cars (8 131) and
explains the test half; :func:`default_decoder_split` does the same for the CUB and Cars layouts and
uses the indexed split for other galleries. Used by ``lfs-gui index`` (:mod:`lfs_gui.build`) and
``lfs-gui train-decoder``.

The decoder split's embeddings come from the same shard store as the index's (so they are cached,
resumable and shared with an index of that split), and its targets are prepared once, into memory or,
above :data:`TARGETS_IN_MEMORY_MAX`, into a temporary memory map next to the output: they are never
held more than once (:mod:`lfs_gui.data.decoder_targets`, :func:`iter_train_decoder`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.data.decoder_targets import iter_decoder_targets
from lfs_gui.data.embed import Embedder
from lfs_gui.data.galleries import Gallery, open_gallery
from lfs_gui.data.shards import FileRecords
from lfs_gui.jobs import Progress
from lfs_gui.models.base import Preprocessing

log = logging.getLogger(__name__)

DATASET_KINDS = ("cub-official", "cub-dml", "cars-dml", "cars-stanford")
TARGETS_IN_MEMORY_MAX = 1 << 30
TARGETS_SCRATCH = ".decoder-targets.npy.build.tmp"


def default_decoder_split(gallery: Gallery) -> str:
    """``train`` for CUB and Cars (the paper's decoder set), the gallery's own split otherwise."""
    return "train" if gallery.kind in DATASET_KINDS else gallery.split


def with_split(gallery: Gallery, split: str) -> Gallery:
    """The same gallery (root and layout) with another split."""
    if split == gallery.split:
        return gallery
    return open_gallery(gallery.root, split=split, kind=gallery.kind)


def iter_embed_split(embedder: Embedder, gallery: Gallery) -> Generator[Progress, None, tuple[Gallery, np.ndarray, int, int]]:
    """``(decodable part of gallery, its embeddings, embedded, reused)`` through ``embedder``'s store."""
    plan = yield from embedder.iter_plan(FileRecords.stat(gallery.paths, gallery.relpaths))
    x = np.zeros((int(plan.ok.sum()), embedder.model.dim), np.float32)
    yield from embedder.iter_gather(plan, x)
    return gallery.subset(plan.ok), x, plan.embedded, plan.reused


@contextlib.contextmanager
def targets_buffer(n: int, size: int, scratch_dir: Path) -> Iterator[np.ndarray]:
    """An (n, 3, size, size) float32 array: in memory, or a temp memory map in ``scratch_dir`` when
    larger than :data:`TARGETS_IN_MEMORY_MAX` (removed on exit)."""
    if n * 3 * size * size * 4 <= TARGETS_IN_MEMORY_MAX:
        yield np.empty((n, 3, size, size), np.float32)
        return
    path = Path(scratch_dir) / TARGETS_SCRATCH
    log.info("decoder targets of %d images go to a memory map %s", n, path)
    try:
        yield np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 3, size, size))
    finally:
        path.unlink(missing_ok=True)


def iter_decoder_training(gallery: Gallery, embeddings: np.ndarray, preprocessing: Preprocessing, kind: str,
                          size: int, scratch_dir: Path, **train: Any) -> Generator[Any, None, tuple[Any, list]]:
    """Targets of ``gallery`` (row ``i`` of ``embeddings`` is its image ``i``), then
    :func:`~lfs_gui.models.train_decoder.iter_train_decoder` with ``train`` (epochs, device, ...);
    yields Progress, then its EpochReports; returns ``(TrainResult, skipped)``: images that no longer
    decode are left out, as ``(path, reason)``."""
    from lfs_gui.models.train_decoder import iter_train_decoder

    with targets_buffer(len(gallery), size, scratch_dir) as buf:
        dt = yield from iter_decoder_targets(gallery.paths, preprocessing, size, every=32, out=buf)
        if len(dt.rows) < 2:
            raise ValueError(f"{gallery.root}: only {len(dt.rows)} images of split {gallery.split!r} could be read; "
                             "a decoder needs at least 2 (did the gallery folder move? see --gallery-root)")
        emb = embeddings if len(dt.rows) == len(embeddings) else embeddings[dt.rows]
        result = yield from iter_train_decoder(emb, dt.targets, kind=kind, size=size, **train)
    return result, dt.skipped
