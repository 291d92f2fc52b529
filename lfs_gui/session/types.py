"""What a session's answers are made of: queries, hits, retrievals, and the session's error type.

A leaf of :mod:`lfs_gui.session` (no imports from its siblings), so the opening, retrieval and
explaining parts can all use these without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

Query = int | str | Path
"""A gallery image id (0-based row of the index) or the path of an external image file."""


class SessionError(ValueError):
    """A session could not be opened or a request is impossible; the message says why and the fix."""


@dataclass(frozen=True)
class Hit:
    """One retrieved gallery image: its id, cosine score, 1-based rank and whether it shares the
    query's class (``None`` when either label is unknown)."""

    id: int
    score: float
    rank: int  # 1-based
    same_class: bool | None


@dataclass(frozen=True)
class Retrievals:
    """The k most similar and k most dissimilar gallery images of a query, and its Recall@K (when
    the query and the gallery are labelled)."""

    query_id: int | None
    similar: list[Hit]
    dissimilar: list[Hit]
    recall: dict[int, float] | None


def is_gallery_id(query: Query) -> bool:
    """True for a gallery image id, False for an external image path."""
    return isinstance(query, (int, np.integer))


def query_name(query: Query) -> int | str:
    """JSON-able form of a query (its id, or its path as a string), for settings and reports."""
    return int(query) if is_gallery_id(query) else str(query)
