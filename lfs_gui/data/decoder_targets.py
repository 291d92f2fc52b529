"""Decoder targets of a gallery: the model's view of each image at S×S, prepared one way for every
caller (index builds, ``lfs-gui train-decoder``, the app's *Train a decoder*).

Images decode as the embedder decodes them (:func:`lfs_gui.data.images.open_image`); the view is
:func:`lfs_gui.models.train_decoder.decoder_target`. An image that does not decode is skipped with its
reason, never fatal: the caller trains on the rows that remain (``DecoderTargets.rows``).

Targets are written straight into one preallocated (M, 3, S, S) float32 array, or into ``out`` (e.g. a
memory map of a temp file when they would not fit in memory), and the rows that decoded are
compacted in place: the targets exist once, never as a list plus a stacked copy (and
:func:`lfs_gui.models.train_decoder.iter_train_decoder` reads them a batch at a time).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lfs_gui.data.images import ImageError, open_image
from lfs_gui.jobs import Progress
from lfs_gui.models.base import Preprocessing
from lfs_gui.models.train_decoder import decoder_target

log = logging.getLogger(__name__)


@dataclass
class DecoderTargets:
    """Decoder targets of the gallery images that decode: ``targets[j]`` is the model's view of image
    ``rows[j]``; ``skipped`` lists ``(path, reason)`` of the images that do not decode."""

    rows: list[int]
    targets: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)


def iter_decoder_targets(paths: Sequence[str | Path], preprocessing: Preprocessing, size: int,
                         every: int = 16, out: np.ndarray | None = None) -> Generator[Progress, None, DecoderTargets]:
    """The one way decoder targets are prepared (index builds, ``lfs-gui train-decoder``, the app):
    decode each image as the embedder does (:func:`lfs_gui.data.images.open_image`), take the model's
    view at ``size``×``size``; an image that does not decode is skipped with its reason (logged), not
    fatal. Yields Progress every ``every`` images (cancel points); returns :class:`DecoderTargets`,
    whose ``targets`` is a view of ``out`` (default: a new array) holding the decoded rows first."""
    shape = (len(paths), 3, size, size)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 array of shape {shape}, got {out.dtype} {out.shape}")
    rows: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        if i % every == 0:
            yield Progress(i, len(paths), f"preparing decoder targets {i}/{len(paths)}")
        try:
            img = open_image(path)
        except ImageError as exc:
            log.warning("decoder targets: skipped %s", exc)
            skipped.append((str(path), str(exc)))
            continue
        out[len(rows)] = decoder_target(img, preprocessing, size)
        rows.append(i)
    return DecoderTargets(rows, out[: len(rows)], skipped)
