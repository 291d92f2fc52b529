"""A retrieval session (Qt-free): the composition the desktop app and the headless commands share.

``Session.open_index(path)`` / ``Session.open_demo()`` (or their generators ``iter_open_*``, which
yield Progress) give a :class:`Session`; see :mod:`lfs_gui.session.core` for its parts:
:mod:`~lfs_gui.session.opening` (index folders, demo, model loader, decoder),
:mod:`~lfs_gui.session.retrieval` (vectors, external images, retrieve, ξ1) and
:mod:`~lfs_gui.session.explaining` (methods, explain, curves, continuity). Explanations are
:class:`lfs_gui.explain.base.HeatPair`; images decode with :func:`lfs_gui.data.images.open_image`.
"""

from lfs_gui.session.core import Session
from lfs_gui.session.opening import LazyModel, SessionParts
from lfs_gui.session.types import Hit, Query, Retrievals, SessionError, is_gallery_id, query_name

__all__ = [
    "Hit", "LazyModel", "Query", "Retrievals", "Session", "SessionError", "SessionParts", "is_gallery_id",
    "query_name",
]
