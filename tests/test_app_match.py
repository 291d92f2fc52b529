"""The pair view's match tools in the real window (offscreen Qt, the real demo session, real workers):
correspondence under the mouse, lock, keys, lines, SANE's "matched on", and training a predictor from
the File menu on a small real index."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from lfs_gui.match_state import MatchPoint, MatchState

from _app_fixtures import demo_session, window  # noqa: F401 - the demo session and a window around it (fixtures)

TIMEOUT = 120_000


def _pair(qtbot, win, query: int = 20, target: int = 25) -> None:
    win.controller.curve_delay_ms = 60_000  # no curves: these tests are about the pair view
    win.state.update_explain(method="sim-decomp")
    win.select_query(query)
    win.state.set_target(target)
    qtbot.waitUntil(lambda: win.state.explanation is not None, timeout=TIMEOUT)


def _widget_pos(ctl, which: int, x: float, y: float) -> QPoint:
    tile = ctl.tiles[which]
    r = tile.image_rect()
    w, h = tile.original_size
    return QPoint(int(r.x() + x * r.width() / w), int(r.y() + y * r.height() / h))


def test_match_state_lock_rules() -> None:
    m = MatchState()
    seen: list = []
    m.pointChanged.connect(seen.append)
    a, b = MatchPoint(1, 3, (10.0, 10.0)), MatchPoint(1, 4, (20.0, 10.0))
    m.hover(a)
    m.click(b)
    assert m.point.locked and m.point.cell == 4
    m.hover(a)  # locked: hovering does not move it
    assert m.point.cell == 4
    m.click(MatchPoint(1, 4, (21.0, 11.0)))  # the locked cell again: unlock
    assert not m.point.locked
    m.select_attribute(2)
    m.select_attribute(2)  # again: back to the heat
    assert m.attribute is None
    m.set_enabled(True)
    m.set_enabled(False)
    assert m.point is None and len(seen) == 4


def test_hover_click_keys_lines_and_export(qtbot, window, tmp_path) -> None:
    win = window
    ctl = win.pair.match
    _pair(qtbot, win)
    with qtbot.waitSignal(ctl.corr_channel.done, timeout=TIMEOUT):
        ctl.bar.toggle.setChecked(True)
    corr = ctl.match.correspondence
    assert corr is not None and corr.exact and "exact" in ctl.bar.status.text()
    heat_before = win.pair.targetHeat.overlay
    # hover a pixel of the query: the target shows that cell's match heat (a 7x7 map)
    qtbot.mouseMove(win.pair.queryHeat, _widget_pos(ctl, 1, 120, 90))
    qtbot.waitUntil(lambda: ctl.match.point is not None, timeout=5000)
    pt = ctl.match.point
    assert pt.which == 1 and not pt.locked
    size = win.state.session.preprocessing
    from lfs_gui.explain.correspondence import original_to_cell

    assert pt.cell == original_to_cell(corr, 1, size, *pt.xy, *ctl.tiles[1].original_size)
    ov = win.pair.targetHeat.overlay
    assert ov is not heat_before and (ov.width(), ov.height()) == (corr.grid2[1], corr.grid2[0])
    # click locks; moving elsewhere keeps the locked point
    qtbot.mouseClick(win.pair.queryHeat, Qt.MouseButton.LeftButton, pos=_widget_pos(ctl, 1, 120, 90))
    assert ctl.match.point.locked
    locked_cell = ctl.match.point.cell
    qtbot.mouseMove(win.pair.queryHeat, _widget_pos(ctl, 1, 40, 40))
    assert ctl.match.point.cell == locked_cell
    # keys: right moves one cell (still locked), space unlocks, X goes to the target, Esc clears
    gw = corr.grid1[1]
    qtbot.keyClick(win.pair, Qt.Key.Key_Right)
    assert ctl.match.point.cell == locked_cell + (1 if (locked_cell % gw) < gw - 1 else 0) and ctl.match.point.locked
    qtbot.keyClick(win.pair, Qt.Key.Key_Space)
    assert not ctl.match.point.locked
    qtbot.keyClick(win.pair, Qt.Key.Key_X)
    assert ctl.match.point.which == 2
    assert (win.pair.queryHeat.overlay.width(), win.pair.queryHeat.overlay.height()) == (corr.grid1[1], corr.grid1[0])
    qtbot.keyClick(win.pair, Qt.Key.Key_Escape)
    assert ctl.match.point is None
    # lines: endpoints inside the two images
    ctl.bar.lines.setValue(4)
    lines = ctl.line_points()
    assert len(lines) == 4
    for a, b, v in lines:
        assert v > 0
        ra = ctl.tiles[1].image_rect().translated(QPointF(ctl.tiles[1].mapTo(win.pair, QPoint(0, 0))))
        rb = ctl.tiles[2].image_rect().translated(QPointF(ctl.tiles[2].mapTo(win.pair, QPoint(0, 0))))
        assert ra.adjusted(-2, -2, 2, 2).contains(a) and rb.adjusted(-2, -2, 2, 2).contains(b)
    # the exported figure carries the locked point's match and the lines (what the window shows)
    qtbot.mouseClick(win.pair.queryHeat, Qt.MouseButton.LeftButton, pos=_widget_pos(ctl, 1, 120, 90))
    assert ctl.match.point.locked
    out = tmp_path / "pair.svg"
    assert win.export("pair", out) is not None
    qtbot.waitUntil(lambda: not win.export_channel.is_busy(), timeout=TIMEOUT)
    assert win.last_error is None, win.last_error
    svg = out.read_text()
    assert "target map match of query point" in svg  # the caption, in the file's metadata
    assert len(set(re.findall(r'id="match-line-(\d+)"', svg))) == 5  # the point's match + 4 lines
    # a new pair drops the matrix and computes the new one
    with qtbot.waitSignal(ctl.corr_channel.done, timeout=TIMEOUT):
        win.state.set_target(26)
    assert ctl.match.correspondence is not corr


def test_matched_on_attributes_and_their_maps(qtbot, window) -> None:
    win = window
    ctl = win.pair.match
    with qtbot.waitSignal(ctl.attr_channel.done, timeout=TIMEOUT):
        _pair(qtbot, win)
    choice = ctl.match.attributes
    assert choice is not None and len(choice.top(3)) == 3
    text = ctl.bar.matchedOn.text()
    assert text.startswith("matched on: ") and text.count("<a href=") == 3 and choice.ranked[0].name in text
    first = choice.ranked[0].index
    ctl.bar.matchedOn.linkActivated.emit(str(first))
    assert ctl.match.attribute == first
    for w in (1, 2):
        ov = ctl.tiles[w].overlay
        assert (ov.height(), ov.width()) == choice.maps_query.shape[1:]
    ctl.bar.matchedOn.linkActivated.emit(str(first))  # again: back to the explanation's heat
    assert ctl.match.attribute is None
    assert ctl.tiles[2].overlay.width() == win.state.explanation.heat2.shape[1]
    assert choice.settings["w_confidence"] == 0.4  # the defaults
    # the weights are a setting: kept across windows, and a change recomputes the pair's choice with them
    from lfs_gui.app.widgets.match_view import SANE_WEIGHTS_KEY, saved_sane_weights

    try:
        with pytest.raises(ValueError, match="SANE weights"):
            ctl.set_sane_weights("1,2")
        with qtbot.waitSignal(ctl.attr_channel.done, timeout=TIMEOUT):
            ctl.set_sane_weights("0, 0, 1")
        assert saved_sane_weights() == (0.0, 0.0, 1.0) and "0,0,1" in ctl.bar.matchedOn.toolTip()
        s = ctl.match.attributes.settings
        assert (s["w_confidence"], s["w_agreement"], s["w_deletion"]) == (0.0, 0.0, 1.0)
        drops = [r.deletion for r in ctl.match.attributes.ranked]
        assert drops == sorted(drops, reverse=True)  # deletion alone ranks them
    finally:
        from lfs_gui.app.settings import make_settings

        make_settings().remove(SANE_WEIGHTS_KEY)


def test_train_attributes_from_the_menu_on_a_small_index(qtbot, tmp_path) -> None:
    from lfs_gui.app.main_window import MainWindow
    from lfs_gui.cli import main

    from _attribute_fixtures import write_object_gallery
    from _object_models import write_colour_torchscript

    model = write_colour_torchscript(tmp_path / "colour.pt")
    images = write_object_gallery(tmp_path / "objects", per_class=5)
    assert main(["index", str(images), "--model", str(model), "--out", str(tmp_path / "idx"), "--no-decoder"]) == 0

    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.shutdown())
    win.show()
    win.controller.curve_delay_ms = 60_000
    with qtbot.waitSignal(win.sessionReady, timeout=TIMEOUT):
        win.open_index(tmp_path / "idx")
    ctl = win.pair.match
    with qtbot.waitSignal(ctl.attr_channel.done, timeout=TIMEOUT):
        win.state.update_explain(method="grad-sim")
        win.select_query(0)
    assert "no attribute predictor" in ctl.bar.matchedOn.text()
    with qtbot.waitSignal(ctl.attr_channel.done, timeout=TIMEOUT):
        with qtbot.waitSignal(win.build_channel.done, timeout=TIMEOUT):
            assert win.train_attributes(epochs=30, hidden=16, lr=1e-2) is not None
    assert (tmp_path / "idx" / "attributes.pt").is_file() and win.last_error is None
    assert ctl.bar.matchedOn.text().startswith("matched on: ")
    names = {s.name for s in ctl.match.attributes.ranked}
    assert names <= {"red", "green", "blue"}
    # the query is a red_green scene matched with its nearest neighbour: a colour both show comes first
    assert ctl.match.attributes.ranked[0].confidence > 0.5
    assert np.isfinite(ctl.match.attributes.ranked[0].score)
