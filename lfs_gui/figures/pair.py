"""The pair figure: what the window's pair view and curves panel show, at publication quality.

One row: the query and the target with the heat map inside each model's crop box (the area the
model never saw greyed and hatched, the crop box dashed), the decoder's reconstructions, a colour
bar; the pixel-flipping curves (the method's, random's and the oracle's when computed, AUCs in the
legend) to the right at double-column width or below at single-column width. Above: the cosine
similarity and the decision at ξ1; below: a caption line with every setting, which also goes into the
file's metadata (:mod:`lfs_gui.figures.output`). What is drawn and how is a
:class:`~lfs_gui.figures.spec.ViewSpec`; the data is a :class:`PairData`, built from a session by
:meth:`PairData.from_session` (the one place that knows the session's API). Qt-free.
"""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.figures.curves import as_curves, draw_curves, fmt_auc
from lfs_gui.figures.output import check_figure_suffix, new_figure, write_figure
from lfs_gui.figures.overlay import Box
from lfs_gui.figures.panels import (
    ImageSource,
    add_colorbar,
    draw_correspondence,
    heat_panel,
    inches_to_frac,
    recon_panel,
)
from lfs_gui.figures.spec import ViewSpec

log = logging.getLogger(__name__)

SIMILAR_COLOR, DISSIMILAR_COLOR = "#1a7f37", "#c62828"
PT = 1.0 / 72.0


def explanation_fields(ex: Any) -> dict:
    """The parts of an explained pair the figures draw, from any of the project's result objects
    (maps in the model-input frame; masks = heat > ξ2 when the object carries none)."""
    st = dict(getattr(ex, "settings", {}) or {})
    xi2 = float(st.get("xi2", 0.7))
    heat1, heat2 = getattr(ex, "heat1", None), getattr(ex, "heat2", None)
    mask1, mask2 = getattr(ex, "mask1", None), getattr(ex, "mask2", None)
    if mask1 is None and heat1 is not None:
        mask1 = np.asarray(heat1) > xi2
    if mask2 is None and heat2 is not None:
        mask2 = np.asarray(heat2) > xi2
    return {"method": getattr(ex, "method", None) or st.get("method", "?"), "heat1": heat1, "heat2": heat2,
            "mask1": mask1, "mask2": mask2, "recon1": getattr(ex, "recon1", None),
            "recon2": getattr(ex, "recon2", None), "similarity": float(ex.similarity),
            "similar": bool(ex.similar), "settings": st, "xi2": xi2}


@dataclass(frozen=True, eq=False)
class PairData:
    """Everything a pair figure draws besides the view: both images, their crop boxes, the
    explanation, the curves (role -> Curve) and the identity of the pair, model, decoder and index."""

    sources: tuple[ImageSource, ImageSource]
    names: tuple[str, str]
    boxes: tuple[Box, Box]
    explanation: Any
    curves: dict[str, Any] = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    # Rows of heat maps drawn below the pair, each (query title, query map, target title, target map),
    # maps in the model-input frame: SANE's attribute maps (lfs_gui.figures.correspondence, issue 12).
    extra_rows: tuple = ()

    @classmethod
    def from_session(cls, session: Any, query: Any, target: Any, explanation: Any, curves: Any = None) -> "PairData":
        """Collect the pair's data from a session (``image_path``, ``class_of``, ``preprocessing``,
        ``model_info``, ``decoder``, ``name``)."""
        sources = (ImageSource.from_path(session.image_path(query)), ImageSource.from_path(session.image_path(target)))
        pre = session.preprocessing
        boxes = tuple(pre.crop_box(*s.size) for s in sources)
        return cls(sources=sources, names=(describe_image(session, query), describe_image(session, target)),
                   boxes=boxes, explanation=explanation, curves=as_curves(curves),  # type: ignore[arg-type]
                   identity=session_identity(session, query, target))

    def with_curves(self, curves: Any) -> "PairData":
        return PairData(self.sources, self.names, self.boxes, self.explanation, as_curves(curves), self.identity,
                        self.extra_rows)

    def context(self, spec: ViewSpec | None = None) -> dict:
        """The settings that describe this figure (pair, explanation, model, curves, view): the
        curve-data file's sections and the figure's metadata."""
        f = explanation_fields(self.explanation)
        ctx: dict[str, Any] = {
            "pair": {**self.identity.get("pair", {}), "names": list(self.names), "similarity": f["similarity"],
                     "decision": "similar" if f["similar"] else "dissimilar"},
            "explanation": {"method": f["method"], **f["settings"]},
            "model": self.identity.get("model", {}),
        }
        if self.curves:
            ctx["curves"] = {role: {"auc": getattr(c, "auc", None), "direction": getattr(c, "direction", ""),
                                    "settings": dict(getattr(c, "settings", {}) or {})} for role, c in self.curves.items()}
        if spec is not None:
            ctx["view"] = spec.describe()
        return ctx


