"""GPU against CPU, in one prepared run: embeddings, a selectivity curve's AUC, embedding throughput.

    python bench/gpu_check.py [--model FILE] [--arch resnet50] [--images 64] [--gpu-images 2048] [--json OUT]

CPU results are the reference (issue 9 §2). For every accelerator in ``available_devices()`` it checks

1. embeddings of the same images: cosine to the CPU's > 0.999 (float32), and with ``--amp``-style
   mixed precision (reported; > 0.99 expected);
2. one 20-step pixel-flipping curve (``lfs_gui.metrics.selectivity.Selectivity``) of the same pair
   and heat map: |AUC − CPU AUC| < 1e-3;
3. embedding throughput (images/s, preprocessed batches, model forward only) at the device's default
   batch size, float32 and mixed precision, against the CPU's in the same run.

Without a GPU it runs the CPU parts and says "no GPU". The model is ``--model FILE`` (any format
``lfs-gui`` loads; trusted only with ``--trust-checkpoint``) or, by default, a torchvision ``--arch``
backbone with a 128-d head and random weights (seeded; batch-norm statistics randomised so images
embed apart), written to a temp file and loaded back, so the loader's ``device=`` path is exercised.
Needs only torch, torchvision, numpy and Pillow (no faiss, no Qt). Exit code 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from lfs_gui.device import available_devices, batch_defaults, describe_device, is_accelerator  # noqa: E402
from lfs_gui.models.loader import load_model  # noqa: E402

log = logging.getLogger("gpu_check")


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(180, 320)), int(rng.integers(180, 320))
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * rng.uniform(80, 220, 3)
        arr = base + rng.normal(0, 25, (h, w, 3)) + rng.uniform(0, 60, 3)
        cy, cx, r = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, rng.uniform(20, 60)
        arr[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        out.append(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB"))
    return out


def _default_model_file(folder: Path, arch: str) -> Path:
    from lfs_gui.models.torchvision_models import build_torchvision_embedder, save_torchvision_head

    torch.manual_seed(0)
    model = build_torchvision_embedder(arch, 128)
    g = torch.Generator().manual_seed(0)
    for m in model.module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    path = folder / f"{arch}-random.pt"
    save_torchvision_head(path, model)
    return path


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _throughput(model: Any, x: torch.Tensor, batch: int, amp: bool, seconds: float = 3.0) -> float:
    """Images per second of ``model.embed_batch`` over the preprocessed ``x`` (warm-up excluded)."""
    dev = model.device
    xs = x.to(dev) if is_accelerator(dev) else x  # what a loader would stream; the copy is timed on CPU
    model.embed_batch(xs[:batch], amp=amp)  # warm-up (cuDNN autotune, allocations)
    done, t0 = 0, time.perf_counter()
    while True:
        for i in range(0, len(xs), batch):
            model.embed_batch(xs[i : i + batch], amp=amp)
            done += len(xs[i : i + batch])
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if time.perf_counter() - t0 >= seconds:
            return done / (time.perf_counter() - t0)


def _curve_auc(model: Any, x1: torch.Tensor, x2: torch.Tensor, heat: np.ndarray) -> float:
    """AUC of one 20-step deletion curve (similar-pair form) with the metrics API, on the model's device."""
    from lfs_gui.metrics.selectivity import Selectivity

    sel = Selectivity(steps=20, chunk=batch_defaults(model.device).curve_chunk, seed=0)
    errors = []
    for where in (model.device, torch.device("cpu")):  # inputs on the device first, then as the caller's CPU tensors
        try:
            return float(sel(model, x1.to(where), x2.to(where), heat, heat, True).auc)
        except Exception as exc:  # noqa: BLE001 - report, do not crash the whole check
            errors.append(f"inputs on {where}: {type(exc).__name__}: {exc}")
    raise RuntimeError("; ".join(errors))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default: random torchvision --arch + 128-d head)")
    ap.add_argument("--arch", default="resnet50", help="backbone of the default model (resnet50)")
    ap.add_argument("--trust-checkpoint", action="store_true")
    ap.add_argument("--images", type=int, default=64, help="images for the comparisons and the CPU timing (64)")
    ap.add_argument("--gpu-images", type=int, default=2048, help="preprocessed images per GPU timing pass (2048)")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum seconds per throughput figure (3)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(0)
    res: dict[str, Any] = {"torch": torch.__version__, "cuda_build": torch.version.cuda,
                           "devices": available_devices(), "checks": {}, "ok": True}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else _default_model_file(Path(tmp), args.arch)
        cpu = load_model(path, trust_checkpoint=args.trust_checkpoint, device="cpu")
        res["model"] = cpu.name
        images = _images(max(args.images, 2))
        x = torch.stack([cpu.preprocessing.to_tensor(im) for im in images])
        ref = cpu.embed_images(images, batch_size=batch_defaults("cpu").embed)
        heat = np.outer(np.hanning(40), np.hanning(40)) + 0.05 * np.random.default_rng(1).random((40, 40))
        auc_cpu = _curve_auc(cpu, x[:1], x[1:2], heat)
        cpu_ips = _throughput(cpu, x, batch_defaults("cpu").embed, False, args.seconds)
        res["cpu"] = {"auc": auc_cpu, "images_per_s": cpu_ips, "threads": torch.get_num_threads()}
        print(f"torch {torch.__version__} (CUDA build {torch.version.cuda or 'none'}); devices: {', '.join(available_devices())}")
        print(f"model {cpu.name} ({path.name}); CPU: {cpu_ips:.1f} images/s ({torch.get_num_threads()} threads), "
              f"curve AUC {auc_cpu:.6f}")
        accels = [d for d in available_devices() if is_accelerator(d)]
        if not accels:
            print("no GPU: only the CPU reference was measured")
            res["note"] = "no GPU"
        for spec in accels:
            r: dict[str, Any] = {"name": describe_device(spec)}
            res["checks"][spec] = r
            model = load_model(path, trust_checkpoint=args.trust_checkpoint, device=spec)
            bs = batch_defaults(model.device).embed
            r["cosine_min"] = float(_cosines(model.embed_images(images, batch_size=bs), ref).min())
            r["cosine_min_amp"] = float(_cosines(model.embed_images(images, batch_size=bs, amp=True), ref).min())
            r["embeddings_ok"] = r["cosine_min"] > 0.999
            try:
                r["auc"] = _curve_auc(model, x[:1], x[1:2], heat)
                r["auc_diff"] = abs(r["auc"] - auc_cpu)
                r["auc_ok"] = r["auc_diff"] < 1e-3
            except RuntimeError as exc:
                r["auc_error"], r["auc_ok"] = str(exc)[:500], False
            reps = max(1, args.gpu_images // len(x))
            xg = x.repeat(reps, 1, 1, 1)
            r["images_per_s"] = _throughput(model, xg, bs, False, args.seconds)
            r["images_per_s_amp"] = _throughput(model, xg, bs, True, args.seconds)
            r["speedup_vs_cpu"] = r["images_per_s"] / cpu_ips
            res["ok"] = res["ok"] and r["embeddings_ok"] and r["auc_ok"]
            print(f"{r['name']}: embeddings cosine to CPU min {r['cosine_min']:.6f} "
                  f"({'OK' if r['embeddings_ok'] else 'FAIL'} > 0.999), mixed precision {r['cosine_min_amp']:.5f}")
            print("  curve AUC " + (f"{r['auc']:.6f}, |diff| {r['auc_diff']:.2e} ({'OK' if r['auc_ok'] else 'FAIL'} < 1e-3)"
                                    if "auc" in r else f"FAILED: {r['auc_error']}"))
            print(f"  throughput {r['images_per_s']:.0f} images/s float32, {r['images_per_s_amp']:.0f} mixed precision "
                  f"(batch {bs}) = {r['speedup_vs_cpu']:.1f}x the CPU's {cpu_ips:.1f}")
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    print("all checks passed" if res["ok"] else "SOME CHECKS FAILED")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
