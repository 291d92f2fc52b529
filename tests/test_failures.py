"""Failure finder core against a brute-force per-query loop and the index's own Recall@1."""

from __future__ import annotations

import numpy as np
import pytest

from lfs_gui.index.failures import class_table, failure_ids, iter_query_scores, query_scores
from lfs_gui.index.recall import retrieval_metrics
from lfs_gui.jobs import Progress


def _data(n: int = 240, d: int = 16, classes: int = 9, seed: int = 0, spread: float = 0.9):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, d))
    lab = rng.integers(0, classes, n)
    x = centres[lab] + spread * rng.standard_normal((n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x, lab.astype(np.int64)


def _brute(x: np.ndarray, lab: np.ndarray, i: int) -> dict:
    """Rank everything for query i the slow way (cosine desc, ties by smaller id)."""
    s = (x.astype(np.float64) @ x[i].astype(np.float64))
    others = [j for j in range(len(x)) if j != i]
    ranked = sorted(others, key=lambda j: (-float(x[j] @ x[i]), j))
    rel = [lab[j] == lab[i] for j in ranked]
    r = sum(rel)
    hits, ap = 0, 0.0
    for pos, is_rel in enumerate(rel, 1):
        if is_rel:
            hits += 1
            ap += hits / pos
    correct = next((j for j in ranked if lab[j] == lab[i]), -1)
    wrong = next((j for j in ranked if lab[j] != lab[i]), -1)
    return {"top1": ranked[0], "ap": ap / r if r else np.nan, "correct": correct, "wrong": wrong,
            "rank": (rel.index(True) + 1) if r else 0,
            "margin": (s[wrong] - s[correct]) if r and wrong >= 0 else np.nan}


def test_query_scores_match_brute_force():
    x, lab = _data()
    lab[7] = 9  # a singleton class: no correct image, always a failure
    x0, lab0 = x.copy(), lab.copy()
    qs = query_scores(x, lab)
    np.testing.assert_array_equal(x, x0)  # inputs not mutated
    np.testing.assert_array_equal(lab, lab0)
    for i in range(len(x)):
        b = _brute(x, lab, i)
        assert qs.top1[i] == b["top1"], i
        assert qs.correct[i] == b["correct"], i
        assert qs.wrong[i] == b["wrong"], i
        assert qs.correct_rank[i] == b["rank"], i
        if np.isnan(b["ap"]):
            assert np.isnan(qs.ap[i])
        else:
            assert qs.ap[i] == pytest.approx(b["ap"], abs=1e-9), i
        if np.isnan(b["margin"]):
            assert np.isnan(qs.margin[i])
        else:
            assert qs.margin[i] == pytest.approx(b["margin"], abs=1e-5), i
    assert not qs.hit1[7] and qs.correct[7] == -1 and qs.correct_rank[7] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_failure_count_equals_index_recall_and_chunking_is_invisible(seed):
    x, lab = _data(n=300, seed=seed, spread=1.2)
    metrics = retrieval_metrics(x, lab, (1,))
    qs = query_scores(x, lab)
    fails = failure_ids(qs)
    assert len(fails) == round((1 - metrics.recall[1]) * len(x))
    assert len(fails) > 10  # the data really fail
    assert qs.recall_at_1 == pytest.approx(metrics.recall[1])
    # tiny chunks (7 queries each) give the same arrays, with a Progress per chunk
    gen = iter_query_scores(x, lab, chunk_bytes=7 * 4 * len(x))
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as stop:
        small = stop.value
    assert all(isinstance(p, Progress) for p in steps) and len(steps) == 1 + -(-len(x) // 7)
    for k in ("top1", "correct", "wrong", "correct_rank"):
        np.testing.assert_array_equal(getattr(small, k), getattr(qs, k))
    np.testing.assert_allclose(small.ap, qs.ap)


def test_failures_sorted_by_margin_and_filtered_by_class():
    x, lab = _data(n=300, seed=3, spread=1.3)
    qs = query_scores(x, lab)
    fails = failure_ids(qs)
    m = qs.margin[fails]
    assert (m >= 0).all() and (np.diff(m) <= 0).all()
    assert (qs.margin[qs.hit1] <= 0).all()
    assert (qs.top1[fails] == qs.wrong[fails]).all()
    c = int(lab[fails[0]])
    only = failure_ids(qs, query_classes=[c])
    assert set(only) == {i for i in fails if lab[i] == c}
    confused = failure_ids(qs, neighbour_classes=[c])
    assert set(confused) == {i for i in fails if lab[qs.top1[i]] == c}
    assert list(only) == [i for i in fails if lab[i] == c]  # same order


def test_class_table():
    x, lab = _data(n=200, seed=4, spread=1.2)
    qs = query_scores(x, lab)
    tab = class_table(qs, n_classes=12)
    assert tab.count.shape == (12,) and tab.count[9:].sum() == 0
    for c in range(9):
        q = lab == c
        assert tab.count[c] == q.sum()
        assert tab.hits[c] == qs.hit1[q].sum()
        assert tab.mean_ap[c] == pytest.approx(np.nanmean(qs.ap[q]))
    worst = tab.worst_first()
    assert len(worst) == 9
    assert (np.diff(tab.recall_at_1[worst]) >= 0).all()
    assert tab.failures.sum() == len(failure_ids(qs))


def test_bad_input_is_a_clear_error():
    x, lab = _data(n=20)
    with pytest.raises(ValueError, match="labels: 19 entries"):
        query_scores(x, lab[:-1])
    with pytest.raises(ValueError, match="every item needs a label"):
        query_scores(x, [None] + list(lab[1:]))


# -- two models ---------------------------------------------------------------------------------------
def _arrays(x, lab, relpaths, classes, name):
    from lfs_gui.index.compare import GalleryArrays

    return GalleryArrays(embeddings=x, labels=np.asarray(lab, np.int64), relpaths=np.asarray(relpaths, dtype=str),
                         classes=list(classes), name=name)


def test_compare_aligns_by_relpath_and_lists_disagreements():
    from lfs_gui.index.compare import compare

    xa, lab = _data(n=200, seed=5, spread=1.2)
    xb, _ = _data(n=200, seed=5, spread=1.2)
    rng = np.random.default_rng(9)
    xb = xb + 0.5 * rng.standard_normal(xb.shape).astype(np.float32)  # a different "model"
    xb = (xb / np.linalg.norm(xb, axis=1, keepdims=True)).astype(np.float32)
    rel = [f"c{lab[i]}/img{i:03d}.jpg" for i in range(200)]
    classes = [f"class{c}" for c in range(9)]
    # B stores its rows shuffled and numbers the classes in reverse: same images, same class names.
    perm = rng.permutation(200)
    rev = [classes[8 - c] for c in range(9)]
    b = _arrays(xb[perm], 8 - lab[perm], [rel[i] for i in perm], rev, "B")
    cmp = compare(_arrays(xa, lab, rel, classes, "A"), b)
    np.testing.assert_array_equal(perm[cmp.perm], np.arange(200))
    qa, qb = query_scores(xa, lab), query_scores(xb, lab)
    np.testing.assert_array_equal(cmp.a.top1, qa.top1)
    np.testing.assert_array_equal(cmp.b.top1, qb.top1)  # B's results in A's numbering
    expect = {i for i in range(200) if qa.hit1[i] != qb.hit1[i]}
    assert set(cmp.ids.tolist()) == expect and len(expect) > 5
    assert (cmp.a_right == qa.hit1[cmp.ids]).all()
    m = cmp.margin
    assert (m >= 0).all() and (np.diff(m) <= 0).all()
    np.testing.assert_allclose(m, np.where(cmp.a_right, qb.margin[cmp.ids], qa.margin[cmp.ids]))


def test_compare_mismatch_says_how_many_differ():
    from lfs_gui.index.compare import GalleryMismatch, compare

    x, lab = _data(n=30)
    rel = [f"img{i}.jpg" for i in range(30)]
    cls = [f"c{k}" for k in range(9)]
    other = rel[:27] + ["new1.jpg", "new2.jpg", "new3.jpg"]
    with pytest.raises(GalleryMismatch, match=r"3 of A's 30 images are not in B.*3 of B's 30 are not in A"):
        compare(_arrays(x, lab, rel, cls, "A"), _arrays(x, lab, other, cls, "B"))
    with pytest.raises(GalleryMismatch, match=r"0 of A's 30 .* 2 of B's 32"):
        compare(_arrays(x, lab, rel, cls, "A"),
                _arrays(np.vstack([x, x[:2]]), np.r_[lab, lab[:2]], rel + ["x.jpg", "y.jpg"], cls, "B"))
    lab2 = lab.copy()
    lab2[:4] = (lab2[:4] + 1) % 9
    with pytest.raises(GalleryMismatch, match="4 images have another class in B"):
        compare(_arrays(x, lab, rel, cls, "A"), _arrays(x, lab2, rel, cls, "B"))


def test_rank_in_matches_a_full_sort():
    from lfs_gui.index.compare import rank_in

    rng = np.random.default_rng(0)
    s = np.round(rng.standard_normal(50), 1).astype(np.float32)  # many ties
    order = [j for j in sorted(range(50), key=lambda j: (-s[j], j)) if j != 3]
    ids = [0, 10, 20, 49]
    assert rank_in(s, ids, exclude=3).tolist() == [order.index(j) + 1 for j in ids]
