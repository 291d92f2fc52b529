"""Figures on a real index (tiny TorchScript model file, real gallery images): the pair figure, the
retrieval sheet and the curve data, in every format, plus the heat-map placement inside the crop box."""

from __future__ import annotations

import json
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import photo_like, write_torchscript  # noqa: E402

from lfs_gui import figures  # noqa: E402
from lfs_gui.figures.pair import overlay_rgb, pair_caption  # noqa: E402
from lfs_gui.figures.sheet import DIFFERENT, SAME, frame_color  # noqa: E402
from lfs_gui.jobs import run_generator  # noqa: E402
from lfs_gui.models.base import Preprocessing  # noqa: E402


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    from lfs_gui.build import iter_build_index
    from lfs_gui.data.galleries import open_gallery
    from lfs_gui.models.loader import load_model
    from lfs_gui.session import Session

    base = tmp_path_factory.mktemp("fig")
    for c in range(3):
        for j in range(3):
            p = base / "gal" / f"c{c}" / f"im{j}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            photo_like(10 * c + j, (60 + 10 * j, 40)).save(p)
    model_file = base / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(model_file, dim=16, split=True)
    model = load_model(model_file)
    run_generator(iter_build_index(open_gallery(base / "gal"), model, base / "idx", decoder_epochs=2, use_cache=False,
                                   model_info={"source": str(model_file)}))
    s = Session.open_index(base / "idx")
    s.base = base  # type: ignore[attr-defined]
    return s


def test_overlay_stays_inside_the_crop_box() -> None:
    pre = Preprocessing(input_size=32, resize=36)
    img = Image.fromarray(np.full((40, 100, 3), 128, np.uint8))
    out = overlay_rgb(img, np.ones((8, 8), np.float32), pre, alpha=0.6)
    x0, y0, x1, y1 = pre.crop_box(100, 40)
    base = np.asarray(img)
    assert np.array_equal(out[:, : int(np.floor(x0))], base[:, : int(np.floor(x0))])  # left of the box: untouched
    assert np.array_equal(out[:, int(np.ceil(x1)):], base[:, int(np.ceil(x1)):])  # right of the box: untouched
    assert np.array_equal(out[: int(np.floor(y0))], base[: int(np.floor(y0))])  # above the box
    assert y0 > 1 and x0 > 1  # the crop really cuts both ways here
    inside = out[int(np.ceil(y0)) : int(np.floor(y1)), int(np.ceil(x0)) : int(np.floor(x1))]
    assert (np.abs(inside.astype(int) - 128).sum(axis=2) > 20).all()


def test_pair_figure_formats_and_suffix_error(session, tmp_path: Path) -> None:
    ex = session.explain(0, 4, "explainlfs", xi1=0.5)
    png = figures.save_pair_figure(tmp_path / "p.png", session, 0, 4, ex, dpi=50)
    with Image.open(png) as im:
        assert im.format == "PNG" and round(im.info["dpi"][0]) == 50
        w50 = im.size
    figures.save_pair_figure(tmp_path / "p2.png", session, 0, 4, ex, dpi=100)
    with Image.open(tmp_path / "p2.png") as im:
        assert abs(im.size[0] - 2 * w50[0]) <= 1 and abs(im.size[1] - 2 * w50[1]) <= 1
    figures.save_pair_figure(tmp_path / "p.svg", session, 0, 4, ex)
    assert ET.parse(tmp_path / "p.svg").getroot().tag.endswith("svg")
    figures.save_pair_figure(tmp_path / "p.pdf", session, 0, 4, ex)
    assert (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        figures.save_pair_figure(tmp_path / "p.jpg", session, 0, 4, ex)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pdf", "p.png", "p.svg", "p2.png"]  # no temp files left


def test_pair_figure_with_curves_and_external_query(session, tmp_path: Path) -> None:
    ext = tmp_path / "outside.jpg"
    photo_like(99, (50, 70)).save(ext)
    ex = session.explain(ext, 2, "explainlfs", xi1=0.2, xi2=0.6, p=0.25)
    curve = run_generator(session.iter_curve(ext, 2, ex, steps=5, perturbation="noise", seed=1))
    rnd = run_generator(session.iter_random_curve(ext, 2, steps=5, seed=1, xi1=0.2))
    out = figures.save_pair_figure(tmp_path / "c.png", session, ext, 2, ex, curve=curve, random_curve=rnd, dpi=40)
    with Image.open(out) as im:
        assert im.size[0] > im.size[1] * 0.8  # the curve column widens the figure
    cap = pair_caption(session, ext, 2, ex, curve)
    for needle in ("outside.jpg", "method explainlfs", "p 0.25", "ξ1 0.2", "ξ2 0.6", "perturbation noise", "steps 5",
                   "seed 1", "AUC"):
        assert needle in cap, (needle, cap)
    assert ("SIMILAR" if ex.similar else "DISSIMILAR") in cap


def test_curve_data_csv_json_roundtrip(session, tmp_path: Path) -> None:
    ex = session.explain(1, 5, "explainlfs")
    curve = run_generator(session.iter_curve(1, 5, ex, steps=4, seed=2))
    for name in ("c.csv", "c.json"):
        p = figures.save_curve_data(tmp_path / name, curve, {"note": "x"})
        rec = figures.load_curve_data(p)
        assert np.allclose(rec["ratios"], curve.ratios) and np.allclose(rec["sims"], curve.sims)
        assert rec["steps"] == list(range(5)) and rec["auc"] == pytest.approx(curve.auc)
        st = rec["settings"]
        assert st["method"] == "explainlfs" and st["seed"] == 2 and st["steps"] == 4 and st["query"] == 1
        assert st["target_image"] == 5 and st["target"] == "decision" and st["perturbation"] == "noise" and st["note"] == "x"
    json.loads((tmp_path / "c.json").read_text())  # strictly valid JSON (no NaN tokens)
    with pytest.raises(ValueError, match=r"\.csv, \.json"):
        figures.save_curve_data(tmp_path / "c.txt", curve)


def test_retrieval_sheet(session, tmp_path: Path) -> None:
    import sys as _sys

    pyplot_before = "matplotlib.pyplot" in _sys.modules
    res = session.retrieve(0, 3)
    out = figures.save_retrieval_sheet(tmp_path / "s.png", session, 0, res, "explainlfs", {"xi1": 0.5, "p": 0.3}, dpi=40)
    with Image.open(out) as im:
        assert im.size[0] > 1.5 * im.size[1]  # query + 3 columns, 2 rows
    figures.save_retrieval_sheet(tmp_path / "s.pdf", session, 0, res, "random")
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    assert frame_color(True) == SAME and frame_color(False) == DIFFERENT and frame_color(None) is None
    if not pyplot_before:
        assert "matplotlib.pyplot" not in _sys.modules
