"""The headless commands end to end on real galleries, a real (tiny TorchScript) model file and real
index folders: ``lfs_gui.cli.main([...])`` in-process, plus ``python -m lfs_gui`` in a subprocess.
Query results are checked against brute-force numpy over the index's ``embeddings.npy``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import photo_like, write_torchscript  # noqa: E402
from test_galleries import make_cars_stanford, make_cub_official, make_dml  # noqa: E402

from lfs_gui.cli import main  # noqa: E402

CLASSES = ("apples", "boats", "cats")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def make_folder_gallery(root: Path) -> Path:
    """3 classes x 4 images (PNG and JPEG, varied sizes) + a zero-byte, a corrupt and a non-image file."""
    for c, name in enumerate(CLASSES):
        for j in range(4):
            ext = ".png" if j % 2 == 0 else ".jpg"
            p = root / name / f"{name}_{j}{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            photo_like(100 * c + j, (48 + 8 * j, 40 + 4 * c)).save(p)
    (root / "boats" / "empty.png").write_bytes(b"")
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
    (root / "cats" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("cli")
    old = os.environ.get("LFS_GUI_CACHE")
    os.environ["LFS_GUI_CACHE"] = str(base / "cache")
    model = base / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(model, dim=16, split=True)
    gal = make_folder_gallery(base / "gallery")
    idx = base / "indexes" / "tiny"
    rc, out, err = run_cli("index", gal, "--model", model, "--out", idx, "--decoder-epochs", "2", "--json")
    assert rc == 0, err
    yield {"base": base, "model": model, "gallery": gal, "index": idx, "report": json.loads(out)}
    if old is None:
        os.environ.pop("LFS_GUI_CACHE", None)
    else:
        os.environ["LFS_GUI_CACHE"] = old


def index_rows(idx: Path) -> tuple[list[str], list]:
    """(relpaths, labels) from an index folder's row table."""
    import pyarrow.parquet as pq

    t = pq.read_table(idx / "rows.parquet")
    return t.column("relpath").to_pylist(), t.column("label").to_pylist()


def brute_force(emb: np.ndarray, q: np.ndarray, k: int, exclude: int | None) -> tuple[list[int], list[int]]:
    sims = emb.astype(np.float64) @ q.astype(np.float64)
    ids = [i for i in range(len(emb)) if i != exclude]
    top = sorted(ids, key=lambda i: (-sims[i], i))[:k]
    bottom = sorted(ids, key=lambda i: (sims[i], i))[:k]
    return top, bottom


def test_index_counts_skips_and_recall(env) -> None:
    rep, idx = env["report"], env["index"]
    assert rep["count"] == 12
    skipped = {Path(s["path"]).name for s in rep["skipped"]}
    assert skipped == {"empty.png", "broken.jpg"}
    relpaths, labels = index_rows(idx)
    assert len(relpaths) == 12 and not any(r.endswith(("empty.png", "broken.jpg")) for r in relpaths)
    emb = np.load(idx / "embeddings.npy")
    assert emb.shape == (12, 16)
    assert (idx / "decoder.pt").is_file() and rep["decoder"]["epochs"] == 2
    # Recall@1 against brute force
    labels = np.array(labels)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    r1 = float(np.mean(labels[np.argmax(sims, axis=1)] == labels))
    assert rep["recall"]["1"] == pytest.approx(r1)
    # the human-readable report names the skipped files
    rc, out, _ = run_cli("index", env["gallery"], "--model", env["model"], "--out", env["base"] / "idx_text",
                         "--no-decoder")
    assert rc == 0 and "12 indexed, 2 skipped" in out and "empty.png" in out and "broken.jpg" in out
    assert "Recall@K" in out and "mAP@R" in out


