"""The Ray engine: embed a gallery as a Ray Data job, into the same shards as the local engine.

``lfs-gui index GALLERY --engine ray [--ray-address ADDR]`` runs the embedding on Ray Data; the rest
of the build (index, row table, decoder) is the local one. The job:

1. the driver looks every file up in the :mod:`shard store <lfs_gui.data.shards>`, exactly as the
   local engine does, and sends only the missing files: a dataset of (position, path) rows in blocks
   of ``batch_size`` files (so there is work for every actor);
2. **decode** (``load_rgb`` + the model's preprocessing, the local engine's :class:`_ImageFiles`, so
   both engines feed the model the same tensors) and **embed** (``EmbeddingModel.embed_batch``) run in
   an actor pool, each actor holding one copy of the model;
3. the actors' rows (position, embedding, ok, reason, size and mtime read before decoding) stream back
   to the driver, which writes shards with the same :class:`~lfs_gui.data.shards.ShardWriter` as the
   local engine (``batch_size`` per forward, a shard every ``shard_rows`` rows or ``shard_seconds``).

So a build resumes from finished shards whichever engine wrote them, and an interrupted Ray job loses
at most what was not yet written. The driver writes every shard: the cache only has to be reachable
from the driver, and 2 KB per image streams back comfortably (100M images in 10 hours: ~6 MB/s).

**Pool sizing** (:func:`plan_pool`, from ``ray.cluster_resources()``): with GPUs (and a model on an
accelerator device), one actor per GPU holding one CPU, and decoding split off into CPU tasks on the
remaining CPUs; without, decoding runs inside the actors (one stage: nothing else waits for a CPU, so
the pool can never starve a read stage of CPUs, which hangs Ray Data when an actor pool takes every
CPU) with ``cpus_per_actor`` CPUs each (torch threads), ``floor(CPUs / cpus_per_actor)`` actors.

**Ray**: ``ray.init(address)``; ``address=None`` honours ``RAY_ADDRESS`` and otherwise starts a local
instance on this machine (stopped again at the end); an already initialised Ray is reused and left
running. On a cluster every node needs lfs-gui installed and the gallery at the same path.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lfs_gui.data.embed import EmbeddedBatch, Embedder, _ImageFiles
from lfs_gui.data.shards import FileRecords

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'lfs-gui[scale]' (or: pip install 'ray[data]>=2.40')"


class RayUnavailable(ValueError):
    """Ray Data is not installed (or not usable); the message says how to install it."""


def import_ray() -> Any:
    """The ``ray`` module with ``ray.data``, or :class:`RayUnavailable` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra that the engine needs
    except ImportError as exc:
        raise RayUnavailable(f"--engine ray needs Ray Data, which is not installed ({exc}); install it with "
                             f"{INSTALL_HINT}, or use --engine local") from exc
    return ray


@dataclass(frozen=True)
class PoolPlan:
    """How many actors, what each reserves, and whether decoding is a separate CPU stage."""

    actors: int
    actor_cpus: float
    actor_gpus: float
    separate_decode: bool

    def describe(self) -> str:
        what = f"{self.actors} actor(s) x ({self.actor_cpus:g} CPU" + (f", {self.actor_gpus:g} GPU)" if self.actor_gpus else ")")
        return what + (", decoding in CPU tasks" if self.separate_decode else ", decoding in the actors")


