"""The Failures and Disagreements panels (offscreen Qt): tables over the core's arrays."""

from __future__ import annotations

import numpy as np
import pytest

from lfs_gui.index import load_index
from lfs_gui.index.compare import GalleryArrays, compare
from lfs_gui.index.failures import failure_ids, query_scores
from lfs_gui.paths import indexes_dir


@pytest.fixture(scope="module")
def demo_arrays() -> GalleryArrays:
    return GalleryArrays.from_index(load_index(indexes_dir() / "demo"), name="demo")


def test_failures_panel_lists_filters_and_activates(qtbot, demo_arrays) -> None:
    from lfs_gui.app.widgets.failures import FailuresPanel

    panel = FailuresPanel()
    qtbot.addWidget(panel)
    scores = query_scores(demo_arrays.embeddings, demo_arrays.labels)
    panel.set_scores(scores, demo_arrays)
    fails = failure_ids(scores)
    assert panel.model.rowCount() == len(fails) > 0
    np.testing.assert_array_equal(panel.visible_ids(), fails)
    first = panel.model.index(0, 0).data()
    assert first == f"{scores.margin[fails[0]]:+.3f}"
    # the per-class table is worst first; a click on its first row filters the list to that class
    worst = int(panel.classModel.ids[0])
    panel.classTable.clicked.emit(panel.classModel.index(0, 0))
    assert panel.current_class() == worst
    assert (scores.labels[panel.visible_ids()] == worst).all() and len(panel.visible_ids()) > 0
    with qtbot.waitSignal(panel.failureActivated) as sig:
        q = panel.select_failure(0)
    assert sig.args == [q] and q == panel.visible_ids()[0]
    panel.set_scores(None, None)
    assert panel.model.rowCount() == 0 and not panel.exportSheet.isEnabled()


def test_disagreements_panel(qtbot, demo_arrays) -> None:
    from lfs_gui.app.widgets.failures import DisagreementsPanel

    rng = np.random.default_rng(0)
    x = demo_arrays.embeddings + 0.15 * rng.standard_normal(demo_arrays.embeddings.shape).astype(np.float32)
    b = GalleryArrays(embeddings=(x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32),
                      labels=demo_arrays.labels, relpaths=demo_arrays.relpaths, classes=demo_arrays.classes, name="b")
    cmp = compare(demo_arrays, b)
    panel = DisagreementsPanel()
    qtbot.addWidget(panel)
    panel.set_comparison(cmp, demo_arrays, ("demo", "b"))
    assert panel.model.rowCount() == len(cmp.ids) > 0
    right = panel.model.index(0, 0).data()
    assert right == ("A" if cmp.a_right[0] else "B")
    assert panel.classModel.rowCount() == len(demo_arrays.classes)
    with qtbot.waitSignal(panel.disagreementActivated) as sig:
        panel.table.clicked.emit(panel.model.index(1, 2))
    assert sig.args == [int(cmp.ids[1])]
