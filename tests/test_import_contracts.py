"""The import contracts in pyproject.toml ([tool.importlinter]) hold: no Qt and no app in the core, no
import cycles (lazy and TYPE_CHECKING imports count) anywhere in lfs_gui."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.is_file() else [sys.executable, "-m", "importlinter.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([*cmd, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "The core imports neither Qt nor the app KEPT" in out
    assert "No import cycles between sibling modules or packages, at any depth KEPT" in out
    assert "0 broken" in out


def test_the_cycle_contract_catches_a_cycle(tmp_path):
    """The acyclic contract is not vacuous: a package with a lazy-import cycle breaks it."""
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyc import b\n")
    (pkg / "b.py").write_text("def f():\n    from cyc import a  # lazy\n    return a\n")
    (tmp_path / "setup.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["cyc"]\n\n[[tool.importlinter.contracts]]\n'
        'name = "acyclic"\ntype = "acyclic_siblings"\nancestors = ["cyc"]\n'
    )
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.is_file() else [sys.executable, "-m", "importlinter.cli"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    res = subprocess.run([*cmd, "--config", str(tmp_path / "setup.toml"), "--no-cache"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "BROKEN" in res.stdout, res.stdout + res.stderr
