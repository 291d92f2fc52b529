"""Rewrite a version 1 index folder as version 2 (``python -m lfs_gui.index.upgrade DIR [--gallery-root G]``).

Version 1 folders stay readable (:mod:`lfs_gui.index.sidecar`); upgrading makes them portable (the
gallery root is then stored relative to the index folder) and replaces the JSON row lists by
``rows.parquet``. Embeddings, rows, classes, decoder and model identity are kept exactly; a flat index
drops its redundant ``index.faiss``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from lfs_gui.index.sidecar import IndexLoadError
from lfs_gui.index.store import index_dir, load_index, save_index

log = logging.getLogger(__name__)


def upgrade_index(path: str | Path, gallery_root: str | Path | None = None) -> Path:
    """Upgrade the index folder ``path`` in place; ``gallery_root`` replaces the recorded root (give it
    when the gallery is no longer at the absolute path a v1 sidecar recorded)."""
    folder = index_dir(path)
    index = load_index(folder, verify="full")
    meta = index.meta
    if meta.version >= 2:
        log.info("%s is already version %d", folder, meta.version)
        return folder
    root = Path(gallery_root).expanduser().resolve() if gallery_root is not None else Path(meta.gallery_root)
    if not root.is_dir():
        raise IndexLoadError(f"{folder / 'index.json'}: its gallery {root} does not exist here; "
                             "give --gallery-root DIR so the upgraded index can store it relative to itself")
    save_index(index, folder, replace(meta, gallery_root=str(root)))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lfs_gui.index.upgrade", description=__doc__.splitlines()[0])
    parser.add_argument("index", metavar="DIR", help="a version 1 index folder")
    parser.add_argument("--gallery-root", metavar="DIR", default=None, help="where its gallery is now")
    args = parser.parse_args(argv)
    try:
        print(upgrade_index(args.index, args.gallery_root))
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
