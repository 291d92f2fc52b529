"""The window on a laptop screen (offscreen Qt): minimum sizes, the curve legend off the data, the View
menu (decoder reconstructions, gallery column) and the layout remembered across windows."""

from __future__ import annotations

import pytest

from lfs_gui.app.layout import CURVES_MIN_HEIGHT, PAIR_MIN_HEIGHT


@pytest.fixture(scope="module")
def demo_session():
    from lfs_gui.session import Session

    return Session.open_demo()


@pytest.fixture
def clean_layout():
    """Each test starts without a saved layout and leaves none behind for the other tests."""
    from lfs_gui.app.settings import make_settings

    s = make_settings()
    for group in ("window", "layout"):
        s.remove(group)
    yield
    for group in ("window", "layout"):
        s.remove(group)
    s.sync()


def _window(qtbot, size, session=None):
    from lfs_gui.app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.shutdown())
    win.resize(*size)
    win.layout_.reset()
    win.show()
    qtbot.waitExposed(win)
    if session is not None:
        win.set_session(session)
    return win


def test_laptop_screen_keeps_the_curves_readable(qtbot, demo_session, clean_layout) -> None:
    win = _window(qtbot, (1280, 720), demo_session)
    win.select_query(0)
    qtbot.waitUntil(lambda: win.state.explanation is not None, timeout=30_000)
    sizes = win.rightSplit.sizes()
    assert sizes[1] >= PAIR_MIN_HEIGHT and sizes[2] >= CURVES_MIN_HEIGHT, sizes
    vb = win.curves.plot.getViewBox()
    assert vb.sceneBoundingRect().height() >= 100  # was ~60 px with the legend on top of it
    legend = win.curves.plot.legend
    qtbot.waitUntil(lambda: legend.pos().x() > 0, timeout=5000)  # the plot lays its legend out lazily
    assert legend.isVisible() and legend.sceneBoundingRect().left() >= vb.sceneBoundingRect().right() - 1  # beside
    assert len(legend.items) == 2
    small = win.retrievals.thumb
    win.resize(1920, 1080)
    qtbot.waitUntil(lambda: win.retrievals.thumb > small, timeout=5000)
    assert win.query.image.width() > 112


def test_view_menu_hides_reconstructions_and_collapses_the_gallery(qtbot, demo_session, clean_layout) -> None:
    win = _window(qtbot, (1280, 720), demo_session)
    recon = win.findChild(type(win.layout_.reconAction), "actionShowRecon")
    left = win.findChild(type(win.layout_.reconAction), "actionShowLeft")
    width_before = win.pair.queryHeat.width()
    recon.trigger()
    assert not recon.isChecked() and win.pair.queryRecon.isHidden() and win.pair.targetRecon.isHidden()
    qtbot.waitUntil(lambda: win.pair.queryHeat.width() > width_before, timeout=5000)  # the heat tiles get the room
    left.trigger()
    assert win.mainSplit.sizes()[0] == 0 and not left.isChecked()
    left.trigger()
    assert win.mainSplit.sizes()[0] >= 190 and left.isChecked()
    win.mainSplit.moveSplitter(0, 1)  # dragging the handle to the edge collapses it too; the menu follows
    assert win.mainSplit.sizes()[0] == 0 and not left.isChecked()


def test_layout_is_remembered(qtbot, clean_layout) -> None:
    win = _window(qtbot, (1300, 760))
    win.layout_.set_recon_visible(False)
    win.layout_.set_left_visible(False)
    sizes = win.rightSplit.sizes()
    win.close()
    from lfs_gui.app.main_window import MainWindow

    win2 = MainWindow()  # restores from the settings the first one saved on close
    qtbot.addWidget(win2, before_close_func=lambda w: w.shutdown())
    win2.show()
    qtbot.waitExposed(win2)
    assert win2.pair.queryRecon.isHidden() and not win2.layout_.reconAction.isChecked()
    assert win2.mainSplit.sizes()[0] == 0 and not win2.layout_.leftAction.isChecked()
    assert win2.rightSplit.sizes() == sizes
