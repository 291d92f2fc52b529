"""Correspondence: the exact GAP + affine decomposition sums to the cosine, the estimate is labelled,
points map through the crop box, and a point on an object finds the same object in the other image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lfs_gui.explain.base import ExplainerUnavailable
from lfs_gui.explain.correspondence import (
    cell_to_original,
    correspondence,
    exact_correspondence,
    iter_correspondence,
    occluded,
    original_to_cell,
)
from lfs_gui.jobs import Progress
from lfs_gui.models.base import Preprocessing

from _object_models import CELL, OBJECT, colour_model, scene, to_input
from _tiny_models import NoSplitModel, pattern_pair, tiny_model


def _cos(model, x1, x2) -> float:
    with torch.no_grad():
        e = model.embed_tensor(torch.cat([x1, x2])).double()
    return float(F.cosine_similarity(e[:1], e[1:]))


def test_exact_sums_to_the_cosine_bias_free():
    model = colour_model(bias=False)
    x1 = to_input(model, scene({"red": (8, 8), "green": (40, 40)}, seed=1))
    x2 = to_input(model, scene({"red": (40, 16), "green": (8, 32)}, seed=2))
    corr = exact_correspondence(model, x1, x2)
    assert corr.exact and corr.matrix.shape == (64, 64) and corr.grid1 == corr.grid2 == (8, 8)
    assert abs(float(corr.matrix.sum(dtype=np.float64)) - _cos(model, x1, x2)) < 1e-5
    assert np.all(corr.bias1 == 0) and corr.bias_bias == 0.0
    assert corr.cost["model_forwards"] == 2 and corr.cost["model_backwards"] == 0


def test_exact_with_bias_keeps_the_bias_as_its_own_terms():
    model = tiny_model()  # its head has a bias of 0.05
    x1, x2 = pattern_pair(noise=0.5)
    corr = exact_correspondence(model, x1, x2)
    cos = _cos(model, x1, x2)
    assert abs(corr.total() - cos) < 1e-5
    assert abs(corr.cosine - cos) < 1e-5
    assert corr.bias_bias > 0 and abs(float(corr.matrix.sum()) - cos) > 1e-4  # the matrix alone is not the cosine
    assert "bias" in corr.note


@pytest.mark.parametrize("method", ["gap-affine", "occlusion"])
def test_point_on_an_object_lands_on_the_object_in_the_other_image(method):
    model = colour_model(bias=False)
    x1 = to_input(model, scene({"red": (8, 8), "green": (40, 40)}, seed=3))
    x2 = to_input(model, scene({"red": (40, 16), "green": (8, 32)}, seed=4))
    corr = correspondence(model, x1, x2, method=method, grid=8)
    assert corr.exact is (method == "gap-affine")
    for which, src, dst in ((1, (8, 8), (40, 16)), (2, (40, 16), (8, 8)), (1, (40, 40), (8, 32))):
        cell = corr.cell_at(which, src[1] + 4, src[0] + 4)  # u = x (column), v = y (row)
        heat = corr.match_heat(which, cell)
        assert heat.shape == (8, 8)
        r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
        assert dst[0] // CELL <= r < (dst[0] + OBJECT) // CELL and dst[1] // CELL <= c < (dst[1] + OBJECT) // CELL
        # the match is on the object, not spread over the background
        obj = heat[dst[0] // CELL:(dst[0] + OBJECT) // CELL, dst[1] // CELL:(dst[1] + OBJECT) // CELL]
        assert obj.sum() > 0.9 * heat.sum()
    top = corr.top_matches(2)
    assert len(top) == 2 and top[0].value >= top[1].value > 0


def test_occlusion_estimate_is_labelled_and_counts_forwards():
    model = tiny_model(NoSplitModel)
    x1, x2 = pattern_pair(noise=0.3)
    gen = iter_correspondence(model, x1, x2, grid=4, batch=5)
    events = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        corr = stop.value
    assert all(isinstance(e, Progress) for e in events) and events[-1].done == events[-1].total == 34
    assert not corr.exact and corr.method == "occlusion" and "estimate" in corr.note and "unavailable" in corr.note
    assert corr.cost["model_forwards"] == 2 * (16 + 1) and corr.matrix.shape == (16, 16)
    assert abs(corr.cosine - _cos(model, x1, x2)) < 1e-5
    with pytest.raises(ExplainerUnavailable, match="occlusion"):
        correspondence(model, x1, x2, method="gap-affine")


def test_occluded_cells_tile_the_image():
    x = torch.ones(1, 3, 10, 10)
    occ = occluded(x, 3)
    assert occ.shape == (9, 3, 10, 10)
    covered = (occ == 0).all(dim=1).sum(dim=0)
    assert torch.equal(covered, torch.ones(10, 10, dtype=covered.dtype))  # every pixel occluded exactly once
    assert torch.equal(x, torch.ones(1, 3, 10, 10))  # input not modified


def test_original_pixels_map_through_the_crop_box():
    model = colour_model()
    x1 = to_input(model, scene({"red": (8, 8)}, seed=5))
    corr = exact_correspondence(model, x1, x1)
    pre = Preprocessing(input_size=64, resize=64)  # 128×64 original: the crop keeps the middle 64×64 (x 32..96 at scale 1)
    assert original_to_cell(corr, 1, pre, 10, 10, 128, 64) is None  # left of the crop box
    assert original_to_cell(corr, 1, pre, 32 + 3, 3, 128, 64) == 0
    assert original_to_cell(corr, 1, pre, 32 + 63, 63, 128, 64) == 63
    x, y = cell_to_original(corr, 2, 9, pre, 128, 64)  # row 1, col 1 -> centre (12, 12) in the input
    assert (x, y) == pytest.approx((32 + 12, 12))
