"""Retrieval: query vectors, the external-image embedding cache, top/bottom-k, the suggested ξ1, labels.

What changes here is how a query becomes a vector and a ranking. Gallery queries need only the cached
embeddings (no model, microseconds); an external image is decoded and embedded once (the model loads
on first need) and its vector cached per path, so afterwards it answers as fast as a gallery id.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lfs_gui.data.galleries import Gallery
from lfs_gui.data.images import ImageError, open_image
from lfs_gui.index.faiss_index import EmbeddingIndex
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.session.types import Hit, Query, Retrievals, SessionError, is_gallery_id

if TYPE_CHECKING:
    from lfs_gui.session.opening import LazyModel

log = logging.getLogger(__name__)


def session_image(path: str | Path) -> Any:
    """Decode an image for the session (RGB); a bad file raises :class:`SessionError` naming it."""
    try:
        return open_image(path)
    except ImageError as exc:
        raise SessionError(str(exc)) from exc


class Retrieval:
    """Answers "which gallery images are most (and least) similar to this query" for one gallery."""

    def __init__(self, gallery: Gallery, index: EmbeddingIndex, model: LazyModel) -> None:
        self.gallery = gallery
        self.index = index
        self.labels = gallery.labels_array()
        self._model = model
        self._external: dict[str, np.ndarray] = {}
        self._xi1: float | None = None

    @property
    def embeddings(self) -> np.ndarray:
        return self.index.embeddings

    # -- queries ---------------------------------------------------------------------------------
    def class_of(self, i: int) -> str | None:
        return self.gallery.items[i].class_name

    def image_path(self, query: Query) -> Path:
        return self.gallery.items[query].path if is_gallery_id(query) else Path(query)

    def label_of(self, query: Query) -> int | None:
        """The class label of a gallery image (``None`` when unlabelled or external)."""
        if is_gallery_id(query):
            lab = int(self.labels[int(query)])
            return None if lab < 0 else lab
        return None

    def input_tensor(self, query: Query) -> Any:
        """(1, 3, H, W) normalised model input of an image (loads the model: call off the GUI thread)."""
        return self._model.get().preprocessing.to_tensor(session_image(self.image_path(query))).unsqueeze(0)

    # -- vectors ---------------------------------------------------------------------------------
    def iter_embed_image(self, path: str | Path) -> Generator[Progress, None, np.ndarray]:
        """Embedding of an external image, cached per path; yields between decoding the image (first, so a
        bad file fails fast), loading the model and the forward pass (each yield a cancel point)."""
        key = str(Path(path).resolve())
        if key not in self._external:
            yield Progress(0, 3, f"decoding {Path(path).name}")
            img = session_image(path)
            if not self._model.loaded:
                yield Progress(1, 3, "loading the model")
            model = self._model.get()
            yield Progress(2, 3, f"embedding {Path(path).name}")
            self._external[key] = model.embed_images([img])[0]
        return self._external[key]

    def embed_image(self, path: str | Path) -> np.ndarray:
        """:meth:`iter_embed_image` driven to its end (loads the model: call off the GUI thread)."""
        return run_generator(self.iter_embed_image(path))

    def vector(self, query: Query) -> np.ndarray:
        if is_gallery_id(query):
            n = len(self.gallery)
            if not 0 <= int(query) < n:
                raise SessionError(f"image id {query} is out of range: the gallery has ids 0..{n - 1}")
            return self.embeddings[int(query)]
        return self.embed_image(query)

    # -- ranking ---------------------------------------------------------------------------------
    def retrieve(self, query: Query, k: int = 8) -> Retrievals:
        """Top-k most similar and k most dissimilar (cosine), the query itself excluded."""
        from lfs_gui.index.recall import query_recall

        qid = int(query) if is_gallery_id(query) else None
        (ds, is_), (dd, id_) = self.index.both_ends(self.vector(query), k, exclude=qid)
        qlab = self.label_of(query)

        def hits(d: np.ndarray, ids: np.ndarray) -> list[Hit]:
            out = []
            for r, (s, i) in enumerate(zip(d.tolist(), ids.tolist()), 1):
                lab = int(self.labels[i])
                same = None if qlab is None or lab < 0 else lab == qlab
                out.append(Hit(int(i), float(s), r, same))
            return out

        recall = None
        if qlab is not None and self.gallery.has_labels:
            ranked = is_ if k >= 8 else self.index.most_similar(self.vector(query), 8, exclude=qid)[1]
            recall = query_recall(self.labels, qlab, ranked)
        return Retrievals(qid, hits(ds, is_), hits(dd, id_), recall)

    def suggested_xi1(self) -> float:
        """A similar/dissimilar threshold for this model: the cosine that best separates same-class
        from different-class pairs of the gallery (balanced accuracy); 0.3 (the paper's) if unlabelled."""
        if self._xi1 is None:
            from lfs_gui.index.recall import suggest_xi1

            self._xi1 = suggest_xi1(self.embeddings, self.labels)
        return self._xi1
