"""Pixel-flipping curves: drawing them on a matplotlib axis and saving their data (CSV / JSON).

A pair's plot holds up to three curves, keyed by role: ``method`` (the explainer's), ``random`` (the
floor every map must beat) and ``oracle`` (the best ordering found, when computed). The data files
carry every curve on the plot and everything needed to recompute them: per curve its own settings
(steps, superpixel, heat size, grid, mode, ranking, perturbation and its settings, seed, the
explanation's settings incl. ξ1 and the method's target, query and target ids), its cell order and
AUCs; for the file the pair, the model's identity and the figure's view.

JSON: one object (:func:`curves_record`). CSV: ``# key: <JSON>`` header lines (one per section and
per curve), then one row per curve and step: ``curve,step,sim,ratio,value``. :func:`load_curve_data`
reads either back into the JSON form. Qt-free; nothing here touches pyplot's global state.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.figures.datafile import dump_csv, number, parse_csv
from lfs_gui.jobs import atomic_write_bytes

log = logging.getLogger(__name__)

CURVE_FORMAT = "lfs-gui-curves"
CURVE_VERSION = 2
DATA_SUFFIXES = (".csv", ".json")
CURVE_STYLES = {
    "method": dict(color="#1f6fd1", ls="-", marker="o", ms=2.5, lw=1.2, zorder=3),
    "random": dict(color="0.45", ls="--", marker="o", ms=2.0, mfc="none", lw=1.0, zorder=2),
    "oracle": dict(color="#2a9d3a", ls=":", marker="s", ms=2.0, lw=1.1, zorder=1),
}


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, paths, tuples and sets made JSON-safe; NaN/inf -> None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def as_curves(curves: Any) -> dict[str, Any]:
    """A role -> curve dict from a mapping (``None`` values dropped) or a single curve (``method``)."""
    if curves is None:
        return {}
    if isinstance(curves, Mapping):
        return {str(k): v for k, v in curves.items() if v is not None}
    return {"method": curves}


def _scored(curve: Any) -> np.ndarray:
    values = getattr(curve, "values", None)
    return np.asarray(curve.ratios if values is None else values)


def curve_record(curve: Any, label: str = "") -> dict:
    """A JSON-safe dict of one curve (a ``metrics.selectivity.Curve``): points, AUCs, order, settings."""
    return jsonable({
        "label": label or str((getattr(curve, "settings", {}) or {}).get("method", "")),
        "settings": dict(getattr(curve, "settings", {}) or {}),
        "auc": curve.auc,
        "auc_sim": getattr(curve, "auc_sim", None),
        "lower_is_better": bool(getattr(curve, "lower_is_better", True)),
        "direction": getattr(curve, "direction", ""),
        "value_name": getattr(curve, "value_name", "sim_k / sim_0"),
        "order": np.asarray(getattr(curve, "order", [])).tolist(),
        "steps": np.asarray(curve.steps).tolist(),
        "sims": np.asarray(curve.sims).tolist(),
        "ratios": np.asarray(curve.ratios).tolist(),
        "values": _scored(curve).tolist(),
    })


def curves_record(curves: Any, context: dict | None = None, labels: dict[str, str] | None = None) -> dict:
    """The file's JSON object: ``format``, ``version``, the ``context`` sections (pair, explanation,
    model, view, ...) and ``curves`` (role -> :func:`curve_record`)."""
    cs = as_curves(curves)
    if not cs:
        raise ValueError("no curve to save: wait for the pixel-flipping curve to finish")
    labels = dict(labels or {})
    rec: dict[str, Any] = {"format": CURVE_FORMAT, "version": CURVE_VERSION}
    rec.update(jsonable(dict(context or {})))
    rec["curves"] = {role: curve_record(c, labels.get(role, role if role != "method" else "")) for role, c in cs.items()}
    return rec


def save_curve_data(path: str | Path, curves: Any, context: dict | None = None,
                    labels: dict[str, str] | None = None) -> Path:
    """Write every curve in ``curves`` (a role -> Curve mapping, or one Curve) and ``context`` to
    ``path`` as CSV or JSON (by suffix); atomic. Unknown suffix -> ``ValueError``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise ValueError(f"{path}: unsupported curve data format {suffix or '(none)'!r}; use one of {', '.join(DATA_SUFFIXES)}")
    rec = curves_record(curves, context, labels)
    if suffix == ".json":
        text = json.dumps(rec, indent=1, ensure_ascii=False) + "\n"
    else:
        points = ("steps", "sims", "ratios", "values")
        heads = {role: {k: v for k, v in c.items() if k not in points} for role, c in rec["curves"].items()}
        rows = ([role, s] + [None if x is None else repr(float(x)) for x in (y, r, v)]
                for role, c in rec["curves"].items() for s, y, r, v in zip(*(c[k] for k in points)))
        text = dump_csv("lfs-gui pixel-flipping curves: settings as JSON in these lines, one row per curve and step below",
                        {k: v for k, v in rec.items() if k != "curves"}, heads, ["curve", "step", "sim", "ratio", "value"], rows)
    data = text.encode("utf-8")
    atomic_write_bytes(path, data)
    log.info("curve data written to %s", path)
    return path


