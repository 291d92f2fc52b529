"""The desktop app, offscreen, with real Qt and a real session (no mocks).

The worker tests drive plain Python generators; the window tests open the embedded demo once per
module (it loads the model) and build a fresh window per test around it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from lfs_gui.app.workers import JobChannel

sys.path.insert(0, str(Path(__file__).parent))
from _app_fixtures import demo_session, open_window  # noqa: F401 (fixtures)


# --------------------------------------------------------------------------------------------------
# The worker pattern, with plain generators
# --------------------------------------------------------------------------------------------------
def _count(n: int, delay: float = 0.0, log: list | None = None) -> Generator[int, None, str]:
    try:
        for i in range(n):
            if delay:
                time.sleep(delay)
            yield i
        return f"counted {n}"
    finally:
        if log is not None:
            log.append("closed")


def test_channel_streams_items_and_result(qtbot):
    ch = JobChannel("t")
    items: list[int] = []
    ch.item.connect(items.append)
    with qtbot.waitSignal(ch.done, timeout=5000) as blocker:
        ch.start(lambda: _count(5))
    assert blocker.args == ["counted 5"]
    assert items == [0, 1, 2, 3, 4]
    assert not ch.is_busy()
    assert ch.shutdown()


def test_new_request_cancels_old_and_drops_stale_items(qtbot):
    ch = JobChannel("t")
    items: list[int] = []
    closed: list[str] = []
    ch.item.connect(items.append)
    ch.start(lambda: _count(1000, delay=0.005, log=closed))
    qtbot.waitUntil(lambda: len(items) >= 3, timeout=5000)
    with qtbot.waitSignal(ch.done, timeout=5000) as blocker:
        ch.start(lambda: (i + 100 for i in range(3)))
    assert blocker.args == [None]
    tail = [i for i in items if i >= 100]
    assert tail == [100, 101, 102]
    # Nothing of the first run arrived after the second started.
    first_run = items[: len(items) - 3]
    assert all(i < 100 for i in first_run) and items[-3:] == [100, 101, 102]
    assert ch.shutdown()
    assert closed == ["closed"]  # the old generator was closed at a cancel point


def test_failure_is_reported_with_traceback(qtbot):
    def boom() -> Generator[int, None, None]:
        yield 1
        raise ValueError("/some/file.pt: broken; fetch it again")

    ch = JobChannel("t")
    with qtbot.waitSignal(ch.failed, timeout=5000) as blocker:
        ch.start(boom)
    exc, tb = blocker.args
    assert isinstance(exc, ValueError) and "fetch it again" in str(exc)
    assert "Traceback" in tb
    assert ch.shutdown()


def test_shutdown_stops_a_running_job(qtbot):
    ch = JobChannel("t")
    closed: list[str] = []
    seen: list[int] = []
    ch.item.connect(seen.append)
    ch.start(lambda: _count(10_000, delay=0.01, log=closed))
    qtbot.waitUntil(lambda: bool(seen), timeout=30_000)  # the generator runs (a never-started one has no finally to run)
    t0 = time.perf_counter()
    assert ch.shutdown(5000)
    assert time.perf_counter() - t0 < 5.0  # stopped at a cancel point, not after the ~100 s the job would take
    assert ch.running_threads() == 0
    assert closed == ["closed"]


def test_a_job_that_outlives_shutdown_is_reaped_on_the_gui_thread(qtbot):
    """A job stuck between cancel points past the shutdown timeout is left to finish on its own; once
    it has, the GUI thread forgets it (no QThread destroyed while running, nothing kept alive)."""
    from lfs_gui.app import workers

    def stuck():
        time.sleep(0.6)  # no yield: cannot be cancelled meanwhile
        yield 1

    ch = JobChannel("t")
    ch.start(stuck)
    qtbot.wait(50)
    assert ch.shutdown(50) is False
    assert len(workers._ORPHANS) == 1 and ch.running_threads() == 0
    qtbot.waitUntil(lambda: not workers._ORPHANS, timeout=5000)


def test_running_workers_tells_leaks_from_orphans_and_exit_waits_for_orphans(qtbot):
    """The suite's leak check sees a thread nobody shut down, not an orphan; the exit hook waits for
    orphans (a QThread destroyed while running would abort the process at exit)."""
    import threading

    from lfs_gui.app import workers

    release, started = threading.Event(), threading.Semaphore(0)

    def blocked():
        started.release()
        release.wait(30)  # no yield: cannot be cancelled meanwhile
        yield 1

    leaking, orphaning = JobChannel("leak"), JobChannel("orphan")
    try:
        leaking.start(blocked)
        orphaning.start(blocked)
        assert started.acquire(timeout=30) and started.acquire(timeout=30)
        assert orphaning.shutdown(10) is False
        names = [t.objectName() for t in workers.running_workers(include_orphans=False)]
        assert any(n.startswith("worker-leak") for n in names), names
        assert not any(n.startswith("worker-orphan") for n in names), names
        assert any(t.objectName().startswith("worker-orphan") for t in workers.running_workers())
        assert workers.wait_for_orphans(50) is False  # still blocked
    finally:
        release.set()
    assert workers.wait_for_orphans(30000) is True
    assert leaking.shutdown(30000)


# --------------------------------------------------------------------------------------------------
# The window on the embedded demo
# --------------------------------------------------------------------------------------------------
CURVE_TIMEOUT = 60_000


@pytest.fixture
def window(qtbot, demo_session):
    return open_window(qtbot, demo_session, (1400, 900))


def _click_gallery(qtbot, win, row: int) -> None:
    view = win.gallery.view
    idx = win.gallery.model.index(row)
    view.scrollTo(idx)
    qtbot.waitUntil(lambda: view.visualRect(idx).isValid() and not view.visualRect(idx).isEmpty(), timeout=5000)
    rect = view.visualRect(idx)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _open_pair(qtbot, win, row: str = "similar", col: int = 0):
    panel = getattr(win.retrievals, row)
    tile = panel.tiles[col]
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    return tile.hit.id


def _plot_xy(win, tag: str = "method"):
    x, y = win.curves.series[tag].item.getData()
    return ([] if x is None else list(x)), ([] if y is None else list(y))


def test_open_demo_in_background(qtbot):
    from lfs_gui.app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win, before_close_func=lambda w: w.shutdown())
    win.show()
    with qtbot.waitSignal(win.sessionReady, timeout=120_000):
        gen = win.open_demo()
        assert gen >= 1 and win.jobProgress.isVisible()  # the GUI thread returned at once
    assert win.gallery.model.rowCount() == len(win.state.session.gallery.items) > 0
    assert "model" in win.sessionLabel.text() and "gallery" in win.sessionLabel.text()
    assert not win.jobProgress.isVisible()


def test_click_query_and_retrieval_shows_heat_and_full_curve(qtbot, window, tmp_path):
    win = window
    _click_gallery(qtbot, win, 0)
    assert win.state.query is not None and win.state.query.id == win.gallery.model.gallery_id(0)
    r = win.state.retrievals
    assert r is not None and len(r.similar) == win.state.k and len(r.dissimilar) == win.state.k
    assert win.findChild(type(win.retrievals.similar), "retrievalsSimilar") is win.retrievals.similar
    assert win.retrievals.similar.tiles[0].hit.id == r.similar[0].id
    with qtbot.waitSignal(win.controller.curveFinished, timeout=CURVE_TIMEOUT) as blocker:
        target = _open_pair(qtbot, win, "similar", 1)
        assert win.state.target == target
        # ExplainLFS is computed on the GUI thread at once: the heat is on screen before the curve.
        assert win.state.explanation is not None
        assert win.pair.targetHeat.overlay is not None and win.pair.queryHeat.overlay is not None
    curves = blocker.args[0]
    steps = win.state.curve.steps
    xs, ys = _plot_xy(win, "method")
    assert len(xs) == len(curves["method"].ratios) == steps + 1
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    assert ys == pytest.approx([float(v) for v in curves["method"].values])
    assert win.curves.point_count("random") == steps + 1
    assert "AUC" in win.curves.status.text()

    # Export: the pair figure in three formats, the sheet and the curve data.
    for name, what in (("pair.png", "pair"), ("pair.svg", "pair"), ("pair.pdf", "pair"), ("sheet.png", "sheet"),
                       ("curve.csv", "curve"), ("curve.json", "curve")):
        out = tmp_path / name
        assert win.export(what, out) is not None
        qtbot.waitUntil(lambda: not win.export_channel.is_busy(), timeout=60_000)
        assert win.last_error is None, win.last_error
        data = out.read_bytes()
        assert data, name
        if name.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        elif name.endswith(".svg"):
            assert b"<svg" in data[:2000]
        elif name.endswith(".pdf"):
            assert data[:5] == b"%PDF-"
    assert win.last_error is None


def test_new_pair_cancels_running_curve_and_drops_stale_points(qtbot, window):
    win = window
    win.controller.curve_delay_ms = 0
    win.select_query(0)
    ch = win.controller.curve_channel
    qtbot.waitUntil(lambda: win.curves.point_count("method") >= 2, timeout=CURVE_TIMEOUT)
    old_generation = ch.generation
    with qtbot.waitSignal(ch.cancelled, timeout=10_000) as cancelled, \
            qtbot.waitSignal(win.controller.curveFinished, timeout=CURVE_TIMEOUT) as blocker:
        new_target = _open_pair(qtbot, win, "dissimilar", 0)
    assert cancelled.args[0] == old_generation
    assert win.state.target == new_target
    xs, ys = _plot_xy(win, "method")
    assert xs == list(range(win.state.curve.steps + 1))  # one run's points, none from the old one
    assert ys == pytest.approx([float(v) for v in blocker.args[0]["method"].values])
    qtbot.waitUntil(lambda: ch.running_threads() == 0, timeout=10_000)


def test_close_window_mid_curve_stops_worker(qtbot, demo_session):
    from lfs_gui.app.main_window import MainWindow

    win = MainWindow()
    win.show()
    win.set_session(demo_session)
    win.controller.curve_delay_ms = 0
    win.state.update_curve(steps=64)  # a long curve, so it is surely still running when the window closes
    win.select_query(1)
    ch = win.controller.curve_channel
    qtbot.waitUntil(lambda: win.curves.point_count("method") >= 1, timeout=CURVE_TIMEOUT)
    assert ch.running_threads() == 1
    t0 = time.perf_counter()
    win.close()
    assert time.perf_counter() - t0 < 15.0  # the worker stops at its next cancel point
    assert ch.running_threads() == 0
    win.deleteLater()
    qtbot.wait(50)


def test_controls_rerender_at_once(qtbot, window):
    win = window
    win.controller.curve_delay_ms = 10_000  # keep the curve out of the way
    win.select_query(2)
    before = win.pair.renders
    first = win.state.explanation
    win.pair.controls.p.slider.setValue(win.pair.controls.p.slider.value() + 40)
    assert win.pair.renders == before + 1 and win.state.explanation is not first
    assert win.state.explain.p == pytest.approx(first.settings.get("p", 0.3) + 0.4, abs=1e-6)
    win.pair.controls.maskOnly.setChecked(True)
    assert win.state.view.mask_only
    win.pair.controls.xi2.slider.setValue(90)
    assert win.state.explain.xi2 == pytest.approx(0.9)
    assert win.pair.targetHeat.overlay is not None


def test_gallery_filter_and_keyboard(qtbot, window):
    win = window
    gal = win.gallery
    n = gal.model.rowCount()
    cls = win.state.session.gallery.classes[0]
    gal.classCombo.setCurrentText(cls)
    assert 0 < gal.model.rowCount() < n
    assert "of" in gal.countLabel.text()
    gal.classCombo.setCurrentIndex(0)
    gal.nameEdit.setText("zzzz-no-such-name")
    assert gal.model.rowCount() == 0
    gal.nameEdit.clear()
    assert gal.model.rowCount() == n
    _click_gallery(qtbot, win, 0)
    first = win.state.query.id
    gal.view.setFocus()
    qtbot.keyClick(gal.view, Qt.Key.Key_Right)
    assert win.state.query.id != first


def test_external_image_query(qtbot, window, tmp_path):
    import shutil

    win = window
    src = win.state.session.gallery.items[3].path
    ext = tmp_path / ("external" + src.suffix)
    shutil.copy(src, ext)
    with qtbot.waitSignal(win.state.retrievalsChanged, timeout=60_000):
        win.open_image_query(ext)
    q = win.state.query
    assert q.external and q.path == ext
    assert win.state.retrievals.similar[0].score > 0.99  # the same pixels as gallery item 3
    assert "external" in win.query.name.text()


def test_open_missing_index_shows_error(qtbot, window, tmp_path):
    win = window
    missing = tmp_path / "no-such-index"
    with qtbot.waitSignal(win.jobFailed, timeout=60_000) as blocker:
        win.open_index(missing)
    assert "no-such-index" in blocker.args[0]
    assert win.findChild(type(win._error_box), "errorBox") is not None
    assert win.state.session is not None  # the open session stays


def test_settings_never_touch_the_user_config(qtbot):
    import os

    from lfs_gui.app.settings import add_recent, make_settings, recent

    s = make_settings()
    assert Path(s.fileName()) == Path(os.environ["LFS_GUI_SETTINGS"])
    add_recent(s, "images", __file__)
    assert recent(s, "images")[0] == str(Path(__file__).resolve())


def test_index_a_gallery_then_train_and_use_a_decoder(qtbot, window, tmp_path):
    """File ▸ Index a gallery runs in the background with progress, then opens the new index; a
    decoder trained from the menu replaces the index's one."""
    from PIL import Image

    root = tmp_path / "gal"
    for c, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(3):
            img = Image.new("RGB", (64, 48), colour)
            img.paste((255, 255, 255), (i * 10, 5, i * 10 + 20, 30))
            img.save(root / f"c{c}" / f"{i}.png")
    progress: list = []
    window.build_channel.item.connect(progress.append)
    with qtbot.waitSignal(window.sessionReady, timeout=120000):
        window.build_index(root, tmp_path / "idx")
    assert (tmp_path / "idx" / "index.json").is_file()
    assert len(window.state.session.gallery) == 6 and progress
    assert "gallery: 6" in window.sessionLabel.text()

    with qtbot.waitSignal(window.build_channel.done, timeout=120000):
        window.train_decoder(tmp_path / "dec.pt", epochs=2)
    assert window.state.session.decoder_path == tmp_path / "dec.pt"
    assert window.state.session.decoder.meta["epochs"] == 2


