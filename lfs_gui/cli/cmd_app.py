"""``lfs-gui [INDEX]``: open the desktop app (the default command).

With no INDEX the app opens the embedded demo. ``--screenshot PATH`` opens it, selects a query, opens
its top pair, waits for the pixel-flipping curve, saves a screenshot of the whole window and exits.
"""

from __future__ import annotations

import argparse

from lfs_gui.cli._common import add_device_arguments, add_index_arguments, device_from_args, guarded, index_overrides

NAME = "app"
HELP = "open the desktop app (default): the embedded demo, or a saved INDEX"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", nargs="?", default=None, help="a saved index to open (default: the embedded demo)")
    parser.add_argument("--screenshot", metavar="PATH", default=None,
                        help="open, select the first query and its top pair, wait for the curve, save a "
                             "screenshot of the window to PATH (PNG) and exit")
    parser.add_argument("--decoder", default=None, help="decoder file to use with INDEX (default: the index's own)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--query", type=int, default=0, help="gallery id of the query for --screenshot (default 0)")
    parser.add_argument("--timeout", type=float, default=180.0, help="--screenshot gives up after this many seconds")
    parser.add_argument("--size", default=None, metavar="WxH",
                        help="window size in pixels, e.g. 1280x720, laid out afresh (default: the last size and layout)")
    add_device_arguments(parser, embedding=False, default=None)
    add_index_arguments(parser)  # INDEX moved: where its gallery / model are (else the window asks)


def run(args: argparse.Namespace) -> int:
    if args.device is not None:  # an explicit --device must exist (exit 2); the remembered one falls back to auto
        rc = guarded(NAME, _check_device, args)
        if rc:
            return rc
    from lfs_gui.app.main import run_app  # Qt is imported only when the app runs

    size = None
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            from lfs_gui.cli._common import error

            return error(NAME, f"--size {args.size}: give the window size as WIDTHxHEIGHT, e.g. 1280x720")
        size = (w, h)
    return run_app(index=args.index, screenshot=args.screenshot, query=args.query, timeout_s=args.timeout,
                   decoder=args.decoder, trust_checkpoint=args.trust_checkpoint, device=args.device, size=size,
                   **index_overrides(args))


def _check_device(args: argparse.Namespace) -> int:
    device_from_args(args)  # DeviceError -> exit 2 with the device and what is available
    return 0