def load_curve_data(path: str | Path) -> dict:
    """Read a file written by :func:`save_curve_data` back into the :func:`curves_record` dict."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    sections, heads, rows = parse_csv(text)
    rec: dict[str, Any] = {**sections, "curves": {}}
    for role, head in heads.items():
        rec["curves"][role] = {**head, "steps": [], "sims": [], "ratios": [], "values": []}
    for row in rows:
        c = rec["curves"].setdefault(row["curve"], {"steps": [], "sims": [], "ratios": [], "values": []})
        c["steps"].append(int(row["step"]))
        for col, key in (("sim", "sims"), ("ratio", "ratios"), ("value", "values")):
            c[key].append(number(row[col]))
    return rec


def curve_label(role: str, curve: Any, method: str = "") -> str:
    name = method if role == "method" and method else role
    return f"{name} (AUC {fmt_auc(getattr(curve, 'auc', None))})"


def draw_curves(ax: Any, curves: Any, method: str = "", font_size: float = 7.0,
                roles: tuple[str, ...] = ("method", "random", "oracle"), title: bool = True) -> list[str]:
    """Draw the scored pixel-flipping curves (sim_k / sim_0 for a similar pair, sim_k − sim_0 for a
    dissimilar one; see ``metrics.selectivity``) on ``ax``, AUCs in the legend, plain tick labels (no
    offset or scientific notation). Returns the roles drawn, in order."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    cs = as_curves(curves)
    drawn = []
    for role in roles:
        c = cs.get(role)
        if c is None:
            continue
        style = CURVE_STYLES.get(role, CURVE_STYLES["random"])
        ax.plot(np.asarray(c.steps), _scored(c), label=curve_label(role, c, method), gid=f"curve-{role}", **style)
        drawn.append(role)
    ref = cs.get("method") or next(iter(cs.values()), None)
    if ref is None:
        ax.set_axis_off()
        return drawn
    st = dict(getattr(ref, "settings", {}) or {})
    mode = st.get("mode", "deletion")
    grid = st.get("grid", "?")
    ax.set_xlabel(f"cells {'removed' if mode == 'deletion' else 'restored'} (of {grid}×{grid})", fontsize=font_size)
    name = getattr(ref, "value_name", "sim_k / sim_0")
    ax.set_ylabel(axis_label(name), fontsize=font_size, labelpad=1)
    if title:
        ax.set_title(f"pixel flipping ({mode}; {getattr(ref, 'direction', '')})", fontsize=font_size, pad=2)
    ax.axhline(1.0 if "/" in name else 0.0, color="0.8", lw=0.6, zorder=0)
    ax.grid(True, alpha=0.3, lw=0.4)
    ax.tick_params(labelsize=font_size - 1, length=2, width=0.5, pad=1.5)
    for axis in (ax.xaxis, ax.yaxis):
        fmt = ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        axis.set_major_formatter(fmt)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    for sp in ax.spines.values():
        sp.set_linewidth(0.5)
    ax.legend(fontsize=font_size - 1, loc="best", frameon=True, framealpha=0.85, handlelength=2.2,
              borderpad=0.3, labelspacing=0.25)
    return drawn


def axis_label(value_name: str) -> str:
    """The scored quantity as typeset math (sim_k / sim_0, sim_k − sim_0), as it is: no rescaling."""
    math_name = value_name.replace("sim_k", r"\mathrm{sim}_k").replace("sim_0", r"\mathrm{sim}_0")
    math_name = math_name.replace("−", "-").replace(" / ", r"\,/\,")
    return f"${math_name}$" if "sim" in value_name else value_name


def fmt_auc(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "?"
    return f"{f:.3f}" if math.isfinite(f) else "n/a"
