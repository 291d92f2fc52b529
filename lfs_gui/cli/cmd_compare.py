"""``lfs-gui compare INDEX_A INDEX_B``: two models over the same gallery, where they disagree.

The indexes must hold the same images (matched by relative path; their order may differ); a
mismatch is an error that says how many images differ. A disagreement is a query whose top-1 is
right under one model and wrong under the other, sorted by the failing model's margin (how far
its wrong neighbour beats its nearest correct image). ``--out DIR`` writes ``disagreements.csv``
and ``classes.csv`` (per-class R@1 of both, largest drop from A to B first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lfs_gui.cli._common import EXIT_OK, check_writable, emit_json, guarded, progress_bar

NAME = "compare"
HELP = "compare two models' indexes over the same gallery: R@1 of both, disagreements, per-class R@1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index_a", metavar="INDEX_A", help="index folder of model A (or 'demo')")
    parser.add_argument("index_b", metavar="INDEX_B", help="index folder of model B over the same images")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="how many disagreements to print (default 10)")
    parser.add_argument("--out", metavar="DIR", default=None, help="write disagreements.csv and classes.csv there")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.cli.cmd_failures import open_arrays
    from lfs_gui.index.compare import iter_compare
    from lfs_gui.index.failure_tables import compare_summary, write_compare_csvs

    if args.top < 0:
        raise ValueError(f"--top must be at least 0, got {args.top}")
    out = Path(args.out).expanduser().resolve() if args.out else None
    if out is not None:
        check_writable(out, is_dir=True)
    a, b = open_arrays(args.index_a), open_arrays(args.index_b)
    cmp = progress_bar(iter_compare(a, b), desc="scoring", disable=args.json)
    summary = compare_summary(cmp, a, b, top=args.top)
    if out is not None:
        summary["files"] = [str(p) for p in write_compare_csvs(out, cmp, a)]
    if args.json:
        emit_json(summary)
        return EXIT_OK
    for key in ("a", "b"):
        m = summary[key]
        print(f"{key.upper()} {m['index']}: R@1 {m['recall_at_1']:.4f}, mean AP {m['mean_ap']:.4f}, "
              f"{m['failures']} failures")
    print(f"{summary['queries']} queries; {summary['disagreements']} disagreements: "
          f"{summary['only_a_right']} right only under A, {summary['only_b_right']} right only under B")
    if summary["worst"]:
        print("disagreements, largest margin of the failing model first:")
        print(f"  {'right':<5} {'margin':>7}  {'query':<26} {'A top-1':<24} {'B top-1':<24}")
        for w in summary["worst"]:
            print(f"  {w['right_model']:<5} {w['margin']:>+7.4f}  {'#' + str(w['id']) + ' ' + w['class']:<26} "
                  f"{'#' + str(w['a_top1_id']) + ' ' + w['a_top1_class']:<24} "
                  f"{'#' + str(w['b_top1_id']) + ' ' + w['b_top1_class']:<24}")
    print("classes, largest R@1 drop from A to B first:")
    print(f"  {'class':<28} {'queries':>7} {'A R@1':>7} {'B R@1':>7} {'change':>7}")
    for c in summary["classes"][:15]:
        print(f"  {c['class']:<28} {c['queries']:>7} {c['a_r_at_1']:>7.4f} {c['b_r_at_1']:>7.4f} {c['change']:>+7.4f}")
    if len(summary["classes"]) > 15:
        print(f"  ... {len(summary['classes']) - 15} more (--out DIR writes classes.csv)")
    for f in summary.get("files", []):
        print(f"wrote {f}")
    return EXIT_OK
