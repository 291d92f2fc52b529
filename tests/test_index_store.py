"""Index folders on disk: format v2 round trips, every damaged file named in the error, version 1
folders still read (``tests/data/index_v1`` was written by the version 1 code itself), upgrade, and
indexes and galleries that move (together, apart, to another root)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from lfs_gui.data.galleries import open_gallery
from lfs_gui.index import EmbeddingIndex, IndexLoadError, IndexMeta
from lfs_gui.index import checksums
from lfs_gui.index.checksums import file_record
from lfs_gui.index.rows import write_rows
from lfs_gui.index.sidecar import GalleryNotFoundError
from lfs_gui.index.store import load_index, save_index
from lfs_gui.index.upgrade import upgrade_index

DATA = Path(__file__).parent / "data"


def write_image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_gallery(root: Path) -> Path:
    for c in ("a", "b"):
        for j in range(3):
            write_image(root / c / f"{j}.png", j)
    return root


def build(tmp: Path, gallery: Path, out: Path, kind: str = "flat") -> EmbeddingIndex:
    gal = open_gallery(gallery)
    meta = IndexMeta.from_gallery(gal, "toy:0123", {"name": "toy", "dim": 24}, decoder_file="decoder.pt")
    ix = EmbeddingIndex(unit(len(gal), 24, seed=4), kind, meta)
    save_index(ix, out)
    return ix


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[Path, EmbeddingIndex]:
    ix = build(tmp_path, make_gallery(tmp_path / "gal"), tmp_path / "idx")
    return tmp_path / "idx", ix


def test_round_trip_v2(saved: tuple[Path, EmbeddingIndex]) -> None:
    out, ix = saved
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.npy", "index.json", "rows.parquet"]
    side = json.loads((out / "index.json").read_text())
    assert side["format"] == "lfs-gui-index" and side["version"] == 2 and side["dim"] == 24 and side["count"] == 6
    assert side["metric"] == "cosine" and side["index_kind"] == "flat" and side["created"]
    assert side["gallery"]["root"] == "../gal" and Path(side["gallery"]["root_absolute"]).is_absolute()
    assert "relpaths" not in side and "labels" not in side  # the row table holds them
    assert set(side["files"]) == {"embeddings.npy", "rows.parquet"}
    assert side["files"]["embeddings.npy"]["bytes"] == (out / "embeddings.npy").stat().st_size
    rows = pq.read_table(out / "rows.parquet")
    assert rows.column_names == ["id", "relpath", "label"]
    assert rows.column("id").to_pylist() == list(range(6)) and rows.column("label").to_pylist() == [0, 0, 0, 1, 1, 1]
    assert rows.column("relpath").to_pylist()[0] == "a/0.png"
    mm = np.load(out / "embeddings.npy", mmap_mode="r")
    assert mm.dtype == np.float32 and mm.shape == (6, 24) and mm.flags.c_contiguous
    back = load_index(out, expected_identity="toy:0123")
    assert isinstance(back.embeddings, np.memmap) or isinstance(back.embeddings.base, np.memmap)
    np.testing.assert_array_equal(back.embeddings, ix.embeddings)
    assert back.meta.decoder_file == "decoder.pt" and back.meta.classes == ["a", "b"] and back.meta.version == 2
    g = back.meta.locate_gallery()
    assert g.relpaths == rows.column("relpath").to_pylist() and g.items[4].class_name == "b" and g.items[0].path.is_file()
    for a, b in zip(back.most_similar(ix.embeddings[2], 4, 2), ix.most_similar(ix.embeddings[2], 4, 2)):
        np.testing.assert_array_equal(a, b)
    save_index(back, out)  # re-saving a memory-mapped index over its own file is safe
    np.testing.assert_array_equal(load_index(out).embeddings, ix.embeddings)


def test_round_trip_hnsw(tmp_path: Path) -> None:
    x = unit(400, 16, seed=5)
    ix = EmbeddingIndex(x, "hnsw")
    load_index(save_index(ix, tmp_path / "h" / "index.json"))  # a file name means its folder
    assert (tmp_path / "h" / "index.faiss").is_file()
    back = load_index(tmp_path / "h")
    assert back.kind == "hnsw" and back.meta.labels == [None] * 400
    np.testing.assert_array_equal(back.most_similar(x[5], 8, 5)[1], ix.most_similar(x[5], 8, 5)[1])
    save_index(EmbeddingIndex(x, "flat"), tmp_path / "h")  # a flat rebuild drops the stale graph
    assert not (tmp_path / "h" / "index.faiss").exists() and load_index(tmp_path / "h").kind == "flat"


def _edit_sidecar(out: Path, **changes) -> None:
    side = json.loads((out / "index.json").read_text())
    side.update(changes)
    (out / "index.json").write_text(json.dumps(side))


def _rehash(out: Path, name: str) -> None:
    """Record ``name``'s new checksum, so only the structural checks can catch the damage."""
    side = json.loads((out / "index.json").read_text())
    side["files"][name] = file_record(out / name)
    (out / "index.json").write_text(json.dumps(side))


