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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
KINDS = ("cub-official", "cub-dml", "cars-dml", "cars-stanford", "folder", "flat", "single")
SPLITS = ("train", "test", "all", "official-train", "official-test")
_DATASET_KINDS = ("cub-official", "cub-dml", "cars-dml", "cars-stanford")
_CUB_CLASS_DIR = re.compile(r"^\d+\.")


class GalleryError(ValueError):
    """A gallery could not be opened; the message names the path and the fix."""


@dataclass(frozen=True)
class GalleryItem:
    """One image of a gallery.

    ``path`` is absolute; ``relpath`` is relative to :attr:`Gallery.root` with ``/`` separators
    (what sidecars store). ``label`` indexes :attr:`Gallery.classes` (``None`` when unlabelled).
    ``bbox`` is ``(x0, y0, x1, y1)`` in original-image pixels when the dataset ships boxes.
    """

    path: Path
    relpath: str
    label: int | None
    class_name: str | None
    bbox: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Gallery:
    """An ordered list of image files with labels; item ``i`` is image id ``i``.

    ``classes`` holds the names of *all* classes of the dataset (labels index into it), so a
    ``test`` split of CUB has labels 100..199. ``skipped`` lists relative paths that belong to the
    gallery but are not in ``items`` (missing on disk, or not decodable per :meth:`subset`).
    """

    name: str
    root: Path
    items: list[GalleryItem]
    classes: list[str]
    kind: str
    split: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def paths(self) -> list[Path]:
        return [it.path for it in self.items]

    @property
    def relpaths(self) -> list[str]:
        return [it.relpath for it in self.items]

    @property
    def has_labels(self) -> bool:
        """True when every item has a label (recall metrics need that)."""
        return bool(self.items) and all(it.label is not None for it in self.items)

    def labels_array(self) -> np.ndarray:
        """Labels as int64 array, ``-1`` for unlabelled items."""
        return np.array([-1 if it.label is None else it.label for it in self.items], dtype=np.int64)

    def subset(self, ok: Sequence[bool] | np.ndarray) -> "Gallery":
        """New gallery keeping items where ``ok`` is true, in order; the others join ``skipped``.

        Image ids are renumbered (they are positions in the new ``items``).
        """
        mask = np.asarray(ok, dtype=bool).ravel()
        if mask.shape[0] != len(self.items):
            raise ValueError(f"subset mask has {mask.shape[0]} entries, gallery {self.name!r} has {len(self.items)} items")
        kept = [it for it, m in zip(self.items, mask) if m]
        dropped = [it.relpath for it, m in zip(self.items, mask) if not m]
        if dropped:
            log.info("gallery %s: %d of %d images skipped", self.name, len(dropped), len(self.items))
        return replace(self, items=kept, skipped=list(self.skipped) + dropped)


