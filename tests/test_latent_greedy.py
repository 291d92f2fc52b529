"""``explainlfs-latent``: the latent-space prediction is exact where it should be, the greedy matches a
real greedy there, the map is the rank, inputs are untouched, the cost is declared."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lfs_gui.explain.base import PairInput
from lfs_gui.explain.latent_greedy import (
    ExplainLFSLatentExplainer,
    cell_deltas,
    coverage,
    greedy_order,
    projected_locations,
)
from lfs_gui.explain.registry import EXPLAINERS, make_explainer
from lfs_gui.explain.resample import block_sums
from lfs_gui.metrics.perturbations import make_perturbation
from lfs_gui.models.base import EmbeddingModel, Preprocessing

from _tiny_models import TinyModel  # noqa: E402


class PatchNet(nn.Module):
    """4×4-patch conv (stride 4: each location sees only its own patch) → ReLU → GAP → affine head."""

    def __init__(self, c: int = 16, dim: int = 8) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.conv = nn.Conv2d(3, c, 4, stride=4)
        self.fc = nn.Linear(c, dim)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.randn(c, generator=g) * 0.1)
            self.fc.weight.copy_(torch.randn(self.fc.weight.shape, generator=g))
            self.fc.bias.copy_(torch.randn(dim, generator=g) * 0.1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


PatchModel = TinyModel  # features → GAP → fc, as the shared tiny model (its module here is a PatchNet)


@pytest.fixture(scope="module")
def patch_model() -> EmbeddingModel:
    net = PatchNet().double().eval().requires_grad_(False)  # float64: the real greedy has no rounding ties
    return PatchModel(module=net, dim=8, preprocessing=Preprocessing(input_size=32, resize=None), name="patch")


def images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(1, 3, 32, 32, generator=g, dtype=torch.float64)
    return x1, x1 + 0.6 * torch.randn(1, 3, 32, 32, generator=g, dtype=torch.float64)


def cell_mask(cells: list[int], grid: int = 8, size: int = 32) -> torch.Tensor:
    m = torch.zeros(1, 1, size, size, dtype=torch.bool)
    s = size // grid
    for c in cells:
        i, j = divmod(c, grid)
        m[..., i * s : (i + 1) * s, j * s : (j + 1) * s] = True
    return m


def fill_source(model: EmbeddingModel, x: torch.Tensor) -> torch.Tensor:
    return make_perturbation("fill").source(x, model.preprocessing, torch.Generator())


def test_coverage_rows_sum_to_one_and_is_identity_on_aligned_grids() -> None:
    k = coverage((7, 7), 8, (224, 224))
    assert k.shape == (49, 64)
    np.testing.assert_allclose(k.sum(1), 1.0)
    np.testing.assert_allclose(coverage((8, 8), 8, (32, 32)), np.eye(64))
    smooth = coverage((7, 7), 8, (224, 224), spread=1.0)
    np.testing.assert_allclose(smooth.sum(1), 1.0)
    assert (smooth > 0).all() and smooth.max() < k.max()


def test_latent_prediction_is_exact_for_a_patch_model(patch_model: EmbeddingModel) -> None:
    """Each location sees only its own patch, so e(S) = e + Σ_{c∈S} d(c) exactly, for any set S."""
    x, _ = images()
    src = fill_source(patch_model, x)
    w, b = patch_model.linear_head()
    u = projected_locations(patch_model.forward_features(x), w)[0]
    u_p = projected_locations(patch_model.forward_features(src), w)[0]
    d = cell_deltas(u, u_p, coverage((8, 8), 8, (32, 32)))
    e = u.mean(0) + b.double().numpy()
    rng = np.random.default_rng(0)
    for size in (1, 5, 30, 64):
        cells = sorted(rng.choice(64, size, replace=False).tolist())
        real = patch_model.forward_head(patch_model.forward_features(torch.where(cell_mask(cells), src, x)))
        np.testing.assert_allclose(e + d[cells].sum(0), real[0].double().numpy(), rtol=1e-5, atol=1e-5)


def real_greedy(model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, steps: int, both: bool, lower: bool) -> list[int]:
    """The oracle's greedy with real forwards (every remaining cell tried at every step)."""
    chosen: list[int] = []
    s1, s2 = fill_source(model, x1), fill_source(model, x2)
    for _ in range(steps):
        rem = [c for c in range(64) if c not in chosen]
        masks = torch.cat([cell_mask(chosen + [c]) for c in rem])
        e2 = model.embed_tensor(torch.where(masks, s2, x2))
        e1 = model.embed_tensor(torch.where(masks, s1, x1)) if both else model.embed_tensor(x1).expand_as(e2)
        s = (e1 * e2).sum(1)
        chosen.append(rem[int(s.argmin() if lower else s.argmax())])
    return chosen


