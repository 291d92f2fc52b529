"""The greedy oracle: the best ordering a map could give, as the upper bound of a selectivity curve.

For a pair, a :class:`~lfs_gui.metrics.selectivity.Selectivity` (steps, grid, perturbation, noise
seed, mode, order, target) and the model, the *oracle* builds its cell order greedily: at each step
it perturbs, on top of the cells already chosen, every remaining cell in turn and keeps the one that
moves the curve furthest in its good direction (lowest similarity where lower is better, highest
where higher is better; for a ``lerf`` curve that is the cell that lowers the target's score least). No ranking of cells by a single map
can do much better on that pair, so ``random`` (the floor) and the oracle (the limit) bound every
method's score and :func:`lfs_gui.metrics.bounds.gap_closed` says how much of that range a method
covers. (Greedy is not the exact optimum, which needs all orderings; it is the usual tight stand-in.)

Cost: Σ_{k=0}^{K−1} (cells − k) candidate forwards per pair, one image each for a similar pair and
two for a dissimilar one (64 cells, 20 steps: 1 090); ``batch`` candidates per forward (default
:func:`lfs_gui.device.batch_defaults` ``oracle``), on the model's device. :meth:`Oracle.iter_curve`
is a generator: a :class:`~lfs_gui.jobs.Progress` per forward batch and a
:class:`~lfs_gui.metrics.selectivity.CurvePoint` per finished step (cancel anywhere), returning the
:class:`~lfs_gui.metrics.selectivity.Curve` (``settings["method"] == "oracle"``).

Results are cached per pair (:class:`OracleCache`, in memory and optionally on disk), keyed by
everything that determines them: the model's identity (weights), the two input tensors, the curve's
settings (steps, grid, perturbation, seed, mode, order, the sign of the target's score, dissimilar
ranking), the pair type,
the device type and the torch version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfs_gui.explain.base import target_sign
from lfs_gui.jobs import Progress, atomic_path, run_generator
from lfs_gui.metrics.selectivity import Curve, CurvePoint, Selectivity, _ratio, curve_value
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)

ORACLE = "oracle"
"""The oracle's method name in every output."""


def oracle_forwards(cells: int, steps: int, similar: bool) -> int:
    """Images pushed through the model by one greedy oracle curve (the step-0 pair forward excluded)."""
    return sum(cells - k for k in range(steps)) * (1 if similar else 2)


