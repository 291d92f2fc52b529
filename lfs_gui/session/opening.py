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

from lfs_gui.data.galleries import Gallery
from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel, ModelLoadError, Preprocessing
from lfs_gui.paths import demo_gallery_dir, demo_index_dir

log = logging.getLogger(__name__)

ModelLoader = Callable[[], EmbeddingModel]


class LazyModel:
    """The embedding model, loaded by ``loader`` on first :meth:`get` (thread-safe: a worker thread
    and the GUI never load it twice)."""

    def __init__(self, loader: ModelLoader, name: str = "?") -> None:
        self._loader = loader
        self._name = name
        self._model: EmbeddingModel | None = None
        self._lock = threading.Lock()

    def get(self) -> EmbeddingModel:
        with self._lock:
            if self._model is None:
                log.info("loading model %s", self._name)
                self._model = self._loader()
            return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None


def model_loader(info: dict, trust_checkpoint: bool) -> ModelLoader:
    """How to load the model an index was built with (from its sidecar description)."""
    from lfs_gui.models.loader import load_demo_model, load_model

    if info.get("demo"):
        return load_demo_model
    source = info.get("source") or ""

    def load() -> EmbeddingModel:
        if not source or not Path(source).is_file():
            raise ModelLoadError(
                f"{source or '(no model file recorded)'}: the model this index was built with is not found; "
                "open the index with --model PATH (the same checkpoint)"
            )
        return load_model(source, trust_checkpoint=trust_checkpoint)

    return load


def checked_identity(loader: ModelLoader, expected: str, where: Path) -> ModelLoader:
    """``loader`` that warns when the model it loads is not the one the index was built with."""

    def load() -> EmbeddingModel:
        model = loader()
        if expected and model.identity() != expected:
            log.warning(
                "%s: the model loaded now (%s) differs from the one the index was built with (%s); "
                "similarities of external images may not match the gallery's",
                where, model.identity(), expected,
            )
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
) -> Generator[Progress, None, SessionParts]:
    """Open an index folder written by ``lfs-gui index``; yields Progress, returns its parts.

    ``decoder``: a decoder file to use instead of the sidecar's, or ``False`` for none (e.g. to train a
    replacement for a broken one).
    """
    from lfs_gui.index.store import index_dir, load_index

    folder = index_dir(path)
    yield Progress(0, 3, f"loading index {folder}")
    index = load_index(folder)
    meta = index.meta
    if gallery_root is not None:
        meta = replace(meta, gallery_root=str(gallery_root))
    gallery = meta.to_gallery()
    missing = [it.path for it in gallery.items[:50] if not it.path.is_file()]
    if missing:
        log.warning("%s: %s (and maybe more) not found: the gallery folder moved? thumbnails will be missing",
                    folder, missing[0])
    yield Progress(1, 3, "loading decoder")
    dec, dec_path = load_decoder_ref(meta.decoder_file if decoder is None else decoder, folder, index.dim)
    info = dict(meta.model)
    pre = Preprocessing.from_dict(info["preprocessing"]) if "preprocessing" in info else Preprocessing()
    parts = SessionParts(
        name=name or meta.gallery_name or folder.name,
        gallery=gallery,
        index=index,
        preprocessing=pre,
        model_loader=loader or checked_identity(model_loader(info, trust_checkpoint), meta.model_identity, folder),
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
