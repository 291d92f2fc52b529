"""Opening sessions: the embedded demo and saved index folders, the model they were built with, and
the decoder (generators yielding Progress, in the ``lfs_gui.jobs`` pattern).

What changes here is persistence: index-folder layout, where the model file is found, the identity
check, decoder files. :func:`iter_open_index` returns the parts of a session (:class:`SessionParts`);
:class:`lfs_gui.session.Session` composes them. The model is not loaded when a session opens:
:class:`LazyModel` loads it on first need, once, whichever thread asks first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from lfs_gui.data.galleries import Gallery
from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel, ModelLoadError, Preprocessing
from lfs_gui.paths import demo_gallery_dir, demo_index_dir

log = logging.getLogger(__name__)

ModelLoader = Callable[[], EmbeddingModel]


class LazyModel:
    """The embedding model, loaded by ``loader`` (onto the CPU) on first :meth:`get` and then moved to
    ``device`` (thread-safe: a worker thread and the GUI never load it twice)."""

    def __init__(self, loader: ModelLoader, name: str = "?", device: torch.device | None = None) -> None:
        self._loader = loader
        self._name = name
        self._model: EmbeddingModel | None = None
        self._lock = threading.Lock()
        self.device = torch.device("cpu") if device is None else device

    def get(self) -> EmbeddingModel:
        with self._lock:
            if self._model is None:
                log.info("loading model %s onto %s", self._name, self.device)
                self._model = self._loader().to(self.device)
            return self._model

    def set_device(self, device: torch.device) -> None:
        """Run on ``device`` from now on (moves the model if it is loaded)."""
        with self._lock:
            self.device = device
            if self._model is not None:
                self._model.to(device)

    @property
    def loaded(self) -> bool:
        return self._model is not None


class ModelNotFoundError(ModelLoadError):
    """The model file an index was built with is not where its sidecar says; ``candidates`` were tried."""

    def __init__(self, message: str, candidates: list[Path]) -> None:
        super().__init__(message)
        self.candidates = candidates


class ModelMismatchError(ModelLoadError):
    """The model given is not the one that embedded the index (another identity): refused."""


def model_candidates(info: dict, folder: Path | None) -> list[Path]:
    """Where the recorded model file may be: the absolute path at build time, then the path relative to
    the index folder (index and model moved together)."""
    cands = [Path(info["source"])] if info.get("source") else []
    if folder is not None and info.get("source_relative"):
        rel = (folder / info["source_relative"]).resolve()
        if rel not in cands:
            cands.append(rel)
    return cands


def find_model_file(info: dict, folder: Path | None) -> Path | None:
    """The recorded model file if it exists (None for the demo model, which is always there)."""
    return next((p for p in model_candidates(info, folder) if p.is_file()), None)


def model_missing(info: dict, folder: Path) -> ModelNotFoundError | None:
    """The error to raise when the index's model file is nowhere to be found (None: found, or the demo)."""
    if info.get("demo") or find_model_file(info, folder) is not None:
        return None
    cands = model_candidates(info, folder)
    tried = " nor at ".join(str(c) for c in cands) or "(no model file recorded)"
    return ModelNotFoundError(f"{folder / 'index.json'}: the model this index was built with is not at {tried}; "
                              "pass --model PATH (the same checkpoint, wherever it is now)", cands)


def model_loader(info: dict, trust_checkpoint: bool, folder: Path | None = None) -> ModelLoader:
    """How to load the model an index was built with (from its sidecar description)."""
    from lfs_gui.models.loader import load_demo_model, load_model

    if info.get("demo"):
        return load_demo_model

    def load() -> EmbeddingModel:
        path = find_model_file(info, folder)
        if path is None:
            raise model_missing(info, folder or Path(".")) or ModelLoadError("the model file is missing")
        return load_model(path, trust_checkpoint=trust_checkpoint)

    return load


def checked_identity(loader: ModelLoader, expected: str, where: Path, model_file: str | Path | None = None) -> ModelLoader:
    """``loader`` that refuses (:class:`ModelMismatchError`) a model that is not the one the index was
    built with: its similarities would not match the stored embeddings."""
    from lfs_gui.index.store import identity_mismatch

    def load() -> EmbeddingModel:
        model = loader()
        if expected and model.identity() != expected:
            raise ModelMismatchError(identity_mismatch(where / "index.json", expected, model.identity(),
                                                       None if model_file is None else str(model_file)))
        return model

    return load