def test_curve_controls_and_panel_focus_keys(qtbot, window):
    """Steps / perturbation / seed write into the state; Ctrl+→ walks the panels."""
    cc = window.curveControls
    cc.steps.setValue(7)
    cc.perturbation.setCurrentIndex(cc.perturbation.findData("fill"))
    cc.seed.setValue(3)
    s = window.state.curve
    assert (s.steps, s.perturbation, s.seed) == (7, "fill", 3)
    window.state.update_curve(steps=20, perturbation="noise", seed=0)  # state -> widgets
    assert (cc.steps.value(), cc.perturbation.currentData(), cc.seed.value()) == (20, "noise", 0)

    window.activateWindow()
    window.gallery.view.setFocus()
    panels = window.panels()
    seen = [window.focus_panel(1) for _ in range(len(panels))]
    assert seen == panels[1:] + panels[:1]
    assert window.focus_panel(-1) is panels[-1]


def test_drop_an_image_file_makes_it_the_query(qtbot, window, tmp_path):
    from PIL import Image
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    path = tmp_path / "dropped.png"
    Image.new("RGB", (90, 70), (20, 160, 40)).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    target = window.query
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.state.queryChanged, timeout=60000):
        target.dropEvent(event)
    assert window.state.query.external and window.state.query.path == path


