"""The window never dead-ends on a moved index: it asks where the gallery or the model is now (a real
QFileDialog, driven as a user would: pick the path, accept) and opens the index with the answer; a
model of another identity is still refused; declining the model question opens the index without it."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QLineEdit

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import write_torchscript  # noqa: E402
from test_portable import make_site  # noqa: E402


@pytest.fixture()
def win(qtbot):
    from lfs_gui.app.main_window import MainWindow

    w = MainWindow(device="cpu")
    qtbot.addWidget(w, before_close_func=lambda x: x.shutdown())
    return w


def _answer(qtbot, win, name: str, path: Path | None) -> None:
    """Wait for the window's locate question ``name`` and answer it with ``path`` (None: cancel)."""
    qtbot.waitUntil(lambda: isinstance(win.locateDialog, QFileDialog) and win.locateDialog.isVisible(), timeout=60000)
    dlg = win.locateDialog
    assert dlg.objectName() == name
    if path is None:
        dlg.reject()
        return
    dlg.findChild(QLineEdit, "fileNameEdit").setText(str(path))  # typed into the dialog's name field
    dlg.accept()


def test_moved_gallery_is_asked_for(qtbot, win, tmp_path):
    idx = make_site(tmp_path / "site")
    shutil.move(tmp_path / "site" / "gallery", tmp_path / "moved-gallery")
    win.open_index(idx)
    with qtbot.waitSignal(win.sessionReady, timeout=60000) as ready:
        _answer(qtbot, win, "locateGalleryDialog", tmp_path / "moved-gallery")
    session = ready.args[0]
    assert Path(session.gallery.root) == (tmp_path / "moved-gallery").resolve()
    assert all(it.path.is_file() for it in session.gallery.items)


def test_moved_model_is_asked_for_and_checked(qtbot, win, tmp_path):
    idx = make_site(tmp_path / "site")
    shutil.move(tmp_path / "site" / "models", tmp_path / "kept")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(tmp_path / "kept" / "other.pt", dim=16, split=True, seed=1)
    # another model: refused with both identities named, never opened
    win.open_index(idx)
    with qtbot.waitSignal(win.jobFailed, timeout=60000) as failed:
        _answer(qtbot, win, "locateModelDialog", tmp_path / "kept" / "other.pt")
    assert "embedded by model" in failed.args[0] and "other.pt" in failed.args[0]
    # the right one: opened with it (loaded and checked while opening)
    win.open_index(idx)
    with qtbot.waitSignal(win.sessionReady, timeout=60000) as ready:
        _answer(qtbot, win, "locateModelDialog", tmp_path / "kept" / "tiny.pt")
    model = ready.args[0].model
    assert Path(model.source) == (tmp_path / "kept" / "tiny.pt").resolve()
    assert model.identity() == ready.args[0].index.meta.model_identity
    # declined: the index opens without its model (retrieval works; the model is asked for again later)
    win.open_index(idx)
    with qtbot.waitSignal(win.sessionReady, timeout=60000) as ready:
        _answer(qtbot, win, "locateModelDialog", None)
    session = ready.args[0]
    assert not session.model_loaded and session.retrieve(0, k=2).similar
    with pytest.raises(ValueError, match="not at"):
        session.model  # noqa: B018 - needed later (a curve): a clear error, not a crash
