"""``lfs-gui train-attributes INDEX``: train SANE's attribute predictor for an index, saved next to it.

Reads the gallery's attribute labels (CUB-200-2011's own files, an AwA2-style class matrix next to
the gallery, or ``--attributes-from``), computes the model's feature maps once (cached), trains the
attribute head with the model frozen and writes ``INDEX/attributes.pt`` (or ``--out``). Prints the
mean average precision on the held-out images. Ctrl-C stops without writing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lfs_gui.cli._common import (
    EXIT_INTERRUPTED, EXIT_OK, add_device_arguments, add_index_arguments, check_writable, device_from_args, emit_json,
    guarded, index_overrides, progress_bar,
)

NAME = "train-attributes"
HELP = "train the SANE attribute predictor of an index (attribute activation maps over the model's features)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index folder (from `lfs-gui index`), or 'demo'")
    parser.add_argument("--attributes-from", metavar="PATH", default=None,
                        help="attribute files: a CUB_200_2011 folder or an AwA2-style folder "
                             "(default: found next to the gallery)")
    parser.add_argument("--level", choices=["auto", "image", "class"], default="auto",
                        help="CUB: per-image labels or the class matrix (default auto: per-image when present)")
    parser.add_argument("--min-certainty", type=int, default=3, choices=[2, 3, 4],
                        help="CUB: lowest certainty for a label to count (default 3, 'probably'; "
                             "'not visible' never counts)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--hidden", type=int, default=64, help="channels of the head's 1x1 reduction (default 64)")
    parser.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    parser.add_argument("--heldout", type=float, default=0.2, help="fraction of each class held out for mAP (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the initial weights (0)")
    parser.add_argument("--no-cache", action="store_true", help="recompute the feature maps instead of using the cache")
    parser.add_argument("--out", metavar="FILE", default=None, help="predictor file (default INDEX/attributes.pt)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
    add_device_arguments(parser, embedding=False)  # --device: the frozen model's feature maps are computed there
    add_index_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.attributes.index_attributes import index_folder, iter_train_session, predictor_path, session_attributes
    from lfs_gui.cli.cmd_query import open_session

    if args.epochs < 1 or args.hidden < 1 or not 0.0 <= args.heldout < 1.0:
        raise ValueError("--epochs and --hidden must be at least 1 and --heldout in [0, 1)")
    out = Path(args.out).expanduser().resolve() if args.out else predictor_path(index_folder(args.index))
    check_writable(out)
    device, _batch = device_from_args(args)
    session = open_session(args.index, decoder=False, trust_checkpoint=args.trust_checkpoint, device=device,
                           **index_overrides(args))
    attrs = session_attributes(session, args.attributes_from, level=args.level, min_certainty=args.min_certainty)
    try:
        pred = progress_bar(iter_train_session(session, attrs, out, epochs=args.epochs, hidden=args.hidden, lr=args.lr,
                                               heldout=args.heldout, seed=args.seed, use_cache=not args.no_cache),
                            desc="attributes")
    except KeyboardInterrupt:
        print("lfs-gui train-attributes: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    m = pred.meta["metrics"]
    summary = {"out": str(out), "attributes": len(pred.names), "labels": attrs.describe(),
               "map_heldout": m["map_heldout"], "n_heldout": m["n_heldout"], "map_train": m["map_train"],
               "n_train": m["n_train"], "loss": m["loss"], "settings": pred.meta["settings"]}
    if args.json:
        emit_json(summary)
    else:
        print(f"{len(pred.names)} attributes ({attrs.level} labels from {attrs.source}); "
              f"mAP {m['map_heldout']:.3f} on {m['n_heldout']} held-out images (train {m['map_train']:.3f})")
        print(f"attribute predictor: {out}")
    return EXIT_OK
