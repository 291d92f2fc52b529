"""Name → explainer class registry; feeds ``lfs-gui evaluate --methods`` and the GUI's selector.

:func:`make_explainer` checks a method's ``needs`` against what is at hand (a decoder, a model
with a conv feature split, an affine head) and raises :class:`ExplainerUnavailable` with the reason
and the fix; :func:`available_methods` lists the names that can run. ``gallery`` needs (EMSNN's
class prototypes) are data, checked when the pair is explained (the pair may lack labels).
"""

from __future__ import annotations

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
from lfs_gui.explain.variants import (
    ExplainLFSJVPExplainer,
    ExplainLFSMultiExplainer,
    ExplainLFSRelExplainer,
)
from lfs_gui.models.base import EmbeddingModel, FeaturesUnavailable

log = logging.getLogger(__name__)

EXPLAINERS: dict[str, type[Explainer]] = {
    cls.name: cls
    for cls in (
        ExplainLFSExplainer,
        ExplainLFSThesisExplainer,
        ExplainLFSJVPExplainer,
        ExplainLFSRelExplainer,
        ExplainLFSMultiExplainer,
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


def missing_needs(cls: type[Explainer], model: EmbeddingModel | None, decoder: Any) -> list[str]:
    """Human-readable reasons why ``cls`` cannot run with this model/decoder (empty list: it can)."""
    why: list[str] = []
    needs = cls.needs
    if "decoder" in needs and decoder is None:
        why.append("a trained decoder (train one with `lfs-gui train-decoder INDEX --out FILE`)")
    if needs & {"model", "features", "linear_head"} and model is None:
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
        what = getattr(model, "name", "this model") if model is not None else "no model"
        raise ExplainerUnavailable(f"{name} is unavailable for {what}: it needs " + "; ".join(why))
    try:
        return cls(model=model, decoder=decoder, **settings)
    except TypeError as exc:
        raise ValueError(f"{name}: bad settings {settings}: {exc}") from exc


def default_settings(name: str) -> dict[str, Any]:
    """The constructor defaults of method ``name`` (``target`` included): the one source of every
    default the GUI, the CLI and ``evaluate`` use (e.g. the p slider takes ``default_settings(m)["p"]``)."""
    import inspect

    try:
        cls = EXPLAINERS[name]
    except KeyError:
        raise ExplainerUnavailable(f"unknown method {name!r}; choose one of {sorted(EXPLAINERS)}") from None
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items()
            if k not in ("self", "model", "decoder") and p.default is not inspect.Parameter.empty}


def available_methods(model: EmbeddingModel | None, decoder: Any, gallery: bool = True) -> list[str]:
    """Registered names whose needs are met, in registry order (``gallery=False`` drops EMSNN)."""
    out = []
    for name, cls in EXPLAINERS.items():
        if "gallery" in cls.needs and not gallery:
            continue
        if not missing_needs(cls, model, decoder):
            out.append(name)
    return out
