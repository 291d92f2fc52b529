"""Writing figures: format by suffix, fonts embedded, settings in the file's metadata, atomically.

Fonts: PDF text uses Type 42 (TrueType) fonts embedded in the file (``pdf.fonttype = 42``), which
journals accept and editors can still edit, instead of matplotlib's default Type 3; SVG text is
written as paths (``svg.fonttype = "path"``), so the SVG looks the same on a machine without the
font. Metadata: the caption and a JSON object with every setting go into PNG text chunks
(``Description``, ``lfs-gui settings``), the PDF info dictionary (``Subject``, ``Keywords``) and the
SVG's RDF metadata (``Description``); :func:`read_figure_metadata` reads them back from any of the
three. Creation dates are left out so that the same figure gives the same bytes.
Qt-free; matplotlib through ``Figure`` + ``FigureCanvasAgg`` only (never pyplot).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from lfs_gui.jobs import atomic_path

log = logging.getLogger(__name__)

FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
SETTINGS_KEY = "lfs-gui settings"
_SVG_MARK = "\nsettings: "
FONT_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path", "svg.hashsalt": "lfs-gui",
           "font.family": "DejaVu Sans", "axes.unicode_minus": True}


def check_figure_suffix(path: str | Path) -> str:
    """matplotlib format for ``path``'s suffix; ``ValueError`` naming the supported ones otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(f"{path}: unsupported figure format {suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join(FIGURE_FORMATS)}")
    return FIGURE_FORMATS[suffix]


def new_figure(width: float, height: float, dpi: int = 100) -> Any:
    """A matplotlib Figure of ``width``×``height`` inches on an Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _metadata(fmt: str, title: str, caption: str, settings: dict) -> dict:
    from lfs_gui import __version__
    from lfs_gui.figures.curves import jsonable

    blob = json.dumps(jsonable(settings), ensure_ascii=True, sort_keys=True)
    creator = f"lfs-gui {__version__}"
    if fmt == "png":
        return {"Title": title, "Description": caption, "Software": creator, SETTINGS_KEY: blob}
    if fmt == "pdf":
        return {"Title": title, "Subject": caption, "Keywords": blob, "Creator": creator, "CreationDate": None}
    return {"Title": title, "Description": caption + _SVG_MARK + blob, "Creator": creator, "Date": None}


def write_figure(fig: Any, path: str | Path, dpi: int, title: str = "", caption: str = "",
                 settings: dict | None = None) -> Path:
    """Save ``fig`` to ``path`` (format by suffix) atomically, fonts embedded, ``caption`` and
    ``settings`` (JSON) in the metadata; the figure size is kept exactly (no tight bbox)."""
    from matplotlib import rc_context

    path = Path(path)
    fmt = check_figure_suffix(path)
    meta = _metadata(fmt, title or "lfs-gui figure", caption, dict(settings or {}))
    with rc_context(FONT_RC), atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta)
    log.info("figure written to %s", path)
    return path


def read_figure_metadata(path: str | Path) -> dict:
    """``{"title", "caption", "settings"}`` read back from a PNG, PDF or SVG written by :func:`write_figure`."""
    path = Path(path)
    fmt = check_figure_suffix(path)
    if fmt == "png":
        from PIL import Image

        with Image.open(path) as im:
            info = dict(getattr(im, "text", {}) or im.info)
        return {"title": info.get("Title", ""), "caption": info.get("Description", ""),
                "settings": json.loads(info.get(SETTINGS_KEY, "{}"))}
    if fmt == "pdf":
        data = path.read_bytes()
        return {"title": _pdf_string(data, b"Title"), "caption": _pdf_string(data, b"Subject"),
                "settings": json.loads(_pdf_string(data, b"Keywords") or "{}")}
    import xml.etree.ElementTree as ET

    ns = {"dc": "http://purl.org/dc/elements/1.1/", "cc": "http://creativecommons.org/ns#",
          "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "svg": "http://www.w3.org/2000/svg"}
    work = ET.parse(path).getroot().find("svg:metadata/rdf:RDF/cc:Work", ns)
    title = "" if work is None else (work.findtext("dc:title", "", ns) or "")
    desc = "" if work is None else (work.findtext("dc:description", "", ns) or "")
    caption, _, blob = desc.partition(_SVG_MARK)
    return {"title": title, "caption": caption, "settings": json.loads(blob or "{}")}


def _pdf_string(data: bytes, key: bytes) -> str:
    """The value of ``/key`` in a PDF info dictionary (literal ``(...)`` or hex ``<FEFF...>`` string)."""
    m = re.search(rb"/" + key + rb"\s*(\(|<)", data)
    if m is None:
        return ""
    i = m.end()
    if m.group(1) == b"<":
        j = data.index(b">", i)
        raw = bytes.fromhex(data[i:j].decode("ascii"))
        return raw[2:].decode("utf-16-be") if raw.startswith(b"\xfe\xff") else raw.decode("latin-1")
    out, depth = bytearray(), 1
    escapes = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash
            nxt = data[i + 1]
            if nxt in escapes:
                out += escapes[nxt]
                i += 2
                continue
            if 0x30 <= nxt <= 0x37:  # octal
                digits = re.match(rb"[0-7]{1,3}", data[i + 1 : i + 4]).group(0)  # type: ignore[union-attr]
                out.append(int(digits, 8))
                i += 1 + len(digits)
                continue
            out.append(nxt)
            i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                break
        out.append(c)
        i += 1
    raw = bytes(out)
    return raw[2:].decode("utf-16-be") if raw.startswith(b"\xfe\xff") else raw.decode("latin-1")

