"""EmbeddingIndex search vs brute-force numpy and recall metrics (persistence: test_index_store.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lfs_gui.index import (
    AUTO_FLAT_MAX,
    EmbeddingIndex,
    IndexMeta,
    choose_kind,
    load_index,
    map_at_r,
    query_recall,
    recall_at_k,
    retrieval_metrics,
    save_index,
)


def unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(x: np.ndarray, q: np.ndarray, k: int, exclude: int | None, top: bool) -> tuple[np.ndarray, np.ndarray]:
    s = x.astype(np.float64) @ q.astype(np.float64)
    ids = [i for i in (np.argsort(-s) if top else np.argsort(s)) if i != exclude][:k]
    return s[ids], np.array(ids)


# -- search ------------------------------------------------------------------------------------------
def test_flat_both_ends_match_brute_force() -> None:
    x = unit(500, 32)
    ix = EmbeddingIndex(x)
    assert ix.kind == "flat" and len(ix) == 500 and ix.dim == 32
    for qi in (0, 17, 499):
        for ex in (None, qi):
            d, i = ix.most_similar(x[qi], 20, exclude=ex)
            bd, bi = brute(x, x[qi], 20, ex, top=True)
            np.testing.assert_array_equal(i, bi)
            np.testing.assert_allclose(d, bd, atol=1e-5)
            assert (ex is None) == (i[0] == qi)
            d, i = ix.most_dissimilar(x[qi], 20, exclude=ex)
            bd, bi = brute(x, x[qi], 20, ex, top=False)
            np.testing.assert_array_equal(i, bi)
            np.testing.assert_allclose(d, bd, atol=1e-5)
            assert np.all(np.diff(d) >= 0)


def test_flat_batch_mixed_exclude_and_clamping() -> None:
    x = unit(300, 16, seed=1)
    ix = EmbeddingIndex(x)
    q = np.concatenate([x[:3], unit(2, 16, seed=2) * 3.0])  # external queries need not be unit
    ex = [0, 1, 2, None, None]
    (td, ti), (bd, bi) = ix.both_ends_batch(q, 7, ex)
    assert ti.shape == bi.shape == (5, 7) and td.dtype == np.float32 and ti.dtype == np.int64
    for r in range(5):
        qn = q[r] / np.linalg.norm(q[r])
        np.testing.assert_array_equal(ti[r], brute(x, qn, 7, ex[r], True)[1])
        np.testing.assert_array_equal(bi[r], brute(x, qn, 7, ex[r], False)[1])
        np.testing.assert_allclose(td[r], brute(x, qn, 7, ex[r], True)[0], atol=1e-5)
    d, i = ix.most_similar_batch(q, 3)
    np.testing.assert_array_equal(i, np.stack([brute(x, q[r] / np.linalg.norm(q[r]), 3, None, True)[1] for r in range(5)]))
    small = EmbeddingIndex(x[:4])
    d, i = small.most_similar(x[0], 10, exclude=0)
    assert sorted(i.tolist()) == [1, 2, 3] and len(d) == 3
    d, i = small.most_dissimilar(x[0], 10)
    assert sorted(i.tolist()) == [0, 1, 2, 3]


def test_bad_input_is_a_clear_error() -> None:
    x = unit(10, 8)
    with pytest.raises(ValueError, match="normalize=True"):
        EmbeddingIndex(x * 2)
    assert np.allclose(np.linalg.norm(EmbeddingIndex(x * 2, normalize=True).embeddings, axis=1), 1)
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        EmbeddingIndex(bad)
    ix = EmbeddingIndex(x)
    with pytest.raises(ValueError, match=r"\(nq, 8\)"):
        ix.most_similar(np.ones(9, np.float32), 3)
    with pytest.raises(ValueError, match="exclude"):
        ix.most_similar(x[0], 3, exclude=10)
    with pytest.raises(ValueError, match="unknown index kind"):
        EmbeddingIndex(x, kind="ivf-pq")
    with pytest.raises(ValueError, match="kind ivf is built on disk"):
        EmbeddingIndex(x, kind="ivf")
    with pytest.raises(ValueError, match="metadata describes 1 images"):
        EmbeddingIndex(x, meta=IndexMeta(relpaths=["a.jpg"]))
    assert choose_kind("auto", AUTO_FLAT_MAX - 1) == "flat" and choose_kind("auto", AUTO_FLAT_MAX) == "ivf"


def test_hnsw_recall_against_flat() -> None:
    x = unit(20_000, 64, seed=3)
    q = x[:200]
    flat, hnsw = EmbeddingIndex(x, "flat"), EmbeddingIndex(x, "hnsw")
    (ftd, fti), (fbd, fbi) = flat.both_ends_batch(q, 10, list(range(200)))
    (htd, hti), (hbd, hbi) = hnsw.both_ends_batch(q, 10, list(range(200)))
    top = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fti, hti)])
    bottom = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fbi, hbi)])
    assert top >= 0.9 and bottom >= 0.9, (top, bottom)
    assert not (hti == np.arange(200)[:, None]).any()  # self excluded
    ok = hti >= 0  # returned distances are the true cosines
    np.testing.assert_allclose(htd[ok], np.einsum("ij,ikj->ik", q, x[np.where(ok, hti, 0)])[ok], atol=1e-5)


# -- recall --------------------------------------------------------------------------------------------
def _brute_metrics(x: np.ndarray, lab: np.ndarray, ks: list[int]) -> tuple[dict[int, float], float]:
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    hits, aps = {k: 0 for k in ks}, []
    for i in range(len(x)):
        order = [j for j in np.argsort(-s[i], kind="stable") if j != i]
        for k in ks:
            hits[k] += any(lab[j] == lab[i] for j in order[:k])
        r = int((lab == lab[i]).sum()) - 1
        if r:
            rel = [lab[j] == lab[i] for j in order[:r]]
            aps.append(sum(np.mean(rel[: p + 1]) * rel[p] for p in range(r)) / r)
    return {k: hits[k] / len(x) for k in ks}, float(np.mean(aps))


def test_recall_and_map_match_brute_force(monkeypatch) -> None:
    import lfs_gui.index.recall as rec

    rng = np.random.default_rng(6)
    centers = unit(7, 16, seed=7)
    lab = rng.integers(0, 7, 250)
    lab[0] = 99  # a singleton class: counts for recall, left out of mAP@R
    x = centers[lab % 7] + 0.9 * rng.standard_normal((250, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ks = [1, 2, 4, 8, 16]
    want_r, want_map = _brute_metrics(x, lab, ks)
    monkeypatch.setattr(rec, "_CHUNK_BYTES", 4 * 250 * 37)  # force several chunks
    got = retrieval_metrics(x, lab, ks)
    assert got.recall == pytest.approx(want_r) and got.map_at_r == pytest.approx(want_map)
    assert 0.2 < want_r[1] < 0.95 and want_r[16] > want_r[1]  # a non-trivial case
    assert recall_at_k(x, lab.tolist()) == pytest.approx({k: want_r[k] for k in (1, 2, 4, 8)})
    assert map_at_r(x, lab) == pytest.approx(want_map)
    with pytest.raises(ValueError, match="label"):
        recall_at_k(x, [None] + lab[1:].tolist())


def test_query_recall() -> None:
    labels = [0, 1, 1, 2, None, 0]
    assert query_recall(labels, 0, [4, 3, 5, 1], ks=(1, 2, 4)) == {1: 0.0, 2: 0.0, 4: 1.0}
    assert query_recall(labels, 1, [2, -1], ks=(1, 8)) == {1: 1.0, 8: 1.0}
    assert query_recall(labels, None, [1, 2]) == {}


# -- native libraries in one process -----------------------------------------------------------------
_SNIPPETS = {
    "faiss": "import faiss, numpy as np; ix = faiss.IndexFlatIP(4); ix.add(np.eye(4, dtype='float32')); "
             "assert ix.search(np.eye(4, dtype='float32')[:1], 1)[1][0, 0] == 0",
    "torch": "import torch; assert float(torch.ones(3, 3).matmul(torch.ones(3)).sum()) == 9.0",
    "qt": "from PySide6 import QtCore; o = QtCore.QObject(); o.setObjectName('x'); assert o.objectName() == 'x'",
}


@pytest.mark.parametrize("order", [("torch", "faiss", "qt"), ("faiss", "torch", "qt"), ("qt", "faiss", "torch")])
def test_import_orders_do_not_crash(order: tuple[str, ...]) -> None:
    code = "; ".join(_SNIPPETS[m] for m in order)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{order}: rc={proc.returncode}\n{proc.stderr[-2000:]}"