class OracleCache:
    """Oracle results per key: an in-memory LRU of ``max_items`` and, with ``folder``, ``<key>.npz`` files
    (written atomically). Thread-safe (the app's worker and the GUI thread may share one)."""

    def __init__(self, folder: str | Path | None = None, max_items: int = 256) -> None:
        self.folder = None if folder is None else Path(folder)
        self.max_items = int(max_items)
        self._mem: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._mem.get(key)
            if hit is not None:
                self._mem.move_to_end(key)
                return hit
        if self.folder is not None:
            path = self.folder / f"{key}.npz"
            if path.is_file():
                try:
                    with np.load(path, allow_pickle=False) as z:
                        hit = {"order": z["order"], "sims": z["sims"], "sim_orig": float(z["sim_orig"]),
                               "noise": int(z["noise"]), "input_size": tuple(int(v) for v in z["input_size"])}
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("ignoring the unreadable oracle cache file %s (%s)", path, exc)
                    return None
                self._remember(key, hit)
                return hit
        return None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        self._remember(key, entry)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.folder / f"{key}.npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, order=np.asarray(entry["order"], np.int64), sims=np.asarray(entry["sims"], np.float64),
                             sim_orig=entry["sim_orig"], noise=np.int64(entry["noise"]),
                             input_size=np.asarray(entry["input_size"], np.int64))

    def _remember(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self._mem[key] = entry
            self._mem.move_to_end(key)
            while len(self._mem) > self.max_items:
                self._mem.popitem(last=False)

    def __len__(self) -> int:
        return len(self._mem)


MEMORY_CACHE = OracleCache()
"""The process-wide in-memory cache (the app's oracle curves); evaluate adds a folder."""


def _digest(t: torch.Tensor) -> str:
    a = np.ascontiguousarray(t.detach().cpu().float().numpy())
    return hashlib.sha256(a.tobytes() + repr(a.shape).encode()).hexdigest()[:24]


class Oracle:
    """The greedy oracle for the curves of ``selectivity`` (a metric object: settings here, data at call).

    ``batch``: candidate cells per forward (default: the device's ``oracle`` batch); ``cache``: an
    :class:`OracleCache` (default :data:`MEMORY_CACHE`), or ``None`` for none.
    """

    name = ORACLE

    def __init__(self, selectivity: Selectivity, *, batch: int | None = None, cache: OracleCache | None = MEMORY_CACHE) -> None:
        if batch is not None and batch <= 0:
            raise ValueError(f"oracle batch must be positive, got {batch}")
        self.selectivity, self.batch, self.cache = selectivity, None if batch is None else int(batch), cache

    def settings(self) -> dict[str, Any]:
        return {"method": ORACLE, "greedy": True, "batch": self.batch, **self.selectivity.settings()}

    def forwards(self, similar: bool) -> int:
        """Candidate images pushed through the model for one pair (see :func:`oracle_forwards`)."""
        sel = self.selectivity
        return oracle_forwards(sel.cells, sel.steps, similar)

    def key(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, similar: bool, seed: int | None = None) -> str:
        """The cache key: a hash of everything that determines the oracle's curve."""
        sel = {k: v for k, v in self.selectivity.settings().items() if k not in ("chunk", "target")}
        sel["seed"] = self.selectivity.seed if seed is None else int(seed)
        # the target matters only through the sign of the score it asks for (both targets are one on a similar pair)
        sel["score_sign"] = target_sign(self.selectivity.target, similar)
        parts = {"model": model.identity(), "x1": _digest(x1), "x2": _digest(x2), "similar": bool(similar),
                 "selectivity": sel, "device": model.device.type, "torch": torch.__version__}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def _batch(self, device: torch.device) -> int:
        if self.batch is not None:
            return self.batch
        from lfs_gui.device import batch_defaults

        return batch_defaults(device).oracle

    def iter_curve(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, similar: bool,
                   seed: int | None = None) -> Generator[Progress | CurvePoint, None, Curve]:
        """Greedy order for the pair; yields Progress per forward batch and a CurvePoint per step."""
        sel = self.selectivity
        key = self.key(model, x1, x2, similar, seed) if self.cache is not None else None
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            curve = sel.finish(list(hit["sims"]), np.asarray(hit["order"]), similar, hit["sim_orig"], hit["noise"],
                               hit["input_size"], method=ORACLE, cached=True, cache_key=key)
            for k, s in enumerate(curve.sims.tolist()):
                yield CurvePoint(k, s, curve.ratios[k], curve.values[k])
            return curve
        p = sel.prepare(model, x1, x2, similar, seed)
        want_low = sel.lower_is_better(similar)  # the curve's good direction (lerf: already swapped)
        batch = self._batch(model.device)
        total = self.forwards(True)
        done_units = 0
        remaining = list(range(sel.cells))
        chosen: list[int] = []
        sims: list[float] = []
        if sel.mode == "deletion":
            sims.append(p.sim_orig)
            yield CurvePoint(0, p.sim_orig, _ratio(p.sim_orig, p.sim_orig), curve_value(p.sim_orig, p.sim_orig, similar))
        else:  # insertion starts from the fully perturbed pair
            s0 = sel.sims(p, p.union([[]]))[0]
            sims.append(s0)
            yield CurvePoint(0, s0, _ratio(s0, p.sim_orig), curve_value(s0, p.sim_orig, similar))
        for step in range(1, sel.steps + 1):
            cand_sims: list[float] = []
            for b0 in range(0, len(remaining), batch):
                cands = remaining[b0 : b0 + batch]
                cand_sims += sel.sims(p, p.union([chosen + [c] for c in cands]))
                done_units += len(cands)
                yield Progress(done_units, total, f"oracle: step {step}/{sel.steps}")
            arr = np.asarray(cand_sims)
            best = int(np.argmin(arr) if want_low else np.argmax(arr))
            chosen.append(remaining.pop(best))
            s = float(arr[best])
            sims.append(s)
            yield CurvePoint(step, s, _ratio(s, p.sim_orig), curve_value(s, p.sim_orig, similar))
        order = np.asarray(chosen, np.int64)
        entry = {"order": order, "sims": np.asarray(sims), "sim_orig": p.sim_orig, "noise": p.noise, "input_size": p.input_size}
        if key is not None:
            self.cache.put(key, entry)
        return sel.finish(sims, order, similar, p.sim_orig, p.noise, p.input_size, method=ORACLE, cached=False, cache_key=key,
                          forwards=self.forwards(similar))

    def __call__(self, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, similar: bool, seed: int | None = None) -> Curve:
        return run_generator(self.iter_curve(model, x1, x2, similar, seed))
