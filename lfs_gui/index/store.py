"""Saving and loading an index folder (format v2; v1 folders are still read, see :mod:`.sidecar`).

Writes are atomic per file and the sidecar goes last (an existing sidecar is removed first), so an
interrupted save (Ctrl-C, crash, ``kill -9``) leaves a folder that :func:`load_index` rejects instead
of a mixed index; temp files a killed save left behind are removed by the next save. A caller that
assembled ``embeddings.npy`` itself (the builder writes it through a memory map, so a gallery never
sits in memory twice) passes it as ``staged_embeddings`` and it is renamed into place.

Loading checks everything before trusting it and never hands unverified bytes to FAISS: sizes and
checksums against the sidecar (:mod:`.checksums` says when a large ``embeddings.npy`` is verified by
samples), the ``.npy`` header (2-D float32, C order, the recorded shape), the row table
(:mod:`.rows`) and the FAISS header (damaged FAISS files can crash the process, not just raise).
``embeddings.npy`` is memory-mapped read-only. Every problem raises :class:`IndexLoadError` naming the
file and the fix.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from lfs_gui.index.checksums import file_record, verify_file
from lfs_gui.index.faiss_index import KINDS, EmbeddingIndex
from lfs_gui.index.ivf import open_ivf_searcher
from lfs_gui.index.ivf_files import IVF_DATA_FILE, IVF_FILES
from lfs_gui.index.row_table import LAZY_ROWS, RowTable
from lfs_gui.index.rows import ROWS_FILE, read_rows, write_rows
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
from lfs_gui.killpoints import kill_point

log = logging.getLogger(__name__)

# First four bytes faiss.write_index gives each kind (IndexFlatIP, IndexHNSWFlat).
_HEADERS = {"flat": b"IxFI", "hnsw": b"IHNf"}
_TYPES = {"flat": faiss.IndexFlat, "hnsw": faiss.IndexHNSWFlat}
_OWN_FILES = (EMBEDDINGS_FILE, ROWS_FILE, INDEX_FILE, SIDECAR_FILE, *IVF_FILES)


def index_dir(path: str | Path) -> Path:
    """The folder for ``path``: the path itself, or the parent of one of the index's files."""
    p = Path(path).expanduser()
    if p.name in _OWN_FILES:
        p = p.parent
    return p.resolve()


def staged_embeddings_path(folder: Path) -> Path:
    """Where a builder assembles ``embeddings.npy`` before :func:`save_index` renames it into place."""
    return folder / f".{EMBEDDINGS_FILE}.staged.tmp"


def sweep_temp_files(folder: Path, keep: Path | None = None) -> None:
    """Remove temp files a killed save left in ``folder`` (only those of the index's own files)."""
    for name in _OWN_FILES:
        for p in folder.glob(f".{name}.*.tmp"):
            if keep is None or p != keep:
                p.unlink(missing_ok=True)


