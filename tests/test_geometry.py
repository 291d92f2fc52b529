"""The one coordinate mapping: model-input frame <-> original image (DESIGN "Coordinates")."""

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from lfs_gui.figures.overlay import heat_to_original, mask_to_original
from lfs_gui.models.base import Preprocessing

SIZES = [(300, 200), (200, 300), (640, 480), (256, 256), (100, 500), (227, 1000)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pre", [Preprocessing(224, 256), Preprocessing(227, 256), Preprocessing(160, None)])
def test_resize_crop_matches_torchvision(size, pre):
    """Our PIL view equals torchvision's Resize -> CenterCrop on the same image."""
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    if pre.resize is None:
        ref = transforms.Resize((pre.input_size, pre.input_size), antialias=True)(img)
    else:
        ref = transforms.CenterCrop(pre.input_size)(transforms.Resize(pre.resize, antialias=True)(img))
    ours = pre.resize_crop(img)
    assert ours.size == ref.size == (pre.input_size, pre.input_size)
    diff = np.abs(np.asarray(ours, np.int16) - np.asarray(ref, np.int16))
    assert diff.mean() < 2.0  # same geometry (only resampling filters may differ slightly)


@pytest.mark.parametrize("size", SIZES)
def test_crop_box_is_where_the_model_looks(size):
    """A pixel marked inside the crop box lands where to_input_coords says; round trip is exact."""
    pre = Preprocessing(224, 256)
    w, h = size
    x0, y0, x1, y1 = pre.crop_box(w, h)
    assert 0 <= x0 < x1 <= w + 1e-6 and 0 <= y0 < y1 <= h + 1e-6
    # centred crop
    assert (x0 + x1) / 2 == pytest.approx(w / 2, abs=w / 224) and (y0 + y1) / 2 == pytest.approx(h / 2, abs=h / 224)
    for u, v in [(0, 0), (223, 0), (100, 150), (223, 223)]:
        x, y = pre.to_original_coords(u, v, w, h)
        assert pre.to_input_coords(x, y, w, h) == pytest.approx((u, v), abs=1e-6)
    # a bright square in the original appears at the mapped place in the model's view
    img = np.zeros((h, w, 3), np.uint8)
    cx, cy = pre.to_original_coords(56, 168, w, h)
    r = max(3, int(0.05 * min(w, h)))
    img[int(cy) - r : int(cy) + r, int(cx) - r : int(cx) + r] = 255
    view = np.asarray(pre.resize_crop(Image.fromarray(img)))[..., 0].astype(float)
    ys, xs = np.nonzero(view > 127)
    # centroid of the square, within the half-pixel and integer-placement error of this construction
    assert abs(xs.mean() - 56) <= 3 and abs(ys.mean() - 168) <= 3


def test_heat_lands_in_the_right_corner_of_the_crop_box():
    """A heat map hot only in its top-left cell is drawn at the top-left of the crop box, not stretched."""
    pre = Preprocessing(224, 256)
    w, h = 400, 200  # wide image: the crop box is a centred square
    heat = np.zeros((40, 40), np.float32)
    heat[:5, :5] = 1.0
    out = heat_to_original(heat, pre, w, h)
    x0, y0, x1, y1 = pre.crop_box(w, h)
    assert np.isnan(out[:, : int(x0) - 1]).all() and np.isnan(out[:, int(np.ceil(x1)) + 1 :]).all()
    inside = out[int(np.ceil(y0)) : int(y1), int(np.ceil(x0)) : int(x1)]
    assert np.isnan(out[: int(y0) - 1]).all() and np.isnan(out[int(np.ceil(y1)) + 1 :]).all()
    assert np.isfinite(inside).all()
    hot_y, hot_x = np.nonzero(np.nan_to_num(out) > 0.5)
    side = x1 - x0
    assert hot_x.min() >= x0 - 1 and hot_x.max() <= x0 + side * 6 / 40
    assert hot_y.min() >= y0 - 1 and hot_y.max() <= y0 + side * 6 / 40
    m = mask_to_original(heat > 0.5, pre, w, h)
    assert m.dtype == bool and m[int(y0) + 2, int(x0) + 2] and not m[h - 2, int(x1) - 2]