def test_exif_rotated_photo_is_shown_upright_with_its_upright_size(qtbot, tmp_path):
    """The pair view and thumbnails show what the model saw (EXIF-upright), so the crop box matches."""
    from PIL import Image

    from lfs_gui.app.thumbnails import load_thumbnail
    from lfs_gui.app.widgets.pair_view import _ImageCache
    from lfs_gui.data.embed import load_rgb

    path = tmp_path / "rotated.jpg"
    img = Image.new("RGB", (120, 60), (250, 250, 250))
    img.paste((200, 0, 0), (0, 0, 30, 60))  # red strip on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img.save(path, exif=exif)
    assert load_rgb(path).size == (60, 120)
    pix, size = _ImageCache().get(path)
    assert size == (60, 120) and pix.width() < pix.height()
    thumb = load_thumbnail(path, 64)
    assert thumb.width() < thumb.height()


def test_open_model_then_index_and_evaluate_from_the_menu(qtbot, window, tmp_path):
    """File ▸ Open model picks the embedding model of the next index; File ▸ Evaluate writes a report."""
    import json

    import torch
    from PIL import Image

    from lfs_gui.models.base import Preprocessing
    from lfs_gui.models.torchvision_models import build_torchvision_embedder, save_torchvision_head

    torch.manual_seed(0)
    model_file = tmp_path / "tiny.pt"
    save_torchvision_head(model_file, build_torchvision_embedder("resnet18", 8, Preprocessing(input_size=32, resize=36)))
    root = tmp_path / "gal"
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), (60 + 90 * c, 20 * i, 90)).save(root / f"c{c}" / f"{i}.png")
    window.use_model(model_file)
    with qtbot.waitSignal(window.sessionReady, timeout=120000):
        window.build_index(root, tmp_path / "idx", split="all", decoder_kind="conv")
    side = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert side["dim"] == 8 and side["model"]["source"] == str(model_file)
    assert window.state.session.decoder.kind == "conv"

    with qtbot.waitSignal(window.build_channel.done, timeout=120000):
        assert window.evaluate(tmp_path / "report", pairs=1, methods=["explainlfs", "random"], perturbations=("fill",))
        assert window.train_decoder(tmp_path / "d.pt") is None  # refused while the evaluation runs
    assert "still running" in window.last_error
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "explainlfs" in text and "random" in text and "Partial" not in text
    assert json.loads((tmp_path / "report" / "settings.json").read_text())["xi1"] == window.state.explain.xi1


