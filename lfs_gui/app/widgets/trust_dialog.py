"""The dialog that asks before a checkpoint is unpickled with trust (never silently, never a dead end).

The safe loader refuses a pickle that names a global outside its allow-list and raises
:class:`lfs_gui.models.safe_load.TrustRequired` (file, global). The app catches it where a model is
opened (for indexing, or behind an index), shows this dialog — the file, the global(s) that need
trust, what trusting means — and, if the user chooses "Open anyway", repeats the same request with
``trust_checkpoint=True`` (what the CLI's ``--trust-checkpoint`` does).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMessageBox, QWidget

if TYPE_CHECKING:  # the window imports this module before torch is loaded
    from lfs_gui.models.safe_load import TrustRequired

RISK = ("Opening it runs Python code stored in the file, with your user's rights: it can read, change or "
        "delete your files or send them elsewhere. Open it only if you trust where the file came from "
        "(e.g. you trained it yourself).")


def trust_dialog(parent: QWidget | None, error: TrustRequired) -> QMessageBox:
    """The (not yet shown) question for ``error``; its "Open anyway" button is ``box.openAnyway``."""
    names = ", ".join(error.global_names) or error.global_name
    box = QMessageBox(parent)
    box.setObjectName("trustCheckpointDialog")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Open an untrusted checkpoint?")
    box.setText(f"<b>{escape(error.path.name)}</b> cannot be opened safely.")
    box.setInformativeText(
        f"<p>File: {escape(str(error.path))}</p>"
        f"<p>Its pickle names <code>{escape(names)}</code>, which the safe loader (weights only) does not "
        f"allow.</p><p>{escape(RISK)}</p>"
    )
    box.setDetailedText(str(error))
    box.openAnyway = box.addButton("Open anyway", QMessageBox.ButtonRole.AcceptRole)  # type: ignore[attr-defined]
    box.openAnyway.setObjectName("trustOpenAnyway")  # type: ignore[attr-defined]
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    return box


def ask_to_trust(parent: QWidget | None, error: TrustRequired) -> bool:
    """Show :func:`trust_dialog` modally; ``True`` when the user chose "Open anyway"."""
    box = trust_dialog(parent, error)
    try:
        box.exec()
        return box.clickedButton() is box.openAnyway  # type: ignore[attr-defined]
    finally:
        box.deleteLater()
