"""Decoding image files the way the model sees them (PIL + numpy only: no torch, cheap to import).

:func:`load_rgb` normalises odd modes (CMYK, 16/32-bit and float greyscale, palette, alpha) to 8-bit
RGB and applies the EXIF orientation. The embedder, the decoder targets, the figures and the app's
display all decode through it, so what is shown is what the model saw. :func:`open_image` is the same
decoding for user-facing callers: a bad file raises :class:`ImageError` naming the file and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def upright_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the image as :func:`load_rgb` returns it (EXIF rotation applied), read from
    the header only."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            w, h = h, w
        return w, h


def load_rgb(path: str | os.PathLike, draft: int | None = None) -> Image.Image:
    """Decode ``path`` to an 8-bit RGB image (EXIF-upright); raises on undecodable files.

    Alpha is composited onto white; 16/32-bit integer and float greyscale are rescaled, not clipped.
    ``draft`` lets JPEG decoding shrink by a power of two to about that size (for display only).
    """
    with Image.open(path) as im:
        if draft:
            im.draft("RGB", (draft, draft))
        im.load()
        im = ImageOps.exif_transpose(im)
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            arr = np.asarray(im, dtype=np.float64)
            hi = float(arr.max()) if arr.size else 0.0
            if mode == "F" and hi <= 1.0:
                arr = arr * 255.0
            elif hi > 255.0:
                arr = arr / (65535.0 if hi <= 65535.0 else hi) * 255.0
            im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
        elif mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            bg.alpha_composite(rgba)
            im = bg
        return im.convert("RGB")


class ImageError(ValueError):
    """An image file is missing, empty or undecodable; the message names the file and the fix."""


def open_image(path: str | os.PathLike) -> Image.Image:
    """:func:`load_rgb` with clear errors: :class:`ImageError` naming the file (missing, empty, undecodable)."""
    p = Path(path)
    if p.is_file() and p.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes); re-copy or re-download it")
    try:
        return load_rgb(p)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except Exception as exc:  # noqa: BLE001 - whatever Pillow raises for a bad file
        raise ImageError(f"{path}: cannot be decoded as an image ({exc.__class__.__name__}: {exc}); "
                         "use a JPEG/PNG/BMP/WebP/TIFF file") from exc
