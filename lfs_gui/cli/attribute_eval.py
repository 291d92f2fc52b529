"""``lfs-gui evaluate INDEX --attributes --out DIR``: SANE's deletion test and the predictor's mAP.

Registered by :mod:`lfs_gui.cli.cmd_evaluate` (its ``--attributes`` switches to this). For sampled
similar pairs, deleting the chosen attribute's region must lower the similarity more than deleting a
random present attribute's region (:mod:`lfs_gui.attributes.evaluate`). Writes
``attributes_pairs.csv`` (one row per pair), ``attributes_summary.json`` and ``attributes_summary.md``
into DIR. Ctrl-C writes what is finished.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from lfs_gui.cli._common import EXIT_INTERRUPTED, EXIT_OK, check_writable, emit_json, index_overrides, progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("attributes (SANE)")
    g.add_argument("--attributes", action="store_true",
                   help="instead of selectivity: does deleting SANE's chosen attribute lower the similarity more "
                        "than a random present attribute? and the attribute predictor's held-out mAP")
    g.add_argument("--saliency", default=None, metavar="M",
                   help="with --attributes: the pair's saliency method (default sim-decomp when the model allows, "
                        "else grad-sim, else rise-sim; settings with --set M.KEY=VALUE)")
    g.add_argument("--predictor", default=None, metavar="FILE", help="with --attributes: predictor (default INDEX/attributes.pt)")
    g.add_argument("--attributes-from", default=None, metavar="PATH",
                   help="with --attributes: attribute files for the held-out mAP (default: found next to the gallery)")
    g.add_argument("--present", type=float, default=0.5,
                   help="with --attributes: confidence above which an attribute counts as present (default 0.5)")
    g.add_argument("--sane-weights", metavar="C,G,D", default="0.4,0.3,0.3",
                   help="with --attributes: weights of confidence, map agreement and deletion (default 0.4,0.3,0.3)")


def run(args: argparse.Namespace, settings: dict[str, dict[str, Any]]) -> int:
    """The ``--attributes`` branch of ``lfs-gui evaluate``; ``settings`` are its parsed ``--set`` values
    (errors are mapped by the caller's ``guarded``)."""
    from lfs_gui.attributes.evaluate import (
        AttributeEvaluation,
        default_saliency,
        heldout_map,
        records_table,
        summarize_deletions,
    )
    from lfs_gui.attributes.index_attributes import index_folder, load_session_predictor, predictor_path, session_attributes
    from lfs_gui.cli.cmd_query import open_session
    from lfs_gui.cli.pair_extras import parse_weights
    from lfs_gui.data.attributes import AttributesUnavailable

    if args.pairs < 1 or not 0.0 < args.present < 1.0:
        raise ValueError("--pairs must be at least 1 and --present in (0, 1)")
    wc, wg, wd = parse_weights(args.sane_weights)
    out = Path(args.out).expanduser().resolve()
    check_writable(out, is_dir=True)
    session = open_session(args.index, decoder=False, trust_checkpoint=args.trust_checkpoint, **index_overrides(args))
    path = Path(args.predictor).expanduser() if args.predictor else predictor_path(index_folder(args.index))
    pred = load_session_predictor(session, path)
    labels = session.gallery.labels_array() if session.gallery.has_labels else None
    xi1 = session.suggested_xi1() if args.xi1 is None else args.xi1
    saliency = args.saliency or default_saliency(session.model)
    ev = AttributeEvaluation(session.model, pred, session.gallery.paths, session.embeddings, labels, n_pairs=args.pairs,
                             xi1=xi1, seed=args.seed, saliency=saliency, saliency_settings=settings.get(saliency, {}),
                             present=args.present, chooser_settings={"w_confidence": wc, "w_agreement": wg, "w_deletion": wd})
    complete = True
    mp: dict[str, Any] = {"map_heldout": pred.heldout_map, "note": "from the predictor file (not recomputed)"}
    try:
        progress_bar(ev.iter_run(), desc="attributes")
        try:
            attrs = session_attributes(session, args.attributes_from)
            mp = progress_bar(heldout_map(session.model, pred, session.gallery.paths, attrs), desc="mAP")
        except AttributesUnavailable as exc:
            mp["note"] += f"; {exc}"
    except KeyboardInterrupt:
        complete = False
        print(f"lfs-gui evaluate: interrupted; writing the {len(ev.records)} finished pairs", file=sys.stderr)
    summary = {"deletion": summarize_deletions(ev.records), "predictor": {"file": str(path), **mp},
               "skipped_no_present_attribute": ev.skipped_no_present, "complete": complete,
               "settings": {**ev.settings(), "index": str(args.index)}}
    _write(out, ev.records, summary, records_table)
    if args.json:
        emit_json({"out": str(out), **summary})
    else:
        print((out / "attributes_summary.md").read_text())
        print(f"wrote attributes_pairs.csv, attributes_summary.json, attributes_summary.md to {out}")
    return EXIT_OK if complete else EXIT_INTERRUPTED


def _write(out: Path, records: list, summary: dict, records_table: Any) -> None:
    from lfs_gui.figures.curves import jsonable
    from lfs_gui.jobs import atomic_write_bytes

    rows = records_table(records)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_bytes(out / "attributes_pairs.csv", buf.getvalue().encode())
    atomic_write_bytes(out / "attributes_summary.json", (json.dumps(jsonable(summary), indent=1) + "\n").encode())
    atomic_write_bytes(out / "attributes_summary.md", markdown(summary).encode())


def markdown(summary: dict) -> str:
    d, p = summary["deletion"], summary["predictor"]
    st = summary["settings"]

    def ci(v: dict) -> str:
        return f"{v['mean']:+.4f} ± {v['ci95']:.4f}"

    lines = ["# SANE attribute deletion test", "",
             f"{d['n_pairs']} similar pairs (ξ1 = {st['xi1']:.3f}, seed {st['seed']}); saliency "
             f"{st['saliency'].get('method')}; region {st['chooser']['region']:.0%} of each image; weights "
             f"{st['chooser']['w_confidence']:g}/{st['chooser']['w_agreement']:g}/{st['chooser']['w_deletion']:g}; "
             f"{summary['skipped_no_present_attribute']} pairs skipped (no other present attribute).", "",
             "| attribute deleted | similarity drop (mean ± 95 % CI) |", "|---|---|",
             f"| SANE's choice | {ci(d['drop_chosen'])} |",
             f"| SANE's choice without the deletion term | {ci(d['drop_chosen_no_deletion'])} |",
             f"| a random present attribute | {ci(d['drop_random'])} |", "",
             "| paired difference | mean ± 95 % CI | pairs where the choice drops more |", "|---|---|---|"]
    for key, name in (("chosen_minus_random", "choice − random"),
                      ("chosen_no_deletion_minus_random", "choice without deletion term − random")):
        lines.append(f"| {name} | {ci(d[key])} | {d[key]['wins']:.0%} |")
    mp = p.get("map_heldout")
    lines += ["", f"Attribute predictor: mAP {'n/a' if mp is None else f'{mp:.3f}'} on "
                  f"{p.get('n_heldout', '?')} held-out images ({p['file']})" + (f"; {p['note']}" if p.get("note") else ""), ""]
    return "\n".join(lines)
