"""The window's side of issue 13 §1–2, offscreen with real Qt: curve axes without SI-prefix scaling,
the crop box and the unseen area on the pair view, the export dialog's presets, and exports that carry
the window's view (colormap, opacity, mask view) at the chosen size and DPI."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPixmap

sys.path.insert(0, str(Path(__file__).parent))
from _app_fixtures import demo_session, open_window  # noqa: F401 (fixtures)

CURVE_TIMEOUT = 60_000


@dataclass(frozen=True)
class _Point:
    step: int
    sim: float
    ratio: float
    value: float


@pytest.fixture
def window(qtbot, demo_session):
    return open_window(qtbot, demo_session, (1400, 900))


def test_curve_axes_never_use_si_prefix_scaling(qtbot) -> None:
    from lfs_gui.app.widgets.curves import CurvesPanel

    panel = CurvesPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 300)
    panel.show()
    panel.reset("explainlfs", steps=4)
    panel.set_pair_type(False)  # a dissimilar pair: sim_k − sim_0, tiny values
    for k, v in enumerate((0.0, 0.0001, 0.0002, 0.0004, 0.0003)):
        panel.add_point("method", _Point(k, 0.3 + v, float("nan"), v))
    qtbot.wait(50)
    for plot in (panel.plot, panel.cont):
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setRange(0.0001, 0.0004)  # what the view box does when it autoranges onto these values
            assert axis.autoSIPrefix is False and axis.autoSIPrefixScale == 1.0
            assert "(x" not in axis.labelString() and "×" not in axis.labelString()
    ticks = panel.plot.getAxis("left").tickStrings([0.0001, 0.0002], 1.0, 0.0001)
    assert ticks == ["0.0001", "0.0002"]  # the values as they are, not 100 and 200


def test_heat_tile_outlines_the_crop_box_and_marks_the_unseen_area(qtbot) -> None:
    from lfs_gui.app.widgets.pair_view import HeatTile

    tile = HeatTile("t", "testTile")
    qtbot.addWidget(tile)
    tile.resize(420, 260)
    pix = QPixmap(200, 100)
    pix.fill(QColor(220, 30, 30))
    tile.set_image(pix, (200, 100), (50.0, 0.0, 150.0, 100.0))  # the model saw the middle half
    tile.show()
    qtbot.waitExposed(tile)
    img = tile.grab().toImage()
    r, ov = tile.image_rect(), tile.overlay_rect()
    scale = img.width() / tile.width()

    def px(x: float, y: float) -> tuple[int, int, int]:
        c = img.pixelColor(int(x * scale), int(y * scale))
        return c.red(), c.green(), c.blue()

    mid_y = r.center().y()
    inside = px(ov.center().x(), mid_y)
    assert inside == (220, 30, 30)  # what the model saw is drawn as it is
    outside = [px(r.x() + dx, mid_y + dy) for dx in range(4, 40, 3) for dy in (-7, 0, 7)]
    assert all(p != (220, 30, 30) for p in outside)  # greyed (and hatched) outside the crop box
    assert np.mean([abs(p[0] - p[1]) for p in outside]) < 0.6 * (220 - 30)  # washed towards grey
    edge = [px(ov.x() + 0.5, mid_y + dy) for dy in range(-20, 20)]
    assert any(max(p) < 80 for p in edge) and any(min(p) > 200 for p in edge)  # dark + white dashes
    assert not tile.unseen_path().isEmpty()
    tile.set_image(pix, (200, 100), (0.0, 0.0, 200.0, 100.0))  # a crop covering the image: nothing unseen
    assert tile.unseen_path().isEmpty()
    tile.set_image(pix, (200, 100), None)  # reconstructions: no crop box at all
    assert tile.unseen_path().isEmpty()


def test_export_dialog_presets_and_memory(qtbot) -> None:
    from lfs_gui.app.settings import make_settings
    from lfs_gui.app.widgets.export_dialog import FigureExportOptions

    settings = make_settings()  # the tests' throw-away INI file (conftest)
    dialog = FigureExportOptions(None, settings)
    qtbot.addWidget(dialog)
    dialog.set_size("single")
    dialog.set_dpi(600)
    assert dialog.options() == {"size": "single", "dpi": 600}
    assert dialog.pixels.text().startswith("2100 px")
    dialog.set_size(5.25)
    dialog.set_dpi(220)
    assert dialog.options() == {"size": 5.25, "dpi": 220} and dialog.width.isEnabled() and dialog.customDpi.isEnabled()
    dialog._accept()
    again = FigureExportOptions(None, settings)
    qtbot.addWidget(again)
    assert again.options() == {"size": 5.25, "dpi": 220}  # remembered


def test_exports_carry_the_window_view_at_the_chosen_size(qtbot, window, tmp_path: Path) -> None:
    from lfs_gui.figures import load_curve_data, read_figure_metadata

    win = window
    win.controller.curve_delay_ms = 0
    win.select_query(0)
    qtbot.waitUntil(lambda: win.state.retrievals is not None, timeout=10_000)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=CURVE_TIMEOUT):
        tile = win.retrievals.similar.tiles[1]
        qtbot.mouseClick(tile, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    win.state.update_view(cmap="viridis", opacity=0.8, mask_only=True)
    out = tmp_path / "pair.png"
    assert win.export("pair", out, size="single", dpi=100) is not None
    qtbot.waitUntil(lambda: not win.export_channel.is_busy(), timeout=60_000)
    assert win.last_error is None, win.last_error
    with Image.open(out) as im:
        assert im.size[0] == 350
    st = read_figure_metadata(out)["settings"]
    assert st["view"]["cmap"] == "viridis" and st["view"]["opacity"] == 0.8 and st["view"]["mask_view"] is True
    assert set(st["curves"]) >= {"method", "random"}  # the window's random floor is in the figure
    assert st["pair"]["target"] == win.state.target and st["explanation"]["method"] == win.state.explain.method
    data = tmp_path / "curves.json"
    win.export("curve", data)
    qtbot.waitUntil(lambda: not win.export_channel.is_busy(), timeout=60_000)
    rec = load_curve_data(data)
    assert set(rec["curves"]) >= {"method", "random"} and rec["view"]["cmap"] == "viridis"
    assert rec["curves"]["method"]["values"] == pytest.approx(list(win.controller.last_curves["method"].values))
    # the sheet is a background job the status bar's Cancel stops: nothing is written
    sheet = tmp_path / "sheet.pdf"
    assert win.export("sheet", sheet, size="double", dpi=150) is not None
    assert win.export_channel.is_busy()
    win.cancel_jobs()
    qtbot.waitUntil(lambda: win.export_channel.running_threads() == 0, timeout=60_000)
    assert not sheet.exists() and not list(tmp_path.glob(".*sheet*"))


def test_curve_redraws_are_throttled_and_the_last_point_is_always_drawn(qtbot) -> None:
    from lfs_gui.app.widgets.curves import CurvesPanel

    panel = CurvesPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.reset("explainlfs", steps=20)
    before = panel.redraws
    for k in range(21):  # a burst: the worker's points arrive faster than the redraw interval
        panel.add_point("method", _Point(k, 0.8 - 0.01 * k, 1 - 0.01 * k, 1 - 0.01 * k))
    assert panel.point_count("method") == 1  # the first point of a burst is drawn at once ...
    assert panel.redraws - before == 1
    qtbot.waitUntil(lambda: panel.point_count("method") == 21, timeout=2000)  # ... the rest on the timer
    assert panel.redraws - before == 2 and "step 20/20" in panel.status.text()
    panel.add_point("random", _Point(0, 0.8, 1.0, 1.0))
    panel.finish("random", type("C", (), {"auc": 0.5})())  # finishing draws at once
    assert panel.point_count("random") == 1
    vb = panel.plot.getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    assert x0 < 0 < 20 < x1 and y0 < 0.8 <= 1.0 < y1  # x fixed to the steps, y holds every point
    assert not any(vb.autoRangeEnabled())
    qtbot.wait(20)  # let the legend's relayout (from the renamed entry) run before the panel is deleted
