"""Cars-196 readers: the Deep-Metric-Learning-Baselines layout and the original Stanford release.

DML-Baselines (``cars196/images/<class name>/*.jpg``): classes string-sorted, first 98 ``train``,
last 98 ``test``; files sorted by name.

Stanford (``cars_annos.mat`` next to ``car_ims/``): a MATLAB struct array ``annotations`` with fields
``relative_im_path`` (relative to the .mat's folder), ``bbox_x1``, ``bbox_y1``, ``bbox_x2``,
``bbox_y2``, ``class`` (1-based) and ``test`` (1 = official test image), and a cell array
``class_names``. Labels follow the class ids (so the metric-learning split is classes 1-98 /
99-196); items keep the annotation order. ``official-train``/``official-test`` use the ``test`` field.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.data.gallery_types import (
    Gallery,
    GalleryError,
    GalleryItem,
    visible_dirs,
    from_class_folders,
    split_halves,
)

log = logging.getLogger(__name__)

_FIELDS = ("relative_im_path", "class", "test")
_BOX = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def read_cars_dml(root: Path, split: str = "test") -> Gallery:
    """DML-Baselines ``cars196/`` (``images/<class>/``); no official split in this layout."""
    if split.startswith("official-"):
        raise GalleryError(f"{root}: the DML-Baselines Cars layout has no official image split; "
                           "use --split train|test|all, or point at the folder holding cars_annos.mat")
    image_root = root / "images"
    if not image_root.is_dir():
        raise GalleryError(f"{image_root}: missing; a DML-Baselines Cars folder holds images/<class>/")
    dirs = sorted((d for d in visible_dirs(image_root) if not d.name.startswith("._")), key=lambda d: d.name)
    return from_class_folders(root, image_root, dirs, "cars-dml", split, "Cars-196")


def _scalar(v: Any) -> Any:
    """First element of a MATLAB cell/array value (loadmat wraps scalars and strings in arrays)."""
    arr = np.asarray(v).ravel()
    if arr.size == 0:
        raise ValueError("empty value")
    x = arr[0]
    return _scalar(x) if isinstance(x, np.ndarray) else x


def load_cars_annos(mat_path: Path) -> tuple[list[dict], list[str]]:
    """``([{'relpath', 'class_id', 'test', 'bbox'}...], class_names)`` from ``cars_annos.mat``."""
    from scipy.io import loadmat

    fix = "re-download cars_annos.mat from the Stanford Cars release"
    try:
        mat = loadmat(str(mat_path))
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError for damaged files
        raise GalleryError(f"{mat_path}: not a readable MATLAB file ({exc}); {fix}") from exc
    if "annotations" not in mat or "class_names" not in mat:
        raise GalleryError(f"{mat_path}: needs variables 'annotations' and 'class_names'; {fix}")
    ann = np.asarray(mat["annotations"]).ravel()
    names_of = ann.dtype.names or ()
    missing = [f for f in _FIELDS if f not in names_of]
    if missing:
        raise GalleryError(f"{mat_path}: annotations lack field(s) {', '.join(missing)}; {fix}")
    has_box = all(f in names_of for f in _BOX)
    try:
        class_names = [str(_scalar(c)) for c in np.asarray(mat["class_names"]).ravel()]
        rows = []
        for a in ann:
            box = tuple(float(_scalar(a[f])) for f in _BOX) if has_box else None
            rows.append({"relpath": str(_scalar(a["relative_im_path"])), "class_id": int(_scalar(a["class"])),
                         "test": bool(int(_scalar(a["test"]))), "bbox": box})
    except (ValueError, TypeError, IndexError) as exc:
        raise GalleryError(f"{mat_path}: malformed annotation ({exc}); {fix}") from exc
    return rows, class_names


def read_cars_stanford(root: Path, split: str = "test") -> Gallery:
    """Stanford Cars folder with ``cars_annos.mat``; ``split`` as in :mod:`lfs_gui.data.galleries`."""
    mat_path = root / "cars_annos.mat"
    rows, classes = load_cars_annos(mat_path)
    if split.startswith("official-"):
        keep_labels = set(range(len(classes)))
    else:
        keep_labels = split_halves(classes, split, root)
    items: list[GalleryItem] = []
    missing: list[str] = []
    for r in rows:
        label = r["class_id"] - 1
        if not 0 <= label < len(classes):
            raise GalleryError(f"{mat_path}: {r['relpath']} has class {r['class_id']}, outside 1..{len(classes)}")
        if label not in keep_labels:
            continue
        if split.startswith("official-") and r["test"] != (split == "official-test"):
            continue
        relpath = r["relpath"].replace("\\", "/")
        path = root / relpath
        if not path.is_file():
            missing.append(relpath)
            continue
        items.append(GalleryItem(path.resolve(), relpath, label, classes[label], r["bbox"]))
    if missing:
        log.warning("%s: %d images listed in cars_annos.mat are missing on disk", root, len(missing))
    if not items:
        raise GalleryError(f"{root}: no images of split {split!r} found on disk (paths from {mat_path.name})")
    return Gallery(name="Cars-196", root=root, items=items, classes=classes, kind="cars-stanford",
                   split=split, skipped=missing)
