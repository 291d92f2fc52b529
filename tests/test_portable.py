"""Indexes that travel, through the real CLI: an index folder moved with its gallery and model keeps
working; a gallery or model moved elsewhere is a clear error naming ``--gallery-root`` / ``--model``
(flags every index-opening command has), and works with them; a model of another identity is refused
with a message saying which is which, whether it is given with ``--model`` or found at the recorded
path."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import photo_like, write_torchscript  # noqa: E402
from test_cli import run_cli  # noqa: E402

COMMANDS = ("query", "explain", "continuity", "evaluate", "train-decoder", "train-attributes", "failures", "app")


def make_site(root: Path) -> Path:
    """root/{gallery (2 classes x 4), models/tiny.pt, indexes/idx} built with the real CLI."""
    for c, name in enumerate(("ants", "bees")):
        for j in range(4):
            p = root / "gallery" / name / f"{name}_{j}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            photo_like(50 * c + j, (40, 32)).save(p)
    (root / "models").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(root / "models" / "tiny.pt", dim=16, split=True)
    rc, _, err = run_cli("index", root / "gallery", "--model", root / "models" / "tiny.pt", "--out",
                         root / "indexes" / "idx", "--decoder-epochs", "1", "--device", "cpu", "--no-cache")
    assert rc == 0, err
    return root / "indexes" / "idx"


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    make_site(tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")  # another machine: the same layout under another root
    return tmp_path / "b"


def query(idx: Path, *extra) -> tuple[int, dict | None, str]:
    rc, out, err = run_cli("query", idx, "--id", 1, "--k", 2, "--json", *extra)
    return rc, (json.loads(out) if rc == 0 else None), err


def test_every_index_command_has_the_overrides() -> None:
    import contextlib
    import io

    from lfs_gui.cli import main

    for cmd in COMMANDS:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "--gallery-root DIR" in buf.getvalue() and "--model" in buf.getvalue(), cmd


def test_moved_together_works_without_flags(site: Path) -> None:
    idx = site / "indexes" / "idx"
    side = json.loads((idx / "index.json").read_text())
    assert side["gallery"]["root"] == "../../gallery" and side["model"]["source_relative"] == "../../models/tiny.pt"
    rc, res, err = query(idx)
    assert rc == 0, err
    assert all(Path(h["path"]).is_file() and str(site) in h["path"] for h in res["similar"])
    # an external image needs the model: found next to the index (its recorded absolute path is gone)
    rc, out, err = run_cli("query", idx, "--image", site / "gallery" / "bees" / "bees_2.png", "--k", 1, "--json")
    assert rc == 0, err
    hit = json.loads(out)["similar"][0]
    assert hit["path"].endswith("bees_2.png") and hit["score"] == pytest.approx(1.0, abs=1e-4)


def test_gallery_moved_alone(site: Path, tmp_path: Path) -> None:
    idx = site / "indexes" / "idx"
    shutil.move(site / "gallery", tmp_path / "elsewhere")
    rc, _, err = query(idx)
    assert rc == 2 and "index.json" in err and "--gallery-root DIR" in err and "Traceback" not in err
    assert str(site / "gallery") in err  # where it looked
    rc, res, err = query(idx, "--gallery-root", tmp_path / "elsewhere")
    assert rc == 0, err
    assert all(h["path"].startswith(str(tmp_path / "elsewhere")) for h in res["similar"])
    rc, _, err = query(idx, "--gallery-root", tmp_path / "nowhere")
    assert rc == 2 and "--gallery-root" in err and "nowhere" in err
    # the other commands take the same flag
    rc, _, err = run_cli("explain", idx, "--query", 0, "--target", 5, "--out", tmp_path / "pair.png",
                         "--gallery-root", tmp_path / "elsewhere")
    assert rc == 0, err
    rc, out, err = run_cli("train-decoder", idx, "--out", tmp_path / "dec.pt", "--epochs", 1, "--json",
                           "--gallery-root", tmp_path / "elsewhere")
    assert rc == 0, err
    assert json.loads(out)["n_train"] + json.loads(out)["n_val"] == 8


def test_model_moved_alone(site: Path, tmp_path: Path) -> None:
    idx = site / "indexes" / "idx"
    shutil.move(site / "models", tmp_path / "kept-models")
    rc, res, err = query(idx)  # a gallery id needs no model
    assert rc == 0, err
    ext = site / "gallery" / "ants" / "ants_0.png"
    rc, _, err = run_cli("query", idx, "--image", ext)
    assert rc == 2 and "not at" in err and "--model PATH" in err and "Traceback" not in err
    rc, out, err = run_cli("query", idx, "--image", ext, "--k", 1, "--json", "--model", tmp_path / "kept-models" / "tiny.pt")
    assert rc == 0, err
    assert json.loads(out)["similar"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    # continuity runs the model on gallery images: the same question, the same flag
    shift = ["continuity", idx, "--query", 0, "--target", 1, "--steps", 2, "--out", tmp_path / "shift.png"]
    rc, _, err = run_cli(*shift)
    assert rc == 2 and "--model PATH" in err and "Traceback" not in err and not (tmp_path / "shift.png").exists()
    rc, _, err = run_cli(*shift, "--model", tmp_path / "kept-models" / "tiny.pt")
    assert rc == 0, err
    assert (tmp_path / "shift.png").is_file()


def test_another_model_is_refused(site: Path, tmp_path: Path) -> None:
    idx = site / "indexes" / "idx"
    identity = json.loads((idx / "index.json").read_text())["model_identity"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(tmp_path / "other.pt", dim=16, split=True, seed=1)
    for cmd in (["query", idx, "--id", 0], ["explain", idx, "--query", 0, "--target", 1, "--out", tmp_path / "x.png"],
                ["train-decoder", idx, "--out", tmp_path / "d.pt", "--epochs", 1]):
        rc, _, err = run_cli(*cmd, "--model", tmp_path / "other.pt")
        assert rc == 2 and "Traceback" not in err, (cmd, err)
        assert "index.json" in err and identity in err and "other.pt" in err and "tiny:" in err
        assert "lfs-gui index GALLERY --model" in err and "--out" in err
    # the same model found at the recorded place, but changed since: refused when it is needed
    shutil.copy(tmp_path / "other.pt", site / "models" / "tiny.pt")
    rc, res, err = query(idx)
    assert rc == 0, err  # gallery ids: no model needed
    rc, _, err = run_cli("query", idx, "--image", site / "gallery" / "ants" / "ants_0.png")
    assert rc == 2 and identity in err and "embedded by model" in err


def test_moved_embeddings_equal_the_original(tmp_path: Path) -> None:
    """Copying (not moving) the site: both copies open, with the same embeddings and their own paths."""
    idx = make_site(tmp_path / "orig")
    shutil.copytree(tmp_path / "orig", tmp_path / "copy")
    a, b = (query(p)[1] for p in (idx, tmp_path / "copy" / "indexes" / "idx"))
    assert [h["id"] for h in a["similar"]] == [h["id"] for h in b["similar"]]
    assert all("/copy/" in h["path"] for h in b["similar"]) and all("/orig/" in h["path"] for h in a["similar"])
    np.testing.assert_array_equal(np.load(idx / "embeddings.npy"),
                                  np.load(tmp_path / "copy" / "indexes" / "idx" / "embeddings.npy"))