# -- file listing -----------------------------------------------------------------------------
def is_image_file(path: Path) -> bool:
    """Image extension (case-insensitive), not hidden, not a macOS ``._`` resource fork."""
    name = path.name
    return not name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def _visible_dirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by relative path; hidden folders are not entered."""
    out: list[Path] = []
    stack = [folder]
    while stack:
        cur = stack.pop()
        for p in cur.iterdir():
            if p.name.startswith("."):
                continue
            if p.is_dir():
                if recursive:
                    stack.append(p)
            elif is_image_file(p):
                out.append(p)
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def relposix(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def split_halves(classes: Sequence[str], split: str, where: Path) -> set[int]:
    """Label set of a metric-learning split: ``train`` first half, ``test`` second half, ``all``."""
    half = len(classes) // 2
    if split == "train":
        return set(range(half))
    if split == "test":
        return set(range(half, len(classes)))
    if split == "all":
        return set(range(len(classes)))
    raise GalleryError(f"{where}: split {split!r} is not available for this layout; use train, test or all")


def check_split(split: str, where: Path) -> None:
    if split not in SPLITS:
        raise GalleryError(f"{where}: unknown split {split!r}; use one of {', '.join(SPLITS)}")


def from_class_folders(
    root: Path, image_root: Path, class_dirs: list[Path], kind: str, split: str, name: str
) -> Gallery:
    """Gallery from ``class_dirs`` (already in label order); images found recursively in each."""
    classes = [d.name for d in class_dirs]
    keep = split_halves(classes, split, root)
    items: list[GalleryItem] = []
    for label, d in enumerate(class_dirs):
        if label not in keep:
            continue
        cname = classes[label]
        for p in list_images(d):
            items.append(GalleryItem(p.resolve(), relposix(p, root), label, cname))
    if not items:
        raise GalleryError(f"{image_root}: no images found in the class folders (extensions: {_ext_list()})")
    return Gallery(name=name, root=root, items=items, classes=classes, kind=kind, split=split)


def _ext_list() -> str:
    return ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


# -- generic readers ----------------------------------------------------------------------------
def read_single(path: Path) -> Gallery:
    """One external image (e.g. a query from outside any gallery); label ``None``."""
    path = path.resolve()
    if not path.is_file() or not is_image_file(path):
        raise GalleryError(f"{path}: not an image file (extensions: {_ext_list()})")
    item = GalleryItem(path, path.name, None, None)
    return Gallery(name=path.stem, root=path.parent, items=[item], classes=[], kind="single", split="all")


def read_flat(root: Path, split: str = "all") -> Gallery:
    """Images directly inside ``root``, unlabelled."""
    root = root.resolve()
    if split != "all":
        raise GalleryError(f"{root}: an unlabelled folder has no {split!r} split; use --split all")
    items = [GalleryItem(p.resolve(), relposix(p, root), None, None) for p in list_images(root, recursive=False)]
    if not items:
        raise GalleryError(f"{root}: no images found (extensions: {_ext_list()})")
    return Gallery(name=root.name, root=root, items=items, classes=[], kind="flat", split="all")


def read_folder(root: Path, split: str = "all") -> Gallery:
    """Class = first-level sub-folder (sorted by name); loose top-level images go to ``skipped``."""
    root = root.resolve()
    class_dirs = sorted((d for d in _visible_dirs(root) if list_images(d)), key=lambda d: d.name)
    if not class_dirs:
        raise GalleryError(f"{root}: no sub-folders with images (extensions: {_ext_list()})")
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
        raise GalleryError(f"{path}: neither an image ({_ext_list()}) nor a gallery folder")
    for cand in (path, path / "CUB_200_2011"):
        if (cand / "images.txt").is_file() and (cand / "image_class_labels.txt").is_file() and (cand / "images").is_dir():
            return "cub-official", cand
    if (path / "cars_annos.mat").is_file():
        return "cars-stanford", path
    images = path / "images"
    if images.is_dir():
        class_dirs = [d for d in _visible_dirs(images) if not d.name.startswith("._")]
        if class_dirs and all(_CUB_CLASS_DIR.match(d.name) for d in class_dirs):
            return "cub-dml", path
        if class_dirs and "car" in path.name.lower():
            return "cars-dml", path
        others = [d for d in _visible_dirs(path) if d.name != "images" and list_images(d)]
        if not others and any(list_images(d) for d in class_dirs):
            return "folder", images  # a dataset folder whose classes sit under images/
    if any(list_images(d) for d in _visible_dirs(path)):
        return "folder", path
    if list_images(path, recursive=False):
        return "flat", path
    raise GalleryError(f"{path}: no images found (looked for {_ext_list()} files, and for CUB/Cars metadata)")


def open_gallery(path: str | Path, split: str | None = None, kind: str | None = None) -> Gallery:
    """Open the gallery at ``path``, detecting its layout unless ``kind`` is given.

    ``split`` defaults to ``test`` for CUB/Cars and ``all`` otherwise (see the module docstring).
    Raises :class:`GalleryError` naming the path for a missing/empty folder or a bad split.
    """
    from lfs_gui.data import cars, cub

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
        split = "test" if kind in _DATASET_KINDS else "all"
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
