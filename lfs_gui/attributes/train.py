"""Training the attribute predictor on a gallery's labels, the embedding model frozen.

:func:`iter_train_attributes` is a generator in the jobs pattern: it yields Progress while the
feature maps are computed (:mod:`lfs_gui.attributes.features`, cached) and once per epoch, and
returns the trained :class:`~lfs_gui.attributes.predictor.AttributePredictor`. Stopping the
generator between yields cancels it.

Loss: binary cross-entropy of each attribute's score (the mean of its logit map) against the
image's label, only where the label is known (CUB's *not visible* is unknown), with positives
weighted by the attribute's negative/positive ratio (clipped to [1, 10]) since most attributes are
absent from most images. SANE (Plummer et al. 2020) instead fits a softmax over attributes to the
distribution of the positives and adds a saliency-consistency term; the independent per-attribute
confidences used here are what choosing an attribute for a pair needs. Augmentation: the feature
map is mirrored left-right with probability ½ (a mirrored image gives about the mirrored map), and
whole channels are dropped (``dropout``, 0.3). The defaults (dropout 0.3, weight decay 1e-3) had the
best held-out mAP and cross-entropy of six settings tried on the demo (docs/RESULTS.md).

Held-out images (``heldout`` fraction, stratified by class, seeded) are kept out of training; the
predictor's mean average precision on them (:func:`mean_average_precision`) is stored in its file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lfs_gui.attributes.features import FeatureMaps, iter_feature_maps
from lfs_gui.attributes.predictor import AttributeHead, AttributePredictor
from lfs_gui.data.attributes import GalleryAttributes
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of ``scores`` ranking the positives of ``targets`` (0/1) first: mean precision at each
    positive (ties broken pessimistically); NaN without positives."""
    s = np.asarray(scores, np.float64)
    t = np.asarray(targets) > 0
    npos = int(t.sum())
    if npos == 0:
        return float("nan")
    order = np.lexsort((t, -s))  # by score descending, negatives first among ties
    hits = t[order]
    prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(prec[hits].sum() / npos)


def mean_average_precision(scores: np.ndarray, labels: np.ndarray, known: np.ndarray | None = None) -> tuple[float, list[float]]:
    """(mAP over attributes with a positive and a negative among the known labels, per-attribute AP
    with NaN where undefined)."""
    known = np.ones(labels.shape, bool) if known is None else np.asarray(known, bool)
    aps = []
    for a in range(labels.shape[1]):
        k = known[:, a]
        t = labels[k, a] > 0
        aps.append(average_precision(scores[k, a], t) if 0 < t.sum() < t.size else float("nan"))
    good = [v for v in aps if math.isfinite(v)]
    return (float(np.mean(good)) if good else float("nan")), aps


