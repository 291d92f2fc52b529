"""Where the project's data folders (``resources/``, ``models/``, ``indexes/``) live.

In a source checkout (editable install) they sit next to the ``lfs_gui`` package. A wheel copies
``resources/``, ``models/`` and ``indexes/demo/`` into ``lfs_gui/_data/``; ``LFS_GUI_DATA`` overrides
both. Embedding caches go to a per-user directory (``LFS_GUI_CACHE``); indexes go where the user says
(``lfs-gui index --out``, default ``./indexes/<gallery>``); nothing is ever written into a gallery's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_root() -> Path:
    """Folder holding ``resources/``, ``models/`` and ``indexes/`` (env ``LFS_GUI_DATA`` wins)."""
    env = os.environ.get("LFS_GUI_DATA")
    if env:
        return Path(env)
    checkout = _PKG.parent
    if (checkout / "resources").is_dir() and (checkout / "models").is_dir():
        return checkout
    return _PKG / "_data"


def resources_dir() -> Path:
    return data_root() / "resources"


def models_dir() -> Path:
    return data_root() / "models"


def indexes_dir() -> Path:
    return data_root() / "indexes"


def demo_index_dir() -> Path:
    """The shipped demo index folder (``indexes/demo``)."""
    return indexes_dir() / "demo"


def demo_gallery_dir() -> Path:
    return resources_dir() / "demo"


def user_cache_dir() -> Path:
    """Per-user cache (embeddings, thumbnails); ``LFS_GUI_CACHE`` overrides it."""
    env = os.environ.get("LFS_GUI_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lfs-gui"
