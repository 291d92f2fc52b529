"""Gallery embedding: odd image modes, broken files, workers, progress, cancel, and the cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _model_fixtures import photo_like
from lfs_gui.data.embed import embed_paths, iter_embed_paths, load_rgb
from lfs_gui.jobs import Cancelled, Progress
from lfs_gui.models.base import Preprocessing
from lfs_gui.models.torchvision_models import build_torchvision_embedder


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_torchvision_embedder("resnet18", 8, Preprocessing(input_size=32, resize=36))


@pytest.fixture()
def gallery(tmp_path) -> tuple[list[Path], set[int]]:
    """Images in many modes plus broken files; returns (paths, indices of the broken ones)."""
    d = tmp_path / "gallery"
    d.mkdir()
    base = photo_like(0, (64, 48))
    paths: list[Path] = []
    bad: set[int] = set()

    def add(name: str, fn) -> None:
        p = d / name
        fn(p)
        paths.append(p)

    add("rgb.jpg", lambda p: base.save(p, quality=90))
    add("cmyk.jpg", lambda p: base.convert("CMYK").save(p))
    add("grey.png", lambda p: base.convert("L").save(p))
    add("grey16.png", lambda p: Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257)).save(p))
    add("rgba.png", lambda p: base.convert("RGBA").save(p))
    add("la.png", lambda p: base.convert("LA").save(p))
    add("palette.png", lambda p: base.convert("P").save(p, transparency=0))
    add("float.tif", lambda p: Image.fromarray(np.asarray(base.convert("L"), np.float32) / 255.0).save(p))
    bad.add(len(paths))
    add("garbage.jpg", lambda p: p.write_bytes(b"\xff\xd8 definitely not a jpeg" * 10))
    bad.add(len(paths))
    add("truncated.png", lambda p: p.write_bytes(_png_bytes(base)[:300]))
    bad.add(len(paths))
    add("notes.txt", lambda p: p.write_text("hello"))
    bad.add(len(paths))
    paths.append(d / "missing.png")
    add("other.png", lambda p: photo_like(5, (50, 70)).save(p))
    return paths, bad


def _png_bytes(im: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_load_rgb_modes(gallery):
    paths, bad = gallery
    for i, p in enumerate(paths):
        if i in bad:
            continue
        im = load_rgb(p)
        assert im.mode == "RGB"
        assert im.size == ((50, 70) if p.name == "other.png" else (64, 48))
    grey = np.asarray(load_rgb(paths[2]))[..., 0].astype(int)
    grey16 = np.asarray(load_rgb(paths[3]))[..., 0].astype(int)
    flt = np.asarray(load_rgb(paths[7]))[..., 0].astype(int)
    assert grey16.max() > 200 and np.abs(grey16 - grey).max() <= 1  # rescaled, not clipped to 255
    assert np.abs(flt - grey).max() <= 1
    rgba_white = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    rgba_white.save(paths[0].parent / "transparent.png")
    assert np.asarray(load_rgb(paths[0].parent / "transparent.png")).min() == 255  # composited on white


def test_embed_skips_bad_files(model, gallery):
    paths, bad = gallery
    items: list = []
    res = embed_paths(model, paths, batch_size=4, on_progress=items.append)
    n_ok = len(paths) - len(bad)
    assert res.ok.tolist() == [i not in bad for i in range(len(paths))]
    assert res.embeddings.shape == (n_ok, 8) and res.embeddings.dtype == np.float32
    assert res.embeddings.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(res.embeddings, axis=1), 1.0, atol=1e-5)
    assert [p.name for p, _ in res.failures] == [paths[i].name for i in sorted(bad)]
    assert all(reason for _, reason in res.failures)
    # same order and values as embedding the decoded images one by one
    ref = model.embed_images([load_rgb(p) for p in res.ok_paths(paths)])
    np.testing.assert_allclose(res.embeddings, ref, atol=1e-5)
    assert all(isinstance(i, Progress) for i in items)
    embedding = [i for i in items if i.message.startswith("embedding")]
    assert [i.done for i in embedding] == [0, 4, 8, 12, 13] and embedding[-1].total == len(paths)
    assert res.embedded == len(paths) and res.reused == 0


def test_embed_with_workers_matches(model, gallery):
    paths, bad = gallery
    a = embed_paths(model, paths, batch_size=3, num_workers=0)
    b = embed_paths(model, paths, batch_size=5, num_workers=2)
    assert a.ok.tolist() == b.ok.tolist()
    np.testing.assert_allclose(a.embeddings, b.embeddings, atol=1e-5)
    assert [p for p, _ in a.failures] == [p for p, _ in b.failures]


def test_grad_mode_does_not_leak_and_cancel(model, gallery):
    paths, _ = gallery
    gen = iter_embed_paths(model, paths, batch_size=2)
    next(gen)
    next(gen)
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    gen.close()
    calls = []
    with pytest.raises(Cancelled):
        embed_paths(model, paths, batch_size=2, num_workers=2,
                    on_progress=calls.append, should_cancel=lambda: len(calls) >= 2)
    assert len(calls) == 2


def test_embed_empty_list(model):
    res = embed_paths(model, [])
    assert res.embeddings.shape == (0, 8) and res.ok.shape == (0,) and res.failures == []


def _damage_embeddings(shard: Path) -> None:
    """Rewrite ``shard`` with other embedding values but its original metadata (checksums), the way
    bit rot inside the embedding column would look: its keys still check out, its content does not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(shard)
    emb = t.column("embedding").combine_chunks()
    vals = emb.values.to_numpy().copy()
    vals[0] += 0.5
    t = t.set_column(t.schema.get_field_index("embedding"), "embedding",
                     pa.FixedSizeListArray.from_arrays(pa.array(vals), emb.type.list_size))
    pq.write_table(t.replace_schema_metadata(pq.read_schema(shard).metadata), shard, compression="none")


