"""``lfs-gui index --engine ray``: a Ray Data job on a local 2-CPU Ray (started once for the module) gives
the local engine's embeddings, writes the same cache (a killed build of either engine resumes in the
other), re-embeds a truncated shard, reports progress, and without Ray is a clear error.

The gallery and the TorchScript model are written as in tests/test_build_resume.py (TorchScript cannot
be pickled, so the actors reload it from its file: the harder of the two ways a model reaches them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import ray

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import write_torchscript  # noqa: E402
from test_build_resume import make_gallery, shards  # noqa: E402
from test_cli import run_cli  # noqa: E402

from lfs_gui.build import iter_build_index  # noqa: E402
from lfs_gui.data.galleries import open_gallery  # noqa: E402
from lfs_gui.data.ray_engine import PoolPlan, RayUnavailable, plan_pool  # noqa: E402
from lfs_gui.killpoints import ENV  # noqa: E402
from lfs_gui.models.loader import load_model  # noqa: E402


PER_CLASS, SHARD = 20, 8
N_FILES = 3 * PER_CLASS + 1  # + one undecodable file


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """One local Ray for the module (2 CPUs, as on the reference machine); its address for subprocesses."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, cluster: str):
    base = tmp_path_factory.mktemp("ray")
    model = base / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_torchscript(model, dim=16, split=True)
    gal = make_gallery(base / "gallery", per_class=PER_CLASS)
    ref = base / "local"
    rc, out, err = run_cli(*index_args(gal, model, ref, base / "cache-local"))
    assert rc == 0, err
    return {"base": base, "model": model, "gallery": gal, "ref": ref, "address": cluster}


def index_args(gal: Path, model: Path, out: Path, cache: Path, *extra: str) -> list:
    return ["index", gal, "--model", model, "--out", out, "--cache-dir", cache, "--no-decoder", "--shard-size",
            SHARD, "--batch-size", SHARD, "--device", "cpu", "--json", *extra]


def same_embeddings(a: Path, b: Path) -> None:
    assert (a / "rows.parquet").read_bytes() == (b / "rows.parquet").read_bytes()
    np.testing.assert_allclose(np.load(a / "embeddings.npy"), np.load(b / "embeddings.npy"), rtol=0, atol=1e-6)


def test_ray_build_gives_the_local_embeddings_with_progress(env) -> None:
    out, cache = env["base"] / "ray", env["base"] / "cache-ray"
    gen = iter_build_index(open_gallery(env["gallery"]), load_model(env["model"]), out, train_decoder=False,
                           cache_dir=cache, batch_size=SHARD, shard_rows=SHARD, engine="ray",
                           model_info={"source": str(env["model"])})
    done = []
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            rep = stop.value
            break
        if p.message.startswith("embedding ") and "/" in p.message:
            done.append(p.done)
    assert len(done) >= N_FILES // SHARD and done == sorted(done) and done[-1] == N_FILES  # per batch, in order
    assert (rep.count, rep.embedded, rep.reused) == (N_FILES - 1, N_FILES, 0)
    assert rep.skipped and rep.skipped[0][0].endswith("zz_broken.jpg")  # a bad file is skipped, as locally
    assert len(shards(cache)) == -(-N_FILES // SHARD)
    same_embeddings(out, env["ref"])


def killed(args: list, point: str, address: str | None = None) -> None:
    env = {**os.environ, ENV: point, "PYTHONPATH": str(Path(__file__).parents[1])}
    argv = [*map(str, args)] + (["--engine", "ray", "--ray-address", address] if address else [])
    proc = subprocess.run([sys.executable, "-m", "lfs_gui", *argv], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == -9, f"{point}: rc {proc.returncode}\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("first, then", [("ray", "local"), ("local", "ray")])
def test_a_killed_build_resumes_in_either_engine(env, first: str, then: str, caplog: pytest.LogCaptureFixture) -> None:
    out, cache = env["base"] / f"{first}-then-{then}", env["base"] / f"cache-{first}-{then}"
    args = index_args(env["gallery"], env["model"], out, cache)
    killed(args, "shard:3", env["address"] if first == "ray" else None)  # kill -9 after 3 shards are in place
    assert len(shards(cache)) == 3 and not (out / "index.json").exists()
    lost = 0
    if then == "ray":  # and a shard truncated meanwhile is dropped, named, and embedded again
        bad = shards(cache)[1]
        bad.write_bytes(bad.read_bytes()[:100])
        lost = SHARD
    rc, text, err = run_cli(*args, *(["--engine", "ray"] if then == "ray" else []))
    assert rc == 0, err
    if lost:
        assert bad.name in caplog.text and "embedded again" in caplog.text
    rep = json.loads(text)
    assert (rep["embedded"], rep["reused"]) == (N_FILES - 3 * SHARD + lost, 3 * SHARD - lost)
    same_embeddings(out, env["ref"])


def test_without_ray_the_error_says_how_to_install_it(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    rc, out, err = run_cli(*index_args(env["gallery"], env["model"], tmp_path / "x", tmp_path / "c", "--engine", "ray"))
    assert rc == 2 and "pip install 'lfs-gui[scale]'" in err and "--engine local" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # failed before any work
    rc, out, err = run_cli(*index_args(env["gallery"], env["model"], tmp_path / "x", tmp_path / "c"))
    assert rc == 0, err  # the local engine needs no Ray
    rc, out, err = run_cli(*index_args(env["gallery"], env["model"], tmp_path / "y", tmp_path / "c",
                                       "--ray-address", "auto"))
    assert rc == 2 and "--ray-address needs --engine ray" in err


def test_pool_sizing_leaves_the_decoding_a_cpu() -> None:
    assert plan_pool({"CPU": 2.0}, use_gpu=False) == PoolPlan(2, 1.0, 0.0, False)
    assert plan_pool({"CPU": 16.0}, use_gpu=False, cpus_per_actor=4) == PoolPlan(4, 4.0, 0.0, False)
    assert plan_pool({"CPU": 32.0, "GPU": 4.0}, use_gpu=True) == PoolPlan(4, 1.0, 1.0, True)
    gpu_starved = plan_pool({"CPU": 4.0, "GPU": 4.0}, use_gpu=True)
    assert gpu_starved.actors == 4 and gpu_starved.separate_decode
    assert gpu_starved.actors * gpu_starved.actor_cpus <= 4.0 / 2  # half the CPUs stay for decoding
    with pytest.raises(RayUnavailable, match="no GPU"):
        plan_pool({"CPU": 8.0}, use_gpu=True)
