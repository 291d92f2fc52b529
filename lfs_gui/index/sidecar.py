"""The ``index.json`` sidecar: what an index folder holds, and how to check it belongs together.

An index folder (format v2, written by :func:`lfs_gui.index.store.save_index`) holds, each file written
atomically (temp file + rename) in this order:

* ``embeddings.npy`` - the (count, dim) float32 C-order matrix; ``np.load(..., mmap_mode="r")`` opens it;
* ``rows.parquet``   - the row table: id, relpath, label per row (:mod:`lfs_gui.index.rows`);
* ``index.faiss``    - ``faiss.serialize_index`` of the search structure, only for kinds that have one
  (``hnsw``); exact (``flat``) search uses ``embeddings.npy`` directly;
* ``ivf.index``, ``ivf.ivfdata``, ``ivf.lists.npy`` - kind ``ivf`` only: the on-disk IVF index
  (:mod:`lfs_gui.index.ivf_files`), written before the save by :func:`lfs_gui.index.ivf.iter_ivf_index`;
* ``index.json``     - this sidecar, written LAST: a folder without it is not an index, so an
  interrupted save never leaves something that looks valid.

Sidecar fields (format ``lfs-gui-index``, version 2)::

    format, version, model_identity, model (describe() dict + where it was loaded from), dim,
    metric ("cosine"), index_kind, count,
    gallery: {root, root_absolute, kind, split, name}, classes, skipped,
    files: {name: {bytes, sha256, sample_sha256}} for every file above but index.json,
    decoder_file (relative to the index folder, or absolute, or null), decoder_split, created (ISO-8601 UTC),
    ivf (kind ivf only: lfs_gui.index.ivf_files.IvfInfo - build settings, probes, counts, checksums)

``gallery.root`` is the gallery folder relative to the index folder (``/``-separated; absolute only
when no relative path exists, e.g. another Windows drive) and ``root_absolute`` where it was at build
time. Opening looks for the gallery at ``--gallery-root`` if given, else at ``root`` resolved against
the index folder's current place (index and gallery moved together), else at ``root_absolute`` (the
index moved alone). Row paths are relative to the gallery root, so either move keeps them valid.
Checksums and their cost at scale: :mod:`lfs_gui.index.checksums`.

Version 1 folders (``relpaths``/``labels`` as JSON lists, an absolute ``gallery_root``,
``embeddings_sha256`` of the array bytes, ``index.faiss`` for every kind) are still read, unchanged;
``python -m lfs_gui.index.upgrade DIR`` rewrites one as v2 (the shipped demo index was migrated so).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.data.galleries import Gallery, GalleryItem

log = logging.getLogger(__name__)

FORMAT = "lfs-gui-index"
VERSION = 2
READABLE = (1, 2)
INDEX_FILE = "index.faiss"
SIDECAR_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"
REBUILD = "rebuild with `lfs-gui index GALLERY --out {dir}`"
MOVED = "pass --gallery-root DIR (the folder the index's image paths are relative to)"


class IndexLoadError(ValueError):
    """An index folder could not be loaded; the message names the file and the fix."""


class GalleryNotFoundError(IndexLoadError):
    """The index is fine but its gallery is not where the sidecar says; ``candidates`` were tried."""

    def __init__(self, message: str, candidates: list[Path]) -> None:
        super().__init__(message)
        self.candidates = candidates


def embeddings_sha256(x: np.ndarray) -> str:
    """sha256 of the float32 C-contiguous bytes (what a version 1 sidecar stores)."""
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


@dataclass
class IndexMeta:
    """Everything in the sidecar besides what the index computes itself on save.

    ``labels[i]`` / ``relpaths[i]`` describe image id ``i`` (row ``i`` of the embeddings).
    ``gallery_root`` is absolute: where the gallery is (after loading: the first of
    ``gallery_candidates`` that exists, see the module docstring).
    """

    model_identity: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    gallery_root: str = ""
    gallery_kind: str = ""
    gallery_split: str = ""
    gallery_name: str = ""
    relpaths: list[str] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    decoder_file: str | None = None
    decoder_split: str | None = None
    created: str = ""
    gallery_candidates: list[str] = field(default_factory=list)
    version: int = VERSION
    rows: Any = None  # a lfs_gui.index.row_table.RowTable when the rows are read lazily (large indexes)

    @classmethod
    def from_gallery(cls, gallery: Gallery, model_identity: str, model: dict[str, Any] | None = None,
                     decoder_file: str | None = None, decoder_split: str | None = None) -> "IndexMeta":
        """Metadata for an index whose row ``i`` is ``gallery.items[i]``."""
        return cls(
            model_identity=model_identity,
            model=dict(model or {}),
            gallery_root=str(Path(gallery.root).resolve()),
            gallery_kind=gallery.kind,
            gallery_split=gallery.split,
            gallery_name=gallery.name,
            relpaths=gallery.relpaths,
            labels=[it.label for it in gallery.items],
            classes=list(gallery.classes),
            skipped=list(gallery.skipped),
            decoder_file=decoder_file,
            decoder_split=decoder_split,
        )

    def to_gallery(self, root: str | Path | None = None) -> Gallery:
        """The gallery this index was built from, rooted at ``root`` (default ``gallery_root``); no boxes."""
        base = Path(root if root is not None else self.gallery_root)
        if self.rows is not None:  # large index: one GalleryItem made per access, none held
            return Gallery(name=self.gallery_name, root=base, items=self.rows.gallery_items(base, self.classes),
                           classes=list(self.classes), kind=self.gallery_kind, split=self.gallery_split,
                           skipped=list(self.skipped))
        items = [
            GalleryItem(base / rel, rel, lab, None if lab is None or lab >= len(self.classes) else self.classes[lab])
            for rel, lab in zip(self.relpaths, self.labels)
        ]
        return Gallery(name=self.gallery_name, root=base, items=items, classes=list(self.classes),
                       kind=self.gallery_kind, split=self.gallery_split, skipped=list(self.skipped))

    def locate_gallery(self, root: str | Path | None = None, where: Path | None = None) -> Gallery:
        """:meth:`to_gallery` after checking the images are there; raises :class:`GalleryNotFoundError`
        naming the places tried and ``--gallery-root``. ``root`` overrides the recorded places."""
        if root is not None:
            cands = [Path(root).expanduser().resolve()]
        else:
            cands = [Path(c) for c in self.gallery_candidates or [self.gallery_root]]
        sample = self.rows.sample() if self.rows is not None else _sample(self.relpaths)
        for cand in cands:
            if cand.is_dir() and (not sample or any((cand / rel).is_file() for rel in sample)):
                missing = [rel for rel in sample if not (cand / rel).is_file()]
                if missing:
                    log.warning("%s: %d of %d sampled images missing (e.g. %s)", cand, len(missing), len(sample), missing[0])
                return self.to_gallery(cand)
        side = where / SIDECAR_FILE if where is not None else SIDECAR_FILE
        tried = " nor under ".join(str(c) for c in cands)
        what = f"under --gallery-root {cands[0]}" if root is not None else f"under {tried}"
        first = f" (e.g. {sample[0]})" if sample else ""
        raise GalleryNotFoundError(f"{side}: the gallery's images{first} are not {what}; {MOVED}", cands)

    def labels_array(self) -> np.ndarray:
        if self.rows is not None:
            return self.rows.labels.astype(np.int64)
        return np.array([-1 if v is None else v for v in self.labels], dtype=np.int64)


def _sample(relpaths: list[str], k: int = 16) -> list[str]:
    if len(relpaths) <= k:
        return list(relpaths)
    return [relpaths[i] for i in np.linspace(0, len(relpaths) - 1, k).astype(int)]


def relative_root(root: str | Path, folder: Path) -> str:
    """``root`` relative to ``folder`` with ``/`` separators (absolute when there is no relative path)."""
    try:
        return Path(os.path.relpath(Path(root).resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(root).resolve().as_posix()


def make_sidecar(meta: IndexMeta, folder: Path, *, dim: int, kind: str, count: int, files: dict[str, dict]) -> dict:
    """The JSON dict written as ``index.json`` (version 2)."""
    return {
        "format": FORMAT, "version": VERSION, "model_identity": meta.model_identity, "model": meta.model,
        "dim": dim, "metric": "cosine", "index_kind": kind, "count": count,
        "gallery": {"root": relative_root(meta.gallery_root, folder) if meta.gallery_root else "",
                    "root_absolute": str(Path(meta.gallery_root).resolve()) if meta.gallery_root else "",
                    "kind": meta.gallery_kind, "split": meta.gallery_split, "name": meta.gallery_name},
        "classes": list(meta.classes), "skipped": list(meta.skipped), "files": files,
        "decoder_file": meta.decoder_file, "decoder_split": meta.decoder_split,
        "created": meta.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _need(raw: dict, path: Path, fix: str, fields: dict[str, type]) -> None:
    for key, typ in fields.items():
        if not isinstance(raw.get(key), typ) or isinstance(raw.get(key), bool):
            raise IndexLoadError(f"{path}: field {key!r} missing or not a {typ.__name__}; {fix}")


def parse_sidecar(path: Path, fix: str) -> tuple[dict, IndexMeta]:
    """Read and validate ``index.json`` (v1 or v2); returns the raw dict and the :class:`IndexMeta`
    (for v2 without rows: :mod:`lfs_gui.index.rows` reads them)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexLoadError(f"{path}: not valid JSON ({exc}); {fix}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise IndexLoadError(f"{path}: not an lfs-gui index sidecar (format != {FORMAT!r}); {fix}")
    if raw.get("version") not in READABLE:
        raise IndexLoadError(f"{path}: sidecar version {raw.get('version')!r}, this lfs-gui reads "
                             f"{' and '.join(map(str, READABLE))}; {fix}")
    _need(raw, path, fix, {"dim": int, "count": int, "index_kind": str, "model_identity": str})
    if raw["dim"] < 1 or raw["count"] < 0:
        raise IndexLoadError(f"{path}: dim {raw['dim']} / count {raw['count']} out of range; {fix}")
    if raw.get("metric", "cosine") != "cosine":
        raise IndexLoadError(f"{path}: metric {raw.get('metric')!r}, only 'cosine' is supported; {fix}")
    classes = raw.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise IndexLoadError(f"{path}: field 'classes' must be a list of names; {fix}")
    for key in ("skipped",):
        if not isinstance(raw.get(key, []), list) or not all(isinstance(c, str) for c in raw.get(key, [])):
            raise IndexLoadError(f"{path}: field {key!r} must be a list of paths; {fix}")
    for key in ("decoder_file", "decoder_split"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            raise IndexLoadError(f"{path}: field {key!r} must be a string or null; {fix}")
    if not isinstance(raw.get("model", {}), dict):
        raise IndexLoadError(f"{path}: field 'model' must be an object; {fix}")
    common = dict(model_identity=raw["model_identity"], model=raw.get("model", {}), classes=classes,
                  skipped=raw.get("skipped", []), decoder_file=raw.get("decoder_file"),
                  decoder_split=raw.get("decoder_split"), created=str(raw.get("created", "")), version=raw["version"])
    if raw["version"] == 1:
        return raw, _parse_v1(raw, path, fix, common)
    _need(raw, path, fix, {"gallery": dict, "files": dict})
    gal = raw["gallery"]
    if not all(isinstance(gal.get(k, ""), str) for k in ("root", "root_absolute", "kind", "split", "name")):
        raise IndexLoadError(f"{path}: field 'gallery' must hold strings root, root_absolute, kind, split, name; {fix}")
    for name, rec in raw["files"].items():
        if not isinstance(rec, dict) or not isinstance(rec.get("bytes"), int) or not isinstance(rec.get("sha256"), str):
            raise IndexLoadError(f"{path}: files[{name!r}] must hold bytes and sha256; {fix}")
    cands = []
    if gal.get("root"):
        root = Path(gal["root"])
        cands.append(str(root if root.is_absolute() else (path.parent / root).resolve()))
    if gal.get("root_absolute") and gal["root_absolute"] not in cands:
        cands.append(gal["root_absolute"])
    meta = IndexMeta(gallery_root=_first_dir(cands), gallery_kind=gal.get("kind", ""), gallery_split=gal.get("split", ""),
                     gallery_name=gal.get("name", ""), gallery_candidates=cands, **common)
    return raw, meta


def _first_dir(cands: list[str]) -> str:
    return next((c for c in cands if Path(c).is_dir()), cands[0] if cands else "")


def _parse_v1(raw: dict, path: Path, fix: str, common: dict) -> IndexMeta:
    _need(raw, path, fix, {"embeddings_sha256": str, "index_sha256": str, "relpaths": list, "labels": list})
    if len(raw["relpaths"]) != raw["count"] or len(raw["labels"]) != raw["count"]:
        raise IndexLoadError(f"{path}: count is {raw['count']} but relpaths/labels have "
                             f"{len(raw['relpaths'])}/{len(raw['labels'])} entries; {fix}")
    n_classes = len(common["classes"])
    for i, lab in enumerate(raw["labels"]):
        if lab is not None and (not isinstance(lab, int) or isinstance(lab, bool) or not 0 <= lab < n_classes):
            raise IndexLoadError(f"{path}: label {lab!r} of image {i} is not an index into the "
                                 f"{n_classes} classes; {fix}")
    if not all(isinstance(r, str) for r in raw["relpaths"]):
        raise IndexLoadError(f"{path}: field 'relpaths' must hold strings; {fix}")
    root = str(raw.get("gallery_root", ""))
    return IndexMeta(gallery_root=root, gallery_kind=str(raw.get("gallery_kind", "")),
                     gallery_split=str(raw.get("gallery_split", "")), gallery_name=str(raw.get("gallery_name", "")),
                     relpaths=list(raw["relpaths"]), labels=list(raw["labels"]),
                     gallery_candidates=[root] if root else [], **common)


def dump_sidecar(d: dict) -> bytes:
    return (json.dumps(d, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
