"""Opening sessions: the embedded demo and saved index folders (generators yielding Progress)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lfs_gui.jobs import Progress
from lfs_gui.models.base import EmbeddingModel, ModelLoadError, Preprocessing
from lfs_gui.paths import demo_gallery_dir, indexes_dir

if TYPE_CHECKING:
    from lfs_gui.session import Session

log = logging.getLogger(__name__)


def demo_index_dir() -> Path:
    return indexes_dir() / "demo"


def _model_loader(info: dict, trust_checkpoint: bool) -> Callable[[], EmbeddingModel]:
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


def _check_identity(loader: Callable[[], EmbeddingModel], expected: str, where: Path) -> Callable[[], EmbeddingModel]:
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


def _load_decoder(ref: str | Path | None | bool, folder: Path, dim: int) -> tuple[Any, Path | None]:
    from lfs_gui.models.decoder import load_decoder

    if ref is None or ref is False:
        return None, None
    path = Path(ref)
    if not path.is_absolute():
        path = (folder / path).resolve()
    return load_decoder(path, expected_dim=dim), path


def iter_open_index(
    cls: type["Session"],
    path: str | Path,
    decoder: str | Path | None | bool = None,
    trust_checkpoint: bool = False,
    gallery_root: Path | None = None,
    model_loader: Callable[[], EmbeddingModel] | None = None,
    name: str | None = None,
) -> Generator[Progress, None, "Session"]:
    """Open an index folder written by ``lfs-gui index``; yields Progress, returns the Session.

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
    dec, dec_path = _load_decoder(meta.decoder_file if decoder is None else decoder, folder, index.dim)
    info = dict(meta.model)
    pre = Preprocessing.from_dict(info["preprocessing"]) if "preprocessing" in info else Preprocessing()
    loader = model_loader or _check_identity(_model_loader(info, trust_checkpoint), meta.model_identity, folder)
    session = cls(
        name=name or meta.gallery_name or folder.name,
        gallery=gallery,
        index=index,
        preprocessing=pre,
        model_loader=loader,
        model_info=info,
        decoder=dec,
        decoder_path=dec_path,
    )
    yield Progress(3, 3, "ready")
    return session


def iter_open_demo(cls: type["Session"]) -> Generator[Progress, None, "Session"]:
    """The embedded demo: the shipped index over ``resources/demo/images`` (no embedding at launch)."""
    folder = demo_index_dir()
    if not (folder / "index.json").is_file():
        raise ModelLoadError(
            f"{folder}: the demo index is missing; rebuild it with `python -m lfs_gui.demo.train_demo` "
            "(or reinstall lfs-gui, which ships it)"
        )
    return (yield from iter_open_index(cls, folder, gallery_root=demo_gallery_dir() / "images", name="demo"))
