"""Continuity (the paper's shift test): its figure and its data (CSV / JSON).

One or more methods' curves of DIFF = ‖H(x) − H(x′)‖₂ over the shift steps (the image moves out to
the right, then back), the shift in pixels on the top axis, a caption with the settings, and the same
settings in the file's metadata. The data files carry every curve with its settings (steps, heat
size, mode, fill, ξ1, the method's own settings) plus the pair and model identity, so each curve
can be recomputed. JSON: one object; CSV: ``# key: <JSON>`` header lines, then
``method,step,shift_px,diff`` rows. Qt-free.
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.figures.curves import DATA_SUFFIXES, jsonable
from lfs_gui.figures.datafile import dump_csv, number, parse_csv
from lfs_gui.figures.output import check_figure_suffix, new_figure, write_figure
from lfs_gui.figures.panels import inches_to_frac
from lfs_gui.figures.spec import ViewSpec
from lfs_gui.jobs import atomic_write_bytes

log = logging.getLogger(__name__)

CONTINUITY_FORMAT = "lfs-gui-continuity"
CONTINUITY_VERSION = 1
PT = 1.0 / 72.0
COLORS = ("#1f6fd1", "#d95f02", "#2a9d3a", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#17becf")


def continuity_record(curves: Mapping[str, Any], context: dict | None = None) -> dict:
    """The JSON object of a continuity file: format, version, ``context`` sections, and per method
    its settings, steps, shifts (px), DIFF values and their mean."""
    if not curves:
        raise ValueError("no continuity curve to save")
    rec: dict[str, Any] = {"format": CONTINUITY_FORMAT, "version": CONTINUITY_VERSION}
    rec.update(jsonable(dict(context or {})))
    rec["curves"] = {name: jsonable({"settings": dict(c.settings), "mean_diff": c.mean_diff,
                                     "steps": np.asarray(c.steps), "shifts": np.asarray(c.shifts),
                                     "diffs": np.asarray(c.diffs)}) for name, c in curves.items()}
    return rec


def save_continuity_data(path: str | Path, curves: Mapping[str, Any], context: dict | None = None) -> Path:
    """Write the curves (method -> ``ContinuityCurve``) and ``context`` as CSV or JSON by suffix; atomic."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise ValueError(f"{path}: unsupported data format {suffix or '(none)'!r}; use one of {', '.join(DATA_SUFFIXES)}")
    rec = continuity_record(curves, context)
    if suffix == ".json":
        data = json.dumps(rec, indent=1, ensure_ascii=False) + "\n"
    else:
        heads = {n: {"settings": c["settings"], "mean_diff": c["mean_diff"]} for n, c in rec["curves"].items()}
        rows = ([n, s, dx, None if d is None else repr(float(d))]
                for n, c in rec["curves"].items() for s, dx, d in zip(c["steps"], c["shifts"], c["diffs"]))
        data = dump_csv("lfs-gui continuity: settings as JSON in these lines, one row per method and step below",
                        {k: v for k, v in rec.items() if k != "curves"}, heads, ["method", "step", "shift_px", "diff"], rows)
    atomic_write_bytes(path, data.encode("utf-8"))
    log.info("continuity data written to %s", path)
    return path


def load_continuity_data(path: str | Path) -> dict:
    """Read a file written by :func:`save_continuity_data` back into the JSON form."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    sections, heads, rows = parse_csv(text)
    rec: dict[str, Any] = {**sections, "curves": {n: {**h, "steps": [], "shifts": [], "diffs": []} for n, h in heads.items()}}
    for row in rows:
        c = rec["curves"].setdefault(row["method"], {"steps": [], "shifts": [], "diffs": []})
        c["steps"].append(int(row["step"]))
        c["shifts"].append(int(row["shift_px"]))
        c["diffs"].append(number(row["diff"]))
    return rec


def draw_continuity(ax: Any, curves: Mapping[str, Any], font_size: float = 7.0) -> list[str]:
    """DIFF over steps for every method (mean DIFF in the legend), shift in pixels on a top axis."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    drawn = []
    ref = None
    colors = iter(COLORS * 4)
    for name, c in curves.items():
        style = dict(color="0.45", ls="--", mfc="none") if name == "random" else dict(color=next(colors), ls="-")
        ax.plot(np.asarray(c.steps), np.asarray(c.diffs), marker="o", ms=2.5, lw=1.2,
                label=f"{name} (mean {c.mean_diff:.3g})", gid=f"continuity-{name}", **style)
        drawn.append(name)
        ref = ref or c
    ax.set_xlabel("shift step (out to the right, then back)", fontsize=font_size)
    ax.set_ylabel("DIFF = ‖H(x) − H(x′)‖₂", fontsize=font_size, labelpad=1)
    ax.grid(True, alpha=0.3, lw=0.4)
    ax.tick_params(labelsize=font_size - 1, length=2, width=0.5, pad=1.5)
    for axis in (ax.xaxis, ax.yaxis):
        fmt = ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        axis.set_major_formatter(fmt)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    for sp in ax.spines.values():
        sp.set_linewidth(0.5)
    if ref is not None and len(ref.steps):
        steps, shifts = np.asarray(ref.steps), np.asarray(ref.shifts)
        top = ax.secondary_xaxis("top")
        picks = np.unique(np.linspace(0, len(steps) - 1, min(5, len(steps))).round().astype(int))
        top.set_xticks(steps[picks], [f"{int(s)}" for s in shifts[picks]])
        top.set_xlabel("shift (px of the model input)", fontsize=font_size - 1, labelpad=2)
        top.tick_params(labelsize=font_size - 1, length=2, width=0.5, pad=1)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=font_size - 1, loc="best", framealpha=0.85, borderpad=0.3, labelspacing=0.25)
    return drawn


