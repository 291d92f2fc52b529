"""Attribute annotations for SANE: readers for CUB-200-2011 and AwA2-style files, and per-image labels.

Formats (read as the datasets ship them):

* **CUB-200-2011.** ``attributes.txt`` (``<attribute_id> <name>``, 312 lines, e.g.
  ``1 has_bill_shape::curved_(up_or_down)``) sits next to the ``CUB_200_2011/`` folder in the
  official download (sometimes moved into ``CUB_200_2011/attributes/``).
  ``CUB_200_2011/attributes/image_attribute_labels.txt``: rows ``<image_id> <attribute_id>
  <is_present> <certainty_id> <time>``; certainty 1 not visible, 2 guessing, 3 probably, 4 definitely
  (``certainties.txt``). A few rows of the real file carry an extra field before the time; the first
  four fields are reliable and are the only ones read. ``class_attribute_labels_continuous.txt``: one
  row per class (``classes.txt`` order) of 312 percentages. Images are matched to gallery items through
  ``images.txt`` by their ``<class folder>/<file>`` path, so the DML-Baselines layout works too.
* **AwA2 style** (Animals with Attributes 2): ``predicate-matrix-binary.txt`` (classes × attributes of
  0/1), optional ``predicate-matrix-continuous.txt`` (strengths), ``predicates.txt`` and
  ``classes.txt`` (``<id>\\t<name>`` lines, ids from 1). Every image takes its class's row. Gallery
  classes are matched to ``classes.txt`` by name (case, ``_``/``+``/spaces and a ``NNN.`` prefix ignored).
* **Cars-196** ships no attributes: :func:`find_attribute_source` says so.

Labels for a gallery (:func:`gallery_attributes`): ``labels`` (N, K) 0/1 and ``known`` (N, K). For CUB
image labels, a label counts when its certainty is at least ``min_certainty`` (default 3,
"probably"): positive if present, negative if not; *not visible* and *guessing* labels are unknown.
A gallery class missing from a class matrix leaves its images unknown.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

AWA_BINARY = "predicate-matrix-binary.txt"
AWA_CONTINUOUS = "predicate-matrix-continuous.txt"
CUB_IMAGE_LABELS = "image_attribute_labels.txt"
CUB_CLASS_CONTINUOUS = "class_attribute_labels_continuous.txt"


class AttributesUnavailable(ValueError):
    """No attribute data for a gallery, or a file is malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class AttributeSource:
    """Where a gallery's attributes come from: ``kind`` is ``"cub"`` (``root`` = the CUB_200_2011
    folder, ``names_file`` = attributes.txt) or ``"awa"`` (``root`` = the folder of the matrix)."""

    kind: str
    root: Path
    names_file: Path | None = None


@dataclass(frozen=True)
class GalleryAttributes:
    """Per-image attribute labels of a gallery: ``labels`` (N, K) float32 0/1, ``known`` (N, K) bool."""

    names: list[str]
    labels: np.ndarray
    known: np.ndarray
    level: str  # "image" or "class"
    source: str

    def describe(self) -> dict:
        return {"attributes": len(self.names), "images": int(self.labels.shape[0]), "level": self.level,
                "source": self.source, "positives_per_image": float((self.labels * self.known).sum(1).mean())}


