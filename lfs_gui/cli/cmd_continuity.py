"""``lfs-gui continuity INDEX --query ID|PATH --target ID --out FIG``: the paper's shift test, headless.

The target image is moved out of the frame to the right and back (``--steps``); for every shift the
method explains the pair and DIFF = ‖H(x) − H(x′)‖₂ is recorded (:mod:`lfs_gui.metrics.continuity`).
``--method`` takes one method, a comma-separated list (drawn on one plot) or ``all`` (every method
this index offers; EMSNN gets the gallery's embeddings and labels). ``--data FILE.csv|json`` saves
every curve with the settings needed to recompute it; ``--json`` prints a summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lfs_gui.cli._common import (
    EXIT_INTERRUPTED, EXIT_OK, add_device_arguments, add_index_arguments, check_writable, device_from_args, emit_json,
    guarded, index_overrides, progress_bar,
)
from lfs_gui.cli._view_flags import add_view_arguments, view_spec

NAME = "continuity"
HELP = "the continuity (shift) test of one or more methods on a (query, target) pair: figure and data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index folder (from `lfs-gui index`), or 'demo'")
    parser.add_argument("--query", required=True, metavar="ID|PATH", help="gallery id or an external image path")
    parser.add_argument("--target", required=True, type=int, metavar="ID", help="gallery id of the shifted image")
    parser.add_argument("--method", default="explainlfs", metavar="M[,M...]|all",
                        help="method(s) to test, comma-separated, or 'all' (default explainlfs)")
    parser.add_argument("--steps", type=int, default=20, help="shift steps: out in steps/2, back in steps/2 (default 20)")
    parser.add_argument("--mode", choices=("pair", "reference"), default="pair",
                        help="pair: explain (x, x′) (the paper's reading, default); reference: explain (query, x′)")
    parser.add_argument("--p", type=float, default=None,
                        help="ExplainLFS perturbation size p (default: each method's own, as in the app and evaluate: "
                             "0.3 for explainlfs and explainlfs-thesis)")
    parser.add_argument("--xi1", type=float, default=None,
                        help="similar/dissimilar threshold on cosine (default: suggested for this gallery)")
    parser.add_argument("--seed", type=int, default=0, help="seed of seeded methods (default 0)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method setting, e.g. rise-sim.n_masks=200 (repeatable)")
    parser.add_argument("--decoder", default=None, metavar="D", help="decoder file (default: the index's own)")
    parser.add_argument("--out", required=True, metavar="FIG", help="figure file: .png, .svg or .pdf")
    parser.add_argument("--data", metavar="FILE", default=None, help="also save the curves' data (.csv or .json)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
    add_device_arguments(parser, embedding=False)
    add_index_arguments(parser)  # a moved index: where its gallery and model are now
    add_view_arguments(parser, heat=False)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _check_args(args: argparse.Namespace) -> tuple[Path, Path | None]:
    from lfs_gui.figures import DATA_SUFFIXES, check_figure_suffix

    out = Path(args.out).expanduser().resolve()
    check_figure_suffix(out)
    data = None
    if args.data is not None:
        data = Path(args.data).expanduser().resolve()
        if data.suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(f"--data {data}: unsupported format; use one of {', '.join(DATA_SUFFIXES)}")
    if args.steps < 2:
        raise ValueError("--steps must be at least 2 (out and back)")
    for p in (out, data):
        if p is not None:
            check_writable(p, "--data" if p is data else "--out")
    return out, data


def pick_methods(session: Any, text: str) -> list[str]:
    """``--method`` value -> method names, each available for this index and model (else a clear error)."""
    session.model  # continuity runs the model anyway; loaded, it tells which model-side methods apply
    offered = list(session.methods())
    names = offered if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ValueError("--method: give a method name, a comma-separated list or 'all'")
    missing = [m for m in names if m not in offered]
    if missing:
        raise ValueError(f"--method {','.join(missing)}: not available for this index; choose from {', '.join(offered)}")
    return names


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.cli.cmd_evaluate import parse_settings
    from lfs_gui.cli.cmd_query import open_session, parse_query
    from lfs_gui.figures.continuity import save_continuity_data, save_continuity_figure
    from lfs_gui.figures.pair import describe_image, session_identity

    out, data_path = _check_args(args)
    spec = view_spec(args)
    device, _ = device_from_args(args)
    per_method = parse_settings(args.settings)
    query = parse_query(args.query)
    session = open_session(args.index, decoder=args.decoder, trust_checkpoint=args.trust_checkpoint, device=device,
                           **index_overrides(args))
    methods = pick_methods(session, args.method)
    unknown = sorted(set(per_method) - set(methods))
    if unknown:
        raise ValueError(f"--set {unknown[0]}.…: {unknown[0]} is not among --method {','.join(methods)}")
    xi1 = session.suggested_xi1() if args.xi1 is None else float(args.xi1)
    curves: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    interrupted = False
    for m in methods:
        settings = {**({"p": args.p} if args.p is not None else {}), "seed": args.seed, **per_method.get(m, {})}
        t0 = time.perf_counter()
        try:
            curves[m] = progress_bar(session.iter_continuity(query, args.target, m, steps=args.steps, xi1=xi1,
                                                             mode=args.mode, **settings), desc=m)
        except KeyboardInterrupt:
            interrupted = True
            print(f"lfs-gui continuity: interrupted during {m}; writing what is done", file=sys.stderr)
            break
        seconds[m] = round(time.perf_counter() - t0, 3)
    if not curves:
        return EXIT_INTERRUPTED
    ident = session_identity(session, query, args.target)
    ident["pair"]["names"] = [describe_image(session, query), describe_image(session, args.target)]
    context = {"pair": ident["pair"], "model": ident["model"]}
    save_continuity_figure(out, curves, spec, context)
    if data_path is not None:
        save_continuity_data(data_path, curves, context)
    summary = {
        "query": query if isinstance(query, int) else str(query),
        "target": args.target,
        "mode": args.mode,
        "xi1": xi1,
        "methods": {m: {"mean_diff": c.mean_diff, "max_diff": float(c.diffs.max()) if len(c.diffs) else None,
                        "last_diff": float(c.diffs[-1]) if len(c.diffs) else None, "diffs": c.diffs,
                        "shifts": c.shifts, "seconds": seconds.get(m), "settings": c.settings} for m, c in curves.items()},
        "output": str(out),
        "view": spec.describe(),
    }
    if data_path is not None:
        summary["data"] = str(data_path)
    if args.json:
        emit_json(summary)
    else:
        for m, c in curves.items():
            print(f"{m}: mean DIFF {c.mean_diff:.4g}, max {summary['methods'][m]['max_diff']:.4g}, "
                  f"back in place {summary['methods'][m]['last_diff']:.4g} ({seconds.get(m, 0):.1f} s)")
        print(f"figure: {out}")
        if data_path is not None:
            print(f"data: {data_path}")
    return EXIT_INTERRUPTED if interrupted else EXIT_OK