def save_index(index: EmbeddingIndex, path: str | Path, meta: IndexMeta | None = None,
               staged_embeddings: Path | None = None) -> Path:
    """Write the index folder (v2); returns it. ``meta`` defaults to ``index.meta``; ``staged_embeddings``:
    a ``.npy`` file already holding ``index.embeddings`` (see the module docstring)."""
    folder = index_dir(path)
    meta = replace(meta if meta is not None else index.meta)  # a copy: defaults filled below
    n = len(index)
    if meta.rows is not None and not meta.relpaths:
        raise ValueError(f"{folder}: the rows of this index were read lazily; save it from the gallery instead")
    if (meta.relpaths and len(meta.relpaths) != n) or (meta.labels and len(meta.labels) != n):
        raise ValueError(f"index metadata describes {len(meta.relpaths)} images but the index holds {n} vectors")
    if not meta.relpaths:
        meta.relpaths = [str(i) for i in range(n)]
    if not meta.labels:
        meta.labels = [None] * n
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SIDECAR_FILE).unlink(missing_ok=True)  # no valid-looking index until we are done
    sweep_temp_files(folder, keep=staged_embeddings)

    emb_path = folder / EMBEDDINGS_FILE
    if staged_embeddings is not None:
        with open(staged_embeddings, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(staged_embeddings, emb_path)
    else:
        with atomic_path(emb_path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(index.embeddings), allow_pickle=False)
    kill_point("save:embeddings")
    with atomic_path(folder / ROWS_FILE) as tmp:
        write_rows(tmp, meta.relpaths, meta.labels)
    names = [EMBEDDINGS_FILE, ROWS_FILE]
    if index.kind in ("flat", "ivf"):
        (folder / INDEX_FILE).unlink(missing_ok=True)  # exact search needs no structure; drop an old one
    else:
        atomic_write_bytes(folder / INDEX_FILE, faiss.serialize_index(index.faiss_index()).tobytes())
        names.append(INDEX_FILE)
    if index.kind == "ivf":  # its files are already in place (lfs_gui.index.ivf.iter_ivf_index wrote them)
        names += list(IVF_FILES)
    else:
        for name in IVF_FILES:
            (folder / name).unlink(missing_ok=True)
    files = {name: file_record(folder / name) for name in names}
    side = make_sidecar(meta, folder, dim=index.dim, kind=index.kind, count=n, files=files)
    if index.kind == "ivf":
        side["ivf"] = index.ivf.info.to_dict()
    kill_point("save:before-sidecar")
    atomic_write_bytes(folder / SIDECAR_FILE, dump_sidecar(side))
    log.info("saved %s index of %d x %d to %s", index.kind, n, index.dim, folder)
    return folder


def identity_mismatch(side_path: Path, recorded: str, loaded: str, model_file: str | None = None) -> str:
    """The refusal message for a model whose identity is not the one that embedded the index."""
    what = f"the model {model_file}" if model_file else "the model given"
    return (f"{side_path}: this index was embedded by model {recorded!r}, but {what} is {loaded!r} (other "
            f"weights or preprocessing); its similarities would not match the index. Open the index with "
            f"the model that built it (--model PATH), or re-embed the gallery with this model: "
            f"`lfs-gui index GALLERY --model {model_file or 'PATH'} --out NEW_DIR`")


def load_index(path: str | Path, expected_identity: str | None = None, verify: str = "auto") -> EmbeddingIndex:
    """Load and validate an index folder (see the module docstring); ``verify``: see :mod:`.checksums`."""
    folder = index_dir(path)
    fix = REBUILD.format(dir=folder)
    side_path = folder / SIDECAR_FILE
    if not folder.is_dir():
        raise IndexLoadError(f"{folder}: no such index folder; {fix}")
    if not side_path.is_file():
        raise IndexLoadError(f"{side_path}: missing (not an index folder, or its save was interrupted); {fix}")
    raw, meta = parse_sidecar(side_path, fix)
    dim, count, kind = raw["dim"], raw["count"], raw["index_kind"]
    if kind not in KINDS:
        raise IndexLoadError(f"{side_path}: unknown index_kind {kind!r}; {fix}")
    if expected_identity is not None and meta.model_identity != expected_identity:
        raise IndexLoadError(identity_mismatch(side_path, meta.model_identity, expected_identity))
    if raw["version"] == 1:
        return _load_v1(folder, raw, meta, fix)

    files = raw["files"]
    need = [ROWS_FILE, EMBEDDINGS_FILE] + ([INDEX_FILE] if kind == "hnsw" else []) + (list(IVF_FILES) if kind == "ivf" else [])
    for name in need:
        if name not in files:
            raise IndexLoadError(f"{side_path}: does not record {name}; {fix}")
        if not (folder / name).is_file():
            raise IndexLoadError(f"{folder / name}: missing; {fix}")
    for name in need:  # rows and the FAISS structures are read whole anyway: always verified in full
        problem = verify_file(folder / name, files[name], verify if name in (EMBEDDINGS_FILE, IVF_DATA_FILE) else "full")
        if problem:
            raise IndexLoadError(f"{folder / name}: {problem}; {fix}")
    if count >= LAZY_ROWS:  # no Python object per image: rows are read when asked for
        meta.rows = RowTable(folder / ROWS_FILE, count, len(meta.classes), fix)
    else:
        meta.relpaths, meta.labels = read_rows(folder / ROWS_FILE, count, len(meta.classes), fix)
    x = _map_embeddings(folder / EMBEDDINGS_FILE, fix, count, dim)
    fidx = _read_faiss(folder / INDEX_FILE, kind, dim, count, fix, None) if kind == "hnsw" else None
    ivf = open_ivf_searcher(folder, raw.get("ivf"), folder / EMBEDDINGS_FILE, fix) if kind == "ivf" else None
    try:
        index = EmbeddingIndex(x, kind, meta, faiss_index=fidx, ivf=ivf)
    except ValueError as exc:
        raise IndexLoadError(f"{folder / EMBEDDINGS_FILE}: {exc}; {fix}") from exc
    log.info("loaded %s index %s: %d x %d", kind, folder, count, dim)
    return index


def _map_embeddings(path: Path, fix: str, count: int, dim: int) -> np.ndarray:
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IndexLoadError(f"{path}: not a readable .npy file ({exc}); {fix}") from exc
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype != np.float32 or not x.flags.c_contiguous:
        raise IndexLoadError(f"{path}: expected a 2-D float32 C-order matrix, got {getattr(x, 'dtype', '?')} "
                             f"{getattr(x, 'shape', '?')}; {fix}")
    if x.shape != (count, dim):
        raise IndexLoadError(f"{path}: holds {x.shape[0]} x {x.shape[1]} but {SIDECAR_FILE} says {count} x {dim}; {fix}")
    return x


def _read_faiss(path: Path, kind: str, dim: int, count: int, fix: str, sha: str | None) -> faiss.Index:
    data = path.read_bytes()
    if sha is not None and hashlib.sha256(data).hexdigest() != sha:
        raise IndexLoadError(f"{path}: corrupt or truncated ({len(data)} bytes, checksum differs from "
                             f"{SIDECAR_FILE}); {fix}")
    if data[:4] != _HEADERS[kind]:
        raise IndexLoadError(f"{path}: header {data[:4]!r} is not a {kind} FAISS index; {fix}")
    try:
        fidx = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))  # already the concrete type
    except RuntimeError as exc:
        raise IndexLoadError(f"{path}: FAISS cannot read it ({str(exc).splitlines()[0]}); {fix}") from exc
    if not isinstance(fidx, _TYPES[kind]):
        raise IndexLoadError(f"{path}: holds a {type(fidx).__name__}, not a {kind} index; {fix}")
    if fidx.d != dim:
        raise IndexLoadError(f"{path}: dim {fidx.d} but {SIDECAR_FILE} says {dim}; {fix}")
    if fidx.ntotal != count:
        raise IndexLoadError(f"{path}: holds {fidx.ntotal} vectors but {SIDECAR_FILE} says {count}; {fix}")
    if fidx.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexLoadError(f"{path}: metric is not inner product; {fix}")
    return fidx


