"""Does the published ExplainLFS just need more decoder data? Train decoders on growing photo sets.

    python bench/decoder_data_size.py --tuxpaint ROOT --gcompris RCC_DIR [--pairs 8] [--epochs 150]

The paper trained its decoders on 5 924–24 000 images; the demo's on 344. The demo's two Debian
sources hold more photographs than the demo uses: every Tux Paint photo stamp (all categories,
not only the demo's seven; ``cartoon``/``toys`` folders and ``_mirror`` copies left out) and every
GCompris photo listed with a licence in its folder's README. Extract the packages without
installing them (``apt-get download tuxpaint-stamps-default gcompris-qt-data; dpkg -x … DIR``)
and pass ``DIR/usr/share/tuxpaint/stamps`` and ``DIR/usr/share/gcompris-qt/rcc``.

Decoders (the paper's dense 128 → 3·40·40, as ``lfs-gui train-decoder`` trains them) are trained on
nested sets: half of the demo gallery, the gallery, the gallery + half of the extra photos, the
gallery + all of them (every set holds the evaluation pairs' images once it holds the gallery, as
the paper trains on the gallery). For each decoder the script prints the validation MSE against
the mean image, the cross-pair correlation of ExplainLFS maps over 40 query → top-1 pairs (1 = one
template for every pair), and the paired selectivity AUC difference to ``random`` (fill and noise,
similar pairs of ``lfs-gui evaluate``'s sampling, fair ties), with 95 % intervals. CPU-bounded:
one embedding pass over the extra photos, a dense decoder per set, 20-step curves.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lfs_gui.demo.build_gallery import list_resource_dir, on_white, parse_gcompris_readme, read_resource, register_rcc
from lfs_gui.explain.base import PairInput
from lfs_gui.explain.explainlfs import ExplainLFS
from lfs_gui.explain.resample import block_sums, resize_map
from lfs_gui.metrics.evaluate import sample_pairs
from lfs_gui.metrics.selectivity import Selectivity
from lfs_gui.models.train_decoder import decoder_target, iter_train_decoder
from lfs_gui.session import Session

log = logging.getLogger("decoder_data_size")


def tuxpaint_photos(root: Path) -> list[Image.Image]:
    out = []
    for p in sorted(root.rglob("*.png")):
        rel = p.relative_to(root).parts
        if "_mirror" in p.stem or {"cartoon", "toys"} & set(rel[:-1]):
            continue
        try:
            out.append(on_white(Image.open(p)))
        except OSError:
            continue
    return out


def gcompris_photos(rcc_dir: Path) -> list[Image.Image]:
    """Every image listed with a licence in a resource folder's README (GCompris' photo folders)."""
    register_rcc(rcc_dir)
    out, stack = [], [":/gcompris/src/activities"]
    while stack:
        folder = stack.pop()
        names = list_resource_dir(folder)
        readme = read_resource(f"{folder}/README") if "README" in names else None
        credits = parse_gcompris_readme(readme.decode("utf-8", "replace")) if readme else {}
        for name in names:
            path = f"{folder}/{name}"
            if "." not in name:
                stack.append(path)
            elif name.lower().endswith((".jpg", ".jpeg", ".png")) and credits.get(name, {}).get("license"):
                data = read_resource(path)
                if data:
                    try:
                        out.append(on_white(Image.open(io.BytesIO(data))))
                    except OSError:
                        pass
    return out


def ci(d: np.ndarray) -> tuple[float, float]:
    d = np.asarray(d, float)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tuxpaint", type=Path, required=True)
    ap.add_argument("--gcompris", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=8, help="similar pairs for the selectivity curves")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--cache", type=Path, default=None, help="npz file to keep the extra photos' embeddings and targets in")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    s = Session.open_demo()
    m = s.model
    t0 = time.perf_counter()
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache) as z:
            h_extra, x_extra, n_dup = z["h"], z["x"], int(z["dup"])
    else:
        extra = tuxpaint_photos(args.tuxpaint) + gcompris_photos(args.gcompris)
        h_extra = m.embed_images(extra, batch_size=16)
        # photos already in the demo gallery come back as near-duplicates: drop them from the extras
        dup = (h_extra @ s.embeddings.T).max(1) > 0.995
        h_extra, n_dup = h_extra[~dup], int(dup.sum())
        x_extra = np.stack([decoder_target(im, m.preprocessing, 40) for im, d in zip(extra, dup) if not d])
        if args.cache is not None:
            np.savez(args.cache, h=h_extra, x=x_extra, dup=n_dup)
    x_gal = np.stack([decoder_target(Image.open(s.image_path(i)).convert("RGB"), m.preprocessing, 40) for i in range(len(s.gallery))])
    print(f"{len(h_extra)} extra photos ({n_dup} duplicates of the gallery dropped); embedded in {time.perf_counter() - t0:.0f} s")
    rng = np.random.default_rng(0)
    gal_perm, ext_perm = rng.permutation(len(x_gal)), rng.permutation(len(x_extra))
    sets = {"half gallery": (gal_perm[: len(x_gal) // 2], []), "gallery": (gal_perm, []),
            "gallery + half extra": (gal_perm, ext_perm[: len(ext_perm) // 2]), "gallery + all extra": (gal_perm, ext_perm)}
    lab = np.array([-1 if s.label_of(i) is None else s.label_of(i) for i in range(len(s.gallery))])
    xi1 = s.suggested_xi1()
    pairs = [p for p in sample_pairs(s.embeddings, lab, args.pairs, xi1, 0) if p.similar][: args.pairs]
    qrng = np.random.default_rng(1)
    top1 = [(q, s.retrieve(q, k=1).similar[0].id) for q in (int(v) for v in qrng.integers(len(s.gallery), size=40))]
    sels = {p: Selectivity(perturbation=p) for p in ("fill", "noise")}
    tensors = {k: s.input_tensor(k) for p in pairs for k in (p.i, p.j)}
    random_auc = {}
    for pname, sel in sels.items():
        for n, p in enumerate(pairs):
            sel.seed = n
            rnd = np.random.default_rng([0, n]).random((40, 40)).astype(np.float32)
            random_auc[pname, n] = sel(m, tensors[p.i], tensors[p.j], rnd, rnd, True).auc
    print(f"{len(pairs)} similar pairs, xi1 {xi1:.3f}; dense 40-px decoders, {args.epochs} epochs")
    print("| training set | images | val MSE (mean image) | map corr. across pairs | fill: AUC − random | noise: AUC − random |")
    print("|---|---|---|---|---|---|")
    for name, (gi, ei) in sets.items():
        h = np.concatenate([s.embeddings[gi], h_extra[ei]]) if len(ei) else s.embeddings[gi]
        x = np.concatenate([x_gal[gi], x_extra[ei]]) if len(ei) else x_gal[gi]
        gen = iter_train_decoder(h, x, kind="dense", epochs=args.epochs, seed=0)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            res = stop.value
        dec = res.decoder.eval()
        val = res.final_val_mse
        mean_mse = float(((x - x.mean(0)) ** 2).mean())
        ex = ExplainLFS(dec, xi1=xi1)
        maps = np.array([resize_map(ex.explain(s.embeddings[q], s.embeddings[t]).heat2, 40).ravel() for q, t in top1])
        c = np.corrcoef(maps)
        corr = float(c[np.triu_indices(len(maps), 1)].mean())
        cells = {}
        for pname, sel in sels.items():
            diffs = []
            for n, p in enumerate(pairs):
                sel.seed = n
                x1, x2 = tensors[p.i], tensors[p.j]
                hp = ex.explain(s.embeddings[p.i], s.embeddings[p.j])
                diffs.append(sel(m, x1, x2, hp.heat1, hp.heat2, True).auc - random_auc[pname, n])
            cells[pname] = ci(np.array(diffs))
        print(f"| {name} | {len(h)} | {val:.4f} ({mean_mse:.4f}) | {corr:.2f} | {cells['fill'][0]:+.3f} ± {cells['fill'][1]:.3f} "
              f"| {cells['noise'][0]:+.3f} ± {cells['noise'][1]:.3f} |", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
