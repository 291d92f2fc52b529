"""ExplainLFS core: the paper's toy example, an independent linear-decoder check, invariances."""

import numpy as np
import pytest
import torch

from lfs_gui.explain import ExplainLFS, relevance, unit_map
from lfs_gui.models.decoder import DenseDecoder

H1 = [1.2, 1.9, 2.3, 3.1, 2.0, 2.1, 2.2]


def test_toy_example_similar():
    h2 = [1.1, 3.0, 2.5, 4.0, 1.3, 1.4, 1.9]
    r = relevance(H1, h2, similar=True)
    np.testing.assert_allclose(r, [1, 0, 0.9, 0.2, 0.4, 0.4, 0.8], atol=1e-6)


def test_toy_example_dissimilar():
    h2 = [2.0, 1.5, 2.7, 0.3, 2.5, 1.6, 2.5]
    r = relevance(H1, h2, similar=False)
    np.testing.assert_allclose(r, [0.2, 0.04, 0.04, 1, 0.08, 0.08, 0], atol=1e-6)


def test_degenerate_equal_distances_gives_uniform_relevance():
    h = np.array([0.5, -0.2, 0.1])
    for similar in (True, False):
        np.testing.assert_array_equal(relevance(h, h, similar), np.ones(3, np.float32))
        np.testing.assert_array_equal(relevance(h, h + 0.25, similar), np.ones(3, np.float32))


@pytest.mark.parametrize(
    "h1,h2,word",
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], "shape mismatch"),
        ([1.0, np.nan], [1.0, 2.0], "NaN"),
        ([1.0, 2.0], [np.inf, 2.0], "NaN or inf"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_relevance_bad_input(h1, h2, word):
    with pytest.raises(ValueError, match=word):
        relevance(h1, h2, True)


def _linear_decoder(dim: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(3 * size * size, dim))
    b = rng.normal(size=3 * size * size)
    fn = lambda h: (h @ W.T + b).reshape(len(h), 3, size, size)  # noqa: E731
    return W, fn


def test_linear_decoder_heat_matches_closed_form():
    dim, size, p = 16, 6, 0.3
    W, g = _linear_decoder(dim, size)
    rng = np.random.default_rng(1)
    h1, h2 = rng.normal(size=dim), rng.normal(size=dim)
    ex = ExplainLFS(g, p=p, xi1=-2.0).explain(h1, h2)  # xi1 = -2: always "similar"
    assert ex.similar
    r = relevance(h1, h2, True).astype(np.float64)
    # Independent check: g(h) - g(h + R p) = -W R p, so heat = |W R| p summed over channels.
    expected = (np.abs(W @ r) * p).reshape(3, size, size).sum(axis=0)
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(ex.heat1, expected, atol=1e-5)
    np.testing.assert_allclose(ex.heat2, expected, atol=1e-5)
    assert ex.heat1.dtype == np.float32 and ex.heat1.shape == (size, size)
    np.testing.assert_array_equal(ex.mask1, ex.heat1 > 0.7)


def test_linear_decoder_heat_invariant_to_p():
    W, g = _linear_decoder(8, 5, seed=3)
    rng = np.random.default_rng(4)
    h1, h2 = rng.normal(size=8), rng.normal(size=8)
    heats = [ExplainLFS(g, p=p).explain(h1, h2).heat2 for p in (0.01, 0.3, 0.9, 5.0)]
    for h in heats[1:]:
        np.testing.assert_allclose(h, heats[0], atol=1e-5)


def test_similarity_decides_relevance_branch():
    W, g = _linear_decoder(8, 4)
    h1 = np.array([1, 0, 0, 0, 0, 0, 0, 0.0])
    h2 = np.array([0, 1, 0, 0, 0, 0, 0, 0.0])
    ex = ExplainLFS(g, xi1=0.3).explain(h1, h2)
    assert ex.similarity == pytest.approx(0.0) and not ex.similar
    np.testing.assert_allclose(ex.extras["relevance"], relevance(h1, h2, False))
    ex2 = ExplainLFS(g, xi1=0.3).explain(h1, h2, similarity=0.9)
    assert ex2.similar and ex2.similarity == 0.9
    np.testing.assert_allclose(ex2.extras["relevance"], relevance(h1, h2, True))


def test_inputs_not_mutated_and_one_decoder_batch():
    calls = []
    W, g = _linear_decoder(12, 4)

    def counting(h):
        calls.append(h.shape)
        return g(h)

    rng = np.random.default_rng(0)
    h1 = rng.normal(size=12).astype(np.float32)
    h2 = rng.normal(size=12).astype(np.float32)
    c1, c2 = h1.copy(), h2.copy()
    ExplainLFS(counting).explain(h1, h2)
    ExplainLFS(counting, perturb="test").explain(h1, h2)
    np.testing.assert_array_equal(h1, c1)
    np.testing.assert_array_equal(h2, c2)
    assert calls == [(4, 12), (3, 12)]


def test_thesis_variant_perturbs_test_only_with_torch_decoder():
    torch.manual_seed(0)
    dec = DenseDecoder(10, size=8).eval()
    rng = np.random.default_rng(2)
    h1, h2 = rng.normal(size=10), rng.normal(size=10)
    paper = ExplainLFS(dec).explain(h1, h2)
    thesis = ExplainLFS(dec, perturb="test").explain(h1, h2)
    assert thesis.heat1 is None and thesis.mask1 is None
    np.testing.assert_allclose(thesis.heat2, paper.heat2, atol=1e-5)
    for heat in (paper.heat1, paper.heat2):
        assert heat.shape == (8, 8) and heat.min() == 0.0 and heat.max() == pytest.approx(1.0)
    assert paper.recon1.shape == (3, 8, 8)
    # Sigmoid decoder: the two maps differ (saturation depends on the image's own embedding).
    assert not np.allclose(paper.heat1, paper.heat2)


def test_normalize_constant_map_is_zero():
    np.testing.assert_array_equal(unit_map(np.full((3, 3), 2.0)), np.zeros((3, 3), np.float32))


def test_bad_settings():
    with pytest.raises(ValueError, match="perturb"):
        ExplainLFS(lambda h: h, perturb="query")
