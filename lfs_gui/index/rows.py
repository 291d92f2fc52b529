"""The row table of an index folder (format v2): ``rows.parquet``, one row per embedding row.

Columns: ``id`` int64 (= the row number, 0..count-1, also the row of ``embeddings.npy``), ``relpath``
string (the image's path relative to the gallery root, ``/``-separated, never absolute and never
``..``), ``label`` int32, null for unlabelled images (an index into the sidecar's ``classes``).
Row groups hold :data:`ROW_GROUP` rows so a reader can fetch any slice without reading the rest
(the lazily read gallery of very large indexes builds on this); no compression, so a row group is
read at disk speed.

:func:`read_rows` validates everything (schema, ids, labels, paths) and raises
:class:`IndexLoadError` naming the file and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from lfs_gui.index.sidecar import IndexLoadError

ROWS_FILE = "rows.parquet"
ROW_GROUP = 65_536
COLUMNS = ("id", "relpath", "label")


def rows_table(relpaths: Sequence[str], labels: Sequence[int | None]):
    """The ``pyarrow.Table`` for ``relpaths``/``labels`` (row ``i`` = image id ``i``)."""
    import pyarrow as pa

    if len(relpaths) != len(labels):
        raise ValueError(f"{len(relpaths)} relpaths but {len(labels)} labels")
    lab = pa.array([None if v is None else int(v) for v in labels], pa.int32())
    return pa.table({"id": pa.array(np.arange(len(relpaths), dtype=np.int64)),
                     "relpath": pa.array(list(relpaths), pa.string()), "label": lab})


def write_rows(path: Path, relpaths: Sequence[str], labels: Sequence[int | None]) -> None:
    """Write the row table to ``path`` (the caller makes it atomic)."""
    import pyarrow.parquet as pq

    pq.write_table(rows_table(relpaths, labels), path, row_group_size=ROW_GROUP, compression="none")


def check_relpath(rel: object) -> bool:
    """A relative, ``/``-separated path that stays inside the gallery root."""
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts


def read_rows(path: Path, count: int, n_classes: int, fix: str) -> tuple[list[str], list[int | None]]:
    """``(relpaths, labels)`` from ``rows.parquet``, validated against the sidecar's count and classes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - truncated or not Parquet: pyarrow raises several types
        raise IndexLoadError(f"{path}: not a readable Parquet row table ({type(exc).__name__}: {exc}); {fix}") from exc
    want = {"id": pa.int64(), "relpath": pa.string(), "label": pa.int32()}
    for name, typ in want.items():
        if name not in table.column_names or not table.schema.field(name).type.equals(typ):
            raise IndexLoadError(f"{path}: column {name!r} missing or not {typ}; {fix}")
    if table.num_rows != count:
        raise IndexLoadError(f"{path}: holds {table.num_rows} rows but index.json says {count}; {fix}")
    ids = table.column("id").to_numpy()
    if not np.array_equal(ids, np.arange(count)):
        raise IndexLoadError(f"{path}: ids are not 0..{count - 1} in order; {fix}")
    relpaths = table.column("relpath").to_pylist()
    bad = next((i for i, r in enumerate(relpaths) if not check_relpath(r)), None)
    if bad is not None:
        raise IndexLoadError(f"{path}: relpath {relpaths[bad]!r} of image {bad} is not a path inside the "
                             f"gallery; {fix}")
    lab = table.column("label")
    vals = lab.to_numpy(zero_copy_only=False)
    valid = ~np.asarray(lab.is_null().to_numpy(zero_copy_only=False), bool)
    if valid.any():
        v = np.asarray(vals[valid], np.int64)
        if v.min() < 0 or v.max() >= n_classes:
            i = int(np.nonzero(valid)[0][np.argmax((v < 0) | (v >= n_classes))])
            raise IndexLoadError(f"{path}: label {int(vals[i])} of image {i} is not an index into the "
                                 f"{n_classes} classes; {fix}")
    labels = [int(x) if ok else None for x, ok in zip(vals.tolist(), valid.tolist())]
    return relpaths, labels
