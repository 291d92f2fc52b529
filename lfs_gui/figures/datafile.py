"""The CSV layout of the curve data files: ``# key: <JSON>`` header lines, then a table.

Curve files (pixel flipping, continuity) carry their settings as one JSON value per header line,
sections (``pair``, ``model`` ...) as ``# pair: {...}`` and each curve's own settings as
``# curve.NAME: {...}``, then one row per curve and step. :func:`dump_csv` writes that layout,
:func:`parse_csv` reads it back; the JSON form of the same file is simply the dict.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any


def dump_csv(intro: str, sections: dict[str, Any], curve_heads: dict[str, Any], columns: list[str],
             rows: Iterable[list[Any]]) -> str:
    """The CSV text: an explanatory first line, one ``# key: JSON`` line per section and per curve head,
    then the header row and ``rows`` (``None`` cells left empty)."""
    buf = io.StringIO()
    buf.write(f"# {intro}\n")
    for key, value in sections.items():
        buf.write(f"# {key}: {json.dumps(value, ensure_ascii=False)}\n")
    for name, head in curve_heads.items():
        buf.write(f"# curve.{name}: {json.dumps(head, ensure_ascii=False)}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def parse_csv(text: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, str]]]:
    """``(sections, curve_heads, rows)`` of a file written by :func:`dump_csv`."""
    sections: dict[str, Any] = {}
    heads: dict[str, Any] = {}
    lines = []
    for line in text.splitlines():
        if line.startswith("# "):
            key, sep, value = line[2:].partition(": ")
            if not sep or " " in key:
                continue  # the explanatory first line
            if key.startswith("curve."):
                heads[key[len("curve."):]] = json.loads(value)
            else:
                sections[key] = json.loads(value)
        elif line.strip():
            lines.append(line)
    return sections, heads, list(csv.DictReader(lines))


def number(cell: str) -> float | None:
    """A float cell, ``None`` when empty (a NaN that was written as nothing)."""
    return float(cell) if cell else None
