"""The Failures and Disagreements panels (offscreen Qt): tables over the core's arrays."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _app_fixtures import demo_session, window  # noqa: E402,F401 (fixtures)

from lfs_gui.index import load_index  # noqa: E402
from lfs_gui.index.compare import GalleryArrays, compare  # noqa: E402
from lfs_gui.index.failures import failure_ids, query_scores  # noqa: E402
from lfs_gui.paths import indexes_dir  # noqa: E402


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


# -- in the window --------------------------------------------------------------------------------------


def test_failures_tab_triplet_and_exports(qtbot, window, demo_session, tmp_path) -> None:
    from PIL import Image

    from lfs_gui.index import retrieval_metrics

    win, fa = window, window.failures
    win.state.update_curve(steps=3)
    with qtbot.waitSignal(fa.scores_channel.done, timeout=60_000):
        win.leftTabs.setCurrentWidget(fa.panel)  # showing the tab computes the scores in a worker
    n = len(demo_session.gallery)
    r1 = retrieval_metrics(demo_session.embeddings, demo_session.gallery.labels_array(), (1,)).recall[1]
    assert fa.panel.model.rowCount() == round((1 - r1) * n) > 0
    # a click on the worst failure: it becomes the query, its pair is the wrong top-1, the triplet opens
    with qtbot.waitSignal(fa.tripletFinished, timeout=120_000) as sig:
        q = fa.panel.select_failure(0)
    s = fa.scores
    wrong, correct = int(s.top1[q]), int(s.correct[q])
    assert win.state.query.id == q and win.state.target == wrong
    assert win.pairTabs.currentWidget() is fa.view and fa.view.triplet == (q, wrong, correct)
    ex_w, ex_r = fa.view.explanations
    es = win.state.explain
    ref = demo_session.explain(q, correct, es.method, **es.kwargs())  # same method and settings
    np.testing.assert_allclose(ex_r.heat2, ref.heat2)
    assert ex_w.similarity == pytest.approx(float(s.top1_score[q]), abs=1e-5)
    assert set(sig.args[0]) == {"wrong", "right"} and fa.view.point_count("right") == 4
    # a settings change redoes the triplet with the new method
    with qtbot.waitSignal(fa.tripletFinished, timeout=120_000):
        win.state.update_explain(method="random")
    assert fa.view.explanations[0].method == "random"
    # exports: the sheet of the worst 2 (PNG) and the per-query table
    with qtbot.waitSignal(win.export_channel.done, timeout=120_000):
        fa.export_sheet(tmp_path / "sheet.png", count=2)
    with Image.open(tmp_path / "sheet.png") as im:
        assert im.width > 500
    with qtbot.waitSignal(win.export_channel.done, timeout=30_000):
        fa.export_csv(tmp_path / "q.csv")
    assert len((tmp_path / "q.csv").read_text().splitlines()) == n + 1
