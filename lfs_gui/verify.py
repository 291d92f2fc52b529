"""Verify any two images without a gallery (the paper's first experiment: FaceNet face verification).

A *pair session* is a :class:`~lfs_gui.session.Session` over an empty gallery: both images are
external files, embedded with the model (loaded when the pair session opens); every explainer that
needs no gallery runs on them (ExplainLFS and its variants when a decoder is given, the model-side
baselines, random), and so do the pixel-flipping curves and the pair figure. The similar/dissimilar
decision uses ξ1 from, in this order: the user; the model card
(:attr:`EmbeddingModel.suggested_xi1`, e.g. 0.3 for FaceNet); a gallery the user also opened; the
paper's 0.3. :func:`decision_xi1` says which one it used.

With no model file the demo model is used, with the demo index's decoder (the decoder maps that
model's embeddings to images; it needs no gallery at explanation time).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.jobs import Progress, run_generator

log = logging.getLogger(__name__)

PAPER_XI1 = 0.3


def card_xi1(model: Any) -> float | None:
    """The model card's similar/dissimilar threshold (``suggested_xi1``), or None when it has none."""
    v = getattr(model, "suggested_xi1", None)
    return None if v is None else float(v)


def decision_xi1(user: float | None, model: Any = None, gallery_xi1: float | None = None) -> tuple[float, str]:
    """ξ1 for a verification and where it comes from: ``user``, ``model card``, ``gallery`` or ``paper``."""
    if user is not None:
        return float(user), "user"
    card = card_xi1(model) if model is not None else None
    if card is not None:
        return card, "model card"
    if gallery_xi1 is not None:
        return float(gallery_xi1), "gallery"
    return PAPER_XI1, "paper"


def iter_open_pair(model: str | Path | None = None, decoder: str | Path | None | bool = None,
                   trust_checkpoint: bool = False, device: Any = None) -> Generator[Progress, None, Any]:
    """A :class:`~lfs_gui.session.Session` with no gallery, for explaining two image files.

    ``model``: a model file (``None``: the demo model); ``decoder``: a decoder file, ``False`` for
    none, ``None`` for the demo's decoder with the demo model and none otherwise.
    """
    from lfs_gui.models.decoder import load_decoder
    from lfs_gui.models.loader import load_demo_model, load_model
    from lfs_gui.session import Session

    yield Progress(0, 3, "loading the model")
    if model is None:
        net, info = load_demo_model(device=device), {"demo": True}
    else:
        path = Path(model).expanduser().resolve()
        net, info = load_model(path, trust_checkpoint=trust_checkpoint, device=device), {"source": str(path)}
    info = {**net.describe(), **info}
    yield Progress(1, 3, "loading the decoder")
    dec_path = _decoder_path(decoder, demo=model is None)
    dec = None if dec_path is None else load_decoder(dec_path, expected_dim=net.dim)
    parts = _empty_parts("two images", net.dim, net.preprocessing, lambda: net, info, dec, dec_path)
    session = Session.from_parts(parts, device)  # model and decoder on the device (the model is there already)
    session.model  # noqa: B018 - already loaded: mark it so (methods() then checks model-side needs)
    yield Progress(3, 3, "ready")
    return session


def _empty_parts(name: str, dim: int, preprocessing: Any, loader: Any, info: dict, decoder: Any,
                 decoder_path: Path | None) -> Any:
    from lfs_gui.data.gallery_types import Gallery
    from lfs_gui.index.faiss_index import EmbeddingIndex
    from lfs_gui.session import SessionParts

    gallery = Gallery(name="pair", root=Path.cwd(), items=[], classes=[], kind="pair", split="all")
    index = EmbeddingIndex(np.zeros((0, dim), np.float32), "flat")
    return SessionParts(name=name, gallery=gallery, index=index, preprocessing=preprocessing, model_loader=loader,
                        model_info=info, decoder=decoder, decoder_path=decoder_path)


def pair_session_from(session: Any) -> Any:
    """A pair session sharing an open session's model (loaded once, whichever asks first) and decoder."""
    from lfs_gui.session import Session

    parts = _empty_parts("two images", session.dim, session.preprocessing, lambda: session.model,
                         dict(session.model_info), session.decoder, session.decoder_path)
    return Session.from_parts(parts, session.device)  # the same device as the open session


def open_pair(model: str | Path | None = None, decoder: str | Path | None | bool = None,
              trust_checkpoint: bool = False, device: Any = None) -> Any:
    """:func:`iter_open_pair` run to completion."""
    return run_generator(iter_open_pair(model, decoder, trust_checkpoint, device))


def _decoder_path(decoder: str | Path | None | bool, demo: bool) -> Path | None:
    if decoder is False:
        return None
    if decoder is not None:
        return Path(decoder).expanduser().resolve()
    if not demo:
        return None
    from lfs_gui.index.sidecar import SIDECAR_FILE, parse_sidecar
    from lfs_gui.paths import demo_index_dir

    folder = demo_index_dir()
    _raw, meta = parse_sidecar(folder / SIDECAR_FILE, "reinstall lfs-gui, which ships the demo")
    return None if not meta.decoder_file else (folder / meta.decoder_file).resolve()


def verify_record(session: Any, explanation: Any, xi1_source: str) -> dict:
    """The verification's answer: similarity, decision, ξ1 and where it came from."""
    return {"similarity": float(explanation.similarity), "similar": bool(explanation.similar),
            "decision": "same (similar)" if explanation.similar else "different (dissimilar)",
            "xi1": explanation.settings.get("xi1"), "xi1_source": xi1_source,
            "model": session.model_info.get("name", "?"), "methods": session.methods()}
