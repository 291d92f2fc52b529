"""``rise-sim``: RISE saliency for a similarity score, the pair estimator SANE uses.

Petsiuk, Das & Saenko 2018, "RISE: Randomized input sampling for explanation of black-box
models" (BMVC): N random smooth masks M_k (a coarse ``cells``×``cells`` Bernoulli(p_keep) grid,
bilinearly upsampled with a random sub-cell shift); saliency = E[score(x ⊙ M) · M] / p_keep.
Plummer et al. 2020, "Why do these match? Explaining the behavior of image similarity models"
(SANE, ECCV) score a masked *test* image against the unmasked *reference* embedding. Here image 2
is masked against h¹ and image 1 against h², in the same forward batches.

Masked-out pixels take ``baseline``: 0 in normalised input space (the dataset mean colour), as
RISE's x ⊙ M does before normalisation for a zero-mean input. The estimator subtracts the mean
score before weighting (Σ_k (s_k − s̄) M_k / (N·p_keep)): same expectation up to a constant, but
without the term Σ M_k that only reflects where the random masks happened to fall.
``target="decision"`` (default) negates the saliency of a dissimilar pair.

Speed: the masks' coarse grids and shifts are drawn on the CPU (so a seed gives the same masks on
every device); upsampling, masking and the forwards run on the model's device, ``batch`` masks
(2·batch images) per forward (default: :func:`lfs_gui.device.batch_defaults` ``rise_masks``).
Long: :meth:`iter_explain` yields a progress event per batch (cancel point).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.explain.base import (
    DEFAULT_TARGET,
    Explainer,
    HeatPair,
    PairInput,
    accumulate_dtype,
    make_cost,
    pair_seed,
    unit_map,
)
from lfs_gui.jobs import Progress


def rise_masks(n: int, size: tuple[int, int], cells: int, p_keep: float, gen: torch.Generator,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` RISE masks (n, 1, H, W) float32 in [0, 1] on ``device``: upsampled Bernoulli grid, randomly shifted.

    The random draws come from the CPU generator ``gen``, so a seed gives the same masks everywhere.
    """
    h, w = size
    ch, cw = int(np.ceil(h / cells)), int(np.ceil(w / cells))
    grid = (torch.rand(n, 1, cells, cells, generator=gen) < p_keep).float()
    dx = torch.randint(0, ch, (n,), generator=gen).tolist()
    dy = torch.randint(0, cw, (n,), generator=gen).tolist()
    up = F.interpolate(grid.to(device), size=((cells + 1) * ch, (cells + 1) * cw), mode="bilinear", align_corners=False)
    return torch.stack([up[k, :, dx[k] : dx[k] + h, dy[k] : dy[k] + w] for k in range(n)])


class RiseSimExplainer(Explainer):
    """Masked-similarity saliency (maps at the model-input resolution)."""

    name = "rise-sim"
    needs = frozenset({"model"})
    summary = "RISE masks scored by similarity to the other image (Petsiuk 2018; SANE, Plummer 2020)"

    def __init__(
        self,
        model=None,
        decoder=None,
        *,
        n_masks: int = 500,
        cells: int = 7,
        p_keep: float = 0.5,
        batch: int | None = None,
        seed: int = 0,
        target: str = DEFAULT_TARGET,
    ) -> None:
        super().__init__(model, decoder, target=target)
        if n_masks <= 0 or cells <= 0 or (batch is not None and batch <= 0) or not 0.0 < p_keep < 1.0:
            raise ValueError("rise-sim needs n_masks > 0, cells > 0, batch > 0 and 0 < p_keep < 1")
        self.n_masks, self.cells, self.p_keep, self.seed = int(n_masks), int(cells), float(p_keep), int(seed)
        self.batch = None if batch is None else int(batch)
        self._store(n_masks=self.n_masks, cells=self.cells, p_keep=self.p_keep, batch=self.batch, seed=self.seed)

    def _explain(self, pair: PairInput) -> HeatPair:  # pragma: no cover - _iter_explain is the method
        raise NotImplementedError

    def _batch(self, device: torch.device) -> int:
        if self.batch is not None:
            return self.batch
        from lfs_gui.device import batch_defaults

        return batch_defaults(device).rise_masks

    def _iter_explain(self, pair: PairInput) -> Generator[Progress, None, HeatPair]:
        device = self.model.device
        acc = accumulate_dtype(device)
        x1, x2 = pair.require_tensors(self.name, device)
        h, w = x2.shape[-2:]
        gen = torch.Generator().manual_seed(int(pair_seed(self.seed, pair.h1, pair.h2).generate_state(1)[0]))
        ref = torch.from_numpy(np.stack([pair.h2, pair.h1]).astype(np.float32)).to(device)  # image 1 vs h², image 2 vs h¹
        xs = torch.cat([x1, x2]).float()
        s1 = torch.zeros(2, h, w, dtype=acc, device=device)
        m1 = torch.zeros(1, h, w, dtype=acc, device=device)
        score_sum = torch.zeros(2, dtype=acc, device=device)
        per_batch = self._batch(device)
        done = 0
        while done < self.n_masks:
            b = min(per_batch, self.n_masks - done)
            m = rise_masks(b, (h, w), self.cells, self.p_keep, gen, device)  # (b, 1, H, W)
            batch = (xs[:, None] * m[None]).reshape(2 * b, *xs.shape[1:])  # baseline 0
            with torch.inference_mode():
                e = F.normalize(self.model.embed_tensor(batch).float(), dim=1).reshape(2, b, -1)
                s = (e * ref[:, None]).sum(-1).to(acc)  # (2, b)
                mm = m[:, 0].to(acc)
                score_sum += s.sum(1)
                s1 += torch.einsum("tb,bhw->thw", s, mm)
                m1 += mm.sum(0, keepdim=True)
            done += b
            yield Progress(done, self.n_masks, f"{self.name}: {done}/{self.n_masks} masks")
        mean = score_sum / self.n_masks  # (2,)
        sal = self.sign(pair) * (s1 - mean[:, None, None] * m1) / (self.n_masks * self.p_keep)
        sal = sal.cpu()
        return self._result(pair, unit_map(sal[0]), unit_map(sal[1]), make_cost(2 * self.n_masks, 0), saliency=sal.numpy())
