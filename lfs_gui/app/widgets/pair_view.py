"""Pair view: both originals with their heat maps, the decoder reconstructions, and the controls.

Heat maps live in the model-input frame. :class:`HeatTile` draws the original image fitted into the
tile and paints the S×S heat map (colourised, alpha 0 where masked out) into the *crop box* of the
model's preprocessing (:meth:`Preprocessing.crop_box`, the one mapping), clipped to the image: outside
the crop box there is no heat, and the map is never stretched over the whole image. The crop box is
outlined and the area outside it, which the model never saw, is greyed and hatched (as in the exported
figures), so that it does not read as "no relevance". Redrawing on an opacity / colormap / mask change
costs a repaint, not a recomputation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from lfs_gui.app.thumbnails import array_to_qimage, pil_to_qimage
from lfs_gui.app.widgets.controls import ExplainControls
from lfs_gui.app.widgets.match_view import attach_match
from lfs_gui.data.images import load_rgb, upright_size
from lfs_gui.viewer_state import ViewSettings, ViewerState

log = logging.getLogger(__name__)

_DISPLAY_MAX = 640  # originals are kept at most this large on screen (crop box scales with them)
UNSEEN_GREY_ALPHA = 140  # how strongly the area outside the crop box is washed grey


class _ImageCache:
    """Display-size pixmaps of originals plus their original size (small LRU, GUI thread)."""

    def __init__(self, capacity: int = 32) -> None:
        self._d: OrderedDict[str, tuple[QPixmap, tuple[int, int]]] = OrderedDict()
        self.capacity = capacity

    def get(self, path: Path) -> tuple[QPixmap, tuple[int, int]]:
        key = str(path)
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        # The model saw the EXIF-upright image (load_rgb): show that one, and its size for the crop box.
        size = upright_size(path)
        im = load_rgb(path, draft=_DISPLAY_MAX)
        im.thumbnail((_DISPLAY_MAX, _DISPLAY_MAX), Image.BILINEAR)
        pix = QPixmap.fromImage(pil_to_qimage(im))
        self._d[key] = (pix, size)
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)
        return pix, size


def heat_image(heat: np.ndarray, cmap: str, mask: np.ndarray | None = None) -> QImage:
    """S×S heat in [0, 1] -> RGBA ``QImage``; with ``mask`` only masked cells are opaque."""
    from lfs_gui.figures.overlay import colorize

    rgba = colorize(np.asarray(heat, dtype=np.float32), cmap)
    if mask is not None:
        rgba[..., 3] = np.where(np.asarray(mask, bool), 255, 0).astype(np.uint8)
    return array_to_qimage(rgba)


def recon_image(recon: np.ndarray) -> QImage:
    """(3, S, S) in [0, 1] -> RGB ``QImage``."""
    arr = np.clip(np.asarray(recon, dtype=np.float32).transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return array_to_qimage(arr)


class HeatTile(QWidget):
    """An image fitted into the widget, with an optional heat overlay drawn inside the crop box."""

    def __init__(self, title: str, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.title = title
        self.base: QPixmap | None = None
        self.original_size: tuple[int, int] | None = None
        self.crop_box: tuple[float, float, float, float] | None = None
        self.overlay: QImage | None = None
        self.opacity = 0.5
        self.setMinimumSize(QSize(120, 120))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, pixmap: QPixmap | None, original_size: tuple[int, int] | None = None, crop_box: Any = None) -> None:
        self.base = pixmap
        self.original_size = original_size or (None if pixmap is None else (pixmap.width(), pixmap.height()))
        self.crop_box = crop_box
        self.update()

    def set_overlay(self, overlay: QImage | None, opacity: float) -> None:
        self.overlay = overlay
        self.opacity = float(opacity)
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image is drawn (aspect kept, centred, below the title line)."""
        top = self.fontMetrics().height() + 2
        avail = QRectF(0, top, self.width(), self.height() - top)
        if self.original_size is None:
            return avail
        w, h = self.original_size
        s = min(avail.width() / w, avail.height() / h)
        return QRectF(avail.x() + (avail.width() - w * s) / 2, avail.y() + (avail.height() - h * s) / 2, w * s, h * s)

    def overlay_rect(self) -> QRectF | None:
        """The crop box in widget coordinates (the model input's footprint on the original)."""
        if self.original_size is None:
            return None
        r = self.image_rect()
        w, h = self.original_size
        x0, y0, x1, y1 = self.crop_box if self.crop_box is not None else (0.0, 0.0, float(w), float(h))
        sx, sy = r.width() / w, r.height() / h
        return QRectF(r.x() + x0 * sx, r.y() + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawText(0, 0, self.width(), self.fontMetrics().height(), Qt.AlignmentFlag.AlignHCenter, self.title)
        if self.base is None:
            p.setPen(Qt.GlobalColor.gray)
            p.drawRect(self.image_rect().adjusted(0, 0, -1, -1))
            p.end()
            return
        r = self.image_rect()
        p.drawPixmap(r, self.base, QRectF(self.base.rect()))
        ov = self.overlay_rect()
        if self.overlay is not None and ov is not None and self.opacity > 0:
            p.setClipRect(r)
            p.setOpacity(self.opacity)
            p.drawImage(ov, self.overlay, QRectF(self.overlay.rect()))
            p.setOpacity(1.0)
        if self.crop_box is not None and ov is not None:
            self._paint_crop(p, r, ov)
        p.end()

    def unseen_path(self) -> QPainterPath:
        """The part of the drawn image outside the crop box (what the model never saw), widget coordinates."""
        path = QPainterPath()
        ov = self.overlay_rect()
        if self.crop_box is None or ov is None:
            return path
        r = self.image_rect()
        path.addRect(r)
        inner = QPainterPath()
        inner.addRect(ov.intersected(r))
        return path.subtracted(inner)

    def _paint_crop(self, p: QPainter, r: QRectF, ov: QRectF) -> None:
        """Grey and hatch what the model never saw (so it does not read as "no relevance"), then outline
        the crop box (dashed white over dark, visible on any photo)."""
        p.setClipRect(r)
        unseen = self.unseen_path()
        if not unseen.isEmpty():
            p.fillPath(unseen, QColor(128, 128, 128, UNSEEN_GREY_ALPHA))
            p.fillPath(unseen, QBrush(QColor(255, 255, 255, 170), Qt.BrushStyle.BDiagPattern))
        box = ov.adjusted(0.5, 0.5, -0.5, -0.5)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(20, 20, 20), 2.0))
        p.drawRect(box)
        p.setPen(QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DashLine))
        p.drawRect(box)


