"""``lfs-gui evaluate INDEX --pairs N --out DIR``: selectivity of every explainer on sampled pairs.

Samples N similar and N dissimilar pairs (seeded; similar = same class and cosine > ξ1 when the
gallery has labels), asks every method (default: all available for the index's model and decoder)
the same ``--target`` question, scores every map with a pixel-flipping curve per ``--perturbation``
× ``--modes`` × ``--orders`` (most and least relevant first, and their symmetric relevance gain),
optionally bounds each pair by the greedy oracle (``--bounds``: gap closed), and writes
``summary.csv``, ``summary.md``, ``paired.csv``, ``curves.csv``, ``mean_curves_*.png/.svg`` and
``settings.json`` into DIR (see :mod:`lfs_gui.metrics.report`). Runs on ``--device``. Ctrl-C writes
what is finished.
``--attributes`` runs SANE's attribute deletion test instead (:mod:`lfs_gui.cli.attribute_eval`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from lfs_gui.cli import attribute_eval
from lfs_gui.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_device_arguments,
    add_index_arguments,
    check_writable,
    device_from_args,
    emit_json,
    guarded,
    index_overrides,
    progress_bar,
)

NAME = "evaluate"
HELP = "measure the selectivity (pixel-flipping AUC) of every explainer on sampled pairs of an index"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index folder (from `lfs-gui index`), or 'demo'")
    parser.add_argument("--methods", nargs="+", default=None, metavar="M",
                        help="methods to compare (default: every method available for this model and decoder; "
                             "random is always added)")
    parser.add_argument("--pairs", type=int, default=20, metavar="N", help="N similar and N dissimilar pairs (default 20)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--target", choices=["decision", "similarity"], default="decision",
                        help="the question every method answers: decision (default; the similarity for similar pairs, "
                             "its negative for dissimilar ones) or similarity (what makes the two alike)")
    parser.add_argument("--pair-types", nargs="+", default=["similar", "dissimilar"], choices=["similar", "dissimilar"],
                        help="score only these pair types of the sample (default both; on similar pairs both targets "
                             "ask the same question)")
    parser.add_argument("--perturbation", nargs="+", default=["noise"], choices=["noise", "uniform", "fill", "blur"],
                        help="what replaces a superpixel: noise N(0,1) (thesis, default), uniform, fill (white), blur")
    parser.add_argument("--orders", nargs="+", default=["morf", "lerf"], choices=["morf", "lerf"],
                        help="most (morf) and/or least (lerf) relevant superpixels first (default both, "
                             "which also gives their symmetric relevance gain)")
    parser.add_argument("--modes", nargs="+", default=["deletion"], choices=["deletion", "insertion"],
                        help="perturb cells (deletion, default) and/or start perturbed and restore them (insertion)")
    parser.add_argument("--bounds", action="store_true",
                        help="add the greedy oracle per pair (method 'oracle') and each method's gap closed; "
                             "costs ~1 100 forwards per pair and curve setting (cached)")
    parser.add_argument("--steps", type=int, default=20, help="superpixels perturbed per curve (default 20)")
    parser.add_argument("--superpixel", type=int, default=5,
                        help="superpixel edge on the 40×40 heat grid; must divide 40 (default 5: an 8×8 grid)")
    parser.add_argument("--xi1", type=float, default=None, help="similar/dissimilar threshold (default: suggested for this gallery)")
    parser.add_argument("--decoder", default=None, metavar="D", help="decoder file (default: the index's own)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method setting, e.g. rise-sim.n_masks=200 or explainlfs.p=0.5 (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair sampling and the curves' noise (0)")
    parser.add_argument("--oracle-cache", default=None, metavar="DIR",
                        help="folder that keeps oracle curves between runs (default: the user cache folder)")
    parser.add_argument("--compress", action="store_true", help="write curves.csv.gz instead of curves.csv")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print the summary rows as JSON")
    add_device_arguments(parser, embedding=False)  # --device: the model, maps, curves and the oracle run there
    add_index_arguments(parser)
    attribute_eval.add_arguments(parser)  # --attributes: SANE's deletion test (issue 12)


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def parse_settings(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["rise-sim.n_masks=200", "explainlfs-multi.ps=0.05,0.1"]`` → per-method setting dicts."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        method, dot, name = key.rpartition(".")
        if not sep or not dot or not method or not name:
            raise ValueError(f"--set {item!r}: expected METHOD.KEY=VALUE")
        if name == "target":
            raise ValueError(f"--set {item!r}: every method answers the same --target; set that instead")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = [json.loads(v) for v in raw.split(",")] if "," in raw else raw
        out.setdefault(method, {})[name] = value
    return out


def _show_message(item: Any, bar: Any) -> None:
    """Show the progress message (what runs, the estimate of the time left) next to the bar.

    Always drawn for the first item (it already carries the estimate: it comes after the first finished
    unit) and the last one, in between at most twice a second, also while the count stands still (the
    oracle's batches); so the estimate shows however fast the machine is."""
    now = time.monotonic()
    first = not hasattr(bar, "_lfs_shown")
    last = getattr(item, "total", None) is not None and getattr(item, "done", 0) >= item.total
    if first or last or now - bar._lfs_shown >= 0.5:
        bar._lfs_shown = now
        bar.set_postfix_str(str(getattr(item, "message", "")), refresh=True)


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.cli.cmd_query import open_session
    from lfs_gui.device import describe_device
    from lfs_gui.metrics.evaluate import Evaluation
    from lfs_gui.metrics.oracle import OracleCache
    from lfs_gui.metrics.report import write_report
    from lfs_gui.metrics.summary import summarize
    from lfs_gui.paths import user_cache_dir

    if args.attributes:
        return attribute_eval.run(args, parse_settings(args.settings))
    if args.pairs < 1 or args.steps < 1 or args.superpixel < 1:
        raise ValueError("--pairs, --steps and --superpixel must be at least 1")
    device, _batch = device_from_args(args)
    out = Path(args.out).expanduser().resolve()
    check_writable(out, is_dir=True)
    method_settings = parse_settings(args.settings)
    session = open_session(args.index, decoder=args.decoder, trust_checkpoint=args.trust_checkpoint, device=device,
                           **index_overrides(args))
    labels = session.gallery.labels_array() if session.gallery.has_labels else None
    xi1 = session.suggested_xi1() if args.xi1 is None else args.xi1
    model, decoder = session.model, session.decoder  # on ``device`` (the session moved them)
    cache = None
    if args.bounds:
        cache = OracleCache(Path(args.oracle_cache).expanduser() if args.oracle_cache else user_cache_dir() / "oracle")
    ev = Evaluation(
        model, decoder, session.gallery.paths, session.embeddings, labels,
        methods=args.methods, n_pairs=args.pairs, perturbations=args.perturbation, modes=args.modes, orders=args.orders,
        target=args.target, steps=args.steps, superpixel=args.superpixel, xi1=xi1, seed=args.seed,
        method_settings=method_settings, bounds=args.bounds, oracle_cache=cache, pair_types=args.pair_types,
    )
    for name, why in ev.skipped.items():
        print(f"lfs-gui evaluate: skipping {name}: {why}", file=sys.stderr)
    print(f"lfs-gui evaluate: {len(ev.pairs)} pairs × {len(ev.explainers)} methods"
          + (" + oracle" if args.bounds else "") + f" on {describe_device(device)}, target {args.target}", file=sys.stderr)
    complete = True
    t0 = time.perf_counter()
    try:
        progress_bar(ev.iter_run(), desc="evaluating", on_item=_show_message)
    except KeyboardInterrupt:
        complete = False
        print(f"lfs-gui evaluate: interrupted; writing the {len(ev.records)} finished curves", file=sys.stderr)
    settings = {**ev.settings(), "index": str(args.index), "seconds": round(time.perf_counter() - t0, 1)}
    written = write_report(ev.records, out, settings, complete=complete, compress=args.compress)
    if args.json:
        emit_json({"out": str(out), "complete": complete, "summary": summarize(ev.records)})
    else:
        print((out / "summary.md").read_text())
        print(f"wrote {', '.join(sorted(written))} to {out}")
    return EXIT_OK if complete else EXIT_INTERRUPTED
