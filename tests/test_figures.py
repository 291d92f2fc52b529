"""Figures on a real index (tiny TorchScript model file, real gallery images): the pair figure, the
retrieval sheet, continuity and the curve data, in every format; what they contain (colour bar,
random's curve, crop box, unseen area, correspondences), their metadata, fonts, pixel sizes and the
resolution of the photos they embed."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
import warnings
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import photo_like, write_torchscript  # noqa: E402

from lfs_gui import figures  # noqa: E402
from lfs_gui.figures import Correspondence, PairData, ViewSpec, read_figure_metadata  # noqa: E402
from lfs_gui.figures.overlay import heat_to_box, inside_box  # noqa: E402
from lfs_gui.figures.pair import build_pair_figure, settings_caption  # noqa: E402
from lfs_gui.figures.panels import ImageSource, heat_panel, to_original  # noqa: E402
from lfs_gui.figures.sheet import DIFFERENT, SAME, frame_color  # noqa: E402
from lfs_gui.figures.spec import parse_dpi, parse_size  # noqa: E402
from lfs_gui.jobs import Progress, run_generator  # noqa: E402
from lfs_gui.models.base import Preprocessing  # noqa: E402

FAST = dict(dpi=60)  # figure tests render at low DPI unless the DPI itself is tested


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


@pytest.fixture(scope="module")
def pair(session):
    """An explained pair with its method and random curves."""
    ex = session.explain(0, 4, "explainlfs", xi1=0.2, xi2=0.6, p=0.25)
    curve = run_generator(session.iter_curve(0, 4, ex, steps=5, seed=1))
    rnd = run_generator(session.iter_random_curve(0, 4, steps=5, seed=1, xi1=0.2))
    return PairData.from_session(session, 0, 4, ex, {"method": curve, "random": rnd})


def svg_ids(path: Path) -> set[str]:
    return {el.get("id") for el in ET.parse(path).getroot().iter() if el.get("id")}


def embedded_images(path: Path) -> list[tuple[int, int]]:
    """(w, h) of every raster image embedded in an SVG or PDF."""
    data = path.read_bytes()
    if path.suffix == ".svg":
        return [Image.open(io.BytesIO(base64.b64decode(m))).size
                for m in re.findall(rb'xlink:href="data:image/png;base64,([^"]+)"', data)]
    out = []
    for m in re.finditer(rb"/Subtype\s*/Image", data):
        head = data[max(0, m.start() - 400): m.start() + 400]
        w, h = re.search(rb"/Width (\d+)", head), re.search(rb"/Height (\d+)", head)
        out.append((int(w.group(1)), int(h.group(1))))
    return out


def pdf_fonts(path: Path) -> dict[str, int]:
    data = path.read_bytes()
    chunks = [data]
    for m in re.finditer(rb"stream\r?\n", data):
        try:
            chunks.append(zlib.decompress(data[m.end(): data.find(b"endstream", m.end())]))
        except zlib.error:
            pass
    blob = b"\n".join(chunks)
    return {"type3": len(re.findall(rb"/Subtype\s*/Type3", blob)), "truetype": len(re.findall(rb"/FontFile2", blob))}


def test_overlay_stays_inside_the_crop_box_and_unseen_is_greyed() -> None:
    from lfs_gui.figures.output import new_figure

    pre = Preprocessing(input_size=32, resize=36)
    img = Image.fromarray(np.full((40, 100, 3), 200, np.uint8))
    box = pre.crop_box(100, 40)
    x0, y0, x1, y1 = box
    assert y0 > 1 and x0 > 1  # the crop really cuts both ways here
    heat = heat_to_box(np.ones((8, 8), np.float32), box, 100, 40)
    assert np.isnan(heat[:, : int(np.floor(x0))]).all() and np.isfinite(heat[int(np.ceil(y0)):int(y1), int(np.ceil(x0)):int(x1)]).all()
    for mark in (False, True):
        fig = new_figure(2.0, 1.0, dpi=100)
        ax = fig.add_axes([0, 0, 1, 1])
        spec = ViewSpec(opacity=0.6, mark_unseen=mark, crop_box=False, dpi=100)
        heat_panel(ax, ImageSource.from_image(img), np.ones((8, 8), np.float32), box, spec)
        rgb = np.asarray(ax.images[0].get_array())
        outside = ~inside_box(box, *rgb.shape[1::-1])
        assert np.array_equal(rgb[outside], np.asarray(img)[outside]) != mark  # greyed only when asked
        if mark:
            assert (np.abs(rgb[outside].astype(int) - 200).max(axis=1) > 20).all()
            assert any(p.get_gid() == "unseen-area" and p.get_hatch() for p in ax.patches)
        inside = rgb[int(np.ceil(y0)) + 1: int(np.floor(y1)) - 1, int(np.ceil(x0)) + 1: int(np.floor(x1)) - 1]
        assert (np.abs(inside.astype(int) - 200).sum(axis=2) > 20).all()  # heat drawn inside the box


def test_pair_figure_content_colorbar_curves_crop_box(pair) -> None:
    spec = ViewSpec(cmap="viridis", opacity=0.7, size="double", **FAST)
    fig, info = build_pair_figure(pair, spec)
    axes = info["axes"]
    assert {"query", "target", "colorbar", "curve", "recon1", "recon2"} <= set(axes)
    cbar = axes["colorbar"]
    assert cbar.get_gid() == "colorbar" and cbar.get_ylim() == (0.0, 1.0)
    assert axes["query"].images[0].get_array().shape[2] == 3
    lines = {ln.get_gid(): ln for ln in axes["curve"].get_lines()}
    assert np.allclose(lines["curve-random"].get_ydata(), pair.curves["random"].ratios)
    assert np.allclose(lines["curve-method"].get_ydata(), pair.curves["method"].ratios)
    labels = [t.get_text() for t in axes["curve"].get_legend().get_texts()]
    assert any(t.startswith("random (AUC ") for t in labels) and any(t.startswith("explainlfs (AUC ") for t in labels)
    for who, box in zip(("query", "target"), pair.boxes):
        crop = [p for p in axes[who].patches if p.get_gid() == "crop-box"]
        assert len(crop) == 1 and crop[0].get_xy() == pytest.approx(box[:2]) and crop[0].get_width() == pytest.approx(box[2] - box[0])
        assert any(p.get_gid() == "unseen-area" for p in axes[who].patches)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "cosine similarity" in texts and ("SIMILAR" in texts or "DISSIMILAR" in texts)
    cap = info["caption"]
    for needle in ("explainlfs", "p 0.25", "ξ1 0.2", "ξ2 0.6", "viridis", "opacity 0.7", "noise perturbation", "5 steps",
                   "seed 1", "AUC method", "random", "hatched = not seen by the model", "Model tiny"):
        assert needle in cap, (needle, cap)
    # curves are left out when the spec says so, and the figure still lays out
    _fig, info = build_pair_figure(pair, spec.replace(curves=(), colorbar=False, reconstructions=False))
    assert "curve" not in info["axes"] and "colorbar" not in info["axes"] and "recon1" not in info["axes"]


def test_mask_view_draws_only_above_xi2(pair) -> None:
    ex = pair.explanation
    spec = ViewSpec(mask_view=True, opacity=1.0, mark_unseen=False, **FAST)
    fig, info = build_pair_figure(pair, spec)
    rgb = np.asarray(info["axes"]["target"].images[0].get_array())
    plain = np.asarray(pair.sources[1].load(*rgb.shape[1::-1]))
    changed = np.abs(rgb.astype(int) - plain.astype(int)).sum(axis=2) > 0
    frac_changed = changed.mean()
    in_box = inside_box(pair.boxes[1], *pair.sources[1].size).mean()
    assert 0 < frac_changed < in_box  # only the masked part of the box is coloured
    assert abs(frac_changed / in_box - ex.mask2.mean()) < 0.2
    assert any(abs(ln.get_ydata()[0] - 0.6) < 1e-9 for ln in info["axes"]["colorbar"].get_lines())  # ξ2 on the bar


def test_dpi_and_size_presets_give_the_pixel_sizes(pair, tmp_path: Path) -> None:
    assert parse_size("single") == "single" and parse_size("5.5") == 5.5 and parse_dpi("print") == 300
    for size, dpi, width in (("single", 100, 350), ("double", 50, 358), (5.0, 80, 400)):
        out = figures.save_pair_figure(tmp_path / f"p{dpi}.png", pair, ViewSpec(size=size, dpi=dpi))
        with Image.open(out) as im:
            assert im.size[0] == width and round(im.info["dpi"][0]) == dpi
    for bad in (dict(size="triple"), dict(size=40.0), dict(dpi=5), dict(cmap="nope"), dict(opacity=1.5),
                dict(curves=("method", "best"))):
        with pytest.raises(ValueError):
            ViewSpec(**bad)
    with pytest.raises(ValueError, match="--size"):
        parse_size("huge")


def test_formats_metadata_and_fonts(pair, tmp_path: Path) -> None:
    spec = ViewSpec(cmap="turbo", size="single", **FAST)
    for suffix in (".png", ".svg", ".pdf"):
        out = figures.save_pair_figure(tmp_path / f"p{suffix}", pair, spec)
        meta = read_figure_metadata(out)
        st = meta["settings"]
        assert "#0" in meta["title"] and "#4" in meta["title"], meta["title"]
        assert "cosine similarity" in meta["caption"] and "turbo" in meta["caption"]
        assert st["explanation"]["p"] == 0.25 and st["explanation"]["xi1"] == 0.2 and st["explanation"]["method"] == "explainlfs"
        assert st["view"]["cmap"] == "turbo" and st["view"]["size"] == "single" and st["view"]["width_in"] == 3.5
        assert st["pair"]["query"] == 0 and st["pair"]["target"] == 4 and st["pair"]["decision"] in ("similar", "dissimilar")
        assert st["curves"]["random"]["auc"] == pytest.approx(pair.curves["random"].auc)
        assert st["curves"]["method"]["settings"]["steps"] == 5 and st["model"]["name"] == "tiny"
    svg = tmp_path / "p.svg"
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert "<text" not in svg.read_text()  # text as paths: looks the same without the font
    assert {"colorbar", "curve-random", "curve-method", "crop-box", "unseen-area", "caption"} <= svg_ids(svg)
    fonts = pdf_fonts(tmp_path / "p.pdf")
    assert fonts["truetype"] >= 1 and fonts["type3"] == 0  # Type 42: TrueType embedded
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf"):
        figures.save_pair_figure(tmp_path / "p.jpg", pair, spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pdf", "p.png", "p.svg"]  # no temp files left


def test_large_photo_is_embedded_at_the_resolution_the_figure_needs(session, tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (2400, 3200, 3), dtype=np.uint8)).save(big, quality=95)
    assert big.stat().st_size > 3_000_000
    ex = session.explain(big, 2, "explainlfs", xi1=0.2)
    data = PairData.from_session(session, big, 2, ex)
    spec = ViewSpec(size="single", dpi=150, reconstructions=False)
    fig, info = build_pair_figure(data, spec)
    ax = info["axes"]["query"]
    pos = ax.get_position()
    limit_w, limit_h = pos.width * spec.width_in * 150 + 1, pos.height * info["height_in"] * 150 + 1
    for suffix in (".svg", ".pdf"):
        out = figures.save_pair_figure(tmp_path / f"big{suffix}", data, spec)
        sizes = embedded_images(out)
        assert sizes and all(w <= limit_w and h <= limit_h for w, h in sizes), (sizes, limit_w, limit_h)
        assert max(w for w, _ in sizes) >= 0.9 * min(limit_w, 3200) - 2  # downsampled to the need, not below it
        assert out.stat().st_size < 700_000, out.stat().st_size  # the 3200-px photo alone would be megabytes


def test_correspondence_points_and_lines(pair, tmp_path: Path) -> None:
    corr = Correspondence([[0.25, 0.5], [0.75, 0.25]], [[0.5, 0.5], [0.1, 0.9]], weights=[1.0, 0.2], style="lines",
                          label="matches")
    fig, info = build_pair_figure(pair, ViewSpec(correspondence=corr, **FAST))
    assert info["matches"] == 2
    assert sum(1 for a in fig.artists if (a.get_gid() or "").startswith("match-line-")) == 2
    q = [ln for ln in info["axes"]["query"].get_lines() if (ln.get_gid() or "").startswith("match-point-")]
    expect = to_original(corr.points1, pair.boxes[0])
    assert np.allclose([(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in q], expect)
    x0, y0, x1, y1 = pair.boxes[0]
    assert expect[0] == pytest.approx((x0 + 0.25 * (x1 - x0), y0 + 0.5 * (y1 - y0)))
    assert "2 matches" in settings_caption(pair, ViewSpec(correspondence=corr))
    fig, info = build_pair_figure(pair, ViewSpec(correspondence=Correspondence.from_input_pixels([[8, 16]], [[16, 16]], 32,
                                                                                                   style="points"), **FAST))
    assert info["matches"] == 1 and not any((a.get_gid() or "").startswith("match-line-") for a in fig.artists)
    with pytest.raises(ValueError, match="2 query points but 1 target"):
        Correspondence([[0, 0], [1, 1]], [[0, 0]])


def test_curve_axis_has_no_offset_or_scientific_notation() -> None:
    from lfs_gui.figures.output import new_figure
    from lfs_gui.metrics.selectivity import Curve

    values = np.array([0.0, 0.0004, 0.0009, 0.0011])  # sim_k − sim_0 of a dissimilar pair
    c = Curve(steps=np.arange(4), sims=0.4 + values, ratios=np.full(4, np.nan), auc=0.0007, auc_sim=0.4,
              order=np.arange(3), lower_is_better=False, settings={"grid": 8}, values=values, value_name="sim_k − sim_0")
    fig = new_figure(3, 2)
    ax = fig.add_subplot()
    figures.draw_curves(ax, {"method": c})
    fig.canvas.draw()
    assert ax.yaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all("e" not in t and "×" not in t for t in labels), labels
    assert "sim" in ax.get_ylabel() and "-" in ax.get_ylabel()


def test_curve_data_carries_every_curve_and_its_settings(pair, tmp_path: Path) -> None:
    oracle = pair.curves["method"]  # any third curve: the file must keep it under its role
    curves = {**pair.curves, "oracle": oracle}
    ctx = pair.context(ViewSpec())
    for name in ("c.csv", "c.json"):
        p = figures.save_curve_data(tmp_path / name, curves, ctx, labels={"method": "explainlfs"})
        rec = figures.load_curve_data(p)
        assert rec["format"] == "lfs-gui-curves" and set(rec["curves"]) == {"method", "random", "oracle"}
        for role, c in curves.items():
            got = rec["curves"][role]
            assert np.allclose(got["ratios"], c.ratios) and np.allclose(got["sims"], c.sims)
            assert got["steps"] == list(range(6)) and got["auc"] == pytest.approx(c.auc)
            assert got["order"] == [int(v) for v in c.order]
            st = got["settings"]
            for key in ("steps", "superpixel", "heat_size", "grid", "mode", "order", "perturbation", "seed", "rank_dissimilar"):
                assert key in st, key
            assert st["target_image"] == 4 and st["target"] == "decision" and st["query"] == 0 and st["explanation"]["xi1"] == 0.2
        assert rec["curves"]["random"]["settings"]["method"] == "random"
        assert rec["curves"]["method"]["label"] == "explainlfs"
        assert rec["explanation"]["p"] == 0.25 and rec["explanation"]["xi2"] == 0.6
        assert rec["pair"]["query"] == 0 and rec["pair"]["target"] == 4
        assert rec["model"]["name"] == "tiny" and rec["model"]["decoder"]["kind"] and rec["model"]["preprocessing"]["input_size"] == 32
    json.loads((tmp_path / "c.json").read_text())  # strictly valid JSON (no NaN tokens)
    with pytest.raises(ValueError, match=r"\.csv, \.json"):
        figures.save_curve_data(tmp_path / "c.txt", curves)
    with pytest.raises(ValueError, match="no curve"):
        figures.save_curve_data(tmp_path / "d.json", {})


def test_retrieval_sheet_progress_cancel_and_content(session, tmp_path: Path) -> None:
    import sys as _sys

    pyplot_before = "matplotlib.pyplot" in _sys.modules
    res = session.retrieve(0, 3)
    items: list = []
    gen = figures.iter_retrieval_sheet(tmp_path / "s.png", session, 0, res, "explainlfs", {"xi1": 0.5, "p": 0.3},
                                       ViewSpec(cmap="viridis", size=6.0, **FAST))
    out = run_generator(gen, on_item=items.append)
    progress = [i for i in items if isinstance(i, Progress)]
    assert progress[-1].done == progress[-1].total == 7 and [p.done for p in progress] == sorted(p.done for p in progress)
    meta = read_figure_metadata(out)
    assert meta["settings"]["view"]["cmap"] == "viridis" and len(meta["settings"]["sheet"]["similar"]) == 3
    assert meta["settings"]["sheet"]["explanation"]["p"] == 0.3
    with Image.open(out) as im:
        assert im.size[0] == 360 and im.size[0] > 1.5 * im.size[1]  # 6 in at 60 DPI; query + 3 columns, 2 rows
    gen = figures.iter_retrieval_sheet(tmp_path / "cancelled.pdf", session, 0, res, "random", spec=ViewSpec(**FAST))
    for _ in range(3):
        next(gen)
    gen.close()  # a cancel point: nothing is written
    assert not (tmp_path / "cancelled.pdf").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]
    figures.save_retrieval_sheet(tmp_path / "s.pdf", session, 0, res, "random", spec=ViewSpec(**FAST))
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")
    assert frame_color(True) == SAME and frame_color(False) == DIFFERENT and frame_color(None) is None
    if not pyplot_before:
        assert "matplotlib.pyplot" not in _sys.modules


def test_continuity_figure_and_data(tmp_path: Path) -> None:
    from lfs_gui.figures.continuity import load_continuity_data, save_continuity_data, save_continuity_figure
    from lfs_gui.metrics.continuity import ContinuityCurve

    def curve(scale: float, method: str) -> ContinuityCurve:
        steps = np.arange(1, 7)
        return ContinuityCurve(steps=steps, shifts=np.array([11, 21, 32, 21, 11, 0]),
                               diffs=scale * np.array([1.0, 2.0, 3.0, 2.0, 1.0, 0.0]),
                               settings={"metric": "continuity", "steps": 6, "heat_size": 40, "mode": "pair",
                                         "fill": [1.0, 1.0, 1.0], "xi1": 0.3, "method": {"method": method}})

    curves = {"explainlfs": curve(0.5, "explainlfs"), "random": curve(4.0, "random")}
    ctx = {"pair": {"query": 0, "target": 3, "names": ["#0", "#3"]}, "model": {"name": "tiny", "index": "t"}}
    out = save_continuity_figure(tmp_path / "c.png", curves, ViewSpec(size="single", dpi=100), ctx)
    with Image.open(out) as im:
        assert im.size[0] == 350
    meta = read_figure_metadata(out)
    assert set(meta["settings"]["curves"]) == {"explainlfs", "random"} and "white" in meta["caption"]
    for name in ("c.csv", "c.json"):
        rec = load_continuity_data(save_continuity_data(tmp_path / name, curves, ctx))
        assert rec["format"] == "lfs-gui-continuity" and rec["pair"]["target"] == 3
        for m, c in curves.items():
            assert np.allclose(rec["curves"][m]["diffs"], c.diffs) and rec["curves"][m]["shifts"] == c.shifts.tolist()
            assert rec["curves"][m]["settings"]["method"]["method"] == m and rec["curves"][m]["settings"]["heat_size"] == 40