def _load_v1(folder: Path, raw: dict, meta: IndexMeta, fix: str) -> EmbeddingIndex:
    """A version 1 folder: JSON rows, array-bytes checksum, ``index.faiss`` for every kind."""
    kind, dim, count = raw["index_kind"], raw["dim"], raw["count"]
    idx_path, emb_path = folder / INDEX_FILE, folder / EMBEDDINGS_FILE
    for p in (idx_path, emb_path):
        if not p.is_file():
            raise IndexLoadError(f"{p}: missing; {fix}")
    fidx = _read_faiss(idx_path, kind, dim, count, fix, raw["index_sha256"])
    try:
        x = np.load(io.BytesIO(emb_path.read_bytes()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IndexLoadError(f"{emb_path}: not a readable .npy file ({exc}); {fix}") from exc
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype != np.float32:
        raise IndexLoadError(f"{emb_path}: expected a 2-D float32 matrix, got {getattr(x, 'dtype', '?')} "
                             f"{getattr(x, 'shape', '?')}; {fix}")
    if x.shape != (count, dim):
        raise IndexLoadError(f"{emb_path}: holds {x.shape[0]} x {x.shape[1]} but {SIDECAR_FILE} says {count} x {dim}; {fix}")
    if embeddings_sha256(x) != raw["embeddings_sha256"]:
        raise IndexLoadError(f"{emb_path}: checksum differs from {SIDECAR_FILE} (file changed or damaged); {fix}")
    try:
        index = EmbeddingIndex(x, kind, meta, faiss_index=fidx if kind == "hnsw" else None)
    except ValueError as exc:
        raise IndexLoadError(f"{emb_path}: {exc}; {fix}") from exc
    log.info("loaded version 1 %s index %s: %d x %d", kind, folder, count, dim)
    return index
