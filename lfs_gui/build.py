"""Build an index folder from a gallery: embed (resumably), index, (train a decoder), save. Qt-free.

One generator (:func:`iter_build_index`) serves ``lfs-gui index``, the app's "Index a gallery"
job and the demo trainer. The result folder is an index folder (format: :mod:`lfs_gui.index.sidecar`)
plus, unless disabled, ``decoder.pt``: ExplainLFS needs a decoder per embedding space.

Embedding goes through the shard store (:mod:`lfs_gui.data.shards`): finished images are kept in the
cache as the build runs, so an interrupted build (Ctrl-C, crash, ``kill -9``) resumes when the same
command runs again, new images of a gallery are the only ones embedded, and another split reuses
what is cached. ``embeddings.npy`` is assembled from the shards through a memory map and renamed into
place by the save, so the gallery's embeddings are never held in memory twice.

The decoder is trained on ``decoder_split`` of the same gallery: by default the ``train`` half for
CUB and Cars, as in the paper (which explains the test half with a decoder trained on the training
images), and the indexed split otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.build_decoder import (
    TARGETS_SCRATCH, default_decoder_split, iter_decoder_training, iter_embed_split, with_split,
)
from lfs_gui.data.embed import Embedder, open_store
from lfs_gui.data.galleries import Gallery
from lfs_gui.data.shards import DEFAULT_SHARD_ROWS, DEFAULT_SHARD_SECONDS, FileRecords
from lfs_gui.device import batch_defaults
from lfs_gui.index.faiss_index import AUTO_FLAT_MAX, EmbeddingIndex, choose_kind
from lfs_gui.index.ivf_files import IvfSettings
from lfs_gui.index.recall import retrieval_metrics
from lfs_gui.index.sidecar import SIDECAR_FILE, IndexMeta, relative_root
from lfs_gui.index.store import save_index, staged_embeddings_path, sweep_temp_files
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel
from lfs_gui.paths import user_cache_dir

log = logging.getLogger(__name__)

DECODER_FILE = "decoder.pt"
ENGINES = ("local", "ray")
__all__ = ["DECODER_FILE", "ENGINES", "BuildReport", "decoder_ref", "default_decoder_split", "iter_build_index"]


@dataclass
class BuildReport:
    folder: Path
    count: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    recall: dict[int, float] | None = None
    map_at_r: float | None = None
    decoder: dict[str, Any] | None = None
    index_kind: str = "flat"
    embedded: int = 0
    reused: int = 0
    cache: str | None = None

    def to_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "count": self.count,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "seconds": round(self.seconds, 2),
            "recall": self.recall,
            "map_at_r": self.map_at_r,
            "decoder": self.decoder,
            "index_kind": self.index_kind,
            "embedded": self.embedded,
            "reused": self.reused,
            "cache": self.cache,
        }


def decoder_ref(decoder_path: Path, folder: Path) -> str:
    """How the sidecar names the decoder: relative to the index folder when possible."""
    try:
        return os.path.relpath(decoder_path.resolve(), folder.resolve())
    except ValueError:  # other drive on Windows
        return str(decoder_path.resolve())


def _engine_running(engine: str, ray_address: str | None) -> contextlib.AbstractContextManager:
    """Ray started (or reached) once for the whole build with ``engine`` ``ray``; nothing otherwise."""
    if engine != "ray":
        return contextlib.nullcontext()
    from lfs_gui.data.ray_engine import ray_running

    return ray_running(ray_address)


def _embedder(engine: str, model: EmbeddingModel, store: Any, ray_address: str | None, model_info: dict | None,
              **kw: Any) -> Embedder:
    if engine == "ray":
        from lfs_gui.data.ray_engine import RayEmbedder

        return RayEmbedder(model, store, ray_address=ray_address, model_info=model_info, **kw)
    return Embedder(model, store, **kw)


def iter_build_index(
    gallery: Gallery,
    model: EmbeddingModel,
    out: str | Path,
    kind: str = "auto",
    train_decoder: bool = True,
    decoder_kind: str = "dense",
    decoder_epochs: int = 60,
    decoder_file: str | Path | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    model_info: dict | None = None,
    decoder_split: str | None = None,
    amp: bool = False,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    shard_seconds: float = DEFAULT_SHARD_SECONDS,
    engine: str = "local",
    ray_address: str | None = None,
    ivf: IvfSettings | None = None,
) -> Generator[Progress, None, BuildReport]:
    """Embed ``gallery`` with ``model`` (on its device), build and save the index in ``out``; yields Progress.

    Undecodable images are skipped and reported. ``decoder_file`` records an existing decoder instead
    of training one; ``decoder_split`` (default :func:`default_decoder_split`) is what a new one is
    trained on. Embeddings are cached in ``cache_dir`` (default: the user cache) unless ``use_cache``
    is False (then nothing survives an interruption). ``engine`` ``ray`` embeds as a Ray Data job
    (:mod:`lfs_gui.data.ray_engine`; ``ray_address`` None: ``RAY_ADDRESS`` or a local Ray) into the same
    cache. ``ivf``: settings of kind ``ivf`` (:mod:`lfs_gui.index.ivf_files`; default: from the size).
    ``batch_size`` / ``num_workers`` (decoding processes) default to :func:`lfs_gui.device.batch_defaults`
    for the model's device.
    """
    t0 = time.perf_counter()
    defaults = batch_defaults(model.device)  # per device: a GPU gets large batches and parallel decoding
    batch_size = defaults.embed if batch_size is None else batch_size
    num_workers = defaults.workers if num_workers is None else num_workers
    if engine not in ENGINES:
        raise ValueError(f"unknown embedding engine {engine!r}; use {' or '.join(ENGINES)}")
    if ray_address is not None and engine != "ray":
        raise ValueError("--ray-address needs --engine ray")
    folder = Path(out).expanduser().resolve()
    root = Path(gallery.root).resolve()
    if folder == root or root in folder.parents:
        raise ValueError(f"{folder}: the index must not be written inside the gallery folder {gallery.root}; "
                         "choose another --out")
    cache = (Path(cache_dir) if cache_dir is not None else user_cache_dir() / "embeddings") if use_cache else None
    dec_split, dec_gallery = None, gallery
    if train_decoder and decoder_file is None:
        dec_split = decoder_split or default_decoder_split(gallery)
        dec_gallery = with_split(gallery, dec_split)  # a bad split fails before any work
    with open_store(cache, model, amp) as store, _engine_running(engine, ray_address):
        embedder = _embedder(engine, model, store, ray_address, model_info, batch_size=batch_size,
                             num_workers=num_workers, amp=amp, shard_rows=shard_rows, shard_seconds=shard_seconds)
        plan = yield from embedder.iter_plan(FileRecords.stat(gallery.paths, gallery.relpaths))
        embedded, reused = plan.embedded, plan.reused
        ok = plan.ok
        kept = gallery.subset(ok)
        if len(kept) == 0:
            raise ValueError(f"{gallery.root}: none of the {len(gallery)} images could be decoded")
        folder.mkdir(parents=True, exist_ok=True)
        sweep_temp_files(folder)
        (folder / TARGETS_SCRATCH).unlink(missing_ok=True)  # left by a killed decoder build
        staged = staged_embeddings_path(folder)
        x = np.lib.format.open_memmap(staged, mode="w+", dtype=np.float32, shape=(len(kept), model.dim))
        reasons = yield from embedder.iter_gather(plan, x)
        x.flush()
        skipped = [(str(gallery.paths[i]), reasons[i]) for i in sorted(reasons)]
        dec_data = None
        if dec_split is not None and dec_gallery is not gallery:
            dec_kept, dec_x, n_emb, n_reused = yield from iter_embed_split(embedder, dec_gallery)
            embedded, reused = embedded + n_emb, reused + n_reused
            dec_data = (dec_kept, dec_x)

    yield Progress(0, 1, "building the index")
    info = {**model.describe(), **(model_info or {}), **({"precision": store.precision} if store.precision != "fp32" else {})}
    if info.get("source") and not info.get("demo") and Path(info["source"]).is_file():
        info["source_relative"] = relative_root(info["source"], folder)  # found again if it moves with the index
    if choose_kind(kind, len(kept)) == "ivf":  # on disk, next to the embeddings (lfs_gui.index.ivf)
        from lfs_gui.index.ivf import iter_ivf_index

        (folder / SIDECAR_FILE).unlink(missing_ok=True)  # an old sidecar must not vouch for new IVF files
        index = yield from iter_ivf_index(staged, folder, ivf)
    else:
        index = EmbeddingIndex(x, kind=kind)
    report = BuildReport(folder=folder, count=len(kept), skipped=skipped, index_kind=index.kind,
                         embedded=embedded, reused=reused, cache=str(store.folder) if cache is not None else None)

    dec_ref: str | None = None
    if decoder_file is not None:
        dec_ref = decoder_ref(Path(decoder_file), folder)
    elif train_decoder:
        dec_gal, dec_emb = dec_data if dec_data is not None else (kept, x)
        # An index already in this folder stops being valid *before* its decoder is replaced, so an
        # interrupted rebuild never leaves an old sidecar pointing at a decoder of another model.
        (folder / SIDECAR_FILE).unlink(missing_ok=True)
        report.decoder = yield from _iter_decoder(dec_gal, dec_emb, model, folder, decoder_kind, decoder_epochs)
        dec_ref = DECODER_FILE

    meta = IndexMeta.from_gallery(kept, model.identity(), info, decoder_file=dec_ref, decoder_split=dec_split)
    save_index(index, folder, meta, staged_embeddings=staged)
    if kept.has_labels and 1 < len(kept) < AUTO_FLAT_MAX:  # leave-one-out is all pairs: skipped at IVF scale
        m = retrieval_metrics(x, kept.labels_array())
        report.recall, report.map_at_r = dict(m.recall), float(m.map_at_r)
    report.seconds = time.perf_counter() - t0
    yield Progress(1, 1, "saved")
    log.info("index of %d images written to %s in %.1f s (%d embedded, %d reused)", report.count, folder,
             report.seconds, report.embedded, report.reused)
    return report


def _iter_decoder(gallery: Gallery, emb: np.ndarray, model: EmbeddingModel, folder: Path, kind: str,
                  epochs: int) -> Generator[Progress, None, dict]:
    """Train a decoder on (``emb[i]``, the model's view of ``gallery.items[i]``) on the model's device;
    save it in ``folder``."""
    from lfs_gui.models.decoder import save_decoder

    size = 40 if kind == "dense" else 64
    result, skipped = yield from iter_decoder_training(gallery, emb, model.preprocessing, kind, size, folder,
                                                       epochs=epochs, val_fraction=0.1, keep_best=True,
                                                       device=model.device)
    meta = {**result.meta(), "model_identity": model.identity(), "gallery": str(gallery.root), "split": gallery.split,
            "n_skipped": len(skipped)}
    save_decoder(folder / DECODER_FILE, result.decoder, meta)
    return {"file": str(folder / DECODER_FILE), **meta}
