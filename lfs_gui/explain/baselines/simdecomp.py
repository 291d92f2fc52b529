"""``sim-decomp``: the exact spatial decomposition of the cosine (Stylianou, Souvenir & Pless 2019).

Stylianou et al., "Visualizing deep similarity networks" (WACV 2019), for a network ending in
conv map → global average pooling → affine head. Derivation with the head folded in: let
f_t(i) ∈ R^C be image t's feature at position i (n_t = h·w positions), (W, b) the head, and
u_t(i) = W f_t(i) + b. Because pooling is a mean and Σ_i b/n_t = b,

    e_t = W (1/n_t Σ_i f_t(i)) + b = (1/n_t) Σ_i u_t(i).

The cosine then splits over pairs of positions, exactly:

    cos(e_1, e_2) = Σ_i Σ_j s(i, j),   s(i, j) = u_1(i)·u_2(j) / (n_1 n_2 ‖e_1‖ ‖e_2‖).

The map of image 1 at i is Σ_j s(i, j) = u_1(i)·e_2 / (n_1 ‖e_1‖ ‖e_2‖) (and symmetrically for
image 2); each map sums to the cosine. The signed maps are kept in ``extras`` (``contrib1``,
``contrib2``, and ``pairwise`` s(i, j) when ``keep_pairwise``); the heat is their min–max
normalisation (``target="decision"``, the default: of the negated map for dissimilar pairs, so the
regions that pull the pair apart rank first). Needs ``model.linear_head()``. Runs on the model's device.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from lfs_gui.explain.base import (
    DEFAULT_TARGET,
    Explainer,
    ExplainerUnavailable,
    HeatPair,
    PairInput,
    make_cost,
    unit_map,
)
from lfs_gui.explain.baselines.gradsim import feature_maps

log = logging.getLogger(__name__)


def decompose(f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> dict[str, np.ndarray | float]:
    """Signed decomposition of the cosine for feature maps ``f`` (2, C, h, w) and head (W, b), float64."""
    f = f.double()
    w = weight.detach().to(f.device).double()
    u = torch.einsum("dc,bchw->bhwd", w, f)
    if bias is not None:
        u = u + bias.detach().to(f.device).double()
    e = u.mean(dim=(1, 2))  # (2, dim)
    n1, n2 = e[0].norm(), e[1].norm()
    npos1 = u.shape[1] * u.shape[2]
    c1 = (u[0] @ e[1]) / (npos1 * n1 * n2)
    c2 = (u[1] @ e[0]) / (npos1 * n1 * n2)
    cos = float((e[0] @ e[1]) / (n1 * n2))
    return {"contrib1": c1.cpu().numpy(), "contrib2": c2.cpu().numpy(), "u": u.cpu().numpy(), "embeddings": e.cpu().numpy(),
            "cosine": cos}


class SimDecompExplainer(Explainer):
    """Exact per-position split of the cosine for GAP + affine-head models (maps at feature resolution)."""

    name = "sim-decomp"
    needs = frozenset({"model", "features", "linear_head"})
    summary = "similarity decomposition over feature positions (Stylianou et al. 2019)"

    def __init__(self, model=None, decoder=None, *, target: str = DEFAULT_TARGET, keep_pairwise: bool = False) -> None:
        super().__init__(model, decoder, target=target)
        self.keep_pairwise = bool(keep_pairwise)
        self._store(keep_pairwise=self.keep_pairwise)

    def _explain(self, pair: PairInput) -> HeatPair:
        x1, x2 = pair.require_tensors(self.name, self.model.device)
        head = self.model.linear_head()
        if head is None:
            raise ExplainerUnavailable(f"{self.name} needs a model ending in global average pooling + an affine head")
        f = feature_maps(self.model, x1, x2, self.name)
        d = decompose(f, head[0], head[1])
        if not np.isclose(d["cosine"], pair.similarity, atol=1e-3):
            log.debug("sim-decomp: head cosine %.5f differs from the pair's similarity %.5f", d["cosine"], pair.similarity)
        sign = self.sign(pair)
        extras = {"contrib1": d["contrib1"], "contrib2": d["contrib2"], "cosine": d["cosine"]}
        if self.keep_pairwise:
            u, e = d["u"], d["embeddings"]
            n = u.shape[1] * u.shape[2]
            scale = n * n * np.linalg.norm(e[0]) * np.linalg.norm(e[1])
            extras["pairwise"] = u[0].reshape(n, -1) @ u[1].reshape(n, -1).T / scale
        return self._result(
            pair, unit_map(sign * d["contrib1"]), unit_map(sign * d["contrib2"]), make_cost(2, 0), **extras
        )
