"""Failures and Disagreements panels: where the model fails on its own gallery, where two models differ.

Both panels show read-only tables over the core's arrays (:mod:`lfs_gui.index.failures`,
:mod:`lfs_gui.index.compare`): :class:`ArrayTable` asks for a cell only when the view paints it,
so a gallery of millions of queries costs one id array, not one Python object per row.

* :class:`FailuresPanel`: the failing queries (top-1 of another class) sorted by margin
  ``s(wrong) - s(correct)``, a class filter, the per-class R@1 table (worst first; a click filters),
  and export buttons (failure sheet, per-query CSV). Activating a row emits
  :attr:`FailuresPanel.failureActivated` with the query id.
* :class:`DisagreementsPanel`: the queries one model gets right and the other wrong, sorted by the
  failing model's margin, and the per-class R@1 of both models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSpinBox, QSplitter, QTableView,
    QVBoxLayout, QWidget,
)

Column = tuple[str, Callable[[int], Any]]
_Index = QModelIndex | QPersistentModelIndex
RED, GREEN = QColor("#d0312d"), QColor("#2e9d3a")


class ArrayTable(QAbstractTableModel):
    """Rows = an int array of ids; each column maps an id to its cell text (computed when painted)."""

    def __init__(self, columns: Sequence[Column] = (), parent: Any = None) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.ids = np.zeros(0, np.int64)
        self.color: Callable[[int, int], QColor | None] | None = None  # (id, column) -> text colour

    def set_rows(self, ids: np.ndarray, columns: Sequence[Column] | None = None) -> None:
        self.beginResetModel()
        self.ids = np.asarray(ids, np.int64)
        if columns is not None:
            self.columns = list(columns)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else int(self.ids.shape[0])

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        i = int(self.ids[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[index.column()][1](i)
        if role == Qt.ItemDataRole.ForegroundRole and self.color is not None:
            return self.color(i, index.column())
        if role == Qt.ItemDataRole.UserRole:
            return i
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section][0]
        return None


def make_table(name: str, model: ArrayTable) -> QTableView:
    view = QTableView(objectName=name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    view.setAlternatingRowColors(True)
    return view


def stacked(name: str, top: QWidget, bottom: QWidget) -> QSplitter:
    """The list over its per-class table, in a splitter the user can drag (neither collapses)."""
    split = QSplitter(Qt.Orientation.Vertical, objectName=name)
    split.addWidget(top)
    split.addWidget(bottom)
    split.setSizes([300, 160])
    split.setChildrenCollapsible(False)
    return split


def _fmt(v: float, spec: str = ".3f") -> str:
    return "–" if not np.isfinite(v) else format(float(v), spec)


class FailuresPanel(QWidget):
    """See module docstring. Fill with :meth:`set_scores`; empty until then."""

    failureActivated = Signal(int)  # query id
    exportSheetRequested = Signal()
    exportCsvRequested = Signal()
    computeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failuresPanel")
        self.scores: Any = None
        self.gal: Any = None
        self.summary = QLabel("Find the queries whose top-1 is of another class.", objectName="failuresSummary")
        self.summary.setWordWrap(True)
        self.computeButton = QPushButton("Find failures", objectName="failuresCompute")
        self.computeButton.clicked.connect(self.computeRequested)
        self.classFilter = QComboBox(objectName="failuresClassFilter")
        self.classFilter.addItem("All classes", None)
        self.classFilter.currentIndexChanged.connect(lambda _i: self._refill())
        self.model = ArrayTable()
        self.table = make_table("failureTable", self.model)
        self.table.activated.connect(self._on_activated)
        self.table.clicked.connect(self._on_activated)
        self.classModel = ArrayTable()
        self.classTable = make_table("failureClassTable", self.classModel)
        self.classTable.clicked.connect(self._on_class_clicked)
        self.exportSheet = QPushButton("Failure sheet…", objectName="failuresExportSheet")
        self.exportSheet.setToolTip("Export the worst failures as triplets with heat maps (PNG, SVG, PDF)")
        self.exportSheet.clicked.connect(self.exportSheetRequested)
        self.exportCsv = QPushButton("Per-query CSV…", objectName="failuresExportCsv")
        self.exportCsv.setToolTip("Export every query's AP, R@1, top-1, nearest correct image and margin")
        self.exportCsv.clicked.connect(self.exportCsvRequested)

        top = QHBoxLayout()
        top.addWidget(self.classFilter, 1)
        top.addWidget(self.computeButton)
        self.sheetCount = QSpinBox(objectName="failuresSheetCount", minimum=1, maximum=50, value=8)
        self.sheetCount.setToolTip("how many failures (the worst of the list as filtered) the sheet shows")
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("worst"))
        buttons.addWidget(self.sheetCount)
        buttons.addWidget(self.exportSheet)
        buttons.addWidget(self.exportCsv)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.summary)
        lay.addLayout(top)
        lay.addWidget(stacked("failuresSplit", self.table, self.classTable), 1)
        lay.addLayout(buttons)
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.classFilter, self.exportSheet, self.exportCsv, self.sheetCount):
            w.setEnabled(on)

    # -- data ----------------------------------------------------------------------------------------
    def set_scores(self, scores: Any, gal: Any) -> None:
        """Show the :class:`~lfs_gui.index.failures.QueryScores` of gallery ``gal`` (None clears)."""
        from lfs_gui.index.failures import class_table

        self.scores, self.gal = scores, gal
        self.classFilter.blockSignals(True)
        self.classFilter.clear()
        self.classFilter.addItem("All classes", None)
        if scores is None:
            self.classFilter.blockSignals(False)
            self.model.set_rows(np.zeros(0, np.int64), [])
            self.classModel.set_rows(np.zeros(0, np.int64), [])
            self.summary.setText("Find the queries whose top-1 is of another class.")
            self._set_enabled(False)
            return
        table = class_table(scores, len(gal.classes))
        worst = table.worst_first()
        r1 = table.recall_at_1
        for c in worst:
            self.classFilter.addItem(f"{self.class_label(int(c))} — R@1 {r1[c]:.2f}, {int(table.failures[c])} failures", int(c))
        self.classFilter.blockSignals(False)
        n, fails = len(scores), int((~scores.hit1).sum())
        self.summary.setText(f"R@1 <b>{scores.recall_at_1:.4f}</b> · mean AP {scores.mean_ap:.4f} · "
                             f"<b>{fails}</b> failures of {n} queries (top-1 of another class), largest margin first")
        self.classModel.set_rows(worst, [
            ("class", lambda c: self.class_label(int(c))),
            ("queries", lambda c: str(int(table.count[c]))),
            ("R@1", lambda c: _fmt(r1[c], ".3f")),
            ("failures", lambda c: str(int(table.failures[c]))),
            ("mean AP", lambda c: _fmt(table.mean_ap[c], ".3f")),
        ])
        self._set_enabled(True)
        self._refill()

    def class_label(self, label: int) -> str:
        from lfs_gui.index.failure_tables import class_name

        return class_name(self.gal, label)

    def current_class(self) -> int | None:
        return self.classFilter.currentData()

    def visible_ids(self) -> np.ndarray:
        """The failing query ids shown, in order (filtered by the class selector)."""
        return self.model.ids

    def _refill(self) -> None:
        from lfs_gui.index.failures import failure_ids

        s = self.scores
        if s is None:
            return
        c = self.current_class()
        ids = failure_ids(s, query_classes=None if c is None else [c])
        lab, margin = s.labels, s.margin
        self.model.set_rows(ids, [
            ("margin", lambda i: _fmt(margin[i], "+.3f")),
            ("query", lambda i: f"#{i} {self.class_label(int(lab[i]))}"),
            ("wrong top-1", lambda i: f"#{int(s.top1[i])} {self.class_label(int(lab[s.top1[i]]))}"),
            ("s", lambda i: _fmt(s.top1_score[i])),
            ("nearest correct", lambda i: "–" if s.correct[i] < 0 else f"#{int(s.correct[i])}"),
            ("s", lambda i: _fmt(s.correct_score[i])),
            ("rank", lambda i: "–" if s.correct_rank[i] <= 0 else str(int(s.correct_rank[i]))),
        ])
        self.table.resizeColumnsToContents()

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.failureActivated.emit(int(self.model.ids[index.row()]))

    def _on_class_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            c = int(self.classModel.ids[index.row()])
            self.classFilter.setCurrentIndex(max(0, self.classFilter.findData(c)))

    def select_failure(self, row: int) -> int:
        """Activate row ``row`` of the list (as a click would); returns its query id."""
        idx = self.model.index(row, 0)
        self.table.setCurrentIndex(idx)
        self._on_activated(idx)
        return int(self.model.ids[row])


class DisagreementsPanel(QWidget):
    """See module docstring. Fill with :meth:`set_comparison`."""

    disagreementActivated = Signal(int)  # query id (model A's numbering)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("disagreementsPanel")
        self.cmp: Any = None
        self.summary = QLabel("Open a second index over the same gallery (File ▸ Compare with a second index…).",
                              objectName="disagreementsSummary")
        self.summary.setWordWrap(True)
        self.model = ArrayTable()
        self.table = make_table("disagreementTable", self.model)
        self.table.activated.connect(self._on_activated)
        self.table.clicked.connect(self._on_activated)
        self.classModel = ArrayTable()
        self.classTable = make_table("compareClassTable", self.classModel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.summary)
        lay.addWidget(stacked("disagreementsSplit", self.table, self.classTable), 1)

    def set_comparison(self, cmp: Any, gal: Any, names: tuple[str, str] = ("A", "B")) -> None:
        """Show a :class:`~lfs_gui.index.compare.Comparison` (None clears)."""
        from lfs_gui.index.failure_tables import class_name
        from lfs_gui.index.failures import class_table

        self.cmp = cmp
        if cmp is None:
            self.model.set_rows(np.zeros(0, np.int64), [])
            self.classModel.set_rows(np.zeros(0, np.int64), [])
            return
        a, b = cmp.a, cmp.b
        lab = a.labels
        row = np.full(len(a), -1, np.int64)  # query id -> its row in the list
        row[cmp.ids] = np.arange(len(cmp.ids))
        margin = cmp.margin
        self.summary.setText(
            f"A = {names[0]}: R@1 <b>{a.recall_at_1:.4f}</b> · B = {names[1]}: R@1 <b>{b.recall_at_1:.4f}</b> · "
            f"<b>{len(cmp.ids)}</b> disagreements ({int(cmp.a_right.sum())} right only under A, "
            f"{int((~cmp.a_right).sum())} only under B), largest margin of the failing model first")
        right = lambda i: "A" if cmp.a_right[row[i]] else "B"  # noqa: E731
        self.model.set_rows(cmp.ids, [
            ("right", right),
            ("margin", lambda i: _fmt(margin[row[i]], "+.3f")),
            ("query", lambda i: f"#{i} {class_name(gal, int(lab[i]))}"),
            ("A top-1", lambda i: f"#{int(a.top1[i])} {class_name(gal, int(lab[a.top1[i]]))}"),
            ("B top-1", lambda i: f"#{int(b.top1[i])} {class_name(gal, int(lab[b.top1[i]]))}"),
        ])
        self.model.color = lambda i, col: (GREEN if right(i) == "A" else RED) if col == 0 else None
        self.table.resizeColumnsToContents()
        ta, tb = class_table(a, len(gal.classes)), class_table(b, len(gal.classes))
        present = np.flatnonzero(ta.count > 0)
        delta = tb.recall_at_1 - ta.recall_at_1
        order = present[np.lexsort((present, delta[present]))]
        self.classModel.set_rows(order, [
            ("class", lambda c: class_name(gal, int(c))),
            ("queries", lambda c: str(int(ta.count[c]))),
            ("A R@1", lambda c: _fmt(ta.recall_at_1[c])),
            ("B R@1", lambda c: _fmt(tb.recall_at_1[c])),
            ("change", lambda c: _fmt(delta[c], "+.3f")),
        ])

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.disagreementActivated.emit(int(self.model.ids[index.row()]))
