"""The figure flags of ``lfs-gui explain`` and the ``lfs-gui continuity`` command, end to end on a real
(tiny TorchScript) model and a real index folder: presets give the pixel sizes, the curve data holds
every curve, and continuity works for every registered method (EMSNN with its gallery context)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import env, run_cli  # noqa: E402,F401  (the module-scoped tiny index fixture)

from lfs_gui.explain.registry import EXPLAINERS, default_settings  # noqa: E402
from lfs_gui.figures import load_curve_data, read_figure_metadata  # noqa: E402
from lfs_gui.figures.continuity import load_continuity_data  # noqa: E402


def test_explain_view_flags_and_curve_data(env) -> None:  # noqa: F811
    base = env["base"]
    out, data = base / "flags.png", base / "flags.csv"
    rc, so, err = run_cli("explain", env["index"], "--query", 2, "--target", 9, "--size", "single", "--dpi", 100,
                          "--cmap", "viridis", "--opacity", 0.8, "--mask-view", "--curve", "--random-curve", "--steps", 4,
                          "--out", out, "--curve-data", data, "--json")
    assert rc == 0, err
    with Image.open(out) as im:
        assert im.size[0] == 350 and round(im.info["dpi"][0]) == 100
    st = read_figure_metadata(out)["settings"]
    assert st["view"]["cmap"] == "viridis" and st["view"]["opacity"] == 0.8 and st["view"]["mask_view"] is True
    assert set(st["curves"]) == {"method", "random"}
    rec = load_curve_data(data)
    assert set(rec["curves"]) == {"method", "random"} and rec["pair"]["target"] == 9
    summary = json.loads(so)
    assert rec["curves"]["random"]["auc"] == pytest.approx(summary["random_auc"])
    assert rec["curves"]["method"]["auc"] == pytest.approx(summary["auc"])
    for bad, flag in ((("--size", "huge"), "--size"), (("--dpi", "lots"), "--dpi"), (("--cmap", "nope"), "--cmap"),
                      (("--opacity", "2"), "--opacity")):
        rc, _, err = run_cli("explain", env["index"], "--query", 0, "--target", 1, "--out", base / "x.png", *bad)
        assert rc == 2 and flag in err and "Traceback" not in err, err


def test_continuity_every_method(env) -> None:  # noqa: F811
    base = env["base"]
    out, data = base / "cont.svg", base / "cont.json"
    rc, so, err = run_cli("continuity", env["index"], "--query", 0, "--target", 5, "--method", "all", "--steps", 4,
                          "--set", "rise-sim.n_masks=16", "--out", out, "--data", data, "--json")
    assert rc == 0, err
    summary = json.loads(so)
    # every registered method but those that need a GAP + affine head (sim-decomp, explainlfs-latent), which
    # the tiny TorchScript model lacks (sim-decomp's continuity on a model that has one: tests/test_continuity.py)
    head_only = {n for n, c in EXPLAINERS.items() if "linear_head" in c.needs}
    assert head_only == {"sim-decomp", "explainlfs-latent"}
    assert set(summary["methods"]) == set(EXPLAINERS) - head_only and "emsnn" in summary["methods"]
    rec = load_continuity_data(data)
    for m, r in summary["methods"].items():
        diffs = np.array(r["diffs"], dtype=float)
        assert len(diffs) == 4 and np.isfinite(diffs).all() and (diffs >= 0).all(), m
        assert rec["curves"][m]["diffs"] == pytest.approx(diffs.tolist())
        assert rec["curves"][m]["settings"]["method"]["method"] == m
        if "p" in default_settings(m):  # each method's own p, as in the app and evaluate (issue 10)
            assert rec["curves"][m]["settings"]["method"]["p"] == default_settings(m)["p"], m
    # decoder-side ExplainLFS is deterministic: back in place (x′ = x) means DIFF = 0
    assert summary["methods"]["explainlfs"]["last_diff"] == pytest.approx(0.0, abs=1e-6)
    assert rec["curves"]["rise-sim"]["settings"]["method"]["n_masks"] == 16
    assert "emsnn" in read_figure_metadata(out)["settings"]["curves"]


def test_continuity_csv_png_and_errors(env) -> None:  # noqa: F811
    base = env["base"]
    rc, so, err = run_cli("continuity", env["index"], "--query", 1, "--target", 7, "--method", "emsnn,random",
                          "--steps", 2, "--size", "single", "--dpi", "screen", "--out", base / "c.png", "--data", base / "c.csv")
    assert rc == 0, err
    assert "emsnn: mean DIFF" in so and "random: mean DIFF" in so
    with Image.open(base / "c.png") as im:
        assert im.size[0] == 525  # 3.5 in at 150 DPI
    rec = load_continuity_data(base / "c.csv")
    assert set(rec["curves"]) == {"emsnn", "random"} and rec["pair"]["query"] == 1
    for args, needle in ((("--method", "nope"), "--method nope"), (("--data", base / "c.txt"), "--data"),
                         (("--steps", "1"), "--steps"), (("--set", "grad-sim.target=x"), "--set")):
        rc, _, err = run_cli("continuity", env["index"], "--query", 0, "--target", 1, "--out", base / "e.png", *args)
        assert rc == 2 and needle in err and "Traceback" not in err, err