def test_job_option_dialogs_give_the_job_settings(qtbot):
    from lfs_gui.app.widgets.job_options import EvaluationOptions, IndexOptions

    ev = EvaluationOptions()
    qtbot.addWidget(ev)
    assert ev.options() == {"pairs": 10, "perturbations": ("noise", "fill"), "method_settings": {"rise-sim": {"n_masks": 100}}}
    ev.pairs.setValue(3)
    ev.perturbations["noise"].setChecked(False)
    ev.perturbations["fill"].setChecked(False)
    ev.perturbations["blur"].setChecked(True)
    ev.masks.setValue(250)
    assert ev.options() == {"pairs": 3, "perturbations": ("blur",), "method_settings": {"rise-sim": {"n_masks": 250}}}
    ix = IndexOptions()
    qtbot.addWidget(ix)
    assert ix.options() == {"split": None, "decoder_kind": "dense"}
    ix.split.setCurrentIndex(ix.split.findData("train"))
    ix.decoder.setCurrentIndex(ix.decoder.findData("conv"))
    assert ix.options() == {"split": "train", "decoder_kind": "conv"}


def test_emsnn_runs_in_a_worker_until_its_prototypes_exist(qtbot, window):
    from lfs_gui.session import Session

    win = window
    fresh = Session.open_demo()  # prototypes not computed yet
    win.set_session(fresh)
    win.select_query(0)
    assert win.state.explanation is not None  # explainlfs: on the GUI thread, at once
    with qtbot.waitSignal(win.controller.explain_channel.done, timeout=60_000):
        win.state.update_explain(method="emsnn")
        assert win.state.explanation is None and win.controller.explain_channel.is_busy()
    assert win.state.explanation is not None and win.state.explanation.method == "emsnn"
    assert fresh.is_instant("emsnn")
    other = win.state.retrievals.similar[1].id
    win.state.set_target(other)  # now instant: computed on the GUI thread, no job
    assert win.state.explanation is not None and win.state.explanation.method == "emsnn"
    assert not win.controller.explain_channel.is_busy()


