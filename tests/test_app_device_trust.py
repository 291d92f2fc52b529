"""The app's device menu (remembered in QSettings) and the trust dialog for refused checkpoints."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from _model_fixtures import NotAllowlisted, write_dml_checkpoint
from lfs_gui.app.widgets.device_menu import SETTINGS_KEY, DeviceMenu, saved_device
from lfs_gui.app.widgets.trust_dialog import ask_to_trust, trust_dialog
from lfs_gui.device import available_devices, resolve_device
from lfs_gui.models.loader import load_model
from lfs_gui.models.safe_load import TrustRequired


def _settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_device_menu_lists_auto_and_every_device_and_remembers_the_choice(qtbot, tmp_path):
    settings = _settings(tmp_path)
    menu = DeviceMenu(settings)
    qtbot.addWidget(menu)
    assert menu.actions_by_spec == {}  # filled when first shown: torch stays off the first paint
    menu.populate()
    assert list(menu.actions_by_spec) == ["auto", *available_devices()]
    assert menu.current() == "auto" and menu.actions_by_spec["auto"].text().startswith("Automatic (")
    with qtbot.waitSignal(menu.deviceChanged) as sig:
        menu.actions_by_spec["cpu"].trigger()
    assert sig.args == ["cpu"] and menu.current() == "cpu"
    assert _settings(tmp_path).value(SETTINGS_KEY) == "cpu"
    again = DeviceMenu(_settings(tmp_path))
    qtbot.addWidget(again)
    again.populate()
    assert again.current() == "cpu" and again.actions_by_spec["cpu"].isChecked()


def test_a_remembered_device_this_machine_lacks_falls_back_to_auto(qtbot, tmp_path):
    settings = _settings(tmp_path)
    settings.setValue(SETTINGS_KEY, "cuda:97")
    assert saved_device(settings) == "auto"
    menu = DeviceMenu(settings)
    qtbot.addWidget(menu)
    menu.populate()
    assert menu.current() == "auto" and menu.actions_by_spec["auto"].isChecked()


def _refused(tmp_path) -> TrustRequired:
    path = tmp_path / "checkpoint.pth.tar"
    write_dml_checkpoint(path, "resnet18", 8, progress=NotAllowlisted("a training script's own class"))
    try:
        load_model(path)
    except TrustRequired as exc:
        return exc
    raise AssertionError("the checkpoint was not refused")


def test_trust_dialog_names_file_global_and_risk(qtbot, tmp_path):
    err = _refused(tmp_path)
    box = trust_dialog(None, err)
    qtbot.addWidget(box)
    text = box.text() + box.informativeText()
    assert err.path.name in text and str(err.path) in text and err.global_name in text
    assert err.global_name.endswith("NotAllowlisted") and "runs Python code" in text
    assert box.defaultButton() is not box.openAnyway  # Cancel is the default: nothing runs by accident


def _answer(button: str) -> None:
    def click() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        target = box.openAnyway if button == "open" else box.button(QMessageBox.StandardButton.Cancel)
        target.click()

    QTimer.singleShot(50, click)


def test_ask_to_trust_returns_the_users_answer_and_trust_loads(qtbot, tmp_path):
    err = _refused(tmp_path)
    _answer("cancel")
    assert ask_to_trust(None, err) is False
    _answer("open")
    assert ask_to_trust(None, err) is True
    model = load_model(err.path, trust_checkpoint=True)  # what the app does after "Open anyway"
    assert model.dim == 8


# --------------------------------------------------------------------------------------------------
# The window: device choice applied to the session, trust asked when an index or a model needs it
# --------------------------------------------------------------------------------------------------
def _tiny_model_needing_trust(path):
    """A torchvision head file (tiny input) whose pickle also holds an object outside the allow-list."""
    import torch

    from lfs_gui.models.base import Preprocessing
    from lfs_gui.models.torchvision_models import build_torchvision_embedder, save_torchvision_head

    torch.manual_seed(0)
    save_torchvision_head(path, build_torchvision_embedder("resnet18", 8, Preprocessing(input_size=32, resize=36)))
    obj = torch.load(path, weights_only=True)
    obj["note"] = NotAllowlisted("written by a training script")
    torch.save(obj, path)
    return path


def _gallery(root):
    from PIL import Image

    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), (60 + 90 * c, 20 * i, 90)).save(root / f"c{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trust_index(tmp_path_factory):
    """(model file that needs trust, gallery, index built with it through the CLI)."""
    from lfs_gui.cli import main

    base = tmp_path_factory.mktemp("trust")
    model = _tiny_model_needing_trust(base / "tiny.pt")
    gallery = _gallery(base / "gal")
    assert main(["index", str(gallery), "--model", str(model), "--out", str(base / "idx"), "--split", "all",
                 "--decoder-epochs", "2", "--trust-checkpoint", "--device", "cpu"]) == 0
    return model, gallery, base / "idx"


@pytest.fixture
def win(qtbot):
    from lfs_gui.app.main_window import MainWindow

    w = MainWindow(device="cpu")
    qtbot.addWidget(w, before_close_func=lambda x: x.shutdown())
    w.show()
    qtbot.waitExposed(w)
    return w


class _Answer:
    """Clicks the trust dialog's button when the dialog shows up (it is modal, and may come from a worker)."""

    def __init__(self, button: str) -> None:
        self.button, self.seen = button, []
        self.timer = QTimer(interval=30)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "trustCheckpointDialog":
            self.timer.stop()
            self.seen.append(box.informativeText())
            (box.openAnyway if self.button == "open" else box.button(QMessageBox.StandardButton.Cancel)).click()


