"""Build an index folder from a gallery: embed, index, (train a decoder), save. Qt-free.

One generator (:func:`iter_build_index`) serves ``lfs-gui index``, the app's "Index a gallery"
job and the demo trainer. The result folder holds ``index.faiss``, ``embeddings.npy``,
``index.json`` (sidecar) and, unless disabled, ``decoder.pt`` — ExplainLFS needs a decoder per
embedding space, and the paper trains it on the gallery, as done here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfs_gui.data.embed import iter_embed_paths
from lfs_gui.data.galleries import Gallery
from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.index.recall import retrieval_metrics
from lfs_gui.index.sidecar import IndexMeta
from lfs_gui.index.store import save_index
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel
from lfs_gui.paths import user_cache_dir

log = logging.getLogger(__name__)

DECODER_FILE = "decoder.pt"


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
        }


def decoder_ref(decoder_path: Path, folder: Path) -> str:
    """How the sidecar names the decoder: relative to the index folder when possible."""
    try:
        return os.path.relpath(decoder_path.resolve(), folder.resolve())
    except ValueError:  # other drive on Windows
        return str(decoder_path.resolve())


def iter_build_index(
    gallery: Gallery,
    model: EmbeddingModel,
    out: str | Path,
    kind: str = "auto",
    train_decoder: bool = True,
    decoder_kind: str = "dense",
    decoder_epochs: int = 60,
    decoder_file: str | Path | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    model_info: dict | None = None,
) -> Generator[Progress, None, BuildReport]:
    """Embed ``gallery`` with ``model``, build and save the index in ``out``; yields Progress.

    Undecodable images are skipped and reported. ``decoder_file`` records an existing decoder
    instead of training one. Embeddings are cached in ``cache_dir`` (default: the user cache) unless ``use_cache`` is False.
    """
    t0 = time.perf_counter()
    folder = Path(out).expanduser().resolve()
    if folder == Path(gallery.root).resolve() or Path(gallery.root).resolve() in folder.parents:
        raise ValueError(f"{folder}: the index must not be written inside the gallery folder {gallery.root}; choose another --out")
    cache = None
    if use_cache:
        cache = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "embeddings"
    res = yield from iter_embed_paths(model, gallery.paths, batch_size=batch_size, num_workers=num_workers, cache_dir=cache)
    kept = gallery.subset(res.ok)
    if len(kept) == 0:
        raise ValueError(f"{gallery.root}: none of the {len(gallery)} images could be decoded")
    skipped = [(str(p), reason) for p, reason in res.failures]
    yield Progress(0, 1, "building the index")
    info = {**model.describe(), **(model_info or {})}
    index = EmbeddingIndex(res.embeddings, kind=kind)
    report = BuildReport(folder=folder, count=len(kept), skipped=skipped, index_kind=index.kind)

    dec_ref: str | None = None
    if decoder_file is not None:
        dec_ref = decoder_ref(Path(decoder_file), folder)
    elif train_decoder:
        from lfs_gui.data.decoder_targets import iter_decoder_targets
        from lfs_gui.models.decoder import save_decoder
        from lfs_gui.models.train_decoder import iter_train_decoder

        size = 40 if decoder_kind == "dense" else 64
        dt = yield from iter_decoder_targets(kept.paths, model.preprocessing, size, every=32)
        result = yield from iter_train_decoder(
            res.embeddings[dt.rows], dt.targets, kind=decoder_kind, epochs=decoder_epochs, val_fraction=0.1, keep_best=True
        )
        meta = {**result.meta(), "model_identity": model.identity(), "gallery": str(gallery.root)}
        folder.mkdir(parents=True, exist_ok=True)
        # An index already in this folder stops being valid *before* its decoder is replaced, so an
        # interrupted rebuild never leaves an old sidecar pointing at a decoder of another model.
        (folder / "index.json").unlink(missing_ok=True)
        save_decoder(folder / DECODER_FILE, result.decoder, meta)
        dec_ref = DECODER_FILE
        report.decoder = {"file": str(folder / DECODER_FILE), **meta}

    meta = IndexMeta.from_gallery(kept, model.identity(), info, decoder_file=dec_ref)
    save_index(index, folder, meta)
    if kept.has_labels and len(kept) > 1:
        m = retrieval_metrics(res.embeddings, kept.labels_array())
        report.recall, report.map_at_r = dict(m.recall), float(m.map_at_r)
    report.seconds = time.perf_counter() - t0
    yield Progress(1, 1, "saved")
    log.info("index of %d images written to %s in %.1f s", report.count, folder, report.seconds)
    return report
