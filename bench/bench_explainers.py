"""Cost of every registered method, of a curve and of the greedy oracle, as multiples of one model forward.

    python bench/bench_explainers.py [--repeats 3] [--rise-masks 500] [--threads 2] [--device auto] [--no-oracle]

Model: the demo model (``lfs_gui.models.loader.load_demo_model``) with its dense-40 decoder when
present, else a random-init torchvision resnet18 with a GAP + linear head and a random dense decoder.
The floor is one single-image forward of the model, measured in the same run (median of 21); every
figure is printed in ms and as a multiple of it ("× fwd"), so it can be read on any machine. Also
times one 20-step selectivity curve (chunked forwards) against 21 plain forwards, the greedy oracle
for one similar pair (1 090 candidate forwards, batched), and the estimated cost of one pair in
``lfs-gui evaluate`` at defaults (every method, its curves under one perturbation, both orders).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

log = logging.getLogger("bench_explainers")


def _models():
    from lfs_gui.models.decoder import DenseDecoder, load_decoder

    try:
        from lfs_gui.models.loader import demo_model_path, load_demo_model

        model = load_demo_model()
        dec_path = demo_model_path().parent / "decoder_dense40.pt"
        decoder = load_decoder(dec_path, expected_dim=model.dim) if dec_path.is_file() else DenseDecoder(model.dim, 40).eval()
        return model, decoder
    except Exception as exc:  # noqa: BLE001 - fall back to a random backbone
        log.warning("demo model unavailable (%s); using a random resnet18", exc)
    import torchvision

    from lfs_gui.models.base import EmbeddingModel, Preprocessing, global_avg_pool

    net = torchvision.models.resnet18(weights=None)
    net.fc = torch.nn.Linear(512, 128)
    net.eval().requires_grad_(False)

    class R18(EmbeddingModel):
        def forward_features(self, x):
            m = self.module
            x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            return m.layer4(m.layer3(m.layer2(m.layer1(x))))

        def forward_head(self, f):
            return self.module.fc(global_avg_pool(f))

        def linear_head(self):
            return self.module.fc.weight, self.module.fc.bias

    return R18(module=net, dim=128, preprocessing=Preprocessing(), name="resnet18-random"), DenseDecoder(128, 40).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rise-masks", type=int, default=500)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    ap.add_argument("--no-oracle", action="store_true", help="skip the oracle (the longest part)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from lfs_gui.explain.base import PairInput
    from lfs_gui.explain.registry import available_methods, make_explainer
    from lfs_gui.metrics.selectivity import Selectivity

    from lfs_gui.device import batch_defaults, describe_device, resolve_device
    from lfs_gui.metrics.oracle import Oracle

    device = resolve_device(args.device)
    model, decoder = _models()
    model.to(device)
    decoder.to(device)
    g = torch.Generator().manual_seed(0)
    s = model.preprocessing.input_size
    x1 = torch.randn(1, 3, s, s, generator=g)
    x2 = x1 + 0.5 * torch.randn(1, 3, s, s, generator=g)
    import numpy as np

    def timed(fn, repeats: int) -> float:
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    xd = x2.to(device)
    with torch.inference_mode():
        fwd = timed(lambda: model.embed_tensor(xd), 21)
        per_img = {b: timed(lambda b=b: model.embed_tensor(xd.expand(b, -1, -1, -1).contiguous()), 5) / b for b in (1, 4, 16, 64)}
    print(f"model {model.name} ({s}px, dim {model.dim}) on {describe_device(device)}, decoder {type(decoder).__name__} "
          f"S={decoder.size}, torch threads {torch.get_num_threads()}, batches {batch_defaults(device)}")
    print(f"one forward (1 image): {fwd:.1f} ms = 1 × fwd; per image in a batch of " +
          ", ".join(f"{b}: {v:.1f} ms ({v / fwd:.2f} × fwd)" for b, v in per_img.items()))

    gal = np.random.default_rng(0).normal(size=(50, model.dim)).astype(np.float32)
    pair = PairInput.from_tensors(model, x1, x2, xi1=0.3, gallery=gal, gallery_labels=np.arange(50) % 5, label2=1)
    print(f"{'method':<18} {'ms/explanation':>15} {'× fwd':>8} {'resolution':>11}  declared cost")
    cost_ms: dict[str, float] = {}
    for name in available_methods(model, decoder):
        kw = {"n_masks": args.rise_masks} if name == "rise-sim" else {}
        ex = make_explainer(name, model=model, decoder=decoder, **kw)
        res = ex.explain(pair)
        ms = timed(lambda ex=ex: ex.explain(pair), args.repeats if name != "rise-sim" else 1)
        cost_ms[name] = ms
        print(f"{name:<18} {ms:>15.1f} {ms / fwd:>8.1f} {res.resolution!s:>11}  {res.cost}")
    for b in sorted({2, 4, batch_defaults(device).rise_masks}):  # masks per forward batch (2 images each)
        ex = make_explainer("rise-sim", model=model, n_masks=64, batch=b)
        ms = timed(lambda ex=ex: ex.explain(pair), 1)
        print(f"rise-sim, 64 masks, batch {b:>3}: {ms:8.1f} ms = {ms / fwd / 128:5.2f} × fwd per masked image")
    heat = np.random.default_rng(0).random((40, 40))
    curve_ms = {}
    for chunk in sorted({1, 3, 7, batch_defaults(device).curve_chunk}):
        sel = Selectivity(steps=20, chunk=chunk)
        curve_ms[chunk] = timed(lambda sel=sel: sel(model, x1, x2, None, heat, True), 2)
        print(f"selectivity curve, 20 steps, chunk {chunk:>2}: {curve_ms[chunk]:8.1f} ms = {curve_ms[chunk] / fwd:5.1f} × fwd "
              "(floor: 21 × fwd)")
    best_curve = min(curve_ms.values())
    if not args.no_oracle:
        for b in sorted({4, batch_defaults(device).oracle}):
            oracle = Oracle(Selectivity(steps=20, perturbation="fill"), cache=None, batch=b)
            t0 = time.perf_counter()
            oracle(model, x1, x2, True)
            ms = (time.perf_counter() - t0) * 1e3
            print(f"greedy oracle, one similar pair (20 steps, {oracle.forwards(True)} candidate forwards, batch {b}): "
                  f"{ms / 1e3:.1f} s = {ms / fwd:.0f} × fwd; a dissimilar pair costs twice that")
    # one pair of `lfs-gui evaluate` at defaults: every method + 2 curves (morf, lerf) per perturbation
    per_pair = sum(cost_ms.values()) + 2 * len(cost_ms) * best_curve
    print(f"evaluate, one pair at defaults (every method, one perturbation, both orders): ≈ {per_pair / 1e3:.1f} s "
          f"= {per_pair / fwd:.0f} × fwd; 10 + 10 pairs ≈ {20 * per_pair / 6e4:.1f} min (dissimilar curves cost 2×)")


if __name__ == "__main__":
    main()
