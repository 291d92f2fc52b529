"""Build the embedded demo gallery from two Debian packages (maintainer script, not run by CI).

Usage::

    python -m lfs_gui.demo.build_gallery --out resources/demo

It needs ``tuxpaint-stamps-default`` (photo cut-outs with an alpha channel, GPL-2+) and
``gcompris-qt-data`` (photographs with backgrounds inside Qt ``.rcc`` resource files, each folder
with a ``README`` giving every image's author, source and licence). It writes:

* ``images/<class>/<name>.jpg`` -- RGB JPEGs, longest side <= 256 px, cut-outs composited on white;
  the folder layout alone is a valid "class = sub-folder" gallery;
* ``labels.csv`` -- one row per image (relpath, class, fine label, source package/path, licence,
  credit, source URL, where the licence was read);
* ``ATTRIBUTION.md`` -- every image's source and licence;
* ``gallery.json`` -- class order, counts and the train/test halves used by the demo trainer.

The output is deterministic: sources are iterated in sorted order, nothing is random, and the
JPEG encoder settings are fixed. ``README.md`` in the output folder is written by hand.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image

log = logging.getLogger(__name__)

MAX_SIDE = 256
JPEG_QUALITY = 88
MAX_TOTAL_BYTES = 10 * 1024 * 1024

TUXPAINT_ROOT = Path("/usr/share/tuxpaint/stamps")
TUXPAINT_COPYRIGHT = Path("/usr/share/doc/tuxpaint-stamps-default/copyright")
GCOMPRIS_RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
GCOMPRIS_COPYRIGHT = Path("/usr/share/doc/gcompris-qt-data/copyright")
GCOMPRIS_ACTIVITIES = ":/gcompris/src/activities"

#: Tux Paint category folder (relative to the stamps root) for each demo class.
TUXPAINT_CLASSES: dict[str, str] = {
    "birds": "animals/birds",
    "fish": "animals/fish",
    "flowers": "plants/flowers",
    "fruit": "food/fruit",
    "insects": "animals/insects",
    "mammals": "animals/mammals",
    "vegetables": "food/vegetables",
}

#: Sub-folders never used: drawings (``cartoon``), toys (a teddy bear is not a mammal) and a
#: plastic flower.
TUXPAINT_SKIP_DIRS = frozenset({"cartoon", "toys", "plastic"})

#: Individual stamps that are not photographs (checked by eye), with the reason.
TUXPAINT_SKIP_FILES: dict[str, str] = {
    "animals/mammals/hedgehog.png": "cartoon drawing, not a photo",
    "animals/mammals/echidna.png": "black silhouette, not a photo",
    "animals/insects/bee.png": "black-and-white line drawing, not a photo",
    "animals/fish/shrimp.png": "almost transparent, washed out",
}


@dataclass(frozen=True)
class GcSource:
    """One folder of photographs inside the GCompris ``.rcc`` files."""

    folder: str  #: resource folder below ``:/gcompris/src/activities``
    classes: dict[str, str] = field(default_factory=dict)  #: file stem -> class
    default_class: str | None = None  #: class for stems not in ``classes``
    stem_pattern: str = ".*"  #: only stems matching this regex (with ``default_class``)

    def class_of(self, stem: str) -> str | None:
        """The demo class of an image stem, or ``None`` to leave it out."""
        if stem in self.classes:
            return self.classes[stem]
        if self.default_class and re.fullmatch(self.stem_pattern, stem):
            return self.default_class
        return None


_M, _B, _I = "mammals", "birds", "insects"

#: GCompris photographs used, each folder has a README with per-file credits. Reptiles,
#: amphibians and crustaceans are left out (no class for them); "renewable" keeps only windmills.
GCOMPRIS_SOURCES: tuple[GcSource, ...] = (
    GcSource("categorization/resource/images/fishes", default_class="fish"),
    GcSource("categorization/resource/images/monuments", default_class="monuments"),
    GcSource("categorization/resource/images/tools", default_class="tools"),
    GcSource(
        "categorization/resource/images/renewable",
        default_class="windmills",
        stem_pattern=r"windmill\d*",
    ),
    GcSource(
        "erase/resource",
        classes={
            "alpaca": _M, "bee": _I, "butterfly": _I, "calf": _M, "camels": _M,
            "caterpillar": _I, "cheetah": _M, "dolphin": _M, "flying_fox": _M, "gibbon": _M,
            "giraffe": _M, "goat": _M, "gorilla": _M, "gosling": _B, "heron": _B, "horse": _M,
            "kingfisher": _B, "kitten": _M, "long_nosed_monkey": _M, "macaque": _M,
            "meerkats": _M, "northern_harrier": _B, "nubian_ibex": _M, "penguin": _B,
            "pika": _M, "red_panda": _M, "rhinoceros": _M, "spoonbills": _B, "squirrel": _M,
            "swans": _B, "toucan": _B,
        },
    ),
    GcSource(
        "explore_world_animals/resource/animals",
        classes={
            "bison": _M, "giraffe": _M, "hedgehog": _M, "jaguar": _M, "kangaroo": _M,
            "koala": _M, "lemur": _M, "moose": _M, "narwhal": _M, "panda": _M,
            "polar_bear": _M, "scarlet_macaw": _B,
        },
    ),
    GcSource(
        "explore_farm_animals/resource/animals",
        classes={
            "cat": _M, "chicken": _B, "cow": _M, "dog": _M, "duck": _B, "horse": _M,
            "owl": _B, "pig": _M, "sheep": _M,
        },
    ),
)

GC_IMAGE_SUFFIXES = (".webp", ".jpg", ".jpeg", ".png")

#: Obvious typos in GCompris READMEs: folder -> {name in README: real file name}. The tools
#: README credits "screDriver.webp" (no such file) right where screwDriver.webp belongs.
GC_README_TYPOS: dict[str, dict[str, str]] = {
    "categorization/resource/images/tools": {"screDriver.webp": "screwDriver.webp"},
}

#: Licence names as written in GCompris READMEs -> SPDX-like identifiers.
_LICENCE_ALIASES = {
    "public domain": "public-domain",
    "cc0": "CC0-1.0",
    "cc0-1.0": "CC0-1.0",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "gplv3 or later": "GPL-3.0-or-later",
}
_CC_RE = re.compile(r"^cc[- ]by(-sa)?[- ](\d\.\d)$", re.IGNORECASE)


def normalise_licence(text: str) -> str | None:
    """SPDX-like id of a licence name from a README, or ``None`` if it is not one we accept."""
    t = " ".join(text.strip().split())
    low = t.lower()
    if low in _LICENCE_ALIASES:
        return _LICENCE_ALIASES[low]
    m = _CC_RE.match(t)
    if m:
        return f"CC-BY{'-SA' if m.group(1) else ''}-{m.group(2)}"
    return None


@dataclass
class Entry:
    """One image of the gallery and everything ATTRIBUTION.md / labels.csv say about it."""

    cls: str
    name: str  #: output file stem
    fine_label: str
    source_package: str
    source_path: str
    licence: str
    credit: str
    source_url: str
    licence_source: str
    description: str = ""  #: English description shipped with a Tux Paint stamp
    image: Image.Image | None = None

    @property
    def relpath(self) -> str:
        return f"images/{self.cls}/{self.name}.jpg"


def fine_label_of(stem: str) -> str:
    """Fine label of a file stem: ``lion-2`` -> ``lion``, ``clawHammer1`` -> ``claw_hammer``."""
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", stem).lower().replace("-", "_")
    s = re.sub(r"[_\d]+$", "", s)
    return s or stem.lower()


def safe_name(*parts: str) -> str:
    """A file-name-safe, lower-case stem built from ``parts``."""
    s = "-".join(parts).lower()
    return re.sub(r"[^a-z0-9_-]+", "_", s).strip("_-")


def on_white(im: Image.Image) -> Image.Image:
    """RGB copy of ``im`` with any transparency composited onto white."""
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        bg.alpha_composite(rgba)
        return bg.convert("RGB")
    return im.convert("RGB")


def downscale(im: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Shrink so that the longer side is at most ``max_side`` (never enlarges)."""
    w, h = im.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return im
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def package_version(pkg: str) -> str:
    """Installed Debian version of ``pkg`` (``"unknown"`` without dpkg)."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- Tux Paint ---------------------------------------------------------------------------------


def tuxpaint_licence() -> str:
    """GPL version of the stamps, read from the Debian copyright file."""
    text = TUXPAINT_COPYRIGHT.read_text(encoding="utf-8")
    if "License: GPL-2" not in text:
        raise RuntimeError(f"{TUXPAINT_COPYRIGHT}: expected 'License: GPL-2'")
    return "GPL-2.0-or-later" if "any later version" in text else "GPL-2.0-only"


def tuxpaint_description(png: Path) -> str:
    """First (English) line of the stamp's ``.txt`` description, or ``""``."""
    txt = png.with_suffix(".txt")
    if not txt.is_file():
        return ""
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[0].strip() if lines else ""


