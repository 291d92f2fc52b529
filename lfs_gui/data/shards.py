"""The embedding shard store: embeddings saved in small immutable files as they are computed.

``lfs-gui index`` (the local engine, :mod:`lfs_gui.data.embed`) and the Ray engine write the SAME
shards, so a build interrupted in one engine resumes in the other, adding images to a gallery embeds
only the new ones, and another split of the same gallery reuses what is cached. This docstring is the
format's specification.

Layout (``CACHE`` = ``lfs-gui index --cache-dir``, default ``<user cache>/embeddings``, see
:func:`lfs_gui.paths.user_cache_dir`; never inside a gallery)::

    CACHE/<slug>-<precision>-<h16>/       one folder per embedding space (see space_dir)
        space.json                        {"format": "lfs-gui-embed-space", "version": 1,
                                           "model_identity": ..., "precision": ..., "dim": D}
        shard-<32 hex>.parquet            any number of shards, each immutable once in place
        .shard-<...>.tmp                  a shard being written (readers ignore dot files)

* An **embedding space** is ``(model identity, precision)``: ``model_identity`` is
  :meth:`EmbeddingModel.identity` (class, preprocessing and weights), ``precision`` is ``fp32`` or
  ``amp`` (autocast on an accelerator). The device is not part of it: fp32 embeddings from a GPU and a
  CPU agree to ~1e-6 and share shards. ``slug`` is the model name with characters outside
  ``[A-Za-z0-9._+-]`` replaced by ``_`` (at most 48), ``h16`` the first 16 hex digits of
  ``sha256(f"{model_identity}|{precision}")``.
* A **shard** is a Parquet file with one row per image file and the columns

  ============  ==============================  ==============================================
  ``key``       uint64                          :func:`row_key` of (relpath, size, mtime_ns)
  ``relpath``   string                          path relative to the gallery root, ``/``-separated
  ``size``      int64                           file size in bytes when embedded
  ``mtime_ns``  int64                           ``os.stat().st_mtime_ns`` when embedded
  ``ok``        bool                            False: the file could not be decoded
  ``reason``    string                          why not (empty when ``ok``)
  ``embedding`` fixed_size_list<float32>[D]     L2-normalised, float32 (zeros when not ``ok``)
  ============  ==============================  ==============================================

  and, in the Parquet schema's key/value metadata under ``lfs_gui.shard``, the JSON object
  ``{"format": "lfs-gui-embed-shard", "version": 1, "model_identity", "precision", "dim", "rows",
  "sha256_keys", "sha256"}`` where ``sha256_keys`` is the hex sha256 of ``key || size || mtime_ns ||
  ok`` (little-endian uint64/int64/int64 arrays, ``ok`` as one byte per row) and ``sha256`` the hex
  sha256 of those bytes followed by the ``embedding`` matrix (float32 little-endian, row-major) and
  the UTF-8 bytes of ``"\\0".join(relpath)`` and ``"\\0".join(reason)``.
* A file is **looked up** by its key and must also match ``size`` and ``mtime_ns``: a changed file
  (new size or mtime) misses and is embedded again; an unchanged one is reused wherever the gallery
  now lives (keys use the path relative to the gallery root).
* **Writing** (:func:`write_shard`): a temp file ``.shard-*.tmp`` in the same folder, fsync, then
  ``os.replace`` onto ``shard-<uuid4 hex>.parquet``. Any number of processes (or Ray workers) may
  write into one space at once; a killed writer leaves at most a dot temp file, removed by the next
  writer once it is a day old. Two shards may hold the same key (concurrent builds); they hold the
  same embedding, and the shard whose name sorts first wins.
* **Verification**: :meth:`ShardStore.lookup` reads the small columns of every shard and checks
  ``sha256_keys``; reading embeddings checks ``sha256``. A shard that is unreadable (torn: no Parquet
  footer), of another space, or whose checksum differs is deleted with a warning and its rows are
  embedded again. Nothing else ever deletes a shard: ``rm -r`` a space folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lfs_gui.jobs import atomic_path
from lfs_gui.killpoints import kill_point

log = logging.getLogger(__name__)

SHARD_FORMAT, SHARD_VERSION = "lfs-gui-embed-shard", 1
SPACE_FORMAT, SPACE_VERSION = "lfs-gui-embed-space", 1
SPACE_FILE = "space.json"
META_KEY = b"lfs_gui.shard"
PRECISIONS = ("fp32", "amp")
DEFAULT_SHARD_ROWS = 4096
DEFAULT_SHARD_SECONDS = 60.0
_STALE_TMP_SECONDS = 24 * 3600
_LIGHT = ["key", "size", "mtime_ns", "ok"]


class ShardError(ValueError):
    """A shard file is unreadable, of another embedding space, or damaged."""


def row_key(relpath: str, size: int, mtime_ns: int) -> int:
    """First 8 bytes (little-endian) of ``sha256(f"{relpath}\\0{size}\\0{mtime_ns}")`` as uint64."""
    digest = hashlib.sha256(f"{relpath}\0{int(size)}\0{int(mtime_ns)}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def space_dir(cache_root: str | os.PathLike, model_identity: str, precision: str = "fp32") -> Path:
    """The folder of the embedding space ``(model_identity, precision)`` under ``cache_root``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "_", model_identity.split(":")[0])[:48] or "model"
    h16 = hashlib.sha256(f"{model_identity}|{precision}".encode("utf-8")).hexdigest()[:16]
    return Path(cache_root) / f"{slug}-{precision}-{h16}"


