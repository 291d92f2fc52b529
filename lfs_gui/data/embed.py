"""Embed a gallery of image files in batches, robust to bad files, resumable through the shard store.

:class:`Embedder` is the local embedding engine. :meth:`Embedder.iter_plan` looks every file up in
the :mod:`shard store <lfs_gui.data.shards>` (key: path relative to the gallery root + size + mtime)
and embeds only the files it does not hold, writing new shards as it goes (every
``shard_rows`` images or ``shard_seconds`` seconds, atomically). :meth:`Embedder.iter_gather` then
copies the embeddings, in gallery order, into any float32 matrix, e.g. a memory map of the index's
``embeddings.npy``, so a gallery never has to fit in memory twice. Interrupted at any point
(Ctrl-C flushes the last batches; ``kill -9`` loses at most one shard), the same call resumes where it
stopped; a shard found damaged is dropped and its images embedded again.

Images are decoded with PIL in a ``torch`` ``DataLoader`` (optionally with worker processes) through
:func:`load_rgb`: odd modes (CMYK, 16-bit, greyscale, palette, alpha) become 8-bit RGB, EXIF
orientation is applied. A file that cannot be decoded is skipped and reported, never fatal (and the
failure is cached too, until the file changes). The model runs on its own device
(:attr:`EmbeddingModel.device`, chosen by :mod:`lfs_gui.device`), optionally under autocast
(``amp``, accelerators only: a separate cache space); stored embeddings are always float32.

:func:`iter_embed_paths` is the in-memory form for a list of files (a throw-away store when no
``cache_dir`` is given). Each ``yield`` is a cancel point (closing the generator stops the loader's
workers and writes the shard of what is finished).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..jobs import Progress, run_generator
from ..killpoints import kill_point
from ..models.base import EmbeddingModel, Preprocessing
from .images import load_rgb, upright_size  # noqa: F401 - re-exported: the decoder the model uses
from .shards import DEFAULT_SHARD_ROWS, DEFAULT_SHARD_SECONDS, FileRecords, Located, ShardError, ShardStore, ShardWriter

log = logging.getLogger(__name__)


@dataclass
class EmbedResult:
    """``embeddings[j]`` belongs to the j-th path whose ``ok`` is True; ``failures`` = (path, reason).

    ``embedded`` files were decoded in this run, ``reused`` ones taken from the cache.
    """

    embeddings: np.ndarray
    ok: np.ndarray
    failures: list[tuple[Path, str]] = field(default_factory=list)
    embedded: int = 0
    reused: int = 0

    def ok_paths(self, paths: Sequence[str | os.PathLike]) -> list[Path]:
        """The paths that have an embedding, in ``embeddings`` order."""
        return [Path(p) for p, good in zip(paths, self.ok) if good]


@dataclass
class EmbedPlan:
    """Where every file's embedding is after :meth:`Embedder.iter_plan`.

    ``transient`` holds the rows that could not be cached (file missing, or changed while it was
    read): record index -> (reason, "" when decoded; embedding or None).
    """

    records: FileRecords
    located: Located
    transient: dict[int, tuple[str, np.ndarray | None]] = field(default_factory=dict)
    embedded: int = 0
    reused: int = 0

    @property
    def ok(self) -> np.ndarray:
        ok = self.located.ok & (self.located.shard >= 0)
        for i, (_, emb) in self.transient.items():
            ok[i] = emb is not None
        return ok


class _ImageFiles(Dataset):
    """``(position, tensor, ok, reason, size, mtime_ns)`` per path; the stat is taken before decoding,
    so a file changed while it is read is noticed (and not cached)."""

    def __init__(self, paths: Sequence[Path], pre: Preprocessing) -> None:
        self.paths = list(paths)
        self.pre = pre

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor, bool, str, int, int]:
        size = mtime = -1
        try:
            st = os.stat(self.paths[i])
            size, mtime = st.st_size, st.st_mtime_ns
            return i, self.pre.to_tensor(load_rgb(self.paths[i])), True, "", size, mtime
        except Exception as exc:  # noqa: BLE001 - any decoder error means "skip this file"
            reason = f"{type(exc).__name__}: {exc}".strip()[:300]
            side = self.pre.input_size
            return i, torch.zeros(3, side, side), False, reason, size, mtime


def _collate(items: list[tuple[int, torch.Tensor, bool, str, int, int]]) -> tuple[Any, ...]:
    pos, xs, good, reasons, sizes, mtimes = zip(*items)
    return (np.array(pos, np.int64), torch.stack(xs), np.array(good, bool), list(reasons),
            np.array(sizes, np.int64), np.array(mtimes, np.int64))


# (positions, embeddings (B, dim) float32 with zeros where not ok, ok, reasons, sizes, mtimes_ns)
EmbeddedBatch = tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]


class Embedder:
    """Embeds files into a :class:`ShardStore` with ``model`` (see the module docstring)."""

    def __init__(self, model: EmbeddingModel, store: ShardStore, batch_size: int = 32, num_workers: int = 0,
                 amp: bool = False, shard_rows: int = DEFAULT_SHARD_ROWS,
                 shard_seconds: float = DEFAULT_SHARD_SECONDS) -> None:
        if store.model_identity != model.identity() or store.dim != model.dim:
            raise ValueError(f"{store.folder}: shard store of {store.model_identity!r}, not of {model.identity()!r}")
        self.model, self.store = model, store
        self.batch_size, self.num_workers, self.amp = max(1, int(batch_size)), max(0, int(num_workers)), bool(amp)
        self.shard_rows, self.shard_seconds = shard_rows, shard_seconds

    def iter_plan(self, records: FileRecords) -> Generator[Progress, None, EmbedPlan]:
        """Look the files up in the store and embed those it does not hold; returns the plan."""
        n = len(records)
        loc = self.store.lookup(records)
        plan = EmbedPlan(records, loc, reused=int((loc.shard >= 0).sum()))
        todo = np.nonzero(loc.shard < 0)[0]
        yield Progress(plan.reused, n, f"embedding {len(todo)} images ({plan.reused} of {n} cached)")
        yield from self._iter_embed(plan, todo)
        log.info("embedding: %d images embedded, %d reused from %s", plan.embedded, plan.reused, self.store.folder)
        return plan

    def _iter_embed(self, plan: EmbedPlan, todo: np.ndarray) -> Generator[Progress, None, None]:
        if not len(todo):
            return
        rec, n = plan.records, len(plan.records)
        writer = ShardWriter(self.store, rec, plan.located, self.shard_rows, self.shard_seconds)
        done = batches = 0
        source = self._batches(rec, todo)
        try:
            for pos, emb, good, reasons, sizes, mtimes in source:
                idx = todo[pos]
                for i, g, r in zip(idx, good, reasons):
                    if not g:
                        log.warning("skipping %s: %s", rec.paths[i], r)
                if done == 0:
                    kill_point("embed:first-batch")
                keep = (sizes == rec.sizes[idx]) & (mtimes == rec.mtimes[idx]) & (rec.sizes[idx] >= 0)
                for j in np.nonzero(~keep)[0]:
                    plan.transient[int(idx[j])] = (reasons[j], emb[j].copy() if good[j] else None)
                writer.add(idx[keep], good[keep], [r for r, k in zip(reasons, keep) if k], emb[keep])
                batches += 1
                kill_point(f"batch:{batches}")
                done += len(idx)
                plan.embedded += len(idx)
                yield Progress(min(n, plan.reused + done), n, f"embedding {done}/{len(todo)} images")
        finally:
            source.close()  # stops the decoding workers (or the Ray job) at once when the consumer stops early
            try:
                writer.flush()  # also on Ctrl-C / cancel: every finished batch is kept
            except OSError as exc:
                log.warning("could not write the last embedding shard to %s: %s", self.store.folder, exc)

    def _batches(self, rec: FileRecords, todo: np.ndarray) -> Generator[EmbeddedBatch, None, None]:
        """Decode and embed the files ``todo`` (record indices); one :data:`EmbeddedBatch` per batch,
        positions into ``todo``. The local engine: a ``DataLoader`` decodes, the model embeds here
        (:class:`lfs_gui.data.ray_engine.RayEmbedder` runs the same steps as a Ray Data job)."""
        dev = self.model.device
        loader = DataLoader(_ImageFiles([rec.paths[i] for i in todo], self.model.preprocessing),
                            batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                            collate_fn=_collate, pin_memory=dev.type == "cuda")
        it: Iterator[Any] = iter(loader)
        try:
            for pos, x, good, reasons, sizes, mtimes in it:
                emb = np.zeros((len(pos), self.model.dim), np.float32)
                if good.any():
                    emb[good] = self.model.embed_batch(x[torch.from_numpy(good)], amp=self.amp)
                yield pos, emb, good, reasons, sizes, mtimes
        finally:
            del it  # shuts worker processes down at once

    def iter_gather(self, plan: EmbedPlan, out: np.ndarray) -> Generator[Progress, None, dict[int, str]]:
        """Copy the j-th decodable file's embedding into ``out[j]`` (``out``: (plan.ok.sum(), dim)).

        Returns {record index: reason} of the files that could not be decoded. A shard found damaged
        now is dropped and its files embedded again (their decodability must not change)."""
        ok = plan.ok
        if out.shape != (int(ok.sum()), self.model.dim):
            raise ValueError(f"output matrix is {out.shape}, need {(int(ok.sum()), self.model.dim)}")
        pos = np.cumsum(ok) - 1
        reasons: dict[int, str] = {}
        cached = plan.located.shard >= 0
        cached[list(plan.transient)] = False
        pending = np.nonzero(cached)[0]
        self._fill_transient(plan, list(plan.transient), ok, pos, out, reasons)
        for _attempt in range(3):
            loc = plan.located
            sids = loc.shard[pending]
            order = np.argsort(sids, kind="stable")
            groups = np.split(pending[order], np.unique(sids[order], return_index=True)[1][1:]) if len(pending) else []
            bad: list[np.ndarray] = []
            for k, idx in enumerate(groups):
                path = loc.files[int(loc.shard[idx[0]])]
                try:
                    rows = self.store.read(path)
                except ShardError as exc:
                    self.store.drop(path, str(exc))
                    bad.append(idx)
                    continue
                r, good = loc.row[idx], ok[idx]
                out[pos[idx[good]]] = rows.embeddings[r[good]]
                for i, rr in zip(idx[~good], r[~good]):
                    reasons[int(i)] = rows.reasons[rr] or "could not be decoded"
                yield Progress(k + 1, len(groups), f"assembling embeddings from {len(groups)} shards")
            if not bad:
                return reasons
            pending = np.concatenate(bad)
            loc.shard[pending] = -1
            yield from self._iter_embed(plan, pending)
            if (plan.ok[pending] != ok[pending]).any():
                raise ValueError(f"{self.store.folder}: images changed while the build ran; run the command again")
            moved = [int(i) for i in pending if int(i) in plan.transient]
            self._fill_transient(plan, moved, ok, pos, out, reasons)
            pending = np.array([i for i in pending if int(i) not in plan.transient], np.int64)  # few: damaged shards
        raise ValueError(f"{self.store.folder}: shards keep failing their checksums (disk trouble?); "
                         "delete this folder and run the command again")

    @staticmethod
    def _fill_transient(plan: EmbedPlan, idx: list[int], ok: np.ndarray, pos: np.ndarray, out: np.ndarray,
                        reasons: dict[int, str]) -> None:
        for i in idx:
            reason, emb = plan.transient[i]
            if ok[i]:
                out[pos[i]] = emb
            else:
                reasons[i] = reason


@contextlib.contextmanager
def open_store(cache_dir: str | os.PathLike | None, model: EmbeddingModel, amp: bool = False) -> Iterator[ShardStore]:
    """The model's shard store under ``cache_dir``, or a throw-away one (deleted on exit) when None."""
    precision = "amp" if amp and model.device.type != "cpu" else "fp32"
    if cache_dir is not None:
        yield ShardStore.for_model(cache_dir, model.identity(), model.dim, precision)
        return
    with tempfile.TemporaryDirectory(prefix="lfs-gui-embed-") as tmp:
        yield ShardStore.for_model(tmp, model.identity(), model.dim, precision)