def iter_tuxpaint(root: Path = TUXPAINT_ROOT) -> Iterator[Entry]:
    """The Tux Paint photo stamps of the demo classes, in sorted order."""
    licence = tuxpaint_licence()
    for cls, folder in sorted(TUXPAINT_CLASSES.items()):
        base = root / folder
        for path in sorted(base.rglob("*")):
            rel_in_cat = path.relative_to(base)
            rel = path.relative_to(root).as_posix()
            if any(part in TUXPAINT_SKIP_DIRS for part in rel_in_cat.parts[:-1]):
                continue
            if path.suffix.lower() == ".svg":
                if not path.with_suffix(".png").exists():
                    log.info("skip %s: SVG without a PNG", rel)
                continue
            if path.suffix.lower() != ".png":
                continue
            if "_mirror" in path.stem:
                continue
            if rel in TUXPAINT_SKIP_FILES:
                log.info("skip %s: %s", rel, TUXPAINT_SKIP_FILES[rel])
                continue
            desc = tuxpaint_description(path)
            yield Entry(
                cls=cls,
                name=safe_name("tuxpaint", *rel_in_cat.with_suffix("").parts),
                fine_label=fine_label_of(path.stem),
                source_package="tuxpaint-stamps-default",
                source_path=str(path),
                licence=licence,
                credit="Tux Paint Stamps contributors, (c) 2002-2022 Bill Kendrick and others",
                source_url="https://tuxpaint.org/",
                licence_source=str(TUXPAINT_COPYRIGHT),
                description=desc,
                image=on_white(Image.open(path)),
            )


