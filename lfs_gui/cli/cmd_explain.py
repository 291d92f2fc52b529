"""``lfs-gui explain [INDEX] --query ID|PATH --target ID|PATH --out FIG``: explain one pair, write its figure.

The figure (PNG/SVG/PDF by suffix) is :func:`lfs_gui.figures.save_pair_figure` drawn from a
:class:`~lfs_gui.figures.ViewSpec` built from the figure flags (``--size``, ``--dpi``, ``--cmap``,
``--opacity``, ``--mask-view``), the same figure the app exports. ``--curve`` adds the pixel-flipping
curve (and the ``random`` floor's, with ``--random-curve``); ``--curve-data FILE.csv|json`` saves every
curve's points with everything needed to recompute them.
Without INDEX it verifies two image files (:mod:`lfs_gui.verify`: ``--model`` or the demo model;
ξ1 from ``--xi1``, else the model card's, else the paper's 0.3).
``--point X,Y`` / ``--match-lines K`` (correspondence) and ``--attributes`` (SANE) are
:mod:`lfs_gui.cli.pair_extras`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lfs_gui.cli import pair_extras
from lfs_gui.cli._common import (
    EXIT_INTERRUPTED, EXIT_OK, add_device_arguments, add_index_arguments, check_writable, device_from_args, emit_json,
    guarded, index_overrides, progress_bar,
)
from lfs_gui.cli._view_flags import add_view_arguments, view_spec
from lfs_gui.cli.cmd_query import open_session, parse_query

NAME = "explain"
HELP = "explain a (query, target) pair with ExplainLFS or a baseline and write the figure"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", nargs="?", default=None,
                        help="index folder (from `lfs-gui index`), or 'demo'; omit it to compare two image files")
    parser.add_argument("--query", required=True, metavar="ID|PATH", help="gallery id or an external image path")
    parser.add_argument("--target", required=True, metavar="ID|PATH", help="gallery id or an external image path")
    parser.add_argument("--model", default=None, metavar="M",
                        help="without INDEX: the model file (default: the demo model, with the demo's decoder); with "
                             "INDEX: the model that built it, if the file moved (another model is refused)")
    parser.add_argument("--method", default="explainlfs", help="explanation method (default explainlfs)")
    parser.add_argument("--question", choices=["decision", "similarity"], default="decision",
                        help="what the map (and curve) answers: decision (default; what makes the pair similar, or "
                             "dissimilar) or similarity (what makes the two alike)")
    parser.add_argument("--decoder", default=None, metavar="D", help="decoder file (default: the index's own)")
    parser.add_argument("--p", type=float, default=None,
                        help="ExplainLFS perturbation size p (default: the method's own, as in the app and evaluate: "
                             "0.3 for explainlfs, 0.1 for explainlfs-rel)")
    parser.add_argument("--xi1", type=float, default=None,
                        help="similar/dissimilar threshold on cosine (default: suggested for this gallery)")
    parser.add_argument("--xi2", type=float, default=0.7, help="mask threshold on the heat map (default 0.7)")
    parser.add_argument("--seed", type=int, default=0, help="seed of seeded methods and of the curve's noise (0)")
    parser.add_argument("--curve", action="store_true", help="add the pixel-flipping curve (loads the model)")
    parser.add_argument("--random-curve", action="store_true", help="with --curve: also the random map's curve")
    parser.add_argument("--steps", type=int, default=20, help="curve steps (default 20)")
    parser.add_argument("--perturbation", default="noise", help="curve perturbation (default noise)")
    parser.add_argument("--curve-data", metavar="FILE", default=None, help="with --curve: save its data (.csv/.json)")
    parser.add_argument("--out", required=True, metavar="FIG", help="figure file: .png, .svg or .pdf")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
    add_device_arguments(parser, embedding=False)  # runs the model, embeds no gallery
    add_index_arguments(parser, model=False)  # --model is above: with INDEX it is the index's model
    add_view_arguments(parser)
    pair_extras.add_arguments(parser)  # --point, --match-lines, --attributes (issue 12)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def heat_stats(heat: Any) -> dict | None:
    """min/max/mean and the argmax position of a heat map (model-input frame)."""
    import numpy as np

    if heat is None:
        return None
    h = np.asarray(heat, np.float64)
    return {"shape": list(h.shape), "min": float(h.min()), "max": float(h.max()), "mean": float(h.mean()),
            "argmax": [int(v) for v in np.unravel_index(int(np.argmax(h)), h.shape)]}


def _check_args(args: argparse.Namespace) -> tuple[Path, Path | None]:
    from lfs_gui.figures import check_figure_suffix
    from lfs_gui.figures.curves import DATA_SUFFIXES

    out = Path(args.out).expanduser().resolve()
    check_figure_suffix(out)
    data = None
    if args.curve_data is not None:
        if not args.curve:
            raise ValueError("--curve-data needs --curve")
        data = Path(args.curve_data).expanduser().resolve()
        if data.suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(f"{data}: unsupported curve data format; use one of {', '.join(DATA_SUFFIXES)}")
    if args.random_curve and not args.curve:
        raise ValueError("--random-curve needs --curve")
    if args.steps < 1:
        raise ValueError("--steps must be at least 1")
    if not 0.0 <= args.xi2 <= 1.0:
        raise ValueError(f"--xi2 must be in [0, 1] (heat maps are normalised), got {args.xi2}")
    pair_extras.check_arguments(args)
    for p in (out, data):
        if p is not None:
            check_writable(p)
    return out, data


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import numpy as np

    from lfs_gui.figures import PairData, save_curve_data, save_pair_figure
    from lfs_gui.session import query_name

    out, data_path = _check_args(args)
    spec = view_spec(args)
    device, batch = device_from_args(args)
    query, target = parse_query(args.query), parse_query(args.target)
    xi1, xi1_source = args.xi1, "user" if args.xi1 is not None else "gallery"
    if args.index is None:  # two image files, no gallery (lfs_gui.verify)
        from lfs_gui.verify import decision_xi1, open_pair

        if isinstance(query, int) or isinstance(target, int):
            raise ValueError("--query/--target: gallery ids need an INDEX; without one give two image paths")
        session = open_pair(args.model, args.decoder, args.trust_checkpoint, device)
        xi1, xi1_source = decision_xi1(args.xi1, session.model)
    else:
        session = open_session(args.index, decoder=args.decoder, trust_checkpoint=args.trust_checkpoint, device=device,
                               **index_overrides(args))
    settings: dict[str, Any] = {"seed": args.seed}
    if args.p is not None:
        settings["p"] = args.p
    t0 = time.perf_counter()
    ex = session.explain(query, target, args.method, xi1=xi1, xi2=args.xi2, question=args.question, **settings)
    t_explain = time.perf_counter() - t0
    curve = rnd = None
    interrupted = False
    if args.curve:
        try:
            curve = progress_bar(session.iter_curve(query, target, ex, steps=args.steps,
                                                    perturbation=args.perturbation, seed=args.seed), desc="curve")
            if args.random_curve:
                rnd = progress_bar(session.iter_random_curve(query, target, steps=args.steps,
                                                             perturbation=args.perturbation, seed=args.seed,
                                                             xi1=ex.settings.get("xi1"), question=ex.target),
                                   desc="random curve")
        except KeyboardInterrupt:
            interrupted = True  # keep what is done: the figure without the unfinished curve(s)
            print("lfs-gui explain: interrupted during the curve; writing the figure without it", file=sys.stderr)
    extras = pair_extras.compute_extras(args, session, query, target, ex, spec)
    data = PairData.from_session(session, query, target, extras.explanation, {"method": curve, "random": rnd})
    save_pair_figure(out, replace(data, extra_rows=extras.extra_rows), extras.spec)
    if curve is not None and data_path is not None:
        save_curve_data(data_path, data.curves, data.context(spec), labels={"method": ex.method})
    summary = {
        "query": query_name(query),
        "target": query_name(target),
        "method": ex.method,
        "similarity": ex.similarity,
        "similar": ex.similar,
        "decision": "similar" if ex.similar else "dissimilar",
        "settings": ex.settings,
        "xi1_source": xi1_source,
        "heat1": heat_stats(ex.heat1),
        "heat2": heat_stats(ex.heat2),
        "mask_fraction": [None if m is None else float(np.mean(m)) for m in (ex.mask1, ex.mask2)],
        "output": str(out),
        "view": extras.spec.describe(),
        "seconds": round(t_explain, 3),
        **extras.json,
    }
    if curve is not None:
        summary["curve"] = {"auc": curve.auc, "direction": curve.direction, "steps": int(len(curve.steps) - 1),
                            "perturbation": curve.settings.get("perturbation"), "seed": curve.settings.get("seed")}
        summary["auc"] = curve.auc
        if rnd is not None:
            summary["random_auc"] = rnd.auc
        if data_path is not None:
            summary["curve_data"] = str(data_path)
    if args.json:
        emit_json(summary)
    else:
        print(f"similarity {ex.similarity:.4f} → {summary['decision']} (ξ1 = {ex.settings.get('xi1')}, {xi1_source}); "
              f"method {ex.method}; mask fractions "
              + ", ".join("-" if m is None else f"{100 * m:.1f}%" for m in summary["mask_fraction"]))
        if curve is not None:
            print(f"pixel-flipping AUC {curve.auc:.4f} ({curve.direction})"
                  + (f"; random {rnd.auc:.4f}" if rnd is not None else ""))
        for line in extras.lines:
            print(line)
        print(f"figure: {out}")
        if "curve_data" in summary:
            print(f"curve data: {summary['curve_data']}")
    return EXIT_INTERRUPTED if interrupted else EXIT_OK
