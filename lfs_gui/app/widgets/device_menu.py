"""The app's device choice: a menu of ``auto`` and this machine's devices, remembered in QSettings.

The choice is a device spec (``auto``, ``cpu``, ``cuda:0``, ``mps``) that
:func:`lfs_gui.device.resolve_device` turns into a ``torch.device`` wherever a session or a job loads
its model. A remembered device that this machine no longer has (the GPU was removed, the settings
came from another computer) falls back to ``auto`` with a warning, never an error at launch.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from lfs_gui.device import DeviceError, available_devices, describe_device, resolve_device

log = logging.getLogger(__name__)

SETTINGS_KEY = "device/choice"


def saved_device(settings: QSettings) -> str:
    """The remembered device spec if this machine has it, else ``auto``."""
    spec = str(settings.value(SETTINGS_KEY, "auto") or "auto")
    try:
        resolve_device(spec)
    except DeviceError as exc:
        log.warning("remembered device not usable here (%s); using auto", exc)
        return "auto"
    return spec


def save_device(settings: QSettings, spec: str) -> None:
    settings.setValue(SETTINGS_KEY, spec)
    settings.sync()


class DeviceMenu(QMenu):
    """``Device`` menu: one checkable action per choice; ``deviceChanged(spec)`` after the user picks one."""

    deviceChanged = Signal(str)

    def __init__(self, settings: QSettings, parent: QWidget | None = None, current: str | None = None) -> None:
        super().__init__("&Device", parent)
        self.setObjectName("deviceMenu")
        self.setToolTipsVisible(True)
        self._settings = settings
        self._group = QActionGroup(self)
        self._group.setExclusive(True)
        self.actions_by_spec: dict[str, QAction] = {}
        auto = resolve_device("auto")
        for spec in ["auto", *available_devices()]:
            label = f"Automatic ({describe_device(auto)})" if spec == "auto" else describe_device(spec)
            act = QAction(label, self, checkable=True)
            act.setObjectName(f"device_{spec.replace(':', '_')}")
            act.setData(spec)
            act.setToolTip("where models, decoders and curves run; CPU results are the reference")
            self._group.addAction(act)
            self.addAction(act)
            self.actions_by_spec[spec] = act
        self._group.triggered.connect(self._picked)
        self.set_current(current if current is not None else saved_device(settings))

    def current(self) -> str:
        act = self._group.checkedAction()
        return str(act.data()) if act is not None else "auto"

    def set_current(self, spec: str) -> None:
        """Check ``spec`` without emitting (``auto`` if this machine lacks it)."""
        act = self.actions_by_spec.get(spec) or self.actions_by_spec["auto"]
        act.setChecked(True)

    def _picked(self, act: QAction) -> None:
        spec = str(act.data())
        save_device(self._settings, spec)
        self.deviceChanged.emit(spec)
