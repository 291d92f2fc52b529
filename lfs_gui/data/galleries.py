"""Galleries: which image files make up a retrieval gallery, with labels and splits, no pixels.

A :class:`Gallery` lists image files plus metadata (class labels, class names, optional bounding
boxes). Readers never decode images: whether a file decodes is found out later by the embedder,
which then calls :meth:`Gallery.subset` with its ``ok`` mask; the dropped files are kept in
:attr:`Gallery.skipped` so that nothing is lost silently. Image ids are 0-based positions in
:attr:`Gallery.items`, everywhere (index rows, GUI selections, sidecars).

Layouts (``kind``) and how :func:`open_gallery` detects them, first match wins:

1. ``path`` is a file: ``cars_annos.mat`` -> ``cars-stanford``; an image file -> ``single``.
2. ``path`` (or ``path/CUB_200_2011``) holds ``images.txt``, ``image_class_labels.txt`` and
   ``images/`` -> ``cub-official``.
3. ``path`` holds ``cars_annos.mat`` -> ``cars-stanford``.
4. ``path/images/`` holds class folders, all named ``<number>.<name>`` -> ``cub-dml``; other class
   folders and ``car`` in the folder name (``cars196``) -> ``cars-dml``; otherwise, if no other
   sub-folder of ``path`` has images -> ``folder`` rooted at ``path/images``.
5. ``path`` has sub-folders with images -> ``folder`` (class = first-level sub-folder, images found
   recursively inside it; loose images at the top level are listed in ``skipped``).
6. ``path`` has images directly inside -> ``flat`` (labels ``None``).

``kind=`` skips detection. Splits: CUB and Cars default to ``test``, the metric-learning test half
(second half of the sorted classes: CUB classes 101-200, Cars 99-196); ``train`` is the first
half, ``all`` everything; ``official-train`` / ``official-test`` use the dataset's own image split
(``train_test_split.txt`` for CUB, the ``test`` field for Stanford Cars). ``folder`` defaults to
``all`` and also accepts ``train``/``test`` halves; ``flat`` and ``single`` accept only ``all``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from lfs_gui.data import cars, cub
from lfs_gui.data.gallery_types import (  # noqa: F401 - re-exported: the gallery API lives here
    IMAGE_EXTENSIONS,
    KINDS,
    SPLITS,
    Gallery,
    GalleryError,
    GalleryItem,
    check_split,
    ext_list,
    from_class_folders,
    is_image_file,
    list_images,
    relposix,
    split_halves,
    visible_dirs,
)
from lfs_gui.data.gallery_types import CUB_CLASS_DIR, DATASET_KINDS

log = logging.getLogger(__name__)


# -- generic readers ----------------------------------------------------------------------------
def read_single(path: Path) -> Gallery:
    """One external image (e.g. a query from outside any gallery); label ``None``."""
    path = path.resolve()
    if not path.is_file() or not is_image_file(path):
        raise GalleryError(f"{path}: not an image file (extensions: {ext_list()})")
    item = GalleryItem(path, path.name, None, None)
    return Gallery(name=path.stem, root=path.parent, items=[item], classes=[], kind="single", split="all")


def read_flat(root: Path, split: str = "all") -> Gallery:
    """Images directly inside ``root``, unlabelled."""
    root = root.resolve()
    if split != "all":
        raise GalleryError(f"{root}: an unlabelled folder has no {split!r} split; use --split all")
    items = [GalleryItem(p.resolve(), relposix(p, root), None, None) for p in list_images(root, recursive=False)]
    if not items:
        raise GalleryError(f"{root}: no images found (extensions: {ext_list()})")
    return Gallery(name=root.name, root=root, items=items, classes=[], kind="flat", split="all")


def read_folder(root: Path, split: str = "all") -> Gallery:
    """Class = first-level sub-folder (sorted by name); loose top-level images go to ``skipped``."""
    root = root.resolve()
    class_dirs = sorted((d for d in visible_dirs(root) if list_images(d)), key=lambda d: d.name)
    if not class_dirs:
        raise GalleryError(f"{root}: no sub-folders with images (extensions: {ext_list()})")
    gal = from_class_folders(root, root, class_dirs, "folder", split, root.name)
    loose = [relposix(p, root) for p in list_images(root, recursive=False)]
    if loose:
        log.warning("%s: %d images outside class folders are not part of the gallery", root, len(loose))
    return replace(gal, skipped=loose)


# -- detection ------------------------------------------------------------------------------------
def detect_kind(path: Path) -> tuple[str, Path]:
    """``(kind, root)`` for ``path`` by the rules in the module docstring; raises GalleryError."""
    if not path.exists():
        raise GalleryError(f"{path}: does not exist; give a gallery folder or an image file")
    if path.is_file():
        if path.name.lower() == "cars_annos.mat":
            return "cars-stanford", path.parent
        if is_image_file(path):
            return "single", path
        raise GalleryError(f"{path}: neither an image ({ext_list()}) nor a gallery folder")
    for cand in (path, path / "CUB_200_2011"):
        if (cand / "images.txt").is_file() and (cand / "image_class_labels.txt").is_file() and (cand / "images").is_dir():
            return "cub-official", cand
    if (path / "cars_annos.mat").is_file():
        return "cars-stanford", path
    images = path / "images"
    if images.is_dir():
        class_dirs = [d for d in visible_dirs(images) if not d.name.startswith("._")]
        if class_dirs and all(CUB_CLASS_DIR.match(d.name) for d in class_dirs):
            return "cub-dml", path
        if class_dirs and "car" in path.name.lower():
            return "cars-dml", path
        others = [d for d in visible_dirs(path) if d.name != "images" and list_images(d)]
        if not others and any(list_images(d) for d in class_dirs):
            return "folder", images  # a dataset folder whose classes sit under images/
    if any(list_images(d) for d in visible_dirs(path)):
        return "folder", path
    if list_images(path, recursive=False):
        return "flat", path
    raise GalleryError(f"{path}: no images found (looked for {ext_list()} files, and for CUB/Cars metadata)")


def open_gallery(path: str | Path, split: str | None = None, kind: str | None = None) -> Gallery:
    """Open the gallery at ``path``, detecting its layout unless ``kind`` is given.

    ``split`` defaults to ``test`` for CUB/Cars and ``all`` otherwise (see the module docstring).
    Raises :class:`GalleryError` naming the path for a missing/empty folder or a bad split.
    """
    path = Path(path).expanduser()
    if kind is None:
        kind, root = detect_kind(path)
    else:
        if kind not in KINDS:
            raise GalleryError(f"{path}: unknown gallery kind {kind!r}; use one of {', '.join(KINDS)}")
        if not path.exists():
            raise GalleryError(f"{path}: does not exist; give a gallery folder or an image file")
        root = path.parent if (kind == "cars-stanford" and path.is_file()) else path
    if split is None:
        split = "test" if kind in DATASET_KINDS else "all"
    check_split(split, path)
    readers = {
        "cub-official": cub.read_cub_official,
        "cub-dml": cub.read_cub_dml,
        "cars-dml": cars.read_cars_dml,
        "cars-stanford": cars.read_cars_stanford,
        "folder": read_folder,
        "flat": read_flat,
    }
    if kind == "single":
        if split != "all":
            raise GalleryError(f"{path}: a single image has no {split!r} split; use --split all")
        gal = read_single(root)
    else:
        if not root.is_dir():
            raise GalleryError(f"{root}: not a folder; a {kind} gallery is a folder")
        gal = readers[kind](root.resolve(), split)
    log.info("opened %s gallery %s (%s split): %d images, %d classes", gal.kind, gal.root, gal.split, len(gal), len(gal.classes))
    return gal
