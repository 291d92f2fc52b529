"""Persistent user settings (QSettings): window geometry, splitters and recent items.

The organisation and application names are ``lfs-gui``/``lfs-gui``. The environment variable
``LFS_GUI_SETTINGS`` names an INI file to use instead of the user's config (the tests point it at a temp
folder so they never touch the user's settings).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings

ORG = "lfs-gui"
APP = "lfs-gui"
MAX_RECENT = 8


def init_app_names() -> None:
    """Set the organisation/application names (call once after creating the QApplication)."""
    QCoreApplication.setOrganizationName(ORG)
    QCoreApplication.setApplicationName(APP)


def make_settings() -> QSettings:
    """The settings store: ``$LFS_GUI_SETTINGS`` (an INI file) if set, else the user's INI config."""
    override = os.environ.get("LFS_GUI_SETTINGS")
    if override:
        Path(override).parent.mkdir(parents=True, exist_ok=True)
        return QSettings(override, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def recent(settings: QSettings, kind: str) -> list[str]:
    """Recent items of ``kind`` ("indexes", "images" or "models"), newest first, existing files only."""
    value = settings.value(f"recent/{kind}", [])
    if isinstance(value, str):
        value = [value] if value else []
    return [str(v) for v in (value or []) if v and Path(str(v)).exists()]


def add_recent(settings: QSettings, kind: str, path: str | os.PathLike) -> list[str]:
    """Put ``path`` first in the ``kind`` list (deduplicated, at most :data:`MAX_RECENT`)."""
    p = str(Path(path).resolve())
    items = [p] + [v for v in recent(settings, kind) if v != p]
    items = items[:MAX_RECENT]
    settings.setValue(f"recent/{kind}", items)
    settings.sync()
    return items
