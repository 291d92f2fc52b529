"""Selectivity (pixel-flipping) curves: known answers, generator behaviour, inputs untouched."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from _tiny_models import REGION, make_pair, pattern_pair, tiny_model

from lfs_gui.explain.registry import make_explainer
from lfs_gui.metrics.auc import mean_ci95, trapezoid_auc
from lfs_gui.metrics.perturbations import (
    PERTURBATIONS,
    make_perturbation,
    rgb_to_normalized,
)
from lfs_gui.metrics.selectivity import CurvePoint, Selectivity


class CountingModel(type(tiny_model())):
    """The tiny model, counting the images it embeds."""

    calls = 0

    def embed_tensor(self, x):
        type(self).calls += len(x)
        return super().embed_tensor(x)


def oracle_map() -> np.ndarray:
    """1 on the feature square's cells, 0.5 on the ring of cells its 3×3 conv halo reaches."""
    m = np.zeros((8, 8), np.float32)
    y0, y1, x0, x1 = REGION
    m[y0 - 1 : y1 + 1, x0 - 1 : x1 + 1] = 0.5
    m[y0:y1, x0:x1] = 1
    return m


def test_auc_hand_values():
    assert trapezoid_auc([1.0, 0.5, 0.0]) == pytest.approx(0.5)  # (0.75 + 0.25) / 2
    assert trapezoid_auc([1.0, 0.5, 0.0], normalize=False) == pytest.approx(1.0)
    assert trapezoid_auc([1, 1, 1, 1]) == pytest.approx(1.0)
    assert trapezoid_auc([0.0, 1.0], x=[0, 4], normalize=False) == pytest.approx(2.0)
    m, ci = mean_ci95([1.0, 2.0, 3.0])
    assert m == 2.0 and ci == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)


@pytest.mark.parametrize("perturbation", ["noise", "fill"])
def test_region_map_beats_random(perturbation):
    """The similarity depends only on the feature square: marking it gives a lower AUC than random maps."""
    model = tiny_model()
    x1, x2 = pattern_pair()
    pair = make_pair(model, x1, x2)
    sel = Selectivity(perturbation=perturbation, chunk=7)
    oracle = sel(model, x1, x2, oracle_map(), oracle_map(), True)
    rnd = [sel(model, x1, x2, None, make_explainer("random", seed=s).explain(pair).heat2, True).auc for s in range(4)]
    assert oracle.lower_is_better
    assert oracle.auc < min(rnd) - 0.03
    assert set(oracle.order[:4].tolist()) == {2 * 8 + 2, 2 * 8 + 3, 3 * 8 + 2, 3 * 8 + 3}


def test_curve_points_settings_and_no_mutation():
    model = tiny_model()
    x1, x2 = pattern_pair()
    h = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    copies = (x1.clone(), x2.clone(), h.copy())
    sel = Selectivity(steps=6, chunk=4, seed=3)
    points = []
    gen = sel.iter_curve(model, x1, x2, None, h, True)
    try:
        while True:
            points.append(next(gen))
    except StopIteration as stop:
        curve = stop.value
    assert [p.step for p in points] == list(range(7)) and all(isinstance(p, CurvePoint) for p in points)
    assert points[0].ratio == 1.0
    np.testing.assert_allclose(curve.sims, [p.sim for p in points])
    np.testing.assert_allclose(curve.ratios, curve.sims / curve.sims[0])
    assert curve.auc == pytest.approx(trapezoid_auc(curve.ratios))
    assert curve.settings["seed"] == 3 and curve.settings["perturbation"] == "noise" and curve.settings["grid"] == 8
    assert torch.equal(x1, copies[0]) and torch.equal(x2, copies[1]) and np.array_equal(h, copies[2])
    # same seed, same curve; batching does not change it
    again = Selectivity(steps=6, chunk=1, seed=3)(model, x1, x2, None, h, True)
    np.testing.assert_allclose(again.sims, curve.sims, atol=1e-6)


