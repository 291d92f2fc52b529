"""Variants of ExplainLFS that address the scale problems measured in ``docs/FINDINGS.md``.

The published method (:mod:`lfs_gui.explain.explainlfs`, registered as ``explainlfs``) is kept
unchanged; these have their own names. All use the paper's relevance R (Eq. 2–3) and perturb both
embeddings (Algorithm 1), and differ only in *how far* along R they step.

Why. With L2-normalised embeddings most R_j are near 1 for similar pairs, so ‖R·p‖ ≈ 0.3·√N
(≈ 9.7 for N = 1280 at p = 0.3) against ‖h‖ = 1: h + R·p lies far outside the decoder's training
set and decodes to nearly the same template for every pair (FINDINGS, "Scale"), which is why maps
correlate across unrelated pairs.

* ``explainlfs-jvp`` — the p → 0 limit. |g(h + R·p) − g(h)| / p → |J_g(h)·R|, so the map
  Σ_colour |J_g(h)·R| (one forward-mode Jacobian–vector product, ``torch.func.jvp``) is what
  ExplainLFS measures for small perturbations, without choosing p and without leaving the
  decoder's training range. Min–max normalisation removes the 1/p factor. For a *linear* decoder it
  equals the published map for every p (|W·R|, image-independent); for a nonlinear decoder (sigmoid
  output, conv decoder) the Jacobian is evaluated at each image's own embedding, so the map depends
  on the image. Cost: ≈ 2–3 decoder passes. Decoders that are plain numpy callables fall back to a
  central finite difference with a step of 10⁻³‖h‖ along R/‖R‖.
* ``explainlfs-rel`` — p relative to the embedding's scale: h + p·‖h‖·R/‖R‖, i.e. the perturbation
  is a fixed *fraction* p of the embedding's length whatever N and the normalisation are (default
  p = 0.1). Same cost as the paper (one batch of 4).
* ``explainlfs-multi`` — the relative map averaged over several fractions p (default 0.025, 0.05,
  0.1, 0.2): maps that only appear at one step size (saturation of the sigmoid, a decoder's
  idiosyncrasy) are damped, structure present at every scale is kept. One batch of 2 + 2·len(ps).

Like the published method they answer only the ``decision`` target on a dissimilar pair (R = d̄).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lfs_gui.explain.base import DEFAULT_TARGET, Explainer, HeatPair, PairInput, make_cost, unit_map
from lfs_gui.explain.baselines.explainlfs_adapter import DECISION_ONLY, WHY_DECISION_ONLY
from lfs_gui.explain.explainlfs import decode, relevance


def _pair_arrays(pair: PairInput) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h1 = np.asarray(pair.h1, np.float64)
    h2 = np.asarray(pair.h2, np.float64)
    r = relevance(h1, h2, pair.similar).astype(np.float64)
    return h1, h2, r


def _heat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ_colour |a − b| for (3, S, S) images → (S, S)."""
    return np.abs(a - b).sum(axis=0)


