"""The :class:`Gallery` type and the file-listing helpers every layout reader shares (a leaf module).

The layout readers (:mod:`lfs_gui.data.cub`, :mod:`lfs_gui.data.cars` and the generic ones in
:mod:`lfs_gui.data.galleries`) build galleries from these; :func:`lfs_gui.data.galleries.open_gallery`
picks the reader. Keeping them here lets the readers depend on one module that depends on none of them.
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
DATASET_KINDS = ("cub-official", "cub-dml", "cars-dml", "cars-stanford")
CUB_CLASS_DIR = re.compile(r"^\d+\.")


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
        if hasattr(self.items, "has_labels"):  # lazily read rows (lfs_gui.index.row_table) answer from an array
            return bool(self.items.has_labels())
        return bool(self.items) and all(it.label is not None for it in self.items)

    def labels_array(self) -> np.ndarray:
        """Labels as int64 array, ``-1`` for unlabelled items."""
        if hasattr(self.items, "labels_array"):
            return self.items.labels_array()
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


def visible_dirs(folder: Path) -> list[Path]:
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
        raise GalleryError(f"{image_root}: no images found in the class folders (extensions: {ext_list()})")
    return Gallery(name=name, root=root, items=items, classes=classes, kind=kind, split=split)


def ext_list() -> str:
    return ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
