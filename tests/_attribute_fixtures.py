"""Attribute files written the way the datasets ship them, and a gallery of coloured-object scenes.

* :func:`write_cub_attributes` — CUB-200-2011: ``attributes.txt`` next to ``CUB_200_2011/`` (or
  inside ``attributes/``), ``attributes/image_attribute_labels.txt`` rows ``<image_id> <attribute_id>
  <is_present> <certainty_id> <time>`` with a few rows carrying an extra field before the time (as
  in the real file), ``certainties.txt`` and ``class_attribute_labels_continuous.txt``.
* :func:`write_awa` — AwA2 style: ``classes.txt`` / ``predicates.txt`` (``<right-aligned id>\\t<name>``),
  ``predicate-matrix-binary.txt`` and ``predicate-matrix-continuous.txt``.
* :func:`write_object_gallery` — a class-per-folder gallery whose classes are sets of coloured objects,
  with the AwA2-style matrix of which colours each class shows: a known answer for attribute tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from _object_models import OBJECT, SIZE, scene

CERTAINTIES = "1 not visible\n2 guessing\n3 probably\n4 definitely\n"


def write_cub_attributes(cub: Path, labels: dict[int, list[tuple[int, int]]], names: list[str],
                         class_percent: np.ndarray | None = None, names_inside: bool = False,
                         odd_rows: tuple[int, ...] = (2, 7)) -> None:
    """``labels[image_id]`` = [(is_present, certainty) per attribute]; rows whose running number is in
    ``odd_rows`` get the extra field of the real file."""
    att = cub / "attributes"
    att.mkdir(parents=True, exist_ok=True)
    names_file = att / "attributes.txt" if names_inside else cub.parent / "attributes.txt"
    names_file.write_text("".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
    (att / "certainties.txt").write_text(CERTAINTIES)
    rows, k = [], 0
    for iid in sorted(labels):
        for aid, (pres, cert) in enumerate(labels[iid], 1):
            k += 1
            t = f"{(iid * 7 + aid) % 40 + 0.5:.3f}"
            rows.append(f"{iid} {aid} {pres} {cert} 0 {t}" if k in odd_rows else f"{iid} {aid} {pres} {cert} {t}")
    (att / "image_attribute_labels.txt").write_text("\n".join(rows) + "\n")
    if class_percent is not None:
        (att / "class_attribute_labels_continuous.txt").write_text(
            "".join(" ".join(f"{v:.10g}" for v in row) + "\n" for row in class_percent))


def write_awa(folder: Path, classes: list[str], predicates: list[str], binary: np.ndarray,
              continuous: np.ndarray | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("".join(f"{i:>6}\t{c}\n" for i, c in enumerate(classes, 1)))
    (folder / "predicates.txt").write_text("".join(f"{i:>6}\t{p}\n" for i, p in enumerate(predicates, 1)))
    (folder / "predicate-matrix-binary.txt").write_text("".join(" ".join(str(int(v)) for v in r) + "\n" for r in binary))
    cont = binary * 100.0 if continuous is None else continuous
    (folder / "predicate-matrix-continuous.txt").write_text("".join(" ".join(f"{v:8.2f}" for v in r) + "\n" for r in cont))
    return folder


OBJECT_CLASSES = {"red_only": ("red",), "red_green": ("red", "green"), "green_blue": ("green", "blue"),
                  "blue_only": ("blue",)}
COLOUR_NAMES = ["red", "green", "blue"]


def write_object_gallery(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    """``root/images/<class>/<n>.png`` (64 px scenes, objects at random non-overlapping spots) and an
    AwA2-style ``root/attributes/`` matrix of the colours each class shows; returns ``root/images``."""
    rng = np.random.default_rng(seed)
    spots = [(r, c) for r in range(0, SIZE - OBJECT + 1, 8) for c in range(0, SIZE - OBJECT + 1, 8)]
    for cname, colours in OBJECT_CLASSES.items():
        for n in range(per_class):
            while True:
                pos = [spots[i] for i in rng.choice(len(spots), size=len(colours), replace=False)]
                if all(abs(a[0] - b[0]) >= OBJECT or abs(a[1] - b[1]) >= OBJECT for a in pos for b in pos if a is not b):
                    break
            img = scene(dict(zip(colours, pos)), seed=int(rng.integers(1 << 30)))
            p = root / "images" / cname / f"{n:02d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(p)
    matrix = np.array([[int(c in cols) for c in COLOUR_NAMES] for cols in OBJECT_CLASSES.values()])
    write_awa(root / "attributes", list(OBJECT_CLASSES), COLOUR_NAMES, matrix)
    return root / "images"
