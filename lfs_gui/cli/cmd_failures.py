"""``lfs-gui failures INDEX``: where the model fails on its own labelled gallery.

Every image is a query against the others (leave-one-out, as the index's Recall@1 counts it). A
failure is a query whose top-1 neighbour is of another class; they are listed by the margin by
which the wrong neighbour beats the nearest same-class image. The count always equals
``(1 - R@1) * N``. ``--out DIR`` writes ``queries.csv`` (every query), ``failures.csv`` (the
failures, largest margin first), ``classes.csv`` (per-class R@1, worst first) and
``failure_sheet.png`` (the worst ``--top`` triplets explained; ``--format`` for SVG/PDF).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lfs_gui.cli._common import (
    EXIT_OK, add_device_arguments, add_index_arguments, check_writable, device_from_args, emit_json, guarded,
    index_overrides, progress_bar,
)

NAME = "failures"
HELP = "list the queries whose top-1 is of another class, per-class R@1, and a failure sheet"
SHEET_FORMATS = ("png", "svg", "pdf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", metavar="INDEX", help="index folder of a labelled gallery, or 'demo'")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="how many failures to print and draw on the sheet (default 10)")
    parser.add_argument("--class", dest="classes", action="append", metavar="NAME",
                        help="only failures whose query is of this class (repeatable)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write queries.csv, failures.csv, classes.csv and the failure sheet there")
    parser.add_argument("--format", default="png", metavar="FMT",
                        help="failure sheet format(s): png, svg, pdf, comma-separated (default png)")
    parser.add_argument("--no-sheet", action="store_true", help="with --out: only the tables, no failure sheet")
    parser.add_argument("--method", default="explainlfs", help="explainer of the failure sheet (default explainlfs)")
    parser.add_argument("--dpi", type=int, default=150, help="PNG resolution of the sheet (default 150)")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow a model checkpoint that needs full unpickling (runs code from the file)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
    add_device_arguments(parser, embedding=False)  # the failure sheet runs the explainer (decoder / model)
    add_index_arguments(parser)  # the failure sheet shows the images


def run(args: argparse.Namespace) -> int:
    return guarded(NAME, _run, args)


def open_arrays(index: str) -> Any:
    """The :class:`~lfs_gui.index.compare.GalleryArrays` of an index folder (``demo``: the embedded demo's)."""
    from lfs_gui.index.compare import GalleryArrays
    from lfs_gui.index.store import load_index
    from lfs_gui.paths import demo_index_dir

    folder = demo_index_dir() if index == "demo" and not Path(index).exists() else Path(index)
    gal = GalleryArrays.from_index(load_index(folder), name=index)
    gal.check_labelled()
    return gal


def class_ids(gal: Any, names: list[str] | None) -> list[int] | None:
    """Class indices of ``--class`` names (ValueError listing the known ones otherwise)."""
    if not names:
        return None
    known = {c: i for i, c in enumerate(gal.classes)}
    bad = [n for n in names if n not in known]
    if bad:
        listed = ", ".join(gal.classes[:12]) + (", ..." if len(gal.classes) > 12 else "")
        raise ValueError(f"--class {bad[0]}: no such class in {gal.name}; classes are {listed}")
    return [known[n] for n in names]


def _formats(value: str) -> list[str]:
    fmts = [f.strip().lower().lstrip(".") for f in value.split(",") if f.strip()]
    bad = [f for f in fmts if f not in SHEET_FORMATS]
    if bad or not fmts:
        raise ValueError(f"--format {value}: use png, svg or pdf (comma-separated)")
    return fmts


def _run(args: argparse.Namespace) -> int:
    from lfs_gui.index.failure_tables import failure_summary, write_class_csv, write_query_csv
    from lfs_gui.index.failures import class_table, failure_ids, iter_query_scores

    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    fmts = _formats(args.format)
    device, _ = device_from_args(args)  # a missing device fails before any work
    out = Path(args.out).expanduser().resolve() if args.out else None
    if out is not None:
        check_writable(out, is_dir=True)
    gal = open_arrays(args.index)
    wanted = class_ids(gal, args.classes)
    scores = progress_bar(iter_query_scores(gal.embeddings, gal.labels), desc="scoring", disable=args.json)
    fails = failure_ids(scores, query_classes=wanted)
    summary = failure_summary(scores, gal, top=args.top, shown=fails)
    if wanted is not None:
        summary["class_filter"] = args.classes
        summary["failures_shown"] = int(len(fails))
    files: list[Path] = []
    if out is not None:
        files.append(write_query_csv(out / "queries.csv", scores, gal))
        files.append(write_query_csv(out / "failures.csv", scores, gal, fails))
        files.append(write_class_csv(out / "classes.csv", class_table(scores, len(gal.classes)), gal))
        if not args.no_sheet and len(fails):
            files += _sheets(args, out, scores, fails[: args.top], fmts, device)
        summary["files"] = [str(f) for f in files]
    if args.json:
        emit_json(summary)
        return EXIT_OK
    _print(summary, wanted is not None)
    return EXIT_OK


def _sheets(args: argparse.Namespace, out: Path, scores: Any, ids: Any, fmts: list[str], device: Any) -> list[Path]:
    from lfs_gui.cli.cmd_query import open_session
    from lfs_gui.figures.failure_sheet import save_failure_sheet

    session = open_session(args.index, trust_checkpoint=args.trust_checkpoint, device=device, **index_overrides(args))
    if args.method not in session.methods():
        raise ValueError(f"--method {args.method}: not available for this index (available: "
                         f"{', '.join(session.methods())}); or use --no-sheet")
    return [save_failure_sheet(out / f"failure_sheet.{f}", session, scores, ids, method=args.method, dpi=args.dpi)
            for f in fmts]


def _print(summary: dict, filtered: bool) -> None:
    n, fails = summary["queries"], summary["failures"]
    print(f"{summary['index']}: {n} queries, R@1 {summary['recall_at_1']:.4f}, mean AP {summary['mean_ap']:.4f}; "
          f"{fails} failures (top-1 of another class) = (1 - R@1) x {n}")
    if summary["no_same_class_image"]:
        print(f"  ({summary['no_same_class_image']} of them have no other image of their class)")
    if filtered:
        print(f"{summary['failures_shown']} failures of class {', '.join(summary['class_filter'])}")
    if summary["worst"]:
        print("failures, largest margin s(wrong) - s(correct) first:")
        print(f"  {'margin':>7}  {'query':<28} {'wrong top-1':<28} {'s':>6}  {'nearest correct':<10} {'s':>6} {'rank':>5}")
        for w in summary["worst"]:
            m = "   -   " if w["margin"] is None else f"{w['margin']:+.4f}"
            corr = "-" if w["correct_id"] is None else f"#{w['correct_id']}"
            cs = "" if w["correct_cosine"] is None else f"{w['correct_cosine']:.3f}"
            print(f"  {m:>7}  {'#' + str(w['id']) + ' ' + w['class']:<28} "
                  f"{'#' + str(w['top1_id']) + ' ' + w['top1_class']:<28} {w['top1_cosine']:>6.3f}  "
                  f"{corr:<10} {cs:>6} {w['correct_rank'] or '':>5}")
    print("classes, lowest R@1 first:")
    print(f"  {'class':<28} {'queries':>7} {'R@1':>7} {'failures':>8} {'mean AP':>8}")
    for c in summary["classes"][:15]:
        ap = "-" if c["mean_ap"] is None else f"{c['mean_ap']:.4f}"
        print(f"  {c['class']:<28} {c['queries']:>7} {c['r_at_1']:>7.4f} {c['failures']:>8} {ap:>8}")
    if len(summary["classes"]) > 15:
        print(f"  ... {len(summary['classes']) - 15} more (--out DIR writes classes.csv)")
    for f in summary.get("files", []):
        print(f"wrote {f}")