# -- readers ------------------------------------------------------------------------------------------
def _lines(path: Path, fix: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AttributesUnavailable(f"{path}: cannot be read ({exc}); {fix}") from exc


def read_id_names(path: Path, fix: str = "expected `<id> <name>` lines") -> list[str]:
    """``<id> <name>`` lines (CUB ``attributes.txt``, AwA2 ``predicates.txt``/``classes.txt``; spaces
    or a tab) -> names in id order; ids must run 1..n."""
    rows: dict[int, str] = {}
    for lineno, line in enumerate(_lines(path, fix), 1):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise AttributesUnavailable(f"{path}, line {lineno}: expected `<id> <name>`, got {line!r}; {fix}")
        rows[int(parts[0])] = parts[1].strip()
    if sorted(rows) != list(range(1, len(rows) + 1)):
        raise AttributesUnavailable(f"{path}: ids must run 1..{len(rows)} without gaps; {fix}")
    return [rows[i] for i in range(1, len(rows) + 1)]


def read_cub_image_labels(path: Path, n_attributes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image_attribute_labels.txt`` -> (image_ids (M,), is_present (M, K) uint8, certainty (M, K) uint8).

    Rows need at least the four leading fields; an extra field before the time (as in a few rows of
    the real file) is accepted. Attributes an image has no row for get certainty 0 (unknown).
    """
    fix = "expected rows `<image_id> <attribute_id> <is_present> <certainty_id> <time>` (CUB-200-2011)"
    ids: dict[int, int] = {}
    present: list[np.ndarray] = []
    cert: list[np.ndarray] = []
    for lineno, line in enumerate(_lines(path, fix), 1):
        parts = line.split()
        if not parts:
            continue
        if not 4 <= len(parts) <= 6:
            raise AttributesUnavailable(f"{path}, line {lineno}: {len(parts)} fields in {line!r}; {fix}")
        try:
            iid, aid, pres, c = (int(p) for p in parts[:4])
        except ValueError:
            raise AttributesUnavailable(f"{path}, line {lineno}: non-integer field in {line!r}; {fix}") from None
        if not 1 <= aid <= n_attributes or pres not in (0, 1) or not 1 <= c <= 4:
            raise AttributesUnavailable(f"{path}, line {lineno}: attribute id 1..{n_attributes}, is_present 0/1 "
                                        f"and certainty 1..4 expected, got {line!r}; {fix}")
        row = ids.get(iid)
        if row is None:
            row = ids[iid] = len(present)
            present.append(np.zeros(n_attributes, np.uint8))
            cert.append(np.zeros(n_attributes, np.uint8))
        present[row][aid - 1] = pres
        cert[row][aid - 1] = c
    if not ids:
        raise AttributesUnavailable(f"{path}: no rows; {fix}")
    return np.fromiter(ids, np.int64, len(ids)), np.stack(present), np.stack(cert)


def read_matrix(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A whitespace-separated numeric matrix (AwA2 predicate matrices, CUB class percentages), float32."""
    fix = "expected one row of numbers per class"
    rows = [line.split() for line in _lines(path, fix) if line.strip()]
    try:
        m = np.array([[float(v) for v in r] for r in rows], np.float32)
    except ValueError:
        raise AttributesUnavailable(f"{path}: holds non-numeric values or rows of different lengths; {fix}") from None
    if m.ndim != 2 or (shape is not None and m.shape != shape):
        want = f"{shape[0]} rows × {shape[1]} columns" if shape else "a rectangular matrix"
        got = "ragged rows" if m.ndim != 2 else f"{m.shape[0]} × {m.shape[1]}"
        raise AttributesUnavailable(f"{path}: expected {want}, got {got}; {fix}")
    return m


# -- where the files are --------------------------------------------------------------------------------
def _cub_names_file(root: Path) -> Path | None:
    for p in (root.parent / "attributes.txt", root / "attributes" / "attributes.txt", root / "attributes.txt"):
        if p.is_file():
            return p
    return None


def _source_at(path: Path) -> AttributeSource | None:
    """The attribute source at ``path`` (a CUB_200_2011 folder, its parent or attributes/ folder, or an
    AwA2-style folder or one of its matrix files), else None."""
    if path.is_file():
        path = path.parent
    for root in (path, path / "CUB_200_2011", path.parent):
        if (root / "attributes" / CUB_IMAGE_LABELS).is_file() or (root / "attributes" / CUB_CLASS_CONTINUOUS).is_file():
            return AttributeSource("cub", root, _cub_names_file(root))
    for root in (path, path / "attributes"):
        if (root / AWA_BINARY).is_file():
            return AttributeSource("awa", root)
    return None


def find_attribute_source(gallery_root: str | Path, gallery_kind: str, explicit: str | Path | None = None) -> AttributeSource:
    """The attribute files for a gallery: ``explicit`` (``--attributes-from``) when given, else found
    next to the gallery (CUB's own files; an AwA2-style ``attributes/`` folder in or next to the root)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        src = _source_at(p) if p.exists() else None
        if src is None:
            raise AttributesUnavailable(
                f"{p}: no attribute files there; give a CUB_200_2011 folder (with attributes/{CUB_IMAGE_LABELS}) "
                f"or a folder with {AWA_BINARY}, predicates.txt and classes.txt")
        return src
    if gallery_kind.startswith("cars"):
        raise AttributesUnavailable(
            "Cars-196 has no attribute annotations (the dataset ships none), so SANE's attribute explanations are "
            f"unavailable; to use them, write an AwA2-style class matrix ({AWA_BINARY}, predicates.txt, classes.txt) "
            "for its classes and pass its folder with --attributes-from")
    root = Path(gallery_root)
    for cand in (root, root.parent):
        src = _source_at(cand) if cand.is_dir() else None
        if src is not None:
            return src
    raise AttributesUnavailable(
        f"{root}: no attribute data found for this gallery (looked for CUB-200-2011's attributes/ folder and an "
        f"AwA2-style attributes/{AWA_BINARY} in and next to it); pass one with --attributes-from")


# -- labels for a gallery ---------------------------------------------------------------------------------
def _norm_class(name: str) -> str:
    name = re.sub(r"^\d+\.", "", name.strip().lower())
    return re.sub(r"[\s_+\-]+", " ", name).strip()


def _class_rows(gallery_classes: list[str], matrix_classes: list[str], where: Path) -> dict[int, int]:
    """gallery label -> matrix row, matched by normalised name; error when nothing matches."""
    index = {_norm_class(c): r for r, c in enumerate(matrix_classes)}
    rows = {lab: index[_norm_class(c)] for lab, c in enumerate(gallery_classes) if _norm_class(c) in index}
    if not rows:
        raise AttributesUnavailable(
            f"{where}: none of the gallery's classes ({', '.join(gallery_classes[:4])}, ...) is listed there "
            f"({', '.join(matrix_classes[:4])}, ...); the class names must match")
    missing = [c for lab, c in enumerate(gallery_classes) if lab not in rows]
    if missing:
        log.warning("%s: %d gallery classes have no attribute row (e.g. %s); their images stay unlabelled",
                    where, len(missing), missing[0])
    return rows


def _from_class_matrix(labels: np.ndarray, rows: dict[int, int], matrix: np.ndarray, names: list[str],
                       source: str) -> GalleryAttributes:
    n, k = len(labels), matrix.shape[1]
    out = np.zeros((n, k), np.float32)
    known = np.zeros((n, k), bool)
    for i, lab in enumerate(labels.tolist()):
        r = rows.get(int(lab))
        if r is not None:
            out[i] = matrix[r] > 0
            known[i] = True
    return GalleryAttributes(names, out, known, "class", source)


def gallery_attributes(src: AttributeSource, relpaths: list[str], labels: np.ndarray, classes: list[str],
                       min_certainty: int = 3, level: str = "auto") -> GalleryAttributes:
    """Labels for the gallery images ``relpaths`` (with class ``labels`` into ``classes``) from ``src``.

    ``level``: ``image`` (CUB image labels), ``class`` (a class matrix: AwA2, or CUB's percentages
    thresholded at 50), ``auto`` (image labels when there are any).
    """
    labels = np.asarray(labels, np.int64)
    if src.kind == "awa":
        names = read_id_names(src.root / "predicates.txt")
        mclasses = read_id_names(src.root / "classes.txt")
        matrix = read_matrix(src.root / AWA_BINARY, (len(mclasses), len(names)))
        if not np.isin(matrix, (0, 1)).all():
            raise AttributesUnavailable(f"{src.root / AWA_BINARY}: values must be 0 or 1")
        return _from_class_matrix(labels, _class_rows(classes, mclasses, src.root), matrix, names, str(src.root))
    if src.names_file is None:
        raise AttributesUnavailable(f"{src.root}: attributes.txt not found (next to the folder, or in attributes/); "
                                    "copy it from the CUB-200-2011 download")
    names = read_id_names(src.names_file)
    img_file = src.root / "attributes" / CUB_IMAGE_LABELS
    if level in ("image", "auto") and img_file.is_file():
        return _cub_image_level(src, img_file, names, relpaths, min_certainty)
    cls_file = src.root / "attributes" / CUB_CLASS_CONTINUOUS
    if level == "image" or not cls_file.is_file():
        raise AttributesUnavailable(f"{img_file if level == 'image' else cls_file}: missing; it ships in CUB_200_2011/attributes/")
    cub_classes = read_id_names(src.root / "classes.txt")
    matrix = read_matrix(cls_file, (len(cub_classes), len(names)))
    return _from_class_matrix(labels, _class_rows(classes, cub_classes, src.root), (matrix >= 50).astype(np.float32),
                              names, str(cls_file))


def _cub_image_level(src: AttributeSource, img_file: Path, names: list[str], relpaths: list[str],
                     min_certainty: int) -> GalleryAttributes:
    from lfs_gui.data.cub import read_id_table

    ids, present, cert = read_cub_image_labels(img_file, len(names))
    row_of = {int(i): r for r, i in enumerate(ids.tolist())}
    by_path = {"/".join(rel.split("/")[-2:]): int(iid) for iid, (rel,) in read_id_table(src.root / "images.txt", 1).items()}
    n, k = len(relpaths), len(names)
    labels = np.zeros((n, k), np.float32)
    known = np.zeros((n, k), bool)
    unmatched = 0
    for i, rel in enumerate(relpaths):
        row = row_of.get(by_path.get("/".join(rel.split("/")[-2:]), -1))
        if row is None:
            unmatched += 1
            continue
        sure = cert[row] >= max(2, min_certainty)  # 1 = not visible never counts
        labels[i] = present[row].astype(bool) & sure
        known[i] = sure
    if unmatched == n:
        raise AttributesUnavailable(f"{src.root / 'images.txt'}: none of the gallery's images is listed there; "
                                    "point --attributes-from at the CUB_200_2011 folder the gallery comes from")
    if unmatched:
        log.warning("%s: %d of %d gallery images have no attribute rows", img_file, unmatched, n)
    return GalleryAttributes(names, labels, known, "image", str(img_file))


def pretty_name(name: str) -> str:
    """``has_bill_shape::curved_(up_or_down)`` -> ``bill shape: curved (up or down)``; others: ``_`` -> space."""
    name = name.removeprefix("has_")
    return name.replace("::", ": ").replace("_", " ").replace("+", " ")
