"""The app's device choice: a menu of ``auto`` and this machine's devices, remembered in QSettings.

The choice is a device spec (``auto``, ``cpu``, ``cuda:0``, ``mps``) that
:func:`lfs_gui.device.resolve_device` turns into a ``torch.device`` wherever a session or a job loads
its model. A remembered device that this machine no longer has (the GPU was removed, the settings
came from another computer) falls back to ``auto`` with a warning, never an error at launch
(:func:`lfs_gui.device.usable_device`, called on the workers that open sessions and build indexes).

Listing the devices needs torch, which must not load before the window's first paint: the menu is
filled when it is first shown (or by :meth:`DeviceMenu.populate`), and this module imports
:mod:`lfs_gui.device` only inside functions.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

log = logging.getLogger(__name__)

SETTINGS_KEY = "device/choice"


def remembered_device(settings: QSettings) -> str:
    """The remembered device spec, unchecked (``auto`` if none); torch-free."""
    return str(settings.value(SETTINGS_KEY, "auto") or "auto").strip().lower()


def saved_device(settings: QSettings) -> str:
    """The remembered device spec if this machine has it, else ``auto`` (imports torch)."""
    from lfs_gui.device import usable_device

    return usable_device(remembered_device(settings))


def save_device(settings: QSettings, spec: str) -> None:
    settings.setValue(SETTINGS_KEY, spec)
    settings.sync()


class DeviceMenu(QMenu):
    """``Device`` menu: one checkable action per choice; ``deviceChanged(spec)`` after the user picks one
    (the choice is saved first)."""

    deviceChanged = Signal(str)

    def __init__(self, settings: QSettings, parent: QWidget | None = None, current: str | None = None) -> None:
        super().__init__("&Device", parent)
        self.setObjectName("deviceMenu")
        self.setToolTipsVisible(True)
        self._settings = settings
        self._current = current if current is not None else remembered_device(settings)
        self._group = QActionGroup(self)
        self._group.setExclusive(True)
        self._group.triggered.connect(self._picked)
        self.actions_by_spec: dict[str, QAction] = {}
        self.aboutToShow.connect(self.populate)

    def populate(self) -> None:
        """List ``auto`` and every device of this machine (once; imports torch)."""
        if self.actions_by_spec:
            return
        from lfs_gui.device import available_devices, describe_device, resolve_device

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
        self.set_current(self._current)

    def current(self) -> str:
        return self._current

    def set_current(self, spec: str) -> None:
        """Show ``spec`` as the choice without emitting (``auto`` if this machine lacks it)."""
        self._current = spec
        if self.actions_by_spec:
            if spec not in self.actions_by_spec:
                self._current = "auto"
            self.actions_by_spec[self._current].setChecked(True)

    def _picked(self, act: QAction) -> None:
        spec = str(act.data())
        self._current = spec
        save_device(self._settings, spec)
        self.deviceChanged.emit(spec)