def _rows(out: Path, relpaths: list, labels: list) -> None:
    write_rows(out / "rows.parquet", relpaths, labels)
    _rehash(out, "rows.parquet")


def _npy(out: Path, x: np.ndarray) -> None:
    np.save(out / "embeddings.npy", x)
    _rehash(out, "embeddings.npy")


RELS = ["a/0.png", "a/1.png", "a/2.png", "b/0.png", "b/1.png", "b/2.png"]
CORRUPTIONS = {
    "no_sidecar": (lambda o: (o / "index.json").unlink(), "index.json.*interrupted"),
    "no_rows": (lambda o: (o / "rows.parquet").unlink(), "rows.parquet: missing"),
    "no_embeddings": (lambda o: (o / "embeddings.npy").unlink(), "embeddings.npy: missing"),
    "bad_json": (lambda o: (o / "index.json").write_text('{"format": "lfs-gui-index", '), "index.json"),
    "not_ours": (lambda o: (o / "index.json").write_text('{"format": "other"}'), "index.json"),
    "version": (lambda o: _edit_sidecar(o, version=3), "index.json.*version 3"),
    "unrecorded": (lambda o: _edit_sidecar(o, files={}), "index.json.*does not record"),
    "gallery_field": (lambda o: _edit_sidecar(o, gallery=[1]), "index.json.*gallery"),
    "count": (lambda o: _edit_sidecar(o, count=5), "rows.parquet.*6 rows.*5"),
    "rows_truncated": (lambda o: (o / "rows.parquet").write_bytes((o / "rows.parquet").read_bytes()[:60]), "rows.parquet.*bytes"),
    "rows_changed": (lambda o: write_rows(o / "rows.parquet", RELS, [1, 0, 0, 1, 1, 1]), "rows.parquet.*sha256"),
    "rows_not_parquet": (lambda o: ((o / "rows.parquet").write_bytes(b"x" * 900), _rehash(o, "rows.parquet")), "rows.parquet.*Parquet"),
    "label_range": (lambda o: _rows(o, RELS, [0, 0, 0, 1, 1, 2]), "rows.parquet.*label 2 of image 5"),
    "relpath_escape": (lambda o: _rows(o, RELS[:5] + ["../../etc/passwd"], [0] * 6), "rows.parquet.*etc/passwd"),
    "relpath_absolute": (lambda o: _rows(o, ["/abs.png"] + RELS[1:], [0] * 6), "rows.parquet.*/abs.png"),
    "emb_checksum": (lambda o: np.save(o / "embeddings.npy", np.load(o / "embeddings.npy")[::-1].copy()), "embeddings.npy.*sha256"),
    "emb_truncated": (lambda o: (o / "embeddings.npy").write_bytes((o / "embeddings.npy").read_bytes()[:100]), "embeddings.npy.*bytes"),
    "emb_rows": (lambda o: _npy(o, unit(5, 24)), "embeddings.npy.*5 x 24"),
    "emb_dim": (lambda o: _npy(o, unit(6, 12)), "embeddings.npy.*6 x 12"),
    "emb_dtype": (lambda o: _npy(o, unit(6, 24).astype(np.float64)), "embeddings.npy.*float32"),
    "emb_fortran": (lambda o: _npy(o, np.asfortranarray(unit(6, 24))), "embeddings.npy.*C-order"),
    "emb_not_unit": (lambda o: _npy(o, 2 * unit(6, 24)), "embeddings.npy.*norm"),
    "emb_garbage": (lambda o: ((o / "embeddings.npy").write_bytes(b"\x93NUMPY garbage" * 20), _rehash(o, "embeddings.npy")),
                    "embeddings.npy.*readable"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_damage_names_the_file_and_the_fix(saved: tuple[Path, EmbeddingIndex], case: str) -> None:
    out, _ = saved
    damage, pattern = CORRUPTIONS[case]
    damage(out)
    with pytest.raises(IndexLoadError, match=pattern) as err:
        load_index(out)
    assert "lfs-gui index GALLERY --out" in str(err.value)


def test_hnsw_file_damage(tmp_path: Path) -> None:
    out = save_index(EmbeddingIndex(unit(300, 16), "hnsw"), tmp_path / "h")
    data = (out / "index.faiss").read_bytes()
    (out / "index.faiss").write_bytes(data[:-10])
    with pytest.raises(IndexLoadError, match="index.faiss.*bytes"):
        load_index(out)
    (out / "index.faiss").write_bytes(b"junk" + data[4:])
    _rehash(out, "index.faiss")
    with pytest.raises(IndexLoadError, match="index.faiss.*header"):
        load_index(out)
    (out / "index.faiss").write_bytes(data[:40])
    _rehash(out, "index.faiss")
    with pytest.raises(IndexLoadError, match="index.faiss.*FAISS cannot read"):
        load_index(out)


def test_large_embeddings_are_verified_by_samples(tmp_path: Path, monkeypatch) -> None:
    """Above FULL_VERIFY_MAX_BYTES only the size and sampled blocks are checked; verify='full' checks all."""
    x = unit(1200, 1024, seed=1)  # 4.9 MB: more than the 64 sampled 64 KiB blocks
    out = save_index(EmbeddingIndex(x), tmp_path / "big")
    monkeypatch.setattr(checksums, "FULL_VERIFY_MAX_BYTES", 1 << 20)
    raw = bytearray((out / "embeddings.npy").read_bytes())
    block_gap = (len(raw) - checksums.BLOCK) // (checksums.SAMPLES - 1)
    between = (checksums.BLOCK + block_gap) // 2  # after block 0, before block 1
    assert checksums.BLOCK < between < block_gap
    raw[between] ^= 0x10  # one flipped bit between two samples
    (out / "embeddings.npy").write_bytes(bytes(raw))
    load_index(out)  # not caught by the samples (documented)
    with pytest.raises(IndexLoadError, match="embeddings.npy.*sha256"):
        load_index(out, verify="full")
    raw[200] ^= 0x10  # inside the first sampled block
    (out / "embeddings.npy").write_bytes(bytes(raw))
    with pytest.raises(IndexLoadError, match="embeddings.npy.*sampled checksum"):
        load_index(out)


def test_identity_mismatch_says_which_is_which(saved: tuple[Path, EmbeddingIndex], tmp_path: Path) -> None:
    out, _ = saved
    with pytest.raises(IndexLoadError, match="index.json.*'toy:0123'.*'other:1'") as err:
        load_index(out, expected_identity="other:1")
    assert "--model PATH" in str(err.value) and "lfs-gui index GALLERY --model" in str(err.value)
    with pytest.raises(IndexLoadError, match="nowhere"):
        load_index(tmp_path / "nowhere")


def test_interrupted_save_leaves_no_valid_index(saved: tuple[Path, EmbeddingIndex], monkeypatch) -> None:
    out, ix = saved

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_index(ix, out)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.npy", "rows.parquet"]  # no temp files left
    with pytest.raises(IndexLoadError, match="index.json.*interrupted"):
        load_index(out)
    (out / ".embeddings.npy.abc123.tmp").write_bytes(b"left by a kill -9")
    save_index(ix, out)
    assert len(load_index(out)) == len(ix) and not list(out.glob(".*.tmp"))


# -- version 1 --------------------------------------------------------------------------------------
def test_version_1_folder_is_read(tmp_path: Path) -> None:
    v1 = tmp_path / "index_v1"
    shutil.copytree(DATA / "index_v1", v1)
    ix = load_index(v1, expected_identity="toy:v1v1v1v1")
    assert ix.meta.version == 1 and len(ix) == 6 and ix.dim == 8 and ix.meta.labels == [0, 0, 0, 1, 1, 1]
    assert ix.meta.relpaths[3] == "b/0.png" and ix.meta.model["source"] == "/nowhere/toy.pt"
    # it recorded an absolute root that does not exist here: a clear error, then --gallery-root
    with pytest.raises(GalleryNotFoundError, match="index.json.*where-it-was-built.*--gallery-root DIR"):
        ix.meta.locate_gallery(where=v1)
    g = ix.meta.locate_gallery(DATA / "v1_gallery")
    assert g.items[0].path.is_file() and g.items[5].class_name == "b"
    side = json.loads((v1 / "index.json").read_text())
    (v1 / "index.json").write_text(json.dumps({**side, "embeddings_sha256": "0" * 64}))
    with pytest.raises(IndexLoadError, match="embeddings.npy.*checksum"):
        load_index(v1)
    (v1 / "index.json").write_text(json.dumps({**side, "dim": 9}))
    with pytest.raises(IndexLoadError, match="index.faiss.*dim 8"):
        load_index(v1)


def test_upgrade_version_1_keeps_everything(tmp_path: Path) -> None:
    v1 = tmp_path / "index_v1"
    shutil.copytree(DATA / "index_v1", v1)
    gal = shutil.copytree(DATA / "v1_gallery", tmp_path / "v1_gallery")
    before = load_index(v1)
    with pytest.raises(IndexLoadError, match="--gallery-root DIR"):
        upgrade_index(v1)
    upgrade_index(v1, gallery_root=gal)
    after = load_index(v1)
    assert after.meta.version == 2 and not (v1 / "index.faiss").exists()
    np.testing.assert_array_equal(after.embeddings, before.embeddings)
    for f in ("relpaths", "labels", "classes", "model_identity", "model", "created", "gallery_kind", "gallery_split"):
        assert getattr(after.meta, f) == getattr(before.meta, f), f
    assert json.loads((v1 / "index.json").read_text())["gallery"]["root"] == "../v1_gallery"


def test_shipped_demo_index_is_v2_and_portable() -> None:
    from lfs_gui.paths import demo_index_dir

    side = json.loads((demo_index_dir() / "index.json").read_text())
    assert side["version"] == 2 and side["gallery"]["root"] == "../../resources/demo/images"
    ix = load_index(demo_index_dir(), verify="full")
    assert ix.meta.locate_gallery().items[0].path.is_file()


# -- moving -----------------------------------------------------------------------------------------
def test_index_and_gallery_move_together_apart_and_elsewhere(tmp_path: Path) -> None:
    a = tmp_path / "a"
    build(a, make_gallery(a / "data" / "gal"), a / "indexes" / "idx")
    shutil.move(a, tmp_path / "b")  # both move together (another machine: same relative layout)
    ix = load_index(tmp_path / "b" / "indexes" / "idx")
    g = ix.meta.locate_gallery()
    assert g.root == (tmp_path / "b" / "data" / "gal").resolve() and all(it.path.is_file() for it in g.items)
    # the index alone moves on: the recorded absolute place (tmp/a/...) is gone and the relative one
    # does not resolve from its new place -> a clear error naming both, then --gallery-root
    shutil.move(tmp_path / "b" / "indexes", tmp_path / "c")
    ix = load_index(tmp_path / "c" / "idx")
    with pytest.raises(GalleryNotFoundError, match="--gallery-root DIR") as err:
        ix.meta.locate_gallery(where=tmp_path / "c" / "idx")
    assert len(err.value.candidates) == 2
    g = ix.meta.locate_gallery(tmp_path / "b" / "data" / "gal")  # --gallery-root
    assert all(it.path.is_file() for it in g.items)
    with pytest.raises(GalleryNotFoundError, match="--gallery-root .*elsewhere"):
        ix.meta.locate_gallery(tmp_path / "elsewhere")
    # the index alone moves while the gallery stays put: found at the recorded absolute path
    d = tmp_path / "d"
    build(d, make_gallery(d / "gal"), d / "idx")
    shutil.move(d / "idx", tmp_path / "moved_idx")
    assert load_index(tmp_path / "moved_idx").meta.locate_gallery().root == (d / "gal").resolve()
