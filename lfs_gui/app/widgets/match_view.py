"""The pair view's match tools: point-to-point correspondence under the mouse, match lines, SANE attributes.

* **Match points** (a check box, or ``M``): the pair's correspondence matrix is computed once, on a
  worker (:func:`lfs_gui.explain.correspondence.iter_correspondence`: exact for GAP + affine heads,
  else a labelled occlusion estimate). Then hovering a point of either image paints, on the other
  image, the heat of that point's match — a lookup in the matrix, so it follows the mouse. A click
  locks the point (for figures; click it again to unlock); the arrow keys move it cell by cell,
  ``Space`` locks/unlocks, ``Tab``-free ``X`` swaps the image, ``Esc`` clears it. ``lines`` draws the
  strongest matched location pairs across the two images.
* **Matched on** (when the index has an attribute predictor, ``INDEX/attributes.pt``): SANE's top three
  attributes for the pair with their confidences, computed on a worker once the pair's explanation
  exists (its heat maps are the saliency SANE compares with); a click on one shows its activation map
  on both images, a second click goes back to the heat. Right-click it to set SANE's weights (confidence,
  map agreement, deletion; :mod:`lfs_gui.attributes.sane` states the formula), kept in the settings.

The values live in :class:`lfs_gui.match_state.MatchState` (Qt-free); this module draws them and writes
the user's intent into it. :func:`attach_match` adds the bar and the overlay to a :class:`PairView`.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QAction, QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QInputDialog, QLabel, QSpinBox, QWidget

from lfs_gui.app.workers import JobChannel
from lfs_gui.match_state import MatchPoint, MatchState

log = logging.getLogger(__name__)


def heat_qimage(heat: np.ndarray, cmap: str) -> Any:
    """A [0, 1] map -> RGBA ``QImage`` (drawn into a tile's crop box, smoothly scaled)."""
    from lfs_gui.app.thumbnails import array_to_qimage
    from lfs_gui.figures.overlay import colorize

    return array_to_qimage(colorize(np.asarray(heat, np.float32), cmap))


def correspondence_job(session: Any, query: Any, target: int) -> Generator[Any, None, Any]:
    """The pair's correspondence (model loads on the worker if needed)."""
    from lfs_gui.explain.correspondence import iter_correspondence

    model = session.model
    x1, x2 = session.input_tensor(query), session.input_tensor(target)
    return (yield from iter_correspondence(model, x1, x2))


def attributes_job(session: Any, query: Any, target: int, heat1: Any, heat2: Any,
                   predictor: Any, weights: tuple[float, float, float] = (0.4, 0.3, 0.3)) -> Generator[Any, None, Any]:
    """SANE's choice for the pair: ``(predictor, choice, why)`` (imports happen on the worker)."""
    from lfs_gui.attributes.index_attributes import iter_pair_attributes

    wc, wg, wd = weights
    return (yield from iter_pair_attributes(session, query, target, heat1, heat2, predictor=predictor,
                                            w_confidence=wc, w_agreement=wg, w_deletion=wd))


SANE_WEIGHTS_KEY = "sane/weights"


def saved_sane_weights() -> tuple[float, float, float]:
    """The user's SANE weights (QSettings ``sane/weights``, "C,G,D"); the defaults when unset or unreadable."""
    from lfs_gui.app.settings import make_settings
    from lfs_gui.attributes.sane import DEFAULT_WEIGHTS, parse_weights

    value = make_settings().value(SANE_WEIGHTS_KEY, None)
    if value is None or value == "":
        return DEFAULT_WEIGHTS
    try:
        return parse_weights(",".join(value) if isinstance(value, list) else str(value), "setting sane/weights")
    except ValueError as exc:
        log.warning("%s; using the defaults", exc)
        return DEFAULT_WEIGHTS


class MatchBar(QWidget):
    """The row of match controls under the pair summary."""

    def __init__(self, match: MatchState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("matchBar")
        self.toggle = QCheckBox("Match points", objectName="matchToggle")
        self.toggle.setToolTip("Hover a point of either image to see where it matches in the other (M).\n"
                               "Click locks the point; arrows move it; Space locks; X swaps the image; Esc clears.")
        self.lines = QSpinBox(objectName="matchLines")
        self.lines.setRange(0, 30)
        self.lines.setPrefix("lines: ")
        self.lines.setToolTip("Draw the strongest matched location pairs")
        self.status = QLabel("", objectName="matchStatus")
        self.matchedOn = QLabel("", objectName="matchedOn")
        self.matchedOn.setTextFormat(Qt.TextFormat.RichText)
        self.matchedOn.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.matchedOn.setToolTip("SANE: the attributes that best explain the match; click one to see its maps")
        self.matchedOn.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.weightsAction = QAction("SANE weights (confidence, map agreement, deletion)…", self.matchedOn)
        self.weightsAction.setObjectName("actionSaneWeights")
        self.matchedOn.addAction(self.weightsAction)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.toggle, self.lines, self.status):
            lay.addWidget(w)
        lay.addStretch(1)
        lay.addWidget(self.matchedOn)
        self.toggle.toggled.connect(match.set_enabled)
        self.lines.valueChanged.connect(match.set_lines)
        self.matchedOn.linkActivated.connect(lambda href: match.select_attribute(int(href)))
        match.enabledChanged.connect(lambda on: self.toggle.setChecked(on))
        match.statusChanged.connect(lambda text: self.status.setText(text))


class MatchOverlay(QWidget):
    """Transparent layer over the pair view: the point's marker and the match lines."""

    def __init__(self, controller: "MatchController") -> None:
        super().__init__(controller.view)
        self.setObjectName("matchOverlay")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground, True)
        self.c = controller

    def paintEvent(self, _event: QPaintEvent) -> None:
        m = self.c.match
        if not m.enabled:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pt = m.point
        if pt is not None:
            pos = self.c.to_view(pt.which, *pt.xy)
            if pos is not None:
                p.setPen(QPen(QColor("white"), 3))
                p.drawEllipse(pos, 6, 6)
                p.setPen(QPen(QColor("black") if not pt.locked else QColor("#ff3b30"), 1.5))
                p.drawEllipse(pos, 6, 6)
                p.drawLine(pos + QPointF(-9, 0), pos + QPointF(9, 0))
                p.drawLine(pos + QPointF(0, -9), pos + QPointF(0, 9))
        for a, b, _v in self.c.line_points():
            p.setPen(QPen(QColor(255, 214, 10, 220), 2))
            p.drawLine(a, b)
            p.drawEllipse(a, 2.5, 2.5)
            p.drawEllipse(b, 2.5, 2.5)
        p.end()


