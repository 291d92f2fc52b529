"""The main window's user actions that start long jobs: index a gallery, train or open a decoder,
use an external image as the query, export figures. A mixin of :class:`MainWindow`, which provides
``state``, ``settings``, the job channels, ``jobLabel`` and ``show_error``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from lfs_gui.app import settings as app_settings
from lfs_gui.app.widgets.query import IMAGE_SUFFIXES
from lfs_gui.viewer_state import QueryRef

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ")"


class WindowActions:
    """File-menu actions backed by background jobs (see module docstring)."""

    # -- building indexes and decoders ------------------------------------------------------------
    def choose_gallery_to_index(self) -> None:
        gallery = QFileDialog.getExistingDirectory(self, "Gallery folder to index (CUB, Cars, or class sub-folders)")
        if not gallery:
            return
        default = Path(str(self.settings.value("build/dir", str(Path.home())))) / f"{Path(gallery).name}-index"
        out = QFileDialog.getExistingDirectory(self, "Folder for the new index (created if needed)", str(default.parent))
        if not out:
            return
        from lfs_gui.app.widgets.job_options import IndexOptions

        dialog = IndexOptions(self)
        if dialog.exec():
            self.settings.setValue("build/dir", out)
            self.build_index(gallery, Path(out) / default.name, **dialog.options())

    def build_index(self, gallery: str | Path, out: str | Path, model: str | Path | None = None,
                    **options: Any) -> int | None:
        """Index ``gallery`` into ``out`` in the background, then open it. The model is ``model``, else the
        one chosen with *Open model…*, else the demo model."""
        from lfs_gui.app.jobs import build_index_job

        model = model if model is not None else getattr(self, "model_path", None)
        if self._build_busy():
            return None
        self._last_build = (gallery, out, model, dict(options))  # repeated with trust if the user agrees
        options = {"device": self.device_spec, **options,
                   "trust_checkpoint": model is not None and str(Path(model).resolve()) in self._trusted_models}
        self.jobLabel.setText(f"indexing {Path(gallery).name}…")
        session = self.state.session
        demo = session.model if session is not None and session.model_info.get("demo") and session.model_loaded else None
        return self.build_channel.start(
            lambda g=str(gallery), o=str(out), m=model: build_index_job(g, o, m, demo_model=demo, **options)
        )

    def _build_busy(self) -> bool:
        """Index builds, decoder training and evaluations run one at a time: a second request must not
        silently cancel the first (a cancelled build leaves no index)."""
        if self.build_channel.is_busy():
            self.show_error("A long job is running",
                            f"{self.jobLabel.text() or 'A job'} is still running; wait for it or press Cancel first.")
            return True
        return False

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Embedding model for the next index",
            "", "Checkpoints (*.pth *.pth.tar *.tar *.pt *.ckpt);;All files (*)")
        if path:
            self.use_model(path)

    def use_model(self, path: str | Path) -> None:
        """Remember a model file for *Index a gallery* (loaded when the index is built, in the worker:
        loading a ResNet50 takes seconds). Supported formats: ``models/README.md``. A checkpoint that
        would need trust is found now (a scan of its pickle, nothing is unpickled) and the user is asked;
        declined, the model is not used."""
        from lfs_gui.models.safe_load import TrustRequired, check_trust

        try:
            check_trust(path)
        except TrustRequired as exc:
            from lfs_gui.app.widgets.trust_dialog import ask_to_trust

            if not ask_to_trust(self, exc):
                self._status_message(f"model {Path(path).name} not used: it needs trust")
                return
            self._trusted_models.add(str(Path(path).resolve()))
        self.model_path = Path(path)
        app_settings.add_recent(self.settings, "models", str(path))
        self._status_message(f"model {Path(path).name} will embed the next gallery you index")

    def choose_evaluation_output(self) -> None:
        if self.state.session is None:
            self.show_error("No session", "Open the demo or an index first.")
            return
        out = QFileDialog.getExistingDirectory(self, "Folder for the evaluation report (summary.md, curves, plots)")
        if not out:
            return
        from lfs_gui.app.widgets.job_options import EvaluationOptions

        dialog = EvaluationOptions(self)
        if dialog.exec():
            self.evaluate(out, **dialog.options())

    def evaluate(self, out: str | Path, pairs: int = 10, **options: Any) -> int | None:
        """Selectivity of every explainer on ``pairs`` similar + dissimilar pairs, with the window's ξ1.

        The same computation as ``lfs-gui evaluate`` with interactive defaults: 10 pairs of each type,
        noise and fill, rise-sim at 100 masks (the CLI: 20 pairs, noise, 500 masks).
        """
        from lfs_gui.app.jobs import evaluate_job

        session = self.state.session
        if self._build_busy():
            return None
        options.setdefault("xi1", self.state.explain.xi1)
        options.setdefault("target", self.state.explain.target)
        self.jobLabel.setText("evaluating the explainers…")
        return self.build_channel.start(lambda: evaluate_job(session, out, pairs, **options))

    def _on_built(self, result: Any) -> None:
        if type(result).__name__ == "TrainedAttributes":  # lfs_gui.attributes (torch) stays unimported here
            self._on_attributes_trained(result)
        elif isinstance(result, Path) and (result / "index.json").is_file():
            self.open_index(result)
        elif isinstance(result, Path) and (result / "summary.md").is_file():
            self._status_message(f"evaluation written to {result}", result)
        else:  # a decoder file
            self.use_decoder(result)

    def choose_decoder_output(self) -> None:
        if self.state.session is None:
            self.show_error("No session", "Open the demo or an index first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the new decoder", str(Path.home() / "decoder.pt"), "Decoder (*.pt)")
        if path:
            self.train_decoder(path)

    def train_decoder(self, out: str | Path, kind: str = "dense", epochs: int = 60) -> int | None:
        from lfs_gui.app.jobs import train_decoder_job

        session = self.state.session
        if self._build_busy():
            return None
        self.jobLabel.setText("training a decoder…")
        return self.build_channel.start(lambda: train_decoder_job(session, out, kind, epochs))

    def choose_decoder(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a decoder", "", "Decoder (*.pt);;All files (*)")
        if path:
            self.use_decoder(path)

    def use_decoder(self, path: str | Path) -> None:
        """Load a decoder file (validated against the session's dimension) and re-explain the pair."""
        from lfs_gui.models.decoder import load_decoder

        session = self.state.session
        if session is None:
            return
        try:
            session.set_decoder(load_decoder(path, expected_dim=session.dim), path)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.show_error("Could not use the decoder", str(exc))
            return
        self.session_updated(session)
        self._status_message(f"decoder {Path(path).name} in use")

    def session_updated(self, session: Any) -> None:
        """The open session changed in place (decoder, device): refresh the status and explain again."""
        self._on_session(session)
        self.controller._on_pair()

    # -- external query ----------------------------------------------------------------------------
    def open_image_query(self, path: Path | str | None) -> int | None:
        """Embed an image file (in the background) and make it the query."""
        if self.state.session is None:
            self.show_error("No session", "Open the demo or an index first (File ▸ Open index…).")
            return None
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Open an image as the query", "", IMAGE_FILTER)
            if not chosen:
                return None
            path = chosen
        path = Path(path)
        self.jobLabel.setText(f"embedding {path.name}…")
        session = self.state.session
        return self.embed_channel.start(lambda: _embed(session, path))

    def _on_embedded(self, result: tuple[Path, Any]) -> None:
        path, _emb = result  # the session caches the embedding per path
        app_settings.add_recent(self.settings, "images", path)
        self.state.set_query(QueryRef(id=None, path=path))

    # -- export ------------------------------------------------------------------------------------
    def _choose_export(self, what: str) -> None:
        filters = {"pair": "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)", "sheet": "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)",
                   "curve": "CSV (*.csv);;JSON (*.json)"}[what]
        default = {"pair": "pair.png", "sheet": "retrievals.png", "curve": "curve.csv"}[what]
        last = self.settings.value("export/dir", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(self, "Export", str(Path(str(last)) / default), filters)
        if not path:
            return
        self.settings.setValue("export/dir", str(Path(path).parent))
        options: dict[str, Any] = {}
        if what in ("pair", "sheet"):
            from lfs_gui.app.widgets.export_dialog import FigureExportOptions

            dialog = FigureExportOptions(self, self.settings, {"pair": "pair figure", "sheet": "retrieval sheet"}[what])
            if not dialog.exec():
                return
            options = dialog.options()
        self.export(what, path, **options)

    def export(self, what: str, path: str | Path, **options: Any) -> int | None:
        """Write the current pair figure / retrieval sheet / curve data to ``path`` in the background;
        ``options`` (``size``, ``dpi``) are the export dialog's (see :mod:`lfs_gui.app.export`)."""
        from lfs_gui.app.export import export_job

        try:
            factory = export_job(what, Path(path), self.state, self.controller.last_curves, match=self.pair.match.match,
                                 **options)
        except ValueError as exc:
            self.show_error("Nothing to export", str(exc))
            return None
        self.jobLabel.setText(f"exporting {Path(path).name}…")
        return self.export_channel.start(factory)


def _embed(session: Any, path: Path) -> Generator[Any, None, tuple[Path, Any]]:
    emb = yield from session.iter_embed_image(path)  # cancel points: decode, model load, forward
    return path, emb
