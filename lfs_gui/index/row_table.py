"""The row table of a large index, read lazily: no Python object per image.

:func:`lfs_gui.index.rows.read_rows` turns ``rows.parquet`` into two Python lists, fine for CUB or
Cars and hopeless for 10M images (a string object per image, seconds to validate). From
:data:`LAZY_ROWS` rows on, :func:`lfs_gui.index.store.load_index` opens a :class:`RowTable` instead:

* the Parquet file is opened memory-mapped and only its footer is read; the ``label`` column is read
  whole into one read-only int32 array (4 bytes per image, shared by class filters, recall and the
  app's labels: the one per-image cost of an opened index);
* a ``relpath`` is fetched on demand from its row group (:data:`~lfs_gui.index.rows.ROW_GROUP` rows,
  a few MB), and the last few row groups are cached, so scrolling a gallery reads each group once;
  a row group's ids and paths are checked when it is first read (the eager reader checks them all
  at open);
* :meth:`RowTable.iter_match` filters by file name with Arrow's vectorised substring search, one row
  group at a time (a generator yielding progress: each group is a cancel point).

:class:`LazyItems` presents it as the ``items`` of a :class:`~lfs_gui.data.gallery_types.Gallery`:
``items[i]`` builds one :class:`~lfs_gui.data.gallery_types.GalleryItem` when asked, and it answers
``labels_array()`` and ``has_labels()`` from the label array.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from lfs_gui.data.gallery_types import GalleryItem
from lfs_gui.index.sidecar import IndexLoadError
from lfs_gui.jobs import Progress

log = logging.getLogger(__name__)

LAZY_ROWS = 200_000  # from this many rows on, an index's rows are read lazily
_CACHED_GROUPS = 8


class RowTable:
    """``rows.parquet`` read lazily (see the module docstring); ``fix`` ends every error message."""

    def __init__(self, path: str | Path, count: int, n_classes: int, fix: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.fix = Path(path), fix
        try:
            self._pf = pq.ParquetFile(self.path, memory_map=True)
            schema = self._pf.schema_arrow
        except Exception as exc:  # noqa: BLE001 - truncated or not Parquet: pyarrow raises several types
            raise IndexLoadError(f"{self.path}: not a readable Parquet row table ({type(exc).__name__}: {exc}); "
                                 f"{fix}") from exc
        for name, typ in {"id": pa.int64(), "relpath": pa.string(), "label": pa.int32()}.items():
            if name not in schema.names or not schema.field(name).type.equals(typ):
                raise IndexLoadError(f"{self.path}: column {name!r} missing or not {typ}; {fix}")
        if self._pf.metadata.num_rows != count:
            raise IndexLoadError(f"{self.path}: holds {self._pf.metadata.num_rows} rows but index.json says {count}; {fix}")
        sizes = [self._pf.metadata.row_group(g).num_rows for g in range(self._pf.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        try:
            col = self._pf.read(columns=["label"]).column("label")
        except Exception as exc:  # noqa: BLE001
            raise IndexLoadError(f"{self.path}: unreadable ({type(exc).__name__}: {exc}); {fix}") from exc
        self.labels = np.array(col.fill_null(-1).to_numpy(), dtype=np.int32)  # a NumPy copy: Arrow's buffers go
        self.labels.flags.writeable = False  # shared with every user of labels_array()
        del col
        pa.default_memory_pool().release_unused()  # the read's temporaries (~8 B/row) left Arrow's pool resident
        bad = (self.labels < -1) | (self.labels >= n_classes)
        if bad.any():
            i = int(np.argmax(bad))
            raise IndexLoadError(f"{self.path}: label {int(self.labels[i])} of image {i} is not an index into the "
                                 f"{n_classes} classes; {fix}")
        self._groups: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _group(self, g: int) -> Any:
        """The ``relpath`` array of row group ``g`` (read, checked and cached on first use)."""
        if g in self._groups:
            self._groups.move_to_end(g)
            return self._groups[g]
        import pyarrow.compute as pc

        try:
            t = self._pf.read_row_group(g, columns=["id", "relpath"])
        except Exception as exc:  # noqa: BLE001
            raise IndexLoadError(f"{self.path}: row group {g} unreadable ({type(exc).__name__}: {exc}); "
                                 f"{self.fix}") from exc
        start = int(self._starts[g])
        if not np.array_equal(t.column("id").to_numpy(), np.arange(start, start + t.num_rows)):
            raise IndexLoadError(f"{self.path}: ids of rows {start}.. are not in order; {self.fix}")
        rel = t.column("relpath").combine_chunks()
        unsafe = pc.or_(pc.or_(pc.starts_with(rel, "/"), pc.match_substring(rel, "\\")),
                        pc.or_(pc.match_substring_regex(rel, r"(^|/)\.\.(/|$)"), pc.equal(pc.utf8_length(rel), 0)))
        if pc.any(pc.fill_null(unsafe, True)).as_py():
            i = int(np.argmax(pc.fill_null(unsafe, True).to_numpy(zero_copy_only=False)))
            raise IndexLoadError(f"{self.path}: relpath {rel[i].as_py()!r} of image {start + i} is not a path "
                                 f"inside the gallery; {self.fix}")
        self._groups[g] = rel
        if len(self._groups) > _CACHED_GROUPS:
            self._groups.popitem(last=False)
        return rel

    def relpath(self, i: int) -> str:
        """Image ``i``'s path relative to the gallery root."""
        if not 0 <= i < len(self):
            raise IndexError(f"image id {i} out of range 0..{len(self) - 1}")
        g = int(np.searchsorted(self._starts, i, side="right") - 1)
        return self._group(g)[i - int(self._starts[g])].as_py()  # its group was checked when read

    def gallery_items(self, root: Path, classes: list[str]) -> "LazyItems":
        """The ``items`` of the gallery rooted at ``root`` (what :meth:`IndexMeta.to_gallery` uses)."""
        return LazyItems(self, root, classes)

    def sample(self, k: int = 16) -> list[str]:
        """``k`` relpaths spread over the table (to check that a gallery folder is the right one)."""
        n = len(self)
        return [self.relpath(int(i)) for i in np.unique(np.linspace(0, n - 1, min(k, n)).astype(int))] if n else []

    def iter_match(self, text: str) -> Generator[Progress, None, np.ndarray]:
        """Ids whose relpath contains ``text`` (case-insensitive), ascending; one row group per step."""
        import pyarrow.compute as pc

        out = []
        groups = len(self._starts) - 1
        for g in range(groups):
            rel = self._group(g) if g in self._groups else self._pf.read_row_group(g, columns=["relpath"]).column(0)
            hit = pc.match_substring(rel, text, ignore_case=True)
            out.append(np.flatnonzero(hit.to_numpy(zero_copy_only=False)) + int(self._starts[g]))
            yield Progress(g + 1, groups, f"filtering {len(self)} images")
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


