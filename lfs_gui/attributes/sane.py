"""SANE: the attribute that best explains why a pair matches (Plummer et al., ECCV 2020).

A SANE explanation pairs the pair's saliency map with an attribute. For a pair (q, t) with cosine
s, saliency maps S_q, S_t (any registered explainer's heat maps; SANE uses RISE with the reference
fixed, which ``rise-sim`` computes) and an attribute predictor giving, per image x and attribute a,
a confidence p_a(x) ∈ [0, 1] and an activation map A_a(x) (a spatial softmax, sums to 1):

* **confidence** c_a = √(p_a(q) · p_a(t)) — high only when both images show the attribute;
* **map agreement** g_a = ½ [ Σ min(A_a(q), Ŝ_q) + Σ min(A_a(t), Ŝ_t) ], Ŝ the saliency map resampled
  (area mean) to the activation grid and normalised to sum 1; the histogram intersection of two
  distributions, in [0, 1] (1 = the same map);
* **deletion** d_a = max(0, s − s₋ₐ): delete the attribute's region — the ``region`` fraction of an
  image's input pixels where A_a is highest (bilinearly upsampled), set to the baseline (0 in
  normalised input space, the dataset's mean colour) — from one image at a time, the other image
  fixed (SANE's fixed reference), and average the two cosines: s₋ₐ = ½ [cos(q ⊖ a, t) + cos(q, t ⊖ a)].
  (Deleting it from both images at once would not test the match: two images that both lose their
  wings can stay as alike as before.) D_a = d_a / max_b d_b over the candidates (0 when no deletion
  lowers the similarity);

    score_a = w_c · c_a + w_g · g_a + w_d · D_a      (weights: ``w_confidence``, ``w_agreement``,
                                                      ``w_deletion``; default 0.4, 0.3, 0.3).

Only the ``candidates`` attributes with the highest c_a are scored (the deletion term costs two
forwards per candidate); SANE's released code trades confidence against map agreement with one
weight and uses a removal-based prior, but its exact formula is not recoverable, so this is our
statement of it. ``w_deletion = 0`` gives a choice that never looked at deletions (what
``lfs-gui evaluate --attributes`` compares against, so the deletion test is not circular).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.attributes.predictor import AttributePredictor
from lfs_gui.explain.base import make_cost
from lfs_gui.explain.resample import resize_map
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)

FORMULA = ("score_a = w_c*sqrt(p_a(q)*p_a(t)) + w_g*mean_image(sum(min(AAM_a, saliency))) "
           "+ w_d*max(0, s - s_without_region_a)/max_b(...)")


DEFAULT_WEIGHTS = (0.4, 0.3, 0.3)


def parse_weights(value: str, name: str = "SANE weights") -> tuple[float, float, float]:
    """``"C,G,D"`` -> (w_confidence, w_agreement, w_deletion); ``name`` (a flag or a setting) is in the error."""
    try:
        w = tuple(float(v) for v in str(value).split(","))
    except ValueError:
        w = ()
    if len(w) != 3 or min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"{name} {value!r}: expected three non-negative numbers C,G,D, not all zero (e.g. 0.4,0.3,0.3)")
    return w  # type: ignore[return-value]


def weights_text(w: tuple[float, float, float]) -> str:
    return ",".join(f"{v:g}" for v in w)


@dataclass(frozen=True)
class AttributeScore:
    """One attribute's terms for a pair (see the module docstring)."""

    index: int
    name: str
    score: float
    confidence_query: float
    confidence_target: float
    confidence: float
    agreement: float
    deletion_drop: float  # d_a, in cosine units
    deletion: float  # D_a, normalised

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AttributeChoice:
    """The ranked candidates (best first) and the activation maps of every attribute on both images."""

    ranked: list[AttributeScore]
    maps_query: np.ndarray  # (K, h, w), each a spatial softmax
    maps_target: np.ndarray
    confidences: np.ndarray  # (2, K): p_a(q), p_a(t) for every attribute
    similarity: float
    settings: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, int] = field(default_factory=make_cost)
    seconds: float = 0.0

    def top(self, k: int = 3) -> list[AttributeScore]:
        return self.ranked[:k]

    def heat(self, which: int, index: int) -> np.ndarray:
        """Attribute ``index``'s activation map on image ``which`` as a heat map in [0, 1] (over its max)."""
        m = (self.maps_query if which == 1 else self.maps_target)[index]
        top = float(m.max())
        return (m / top).astype(np.float32) if top > 0 else np.zeros_like(m)

    def describe(self, k: int = 3) -> dict[str, Any]:
        return {"matched_on": [s.to_dict() for s in self.top(k)], "candidates": len(self.ranked),
                "similarity": self.similarity, "formula": FORMULA, "settings": dict(self.settings),
                "cost": dict(self.cost), "ms": round(1000.0 * self.seconds, 1)}

    def label(self, k: int = 3) -> str:
        """``matched on: wings (0.93), beak (0.90), ...`` (confidence c_a in brackets)."""
        return "matched on: " + ", ".join(f"{s.name} ({s.confidence:.2f})" for s in self.top(k))


