"""Shared test set-up: offscreen Qt, a throw-away QSettings file, and a leaked-widget check.

* ``QT_QPA_PLATFORM=offscreen`` unless the caller chose a platform (e.g. ``xvfb-run``).
* ``LFS_GUI_SETTINGS`` points at a temp INI file so no test reads or writes the user's settings;
  ``LFS_GUI_CACHE`` at a temp folder for embedding caches.
* Like napari's ``make_napari_viewer``, every test that uses Qt fails if it leaves a top-level widget
  alive (close your windows; ``qtbot.addWidget`` does it for you).
"""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_SETTINGS_DIR = tempfile.mkdtemp(prefix="lfs-gui-test-settings-")
os.environ["LFS_GUI_SETTINGS"] = os.path.join(_SETTINGS_DIR, "lfs-gui.ini")
# Embedding caches of indexes built by tests go to a throw-away folder, never the user's cache.
os.environ["LFS_GUI_CACHE"] = tempfile.mkdtemp(prefix="lfs-gui-test-cache-")


def _top_level_widgets() -> dict[int, str]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return {}
    import shiboken6

    out = {}
    for w in app.topLevelWidgets():
        if not shiboken6.isValid(w):
            continue
        # Qt's own helper windows (tooltips, menus that were never shown) are not ours to close.
        if w.metaObject().className() in ("QTipLabel", "QMenu", "QComboBoxPrivateContainer"):
            continue
        out[shiboken6.getCppPointer(w)[0]] = f"{w.metaObject().className()}({w.objectName()!r})"
    return out


@pytest.fixture(autouse=True)
def fail_on_leaked_widgets(request: pytest.FixtureRequest):
    """Fail a Qt test that leaves new top-level widgets behind (napari-style)."""
    uses_qt = any(f in request.fixturenames for f in ("qtbot", "qapp"))
    if not uses_qt:
        yield
        return
    before = _top_level_widgets()
    yield
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    for _ in range(3):
        QApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    leaked = {k: v for k, v in _top_level_widgets().items() if k not in before}
    if leaked:
        pytest.fail(f"leaked top-level widgets: {sorted(leaked.values())}", pytrace=False)


@pytest.fixture(autouse=True)
def fail_on_running_workers(request: pytest.FixtureRequest):
    """Fail a test that leaves a worker QThread running that nobody shut down (a window or dialog closed
    without stopping its jobs).

    Such a thread is destroyed later while it still runs, which aborts the whole run (SIGABRT, exit
    code 134: "QThread: Destroyed while thread ... is still running"). The check runs after pytest-qt
    has closed the test's widgets. Orphans (threads whose owner's ``shutdown`` timed out on a slow
    machine, by design left to finish) are waited for, not failed; leaked threads are cancelled and
    waited for too, so one leaking test fails alone instead of aborting the suite later.
    """
    yield
    import sys

    workers = sys.modules.get("lfs_gui.app.workers")
    if workers is None:
        return
    leaked = workers.running_workers(include_orphans=False)
    workers.wait_for_orphans()
    for t in leaked:
        t.cancel()
        t.wait(120000)
    if leaked:
        pytest.fail(f"worker threads still running after the test: {sorted(t.objectName() for t in leaked)}",
                    pytrace=False)
