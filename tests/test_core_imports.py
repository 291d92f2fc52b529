"""The core never imports Qt: importing it must leave PySide6 out of sys.modules."""

import subprocess
import sys

CORE = [
    "lfs_gui",
    "lfs_gui.explain",
    "lfs_gui.explain.explainlfs",
    "lfs_gui.models.base",
    "lfs_gui.models.decoder",
    "lfs_gui.models.train_decoder",
    "lfs_gui.figures.overlay",
    "lfs_gui.jobs",
    "lfs_gui.cli",
]
OPTIONAL_CORE = [
    "lfs_gui.session",
    "lfs_gui.explain.registry",
    "lfs_gui.metrics.selectivity",
    "lfs_gui.index.faiss_index",
    "lfs_gui.data.galleries",
    "lfs_gui.data.embed",
    "lfs_gui.models.loader",
    "lfs_gui.figures",
]


def test_core_does_not_import_qt():
    code = (
        "import importlib, importlib.util, sys\n"
        f"for m in {CORE!r}: importlib.import_module(m)\n"
        f"for m in {OPTIONAL_CORE!r}:\n"
        "    if importlib.util.find_spec(m) is not None: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_help_lists_only_registered_commands():
    res = subprocess.run([sys.executable, "-m", "lfs_gui", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage: lfs-gui" in res.stdout
    for command in ("app", "demo", "evaluate", "explain", "index", "query", "train-decoder"):
        assert f"    {command} " in res.stdout or f"    {command}\n" in res.stdout, command
