"""File ▸ Compare two images… (offscreen Qt): two files, no gallery; similarity, decision at ξ1, curves,
exports; the job runs in a worker and its signals are awaited."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _app_fixtures import demo_session, window  # noqa: E402,F401 (fixtures)

from lfs_gui.data.images import open_image  # noqa: E402
from lfs_gui.paths import demo_gallery_dir  # noqa: E402

BIRDS = sorted((demo_gallery_dir() / "images" / "birds").iterdir())


def test_compare_two_images(qtbot, window, demo_session, tmp_path) -> None:
    window.state.update_curve(steps=3)
    dlg = window.open_verify()
    assert dlg.isVisible() and window.open_verify() is dlg  # one dialog
    assert dlg.set_image(0, BIRDS[0]) is None  # waits for the second image
    with qtbot.waitSignal(dlg.finished_curves, timeout=120_000):
        dlg.set_image(1, BIRDS[4])
    e = demo_session.model.embed_images([open_image(BIRDS[0]), open_image(BIRDS[4])])
    ex = dlg.explanation
    assert ex.similarity == pytest.approx(float(e[0] @ e[1]), abs=1e-5)
    xi1 = round(demo_session.suggested_xi1(), 2)
    assert dlg.xi1.value() == pytest.approx(xi1, abs=0.01) and "gallery" in dlg.xi1Source.text()
    assert ex.similar == (ex.similarity > ex.settings["xi1"])
    methods = [dlg.method.itemText(i) for i in range(dlg.method.count())]
    assert "explainlfs" in methods and "emsnn" not in methods  # gallery-free methods only
    assert dlg.series["method"].xs == [0, 1, 2, 3] and dlg.exportFigure.isEnabled()
    with qtbot.waitSignal(window.export_channel.done, timeout=60_000):
        dlg.export_figure(tmp_path / "pair.svg")
    assert (tmp_path / "pair.svg").stat().st_size > 1000
    with qtbot.waitSignal(window.export_channel.done, timeout=30_000):
        dlg.export_curve_data(tmp_path / "curve.json")
    assert (tmp_path / "curve.json").is_file()
    # the user's ξ1 decides
    with qtbot.waitSignal(dlg.finished_curves, timeout=120_000):
        dlg.xi1.setValue(0.99)
    assert dlg.explanation.settings["xi1"] == pytest.approx(0.99) and not dlg.explanation.similar
    assert "different" in dlg.verdict.text() and "yours" in dlg.xi1Source.text()
    # a bad file is reported, not a crash
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    assert dlg.set_image(1, bad) is None and "broken.jpg" in dlg.verdict.text()
