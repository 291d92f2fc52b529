"""Start the app: show the window first, then open the session in the background.

``--screenshot PATH`` mode drives the window like a user (first query, its top pair, wait for the
curve), saves a screenshot of the whole window and exits; the CLI and the benchmark use it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from lfs_gui.app.main_window import MainWindow
from lfs_gui.app.settings import init_app_names

log = logging.getLogger(__name__)


class ScreenshotDriver(QObject):
    """Open query ``query`` and its top pair, wait for the curves, save the window, quit."""

    def __init__(self, window: MainWindow, path: Path, query: int = 0, timeout_s: float = 180.0) -> None:
        super().__init__(window)
        self.window, self.path, self.query = window, Path(path), query
        self.rc = 2
        self._t0 = time.perf_counter()
        window.sessionReady.connect(self._on_session)
        window.controller.curveFinished.connect(self._on_curves)
        window.jobFailed.connect(self._on_failed)
        self._timeout = QTimer(self, singleShot=True)
        self._timeout.timeout.connect(self._on_timeout)
        self._timeout.start(int(timeout_s * 1000))

    def _on_session(self, session: object) -> None:
        log.info("session ready after %.1f s", time.perf_counter() - self._t0)
        self.window.select_query(self.query)

    def _on_curves(self, _curves: object) -> None:
        log.info("curves done after %.1f s", time.perf_counter() - self._t0)
        self.rc = 0
        QTimer.singleShot(400, self._save)  # let thumbnails and the legend settle

    def _on_failed(self, message: str) -> None:
        log.error("screenshot run failed: %s", message)
        self.rc = 1
        QTimer.singleShot(200, self._save)

    def _on_timeout(self) -> None:
        log.error("screenshot: timed out waiting for the curves")
        self.rc = 2
        self._save()

    def _save(self) -> None:
        self._timeout.stop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            log.error("could not write %s", self.path)
            self.rc = self.rc or 1
        else:
            log.info("screenshot written to %s", self.path)
        self.window.close()
        QApplication.instance().exit(self.rc)


def run_app(
    index: str | None = None,
    screenshot: str | None = None,
    query: int = 0,
    timeout_s: float = 180.0,
    decoder: str | None = None,
    trust_checkpoint: bool = False,
    device: str | None = None,
    gallery_root: Path | None = None,
    model_path: Path | None = None,
    size: tuple[int, int] | None = None,
) -> int:
    """Run the desktop app; returns the exit code. ``device``: where models run for this run (default:
    the Device menu's remembered choice); ``gallery_root``/``model_path``: where INDEX's gallery / model
    are now, if they moved (else the window asks when they are missing)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    init_app_names()
    window = MainWindow(device=device)
    driver = None
    if size is not None:  # lay out afresh at that size (screenshots of a given screen)
        window.resize(*size)
        window.layout_.reset()
    if screenshot:
        if size is None:
            window.resize(1400, 900)
        driver = ScreenshotDriver(window, Path(screenshot), query=query, timeout_s=timeout_s)
    window.show()
    given = {"decoder": decoder, "trust_checkpoint": trust_checkpoint, "gallery_root": gallery_root, "model_path": model_path}
    options = {k: v for k, v in given.items() if v}
    QTimer.singleShot(0, (lambda: window.open_index(index, **options)) if index else window.open_demo)
    rc = app.exec()
    if driver is not None:
        rc = driver.rc
    return int(rc)