@dataclass
class FileRecords:
    """The image files to embed, as the cache sees them; ``size == -1`` marks a file that is not there."""

    paths: list[Path]
    relpaths: list[str]
    sizes: np.ndarray
    mtimes: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def stat(cls, paths: list[Path], relpaths: list[str]) -> "FileRecords":
        """``os.stat`` each path; ``relpaths[i]`` is path ``i`` relative to its gallery root."""
        n = len(paths)
        sizes, mtimes, keys = np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.uint64)
        for i, (p, rel) in enumerate(zip(paths, relpaths)):
            try:
                st = os.stat(p)
            except OSError:
                continue
            sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
            keys[i] = row_key(rel, st.st_size, st.st_mtime_ns)
        return cls(list(paths), list(relpaths), sizes, mtimes, keys)


@dataclass
class ShardRows:
    """The content of one shard (columns as in the module docstring)."""

    keys: np.ndarray
    relpaths: list[str]
    sizes: np.ndarray
    mtimes: np.ndarray
    ok: np.ndarray
    reasons: list[str]
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def _digests(keys: np.ndarray, sizes: np.ndarray, mtimes: np.ndarray, ok: np.ndarray,
             emb: np.ndarray | None = None, relpaths: list[str] | None = None,
             reasons: list[str] | None = None) -> tuple[str, str | None]:
    h = hashlib.sha256()
    for a, dt in ((keys, "<u8"), (sizes, "<i8"), (mtimes, "<i8"), (ok, "u1")):
        h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
    light = h.hexdigest()
    if emb is None:
        return light, None
    h.update(np.ascontiguousarray(emb, dtype="<f4").tobytes())
    h.update("\0".join(relpaths or []).encode("utf-8"))
    h.update("\0".join(reasons or []).encode("utf-8"))
    return light, h.hexdigest()


