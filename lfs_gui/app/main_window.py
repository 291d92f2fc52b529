"""The main window: composes the panels, the menus, the status bar and the long jobs.

Layout (see docs/DESIGN.md): gallery on the left; on the right the query and the retrievals on top, the
explained pair in the middle and the curves at the bottom. Opening a session (the demo or a saved
index) runs in the ``session`` job channel after the window has painted, so torch is never imported on
the GUI thread before the first paint. Long jobs show a progress bar and a cancel button in the status
bar; errors become a message box naming the file and the fix, with the traceback in the log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar, QSplitter, QTabWidget, QToolButton,
    QVBoxLayout, QWidget,
)

from lfs_gui.app import layout
from lfs_gui.app import settings as app_settings
from lfs_gui.app.attribute_actions import AttributeActions
from lfs_gui.app.controller import Controller
from lfs_gui.app.thumbnails import ThumbnailCache
from lfs_gui.app.widgets.controls import CurveControls
from lfs_gui.app.widgets.curves import CurvesPanel
from lfs_gui.app.widgets.device_menu import DeviceMenu, remembered_device
from lfs_gui.app.widgets.gallery import GalleryPanel
from lfs_gui.app.widgets.pair_view import PairView
from lfs_gui.app.widgets.query import QueryPanel
from lfs_gui.app.widgets.retrievals import RetrievalsPanel
from lfs_gui.app.window_actions import WindowActions
from lfs_gui.app.workers import JobChannel
from lfs_gui.jobs import Progress
from lfs_gui.viewer_state import QueryRef, ViewerState

log = logging.getLogger(__name__)



def _open_demo(device: str = "auto") -> Generator[Any, None, Any]:
    from lfs_gui.device import usable_device  # torch: imported on the worker thread
    from lfs_gui.session import Session

    return (yield from Session.iter_open_demo(device=usable_device(device)))


def _open_index(path: str, device: str = "auto", trusted: frozenset[str] = frozenset(),
                **options: Any) -> Generator[Any, None, Any]:
    """Open the index on ``device``. If its model file would need trust, raise
    :class:`~lfs_gui.models.safe_load.TrustRequired` now (a scan, nothing is unpickled) so that the
    window asks before any work, not when the model is first needed, unless the user already trusted
    that file in this run (``trusted``): then the index opens with trust."""
    from lfs_gui.device import usable_device
    from lfs_gui.models.safe_load import check_trust
    from lfs_gui.session import Session

    from lfs_gui.index.store import index_dir
    from lfs_gui.session.opening import find_model_file

    dev = usable_device(device)
    session = yield from Session.iter_open_index(path, device=dev, **options)
    source = options.get("model_path") or find_model_file(session.model_info, index_dir(path))  # it may have moved
    if not options.get("trust_checkpoint") and not session.model_info.get("demo") and source and Path(source).is_file():
        if str(Path(source).resolve()) in trusted:
            return (yield from Session.iter_open_index(path, device=dev, **{**options, "trust_checkpoint": True}))
        check_trust(source)
    return session


def _warm_up() -> Generator[Any, None, None]:
    from lfs_gui.app.jobs import warm_up

    warm_up()
    yield None


class MainWindow(WindowActions, AttributeActions, QMainWindow):
    """The lfs-gui window. ``open_demo()`` / ``open_index(path)`` load a session in the background."""

    sessionReady = Signal(object)
    jobFailed = Signal(str)
    exported = Signal(str)

    def __init__(self, parent: QWidget | None = None, device: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("lfs-gui")
        self.settings = app_settings.make_settings()
        # Where models run: the CLI's --device for this run, else the Device menu's remembered choice.
        self.device_spec = device or remembered_device(self.settings)
        self._trusted_models: set[str] = set()  # model files the user agreed to unpickle with trust
        self._last_index_open: tuple[str, dict] | None = None
        self._last_build: tuple[Any, ...] | None = None
        self._asking_trust = False
        self.locateDialog: Any = None  # the open "where is the gallery / model?" question, if any
        self.state = ViewerState()
        self.thumbs = ThumbnailCache(size=128, parent=self)
        self.last_error: str | None = None
        self._error_box: QMessageBox | None = None

        self.gallery = GalleryPanel(self.state, self.thumbs)
        self.query = QueryPanel(self.state, self.thumbs)
        self.retrievals = RetrievalsPanel(self.state, self.thumbs)
        self.pair = PairView(self.state)
        self.curves = CurvesPanel()
        self.curveControls = CurveControls(self.state)
        self.curves.setCornerWidget(self.curveControls, Qt.Corner.TopRightCorner)
        self.controller = Controller(self.state, self.curves, self)
        self.controller.explainFailed.connect(lambda msg: self.show_error("Explanation failed", msg))
        for ch in (self.controller.explain_channel, self.controller.curve_channel, self.controller.continuity_channel):
            ch.failed.connect(lambda exc, _tb: self.ask_trust(exc, "session"))  # a lazily loaded model

        top = QWidget(objectName="topRow")
        row = QHBoxLayout(top)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.query)
        row.addWidget(self.retrievals, 1)
        # The pair, and the views that explain other pairs (failure triplet, two models), share one place
        # and the explanation controls under it.
        self.pairTabs = QTabWidget(objectName="pairTabs")
        self.pairTabs.setDocumentMode(True)
        self.pairTabs.addTab(self.pair, "Pair")
        middle = QWidget(objectName="middle")
        mid = QVBoxLayout(middle)
        mid.setContentsMargins(0, 0, 0, 0)
        mid.setSpacing(2)
        mid.addWidget(self.pairTabs, 1)
        mid.addWidget(self.pair.controls)
        self.rightSplit = QSplitter(Qt.Orientation.Vertical, objectName="rightSplit")
        for w in (top, middle, self.curves):
            self.rightSplit.addWidget(w)
        self.rightSplit.setSizes([260, 360, 240])
        self.leftTabs = QTabWidget(objectName="leftTabs")
        self.leftTabs.setDocumentMode(True)
        self.leftTabs.addTab(self.gallery, "Gallery")
        self.mainSplit = QSplitter(Qt.Orientation.Horizontal, objectName="mainSplit")
        self.mainSplit.addWidget(self.leftTabs)
        self.mainSplit.addWidget(self.rightSplit)
        self.mainSplit.setSizes([330, 1070])
        self.mainSplit.setStretchFactor(1, 1)
        self.setCentralWidget(self.mainSplit)
        layout.apply_minimums(self.leftTabs, middle, self.curves, self.mainSplit, self.rightSplit)

        # Long jobs: one channel per kind (a new request of a kind replaces the old one).
        self.session_channel = JobChannel("session", self)
        self.export_channel = JobChannel("export", self)
        self.embed_channel = JobChannel("embed", self)
        self.build_channel = JobChannel("build", self)
        self.warm_channel = JobChannel("warm", self)
        self._warmed = False
        self._job_labels: dict[JobChannel, str] = {}
        self._extra_channels: list[JobChannel] = []
        self._failure_titles = {"session": "Could not open the session", "export": "Export failed",
                                "embed": "Could not use the image", "build": "Indexing / decoder training failed"}
        for ch in self._channels():
            self._wire_channel(ch)
        self.session_channel.done.connect(self.set_session)
        self.export_channel.done.connect(lambda path: self._status_message(f"exported {path}", path))
        self.embed_channel.done.connect(self._on_embedded)
        self.build_channel.done.connect(self._on_built)
        self._pending_open: str | None = None
        self.model_path: Path | None = None  # File ▸ Open model: used by the next "Index a gallery"

        self._build_status_bar()
        self._build_menus()
        self.layout_ = layout.WindowLayout(self, self.mainSplit, self.rightSplit, self.pair, self.retrievals,
                                           self.query)
        self._build_panel_keys()
        self.query.imageRequested.connect(self.open_image_query)
        self.state.sessionChanged.connect(self._on_session)
        from lfs_gui.app.compare_actions import CompareActions
        from lfs_gui.app.failure_actions import FailureActions

        self.failures = FailureActions(self)  # the Failures tab and the failure triplet
        self.compare = CompareActions(self)  # a second index: Two models tabs
        self._restore_geometry()

    # -- building --------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setObjectName("statusBar")
        self.sessionLabel = QLabel("no session", objectName="statusSession")
        self.jobLabel = QLabel("", objectName="jobLabel")
        self.jobProgress = QProgressBar(objectName="jobProgress")
        self.jobProgress.setMaximumWidth(180)
        self.jobProgress.setTextVisible(True)
        self.jobCancel = QToolButton(objectName="jobCancel", text="Cancel")
        self.jobCancel.setToolTip("Cancel the running job")
        self.jobCancel.clicked.connect(self.cancel_jobs)
        sb.addWidget(self.sessionLabel, 1)
        sb.addPermanentWidget(self.jobLabel)
        sb.addPermanentWidget(self.jobProgress)
        sb.addPermanentWidget(self.jobCancel)
        self._update_job_bar()

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        self._add(file, "Open &index…", self.choose_index, QKeySequence.StandardKey.Open, "actionOpenIndex")
        self._add(file, "Open &demo", self.open_demo, None, "actionOpenDemo")
        self.recentIndexes = file.addMenu("Recent indexes")
        file.addSeparator()
        self._add(file, "Open image as &query…", lambda: self.open_image_query(None), "Ctrl+I", "actionOpenImage")
        self._add(file, "Compare two &images…", self.open_verify, "Ctrl+Shift+I", "actionCompareImages")
        self._add(file, "Compare with a second inde&x…", lambda: self.compare.choose_second_index(), None,
                  "actionCompareIndex")
        self.recentImages = file.addMenu("Recent query images")
        file.addSeparator()
        self._add(file, "Open &model for indexing…", self.choose_model, None, "actionOpenModel")
        self.recentModels = file.addMenu("Recent models")
        self._add(file, "Index a &gallery…", self.choose_gallery_to_index, "Ctrl+Shift+N", "actionIndexGallery")
        self._add(file, "&Train a decoder for this index…", self.choose_decoder_output, None, "actionTrainDecoder")
        self._add(file, "Open &decoder…", self.choose_decoder, None, "actionOpenDecoder")
        self._add(file, "E&valuate the explainers…", self.choose_evaluation_output, None, "actionEvaluate")
        self._add(file, "Train &attribute predictor (SANE)…", self.choose_attribute_output, None, "actionTrainAttributes")
        file.addSeparator()
        export = file.addMenu("&Export")
        export.setObjectName("menuExport")
        self._add(export, "&Pair figure…", lambda: self._choose_export("pair"), "Ctrl+E", "actionExportPair")
        self._add(export, "&Retrieval sheet…", lambda: self._choose_export("sheet"), None, "actionExportSheet")
        self._add(export, "&Curve data…", lambda: self._choose_export("curve"), None, "actionExportCurve")
        file.addSeparator()
        self._add(file, "&Quit", self.close, QKeySequence.StandardKey.Quit, "actionQuit")
        self.deviceMenu = DeviceMenu(self.settings, self, current=self.device_spec)
        self.deviceMenu.deviceChanged.connect(self.set_device)
        mb.addMenu(self.deviceMenu)
        self.recentIndexes.aboutToShow.connect(lambda: self._fill_recent(self.recentIndexes, "indexes", self.open_index))
        self.recentModels.aboutToShow.connect(lambda: self._fill_recent(self.recentModels, "models", self.use_model))
        self.recentImages.aboutToShow.connect(
            lambda: self._fill_recent(self.recentImages, "images", lambda p: self.open_image_query(Path(p)))
        )

    def _build_panel_keys(self) -> None:
        """Ctrl+← / Ctrl+→ move the keyboard focus between panels (gallery, similar, dissimilar, controls);
        the arrow keys alone move within a panel."""
        from PySide6.QtGui import QShortcut

        for key, step in (("Ctrl+Right", 1), ("Ctrl+Left", -1)):
            sc = QShortcut(QKeySequence(key), self)
            sc.activated.connect(lambda step=step: self.focus_panel(step))

    def panels(self) -> list[QWidget]:
        from PySide6.QtWidgets import QComboBox

        method = self.pair.controls.findChild(QComboBox, "methodCombo")
        return [self.gallery.view, self.retrievals.similar, self.retrievals.dissimilar, method]

    def focus_panel(self, step: int) -> QWidget:
        """Give the keyboard focus to the next (``step`` = 1) or previous (-1) panel."""
        panels = self.panels()
        current = next((i for i, w in enumerate(panels) if w.isAncestorOf(self.focusWidget()) or w is self.focusWidget()), -1)
        target = panels[(current + step) % len(panels)]
        target.setFocus(Qt.FocusReason.ShortcutFocusReason)
        return target

    def _add(self, menu: Any, text: str, slot: Callable, shortcut: Any, name: str) -> QAction:
        act = QAction(text, self)
        act.setObjectName(name)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(lambda _checked=False: slot())
        menu.addAction(act)
        return act

    def _fill_recent(self, menu: Any, kind: str, opener: Callable[[str], Any]) -> None:
        menu.clear()
        items = app_settings.recent(self.settings, kind)
        for p in items:
            menu.addAction(Path(p).name, lambda p=p: opener(p)).setToolTip(p)
        if not items:
            menu.addAction("(none)").setEnabled(False)

    # -- sessions ----------------------------------------------------------------------------------
    def open_demo(self) -> int:
        """Load the embedded demo in the background; returns the job's generation."""
        self.jobLabel.setText("opening the demo…")
        self._pending_open = None
        self._last_index_open = None
        return self.session_channel.start(lambda d=self.device_spec: _open_demo(d))

    def open_index(self, path: str | Path, **options: Any) -> int:
        """Open a saved index in the background (``options``: ``decoder``, ``trust_checkpoint``,
        ``gallery_root``, ``model_path``), on the window's device. A model that needs trust makes the
        window ask (:meth:`ask_trust`); a gallery or model that moved, where it is (:meth:`ask_locate`)."""
        options.setdefault("require_model", True)  # a moved model is asked for now, not at the first curve
        self.jobLabel.setText(f"opening {Path(path).name}…")
        self._pending_open = str(path)
        self._last_index_open = (str(path), dict(options))
        return self.session_channel.start(
            lambda p=str(path), o=dict(options), d=self.device_spec, t=frozenset(self._trusted_models):
            _open_index(p, device=d, trusted=t, **o))

    def set_device(self, spec: str) -> None:
        """Run models, decoders and curves on ``spec`` (``auto``, ``cpu``, ``cuda:N``, ``mps``) from now
        on: the Device menu's choice (remembered there). The open session's model and decoder move now;
        the running pair jobs are cancelled first and the pair is explained again."""
        self.device_spec = spec
        self.deviceMenu.set_current(spec)
        session = self.state.session
        if session is not None:
            from lfs_gui.device import usable_device

            self.controller.cancel_all()  # no job may use the model while it moves
            try:
                session.set_device(usable_device(spec))
            except Exception as exc:  # noqa: BLE001 - shown to the user
                self.show_error("Could not change the device", str(exc))
                return
            self.session_updated(session)
        self._status_message(f"device: {spec}")

    def ask_trust(self, exc: Any, where: str) -> bool:
        """If ``exc`` is a :class:`~lfs_gui.models.safe_load.TrustRequired`, ask the user (file, global,
        risk) and, on "Open anyway", repeat the request with trust: the index build (``where`` =
        ``"build"``) or the index (``"session"``). Returns whether ``exc`` was such a refusal."""
        mod = sys.modules.get("lfs_gui.models.safe_load")  # not imported: then it cannot be a refusal
        if mod is None or not isinstance(exc, mod.TrustRequired):
            return False
        if self._asking_trust:  # explain and curve may fail on the same model: one question
            return True
        from lfs_gui.app.widgets.trust_dialog import ask_to_trust

        self._asking_trust = True
        try:
            ok = ask_to_trust(self, exc)
        finally:
            self._asking_trust = False
        if self._error_box is not None:
            self._error_box.close()
        if not ok:
            self._status_message(f"{exc.path.name} was not opened: it needs trust")
            return True
        self._trusted_models.add(str(Path(exc.path).resolve()))
        if where == "build" and self._last_build is not None:
            gallery, out, model, options = self._last_build
            self.build_index(gallery, out, model, **options)
        elif self._last_index_open is not None:
            path, options = self._last_index_open
            self.open_index(path, **{**options, "trust_checkpoint": True})
        else:
            self._status_message(f"{exc.path.name} is trusted for this run; repeat the action")
        return True

    def ask_locate(self, exc: Any) -> bool:
        """If ``exc`` says the index being opened lost its gallery or model (they moved), ask where they
        are now (:mod:`lfs_gui.app.locate`, non-blocking) and open it again with the answer. Returns
        whether ``exc`` was such an error."""
        from lfs_gui.app.locate import locate_dialog, missing_what, reopen_options

        what = missing_what(exc)
        if what is None or self._last_index_open is None:
            return False
        path, options = self._last_index_open
        dlg = locate_dialog(self, exc, path)
        self.locateDialog = dlg

        def answered(result: int) -> None:
            files = dlg.selectedFiles() if result else []
            self.locateDialog = None
            dlg.deleteLater()
            again = reopen_options(what, files[0] if files else None, options)
            if again is None:
                self.show_error("Could not open the session", str(exc))
            else:
                self.open_index(path, **again)

        dlg.finished.connect(answered)
        dlg.open()
        return True

    def choose_index(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a saved index", "", "lfs-gui index (*.json *.faiss *.index);;All files (*)")
        if path:
            self.open_index(path)

    def set_session(self, session: Any) -> None:
        """Show ``session`` (also usable directly, e.g. by tests that opened one themselves)."""
        if self._pending_open:
            app_settings.add_recent(self.settings, "indexes", self._pending_open)
            self._pending_open = None
        self.thumbs.clear()
        self.state.set_session(session)
        self.sessionReady.emit(session)
        if not self._warmed:  # first imports for the long jobs, off the GUI thread (see app.jobs.warm_up)
            self._warmed = True
            self.warm_channel.start(_warm_up)

    def _on_session(self, session: Any) -> None:
        if session is None:
            self.sessionLabel.setText("no session")
            return
        try:
            d = session.describe()
        except Exception as exc:  # noqa: BLE001
            d = {"error": str(exc)}
        self.setWindowTitle(f"lfs-gui — {getattr(session, 'name', '')}")
        self.sessionLabel.setText(_describe(d))
        self.sessionLabel.setToolTip("\n".join(f"{k}: {v}" for k, v in d.items()))
        self.thumbs.prefetch([it.path for it in session.gallery.items[:64]])

    def open_verify(self) -> Any:
        """File ▸ Compare two images…: two files, no gallery (:mod:`lfs_gui.app.verify_dialog`)."""
        from lfs_gui.app.verify_dialog import show_verify_dialog

        return show_verify_dialog(self)

    def select_query(self, gallery_id: int) -> None:
        """Make gallery item ``gallery_id`` the query (as a click in the gallery would)."""
        session = self.state.session
        item = session.gallery.items[gallery_id]
        self.state.set_query(QueryRef(id=gallery_id, path=item.path, label=item.label, class_name=item.class_name))

    # -- jobs --------------------------------------------------------------------------------------
    def _on_job_progress(self, item: Any) -> None:
        if isinstance(item, Progress):
            self.jobProgress.setRange(0, max(item.total, 1))
            self.jobProgress.setValue(item.done)
            if item.message:
                self.jobLabel.setText(item.message)

    def _update_job_bar(self, *_: Any) -> None:
        busy = any(ch.is_busy() for ch in self._channels())
        self.jobProgress.setVisible(busy)
        self.jobCancel.setVisible(busy)
        if busy:
            self.jobProgress.setRange(0, 0)  # busy indicator until the first Progress arrives
        else:
            self.jobLabel.setText("")

    def _channels(self) -> tuple[JobChannel, ...]:
        return (self.session_channel, self.export_channel, self.embed_channel, self.build_channel,
                *self._extra_channels)

    def _wire_channel(self, ch: JobChannel) -> None:
        ch.item.connect(self._on_job_progress)
        ch.busyChanged.connect(self._update_job_bar)
        ch.failed.connect(lambda exc, tb, ch=ch: self._on_job_failed(ch, exc))

    def register_channel(self, channel: JobChannel, failure_title: str) -> JobChannel:
        """Show ``channel``'s progress in the status bar (Cancel stops it), its errors in a message box
        titled ``failure_title``, and stop it on shutdown (for the window's add-on panels)."""
        self._extra_channels.append(channel)
        self._failure_titles[channel.name] = failure_title
        self._wire_channel(channel)
        return channel

    def cancel_jobs(self) -> None:
        for ch in self._channels():
            ch.cancel()
        self._status_message("cancelled")

    def _on_job_failed(self, channel: JobChannel, exc: Any) -> None:
        if self.ask_trust(exc, channel.name):
            return
        if channel is self.session_channel and self.ask_locate(exc):
            return
        self.show_error(self._failure_titles.get(channel.name, "Job failed"), str(exc))

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking message box; the traceback is in the log."""
        self.last_error = f"{title}: {message}"
        self.jobFailed.emit(self.last_error)
        log.error("%s", self.last_error)
        if self._error_box is not None:
            self._error_box.close()
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorBox")
        box.setInformativeText("Details are in the log (run with -v for more).")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
        self._error_box = box

    def _status_message(self, text: str, path: Any = None) -> None:
        self.statusBar().showMessage(text, 8000)
        if path is not None:
            self.exported.emit(str(path))

    # -- geometry / shutdown -----------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        self.layout_.restore(self.settings, self.leftTabs)

    def shutdown(self) -> None:
        """Stop every worker (waits for them) and save the window geometry."""
        self.controller.shutdown()
        self.pair.match.shutdown()
        self.gallery.shutdown()
        self.failures.shutdown()
        self.compare.shutdown()
        for ch in (*self._channels(), self.warm_channel):
            ch.shutdown(60000)
        self.thumbs.close()
        self.layout_.save(self.settings, self.leftTabs)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        if self._error_box is not None:
            self._error_box.close()
        super().closeEvent(event)


def _describe(d: dict) -> str:
    """Status-bar line from ``Session.describe()``."""
    model = d.get("model") or d.get("model_name") or d.get("name") or "?"
    if isinstance(model, dict):
        model = model.get("name", "?")
    parts = [f"model: {model}"]
    for key, label in (("dim", "dim"), ("gallery_size", "gallery"), ("gallery", "gallery"), ("index_kind", "index"),
                       ("device", "device")):
        if key in d and not isinstance(d[key], dict):
            parts.append(f"{label}: {d[key]}")
    dec = d.get("decoder")
    if isinstance(dec, dict):
        size = dec.get("size")
        parts.append(f"decoder: {dec.get('kind', '?')}{'' if size is None else f' {size}×{size}'}")
    elif dec:
        parts.append(f"decoder: {dec}")
    else:
        parts.append("decoder: none")
    return " · ".join(parts)
