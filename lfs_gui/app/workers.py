"""The one worker pattern for all long work: iterate a core generator on a QThread.

Every long computation in the core is a generator that yields progress or partial results and
``return``s its result (:mod:`lfs_gui.jobs`). :class:`GeneratorThread` iterates one such generator on a
worker thread, emits each yielded item, and checks a cancel flag between yields (each ``yield`` is a
cancel point; the generator is closed so its ``finally`` blocks run).

:class:`JobChannel` owns the "latest request wins" rule for one kind of work (the curve, the session,
a slow explanation): a new :meth:`JobChannel.start` cancels the running job, and a generation counter
drops any item that a stale job still manages to emit after it was superseded. Receivers connect to the
channel's signals, never to a thread's, so they only ever see the current generation.
"""

from __future__ import annotations

import atexit
import logging
import threading
import traceback
import weakref
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)

GeneratorFactory = Callable[[], Generator[Any, None, Any]]

# Threads still inside one long uninterruptible step when their owner went away: kept referenced so
# that no running QThread is ever destroyed (which would abort the process); they end on their own.
_ORPHANS: set["GeneratorThread"] = set()
# Every worker thread whose Python object is alive (weak: this registry keeps nothing alive), so that
# tests and the exit hook can find the ones still running.
_LIVE: "weakref.WeakSet[GeneratorThread]" = weakref.WeakSet()


def running_workers(include_orphans: bool = True) -> list["GeneratorThread"]:
    """The worker threads that have started and not yet finished; orphans (left to finish on their own
    by a ``shutdown`` that timed out) only with ``include_orphans``."""
    out = []
    for thread in list(_LIVE):
        if not include_orphans and thread in _ORPHANS:
            continue
        try:
            if thread.isRunning():
                out.append(thread)
        except RuntimeError:  # its C++ object is already gone: not running
            continue
    return out


def wait_for_orphans(timeout_ms: int = 120000) -> bool:
    """Cancel and wait for the orphaned threads; True if none is left running.

    Runs at interpreter exit: a QThread destroyed while it runs aborts the process (SIGABRT), which would
    turn a slow last job into a crash report instead of a clean exit.
    """
    ok = True
    for thread in list(_ORPHANS):
        try:
            thread.cancel()
            ok = thread.wait(timeout_ms) and ok
        except RuntimeError:  # its C++ object is gone already
            continue
    return ok


atexit.register(wait_for_orphans)


class _Reaper(QObject):
    """Lives on the GUI thread; forgets orphaned worker threads once they have finished (the slot
    runs queued on the GUI thread, so no QThread is destroyed from inside itself)."""

    @Slot()
    def discard(self) -> None:
        thread = self.sender()
        _ORPHANS.discard(thread)  # type: ignore[arg-type]
        if isinstance(thread, QThread):
            thread.wait()
            thread.deleteLater()


_REAPER: _Reaper | None = None


def _reaper() -> _Reaper:
    global _REAPER
    if _REAPER is None:
        _REAPER = _Reaper()
        app = QCoreApplication.instance()
        if app is not None:
            _REAPER.moveToThread(app.thread())
    return _REAPER


