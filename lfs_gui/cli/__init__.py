"""``lfs-gui`` entry point.

With no command it opens the desktop app on the embedded demo (``lfs-gui INDEX`` opens a saved
index). Headless commands live one per module in this package (``cmd_<name>.py``); each module
defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``. Command modules import
their heavy dependencies inside ``run`` so that ``lfs-gui --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from types import ModuleType

from lfs_gui import __version__

log = logging.getLogger("lfs_gui")


def _command_modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    return mods


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, ModuleType]]:
    parser = argparse.ArgumentParser(
        prog="lfs-gui",
        description="Inspect image retrieval and explain it with ExplainLFS. "
        "Without a command, opens the desktop app (on the embedded demo, or on INDEX).",
    )
    parser.add_argument("--version", action="version", version=f"lfs-gui {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, ModuleType] = {}
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        commands[mod.NAME] = mod
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = build_parser()
    # No command (or a path / app option first): open the app.
    if not argv or (argv[0] not in commands and argv[0] not in ("-h", "--help", "--version", "-v", "--verbose")):
        if "app" in commands:
            argv = ["app", *argv]
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader chatter is not for users
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(commands[args.command].run(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
