"""An estimate of the time left in a run of uneven work units (``evaluate``'s pairs × methods).

Units of one kind (method × pair type) cost about the same; different kinds differ by orders of
magnitude (rise-sim vs random). The estimate for the units left is the mean time measured for each
kind so far, falling back to the mean of all finished units for kinds not seen yet.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def format_duration(seconds: float) -> str:
    """``"12 s"``, ``"3 min"``, ``"1 h 05 min"``."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    h, m = divmod(int(round(s / 60)), 60)
    return f"{h} h {m:02d} min"


class Eta:
    """Time left for a fixed list of unit kinds, learned from the units finished so far."""

    def __init__(self, kinds: Sequence[Hashable]) -> None:
        self.left: dict[Hashable, int] = {}
        for k in kinds:
            self.left[k] = self.left.get(k, 0) + 1
        self.spent: dict[Hashable, tuple[float, int]] = {}

    def finished(self, kind: Hashable, seconds: float) -> None:
        if self.left.get(kind, 0) > 0:
            self.left[kind] -= 1
        t, n = self.spent.get(kind, (0.0, 0))
        self.spent[kind] = (t + float(seconds), n + 1)

    def seconds_left(self, running: float = 0.0) -> float | None:
        """Estimated seconds for the units not finished (``running``: seconds already spent on the
        current one); ``None`` until a unit has finished."""
        if not self.spent:
            return None
        total_t = sum(t for t, _ in self.spent.values())
        total_n = sum(n for _, n in self.spent.values())
        overall = total_t / total_n
        est = sum(n * (self.spent[k][0] / self.spent[k][1] if k in self.spent else overall) for k, n in self.left.items())
        return max(0.0, est - running)

    def text(self, running: float = 0.0) -> str:
        left = self.seconds_left(running)
        return "" if left is None else f" · about {format_duration(left)} left"
