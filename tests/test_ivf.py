"""On-disk IVF index (lfs_gui.index.ivf*): both ends against brute force, opening in a fresh process,
moved folders, damaged files, cancelled builds.

20 000 clustered 32-d unit vectors with a shared mean direction (isotropic noise would make any index
look good, and without the mean direction the bottom end is easy). The index is opened in a
subprocess where FAISS reads on-disk files, so a crash there fails one test instead of the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import faiss
import numpy as np
import pytest

from lfs_gui.index.ivf import IvfLoadError, IvfSearcher, open_ivf
from lfs_gui.index.ivf_build import iter_build_ivf
from lfs_gui.index.ivf_files import (
    IVF_DATA_FILE,
    IVF_INDEX_FILE,
    IVF_LISTS_FILE,
    IvfInfo,
    IvfSettings,
    NpyRows,
    auto_nlist,
    resolve_settings,
)
from lfs_gui.jobs import run_generator
from lfs_gui.killpoints import ENV as KILL_ENV

N, DIM, K = 20_000, 32, 20
RECALL = 0.95  # both ends, at the index's default nprobe (stated in README and the module docstring)


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(dim)
    mean /= np.linalg.norm(mean)
    centres = rng.standard_normal((max(20, n // 500), dim)) / np.sqrt(dim)
    lab = rng.integers(0, len(centres), n)
    v = 0.5 * mean + centres[lab] + 0.8 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, IvfInfo]:
    folder = tmp_path_factory.mktemp("ivf")
    x = clustered(N, DIM)
    np.save(folder / "embeddings.npy", x)
    before = x.copy()
    info = run_generator(iter_build_ivf(NpyRows(folder / "embeddings.npy"), folder, IvfSettings(block_rows=6000)))
    np.testing.assert_array_equal(x, before)
    (folder / "info.json").write_text(json.dumps(info.to_dict()))
    return folder, x, info


def brute(x: np.ndarray, q: np.ndarray, ex: int) -> tuple[np.ndarray, np.ndarray]:
    s = x.astype(np.float64) @ q.astype(np.float64)
    s[ex] = np.nan
    order = np.argsort(s)
    order = order[~np.isnan(s[order])]
    return order[::-1][:K], order[:K]


def test_settings_follow_size_and_reject_bad_values() -> None:
    s = resolve_settings(IvfSettings(), 1_000_000, 128)
    assert s.nlist == auto_nlist(1_000_000) == 4096 and s.nprobe_bottom > s.nprobe >= 16
    assert resolve_settings(IvfSettings(quantizer="pq"), 50_000, 128).pq_m == 32
    with pytest.raises(ValueError, match="at least 1000 vectors"):
        resolve_settings(IvfSettings(), 999, 8)
    with pytest.raises(ValueError, match="quantizer"):
        resolve_settings(IvfSettings(quantizer="lsh"), 5000, 8)
    with pytest.raises(ValueError, match="pq_m 5 must divide"):
        resolve_settings(IvfSettings(quantizer="pq", pq_m=5), 5000, 32)


def test_build_writes_the_files_and_no_leftovers(built) -> None:
    folder, _, info = built
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["embeddings.npy", "info.json", IVF_INDEX_FILE, IVF_DATA_FILE, IVF_LISTS_FILE])
    assert info.count == N and info.dim == DIM and info.nlist == auto_nlist(N)
    assert 0.01 * N < info.outliers < 0.03 * N  # ~2 % of the vectors, farthest from their centroids
    assert info.ivfdata_bytes == (folder / IVF_DATA_FILE).stat().st_size
    assert info.ivfdata_bytes >= N * (DIM + 8)  # an 8-bit code and an id per vector, on disk


def test_both_ends_match_brute_force(built) -> None:
    folder, x, info = built
    index, stats = open_ivf(folder, info, "rebuild")
    s = IvfSearcher(index, stats, NpyRows(folder / "embeddings.npy"), info)
    rng = np.random.default_rng(3)
    qids = rng.choice(N, 40, replace=False)
    (td, ti), (bd, bi) = s.search(x[qids], K, qids.astype(np.int64), (True, True))
    rec_top = rec_bot = 0.0
    for r, qi in enumerate(qids):
        t_true, b_true = brute(x, x[qi], qi)
        rec_top += len(set(ti[r]) & set(t_true)) / K / len(qids)
        rec_bot += len(set(bi[r]) & set(b_true)) / K / len(qids)
        assert qi not in ti[r] and qi not in bi[r]
        np.testing.assert_allclose(td[r], x[ti[r]] @ x[qi], atol=1e-5)  # exact cosines, not quantised ones
        np.testing.assert_allclose(bd[r], x[bi[r]] @ x[qi], atol=1e-5)
        assert np.all(np.diff(td[r]) <= 0) and np.all(np.diff(bd[r]) >= 0)
    assert rec_top >= RECALL and rec_bot >= RECALL, (rec_top, rec_bot)
    # ranking lists by the centroid alone (no spread term) and without the outlier list loses the bottom end
    s._z[:] = 0
    s._outliers = False
    _, (_, bi0) = s.search(x[qids], K, qids.astype(np.int64), (False, True))
    rec0 = np.mean([len(set(bi0[r]) & set(brute(x, x[q], q)[1])) / K for r, q in enumerate(qids)])
    assert rec0 < rec_bot - 0.05, (rec0, rec_bot)


def test_pq_quantizer_answers_both_ends(tmp_path: Path) -> None:
    x = clustered(10_000, 16, seed=5)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # PQ training is many tiny k-means: OpenMP threads only spin on a busy CI box
    try:
        info = run_generator(iter_build_ivf(x, tmp_path, IvfSettings(quantizer="pq", pq_m=8)))
    finally:
        faiss.omp_set_num_threads(threads)
    index, stats = open_ivf(tmp_path, info, "rebuild")
    s = IvfSearcher(index, stats, x, info)
    qids = np.arange(0, 10_000, 500)
    (_, ti), (_, bi) = s.search(x[qids], K, qids, (True, True))
    rec = [np.mean([len(set(ii[r]) & set(brute(x, x[q], q)[e])) / K for r, q in enumerate(qids)])
           for e, ii in ((0, ti), (1, bi))]
    assert min(rec) >= RECALL, rec


_OPEN = textwrap.dedent("""
    import json, sys
    import numpy as np
    from pathlib import Path
    from lfs_gui.index.ivf import IvfSearcher, open_ivf
    from lfs_gui.index.ivf_files import IvfInfo, NpyRows
    folder = Path(sys.argv[1])
    info = IvfInfo.from_dict(json.loads((folder / "info.json").read_text()))
    index, stats = open_ivf(folder, info, "rebuild")
    x = NpyRows(folder / "embeddings.npy")
    s = IvfSearcher(index, stats, x, info)
    (_, ti), (_, bi) = s.search(x[:5], 20, np.arange(5), (True, True))
    sys.stderr.write("RESULT " + json.dumps({"top": ti.tolist(), "bottom": bi.tolist()}) + "\\n")
