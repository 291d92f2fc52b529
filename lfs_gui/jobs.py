"""One pattern for all long work: generators that yield progress and return a result.

Every long computation in the core (embedding a gallery, training a decoder, a pixel-flipping
curve, an evaluation) is written as a generator. It yields :class:`Progress` events (or partial
results such as curve points) and ``return``s its final result. Each ``yield`` is a cancel point:
the consumer simply stops iterating (``gen.close()``). The CLI drives generators with
:func:`run_generator`; the Qt app drives the same generators on a worker thread.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units finished; ``message`` says what is being done."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


class Cancelled(Exception):
    """Raised by :func:`run_generator` when ``should_cancel`` returned True."""


def run_generator(
    gen: Generator[Any, None, T],
    on_item: Callable[[Any], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> T:
    """Drive ``gen`` to completion and return its return value.

    ``on_item`` sees every yielded item; if ``should_cancel()`` becomes true the generator is
    closed (its ``finally`` blocks run) and :class:`Cancelled` is raised.
    """
    try:
        while True:
            item = next(gen)
            if on_item is not None:
                on_item(item)
            if should_cancel is not None and should_cancel():
                gen.close()
                raise Cancelled()
    except StopIteration as stop:
        return stop.value


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import: changing the umask later from a worker thread would race with other threads.
_FILE_MODE = 0o666 & ~_read_umask()


def _umask_mode() -> int:
    """Permissions a newly created file would get (mkstemp makes 0600 files; we want the umask's)."""
    return _FILE_MODE


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_path(path: str | os.PathLike) -> "_AtomicPath":
    """Context manager giving a temp path next to ``path``; renamed onto it on success.

    For writers that need a file name (``faiss.write_index``, ``torch.save``, ``numpy.save``)::

        with atomic_path(out) as tmp:
            torch.save(obj, tmp)
    """
    return _AtomicPath(Path(path))


class _AtomicPath:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is None:
            with open(self.tmp, "rb+") as fh:  # the writer closed it; make its bytes durable first
                os.fsync(fh.fileno())
            os.chmod(self.tmp, _umask_mode())
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