def test_cache_reuse_stale_corrupt(model, gallery, tmp_path, caplog):
    paths, bad = gallery
    folder = paths[0].parent
    before = sorted(os.listdir(folder))
    cache = tmp_path / "cache"
    n, missing = len(paths), 1  # a missing file has no size/mtime: never cached
    first = embed_paths(model, paths, cache_dir=cache)
    assert (first.embedded, first.reused) == (n, 0)
    shards = list(cache.glob("*/shard-*.parquet"))
    assert len(shards) == 1 and (shards[0].parent / "space.json").is_file()
    second = embed_paths(model, paths, cache_dir=cache)
    assert (second.embedded, second.reused) == (missing, n - missing)
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.ok.tolist() == first.ok.tolist() and second.failures == first.failures
    # a subset (another split) and the same files under another order are all reused
    sub = embed_paths(model, paths[5:1:-1], cache_dir=cache)
    assert (sub.embedded, sub.reused) == (0, 4)
    np.testing.assert_array_equal(sub.embeddings, embed_paths(model, paths[5:1:-1]).embeddings)
    # stale: a file's content (and mtime) changed -> that one file is embedded again
    photo_like(9, (64, 48)).save(paths[0], quality=90)
    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = embed_paths(model, paths, cache_dir=cache)
    assert (third.embedded, third.reused) == (1 + missing, n - 1 - missing)
    assert not np.allclose(third.embeddings[0], first.embeddings[0])
    np.testing.assert_array_equal(third.embeddings[1:], first.embeddings[1:])
    # a torn shard (no Parquet footer) is dropped with a warning and its images embedded again
    shards = sorted(cache.glob("*/shard-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    shards[0].write_bytes(shards[0].read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="lfs_gui.data.shards"):
        fourth = embed_paths(model, paths, cache_dir=cache)
    assert "dropping" in caplog.text and not shards[0].exists()
    assert fourth.embedded == n - 1  # everything of the first shard but the changed file
    np.testing.assert_array_equal(fourth.embeddings, third.embeddings)
    # damaged embedding bytes (keys intact) are caught when the embeddings are read, then re-embedded
    caplog.clear()
    damaged = max(cache.glob("*/shard-*.parquet"), key=lambda p: p.stat().st_size)
    _damage_embeddings(damaged)
    with caplog.at_level(logging.WARNING, logger="lfs_gui.data.shards"):
        fifth = embed_paths(model, paths, cache_dir=cache)
    assert "checksum differs" in caplog.text and not damaged.exists()
    np.testing.assert_array_equal(fifth.embeddings, third.embeddings)
    again = embed_paths(model, paths, cache_dir=cache)
    assert (again.embedded, again.reused) == (missing, n - missing)
    # a different model never reuses the entry
    torch.manual_seed(1)
    other = build_torchvision_embedder("resnet18", 8, Preprocessing(input_size=32, resize=36))
    assert embed_paths(other, paths, cache_dir=cache).reused == 0
    # nothing was written into the gallery folder
    assert sorted(os.listdir(folder)) == before
    with pytest.raises(ValueError, match="image folder"):
        embed_paths(model, paths, cache_dir=folder)


def test_cache_follows_a_moved_gallery(model, gallery, tmp_path):
    """Keys use paths relative to the gallery root: the same files elsewhere are reused."""
    from lfs_gui.data.embed import iter_embed_paths
    from lfs_gui.jobs import run_generator

    paths, bad = gallery
    good = [p for i, p in enumerate(paths) if i not in bad]
    cache = tmp_path / "cache"
    rels = [p.name for p in good]
    a = run_generator(iter_embed_paths(model, good, cache_dir=cache, relpaths=rels))
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in good:
        os.link(p, moved / p.name)  # same size and mtime, another folder
    b = run_generator(iter_embed_paths(model, [moved / r for r in rels], cache_dir=cache, relpaths=rels))
    assert (a.embedded, b.embedded, b.reused) == (len(good), 0, len(good))
    np.testing.assert_array_equal(a.embeddings, b.embeddings)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` (a decompression bomb's signature), no pixels."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_edge_sized_and_empty_files(model, tmp_path):
    """A 1×1 image and a large photo embed; a zero-byte file and a decompression bomb are skipped
    with a reason naming them; nothing is written next to the images."""
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(d / "one.png")
    photo_like(3, (4000, 3000)).save(d / "large.jpg", quality=80)
    (d / "zero.jpg").write_bytes(b"")
    (d / "bomb.png").write_bytes(_png_claiming(40000, 40000))
    paths = [d / "one.png", d / "large.jpg", d / "zero.jpg", d / "bomb.png"]
    before = sorted(p.name for p in d.iterdir())
    res = embed_paths(model, paths, batch_size=2)
    assert res.ok.tolist() == [True, True, False, False]
    assert res.embeddings.shape == (2, 8) and np.isfinite(res.embeddings).all()
    reasons = dict((p.name, r) for p, r in res.failures)
    assert set(reasons) == {"zero.jpg", "bomb.png"} and all(reasons.values())
    assert sorted(p.name for p in d.iterdir()) == before