def _fill_name(fill: Any) -> str:
    if fill is None:
        return "the dataset mean"
    rgb = [float(v) for v in fill]
    return "white" if rgb == [1.0, 1.0, 1.0] else "black" if rgb == [0.0, 0.0, 0.0] else f"RGB {tuple(rgb)}"


def continuity_caption(curves: Mapping[str, Any], context: dict) -> str:
    ref = next(iter(curves.values()))
    st = dict(ref.settings)
    pair = context.get("pair", {})
    model = context.get("model", {})
    names = pair.get("names") or [pair.get("query", "?"), pair.get("target", "?")]
    return (f"Continuity (shift test) of {', '.join(curves)} on target {names[1]} (query {names[0]}): "
            f"{st.get('steps', '?')} steps, maps resampled to {st.get('heat_size', '?')}×{st.get('heat_size', '?')}, "
            f"mode {st.get('mode', '?')} ({'explain (x, x′)' if st.get('mode') == 'pair' else 'explain (query, x′)'}), "
            f"vacated pixels filled with {_fill_name(st.get('fill'))}, ξ1 {st.get('xi1', '?'):.3g}. "
            f"Model {model.get('name', model.get('source', '?'))}, index {model.get('index', '?')}. "
            "A continuous explainer rises while the image leaves the frame and returns to 0.")


def save_continuity_figure(path: str | Path, curves: Mapping[str, Any], spec: ViewSpec | None = None,
                           context: dict | None = None) -> Path:
    """Write the continuity figure (PNG/SVG/PDF by suffix) at the spec's size and DPI."""
    path = Path(path)
    check_figure_suffix(path)
    if not curves:
        raise ValueError("no continuity curve to draw")
    spec = spec or ViewSpec()
    context = dict(context or {})
    fs, W = spec.font_size, spec.width_in
    caption = continuity_caption(curves, context)
    lines = textwrap.wrap(caption, max(20, int((W - 0.1) * 72 / (0.53 * (fs - 1)))))
    cap_h = len(lines) * 1.22 * (fs - 1) * PT + 0.04
    left, right = 0.2 + 3.2 * (fs - 1) * PT, 0.08
    plot_w = W - left - right
    plot_h = min(0.5 * plot_w, 2.6)
    top_axis, xlab = 0.1 + 2.6 * fs * PT, 0.12 + 2.4 * (fs - 1) * PT
    H = 0.04 + top_axis + plot_h + xlab + 0.06 + cap_h + 0.03
    fig = new_figure(W, H, dpi=spec.dpi)
    ax = fig.add_axes(inches_to_frac(fig, left, 0.03 + cap_h + 0.06 + xlab, plot_w, plot_h))
    ax.set_gid("continuity")
    draw_continuity(ax, curves, fs)
    fig.text(0.05 / W, 0.03 / H, "\n".join(lines), fontsize=fs - 1, va="bottom", ha="left", linespacing=1.22,
             gid="caption")
    meta = {**context, "curves": {n: {"settings": dict(c.settings), "mean_diff": c.mean_diff} for n, c in curves.items()},
            "view": spec.describe()}
    return write_figure(fig, path, spec.dpi, title="lfs-gui continuity", caption=caption, settings=meta)
