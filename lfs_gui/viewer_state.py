"""The viewer's state model: user intent in, events out. Qt-free (psygnal), so the desktop app, a
notebook or a test drive the same state.

Widgets never talk to each other. They write what the user asked for into :class:`ViewerState`
(``set_query``, ``set_target``, ``update_explain``, ``update_view``) and redraw when its events fire
(``state.queryChanged.connect(callback)``; psygnal signals, emitted synchronously on the thread that
called the setter — in the app, the GUI thread). Results computed from that intent (retrievals, the
explanation) are written back by the controller (:mod:`lfs_gui.app.controller`) and announced the
same way. Setters emit only on real changes, so a widget that mirrors a value it just wrote does not
loop. Following napari/ndv: the model knows nothing about the views that observe it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from psygnal import Signal


@dataclass(frozen=True, eq=False)
class QueryRef:
    """The current query: a gallery item (``id``) or an external image file (``path``).

    An external image is embedded once in a worker (``Session.iter_embed_image`` caches it per path), so
    afterwards the session answers for its path as fast as for a gallery id.
    """

    id: int | None
    path: Path
    label: int | None = None
    class_name: str | None = None

    @property
    def external(self) -> bool:
        return self.id is None

    @property
    def key(self) -> int | str:
        """What the session's ``retrieve``/``explain``/``iter_curve`` accept as the query."""
        return self.id if self.id is not None else str(self.path)

    def same_as(self, other: "QueryRef | None") -> bool:
        if other is None:
            return False
        if self.id is not None or other.id is not None:
            return self.id == other.id
        return self.path == other.path


# Methods whose perturbation size the p slider sets (the others ignore it).
P_METHODS = frozenset({"explainlfs", "explainlfs-thesis", "explainlfs-rel"})


def default_p(method: str, fallback: float) -> float:
    """The method's own default p (the registry's constructor default: the same in the CLI and
    ``evaluate``), or ``fallback`` for methods without p. Imports the registry on first use (after the
    first paint)."""
    from lfs_gui.explain.registry import EXPLAINERS, default_settings

    if method not in EXPLAINERS:
        return fallback
    return float(default_settings(method).get("p", fallback))


@dataclass(frozen=True)
class ExplainSettings:
    """What the explanation is computed with (a change recomputes it). ``target``: the question every
    map and curve answers (``decision``, the default everywhere, or ``similarity``)."""

    method: str = "explainlfs"
    p: float = 0.3
    xi1: float = 0.3
    xi2: float = 0.7
    target: str = "decision"

    def kwargs(self) -> dict[str, Any]:
        """Keyword settings for ``Session.explain`` (the method is passed separately); ``p`` only for
        the methods that take it."""
        kw: dict[str, Any] = {"xi1": self.xi1, "xi2": self.xi2, "question": self.target}
        if self.method in P_METHODS:
            kw["p"] = self.p
        return kw


@dataclass(frozen=True)
class ViewSettings:
    """How the explanation is drawn (a change only redraws)."""

    cmap: str = "jet"
    opacity: float = 0.5
    mask_only: bool = False


@dataclass(frozen=True)
class CurveSettings:
    """The pixel-flipping curve's settings."""

    steps: int = 20
    perturbation: str = "noise"
    seed: int = 0
    order: str = "morf"  # most (morf) or least (lerf) relevant superpixels first


@dataclass
class _Values:
    session: Any = None
    query: QueryRef | None = None
    retrievals: Any = None
    target: int | None = None
    explanation: Any = None
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    view: ViewSettings = field(default_factory=ViewSettings)
    curve: CurveSettings = field(default_factory=CurveSettings)
    k: int = 8


class ViewerState:
    """Observable viewer state. Read attributes; change them through the setters; observe the
    ``*Changed`` signals (each carries the new value)."""

    sessionChanged = Signal(object)
    queryChanged = Signal(object)  # QueryRef | None
    retrievalsChanged = Signal(object)  # Retrievals | None
    targetChanged = Signal(object)  # int | None
    explanationChanged = Signal(object)  # HeatPair | None
    explainSettingsChanged = Signal(object)  # ExplainSettings
    viewSettingsChanged = Signal(object)  # ViewSettings
    curveSettingsChanged = Signal(object)  # CurveSettings
    kChanged = Signal(int)

    def __init__(self) -> None:
        self._v = _Values()

    # -- read ---------------------------------------------------------------------------------
    @property
    def session(self) -> Any:
        return self._v.session

    @property
    def query(self) -> QueryRef | None:
        return self._v.query

    @property
    def retrievals(self) -> Any:
        return self._v.retrievals

    @property
    def target(self) -> int | None:
        return self._v.target

    @property
    def explanation(self) -> Any:
        return self._v.explanation

    @property
    def explain(self) -> ExplainSettings:
        return self._v.explain

    @property
    def view(self) -> ViewSettings:
        return self._v.view

    @property
    def curve(self) -> CurveSettings:
        return self._v.curve

    @property
    def k(self) -> int:
        return self._v.k

    # -- user intent ----------------------------------------------------------------------------
    def set_session(self, session: Any) -> None:
        self._v.session = session
        self._v.query = None
        self._v.retrievals = None
        self._v.target = None
        self._v.explanation = None
        self.sessionChanged.emit(session)

    def set_query(self, query: QueryRef | None) -> None:
        if query is not None and query.same_as(self._v.query):
            return
        self._v.query = query
        self._v.target = None
        self.queryChanged.emit(query)

    def set_target(self, target: int | None) -> None:
        if target == self._v.target:
            return
        self._v.target = target
        self.targetChanged.emit(target)

    def update_explain(self, **changes: Any) -> None:
        """Change explain settings; a new ``method`` without a ``p`` takes that method's default p (as
        the CLI and ``evaluate`` do: explainlfs 0.3, explainlfs-rel 0.1, a fraction of ‖h‖)."""
        if "method" in changes and "p" not in changes and changes["method"] != self._v.explain.method \
                and changes["method"] in P_METHODS:
            changes["p"] = default_p(changes["method"], self._v.explain.p)
        new = replace(self._v.explain, **changes)
        if new != self._v.explain:
            self._v.explain = new
            self.explainSettingsChanged.emit(new)

    def update_view(self, **changes: Any) -> None:
        new = replace(self._v.view, **changes)
        if new != self._v.view:
            self._v.view = new
            self.viewSettingsChanged.emit(new)

    def update_curve(self, **changes: Any) -> None:
        new = replace(self._v.curve, **changes)
        if new != self._v.curve:
            self._v.curve = new
            self.curveSettingsChanged.emit(new)

    def set_k(self, k: int) -> None:
        if k != self._v.k:
            self._v.k = int(k)
            self.kChanged.emit(self._v.k)

    # -- results (written by the controller) ------------------------------------------------------
    def set_retrievals(self, retrievals: Any) -> None:
        self._v.retrievals = retrievals
        self.retrievalsChanged.emit(retrievals)

    def set_explanation(self, explanation: Any) -> None:
        self._v.explanation = explanation
        self.explanationChanged.emit(explanation)
