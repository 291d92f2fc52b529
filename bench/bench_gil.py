"""How much Python on the GUI thread slows a model forward on a worker thread (the GIL).

The app's curve runs its forwards on a worker thread while the GUI thread draws. Torch releases the
GIL inside each op but needs it between ops (every module call), so Python work on the main thread
delays the worker. This runs 21 single-image forwards of the demo model on a worker thread while the
main thread is idle, or busy in pure Python for B ms of every 25 ms, alternating the variants over
``--rounds`` rounds so that all see the same machine load, and prints each one's ratio to the idle one.

Usage: ``.venv/bin/python bench/bench_gil.py [--rounds 6]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    import torch

    from lfs_gui.session import Session

    session = Session.open_demo()
    x, model = session.input_tensor(0), session.model

    def forwards() -> float:
        with torch.inference_mode():
            t0 = time.perf_counter()
            for _ in range(21):
                model.embed_tensor(x)
        return time.perf_counter() - t0

    def run(busy_ms: float, period_ms: float = 25.0) -> float:
        out: list[float] = []
        worker = threading.Thread(target=lambda: out.append(forwards()))
        worker.start()
        while worker.is_alive():
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < busy_ms / 1000:
                sum(range(200))  # pure Python: holds the GIL
            time.sleep((period_ms - busy_ms) / 1000)
        return out[0]

    forwards()
    variants = {"main thread idle": 0.0, "Python 2 ms / 25 ms": 2.0, "Python 8 ms / 25 ms": 8.0}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, busy in variants.items():
            times[name].append(run(busy))
    base = statistics.median(times["main thread idle"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<22} 21 forwards: median {med:.3f} s, min {min(ts):.3f} s, x{med / base:.2f} of idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