def describe_image(session: Any, query: Any) -> str:
    """``#12 (birds)`` for a gallery id, the file name for an external image."""
    if isinstance(query, (int, np.integer)):
        cls = session.class_of(int(query))
        return f"#{int(query)}" + (f" ({cls})" if cls else "")
    return Path(query).name


def session_identity(session: Any, query: Any, target: Any) -> dict:
    """Which pair, model, decoder and index: what a reader needs to recompute the figure."""
    dec = getattr(session, "decoder", None)
    dec_path = getattr(session, "decoder_path", None)
    qkey = int(query) if isinstance(query, (int, np.integer)) else str(query)
    return {
        "pair": {"query": qkey, "target": int(target) if isinstance(target, (int, np.integer)) else str(target),
                 "external_query": not isinstance(query, (int, np.integer))},
        "model": {"index": getattr(session, "name", "?"), **dict(getattr(session, "model_info", {}) or {}),
                  "decoder": None if dec is None else {"kind": getattr(dec, "kind", "?"), "size": getattr(dec, "size", None),
                                                        "file": None if dec_path is None else str(dec_path)},
                  "preprocessing": _preprocessing_dict(getattr(session, "preprocessing", None))},
    }


def _preprocessing_dict(pre: Any) -> dict | None:
    if pre is None:
        return None
    return {k: getattr(pre, k) for k in ("input_size", "resize", "mean", "std") if hasattr(pre, k)}


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def settings_caption(data: PairData, spec: ViewSpec) -> str:
    """One caption paragraph with every setting used (method, view, curve, model)."""
    f = explanation_fields(data.explanation)
    st = f["settings"]
    names = {"p": "p", "xi1": "ξ1", "xi2": "ξ2", "seed": "seed", "target": "target"}
    first = ("p", "xi1", "xi2")
    keys = [k for k in first if k in st] + sorted(k for k in st if k not in first and k != "method")
    parts = [f"{names.get(k, k)} {_num(st[k])}" for k in keys
             if isinstance(st[k], (int, float, str)) and not isinstance(st[k], bool)]
    lines = [f"Method {f['method']} ({', '.join(parts)})."]
    view = f"View: {spec.cmap} colormap, opacity {spec.opacity:g}" + (f", heat only where > ξ2 = {f['xi2']:g}" if spec.mask_view else "")
    if spec.crop_box or spec.mark_unseen:
        view += "; dashed box = the model's crop" + ("; hatched = not seen by the model" if spec.mark_unseen else "")
    if spec.correspondence is not None and len(spec.correspondence):
        view += f"; {len(spec.correspondence)} {spec.correspondence.label or 'correspondences'}"
    lines.append(view + ".")
    ref = data.curves.get("method") or next(iter(data.curves.values()), None)
    if ref is not None:
        cs = dict(getattr(ref, "settings", {}) or {})
        bits = [f"{cs.get('perturbation', '?')} perturbation", str(cs.get("mode", "deletion")),
                f"{cs.get('steps', '?')} steps of {cs.get('superpixel', '?')}×{cs.get('superpixel', '?')} cells on a "
                f"{cs.get('heat_size', '?')}-px map", f"seed {cs.get('seed', '?')}"]
        aucs = ", ".join(f"{role} {fmt_auc(getattr(c, 'auc', None))}" for role, c in data.curves.items())
        lines.append(f"Curve: {', '.join(bits)}; AUC {aucs} ({getattr(ref, 'direction', '')}).")
    model = data.identity.get("model", {})
    dec = model.get("decoder") or {}
    who = f"Model {model.get('name', model.get('source', '?'))}"
    if dec:
        who += f", decoder {dec.get('kind', '?')}{dec.get('size') or ''}"
    lines.append(who + f", index {model.get('index', '?')}.")
    return " ".join(lines)


