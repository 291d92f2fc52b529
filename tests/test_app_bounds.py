"""The app's side of the faithfulness protocol: the question (target) and order settings reach the maps
and curves, a method's own p default, and the greedy oracle's curve computed on request as a
background job (progress, cancel, cached) and drawn next to random's."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

CURVE_TIMEOUT = 120_000


@pytest.fixture(scope="module")
def demo_session():
    from lfs_gui.session import Session

    return Session.open_demo()


@pytest.fixture
def window(qtbot, demo_session):
    from lfs_gui.app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.shutdown())
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    win.set_session(demo_session)
    win.controller.curve_delay_ms = 0
    return win


def _open_pair(qtbot, win, row: str = "similar", col: int = 0) -> int:
    tile = getattr(win.retrievals, row).tiles[col]
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    return tile.hit.id


def test_oracle_curve_on_request_next_to_random(qtbot, window):
    win = window
    win.state.update_curve(steps=3, perturbation="fill")  # 64 + 63 + 62 candidate forwards
    win.select_query(0)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=CURVE_TIMEOUT) as finished:
        _open_pair(qtbot, win, "similar", 0)
    curves = finished.args[0]
    button = win.curves.oracleButton
    assert button.isEnabled() and button.text() == "Oracle curve"
    ch = win.controller.oracle_channel
    progress = []
    ch.item.connect(lambda item: progress.append(item[0]))
    with qtbot.waitSignal(ch.done, timeout=CURVE_TIMEOUT):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert button.text() == "Cancel oracle"
    assert "oracle-progress" in progress and progress[-1] == "oracle-done"
    assert win.curves.point_count("oracle") == 4 and button.text() == "Oracle curve"
    oracle = win.controller.last_curves["oracle"]
    assert oracle.settings["method"] == "oracle" and oracle.settings["target"] == "decision"
    assert oracle.auc <= min(curves["method"].auc, curves["random"].auc) + 1e-9  # similar pair: lower is better
    assert "oracle AUC" in win.curves.status.text()
    # a second request is served from the cache: no candidate forwards
    progress.clear()
    with qtbot.waitSignal(ch.done, timeout=30_000):
        win.controller.toggle_oracle()
    assert "oracle-progress" not in progress and win.curves.point_count("oracle") == 4


def test_oracle_cancel_and_a_new_pair_drop_it(qtbot, window):
    win = window
    win.state.update_curve(steps=20, perturbation="noise", seed=5)
    win.select_query(1)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=CURVE_TIMEOUT):
        _open_pair(qtbot, win, "similar", 0)
    ch = win.controller.oracle_channel
    win.controller.toggle_oracle()
    qtbot.waitUntil(lambda: win.curves.point_count("oracle") >= 1, timeout=CURVE_TIMEOUT)
    with qtbot.waitSignal(ch.cancelled, timeout=CURVE_TIMEOUT):
        win.controller.toggle_oracle()  # the button again: cancel
    assert not ch.is_busy() and win.curves.point_count("oracle") == 0
    assert win.curves.oracleButton.text() == "Oracle curve"
    win.controller.toggle_oracle()
    qtbot.waitUntil(lambda: win.curves.point_count("oracle") >= 1, timeout=CURVE_TIMEOUT)
    with qtbot.waitSignal(ch.cancelled, timeout=CURVE_TIMEOUT):
        _open_pair(qtbot, win, "similar", 1)  # a new pair cancels it
    qtbot.waitUntil(lambda: ch.running_threads() == 0, timeout=CURVE_TIMEOUT)


def test_question_order_and_p_defaults_reach_maps_and_curves(qtbot, window):
    win = window
    controls = win.findChild(type(win.curveControls), "curveControls")
    assert controls is win.curveControls
    combo = win.findChild(type(win.curveControls.order), "targetCombo")
    combo.setCurrentIndex(combo.findData("similarity"))
    assert win.state.explain.target == "similarity"
    win.curveControls.order.setCurrentIndex(win.curveControls.order.findData("lerf"))
    assert win.state.curve.order == "lerf"
    method = win.findChild(type(combo), "methodCombo")
    method.setCurrentText("explainlfs-rel")
    assert win.state.explain.p == pytest.approx(0.1)  # its own default, as in the CLI and evaluate
    method.setCurrentText("explainlfs")
    assert win.state.explain.p == pytest.approx(0.3)
    win.state.update_curve(steps=3, perturbation="fill")
    win.select_query(2)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=CURVE_TIMEOUT) as finished:
        _open_pair(qtbot, win, "similar", 0)
    c = finished.args[0]
    assert c["method"].settings["target"] == c["random"].settings["target"] == "similarity"
    assert c["method"].settings["order"] == c["random"].settings["order"] == "lerf"
    assert not c["method"].lower_is_better  # LeRF on a similar pair: a good map keeps the similarity up
    # explainlfs cannot say what makes a dissimilar pair alike: it says so instead of answering
    failures = []
    win.controller.explainFailed.connect(failures.append)
    _open_pair(qtbot, win, "dissimilar", 0)
    qtbot.waitUntil(lambda: bool(failures), timeout=CURVE_TIMEOUT)
    assert "cannot answer target 'similarity'" in failures[-1]
    win.state.update_explain(target="decision")
    win.state.update_curve(order="morf", steps=20, perturbation="noise")
