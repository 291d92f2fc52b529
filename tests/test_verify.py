"""Verify any two images: ``lfs-gui explain --query PATH --target PATH`` with and without a gallery index,
against embeddings computed independently with the same model, and the model card's ξ1 (FaceNet 0.3)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import photo_like, write_facenet_state  # noqa: E402
from test_cli import run_cli  # noqa: E402

from lfs_gui.data.images import open_image  # noqa: E402
from lfs_gui.paths import demo_gallery_dir  # noqa: E402
from lfs_gui.verify import PAPER_XI1, decision_xi1  # noqa: E402

BIRDS = sorted((demo_gallery_dir() / "images" / "birds").iterdir())


@pytest.fixture(scope="module")
def demo_model():
    from lfs_gui.models.loader import load_demo_model

    return load_demo_model()


def _cos(model, a: Path, b: Path) -> float:
    e = model.embed_images([open_image(a), open_image(b)])
    return float(e[0] @ e[1])


def test_two_files_without_an_index(demo_model, tmp_path: Path) -> None:
    a, b = BIRDS[0], BIRDS[5]
    out = tmp_path / "pair.png"
    rc, stdout, err = run_cli("explain", "--query", a, "--target", b, "--out", out, "--curve", "--steps", "3", "--json")
    assert rc == 0, err
    s = json.loads(stdout)
    assert s["similarity"] == pytest.approx(_cos(demo_model, a, b), abs=1e-5)
    # the demo model has no card value: the paper's 0.3, and the decision follows it
    assert s["xi1_source"] == "paper" and s["settings"]["xi1"] == PAPER_XI1
    assert s["similar"] == (s["similarity"] > PAPER_XI1)
    assert s["target"] == str(b) and s["heat2"]["shape"] == [40, 40]  # the demo's decoder: ExplainLFS runs
    assert s["curve"]["steps"] == 3 and out.stat().st_size > 10_000
    # the user's ξ1 decides, and a gallery-free model-side method runs too
    rc, stdout, err = run_cli("explain", "--query", a, "--target", b, "--out", out, "--xi1", "0.99",
                              "--method", "grad-sim", "--json")
    assert rc == 0, err
    s = json.loads(stdout)
    assert s["xi1_source"] == "user" and s["similar"] is False and s["method"] == "grad-sim"


def test_path_target_with_an_index(demo_model, tmp_path: Path) -> None:
    from lfs_gui.index import load_index
    from lfs_gui.paths import demo_index_dir

    idx = load_index(demo_index_dir())
    other = tmp_path / "outside.png"
    photo_like(7, (90, 70)).save(other)
    rc, stdout, err = run_cli("explain", "demo", "--query", "3", "--target", other, "--out", tmp_path / "f.svg", "--json")
    assert rc == 0, err
    s = json.loads(stdout)
    h = demo_model.embed_images([open_image(other)])[0]
    assert s["similarity"] == pytest.approx(float(idx.embeddings[3] @ h), abs=1e-5)
    assert s["query"] == 3 and s["target"] == str(other) and s["xi1_source"] == "gallery"


def test_bad_verify_input_is_exit_2(tmp_path: Path) -> None:
    rc, _, err = run_cli("explain", "--query", "3", "--target", BIRDS[0], "--out", tmp_path / "f.png")
    assert rc == 2 and "gallery ids need an INDEX" in err
    rc, _, err = run_cli("explain", "demo", "--query", "3", "--target", "4", "--model", "x.pt", "--out", tmp_path / "f.png")
    assert rc == 2 and "x.pt" in err  # with an INDEX, --model is the index's own model (checked)
    rc, _, err = run_cli("explain", "--query", BIRDS[0], "--target", tmp_path / "missing.jpg", "--out", tmp_path / "f.png")
    assert rc == 2 and "missing.jpg" in err
    rc, _, err = run_cli("explain", "--query", BIRDS[0], "--target", BIRDS[1], "--method", "emsnn", "--out", tmp_path / "f.png")
    assert rc == 2 and "emsnn" in err


def test_facenet_model_card_xi1(tmp_path: Path) -> None:
    """A FaceNet checkpoint (facenet-pytorch format): ξ1 is the model card's 0.3 unless the user sets one."""
    weights = tmp_path / "facenet.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_facenet_state(weights)
    faces = []
    for k in range(2):
        faces.append(tmp_path / f"face{k}.png")
        photo_like(40 + k, (160, 160)).save(faces[-1])
    rc, stdout, err = run_cli("explain", "--model", weights, "--query", faces[0], "--target", faces[1],
                              "--method", "random", "--out", tmp_path / "f.png", "--json")
    assert rc == 0, err
    s = json.loads(stdout)
    assert s["xi1_source"] == "model card" and s["settings"]["xi1"] == 0.3
    assert s["similar"] == (s["similarity"] > 0.3)
    assert decision_xi1(0.5, None) == (0.5, "user") and decision_xi1(None, None, 0.42) == (0.42, "gallery")
    assert np.isfinite(s["similarity"])
