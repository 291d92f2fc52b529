"""Ask the user where a moved gallery or model is, instead of failing to open an index.

Opening an index raises :class:`~lfs_gui.index.sidecar.GalleryNotFoundError` when its images are
neither where the sidecar records them nor next to the index, and (the app opens with
``require_model=True``) :class:`~lfs_gui.session.opening.ModelNotFoundError` when the model file that
built it is gone. The window then shows :func:`locate_dialog` (a folder or a file chooser naming what
is missing and where it was looked for) and opens the index again with ``gallery_root=`` or
``model_path=`` (what the CLI's ``--gallery-root`` / ``--model`` do). A model of another identity is
still refused by the reopening; cancelling the model question opens the index without its model
(retrieval and decoder-only explanations work; curves say the model is missing).

The dialogs are Qt's own widget (not the platform's), window-modal and non-blocking, so tests drive
them like a user: select the path and accept.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QWidget

MODEL_FILTER = "Model files (*.pt *.pth *.tar *.ckpt *.bin);;All files (*)"


def missing_what(exc: BaseException) -> str | None:
    """``"gallery"`` or ``"model"`` when ``exc`` says one of them moved, else None (nothing imported)."""
    sidecar = sys.modules.get("lfs_gui.index.sidecar")
    opening = sys.modules.get("lfs_gui.session.opening")
    if sidecar is not None and isinstance(exc, sidecar.GalleryNotFoundError):
        return "gallery"
    if opening is not None and isinstance(exc, opening.ModelNotFoundError):
        return "model"
    return None


def _start_dir(candidates: list[Path]) -> str:
    for c in candidates:
        for p in (c, *c.parents):
            if p.is_dir():
                return str(p)
    return str(Path.home())


def locate_dialog(parent: QWidget | None, exc: Any, index: str | Path) -> QFileDialog:
    """The (not yet shown) chooser for the gallery folder or the model file ``exc`` says is missing."""
    what = missing_what(exc)
    tried = "\n".join(f"  {c}" for c in getattr(exc, "candidates", []))
    dlg = QFileDialog(parent)
    dlg.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dlg.setDirectory(_start_dir(list(getattr(exc, "candidates", []))))
    if what == "gallery":
        dlg.setObjectName("locateGalleryDialog")
        dlg.setWindowTitle(f"Where is the gallery of {Path(index).name}?")
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dlg.setLabelText(QFileDialog.DialogLabel.Accept, "Use this gallery")
    else:
        dlg.setObjectName("locateModelDialog")
        dlg.setWindowTitle(f"Where is the model that built {Path(index).name}?")
        dlg.setFileMode(QFileDialog.FileMode.ExistingFile)
        dlg.setNameFilter(MODEL_FILTER)
        dlg.setLabelText(QFileDialog.DialogLabel.Accept, "Use this model")
        dlg.setLabelText(QFileDialog.DialogLabel.Reject, "Open without it")
    dlg.setToolTip(f"{exc}\n\nLooked at:\n{tried}" if tried else str(exc))
    return dlg


def reopen_options(what: str, chosen: str | None, options: dict) -> dict | None:
    """The options to open the index again with after the user chose ``chosen`` (None: cancelled):
    the gallery or model path, or, for a cancelled model question, no model requirement. None: give up."""
    if chosen:
        return {**options, ("gallery_root" if what == "gallery" else "model_path"): chosen}
    if what == "model":
        return {**options, "require_model": False}
    return None