class MatchController(QObject):
    """Computes the pair's correspondence and attributes on workers and draws them into the pair view."""

    def __init__(self, view: Any, match: MatchState | None = None) -> None:
        super().__init__(view)
        self.view = view
        self.state = view._state
        self.match = match or MatchState()
        self.bar = MatchBar(self.match, view)
        self.overlay = MatchOverlay(self)
        self.corr_channel = JobChannel("correspondence", self)
        self.attr_channel = JobChannel("attributes", self)
        self._predictor: Any = None
        self._predictor_session: Any = None
        self.sane_weights = saved_sane_weights()  # a setting (right-click "matched on"); the CLI's --sane-weights
        self._weights_tooltip()
        self.hover_updates = 0  # match heats drawn (tests, bench)
        self.tiles = {1: view.queryHeat, 2: view.targetHeat}
        for t in self.tiles.values():
            t.setMouseTracking(True)
            t.installEventFilter(self)
        view.installEventFilter(self)
        view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        st, m = self.state, self.match
        for sig in (st.sessionChanged, st.queryChanged, st.targetChanged):
            sig.connect(self._on_pair)
        st.explanationChanged.connect(self._on_explanation)
        st.viewSettingsChanged.connect(lambda _v: self.redraw())
        m.enabledChanged.connect(self._on_enabled)
        m.pointChanged.connect(lambda _p: self.redraw())
        m.linesChanged.connect(lambda _k: self.overlay.update())
        m.correspondenceChanged.connect(lambda _c: self.redraw())
        m.attributesChanged.connect(self._show_attributes)
        m.attributeChanged.connect(lambda _a: self.redraw())
        self.corr_channel.done.connect(self._on_correspondence)
        self.corr_channel.failed.connect(lambda exc, _tb: m.set_status(f"correspondence unavailable: {exc}"))
        self.corr_channel.item.connect(lambda item: m.set_status(getattr(item, "message", "") or "computing…"))
        self.attr_channel.done.connect(self._on_attributes)
        self.attr_channel.failed.connect(lambda exc, _tb: self.bar.matchedOn.setText(f"attributes: {exc}"))
        self.bar.weightsAction.triggered.connect(self.choose_sane_weights)

    # -- jobs ----------------------------------------------------------------------------------------
    def _pair(self) -> tuple[Any, Any, int] | None:
        st = self.state
        if st.session is None or st.query is None or st.target is None:
            return None
        return st.session, st.query.key, st.target

    def _on_pair(self, *_: Any) -> None:
        self.corr_channel.cancel()
        self.attr_channel.cancel()
        self.match.set_correspondence(None)
        self.match.set_attributes(None)
        self.bar.matchedOn.setText("")
        if self.state.session is not self._predictor_session:
            self._predictor, self._predictor_session = None, self.state.session
        if self.match.enabled:
            self.start_correspondence()

    def _on_enabled(self, on: bool) -> None:
        if on and self.match.correspondence is None:
            self.start_correspondence()
        if not on:
            self.corr_channel.cancel()
            self.match.set_status("")
        self.redraw()

    def start_correspondence(self) -> int | None:
        pair = self._pair()
        if pair is None:
            return None
        self.match.set_status("matching: computing…")
        sess, q, t = pair
        return self.corr_channel.start(lambda: correspondence_job(sess, q, t))

    def _on_correspondence(self, corr: Any) -> None:
        self.match.set_correspondence(corr)
        kind = "exact" if corr.exact else "estimate"
        self.match.set_status(f"{kind} ({corr.method}, {corr.grid1[0]}×{corr.grid1[1]}, {1000 * corr.seconds:.0f} ms)")
        self.bar.status.setToolTip(corr.note)

    def _on_explanation(self, expl: Any) -> None:
        self.attr_channel.cancel()
        self.match.set_attributes(None)
        if self.match.point is not None:
            self.redraw()  # the pair view just drew the new heat over the match
        pair = self._pair()
        if expl is None or pair is None:
            return
        sess, q, t = pair
        pred, weights = self._predictor, self.sane_weights
        h1, h2 = expl.heat1, expl.heat2
        self.bar.matchedOn.setText("matched on: …")
        self.attr_channel.start(lambda: attributes_job(sess, q, t, h1, h2, pred, weights))

    # -- SANE weights (a setting) ------------------------------------------------------------------------
    def set_sane_weights(self, text: str) -> tuple[float, float, float]:
        """Parse "C,G,D" (ValueError names the setting), save it and recompute the pair's attributes."""
        from lfs_gui.app.settings import make_settings
        from lfs_gui.attributes.sane import parse_weights, weights_text

        self.sane_weights = parse_weights(text, "SANE weights")
        settings = make_settings()
        settings.setValue(SANE_WEIGHTS_KEY, weights_text(self.sane_weights))
        settings.sync()
        self._weights_tooltip()
        if self.state.explanation is not None:
            self._on_explanation(self.state.explanation)
        return self.sane_weights

    def choose_sane_weights(self) -> None:
        from lfs_gui.attributes.sane import weights_text

        text, ok = QInputDialog.getText(self.view, "SANE weights",
                                        "Weights of the attribute's confidence in both images, the agreement of its map "
                                        "with the pair's heat, and the similarity drop when its region is deleted (C,G,D):",
                                        text=weights_text(self.sane_weights))
        if not ok:
            return
        try:
            self.set_sane_weights(text)
        except ValueError as exc:
            self.bar.matchedOn.setText(f"<i>{exc}</i>")

    def _weights_tooltip(self) -> None:
        from lfs_gui.attributes.sane import weights_text

        self.bar.matchedOn.setToolTip(
            "SANE: the attributes that best explain the match; click one to see its maps.\n"
            "score = C·confidence in both + G·map agreement with the heat + D·similarity drop when deleted\n"
            f"weights C,G,D = {weights_text(self.sane_weights)} (right-click to change)")

    def _on_attributes(self, result: Any) -> None:
        pred, choice, why = result
        self._predictor = pred
        if choice is None:
            self.bar.matchedOn.setText(f"<i>{why}</i>" if why else "")
            return
        self.match.set_attributes(choice)

    def use_predictor(self, predictor: Any) -> None:
        """A predictor was trained for this session: use it and recompute the pair's attributes."""
        self._predictor, self._predictor_session = predictor, self.state.session
        self._on_explanation(self.state.explanation)

    def _show_attributes(self, choice: Any) -> None:
        if choice is None:
            return
        parts = [f"<a href='{s.index}'>{s.name}</a> ({s.confidence:.2f})" for s in choice.top(3)]
        self.bar.matchedOn.setText("matched on: " + " · ".join(parts))

    # -- coordinates ----------------------------------------------------------------------------------
    def to_original(self, which: int, pos: QPointF) -> tuple[float, float] | None:
        """Tile-local widget position -> original-image pixel (None off the image)."""
        tile = self.tiles[which]
        if tile.original_size is None:
            return None
        r = tile.image_rect()
        if not r.contains(pos):
            return None
        w, h = tile.original_size
        return (pos.x() - r.x()) * w / r.width(), (pos.y() - r.y()) * h / r.height()

    def to_view(self, which: int, x: float, y: float) -> QPointF | None:
        """Original-image pixel of image ``which`` -> overlay (pair view) coordinates."""
        tile = self.tiles[which]
        if tile.original_size is None:
            return None
        r = tile.image_rect()
        w, h = tile.original_size
        local = QPointF(r.x() + x * r.width() / w, r.y() + y * r.height() / h)
        return QPointF(tile.mapTo(self.view, local.toPoint()))

    def point_at(self, which: int, x: float, y: float) -> MatchPoint | None:
        """The match point under original pixel (x, y) of image ``which`` (None outside the crop box)."""
        from lfs_gui.explain.correspondence import original_to_cell

        corr, tile, sess = self.match.correspondence, self.tiles[which], self.state.session
        if corr is None or tile.original_size is None or sess is None:
            return None
        cell = original_to_cell(corr, which, sess.preprocessing, x, y, *tile.original_size)
        return None if cell is None else MatchPoint(which, cell, (x, y))

    def cell_point(self, which: int, cell: int) -> MatchPoint | None:
        from lfs_gui.explain.correspondence import cell_to_original

        corr, tile, sess = self.match.correspondence, self.tiles[which], self.state.session
        if corr is None or tile.original_size is None or sess is None:
            return None
        return MatchPoint(which, cell, cell_to_original(corr, which, cell, sess.preprocessing, *tile.original_size))

    def line_points(self) -> list[tuple[QPointF, QPointF, float]]:
        from lfs_gui.explain.correspondence import cell_to_original

        corr, sess = self.match.correspondence, self.state.session
        if not self.match.enabled or corr is None or sess is None or self.match.lines <= 0:
            return []
        out = []
        sizes = {w: self.tiles[w].original_size for w in (1, 2)}
        if None in sizes.values():
            return []
        for mt in corr.top_matches(self.match.lines):
            a = self.to_view(1, *cell_to_original(corr, 1, mt.i, sess.preprocessing, *sizes[1]))
            b = self.to_view(2, *cell_to_original(corr, 2, mt.j, sess.preprocessing, *sizes[2]))
            if a is not None and b is not None:
                out.append((a, b, mt.value))
        return out

    # -- drawing ---------------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Overlays of both tiles from the current state: the explanation's heat, replaced by a selected
        attribute's maps, or on the other image by the match of the current point."""
        view = self.state.view
        self.view._on_view(view)  # the explanation's heat (no-op without one)
        m = self.match
        choice = m.attributes
        if m.attribute is not None and choice is not None:
            for w in (1, 2):
                self.tiles[w].set_overlay(heat_qimage(choice.heat(w, m.attribute), "viridis"), max(view.opacity, 0.55))
        pt, corr = m.point, m.correspondence
        if m.enabled and pt is not None and corr is not None:
            other = 2 if pt.which == 1 else 1
            self.tiles[other].set_overlay(heat_qimage(corr.match_heat(pt.which, pt.cell), view.cmap), max(view.opacity, 0.55))
            self.hover_updates += 1
        self.overlay.setGeometry(self.view.rect())
        self.overlay.raise_()
        self.overlay.update()

    # -- input -------------------------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        et = event.type()
        if obj is self.view:
            if et == QEvent.Type.Resize:
                self.overlay.setGeometry(self.view.rect())
            elif et == QEvent.Type.KeyPress and self._key(event):
                return True
            return False
        which = 1 if obj is self.tiles[1] else 2 if obj is self.tiles[2] else None
        if which is None or not self.match.enabled:
            return False
        if et == QEvent.Type.MouseMove:
            xy = self.to_original(which, event.position())
            self.match.hover(None if xy is None else self.point_at(which, *xy))
        elif et == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            xy = self.to_original(which, event.position())
            pt = None if xy is None else self.point_at(which, *xy)
            if pt is not None:
                self.match.click(pt)
                self.view.setFocus(Qt.FocusReason.MouseFocusReason)
                return True
        elif et == QEvent.Type.Leave:
            self.match.hover(None)
        return False

    def _key(self, event: Any) -> bool:
        """Keyboard control of the point; True when the key was used."""
        key, m = event.key(), self.match
        if key == Qt.Key.Key_M:
            m.set_enabled(not m.enabled)
            return True
        if not m.enabled or m.correspondence is None:
            return False
        corr = m.correspondence
        if key == Qt.Key.Key_Escape:
            m.clear()
            return True
        if key == Qt.Key.Key_Space:
            m.toggle_lock()
            return True
        moves = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0)}
        pt = m.point
        if key == Qt.Key.Key_X:
            which = 2 if (pt is None or pt.which == 1) else 1
            gh, gw = corr.grid(which)
            target = self.cell_point(which, (gh // 2) * gw + gw // 2)
        elif key in moves:
            which = 1 if pt is None else pt.which
            gh, gw = corr.grid(which)
            r, c = divmod(pt.cell, gw) if pt is not None else (gh // 2, gw // 2)
            dr, dc = moves[key] if pt is not None else (0, 0)
            r, c = int(np.clip(r + dr, 0, gh - 1)), int(np.clip(c + dc, 0, gw - 1))
            target = self.cell_point(which, r * gw + c)
        else:
            return False
        if target is not None:
            m.move_to(target)
        return True

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        ok = True
        for ch in (self.corr_channel, self.attr_channel):
            ok = ch.shutdown(timeout_ms) and ok
        return ok


def attach_match(view: Any) -> MatchController:
    """Add the match bar (under the summary line) and the overlay to ``view`` (a :class:`PairView`)."""
    ctl = MatchController(view)
    view.layout().insertWidget(1, ctl.bar)
    return ctl
