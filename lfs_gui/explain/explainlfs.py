"""ExplainLFS exactly as published.

Bello, Costa, et al., "ExplainLFS: explaining neural architectures for similarity learning from
local perturbations in the latent feature space", Information Fusion (2024), §3 and Algorithm 1;
Costa, master's thesis (2022), §4.1 (which perturbs only the *test* embedding).

For embeddings h¹, h² of a pair:

1. relevance (Eq. 2–3): d = |h¹ − h²|, d̄ = (d − D⁻)/(D⁺ − D⁻), R = 1 − d̄ if the pair is similar
   (similarity > ξ1), else R = d̄;
2. mapping (Eq. 4): h(p) = h + R·p; heat = |g(h) − g(h(p))| summed over the colour channels and
   min–max normalised to [0, 1]; mask = heat > ξ2.

The heat maps live in the decoder's S×S frame, which is the model-input frame (see
``lfs_gui.models.train_decoder``). Variants that change the method get their own names elsewhere.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import numpy as np
import torch

from lfs_gui.explain.base import HeatPair, unit_map
from lfs_gui.models.base import cosine

DecoderLike = Union[torch.nn.Module, Callable[[np.ndarray], np.ndarray]]


def _as_vector(name: str, h: Any) -> np.ndarray:
    arr = np.asarray(h)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D embedding vector, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr.astype(np.float64, copy=False)


def relevance(h1: Any, h2: Any, similar: bool) -> np.ndarray:
    """Relevance R of each latent feature (Eq. 2–3 of the paper), float32 in [0, 1].

    Degenerate case: when every |h¹_j − h²_j| is equal (D⁺ = D⁻, e.g. h¹ = h²) no feature is
    closer or farther than another, so all features are taken as equally relevant: R = 1
    everywhere, for similar and dissimilar pairs alike (the whole embedding is perturbed by p).
    "Equal" allows float rounding: D⁺ − D⁻ ≤ 1e-12 + 1e-9·D⁺.

    Raises ``ValueError`` on a shape mismatch, non-1-D input, or NaN/inf values.
    """
    a, b = _as_vector("h1", h1), _as_vector("h2", h2)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: h1 has shape {a.shape}, h2 has shape {b.shape}")
    if a.size == 0:
        raise ValueError("embeddings are empty")
    d = np.abs(a - b)
    d_min, d_max = float(d.min()), float(d.max())
    if d_max - d_min <= 1e-12 + 1e-9 * d_max:
        return np.ones(a.shape, dtype=np.float32)
    d_bar = (d - d_min) / (d_max - d_min)
    r = 1.0 - d_bar if similar else d_bar
    return r.astype(np.float32)


def decode(decoder: DecoderLike, batch: np.ndarray) -> np.ndarray:
    """Run a decoder on a (B, N) float32 batch -> (B, 3, S, S) float32 numpy, no gradients."""
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if isinstance(decoder, torch.nn.Module):
        with torch.inference_mode():
            param = next(decoder.parameters(), None)
            dtype = param.dtype if param is not None else torch.float32
            device = param.device if param is not None else torch.device("cpu")
            out = decoder(torch.from_numpy(batch).to(device, dtype))
        return out.float().cpu().numpy()
    return np.asarray(decoder(batch), dtype=np.float32)


class ExplainLFS:
    """ExplainLFS (Bello et al. 2024, Algorithm 1) with a trained decoder ``g``.

    ``perturb="both"`` perturbs both embeddings (the paper's Algorithm 1) and gives a map per
    image; ``perturb="test"`` perturbs only the second (test) embedding (Costa's thesis, §4.1).
    ``decoder`` is a ``torch.nn.Module`` or any callable mapping (B, N) float32 -> (B, 3, S, S).
    """

    name = "explainlfs"

    def __init__(
        self,
        decoder: DecoderLike,
        p: float = 0.3,
        xi1: float = 0.3,
        xi2: float = 0.7,
        perturb: str = "both",
    ) -> None:
        if perturb not in ("both", "test"):
            raise ValueError(f"perturb must be 'both' (paper) or 'test' (thesis), got {perturb!r}")
        if not np.isfinite(p):
            raise ValueError(f"p must be finite, got {p}")
        self.decoder = decoder
        self.p = float(p)
        self.xi1 = float(xi1)
        self.xi2 = float(xi2)
        self.perturb = perturb

    def settings(self) -> dict:
        return {"method": self.name, "p": self.p, "xi1": self.xi1, "xi2": self.xi2, "perturb": self.perturb}

    def explain(self, h1: Any, h2: Any, similarity: float | None = None) -> HeatPair:
        """Explain the pair (h1 = query/reference, h2 = test). One decoder batch.

        ``similarity`` defaults to the cosine of h1 and h2; the pair is *similar* when it exceeds ξ1.
        Inputs are not modified. Returns a :class:`~lfs_gui.explain.base.HeatPair` with masks at ξ2 and
        the reconstructions; ``extras`` holds ``relevance`` and the perturbed reconstructions
        ``recon1_p``/``recon2_p``. In the thesis form (``perturb="test"``) ``heat1``, ``mask1`` and
        ``recon1_p`` are ``None``.
        """
        a, b = _as_vector("h1", h1), _as_vector("h2", h2)
        if a.shape != b.shape:
            raise ValueError(f"shape mismatch: h1 has shape {a.shape}, h2 has shape {b.shape}")
        sim = cosine(a, b) if similarity is None else float(similarity)
        if not np.isfinite(sim):
            raise ValueError(f"similarity must be finite, got {similarity}")
        similar = sim > self.xi1
        r = relevance(a, b, similar).astype(np.float64)
        shift = r * self.p
        if self.perturb == "both":
            batch = np.stack([a, b, a + shift, b + shift])
        else:
            batch = np.stack([a, b, b + shift])
        out = decode(self.decoder, batch)
        if out.ndim != 4 or out.shape[0] != len(batch) or out.shape[1] != 3:
            raise ValueError(f"decoder must return (B, 3, S, S), got {out.shape}")
        recon1, recon2 = out[0], out[1]
        recon2_p = out[-1]
        heat2 = unit_map(np.abs(recon2 - recon2_p).sum(axis=0))
        heat1 = mask1 = recon1_p = None
        if self.perturb == "both":
            recon1_p = out[2]
            heat1 = unit_map(np.abs(recon1 - recon1_p).sum(axis=0))
            mask1 = heat1 > self.xi2
        return HeatPair(
            method=self.name,
            heat1=heat1,
            heat2=heat2,
            similarity=sim,
            similar=bool(similar),
            cost={"model_forwards": 0, "model_backwards": 0, "decoder_calls": len(batch)},
            settings=self.settings(),
            extras={"relevance": r.astype(np.float32), "recon1_p": recon1_p, "recon2_p": recon2_p},
            mask1=mask1,
            mask2=heat2 > self.xi2,
            recon1=recon1,
            recon2=recon2,
        )
