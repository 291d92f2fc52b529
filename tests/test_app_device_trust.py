"""The app's device menu (remembered in QSettings) and the trust dialog for refused checkpoints."""

from __future__ import annotations

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from _model_fixtures import NotAllowlisted, write_dml_checkpoint
from lfs_gui.app.widgets.device_menu import SETTINGS_KEY, DeviceMenu, saved_device
from lfs_gui.app.widgets.trust_dialog import ask_to_trust, trust_dialog
from lfs_gui.device import available_devices
from lfs_gui.models.loader import load_model
from lfs_gui.models.safe_load import TrustRequired


def _settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def test_device_menu_lists_auto_and_every_device_and_remembers_the_choice(qtbot, tmp_path):
    settings = _settings(tmp_path)
    menu = DeviceMenu(settings)
    qtbot.addWidget(menu)
    assert list(menu.actions_by_spec) == ["auto", *available_devices()]
    assert menu.current() == "auto" and menu.actions_by_spec["auto"].text().startswith("Automatic (")
    with qtbot.waitSignal(menu.deviceChanged) as sig:
        menu.actions_by_spec["cpu"].trigger()
    assert sig.args == ["cpu"] and menu.current() == "cpu"
    assert _settings(tmp_path).value(SETTINGS_KEY) == "cpu"
    again = DeviceMenu(_settings(tmp_path))
    qtbot.addWidget(again)
    assert again.current() == "cpu"


def test_a_remembered_device_this_machine_lacks_falls_back_to_auto(qtbot, tmp_path):
    settings = _settings(tmp_path)
    settings.setValue(SETTINGS_KEY, "cuda:97")
    assert saved_device(settings) == "auto"
    menu = DeviceMenu(settings)
    qtbot.addWidget(menu)
    assert menu.current() == "auto"


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
