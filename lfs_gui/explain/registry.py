"""Name → explainer class registry; feeds ``lfs-gui evaluate --methods`` and the GUI's selector.

The one place that decides which methods can run: :func:`missing_needs` checks a method's ``needs``
against what is at hand (a decoder, a model — loaded, or known to load on first use — with a conv
feature split and an affine head, a labelled gallery) and says why not; :func:`available_methods`
lists the names that can run (the session, ``evaluate`` and the app all ask it);
:func:`make_explainer` builds one or raises :class:`ExplainerUnavailable` with the reason and the
fix (the pair's own labels, which EMSNN needs too, are checked when the pair is explained).
:func:`runs_model` says which methods run the model (slow: a worker), :func:`method_settings` which
settings a method's constructor takes.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from typing import Any

import torch

from lfs_gui.explain.base import Explainer, ExplainerUnavailable
from lfs_gui.explain.baselines import (
    EMSNNExplainer,
    ExplainLFSExplainer,
    ExplainLFSThesisExplainer,
    GradSimExplainer,
    RandomExplainer,
    RiseSimExplainer,
    SimDecompExplainer,
)
from lfs_gui.explain.latent_greedy import ExplainLFSLatentExplainer
from lfs_gui.models.base import EmbeddingModel, FeaturesUnavailable

log = logging.getLogger(__name__)

EXPLAINERS: dict[str, type[Explainer]] = {
    cls.name: cls
    for cls in (
        ExplainLFSExplainer,  # the paper's method, the app's default
        ExplainLFSLatentExplainer,  # issue 11's latent-relevance method, next to it in the selector
        ExplainLFSThesisExplainer,
        EMSNNExplainer,
        GradSimExplainer,
        SimDecompExplainer,
        RiseSimExplainer,
        RandomExplainer,
    )
}

_FEATURES: dict[int, tuple[weakref.ref, bool, str]] = {}


def has_features(model: EmbeddingModel) -> tuple[bool, str]:
    """Whether ``model.forward_features`` gives a (B, C, h, w) map (probed once per model, cached)."""
    key = id(model)
    hit = _FEATURES.get(key)
    if hit is not None and hit[0]() is model:
        return hit[1], hit[2]
    s = model.preprocessing.input_size
    try:
        with torch.inference_mode():
            f = model.forward_features(torch.zeros(1, 3, s, s))
        ok, why = (f.dim() == 4), f"feature map has shape {tuple(f.shape)}, not (B, C, h, w)"
    except FeaturesUnavailable as exc:
        ok, why = False, str(exc) or "the model exposes no conv feature map"
    except NotImplementedError as exc:
        ok, why = False, str(exc) or "forward_features is not implemented"
    _FEATURES[key] = (weakref.ref(model), ok, "" if ok else why)
    return ok, "" if ok else why


def missing_needs(cls: type[Explainer], model: EmbeddingModel | None, decoder: Any, *,
                  gallery: bool = True, model_pending: bool = False) -> list[str]:
    """Human-readable reasons why ``cls`` cannot run (empty list: it can).

    ``gallery``: labelled gallery embeddings are at hand (EMSNN's prototypes; the pair's own labels
    are checked when it is explained). ``model_pending``: there is a model that is not loaded yet
    (a session loads it on first use): model needs count as met, and the feature-split and head
    checks wait until ``model`` is given.
    """
    why: list[str] = []
    needs = cls.needs
    if "decoder" in needs and decoder is None:
        why.append("a trained decoder (train one with `lfs-gui train-decoder INDEX --out FILE`)")
    if "gallery" in needs and not gallery:
        why.append("a gallery whose images all have class labels (class prototypes)")
    if needs & {"model", "features", "linear_head"} and model is None:
        if not model_pending:
            why.append("the embedding model")
        return why
    if "features" in needs:
        ok, reason = has_features(model)  # type: ignore[arg-type]
        if not ok:
            why.append(f"a conv feature map split (forward_features/forward_head): {reason}")
    if "linear_head" in needs and not why and model.linear_head() is None:  # type: ignore[union-attr]
        why.append("a head of global average pooling + one affine layer (linear_head() returned None)")
    return why


def make_explainer(name: str, *, model: EmbeddingModel | None = None, decoder: Any = None, **settings: Any) -> Explainer:
    """Build the explainer registered as ``name`` with ``settings``; :class:`ExplainerUnavailable` if it cannot run."""
    try:
        cls = EXPLAINERS[name]
    except KeyError:
        raise ExplainerUnavailable(f"unknown method {name!r}; choose one of {sorted(EXPLAINERS)}") from None
    why = missing_needs(cls, model, decoder)
    if why:
        what = f" for {getattr(model, 'name', 'this model')}" if model is not None else ""  # no model loaded (yet)
        raise ExplainerUnavailable(f"{name} is unavailable{what}: it needs " + "; ".join(why))
    try:
        return cls(model=model, decoder=decoder, **settings)
    except TypeError as exc:
        raise ValueError(f"{name}: bad settings {settings}: {exc}") from exc


def default_settings(name: str) -> dict[str, Any]:
    """The constructor defaults of method ``name`` (``target`` included): the one source of every
    default the GUI, the CLI and ``evaluate`` use (e.g. the p slider takes ``default_settings(m)["p"]``)."""
    try:
        cls = EXPLAINERS[name]
    except KeyError:
        raise ExplainerUnavailable(f"unknown method {name!r}; choose one of {sorted(EXPLAINERS)}") from None
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items()
            if k not in ("self", "model", "decoder") and p.default is not inspect.Parameter.empty}


def available_methods(model: EmbeddingModel | None, decoder: Any, gallery: bool = True,
                      model_pending: bool = False) -> list[str]:
    """Registered names whose needs are met (:func:`missing_needs`), in registry order
    (``gallery=False`` drops EMSNN)."""
    return [name for name, cls in EXPLAINERS.items()
            if not missing_needs(cls, model, decoder, gallery=gallery, model_pending=model_pending)]


def runs_model(name: str) -> bool:
    """True when method ``name`` runs the embedding model (slow: run it in a worker); False for the
    decoder-only methods. Unknown names count as slow."""
    cls = EXPLAINERS.get(name)
    return cls is None or bool(cls.needs & {"model", "features", "linear_head"})


def method_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``settings`` that method ``name``'s constructor accepts (the GUI sends p, ξ2 to
    all methods; each takes what it knows). Unknown names and ``**kwargs`` constructors get all."""
    cls = EXPLAINERS.get(name)
    if cls is None:
        return dict(settings)
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(settings)
    return {k: v for k, v in settings.items() if k in params}
