"""The explainer interface: what a pair explainer may use, what it returns, how it is called.

Follows the captum / pytorch-grad-cam convention: one small class per method, settings in
``__init__``, one verb (:meth:`Explainer.explain`) returning a result. Every method — decoder-side
(ExplainLFS and its variants, EMSNN) or model-side (gradients, decomposition, masking) — takes the
same :class:`PairInput` and returns a :class:`HeatPair`, so the GUI, the metrics and
``lfs-gui evaluate`` treat them alike. Long methods also offer :meth:`Explainer.iter_explain`, a
generator in the project's job pattern (``lfs_gui.jobs``): it yields :class:`~lfs_gui.jobs.Progress`
and returns the :class:`HeatPair`; every yield is a cancel point.

Conventions
-----------
* Image 1 is the *query/reference*, image 2 the *test* (the retrieved image); the pair is *similar*
  when ``similarity > xi1`` (ExplainLFS Eq. 3; Bello et al. 2024).
* Heat maps are (h, w) float32 in [0, 1], higher = more relevant, in the model-input frame; each
  result states its ``resolution``. :mod:`lfs_gui.explain.resample` brings any map to S×S.
* ``cost`` counts rows (images or embeddings), not batches: ``model_forwards`` images pushed
  forward through the model (or its head), ``model_backwards`` images back-propagated,
  ``decoder_calls`` embeddings decoded (a Jacobian–vector product counts as one).
* **Target** (setting ``target`` of every explainer, default ``"decision"``): the question the map
  answers. ``"similarity"``: what makes the two images alike (the score explained is the cosine s);
  ``"decision"``: what drives the similar/dissimilar decision (s for a similar pair, −s for a
  dissimilar one). On a similar pair both are the same question. A method that cannot answer the
  asked target on a pair raises :class:`TargetUnavailable` instead of answering another question
  (ExplainLFS' R = d̄ on a dissimilar pair marks what makes the two *different*: it answers only
  ``decision``). :func:`target_sign` gives the sign of s in the target's score.
* **Device**: model-side methods run where the model is (``model.device``); inputs are moved
  there and results come back as numpy.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch

from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import EmbeddingModel, cosine

log = logging.getLogger(__name__)

NEEDS = ("decoder", "model", "features", "linear_head", "gallery")
"""Requirement tokens: a trained decoder; model input tensors + a callable model; a conv feature
split (``forward_features``/``forward_head``); an affine head after global average pooling
(``linear_head()``); gallery embeddings with labels (class prototypes)."""


TARGETS = ("similarity", "decision")
"""The questions a map can answer (see the module docstring); ``decision`` is the default everywhere."""

DEFAULT_TARGET = "decision"


class ExplainerUnavailable(ValueError):
    """A method's needs are not met (no decoder, no feature split, no gallery labels ...)."""


class TargetUnavailable(ExplainerUnavailable):
    """The method cannot answer the asked target on this pair (it would answer another question)."""


def check_target(target: str) -> str:
    """``target`` if it is one of :data:`TARGETS`, else a ValueError naming the choices."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    return target


def target_sign(target: str, similar: bool) -> float:
    """+1 when the target's score is the similarity s, −1 when it is −s (``decision`` on a dissimilar pair)."""
    return -1.0 if check_target(target) == "decision" and not similar else 1.0


