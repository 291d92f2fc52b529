"""Does the chosen attribute explain the match? A deletion test for SANE, plus the predictor's mAP.

For sampled *similar* pairs (same class and cosine > ξ1, :func:`lfs_gui.metrics.evaluate.sample_pairs`),
the pair's saliency maps come from a registered explainer and :class:`~lfs_gui.attributes.sane.SaneChooser`
ranks the attributes. Three attributes' regions are then deleted (the same pixel fraction each, so
area is not what differs; one image at a time against the other, fixed, as
:meth:`~lfs_gui.attributes.sane.SaneChooser.deletion_similarity` defines it) and the similarity drop
s − s₋ₐ recorded:

* **chosen** — SANE's top attribute (all three terms);
* **chosen without deletion** — the top attribute with ``w_deletion = 0``: the choice never saw a
  deletion, so comparing it with *random* is not circular;
* **random** — a random attribute predicted present in both images (confidence ≥ ``present``),
  other than the chosen one (seeded per pair). Pairs with no such attribute are skipped and counted.

Reported: each drop's mean with a 95 % interval, the paired differences (chosen − random) with
intervals and how often the chosen attribute's deletion lowers the similarity more, and the
predictor's mean average precision on its held-out images (ids stored in the predictor file).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfs_gui.attributes.predictor import AttributePredictor
from lfs_gui.data.attributes import GalleryAttributes
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel

log = logging.getLogger(__name__)


@dataclass
class DeletionRecord:
    i: int
    j: int
    similarity: float
    chosen: str
    chosen_no_deletion: str
    random: str
    present: int
    drop_chosen: float
    drop_chosen_no_deletion: float
    drop_random: float


def default_saliency(model: EmbeddingModel) -> str:
    """The cheapest faithful-enough saliency the model allows: sim-decomp, else grad-sim, else rise-sim."""
    from lfs_gui.explain.registry import EXPLAINERS, missing_needs

    for name in ("sim-decomp", "grad-sim", "rise-sim"):
        if not missing_needs(EXPLAINERS[name], model, None):
            return name
    return "rise-sim"


class AttributeEvaluation:
    """Settings at construction; :meth:`iter_run` runs the pairs (yields Progress per pair)."""

    def __init__(self, model: EmbeddingModel, predictor: AttributePredictor, images: Sequence[str | Path],
                 embeddings: np.ndarray, labels: np.ndarray | None, *, n_pairs: int = 20, xi1: float = 0.3,
                 seed: int = 0, saliency: str | None = None, saliency_settings: dict[str, Any] | None = None,
                 present: float = 0.5, chooser_settings: dict[str, Any] | None = None) -> None:
        from lfs_gui.explain.registry import make_explainer
        from lfs_gui.attributes.sane import SaneChooser
        from lfs_gui.metrics.evaluate import sample_pairs

        self.model, self.predictor, self.images = model, predictor, [Path(p) for p in images]
        self.embeddings = np.ascontiguousarray(embeddings, np.float32)
        self.labels = labels
        self.xi1, self.seed, self.present = float(xi1), int(seed), float(present)
        self.saliency = saliency or default_saliency(model)
        self.explainer = make_explainer(self.saliency, model=model, **(saliency_settings or {}))
        cs = dict(chooser_settings or {})
        self.chooser = SaneChooser(predictor, model, **cs)
        self.chooser_plain = SaneChooser(predictor, model, **{**cs, "w_deletion": 0.0})
        self.pairs = [p for p in sample_pairs(self.embeddings, labels, n_pairs, self.xi1, self.seed) if p.similar]
        self.records: list[DeletionRecord] = []
        self.skipped_no_present = 0

    def settings(self) -> dict[str, Any]:
        return {"n_pairs": len(self.pairs), "xi1": self.xi1, "seed": self.seed, "saliency": self.explainer.settings(),
                "present": self.present, "chooser": self.chooser.settings(), "model": self.model.name,
                "predictor": {"attributes": len(self.predictor.names), **{k: v for k, v in self.predictor.meta.items()
                                                                        if k in ("level", "source", "settings")}}}

    def _tensor(self, k: int) -> torch.Tensor:
        from lfs_gui.data.images import load_rgb

        return self.model.preprocessing.to_tensor(load_rgb(self.images[k])).unsqueeze(0)

    def iter_run(self) -> Generator[Progress, None, list[DeletionRecord]]:
        from lfs_gui.explain.base import PairInput

        for n, spec in enumerate(self.pairs):
            x1, x2 = self._tensor(spec.i), self._tensor(spec.j)
            pair = PairInput.from_tensors(self.model, x1, x2, xi1=self.xi1)
            hp = self.explainer.explain(pair)
            full = self.chooser.choose(x1, x2, hp.heat1, hp.heat2, pair.similarity)
            plain = self.chooser_plain.choose(x1, x2, hp.heat1, hp.heat2, pair.similarity)
            chosen, chosen0 = full.ranked[0].index, plain.ranked[0].index
            p = full.confidences  # present in both: over all attributes, not only the scored candidates
            present = [a for a in np.flatnonzero((p[0] >= self.present) & (p[1] >= self.present)).tolist() if a != chosen]
            if not present:
                self.skipped_no_present += 1
                yield Progress(n + 1, len(self.pairs), f"pair {n + 1}/{len(self.pairs)}: no other present attribute")
                continue
            rng = np.random.default_rng([self.seed, spec.i, spec.j])
            rand = int(rng.choice(present))
            sims = self.chooser.deletion_similarity(x1, x2, full.maps_query, full.maps_target, [chosen, chosen0, rand])
            d = [pair.similarity - float(v) for v in sims]
            names = self.predictor.names
            self.records.append(DeletionRecord(spec.i, spec.j, pair.similarity, names[chosen], names[chosen0], names[rand],
                                               len(present) + 1, d[0], d[1], d[2]))
            yield Progress(n + 1, len(self.pairs), f"pair {n + 1}/{len(self.pairs)}: {names[chosen]} vs {names[rand]}")
        return self.records


def heldout_map(model: EmbeddingModel, predictor: AttributePredictor, images: Sequence[str | Path],
                attrs: GalleryAttributes, batch: int = 16) -> Generator[Progress, None, dict[str, Any]]:
    """mAP of ``predictor`` on its held-out images (recomputed with the model; a generator)."""
    from lfs_gui.attributes.train import mean_average_precision
    from lfs_gui.data.images import load_rgb

    ids = [int(i) for i in predictor.meta.get("heldout_ids", [])]
    n_img = predictor.meta.get("n_images")
    if not ids or (n_img is not None and int(n_img) != len(images)):
        return {"map_heldout": None, "n_heldout": 0,
                "note": "the predictor has no held-out images of this gallery (trained elsewhere or with --heldout 0)"}
    scores = []
    for s in range(0, len(ids), batch):
        x = torch.stack([model.preprocessing.to_tensor(load_rgb(images[i])) for i in ids[s:s + batch]])
        conf, _ = predictor.predict(model, x)
        scores.append(conf)
        yield Progress(min(len(ids), s + batch), len(ids), f"held-out mAP: {min(len(ids), s + batch)}/{len(ids)} images")
    m, aps = mean_average_precision(np.concatenate(scores), attrs.labels[ids], attrs.known[ids])
    return {"map_heldout": m, "n_heldout": len(ids), "ap_heldout": dict(zip(predictor.names, aps)),
            "map_heldout_at_training": predictor.heldout_map}


def summarize_deletions(records: Sequence[DeletionRecord]) -> dict[str, Any]:
    """Means with 95 % intervals of each drop, the paired differences and the win rates."""
    from lfs_gui.metrics.auc import mean_ci95

    out: dict[str, Any] = {"n_pairs": len(records)}
    cols = {k: np.array([getattr(r, k) for r in records], np.float64) for k in
            ("drop_chosen", "drop_chosen_no_deletion", "drop_random")}
    for k, v in cols.items():
        m, ci = mean_ci95(v)
        out[k] = {"mean": m, "ci95": ci}
    for name, a in (("chosen_minus_random", "drop_chosen"), ("chosen_no_deletion_minus_random", "drop_chosen_no_deletion")):
        diff = cols[a] - cols["drop_random"]
        m, ci = mean_ci95(diff)
        out[name] = {"mean": m, "ci95": ci, "wins": float(np.mean(diff > 0)) if len(diff) else float("nan")}
    return out


def records_table(records: Sequence[DeletionRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]