def load_decoder_ref(ref: str | Path | None | bool, folder: Path, dim: int) -> tuple[Any, Path | None]:
    """The decoder ``ref`` names (relative to the index ``folder``), checked against ``dim``; ``(None,
    None)`` for no decoder (``None`` or ``False``)."""
    from lfs_gui.models.decoder import load_decoder

    if ref is None or ref is False:
        return None, None
    path = Path(ref)
    if not path.is_absolute():
        path = (folder / path).resolve()
    return load_decoder(path, expected_dim=dim), path


@dataclass
class SessionParts:
    """Everything a :class:`~lfs_gui.session.Session` is composed of, as opened from disk."""

    name: str
    gallery: Gallery
    index: EmbeddingIndex
    preprocessing: Preprocessing
    model_loader: ModelLoader
    model_info: dict
    decoder: Any = None
    decoder_path: Path | None = None
    folder: Path | None = None  # the index folder (its attribute predictor lives there)


def iter_open_index(
    path: str | Path,
    decoder: str | Path | None | bool = None,
    trust_checkpoint: bool = False,
    gallery_root: Path | None = None,
    loader: ModelLoader | None = None,
    name: str | None = None,
    model_path: str | Path | None = None,
    require_model: bool = False,
) -> Generator[Progress, None, SessionParts]:
    """Open an index folder written by ``lfs-gui index``; yields Progress, returns its parts.

    ``decoder``: a decoder file to use instead of the sidecar's, or ``False`` for none (e.g. to train a
    replacement for a broken one). ``gallery_root``: where the gallery is now (default: found from the
    sidecar, see :meth:`IndexMeta.locate_gallery`; :class:`GalleryNotFoundError` when it is nowhere).
    ``model_path``: the model file to use instead of the recorded one; it is loaded now and refused
    (:class:`ModelMismatchError`) unless it is the model that built the index. ``require_model``: fail
    with :class:`ModelNotFoundError` now, rather than on first use, when the recorded model file is
    missing (the app asks the user to locate it).
    """
    from lfs_gui.index.store import index_dir, load_index

    folder = index_dir(path)
    yield Progress(0, 3, f"loading index {folder}")
    index = load_index(folder)
    meta = index.meta
    gallery = meta.locate_gallery(gallery_root, where=folder)
    meta = replace(meta, gallery_root=str(gallery.root))
    info = dict(meta.model)
    if model_path is not None:
        yield Progress(1, 3, f"loading model {Path(model_path).name}")
        from lfs_gui.models.loader import load_model

        file = Path(model_path).expanduser().resolve()
        model = checked_identity(lambda: load_model(file, trust_checkpoint=trust_checkpoint), meta.model_identity,
                                 folder, file)()
        loader = lambda: model  # noqa: E731 - already loaded and checked
    elif require_model and loader is None and (missing := model_missing(info, folder)) is not None:
        raise missing
    yield Progress(1, 3, "loading decoder")
    dec, dec_path = load_decoder_ref(meta.decoder_file if decoder is None else decoder, folder, index.dim)
    pre = Preprocessing.from_dict(info["preprocessing"]) if "preprocessing" in info else Preprocessing()
    parts = SessionParts(
        name=name or meta.gallery_name or folder.name,
        gallery=gallery,
        index=index,
        preprocessing=pre,
        model_loader=loader or checked_identity(model_loader(info, trust_checkpoint, folder), meta.model_identity, folder),
        model_info=info,
        decoder=dec,
        decoder_path=dec_path,
        folder=folder,
    )
    yield Progress(3, 3, "ready")
    return parts


def iter_open_demo(decoder: str | Path | None | bool = None) -> Generator[Progress, None, SessionParts]:
    """The embedded demo: the shipped index over ``resources/demo/images`` (no embedding at launch);
    ``decoder`` as in :func:`iter_open_index`."""
    folder = demo_index_dir()
    if not (folder / "index.json").is_file():
        raise ModelLoadError(
            f"{folder}: the demo index is missing; rebuild it with `python -m lfs_gui.demo.train_demo` "
            "(or reinstall lfs-gui, which ships it)"
        )
    return (yield from iter_open_index(folder, decoder=decoder, gallery_root=demo_gallery_dir() / "images", name="demo"))