def agreement(aam: np.ndarray, saliency: np.ndarray) -> float:
    """Histogram intersection of an activation map (sums to 1) and a saliency map resampled to its grid."""
    s = np.maximum(resize_map(np.asarray(saliency, np.float32), aam.shape, mode="area"), 0.0).astype(np.float64)
    tot = float(s.sum())
    if tot <= 0:
        return 0.0
    return float(np.minimum(aam.astype(np.float64) / max(float(aam.sum()), 1e-12), s / tot).sum())


def region_mask(aam: np.ndarray, size: tuple[int, int], fraction: float) -> torch.Tensor:
    """(H, W) bool: exactly round(``fraction`` · H·W) input pixels, those where the bilinearly upsampled
    map is highest (ties by position), so every attribute deletes the same area."""
    up = F.interpolate(torch.from_numpy(np.ascontiguousarray(aam, np.float32))[None, None], size=size,
                       mode="bilinear", align_corners=False)[0, 0]
    k = max(1, int(round(fraction * up.numel())))
    mask = torch.zeros(up.numel(), dtype=torch.bool)
    mask[torch.topk(up.flatten(), k).indices] = True
    return mask.reshape(up.shape)


def deleted(x: torch.Tensor, mask: torch.Tensor, baseline: float = 0.0) -> torch.Tensor:
    """``x`` (1, 3, H, W) with the ``mask`` pixels set to ``baseline`` (a copy)."""
    out = x.clone()
    out[:, :, mask] = baseline
    return out


