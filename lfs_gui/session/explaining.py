"""Explanation and curves: which methods can run, explaining a pair, the pixel-flipping curves of a
map and of random's, and the continuity test.

What changes here is the method side: the registry (:mod:`lfs_gui.explain.registry`) decides which
methods run and with which settings, this part gives them the pair (vectors from
:class:`~lfs_gui.session.retrieval.Retrieval`, model inputs, gallery context) and returns one
:class:`~lfs_gui.explain.base.HeatPair` per pair, masks at ξ2 included. Decoder-only methods need no
model and take well under a millisecond once the embeddings are cached; the class prototypes EMSNN
needs are computed once per gallery (:meth:`Explaining.iter_prototypes`), never per click.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lfs_gui.explain.base import HeatPair, PairInput
from lfs_gui.explain.prototypes import ClassPrototypes
from lfs_gui.explain.registry import EXPLAINERS, available_methods, make_explainer, method_settings, runs_model
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import cosine
from lfs_gui.session.retrieval import Retrieval
from lfs_gui.session.types import Query, SessionError, is_gallery_id, query_name

if TYPE_CHECKING:
    from lfs_gui.session.opening import LazyModel

log = logging.getLogger(__name__)


class Explaining:
    """Explains pairs of one gallery with any registered method, and measures the maps."""

    def __init__(self, retrieval: Retrieval, model: LazyModel, decoder: Any = None) -> None:
        self.retrieval = retrieval
        self.decoder = decoder
        self._model = model
        self._prototypes: ClassPrototypes | None = None
        self._proto_lock = threading.Lock()

    # -- which methods -----------------------------------------------------------------------------
    def methods(self) -> list[str]:
        """The registered methods that can run here (the registry decides; model-side checks wait
        until the model is loaded)."""
        model = self._model.get() if self._model.loaded else None
        return available_methods(model, self.decoder, gallery=self.retrieval.gallery.has_labels,
                                 model_pending=not self._model.loaded)

    @staticmethod
    def needs_model(method: str) -> bool:
        """True when ``method`` runs the model (slow: use a worker), False for decoder-only methods."""
        return runs_model(method)

    def is_instant(self, method: str) -> bool:
        """True when explaining with ``method`` costs milliseconds now (decoder-only, and any gallery
        statistics it needs already computed): safe on the GUI thread. Otherwise use a worker."""
        if runs_model(method):
            return False
        return "gallery" not in EXPLAINERS[method].needs or self._prototypes is not None

    # -- gallery context ---------------------------------------------------------------------------
    def iter_prototypes(self) -> Generator[Progress, None, ClassPrototypes]:
        """The gallery's class prototypes, computed once (one pass over the embeddings) and kept."""
        if self._prototypes is None:
            yield Progress(0, 1, "class prototypes of the gallery")
            with self._proto_lock:
                if self._prototypes is None:
                    self._prototypes = ClassPrototypes.from_gallery(self.retrieval.embeddings, self.retrieval.labels)
        return self._prototypes

    def context(self, query: Query, target: int, method: str | None = None) -> Generator[Progress, None, dict[str, Any]]:
        """Gallery context for :class:`PairInput` (labels, and prototypes when ``method`` needs them)."""
        r = self.retrieval
        if not r.gallery.has_labels:
            return {}
        ctx: dict[str, Any] = {"gallery": r.embeddings, "gallery_labels": r.labels,
                               "label1": r.label_of(query), "label2": r.label_of(target)}
        cls = EXPLAINERS.get(method or "")
        if cls is None or "gallery" in cls.needs:
            ctx["prototypes"] = yield from self.iter_prototypes()
        return ctx

    def pair_input(self, query: Query, target: int, xi1: float, with_tensors: bool, method: str | None = None) -> PairInput:
        """Everything an explainer may use for the pair (tensors only when ``with_tensors``)."""
        return run_generator(self._iter_pair_input(query, target, xi1, with_tensors, method))

    def _iter_pair_input(self, query: Query, target: int, xi1: float, with_tensors: bool,
                         method: str | None) -> Generator[Progress, None, PairInput]:
        r = self.retrieval
        h1, h2 = r.vector(query), r.vector(target)
        ctx = yield from self.context(query, target, method)
        x1 = x2 = None
        if with_tensors:
            x1, x2 = r.input_tensor(query), r.input_tensor(target)
        return PairInput(h1=np.ascontiguousarray(h1), h2=np.ascontiguousarray(h2), similarity=cosine(h1, h2),
                         xi1=xi1, x1=x1, x2=x2, **ctx)

    # -- explaining --------------------------------------------------------------------------------
    def explain(self, query: Query, target: int, method: str = "explainlfs", xi1: float | None = None,
                xi2: float = 0.7, question: str = "decision", **settings: Any) -> HeatPair:
        """Explain the pair with a registered method. Decoder-only methods need no model (fast).
        ``question``: the explainer's target, ``decision`` or ``similarity`` (``target`` is the image here)."""
        return run_generator(self.iter_explain(query, target, method, xi1=xi1, xi2=xi2, question=question, **settings))

    def iter_explain(self, query: Query, target: int, method: str = "explainlfs", xi1: float | None = None,
                     xi2: float = 0.7, question: str = "decision", **settings: Any) -> Generator[Progress, None, HeatPair]:
        """Generator form of :meth:`explain`: yields the explainer's Progress (slow methods such as
        rise-sim yield per mask batch, so a worker can cancel between yields) and returns the
        :class:`HeatPair` with masks at ``xi2`` and ``settings`` holding method, ξ1 and ξ2."""
        xi1 = self.retrieval.suggested_xi1() if xi1 is None else float(xi1)
        slow = runs_model(method)
        if slow and not self._model.loaded:
            yield Progress(0, 1, f"{method}: loading the model")
        model = self._model.get() if slow else None
        explainer = make_explainer(method, model=model, decoder=self.decoder,
                                   **method_settings(method, {"xi2": xi2, **settings, "target": question}))
        pair = yield from self._iter_pair_input(query, target, xi1, slow, method)
        hp = yield from explainer.iter_explain(pair)
        return replace(hp, settings={**hp.settings, "method": method, "xi1": xi1, "xi2": xi2}).with_masks(xi2)

    @staticmethod
    def decoder_knows(query: Query) -> bool:
        """True when ``query`` is a gallery image (the decoder was trained on the gallery); an external
        image is outside the decoder's training set, so its reconstruction and heat are less reliable."""
        return is_gallery_id(query)

    # -- curves ------------------------------------------------------------------------------------
    def ties(self, query: Query, target: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The pair's ``random`` maps (seed ``seed``): they break ties in every map's ranking, so a
        constant map scores as random (:mod:`lfs_gui.metrics.ranking`)."""
        from lfs_gui.explain.baselines.random_map import random_heat

        r = self.retrieval
        return random_heat(r.vector(query), r.vector(target), seed)

    def _selectivity(self, explanation: HeatPair, steps: int, perturbation: str, seed: int, **kw: Any):
        from lfs_gui.metrics.selectivity import Selectivity

        # Every map is resampled to the paper's 40×40 grid of 5×5 superpixels, whatever its resolution;
        # the curve asks the question the map answered.
        return Selectivity(steps=steps, perturbation=perturbation, seed=seed, target=explanation.target, **kw)

    def iter_curve(self, query: Query, target: int, explanation: HeatPair, steps: int = 20,
                   perturbation: str = "noise", seed: int = 0, **kw: Any):
        """Pixel-flipping curve of ``explanation`` (generator of ``CurvePoint``; returns ``Curve``).
        ``kw`` goes to :class:`~lfs_gui.metrics.selectivity.Selectivity` (e.g. ``order="lerf"``)."""
        sel = self._selectivity(explanation, steps, perturbation, seed, **kw)
        r = self.retrieval
        x1, x2 = r.input_tensor(query), r.input_tensor(target)
        curve = yield from sel.iter_curve(self._model.get(), x1, x2, explanation.heat1, explanation.heat2,
                                          explanation.similar, ties=self.ties(query, target, seed))
        curve.settings.update({"method": explanation.method, "explanation": explanation.settings,
                               "query": query_name(query), "target_image": query_name(target)})
        return curve

    def iter_random_curve(self, query: Query, target: int, steps: int = 20, perturbation: str = "noise",
                          seed: int = 0, xi1: float | None = None, question: str = "decision", **kw: Any):
        """The ``random`` method's curve for the same pair and question (``decision`` or ``similarity``):
        the floor every map must beat."""
        if "random" not in self.methods():
            raise SessionError("the 'random' method is not registered")
        ex = self.explain(query, target, "random", xi1=xi1, seed=seed, question=question)  # instant
        return (yield from self.iter_curve(query, target, ex, steps=steps, perturbation=perturbation, seed=seed, **kw))

    def iter_oracle_curve(self, query: Query, target: int, explanation: HeatPair, steps: int = 20,
                          perturbation: str = "noise", seed: int = 0, **kw: Any):
        """The greedy oracle's curve for the pair, the curve settings and the question of ``explanation``
        (the attainable limit next to random's floor; :mod:`lfs_gui.metrics.oracle`). A generator of
        ``Progress`` (per forward batch) and ``CurvePoint`` (per step), returning the ``Curve``; long
        (~1 100 forwards for 20 steps), so run it as a background job. Cached per pair in memory."""
        from lfs_gui.metrics.oracle import Oracle

        sel = self._selectivity(explanation, steps, perturbation, seed, **kw)
        r = self.retrieval
        x1, x2 = r.input_tensor(query), r.input_tensor(target)
        curve = yield from Oracle(sel).iter_curve(self._model.get(), x1, x2, explanation.similar)
        curve.settings.update({"method": "oracle", "query": query_name(query), "target_image": query_name(target)})
        return curve

    def iter_continuity(self, query: Query, target: int, method: str = "explainlfs", steps: int = 20,
                        xi1: float | None = None, mode: str = "pair", **settings: Any):
        """The paper's shift test for ``method`` on the target image (generator of ContinuityPoint);
        gallery-context methods (EMSNN) get the pair's labels and the gallery's prototypes. ``mode``:
        ``"pair"`` explains (x, x′), ``"reference"`` explains (query, x′) (see ``metrics.continuity``)."""
        from lfs_gui.metrics.continuity import Continuity

        xi1 = self.retrieval.suggested_xi1() if xi1 is None else float(xi1)
        model = self._model.get()
        explainer = make_explainer(method, model=model, decoder=self.decoder, **method_settings(method, settings))
        ctx = run_generator(self.context(query, target, method))  # the stream yields continuity points only
        if "label2" in ctx and mode == "pair":  # the paper's pair is the target and its shifted copy: both of its class
            ctx["label1"] = ctx["label2"]
        cont = Continuity(steps=steps, xi1=xi1, mode=mode)
        r = self.retrieval
        return (yield from cont.iter_curve(explainer, model, r.input_tensor(target), reference=r.input_tensor(query), **ctx))