def test_opening_an_index_whose_model_needs_trust_asks_first(qtbot, win, trust_index):
    model, _gallery_root, idx = trust_index
    answer = _Answer("cancel")
    win.open_index(idx)
    qtbot.waitUntil(lambda: bool(answer.seen), timeout=60000)
    assert str(model) in answer.seen[0] and "NotAllowlisted" in answer.seen[0]
    qtbot.waitUntil(lambda: not win.session_channel.is_busy(), timeout=10000)
    assert win.state.session is None and win.last_error is None  # declined: nothing opened, no error box

    answer = _Answer("open")
    with qtbot.waitSignal(win.sessionReady, timeout=60000):
        win.open_index(idx)
    assert answer.seen and win.state.session is not None
    session = win.state.session
    assert session.model.dim == 8 and session.device == torch.device("cpu")  # loaded with trust, on the device


def test_device_menu_moves_the_open_session(qtbot, win, trust_index):
    _model, _gallery_root, idx = trust_index
    with qtbot.waitSignal(win.sessionReady, timeout=60000):
        win.open_index(idx, trust_checkpoint=True)
    session = win.state.session
    assert session.device == torch.device("cpu") and session.model.device == torch.device("cpu")
    assert "device: cpu" in win.sessionLabel.text()
    win.deviceMenu.populate()
    win.deviceMenu.actions_by_spec["auto"].trigger()
    assert win.device_spec == "auto" and win.settings.value("device/choice") == "auto"
    auto = resolve_device("auto")
    assert session.device == auto and session.model.device == auto
    assert next(session.decoder.parameters()).device == auto


def test_a_model_for_indexing_that_needs_trust_is_asked_for_then_used(qtbot, win, trust_index, tmp_path):
    model, gallery_root, _idx = trust_index
    answer = _Answer("cancel")
    win.use_model(model)
    assert answer.seen and win.model_path is None  # declined: not used
    answer = _Answer("open")
    win.use_model(model)
    assert answer.seen and win.model_path == model
    with qtbot.waitSignal(win.sessionReady, timeout=120000):
        win.build_index(gallery_root, tmp_path / "idx2", split="all")
    assert win.state.session.model_info["source"] == str(model)
