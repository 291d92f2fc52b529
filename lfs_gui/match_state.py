"""What the pair view's match tools show: the chosen point, its lock, the match lines, SANE's attributes.

A Qt-free evented model (psygnal) next to :class:`lfs_gui.viewer_state.ViewerState`: widgets write the
user's intent (hover, click to lock, keys, the lines spin box, a click on an attribute) through the
setters; the results computed for the current pair (the :class:`~lfs_gui.explain.correspondence.Correspondence`,
the :class:`~lfs_gui.attributes.sane.AttributeChoice`) are written back by the app's match controller;
views redraw on the ``*Changed`` signals. Setters emit only on real changes. Export and notebooks read
the same values (e.g. a locked point for a figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psygnal import Signal


@dataclass(frozen=True)
class MatchPoint:
    """A point on image ``which`` (1 = query, 2 = target): its feature cell and the original-image pixel."""

    which: int
    cell: int
    xy: tuple[float, float]
    locked: bool = False


class MatchState:
    """Observable match-tool state (see the module docstring)."""

    enabledChanged = Signal(bool)
    linesChanged = Signal(int)
    pointChanged = Signal(object)  # MatchPoint | None
    correspondenceChanged = Signal(object)  # Correspondence | None
    attributesChanged = Signal(object)  # AttributeChoice | None
    attributeChanged = Signal(object)  # selected attribute index | None
    statusChanged = Signal(str)

    def __init__(self) -> None:
        self.enabled = False
        self.lines = 0
        self.point: MatchPoint | None = None
        self.correspondence: Any = None
        self.attributes: Any = None
        self.attribute: int | None = None
        self.status = ""

    # -- user intent ------------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        if bool(on) != self.enabled:
            self.enabled = bool(on)
            if not on:
                self._set_point(None)
            self.enabledChanged.emit(self.enabled)

    def set_lines(self, k: int) -> None:
        k = max(0, int(k))
        if k != self.lines:
            self.lines = k
            self.linesChanged.emit(k)

    def hover(self, point: MatchPoint | None) -> None:
        """The pointer is over ``point`` (None: left the images); ignored while a point is locked."""
        if self.point is not None and self.point.locked:
            return
        self._set_point(point)

    def click(self, point: MatchPoint) -> None:
        """Lock ``point``; a click on the locked cell unlocks it."""
        cur = self.point
        if cur is not None and cur.locked and (cur.which, cur.cell) == (point.which, point.cell):
            self._set_point(MatchPoint(point.which, point.cell, point.xy, locked=False))
        else:
            self._set_point(MatchPoint(point.which, point.cell, point.xy, locked=True))

    def move_to(self, point: MatchPoint) -> None:
        """Keyboard: go to ``point``, keeping the current lock."""
        locked = self.point.locked if self.point is not None else False
        self._set_point(MatchPoint(point.which, point.cell, point.xy, locked=locked))

    def toggle_lock(self) -> None:
        if self.point is not None:
            p = self.point
            self._set_point(MatchPoint(p.which, p.cell, p.xy, locked=not p.locked))

    def clear(self) -> None:
        self._set_point(None)

    def select_attribute(self, index: int | None) -> None:
        """Show attribute ``index``'s maps (the same index again, or None, goes back to the heat)."""
        index = None if index is None or index == self.attribute else int(index)
        if index != self.attribute:
            self.attribute = index
            self.attributeChanged.emit(index)

    # -- results ----------------------------------------------------------------------------------
    def set_correspondence(self, corr: Any) -> None:
        if corr is not self.correspondence:
            self.correspondence = corr
            if corr is None:
                self._set_point(None)
            self.correspondenceChanged.emit(corr)

    def set_attributes(self, choice: Any) -> None:
        if choice is not self.attributes:
            self.attributes = choice
            if self.attribute is not None:
                self.attribute = None
                self.attributeChanged.emit(None)
            self.attributesChanged.emit(choice)

    def set_status(self, text: str) -> None:
        if text != self.status:
            self.status = text
            self.statusChanged.emit(text)

    def _set_point(self, point: MatchPoint | None) -> None:
        if point != self.point:
            self.point = point
            self.pointChanged.emit(point)
