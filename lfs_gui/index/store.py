"""Saving and loading an index folder (``index.faiss`` + ``embeddings.npy`` + ``index.json``).

Writes are atomic per file and the sidecar goes last (an existing sidecar is removed first), so an
interrupted save leaves a folder that :func:`load_index` rejects instead of a mixed index.
Loading checks everything before trusting it and never hands unverified bytes to FAISS: the
``index.faiss`` bytes must match the sidecar's sha256 and start with a known FAISS header before
``faiss.deserialize_index`` sees them (damaged FAISS files can crash the process, not just raise).
Every problem raises :class:`IndexLoadError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from lfs_gui.index.faiss_index import KINDS, EmbeddingIndex
from lfs_gui.index.sidecar import (
    EMBEDDINGS_FILE,
    INDEX_FILE,
    REBUILD,
    SIDECAR_FILE,
    IndexLoadError,
    IndexMeta,
    dump_sidecar,
    embeddings_sha256,
    make_sidecar,
    parse_sidecar,
)
from lfs_gui.jobs import atomic_path, atomic_write_bytes

log = logging.getLogger(__name__)

# First four bytes faiss.write_index gives each kind (IndexFlatIP, IndexHNSWFlat).
_HEADERS = {"flat": b"IxFI", "hnsw": b"IHNf"}
_TYPES = {"flat": faiss.IndexFlat, "hnsw": faiss.IndexHNSWFlat}


def index_dir(path: str | Path) -> Path:
    """The folder for ``path``: the path itself, or the parent of an ``index.faiss``/``index.json``."""
    p = Path(path).expanduser()
    if p.name in (INDEX_FILE, SIDECAR_FILE, EMBEDDINGS_FILE):
        p = p.parent
    return p.resolve()


def save_index(index: EmbeddingIndex, path: str | Path, meta: IndexMeta | None = None) -> Path:
    """Write the index folder; returns it. ``meta`` defaults to ``index.meta``."""
    folder = index_dir(path)
    meta = replace(meta if meta is not None else index.meta)  # a copy: defaults filled below
    n = len(index)
    if (meta.relpaths and len(meta.relpaths) != n) or (meta.labels and len(meta.labels) != n):
        raise ValueError(f"index metadata describes {len(meta.relpaths)} images but the index holds {n} vectors")
    if not meta.relpaths:
        meta.relpaths = [str(i) for i in range(n)]
    if not meta.labels:
        meta.labels = [None] * n
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SIDECAR_FILE).unlink(missing_ok=True)  # no valid-looking index until we are done

    index_bytes = faiss.serialize_index(index.faiss_index()).tobytes()
    atomic_write_bytes(folder / INDEX_FILE, index_bytes)
    with atomic_path(folder / EMBEDDINGS_FILE) as tmp, open(tmp, "wb") as fh:
        np.save(fh, index.embeddings, allow_pickle=False)
    side = make_sidecar(meta, dim=index.dim, kind=index.kind, count=n,
                        emb_sha=embeddings_sha256(index.embeddings),
                        index_sha=hashlib.sha256(index_bytes).hexdigest())
    atomic_write_bytes(folder / SIDECAR_FILE, dump_sidecar(side))
    log.info("saved %s index of %d x %d to %s", index.kind, n, index.dim, folder)
    return folder


def load_index(path: str | Path, expected_identity: str | None = None) -> EmbeddingIndex:
    """Load and validate an index folder (see the module docstring)."""
    folder = index_dir(path)
    fix = REBUILD.format(dir=folder)
    side_path, idx_path, emb_path = folder / SIDECAR_FILE, folder / INDEX_FILE, folder / EMBEDDINGS_FILE
    if not folder.is_dir():
        raise IndexLoadError(f"{folder}: no such index folder; {fix}")
    if not side_path.is_file():
        raise IndexLoadError(f"{side_path}: missing (not an index folder, or its save was interrupted); {fix}")
    raw, meta = parse_sidecar(side_path, fix)
    dim, count, kind = raw["dim"], raw["count"], raw["index_kind"]
    if kind not in KINDS:
        raise IndexLoadError(f"{side_path}: unknown index_kind {kind!r}; {fix}")
    if expected_identity is not None and meta.model_identity != expected_identity:
        raise IndexLoadError(f"{side_path}: built with model {meta.model_identity!r}, but the loaded model is "
                             f"{expected_identity!r}; {fix} using the current model")

    for p in (idx_path, emb_path):
        if not p.is_file():
            raise IndexLoadError(f"{p}: missing; {fix}")
    data = idx_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != raw["index_sha256"]:
        raise IndexLoadError(f"{idx_path}: corrupt or truncated ({len(data)} bytes, checksum differs from "
                             f"{SIDECAR_FILE}); {fix}")
    if data[:4] != _HEADERS[kind]:
        raise IndexLoadError(f"{idx_path}: header {data[:4]!r} is not a {kind} FAISS index; {fix}")
    try:
        fidx = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))  # already the concrete type
    except RuntimeError as exc:
        raise IndexLoadError(f"{idx_path}: FAISS cannot read it ({str(exc).splitlines()[0]}); {fix}") from exc
    if not isinstance(fidx, _TYPES[kind]):
        raise IndexLoadError(f"{idx_path}: holds a {type(fidx).__name__}, not a {kind} index; {fix}")
    if fidx.d != dim:
        raise IndexLoadError(f"{idx_path}: dim {fidx.d} but {SIDECAR_FILE} says {dim}; {fix}")
    if fidx.ntotal != count:
        raise IndexLoadError(f"{idx_path}: holds {fidx.ntotal} vectors but {SIDECAR_FILE} says {count}; {fix}")
    if fidx.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexLoadError(f"{idx_path}: metric is not inner product; {fix}")

    x = _load_embeddings(emb_path, fix)
    if x.shape[1] != dim:
        raise IndexLoadError(f"{emb_path}: dim {x.shape[1]} but {SIDECAR_FILE} says {dim}; {fix}")
    if x.shape[0] != count:
        raise IndexLoadError(f"{emb_path}: holds {x.shape[0]} rows but {SIDECAR_FILE} says {count}; {fix}")
    if embeddings_sha256(x) != raw["embeddings_sha256"]:
        raise IndexLoadError(f"{emb_path}: checksum differs from {SIDECAR_FILE} (file changed or damaged); {fix}")
    try:
        index = EmbeddingIndex(x, kind, meta, faiss_index=fidx if kind == "hnsw" else None)
    except ValueError as exc:
        raise IndexLoadError(f"{emb_path}: {exc}; {fix}") from exc
    log.info("loaded %s index %s: %d x %d", kind, folder, count, dim)
    return index


def _load_embeddings(path: Path, fix: str) -> np.ndarray:
    try:
        x = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IndexLoadError(f"{path}: not a readable .npy file ({exc}); {fix}") from exc
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype != np.float32:
        raise IndexLoadError(f"{path}: expected a 2-D float32 matrix, got {getattr(x, 'dtype', '?')} "
                             f"{getattr(x, 'shape', '?')}; {fix}")
    return np.ascontiguousarray(x)