def iter_embed_paths(
    model: EmbeddingModel,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 32,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    relpaths: Sequence[str] | None = None,
    amp: bool = False,
) -> Generator[Progress, None, EmbedResult]:
    """Embed ``paths`` with ``model``; yields :class:`Progress`, returns :class:`EmbedResult` (in memory).

    ``relpaths`` (default: the absolute paths) name the files in the cache; give paths relative to the
    gallery root so a moved gallery keeps its cache. ``cache_dir`` None: nothing is kept.
    """
    plist = [Path(os.path.abspath(p)) for p in paths]
    if cache_dir is not None:
        cdir = Path(os.path.abspath(cache_dir))
        if any(p.parent == cdir for p in plist):
            raise ValueError(f"cache_dir {cdir} is an image folder; caches never go next to the images")
    rels = list(relpaths) if relpaths is not None else [p.as_posix() for p in plist]
    with open_store(cache_dir, model, amp) as store:
        emb = Embedder(model, store, batch_size=batch_size, num_workers=num_workers, amp=amp)
        plan = yield from emb.iter_plan(FileRecords.stat(plist, rels))
        out = np.zeros((int(plan.ok.sum()), model.dim), np.float32)
        reasons = yield from emb.iter_gather(plan, out)
    return EmbedResult(out, plan.ok, [(plist[i], reasons[i]) for i in sorted(reasons)], plan.embedded, plan.reused)


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