def split_heldout(class_labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out images: ``fraction`` of each class (at least one image of a class with
    two or more), seeded. ``fraction`` 0 holds out nothing."""
    labels = np.asarray(class_labels, np.int64)
    out = np.zeros(len(labels), bool)
    if fraction <= 0:
        return out
    rng = np.random.default_rng(seed)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        out[rng.choice(idx, size=k, replace=False)] = True
    return out


def _fold_projection(head: AttributeHead, fm: FeatureMaps) -> AttributeHead:
    """A head on the raw C-channel map equal to ``head`` on the PCA-reduced map."""
    if fm.proj is None:
        return head
    w = head.reduce.weight.detach()[:, :, 0, 0].double()  # (hidden, r)
    p = torch.from_numpy(fm.proj).double()  # (C, r)
    m = torch.from_numpy(fm.mean).double()  # (C,)
    wf = w @ p.T  # (hidden, C)
    full = AttributeHead(fm.in_channels, head.maps.out_channels, head.reduce.out_channels)
    with torch.no_grad():
        full.reduce.weight.copy_(wf.float()[:, :, None, None])
        full.reduce.bias.copy_((head.reduce.bias.detach().double() - wf @ m).float())
        full.maps.load_state_dict(head.maps.state_dict())
    return full


def iter_train_attributes(
    model: EmbeddingModel,
    paths: Sequence[str | Path],
    class_labels: np.ndarray,
    attrs: GalleryAttributes,
    *,
    epochs: int = 60,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    hidden: int = 64,
    batch: int = 32,
    heldout: float = 0.2,
    dropout: float = 0.3,
    seed: int = 0,
    reduce_to: int = 256,
    feature_batch: int = 16,
    use_cache: bool = True,
) -> Generator[Progress, None, AttributePredictor]:
    """Train a predictor for ``attrs`` (labels of the images ``paths``, in order); see the module docstring."""
    n, k = attrs.labels.shape
    if n != len(paths) or len(class_labels) != n:
        raise ValueError(f"{len(paths)} images, {len(class_labels)} class labels but {n} attribute rows")
    if epochs < 1 or batch < 1 or hidden < 1 or not 0.0 <= heldout < 1.0:
        raise ValueError("epochs, batch and hidden must be at least 1 and the held-out fraction in [0, 1)")
    fm = yield from iter_feature_maps(model, paths, batch=feature_batch, reduce_to=reduce_to, use_cache=use_cache)
    usable = fm.ok & attrs.known.any(axis=1)
    held = split_heldout(np.asarray(class_labels), heldout, seed) & usable
    train = usable & ~held
    if train.sum() < 2:
        raise ValueError(f"only {int(train.sum())} labelled, decodable training images; attribute training needs more")
    g = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(fm.maps)
    y_all = torch.from_numpy(attrs.labels.astype(np.float32))
    m_all = torch.from_numpy(attrs.known.astype(np.float32))
    tr = torch.from_numpy(np.flatnonzero(train))
    pos = (y_all[tr] * m_all[tr]).sum(0)
    neg = ((1 - y_all[tr]) * m_all[tr]).sum(0)
    pos_weight = (neg / pos.clamp(min=1)).clamp(1.0, 10.0)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights without touching the global RNG
        torch.manual_seed(seed)
        head = AttributeHead(x_all.shape[1], k, hidden)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    history: list[float] = []
    for epoch in range(epochs):
        head.train()
        perm = tr[torch.randperm(len(tr), generator=g)]
        total = 0.0
        for s in range(0, len(perm), batch):
            ids = perm[s:s + batch]
            x = x_all[ids].float()
            flip = torch.rand(len(ids), generator=g) < 0.5
            x[flip] = x[flip].flip(-1)
            if dropout > 0:  # channel dropout from the seeded generator (F.dropout2d would use the global RNG)
                keep = torch.rand(x.shape[0], x.shape[1], 1, 1, generator=g) >= dropout
                x = x * keep / (1.0 - dropout)
            logits = head(x).mean(dim=(2, 3))
            loss = F.binary_cross_entropy_with_logits(logits, y_all[ids], weight=m_all[ids], pos_weight=pos_weight,
                                                      reduction="sum") / m_all[ids].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(ids)
        sched.step()
        history.append(total / len(tr))
        yield Progress(epoch + 1, epochs, f"training: epoch {epoch + 1}/{epochs}, loss {history[-1]:.4f}")
    head.eval()
    with torch.no_grad():
        scores = torch.cat([head(x_all[s:s + 64].float()).mean(dim=(2, 3)) for s in range(0, n, 64)]).numpy()
    metrics = {"loss": history[-1], "history": history}
    for name, mask in (("heldout", held), ("train", train)):
        mp, aps = mean_average_precision(scores[mask], attrs.labels[mask], attrs.known[mask]) if mask.any() else (float("nan"), [])
        metrics[f"map_{name}"] = mp
        metrics[f"n_{name}"] = int(mask.sum())
        if name == "heldout":
            metrics["ap_heldout"] = aps
            k_ = attrs.known[mask]
            bce = F.binary_cross_entropy_with_logits(torch.from_numpy(scores[mask]), torch.from_numpy(attrs.labels[mask]),
                                                     weight=torch.from_numpy(k_.astype(np.float32)), reduction="sum")
            metrics["bce_heldout"] = float(bce) / max(1, int(k_.sum())) if mask.any() else float("nan")
    pos_scores = [float(np.median(scores[train & (attrs.labels[:, a] > 0), a])) if (train & (attrs.labels[:, a] > 0)).any()
                  else float("nan") for a in range(k)]
    meta = {"level": attrs.level, "source": attrs.source, "metrics": metrics,
            "heldout_ids": np.flatnonzero(held).tolist(), "n_images": n,
            "median_positive_score": pos_scores,
            "settings": {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "hidden": hidden, "batch": batch,
                         "heldout": heldout, "dropout": dropout, "seed": seed, "reduce_to": reduce_to}}
    log.info("attribute predictor: mAP %.3f on %d held-out images (train %.3f)", metrics["map_heldout"],
             metrics["n_heldout"], metrics["map_train"])
    return AttributePredictor(_fold_projection(head, fm), list(attrs.names), model.identity(), meta)
