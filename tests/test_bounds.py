"""Fair ranking, the greedy oracle, gap closed and the device plumbing of the curves.

Known answers on the tiny models: ties follow the pair's random map (a constant map is ranked as
random), the oracle's curve is the curve of its own order and no random order beats it, its cache
hits without a forward, gap closed matches hand values, and every curve gives the same AUC on every
available device as on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_models import make_pair, mean_fill, pattern_pair, planted_gallery, planted_model, tiny_model

from lfs_gui.device import available_devices
from lfs_gui.explain.baselines.random_map import random_heat
from lfs_gui.explain.registry import make_explainer
from lfs_gui.jobs import Progress
from lfs_gui.metrics.bounds import gap_closed, paired_difference, symmetric_relevance_gain
from lfs_gui.metrics.oracle import Oracle, OracleCache, oracle_forwards
from lfs_gui.metrics.ranking import grid_of, rank_cells
from lfs_gui.metrics.selectivity import CurvePoint, Selectivity


class Counting(type(planted_model())):
    calls = 0

    def embed_tensor(self, x):
        type(self).calls += len(x)
        return super().embed_tensor(x)


def counting_model():
    m = planted_model()
    return Counting(module=m.module, dim=m.dim, preprocessing=m.preprocessing, name="planted")


def planted_pair(model, a=0, b=1):
    images, _ = planted_gallery()
    x1 = model.preprocessing.to_tensor(images[a]).unsqueeze(0)
    x2 = model.preprocessing.to_tensor(images[b]).unsqueeze(0)
    return x1, x2


def test_ranking_breaks_ties_by_the_random_map_in_both_orders():
    tie = np.array([0.3, 0.9, 0.1, 0.5])
    assert rank_cells(np.zeros(4), tie, "morf").tolist() == [1, 3, 0, 2]
    assert rank_cells(np.zeros(4), tie, "lerf").tolist() == [2, 0, 3, 1]
    assert rank_cells(np.array([1.0, 0, 0, 1.0]), tie, "morf").tolist() == [3, 0, 1, 2]
    # float noise of resampling is a tie, not a ranking
    assert rank_cells(np.array([1.0, 1.0 + 1e-9, 1.0, 1.0]), tie, "morf").tolist() == [1, 3, 0, 2]
    sel = Selectivity(steps=10)
    h1, h2 = random_heat(np.ones(4, np.float32), np.zeros(4, np.float32))
    const = np.full((7, 7), 0.25)  # a coarse constant map upsampled to 40×40: every cell ties
    for order in ("morf", "lerf"):
        s = Selectivity(steps=10, order=order)
        np.testing.assert_array_equal(s.order(None, const, True, ties=(h1, h2)), s.order(h1, h2, True, ties=(h1, h2)))
    assert sel.order(None, const, True).tolist() != list(range(64))  # never raster order


def test_grid_and_steps_are_checked_not_adjusted_silently():
    assert grid_of(40, 5) == 8 and grid_of(40, 8) == 5
    with pytest.raises(ValueError, match="does not divide the 40×40 heat frame.*1, 2, 4, 5, 8"):
        Selectivity(superpixel=6)
    with pytest.raises(ValueError, match="65 steps is more than the 64 cells"):
        Selectivity(steps=65)
    with pytest.raises(ValueError, match="order must be"):
        Selectivity(order="middle")
    with pytest.raises(ValueError, match="target must be"):
        Selectivity(target="vibes")


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("similar", [True, False])
def test_oracle_is_the_curve_of_its_order_and_beats_random_orders(order, similar):
    model = planted_model()
    x1, x2 = planted_pair(model, 0, 1 if similar else 5)
    sel = Selectivity(steps=8, perturbation=mean_fill(), order=order)
    items = list(Oracle(sel, batch=7, cache=None).iter_curve(model, x1, x2, similar))
    gen = Oracle(sel, batch=7, cache=None).iter_curve(model, x1, x2, similar)
    curve = None
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        curve = stop.value
    points = [p for p in items if isinstance(p, CurvePoint)]
    assert [p.step for p in points] == list(range(9)) and any(isinstance(p, Progress) for p in items)
    assert curve.settings["method"] == "oracle" and len(set(curve.order.tolist())) == 8
    replay = sel.iter_curve_for_order(model, x1, x2, curve.order, similar)
    again = list(replay)
    np.testing.assert_allclose([p.sim for p in again], curve.sims, atol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(12):
        perm = rng.permutation(64)
        auc = sel.iter_curve_for_order(model, x1, x2, perm, similar)
        c = None
        try:
            while True:
                next(auc)
        except StopIteration as stop:
            c = stop.value
        assert (curve.auc <= c.auc + 1e-9) if curve.lower_is_better else (curve.auc >= c.auc - 1e-9)


def test_oracle_cost_cache_and_cancel(tmp_path):
    model = counting_model()
    x1, x2 = planted_pair(model)
    sel = Selectivity(steps=5, perturbation="noise", seed=3)
    cache = OracleCache(tmp_path / "oracle")
    oracle = Oracle(sel, batch=16, cache=cache)
    Counting.calls = 0
    first = oracle(model, x1, x2, True)
    assert Counting.calls == 2 + oracle_forwards(64, 5, True) == 2 + 64 + 63 + 62 + 61 + 60
    assert oracle.forwards(False) == 2 * oracle.forwards(True)
    Counting.calls = 0
    hit = Oracle(sel, cache=OracleCache(tmp_path / "oracle"))(model, x1, x2, True)  # from disk, new process-like cache
    assert Counting.calls == 0 and hit.settings["cached"] and hit.auc == first.auc
    np.testing.assert_array_equal(hit.order, first.order)
    # everything that determines the curve is in the key
    base = oracle.key(model, x1, x2, True)
    assert oracle.key(model, x1, x2, True, seed=4) != base
    assert oracle.key(model, x1, x2, False) != base
    assert Oracle(Selectivity(steps=5, perturbation="fill", seed=3)).key(model, x1, x2, True) != base
    # on a similar pair both targets ask the same question: one oracle; on a dissimilar pair they differ
    assert Oracle(Selectivity(steps=5, seed=3, target="similarity")).key(model, x1, x2, True) == base
    assert Oracle(Selectivity(steps=5, seed=3, target="similarity")).key(model, x1, x2, False) != \
        Oracle(Selectivity(steps=5, seed=3)).key(model, x1, x2, False)
    assert oracle.key(model, x1, x2 + 1e-3, True) != base
    assert Oracle(Selectivity(steps=5, perturbation="noise", seed=3, chunk=9)).key(model, x1, x2, True) == base
    # cancel: closing the generator stops the work
    Counting.calls = 0
    gen = Oracle(Selectivity(steps=5, seed=9), batch=4, cache=None).iter_curve(model, x1, x2, True)
    for _ in range(4):
        next(gen)
    gen.close()
    assert Counting.calls <= 2 + 3 * 4


def test_gap_closed_and_srg_by_hand():
    r = np.array([0.95, 0.90, 0.97, 0.93, np.nan])
    o = np.array([0.70, 0.65, 0.72, 0.68, 0.5])
    m = np.array([0.90, 0.83, 0.91, 0.89, 0.6])
    g = gap_closed(r, m, o)
    a, d = (r - m)[:4], (r - o)[:4]
    assert g.n == 4 and g.mean == pytest.approx(a.mean() / d.mean())
    resid = a - g.mean * d
    assert g.ci95 == pytest.approx(3.182446 * resid.std(ddof=1) / (2 * d.mean()), rel=1e-5)
    assert g.per_pair[0] == pytest.approx(0.2)
    assert gap_closed(r, r, o).mean == pytest.approx(0.0) and gap_closed(r, o, o).mean == pytest.approx(1.0)
    # direction-free: higher-is-better scores give the same fraction
    assert gap_closed(-r, -m, -o).mean == pytest.approx(g.mean)
    assert np.isnan(gap_closed(r[:4], m[:4], r[:4]).mean)  # an oracle no better than random: undefined
    d = paired_difference([1.0, 2.0, 4.0], [0.5, 1.5, 3.0])
    assert d.mean == pytest.approx(2 / 3) and d.n == 3 and d.excludes_zero() is False
    assert symmetric_relevance_gain(0.6, 0.9, True) == pytest.approx(0.3)
    assert symmetric_relevance_gain(0.3, 0.1, False) == pytest.approx(0.2)


@pytest.mark.parametrize("device", available_devices())
def test_curves_oracle_and_maps_agree_on_every_device(device):
    """The same AUC within 1e-3 on every available device as on the CPU (here: the CPU path of the plumbing)."""
    cpu_model = tiny_model()
    x1, x2 = pattern_pair()
    pair = make_pair(cpu_model, x1, x2)
    heat = make_explainer("grad-sim", model=cpu_model).explain(pair)
    ties = random_heat(pair.h1, pair.h2)
    sel = Selectivity(steps=6, perturbation="noise", seed=2)
    ref_curve = sel(cpu_model, x1, x2, heat.heat1, heat.heat2, True, ties=ties)
    ref_oracle = Oracle(Selectivity(steps=4, perturbation="fill"), cache=None)(cpu_model, x1, x2, True)
    ref_rise = make_explainer("rise-sim", model=cpu_model, n_masks=16).explain(pair)

    model = tiny_model().to(device)
    assert model.device.type == torch.device(device).type
    dev_pair = make_pair(model, x1, x2)
    np.testing.assert_allclose(dev_pair.h2, pair.h2, atol=1e-4)
    dev_heat = make_explainer("grad-sim", model=model).explain(dev_pair)
    assert isinstance(dev_heat.heat2, np.ndarray)
    np.testing.assert_allclose(dev_heat.heat2, heat.heat2, atol=1e-3)
    curve = sel(model, x1, x2, dev_heat.heat1, dev_heat.heat2, True, ties=ties)
    assert curve.auc == pytest.approx(ref_curve.auc, abs=1e-3)
    assert curve.settings["noise_crc32"] == ref_curve.settings["noise_crc32"]  # noise drawn on the CPU
    oracle = Oracle(Selectivity(steps=4, perturbation="fill"), cache=None)(model, x1, x2, True)
    assert oracle.auc == pytest.approx(ref_oracle.auc, abs=1e-3)
    rise = make_explainer("rise-sim", model=model, n_masks=16).explain(dev_pair)
    np.testing.assert_allclose(rise.heat2, ref_rise.heat2, atol=1e-3)
