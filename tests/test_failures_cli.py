"""``lfs-gui failures`` and ``lfs-gui compare`` end to end on the shipped demo index and on index
folders written with the real writer (:func:`lfs_gui.index.store.save_index`)."""

from __future__ import annotations

import csv
import json
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import run_cli  # noqa: E402

from lfs_gui.index import EmbeddingIndex, load_index, retrieval_metrics, save_index  # noqa: E402
from lfs_gui.paths import demo_index_dir  # noqa: E402


@pytest.fixture(scope="module")
def demo_index() -> EmbeddingIndex:
    return load_index(demo_index_dir())


def _second_model(demo: EmbeddingIndex, folder: Path, drop: int = 0, seed: int = 1) -> Path:
    """Another "model" over the demo gallery: noisier embeddings, rows stored in another order."""
    rng = np.random.default_rng(seed)
    x = demo.embeddings + 0.12 * rng.standard_normal(demo.embeddings.shape).astype(np.float32)
    perm = rng.permutation(len(demo))[drop:]
    meta = demo.meta
    meta_b = replace(meta, relpaths=[meta.relpaths[i] for i in perm], labels=[meta.labels[i] for i in perm],
                     decoder_file=None)
    save_index(EmbeddingIndex(x[perm], "flat", meta_b, normalize=True), folder)
    return folder


def test_failures_count_equals_recall_and_writes_tables(demo_index: EmbeddingIndex, tmp_path: Path) -> None:
    rc, out, err = run_cli("failures", "demo", "--top", "3", "--out", tmp_path, "--format", "png,svg", "--json",
                           "--device", "cpu")
    assert rc == 0, err
    s = json.loads(out)
    n = len(demo_index)
    r1 = retrieval_metrics(demo_index.embeddings, demo_index.meta.labels, (1,)).recall[1]
    assert s["queries"] == n and s["recall_at_1"] == pytest.approx(r1)
    assert s["failures"] == round((1 - r1) * n) > 0
    margins = [w["margin"] for w in s["worst"]]
    assert len(margins) == 3 and margins == sorted(margins, reverse=True) and margins[-1] > 0
    with open(tmp_path / "queries.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["id"]) for r in rows] == list(range(n))
    assert sum(r["r_at_1"] == "0" for r in rows) == s["failures"]
    with open(tmp_path / "failures.csv", newline="") as fh:
        fails = list(csv.DictReader(fh))
    assert len(fails) == s["failures"] and [int(f["id"]) for f in fails[:3]] == [w["id"] for w in s["worst"]]
    with open(tmp_path / "classes.csv", newline="") as fh:
        classes = list(csv.DictReader(fh))
    assert sum(int(c["failures"]) for c in classes) == s["failures"]
    assert float(classes[0]["r_at_1"]) <= float(classes[-1]["r_at_1"])
    with Image.open(tmp_path / "failure_sheet.png") as im:
        assert im.height > 0.9 * im.width  # three rows of four panels
    assert ET.parse(tmp_path / "failure_sheet.svg").getroot().tag.endswith("svg")


def test_failures_class_filter_and_bad_input(tmp_path: Path) -> None:
    rc, out, err = run_cli("failures", "demo", "--class", "vegetables", "--json")
    assert rc == 0, err
    s = json.loads(out)
    assert s["worst"] and all(w["class"] == "vegetables" for w in s["worst"])
    veg = next(c for c in s["classes"] if c["class"] == "vegetables")
    assert s["failures_shown"] == veg["failures"]
    rc, _, err = run_cli("failures", "demo", "--class", "zebras")
    assert rc == 2 and "--class zebras: no such class" in err and "vegetables" in err
    rc, _, err = run_cli("failures", "demo", "--format", "gif")
    assert rc == 2 and "--format gif" in err
    rc, _, err = run_cli("failures", tmp_path / "nothing")
    assert rc == 2 and "nothing" in err


def test_failures_of_an_unlabelled_index_is_a_clear_error(demo_index: EmbeddingIndex, tmp_path: Path) -> None:
    meta = replace(demo_index.meta, labels=[None] * len(demo_index), decoder_file=None)
    save_index(EmbeddingIndex(demo_index.embeddings, "flat", meta), tmp_path / "flat")
    rc, _, err = run_cli("failures", tmp_path / "flat")
    assert rc == 2 and "344 of 344 images have no class" in err


def test_compare_two_models(demo_index: EmbeddingIndex, tmp_path: Path) -> None:
    b = _second_model(demo_index, tmp_path / "b")
    rc, out, err = run_cli("compare", "demo", b, "--top", "5", "--out", tmp_path / "cmp", "--json")
    assert rc == 0, err
    s = json.loads(out)
    la = demo_index.meta.labels
    r_a = retrieval_metrics(demo_index.embeddings, la, (1,)).recall[1]
    ib = load_index(b)
    r_b = retrieval_metrics(ib.embeddings, ib.meta.labels, (1,)).recall[1]
    assert s["a"]["recall_at_1"] == pytest.approx(r_a) and s["b"]["recall_at_1"] == pytest.approx(r_b)
    assert s["disagreements"] == s["only_a_right"] + s["only_b_right"] > 0
    # every model's failures = both wrong + the disagreements it loses
    assert s["a"]["failures"] - s["only_b_right"] == s["b"]["failures"] - s["only_a_right"]
    m = [w["margin"] for w in s["worst"]]
    assert m == sorted(m, reverse=True)
    with open(tmp_path / "cmp" / "disagreements.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == s["disagreements"]
    with open(tmp_path / "cmp" / "classes.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(demo_index.meta.classes)
    rc, out, err = run_cli("compare", "demo", b)
    assert rc == 0 and "disagreements" in out


def test_compare_mismatch_says_how_many_differ(demo_index: EmbeddingIndex, tmp_path: Path) -> None:
    b = _second_model(demo_index, tmp_path / "b", drop=5)
    rc, out, err = run_cli("compare", "demo", b)
    assert rc == 2 and out == ""
    assert "5 of demo's 344 images are not in" in err and "0 of" in err
