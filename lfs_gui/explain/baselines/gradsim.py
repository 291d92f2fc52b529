"""``grad-sim``: Grad-CAM on the pair's cosine similarity.

Chen et al. 2020, "Adapting Grad-CAM for embedding networks" (WACV) and Zheng et al. 2020,
"Towards visually explaining similarity models": replace the class score of Grad-CAM (Selvaraju et
al. 2017) by the similarity s = ê¹·ê² of the pair. For image t with last conv map f_t (C, h, w)::

    α_c = mean_ij ∂s/∂f_t[c, i, j],   map_t = ReLU(Σ_c α_c f_t[c])

The backbone runs once for both images without gradients; only the head (pooling + projection) is
differentiated, with the feature maps as leaves, so the backward pass is cheap. For a GAP + affine
head W the map is ReLU(gᵀ W f_t(i)) / hw with g = ∂s/∂e_t = (ê_other − s·ê_t)/‖e_t‖ — the known
answer the tests check. ``target="decision"`` (the default) explains what makes a *dissimilar* pair
dissimilar (gradient of −s); ``target="similarity"`` explains the similarity itself (as published).
Runs on the model's device; the maps come back as numpy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lfs_gui.explain.base import (
    DEFAULT_TARGET,
    Explainer,
    ExplainerUnavailable,
    HeatPair,
    PairInput,
    make_cost,
    unit_map,
)
from lfs_gui.models.base import FeaturesUnavailable


def feature_maps(model, x1: torch.Tensor, x2: torch.Tensor, method: str) -> torch.Tensor:
    """Both images' last conv maps (2, C, h, w), float64, no autograd history; clear error if absent."""
    try:
        with torch.no_grad():
            f = model.forward_features(torch.cat([x1, x2]))
    except FeaturesUnavailable as exc:
        raise ExplainerUnavailable(f"{method} needs the model's conv feature map: {exc}") from exc
    if f.dim() != 4:
        raise ExplainerUnavailable(f"{method} needs a (B, C, h, w) feature map, the model gives {tuple(f.shape)}")
    return f.detach().double()


class GradSimExplainer(Explainer):
    """Grad-CAM of the cosine w.r.t. each image's last conv feature map (maps at feature resolution)."""

    name = "grad-sim"
    needs = frozenset({"model", "features"})
    summary = "Grad-CAM of the pair's cosine (Chen et al. 2020; Zheng et al. 2020)"

    def __init__(self, model=None, decoder=None, *, target: str = DEFAULT_TARGET) -> None:
        super().__init__(model, decoder, target=target)

    def _explain(self, pair: PairInput) -> HeatPair:
        x1, x2 = pair.require_tensors(self.name, self.model.device)
        f = feature_maps(self.model, x1, x2, self.name).requires_grad_(True)
        with torch.enable_grad():
            param = next(iter(self.model.module.parameters()), None)
            head_dtype = param.dtype if param is not None else torch.float32
            e = F.normalize(self.model.forward_head(f.to(head_dtype)).double(), dim=1)
            s = self.sign(pair) * (e[0] * e[1]).sum()
            (g,) = torch.autograd.grad(s, f)
        alpha = g.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((alpha * f.detach()).sum(dim=1))
        return self._result(pair, unit_map(cam[0]), unit_map(cam[1]), make_cost(2, 2), cam=cam.cpu().numpy())