def write_shard(folder: Path, rows: ShardRows, model_identity: str, precision: str) -> Path:
    """Write ``rows`` as a new shard in ``folder`` atomically (temp file, fsync, rename); returns it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    emb = np.ascontiguousarray(rows.embeddings, dtype=np.float32)
    n, dim = emb.shape
    light, full = _digests(rows.keys, rows.sizes, rows.mtimes, rows.ok, emb, rows.relpaths, rows.reasons)
    meta = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "model_identity": model_identity,
            "precision": precision, "dim": dim, "rows": n, "sha256_keys": light, "sha256": full}
    table = pa.table({
        "key": pa.array(np.asarray(rows.keys, np.uint64)),
        "relpath": pa.array(list(rows.relpaths), pa.string()),
        "size": pa.array(np.asarray(rows.sizes, np.int64)),
        "mtime_ns": pa.array(np.asarray(rows.mtimes, np.int64)),
        "ok": pa.array(np.asarray(rows.ok, bool)),
        "reason": pa.array(list(rows.reasons), pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), dim),
    }).replace_schema_metadata({META_KEY: json.dumps(meta).encode("utf-8")})
    path = folder / f"shard-{uuid.uuid4().hex}.parquet"
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="none")
    return path


def _open(path: Path, model_identity: str, precision: str, dim: int):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        meta = json.loads((pf.schema_arrow.metadata or {})[META_KEY])
    except Exception as exc:  # noqa: BLE001 - torn file, not Parquet, no/garbled metadata: all "unreadable"
        raise ShardError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    want = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "model_identity": model_identity,
            "precision": precision, "dim": dim}
    if any(meta.get(k) != v for k, v in want.items()):
        raise ShardError(f"{path}: holds {meta.get('model_identity')!r}/{meta.get('precision')!r} "
                         f"{meta.get('dim')}-d shards, not {model_identity!r}/{precision!r} {dim}-d")
    if pf.metadata.num_rows != meta.get("rows"):
        raise ShardError(f"{path}: {pf.metadata.num_rows} rows but its metadata says {meta.get('rows')}")
    return pf, meta


def read_shard_keys(path: Path, model_identity: str, precision: str, dim: int) -> tuple[np.ndarray, ...]:
    """``(keys, sizes, mtimes, ok)`` of a shard, checked against ``sha256_keys``; raises ShardError."""
    pf, meta = _open(path, model_identity, precision, dim)
    try:
        t = pf.read(columns=_LIGHT)
        cols = tuple(t.column(c).to_numpy() for c in _LIGHT)
    except Exception as exc:  # noqa: BLE001
        raise ShardError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    if _digests(*cols)[0] != meta.get("sha256_keys"):
        raise ShardError(f"{path}: checksum of its keys differs (damaged)")
    return cols


def read_shard(path: Path, model_identity: str, precision: str, dim: int) -> ShardRows:
    """The whole shard, checked against ``sha256``; raises ShardError."""
    pf, meta = _open(path, model_identity, precision, dim)
    try:
        t = pf.read()
        emb = t.column("embedding").combine_chunks().values.to_numpy().reshape(-1, dim)
        rows = ShardRows(t.column("key").to_numpy(), t.column("relpath").to_pylist(), t.column("size").to_numpy(),
                         t.column("mtime_ns").to_numpy(), t.column("ok").to_numpy(zero_copy_only=False),
                         t.column("reason").to_pylist(), np.ascontiguousarray(emb, dtype=np.float32))
    except Exception as exc:  # noqa: BLE001
        raise ShardError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    got = _digests(rows.keys, rows.sizes, rows.mtimes, rows.ok, rows.embeddings, rows.relpaths, rows.reasons)[1]
    if got != meta.get("sha256"):
        raise ShardError(f"{path}: checksum differs (damaged)")
    return rows


@dataclass
class Located:
    """Where each record's embedding is: ``files[shard[i]]`` row ``row[i]`` (``shard[i] == -1``: nowhere)."""

    shard: np.ndarray
    row: np.ndarray
    ok: np.ndarray
    files: list[Path] = field(default_factory=list)

    @classmethod
    def empty(cls, n: int) -> "Located":
        return cls(np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, bool))

    def place(self, idx: np.ndarray, file: Path, ok: np.ndarray) -> None:
        """Record that ``idx`` (record indices) are rows 0..len-1 of the new shard ``file``."""
        self.files.append(file)
        self.shard[idx], self.row[idx], self.ok[idx] = len(self.files) - 1, np.arange(len(idx)), ok