class GeneratorThread(QThread):
    """Run ``factory()`` and iterate the generator it returns; one thread per job.

    Signals carry the job's generation so that the owner can drop stale ones. ``factory`` is called on
    the worker thread, so any eager work it does (model loading) never blocks the GUI.
    """

    item = Signal(int, object)  # generation, yielded item
    done = Signal(int, object)  # generation, return value
    failed = Signal(int, object, str)  # generation, exception, formatted traceback
    cancelled = Signal(int)  # generation

    def __init__(self, generation: int, factory: GeneratorFactory, name: str = "job", parent: QObject | None = None):
        super().__init__(parent)
        self.generation = generation
        self._factory = factory
        self._cancel = threading.Event()
        self.setObjectName(f"worker-{name}-{generation}")
        _LIVE.add(self)

    def cancel(self) -> None:
        """Ask the job to stop at its next cancel point (thread-safe, returns at once)."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # noqa: D102 (QThread API)
        gen = None
        try:
            if self._cancel.is_set():
                self.cancelled.emit(self.generation)
                return
            gen = self._factory()
            while True:
                if self._cancel.is_set():
                    gen.close()
                    self.cancelled.emit(self.generation)
                    return
                try:
                    value = next(gen)
                except StopIteration as stop:
                    self.done.emit(self.generation, stop.value)
                    return
                if self._cancel.is_set():
                    gen.close()
                    self.cancelled.emit(self.generation)
                    return
                self.item.emit(self.generation, value)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, logged with its traceback
            tb = traceback.format_exc()
            log.error("%s failed: %s\n%s", self.objectName(), exc, tb)
            if gen is not None:
                try:
                    gen.close()
                except Exception:  # noqa: BLE001
                    pass
            self.failed.emit(self.generation, exc, tb)


class JobChannel(QObject):
    """One kind of long work where the latest request wins.

    ``start(factory)`` cancels the running job (if any), starts a new :class:`GeneratorThread` and
    returns its generation. Only the current generation's signals are re-emitted; superseded threads
    are kept referenced until they finish, so no ``QThread`` is destroyed while running.
    """

    started = Signal(int)  # generation
    item = Signal(object)  # yielded item of the current job
    done = Signal(object)  # return value of the current job
    failed = Signal(object, str)  # exception, traceback (current job)
    cancelled = Signal(int)  # generation of a job that stopped at a cancel point
    busyChanged = Signal(bool)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"channel-{name}")
        self.name = name
        self.generation = 0
        self._current: GeneratorThread | None = None
        self._threads: set[GeneratorThread] = set()
        self.stale_items = 0  # items dropped because their job had been superseded (for tests)

    # -- control -----------------------------------------------------------------------------
    def start(self, factory: GeneratorFactory) -> int:
        """Cancel the running job and start ``factory()``'s generator; returns the new generation."""
        self.cancel()
        self.generation += 1
        thread = GeneratorThread(self.generation, factory, self.name)
        thread.item.connect(self._on_item)
        thread.done.connect(self._on_done)
        thread.failed.connect(self._on_failed)
        thread.cancelled.connect(self.cancelled)
        thread.finished.connect(self._reap_finished)
        self._threads.add(thread)
        self._current = thread
        thread.start()
        self.started.emit(self.generation)
        self.busyChanged.emit(True)
        return self.generation

    def cancel(self) -> None:
        """Cancel the current job (it stops at its next cancel point); its late signals are dropped."""
        if self._current is not None:
            self._current.cancel()
            self._current = None
            self.generation += 1  # anything still in flight is now stale
            self.busyChanged.emit(False)

    def is_busy(self) -> bool:
        return self._current is not None

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything and wait for every thread of this channel; True if all stopped."""
        self.cancel()
        ok = True
        for thread in list(self._threads):
            thread.cancel()
            if not thread.wait(timeout_ms):
                log.warning("%s did not stop within %d ms; leaving it to finish on its own", thread.objectName(), timeout_ms)
                thread.setParent(None)
                _ORPHANS.add(thread)
                # Drop the last reference on the GUI thread (queued), never on the finishing thread itself.
                thread.finished.connect(_reaper().discard)
                if thread.isFinished():  # finished between wait() and connect(): nothing will be delivered
                    _ORPHANS.discard(thread)
                self._threads.discard(thread)
                ok = False
        self._reap_finished()
        return ok

    def running_threads(self) -> int:
        return sum(1 for t in self._threads if t.isRunning())

    # -- relays (GUI thread) ---------------------------------------------------------------------
    def _on_item(self, generation: int, value: object) -> None:
        if generation != self.generation:
            self.stale_items += 1
            return
        self.item.emit(value)

    def _on_done(self, generation: int, value: object) -> None:
        if generation != self.generation:
            return
        self._current = None
        self.busyChanged.emit(False)
        self.done.emit(value)

    def _on_failed(self, generation: int, exc: object, tb: str) -> None:
        if generation != self.generation:
            return
        self._current = None
        self.busyChanged.emit(False)
        self.failed.emit(exc, tb)

    def _reap_finished(self) -> None:
        for thread in [t for t in self._threads if t.isFinished()]:
            self._threads.discard(thread)
            thread.deleteLater()
