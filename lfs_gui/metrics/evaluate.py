"""Batch evaluation of explainers: sampled pairs × methods × perturbations → selectivity curves.

Plain inputs only (a model, an optional decoder, image paths, embeddings, labels), so it runs
without an index folder; ``lfs-gui evaluate`` (:mod:`lfs_gui.cli.cmd_evaluate`) is a thin wrapper
and :mod:`lfs_gui.metrics.report` writes the tables and figures.

Pairs (seeded): each sampled query i contributes at most one *similar* pair (same class when labels
exist, and cosine > ξ1) and one *dissimilar* pair (different class when labels exist, and cosine
≤ ξ1); i is image 1 (query/reference), j image 2 (test), as in retrieval. ξ1 defaults to
:func:`suggest_xi1` (FINDINGS: the paper's 0.3 fits FaceNet, not every model).

Every method explains each pair once; the same maps are scored under every perturbation, and
within a pair every method sees the same perturbation noise (curve seed = seed + pair number), so
differences between methods are not noise draws. :meth:`Evaluation.iter_run` is a generator
(yields :class:`~lfs_gui.jobs.Progress` after each pair × method); ``records`` grows as it runs,
so an interrupted run still has its finished curves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lfs_gui.explain.base import Explainer, ExplainerUnavailable, PairInput
from lfs_gui.explain.prototypes import ClassPrototypes
from lfs_gui.explain.registry import EXPLAINERS, available_methods, make_explainer
from lfs_gui.jobs import Progress
from lfs_gui.data.images import load_rgb
from lfs_gui.index.recall import suggest_xi1
from lfs_gui.metrics.auc import mean_ci95
from lfs_gui.metrics.selectivity import Selectivity
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairSpec:
    i: int
    j: int
    similarity: float
    similar: bool

    @property
    def pair_type(self) -> str:
        return "similar" if self.similar else "dissimilar"


@dataclass
class CurveRecord:
    """One method's curve on one pair under one perturbation."""

    method: str
    pair_type: str
    perturbation: str
    i: int
    j: int
    similarity: float
    auc: float
    auc_sim: float
    lower_is_better: bool
    ms: float
    model_calls: int
    decoder_calls: int
    sims: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # what ``auc`` scores (see metrics.selectivity)