def plan_pool(resources: dict[str, float], use_gpu: bool, cpus_per_actor: int = 1) -> PoolPlan:
    """Size the actor pool from a cluster's resources (see the module docstring)."""
    cpus = int(resources.get("CPU", 0))
    gpus = int(resources.get("GPU", 0))
    if use_gpu:
        if gpus < 1:
            raise RayUnavailable("the model is on a GPU but the Ray cluster has no GPU; use --device cpu")
        actor_cpus = 1.0 if cpus >= 2 * gpus else max(0.25, (cpus / 2) / gpus)  # the rest decodes
        return PoolPlan(gpus, actor_cpus, 1.0, True)
    if cpus < 1:
        raise RayUnavailable(f"the Ray cluster reports {resources.get('CPU', 0)} CPUs; nothing can run")
    per = max(1, min(int(cpus_per_actor), cpus))
    return PoolPlan(max(1, cpus // per), float(per), 0.0, False)


def decode_batch(batch: dict[str, np.ndarray], pre: Any) -> dict[str, np.ndarray]:
    """Rows ``pos, path`` -> ``pos, x, ok, reason, size, mtime``, decoded as the local engine does."""
    files = _ImageFiles([str(p) for p in batch["path"]], pre)
    rows = [files[i] for i in range(len(files))]
    return {"pos": np.asarray(batch["pos"], np.int64), "x": np.stack([r[1].numpy() for r in rows]),
                "ok": np.array([r[2] for r in rows], bool), "reason": np.array([r[3] for r in rows], dtype=object),
            "size": np.array([r[4] for r in rows], np.int64), "mtime": np.array([r[5] for r in rows], np.int64)}


@dataclass(frozen=True)
class ModelParcel:
    """How an actor gets the model: the pickled object, or (TorchScript cannot be pickled) the file it
    was loaded from, reloaded on the worker and checked against the driver's model identity."""

    model: Any = None
    source: str | None = None
    demo: bool = False
    identity: str = ""

    @classmethod
    def of(cls, model: Any, model_info: dict | None) -> "ModelParcel":
        import ray.cloudpickle

        cpu = model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")
        try:
            ray.cloudpickle.dumps(cpu)
            return cls(model=cpu, identity=model.identity())
        except Exception as exc:  # noqa: BLE001 - any pickling failure: fall back to the file
            info = model_info or {}
            if not info.get("demo") and not info.get("source"):
                raise RayUnavailable(f"the model cannot be sent to Ray workers ({exc}) and its file is not "
                                     "known; use --engine local") from exc
            return cls(source=info.get("source"), demo=bool(info.get("demo")), identity=model.identity())

    def open(self) -> Any:
        """The model, on the CPU (raises ValueError when the file now holds another model)."""
        if self.model is not None:
            return self.model
        from lfs_gui.models.loader import load_demo_model, load_model

        model = load_demo_model() if self.demo else load_model(str(self.source))
        if model.identity() != self.identity:
            raise ValueError(f"{self.source or 'the demo model'}: a Ray worker loaded another model than the driver "
                             "(file changed, or a different file at that path on this node)")
        return model


class _Embed:
    """An actor: one copy of the model; embeds decoded rows (decoding them first unless told not to)."""

    def __init__(self, parcel: ModelParcel, device: str, amp: bool, threads: int, decode: bool) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.model = parcel.open().to(device)
        self.amp = amp
        self.decode = decode

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        if self.decode:
            batch = decode_batch(batch, self.model.preprocessing)
        ok = np.asarray(batch["ok"], bool)
        emb = np.zeros((len(ok), self.model.dim), np.float32)
        if ok.any():
            emb[ok] = self.model.embed_batch(torch.from_numpy(np.ascontiguousarray(batch["x"][ok])), amp=self.amp)
        return {"pos": batch["pos"], "emb": emb, "ok": ok, "reason": batch["reason"], "size": batch["size"],
                "mtime": batch["mtime"]}


@contextlib.contextmanager
def ray_running(address: str | None) -> Iterator[Any]:
    """``ray`` initialised at ``address`` (None: ``RAY_ADDRESS`` or a local instance); see the module docstring."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["num_cpus"] = os.cpu_count() or 1
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or os.environ.get("RAY_ADDRESS") or "a local instance"
        raise RayUnavailable(f"cannot start or reach Ray at {where} ({str(exc).splitlines()[0]}); check "
                             "--ray-address / RAY_ADDRESS (`ray status` shows a running cluster)") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


class RayEmbedder(Embedder):
    """:class:`~lfs_gui.data.embed.Embedder` whose missing files are embedded by a Ray Data job."""

    def __init__(self, *args: Any, ray_address: str | None = None, cpus_per_actor: int = 1,
                 model_info: dict | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import_ray()  # fail before any work when Ray is not installed
        self.parcel = ModelParcel.of(self.model, model_info)
        self.ray_address = ray_address
        self.cpus_per_actor = max(1, int(cpus_per_actor))
        self.pool: PoolPlan | None = None

    def _batches(self, rec: FileRecords, todo: np.ndarray) -> Generator[EmbeddedBatch, None, None]:
        """The files ``todo`` decoded and embedded by the actor pool (see the module docstring)."""
        with ray_running(self.ray_address) as ray:
            ds = self._dataset(ray, rec, todo)
            for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                yield (np.asarray(b["pos"], np.int64), np.asarray(b["emb"], np.float32), np.asarray(b["ok"], bool),
                       [str(r) for r in b["reason"]], np.asarray(b["size"], np.int64), np.asarray(b["mtime"], np.int64))

    def _dataset(self, ray: Any, rec: FileRecords, todo: np.ndarray) -> Any:
        import pyarrow as pa

        dev = self.model.device
        pool = self.pool = plan_pool(ray.cluster_resources(), dev.type != "cpu", self.cpus_per_actor)
        log.info("Ray embedding of %d images: %s", len(todo), pool.describe())
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its progress lines would mix with ours
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        bs = self.batch_size
        paths = [str(rec.paths[i]) for i in todo]
        blocks = [pa.table({"pos": np.arange(s, min(len(todo), s + bs), dtype=np.int64), "path": paths[s:s + bs]})
                  for s in range(0, len(todo), bs)]  # one block per batch: work for every actor from the start
        ds = ray.data.from_arrow(blocks)
        if pool.separate_decode:
            ds = ds.map_batches(decode_batch, fn_kwargs={"pre": self.model.preprocessing}, batch_size=bs, num_cpus=1)
        return ds.map_batches(
            _Embed, batch_size=bs, num_cpus=pool.actor_cpus, num_gpus=pool.actor_gpus or None,
            compute=ray.data.ActorPoolStrategy(size=max(1, min(pool.actors, len(blocks)))),
            fn_constructor_kwargs={"parcel": self.parcel, "device": str(dev), "amp": self.amp,
                                   "threads": max(1, int(pool.actor_cpus)), "decode": not pool.separate_decode})
