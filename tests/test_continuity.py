"""The continuity (shift) test."""

from __future__ import annotations

import numpy as np
import torch
from _tiny_models import pattern_pair, tiny_model

from lfs_gui.explain.registry import make_explainer
from lfs_gui.metrics.continuity import (
    Continuity,
    ContinuityPoint,
    shift_image,
    shift_schedule,
)


def test_shift_image_known_answers():
    x = torch.arange(12.0).view(1, 1, 3, 4).expand(1, 3, 3, 4).contiguous()
    before = x.clone()
    assert torch.equal(shift_image(x, 0), x)
    s = shift_image(x, 1, -1.0)
    assert s[0, 0, 0].tolist() == [-1.0, 0.0, 1.0, 2.0]
    assert shift_image(x, -2)[0, 0, 1].tolist() == [6.0, 7.0, 0.0, 0.0]
    assert (shift_image(x, 4, 5.0) == 5.0).all()
    assert torch.equal(x, before)


def test_schedule_goes_out_and_back():
    s = shift_schedule(32, 20)
    assert len(s) == 20 and s[9] == 32 and s[-1] == 0 and s[:9] == s[10:19][::-1]


def test_continuity_curve_and_stop():
    model = tiny_model()
    x, _ = pattern_pair()
    cont = Continuity(steps=6)
    curve = cont(make_explainer("sim-decomp", model=model), model, x)
    assert curve.diffs.shape == (6,) and np.isfinite(curve.diffs).all()
    assert curve.diffs[-1] == 0.0  # x' = x: both maps identical
    assert curve.diffs[2] > 0  # image out of the frame: maps differ
    gen = cont.iter_curve(make_explainer("sim-decomp", model=model), model, x)
    first = next(gen)
    assert isinstance(first, ContinuityPoint) and first.step == 1
    gen.close()
    assert gen.gi_frame is None
    ref = Continuity(steps=4, mode="reference")(make_explainer("grad-sim", model=model), model, x, reference=pattern_pair(seed=5)[1])
    assert ref.diffs[-1] == 0.0
