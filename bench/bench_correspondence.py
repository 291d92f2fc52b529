"""Time the correspondence and SANE on the demo model, each next to the forward it cannot beat.

* exact correspondence (GAP + affine decomposition) per pair vs one forward of the two images;
* the occlusion estimate (any model) per pair vs its 2·(g²+1) forwards;
* a hover update (cell lookup + match heat + mapping onto the original) — what the pair view does
  per mouse move once the matrix exists;
* SANE's choice (predictor + 8 candidates' deletions) vs its forwards;
* with ``--app``: the window's hover path (a mouse move on the query -> the match heat on the
  target painted), offscreen, per event.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_correspondence.py [--pairs 10] [--grid 7] [--app]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000.0 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--grid", type=int, default=7)
    ap.add_argument("--app", action="store_true", help="also time the window's hover path (offscreen Qt)")
    args = ap.parse_args()

    from lfs_gui.attributes.index_attributes import index_folder, load_session_predictor, predictor_path
    from lfs_gui.explain.correspondence import exact_correspondence, iter_occlusion_correspondence, original_to_cell
    from lfs_gui.explain.registry import make_explainer
    from lfs_gui.explain.base import PairInput
    from lfs_gui.attributes.sane import SaneChooser
    from lfs_gui.figures.overlay import heat_to_original
    from lfs_gui.jobs import run_generator
    from lfs_gui.data.images import open_image
    from lfs_gui.session import Session

    s = Session.open_demo()
    model = s.model
    rng = np.random.default_rng(0)
    pairs = [tuple(int(v) for v in rng.choice(len(s.gallery), 2, replace=False)) for _ in range(args.pairs)]
    xs = {i: s.input_tensor(i) for p in pairs for i in p}
    q, t = pairs[0]
    x1, x2 = xs[q], xs[t]

    def forward() -> None:
        with torch.inference_mode():
            model.embed_tensor(torch.cat([x1, x2]))

    floor = median_ms(forward, 10)
    exact = float(np.median([median_ms(lambda a=a, b=b: exact_correspondence(model, xs[a], xs[b]), 3) for a, b in pairs]))
    occ_forwards = 2 * (args.grid ** 2 + 1)
    occ = median_ms(lambda: run_generator(iter_occlusion_correspondence(model, x1, x2, grid=args.grid)), 1)
    corr = exact_correspondence(model, x1, x2)
    img = open_image(s.image_path(q))
    w, h = img.size
    pts = rng.uniform(0, 1, (200, 2)) * [w, h]

    def hover() -> None:
        for x, y in pts:
            cell = original_to_cell(corr, 1, model.preprocessing, x, y, w, h)
            if cell is not None:
                heat_to_original(corr.match_heat(1, cell), model.preprocessing, w, h)

    hov = median_ms(hover, 3) / len(pts)
    pred = load_session_predictor(s, predictor_path(index_folder("demo")))
    hp = make_explainer("sim-decomp", model=model).explain(PairInput.from_tensors(model, x1, x2))
    chooser = SaneChooser(pred, model)
    sane = median_ms(lambda: chooser.choose(x1, x2, hp.heat1, hp.heat2), 3)
    print(f"demo model, {args.pairs} pairs, machine threads {torch.get_num_threads()}")
    print(f"forward of the two images (floor)       {floor:8.1f} ms")
    print(f"exact correspondence per pair           {exact:8.1f} ms  = {exact / floor:.2f} x the floor")
    print(f"occlusion estimate ({args.grid}x{args.grid}) per pair       {occ:8.1f} ms  = {occ / (floor * occ_forwards / 2):.2f} x its "
          f"{occ_forwards} forwards")
    print(f"hover update (cell -> heat on original) {hov:8.3f} ms  ({img.size[0]}x{img.size[1]} original)")
    print(f"SANE choice (8 candidates)              {sane:8.1f} ms  = {sane / (floor * 9):.2f} x its 18 forwards")
    if args.app:
        print(f"window hover: mouse move -> match heat painted {app_hover_ms(s, q, t):8.3f} ms per event")


def app_hover_ms(session, query: int, target: int, moves: int = 300) -> float:
    """Median ms per mouse-move event in the real window, the matrix already computed."""
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from lfs_gui.app.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    win.controller.curve_delay_ms = 10**7
    win.set_session(session)
    win.state.update_explain(method="sim-decomp")
    win.select_query(query)
    win.state.set_target(target)
    ctl = win.pair.match
    ctl.match.set_enabled(True)
    deadline = time.perf_counter() + 300
    while (ctl.match.correspondence is None or win.state.explanation is None) and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    tile = win.pair.queryHeat
    r = tile.image_rect()
    rng = np.random.default_rng(1)
    times = []
    for _ in range(moves):
        pos = QPoint(int(r.x() + rng.uniform(0.1, 0.9) * r.width()), int(r.y() + rng.uniform(0.1, 0.9) * r.height()))
        t0 = time.perf_counter()
        QTest.mouseMove(tile, pos)
        app.processEvents()  # the repaint of both tiles and the overlay
        times.append(time.perf_counter() - t0)
    win.shutdown()
    win.close()
    return 1000.0 * float(np.median(times))


if __name__ == "__main__":
    main()
