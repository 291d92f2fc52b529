"""The core never imports Qt: importing every module outside ``lfs_gui.app`` leaves PySide6 out."""

import os
import subprocess
import sys


def test_core_does_not_import_qt():
    code = (
        "import importlib, pkgutil, sys\n"
        "import lfs_gui\n"
        "names = [m.name for m in pkgutil.walk_packages(lfs_gui.__path__, 'lfs_gui.')\n"
        "         if not m.name.startswith('lfs_gui.app') and m.name != 'lfs_gui.__main__']\n"
        "for name in names: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
        "assert not bad, bad\n"
        "assert len(names) > 40, names\n"
        "print('ok', len(names))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok")


def test_help_lists_only_registered_commands():
    res = subprocess.run([sys.executable, "-m", "lfs_gui", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage: lfs-gui" in res.stdout
    for command in ("app", "compare", "continuity", "demo", "evaluate", "explain", "failures", "index", "query",
                    "train-decoder"):
        assert f"    {command} " in res.stdout or f"    {command}\n" in res.stdout, command


def test_window_modules_keep_torch_off_the_first_paint():
    """The window paints before torch/faiss load (they load with the session, on a worker thread)."""
    code = (
        "import sys\n"
        "import lfs_gui.app.main_window, lfs_gui.cli.cmd_app\n"
        "heavy = sorted(m for m in ('torch', 'faiss', 'torchvision') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert res.returncode == 0, res.stderr
