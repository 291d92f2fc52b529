"""Can the effect of perturbing a *set* of cells be predicted in latent space? (issue 11, measured: no)

    python bench/latent_prediction.py [--pairs 4] [--sets 12] [--perturbation fill]

The hypothesis behind a cheap latent-space greedy: for a GAP + affine-head model the embedding is
e = W·mean_i f(i) + b, so if perturbing cells only moved each feature location i towards the
perturbation image's own feature f_p(i), in proportion to the share a_i(S) of its footprint that
the cells S cover, then e(S) = e + Σ_{c∈S} d(c), d(c) = (1/n) Σ_i K(i, c) W (f_p(i) − f(i)), and
any set's similarity (renormalisation included) would follow from one forward per image plus one
of the perturbation image. That is exact for a model whose locations see only their own patch
(checked here on such a model), so the greedy of the protocol's oracle could run in latent space.

On the demo model (EfficientNet-Lite0, 7×7 features, receptive fields far wider than a cell) the
script measures, for similar pairs of ``lfs-gui evaluate``'s sampling (test image perturbed), the
Pearson correlation between predicted and real changes of the cosine over random cell sets of
1, 4, 10 and 20 cells, for

* ``mixing``: the feature-mixing prediction above (stride-box footprints, 3 forwards per pair);
* ``additive``: the sum of the *real* single-cell changes of the unnormalised embedding
  (64 forwards per pair), renormalised — what any additive model of the cells can do at best.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.explain.resample import block_edges
from lfs_gui.metrics.evaluate import sample_pairs
from lfs_gui.metrics.perturbations import make_perturbation
from lfs_gui.session import Session


def coverage(n_loc: int, grid: int, n_px: int) -> np.ndarray:
    """K (n_loc², grid²): share of each location's stride box in each cell (rows sum to 1)."""
    stride = n_px / n_loc
    px = np.arange(n_px) + 0.5
    w = (np.floor(px[None] / stride) == np.arange(n_loc)[:, None]).astype(float)
    w /= w.sum(1, keepdims=True)
    cell = np.searchsorted(block_edges(n_px, grid)[1:], np.arange(n_px), side="right")
    a = np.stack([w[:, cell == g].sum(1) for g in range(grid)], axis=1)
    return np.einsum("ac,bd->abcd", a, a).reshape(n_loc * n_loc, grid * grid)


def cell_masks(cells_list: list[list[int]], grid: int, size: int) -> torch.Tensor:
    e = block_edges(size, grid)
    out = torch.zeros(len(cells_list), 1, size, size, dtype=torch.bool)
    for k, cells in enumerate(cells_list):
        for c in cells:
            i, j = divmod(c, grid)
            out[k, 0, e[i] : e[i + 1], e[j] : e[j + 1]] = True
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--sets", type=int, default=12, help="random cell sets per size and pair")
    ap.add_argument("--perturbation", default="fill", choices=["fill", "noise"])
    args = ap.parse_args()
    torch.set_num_threads(2)
    s = Session.open_demo()
    m = s.model
    w, b = (t.detach().double() for t in m.linear_head())
    lab = np.array([-1 if s.label_of(i) is None else s.label_of(i) for i in range(len(s.gallery))])
    pairs = [p for p in sample_pairs(s.embeddings, lab, args.pairs, s.suggested_xi1(), 0) if p.similar][: args.pairs]
    size, grid = m.preprocessing.input_size, 8
    rng = np.random.default_rng(0)
    sizes = (1, 4, 10, 20)
    real, mix, add = {k: [] for k in sizes}, {k: [] for k in sizes}, {k: [] for k in sizes}

    def head(f: torch.Tensor) -> torch.Tensor:
        return torch.einsum("dc,bchw->bhwd", w, f.double()).flatten(1, 2)  # (B, n_loc, dim)

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    for n, p in enumerate(pairs):
        x1, x2 = s.input_tensor(p.i), s.input_tensor(p.j)
        src = make_perturbation(args.perturbation).source(x2, m.preprocessing, torch.Generator().manual_seed(n))
        with torch.inference_mode():
            u = head(m.forward_features(torch.cat([x1, x2, src]))).numpy()
            singles = m.forward_head(m.forward_features(torch.where(cell_masks([[c] for c in range(grid * grid)], grid, size), src, x2))).double().numpy()
        k_cov = coverage(int(round(np.sqrt(u.shape[1]))), grid, size)
        e1, e2 = u[0].mean(0) + b.numpy(), u[1].mean(0) + b.numpy()
        d_mix = k_cov.T @ (u[2] - u[1]) / u.shape[1]
        d_add = singles - e2
        s0 = float(unit(e1) @ unit(e2))
        for k in sizes:
            sets = [sorted(rng.choice(grid * grid, k, replace=False).tolist()) for _ in range(args.sets)]
            with torch.inference_mode():
                e = m.forward_head(m.forward_features(torch.where(cell_masks(sets, grid, size), src, x2))).double().numpy()
            real[k] += list(unit(e) @ unit(e1) - s0)
            mix[k] += [float(unit(e2 + d_mix[c].sum(0)) @ unit(e1)) - s0 for c in sets]
            add[k] += [float(unit(e2 + d_add[c].sum(0)) @ unit(e1)) - s0 for c in sets]
    print(f"{len(pairs)} similar pairs, {args.sets} random sets per size, perturbation {args.perturbation}")
    print("| cells in the set | real Δcos (mean) | mixing: r | mixing: predicted Δcos (mean) | additive: r | additive: predicted Δcos (mean) |")
    print("|---|---|---|---|---|---|")
    for k in sizes:
        r, a, d = np.array(real[k]), np.array(mix[k]), np.array(add[k])
        print(f"| {k} | {r.mean():+.3f} | {np.corrcoef(r, a)[0, 1]:.2f} | {a.mean():+.3f} | {np.corrcoef(r, d)[0, 1]:.2f} | {d.mean():+.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
