"""``lfs-gui index`` survives interruptions: a subprocess killed with SIGKILL (``kill -9``) before its
first shard, mid-way, and during the final save resumes when the same command runs again, and the
result equals an uninterrupted build bit for bit. Adding images embeds only the new ones, another split
reuses the cache, ``--json`` counts what was embedded and reused, and the decoder split defaults to
``train`` for CUB and Cars (written as in tests/test_galleries.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import photo_like, write_torchscript  # noqa: E402
from test_cli import run_cli  # noqa: E402
from test_galleries import make_cars_stanford, make_cub_official, make_dml  # noqa: E402

from lfs_gui.index.store import load_index  # noqa: E402
from lfs_gui.killpoints import ENV, SIGNAL_ENV  # noqa: E402

CLASSES = ("apples", "boats", "cats")
N_FILES, N_OK, SHARD = 25, 24, 4  # 3 x 8 images + one undecodable file; 7 shards of <= 4


def make_gallery(root: Path, per_class: int = 8) -> Path:
    for c, name in enumerate(CLASSES):
        for j in range(per_class):
            p = root / name / f"{name}_{j:02d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            photo_like(100 * c + j, (40, 32)).save(p)
    (root / "cats" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg" * 4)
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("resume")
    model = base / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(model, dim=16, split=True)
    gal = make_gallery(base / "gallery")
    ref = base / "runs" / "reference"
    rc, out, err = run_cli(*index_args(gal, model, ref, base / "cache-ref"))
    assert rc == 0, err
    return {"base": base, "model": model, "gallery": gal, "ref": ref, "report": json.loads(out)}


def index_args(gal: Path, model: Path, out: Path, cache: Path, *extra: str) -> list:
    return ["index", gal, "--model", model, "--out", out, "--cache-dir", cache, "--no-decoder", "--shard-size",
            SHARD, "--batch-size", SHARD, "--device", "cpu", "--json", *extra]


def killed_run(args: list, point: str, ctrl_c: bool = False) -> subprocess.CompletedProcess:
    """Run ``lfs-gui ARGS`` in a subprocess that gets SIGKILL (or, ``ctrl_c``, SIGINT) at ``point``."""
    env = {**os.environ, ENV: point, "PYTHONPATH": str(Path(__file__).parents[1])}
    if ctrl_c:
        env[SIGNAL_ENV] = "INT"
    # A shell that starts the suite in the background (``cmd &``) ignores SIGINT and a child inherits
    # that, so Python would install no KeyboardInterrupt handler: restore the default for the child.
    restore = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if ctrl_c else None
    proc = subprocess.run([sys.executable, "-m", "lfs_gui", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300, check=False, preexec_fn=restore)
    assert proc.returncode == (130 if ctrl_c else -9), f"{point}: rc {proc.returncode}\n{proc.stderr[-2000:]}"
    return proc


def shards(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/shard-*.parquet"))


def assert_same_index(a: Path, b: Path) -> None:
    for name in ("embeddings.npy", "rows.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, sb = (json.loads((d / "index.json").read_text()) for d in (a, b))
    for s in (sa, sb):
        s.pop("created")
    assert sa == sb


def test_reference_build_reports_counts(env) -> None:
    rep = env["report"]
    assert (rep["count"], rep["embedded"], rep["reused"]) == (N_OK, N_FILES, 0)
    assert len(shards(env["base"] / "cache-ref")) == -(-N_FILES // SHARD)
    rc, out, err = run_cli(*index_args(env["gallery"], env["model"], env["base"] / "runs" / "again",
                                       env["base"] / "cache-ref"))
    assert rc == 0, err
    assert (json.loads(out)["embedded"], json.loads(out)["reused"]) == (0, N_FILES)
    assert_same_index(env["base"] / "runs" / "again", env["ref"])


@pytest.mark.parametrize("point, shards_left, reused", [
    ("embed:first-batch", 0, 0),
    ("shard:3", 3, 3 * SHARD),
    ("save:embeddings", 7, N_FILES),
    ("save:before-sidecar", 7, N_FILES),
])
def test_kill_9_then_resume_equals_an_uninterrupted_build(env, point: str, shards_left: int, reused: int) -> None:
    base = env["base"]
    out, cache = base / "runs" / point.replace(":", "-"), base / f"cache-{point.replace(':', '-')}"
    if point == "save:before-sidecar":  # killed while *replacing* an index: the old one must not survive
        shutil.copytree(env["ref"], out)
    args = index_args(env["gallery"], env["model"], out, cache)
    killed_run(args, point)
    assert len(shards(cache)) == shards_left
    assert not (out / "index.json").exists()  # never an index that looks valid but is not
    with pytest.raises(ValueError, match="index.json"):
        load_index(out)
    rc, text, err = run_cli(*args)
    assert rc == 0, err
    rep = json.loads(text)
    assert (rep["embedded"], rep["reused"]) == (N_FILES - reused, reused)
    assert_same_index(out, env["ref"])
    assert not list(out.glob(".*.tmp")) and not list(cache.glob("*/.*.tmp"))


def test_ctrl_c_keeps_the_finished_batches_kill_9_loses_at_most_a_shard(env) -> None:
    """Shards of 8, batches of 4: interrupted after the third batch, Ctrl-C writes the 4 buffered rows
    (12 kept) and says how to resume; kill -9 keeps the one full shard (8)."""
    base = env["base"]
    for ctrl_c, kept in ((True, 12), (False, 8)):
        out, cache = base / "runs" / f"batch3-{ctrl_c}", base / f"cache-batch3-{ctrl_c}"
        args = index_args(env["gallery"], env["model"], out, cache)
        args[args.index("--shard-size") + 1] = 8
        proc = killed_run(args, "batch:3", ctrl_c=ctrl_c)
        if ctrl_c:
            assert "interrupted" in proc.stderr and "run the same command again to resume" in proc.stderr
        rc, text, err = run_cli(*args)
        assert rc == 0, err
        assert json.loads(text)["reused"] == kept
        assert_same_index(out, env["ref"])


def test_new_images_only_are_embedded_and_splits_reuse(env, tmp_path: Path) -> None:
    gal = shutil.copytree(env["gallery"], tmp_path / "gallery", copy_function=os.link)  # same mtimes
    cache = tmp_path / "cache"
    shutil.copytree(env["base"] / "cache-ref", cache)
    for j in range(3):
        photo_like(900 + j, (40, 32)).save(gal / "boats" / f"new_{j}.png")
    rc, out, err = run_cli(*index_args(gal, env["model"], tmp_path / "idx", cache))
    assert rc == 0, err
    rep = json.loads(out)
    assert (rep["count"], rep["embedded"], rep["reused"]) == (N_OK + 3, 3, N_FILES)
    # the moved copy of the gallery reused the reference's shards: same embeddings for the same files
    ref, new = load_index(env["ref"]), load_index(tmp_path / "idx")
    pos = {r: i for i, r in enumerate(new.meta.relpaths)}
    np.testing.assert_array_equal(new.embeddings[[pos[r] for r in ref.meta.relpaths]], ref.embeddings)
    # another split of a fresh cache: train, then all (train reused), then test (all reused)
    counts = []
    for split in ("train", "all", "test"):
        rc, out, err = run_cli(*index_args(gal, env["model"], tmp_path / f"idx-{split}", tmp_path / "cache2",
                                           "--split", split))
        assert rc == 0, err
        counts.append((json.loads(out)["embedded"], json.loads(out)["reused"]))
    assert counts == [(8, 0), (N_FILES + 3 - 8, 8), (0, N_FILES + 3 - 8)]


@pytest.mark.parametrize("layout", ["cub-dml", "cub-official", "cars-dml", "cars-stanford", "folder"])
def test_decoder_split_defaults(env, tmp_path: Path, layout: str) -> None:
    if layout == "cub-dml":
        gal = make_dml(tmp_path / "cub200", [f"{c:03d}.Bird_{c}" for c in range(1, 5)], per_class=3)
    elif layout == "cub-official":
        gal = make_cub_official(tmp_path, n_classes=4, per_class=3)
    elif layout == "cars-dml":
        gal = make_dml(tmp_path / "cars196", [f"Make {c}" for c in range(1, 5)], per_class=3)
    elif layout == "cars-stanford":
        gal = make_cars_stanford(tmp_path / "stanford", n_classes=4, per_class=3)
    else:
        gal = make_gallery(tmp_path / "plain", per_class=2)
    base = ["index", gal, "--model", env["model"], "--cache-dir", tmp_path / "cache", "--decoder-epochs", "1",
            "--device", "cpu", "--json"]
    rc, out, err = run_cli(*base, "--out", tmp_path / "idx")
    assert rc == 0, err
    rep = json.loads(out)
    dec = rep["decoder"]
    side = json.loads((tmp_path / "idx" / "index.json").read_text())
    if layout == "folder":  # the indexed split (all)
        assert dec["split"] == side["decoder_split"] == "all" and dec["n_train"] + dec["n_val"] == rep["count"] == 6
        return
    # CUB/Cars: the index is the test half, the decoder the train half (the paper's protocol)
    assert side["gallery"]["split"] == "test" and dec["split"] == side["decoder_split"] == "train"
    assert rep["count"] == 6 and dec["n_train"] + dec["n_val"] == 6 and rep["embedded"] == 12
    rc, out, err = run_cli(*base, "--out", tmp_path / "idx2", "--decoder-split", "test")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["decoder"]["split"] == "test" and (rep["embedded"], rep["reused"]) == (0, 6)
    if layout != "cub-dml":
        return
    # train-decoder on an index of the test half: the train half by default, embedded through the cache
    for extra, split in (((), "train"), (("--decoder-split", "test"), "test")):
        rc, out, err = run_cli("train-decoder", tmp_path / "idx", "--out", tmp_path / f"dec-{split}.pt", "--epochs", 1,
                               "--cache-dir", tmp_path / "cache", "--device", "cpu", "--json", *extra)
        assert rc == 0, err
        rep = json.loads(out)
        assert rep["split"] == split and rep["n_train"] + rep["n_val"] == 6
        assert ("split train: 6 images (0 embedded, 6 reused" in err) == (split == "train")
