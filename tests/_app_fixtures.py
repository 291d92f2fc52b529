"""Fixtures the window tests of issue 14 share: the demo session (opened once per module) and a window
on it at a laptop's 1280×720, closed (its workers stopped) after the test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def demo_session():
    from lfs_gui.session import Session

    return Session.open_demo()


def open_window(qtbot, session, size: tuple[int, int] = (1280, 720)):
    """A main window at ``size`` on ``session``, shown, and closed (its workers stopped) after the test."""
    from lfs_gui.app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.shutdown())
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    win.leftTabs.setCurrentIndex(0)
    win.set_session(session)
    return win


@pytest.fixture
def window(qtbot, demo_session):
    return open_window(qtbot, demo_session)
