"""Large indexes read their row table lazily (lfs_gui.index.row_table): no Python object per image, the
same answers as the eager reader, damaged rows found when read, and the app's gallery panel filters a
300 000-image gallery on a worker without building an item per image."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from lfs_gui.data.gallery_types import Gallery
from lfs_gui.index import EmbeddingIndex, IndexLoadError, IndexMeta, load_index, save_index
from lfs_gui.index.recall import suggest_xi1
from lfs_gui.index.row_table import LAZY_ROWS, LazyItems, RowTable, iter_filter_ids
from lfs_gui.index.rows import write_rows
from lfs_gui.jobs import run_generator

N = LAZY_ROWS + 50_000
CLASSES = [f"class{k:03d}" for k in range(40)]


def relpaths(n: int) -> list[str]:
    return [f"{CLASSES[i % 40]}/img_{i:07d}.jpg" for i in range(n)]


def labels(n: int) -> list[int | None]:
    return [None if i % 997 == 5 else i % 40 for i in range(n)]


@pytest.fixture(scope="module")
def big_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lazy") / "idx"
    x = np.zeros((N, 2), np.float32)
    x[:, 0] = np.cos(np.arange(N) * 1e-3)
    x[:, 1] = np.sin(np.arange(N) * 1e-3)
    meta = IndexMeta(relpaths=relpaths(N), labels=labels(N), classes=CLASSES, gallery_root=str(folder.parent / "gal"))
    save_index(EmbeddingIndex(x, "flat"), folder, meta)
    return folder


def test_rows_are_read_lazily_with_the_eager_answers(big_index: Path) -> None:
    ix = load_index(big_index)
    meta = ix.meta
    assert meta.rows is not None and meta.relpaths == [] and meta.labels == []  # nothing per image held
    gal = meta.to_gallery()
    assert isinstance(gal.items, LazyItems) and len(gal) == N
    rels, labs = relpaths(N), labels(N)
    for i in (0, 1, 65_535, 65_536, N - 1, 123_457):
        it = gal.items[i]
        assert it.relpath == rels[i] and it.label == labs[i] and it.path == gal.root / rels[i]
        assert it.class_name == (None if labs[i] is None else CLASSES[labs[i]])
    assert [it.relpath for it in gal.items[10:13]] == rels[10:13]
    want = np.array([-1 if v is None else v for v in labs])
    np.testing.assert_array_equal(gal.labels_array(), want)
    # 4 B per image, held once: the table's own array, not a copy per caller, and no caller can change it
    lab = gal.labels_array()
    assert lab.dtype == np.int32 and lab is gal.labels_array() and not lab.flags.writeable
    assert suggest_xi1(ix.embeddings, lab) == suggest_xi1(ix.embeddings, want.astype(np.int64))
    assert not gal.has_labels  # a few unlabelled images
    ix.meta.rows._groups.clear()
    assert meta.rows.sample(4)[0] == rels[0]


def test_filters_match_a_python_scan(big_index: Path) -> None:
    gal = load_index(big_index).meta.to_gallery()
    rels, labs = relpaths(N), labels(N)
    got = run_generator(iter_filter_ids(gal.items, "class007", "IMG_00012"))
    want = [i for i in range(N) if labs[i] == 7 and "img_00012" in rels[i]]
    np.testing.assert_array_equal(got, want)
    assert run_generator(iter_filter_ids(gal.items, None, "")) is None
    assert len(run_generator(iter_filter_ids(gal.items, "no such class", ""))) == 0
    small = Gallery("s", Path("/"), gal.items[:200], CLASSES, "folder", "all")  # a plain list: same rule
    np.testing.assert_array_equal(run_generator(iter_filter_ids(small.items, "class003", "00001")),
                                  [i for i in range(200) if labs[i] == 3 and "00001" in rels[i]])


def test_damaged_rows_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "rows.parquet"
    rels = relpaths(70_000)
    rels[66_000] = "../../etc/passwd"
    write_rows(p, rels, labels(70_000))
    rt = RowTable(p, 70_000, len(CLASSES), "rebuild it")
    assert rt.relpath(5) == rels[5]  # the first row group is fine
    with pytest.raises(IndexLoadError, match=r"etc/passwd.*image 66000.*rebuild it"):
        rt.relpath(65_600)
    with pytest.raises(IndexLoadError, match="holds 70000 rows but index.json says 70001"):
        RowTable(p, 70_001, len(CLASSES), "rebuild it")
    with pytest.raises(IndexLoadError, match="label 39 of image 39"):
        RowTable(p, 70_000, 39, "rebuild it")
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(IndexLoadError, match="not a readable Parquet"):
        RowTable(p, 70_000, len(CLASSES), "rebuild it")


def test_a_lazily_read_index_is_not_resaved_without_its_rows(big_index: Path, tmp_path: Path) -> None:
    ix = load_index(big_index)
    with pytest.raises(ValueError, match="read lazily"):
        save_index(ix, tmp_path / "copy")
    assert json.loads((big_index / "index.json").read_text())["count"] == N


def test_gallery_panel_filters_a_large_gallery_on_a_worker(qtbot, big_index: Path) -> None:
    from types import SimpleNamespace

    from lfs_gui.app.thumbnails import ThumbnailCache
    from lfs_gui.app.widgets.gallery import GalleryPanel, IdRole
    from lfs_gui.viewer_state import ViewerState

    gal = load_index(big_index).meta.to_gallery()
    state, thumbs = ViewerState(), ThumbnailCache(threads=1)
    panel = GalleryPanel(state, thumbs)
    qtbot.addWidget(panel)
    panel.resize(400, 600)
    panel.show()
    t = time.perf_counter()
    state.set_session(SimpleNamespace(gallery=gal))
    qtbot.waitExposed(panel)
    assert panel.model.rowCount() == N and f"{N} images" in panel.countLabel.text()
    panel.view.scrollToBottom()  # painting the last rows reads only their row group
    qtbot.wait(50)
    assert time.perf_counter() - t < 30
    assert panel.model.data(panel.model.index(N - 1), IdRole) == N - 1
    with qtbot.waitSignal(panel.filter_channel.done, timeout=60_000):
        panel.classCombo.setCurrentText("class011")
    assert panel.model.rowCount() == len(gal.items.ids_of_class(11))
    with qtbot.waitSignal(panel.filter_channel.done, timeout=60_000):
        panel.nameEdit.setText("img_00001")  # debounced: one pass after typing pauses
    want = [i for i in range(N) if i % 40 == 11 and i % 997 != 5 and "img_00001" in f"img_{i:07d}"]
    assert [panel.model.gallery_id(r) for r in range(panel.model.rowCount())] == want
    panel.view.setCurrentIndex(panel.model.index(1))
    assert state.query is not None and state.query.id == want[1] and state.query.class_name == "class011"
    panel.shutdown()
    thumbs.close()
