"""Attributes for an opened index: where its predictor lives, its gallery's labels, training it.

The composition the CLI (``lfs-gui train-attributes``, ``explain --attributes``, ``evaluate
--attributes``) and the app share. A predictor is saved next to the index as ``attributes.pt``
(``indexes/demo/attributes.pt`` for the embedded demo, prebuilt).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class TrainedAttributes:
    """What the app's training job returns: where the predictor was saved, and the predictor."""

    path: Path
    predictor: AttributePredictor


def session_predictor_path(session: Any) -> Path | None:
    """``attributes.pt`` in the session's index folder (None when the session has no folder)."""
    folder = getattr(session, "folder", None)
    return None if folder is None else predictor_path(folder)


def train_attributes_job(session: Any, out: str | Path | None = None, **settings: Any) -> Generator[Progress, None, TrainedAttributes]:
    """The app's background job: labels found next to the gallery, train, save next to the index."""
    out = Path(out) if out is not None else session_predictor_path(session)
    if out is None:
        raise ValueError("this session has no index folder to save the attribute predictor in; choose a file")
    attrs = session_attributes(session)
    pred = yield from iter_train_session(session, attrs, out, **settings)
    return TrainedAttributes(out, pred)


def iter_pair_attributes(session: Any, query: Any, target: int, saliency1: Any, saliency2: Any,
                         predictor: AttributePredictor | None = None,
                         **settings: Any) -> Generator[Progress, None, tuple[AttributePredictor | None, Any, str]]:
    """SANE's choice for a pair: ``(predictor, AttributeChoice, "")``, or ``(None, None, why)`` when the
    index has no predictor. ``predictor`` (already loaded) skips the file."""
    from lfs_gui.attributes.sane import SaneChooser

    if predictor is None:
        path = session_predictor_path(session)
        if path is None or not path.is_file():
            return None, None, "no attribute predictor for this index (File ▸ Train attribute predictor)"
        yield Progress(0, 1, "attributes: loading the predictor")
        predictor = load_session_predictor(session, path)
    x1, x2 = session.input_tensor(query), session.input_tensor(target)
    choice = yield from SaneChooser(predictor, session.model, **settings).iter_choose(x1, x2, saliency1, saliency2)
    return predictor, choice, ""


def _portable(path: str) -> str:
    """A path under the project's data folder as ``resources/...`` (the shipped demo predictor must not
    record the machine it was built on); other paths unchanged."""
    from lfs_gui.paths import data_root

    try:
        return Path(path).resolve().relative_to(data_root().resolve()).as_posix()
    except (ValueError, OSError):
        return path
