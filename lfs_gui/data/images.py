"""Decoding image files the way the model sees them (PIL + numpy only: no torch, cheap to import).

:func:`load_rgb` normalises odd modes (CMYK, 16/32-bit and float greyscale, palette, alpha) to 8-bit
RGB and applies the EXIF orientation. The embedder, the decoder targets, the figures and the app's
display all decode through it, so what is shown is what the model saw.
"""

from __future__ import annotations

import os

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