# -- GCompris ----------------------------------------------------------------------------------


def _qt():  # noqa: ANN202 - PySide6 types
    """Import the few QtCore names needed (kept local so the module imports without Qt)."""
    from PySide6.QtCore import QDirIterator, QFile, QIODevice, QResource

    return QDirIterator, QFile, QIODevice, QResource


def register_rcc(rcc_dir: Path = GCOMPRIS_RCC_DIR) -> list[str]:
    """Register every ``.rcc`` file of GCompris with Qt's resource system."""
    *_, QResource = _qt()
    done = []
    for rcc in sorted(rcc_dir.glob("*.rcc")):
        if QResource.registerResource(str(rcc)):
            done.append(rcc.name)
        else:
            log.warning("could not register %s", rcc)
    return done


def read_resource(path: str) -> bytes | None:
    """Bytes of a ``:/...`` resource, or ``None`` if it does not exist."""
    _, QFile, QIODevice, _ = _qt()
    f = QFile(path)
    if not f.exists() or not f.open(QIODevice.OpenModeFlag.ReadOnly):
        return None
    try:
        return bytes(f.readAll().data())
    finally:
        f.close()


def list_resource_dir(path: str) -> list[str]:
    """Sorted names of the files directly in resource folder ``path``."""
    QDirIterator, *_ = _qt()
    it = QDirIterator(path)
    names = []
    while it.hasNext():
        names.append(it.next().rsplit("/", 1)[-1])
    return sorted(names)


