"""Attribute readers on files in the datasets' own formats: CUB-200-2011 (incl. the rows with an extra
field, both places of attributes.txt, the DML-Baselines layout), AwA2-style matrices, the demo's
hand-written matrix, and the clear errors (Cars-196 has none, malformed rows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lfs_gui.data.attributes import (
    AttributesUnavailable,
    find_attribute_source,
    gallery_attributes,
    pretty_name,
    read_cub_image_labels,
    read_id_names,
)
from lfs_gui.data.galleries import open_gallery
from lfs_gui.paths import demo_gallery_dir

from _attribute_fixtures import write_awa, write_cub_attributes
from test_galleries import make_cub_official, make_dml

NAMES = ["has_bill_shape::curved_(up_or_down)", "has_wing_color::blue", "has_size::small_(5_-_9_in)"]


def _cub(tmp_path: Path, names_inside: bool = False) -> Path:
    cub = make_cub_official(tmp_path, n_classes=2, per_class=3)  # image ids 1..6, classes 1, 1, 1, 2, 2, 2
    labels = {iid: [(1, 4), (0, 3), (1, 3)] for iid in range(1, 7)}
    labels[2] = [(1, 2), (0, 1), (1, 4)]  # guessing -> unknown; not visible -> unknown
    labels[5] = [(0, 4), (1, 4), (0, 2)]
    percent = np.array([[100.0, 0.0, 66.66666667], [0.0, 49.9, 50.0]])
    write_cub_attributes(cub, labels, NAMES, class_percent=percent, names_inside=names_inside)
    return cub


def test_cub_image_labels_certainty_rules_and_odd_rows(tmp_path: Path) -> None:
    cub = _cub(tmp_path)
    lines = (cub / "attributes" / "image_attribute_labels.txt").read_text().splitlines()
    assert sorted({len(line.split()) for line in lines}) == [5, 6]  # the real file's odd rows are there
    ids, present, cert = read_cub_image_labels(cub / "attributes" / "image_attribute_labels.txt", 3)
    assert ids.tolist() == [1, 2, 3, 4, 5, 6] and present.shape == cert.shape == (6, 3)
    gal = open_gallery(cub, split="all")
    src = find_attribute_source(gal.root, gal.kind)
    assert src.kind == "cub" and src.names_file == cub.parent / "attributes.txt"
    ga = gallery_attributes(src, gal.relpaths, gal.labels_array(), gal.classes)
    assert ga.level == "image" and ga.names == NAMES
    by_rel = {rel.split("/")[-1]: i for i, rel in enumerate(gal.relpaths)}
    i1, i2, i5 = by_rel["Bird_1_0000.jpg"], by_rel["Bird_1_0001.jpg"], by_rel["Bird_2_0001.jpg"]
    assert ga.labels[i1].tolist() == [1, 0, 1] and ga.known[i1].all()
    assert ga.labels[i2].tolist() == [0, 0, 1] and ga.known[i2].tolist() == [False, False, True]
    assert ga.labels[i5].tolist() == [0, 1, 0] and ga.known[i5].tolist() == [True, True, False]


def test_cub_names_inside_attributes_folder_and_class_level(tmp_path: Path) -> None:
    cub = _cub(tmp_path, names_inside=True)
    gal = open_gallery(cub, split="all")
    src = find_attribute_source(gal.root, gal.kind)
    assert src.names_file == cub / "attributes" / "attributes.txt"
    ga = gallery_attributes(src, gal.relpaths, gal.labels_array(), gal.classes, level="class")
    assert ga.level == "class" and ga.known.all()
    rows = {tuple(r) for r in ga.labels[gal.labels_array() == 0].tolist()}
    assert rows == {(1.0, 0.0, 1.0)}
    assert {tuple(r) for r in ga.labels[gal.labels_array() == 1].tolist()} == {(0.0, 0.0, 1.0)}  # 49.9 < 50 <= 50


def test_dml_layout_matches_cub_files_by_path(tmp_path: Path) -> None:
    cub = _cub(tmp_path / "official")
    dml = make_dml(tmp_path / "cub200", ["001.Bird_1", "002.Bird_2"], per_class=1)
    # DML-Baselines keeps CUB's own file names
    for c in (1, 2):
        src_img = cub / "images" / f"00{c}.Bird_{c}" / f"Bird_{c}_0000.jpg"
        (dml / "images" / f"00{c}.Bird_{c}" / "img_0.jpg").rename(dml / "images" / f"00{c}.Bird_{c}" / src_img.name)
    gal = open_gallery(dml, split="all")
    with pytest.raises(AttributesUnavailable, match="--attributes-from"):
        find_attribute_source(gal.root, gal.kind)
    src = find_attribute_source(gal.root, gal.kind, explicit=cub)
    ga = gallery_attributes(src, gal.relpaths, gal.labels_array(), gal.classes)
    assert ga.labels.tolist() == [[1, 0, 1], [1, 0, 1]] and ga.known.all()


def test_awa_matrix_matches_classes_by_name(tmp_path: Path) -> None:
    folder = write_awa(tmp_path / "awa", ["grizzly+bear", "killer+whale", "zebra"], ["black", "white", "stripes"],
                       np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]]))
    labels = np.array([0, 1, 1, 2])
    ga = gallery_attributes(find_attribute_source(tmp_path, "folder", explicit=folder / "predicate-matrix-binary.txt"),
                            ["a", "b", "c", "d"], labels, ["Grizzly_Bear", "killer whale", "okapi"])
    assert ga.level == "class"
    assert ga.labels.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert ga.known[:3].all() and not ga.known[3].any()  # okapi has no row: unknown, not negative


def test_cars_has_no_attributes_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(AttributesUnavailable, match="Cars-196 has no attribute annotations"):
        find_attribute_source(tmp_path, "cars-stanford")
    with pytest.raises(AttributesUnavailable, match="no attribute data found"):
        find_attribute_source(tmp_path, "folder")


def test_malformed_files_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "image_attribute_labels.txt"
    p.write_text("1 1 1 4 0.5\n1 2 1 7 0.5\n")
    with pytest.raises(AttributesUnavailable, match="line 2"):
        read_cub_image_labels(p, 2)
    p.write_text("1 1 1\n")
    with pytest.raises(AttributesUnavailable, match="line 1: 3 fields"):
        read_cub_image_labels(p, 2)
    q = tmp_path / "predicates.txt"
    q.write_text("1\tblack\n3\twhite\n")
    with pytest.raises(AttributesUnavailable, match="without gaps"):
        read_id_names(q)
    folder = write_awa(tmp_path / "awa", ["a", "b"], ["x", "y"], np.array([[1, 0], [0, 1]]))
    (folder / "predicate-matrix-binary.txt").write_text("1 0\n0\n")
    with pytest.raises(AttributesUnavailable, match="predicate-matrix-binary.txt"):
        gallery_attributes(find_attribute_source(folder, "folder", folder), ["i"], np.array([0]), ["a"])


def test_the_demo_matrix_is_consistent_and_covers_the_gallery() -> None:
    root = demo_gallery_dir()
    src = find_attribute_source(root / "images", "folder")
    assert src.kind == "awa" and src.root == root / "attributes"
    names = read_id_names(src.root / "predicates.txt")
    classes = read_id_names(src.root / "classes.txt")
    assert 20 <= len(names) <= 40 and len(set(names)) == len(names)
    cont = np.loadtxt(src.root / "predicate-matrix-continuous.txt")
    binary = np.loadtxt(src.root / "predicate-matrix-binary.txt")
    assert cont.shape == binary.shape == (len(classes), len(names))
    assert np.array_equal(binary, (cont >= 50).astype(float))  # the documented rule
    assert binary.sum(axis=0).min() >= 1  # every attribute is shown by some class
    assert len({tuple(r) for r in binary}) == len(classes)  # every class has its own attribute set
    gal = open_gallery(root / "images")
    ga = gallery_attributes(src, gal.relpaths, gal.labels_array(), gal.classes)
    assert ga.known.all() and ga.labels.shape == (len(gal), len(names))


def test_pretty_names() -> None:
    assert pretty_name("has_bill_shape::curved_(up_or_down)") == "bill shape: curved (up or down)"
    assert pretty_name("white-background") == "white-background"
