"""The :class:`Session`: one gallery + its index + decoder + (lazily) the model, composed of three
parts that change for different reasons (Qt-free):

* opening/persistence (:mod:`lfs_gui.session.opening`): index folders, the demo, the model loader,
  the identity check, decoder files;
* retrieval (:class:`~lfs_gui.session.retrieval.Retrieval`, ``session.retrieval``): query vectors,
  the external-image cache, top/bottom-k, the suggested ξ1, labels;
* explanation and curves (:class:`~lfs_gui.session.explaining.Explaining`, ``session.explaining``):
  method availability, explain, selectivity and random curves, continuity.

The desktop app and the headless commands use the session's methods, which forward to those parts.
Retrieval and ExplainLFS need only the cached embeddings and the decoder (no model, no pixels), so a
session opens without importing the model; the model loads on first need (curves, model-side methods,
external queries), once, whichever thread asks first.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfs_gui.data.galleries import Gallery
from lfs_gui.device import resolve_device
from lfs_gui.explain.base import HeatPair, PairInput
from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import EmbeddingModel, Preprocessing
from lfs_gui.session.explaining import Explaining
from lfs_gui.session.opening import LazyModel, ModelLoader, SessionParts, iter_open_demo, iter_open_index
from lfs_gui.session.retrieval import Retrieval
from lfs_gui.session.types import Query, Retrievals, SessionError


class Session:
    """See module docstring. Build with :meth:`open_demo` / :meth:`open_index` (or their generators)."""

    def __init__(
        self,
        name: str,
        gallery: Gallery,
        index: EmbeddingIndex,
        preprocessing: Preprocessing,
        model_loader: ModelLoader,
        model_info: dict | None = None,
        decoder: Any = None,
        decoder_path: Path | None = None,
        device: str | torch.device | None = None,
        folder: Path | None = None,
    ) -> None:
        if len(gallery) != len(index):
            raise SessionError(f"gallery has {len(gallery)} images but the index {len(index)} vectors")
        self.name = name
        self.gallery = gallery
        self.index = index
        self.preprocessing = preprocessing
        self.model_info = dict(model_info or {})
        self.decoder_path = decoder_path
        self.folder = folder  # the index folder, when opened from one
        self._device = torch.device("cpu") if device is None else resolve_device(device)
        self._model = LazyModel(model_loader, self.model_info.get("name", "?"), self._device)
        self.retrieval = Retrieval(gallery, index, self._model)
        self.explaining = Explaining(self.retrieval, self._model, None if decoder is None else decoder.to(self._device))

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def from_parts(cls, parts: SessionParts, device: str | torch.device | None = None) -> Session:
        return cls(parts.name, parts.gallery, parts.index, parts.preprocessing, parts.model_loader,
                   parts.model_info, parts.decoder, parts.decoder_path, device=device, folder=parts.folder)

    @classmethod
    def iter_open_demo(cls, decoder: str | Path | None | bool = None,
                       device: str | torch.device | None = None) -> Generator[Progress, None, Session]:
        """The embedded demo; ``decoder``: another decoder file, or ``False`` for none; ``device``: where
        the model and decoder run (``None``: the CPU)."""
        dev = None if device is None else resolve_device(device)  # a missing device fails before any work
        return cls.from_parts((yield from iter_open_demo(decoder=decoder)), dev)

    @classmethod
    def iter_open_index(cls, path: str | Path, decoder: str | Path | None | bool = None,
                        trust_checkpoint: bool = False, gallery_root: str | Path | None = None,
                        model_path: str | Path | None = None, require_model: bool = False,
                        device: str | torch.device | None = None) -> Generator[Progress, None, Session]:
        """An index folder written by ``lfs-gui index``; ``decoder``: another decoder file, or ``False``;
        ``gallery_root``/``model_path``: where the gallery / the model that built it are now (see
        :func:`lfs_gui.session.opening.iter_open_index`); ``device``: where the model and decoder run
        (``None``: the CPU)."""
        dev = None if device is None else resolve_device(device)  # a missing device fails before any work
        return cls.from_parts((yield from iter_open_index(
            path, decoder=decoder, trust_checkpoint=trust_checkpoint, gallery_root=gallery_root, model_path=model_path,
            require_model=require_model)), dev)

    @classmethod
    def open_demo(cls, decoder: str | Path | None | bool = None, device: str | torch.device | None = None) -> Session:
        return run_generator(cls.iter_open_demo(decoder=decoder, device=device))

    @classmethod
    def open_index(cls, path: str | Path, decoder: str | Path | None | bool = None, trust_checkpoint: bool = False,
                   gallery_root: str | Path | None = None, model_path: str | Path | None = None,
                   device: str | torch.device | None = None) -> Session:
        return run_generator(cls.iter_open_index(path, decoder=decoder, trust_checkpoint=trust_checkpoint,
                                                 gallery_root=gallery_root, model_path=model_path, device=device))

    # -- basics -------------------------------------------------------------------------------------
    @property
    def embeddings(self) -> np.ndarray:
        return self.index.embeddings

    @property
    def index_kind(self) -> str:
        return self.index.kind

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def model(self) -> EmbeddingModel:
        """The embedding model, loaded on first use (thread-safe)."""
        return self._model.get()

    @property
    def model_loaded(self) -> bool:
        return self._model.loaded

    @property
    def device(self) -> torch.device:
        """Where the model (once loaded) and the decoder run."""
        return self._device

    def set_device(self, device: str | torch.device) -> torch.device:
        """Run the model and the decoder on ``device`` from now on (moves them if loaded); returns the
        resolved device (:class:`~lfs_gui.device.DeviceError` if this machine lacks it). Call it when
        no job is using the model."""
        dev = resolve_device(device)
        self._device = dev
        self._model.set_device(dev)
        if self.explaining.decoder is not None:
            self.explaining.decoder.to(dev)
        return dev

    @property
    def decoder(self) -> Any:
        return self.explaining.decoder

    def set_decoder(self, decoder: Any, path: str | Path | None) -> None:
        """Use another decoder (already loaded and checked against :attr:`dim`), on the session's device."""
        self.explaining.decoder = None if decoder is None else decoder.to(self._device)
        self.decoder_path = None if path is None else Path(path)

    def describe(self) -> dict:
        dec = None
        if self.decoder is not None:
            meta = getattr(self.decoder, "meta", {})
            dec = {"file": str(self.decoder_path) if self.decoder_path else None, "kind": getattr(self.decoder, "kind", "?"),
                   "size": getattr(self.decoder, "size", None), "val_mse": meta.get("val_mse"), "train_mse": meta.get("train_mse")}
        return {
            "name": self.name,
            "model": self.model_info.get("name", "?"),
            "dim": self.dim,
            "gallery_size": len(self.gallery),
            "classes": len(self.gallery.classes),
            "labelled": self.gallery.has_labels,
            "index_kind": self.index_kind,
            "device": str(self._device),
            "decoder": dec,
        }

    # -- retrieval (see Retrieval) -------------------------------------------------------------------
    def class_of(self, i: int) -> str | None:
        return self.retrieval.class_of(i)

    def image_path(self, query: Query) -> Path:
        return self.retrieval.image_path(query)

    def label_of(self, query: Query) -> int | None:
        return self.retrieval.label_of(query)

    def input_tensor(self, query: Query) -> Any:
        return self.retrieval.input_tensor(query)

    def iter_embed_image(self, path: str | Path) -> Generator[Progress, None, np.ndarray]:
        return self.retrieval.iter_embed_image(path)

    def embed_image(self, path: str | Path) -> np.ndarray:
        return self.retrieval.embed_image(path)

    def vector(self, query: Query) -> np.ndarray:
        return self.retrieval.vector(query)

    def retrieve(self, query: Query, k: int = 8) -> Retrievals:
        return self.retrieval.retrieve(query, k)

    def suggested_xi1(self) -> float:
        return self.retrieval.suggested_xi1()

    # -- explanation and curves (see Explaining) -----------------------------------------------------
    def methods(self) -> list[str]:
        return self.explaining.methods()

    def needs_model(self, method: str) -> bool:
        return self.explaining.needs_model(method)

    def is_instant(self, method: str) -> bool:
        return self.explaining.is_instant(method)

    def pair_input(self, query: Query, target: int, xi1: float, with_tensors: bool) -> PairInput:
        return self.explaining.pair_input(query, target, xi1, with_tensors)

    def explain(self, query: Query, target: int, method: str = "explainlfs", xi1: float | None = None,
                xi2: float = 0.7, question: str = "decision", **settings: Any) -> HeatPair:
        return self.explaining.explain(query, target, method, xi1=xi1, xi2=xi2, question=question, **settings)

    def iter_explain(self, query: Query, target: int, method: str = "explainlfs", xi1: float | None = None,
                     xi2: float = 0.7, question: str = "decision", **settings: Any) -> Generator[Progress, None, HeatPair]:
        return self.explaining.iter_explain(query, target, method, xi1=xi1, xi2=xi2, question=question, **settings)

    def decoder_knows(self, query: Query) -> bool:
        return self.explaining.decoder_knows(query)

    def iter_curve(self, query: Query, target: int, explanation: HeatPair, steps: int = 20,
                   perturbation: str = "noise", seed: int = 0, **kw: Any):
        return self.explaining.iter_curve(query, target, explanation, steps=steps, perturbation=perturbation, seed=seed, **kw)

    def iter_random_curve(self, query: Query, target: int, steps: int = 20, perturbation: str = "noise",
                          seed: int = 0, xi1: float | None = None, question: str = "decision", **kw: Any):
        return self.explaining.iter_random_curve(query, target, steps=steps, perturbation=perturbation, seed=seed, xi1=xi1,
                                                 question=question, **kw)

    def iter_oracle_curve(self, query: Query, target: int, explanation: HeatPair, steps: int = 20,
                          perturbation: str = "noise", seed: int = 0, **kw: Any):
        return self.explaining.iter_oracle_curve(query, target, explanation, steps=steps, perturbation=perturbation,
                                                 seed=seed, **kw)

    def iter_continuity(self, query: Query, target: int, method: str = "explainlfs", steps: int = 20,
                        xi1: float | None = None, mode: str = "pair", **settings: Any):
        return self.explaining.iter_continuity(query, target, method, steps=steps, xi1=xi1, mode=mode, **settings)
