"""Time ``lfs-gui index`` against the raw model throughput, its peak memory and the cost of resuming.

On generated galleries (12 000 images, CUB-sized, and 100 000), each ``lfs-gui index`` run is a real
subprocess (the CLI as a user runs it, ``--no-decoder``: embedding is what is measured), timed with
``os.wait4`` for its peak resident memory. Printed per gallery:

* **cold**: nothing cached; images/s of the build (the report's seconds: listing, stat, cache lookup,
  decoding, forwards, shard writes, assembling ``embeddings.npy``, index, save) against the **raw
  model throughput** measured in this process on the same device just before: forwards of
  already-decoded batches (``model.embed_tensor`` under ``inference_mode``, same batch size). Goal:
  ratio >= 0.9. Process wall time (with Python/torch start-up) and peak RSS next to it.
* **killed at 50 %**: the same build, ``SIGKILL``-ed from outside once half of its shards are on disk,
  then the same command again: the resumed run's time, what it reused, and the total against one
  uninterrupted build (the cost of the kill: at most one shard of lost work + one extra start-up).
* **cached**: the same command once more (everything reused): what a rebuild costs.

Model: ResNet-18 (random weights, 128-d head, 64x64 input) in lfs-gui's torchvision head-file
format. Images: 96x80 JPEGs (noise + shapes). Both are chosen so that the whole bench finishes in
about 20 min on 2 shared CPU cores: a ResNet-50 at 224 px would take ~20 h for 100k images here.
``--photo`` adds a 12k run with 500x375 JPEGs (CUB's typical size): there decoding, not the model,
sets the pace on a CPU, and ``--workers`` shows what decode workers buy.

    nice -n 10 .venv/bin/python bench/bench_embed.py [--sizes 12000 100000] [--device auto] [--photo]

GPU: ``--device cuda`` (``auto`` picks it when there is one) runs the same measurements there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_gallery(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    """``n`` distinct JPEGs (flat folder: unlabelled, so no O(n^2) recall in the timing)."""
    marker = folder / ".complete"
    if marker.is_file() and marker.read_text() == f"{n} {size}":
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(n):
        arr = (rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8)
        im = Image.fromarray(arr).resize((w, h), Image.BILINEAR)
        d = ImageDraw.Draw(im)
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        d.ellipse((x0, y0, x0 + w // 3, y0 + h // 3), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        im.save(folder / f"img_{i:07d}.jpg", quality=90)
    marker.write_text(f"{n} {size}")
    return folder


def make_model(path: Path) -> Path:
    import torch

    from lfs_gui.models.base import Preprocessing
    from lfs_gui.models.torchvision_models import build_torchvision_embedder, save_torchvision_head

    if not path.is_file():
        torch.manual_seed(0)
        save_torchvision_head(path, build_torchvision_embedder("resnet18", 128, Preprocessing(input_size=64, resize=72)))
    return path


def raw_throughput(model_file: Path, device: str, batch: int, seconds: float = 12.0) -> float:
    """Images/s of the bare forward on already-decoded batches (the floor any pipeline is held to)."""
    import torch

    from lfs_gui.device import resolve_device
    from lfs_gui.models.loader import load_model

    model = load_model(model_file)
    dev = resolve_device(device)
    model.to(dev)
    side = model.preprocessing.input_size
    x = torch.randn(batch, 3, side, side)
    n, t0 = 0, time.perf_counter()
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            model.embed_tensor(x.to(dev)).float().cpu()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model.embed_tensor(x.to(dev)).float().cpu().numpy()
            n += batch
    return n / (time.perf_counter() - t0)


def run_index(gallery: Path, model: Path, out: Path, cache: Path, device: str, batch: int, workers: int,
              shard: int, kill_at_shards: int | None = None) -> dict:
    """One ``lfs-gui index`` subprocess; returns its report + wall seconds + peak RSS (MB)."""
    cmd = [sys.executable, "-m", "lfs_gui", "index", str(gallery), "--model", str(model), "--out", str(out),
           "--cache-dir", str(cache), "--no-decoder", "--device", device, "--batch-size", str(batch),
           "--workers", str(workers), "--shard-size", str(shard), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    killed = False
    if kill_at_shards is not None:
        while proc.poll() is None:
            if len(list(cache.glob("*/shard-*.parquet"))) >= kill_at_shards:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.05)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    rep = json.loads(stdout) if proc.returncode == 0 and stdout else {}
    return {**rep, "wall": wall, "rss_mb": usage.ru_maxrss / 1024, "killed": killed, "rc": proc.returncode}


def baseline_rss(device: str) -> float:
    """Peak RSS (MB) of a process that only imports what ``lfs-gui index`` imports and loads nothing:
    the floor under every figure below (a CUDA build of torch maps ~0.7 GB at import)."""
    code = ("import torch, torchvision, faiss, pyarrow.parquet, lfs_gui.build, lfs_gui.models.loader, lfs_gui.cli; "
            f"from lfs_gui.device import resolve_device; resolve_device({device!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024


def bench_gallery(name: str, gallery: Path, n: int, work: Path, model: Path, device: str, batch: int,
                  workers: int) -> None:
    from lfs_gui.data.shards import DEFAULT_SHARD_ROWS

    raw = raw_throughput(model, device, batch)
    cache, out = work / f"cache-{name}", work / f"index-{name}"
    shard = min(DEFAULT_SHARD_ROWS, max(batch, n // 20 // batch * batch))  # >= 20 shards: a kill lands near 50 %
    shutil.rmtree(cache, ignore_errors=True)
    cold = run_index(gallery, model, out, cache, device, batch, workers, shard)
    assert cold.get("count") == n, cold
    rate = n / cold["seconds"]
    print(f"\n{name}: {n} images, device {device}, batch {batch}, {workers} decode workers, shards of {shard}")
    print(f"  raw model throughput           {raw:8.1f} img/s")
    print(f"  cold build                     {rate:8.1f} img/s = {rate / raw:.2f} x raw  "
          f"({cold['seconds']:.1f} s in the build, {cold['wall']:.1f} s process wall, peak RSS {cold['rss_mb']:.0f} MB)")
    shutil.rmtree(cache)
    half = -(-n // shard) // 2
    first = run_index(gallery, model, out, cache, device, batch, workers, shard, kill_at_shards=half)
    resumed = run_index(gallery, model, out, cache, device, batch, workers, shard)
    assert resumed.get("count") == n and first["killed"], (first, resumed)
    total = first["wall"] + resumed["wall"]
    print(f"  killed (-9) once {half} shards were on disk, after {first['wall']:.1f} s; resumed: "
          f"{resumed['reused']} reused ({100 * resumed['reused'] / n:.0f} %), {resumed['embedded']} embedded, "
          f"{resumed['wall']:.1f} s, peak RSS {resumed['rss_mb']:.0f} MB")
    print(f"  kill + resume, both processes  {total:8.1f} s = {total / cold['wall']:.2f} x one uninterrupted run")
    cached = run_index(gallery, model, out, cache, device, batch, workers, shard)
    print(f"  cached rebuild                 {cached['wall']:8.1f} s process wall ({cached['seconds']:.1f} s build, "
          f"{cached['reused']} reused), peak RSS {cached['rss_mb']:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[12000, 100000])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--photo", action="store_true", help="also 12k photo-sized JPEGs, 0 and 1 decode workers")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lfs-gui-bench-embed"))
    args = ap.parse_args()

    import torch

    from lfs_gui.device import describe_device, resolve_device

    dev = resolve_device(args.device)
    print(f"device: {describe_device(dev)}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs" + ("" if torch.cuda.is_available() else "; no GPU on this machine"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = make_model(args.workdir / "resnet18-128-64px.pt")
    print(f"peak RSS of the imports alone: {baseline_rss(str(dev)):.0f} MB")
    for n in args.sizes:
        t = time.perf_counter()
        gal = make_gallery(args.workdir / f"gallery-{n}", n, (96, 80))
        print(f"(gallery of {n} images ready in {time.perf_counter() - t:.0f} s)")
        bench_gallery(f"{n // 1000}k", gal, n, args.workdir, model, str(dev), args.batch_size, args.workers)
    if args.photo:
        gal = make_gallery(args.workdir / "gallery-photo-12000", 12000, (500, 375), seed=1)
        for w in (0, 1):
            bench_gallery(f"12k-photo-w{w}", gal, 12000, args.workdir, model, str(dev), args.batch_size, w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
