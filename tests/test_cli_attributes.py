"""``train-attributes``, ``explain --point/--match-lines/--attributes`` and ``evaluate --attributes`` end
to end: a real index of coloured-object scenes built with a TorchScript colour-detector model file
(AwA2-style attribute files next to the gallery), and the shipped demo with its prebuilt predictor."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _attribute_fixtures import write_object_gallery
from _object_models import write_colour_torchscript
from test_cli import run_cli


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("cli-attr")
    model = write_colour_torchscript(base / "colour.pt")
    images = write_object_gallery(base / "objects", per_class=6)
    idx = base / "idx"
    rc, _, err = run_cli("index", images, "--model", model, "--out", idx, "--no-decoder")
    assert rc == 0, err
    return {"base": base, "index": idx, "images": images}


@pytest.fixture(scope="module")
def trained(env) -> dict:
    """``train-attributes`` run once on the index (its JSON); the tests that need the predictor ask for it."""
    rc, out, err = run_cli("train-attributes", env["index"], "--epochs", 40, "--hidden", 16, "--lr", "0.01", "--json")
    assert rc == 0, err
    return json.loads(out)


def test_train_attributes_writes_the_predictor_next_to_the_index(env, trained) -> None:
    res = trained
    assert Path(res["out"]) == env["index"] / "attributes.pt" and (env["index"] / "attributes.pt").is_file()
    assert res["attributes"] == 3 and res["labels"]["level"] == "class" and res["n_heldout"] == 4
    assert res["map_heldout"] > 0.9


def test_explain_point_lines_and_attributes(env, trained) -> None:
    from lfs_gui.session import Session

    relpaths = Session.open_index(env["index"]).gallery.relpaths
    ids = {rel: i for i, rel in enumerate(relpaths)}
    q, t = ids["red_green/00.png"], ids["red_only/01.png"]
    img = np.asarray(Image.open(env["images"] / "red_green" / "00.png"))
    red = np.argwhere((img[..., 0] > 200) & (img[..., 1] < 60))
    y, x = red.mean(axis=0)
    fig = env["base"] / "pair.png"
    rc, out, err = run_cli("explain", env["index"], "--query", q, "--target", t, "--method", "grad-sim",
                           "--point", f"{x:.0f},{y:.0f}", "--match-lines", 3, "--attributes", "--out", fig, "--json")
    assert rc == 0, err
    res = json.loads(out)
    corr = res["correspondence"]
    assert corr["exact"] is False and corr["method"] == "occlusion" and "estimate" in corr["note"]
    heat = np.array(corr["heat"])
    r, c = np.unravel_index(int(heat.argmax()), heat.shape)
    timg = np.asarray(Image.open(env["images"] / "red_only" / "01.png"))
    tred = np.argwhere((timg[..., 0] > 200) & (timg[..., 1] < 60)).mean(axis=0) / 64 * heat.shape[0]
    assert abs(r + 0.5 - tred[0]) <= 1.5 and abs(c + 0.5 - tred[1]) <= 1.5  # the match lands on the red square
    assert len(corr["matches"]) == 3
    att = res["attributes"]
    assert att["matched_on"][0]["name"] == "red" and len(att["matched_on"]) == 3 and att["saliency"] == "grad-sim"
    with Image.open(fig) as im:
        assert im.size[1] > im.size[0]  # the attribute row was added below the heat and mask rows
    rc, out, _ = run_cli("explain", env["index"], "--query", q, "--target", t, "--method", "grad-sim", "--attributes",
                         "--out", fig)
    assert rc == 0 and "matched on: red (" in out


def test_evaluate_attributes_report(env, trained) -> None:
    out_dir = env["base"] / "eval"
    rc, out, err = run_cli("evaluate", env["index"], "--attributes", "--pairs", 4, "--xi1", "0.2", "--out", out_dir,
                           "--saliency", "rise-sim", "--set", "rise-sim.n_masks=16", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["settings"]["saliency"]["method"] == "rise-sim" and res["settings"]["saliency"]["n_masks"] == 16
    d = res["deletion"]
    assert d["n_pairs"] + res["skipped_no_present_attribute"] == res["settings"]["n_pairs"]
    assert res["predictor"]["n_heldout"] == 4 and res["predictor"]["map_heldout"] > 0.9
    for f in ("attributes_pairs.csv", "attributes_summary.json", "attributes_summary.md"):
        assert (out_dir / f).is_file()
    assert "random present attribute" in (out_dir / "attributes_summary.md").read_text()


def test_bad_input_is_a_clear_error(env, tmp_path: Path) -> None:
    rc, _, err = run_cli("explain", env["index"], "--query", 0, "--target", 1, "--method", "grad-sim", "--point", "9000,3", "--out", tmp_path / "a.png")
    assert rc == 2 and "--point 9000,3: outside the query image" in err
    rc, _, err = run_cli("explain", env["index"], "--query", 0, "--target", 1, "--method", "grad-sim", "--point", "nope", "--out", tmp_path / "a.png")
    assert rc == 2 and "expected X,Y" in err
    rc, _, err = run_cli("train-attributes", env["index"], "--device", "tpu", "--out", tmp_path / "a.pt")
    assert rc == 2 and "unknown device 'tpu'" in err and not (tmp_path / "a.pt").exists()
    rc, _, err = run_cli("explain", env["index"], "--query", 0, "--target", 1, "--method", "grad-sim", "--attributes",
                         "--predictor", tmp_path / "none.pt", "--out", tmp_path / "a.png")
    assert rc == 2 and "none.pt" in err and "train-attributes" in err
    rc, _, err = run_cli("train-attributes", env["index"], "--attributes-from", tmp_path)
    assert rc == 2 and "no attribute files there" in err


def test_cars_index_says_it_has_no_attributes(tmp_path: Path) -> None:
    from test_cli import make_cars_stanford
    from _model_fixtures import write_torchscript

    cars = make_cars_stanford(tmp_path / "cars")
    model = tmp_path / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(model, dim=8, split=True)
    rc, _, err = run_cli("index", cars, "--model", model, "--out", tmp_path / "idx", "--no-decoder", "--split", "all")
    assert rc == 0, err
    rc, _, err = run_cli("train-attributes", tmp_path / "idx")
    assert rc == 2 and "Cars-196 has no attribute annotations" in err


def test_demo_attributes_and_exact_correspondence_work_out_of_the_box(tmp_path: Path) -> None:
    fig = tmp_path / "demo.png"
    rc, out, err = run_cli("explain", "demo", "--query", 20, "--target", 25, "--method", "sim-decomp",
                           "--point", "120,90", "--match-lines", 4, "--attributes", "--out", fig, "--json")
    assert rc == 0, err
    res = json.loads(out)
    corr = res["correspondence"]
    assert corr["exact"] is True and corr["method"] == "gap-affine"
    assert corr["total"] == pytest.approx(res["similarity"], abs=1e-4)  # bias terms included
    assert np.array(corr["map"]).shape == tuple(corr["grid_target"])
    att = res["attributes"]
    assert att["map_heldout"] > 0.8 and len(att["matched_on"]) == 3
    bird_parts = {"wings", "feathers", "beak", "two-legs", "tail", "eyes", "white-background"}
    assert att["matched_on"][0]["name"] in bird_parts  # two birds match on a bird attribute
    assert fig.is_file()
