"""Time ``lfs-gui index`` against the raw model throughput, its peak memory and the cost of resuming.

On generated galleries (12 000 images, CUB-sized, and 100 000), each ``lfs-gui index`` run is a real
subprocess (the CLI as a user runs it, ``--no-decoder``: embedding is what is measured), timed with
``os.wait4`` for its peak resident memory. Printed per gallery:

* **cold**: nothing cached; images/s of the build (the report's seconds: listing, stat, cache lookup,
  decoding, forwards, shard writes, assembling ``embeddings.npy``, index, save) against the **raw
  model throughput** measured in this process on the same device before and after: forwards of
  already-decoded batches (``model.embed_tensor`` under ``inference_mode``, same batch size). Goal:
  ratio >= 0.9. Both also per CPU-second (the build's process CPU time minus that of the imports
  alone), which other jobs on a shared machine disturb much less than wall time. Process wall time
  (with Python/torch start-up) and peak RSS next to it.
* **killed at 50 %**: the same build, ``SIGKILL``-ed from outside once half of its images are in the
  cache's shards,
  then the same command again: the resumed run's time, what it reused, and the total against one
  uninterrupted build (the cost of the kill: at most one shard of lost work + one extra start-up).
* **cached**: the same command once more (everything reused): what a rebuild costs.

Model: ResNet-18 (random weights, 128-d head, 32x32 input) in lfs-gui's torchvision head-file
format. Images: 64x48 JPEGs (noise + shapes). Both are chosen so that the whole bench (~340k images
embedded in all) needs about 30 CPU-minutes on the 2 shared cores of the reference machine: at 224 px
a ResNet-50 is ~200x slower (a CUB-sized build alone would take hours here). A small model is the
hard case for the ratio: the pipeline's own work (decoding, caching) weighs more against a cheap forward.
``--realistic N`` (default 300) adds the CUB-like case: ResNet-50 at 224 px on N 500x375 JPEGs, where
the forward dwarfs decoding (cold build vs raw only; 300 images keep it to a few minutes).

    nice -n 10 .venv/bin/python bench/bench_embed.py [--sizes 12000 100000] [--device auto] [--realistic 300] [--threads 1]

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

DEFAULT_ROWS = 4096  # lfs_gui.data.shards.DEFAULT_SHARD_ROWS
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


def make_model(path: Path, arch: str = "resnet18", dim: int = 128, size: int = 64, resize: int = 72) -> Path:
    import torch

    from lfs_gui.models.base import Preprocessing
    from lfs_gui.models.torchvision_models import build_torchvision_embedder, save_torchvision_head

    if not path.is_file():
        torch.manual_seed(0)
        save_torchvision_head(path, build_torchvision_embedder(arch, dim, Preprocessing(input_size=size, resize=resize)))
    return path


def raw_throughput(model_file: Path, device: str, batch: int, seconds: float = 12.0) -> tuple[float, float]:
    """Images per wall second and per CPU second (all threads) of the bare forward on already-decoded
    batches: the floor any pipeline is held to."""
    import torch

    from lfs_gui.device import resolve_device
    from lfs_gui.models.loader import load_model

    model = load_model(model_file)
    dev = resolve_device(device)
    model.to(dev)
    side = model.preprocessing.input_size
    x = torch.randn(batch, 3, side, side)
    n = 0
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            model.embed_tensor(x.to(dev)).float().cpu()
        t0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds:
            model.embed_tensor(x.to(dev)).float().cpu().numpy()
            n += batch
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def decode_rate(gallery: Path, model_file: Path, n: int = 1000) -> float:
    """Images per CPU-second of decoding alone (``load_rgb`` + ``Preprocessing.to_tensor``, what the
    loader does per image): with the raw forward it bounds what any pipeline can reach per CPU-second."""
    from lfs_gui.data.images import load_rgb
    from lfs_gui.models.loader import load_model

    pre = load_model(model_file).preprocessing
    files = sorted(gallery.glob("*.jpg"))[:n]
    c0 = time.process_time()
    for f in files:
        pre.to_tensor(load_rgb(f))
    return len(files) / (time.process_time() - c0)


def rows_on_disk(cache: Path, seen: dict[Path, int]) -> int:
    """Images in the finished shards under ``cache`` (each shard is renamed into place complete; its row
    count is read once from the parquet footer). Shards are also cut every 60 s, so on a loaded
    machine they hold fewer rows than ``--shard-size``: counting files would not find 50 %."""
    import pyarrow.parquet as pq

    for f in cache.glob("*/shard-*.parquet"):
        if f not in seen:
            seen[f] = pq.ParquetFile(f).metadata.num_rows
    return sum(seen.values())


def run_index(gallery: Path, model: Path, out: Path, cache: Path, device: str, batch: int, workers: int,
              shard: int, kill_at_rows: int | None = None) -> dict:
    """One ``lfs-gui index`` subprocess; returns its report + wall seconds, CPU seconds, peak RSS (MB).
    ``kill_at_rows``: ``SIGKILL`` it once that many images are in the cache's shards."""
    cmd = [sys.executable, "-m", "lfs_gui", "index", str(gallery), "--model", str(model), "--out", str(out),
           "--cache-dir", str(cache), "--no-decoder", "--device", device, "--batch-size", str(batch),
           "--workers", str(workers), "--shard-size", str(shard), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    report = out.parent / f".{out.name}.report.json"
    t0 = time.perf_counter()
    with open(report, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL, env=env)
    killed, seen = False, {}
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if kill_at_rows is not None and not killed and rows_on_disk(cache, seen) >= kill_at_rows:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    text = report.read_text()
    report.unlink()
    rep = json.loads(text) if proc.returncode == 0 and text else {}
    return {**rep, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "killed": killed, "rc": proc.returncode}


def baseline(device: str) -> tuple[float, float]:
    """Peak RSS (MB) and CPU seconds of a process that only imports what ``lfs-gui index`` imports and
    loads nothing: the floor under every figure below (a CUDA build of torch maps ~0.7 GB at import)."""
    code = ("import torch, torchvision, faiss, pyarrow.parquet, lfs_gui.build, lfs_gui.models.loader, lfs_gui.cli; "
            f"from lfs_gui.device import resolve_device; resolve_device({device!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def bench_gallery(name: str, gallery: Path, n: int, work: Path, model: Path, device: str, batch: int,
                  workers: int, base_cpu: float) -> None:
    from lfs_gui.data.shards import DEFAULT_SHARD_ROWS

    raw_wall, raw_cpu = raw_throughput(model, device, batch)
    cache, out = work / f"cache-{name}", work / f"index-{name}"
    shard = min(DEFAULT_SHARD_ROWS, max(batch, n // 20 // batch * batch))  # >= 20 shards: a kill lands near 50 %
    shutil.rmtree(cache, ignore_errors=True)
    cold = run_index(gallery, model, out, cache, device, batch, workers, shard)
    assert cold.get("count") == n, cold
    raw_wall2, raw_cpu2 = raw_throughput(model, device, batch)
    raw_wall, raw_cpu = (raw_wall + raw_wall2) / 2, (raw_cpu + raw_cpu2) / 2
    rate = n / cold["seconds"]
    cpu_rate = n / max(1e-9, cold["cpu"] - base_cpu)
    dec = decode_rate(gallery, model)
    floor = 1 / (1 / raw_cpu + 1 / dec)  # decode + forward, nothing else
    print(f"\n{name}: {n} images, device {device}, batch {batch}, {workers} decode workers, shards of {shard}")
    print(f"  raw model throughput           {raw_wall:8.1f} img/s wall, {raw_cpu:8.1f} img per CPU-s "
          f"(before/after the build: {raw_wall2:.1f} vs the mean)")
    print(f"  cold build                     {rate:8.1f} img/s wall = {rate / raw_wall:.2f} x raw; "
          f"{cpu_rate:.1f} img per CPU-s = {cpu_rate / raw_cpu:.2f} x raw")
    print(f"                                 ({cold['seconds']:.1f} s in the build, {cold['wall']:.1f} s process wall, "
          f"peak RSS {cold['rss_mb']:.0f} MB)")
    print(f"  decoding alone                 {dec:8.1f} img per CPU-s; decode + forward {floor:.1f} img per CPU-s: "
          f"the build reaches {cpu_rate / floor:.2f} of it (the rest is the cache, the loader and the save)")
    shutil.rmtree(cache)
    half = n // 2
    first = run_index(gallery, model, out, cache, device, batch, workers, shard, kill_at_rows=half)
    resumed = run_index(gallery, model, out, cache, device, batch, workers, shard)
    assert resumed.get("count") == n and first["killed"], (first, resumed)
    total = first["wall"] + resumed["wall"]
    print(f"  killed (-9) once {half} images were in the cache, after {first['wall']:.1f} s; resumed: "
          f"{resumed['reused']} reused ({100 * resumed['reused'] / n:.0f} %), {resumed['embedded']} embedded, "
          f"{resumed['wall']:.1f} s, peak RSS {resumed['rss_mb']:.0f} MB")
    print(f"  kill + resume, both processes  {total:8.1f} s wall = {total / cold['wall']:.2f} x one uninterrupted run; "
          f"CPU {first['cpu'] + resumed['cpu']:.0f} s vs {cold['cpu']:.0f} s")
    cached = run_index(gallery, model, out, cache, device, batch, workers, shard)
    print(f"  cached rebuild                 {cached['wall']:8.1f} s process wall ({cached['seconds']:.1f} s build, "
          f"{cached['reused']} reused), peak RSS {cached['rss_mb']:.0f} MB")


def bench_realistic(n: int, work: Path, device: str, batch: int, workers: int, base_cpu: float) -> None:
    """A CUB-like case: ResNet-50, 512-d, 224 px, on ``n`` 500x375 JPEGs (cold build vs raw only)."""
    model = make_model(work / "resnet50-512-224px.pt", "resnet50", 512, 224, 256)
    gal = make_gallery(work / f"gallery-photo-{n}", n, (500, 375), seed=1)
    raw_wall, raw_cpu = raw_throughput(model, device, batch, seconds=20.0)
    out, cache = work / "index-photo", work / "cache-photo"
    shutil.rmtree(cache, ignore_errors=True)
    cold = run_index(gal, model, out, cache, device, batch, workers, DEFAULT_ROWS)
    assert cold.get("count") == n, cold
    rate, cpu_rate = n / cold["seconds"], n / max(1e-9, cold["cpu"] - base_cpu)
    dec = decode_rate(gal, model, n)
    print(f"\nCUB-like: {n} photos 500x375, ResNet-50 512-d at 224 px, batch {batch}, {workers} decode workers")
    print(f"  raw model throughput           {raw_wall:8.1f} img/s wall, {raw_cpu:8.1f} img per CPU-s")
    print(f"  cold build                     {rate:8.1f} img/s wall = {rate / raw_wall:.2f} x raw; "
          f"{cpu_rate:.1f} img per CPU-s = {cpu_rate / raw_cpu:.2f} x raw; peak RSS {cold['rss_mb']:.0f} MB")
    print(f"  decoding alone                 {dec:8.1f} img per CPU-s (decode + forward: "
          f"{1 / (1 / raw_cpu + 1 / dec):.1f} img per CPU-s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[12000, 100000])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1, help="decode worker processes of the builds (default 1)")
    ap.add_argument("--realistic", type=int, default=300, metavar="N",
                    help="also N CUB-sized photos with ResNet-50 at 224 px, cold build vs raw (default 300; 0: skip)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lfs-gui-bench-embed"))
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads here and in the builds (default 1: idle OpenMP threads spin, so with "
                         "more, CPU time and wall time on a shared machine measure the neighbours; 0 = torch's default)")
    args = ap.parse_args()
    if args.threads > 0:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # the builds inherit it

    import torch

    from lfs_gui.device import describe_device, resolve_device

    dev = resolve_device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"device: {describe_device(dev)}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs" + ("" if torch.cuda.is_available() else "; no GPU on this machine"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = make_model(args.workdir / "resnet18-128-64px.pt")
    base_rss, base_cpu = baseline(str(dev))
    print(f"the imports alone: peak RSS {base_rss:.0f} MB, {base_cpu:.1f} CPU-s (subtracted from the build's CPU)")
    print(f"load average now: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    for n in args.sizes:
        t = time.perf_counter()
        gal = make_gallery(args.workdir / f"gallery-{n}", n, (96, 80))
        print(f"(gallery of {n} images ready in {time.perf_counter() - t:.0f} s)")
        bench_gallery(f"{n // 1000}k", gal, n, args.workdir, model, str(dev), args.batch_size, args.workers, base_cpu)
    if args.realistic:
        bench_realistic(args.realistic, args.workdir, str(dev), args.batch_size, args.workers, base_cpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