class SaneChooser:
    """Rank the attributes that explain a pair; settings at construction, :meth:`iter_choose` per pair."""

    def __init__(self, predictor: AttributePredictor, model: EmbeddingModel, *, w_confidence: float = 0.4,
                 w_agreement: float = 0.3, w_deletion: float = 0.3, candidates: int = 8, region: float = 0.2,
                 batch: int = 8) -> None:
        ws = (w_confidence, w_agreement, w_deletion)
        if min(ws) < 0 or sum(ws) <= 0:
            raise ValueError("the SANE weights must be >= 0 and not all zero")
        if candidates < 1 or not 0.0 < region < 1.0 or batch < 1:
            raise ValueError("SANE needs candidates >= 1, 0 < region < 1 and batch >= 1")
        self.predictor, self.model = predictor, model
        self.w = tuple(float(v) for v in ws)
        self.candidates, self.region, self.batch = int(candidates), float(region), int(batch)

    def settings(self) -> dict[str, Any]:
        return {"w_confidence": self.w[0], "w_agreement": self.w[1], "w_deletion": self.w[2],
                "candidates": self.candidates, "region": self.region}

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return F.normalize(self.model.embed_tensor(x.to(self.model.device)).double(), dim=1).cpu()

    def deletion_similarity(self, x1: torch.Tensor, x2: torch.Tensor, aam1: np.ndarray, aam2: np.ndarray,
                            attributes: list[int], e1: torch.Tensor | None = None,
                            e2: torch.Tensor | None = None) -> np.ndarray:
        """s₋ₐ for each listed attribute: ½ [cos(q ⊖ a, t) + cos(q, t ⊖ a)] (``e1``/``e2``: the
        unmodified images' normalised embeddings, computed when not given)."""
        if e1 is None or e2 is None:
            e1, e2 = self._embed(torch.cat([x1, x2]))
        size = (int(x1.shape[-2]), int(x1.shape[-1]))
        out = []
        for s in range(0, len(attributes), self.batch):
            chunk = attributes[s:s + self.batch]
            xq = torch.cat([deleted(x1, region_mask(aam1[a], size, self.region)) for a in chunk])
            xt = torch.cat([deleted(x2, region_mask(aam2[a], size, self.region)) for a in chunk])
            e = self._embed(torch.cat([xq, xt]))
            out.append(0.5 * (e[:len(chunk)] @ e2.reshape(-1) + e[len(chunk):] @ e1.reshape(-1)))
        return torch.cat(out).numpy() if out else np.zeros(0)

    def iter_choose(self, x1: torch.Tensor, x2: torch.Tensor, saliency1: np.ndarray | None, saliency2: np.ndarray | None,
                    similarity: float | None = None) -> Generator[Progress, None, AttributeChoice]:
        """Score the candidates for the pair (x1 = query, x2 = target); yields Progress (cancel points).
        A ``None`` saliency map (a method that maps one image only) leaves that image out of g_a."""
        t0 = time.perf_counter()
        with torch.inference_mode():
            f = self.model.forward_features(torch.cat([x1, x2]).to(self.model.device))
            e = F.normalize(self.model.forward_head(f).double(), dim=1).cpu()
        s = float(e[0] @ e[1]) if similarity is None else float(similarity)
        conf, aam = self.predictor.predict_features(f)
        yield Progress(1, 3, "attributes: predicted")
        c = np.sqrt(conf[0] * conf[1])
        cand = [int(a) for a in np.argsort(-c, kind="stable")[: self.candidates]]
        sal = [(aam[0], saliency1), (aam[1], saliency2)]
        sal = [(m, sm) for m, sm in sal if sm is not None]  # a method may map one image only
        g = {a: float(np.mean([agreement(m[a], sm) for m, sm in sal])) if sal else 0.0 for a in cand}
        drops = {a: 0.0 for a in cand}
        if self.w[2] > 0:
            sims = self.deletion_similarity(x1, x2, aam[0], aam[1], cand, e[0], e[1])
            drops = {a: max(0.0, s - float(v)) for a, v in zip(cand, sims)}
        yield Progress(2, 3, "attributes: deletions")
        dmax = max(drops.values()) if drops else 0.0
        ranked = []
        for a in cand:
            dn = drops[a] / dmax if dmax > 0 else 0.0
            score = self.w[0] * float(c[a]) + self.w[1] * g[a] + self.w[2] * dn
            ranked.append(AttributeScore(a, self.predictor.names[a], score, float(conf[0, a]), float(conf[1, a]),
                                         float(c[a]), g[a], drops[a], dn))
        ranked.sort(key=lambda r: -r.score)
        yield Progress(3, 3, "attributes: ranked")
        forwards = 2 + (2 * len(cand) if self.w[2] > 0 else 0)
        return AttributeChoice(ranked, aam[0], aam[1], conf, s, self.settings(), make_cost(forwards, 0), time.perf_counter() - t0)

    def choose(self, x1: torch.Tensor, x2: torch.Tensor, saliency1: np.ndarray | None, saliency2: np.ndarray | None,
               similarity: float | None = None) -> AttributeChoice:
        return run_generator(self.iter_choose(x1, x2, saliency1, saliency2, similarity))