class ShardStore:
    """The shards of one embedding space (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, model_identity: str, dim: int, precision: str = "fp32") -> None:
        self.folder = Path(folder)
        self.model_identity, self.dim, self.precision = model_identity, int(dim), precision
        self.folder.mkdir(parents=True, exist_ok=True)
        space = {"format": SPACE_FORMAT, "version": SPACE_VERSION, "model_identity": model_identity,
                 "precision": precision, "dim": self.dim}
        file = self.folder / SPACE_FILE
        if not file.is_file():
            from lfs_gui.jobs import atomic_write_bytes

            atomic_write_bytes(file, (json.dumps(space, indent=1) + "\n").encode("utf-8"))
        self._sweep_temp_files()

    @classmethod
    def for_model(cls, cache_root: str | os.PathLike, model_identity: str, dim: int, precision: str = "fp32") -> "ShardStore":
        return cls(space_dir(cache_root, model_identity, precision), model_identity, dim, precision)

    def shard_files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("shard-*.parquet") if p.is_file())

    def drop(self, path: Path, why: str) -> None:
        log.warning("embedding cache: dropping %s (%s); its images will be embedded again", path, why)
        path.unlink(missing_ok=True)

    def lookup(self, records: FileRecords) -> Located:
        """Locate every record present in a shard (matching key, size and mtime)."""
        loc = Located.empty(len(records))
        parts: list[tuple[np.ndarray, ...]] = []
        for path in self.shard_files():
            try:
                keys, sizes, mtimes, ok = read_shard_keys(path, self.model_identity, self.precision, self.dim)
            except ShardError as exc:
                self.drop(path, str(exc))
                continue
            loc.files.append(path)
            sid = np.full(len(keys), len(loc.files) - 1, np.int64)
            parts.append((keys, sizes, mtimes, ok, sid, np.arange(len(keys), dtype=np.int64)))
        if not parts or not len(records):
            return loc
        keys, sizes, mtimes, ok, sid, row = (np.concatenate(c) for c in zip(*parts))
        order = np.argsort(keys, kind="stable")  # equal keys: the shard whose name sorts first wins
        skeys = keys[order]
        pos = np.minimum(np.searchsorted(skeys, records.keys), len(skeys) - 1)
        cand = order[pos]
        hit = ((skeys[pos] == records.keys) & (sizes[cand] == records.sizes) & (mtimes[cand] == records.mtimes)
               & (records.sizes >= 0))
        loc.shard[hit], loc.row[hit], loc.ok[hit] = sid[cand[hit]], row[cand[hit]], ok[cand[hit]]
        return loc

    def read(self, path: Path) -> ShardRows:
        return read_shard(path, self.model_identity, self.precision, self.dim)

    def write(self, rows: ShardRows) -> Path:
        return write_shard(self.folder, rows, self.model_identity, self.precision)

    def _sweep_temp_files(self) -> None:
        now = time.time()
        for p in self.folder.glob(".shard-*.tmp"):
            try:
                if now - p.stat().st_mtime > _STALE_TMP_SECONDS:
                    p.unlink()
            except OSError:
                pass


class ShardWriter:
    """Buffers embedded rows and writes a shard every ``shard_rows`` rows or ``shard_seconds`` seconds
    (only between batches, so a resumed build batches its images as the first run did)."""

    def __init__(self, store: ShardStore, records: FileRecords, located: Located,
                 shard_rows: int = DEFAULT_SHARD_ROWS, shard_seconds: float = DEFAULT_SHARD_SECONDS) -> None:
        self.store, self.records, self.located = store, records, located
        self.shard_rows, self.shard_seconds = max(1, int(shard_rows)), float(shard_seconds)
        self.written = 0
        self._buf: list[tuple[np.ndarray, np.ndarray, list[str], np.ndarray]] = []
        self._count = 0
        self._since = time.monotonic()

    def add(self, idx: np.ndarray, ok: np.ndarray, reasons: list[str], emb: np.ndarray) -> None:
        """Rows for records ``idx``: ``emb[j]`` is record ``idx[j]``'s embedding (zeros when not ``ok[j]``)."""
        self._buf.append((np.asarray(idx, np.int64), np.asarray(ok, bool), list(reasons), emb))
        self._count += len(idx)
        if self._count >= self.shard_rows or time.monotonic() - self._since >= self.shard_seconds:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered rows as one shard (nothing when empty); returns its path."""
        self._since = time.monotonic()
        if not self._buf:
            return None
        idx = np.concatenate([b[0] for b in self._buf])
        ok = np.concatenate([b[1] for b in self._buf])
        reasons = [r for b in self._buf for r in b[2]]
        emb = np.concatenate([b[3] for b in self._buf]).astype(np.float32, copy=False)
        self._buf, self._count = [], 0
        r = self.records
        path = self.store.write(ShardRows(r.keys[idx], [r.relpaths[i] for i in idx], r.sizes[idx], r.mtimes[idx],
                                          ok, reasons, emb))
        self.located.place(idx, path, ok)
        self.written += 1
        kill_point(f"shard:{self.written}")
        return path
