"""Correspondence and SANE attributes in the pair figure (Qt-free, matplotlib Agg).

Used through :func:`lfs_gui.figures.pair.save_pair_figure`'s ``decorate`` and ``extra_rows``:

* :func:`correspondence_decoration` — the query's chosen point (a marker), the heat of its match on
  the target (replacing the target's heat panel, titled with exact/estimate), and the top-k matched
  location pairs as lines between the two heat panels;
* :func:`attribute_rows` — SANE's top attributes' activation maps on both images, one row each, the
  row titled "matched on: ..." with the confidences.

Everything is drawn in ORIGINAL-image coordinates: cells map through the model's crop box
(:func:`lfs_gui.explain.correspondence.cell_to_original`), maps through
:func:`lfs_gui.figures.overlay.heat_to_original`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lfs_gui.explain.correspondence import Correspondence, cell_to_original
from lfs_gui.figures.overlay import blend, heat_to_original
from lfs_gui.models.base import Preprocessing

Line = tuple[tuple[float, float], tuple[float, float], float]


def match_lines(corr: Correspondence, k: int, pre: Preprocessing, size1: tuple[int, int],
                size2: tuple[int, int]) -> list[Line]:
    """The top-``k`` matches as ((x₁, y₁), (x₂, y₂), value) in original-image pixels."""
    return [(cell_to_original(corr, 1, m.i, pre, *size1), cell_to_original(corr, 2, m.j, pre, *size2), m.value)
            for m in corr.top_matches(k)]


def correspondence_rgb(img: Any, heat: np.ndarray, pre: Preprocessing, cmap: str = "jet", alpha: float = 0.55) -> np.ndarray:
    """``img`` with a correspondence heat map (model-input frame, any grid) blended inside its crop box."""
    w, h = img.size
    return blend(img, heat_to_original(heat, pre, w, h), alpha=alpha, cmap=cmap)


def draw_lines(fig: Any, ax1: Any, ax2: Any, lines: list[Line], color: str = "yellow") -> None:
    """Lines from points of ``ax1`` (query) to points of ``ax2`` (target); width by value."""
    from matplotlib.patches import ConnectionPatch

    if not lines:
        return
    top = max(v for _, _, v in lines)
    for p1, p2, v in lines:
        con = ConnectionPatch(xyA=p1, coordsA=ax1.transData, xyB=p2, coordsB=ax2.transData, color=color,
                              lw=0.6 + 1.6 * (v / top if top > 0 else 0), alpha=0.85)
        fig.add_artist(con)
        ax1.plot(*p1, "o", ms=2.5, color=color)
        ax2.plot(*p2, "o", ms=2.5, color=color)


def correspondence_decoration(corr: Correspondence, pre: Preprocessing, images: tuple[Any, Any],
                              point: tuple[float, float] | None = None, cell: int | None = None,
                              lines: int = 0, cmap: str = "jet") -> Callable[[Any, dict[str, Any]], None]:
    """A ``decorate`` callback: point + its match heat on the target, and ``lines`` match lines."""
    size1, size2 = images[0].size, images[1].size
    kind = "exact" if corr.exact else "estimate"

    def decorate(fig: Any, axes: dict[str, Any]) -> None:
        aq, at = axes["query_heat"], axes["target_heat"]
        if cell is not None:
            heat = corr.match_heat(1, cell)
            at.images[0].set_data(correspondence_rgb(images[1], heat, pre, cmap=cmap))
            at.set_title(f"target: match of the query point (+)\n{kind}, {corr.method}", fontsize=8)
        if point is not None:
            aq.plot(*point, marker="+", ms=12, mew=2.2, color="white")
            aq.plot(*point, marker="+", ms=10, mew=1.2, color="black")
        if lines > 0:
            draw_lines(fig, aq, at, match_lines(corr, lines, pre, size1, size2))
            if cell is None:
                at.set_title(f"target: top {lines} matched locations\n{kind}, {corr.method}", fontsize=8)

    return decorate


def attribute_rows(choice: Any, images: tuple[Any, Any], pre: Preprocessing, k: int = 1,
                   cmap: str = "viridis") -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """``extra_rows`` for SANE: the top-``k`` attributes' activation maps on query and target."""
    rows = []
    for rank, s in enumerate(choice.top(k), 1):
        rgb = [correspondence_rgb(img, choice.heat(which, s.index), pre, cmap=cmap)
               for which, img in ((1, images[0]), (2, images[1]))]
        top = [f"{t.name} ({t.confidence:.2f})" for t in choice.top(3)]
        head = ("matched on: " + ", ".join(top[:1]) + (",\n" + ", ".join(top[1:]) if top[1:] else "")) if rank == 1 else f"#{rank}"
        t1 = f"{head}\nquery: map of '{s.name}', p = {s.confidence_query:.2f}"
        t2 = f"target: p = {s.confidence_target:.2f}, agreement {s.agreement:.2f}\ndeleting its region: similarity {-s.deletion_drop:+.3f}"
        rows.append((t1, t2, rgb[0], rgb[1]))
    return rows
