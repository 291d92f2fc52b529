"""The window's layout on any screen: minimum sizes, first-run proportions, the View menu, persistence.

On a 1280×720 laptop the right-hand column (retrievals, pair, curves) has about 650 px of height.
Splitters divide it; each panel has a minimum that keeps it readable (the curve plot at least
~110 px with its legend above the axes, never on the data), the splitters never collapse a panel
by accident, and the first run sizes the panels in proportion to the window instead of fixed
pixels. The View menu hides the decoder reconstructions and collapses the left column (gallery,
failures); the window geometry, every splitter, the left tab and those toggles are remembered
(QSettings ``layout/*``). A window larger than the screen is shrunk to fit it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QSplitter, QWidget

LEFT_MIN_WIDTH = 190
PAIR_MIN_HEIGHT = 190
CURVES_MIN_HEIGHT = 180
PAIR_SHARE = 0.52  # of the right column's height below the retrievals row (the curves get the rest)
LEFT_SHARE = 0.24
DEFAULT_SIZE = (1400, 900)


def apply_minimums(left: QWidget, pair: QWidget, curves: QWidget, main_split: QSplitter, right_split: QSplitter) -> None:
    """Minimum sizes and which splitter children may collapse (only the left column, on purpose)."""
    left.setMinimumWidth(LEFT_MIN_WIDTH)
    pair.setMinimumHeight(PAIR_MIN_HEIGHT)
    curves.setMinimumHeight(CURVES_MIN_HEIGHT)
    right_split.setChildrenCollapsible(False)
    main_split.setCollapsible(0, True)
    main_split.setCollapsible(1, False)


def proportional_sizes(main_split: QSplitter, right_split: QSplitter, width: int, height: int) -> None:
    """First-run split of a ``width`` × ``height`` window (no saved layout): the top row (query and
    retrievals) as tall as it needs, the rest shared by the pair and the curves."""
    left = max(LEFT_MIN_WIDTH, int(width * LEFT_SHARE))
    main_split.setSizes([left, max(1, width - left)])
    top = right_split.widget(0).sizeHint().height()
    rest = max(PAIR_MIN_HEIGHT + CURVES_MIN_HEIGHT, height - top)
    pair = max(PAIR_MIN_HEIGHT, int(rest * PAIR_SHARE))
    right_split.setSizes([top, pair, max(CURVES_MIN_HEIGHT, rest - pair)])


def fit_to_screen(window: QMainWindow, size: tuple[int, int] = DEFAULT_SIZE) -> tuple[int, int]:
    """Resize ``window`` to ``size`` or, on a smaller screen, to 95% of its available area."""
    w, h = size
    screen = window.screen() or QApplication.primaryScreen()
    if screen is not None:
        avail = screen.availableGeometry()
        w, h = min(w, int(avail.width() * 0.95)), min(h, int(avail.height() * 0.95))
    window.resize(w, h)
    return w, h


def sizes_for_height(height: int) -> tuple[int, int]:
    """(retrieval thumbnail, query image) sides for a window ``height`` px tall: the two retrieval
    rows and the query panel are the top row, which must leave the pair and the curves room."""
    if height < 820:
        return 64, 112
    if height < 1000:
        return 80, 150
    return 96, 170


class WindowLayout(QObject):
    """View ▸ Gallery panel (collapse the left column), Decoder reconstructions, Reset layout; and
    the thumbnail sizes, adapted whenever the window's height changes."""

    def __init__(self, window: QMainWindow, main_split: QSplitter, right_split: QSplitter, pair: Any,
                 retrievals: Any, query: Any) -> None:
        super().__init__(window)
        self.window, self.split, self.right = window, main_split, right_split
        self.pair, self.retrievals, self.query = pair, retrievals, query
        menu = window.menuBar().addMenu("&View")
        menu.setObjectName("menuView")
        self.leftAction = self._toggle(menu, "&Gallery panel", "Ctrl+Shift+G", "actionShowLeft", self.set_left_visible)
        self.reconAction = self._toggle(menu, "&Decoder reconstructions", "Ctrl+Shift+R", "actionShowRecon",
                                        self.set_recon_visible)
        menu.addSeparator()
        reset = QAction("&Reset layout", window, objectName="actionResetLayout")
        reset.triggered.connect(lambda _c=False: self.reset())
        menu.addAction(reset)
        self.menu = menu
        main_split.splitterMoved.connect(lambda *_: self._sync_left())
        self._left_width = LEFT_MIN_WIDTH
        window.installEventFilter(self)

    def _toggle(self, menu: Any, text: str, key: str, name: str, slot: Any) -> QAction:
        act = QAction(text, self.window, objectName=name, checkable=True, checked=True)
        act.setShortcut(QKeySequence(key))
        act.toggled.connect(slot)
        menu.addAction(act)
        return act

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if obj is self.window and event.type() == QEvent.Type.Resize:
            self.adapt(self.window.height())
        return False

    def adapt(self, height: int) -> None:
        thumb, query = sizes_for_height(height)
        self.retrievals.set_thumb_size(thumb)
        self.query.set_image_size(query)

    def left_visible(self) -> bool:
        return self.split.sizes()[0] > 0

    def set_left_visible(self, visible: bool) -> None:
        sizes = self.split.sizes()
        total = sum(sizes)
        if not visible and sizes[0] > 0:
            self._left_width = sizes[0]
            self.split.setSizes([0, total])
        elif visible and sizes[0] == 0:
            left = max(LEFT_MIN_WIDTH, self._left_width)
            self.split.setSizes([left, max(1, total - left)])
        self._sync_left()

    def set_recon_visible(self, visible: bool) -> None:
        self.pair.set_reconstructions_visible(bool(visible))
        if self.reconAction.isChecked() != bool(visible):
            self.reconAction.setChecked(bool(visible))

    def _sync_left(self) -> None:
        on = self.left_visible()
        if self.leftAction.isChecked() != on:
            self.leftAction.blockSignals(True)
            self.leftAction.setChecked(on)
            self.leftAction.blockSignals(False)

    def reset(self) -> None:
        """Back to the first-run layout for the current window size, every panel shown."""
        self.set_recon_visible(True)
        self.adapt(self.window.height())
        h = self.right.height() if self.window.isVisible() else self.window.height() - 60  # menu + status bar
        proportional_sizes(self.split, self.right, self.window.width(), h)
        self._sync_left()

    # -- persistence --------------------------------------------------------------------------------
    def save(self, settings: QSettings, left_tabs: Any = None) -> None:
        settings.setValue("window/geometry", self.window.saveGeometry())
        for split in (self.split, self.right):
            settings.setValue(f"window/{split.objectName()}", split.saveState())
        settings.setValue("layout/recon", bool(self.reconAction.isChecked()))
        if left_tabs is not None:
            settings.setValue("layout/leftTab", int(left_tabs.currentIndex()))

    def restore(self, settings: QSettings, left_tabs: Any = None) -> bool:
        """Restore what :meth:`save` wrote; returns False (and lays out afresh) on a first run."""
        geo = settings.value("window/geometry")
        restored = isinstance(geo, QByteArray) and not geo.isEmpty() and self.window.restoreGeometry(geo)
        if not restored:
            w, h = fit_to_screen(self.window)
            self.adapt(h)
            proportional_sizes(self.split, self.right, w, h - 60)
        for split in (self.split, self.right):
            st = settings.value(f"window/{split.objectName()}")
            if isinstance(st, QByteArray) and not st.isEmpty():
                split.restoreState(st)
        self.set_recon_visible(_as_bool(settings.value("layout/recon", True)))
        self._sync_left()
        if left_tabs is not None:
            try:
                left_tabs.setCurrentIndex(int(settings.value("layout/leftTab", 0)))
            except (TypeError, ValueError):
                pass
        self.adapt(self.window.height())
        return bool(restored)


def _as_bool(v: Any) -> bool:
    """QSettings' INI backend returns booleans as the strings 'true'/'false'."""
    return v.lower() == "true" if isinstance(v, str) else bool(v)
