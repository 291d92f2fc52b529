"""CUB-200-2011 readers: the official release layout and the Deep-Metric-Learning-Baselines layout.

Official (``CUB_200_2011/``): ``images/<class>/<file>.jpg`` with ``images.txt`` (``id relpath``),
``image_class_labels.txt`` (``id class_id``, 1-based), ``classes.txt`` (``class_id name``),
``train_test_split.txt`` (``id is_training``) and optional ``bounding_boxes.txt``
(``id x y width height``). Items keep the order of ``images.txt``.

DML-Baselines (``cub200/images/<NNN.Name>/*.jpg``): classes sorted by their numeric prefix, files
sorted by name, ``._*`` skipped. No official image split there.

Both: the metric-learning split puts the first half of the classes (1-100) in ``train`` and the
second half (101-200) in ``test``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lfs_gui.data.gallery_types import (
    Gallery,
    GalleryError,
    GalleryItem,
    visible_dirs,
    from_class_folders,
    split_halves,
)

log = logging.getLogger(__name__)

_FIX = "check the file against the CUB-200-2011 release (one `<image_id> <value>` per line)"


def read_id_table(path: Path, ncols: int) -> dict[int, list[str]]:
    """``{id: [col1, ...]}`` from a whitespace-separated CUB metadata file with ``ncols`` values."""
    table: dict[int, list[str]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GalleryError(f"{path}: cannot be read ({exc}); {_FIX}") from exc
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=ncols)
        if len(parts) != ncols + 1:
            raise GalleryError(f"{path}, line {lineno}: expected {ncols + 1} fields, got {line!r}; {_FIX}")
        try:
            key = int(parts[0])
        except ValueError as exc:
            raise GalleryError(f"{path}, line {lineno}: id {parts[0]!r} is not an integer; {_FIX}") from exc
        table[key] = parts[1:]
    return table


def read_cub_official(root: Path, split: str = "test") -> Gallery:
    """The official CUB_200_2011 folder; ``split`` as in :mod:`lfs_gui.data.galleries`."""
    images = read_id_table(root / "images.txt", 1)
    labels_tab = read_id_table(root / "image_class_labels.txt", 1)
    try:
        labels = {k: int(v[0]) for k, v in labels_tab.items()}
    except ValueError as exc:
        raise GalleryError(f"{root / 'image_class_labels.txt'}: class ids must be integers; {_FIX}") from exc

    if (root / "classes.txt").is_file():
        classes_tab = read_id_table(root / "classes.txt", 1)
        class_ids = sorted(classes_tab)
        names = {cid: classes_tab[cid][0] for cid in class_ids}
    else:  # class name = image folder name
        names = {}
        for iid, (rel,) in images.items():
            names.setdefault(labels.get(iid, -1), rel.split("/")[0])
        class_ids = sorted(c for c in names if c >= 0)
    label_of = {cid: i for i, cid in enumerate(class_ids)}
    classes = [names[cid] for cid in class_ids]

    official: dict[int, bool] | None = None
    if split.startswith("official-"):
        split_file = root / "train_test_split.txt"
        if not split_file.is_file():
            raise GalleryError(f"{split_file}: missing, needed for --split {split}; use --split train|test|all")
        official = {k: v[0] == "1" for k, v in read_id_table(split_file, 1).items()}
        keep_labels = set(range(len(classes)))
    else:
        keep_labels = split_halves(classes, split, root)

    boxes: dict[int, tuple[float, float, float, float]] = {}
    if (root / "bounding_boxes.txt").is_file():
        for iid, vals in read_id_table(root / "bounding_boxes.txt", 4).items():
            try:
                x, y, w, h = (float(v) for v in vals)
            except ValueError as exc:
                raise GalleryError(f"{root / 'bounding_boxes.txt'}: image {iid}: box values must be numbers") from exc
            boxes[iid] = (x, y, x + w, y + h)

    items: list[GalleryItem] = []
    missing: list[str] = []
    for iid, (rel,) in images.items():
        if iid not in labels or labels[iid] not in label_of:
            raise GalleryError(f"{root / 'image_class_labels.txt'}: no valid class for image {iid} ({rel}); {_FIX}")
        label = label_of[labels[iid]]
        if label not in keep_labels:
            continue
        if official is not None:
            if iid not in official:
                raise GalleryError(f"{root / 'train_test_split.txt'}: image {iid} ({rel}) missing; {_FIX}")
            if official[iid] != (split == "official-train"):
                continue
        relpath = f"images/{rel}"
        path = root / "images" / rel
        if not path.is_file():
            missing.append(relpath)
            continue
        items.append(GalleryItem(path.resolve(), relpath, label, classes[label], boxes.get(iid)))
    if missing:
        log.warning("%s: %d images listed in images.txt are missing on disk", root, len(missing))
    if not items:
        raise GalleryError(f"{root}: no images of split {split!r} found on disk under images/")
    return Gallery(name="CUB-200-2011", root=root, items=items, classes=classes, kind="cub-official",
                   split=split, skipped=missing)


def read_cub_dml(root: Path, split: str = "test") -> Gallery:
    """DML-Baselines ``cub200/`` (``images/<NNN.Name>/``); no official split in this layout."""
    if split.startswith("official-"):
        raise GalleryError(f"{root}: the DML-Baselines layout has no official image split; "
                           "use --split train|test|all, or point at the official CUB_200_2011 folder")
    image_root = root / "images"
    if not image_root.is_dir():
        raise GalleryError(f"{image_root}: missing; a DML-Baselines CUB folder holds images/<NNN.Class>/")
    dirs = [d for d in visible_dirs(image_root) if not d.name.startswith("._")]
    try:
        dirs.sort(key=lambda d: (int(d.name.split(".")[0]), d.name))
    except ValueError as exc:
        raise GalleryError(f"{image_root}: class folders must be named <number>.<name> (e.g. 001.Black_footed_Albatross)") from exc
    gal = from_class_folders(root, image_root, dirs, "cub-dml", split, "CUB-200-2011")
    return gal