@dataclass(frozen=True)
class PairInput:
    """Everything an explainer may use for one pair. Explainers never modify it.

    ``x1``/``x2``: model-input tensors (1, 3, H, W), normalised; ``h1``/``h2``: L2-normalised
    embeddings (N,) float32; ``similarity``: the model's cosine of the pair; ``xi1``: the
    similar/dissimilar threshold. Optional context for prototype methods (EMSNN): ``gallery``
    (M, N) embeddings, ``gallery_labels`` (M,), and the labels ``label1``/``label2`` of the images
    (``None`` when unknown, e.g. an external query); ``prototypes``, the gallery's
    :class:`~lfs_gui.explain.prototypes.ClassPrototypes` computed once per gallery (so a click does not
    pass over the whole gallery again).
    """

    h1: np.ndarray
    h2: np.ndarray
    similarity: float
    xi1: float = 0.3
    x1: torch.Tensor | None = None
    x2: torch.Tensor | None = None
    gallery: np.ndarray | None = None
    gallery_labels: np.ndarray | None = None
    label1: Any = None
    label2: Any = None
    prototypes: Any = None

    @property
    def similar(self) -> bool:
        return bool(self.similarity > self.xi1)

    @classmethod
    def from_tensors(
        cls, model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, xi1: float = 0.3, **context: Any
    ) -> PairInput:
        """Embed ``x1``, ``x2`` (each (1, 3, H, W) or (3, H, W)) with ``model`` and build the input."""
        x1 = x1 if x1.dim() == 4 else x1.unsqueeze(0)
        x2 = x2 if x2.dim() == 4 else x2.unsqueeze(0)
        with torch.inference_mode():
            h = model.embed_tensor(torch.cat([x1, x2]).to(model.device)).float().cpu().numpy()
        h1, h2 = np.ascontiguousarray(h[0]), np.ascontiguousarray(h[1])
        return cls(h1=h1, h2=h2, similarity=cosine(h1, h2), xi1=xi1, x1=x1, x2=x2, **context)

    def require_tensors(self, method: str, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x1, x2)`` (on ``device`` when given); :class:`ExplainerUnavailable` if the pair has none."""
        if self.x1 is None or self.x2 is None:
            raise ExplainerUnavailable(f"{method} needs the model-input tensors x1, x2 of the pair")
        if device is None:
            return self.x1, self.x2
        return self.x1.to(device), self.x2.to(device)


@dataclass(frozen=True)
class HeatPair:
    """One explained pair: the one result type of every method, of the session, the CLI, the figures
    and the app.

    ``heat1``/``heat2`` are (h, w) float32 in [0, 1] at ``resolution`` = (h, w), in the model-input
    frame (``heat1`` is ``None`` only from :class:`~lfs_gui.explain.explainlfs.ExplainLFS` with
    ``perturb="test"``, which maps the test image alone). ``similarity`` is the model's cosine and
    ``similar`` the decision ``similarity > xi1``. ``mask1``/``mask2`` are the maps thresholded at ξ2
    (:meth:`with_masks`; ExplainLFS sets them itself). ``recon1``/``recon2`` are the decoder's
    reconstructions g(h¹), g(h²) as (3, S, S) in [0, 1] for decoder-side methods (``None``
    otherwise). ``settings`` say how it was made (method, its settings; the session adds ξ1, ξ2);
    ``cost`` counts rows (see the module docstring); ``extras`` holds method-specific material
    (ExplainLFS: ``relevance``, the perturbed reconstructions ``recon1_p``/``recon2_p``;
    sim-decomp: signed contributions; EMSNN: the prototypes).
    ``target`` is the question the maps answer (:data:`TARGETS`).
    """

    method: str
    heat1: np.ndarray | None
    heat2: np.ndarray
    similarity: float
    similar: bool
    cost: dict[str, int] = field(default_factory=lambda: {"model_forwards": 0, "model_backwards": 0, "decoder_calls": 0})
    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    mask1: np.ndarray | None = None
    mask2: np.ndarray | None = None
    recon1: np.ndarray | None = None
    recon2: np.ndarray | None = None
    target: str = DEFAULT_TARGET

    @property
    def resolution(self) -> tuple[int, int]:
        return int(self.heat2.shape[0]), int(self.heat2.shape[1])

    def resized(self, size: int | tuple[int, int], mode: str = "auto") -> HeatPair:
        """The same result with both maps resampled to ``size`` (see :func:`resample.resize_map`);
        masks are dropped (threshold the resized maps again with :meth:`with_masks`)."""
        from lfs_gui.explain.resample import resize_map

        heat1 = None if self.heat1 is None else resize_map(self.heat1, size, mode)
        return replace(self, heat1=heat1, heat2=resize_map(self.heat2, size, mode), mask1=None, mask2=None)

    def with_masks(self, xi2: float) -> HeatPair:
        """The same result with ``mask = heat > xi2`` on both maps (ExplainLFS §3, step 3)."""
        return replace(self, mask1=None if self.heat1 is None else self.heat1 > xi2, mask2=self.heat2 > xi2)


def make_cost(model_forwards: int = 0, model_backwards: int = 0, decoder_calls: int = 0) -> dict[str, int]:
    return {"model_forwards": int(model_forwards), "model_backwards": int(model_backwards), "decoder_calls": int(decoder_calls)}


def unit_map(a: np.ndarray | torch.Tensor) -> np.ndarray:
    """Min–max normalise to [0, 1] float32 (constant map → zeros), NaN-safe; as ExplainLFS Eq. 4 does."""
    arr = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, np.float64)
    arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if hi - lo <= 0.0:
        return np.zeros(arr.shape, np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)


def accumulate_dtype(device: torch.device | str) -> torch.dtype:
    """float64 for sums and cosines, except on MPS, which has no float64 (float32 there)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def pair_seed(seed: int, *arrays: np.ndarray) -> np.random.SeedSequence:
    """A seed sequence from ``seed`` and the bytes of the pair, so a seeded method is a pure function of its input."""
    import zlib

    words = [int(seed) & 0xFFFFFFFF]
    for a in arrays:
        words.append(zlib.crc32(np.ascontiguousarray(a, np.float32).tobytes()))
    return np.random.SeedSequence(words)