def test_sheet_export_job_cancels_between_retrievals(demo_session, tmp_path):
    from lfs_gui.app.export import export_job
    from lfs_gui.jobs import Progress, run_generator
    from lfs_gui.viewer_state import QueryRef, ViewerState

    state = ViewerState()
    state.set_session(demo_session)
    item = demo_session.gallery.items[2]
    state.set_query(QueryRef(id=2, path=item.path))
    state.set_retrievals(demo_session.retrieve(2, k=3))
    out = tmp_path / "sheet.png"
    gen = export_job("sheet", out, state, {})()
    first, second = next(gen), next(gen)
    assert isinstance(first, Progress) and first.total == 7  # the query + 6 retrievals
    gen.close()  # cancelled before the end: nothing written
    assert not out.exists() and not list(tmp_path.iterdir())
    items = []
    assert run_generator(export_job("sheet", out, state, {})(), items.append) == str(out)
    progress = [i for i in items if isinstance(i, Progress)]
    done = [p.done for p in progress]  # a slow method's own progress repeats its panel's count
    assert done == sorted(done) and sorted(set(done)) == list(range(8)) and out.stat().st_size > 0


# -- the faithfulness protocol in the app (issue 10): question, order, p defaults, the oracle on request --
ORACLE_TIMEOUT = 120_000


