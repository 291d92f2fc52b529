"""``lfs-gui query INDEX (--id N | --image PATH)``: the most similar and most dissimilar images.

``INDEX`` is an index folder written by ``lfs-gui index`` (or ``demo`` for the embedded demo).
A gallery id needs only the saved embeddings; an external ``--image`` is embedded with the model
the index was built with (loaded from the path its sidecar records).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lfs_gui.cli._common import (
    EXIT_OK, add_device_arguments, add_index_arguments, device_from_args, emit_json, guarded, index_overrides,
)

NAME = "query"
HELP = "retrieve the most similar and most dissimilar gallery images for a query"


def open_session(index: str, decoder: str | bool | None = None, trust_checkpoint: bool = False,
                 gallery_root: Path | None = None, model_path: Path | None = None, device: Any = None) -> Any:
    """Session over the index folder ``index`` (the literal ``demo`` opens the embedded demo);
    ``gallery_root``/``model_path``: :func:`lfs_gui.cli._common.index_overrides`; its model and
    decoder run on ``device`` (``None``: the CPU)."""
    from lfs_gui.session import Session

    if index == "demo" and not Path(index).exists():
        if isinstance(decoder, (str, Path)):
            decoder = Path(decoder).resolve()  # relative to the working directory (the demo's folder is not the user's)
        if gallery_root is None and model_path is None:
            return Session.open_demo(decoder=decoder, device=device)
        from lfs_gui.paths import demo_gallery_dir, demo_index_dir

        return Session.open_index(demo_index_dir(), decoder=decoder, model_path=model_path,
                                  gallery_root=gallery_root or demo_gallery_dir() / "images", device=device)
    return Session.open_index(index, decoder=decoder, trust_checkpoint=trust_checkpoint, gallery_root=gallery_root,
                              model_path=model_path, device=device)


def parse_query(value: str) -> int | Path:
    """A gallery id (an integer) or the path of an external image (must exist)."""
    v = value.strip()
    if v.lstrip("-").isdigit():
        return int(v)
    p = Path(v).expanduser()
    if not p.is_file():
        raise ValueError(f"{p}: no such image file; give a gallery id (integer) or the path of an image")
    return p.resolve()


def hit_record(session: Any, hit: Any) -> dict:
    return {"rank": hit.rank, "id": hit.id, "score": hit.score, "class": session.class_of(hit.id),
            "same_class": hit.same_class, "path": str(session.image_path(hit.id))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index folder (from `lfs-gui index`), or 'demo'")
    q = parser.add_mutually_exclusive_group(required=True)
    q.add_argument("--id", type=int, metavar="N", help="gallery id of the query (0-based)")
    q.add_argument("--image", metavar="PATH", help="an external image as the query (loads the model)")
    parser.add_argument("--k", type=int, default=5, help="how many of each end (default 5)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_device_arguments(parser, embedding=False)  # runs the model, embeds no gallery
    add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    query: int | Path
    if args.image is not None:
        query = parse_query(args.image)
        if isinstance(query, int):
            raise ValueError(f"--image {args.image}: give an image path (use --id for gallery ids)")
    else:
        query = int(args.id)
    device, batch = device_from_args(args)
    session = open_session(args.index, trust_checkpoint=args.trust_checkpoint, device=device, **index_overrides(args))
    res = session.retrieve(query, k=args.k)
    out = {
        "index": str(args.index),
        "query": {"id": query if isinstance(query, int) else None,
                  "path": str(session.image_path(query)),
                  "class": session.class_of(query) if isinstance(query, int) else None},
        "k": args.k,
        "similar": [hit_record(session, h) for h in res.similar],
        "dissimilar": [hit_record(session, h) for h in res.dissimilar],
        "recall": res.recall,
    }
    if args.json:
        emit_json(out)
        return EXIT_OK
    q = out["query"]
    print(f"query: {'#' + str(q['id']) + ' ' if q['id'] is not None else ''}{q['path']}"
          + (f" ({q['class']})" if q["class"] else ""))
    for title, hits in (("most similar", out["similar"]), ("most dissimilar", out["dissimilar"])):
        print(f"{title}:")
        for h in hits:
            mark = {True: "=", False: "≠", None: " "}[h["same_class"]]
            print(f"  {h['rank']:>3}  #{h['id']:<6} {h['score']:+.4f} {mark} {h['class'] or '-':<20} {h['path']}")
    if res.recall:
        print("query Recall@K: " + ", ".join(f"R@{k} {int(v)}" for k, v in sorted(res.recall.items())))
    return EXIT_OK
