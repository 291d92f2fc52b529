"""Tables of the failure finder and the model comparison: CSV files and JSON-ready summaries.

The ``lfs-gui failures`` / ``compare`` commands and the app's Failures panel export the same files:

* per-query CSV (one row per query, by id): its class, AP, R@1, top-1, nearest correct image and
  its rank, nearest other-class image, and the margin (``s(wrong) - s(correct)``);
* per-class CSV (worst R@1 first): queries, R@1 hits, R@1, failures, mean AP — of one model, or of
  both side by side for a comparison;
* disagreements CSV: the queries where exactly one model's top-1 is right, largest margin first.

Writes are atomic (:func:`lfs_gui.jobs.atomic_write_bytes`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lfs_gui.index.compare import Comparison, GalleryArrays
from lfs_gui.index.failures import ClassTable, QueryScores, class_table, failure_ids
from lfs_gui.jobs import atomic_write_bytes

QUERY_COLUMNS = ("id", "relpath", "class", "ap", "r_at_1", "top1_id", "top1_class", "top1_cosine", "correct_id",
                 "correct_relpath", "correct_cosine", "correct_rank", "wrong_id", "wrong_class", "wrong_cosine",
                 "margin")


def _num(v: float, digits: int = 6) -> float | None:
    """A rounded float (clean in CSV and JSON), None (an empty CSV cell, JSON null) when not finite."""
    return None if v is None or not np.isfinite(v) else round(float(v), digits)


def _write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))
    return Path(path)


def class_name(gal: GalleryArrays, label: int) -> str:
    return gal.classes[label] if 0 <= label < len(gal.classes) else str(label)


def query_rows(scores: QueryScores, gal: GalleryArrays, ids: Iterable[int] | None = None) -> Iterable[list]:
    """One CSV row per query id (all, by id, when ``ids`` is None)."""
    lab, margin = scores.labels, scores.margin
    for i in (range(len(scores)) if ids is None else ids):
        i = int(i)
        t, c, w = int(scores.top1[i]), int(scores.correct[i]), int(scores.wrong[i])
        yield [i, str(gal.relpaths[i]), class_name(gal, int(lab[i])), _num(scores.ap[i]), int(scores.hit1[i]), t,
               class_name(gal, int(lab[t])), _num(scores.top1_score[i]), c if c >= 0 else None,
               str(gal.relpaths[c]) if c >= 0 else None, _num(scores.correct_score[i]),
               int(scores.correct_rank[i]) or None, w if w >= 0 else None,
               class_name(gal, int(lab[w])) if w >= 0 else None,
               _num(scores.wrong_score[i]), _num(margin[i])]


def write_query_csv(path: str | Path, scores: QueryScores, gal: GalleryArrays, ids: Iterable[int] | None = None) -> Path:
    """The per-query table (``ids``: a subset in that order, e.g. the failures by margin)."""
    return _write_csv(path, QUERY_COLUMNS, query_rows(scores, gal, ids))


def class_rows(table: ClassTable, gal: GalleryArrays) -> list[list]:
    r1 = table.recall_at_1
    return [[class_name(gal, int(c)), int(table.count[c]), int(table.hits[c]), _num(r1[c], 4),
             int(table.failures[c]), _num(table.mean_ap[c], 4)] for c in table.worst_first()]


def write_class_csv(path: str | Path, table: ClassTable, gal: GalleryArrays) -> Path:
    """Per-class R@1, worst first."""
    return _write_csv(path, ("class", "queries", "hits", "r_at_1", "failures", "mean_ap"), class_rows(table, gal))


def failure_summary(scores: QueryScores, gal: GalleryArrays, top: int = 10, shown: np.ndarray | None = None) -> dict:
    """What ``lfs-gui failures --json`` prints: totals, the worst ``top`` failures (of ``shown``, e.g. a
    class's failures; default all, largest margin first) and the per-class table."""
    fails = failure_ids(scores)
    shown = fails if shown is None else shown
    table = class_table(scores, len(gal.classes))
    header = QUERY_COLUMNS
    return {
        "index": gal.name,
        "queries": len(scores),
        "recall_at_1": scores.recall_at_1,
        "mean_ap": scores.mean_ap,
        "failures": int(len(fails)),
        "no_same_class_image": int((scores.correct < 0).sum()),
        "worst": [dict(zip(header, row)) for row in query_rows(scores, gal, shown[:top])],
        "classes": [dict(zip(("class", "queries", "hits", "r_at_1", "failures", "mean_ap"), row))
                    for row in class_rows(table, gal)],
    }


# -- comparison ----------------------------------------------------------------------------------------
DISAGREEMENT_COLUMNS = ("id", "relpath", "class", "right_model", "margin", "a_top1_id", "a_top1_class", "a_cosine",
                        "b_top1_id", "b_top1_class", "b_cosine", "a_ap", "b_ap")


def disagreement_rows(cmp: Comparison, gal: GalleryArrays, limit: int | None = None) -> Iterable[list]:
    lab = cmp.a.labels
    for i, a_right, m in list(zip(cmp.ids, cmp.a_right, cmp.margin))[:limit]:
        i = int(i)
        ta, tb = int(cmp.a.top1[i]), int(cmp.b.top1[i])
        yield [i, str(gal.relpaths[i]), class_name(gal, int(lab[i])), "A" if a_right else "B", _num(m), ta,
               class_name(gal, int(lab[ta])), _num(cmp.a.top1_score[i]), tb, class_name(gal, int(lab[tb])),
               _num(cmp.b.top1_score[i]), _num(cmp.a.ap[i]), _num(cmp.b.ap[i])]


def compare_class_rows(cmp: Comparison, gal: GalleryArrays) -> list[list]:
    """Per class: queries, R@1 of A, R@1 of B, the change; largest drop from A to B first."""
    ta, tb = class_table(cmp.a, len(gal.classes)), class_table(cmp.b, len(gal.classes))
    present = np.flatnonzero(ta.count > 0)
    delta = tb.recall_at_1[present] - ta.recall_at_1[present]
    order = present[np.lexsort((present, delta))]
    return [[class_name(gal, int(c)), int(ta.count[c]), _num(ta.recall_at_1[c], 4), _num(tb.recall_at_1[c], 4),
             _num(tb.recall_at_1[c] - ta.recall_at_1[c], 4), _num(ta.mean_ap[c], 4), _num(tb.mean_ap[c], 4)]
            for c in order]


COMPARE_CLASS_COLUMNS = ("class", "queries", "a_r_at_1", "b_r_at_1", "change", "a_mean_ap", "b_mean_ap")


def write_compare_csvs(folder: str | Path, cmp: Comparison, gal: GalleryArrays) -> list[Path]:
    """``disagreements.csv`` and ``classes.csv`` of a comparison into ``folder``."""
    folder = Path(folder)
    return [_write_csv(folder / "disagreements.csv", DISAGREEMENT_COLUMNS, disagreement_rows(cmp, gal)),
            _write_csv(folder / "classes.csv", COMPARE_CLASS_COLUMNS, compare_class_rows(cmp, gal))]


def compare_summary(cmp: Comparison, a: GalleryArrays, b: GalleryArrays, top: int = 10) -> dict:
    """What ``lfs-gui compare --json`` prints."""
    return {
        "a": {"index": a.name, "recall_at_1": cmp.a.recall_at_1, "mean_ap": cmp.a.mean_ap,
              "failures": int((~cmp.a.hit1).sum())},
        "b": {"index": b.name, "recall_at_1": cmp.b.recall_at_1, "mean_ap": cmp.b.mean_ap,
              "failures": int((~cmp.b.hit1).sum())},
        "queries": len(cmp.a),
        "disagreements": int(len(cmp.ids)),
        "only_a_right": int(cmp.a_right.sum()),
        "only_b_right": int((~cmp.a_right).sum()),
        "worst": [dict(zip(DISAGREEMENT_COLUMNS, row)) for row in disagreement_rows(cmp, a, top)],
        "classes": [dict(zip(COMPARE_CLASS_COLUMNS, row)) for row in compare_class_rows(cmp, a)],
    }