class LazyItems(Sequence):
    """A gallery's ``items`` over a :class:`RowTable`: each :class:`GalleryItem` made when asked."""

    def __init__(self, rows: RowTable, root: Path, classes: list[str]) -> None:
        self.rows, self.root, self.classes = rows, Path(root), list(classes)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> GalleryItem: ...

    @overload
    def __getitem__(self, i: slice) -> list[GalleryItem]: ...

    def __getitem__(self, i: int | slice) -> GalleryItem | list[GalleryItem]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        rel = self.rows.relpath(i)
        lab = int(self.rows.labels[i])
        return GalleryItem(self.root / rel, rel, None if lab < 0 else lab, None if lab < 0 else self.classes[lab])

    def __iter__(self) -> Iterator[GalleryItem]:
        for i in range(len(self)):
            yield self[i]

    def labels_array(self) -> np.ndarray:
        """Labels, ``-1`` for unlabelled images: the table's own read-only int32 array (no item is made,
        and no int64 copy: 8 B/image, 80 MB at 10M, the app would hold for as long as the index is open)."""
        return self.rows.labels

    def has_labels(self) -> bool:
        return bool(len(self)) and bool((self.rows.labels >= 0).all())

    def ids_of_class(self, label: int) -> np.ndarray:
        return np.flatnonzero(self.rows.labels == label).astype(np.int64)

    def iter_match(self, text: str) -> Generator[Progress, None, np.ndarray]:
        return self.rows.iter_match(text)


def iter_filter_ids(items: Sequence[Any], class_name: str | None, text: str) -> Generator[Progress, None, np.ndarray | None]:
    """Ids of ``items`` in class ``class_name`` whose relpath contains ``text`` (case-insensitive), ascending;
    ``None`` when nothing filters. :class:`LazyItems` are filtered on their arrays, a row group per step
    (cancel points); a plain list of items in one step (small galleries)."""
    text = text.strip().lower()
    if class_name is None and not text:
        return None
    if not isinstance(items, LazyItems):
        yield Progress(0, 1, "filtering")
        return np.array([i for i, it in enumerate(items) if (class_name is None or it.class_name == class_name)
                         and (not text or text in str(it.relpath).lower())], np.int64)
    ids = None
    if class_name is not None:
        ids = items.ids_of_class(items.classes.index(class_name)) if class_name in items.classes else np.zeros(0, np.int64)
    if text:
        hits = yield from items.iter_match(text)
        ids = hits if ids is None else np.intersect1d(ids, hits, assume_unique=True)
    return ids
