"""Benchmark the desktop app on the embedded demo (real Qt, real session).

Measures, on the GUI thread's clock:

* launch -> first paint of the main window (before any torch import), and -> session ready;
* click on a retrieval -> heat map painted on screen;
* re-render rate while "dragging" the p and ξ2 sliders (explain + redraw per value);
* time to the first curve point and to the full curve (method, then random's reference);
* the longest GUI-thread stall while a curve runs (a 5 ms QTimer probe), and while a curve and an
  index build (File ▸ Index a gallery, on a synthetic folder) run together;
* resident memory with a 100k-image gallery (synthetic: hard links to 100 small JPEGs, random
  128-d embeddings in a flat index), after scrolling its thumbnail grid.

Usage: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_app.py [--json out.json]``
(or under ``xvfb-run -a``). The curve's floor, 21 plain single-image forwards of the demo model, is
measured in the same run and the full curve is reported as a ratio to it.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LFS_GUI_SETTINGS", os.path.join(tempfile.mkdtemp(prefix="lfs-gui-bench-"), "s.ini"))

from PySide6.QtCore import QEvent, QEventLoop, QObject, QPoint, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402



class PaintProbe(QObject):
    """Records the time of every Paint event of one widget."""

    def __init__(self, widget) -> None:
        super().__init__(widget)
        self.times: list[float] = []
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Paint:
            self.times.append(time.perf_counter())
        return False


class StallProbe(QObject):
    """A 5 ms timer on the GUI thread; the longest gap between ticks is the longest stall."""

    def __init__(self, interval_ms: int = 5) -> None:
        super().__init__()
        self.interval = interval_ms / 1000
        self.last = None
        self.gaps: list[float] = []
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.last = time.perf_counter()
        self.gaps.clear()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now


def wait_until(app: QApplication, cond, timeout: float = 120.0) -> float:
    """Run the event loop until ``cond()`` holds. The loop sleeps until an event arrives and checks
    ``cond`` every 10 ms, as the app's own loop would; the times measured are taken in the slots. (A
    busy ``processEvents()`` + 1 ms sleep poll woke the GUI thread 1000 times a second and took the GIL
    from the curve's worker each time, inflating what the benchmark measured.)"""
    t0 = time.perf_counter()
    loop = QEventLoop()
    while not cond():
        QTimer.singleShot(10, loop.quit)
        loop.exec()
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("benchmark condition not met")
    return time.perf_counter()


def measure_forward_floor(session, n: int) -> float:
    """Seconds for ``n`` plain single-image forwards of the session's model (the curve's lower bound),
    on a worker thread as the app's curve runs (the GUI thread stays idle meanwhile)."""
    import threading

    import torch

    x = session.input_tensor(0)
    out: list[float] = []

    def run() -> None:
        with torch.inference_mode():
            session.model.embed_tensor(x)  # warm-up
            t0 = time.perf_counter()
            for _ in range(n):
                session.model.embed_tensor(x)
        out.append(time.perf_counter() - t0)

    thread = threading.Thread(target=run, name="floor")
    thread.start()
    thread.join()
    return out[0]


