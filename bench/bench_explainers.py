"""Time per explanation for every registered method, side by side, and the cost of one curve.

    python bench/bench_explainers.py [--repeats 3] [--rise-masks 500] [--threads 2]

Model: the demo model (``lfs_gui.models.loader.load_demo_model``) with its dense-40 decoder when
present, else a random-init torchvision resnet18 with a GAP + linear head and a random dense decoder.
Also times one full 20-step selectivity curve (chunked forwards) against 21 plain single-image
forwards, the lower bound of a step-by-step loop.
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
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from lfs_gui.explain.base import PairInput
    from lfs_gui.explain.registry import available_methods, make_explainer
    from lfs_gui.metrics.selectivity import Selectivity

    model, decoder = _models()
    g = torch.Generator().manual_seed(0)
    s = model.preprocessing.input_size
    x1 = torch.randn(1, 3, s, s, generator=g)
    x2 = x1 + 0.5 * torch.randn(1, 3, s, s, generator=g)
    import numpy as np

    gal = np.random.default_rng(0).normal(size=(50, model.dim)).astype(np.float32)
    pair = PairInput.from_tensors(model, x1, x2, xi1=0.3, gallery=gal, gallery_labels=np.arange(50) % 5, label2=1)
    print(f"model {model.name} ({s}px, dim {model.dim}), decoder {type(decoder).__name__} S={decoder.size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'method':<18} {'ms/explanation':>15} {'min ms':>8} {'resolution':>11}  cost")
    for name in available_methods(model, decoder):
        kw = {"n_masks": args.rise_masks} if name == "rise-sim" else {}
        ex = make_explainer(name, model=model, decoder=decoder, **kw)
        res = ex.explain(pair)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = ex.explain(pair)
            times.append((time.perf_counter() - t0) * 1e3)
        print(f"{name:<18} {statistics.median(times):>15.1f} {min(times):>8.1f} {res.resolution!s:>11}  {res.cost}")
    heat = np.random.default_rng(0).random((40, 40))
    for chunk in (1, 3, 7):
        sel = Selectivity(steps=20, chunk=chunk)
        sel(model, x1, x2, None, heat, True)
        t0 = time.perf_counter()
        sel(model, x1, x2, None, heat, True)
        print(f"selectivity curve, 20 steps, chunk {chunk:>2}: {(time.perf_counter() - t0) * 1e3:8.1f} ms")
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(21):
            model.embed_tensor(x2)
    print(f"21 plain single-image forwards:          {(time.perf_counter() - t0) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
