"""Why a heat map wins or loses: is it a per-pair map, and does it sit on the object?

    python bench/diagnose_maps.py [--pairs 40] [--decoder models/demo/decoder_conv64.pt]

On the embedded demo, for query → top retrieval pairs, prints per method:

* the mean Pearson correlation of the test-image maps *across unrelated pairs* (a map that is the
  same template for every pair scores near 1; per-pair maps near 0);
* the fraction of heat mass on the object for the Tux Paint cut-outs (objects on white: the
  object's pixels are known), next to the object's area (what a uniform map would give);
* for ExplainLFS, the correlation of the two maps of one pair (FINDINGS: identical for a linear
  decoder), and ‖R·p‖ against ‖h‖ = 1 (the scale problem of p = 0.3).
"""

from __future__ import annotations

import argparse

import numpy as np

from lfs_gui.data.images import open_image
from lfs_gui.explain.explainlfs import relevance
from lfs_gui.explain.resample import resize_map
from lfs_gui.models.decoder import load_decoder
from lfs_gui.models.train_decoder import decoder_target
from lfs_gui.session import Session


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--decoder", help="decoder file (default: the demo's dense 40-px one)")
    ap.add_argument("--methods", nargs="+", default=["explainlfs", "explainlfs-jvp", "explainlfs-rel", "grad-sim", "random"])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    s = Session.open_demo()
    if args.decoder:
        s.set_decoder(load_decoder(args.decoder, expected_dim=s.dim), args.decoder)
    print(f"decoder: {args.decoder or 'demo dense 40 px'}; {args.pairs} query → top-1 pairs")
    rng = np.random.default_rng(args.seed)
    pairs = []
    for _ in range(args.pairs):
        q = int(rng.integers(len(s.gallery)))
        pairs.append((q, s.retrieve(q, k=1).similar[0].id))
    for method in args.methods:
        maps, on_object = [], []
        for q, t in pairs:
            heat = resize_map(s.explain(q, t, method).heat2, 40)
            maps.append(heat.ravel())
            path = s.gallery.items[t].path
            if path.name.startswith("tuxpaint-"):  # cut-outs on white: object = non-white pixels
                view = decoder_target(open_image(path), s.preprocessing, 40)
                fg = view.min(axis=0) < 0.95
                on_object.append((heat[fg].sum() / max(heat.sum(), 1e-9), fg.mean()))
        corr = np.corrcoef(np.array(maps))
        across = corr[np.triu_indices(len(maps), 1)].mean()
        obj = np.array(on_object)
        print(f"{method:16s} corr across pairs {across:5.2f}   heat on object {obj[:, 0].mean():.2f} "
              f"(object area {obj[:, 1].mean():.2f}, {len(obj)} cut-outs)")
    within = [np.corrcoef(e.heat1.ravel(), e.heat2.ravel())[0, 1] for e in (s.explain(q, t) for q, t in pairs)]
    print(f"explainlfs: corr(heat1, heat2) within a pair {np.mean(within):.3f}")
    q, t = pairs[0]
    r = relevance(s.embeddings[q], s.embeddings[t], True)
    print(f"explainlfs: ||R·p|| at p = 0.3 is {np.linalg.norm(r * 0.3):.2f} against ||h|| = 1; "
          f"{(r > 0.8).mean() * 100:.0f}% of R above 0.8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
