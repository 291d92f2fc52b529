"""Thumbnails decoded lazily off the GUI thread and cached.

:class:`ThumbnailCache` hands out a cached ``QPixmap`` or, on a miss, queues a :class:`_Load`
(``QRunnable``) on its own ``QThreadPool`` and answers ``None``; when the image is decoded the cache
emits :attr:`ThumbnailCache.ready` with the path so views repaint that one item. Decoding uses PIL's
JPEG draft mode, so a 500 px photo costs a few milliseconds. Only ``QImage`` is built off the GUI
thread (``QPixmap`` is GUI-thread only).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from lfs_gui.data.images import load_rgb

log = logging.getLogger(__name__)


def array_to_qimage(arr: np.ndarray) -> QImage:
    """H×W×3 (RGB) or H×W×4 (RGBA) uint8 -> a ``QImage`` owning a copy of the pixels."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        arr = np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
    fmt = QImage.Format.Format_RGBA8888 if arr.shape[2] == 4 else QImage.Format.Format_RGB888
    img = QImage(arr.data, w, h, arr.strides[0], fmt)
    return img.copy()


def pil_to_qimage(img: Image.Image) -> QImage:
    """A PIL image -> ``QImage`` (RGB, or RGBA when it has transparency)."""
    mode = "RGBA" if img.mode in ("RGBA", "LA") or "transparency" in img.info else "RGB"
    return array_to_qimage(np.asarray(img.convert(mode)))


def load_thumbnail(path: str | Path, size: int) -> QImage:
    """Decode ``path`` to a ``QImage`` whose longer side is at most ``size`` (thread-safe)."""
    im = load_rgb(path, draft=size)  # EXIF-upright, alpha on white: what the model sees
    im.thumbnail((size, size), Image.BILINEAR)
    return pil_to_qimage(im)


class _Signals(QObject):
    loaded = Signal(str, QImage)
    error = Signal(str, str)


class _Load(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals) -> None:
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        try:
            img = load_thumbnail(self.path, self.size)
        except Exception as exc:  # noqa: BLE001 - a broken file shows as a placeholder
            log.warning("thumbnail %s: %s", self.path, exc)
            self.signals.error.emit(self.path, str(exc))
            return
        self.signals.loaded.emit(self.path, img)


class ThumbnailCache(QObject):
    """LRU cache of thumbnails keyed by path; misses are decoded on a small thread pool."""

    ready = Signal(str)  # path whose thumbnail just arrived (or failed: then get() gives a placeholder)

    def __init__(self, size: int = 128, capacity: int = 4000, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._signals.error.connect(self._on_error)
        self._placeholder: QPixmap | None = None
        self._closed = False

    def get(self, path: str | Path) -> QPixmap | None:
        """The cached thumbnail, or ``None`` after queueing its decode (``ready`` fires later)."""
        key = str(path)
        pix = self._cache.get(key)
        if pix is not None:
            self._cache.move_to_end(key)
            return pix
        if key in self._failed:
            return self.placeholder()
        if key not in self._pending and not self._closed:
            self._pending.add(key)
            self._pool.start(_Load(key, self.size, self._signals))
        return None

    def prefetch(self, paths: list[str | Path]) -> None:
        for p in paths:
            self.get(p)

    def placeholder(self) -> QPixmap:
        if self._placeholder is None:
            img = QImage(self.size, self.size, QImage.Format.Format_RGB888)
            img.fill(0x808080)
            self._placeholder = QPixmap.fromImage(img)
        return self._placeholder

    def pending(self) -> int:
        return len(self._pending)

    def clear(self) -> None:
        self._pool.clear()
        self._cache.clear()
        self._pending.clear()
        self._failed.clear()

    def close(self, timeout_ms: int = 5000) -> None:
        """Drop queued decodes and wait for running ones (call before the window goes away)."""
        self._closed = True
        self._pool.clear()
        self._pool.waitForDone(timeout_ms)

    def _on_loaded(self, path: str, img: QImage) -> None:
        self._pending.discard(path)
        if self._closed:
            return
        self._cache[path] = QPixmap.fromImage(img)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(path)

    def _on_error(self, path: str, _message: str) -> None:
        self._pending.discard(path)
        self._failed.add(path)
        if not self._closed:
            self.ready.emit(path)