class PairView(QWidget):
    """The explained pair: heat on both originals, both reconstructions, a summary and the controls."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pairView")
        self._state = state
        self._images = _ImageCache()
        self.queryHeat = HeatTile("query + heat", "queryHeat")
        self.targetHeat = HeatTile("retrieved + heat", "targetHeat")
        self.queryRecon = HeatTile("decoder g(h₁)", "queryRecon")
        self.targetRecon = HeatTile("decoder g(h₂)", "targetRecon")
        self.info = QLabel("Click a retrieval to explain the pair.", objectName="pairInfo")
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setWordWrap(True)
        self.controls = ExplainControls(state, self)
        grid = QGridLayout()
        grid.setSpacing(6)
        for i, tile in enumerate((self.queryHeat, self.targetHeat, self.queryRecon, self.targetRecon)):
            grid.addWidget(tile, 0, i)
            grid.setColumnStretch(i, 2 if i < 2 else 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.info)
        lay.addLayout(grid, 1)
        lay.addWidget(self.controls)
        self.renders = 0  # explanations drawn (for tests and the benchmark)
        state.targetChanged.connect(self._on_pair)
        state.queryChanged.connect(self._on_pair)
        state.explanationChanged.connect(self._on_explanation)
        state.viewSettingsChanged.connect(self._on_view)
        self.match = attach_match(self)  # match points, lines, SANE attributes (issue 12); after our own slots

    def set_reconstructions_visible(self, visible: bool) -> None:
        """Show or hide the decoder reconstructions g(h₁), g(h₂) (View menu; frees width on a laptop)."""
        for tile in (self.queryRecon, self.targetRecon):
            tile.setVisible(bool(visible))

    def reconstructions_visible(self) -> bool:
        return not self.queryRecon.isHidden()

    def _on_pair(self, *_: Any) -> None:
        st = self._state
        session = st.session
        if st.query is None or st.target is None or session is None:
            for t in (self.queryHeat, self.targetHeat, self.queryRecon, self.targetRecon):
                t.set_image(None)
                t.set_overlay(None, 0)
            self.info.setText("Click a retrieval to explain the pair.")
            return
        prep = session.preprocessing
        for tile, path in ((self.queryHeat, st.query.path), (self.targetHeat, session.gallery.items[st.target].path)):
            try:
                pix, size = self._images.get(path)
            except OSError as exc:
                log.warning("cannot show %s: %s", path, exc)
                tile.set_image(None)
                continue
            tile.set_image(pix, size, prep.crop_box(*size))

    def _on_explanation(self, expl: Any) -> None:
        if expl is None:
            for t in (self.queryHeat, self.targetHeat):
                t.set_overlay(None, 0)
            for t in (self.queryRecon, self.targetRecon):
                t.set_image(None)
            if self._state.target is not None:
                self.info.setText(f"<b>{self._state.explain.method}</b>: computing…")
            return
        for tile, recon in ((self.queryRecon, getattr(expl, "recon1", None)), (self.targetRecon, getattr(expl, "recon2", None))):
            if recon is None:
                tile.set_image(None)
            else:
                tile.set_image(QPixmap.fromImage(recon_image(recon)))
        self._on_view(self._state.view)
        self._update_info(expl)
        self.renders += 1

    def _on_view(self, view: ViewSettings) -> None:
        expl = self._state.explanation
        if expl is None:
            return
        for tile, heat, mask in (
            (self.queryHeat, expl.heat1, expl.mask1),
            (self.targetHeat, expl.heat2, expl.mask2),
        ):
            if heat is None:
                tile.set_overlay(None, 0)
            else:
                tile.set_overlay(heat_image(heat, view.cmap, mask if view.mask_only else None), view.opacity)

    def _update_info(self, expl: Any) -> None:
        st = self._state
        session = st.session
        target = session.gallery.items[st.target]
        verdict = "similar" if expl.similar else "dissimilar"
        color = "#2e9d3a" if expl.similar else "#d0312d"
        xi1 = expl.settings.get("xi1", st.explain.xi1) if isinstance(expl.settings, dict) else st.explain.xi1
        method = expl.settings.get("method", st.explain.method) if isinstance(expl.settings, dict) else st.explain.method
        note = ""
        if st.query is not None and st.query.external:
            note = " · <i>external query: not in the decoder's training set</i>"
        self.info.setText(
            f"<b>{method}</b> · {st.query.path.name} ↔ {target.relpath} · cosine <b>{expl.similarity:.3f}</b> → "
            f"<b style='color:{color}'>{verdict}</b> (ξ₁ = {xi1:.2f}){note}"
        )
