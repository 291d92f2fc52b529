"""The figure flags that ``explain`` and ``continuity`` share, turned into one
:class:`~lfs_gui.figures.spec.ViewSpec` (the same dataclass the app's export fills from its state,
so a command-line figure and a window export with the same settings are the same figure)."""

from __future__ import annotations

import argparse
from typing import Any

SIZE_HELP = "figure width: single (3.5 in, one column), double (7.16 in, full width; default) or inches"
DPI_HELP = "resolution: screen (150), print (300, default), high (600) or a number; SVG/PDF: of the embedded photos"


def add_view_arguments(parser: argparse.ArgumentParser, heat: bool = True) -> None:
    """``--size``, ``--dpi``, ``--font-size``, and with ``heat`` the heat-map view flags."""
    from lfs_gui.figures.spec import COLORMAPS

    g = parser.add_argument_group("figure")
    g.add_argument("--size", default="double", metavar="single|double|INCHES", help=SIZE_HELP)
    g.add_argument("--dpi", default="print", metavar="N|screen|print|high", help=DPI_HELP)
    g.add_argument("--font-size", type=float, default=7.0, metavar="PT", help="text size in points (default 7)")
    if heat:
        g.add_argument("--cmap", default="jet", metavar="NAME",
                       help=f"heat colormap: {', '.join(COLORMAPS)} or any matplotlib name (default jet)")
        g.add_argument("--opacity", type=float, default=0.5, help="heat-map opacity in [0, 1] (default 0.5)")
        g.add_argument("--mask-view", action="store_true", help="draw the heat only where it exceeds --xi2")
        g.add_argument("--no-reconstructions", action="store_true", help="leave out the decoder's reconstructions")


def view_spec(args: argparse.Namespace, **extra: Any) -> Any:
    """The :class:`ViewSpec` of the parsed flags; bad values -> ``ValueError`` naming the flag."""
    from lfs_gui.figures.spec import ViewSpec, parse_dpi, parse_size

    kw: dict[str, Any] = {"size": parse_size(args.size), "dpi": parse_dpi(args.dpi), "font_size": args.font_size}
    if hasattr(args, "cmap"):
        kw.update(cmap=args.cmap, opacity=args.opacity, mask_view=bool(args.mask_view),
                  reconstructions=not args.no_reconstructions)
    kw.update(extra)
    try:
        return ViewSpec(**kw)
    except ValueError as exc:
        msg = str(exc)
        for word, flag in (("colormap", "--cmap"), ("opacity", "--opacity"), ("dpi", "--dpi"), ("font size", "--font-size"),
                           ("width", "--size"), ("size", "--size")):
            if msg.startswith(word) or f" {word} " in f" {msg} ":
                raise ValueError(f"{flag}: {msg}") from None
        raise