def parse_gcompris_readme(text: str) -> dict[str, dict[str, str]]:
    """Per-file credits of a GCompris resource ``README``.

    The README is a list of blank-line separated blocks of ``Key: value`` lines (``Copyright``,
    ``Source``, ``License``, ``Comments``, ``Files``); the file names follow ``Files:`` on the same
    line or on the next lines. Returns ``{file name: {"copyright", "source", "license",
    "comments"}}``.
    """
    result: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        info: dict[str, str] = {}
        files: list[str] = []
        in_files = False
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z]+):\s*(.*)$", line.strip())
            if m and m.group(1).lower() in ("copyright", "source", "license", "licence",
                                             "comments", "comment", "files"):
                key, value = m.group(1).lower(), m.group(2).strip()
                key = {"licence": "license", "comment": "comments"}.get(key, key)
                in_files = key == "files"
                if in_files:
                    files.extend(value.split())
                else:
                    info[key] = value
            elif in_files and line.strip():
                files.extend(line.split())
        for name in files:
            result[name] = info
    return result


def iter_gcompris() -> Iterator[Entry]:
    """The GCompris photographs of :data:`GCOMPRIS_SOURCES` whose licence README is clear."""
    for src in GCOMPRIS_SOURCES:
        folder = f"{GCOMPRIS_ACTIVITIES}/{src.folder}"
        readme_bytes = read_resource(f"{folder}/README")
        if readme_bytes is None:
            log.warning("skip %s: no README with licences", folder)
            continue
        credits = parse_gcompris_readme(readme_bytes.decode("utf-8", errors="replace"))
        for wrong, right in GC_README_TYPOS.get(src.folder, {}).items():
            if wrong in credits and right not in credits:
                credits[right] = credits.pop(wrong)
        activity = src.folder.split("/", 1)[0]
        for fname in list_resource_dir(folder):
            stem, dot, suffix = fname.rpartition(".")
            if not dot or f".{suffix.lower()}" not in GC_IMAGE_SUFFIXES:
                continue
            cls = src.class_of(stem)
            if cls is None:
                log.info("skip %s/%s: no demo class for it", folder, fname)
                continue
            info = credits.get(fname)
            if info is None:
                log.warning("skip %s/%s: not listed in the README", folder, fname)
                continue
            licence = normalise_licence(info.get("license", ""))
            if licence is None:
                log.warning("skip %s/%s: licence %r not accepted", folder, fname,
                            info.get("license"))
                continue
            data = read_resource(f"{folder}/{fname}")
            if data is None:
                log.warning("skip %s/%s: unreadable", folder, fname)
                continue
            credit = info.get("copyright", "").strip() or "unknown"
            if info.get("comments"):
                credit += f" (GCompris edit: {info['comments']}; resized for the demo)"
            yield Entry(
                cls=cls,
                name=safe_name("gcompris", activity, stem),
                fine_label=fine_label_of(stem),
                source_package="gcompris-qt-data",
                source_path=f"{GCOMPRIS_RCC_DIR / (activity + '.rcc')}:{folder[1:]}/{fname}",
                licence=licence,
                credit=credit,
                source_url=info.get("source", ""),
                licence_source=f"{folder}/README (inside {activity}.rcc)",
                image=on_white(Image.open(io.BytesIO(data))),
            )


# -- output ------------------------------------------------------------------------------------

CSV_FIELDS = (
    "relpath", "class", "fine_label", "source_package", "source_path", "licence", "credit",
    "source_url", "licence_source", "description",
)

