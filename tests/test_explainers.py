"""Explainer interface, registry and the known answers of the model-side baselines.

The tiny model: 3×3 conv → ReLU → 4×4 average pool (8×8 feature map at 32 px) → zeroed outside a
fixed 2×2 feature square → global average pool → affine head. Its similarity depends only on the
pixels under that square (rows/cols 8..16, plus the conv's one-pixel halo).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lfs_gui.explain.base import ExplainerUnavailable, HeatPair, PairInput
from lfs_gui.explain.registry import EXPLAINERS, available_methods, make_explainer
from lfs_gui.explain.resample import block_edges, block_sums, resize_map
from lfs_gui.models.base import (
    EmbeddingModel,
)
from lfs_gui.models.decoder import ConvDecoder, DenseDecoder

from _tiny_models import REGION, NoSplitModel, TinyModel, make_pair, pattern_pair, tiny_model  # noqa: E402,F401

SMALL = {"rise-sim": {"n_masks": 24, "batch": 12}, "emsnn": {"n": 6, "k": 3}}


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    return tiny_model()


@pytest.mark.parametrize("decoder_kind", ["dense", "conv"])
@pytest.mark.parametrize("name", sorted(EXPLAINERS))
@pytest.mark.parametrize("similar", [True, False])
def test_every_explainer_shape_range_and_no_mutation(model, name, decoder_kind, similar):
    torch.manual_seed(0)
    decoder = (DenseDecoder(6, size=16) if decoder_kind == "dense" else ConvDecoder(6, size=16, width=16)).eval()
    x1, x2 = pattern_pair(noise=0.2 if similar else 3.0)
    pair = make_pair(model, x1, x2, xi1=0.3 if similar else 1.01)
    assert pair.similar is similar
    snapshot = {k: (v.clone() if isinstance(v, torch.Tensor) else np.array(v, copy=True))
                for k, v in vars(pair).items() if isinstance(v, (torch.Tensor, np.ndarray))}
    explainer = make_explainer(name, model=model, decoder=decoder, **SMALL.get(name, {}))
    res = explainer.explain(pair)
    assert isinstance(res, HeatPair) and res.method == name
    assert res.heat1.shape == res.heat2.shape == res.resolution
    for h in (res.heat1, res.heat2):
        assert h.dtype == np.float32 and np.isfinite(h).all()
        assert h.min() >= 0.0 and h.max() <= 1.0
    assert res.similar is similar
    assert set(res.cost) == {"model_forwards", "model_backwards", "decoder_calls"}
    assert res.settings["method"] == name
    for k, v in snapshot.items():
        now = getattr(pair, k)
        assert (torch.equal(now, v) if isinstance(v, torch.Tensor) else np.array_equal(now, v)), k
    # deterministic: the same pair gives the same maps
    again = make_explainer(name, model=model, decoder=decoder, **SMALL.get(name, {})).explain(pair)
    np.testing.assert_allclose(again.heat2, res.heat2, atol=1e-6)


def test_registry_needs_and_errors():
    model, decoder = tiny_model(), DenseDecoder(6, size=16)
    assert set(available_methods(model, decoder)) == set(EXPLAINERS)
    no_dec = available_methods(model, None)
    assert "explainlfs" not in no_dec and "emsnn" not in no_dec and "grad-sim" in no_dec
    assert "emsnn" not in available_methods(model, decoder, gallery=False)
    ts = tiny_model(NoSplitModel)
    assert "grad-sim" not in available_methods(ts, decoder) and "rise-sim" in available_methods(ts, decoder)
    with pytest.raises(ExplainerUnavailable, match="grad-sim.*feature"):
        make_explainer("grad-sim", model=ts)
    with pytest.raises(ExplainerUnavailable, match="decoder"):
        make_explainer("explainlfs", model=model)
    with pytest.raises(ExplainerUnavailable) as err:  # an index opened without its model (not loaded yet)
        make_explainer("explainlfs")
    assert str(err.value).startswith("explainlfs is unavailable: it needs a trained decoder")
    with pytest.raises(ExplainerUnavailable, match="unknown method"):
        make_explainer("nope")
    with pytest.raises(ValueError, match="bad settings"):
        make_explainer("random", wrong=1)


def test_emsnn_needs_labels(model):
    x1, x2 = pattern_pair()
    pair = PairInput.from_tensors(model, x1, x2)
    with pytest.raises(ExplainerUnavailable, match="gallery"):
        make_explainer("emsnn", decoder=DenseDecoder(6, 16)).explain(pair)


def test_grad_sim_known_answer(model):
    """For GAP + affine head, Grad-CAM of the cosine is ReLU(gᵀ W f(i)) with g = (ê₂ − s·ê₁)/‖e₁‖."""
    x1, x2 = pattern_pair(noise=1.0)
    pair = PairInput.from_tensors(model, x1, x2)
    res = make_explainer("grad-sim", model=model).explain(pair)
    with torch.no_grad():
        f = model.forward_features(torch.cat([x1, x2])).double()
        w, b = (t.double() for t in model.linear_head())
        e = torch.einsum("dc,bc->bd", w, f.mean((2, 3))) + b
        eh = F.normalize(e, dim=1)
        s = eh[0] @ eh[1]
        g1 = (eh[1] - s * eh[0]) / e[0].norm()
        cam = torch.relu(torch.einsum("d,dc,chw->hw", g1, w, f[0]))
    expected = (cam / cam.max()).numpy()
    assert res.resolution == (8, 8)
    np.testing.assert_allclose(res.heat1, expected, atol=1e-5)
    y0, y1, x0, x1_ = REGION
    outside = np.ones((8, 8), bool)
    outside[y0:y1, x0:x1_] = False
    assert np.all(res.heat1[outside] == 0) and res.heat1[~outside].max() == 1.0


def test_sim_decomp_sums_to_cosine(model):
    x1, x2 = pattern_pair(noise=1.0)
    pair = PairInput.from_tensors(model, x1, x2)
    res = make_explainer("sim-decomp", model=model, keep_pairwise=True).explain(pair)
    m64 = tiny_model()  # the cosine in float64, from the model's own layers
    m64.module.double()
    with torch.no_grad():
        e = m64.forward_head(m64.forward_features(torch.cat([x1, x2]).double()))
    cos = float(F.cosine_similarity(e[0:1], e[1:2]))
    assert cos == pytest.approx(pair.similarity, abs=1e-6)
    assert res.extras["cosine"] == pytest.approx(cos, abs=1e-7)  # float32 feature maps
    cos = res.extras["cosine"]  # the head's cosine on those maps, float64: the split is exact
    assert res.extras["contrib1"].sum() == pytest.approx(cos, abs=1e-12)
    assert res.extras["contrib2"].sum() == pytest.approx(cos, abs=1e-12)
    assert res.extras["pairwise"].sum() == pytest.approx(cos, abs=1e-12)
    np.testing.assert_allclose(res.extras["pairwise"].sum(axis=1).reshape(8, 8), res.extras["contrib1"], atol=1e-12)
    # bias folded in: positions outside the feature square still carry b's share
    assert abs(res.extras["contrib1"][0, 0]) > 0


def test_explainlfs_adapter_is_the_published_method_and_thesis_swap_equals_it(model):
    from lfs_gui.explain.explainlfs import ExplainLFS

    dec = DenseDecoder(6, size=16).eval()
    x1, x2 = pattern_pair()
    pair = make_pair(model, x1, x2)
    paper = make_explainer("explainlfs", decoder=dec).explain(pair)
    ref = ExplainLFS(dec, p=0.3, xi1=0.3).explain(pair.h1, pair.h2, pair.similarity)
    np.testing.assert_array_equal(paper.heat1, ref.heat1)
    np.testing.assert_array_equal(paper.heat2, ref.heat2)
    assert paper.mask2 is not None and paper.recon1 is not None
    thesis = make_explainer("explainlfs-thesis", decoder=dec).explain(pair)
    np.testing.assert_allclose(thesis.heat1, paper.heat1, atol=1e-6)
    np.testing.assert_allclose(thesis.heat2, paper.heat2, atol=1e-6)


def test_resample_and_blocks():
    h = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert resize_map(h, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    up = resize_map(h / 15, 9)
    assert up.shape == (9, 9) and up.min() >= 0 and up.max() <= 1
    assert block_edges(224, 8).tolist() == list(range(0, 225, 28))
    assert block_edges(10, 3).tolist() == [0, 3, 7, 10]
    assert block_sums(np.ones((40, 40)), 8).tolist() == [[25.0] * 8] * 8
    assert resize_map(h, 4) is not h
