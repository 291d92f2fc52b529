"""*File ▸ Train attribute predictor*: SANE's attribute predictor for the open index, as a background job.

A mixin of :class:`~lfs_gui.app.main_window.MainWindow` (which provides ``state``, ``build_channel``,
``jobLabel``, ``pair``, ``show_error`` and ``_build_busy``). The job is
:func:`lfs_gui.attributes.index_attributes.train_attributes_job` (the same as ``lfs-gui train-attributes
INDEX``): progress in the status bar, Cancel stops it without writing; when it is done the pair view
uses the new predictor at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog


class AttributeActions:
    """Training SANE's attribute predictor from the window (see the module docstring)."""

    def choose_attribute_output(self) -> None:
        session = self.state.session
        if session is None:
            self.show_error("No session", "Open the demo or an index first.")
            return
        out: str | Path | None = None
        if getattr(session, "folder", None) is None:
            out, _ = QFileDialog.getSaveFileName(self, "Save the attribute predictor", str(Path.home() / "attributes.pt"),
                                                 "Attribute predictor (*.pt)")
            if not out:
                return
        self.train_attributes(out)

    def train_attributes(self, out: str | Path | None = None, **settings: Any) -> int | None:
        """Train on the session's gallery (attribute files found next to it) and save next to the index."""
        from lfs_gui.attributes.index_attributes import train_attributes_job

        session = self.state.session
        if session is None or self._build_busy():
            return None
        self.jobLabel.setText("training the attribute predictor…")
        return self.build_channel.start(lambda: train_attributes_job(session, out, **settings))

    def _on_attributes_trained(self, result: Any) -> None:
        m = result.predictor.meta.get("metrics", {})
        self.pair.match.use_predictor(result.predictor)
        self._status_message(f"attribute predictor saved to {result.path} (held-out mAP {m.get('map_heldout', float('nan')):.3f})",
                             result.path)
