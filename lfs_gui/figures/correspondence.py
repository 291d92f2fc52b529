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
* :func:`match_lines` — the same matches in original-image pixels (for the JSON);
* :func:`window_extras` — all of it from the window's match state, for the app's export.
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
                   lines: int = 0, which: int = 1) -> FigureMatches | None:
    """The spec's matches: first the point (model-input pixel ``point_uv`` in ``cell`` of image ``which``)
    and its best match on the other image, then the ``lines`` strongest location pairs (drawn as lines
    when there are any)."""
    hh, ww = corr.input_size
    p1: list[tuple[float, float]] = []
    p2: list[tuple[float, float]] = []
    w: list[float] = []
    if cell is not None and point_uv is not None:
        row = corr.match_map(which, cell).ravel()
        j = int(np.argmax(row))
        other = corr.cell_center(2 if which == 1 else 1, j)
        p1.append(point_uv if which == 1 else other)
        p2.append(other if which == 1 else point_uv)
        w.append(float(max(row[j], 0.0)))
    for m in corr.top_matches(lines):
        p1.append(corr.cell_center(1, m.i))
        p2.append(corr.cell_center(2, m.j))
        w.append(m.value)
    if not p1:
        return None
    scale = np.array([ww, hh], np.float64)
    kind = "exact" if corr.exact else "estimated"
    label = f"{kind} matches ({corr.method})" if lines else f"chosen point and its {kind} best match ({corr.method})"
    return FigureMatches(np.array(p1) / scale, np.array(p2) / scale, weights=np.array(w),
                         style="lines" if lines else "points", label=label)


def point_explanation(ex: Any, corr: Correspondence, cell: int, point: tuple[float, float], which: int = 1) -> Any:
    """``ex`` with the OTHER image's map replaced by the heat of the point's match (and its mask dropped),
    its settings saying so (they go into the caption)."""
    kind = "exact" if corr.exact else "estimate"
    who = "query" if which == 1 else "target"
    note = f"match of {who} point ({point[0]:.0f}, {point[1]:.0f}), {kind} {corr.method}"
    heat = corr.match_heat(which, cell)
    changes = {"heat2": heat, "mask2": None} if which == 1 else {"heat1": heat, "mask1": None}
    key = "target map" if which == 1 else "query map"
    return replace(ex, **changes, settings={**dict(getattr(ex, "settings", {}) or {}), key: note})


def window_extras(snapshot: dict[str, Any], explanation: Any, spec: Any, preprocessing: Preprocessing,
                  sizes: tuple[tuple[int, int], tuple[int, int]]) -> tuple[Any, Any, tuple]:
    """What the window's match tools show, for the exported pair figure: ``snapshot`` holds the match
    state's ``enabled``, ``point`` (a :class:`~lfs_gui.match_state.MatchPoint`), ``lines``,
    ``correspondence``, ``attributes`` and ``attribute`` (taken on the GUI thread when the user asked).
    Returns ``(explanation, spec, extra_rows)``."""
    corr, pt = snapshot.get("correspondence"), snapshot.get("point")
    rows: tuple = ()
    if snapshot.get("enabled") and corr is not None:
        uv = cell = None
        which = 1
        if pt is not None:
            which, cell = pt.which, pt.cell
            uv = preprocessing.to_input_coords(pt.xy[0], pt.xy[1], *sizes[which - 1])
            explanation = point_explanation(explanation, corr, cell, pt.xy, which)
        matches = figure_matches(corr, uv, cell, int(snapshot.get("lines") or 0), which)
        if matches is not None:
            spec = spec.replace(correspondence=matches)
    choice = snapshot.get("attributes")
    if choice is not None and choice.ranked:
        index = snapshot.get("attribute")
        chosen = next((s for s in choice.ranked if s.index == index), None) if index is not None else None
        rows = attribute_rows(choice, k=1, score=chosen)
    return explanation, spec, rows


def attribute_rows(choice: Any, k: int = 1, score: Any = None) -> tuple[tuple[str, np.ndarray, str, np.ndarray], ...]:
    """``PairData.extra_rows`` for SANE: the top-``k`` attributes' activation maps on query and target
    (or only ``score``'s, an :class:`~lfs_gui.attributes.sane.AttributeScore` the user picked)."""
    top = [f"{t.name} ({t.confidence:.2f})" for t in choice.top(3)]
    rows = []
    for rank, s in enumerate([score] if score is not None else choice.top(k), 1):
        head = "matched on: " + ", ".join(top) if rank == 1 else f"#{rank}: {s.name}"
        t1 = f"{head}\nquery: map of {s.name}, p = {s.confidence_query:.2f}"
        t2 = (f"target: map of {s.name}, p = {s.confidence_target:.2f}\n"
              f"agreement {s.agreement:.2f}; deleting it: {-s.deletion_drop:+.3f}")
        rows.append((t1, choice.heat(1, s.index), t2, choice.heat(2, s.index)))
    return tuple(rows)