class ExplainLFSJVPExplainer(Explainer):
    """The p → 0 limit of ExplainLFS: heat = Σ_c |J_g(h)·R| by forward-mode autodiff."""

    name = "explainlfs-jvp"
    needs = frozenset({"decoder"})
    summary = "ExplainLFS, p → 0 limit: |J_g(h)·R| via one Jacobian–vector product"
    targets = DECISION_ONLY
    why_not_similarity = WHY_DECISION_ONLY

    def __init__(self, model=None, decoder=None, *, fd_step: float = 1e-3, target: str = DEFAULT_TARGET) -> None:
        super().__init__(model, decoder, target=target)
        self.fd_step = float(fd_step)
        self._store(fd_step=self.fd_step)

    def _jvp(self, hs: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(g(hs), J_g(hs)·r) for a batch of embeddings ``hs`` (B, N)."""
        dec = self.decoder
        if isinstance(dec, torch.nn.Module):
            param = next(dec.parameters(), None)
            dtype = param.dtype if param is not None else torch.float32
            device = param.device if param is not None else torch.device("cpu")
            primal = torch.from_numpy(np.ascontiguousarray(hs)).to(device, dtype)
            tangent = torch.from_numpy(np.repeat(r[None], len(hs), axis=0)).to(device, dtype)
            with torch.no_grad():
                out, jr = torch.func.jvp(dec, (primal,), (tangent,))
            return out.cpu().double().numpy(), jr.cpu().double().numpy()
        # Numpy decoder: central finite difference along the unit direction of R.
        rn = float(np.linalg.norm(r)) or 1.0
        step = self.fd_step * max(float(np.linalg.norm(hs, axis=1).max()), 1e-12)
        u = r / rn
        out = decode(dec, np.concatenate([hs, hs + step * u, hs - step * u]))
        b = len(hs)
        jr = (out[b : 2 * b].astype(np.float64) - out[2 * b :]) / (2 * step) * rn
        return out[:b].astype(np.float64), jr

    def _explain(self, pair: PairInput) -> HeatPair:
        h1, h2, r = _pair_arrays(pair)
        recon, jr = self._jvp(np.stack([h1, h2]), r)
        heat = np.abs(jr).sum(axis=1)
        return self._result(
            pair, unit_map(heat[0]), unit_map(heat[1]), make_cost(decoder_calls=2),
            relevance=r.astype(np.float32), recon1=recon[0].astype(np.float32), recon2=recon[1].astype(np.float32),
        )


class ExplainLFSRelExplainer(Explainer):
    """ExplainLFS with the step p measured as a fraction of ‖h‖: h + p·‖h‖·R/‖R‖."""

    name = "explainlfs-rel"
    needs = frozenset({"decoder"})
    summary = "ExplainLFS with p relative to the embedding's norm"
    targets = DECISION_ONLY
    why_not_similarity = WHY_DECISION_ONLY

    def __init__(self, model=None, decoder=None, *, p: float = 0.1, target: str = DEFAULT_TARGET) -> None:
        super().__init__(model, decoder, target=target)
        if not np.isfinite(p) or p == 0:
            raise ValueError(f"p must be finite and non-zero, got {p}")
        self.ps: tuple[float, ...] = (float(p),)
        self._store(p=float(p))

    def _explain(self, pair: PairInput) -> HeatPair:
        h1, h2, r = _pair_arrays(pair)
        u = r / (float(np.linalg.norm(r)) or 1.0)
        rows = [h1, h2]
        for p in self.ps:
            rows += [h1 + p * np.linalg.norm(h1) * u, h2 + p * np.linalg.norm(h2) * u]
        out = decode(self.decoder, np.stack(rows)).astype(np.float64)
        heats1 = [unit_map(_heat(out[0], out[2 + 2 * i])) for i in range(len(self.ps))]
        heats2 = [unit_map(_heat(out[1], out[3 + 2 * i])) for i in range(len(self.ps))]
        return self._result(
            pair, unit_map(np.mean(heats1, axis=0)), unit_map(np.mean(heats2, axis=0)),
            make_cost(decoder_calls=len(rows)),
            relevance=r.astype(np.float32), recon1=out[0].astype(np.float32), recon2=out[1].astype(np.float32),
        )


class ExplainLFSMultiExplainer(ExplainLFSRelExplainer):
    """Mean of the relative-step maps over several fractions ``ps`` (each normalised first)."""

    name = "explainlfs-multi"
    summary = "ExplainLFS with relative p, averaged over several step sizes"

    def __init__(self, model=None, decoder=None, *, ps: Sequence[float] = (0.025, 0.05, 0.1, 0.2),
                 target: str = DEFAULT_TARGET) -> None:
        Explainer.__init__(self, model, decoder, target=target)
        ps = tuple(float(p) for p in ps)
        if not ps or not all(np.isfinite(p) and p != 0 for p in ps):
            raise ValueError(f"ps must be a non-empty list of finite non-zero fractions, got {ps}")
        self.ps = ps
        self._store(ps=list(ps))
