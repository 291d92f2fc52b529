"""``lfs-gui explain`` options for correspondence (``--point``, ``--match-lines``) and SANE (``--attributes``).

Kept apart from :mod:`lfs_gui.cli.cmd_explain` (which registers them and calls :func:`compute_extras`):
they add panels to the pair figure (through ``save_pair_figure``'s ``decorate``/``extra_rows``) and
two keys to the JSON summary, ``correspondence`` and ``attributes``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("correspondence and attributes")
    g.add_argument("--point", metavar="X,Y", default=None,
                   help="a pixel of the query's ORIGINAL image: draw the heat of its match on the target "
                        "(JSON key 'correspondence')")
    g.add_argument("--match-lines", type=int, default=0, metavar="K",
                   help="draw the K strongest matched location pairs as lines (default 0)")
    g.add_argument("--correspondence", choices=["auto", "gap-affine", "occlusion"], default="auto",
                   help="exact decomposition (GAP + affine head models) or the occlusion estimate (any model); "
                        "auto: exact when the model allows")
    g.add_argument("--grid", type=int, default=7, help="grid of the occlusion estimate (default 7x7)")
    g.add_argument("--attributes", action="store_true",
                   help="SANE: the attributes that best explain the match (needs INDEX/attributes.pt, "
                        "from `lfs-gui train-attributes INDEX`; JSON key 'attributes')")
    g.add_argument("--predictor", metavar="FILE", default=None, help="attribute predictor (default INDEX/attributes.pt)")
    g.add_argument("--sane-weights", metavar="C,G,D", default="0.4,0.3,0.3",
                   help="weights of confidence, map agreement and deletion drop (default 0.4,0.3,0.3)")
    g.add_argument("--sane-candidates", type=int, default=8, metavar="N",
                   help="attributes scored per pair, by confidence (default 8)")


@dataclass
class PairExtras:
    """What the options add to the figure and the summary: the explanation and view to draw (the
    target's map replaced by the point's match, the matches on the spec), rows of attribute maps,
    JSON keys and report lines."""

    explanation: Any
    spec: Any
    extra_rows: tuple = ()
    json: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def parse_point(value: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise ValueError(f"--point {value!r}: expected X,Y (a pixel of the query's original image, e.g. 120,80)") from None
    return x, y


def parse_weights(value: str) -> tuple[float, float, float]:
    from lfs_gui.attributes.sane import parse_weights as parse

    return parse(value, "--sane-weights")


def check_arguments(args: argparse.Namespace) -> None:
    """Fail on bad values before any work."""
    if args.point is not None:
        parse_point(args.point)
    parse_weights(args.sane_weights)
    if args.match_lines < 0 or args.grid < 1 or args.sane_candidates < 1:
        raise ValueError("--match-lines must be >= 0, --grid and --sane-candidates >= 1")


def compute_extras(args: argparse.Namespace, session: Any, query: Any, target: Any, ex: Any, spec: Any) -> PairExtras:
    """Correspondence and/or SANE for the pair, as asked by the options (``ex``/``spec`` unchanged otherwise)."""
    extras = PairExtras(ex, spec)
    if args.point is None and args.match_lines == 0 and not args.attributes:
        return extras
    from lfs_gui.data.images import open_image

    images = (open_image(session.image_path(query)), open_image(session.image_path(target)))
    x1, x2 = session.input_tensor(query), session.input_tensor(target)
    if args.point is not None or args.match_lines > 0:
        _correspondence(args, session, images, x1, x2, extras)
    if args.attributes:
        _attributes(args, session, x1, x2, ex, extras)
    return extras


def _correspondence(args: argparse.Namespace, session: Any, images: tuple, x1: Any, x2: Any, extras: PairExtras) -> None:
    from lfs_gui.explain.correspondence import correspondence, original_to_cell
    from lfs_gui.figures.correspondence import figure_matches, match_lines, point_explanation

    pre = session.model.preprocessing
    corr = correspondence(session.model, x1, x2, method=args.correspondence, grid=args.grid)
    info: dict[str, Any] = corr.describe()
    point = cell = uv = None
    if args.point is not None:
        point = parse_point(args.point)
        w, h = images[0].size
        x0, y0, x1b, y1b = pre.crop_box(w, h)
        if not (0 <= point[0] < w and 0 <= point[1] < h):
            raise ValueError(f"--point {args.point}: outside the query image ({w}x{h} pixels)")
        cell = original_to_cell(corr, 1, pre, point[0], point[1], w, h)
        if cell is None:
            raise ValueError(f"--point {args.point}: outside what the model sees of the query (its crop box is "
                             f"x {x0:.0f}..{x1b:.0f}, y {y0:.0f}..{y1b:.0f}); choose a point inside it")
        uv = pre.to_input_coords(point[0], point[1], w, h)
        gw = corr.grid1[1]
        signed = corr.match_map(1, cell)
        info.update(point=list(point), cell=[cell // gw, cell % gw], map=signed.tolist(),
                    heat=corr.match_heat(1, cell).tolist(), row_sum=float(signed.sum()),
                    bias_term=float(corr.bias1[cell]) if corr.bias1 is not None else 0.0)
        best = divmod(int(signed.argmax()), corr.grid2[1])
        extras.explanation = point_explanation(extras.explanation, corr, cell, point)
        extras.lines.append(f"correspondence ({corr.note}): point {point[0]:g},{point[1]:g} -> cell {cell // gw},{cell % gw}; "
                            f"best match at target cell {best[0]},{best[1]}; {1000 * corr.seconds:.1f} ms")
    if args.match_lines > 0:
        lines = match_lines(corr, args.match_lines, pre, images[0].size, images[1].size)
        info["matches"] = [{"query_xy": list(p1), "target_xy": list(p2), "value": v} for p1, p2, v in lines]
    matches = figure_matches(corr, uv, cell, args.match_lines)
    if matches is not None:
        extras.spec = extras.spec.replace(correspondence=matches)
    extras.json["correspondence"] = info


def _attributes(args: argparse.Namespace, session: Any, x1: Any, x2: Any, ex: Any, extras: PairExtras) -> None:
    from lfs_gui.attributes.index_attributes import index_folder, load_session_predictor, predictor_path
    from lfs_gui.attributes.sane import SaneChooser
    from lfs_gui.figures.correspondence import attribute_rows

    if args.predictor:
        path = Path(args.predictor).expanduser()
    elif args.index is not None:
        path = predictor_path(index_folder(args.index))
    else:
        raise ValueError("--attributes without INDEX needs --predictor FILE (an attribute predictor for the model)")
    pred = load_session_predictor(session, path)
    wc, wg, wd = parse_weights(args.sane_weights)
    chooser = SaneChooser(pred, session.model, w_confidence=wc, w_agreement=wg, w_deletion=wd,
                          candidates=args.sane_candidates)
    t0 = time.perf_counter()
    choice = chooser.choose(x1, x2, ex.heat1, ex.heat2)
    info = choice.describe()
    info.update(predictor=str(path), map_heldout=pred.heldout_map, saliency=ex.method,
                seconds=round(time.perf_counter() - t0, 3))
    extras.json["attributes"] = info
    extras.extra_rows = extras.extra_rows + attribute_rows(choice, k=1)
    extras.lines.append(f"{choice.label(3)} (saliency: {ex.method}; predictor mAP "
                        + (f"{pred.heldout_map:.3f})" if pred.heldout_map is not None else "n/a)"))