def _labels_or_none(labels: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    lab = np.asarray([-1 if v is None else v for v in labels], dtype=np.int64)
    if lab.shape != (n,):
        raise ValueError(f"labels has {lab.shape[0]} entries for {n} embeddings")
    return lab if (lab >= 0).any() else None


def sample_pairs(embeddings: np.ndarray, labels: Sequence[Any] | np.ndarray | None, n: int, xi1: float, seed: int = 0) -> list[PairSpec]:
    """Up to ``n`` similar and ``n`` dissimilar pairs (similar first), seeded; see module docstring."""
    e = np.asarray(embeddings, np.float32)
    lab = _labels_or_none(labels, len(e))
    rng = np.random.default_rng(seed)
    sim_pairs: list[PairSpec] = []
    dis_pairs: list[PairSpec] = []
    idx = np.arange(len(e))
    for i in rng.permutation(len(e)):
        if len(sim_pairs) >= n and len(dis_pairs) >= n:
            break
        s = e @ e[i]
        if lab is not None and lab[i] < 0:
            continue
        same = (lab == lab[i]) if lab is not None else np.ones(len(e), bool)
        other = (lab != lab[i]) & (lab >= 0) if lab is not None else np.ones(len(e), bool)
        if len(sim_pairs) < n:
            cand = idx[same & (s > xi1) & (idx != i)]
            if cand.size:
                j = int(rng.choice(cand))
                sim_pairs.append(PairSpec(int(i), j, float(s[j]), True))
        if len(dis_pairs) < n:
            cand = idx[other & (s <= xi1) & (idx != i)]
            if cand.size:
                j = int(rng.choice(cand))
                dis_pairs.append(PairSpec(int(i), j, float(s[j]), False))
    if len(sim_pairs) < n or len(dis_pairs) < n:
        log.warning("found %d similar and %d dissimilar pairs of the %d asked for (xi1=%.3f)", len(sim_pairs), len(dis_pairs), n, xi1)
    return sim_pairs + dis_pairs


class Evaluation:
    """Selectivity of several explainers on sampled pairs. Settings at construction; :meth:`iter_run` runs it."""

    def __init__(
        self,
        model: EmbeddingModel,
        decoder: Any,
        images: Sequence[str | Path | Image.Image],
        embeddings: np.ndarray,
        labels: Sequence[Any] | np.ndarray | None = None,
        *,
        methods: Sequence[str] | None = None,
        n_pairs: int = 10,
        perturbations: Sequence[str] = ("noise",),
        steps: int = 20,
        superpixel: int = 5,
        heat_size: int = 40,
        chunk: int = 3,
        xi1: float | None = None,
        seed: int = 0,
        method_settings: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.model, self.decoder, self.images = model, decoder, list(images)
        self.embeddings = np.ascontiguousarray(embeddings, np.float32)
        if len(self.images) != len(self.embeddings):
            raise ValueError(f"{len(self.images)} images but {len(self.embeddings)} embeddings")
        self.labels = _labels_or_none(labels, len(self.embeddings))
        self.xi1 = float(suggest_xi1(self.embeddings, self.labels, seed=seed) if xi1 is None else xi1)
        self.seed, self.n_pairs = int(seed), int(n_pairs)
        self.perturbations = list(perturbations)
        self.selectivity = {p: Selectivity(steps=steps, superpixel=superpixel, heat_size=heat_size, perturbation=p, chunk=chunk)
                            for p in self.perturbations}
        self.method_settings = dict(method_settings or {})
        unknown = [m for m in (methods or []) if m not in EXPLAINERS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {sorted(EXPLAINERS)}")
        avail = available_methods(model, decoder, gallery=self.labels is not None)
        self.skipped: dict[str, str] = {}
        self.explainers: dict[str, Explainer] = {}
        for name in (methods or avail):
            try:
                self.explainers[name] = make_explainer(name, model=model, decoder=decoder, **self.method_settings.get(name, {}))
            except (ExplainerUnavailable, ValueError) as exc:
                self.skipped[name] = str(exc)
                log.warning("skipping %s: %s", name, exc)
        self.pairs = sample_pairs(self.embeddings, self.labels, self.n_pairs, self.xi1, self.seed)
        self.records: list[CurveRecord] = []
        self._tensors: dict[int, torch.Tensor] = {}
        self._prototypes: ClassPrototypes | None = None

    def settings(self) -> dict[str, Any]:
        sel = next(iter(self.selectivity.values())).settings() if self.selectivity else {}
        sel.pop("perturbation", None)
        sel["seed"] = f"seed + pair number ({self.seed} + n): every method sees the same noise on a pair"
        return {"xi1": self.xi1, "seed": self.seed, "n_pairs": self.n_pairs, "perturbations": self.perturbations,
                "selectivity": sel, "methods": {n: e.settings() for n, e in self.explainers.items()},
                "skipped": self.skipped, "model": getattr(self.model, "name", ""), "n_images": len(self.images),
                "decoder": getattr(self.decoder, "source", None) if self.decoder is not None else None}

    def _tensor(self, k: int) -> torch.Tensor:
        if k not in self._tensors:
            img = self.images[k]
            if not isinstance(img, Image.Image):
                img = load_rgb(img)  # as the embedder decoded it (EXIF-upright, alpha on white)
            self._tensors[k] = self.model.preprocessing.to_tensor(img).unsqueeze(0)
        return self._tensors[k]

    def iter_run(self) -> Generator[Progress, None, list[CurveRecord]]:
        """Explain and score every pair with every method; yields progress after each pair × method."""
        total = len(self.pairs) * len(self.explainers)
        done = 0
        for n, spec in enumerate(self.pairs):
            x1, x2 = self._tensor(spec.i), self._tensor(spec.j)
            ctx = {}
            if self.labels is not None:
                if self._prototypes is None:  # once per gallery (EMSNN), not per pair
                    self._prototypes = ClassPrototypes.from_gallery(self.embeddings, self.labels)
                ctx = {"gallery": self.embeddings, "gallery_labels": self.labels, "prototypes": self._prototypes,
                       "label1": int(self.labels[spec.i]), "label2": int(self.labels[spec.j])}
            pair = PairInput.from_tensors(self.model, x1, x2, xi1=self.xi1, **ctx)
            for name, explainer in self.explainers.items():
                if n == 0:  # untimed warm-up: first-call costs (lazy imports, allocator) are not per-explanation costs
                    try:
                        explainer.explain(pair)
                    except ExplainerUnavailable:
                        pass
                t0 = time.perf_counter()
                try:
                    res = explainer.explain(pair)
                except ExplainerUnavailable as exc:
                    self.skipped.setdefault(name, str(exc))
                    done += 1
                    continue
                ms = (time.perf_counter() - t0) * 1e3
                for pname, sel in self.selectivity.items():
                    sel.seed = self.seed + n
                    curve = sel(self.model, x1, x2, res.heat1, res.heat2, pair.similar)
                    self.records.append(CurveRecord(
                        method=name, pair_type="similar" if pair.similar else "dissimilar", perturbation=pname,
                        i=spec.i, j=spec.j, similarity=pair.similarity, auc=curve.auc, auc_sim=curve.auc_sim,
                        lower_is_better=curve.lower_is_better, ms=ms,
                        model_calls=res.cost["model_forwards"] + res.cost["model_backwards"],
                        decoder_calls=res.cost["decoder_calls"], sims=curve.sims.tolist(), ratios=curve.ratios.tolist(),
                        values=curve.values.tolist(),
                    ))
                done += 1
                yield Progress(done, total, f"pair {n + 1}/{len(self.pairs)} ({spec.pair_type}): {name}")
        return self.records


def summarize(records: Sequence[CurveRecord]) -> list[dict[str, Any]]:
    """One row per (method, pair type, perturbation): n, AUC mean and 95 % CI half-width, cost."""
    groups: dict[tuple[str, str, str], list[CurveRecord]] = {}
    for r in records:
        groups.setdefault((r.method, r.pair_type, r.perturbation), []).append(r)
    rows = []
    for (method, ptype, pert), rs in groups.items():
        finite = [r.auc for r in rs if np.isfinite(r.auc)]  # a similar pair with sim_0 <= 0.05 has no ratio
        m, ci = mean_ci95(finite)
        rows.append({
            "method": method, "pair_type": ptype, "n": len(finite), "auc_mean": m, "auc_ci95": ci,
            "ms_per_explanation": float(np.mean([r.ms for r in rs])),
            "model_calls": float(np.mean([r.model_calls for r in rs])),
            "perturbation": pert, "direction": "lower" if rs[0].lower_is_better else "higher",
            "decoder_calls": float(np.mean([r.decoder_calls for r in rs])),
            "auc_sim_mean": float(np.nanmean([r.auc_sim for r in rs])),
        })
    return rows
