"""Checks on the committed demo gallery (``resources/demo``); needs no Debian packages."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from lfs_gui.paths import demo_gallery_dir

MAX_SIDE = 256
MAX_BYTES = 10 * 1024 * 1024
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
KNOWN_LICENCES = {"GPL-2.0-or-later", "GPL-3.0-or-later", "CC0-1.0", "public-domain"}


@pytest.fixture(scope="module")
def gallery() -> Path:
    root = demo_gallery_dir()
    assert (root / "labels.csv").is_file(), f"{root}/labels.csv missing"
    return root


@pytest.fixture(scope="module")
def rows(gallery: Path) -> list[dict[str, str]]:
    with (gallery / "labels.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_labels_columns(rows: list[dict[str, str]]) -> None:
    assert rows
    for col in ("relpath", "class", "fine_label", "source_package", "source_path", "licence",
                "credit"):
        assert col in rows[0], col
    for r in rows:
        assert r["class"] and r["fine_label"] and r["source_path"] and r["credit"], r


def test_every_image_decodes_rgb_and_small(gallery: Path, rows: list[dict[str, str]]) -> None:
    for r in rows:
        path = gallery / r["relpath"]
        assert path.is_file(), r["relpath"]
        with Image.open(path) as im:
            im.load()
            assert im.mode == "RGB", (r["relpath"], im.mode)
            assert max(im.size) <= MAX_SIDE, (r["relpath"], im.size)
            assert min(im.size) >= 8, (r["relpath"], im.size)
            lo, hi = zip(*im.getextrema())
            assert max(hi) - min(lo) > 32, f"{r['relpath']} looks blank"


def test_folder_layout_matches_labels(gallery: Path, rows: list[dict[str, str]]) -> None:
    """The folder alone is a "class = sub-folder" gallery, with the same images as labels.csv."""
    on_disk = {
        p.relative_to(gallery).as_posix()
        for p in (gallery / "images").rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    }
    listed = [r["relpath"] for r in rows]
    assert len(listed) == len(set(listed)), "duplicate relpath in labels.csv"
    assert on_disk == set(listed)
    for r in rows:
        parts = Path(r["relpath"]).parts
        assert len(parts) == 3 and parts[0] == "images" and parts[1] == r["class"], r["relpath"]


def test_every_image_attributed(gallery: Path, rows: list[dict[str, str]]) -> None:
    text = (gallery / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "placeholder" not in text.splitlines()[0].lower()
    assert "GPL-2" in text and "Tux Paint" in text
    lines = {line for line in text.splitlines() if line.startswith("| `images/")}
    for r in rows:
        row_line = [ln for ln in lines if ln.startswith(f"| `{r['relpath']}` |")]
        assert len(row_line) == 1, r["relpath"]
        assert f"| {r['licence']} |" in row_line[0], r["relpath"]


def test_licences_are_stated(rows: list[dict[str, str]]) -> None:
    for r in rows:
        lic = r["licence"]
        assert lic in KNOWN_LICENCES or lic.startswith(("CC-BY-", "CC-BY-SA-")), (r["relpath"], lic)
        if r["source_package"] == "tuxpaint-stamps-default":
            assert lic == "GPL-2.0-or-later", r["relpath"]


def test_total_size(gallery: Path) -> None:
    total = sum(p.stat().st_size for p in gallery.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"demo gallery is {total} bytes"


def test_classes_and_split(gallery: Path, rows: list[dict[str, str]]) -> None:
    counts = Counter(r["class"] for r in rows)
    assert len(counts) >= 8
    assert all(n >= 10 for n in counts.values()), counts
    classes = sorted(counts)
    half = len(classes) // 2
    train, test = classes[:half], classes[half:]
    assert len(train) >= 4 and len(test) >= 4
    meta = json.loads((gallery / "gallery.json").read_text(encoding="utf-8"))
    assert meta["classes"] == classes
    assert meta["counts"] == dict(counts)
    assert meta["train_classes"] == train and meta["test_classes"] == test
    assert meta["total_images"] == len(rows)


def test_labels_sorted(rows: list[dict[str, str]]) -> None:
    keys = [(r["class"], r["relpath"]) for r in rows]
    assert keys == sorted(keys)
