"""Point-to-point correspondence of a pair: which location of one image matches which of the other.

**Exact, for GAP + affine heads** (Stylianou et al., WACV 2019; Zhu et al., IEEE TIP 2021). Let
F¹ (C, h₁, w₁), F² be the last conv maps, (W, b) the head, A_i = W F¹_i (i = 1..N₁) and
B_j = W F²_j the *projected* location features (head weight applied, bias kept apart). Pooling is a
mean, so e₁ = Ā + b and e₂ = B̄ + b, and with z = ‖e₁‖‖e₂‖ the cosine splits exactly into

    cos(e₁, e₂) = Σ_ij M_ij + Σ_i r_i + Σ_j c_j + β,
    M_ij = A_i·B_j / (N₁N₂ z),   r_i = A_i·b / (N₁ z),   c_j = b·B_j / (N₂ z),   β = b·b / z.

M is the location × location matrix; r, c and β are the bias terms (a location of one image
against the *bias* of the other, and the bias against itself): they belong to no location pair,
so they are kept as their own terms instead of being smeared over M. For a bias-free head
Σ M = cos. Row i of M is where location i of image 1 matches in image 2 (column j the reverse).
Cost: one forward per image (both in one batch), no backward, O(N₁N₂·dim) arithmetic.

**Estimate, for any model** (clearly labelled ``exact=False``): occlusion interactions on a g×g
grid of input cells. With s the pair's cosine, s_i (s_j) the cosine after occluding cell i of
image 1 (cell j of image 2) and s_ij after occluding both, M_ij = s − s_i − s_j + s_ij: how much
the two cells' contributions overlap (zero for cells that act independently). For a GAP model with
an unnormalised dot product and occlusion of feature cells this equals the exact matrix; through
the cosine's normalisation and pixel occlusion it is an estimate and does not sum to the cosine.
The model embeds each image alone, so s_ij is a cosine between already computed embeddings:
2·(g² + 1) forwards in all.

Maps are in the model-input frame; :meth:`Correspondence.cell_at` takes a model-input pixel, and
:func:`original_to_cell` a pixel of the ORIGINAL image (through ``Preprocessing.to_input_coords``,
i.e. the crop box).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.explain.base import ExplainerUnavailable, make_cost
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import EmbeddingModel, FeaturesUnavailable, Preprocessing

log = logging.getLogger(__name__)

EXACT = "gap-affine"
OCCLUSION = "occlusion"
METHODS = ("auto", EXACT, OCCLUSION)


@dataclass(frozen=True)
class Match:
    """One location pair: flat cells ``i`` (image 1) and ``j`` (image 2), its contribution ``value``."""

    i: int
    j: int
    value: float


@dataclass(frozen=True)
class Correspondence:
    """Location × location contributions for one pair (see the module docstring).

    ``matrix`` (N₁, N₂) float32; cells are row-major on ``grid1`` = (h₁, w₁) and ``grid2``;
    ``bias1`` (N₁), ``bias2`` (N₂) and ``bias_bias`` are the head-bias terms (zeros without a bias or
    for the estimate); ``cosine`` is the model's cosine of the pair; ``input_size`` = (H, W) of the
    model input the cells tile.
    """

    matrix: np.ndarray
    grid1: tuple[int, int]
    grid2: tuple[int, int]
    cosine: float
    exact: bool
    method: str
    note: str
    input_size: tuple[int, int]
    bias1: np.ndarray | None = None
    bias2: np.ndarray | None = None
    bias_bias: float = 0.0
    cost: dict[str, int] = field(default_factory=make_cost)
    seconds: float = 0.0

    # -- sums -------------------------------------------------------------------------------------
    def total(self) -> float:
        """Σ M + Σ r + Σ c + β: equals :attr:`cosine` for the exact decomposition."""
        t = float(self.matrix.sum(dtype=np.float64)) + float(self.bias_bias)
        for b in (self.bias1, self.bias2):
            if b is not None:
                t += float(np.sum(b, dtype=np.float64))
        return t

    def grid(self, which: int) -> tuple[int, int]:
        return self.grid1 if which == 1 else self.grid2

    # -- coordinates ---------------------------------------------------------------------------------
    def cell_at(self, which: int, u: float, v: float) -> int | None:
        """Flat cell of image ``which`` (1 or 2) under model-input pixel (u = x, v = y); None outside."""
        hh, ww = self.input_size
        if not (0.0 <= u < ww and 0.0 <= v < hh):
            return None
        gh, gw = self.grid(which)
        return int(v * gh / hh) * gw + int(u * gw / ww)

    def cell_center(self, which: int, cell: int) -> tuple[float, float]:
        """Model-input pixel (u, v) at the centre of flat cell ``cell`` of image ``which``."""
        gh, gw = self.grid(which)
        r, c = divmod(int(cell), gw)
        hh, ww = self.input_size
        return (c + 0.5) * ww / gw, (r + 0.5) * hh / gh

    # -- maps -----------------------------------------------------------------------------------------
    def match_map(self, which: int, cell: int) -> np.ndarray:
        """Signed contributions of ``cell`` of image ``which`` against every cell of the OTHER image,
        shaped as the other image's grid (float32)."""
        n = self.matrix.shape[0 if which == 1 else 1]
        if not 0 <= int(cell) < n:
            raise ValueError(f"cell {cell} out of range for image {which} ({n} cells)")
        row = self.matrix[int(cell)] if which == 1 else self.matrix[:, int(cell)]
        return np.ascontiguousarray(row.reshape(self.grid(2 if which == 1 else 1)), dtype=np.float32)

    def match_heat(self, which: int, cell: int) -> np.ndarray:
        """:meth:`match_map` as a heat map in [0, 1]: the positive part over its maximum (a cell that
        matches nothing positively gives zeros)."""
        m = np.maximum(self.match_map(which, cell), 0.0)
        top = float(m.max())
        return (m / top).astype(np.float32) if top > 0 else np.zeros_like(m)

    def top_matches(self, k: int, one_to_one: bool = True) -> list[Match]:
        """The ``k`` strongest positive location pairs, strongest first. With ``one_to_one`` (default)
        they are picked greedily so that no cell of either image is used twice: a few strong cells
        would otherwise take every line (a location with large features contributes to every pair)."""
        m = np.asarray(self.matrix, np.float64)
        k = max(int(k), 0)
        if not one_to_one:
            flat = np.argsort(-m, axis=None, kind="stable")[:k]
            cand = [Match(int(f // m.shape[1]), int(f % m.shape[1]), float(m.flat[f])) for f in flat]
            return [c for c in cand if c.value > 0]
        m = m.copy()
        out: list[Match] = []
        while len(out) < k:
            f = int(np.argmax(m))
            i, j = divmod(f, m.shape[1])
            if not m[i, j] > 0:
                break
            out.append(Match(i, j, float(self.matrix[i, j])))
            m[i, :] = -np.inf
            m[:, j] = -np.inf
        return out

    def describe(self) -> dict[str, Any]:
        """Small JSON-able summary (no arrays)."""
        return {"method": self.method, "exact": self.exact, "note": self.note, "cosine": self.cosine,
                "total": self.total(), "grid_query": list(self.grid1), "grid_target": list(self.grid2),
                "cost": dict(self.cost), "ms": round(1000.0 * self.seconds, 2)}


def original_to_cell(corr: Correspondence, which: int, preprocessing: Preprocessing, x: float, y: float,
                     width: int, height: int) -> int | None:
    """Flat cell under pixel (x, y) of the ORIGINAL image (``width`` × ``height``) of image ``which``,
    through the model's crop box; None when the model does not see that pixel."""
    u, v = preprocessing.to_input_coords(x, y, width, height)
    return corr.cell_at(which, u, v)


def cell_to_original(corr: Correspondence, which: int, cell: int, preprocessing: Preprocessing,
                     width: int, height: int) -> tuple[float, float]:
    """Centre of ``cell`` as a pixel of the ORIGINAL image (for drawing match lines)."""
    u, v = corr.cell_center(which, cell)
    return preprocessing.to_original_coords(u, v, width, height)


# -- the exact decomposition --------------------------------------------------------------------------
def exact_unavailable(model: EmbeddingModel) -> str:
    """Why the exact decomposition cannot run for ``model`` ('' when it can)."""
    from lfs_gui.explain.registry import has_features

    ok, why = has_features(model)
    if not ok:
        return f"no conv feature map ({why})"
    if model.linear_head() is None:
        return "the model does not end in global average pooling + one affine layer (linear_head() is None)"
    return ""


def exact_correspondence(model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor) -> Correspondence:
    """The exact decomposition (module docstring) for model-input tensors ``x1``, ``x2`` (1, 3, H, W)."""
    t0 = time.perf_counter()
    head = model.linear_head()
    if head is None:
        raise ExplainerUnavailable(f"exact correspondence needs {exact_unavailable(model)}")
    try:
        with torch.inference_mode():
            if x1.shape == x2.shape:
                f = model.forward_features(torch.cat([x1, x2]).to(model.device))
                f1, f2 = f[0], f[1]
            else:
                f1, f2 = model.forward_features(x1.to(model.device))[0], model.forward_features(x2.to(model.device))[0]
    except FeaturesUnavailable as exc:
        raise ExplainerUnavailable(f"exact correspondence needs the model's conv feature map: {exc}") from exc
    w = head[0].detach().to("cpu", torch.float64)
    b = None if head[1] is None else head[1].detach().to("cpu", torch.float64)
    a = _project(f1, w)  # (N1, dim)
    bb = _project(f2, w)
    e1, e2 = a.mean(0), bb.mean(0)
    if b is not None:
        e1, e2 = e1 + b, e2 + b
    z = float(e1.norm() * e2.norm())
    if z == 0.0:
        raise ExplainerUnavailable("exact correspondence: an embedding is zero, the cosine is undefined")
    n1, n2 = a.shape[0], bb.shape[0]
    m = (a @ bb.T) / (n1 * n2 * z)
    if b is not None:
        r, c, beta = (a @ b) / (n1 * z), (bb @ b) / (n2 * z), float(b @ b) / z
    else:
        r, c, beta = torch.zeros(n1, dtype=torch.float64), torch.zeros(n2, dtype=torch.float64), 0.0
    cos = float(e1 @ e2) / z
    return Correspondence(
        matrix=m.float().numpy(), grid1=(int(f1.shape[1]), int(f1.shape[2])), grid2=(int(f2.shape[1]), int(f2.shape[2])),
        cosine=cos, exact=True, method=EXACT,
        note="exact: GAP + affine head decomposition" + (" (head bias kept as its own terms)" if b is not None else ""),
        input_size=(int(x1.shape[-2]), int(x1.shape[-1])), bias1=r.float().numpy(), bias2=c.float().numpy(),
        bias_bias=beta, cost=make_cost(2, 0), seconds=time.perf_counter() - t0,
    )


def _project(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(C, h, w) feature map -> (h·w, dim) projected location features W f_i, float64, CPU."""
    fl = f.detach().to("cpu", torch.float64).reshape(f.shape[0], -1)  # (C, N)
    return (w @ fl).T.contiguous()


# -- the model-agnostic estimate --------------------------------------------------------------------------
def occluded(x: torch.Tensor, grid: int, baseline: float = 0.0) -> torch.Tensor:
    """(g², 3, H, W): ``x`` (1, 3, H, W) with one cell of a g×g grid set to ``baseline`` each
    (0 in normalised input space = the dataset's mean colour, as rise-sim uses)."""
    _, _, hh, ww = x.shape
    ys = np.linspace(0, hh, grid + 1).round().astype(int)
    xs = np.linspace(0, ww, grid + 1).round().astype(int)
    out = x.repeat(grid * grid, 1, 1, 1).clone()
    for k in range(grid * grid):
        r, c = divmod(k, grid)
        out[k, :, ys[r]:ys[r + 1], xs[c]:xs[c + 1]] = baseline
    return out


def iter_occlusion_correspondence(model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, grid: int = 7,
                                  batch: int = 16, baseline: float = 0.0) -> Generator[Progress, None, Correspondence]:
    """The occlusion-interaction estimate (module docstring); yields Progress per batch (cancel points)."""
    if grid < 1 or batch < 1:
        raise ValueError("occlusion correspondence needs grid >= 1 and batch >= 1")
    t0 = time.perf_counter()
    dev = model.device
    xs = [torch.cat([x, occluded(x, grid, baseline)]) for x in (x1, x2)]  # (1 + g², 3, H, W) each
    total = sum(len(x) for x in xs)
    embs: list[list[torch.Tensor]] = [[], []]
    done = 0
    for t, x in enumerate(xs):
        for s in range(0, len(x), batch):
            with torch.inference_mode():
                e = F.normalize(model.embed_tensor(x[s:s + batch].to(dev)).float(), dim=1).cpu()
            embs[t].append(e)
            done += len(e)
            yield Progress(done, total, f"correspondence: {done}/{total} occluded images")
    e1, e2 = torch.cat(embs[0]).double(), torch.cat(embs[1]).double()
    s = e1 @ e2.T  # (1 + g², 1 + g²) cosines
    inter = s[0, 0] - s[1:, :1] - s[:1, 1:] + s[1:, 1:]
    n = grid * grid
    return Correspondence(
        matrix=inter.float().numpy(), grid1=(grid, grid), grid2=(grid, grid), cosine=float(s[0, 0]), exact=False,
        method=OCCLUSION,
        note=f"estimate: occlusion interactions on a {grid}x{grid} grid (model-agnostic, not exact; "
             "does not sum to the cosine)",
        input_size=(int(x1.shape[-2]), int(x1.shape[-1])), bias1=np.zeros(n, np.float32), bias2=np.zeros(n, np.float32),
        cost=make_cost(total, 0), seconds=time.perf_counter() - t0,
    )


def iter_correspondence(model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, method: str = "auto",
                        grid: int = 7, batch: int = 16) -> Generator[Progress, None, Correspondence]:
    """The pair's correspondence: exact when the model allows (``auto``/``gap-affine``), else the
    labelled occlusion estimate (``auto``/``occlusion``). Generator in the jobs pattern."""
    if method not in METHODS:
        raise ValueError(f"correspondence method must be one of {METHODS}, got {method!r}")
    why = exact_unavailable(model) if method != OCCLUSION else "occlusion requested"
    if method == EXACT and why:
        raise ExplainerUnavailable(f"exact correspondence is unavailable for {model.name}: {why}; "
                                   f"use the '{OCCLUSION}' estimate")
    if not why:
        yield Progress(0, 1, "correspondence: one forward per image")
        corr = exact_correspondence(model, x1, x2)
        yield Progress(1, 1, "correspondence: done")
        return corr
    log.info("correspondence for %s: %s; using the occlusion estimate", model.name, why)
    corr = yield from iter_occlusion_correspondence(model, x1, x2, grid=grid, batch=batch)
    if method == "auto":
        corr = _with_note(corr, f"{corr.note}; exact decomposition unavailable: {why}")
    return corr


def correspondence(model: EmbeddingModel, x1: torch.Tensor, x2: torch.Tensor, method: str = "auto",
                   grid: int = 7, batch: int = 16) -> Correspondence:
    """Blocking form of :func:`iter_correspondence`."""
    return run_generator(iter_correspondence(model, x1, x2, method=method, grid=grid, batch=batch))


def _with_note(corr: Correspondence, note: str) -> Correspondence:
    from dataclasses import replace

    return replace(corr, note=note)