def test_generator_stops_after_any_step(caplog):
    model = tiny_model(CountingModel)
    x1, x2 = pattern_pair()
    h = np.random.default_rng(0).random((40, 40))
    for stop_after in (1, 3, 8):
        CountingModel.calls = 0
        gen = Selectivity(steps=20, chunk=1).iter_curve(model, x1, x2, None, h, True)
        with caplog.at_level(logging.DEBUG, logger="lfs_gui.metrics.selectivity"):
            for _ in range(stop_after):
                next(gen)
            before = CountingModel.calls
            gen.close()
        assert CountingModel.calls == before  # no further work
        assert before <= 2 + stop_after  # one pair forward, then one image per step
        assert any("stopped" in r.message for r in caplog.records)  # the finally block ran
        caplog.clear()


def test_dissimilar_perturbs_both_at_the_test_maps_cells():
    model = tiny_model()
    x1, x2 = pattern_pair(noise=3.0)
    sel = Selectivity(steps=16, perturbation="fill")  # square + halo ring = 16 cells
    h1 = np.zeros((8, 8)); h1[0, 0] = 1
    h2 = oracle_map()
    assert sel.order(h1, h2, similar=False)[0] != 0  # thesis: ranked by the test map
    assert Selectivity(rank_dissimilar="sum").order(h1 * 10, h2, similar=False)[0] == 0
    c = sel(model, x1, x2, h1, h2, similar=False)
    assert not c.lower_is_better
    # filling the square in both images makes their features equal there → similarity becomes 1
    assert c.sims[-1] == pytest.approx(1.0, abs=1e-5) and c.sims[0] < 0.999


def test_insertion_mode():
    model = tiny_model()
    x1, x2 = pattern_pair()
    c = Selectivity(steps=16, perturbation="fill", mode="insertion")(model, x1, x2, oracle_map(), oracle_map(), True)
    assert not c.lower_is_better and len(c.sims) == 17
    assert c.ratios[0] < 0.99 and c.ratios[-1] == pytest.approx(1.0, abs=1e-6)  # the region is all that matters: restored → original


def test_perturbations_shapes_and_values():
    x = torch.zeros(1, 3, 16, 16)
    pre = tiny_model().preprocessing
    g = torch.Generator().manual_seed(0)
    for name in PERTURBATIONS:
        src = make_perturbation(name).source(x, pre, g)
        assert src.shape == x.shape and torch.isfinite(src).all()
    white = make_perturbation("fill").source(x, pre, g)
    assert torch.allclose(white[0, :, 0, 0], rgb_to_normalized((1, 1, 1), pre).view(3))
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 3, 16, 16)
    blurred = make_perturbation("blur", sigma=0.1).source(ramp, pre, g)
    assert blurred[0, 0, 8, 3:13].sub(ramp[0, 0, 8, 3:13]).abs().max() < 0.05  # linear ramps survive blurring
    with pytest.raises(ValueError):
        make_perturbation("smudge")


def test_dissimilar_pairs_score_the_gain_whatever_the_sign_of_sim0():
    """A dissimilar pair with a negative starting cosine: the ratio is undefined (NaN) and the curve
    that is scored is sim_k − sim_0, so a rising similarity gives a positive AUC (higher is better)."""
    from lfs_gui.metrics.selectivity import RATIO_MIN_SIM, curve_value

    assert curve_value(0.1, -0.2, similar=False) == pytest.approx(0.3)
    assert np.isnan(curve_value(0.1, -0.2, similar=True))  # ratio undefined below RATIO_MIN_SIM
    assert curve_value(0.3, 0.6, similar=True) == pytest.approx(0.5)
    assert RATIO_MIN_SIM > 0

    model = tiny_model()
    x1, x2 = pattern_pair(noise=0.2)
    x2 = -x2  # makes the pair dissimilar with a negative cosine on the tiny model
    pair = make_pair(model, x1, x2)
    sel = Selectivity(steps=6, superpixel=5, heat_size=40, perturbation="fill", seed=0)
    heat = np.zeros((40, 40), np.float32)
    heat[10:20, 10:20] = 1.0
    curve = sel(model, x1, x2, heat, heat, similar=False)
    sim0 = curve.sims[0]
    np.testing.assert_allclose(curve.values, curve.sims - sim0)
    assert curve.auc == pytest.approx(trapezoid_auc(curve.values))
    assert curve.value_name == "sim_k − sim_0" and not curve.lower_is_better
    assert sim0 < 0 and np.isnan(curve.ratios).all()
    assert pair.similarity == pytest.approx(sim0, abs=1e-5)
