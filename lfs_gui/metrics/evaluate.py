"""Batch evaluation of explainers: sampled pairs × methods × curves (perturbation, mode, order) → records.

Plain inputs only (a model, an optional decoder, image paths, embeddings, labels), so it runs
without an index folder; ``lfs-gui evaluate`` (:mod:`lfs_gui.cli.cmd_evaluate`) and the app's
evaluate job are thin wrappers, :mod:`lfs_gui.metrics.summary` summarises and
:mod:`lfs_gui.metrics.report` writes the tables and figures.

The protocol, and what makes the comparison fair (each point is tested in tests/test_evaluate.py):

* **Pairs** (:func:`~lfs_gui.metrics.pairs.sample_pairs`, seeded). Every map is made from the index's
  embeddings of the pair, as in the app and ``lfs-gui explain`` (so the maps, random's included, are
  the same there); the curves run the model on the images, and their sim_0 is recorded next to the
  map's similarity (a difference above 1e-3 means a stale index: warned and listed in the settings).
* **One question.** Every method is asked the same ``target`` (default ``decision``, see
  :mod:`lfs_gui.explain.base`); a method that cannot answer it on a pair type is counted in
  ``unavailable`` with its reason, never asked another question.
* **Same noise, same ties.** On pair n every method's curves use the noise seed ``seed + n`` and break
  ties by the pair's ``random`` map; ``random`` is always evaluated (the floor every comparison pairs
  with) and a constant map scores exactly as it does. Each record keeps the digest of its noise.
* **Curves.** For every perturbation × mode (deletion, insertion) × order (``morf``, ``lerf``).
* **Bounds** (``bounds=True``): the greedy oracle (:mod:`lfs_gui.metrics.oracle`, method name
  ``oracle``) for every pair and curve setting, cached per pair.
* **NaN.** A similar pair whose sim_0 ≤ 0.05 has no ratio curve: its AUC is NaN; summaries count
  these (``n_undefined``) instead of dropping them silently.

:meth:`Evaluation.iter_run` is a generator (a :class:`~lfs_gui.jobs.Progress` after each pair ×
method and each oracle batch, with an estimate of the time left); ``records`` grows as it runs, so an
interrupted run still has its finished curves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lfs_gui.data.images import load_rgb
from lfs_gui.explain.base import DEFAULT_TARGET, Explainer, ExplainerUnavailable, PairInput, check_target
from lfs_gui.explain.baselines.random_map import RANDOM_SIZE, random_heat
from lfs_gui.explain.prototypes import ClassPrototypes
from lfs_gui.explain.registry import EXPLAINERS, available_methods, make_explainer
from lfs_gui.index.recall import suggest_xi1
from lfs_gui.jobs import Progress
from lfs_gui.metrics.eta import Eta
from lfs_gui.metrics.oracle import ORACLE, Oracle, OracleCache
from lfs_gui.metrics.pairs import PairSpec, labels_or_none, sample_pairs
from lfs_gui.metrics.perturbations import Perturbation, make_perturbation
from lfs_gui.metrics.ranking import ORDERS, check_order
from lfs_gui.metrics.selectivity import MODES, Curve, Selectivity
from lfs_gui.models.base import EmbeddingModel, cosine

log = logging.getLogger(__name__)

__all__ = ["CurveRecord", "Evaluation", "PairSpec", "sample_pairs"]

STALE_TOLERANCE = 1e-3
"""Largest |index cosine − the model's cosine of the images| accepted silently."""


@dataclass
class CurveRecord:
    """One method's curve on one pair under one curve setting (perturbation, mode, order)."""

    method: str
    pair_type: str
    perturbation: str
    i: int
    j: int
    similarity: float  # the pair's cosine from the embeddings the map used
    auc: float
    auc_sim: float
    lower_is_better: bool
    ms: float  # time of the explanation (oracle: of its curve)
    model_calls: int
    decoder_calls: int
    sims: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # what ``auc`` scores (see metrics.selectivity)
    target: str = DEFAULT_TARGET
    mode: str = "deletion"
    order: str = "morf"
    pair: int = 0  # the pair's number in the evaluation
    sim0: float = float("nan")  # the curve's unperturbed similarity
    noise: int = 0  # crc32 of the curve's replacement images
    cells: list[int] = field(default_factory=list)  # the perturbed cells in order
    curve_ms: float = float("nan")


def curve_key(perturbation: str, mode: str, order: str) -> str:
    return f"{perturbation}/{mode}/{order}"


