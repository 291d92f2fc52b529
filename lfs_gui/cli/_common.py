"""Small helpers every headless command shares.

:func:`guarded` maps bad input to exit code 2 with a message on stderr, :func:`progress_bar` drives a
generator with a tqdm bar on stderr, :func:`check_writable` and :func:`emit_json`. Heavy imports
stay inside functions.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
log = logging.getLogger("lfs_gui.cli")


def error(command: str, message: str) -> int:
    """Print ``lfs-gui COMMAND: error: MESSAGE`` on stderr; returns exit code 2."""
    print(f"lfs-gui {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def guarded(command: str, body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``body(args)``; bad input (GalleryError, IndexLoadError, ModelLoadError, SessionError, any
    ValueError) and unwritable files (OSError) become a clear message and exit code 2."""
    try:
        return int(body(args) or 0)
    except ValueError as exc:  # GalleryError, IndexLoadError, ModelLoadError, SessionError, ExplainerUnavailable
        return error(command, str(exc))
    except OSError as exc:
        where = exc.filename or ""
        return error(command, f"{where}: cannot read or write ({exc.strerror or exc}); check the path and its permissions"
                     if where else f"{exc}; check the paths and their permissions")


def check_writable(path: Path, what: str = "--out", is_dir: bool = False) -> None:
    """Create ``path`` (``is_dir``) or its folder and probe it with a temp file, so a bad ``--out``
    fails before any work."""
    import tempfile

    folder = path if is_dir else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lfs-gui-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{path}: cannot write there ({exc.strerror or exc}); choose another {what}") from None


def progress_bar(gen: Generator[Any, None, Any], desc: str = "", disable: bool = False,
                 on_item: Callable[[Any, Any], None] | None = None) -> Any:
    """Drive ``gen`` (yielding ``Progress``) with a tqdm bar on stderr; returns its return value.

    A new bar starts whenever the phase (the message's first word) changes. ``on_item(item, bar)``
    sees every item (e.g. to write an epoch's losses with ``bar.write``).
    """
    from tqdm import tqdm

    bar = None
    phase = None
    try:
        while True:
            item = next(gen)
            total = getattr(item, "total", None)
            msg = str(getattr(item, "message", "") or desc)
            key = (msg.split(" ")[0] if msg else desc, total)
            if bar is None or key != phase:
                if bar is not None:
                    bar.close()
                bar = tqdm(total=total, desc=(msg.split(" ")[0] if msg else desc)[:24], file=sys.stderr,
                           disable=disable, leave=False, dynamic_ncols=True)
                phase = key
            if total is not None:
                done = int(getattr(item, "done", 0))
                if done >= bar.n:
                    bar.update(done - bar.n)
                else:
                    bar.n = done
                    bar.refresh()
            if on_item is not None:
                on_item(item, bar)
    except StopIteration as stop:
        return stop.value
    finally:
        if bar is not None:
            bar.close()
        gen.close()


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (numpy values, paths and NaN made JSON-safe)."""
    from lfs_gui.figures.curves import jsonable

    print(json.dumps(jsonable(obj), indent=1, ensure_ascii=False))


def add_device_arguments(parser: argparse.ArgumentParser, embedding: bool = True, default: str | None = "auto") -> None:
    """``--device`` (every command that runs a model or decoder) and, with ``embedding``,
    ``--batch-size`` and ``--amp`` for the embedding forward passes. Read them with
    :func:`device_from_args`. ``default=None`` (the app) means "the remembered choice"."""
    g = parser.add_argument_group("device")
    g.add_argument("--device", default=default, metavar="DEV",
                   help="where models and decoders run: auto (CUDA if available, else MPS, else CPU), cpu, cuda, "
                        "cuda:N or mps (default " + (default or "the choice remembered in the Device menu") + ")")
    if embedding:
        g.add_argument("--batch-size", type=int, default=None, metavar="N",
                       help="images per embedding batch (default: 32 on CPU, 256 on a GPU)")
        g.add_argument("--amp", action="store_true",
                       help="mixed precision for embedding on a GPU (ignored on CPU); stored embeddings stay float32")


def device_from_args(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(torch.device, BatchSettings)`` from :func:`add_device_arguments`' options.

    A device this machine lacks raises :class:`lfs_gui.device.DeviceError` (a ``ValueError``), which
    :func:`guarded` turns into a message naming the device and what is available, exit code 2.
    """
    from lfs_gui.device import batch_defaults, is_accelerator, resolve_device

    device = resolve_device(getattr(args, "device", None) or "auto")
    batch = getattr(args, "batch_size", None)
    if batch is not None and batch < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch}")
    amp = bool(getattr(args, "amp", False))
    if amp and not is_accelerator(device):
        log.info("--amp has no effect on %s: embedding runs in float32", device)
    settings = batch_defaults(device).updated(embed=batch, amp=amp and is_accelerator(device))
    log.debug("device %s, batch settings %s", device, settings)
    return device, settings


def add_index_arguments(parser: argparse.ArgumentParser, model: bool = True) -> None:
    """``--gallery-root DIR`` and (with ``model``) ``--model PATH`` for every command that opens an index:
    where its gallery and the model that built it are now, when they moved. Read them with
    :func:`index_overrides`."""
    g = parser.add_argument_group("index moved")
    g.add_argument("--gallery-root", metavar="DIR", default=None,
                   help="where the index's gallery is now (default: the index records it relative to its own "
                        "folder, then absolute)")
    if model:
        g.add_argument("--model", metavar="PATH", default=None,
                       help="the model file that built the index, if it moved (another model is refused)")


def index_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``{"gallery_root": ..., "model_path": ...}`` from :func:`add_index_arguments`' options."""
    root = getattr(args, "gallery_root", None)
    model = getattr(args, "model", None)
    return {"gallery_root": None if root is None else Path(root).expanduser().resolve(),
            "model_path": None if model is None else Path(model).expanduser().resolve()}


def load_model_arg(model: str | None, trust_checkpoint: bool, device: Any = None) -> tuple[Any, dict]:
    """The ``--model`` file (or the demo model) on ``device`` and the ``model_info`` the sidecar
    should record."""
    from lfs_gui.models.loader import load_demo_model, load_model

    if model is None:
        return load_demo_model(device=device), {"demo": True}
    path = Path(model).expanduser().resolve()
    return load_model(path, trust_checkpoint=trust_checkpoint, device=device), {"source": str(path)}


# -- the command ------------------------------------------------------------------------------------
