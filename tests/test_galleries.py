"""Gallery readers on tiny real layouts written to tmp_path (real image files, real metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from lfs_gui.data.galleries import Gallery, GalleryError, detect_kind, open_gallery


def write_image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    fmt = {".png": "PNG", ".bmp": "BMP"}.get(path.suffix.lower(), "JPEG")
    img.save(path, format=fmt)
    return path


def make_cub_official(root: Path, n_classes: int = 4, per_class: int = 3, boxes: bool = True) -> Path:
    """CUB_200_2011 layout; image ids 1..N grouped by class; odd ids are official-train."""
    cub = root / "CUB_200_2011"
    images, labels, split, bbox, classes = [], [], [], [], []
    iid = 0
    for c in range(1, n_classes + 1):
        cname = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {cname}")
        for j in range(per_class):
            iid += 1
            rel = f"{cname}/Bird_{c}_{j:04d}.jpg"
            write_image(cub / "images" / rel, iid)
            images.append(f"{iid} {rel}")
            labels.append(f"{iid} {c}")
            split.append(f"{iid} {iid % 2}")
            bbox.append(f"{iid} {iid}.0 2.0 10.0 20.0")
    (cub / "images.txt").write_text("\n".join(images) + "\n")
    (cub / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (cub / "classes.txt").write_text("\n".join(classes) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(split) + "\n")
    if boxes:
        (cub / "bounding_boxes.txt").write_text("\n".join(bbox) + "\n")
    return cub


def make_dml(root: Path, class_names: list[str], per_class: int = 2) -> Path:
    for c, name in enumerate(class_names):
        for j in range(per_class):
            write_image(root / "images" / name / f"img_{j}.jpg", c * 10 + j)
    return root


def make_cars_stanford(root: Path, n_classes: int = 4, per_class: int = 2) -> Path:
    """cars_annos.mat in the Stanford struct layout + car_ims/; image k is official-test if k odd."""
    n = n_classes * per_class
    dtype = [("relative_im_path", "O"), ("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"),
             ("bbox_y2", "O"), ("class", "O"), ("test", "O")]
    ann = np.zeros((1, n), dtype=dtype)
    for k in range(n):
        rel = f"car_ims/{k + 1:06d}.jpg"
        write_image(root / rel, k)
        cls = k // per_class + 1
        ann[0, k] = (rel, np.array([[k]], np.uint8), np.array([[1]], np.uint8), np.array([[30]], np.uint8),
                     np.array([[40]], np.uint8), np.array([[cls]], np.uint8), np.array([[k % 2]], np.uint8))
    names = np.empty((1, n_classes), dtype=object)
    names[0, :] = [f"Make Model {c} 2012" for c in range(1, n_classes + 1)]
    sio.savemat(str(root / "cars_annos.mat"), {"annotations": ann, "class_names": names})
    return root


# -- CUB --------------------------------------------------------------------------------------------
def test_cub_official_splits_labels_boxes(tmp_path: Path) -> None:
    cub = make_cub_official(tmp_path)
    test = open_gallery(tmp_path)  # finds CUB_200_2011/ below
    assert test.kind == "cub-official" and test.split == "test" and test.root == cub.resolve()
    assert len(test) == 6 and test.classes[0] == "001.Bird_1" and len(test.classes) == 4
    assert [it.label for it in test.items] == [2, 2, 2, 3, 3, 3]
    assert test.items[0].relpath == "images/003.Bird_3/Bird_3_0000.jpg"
    assert test.items[0].class_name == "003.Bird_3" and test.items[0].path.is_file()
    assert test.items[0].bbox == (7.0, 2.0, 17.0, 22.0)  # id 7: x=7, y=2, w=10, h=20
    train = open_gallery(cub, split="train")
    assert [it.label for it in train.items] == [0, 0, 0, 1, 1, 1]
    assert len(open_gallery(cub, split="all")) == 12
    off_train = open_gallery(cub, split="official-train")
    off_test = open_gallery(cub, split="official-test")
    assert len(off_train) == 6 and len(off_test) == 6
    assert set(off_train.relpaths).isdisjoint(off_test.relpaths)
    assert off_train.items[0].relpath.endswith("Bird_1_0000.jpg")  # id 1 -> is_training 1


def test_cub_official_missing_file_is_skipped_and_bad_line_named(tmp_path: Path) -> None:
    cub = make_cub_official(tmp_path, boxes=False)
    (cub / "images" / "004.Bird_4" / "Bird_4_0001.jpg").unlink()
    gal = open_gallery(cub, split="test")
    assert len(gal) == 5 and gal.skipped == ["images/004.Bird_4/Bird_4_0001.jpg"]
    assert gal.items[0].bbox is None
    (cub / "image_class_labels.txt").write_text("1 1\n2\n")
    with pytest.raises(GalleryError, match=r"image_class_labels.txt, line 2"):
        open_gallery(cub)


def test_cub_dml_numeric_class_order_and_resource_forks(tmp_path: Path) -> None:
    root = make_dml(tmp_path / "cub200", ["10.Ten", "2.Two", "1.One", "3.Three"])
    write_image(root / "images" / "1.One" / "._img_0.jpg")
    (root / "images" / "._10.Ten").mkdir()
    (root / "images" / "1.One" / "notes.txt").write_text("x")
    gal = open_gallery(root, split="all")
    assert gal.kind == "cub-dml"
    assert gal.classes == ["1.One", "2.Two", "3.Three", "10.Ten"]
    assert len(gal) == 8 and all(not Path(r).name.startswith("._") for r in gal.relpaths)
    test = open_gallery(root)
    assert test.split == "test" and {it.class_name for it in test.items} == {"3.Three", "10.Ten"}
    assert [it.label for it in test.items] == [2, 2, 3, 3]
    with pytest.raises(GalleryError, match="official"):
        open_gallery(root, split="official-test")


# -- Cars -------------------------------------------------------------------------------------------
def test_cars_dml_string_sorted_halves(tmp_path: Path) -> None:
    names = ["b_car", "A_car", "c_car", "a_car"]
    root = make_dml(tmp_path / "cars196", names, per_class=3)
    gal = open_gallery(root)
    assert gal.kind == "cars-dml" and gal.split == "test"
    assert gal.classes == sorted(names)
    assert {it.class_name for it in gal.items} == {"b_car", "c_car"} and len(gal) == 6
    assert len(open_gallery(root, split="train")) == 6 and len(open_gallery(root, split="all")) == 12


def test_cars_stanford_mat(tmp_path: Path) -> None:
    root = make_cars_stanford(tmp_path / "stanford_cars")
    for target in (root, root / "cars_annos.mat"):
        gal = open_gallery(target)
        assert gal.kind == "cars-stanford" and gal.root == root.resolve()
        assert gal.classes == [f"Make Model {c} 2012" for c in range(1, 5)]
        assert gal.relpaths == ["car_ims/000005.jpg", "car_ims/000006.jpg", "car_ims/000007.jpg", "car_ims/000008.jpg"]
        assert [it.label for it in gal.items] == [2, 2, 3, 3]
    assert gal.items[0].bbox == (4.0, 1.0, 30.0, 40.0)
    off_test = open_gallery(root, split="official-test")
    assert off_test.relpaths == [f"car_ims/{k:06d}.jpg" for k in (2, 4, 6, 8)]
    assert len(open_gallery(root, split="official-train")) == 4
    (root / "cars_annos.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(GalleryError, match="cars_annos.mat"):
        open_gallery(root)


# -- generic folders, single images -----------------------------------------------------------------
def test_class_folders_flat_and_single(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    write_image(root / "dogs" / "a.JPG")
    write_image(root / "dogs" / "sub" / "b.png")
    write_image(root / "cats" / "c.jpeg")
    write_image(root / "cats" / ".hidden.jpg")
    write_image(root / "loose.bmp")
    (root / "empty").mkdir()
    gal = open_gallery(root)
    assert gal.kind == "folder" and gal.split == "all" and gal.classes == ["cats", "dogs"]
    assert gal.relpaths == ["cats/c.jpeg", "dogs/a.JPG", "dogs/sub/b.png"]
    assert [it.label for it in gal.items] == [0, 1, 1] and gal.skipped == ["loose.bmp"]
    assert gal.has_labels and list(gal.labels_array()) == [0, 1, 1]

    flat = tmp_path / "flat"
    for name in ("b.png", "a.jpg", "c.webp.txt"):
        (write_image(flat / name) if not name.endswith(".txt") else (flat / name).write_text("x"))
    fg = open_gallery(flat)
    assert fg.kind == "flat" and fg.relpaths == ["a.jpg", "b.png"] and fg.items[0].label is None
    assert not fg.has_labels and list(fg.labels_array()) == [-1, -1]
    with pytest.raises(GalleryError, match="no 'test' split"):
        open_gallery(flat, split="test")

    single = open_gallery(flat / "b.png")
    assert single.kind == "single" and len(single) == 1 and single.items[0].path == (flat / "b.png").resolve()


def test_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="nope.*does not exist"):
        open_gallery(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalleryError, match="empty.*no images"):
        open_gallery(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(GalleryError, match="x.txt"):
        open_gallery(tmp_path / "x.txt")
    write_image(tmp_path / "one" / "a.jpg")
    with pytest.raises(GalleryError, match="one.*unknown split 'val'"):
        open_gallery(tmp_path / "one", split="val")
    assert issubclass(GalleryError, ValueError)


def test_kind_override_and_detect(tmp_path: Path) -> None:
    root = make_dml(tmp_path / "birds", ["b", "a"])  # not car-named, not numeric: a plain folder
    assert detect_kind(root) == ("folder", root / "images")
    plain = open_gallery(root)
    assert plain.kind == "folder" and plain.classes == ["a", "b"] and plain.relpaths[0] == "a/img_0.jpg"
    write_image(root / "extra" / "x.jpg")  # images/ is then just one class folder among others
    assert detect_kind(root) == ("folder", root)
    gal = open_gallery(root, kind="cars-dml", split="all")
    assert gal.kind == "cars-dml" and gal.classes == ["a", "b"]
    with pytest.raises(GalleryError, match="unknown gallery kind"):
        open_gallery(root, kind="imagenet")


def test_subset_keeps_order_and_skipped(tmp_path: Path) -> None:
    cub = make_cub_official(tmp_path)
    gal = open_gallery(cub, split="all")
    ok = np.ones(len(gal), bool)
    ok[[1, 5]] = False
    sub = gal.subset(ok)
    assert isinstance(sub, Gallery) and len(sub) == len(gal) - 2
    assert sub.relpaths == [r for r, m in zip(gal.relpaths, ok) if m]
    assert sub.skipped == [gal.relpaths[1], gal.relpaths[5]] and gal.skipped == []
    assert sub.classes == gal.classes and sub.kind == gal.kind
    with pytest.raises(ValueError, match="mask"):
        gal.subset([True])