""")


def _open_in_subprocess(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-c", _OPEN, str(folder)], capture_output=True, text=True, timeout=120,
                          env=env)


def test_opens_in_a_fresh_process_after_the_folder_moved(built, tmp_path: Path) -> None:
    folder, x, info = built
    moved = tmp_path / "elsewhere"
    shutil.copytree(folder, moved)
    res = _open_in_subprocess(moved)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # FAISS' own printf about the moved data file does not reach stdout
    out = json.loads(res.stderr.split("RESULT ", 1)[1])
    index, stats = open_ivf(folder, info, "rebuild")
    (_, ti), (_, bi) = IvfSearcher(index, stats, x, info).search(
        x[:5], 20, np.arange(5), (True, True))
    assert out == {"top": ti.tolist(), "bottom": bi.tolist()}


@pytest.mark.parametrize("damage", ["truncate data", "truncate header", "edit lists", "truncate embeddings",
                                    "delete data"])
def test_damaged_files_are_clear_errors(built, tmp_path: Path, damage: str) -> None:
    folder, _, info = built
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    target = {"truncate data": IVF_DATA_FILE, "truncate header": IVF_INDEX_FILE, "edit lists": IVF_LISTS_FILE,
              "truncate embeddings": "embeddings.npy", "delete data": IVF_DATA_FILE}[damage]
    p = bad / target
    if damage == "delete data":
        p.unlink()
    elif damage == "edit lists":
        raw = bytearray(p.read_bytes())
        raw[-1] ^= 0xFF
        p.write_bytes(bytes(raw))
    else:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ValueError, match=str(p).replace("\\", "\\\\")):
        open_ivf(bad, info, "rebuild it")
        NpyRows(bad / "embeddings.npy")
    res = _open_in_subprocess(bad)  # and the same in a fresh process: an error, never a crash
    assert res.returncode == 1 and "Error: " in res.stderr and target in res.stderr, res.stderr[-500:]


def test_cancelled_build_leaves_no_temporary_files(tmp_path: Path) -> None:
    x = clustered(6000, 16, seed=7)
    gen = iter_build_ivf(x, tmp_path, IvfSettings(block_rows=1000, workers=2))
    for p in gen:
        if p.message.startswith("added block 2/"):
            break
    gen.close()
    assert list(tmp_path.iterdir()) == []


def test_rejects_non_unit_vectors(tmp_path: Path) -> None:
    x = clustered(2000, 8) * 2.0
    with pytest.raises(ValueError, match="L2-normalise"):
        run_generator(iter_build_ivf(x, tmp_path))


def test_info_round_trip_and_bad_fields(built) -> None:
    info = built[2]
    assert IvfInfo.from_dict(info.to_dict()) == info
    with pytest.raises(ValueError, match="ivf.nlist"):
        IvfInfo.from_dict({**info.to_dict(), "nlist": "many"})
    with pytest.raises(ValueError, match="ivf.quantizer"):
        IvfInfo.from_dict({**info.to_dict(), "quantizer": "opq"})


# -- kind ivf in an index folder: save, load, move, damage, and the CLI end to end -----------------------
def _ivf_folder(folder: Path, x: np.ndarray) -> Path:
    from lfs_gui.index import IndexMeta, save_index
    from lfs_gui.index.ivf import iter_ivf_index
    from lfs_gui.index.store import staged_embeddings_path

    folder.mkdir(parents=True)
    staged = staged_embeddings_path(folder)
    with open(staged, "wb") as fh:  # as the builder does: a .npy under the staged (.tmp) name
        np.save(fh, x)
    index = run_generator(iter_ivf_index(staged, folder))
    meta = IndexMeta(relpaths=[f"c{i % 7}/{i}.png" for i in range(len(x))], labels=[i % 7 for i in range(len(x))],
                     classes=[f"c{k}" for k in range(7)], gallery_root=str(folder.parent / "gallery"))
    save_index(index, folder, meta, staged_embeddings=staged)
    return folder


def test_ivf_index_folder_loads_moved_and_answers_like_flat(built, tmp_path: Path) -> None:
    from lfs_gui.index import EmbeddingIndex, load_index

    x = built[1]
    folder = _ivf_folder(tmp_path / "a" / "idx", x)
    side = json.loads((folder / "index.json").read_text())
    assert side["index_kind"] == "ivf" and set(side["files"]) >= {IVF_INDEX_FILE, IVF_DATA_FILE, IVF_LISTS_FILE}
    assert not (folder / "index.faiss").exists() and not list(folder.glob(".*"))
    moved = tmp_path / "b" / "idx"
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    ix = load_index(moved)
    assert ix.kind == "ivf" and len(ix) == N and isinstance(ix.embeddings, np.memmap)
    flat = EmbeddingIndex(x, "flat")
    q = x[:30]
    (_, ti), (_, bi) = ix.both_ends_batch(q, K, list(range(30)))
    (_, tf), (_, bf) = flat.both_ends_batch(q, K, list(range(30)))
    for got, want in ((ti, tf), (bi, bf)):
        assert np.mean([len(set(g) & set(w)) / K for g, w in zip(got, want)]) >= RECALL
    d, i = ix.most_dissimilar(x[3], 5, exclude=3)
    np.testing.assert_allclose(d, x[i] @ x[3], atol=1e-5)


def test_ivf_index_folder_with_a_truncated_data_file_is_a_clear_error(built, tmp_path: Path) -> None:
    from lfs_gui.index import IndexLoadError, load_index

    folder = _ivf_folder(tmp_path / "idx", built[1][:5000])
    data = folder / IVF_DATA_FILE
    data.write_bytes(data.read_bytes()[:-4096])
    with pytest.raises(IndexLoadError, match=r"ivf\.ivfdata.*truncated.*lfs-gui index"):
        load_index(folder)


def test_cli_builds_and_queries_an_ivf_index(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _model_fixtures import write_torchscript
    from test_cli import run_cli

    model = tmp_path / "tiny.pt"
    write_torchscript(model, dim=8, split=True)
    rng = np.random.default_rng(0)
    from PIL import Image

    for i in range(1100):  # the smallest gallery an IVF index takes is 1000 images
        p = tmp_path / "gallery" / f"c{i % 4}" / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(p)
    common = ["--model", model, "--cache-dir", tmp_path / "cache", "--no-decoder", "--device", "cpu", "--json"]
    ivf_args = ["index", tmp_path / "gallery", "--kind", "ivf", "--quantizer", "sq8", "--out", tmp_path / "ivf", *common]
    # kill -9 after the IVF build wrote its first block: no index, a block folder left behind ...
    env = {**os.environ, KILL_ENV: "ivf:block:1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "lfs_gui", *map(str, ivf_args)], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert list((tmp_path / "ivf").glob(".ivf-build-*")) and not (tmp_path / "ivf" / "index.json").exists()
    rc, out, err = run_cli(*ivf_args)  # ... and the same command resumes: embeddings from the cache, IVF anew
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["index_kind"] == "ivf" and rep["count"] == 1100 and rep["reused"] == 1100
    assert not list((tmp_path / "ivf").glob(".ivf-build-*"))
    assert json.loads((tmp_path / "ivf" / "index.json").read_text())["ivf"]["quantizer"] == "sq8"
    rc, out, err = run_cli("index", tmp_path / "gallery", "--kind", "flat", "--out", tmp_path / "flat", *common)
    assert rc == 0 and json.loads(out)["reused"] == 1100, err
    found = {}
    for kind in ("ivf", "flat"):
        rc, out, err = run_cli("query", tmp_path / kind, "--id", 7, "--k", 10, "--json")
        assert rc == 0, err
        found[kind] = json.loads(out)
    for end in ("similar", "dissimilar"):
        ids = [{h["id"] for h in found[k][end]} for k in ("ivf", "flat")]
        assert len(ids[0] & ids[1]) >= 9, end
    rc, out, err = run_cli("index", tmp_path / "gallery" / "c0", "--kind", "ivf", "--out", tmp_path / "small", *common)
    assert rc == 2 and "at least 1000" in err and "--kind flat" in err
    data = tmp_path / "ivf" / IVF_DATA_FILE  # a truncated index file: exit 2, the file and the fix named
    data.write_bytes(data.read_bytes()[:-4096])
    rc, out, err = run_cli("query", tmp_path / "ivf", "--id", 7, "--k", 10, "--json")
    assert rc == 2 and IVF_DATA_FILE in err and "lfs-gui index" in err and "Traceback" not in err, err
