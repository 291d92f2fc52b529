"""The attribute predictor: attribute activation maps over the embedding model's last feature map.

SANE (Plummer et al. 2020) puts a bias-free 3×3 conv on a frozen ResNet's last map, one map per
attribute (an *attribute activation map*, AAM), and scores an attribute by the global average of
its map. Here the head is ``1×1 conv (C → hidden) → ReLU → 3×3 conv (hidden → K)``: the 1×1
reduction keeps the file small (the demo's is ~0.4 MB for 1280 channels) and lets training run on
cached, PCA-reduced maps (:mod:`lfs_gui.attributes.features`; the projection is folded into the
1×1 conv on save, so the saved head reads the model's raw feature map). An attribute's score is the
mean of its logit map, its confidence ``sigmoid(score)``; the map shown is the spatial softmax of
the logit map (as SANE shows it).

File (``attributes.pt`` next to the index, read with ``torch.load(weights_only=True)``)::

    {"format": "lfs-gui-attribute-predictor", "version": 1, "names": [str], "model_identity": str,
     "in_channels": int, "hidden": int, "state_dict": {...}, "meta": {json-able: level, source,
     metrics (mAP), heldout ids, settings}}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lfs_gui.jobs import atomic_path
from lfs_gui.models.base import EmbeddingModel, ModelLoadError

log = logging.getLogger(__name__)

FORMAT = "lfs-gui-attribute-predictor"
VERSION = 1
PREDICTOR_FILE = "attributes.pt"


class AttributeHead(nn.Module):
    """``(B, C, h, w)`` feature map -> ``(B, K, h, w)`` attribute logit maps."""

    def __init__(self, in_channels: int, n_attributes: int, hidden: int = 64) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, hidden, 1)
        self.maps = nn.Conv2d(hidden, n_attributes, 3, padding=1)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.maps(torch.relu(self.reduce(fmap)))


@dataclass
class AttributePredictor:
    """A trained :class:`AttributeHead` with its attribute names and the model it belongs to."""

    head: AttributeHead
    names: list[str]
    model_identity: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.head.eval().requires_grad_(False)

    @property
    def in_channels(self) -> int:
        return int(self.head.reduce.in_channels)

    @property
    def hidden(self) -> int:
        return int(self.head.reduce.out_channels)

    @property
    def heldout_map(self) -> float | None:
        v = self.meta.get("metrics", {}).get("map_heldout")
        return None if v is None else float(v)

    def logit_maps(self, fmap: torch.Tensor) -> torch.Tensor:
        if fmap.dim() != 4 or fmap.shape[1] != self.in_channels:
            raise ValueError(f"the attribute predictor reads (B, {self.in_channels}, h, w) feature maps, "
                             f"got {tuple(fmap.shape)}; retrain it for this model (lfs-gui train-attributes INDEX)")
        with torch.inference_mode():
            return self.head(fmap.to(torch.float32).cpu())

    def predict_features(self, fmap: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(confidences (B, K) in [0, 1], activation maps (B, K, h, w), each a spatial softmax)."""
        lm = self.logit_maps(fmap)
        conf = torch.sigmoid(lm.mean(dim=(2, 3)))
        aam = torch.softmax(lm.flatten(2), dim=2).reshape(lm.shape)
        return conf.numpy().astype(np.float32), aam.numpy().astype(np.float32)

    def predict(self, model: EmbeddingModel, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Confidences and activation maps for model-input tensors ``x`` (B, 3, H, W) (one forward each)."""
        with torch.inference_mode():
            fmap = model.forward_features(x.to(model.device))
        return self.predict_features(fmap)

    def check_model(self, model: EmbeddingModel, where: str | Path) -> None:
        """Refuse a predictor trained on another model's features (its maps would be meaningless)."""
        if self.model_identity and model.identity() != self.model_identity:
            raise ModelLoadError(f"{where}: trained for model {self.model_identity}, not {model.identity()}; "
                                 "retrain it with `lfs-gui train-attributes INDEX`")

    # -- file ---------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        obj = {"format": FORMAT, "version": VERSION, "names": list(self.names), "model_identity": self.model_identity,
               "in_channels": self.in_channels, "hidden": self.hidden,
               "state_dict": {k: v.detach().cpu().float().clone() for k, v in self.head.state_dict().items()},
               "meta": _jsonable(self.meta)}
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
        log.info("saved attribute predictor (%d attributes) to %s", len(self.names), path)
        return path


def load_predictor(path: str | Path) -> AttributePredictor:
    """Read an ``attributes.pt`` (``weights_only=True``); :class:`ModelLoadError` naming the file and the fix."""
    from lfs_gui.models.checkpoint import load_state_dict_strict, read_checkpoint

    path = Path(path)
    fix = "retrain it with `lfs-gui train-attributes INDEX`"
    if not path.is_file():
        raise ModelLoadError(f"{path}: no attribute predictor; train one with `lfs-gui train-attributes INDEX`")
    try:
        obj = read_checkpoint(path)  # weights_only=True, never the trusted path
    except ModelLoadError as exc:
        raise ModelLoadError(f"{exc}; or, if it is an attribute predictor, {fix}") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not an lfs-gui attribute predictor (format != {FORMAT!r}); {fix}")
    if obj.get("version") != VERSION:
        raise ModelLoadError(f"{path}: attribute predictor version {obj.get('version')!r}, this lfs-gui reads {VERSION}; {fix}")
    names = obj.get("names")
    state = obj.get("state_dict")
    if not isinstance(names, list) or not names or not isinstance(state, dict):
        raise ModelLoadError(f"{path}: names or state_dict missing; {fix}")
    head = AttributeHead(int(obj["in_channels"]), len(names), int(obj["hidden"]))
    load_state_dict_strict(head, state, path, "attribute predictor")
    for k, v in head.state_dict().items():
        if not torch.isfinite(v).all():
            raise ModelLoadError(f"{path}: {k} holds NaN or inf; {fix}")
    return AttributePredictor(head, [str(n) for n in names], str(obj.get("model_identity", "")), dict(obj.get("meta") or {}))


def _jsonable(obj: Any) -> Any:
    """Plain Python containers and numbers only (what ``weights_only`` unpickling accepts)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