LICENCE_URLS = {
    "GPL-2.0-or-later": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.html",
    "GPL-3.0-or-later": "https://www.gnu.org/licenses/gpl-3.0.html",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "public-domain": "",
}


def licence_url(lic: str) -> str:
    """Web page of a licence id (empty if none)."""
    if lic in LICENCE_URLS:
        return LICENCE_URLS[lic]
    m = re.fullmatch(r"CC-BY(-SA)?-(\d\.\d)", lic)
    if m:
        kind = "by-sa" if m.group(1) else "by"
        return f"https://creativecommons.org/licenses/{kind}/{m.group(2)}/"
    return ""


def split_halves(classes: list[str]) -> tuple[list[str], list[str]]:
    """The demo trainer's split: first half of the sorted classes trains, the rest tests."""
    ordered = sorted(classes)
    half = len(ordered) // 2
    return ordered[:half], ordered[half:]


def write_outputs(entries: list[Entry], out: Path, versions: dict[str, str]) -> dict:
    """Write images, ``labels.csv``, ``ATTRIBUTION.md`` and ``gallery.json`` below ``out``."""
    images_dir = out / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    seen: set[str] = set()
    for e in entries:
        if e.relpath in seen:
            raise RuntimeError(f"duplicate output name {e.relpath}")
        seen.add(e.relpath)
        dest = out / e.relpath
        dest.parent.mkdir(parents=True, exist_ok=True)
        assert e.image is not None
        downscale(e.image).save(dest, "JPEG", quality=JPEG_QUALITY, optimize=True)

    with (out / "labels.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_FIELDS)
        for e in entries:
            w.writerow([e.relpath, e.cls, e.fine_label, e.source_package, e.source_path,
                        e.licence, e.credit, e.source_url, e.licence_source, e.description])

    counts: dict[str, int] = {}
    for e in entries:
        counts[e.cls] = counts.get(e.cls, 0) + 1
    classes = sorted(counts)
    train, test = split_halves(classes)
    meta = {
        "classes": classes,
        "counts": {c: counts[c] for c in classes},
        "train_classes": train,
        "test_classes": test,
        "total_images": len(entries),
        "max_side": MAX_SIDE,
        "jpeg_quality": JPEG_QUALITY,
        "source_packages": versions,
        "built_with": "python -m lfs_gui.demo.build_gallery --out resources/demo",
    }
    (out / "gallery.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (out / "ATTRIBUTION.md").write_text(attribution_markdown(entries, versions), encoding="utf-8")
    return meta


def _md(s: str) -> str:
    """Escape a table cell."""
    return s.replace("|", "\\|").replace("\n", " ")


def attribution_markdown(entries: list[Entry], versions: dict[str, str]) -> str:
    """The text of ``ATTRIBUTION.md``: a header on the sources, then one row per image."""
    lic_counts: dict[str, int] = {}
    for e in entries:
        lic_counts[e.licence] = lic_counts.get(e.licence, 0) + 1
    lines = [
        "# Demo gallery: attribution and licences",
        "",
        "This file is generated by `python -m lfs_gui.demo.build_gallery --out resources/demo`;"
        " do not edit it by hand.",
        "",
        "Each image in `resources/demo/images/` is distributed under the licence stated for it"
        " below, as received from its source (lfs-gui's own GPL-2.0-or-later covers the code,"
        " not these images). All images were downscaled (longest side at most"
        f" {MAX_SIDE} px) and re-encoded as JPEG; transparent cut-outs were composited onto a"
        " white background.",
        "",
        "## Sources",
        "",
        f"* **Tux Paint stamps** -- Debian package `tuxpaint-stamps-default`"
        f" {versions.get('tuxpaint-stamps-default', '')}, <https://tuxpaint.org/>."
        " Copyright 2002-2022 Bill Kendrick and the Tux Paint Stamps contributors (upstream"
        " lists them in `CONTRIBUTORS.txt`). Licensed under the GNU General Public License"
        " version 2 or (at your option) any later version; see"
        f" `{TUXPAINT_COPYRIGHT}` and `/usr/share/common-licenses/GPL-2` on Debian, or"
        " <https://www.gnu.org/licenses/old-licenses/gpl-2.0.html>. The demo gallery's Tux"
        " Paint images are distributed under GPL-2.0-or-later; their source form is the"
        " original PNG stamp in that package.",
        f"* **GCompris** -- Debian package `gcompris-qt-data`"
        f" {versions.get('gcompris-qt-data', '')}, <https://gcompris.net/>. Only photographs"
        " whose activity folder ships a `README` naming the author, source and licence of the"
        " file were used (read from the `.rcc` resource files); each is distributed under the"
        " licence given there (public domain, CC0-1.0, CC-BY or CC-BY-SA; see the table)."
        " Where GCompris edited a photo (cropping, sharpening...) the README's note is kept in"
        " the credit. The package-wide licence of GCompris is GPL-3.0-or-later"
        f" (`{GCOMPRIS_COPYRIGHT}`); that Debian file's per-image list describes older"
        " versions of the categorization images, so the READMEs shipped with the files are"
        " the ones used here.",
        "",
        "Licence counts: " + ", ".join(f"{k}: {v}" for k, v in sorted(lic_counts.items())) + ".",
        "",
        "Licence texts: GPL-2.0 <https://www.gnu.org/licenses/old-licenses/gpl-2.0.html>,"
        " CC0-1.0 <https://creativecommons.org/publicdomain/zero/1.0/>,"
        " CC-BY-x.y <https://creativecommons.org/licenses/by/x.y/>,"
        " CC-BY-SA-x.y <https://creativecommons.org/licenses/by-sa/x.y/>.",
        "",
        "## Images",
        "",
        "| Image | Class | Licence | Author / credit | Source |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        source = e.source_path
        if e.source_url:
            source += f" ({e.source_url})"
        lines.append(
            f"| `{e.relpath}` | {e.cls} | {e.licence} | {_md(e.credit)} | {_md(source)} |"
        )
    lines.append("")
    return "\n".join(lines)


def collect() -> list[Entry]:
    """All gallery entries, sorted by class then relative path."""
    if not TUXPAINT_ROOT.is_dir():
        raise SystemExit(f"{TUXPAINT_ROOT} missing: apt-get install tuxpaint-stamps-default")
    if not GCOMPRIS_RCC_DIR.is_dir():
        raise SystemExit(f"{GCOMPRIS_RCC_DIR} missing: apt-get install gcompris-qt-data")
    registered = register_rcc()
    log.info("registered %d GCompris .rcc files", len(registered))
    entries: list[Entry] = [*iter_tuxpaint(), *iter_gcompris()]
    entries.sort(key=lambda e: (e.cls, e.relpath))
    return entries


def total_size(paths: Iterable[Path]) -> int:
    """Sum of the sizes of ``paths``."""
    return sum(p.stat().st_size for p in paths if p.is_file())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--out", type=Path, default=Path("resources/demo"), help="output folder")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every skipped file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    entries = collect()
    versions = {p: package_version(p) for p in ("tuxpaint-stamps-default", "gcompris-qt-data")}
    args.out.mkdir(parents=True, exist_ok=True)
    meta = write_outputs(entries, args.out, versions)
    size = total_size(args.out.rglob("*"))
    for c in meta["classes"]:
        print(f"{c:12s} {meta['counts'][c]:4d}")
    print(f"{len(entries)} images, {size / 1e6:.2f} MB in {args.out}")
    print(f"train: {meta['train_classes']}\ntest:  {meta['test_classes']}")
    if size > MAX_TOTAL_BYTES:
        print(f"ERROR: gallery is larger than {MAX_TOTAL_BYTES} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
