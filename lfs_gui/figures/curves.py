"""Pixel-flipping curves: drawing them on a matplotlib axis and saving their data (CSV / JSON).

:func:`save_curve_data` writes everything needed to reproduce a curve (the settings the curve
carries - method, perturbation, seed, steps, query, target, the explanation's settings - plus any
extra ``settings``) next to its points; :func:`load_curve_data` reads either format back.
Qt-free; nothing here touches pyplot's global state.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.jobs import atomic_write_bytes

log = logging.getLogger(__name__)

CURVE_FORMAT = "lfs-gui-curve"
CURVE_VERSION = 1
DATA_SUFFIXES = (".csv", ".json")


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


def curve_record(curve: Any, settings: dict | None = None) -> dict:
    """A JSON-safe dict of ``curve`` (a ``metrics.selectivity.Curve``) and its settings."""
    merged = {**dict(getattr(curve, "settings", {}) or {}), **dict(settings or {})}
    steps = np.asarray(curve.steps).tolist()
    return jsonable({
        "format": CURVE_FORMAT,
        "version": CURVE_VERSION,
        "settings": merged,
        "auc": curve.auc,
        "auc_sim": getattr(curve, "auc_sim", None),
        "lower_is_better": bool(getattr(curve, "lower_is_better", True)),
        "direction": getattr(curve, "direction", ""),
        "order": np.asarray(getattr(curve, "order", [])).tolist(),
        "steps": steps,
        "sims": np.asarray(curve.sims).tolist(),
        "ratios": np.asarray(curve.ratios).tolist(),
        "values": _scored(curve).tolist(),
        "value_name": getattr(curve, "value_name", "sim_k / sim_0"),
    })


def save_curve_data(path: str | Path, curve: Any, settings: dict | None = None) -> Path:
    """Write ``curve`` to ``path`` as CSV or JSON (by suffix), with every setting used; atomic.

    CSV: ``# key: <JSON value>`` header lines (settings, auc, direction, order), then the columns
    ``step,sim,ratio,value`` (``value`` is what the AUC scores, named by ``value_name``). JSON: the dict of :func:`curve_record`. Unknown suffix -> ``ValueError``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise ValueError(f"{path}: unsupported curve data format {suffix or '(none)'!r}; use one of {', '.join(DATA_SUFFIXES)}")
    rec = curve_record(curve, settings)
    if suffix == ".json":
        data = (json.dumps(rec, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    else:
        buf = io.StringIO()
        for key in ("format", "version", "auc", "auc_sim", "lower_is_better", "direction", "value_name", "order"):
            buf.write(f"# {key}: {json.dumps(rec[key])}\n")
        for key, value in rec["settings"].items():
            buf.write(f"# settings.{key}: {json.dumps(value, ensure_ascii=False)}\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "sim", "ratio", "value"])
        for s, y, r, v in zip(rec["steps"], rec["sims"], rec["ratios"], rec["values"]):
            w.writerow([s] + ["" if x is None else repr(float(x)) for x in (y, r, v)])
        data = buf.getvalue().encode("utf-8")
    atomic_write_bytes(path, data)
    log.info("curve data written to %s", path)
    return path


def load_curve_data(path: str | Path) -> dict:
    """Read a file written by :func:`save_curve_data` back into the :func:`curve_record` dict."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    rec: dict[str, Any] = {"settings": {}, "steps": [], "sims": [], "ratios": [], "values": []}
    rows = []
    for line in text.splitlines():
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            if key.startswith("settings."):
                rec["settings"][key[len("settings."):]] = json.loads(value)
            else:
                rec[key] = json.loads(value)
        elif line.strip():
            rows.append(line)
    for row in list(csv.DictReader(rows)):
        rec["steps"].append(int(row["step"]))
        rec["sims"].append(float(row["sim"]) if row["sim"] else None)
        rec["ratios"].append(float(row["ratio"]) if row["ratio"] else None)
        rec["values"].append(float(row["value"]) if row.get("value") else None)
    return rec


def _scored(curve: Any) -> np.ndarray:
    values = getattr(curve, "values", None)
    return np.asarray(curve.ratios if values is None else values)


def draw_curve(ax: Any, curve: Any, label: str = "method", random_curve: Any = None, color: str = "C0") -> None:
    """Draw the scored pixel-flipping curve on ``ax`` (sim_k / sim_0 for a similar pair, sim_k − sim_0 for
    a dissimilar one; see ``metrics.selectivity``), AUCs in the legend."""
    steps = np.asarray(curve.steps)
    ax.plot(steps, _scored(curve), "-o", ms=3, color=color, label=f"{label} (AUC {_fmt(curve.auc)})")
    if random_curve is not None:
        ax.plot(np.asarray(random_curve.steps), _scored(random_curve), "--", color="0.45",
                label=f"random (AUC {_fmt(random_curve.auc)})")
    st = dict(getattr(curve, "settings", {}) or {})
    mode = st.get("mode", "deletion")
    ax.set_xlabel(fontsize=8, xlabel=f"cells {'removed' if mode == 'deletion' else 'restored'} (of {st.get('grid', '?')}×{st.get('grid', '?')})")
    name = getattr(curve, "value_name", "sim_k / sim_0")
    ax.set_ylabel(name, fontsize=8)
    ax.set_title(f"pixel flipping ({mode}; {getattr(curve, 'direction', '')})", fontsize=9)
    ax.axhline(1.0 if "/" in name else 0.0, color="0.8", lw=0.8, zorder=0)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=7)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7, loc="best")


def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "?"
    return f"{f:.4f}" if math.isfinite(f) else "n/a"
