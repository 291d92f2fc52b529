"""The ``index.json`` sidecar: what an index folder holds, and how to check it belongs together.

An index folder has three files, written in this order, each atomically (temp file + rename):

* ``index.faiss``    - ``faiss.write_index`` of the search structure;
* ``embeddings.npy`` - the (count, dim) float32 matrix (flat search and the explainer use it);
* ``index.json``     - this sidecar, written LAST: a folder without it is not an index, so an
  interrupted save never leaves something that looks valid.

Sidecar fields (format ``lfs-gui-index``, version 1)::

    format, version, model_identity, model (describe() dict), dim, metric ("cosine"),
    index_kind, count, gallery_root (absolute), gallery_kind, gallery_split, gallery_name,
    relpaths[count], labels[count] (int or null), classes, skipped,
    embeddings_sha256 (of the C-contiguous float32 bytes), index_sha256 (of index.faiss),
    decoder_file (relative path or null), created (ISO-8601 UTC)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.data.galleries import Gallery, GalleryItem

FORMAT = "lfs-gui-index"
VERSION = 1
INDEX_FILE = "index.faiss"
SIDECAR_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"
REBUILD = "rebuild with `lfs-gui index GALLERY --out {dir}`"


class IndexLoadError(ValueError):
    """An index folder could not be loaded; the message names the file and the fix."""


def embeddings_sha256(x: np.ndarray) -> str:
    """sha256 of the float32 C-contiguous bytes (what the sidecar stores)."""
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


@dataclass
class IndexMeta:
    """Everything in the sidecar besides what the index computes itself on save.

    ``labels[i]`` / ``relpaths[i]`` describe image id ``i`` (row ``i`` of the embeddings).
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
    created: str = ""

    @classmethod
    def from_gallery(cls, gallery: Gallery, model_identity: str, model: dict[str, Any] | None = None,
                     decoder_file: str | None = None) -> "IndexMeta":
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
        )

    def to_gallery(self) -> Gallery:
        """The gallery this index was built from (paths rebuilt from ``gallery_root``; no boxes)."""
        root = Path(self.gallery_root)
        items = [
            GalleryItem(root / rel, rel, lab, None if lab is None or lab >= len(self.classes) else self.classes[lab])
            for rel, lab in zip(self.relpaths, self.labels)
        ]
        return Gallery(name=self.gallery_name, root=root, items=items, classes=list(self.classes),
                       kind=self.gallery_kind, split=self.gallery_split, skipped=list(self.skipped))

    def labels_array(self) -> np.ndarray:
        return np.array([-1 if v is None else v for v in self.labels], dtype=np.int64)


def make_sidecar(meta: IndexMeta, *, dim: int, kind: str, count: int, emb_sha: str, index_sha: str) -> dict:
    """The JSON dict written as ``index.json``."""
    d = {"format": FORMAT, "version": VERSION}
    d.update(asdict(meta))
    d.update(dim=dim, metric="cosine", index_kind=kind, count=count, embeddings_sha256=emb_sha,
             index_sha256=index_sha)
    if not d.get("created"):
        d["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return d


def parse_sidecar(path: Path, fix: str) -> tuple[dict, IndexMeta]:
    """Read and validate ``index.json``; returns the raw dict and the :class:`IndexMeta`."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexLoadError(f"{path}: not valid JSON ({exc}); {fix}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise IndexLoadError(f"{path}: not an lfs-gui index sidecar (format != {FORMAT!r}); {fix}")
    if raw.get("version") != VERSION:
        raise IndexLoadError(f"{path}: sidecar version {raw.get('version')!r}, this lfs-gui reads {VERSION}; {fix}")
    need = {"dim": int, "count": int, "index_kind": str, "embeddings_sha256": str, "index_sha256": str,
            "relpaths": list, "labels": list, "model_identity": str}
    for key, typ in need.items():
        if not isinstance(raw.get(key), typ) or isinstance(raw.get(key), bool):
            raise IndexLoadError(f"{path}: field {key!r} missing or not a {typ.__name__}; {fix}")
    if raw.get("metric", "cosine") != "cosine":
        raise IndexLoadError(f"{path}: metric {raw.get('metric')!r}, only 'cosine' is supported; {fix}")
    if len(raw["relpaths"]) != raw["count"] or len(raw["labels"]) != raw["count"]:
        raise IndexLoadError(f"{path}: count is {raw['count']} but relpaths/labels have "
                             f"{len(raw['relpaths'])}/{len(raw['labels'])} entries; {fix}")
    classes = raw.get("classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise IndexLoadError(f"{path}: field 'classes' must be a list of names; {fix}")
    for i, lab in enumerate(raw["labels"]):
        if lab is not None and (not isinstance(lab, int) or isinstance(lab, bool) or not 0 <= lab < len(classes)):
            raise IndexLoadError(f"{path}: label {lab!r} of image {i} is not an index into the "
                                 f"{len(classes)} classes; {fix}")
    if not all(isinstance(r, str) for r in raw["relpaths"]):
        raise IndexLoadError(f"{path}: field 'relpaths' must hold strings; {fix}")
    fields = {k: raw[k] for k in IndexMeta.__dataclass_fields__ if k in raw}
    try:
        meta = IndexMeta(**fields)
    except TypeError as exc:
        raise IndexLoadError(f"{path}: malformed fields ({exc}); {fix}") from exc
    return raw, meta


def dump_sidecar(d: dict) -> bytes:
    return (json.dumps(d, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