class Explainer(ABC):
    """Base class of all pair explainers.

    Subclasses set ``name``, ``needs`` (a subset of :data:`NEEDS`) and ``targets`` (the targets they
    can answer on a *dissimilar* pair; on a similar pair every target is the same question), take
    their settings as keyword arguments in ``__init__`` (``target`` among them, passed on to this
    constructor; others stored by :meth:`_store`), and implement :meth:`_explain` or, for long
    methods, :meth:`_iter_explain`. ``model``/``decoder`` are attached by
    :func:`lfs_gui.explain.registry.make_explainer`, which checks ``needs`` first.
    """

    name: ClassVar[str] = "base"
    needs: ClassVar[frozenset[str]] = frozenset()
    summary: ClassVar[str] = ""
    targets: ClassVar[frozenset[str]] = frozenset(TARGETS)
    why_not_similarity: ClassVar[str] = ""
    """For methods without ``similarity`` in ``targets``: why their map of a dissimilar pair is not an
    answer to "what makes the two alike" (shown in the :class:`TargetUnavailable` message)."""

    def __init__(self, model: EmbeddingModel | None = None, decoder: Any = None, *, target: str = DEFAULT_TARGET) -> None:
        self.model = model
        self.decoder = decoder
        self.target = check_target(target)
        self._settings: dict[str, Any] = {"target": self.target}

    def _store(self, **settings: Any) -> None:
        self._settings.update(settings)

    def settings(self) -> dict[str, Any]:
        """JSON-able settings, with the method name, enough to rebuild the explainer."""
        return {"method": self.name, **self._settings}

    def answers(self, similar: bool) -> bool:
        """Whether this explainer answers its ``target`` on a pair of this type."""
        return bool(similar) or self.target in self.targets

    def check_pair(self, pair: PairInput) -> None:
        """Raise :class:`TargetUnavailable` when :meth:`answers` is False for ``pair``."""
        if not self.answers(pair.similar):
            other = sorted(self.targets)
            raise TargetUnavailable(
                f"{self.name} cannot answer target {self.target!r} on a dissimilar pair "
                f"(similarity {pair.similarity:.3f} <= xi1 {pair.xi1:.3f}); it answers {', '.join(other) or 'nothing'} there"
                + (f": {self.why_not_similarity}" if self.why_not_similarity else ""))

    def sign(self, pair: PairInput) -> float:
        """The sign of the cosine in the score this explainer explains for ``pair`` (:func:`target_sign`)."""
        return target_sign(self.target, pair.similar)

    def explain(self, pair: PairInput) -> HeatPair:
        """Explain ``pair``; drives :meth:`iter_explain` to completion."""
        return run_generator(self.iter_explain(pair))

    def iter_explain(self, pair: PairInput) -> Generator[Progress, None, HeatPair]:
        """Generator form: checks the target, yields progress, returns the :class:`HeatPair`."""
        self.check_pair(pair)
        return (yield from self._iter_explain(pair))

    def _iter_explain(self, pair: PairInput) -> Generator[Progress, None, HeatPair]:
        """Long methods override this (each yield a cancel point). Default: :meth:`_explain` in one step."""
        result = self._explain(pair)
        yield Progress(1, 1, self.name)
        return result

    @abstractmethod
    def _explain(self, pair: PairInput) -> HeatPair:
        """The method itself (subclasses that override :meth:`_iter_explain` may raise here)."""

    def _result(self, pair: PairInput, heat1: np.ndarray, heat2: np.ndarray, cost: dict[str, int], **extras: Any) -> HeatPair:
        """A :class:`HeatPair` of this method with its settings (reconstructions and masks: ``replace``)."""
        return HeatPair(
            method=self.name,
            heat1=np.asarray(heat1, np.float32),
            heat2=np.asarray(heat2, np.float32),
            similarity=float(pair.similarity),
            similar=pair.similar,
            cost=cost,
            settings=self.settings(),
            extras=extras,
            target=self.target,
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"{type(self).__name__}({args})"
