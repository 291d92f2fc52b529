"""Decoder targets of a gallery: the model's view of each image at S×S, prepared one way for every
caller (index builds, ``lfs-gui train-decoder``, the app's *Train a decoder*).

Images decode as the embedder decodes them (:func:`lfs_gui.data.images.open_image`); the view is
:func:`lfs_gui.models.train_decoder.decoder_target`. An image that does not decode is skipped with its
reason, never fatal: the caller trains on the rows that remain (``DecoderTargets.rows``).
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
                         every: int = 16) -> Generator[Progress, None, DecoderTargets]:
    """The one way decoder targets are prepared (index builds, ``lfs-gui train-decoder``, the app):
    decode each image as the embedder does (:func:`lfs_gui.data.images.open_image`), take the model's
    view at ``size``×``size``; an image that does not decode is skipped with its reason (logged), not
    fatal. Yields Progress every ``every`` images (cancel points); returns :class:`DecoderTargets`."""
    rows: list[int] = []
    targets: list[np.ndarray] = []
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
        targets.append(decoder_target(img, preprocessing, size))
        rows.append(i)
    arr = np.stack(targets) if targets else np.zeros((0, 3, size, size), np.float32)
    return DecoderTargets(rows, arr, skipped)
