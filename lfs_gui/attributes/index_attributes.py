"""Attributes for an opened index: where its predictor lives, its gallery's labels, training it.

The composition the CLI (``lfs-gui train-attributes``, ``explain --attributes``, ``evaluate
--attributes``) and the app share. A predictor is saved next to the index as ``attributes.pt``
(``indexes/demo/attributes.pt`` for the embedded demo, prebuilt).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

from lfs_gui.attributes.predictor import PREDICTOR_FILE, AttributePredictor, load_predictor
from lfs_gui.data.attributes import GalleryAttributes, find_attribute_source, gallery_attributes
from lfs_gui.jobs import Progress

log = logging.getLogger(__name__)


def index_folder(index: str | Path) -> Path:
    """The folder of ``INDEX`` as the CLI accepts it (the literal ``demo`` is the embedded demo's)."""
    from lfs_gui.index.store import index_dir
    from lfs_gui.paths import demo_index_dir

    if str(index) == "demo" and not Path(index).exists():
        return demo_index_dir()
    return index_dir(index)


def predictor_path(folder: str | Path) -> Path:
    return Path(folder) / PREDICTOR_FILE


def session_attributes(session: Any, explicit: str | Path | None = None, level: str = "auto",
                       min_certainty: int = 3) -> GalleryAttributes:
    """Attribute labels of the session's gallery images (files found next to the gallery, or ``explicit``)."""
    g = session.gallery
    src = find_attribute_source(g.root, g.kind, explicit)
    return gallery_attributes(src, g.relpaths, g.labels_array(), list(g.classes), min_certainty=min_certainty, level=level)


def load_session_predictor(session: Any, path: str | Path) -> AttributePredictor:
    """The predictor at ``path``, checked against the session's model (loads the model)."""
    pred = load_predictor(path)
    pred.check_model(session.model, path)
    return pred


def iter_train_session(session: Any, attrs: GalleryAttributes, out: str | Path,
                       **settings: Any) -> Generator[Progress, None, AttributePredictor]:
    """Train on the session's gallery and save to ``out`` (atomic); a generator (cancel = stop iterating)."""
    from lfs_gui.attributes.train import iter_train_attributes

    if not session.model_loaded:
        yield Progress(0, 1, "loading the model")
    model = session.model
    g = session.gallery
    pred = yield from iter_train_attributes(model, g.paths, g.labels_array(), attrs, **settings)
    pred.meta["index"] = session.name
    pred.meta["source"] = _portable(pred.meta.get("source", ""))
    pred.save(out)
    return pred


def _portable(path: str) -> str:
    """A path under the project's data folder as ``resources/...`` (the shipped demo predictor must not
    record the machine it was built on); other paths unchanged."""
    from lfs_gui.paths import data_root

    try:
        return Path(path).resolve().relative_to(data_root().resolve()).as_posix()
    except (ValueError, OSError):
        return path
