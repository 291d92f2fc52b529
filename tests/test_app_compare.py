"""A second index over the same gallery in the window (offscreen Qt): the Disagreements tab, both models'
retrievals with rank changes, the pair under both models, and the mismatch error. Index B is written
with the real writer (:func:`lfs_gui.index.store.save_index`): the demo's images in another row order,
embeddings of another "model" (the demo's plus noise), the demo's decoder."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _app_fixtures import demo_session, window  # noqa: E402,F401 (fixtures)

from lfs_gui.paths import demo_index_dir, models_dir  # noqa: E402


def _index_b(folder: Path, drop: int = 0, seed: int = 3) -> Path:
    from lfs_gui.index import EmbeddingIndex, load_index, save_index

    demo = load_index(demo_index_dir())
    rng = np.random.default_rng(seed)
    x = demo.embeddings + 0.15 * rng.standard_normal(demo.embeddings.shape).astype(np.float32)
    perm = rng.permutation(len(demo))[drop:]
    m = demo.meta
    meta = replace(m, relpaths=[m.relpaths[i] for i in perm], labels=[m.labels[i] for i in perm],
                   gallery_name="demo-b", decoder_file=str((models_dir() / "demo" / "decoder_dense40.pt").resolve()))
    save_index(EmbeddingIndex(x[perm], "flat", meta, normalize=True), folder)
    return folder


def test_second_index_disagreements_and_both_models(qtbot, window, demo_session, tmp_path) -> None:
    from lfs_gui.index.compare import rank_in

    win, ca = window, window.compare
    with qtbot.waitSignal(ca.compared, timeout=120_000):
        ca.open_second(str(_index_b(tmp_path / "b")))
    cmp, b = ca.cmp, ca.session_b
    assert win.leftTabs.indexOf(ca.panel) >= 0 and win.pairTabs.indexOf(ca.view) >= 0
    assert ca.panel.model.rowCount() == len(cmp.ids) > 0
    np.testing.assert_array_equal(np.array(b.gallery.relpaths)[cmp.perm], np.array(demo_session.gallery.relpaths))
    # a disagreement: it becomes the query; both rows, with the other model's ranks; the pair under both
    with qtbot.waitSignal(ca.updated, timeout=120_000):
        ca.panel.table.clicked.emit(ca.panel.model.index(0, 0))
    q = int(cmp.ids[0])
    assert win.state.query.id == q and win.pairTabs.currentWidget() is ca.view
    qtbot.waitUntil(lambda: ca.view.heats[1] is not None and ca.view.heats[0] is not None, timeout=60_000)
    row_a = [int(t.property("aId")) for t in ca.view.rowA.tiles if t.isVisible()]
    row_b = [int(t.property("aId")) for t in ca.view.rowB.tiles if t.isVisible()]
    assert row_a == [h.id for h in win.state.retrievals.similar]
    qb = int(cmp.perm[q])
    sims_b = b.embeddings @ b.embeddings[qb]
    sims_b[qb] = -np.inf
    top_b = np.argsort(-sims_b, kind="stable")[: len(row_b)]
    assert row_b == [int(ca.inv[i]) for i in top_b]  # B's own top-k, in A's numbering
    assert (row_a[0] == row_b[0]) != bool(cmp.a_right[0] != cmp.b.hit1[q])  # they disagree on the top-1's class
    first = ca.view.rowA.tiles[0]
    r_in_b = int(rank_in(b.embeddings @ b.embeddings[qb], [int(cmp.perm[row_a[0]])], exclude=qb)[0])
    assert first._lines[1].startswith(f"B#{r_in_b} ")
    ex_b = ca.view.heats[1]
    t = win.state.target
    assert ex_b.similarity == pytest.approx(float(b.embeddings[qb] @ b.embeddings[int(cmp.perm[t])]), abs=1e-5)
    assert ex_b.settings["xi1"] == pytest.approx(b.suggested_xi1())
    # another session closes the comparison
    win.set_session(demo_session)
    assert win.leftTabs.indexOf(ca.panel) < 0 and ca.session_b is None


def test_second_index_over_other_images_is_a_clear_error(qtbot, window, tmp_path) -> None:
    ca = window.compare
    with qtbot.waitSignal(ca.channel.failed, timeout=120_000):
        ca.open_second(str(_index_b(tmp_path / "b", drop=5)))
    assert "5 of demo's 344 images are not in" in window.last_error
    assert window.leftTabs.indexOf(ca.panel) < 0