def make_synthetic_folder(root: str, n_classes: int, per_class: int) -> str:
    """Small class-folder gallery of generated images (for the index-build job)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(n_classes):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
        for i in range(per_class):
            arr = (rng.random((96, 128, 3)) * 60 + 40 * c).astype(np.uint8)
            Image.fromarray(arr).save(os.path.join(root, f"class{c}", f"{i}.jpg"))
    return root


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_100k(app: QApplication, n: int = 100_000, dim: int = 128) -> dict[str, float]:
    """Open a window on a synthetic 100k-image session and report resident memory."""
    import numpy as np
    from PIL import Image

    from lfs_gui.app.main_window import MainWindow
    from lfs_gui.data.galleries import Gallery, GalleryItem
    from lfs_gui.index.faiss_index import EmbeddingIndex
    from lfs_gui.models.base import Preprocessing
    from lfs_gui.session import Session

    out: dict[str, float] = {"rss_before_100k_mb": rss_mb()}
    with tempfile.TemporaryDirectory(prefix="lfs-gui-bench-100k-") as tmp:
        items = []
        for i in range(n):
            cls = i % 100
            d = os.path.join(tmp, f"c{cls:03d}")
            src = os.path.join(d, "src.jpg")
            if i < 100:  # one real JPEG per class, hard-linked (ext4 allows ~65k links per file)
                os.makedirs(d)
                Image.new("RGB", (120, 90), (120 + cls, 160, 200 - cls)).save(src)
            path = os.path.join(d, f"{i}.jpg")
            os.link(src, path)
            items.append(GalleryItem(Path(path), f"c{cls:03d}/{i}.jpg", cls, f"c{cls:03d}"))
        gallery = Gallery("synthetic-100k", Path(tmp), items, [f"c{c:03d}" for c in range(100)], "folder", "all")
        x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        t0 = time.perf_counter()
        session = Session("synthetic-100k", gallery, EmbeddingIndex(x), Preprocessing(), model_loader=lambda: None)
        win = MainWindow()
        win.controller.auto_open_top = False
        win.resize(1400, 900)
        win.show()
        win.set_session(session)
        win.select_query(0)
        wait_until(app, lambda: win.state.retrievals is not None)
        out["open_100k_session_s"] = time.perf_counter() - t0
        view = win.gallery.view
        for frac in (0.25, 0.5, 0.75, 1.0):
            view.scrollTo(win.gallery.model.index(int(frac * (n - 1))))
            t1 = time.perf_counter()
            while time.perf_counter() - t1 < 0.5:
                app.processEvents()
        t2 = time.perf_counter()
        session.retrieve(12345, k=8)
        out["retrieve_100k_ms"] = 1000 * (time.perf_counter() - t2)
        out["rss_with_100k_gallery_mb"] = rss_mb()
        win.close()
    return out


def curve_cost_rounds(app: QApplication, win, rounds: int) -> dict[str, float]:
    """The method's curve (click -> last point) over 21 plain forwards measured right after it, in
    ``rounds`` rounds alternating the curves panel's redraw per point (before) and throttled (after),
    so both see the same machine load. Also the GUI thread's CPU per curve."""
    ctl = win.controller
    ctl.curve_delay_ms = 0
    panel = win.curves
    method_done: list[float] = []
    ctl.curve_channel.item.connect(lambda item: method_done.append(time.perf_counter()) if item[0] == "method-done" else None)
    out: dict[str, list[float]] = {}
    steps = win.state.curve.steps
    throttled = panel.redraw_interval_ms
    for r in range(rounds):
        for j, (mode, interval, fixed) in enumerate((("per_point", 0, False), ("throttled", throttled, True))):
            panel.redraw_interval_ms, panel.managed_ranges = interval, fixed
            method_done.clear()
            ctl._random_cache.clear()
            col = 2 + (2 * r + j) % 6  # consecutive clicks open different pairs
            gui0, t0 = time.thread_time(), time.perf_counter()
            QTest.mouseClick(win.retrievals.similar.tiles[col], Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
            wait_until(app, lambda: method_done, timeout=300)
            wall, gui = method_done[0] - t0, time.thread_time() - gui0
            ctl.curve_channel.cancel()
            wait_until(app, lambda: ctl.curve_channel.running_threads() == 0, timeout=300)
            floor = measure_forward_floor(win.state.session, steps + 1)
            out.setdefault(f"{mode}_curve_s", []).append(wall)
            out.setdefault(f"{mode}_floor_s", []).append(floor)
            out.setdefault(f"{mode}_ratio", []).append(wall / floor)
            out.setdefault(f"{mode}_gui_cpu_s", []).append(gui)
    res: dict[str, float] = {}
    for k, v in out.items():
        res[f"{k}_median"] = statistics.median(v)
        res[f"{k}_min"] = min(v)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--drags", type=int, default=60, help="slider values per drag (default 60)")
    ap.add_argument("--curve-only", type=int, default=0, metavar="N",
                    help="only the curve cost: N rounds alternating a redraw per point (before the fix) and the "
                         "throttled redraw, each next to its own forward floor")
    args = ap.parse_args()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from lfs_gui.app.main_window import MainWindow
    from lfs_gui.app.settings import init_app_names

    init_app_names()
    win = MainWindow()
    win.resize(1400, 900)
    probe = PaintProbe(win)
    win.show()
    t_paint = wait_until(app, lambda: probe.times)
    ready: list[float] = []
    win.sessionReady.connect(lambda _s: ready.append(time.perf_counter()))
    win.open_demo()
    wait_until(app, lambda: ready, timeout=300)
    res: dict[str, float] = {
        "launch_to_first_paint_s": t_paint - T_START,
        "launch_to_session_ready_s": ready[0] - T_START,
    }

    ctl = win.controller
    ctl.curve_delay_ms = 0
    win.controller.auto_open_top = False
    win.select_query(0)
    wait_until(app, lambda: win.state.retrievals is not None)
    # Warm-up pair (first explanation imports matplotlib's colormaps, first curve warms torch).
    done: list[float] = []
    ctl.curveFinished.connect(lambda _c: done.append(time.perf_counter()))
    tile = win.retrievals.similar.tiles[1]
    QTest.mouseClick(tile, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    wait_until(app, lambda: done)
    if args.curve_only:
        res = curve_cost_rounds(app, win, args.curve_only)
        for k, v in res.items():
            print(f"{k:<40}  {v:9.3f}")
        win.shutdown()
        win.close()
        return 0

    # click -> heat on screen
    heat_probe = PaintProbe(win.pair.targetHeat)
    clicks = []
    for col in (2, 3, 4):
        heat_probe.times.clear()
        tile = win.retrievals.similar.tiles[col]
        t0 = time.perf_counter()
        QTest.mouseClick(tile, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
        t1 = wait_until(app, lambda: heat_probe.times and win.pair.targetHeat.overlay is not None)
        clicks.append(heat_probe.times[0] - t0 if heat_probe.times[0] >= t0 else t1 - t0)
    res["click_to_heat_on_screen_ms"] = 1000 * statistics.median(clicks)

    # re-render rate while dragging p and ξ2 (explain + synchronous repaint of both heat tiles)
    ctl.curve_delay_ms = 100_000  # keep curves out of the drag measurement
    for name in ("p", "xi2"):
        vs = getattr(win.pair.controls, name)
        start = vs.slider.value()
        t0 = time.perf_counter()
        for i in range(args.drags):
            vs.slider.setValue(start + (i % 30) + 1)
            win.pair.queryHeat.repaint()
            win.pair.targetHeat.repaint()
            app.processEvents()
        res[f"drag_{name}_fps"] = args.drags / (time.perf_counter() - t0)
        vs.slider.setValue(start)
    ctl.curve_delay_ms = 0

    # curve timings and the GUI stall during a curve
    first: list[float] = []
    method_done: list[float] = []

    def on_item(item):
        tag, _v = item
        if tag == "method" and not first:
            first.append(time.perf_counter())
        if tag == "method-done":
            method_done.append(time.perf_counter())

    ctl.curve_channel.item.connect(on_item)
    stall = StallProbe()
    runs = []
    for col in (5, 6):
        first.clear(), method_done.clear(), done.clear()
        ctl._random_cache.clear()  # measure random's curve too
        t0 = time.perf_counter()
        QTest.mouseClick(win.retrievals.similar.tiles[col], Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
        stall.start()  # the click itself (explain + redraw) is measured above
        wait_until(app, lambda: done, timeout=300)
        stall.stop()
        runs.append((first[0] - t0, method_done[0] - t0, done[0] - t0, max(stall.gaps) - stall.interval))
    res["curve_first_point_ms"] = 1000 * min(r[0] for r in runs)
    res["curve_method_full_s"] = min(r[1] for r in runs)
    res["curve_with_random_full_s"] = min(r[2] for r in runs)
    res["gui_longest_stall_during_curve_ms"] = 1000 * max(r[3] for r in runs)
    steps = win.state.curve.steps
    floor = measure_forward_floor(win.state.session, steps + 1)
    res["floor_21_single_forwards_s"] = floor
    res["curve_method_full_vs_floor"] = res["curve_method_full_s"] / floor

    # a curve and an index build at the same time
    with tempfile.TemporaryDirectory(prefix="lfs-gui-bench-build-") as tmp:
        gal = make_synthetic_folder(os.path.join(tmp, "gallery"), n_classes=4, per_class=15)
        built: list[float] = []
        win.build_channel.done.connect(lambda _r: built.append(time.perf_counter()))
        win.build_channel.failed.connect(lambda exc, _tb: built.append(time.perf_counter()))
        win.sessionReady.disconnect()
        done.clear()
        ctl._random_cache.clear()
        stall = StallProbe()
        stall.start()
        t0 = time.perf_counter()
        win.build_index(gal, os.path.join(tmp, "index"))
        QTest.mouseClick(win.retrievals.similar.tiles[7], Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
        wait_until(app, lambda: done and built, timeout=600)
        stall.stop()
        res["index_build_60_images_s"] = built[0] - t0
        res["gui_longest_stall_curve_plus_index_build_ms"] = 1000 * (max(stall.gaps) - stall.interval)
        win.shutdown()
    win.close()

    res.update(memory_100k(app))
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v:9.3f}")
    print(f"(floor: {steps + 1} single-image forwards measured here = {floor:.2f} s per curve)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