@pytest.mark.parametrize("similar", [True, False])
def test_greedy_matches_the_real_greedy_on_a_patch_model(patch_model: EmbeddingModel, similar: bool) -> None:
    x1, x2 = images(1)
    if not similar:
        x2 = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    pair = PairInput.from_tensors(patch_model, x1, x2, xi1=2.0 if not similar else -1.0)
    assert pair.similar is similar
    ex = ExplainLFSLatentExplainer(model=patch_model, relevance="none", target="decision")
    res = ex.explain(pair)
    want = real_greedy(patch_model, x1, x2, steps=12, both=not similar, lower=similar)
    assert res.extras["order"][:12].tolist() == want
    # the map ranks the cells in that order (summed over the curve's cells)
    scores = block_sums(res.heat2, 8).ravel()
    assert np.argsort(-scores, kind="stable")[:12].tolist() == want


def test_relevance_weighted_greedy_uses_explainlfs_R(patch_model: EmbeddingModel) -> None:
    x1, x2 = images(2)
    pair = PairInput.from_tensors(patch_model, x1, x2, xi1=-1.0)
    res = ExplainLFSLatentExplainer(model=patch_model).explain(pair)
    from lfs_gui.explain.explainlfs import relevance

    np.testing.assert_allclose(res.extras["relevance"], relevance(pair.h1, pair.h2, True), rtol=1e-6)
    # the predicted weighted similarity falls along the greedy path of a similar pair
    assert res.extras["predicted"][0] > res.extras["predicted"][20]


def test_registered_inputs_untouched_cost_and_targets() -> None:
    assert EXPLAINERS["explainlfs-latent"] is ExplainLFSLatentExplainer
    model = PatchModel(module=PatchNet().eval().requires_grad_(False), dim=8,
                       preprocessing=Preprocessing(input_size=32, resize=None), name="patch32")  # float32: the registry probes it
    x1 = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    x2 = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    before = (x1.clone(), x2.clone())
    pair = PairInput.from_tensors(model, x1, x2, xi1=2.0)  # dissimilar
    h1 = pair.h1.copy()
    up = make_explainer("explainlfs-latent", model=model, target="decision", relevance="none").explain(pair)
    down = make_explainer("explainlfs-latent", model=model, target="similarity", relevance="none").explain(pair)
    assert torch.equal(x1, before[0]) and torch.equal(x2, before[1]) and np.array_equal(pair.h1, h1)
    assert up.cost["model_backwards"] == 0 and up.cost["decoder_calls"] == 0 and 2 <= up.cost["model_forwards"] <= 3
    assert up.heat2.shape == (32, 32) and up.heat2.dtype == np.float32 and up.heat2.max() == 1.0
    # decision on a dissimilar pair raises the similarity; the similarity target lowers it
    assert up.extras["predicted"][5] > pair.similarity > down.extras["predicted"][5]
    with pytest.raises(ValueError, match="baseline"):
        ExplainLFSLatentExplainer(model=model, baseline="grey")


def test_greedy_order_known_answer() -> None:
    """Two cells, image 2 only: removing the cell along e1 lowers the cosine most."""
    e1 = np.array([1.0, 0.0])
    e2 = np.array([1.0, 1.0])
    d2 = np.array([[-0.9, 0.0], [0.0, -0.9]])
    order, scores = greedy_order(e1, np.zeros_like(d2), e2, d2, both=False, lower=True)
    assert order.tolist() == [0, 1]
    assert scores[0] == pytest.approx(F.cosine_similarity(torch.tensor([1.0, 0]), torch.tensor([0.1, 1.0]), dim=0).item())



@pytest.mark.parametrize("name", ["fill", "noise"])
def test_baseline_image_is_the_curves_perturbation(patch_model: EmbeddingModel, name: str) -> None:
    from lfs_gui.explain.latent_greedy import baseline_image

    x = torch.zeros(1, 3, 32, 32)
    want = make_perturbation(name).source(x, patch_model.preprocessing, torch.Generator().manual_seed(7))
    torch.testing.assert_close(baseline_image(name, x, patch_model.preprocessing, 7), want)