def test_query_matches_brute_force(env) -> None:
    emb = np.load(env["index"] / "embeddings.npy")
    for qid in (0, 5, 11):
        rc, out, err = run_cli("query", env["index"], "--id", qid, "--k", 3, "--json")
        assert rc == 0, err
        res = json.loads(out)
        top, bottom = brute_force(emb, emb[qid], 3, qid)
        assert [h["id"] for h in res["similar"]] == top
        assert [h["id"] for h in res["dissimilar"]] == bottom
        for h in res["similar"] + res["dissimilar"]:
            assert h["score"] == pytest.approx(float(emb[h["id"]] @ emb[qid]), abs=1e-5)
            assert Path(h["path"]).is_file()
            assert h["same_class"] == (h["class"] == res["query"]["class"])
    rc, out, _ = run_cli("query", env["index"], "--id", 0, "--k", 2)
    assert rc == 0 and "most similar" in out and "most dissimilar" in out


def test_query_external_image_uses_the_model(env) -> None:
    rel = index_rows(env["index"])[0][4]
    ext = env["base"] / "external.png"
    shutil.copy(env["gallery"] / rel, ext)
    rc, out, err = run_cli("query", env["index"], "--image", ext, "--k", 2, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["similar"][0]["id"] == 4 and res["similar"][0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_explain_writes_png_svg_pdf_and_summary(env) -> None:
    idx, base = env["index"], env["base"]
    emb = np.load(idx / "embeddings.npy")
    sizes = {}
    for dpi in (40, 80):
        png = base / f"pair{dpi}.png"
        rc, out, err = run_cli("explain", idx, "--query", 0, "--target", 6, "--xi1", 0.5, "--out", png,
                               "--dpi", dpi, "--json")
        assert rc == 0, err
        with Image.open(png) as im:
            im.load()
            sizes[dpi] = im.size
            assert im.format == "PNG" and round(im.info["dpi"][0]) == dpi
    assert abs(sizes[80][0] - 2 * sizes[40][0]) <= 1 and abs(sizes[80][1] - 2 * sizes[40][1]) <= 1
    s = json.loads(out)
    cos = float(emb[0].astype(np.float64) @ emb[6])
    assert s["similarity"] == pytest.approx(cos, abs=1e-5) and s["similar"] == (cos > 0.5)
    assert s["settings"]["p"] == 0.3 and s["settings"]["xi2"] == 0.7 and s["settings"]["xi1"] == 0.5
    assert 0.0 <= s["heat2"]["min"] <= s["heat2"]["max"] <= 1.0 and 0.0 <= s["mask_fraction"][1] <= 1.0
    rc, _, err = run_cli("explain", idx, "--query", 1, "--target", 7, "--out", base / "pair.svg")
    assert rc == 0, err
    assert ET.parse(base / "pair.svg").getroot().tag.endswith("svg")
    rc, _, err = run_cli("explain", idx, "--query", 1, "--target", 7, "--method", "random", "--out", base / "pair.pdf")
    assert rc == 0, err
    assert (base / "pair.pdf").read_bytes()[:4] == b"%PDF"


def test_explain_curve_and_curve_data(env) -> None:
    base = env["base"]
    data = base / "curve.json"
    rc, out, err = run_cli("explain", env["index"], "--query", 2, "--target", 9, "--curve", "--random-curve",
                           "--steps", 6, "--seed", 3, "--out", base / "curve.png", "--curve-data", data, "--json")
    assert rc == 0, err
    s = json.loads(out)
    rec = json.loads(data.read_text())
    assert set(rec["curves"]) == {"method", "random"}  # every curve on the plot
    ratios = np.array(rec["curves"]["method"]["ratios"])
    assert len(ratios) == 7 and ratios[0] == pytest.approx(1.0)
    auc = float(np.sum((ratios[1:] + ratios[:-1]) / 2) / 6)
    assert s["auc"] == pytest.approx(auc) and rec["curves"]["method"]["auc"] == pytest.approx(auc)
    assert rec["curves"]["random"]["auc"] == pytest.approx(s["random_auc"])
    st = {**rec["explanation"], **rec["curves"]["method"]["settings"]}
    assert st["method"] == "explainlfs" and st["perturbation"] == "noise" and st["seed"] == 3 and st["steps"] == 6
    assert st["target_image"] == 9 and str(st["query"]) == "2" and st["p"] == 0.3 and st["target"] == "decision"


def test_evaluate_target_orders_bounds_and_device(env) -> None:
    """``lfs-gui evaluate`` asks every method one target, scores both orders, adds the oracle with --bounds,
    runs on --device and records all of it; bad grids, devices and targets are exit 2 naming the flag."""
    import csv as _csv

    base = env["base"]
    out = base / "eval"
    rc, stdout, err = run_cli("evaluate", env["index"], "--pairs", 1, "--methods", "grad-sim", "explainlfs",
                              "--perturbation", "fill", "--steps", 3, "--bounds", "--device", "cpu", "--target",
                              "similarity", "--oracle-cache", base / "oracle", "--out", out, "--json")
    assert rc == 0, err
    rows = list(_csv.DictReader(open(out / "summary.csv", newline="")))
    assert {r["method"] for r in rows} >= {"grad-sim", "random", "oracle"} and {r["target"] for r in rows} == {"similarity"}
    assert {r["order"] for r in rows} == {"morf", "lerf", "srg"}
    assert any(r["gap_closed"] for r in rows if r["method"] == "grad-sim")
    settings = json.loads((out / "settings.json").read_text())
    assert settings["target"] == "similarity" and settings["device"] == "cpu" and settings["bounds"]["oracle"] == "greedy"
    assert "explainlfs on dissimilar pairs" in settings["unavailable"]  # it answers the decision only
    assert "about" in err and "left" in err  # the time-left estimate in the progress line
    assert list((base / "oracle").glob("*.npz"))  # the oracle's cache
    for argv, flag in ((["--superpixel", 6], "superpixel 6 does not divide"), (["--steps", 99], "99 steps"),
                       (["--device", "tpu"], "unknown device"), (["--set", "grad-sim.target=similarity"], "--target")):
        rc, _, err = run_cli("evaluate", env["index"], "--pairs", 1, "--methods", "random", "--out", base / "e2", *argv)
        assert rc == 2 and flag in err, err


def test_train_decoder_then_explain_with_it(env) -> None:
    from lfs_gui.models.decoder import load_decoder

    out = env["base"] / "models" / "mine.pt"
    rc, stdout, err = run_cli("train-decoder", env["index"], "--out", out, "--epochs", 2, "--kind", "dense",
                              "--optimizer", "adam", "--json")
    assert rc == 0, err
    rep = json.loads(stdout)
    assert len(rep["history"]) == 2 and np.isfinite(rep["val_mse"]) and "validation MSE" in err
    dec = load_decoder(out, expected_dim=16)
    assert dec.size == 40 and dec.meta["optimizer"] == "adam"
    rc, _, err = run_cli("explain", env["index"], "--query", 0, "--target", 3, "--decoder", out,
                         "--out", env["base"] / "own.png")
    assert rc == 0, err


def test_bad_input_exit_2_with_the_file_named(env) -> None:
    base, idx = env["base"], env["index"]
    broken = base / "broken_index"
    shutil.copytree(idx, broken)
    side = json.loads((broken / "index.json").read_text())
    side["count"] = 11
    (broken / "index.json").write_text(json.dumps(side))
    rc, _, err = run_cli("query", broken, "--id", 0)
    assert rc == 2 and "rows.parquet" in err and "rebuild" in err
    np.save(broken / "embeddings.npy", np.zeros((3, 3), np.float32))
    rc, _, err = run_cli("explain", broken, "--query", 0, "--target", 1, "--out", base / "x.png")
    assert rc == 2 and str(broken) in err
    blocker = base / "a_file"
    blocker.write_text("x")
    rc, _, err = run_cli("explain", idx, "--query", 0, "--target", 1, "--out", blocker / "sub" / "fig.png")
    assert rc == 2 and "a_file" in err and "--out" in err
    rc, _, err = run_cli("index", env["gallery"], "--model", env["model"], "--out", blocker / "idx")
    assert rc == 2 and "a_file" in err
    rc, _, err = run_cli("explain", idx, "--query", 0, "--target", 1, "--out", base / "fig.gif")
    assert rc == 2 and ".png" in err and ".pdf" in err and not (base / "fig.gif").exists()
    rc, _, err = run_cli("query", idx, "--id", 99)
    assert rc == 2 and "0..11" in err
    rc, _, err = run_cli("index", base / "nowhere", "--model", env["model"], "--out", base / "i2")
    assert rc == 2 and "nowhere" in err
    rc, _, err = run_cli("index", env["gallery"], "--model", base / "missing.pt", "--out", base / "i3")
    assert rc == 2 and "missing.pt" in err
    rc, _, err = run_cli("explain", idx, "--query", base / "nope.png", "--target", 1, "--out", base / "y.png")
    assert rc == 2 and "nope.png" in err


def test_cub_and_cars_layouts(env, tmp_path: Path) -> None:
    cub = make_cub_official(tmp_path / "cub", n_classes=4, per_class=3)
    rc, out, err = run_cli("index", cub, "--model", env["model"], "--split", "all", "--no-decoder",
                           "--out", tmp_path / "i_cub", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["count"] == 12 and rep["gallery_kind"] == "cub-official" and rep["recall"] is not None
    rc, out, err = run_cli("query", tmp_path / "i_cub", "--id", 0, "--k", 2, "--json")
    assert rc == 0 and len(json.loads(out)["similar"]) == 2
    cars = make_cars_stanford(tmp_path / "cars", n_classes=4, per_class=2)
    rc, out, err = run_cli("index", cars, "--model", env["model"], "--split", "official-test", "--no-decoder",
                           "--out", tmp_path / "i_cars", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["gallery_kind"] == "cars-stanford" and rep["count"] == 4


def test_demo_check_missing_files(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "resources").mkdir()
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("LFS_GUI_DATA", str(tmp_path))
    rc, _, err = run_cli("demo", "--check")
    assert rc == 2 and "head.pt" in err


def test_subprocess_help_and_query(env) -> None:
    res = subprocess.run([sys.executable, "-m", "lfs_gui", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    for cmd in ("index", "query", "explain", "train-decoder", "demo"):
        assert cmd in res.stdout
    res = subprocess.run([sys.executable, "-m", "lfs_gui", "query", str(env["index"]), "--id", "3", "--k", "4", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    emb = np.load(env["index"] / "embeddings.npy")
    top, bottom = brute_force(emb, emb[3], 4, 3)
    got = json.loads(res.stdout)
    assert [h["id"] for h in got["similar"]] == top and [h["id"] for h in got["dissimilar"]] == bottom
    res = subprocess.run([sys.executable, "-m", "lfs_gui", "query", str(env["base"] / "no_index"), "--id", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no_index" in res.stderr


def test_train_decoder_ctrl_c_keeps_the_partial_decoder(env, monkeypatch: pytest.MonkeyPatch) -> None:
    import lfs_gui.models.train_decoder as td
    from lfs_gui.models.decoder import load_decoder

    real = td.iter_train_decoder

    def interrupted(*args, **kwargs):
        gen = real(*args, **kwargs)
        yield next(gen)  # one epoch, then the user presses Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(td, "iter_train_decoder", interrupted)
    out = env["base"] / "partial.pt"
    rc, _, err = run_cli("train-decoder", env["index"], "--out", out, "--epochs", 5)
    assert rc == 130 and "interrupted after 1 epochs" in err
    dec = load_decoder(out, expected_dim=16)
    assert dec.meta["interrupted"] is True and dec.meta["epochs"] == 1


def test_index_defaults_demo_model_and_out_folder(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli("index", env["gallery"], "--no-decoder", "--json")
    assert rc == 0, err
    folder = tmp_path / "indexes" / "gallery"
    assert json.loads(out)["folder"] == str(folder) and (folder / "index.json").is_file()
    side = json.loads((folder / "index.json").read_text())
    assert side["model"]["demo"] is True and side["count"] == 12
    ext = tmp_path / "q.png"
    photo_like(7, (50, 50)).save(ext)
    rc, out, err = run_cli("query", folder, "--image", ext, "--k", 2, "--json")  # loads the demo model by itself
    assert rc == 0, err
    from lfs_gui.models.loader import load_demo_model
    from lfs_gui.data.images import open_image

    emb = np.load(folder / "embeddings.npy")
    q = load_demo_model().embed_images([open_image(ext)])[0]
    top, bottom = brute_force(emb, q, 2, None)
    res = json.loads(out)
    assert [h["id"] for h in res["similar"]] == top and [h["id"] for h in res["dissimilar"]] == bottom
    assert res["similar"][0]["score"] == pytest.approx(float(emb[top[0]] @ q), abs=1e-4)


def test_demo_check_on_the_shipped_demo() -> None:
    from lfs_gui.paths import data_root

    root = data_root()
    rc, out, err = run_cli("demo", "--check", "--json", "--embed", 1)
    assert rc == 0, err
    s = json.loads(out)
    metrics = json.loads((root / "models" / "demo" / "metrics.json").read_text())
    assert s["ok"] and s["gallery"]["images"] == metrics["n_images"] and s["model"]["dim"] == metrics["embed_dim"]
    assert s["recall_heldout"] == {k: pytest.approx(v) for k, v in metrics["recall_test_head"].items()}
    emb = np.load(root / "indexes" / "demo" / "embeddings.npy")
    labels = np.array(index_rows(root / "indexes" / "demo")[1])
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    assert s["recall_loo_all"]["1"] == pytest.approx(float(np.mean(labels[np.argmax(sims, axis=1)] == labels)))
    assert s["decoder"]["val_mse"] is not None and s["reembed"]["min_cosine"] > 0.999


@pytest.mark.parametrize("layout,classes", [
    ("cub200", ["001.Black_footed_Albatross", "002.Laysan_Albatross", "010.Red_winged_Blackbird", "011.Rusty_Blackbird"]),
    ("cars196", ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "BMW M3 Coupe 2012", "Volvo XC90 SUV 2007"]),
])
def test_dml_layouts_end_to_end(env, tmp_path: Path, layout: str, classes: list[str]) -> None:
    """DML-Baselines layouts: index (test half by default) -> query vs brute force -> explain."""
    root = make_dml(tmp_path / layout, classes, per_class=3)
    (root / "images" / classes[2] / "._img_0.jpg").write_bytes(b"\x00\x05\x16\x07 resource fork")
    rc, out, err = run_cli("index", tmp_path / layout, "--model", env["model"], "--decoder-epochs", 2,
                           "--out", tmp_path / "idx", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["gallery_kind"] == ("cub-dml" if layout == "cub200" else "cars-dml")
    assert rep["count"] == 6 and rep["skipped"] == []  # the test half: classes 3-4; '._*' never listed
    emb = np.load(tmp_path / "idx" / "embeddings.npy")
    rc, out, err = run_cli("query", tmp_path / "idx", "--id", 2, "--k", 3, "--json")
    assert rc == 0, err
    res = json.loads(out)
    top, bottom = brute_force(emb, emb[2], 3, 2)
    assert [h["id"] for h in res["similar"]] == top and [h["id"] for h in res["dissimilar"]] == bottom
    rc, out, err = run_cli("explain", tmp_path / "idx", "--query", 2, "--target", top[0], "--out", tmp_path / "f.png", "--json")
    assert rc == 0, err
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_with_another_decoder() -> None:
    from lfs_gui.cli.cmd_query import open_session
    from lfs_gui.paths import models_dir

    conv = models_dir() / "demo" / "decoder_conv64.pt"
    s = open_session("demo", decoder=str(conv))
    assert s.decoder.kind == "conv" and s.decoder_path == conv
    assert s.explain(0, 1).heat2.shape == (64, 64)
    assert open_session("demo", decoder=False).decoder is None
