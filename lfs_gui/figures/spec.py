"""What an exported figure shows and how: one Qt-free view spec for the app and the CLI.

The desktop app fills a :class:`ViewSpec` from its state (colormap, opacity, mask view, the curves on
the plot, the correspondences on the pair view) and the export dialog (size, DPI); ``lfs-gui
explain`` / ``continuity`` fill the same dataclass from their flags. The figure functions take only
the spec and the data, so a figure exported from the window and one made on the command line with
the same settings are the same figure.

Sizes follow journal columns: ``single`` = 3.5 in (one column of a two-column paper), ``double`` =
7.16 in (the full text width, IEEE/Elsevier); a number is a width in inches. Heights follow from the
layout. DPI presets are the usual print resolutions; vector formats (SVG/PDF) use the DPI only for
the embedded photos, which are downsampled to exactly what the figure needs at that DPI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

SIZE_PRESETS: dict[str, float] = {"single": 3.5, "double": 7.16}
"""Figure widths in inches: one column / the full text width of a two-column paper."""

DPI_PRESETS: dict[str, int] = {"screen": 150, "print": 300, "high": 600}
"""Common resolutions; any integer DPI is accepted as well."""

COLORMAPS = ("jet", "viridis", "turbo", "inferno", "magma", "coolwarm", "gray")
"""Colormaps offered for heat maps: jet (the paper's) next to perceptually uniform ones."""

CURVE_ROLES = ("method", "random", "oracle")
"""The curves a pair figure can show, in drawing order: the method's, the random floor, the oracle."""

MIN_DPI, MAX_DPI = 20, 1200


@dataclass(frozen=True, eq=False)
class Correspondence:
    """Matching locations on the two images of a pair, drawn as points or match lines.

    Coordinates are **normalised model-input coordinates**: ``(u, v)`` in [0, 1], u to the right and v
    down across the model's input (the crop), the frame every heat map lives in; the figure maps them
    through each image's crop box. ``points1[i]`` on the query matches ``points2[i]`` on the target.
    ``weights`` (optional, N) scale the marker size / line width; ``style`` is ``"points"`` (numbered
    markers on both images) or ``"lines"`` (a line from each query point to its match).
    """

    points1: np.ndarray
    points2: np.ndarray
    weights: np.ndarray | None = None
    style: str = "lines"
    label: str = ""

    def __post_init__(self) -> None:
        p1 = np.asarray(self.points1, dtype=np.float64).reshape(-1, 2)
        p2 = np.asarray(self.points2, dtype=np.float64).reshape(-1, 2)
        if p1.shape != p2.shape:
            raise ValueError(f"correspondence: {len(p1)} query points but {len(p2)} target points")
        if self.style not in ("points", "lines"):
            raise ValueError(f"correspondence style must be 'points' or 'lines', got {self.style!r}")
        w = None if self.weights is None else np.asarray(self.weights, dtype=np.float64).reshape(-1)
        if w is not None and len(w) != len(p1):
            raise ValueError(f"correspondence: {len(w)} weights for {len(p1)} matches")
        object.__setattr__(self, "points1", p1)
        object.__setattr__(self, "points2", p2)
        object.__setattr__(self, "weights", w)

    @classmethod
    def from_input_pixels(cls, points1: Any, points2: Any, input_size: int, **kw: Any) -> "Correspondence":
        """Build from model-input pixel coordinates (x, y) of an ``input_size``² input."""
        s = float(input_size)
        return cls(np.asarray(points1, np.float64) / s, np.asarray(points2, np.float64) / s, **kw)

    def __len__(self) -> int:
        return len(self.points1)

    def describe(self) -> dict:
        return {"matches": len(self), "style": self.style, "label": self.label}


@dataclass(frozen=True)
class ViewSpec:
    """How a pair (or a sheet of pairs) is drawn; see the module docstring.

    ``mask_view``: draw the heat only where it exceeds ξ2 (the window's "mask only").
    ``crop_box``: outline the region the model saw; ``mark_unseen``: hatch and grey the rest, so
    that it does not read as "no relevance". ``curves``: which of the available curves to draw.
    ``size``: ``"single"``, ``"double"`` or a width in inches. ``font_size`` in points.
    """

    cmap: str = "jet"
    opacity: float = 0.5
    mask_view: bool = False
    crop_box: bool = True
    mark_unseen: bool = True
    reconstructions: bool = True
    colorbar: bool = True
    curves: tuple[str, ...] = CURVE_ROLES
    correspondence: Correspondence | None = field(default=None, compare=False)
    size: str | float = "double"
    dpi: int = 300
    font_size: float = 7.0

    def __post_init__(self) -> None:
        from matplotlib import colormaps

        if self.cmap not in colormaps:
            raise ValueError(f"unknown colormap {self.cmap!r}; use one of {', '.join(COLORMAPS)}")
        if not 0.0 <= float(self.opacity) <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")
        if not MIN_DPI <= int(self.dpi) <= MAX_DPI:
            raise ValueError(f"dpi must be in {MIN_DPI}..{MAX_DPI}, got {self.dpi}")
        self.width_in  # validates size
        if not 4.0 <= float(self.font_size) <= 14.0:
            raise ValueError(f"font size must be 4..14 pt, got {self.font_size}")
        unknown = set(self.curves) - set(CURVE_ROLES)
        if unknown:
            raise ValueError(f"unknown curve(s) {sorted(unknown)}; use {', '.join(CURVE_ROLES)}")

    @property
    def width_in(self) -> float:
        """The figure's width in inches (from the preset or the number)."""
        if isinstance(self.size, str) and self.size in SIZE_PRESETS:
            return SIZE_PRESETS[self.size]
        try:
            w = float(self.size)
        except (TypeError, ValueError):
            raise ValueError(f"size must be {' or '.join(SIZE_PRESETS)} or a width in inches, got {self.size!r}") from None
        if not 1.5 <= w <= 20.0:
            raise ValueError(f"figure width must be 1.5..20 inches, got {w:g}")
        return w

    @property
    def width_px(self) -> int:
        """The width in pixels of a PNG export."""
        return int(round(self.width_in * self.dpi))

    def replace(self, **changes: Any) -> "ViewSpec":
        return replace(self, **changes)

    def describe(self) -> dict:
        """The spec as JSON-safe settings (for captions and file metadata)."""
        d = asdict(self)
        d.pop("correspondence")
        d["curves"] = list(self.curves)
        d["width_in"] = self.width_in
        if self.correspondence is not None:
            d["correspondence"] = self.correspondence.describe()
        return d


def parse_size(text: str) -> str | float:
    """``--size`` value: a preset name or a width in inches (``ValueError`` naming both otherwise)."""
    t = str(text).strip().lower()
    if t in SIZE_PRESETS:
        return t
    try:
        return float(t.removesuffix("in"))
    except ValueError:
        raise ValueError(f"--size {text!r}: use {', '.join(SIZE_PRESETS)} or a width in inches (e.g. 5.2)") from None


def parse_dpi(text: str | int) -> int:
    """``--dpi`` value: a preset name or an integer."""
    t = str(text).strip().lower()
    if t in DPI_PRESETS:
        return DPI_PRESETS[t]
    try:
        return int(t)
    except ValueError:
        raise ValueError(f"--dpi {text!r}: use {', '.join(DPI_PRESETS)} or a number ({MIN_DPI}..{MAX_DPI})") from None