def test_oracle_curve_on_request_next_to_random(qtbot, window):
    win = window
    win.controller.curve_delay_ms = 0
    win.state.update_curve(steps=3, perturbation="fill")  # 64 + 63 + 62 candidate forwards
    win.select_query(0)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=ORACLE_TIMEOUT) as finished:
        _open_pair(qtbot, win, "similar", 0)
    curves = finished.args[0]
    button = win.curves.oracleButton
    assert button.isEnabled() and button.text() == "Oracle curve"
    ch = win.controller.oracle_channel
    progress = []
    ch.item.connect(lambda item: progress.append(item[0]))
    with qtbot.waitSignal(ch.done, timeout=ORACLE_TIMEOUT):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert button.text() == "Cancel oracle"
    assert "oracle-progress" in progress and progress[-1] == "oracle-done"
    assert win.curves.point_count("oracle") == 4 and button.text() == "Oracle curve"
    oracle = win.controller.last_curves["oracle"]
    assert oracle.settings["method"] == "oracle" and oracle.settings["target"] == "decision"
    assert oracle.auc <= min(curves["method"].auc, curves["random"].auc) + 1e-9  # similar pair: lower is better
    assert "oracle AUC" in win.curves.status.text()
    # a second request is served from the cache: no candidate forwards
    progress.clear()
    with qtbot.waitSignal(ch.done, timeout=30_000):
        win.controller.toggle_oracle()
    assert "oracle-progress" not in progress and win.curves.point_count("oracle") == 4


def test_oracle_cancel_and_a_new_pair_drop_it(qtbot, window):
    win = window
    win.controller.curve_delay_ms = 0
    win.state.update_curve(steps=20, perturbation="noise", seed=5)
    win.select_query(1)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=ORACLE_TIMEOUT):
        _open_pair(qtbot, win, "similar", 0)
    ch = win.controller.oracle_channel
    win.controller.toggle_oracle()
    qtbot.waitUntil(lambda: win.curves.point_count("oracle") >= 1, timeout=ORACLE_TIMEOUT)
    with qtbot.waitSignal(ch.cancelled, timeout=ORACLE_TIMEOUT):
        win.controller.toggle_oracle()  # the button again: cancel
    assert not ch.is_busy() and win.curves.point_count("oracle") == 0
    assert win.curves.oracleButton.text() == "Oracle curve"
    win.controller.toggle_oracle()
    qtbot.waitUntil(lambda: win.curves.point_count("oracle") >= 1, timeout=ORACLE_TIMEOUT)
    with qtbot.waitSignal(ch.cancelled, timeout=ORACLE_TIMEOUT):
        _open_pair(qtbot, win, "similar", 1)  # a new pair cancels it
    qtbot.waitUntil(lambda: ch.running_threads() == 0, timeout=ORACLE_TIMEOUT)


def test_question_order_and_p_defaults_reach_maps_and_curves(qtbot, window):
    win = window
    win.controller.curve_delay_ms = 0
    controls = win.findChild(type(win.curveControls), "curveControls")
    assert controls is win.curveControls
    combo = win.findChild(type(win.curveControls.order), "targetCombo")
    combo.setCurrentIndex(combo.findData("similarity"))
    assert win.state.explain.target == "similarity"
    win.curveControls.order.setCurrentIndex(win.curveControls.order.findData("lerf"))
    assert win.state.curve.order == "lerf"
    method = win.findChild(type(combo), "methodCombo")
    win.state.update_explain(p=1.0)
    method.setCurrentText("explainlfs-thesis")
    assert win.state.explain.p == pytest.approx(0.3)  # its own default, as in the CLI and evaluate
    win.state.update_explain(p=1.0)
    method.setCurrentText("explainlfs")
    assert win.state.explain.p == pytest.approx(0.3)
    win.state.update_curve(steps=3, perturbation="fill")
    win.select_query(2)
    with qtbot.waitSignal(win.controller.curveFinished, timeout=ORACLE_TIMEOUT) as finished:
        _open_pair(qtbot, win, "similar", 0)
    c = finished.args[0]
    assert c["method"].settings["target"] == c["random"].settings["target"] == "similarity"
    assert c["method"].settings["order"] == c["random"].settings["order"] == "lerf"
    assert not c["method"].lower_is_better  # LeRF on a similar pair: a good map keeps the similarity up
    # explainlfs cannot say what makes a dissimilar pair alike: it says so instead of answering
    failures = []
    win.controller.explainFailed.connect(failures.append)
    _open_pair(qtbot, win, "dissimilar", 0)
    qtbot.waitUntil(lambda: bool(failures), timeout=ORACLE_TIMEOUT)
    assert "cannot answer target 'similarity'" in failures[-1]
    win.state.update_explain(target="decision")
    win.state.update_curve(order="morf", steps=20, perturbation="noise")
