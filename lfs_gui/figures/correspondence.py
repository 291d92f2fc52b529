"""Correspondence and SANE attributes in the pair figure (Qt-free).

The pair figure (:mod:`lfs_gui.figures.pair`) draws a :class:`~lfs_gui.figures.spec.ViewSpec`'s
``correspondence`` as matched points or lines and ``PairData.extra_rows`` as rows of maps under the
pair. This module turns the results of issue 12 into those:

* :func:`figure_matches` — a query point and its best match, and/or the top-k matched location pairs
  of a :class:`lfs_gui.explain.correspondence.Correspondence`, as the spec's ``Correspondence``
  (normalised model-input coordinates; the figure maps them through each crop box);
* :func:`point_explanation` — the explanation to draw with the target's heat replaced by the heat of
  the query point's match (so the target panel shows where that point matches);
* :func:`attribute_rows` — SANE's top attributes' activation maps on query and target, one row each,
  titled "matched on: …" with the confidences;
* :func:`match_lines` — the same matches in original-image pixels (for the JSON).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from lfs_gui.explain.correspondence import Correspondence, cell_to_original
from lfs_gui.figures.spec import Correspondence as FigureMatches
from lfs_gui.models.base import Preprocessing

Line = tuple[tuple[float, float], tuple[float, float], float]


def match_lines(corr: Correspondence, k: int, pre: Preprocessing, size1: tuple[int, int],
                size2: tuple[int, int]) -> list[Line]:
    """The top-``k`` matches as ((x₁, y₁), (x₂, y₂), value) in original-image pixels."""
    return [(cell_to_original(corr, 1, m.i, pre, *size1), cell_to_original(corr, 2, m.j, pre, *size2), m.value)
            for m in corr.top_matches(k)]


def figure_matches(corr: Correspondence, point_uv: tuple[float, float] | None = None, cell: int | None = None,
                   lines: int = 0) -> FigureMatches | None:
    """The spec's matches: first the query point (model-input pixel ``point_uv``, in ``cell``) and its best
    match on the target, then the ``lines`` strongest location pairs (drawn as lines when there are any)."""
    hh, ww = corr.input_size
    p1: list[tuple[float, float]] = []
    p2: list[tuple[float, float]] = []
    w: list[float] = []
    if cell is not None and point_uv is not None:
        row = corr.match_map(1, cell).ravel()
        j = int(np.argmax(row))
        p1.append(point_uv)
        p2.append(corr.cell_center(2, j))
        w.append(float(max(row[j], 0.0)))
    for m in corr.top_matches(lines):
        p1.append(corr.cell_center(1, m.i))
        p2.append(corr.cell_center(2, m.j))
        w.append(m.value)
    if not p1:
        return None
    scale = np.array([ww, hh], np.float64)
    kind = "exact" if corr.exact else "estimated"
    label = f"{kind} matches ({corr.method})" if lines else f"query point and its {kind} best match ({corr.method})"
    return FigureMatches(np.array(p1) / scale, np.array(p2) / scale, weights=np.array(w),
                         style="lines" if lines else "points", label=label)


def point_explanation(ex: Any, corr: Correspondence, cell: int, point: tuple[float, float]) -> Any:
    """``ex`` with the target's map replaced by the heat of the query point's match (and no target mask),
    its settings saying so (they go into the caption)."""
    kind = "exact" if corr.exact else "estimate"
    note = f"match of query point ({point[0]:g}, {point[1]:g}), {kind} {corr.method}"
    return replace(ex, heat2=corr.match_heat(1, cell), mask2=None,
                   settings={**dict(getattr(ex, "settings", {}) or {}), "target map": note})


def attribute_rows(choice: Any, k: int = 1) -> tuple[tuple[str, np.ndarray, str, np.ndarray], ...]:
    """``PairData.extra_rows`` for SANE: the top-``k`` attributes' activation maps on query and target."""
    top = [f"{t.name} ({t.confidence:.2f})" for t in choice.top(3)]
    rows = []
    for rank, s in enumerate(choice.top(k), 1):
        head = "matched on: " + ", ".join(top) if rank == 1 else f"#{rank}: {s.name}"
        t1 = f"{head}\nquery: map of {s.name}, p = {s.confidence_query:.2f}"
        t2 = (f"target: map of {s.name}, p = {s.confidence_target:.2f}\n"
              f"agreement {s.agreement:.2f}; deleting it: {-s.deletion_drop:+.3f}")
        rows.append((t1, choice.heat(1, s.index), t2, choice.heat(2, s.index)))
    return tuple(rows)