def summary_line(data: PairData) -> tuple[str, str, str]:
    """(left text, decision word, its colour) for the line above the panels."""
    f = explanation_fields(data.explanation)
    xi1 = f["settings"].get("xi1")
    sim = f"{f['similarity']:.3f}".replace("-", "−")
    left = f"{f['method']} · cosine similarity {sim} → "
    word = ("SIMILAR" if f["similar"] else "DISSIMILAR") + (f" (ξ1 = {float(xi1):.2f})" if xi1 is not None else "")
    return left, word, SIMILAR_COLOR if f["similar"] else DISSIMILAR_COLOR


def _wrap(text: str, width_in: float, font_size: float) -> list[str]:
    chars = max(20, int(width_in * 72 / (0.53 * font_size)))
    return textwrap.wrap(text, chars) or [""]


def build_pair_figure(data: PairData, spec: ViewSpec) -> tuple[Any, dict]:
    """Lay out and draw the pair figure; returns ``(figure, info)`` where ``info`` names the axes
    (``query``, ``target``, ``colorbar``, ``curve`` ...) and the roles of the curves drawn."""
    f = explanation_fields(data.explanation)
    fs = spec.font_size
    W = spec.width_in
    curves = {r: c for r, c in data.curves.items() if r in spec.curves}
    has_recon = spec.reconstructions and (f["recon1"] is not None or f["recon2"] is not None)
    wide = bool(curves) and W >= 5.0
    ml = mr = 0.06
    g = 0.06
    th = 1.45 * fs * PT  # a panel title's band
    cbw = (0.07 + (0.05 + 3.2 * (fs - 1) * PT)) if spec.colorbar else 0.0  # bar + ticks + label
    ylab = 0.2 + 3.0 * (fs - 1) * PT  # room for the curve's tick labels and y label
    curve_w = max(1.5, 0.30 * W) if wide else 0.0
    avail = W - ml - mr - (g + cbw if spec.colorbar else 0.0) - (curve_w + ylab + g if wide else 0.0)
    P = (avail - g - (g if has_recon else 0.0)) / (2.5 if has_recon else 2.0)
    aspect = float(np.clip(max(s.size[1] / s.size[0] for s in data.sources), 0.55, 1.45))
    Ph = P * aspect
    rw = 0.5 * P if has_recon else 0.0
    r_side = min(rw, (Ph - th) / 2.0) if has_recon else 0.0
    summary_h = 1.9 * fs * PT
    xlab = 0.12 + 2.4 * (fs - 1) * PT
    curve_h = 0.0 if (wide or not curves) else max(1.3, 0.42 * (W - ml - mr - ylab))
    caption = settings_caption(data, spec)
    cap_lines = _wrap(caption, W - 2 * ml, fs - 1)
    cap_h = len(cap_lines) * 1.22 * (fs - 1) * PT + 0.04
    row_h = th + Ph
    lower_h = (g + th + curve_h + xlab) if curve_h else 0.0
    below_row = xlab if wide else 0.0  # the wide curve's x label hangs below the row
    extra_h = len(data.extra_rows) * (g + th + Ph)
    H = 0.04 + summary_h + row_h + below_row + extra_h + lower_h + 0.06 + cap_h + 0.03
    fig = new_figure(W, H, dpi=spec.dpi)
    info: dict[str, Any] = {"width_in": W, "height_in": H, "wide": wide}

    # the summary line
    left, word, color = summary_line(data)
    y_sum = H - 0.04 - summary_h * 0.55
    t = fig.text(ml / W, y_sum / H, left, fontsize=fs + 0.5, va="center", ha="left")
    bb = t.get_window_extent(renderer=fig.canvas.get_renderer())
    x_word = (bb.x1 / fig.dpi) / W
    fig.text(x_word, y_sum / H, word, fontsize=fs + 0.5, va="center", ha="left", color=color, fontweight="bold",
             gid="decision")

    row_top = H - 0.04 - summary_h
    row_bottom = row_top - row_h
    x = ml
    axes = {}
    for i, (who, heat, mask) in enumerate((("query", f["heat1"], f["mask1"]), ("target", f["heat2"], f["mask2"]))):
        ax = fig.add_axes(inches_to_frac(fig, x, row_bottom, P, Ph))
        ax.set_gid(f"panel-{who}")
        heat_panel(ax, data.sources[i], heat, data.boxes[i], spec, mask=mask, title=f"{who} {data.names[i]}")
        axes[who] = ax
        x += P + g
    if has_recon:
        for j, (recon, name) in enumerate(((f["recon1"], "g(h₁)"), (f["recon2"], "g(h₂)"))):
            ax = fig.add_axes(inches_to_frac(fig, x, row_top - th - r_side - j * (r_side + th), r_side, r_side))
            size = "" if recon is None else f" {np.asarray(recon).shape[-1]} px"
            recon_panel(ax, recon, f"{name}{size}", fs - 1)
            axes[f"recon{j + 1}"] = ax
        x += rw + g
    if spec.colorbar:
        cax = fig.add_axes(inches_to_frac(fig, x, row_bottom + 0.05 * Ph, 0.07, 0.9 * Ph))
        add_colorbar(fig, cax, spec, xi2=f["xi2"])
        axes["colorbar"] = cax
    if spec.correspondence is not None:
        info["matches"] = draw_correspondence(fig, axes["query"], axes["target"], spec.correspondence,
                                              data.boxes[0], data.boxes[1], fs)
    for k, (t1, h1, t2, h2) in enumerate(data.extra_rows):
        yb = row_bottom - below_row - (k + 1) * (g + th + Ph)
        for i, (title, heat) in enumerate(((t1, h1), (t2, h2))):
            ax = fig.add_axes(inches_to_frac(fig, ml + i * (P + g), yb, P, Ph))
            heat_panel(ax, data.sources[i], heat, data.boxes[i], spec, title=title)
            axes[f"extra{k}-{'query' if i == 0 else 'target'}"] = ax
    if curves:
        if wide:
            cx = W - mr - curve_w
            cy = row_bottom
            ch = row_h - th
        else:
            cx = ml + ylab
            cy = row_bottom - extra_h - g - th - curve_h
            ch = curve_h
            curve_w = W - mr - cx
        ax = fig.add_axes(inches_to_frac(fig, cx, cy, curve_w, ch))
        ax.set_gid("curve")
        info["curves"] = draw_curves(ax, curves, method=f["method"], font_size=fs, roles=spec.curves)
        axes["curve"] = ax
    fig.text(ml / W, 0.03 / H, "\n".join(cap_lines), fontsize=fs - 1, va="bottom", ha="left", linespacing=1.22,
             gid="caption")
    info["axes"] = axes
    info["caption"] = caption
    return fig, info


def save_pair_figure(path: str | Path, data: PairData, spec: ViewSpec | None = None) -> Path:
    """Write the pair figure of ``data`` drawn as ``spec`` says to ``path`` (PNG/SVG/PDF by suffix)."""
    path = Path(path)
    check_figure_suffix(path)
    spec = spec or ViewSpec()
    fig, info = build_pair_figure(data, spec)
    left, word, _ = summary_line(data)
    title = f"lfs-gui pair figure: query {data.names[0]} vs target {data.names[1]}"
    return write_figure(fig, path, spec.dpi, title=title, caption=f"{left}{word}. {info['caption']}",
                        settings=data.context(spec))