class Evaluation:
    """Selectivity of several explainers on sampled pairs. Settings at construction; :meth:`iter_run` runs it.

    ``methods``: registered names (default: every available one); ``explainers``: extra ready-made
    :class:`Explainer` instances by name (research variants, planted maps in tests). ``target`` is
    passed to every method. ``bounds`` adds the greedy oracle (``oracle_batch``: candidates per
    forward; ``oracle_cache``: an :class:`OracleCache`, default in memory only).
    """

    def __init__(
        self,
        model: EmbeddingModel,
        decoder: Any,
        images: Sequence[str | Path | Image.Image],
        embeddings: np.ndarray,
        labels: Sequence[Any] | np.ndarray | None = None,
        *,
        methods: Sequence[str] | None = None,
        explainers: Mapping[str, Explainer] | None = None,
        n_pairs: int = 10,
        perturbations: Sequence[str | Perturbation] = ("noise",),
        modes: Sequence[str] = ("deletion",),
        orders: Sequence[str] = ORDERS,
        target: str = DEFAULT_TARGET,
        steps: int = 20,
        superpixel: int = 5,
        heat_size: int = 40,
        chunk: int | None = None,
        xi1: float | None = None,
        seed: int = 0,
        method_settings: dict[str, dict[str, Any]] | None = None,
        bounds: bool = False,
        oracle_batch: int | None = None,
        oracle_cache: OracleCache | None = None,
        pair_types: Sequence[str] = ("similar", "dissimilar"),
    ) -> None:
        self.model, self.decoder, self.images = model, decoder, list(images)
        self.embeddings = np.ascontiguousarray(embeddings, np.float32)
        if len(self.images) != len(self.embeddings):
            raise ValueError(f"{len(self.images)} images but {len(self.embeddings)} embeddings")
        self.labels = labels_or_none(labels, len(self.embeddings))
        # the same suggestion as the app's and the CLI's (Session.suggested_xi1), whatever the pair seed
        self.xi1 = float(suggest_xi1(self.embeddings, self.labels) if xi1 is None else xi1)
        self.seed, self.n_pairs, self.target = int(seed), int(n_pairs), check_target(target)
        perts = [make_perturbation(p) for p in perturbations]  # names, or instances with their own settings
        self.perturbations = [p.name for p in perts]
        if len(set(self.perturbations)) != len(perts):
            raise ValueError(f"each perturbation may appear once, got {self.perturbations}")
        self.modes, self.orders = list(modes), [check_order(o) for o in orders]
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes or not self.perturbations or not self.orders:
            raise ValueError(f"need at least one perturbation, mode and order; modes must be in {MODES}, got {self.modes}")
        self.curves = {
            curve_key(p.name, m, o): Selectivity(steps=steps, superpixel=superpixel, heat_size=heat_size, perturbation=p,
                                                 mode=m, order=o, target=self.target, chunk=chunk)
            for p in perts for m in self.modes for o in self.orders
        }
        self.method_settings = dict(method_settings or {})
        unknown = [m for m in (methods or []) if m not in EXPLAINERS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {sorted(EXPLAINERS)}")
        names = list(methods or available_methods(model, decoder, gallery=self.labels is not None))
        if "random" not in names:
            names.append("random")  # the floor every comparison pairs with
        self.skipped: dict[str, str] = {}
        self.explainers: dict[str, Explainer] = {}
        for name in names:
            try:
                self.explainers[name] = make_explainer(name, model=model, decoder=decoder,
                                                       **{"target": self.target, **self.method_settings.get(name, {})})
            except (ExplainerUnavailable, ValueError) as exc:
                self.skipped[name] = str(exc)
                log.warning("skipping %s: %s", name, exc)
        for name, ex in (explainers or {}).items():
            if name == ORACLE:
                raise ValueError("'oracle' is the bound's name; choose another name for the explainer")
            self.explainers[name] = ex
        for name, ex in self.explainers.items():
            if ex.target != self.target:
                raise ValueError(f"{name} was built for target {ex.target!r}; the evaluation asks {self.target!r}")
        rnd = self.explainers["random"]
        self.tie_seed, self.tie_size = int(getattr(rnd, "seed", 0)), int(getattr(rnd, "size", RANDOM_SIZE))
        self.bounds = bool(bounds)
        self.oracles = {k: Oracle(sel, batch=oracle_batch, cache=oracle_cache if oracle_cache is not None else OracleCache())
                        for k, sel in self.curves.items()} if self.bounds else {}
        bad_types = set(pair_types) - {"similar", "dissimilar"}
        if bad_types or not pair_types:
            raise ValueError(f"pair_types must be 'similar' and/or 'dissimilar', got {list(pair_types)}")
        self.pair_types = list(pair_types)
        # sampled as always (the same pairs whatever is kept), then filtered
        self.pairs = [p for p in sample_pairs(self.embeddings, self.labels, self.n_pairs, self.xi1, self.seed)
                      if p.pair_type in self.pair_types]
        self.records: list[CurveRecord] = []
        self.unavailable: dict[tuple[str, str], dict[str, Any]] = {}  # (method, pair type) → count, reason
        self.stale: list[dict[str, Any]] = []  # pairs whose index cosine differs from the model's forward
        self._tensors: dict[int, torch.Tensor] = {}
        self._prototypes: ClassPrototypes | None = None
        self._prototypes: ClassPrototypes | None = None

    # -- settings -------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        sel = next(iter(self.curves.values())).settings()
        for k in ("perturbation", "mode", "order", "sigma", "color", "low", "high"):
            sel.pop(k, None)
        sel["seed"] = f"seed + pair number ({self.seed} + n): every method sees the same noise on a pair"
        sel["ties"] = f"broken by the pair's random map (seed {self.tie_seed}, size {self.tie_size}), the order random itself uses"
        return {
            "target": self.target, "xi1": self.xi1, "seed": self.seed, "n_pairs": self.n_pairs, "pair_types": self.pair_types,
            "pairs_sampled": {"similar": sum(p.similar for p in self.pairs), "dissimilar": sum(not p.similar for p in self.pairs)},
            "perturbations": {p: s.perturbation.settings() for p, s in
                              {k.split("/")[0]: v for k, v in self.curves.items()}.items()},
            "modes": self.modes, "orders": self.orders, "selectivity": sel,
            "methods": {n: e.settings() for n, e in self.explainers.items()},
            "bounds": {"oracle": "greedy", "batch": next(iter(self.oracles.values())).batch if self.oracles else None}
            if self.bounds else None,
            "skipped": self.skipped,
            "unavailable": {f"{m} on {t} pairs": v for (m, t), v in self.unavailable.items()},
            "stale_pairs": self.stale,
            "model": getattr(self.model, "name", ""), "device": str(self.model.device), "n_images": len(self.images),
            "decoder": getattr(self.decoder, "source", None) if self.decoder is not None else None,
        }

    def _tensor(self, k: int) -> torch.Tensor:
        if k not in self._tensors:
            img = self.images[k]
            if not isinstance(img, Image.Image):
                img = load_rgb(img)  # as the embedder decoded it (EXIF-upright, alpha on white)
            self._tensors[k] = self.model.preprocessing.to_tensor(img).unsqueeze(0)
        return self._tensors[k]

    def pair_input(self, spec: PairSpec) -> PairInput:
        """The pair as every method sees it: the index's embeddings (as the app and ``lfs-gui explain``
        use them, so a map — and random's map, which breaks ties — is the same in all three) and the
        model inputs."""
        ctx: dict[str, Any] = {}
        if self.labels is not None:
            if self._prototypes is None:  # once per gallery (EMSNN), not per pair
                self._prototypes = ClassPrototypes.from_gallery(self.embeddings, self.labels)
            ctx = {"gallery": self.embeddings, "gallery_labels": self.labels, "prototypes": self._prototypes,
                   "label1": int(self.labels[spec.i]), "label2": int(self.labels[spec.j])}
        h1, h2 = self.embeddings[spec.i], self.embeddings[spec.j]
        return PairInput(h1=np.ascontiguousarray(h1), h2=np.ascontiguousarray(h2), similarity=cosine(h1, h2),
                         xi1=self.xi1, x1=self._tensor(spec.i), x2=self._tensor(spec.j), **ctx)

    def _check_embeddings(self, spec: PairSpec, pair: PairInput, sim0: float) -> None:
        """Warn (once per pair) when the model's cosine of the inputs differs from the index's: a stale index."""
        if abs(sim0 - pair.similarity) > STALE_TOLERANCE and (spec.i, spec.j) not in {(d["i"], d["j"]) for d in self.stale}:
            self.stale.append({"i": spec.i, "j": spec.j, "index_similarity": pair.similarity, "model_similarity": sim0})
            log.warning("pair (%d, %d): cosine %.4f in the index but %.4f from the model's forward of the images; "
                        "is the index stale (rebuild it with this model)?", spec.i, spec.j, pair.similarity, sim0)

    def _record(self, name: str, n: int, spec: PairSpec, pair: PairInput, key: str, curve: Curve, ms: float,
                curve_ms: float, cost: dict[str, int]) -> CurveRecord:
        sel = self.curves[key]
        rec = CurveRecord(
            method=name, pair_type="similar" if pair.similar else "dissimilar", perturbation=key.split("/")[0],
            i=spec.i, j=spec.j, similarity=float(pair.similarity), auc=curve.auc, auc_sim=curve.auc_sim,
            lower_is_better=curve.lower_is_better, ms=ms, model_calls=cost.get("model_forwards", 0) + cost.get("model_backwards", 0),
            decoder_calls=cost.get("decoder_calls", 0), sims=curve.sims.tolist(), ratios=curve.ratios.tolist(),
            values=curve.values.tolist(), target=self.target, mode=sel.mode, order=sel.order_name, pair=n,
            sim0=float(curve.settings["sim_orig"]), noise=int(curve.settings["noise_crc32"]),
            cells=[int(c) for c in curve.order], curve_ms=curve_ms,
        )
        self.records.append(rec)
        return rec

    # -- running --------------------------------------------------------------------------------------
    def run_order(self) -> list[int]:
        """Pair numbers in the order they are run: similar and dissimilar alternating, so an interrupted
        run has as many of each (a pair keeps its number, and so its noise, whatever the order)."""
        sim = [n for n, p in enumerate(self.pairs) if p.similar]
        dis = [n for n, p in enumerate(self.pairs) if not p.similar]
        out = []
        for k in range(max(len(sim), len(dis))):
            out += sim[k : k + 1] + dis[k : k + 1]
        return out

    def iter_run(self) -> Generator[Progress, None, list[CurveRecord]]:
        """Explain and score every pair with every method (and the oracle); yields progress with an ETA."""
        units = [(n, name) for n in range(len(self.pairs)) for name in self.explainers]
        if self.bounds:
            units += [(n, ORACLE) for n in range(len(self.pairs))]
            units.sort(key=lambda u: u[0])
        eta = Eta([(name, self.pairs[n].pair_type) for n, name in units])
        total = len(units)
        done = 0
        for k, n in enumerate(self.run_order()):
            spec = self.pairs[n]
            pair = self.pair_input(spec)
            ptype = "similar" if pair.similar else "dissimilar"
            ties = random_heat(pair.h1, pair.h2, self.tie_seed, self.tie_size)
            x1, x2 = self._tensor(spec.i), self._tensor(spec.j)
            for name, explainer in self.explainers.items():
                t_unit = time.perf_counter()
                if not explainer.answers(pair.similar):
                    u = self.unavailable.setdefault((name, ptype), {"pairs": 0, "reason": ""})
                    u["pairs"] += 1
                    try:
                        explainer.check_pair(pair)
                    except ExplainerUnavailable as exc:
                        u["reason"] = str(exc)
                else:
                    try:
                        res, ms = self._explain_timed(explainer, pair, warm_up=(k == 0))
                    except ExplainerUnavailable as exc:
                        self.skipped.setdefault(name, str(exc))
                        res = None
                    if res is not None:
                        for key, sel in self.curves.items():
                            t0 = time.perf_counter()
                            curve = sel(self.model, x1, x2, res.heat1, res.heat2, pair.similar, ties=ties, seed=self.seed + n)
                            self._check_embeddings(spec, pair, float(curve.settings["sim_orig"]))
                            self._record(name, n, spec, pair, key, curve, ms, (time.perf_counter() - t0) * 1e3, res.cost)
                done += 1
                eta.finished((name, spec.pair_type), time.perf_counter() - t_unit)
                yield Progress(done, total, f"pair {k + 1}/{len(self.pairs)} ({ptype}): {name}{eta.text()}")
            if self.bounds:
                t_unit = time.perf_counter()
                for key, oracle in self.oracles.items():
                    t0 = time.perf_counter()
                    gen = oracle.iter_curve(self.model, x1, x2, pair.similar, seed=self.seed + n)
                    try:
                        while True:
                            item = next(gen)
                            if isinstance(item, Progress):
                                yield Progress(done, total, f"pair {k + 1}/{len(self.pairs)} ({ptype}): oracle {key} "
                                                            f"{item.done}/{item.total}{eta.text(running=time.perf_counter() - t_unit)}")
                    except StopIteration as stop:
                        curve = stop.value
                    ms = (time.perf_counter() - t0) * 1e3
                    fw = 0 if curve.settings.get("cached") else oracle.forwards(pair.similar)
                    self._record(ORACLE, n, spec, pair, key, curve, ms, ms, {"model_forwards": fw})
                done += 1
                eta.finished((ORACLE, spec.pair_type), time.perf_counter() - t_unit)
                yield Progress(done, total, f"pair {k + 1}/{len(self.pairs)} ({ptype}): oracle{eta.text()}")
        return self.records

    @staticmethod
    def _explain_timed(explainer: Explainer, pair: PairInput, warm_up: bool) -> tuple[Any, float]:
        """Explain and time it; on the first pair a quick method runs twice and the second call is timed
        (first-call costs — lazy imports, allocator — are not per-explanation costs)."""
        t0 = time.perf_counter()
        res = explainer.explain(pair)
        ms = (time.perf_counter() - t0) * 1e3
        if warm_up and ms < 1000.0:
            t0 = time.perf_counter()
            res = explainer.explain(pair)
            ms = (time.perf_counter() - t0) * 1e3
        return res, ms
