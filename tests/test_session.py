"""Session: build an index from a real gallery with a real (tiny) model, retrieve, explain, curve."""

import numpy as np
import pytest
import torch
from PIL import Image

from lfs_gui.build import iter_build_index
from lfs_gui.data.galleries import open_gallery
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import Preprocessing
from lfs_gui.models.torchvision_models import build_torchvision_embedder, save_torchvision_head
from lfs_gui.index.recall import suggest_xi1
from lfs_gui.session import Session, SessionError


def _gallery(root, n_cls=3, per=4):
    rng = np.random.default_rng(0)
    for c in range(n_cls):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(per):
            arr = np.full((48, 56, 3), 40 + 80 * c, np.uint8)
            arr[rng.integers(0, 30) :, rng.integers(0, 30) :, c] = 255
            Image.fromarray(arr).save(d / f"img{i}.png")
    (root / "class0" / "broken.jpg").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("session")
    torch.manual_seed(0)
    model = build_torchvision_embedder("resnet18", 16, Preprocessing(input_size=64, resize=72))
    model_file = tmp / "tiny.pt"
    save_torchvision_head(model_file, model)
    gallery = open_gallery(_gallery(tmp / "gallery"))
    events = []
    report = run_generator(
        iter_build_index(gallery, model, tmp / "index", decoder_epochs=3, use_cache=False, model_info={"source": str(model_file)}),
        events.append,
    )
    return tmp, report, events


def test_build_reports_skips_and_recall(built):
    tmp, report, events = built
    assert report.count == 12
    assert len(report.skipped) == 1 and "broken.jpg" in report.skipped[0][0]
    assert set(report.recall) == {1, 2, 4, 8} and 0.0 <= report.recall[1] <= 1.0
    assert report.decoder is not None and (tmp / "index" / "decoder.pt").is_file()
    assert all(isinstance(e, Progress) for e in events) and events[-1].message == "saved"


def test_retrieve_matches_brute_force(built):
    tmp, _, _ = built
    s = Session.open_index(tmp / "index")
    emb = s.embeddings.astype(np.float64)
    for q in range(len(s.gallery)):
        r = s.retrieve(q, k=4)
        sims = emb @ emb[q]
        sims[q] = np.nan
        order = [int(i) for i in np.argsort(-np.nan_to_num(sims, nan=-9))][:4]
        low = [int(i) for i in np.argsort(np.nan_to_num(sims, nan=9))][:4]
        assert [h.id for h in r.similar] == order
        assert [h.id for h in r.dissimilar] == low
        assert q not in [h.id for h in r.similar + r.dissimilar]
        np.testing.assert_allclose([h.score for h in r.similar], sims[order], atol=1e-5)
        assert [h.rank for h in r.similar] == [1, 2, 3, 4]
        for h in r.similar:
            assert h.same_class == (s.gallery.items[h.id].label == s.gallery.items[q].label)
        assert set(r.recall) == {1, 2, 4, 8}


def test_explainlfs_needs_no_model_and_curve_streams(built):
    tmp, _, _ = built
    s = Session.open_index(tmp / "index")
    ex = s.explain(0, 5, "explainlfs", xi1=0.3, xi2=0.7, p=0.3)
    assert not s.model_loaded  # the fast path: cached embeddings + decoder only
    assert ex.heat1.shape == ex.heat2.shape == (40, 40)
    assert 0.0 <= ex.heat1.min() and ex.heat1.max() <= 1.0
    np.testing.assert_array_equal(ex.mask2, ex.heat2 > 0.7)
    assert ex.recon1.shape == (3, 40, 40)
    assert ex.similar == (ex.similarity > 0.3)
    points = []
    curve = run_generator(s.iter_curve(0, 5, ex, steps=6), points.append)
    assert [p.step for p in points] == list(range(7))
    assert points[0].ratio == pytest.approx(1.0)
    assert curve.settings["method"] == "explainlfs" and curve.settings["target_image"] == 5
    assert curve.settings["target"] == ex.target == "decision"  # the question the map and the curve answer
    assert s.model_loaded


def test_external_query_equals_gallery_embedding(built):
    tmp, _, _ = built
    s = Session.open_index(tmp / "index")
    path = s.gallery.items[3].path
    v = s.embed_image(path)
    np.testing.assert_allclose(v, s.embeddings[3], atol=1e-5)
    r = s.retrieve(str(path), k=3)
    assert r.query_id is None and r.similar[0].id == 3 and r.similar[0].score == pytest.approx(1.0, abs=1e-5)


def test_bad_requests_are_clear(built, tmp_path):
    tmp, _, _ = built
    s = Session.open_index(tmp / "index")
    with pytest.raises(SessionError, match="out of range"):
        s.retrieve(99)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(SessionError, match="bad.png"):
        s.embed_image(bad)


def test_index_not_written_into_gallery(built):
    tmp, _, _ = built
    gallery = open_gallery(tmp / "gallery")
    model = build_torchvision_embedder("resnet18", 8, Preprocessing(input_size=32, resize=36))
    with pytest.raises(ValueError, match="inside the gallery"):
        run_generator(iter_build_index(gallery, model, tmp / "gallery" / "idx", train_decoder=False))


def test_suggest_xi1_separates_classes():
    rng = np.random.default_rng(0)
    centers = np.eye(4)[:2] * 3
    x = np.concatenate([centers[0] + rng.normal(size=(20, 4)) * 0.3, centers[1] + rng.normal(size=(20, 4)) * 0.3])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.repeat([0, 1], 20)
    xi = suggest_xi1(x, labels)
    sims = x @ x.T
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(40, dtype=bool)
    assert (sims[same & off] > xi).mean() > 0.9 and (sims[~same] <= xi).mean() > 0.9
    assert suggest_xi1(x, -np.ones(40, int)) == 0.3
    partly = labels.copy()
    partly[::7] = -1  # unlabelled items are left out, not a reason to give up
    assert suggest_xi1(x, partly) == pytest.approx(xi, abs=0.05)


def test_slow_method_streams_progress_and_can_be_stopped(built):
    tmp, _, _ = built
    s = Session.open_index(tmp / "index")
    gen = s.iter_explain(0, 5, "rise-sim", n_masks=64, batch=16)
    items = [next(gen) for _ in range(3)]
    assert all(isinstance(p, Progress) for p in items)
    gen.close()  # a worker stops here: no further masks are evaluated
    ex = run_generator(s.iter_explain(0, 5, "rise-sim", n_masks=32, batch=16))
    assert ex.heat2.shape[0] > 1 and 0.0 <= ex.heat2.min() and ex.heat2.max() <= 1.0
    assert ex.cost["model_forwards"] >= 32
    assert not s.decoder_knows(str(s.gallery.items[0].path)) and s.decoder_knows(0)


def test_broken_decoder_is_named_and_can_be_bypassed(built, tmp_path):
    import shutil

    from lfs_gui.models.base import ModelLoadError

    tmp, _, _ = built
    copy = tmp_path / "index"
    shutil.copytree(tmp / "index", copy)
    (copy / "decoder.pt").write_bytes(b"truncated")
    with pytest.raises(ModelLoadError, match="decoder.pt"):
        Session.open_index(copy)
    s = Session.open_index(copy, decoder=False)  # e.g. to train a replacement
    assert s.decoder is None and "explainlfs" not in s.methods()
    assert s.retrieve(0, k=2).similar


def test_class_prototypes_match_brute_force(monkeypatch):
    from lfs_gui.explain import prototypes as protos_mod
    from lfs_gui.explain.prototypes import ClassPrototypes

    monkeypatch.setattr(protos_mod, "_CHUNK_ROWS", 7)  # several chunks
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    labels = rng.integers(-1, 4, size=50)  # -1: unlabelled rows
    x0, l0 = x.copy(), labels.copy()
    p = ClassPrototypes.from_gallery(x, labels)
    g = x.astype(np.float64)
    assert p.labels.tolist() == sorted(set(labels.tolist()) - {-1})
    for lab in p.labels.tolist():
        np.testing.assert_allclose(p.mean_of(lab), g[labels == lab].mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.std, g.std(axis=0), rtol=1e-12)
    assert p.mean_of(-1) is None and p.mean_of(99) is None
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(labels, l0)


def test_emsnn_prototypes_computed_once_then_instant(built):
    from lfs_gui.explain.base import PairInput
    from lfs_gui.explain.registry import make_explainer

    tmp, _, _ = built
    s = Session.open_index(tmp / "index")
    assert "emsnn" in s.methods() and not s.needs_model("emsnn")
    assert not s.is_instant("emsnn")  # the first EMSNN request goes to a worker: it passes over the gallery
    events = []
    ex = run_generator(s.iter_explain(0, 5, "emsnn", xi1=0.3, xi2=0.6), events.append)
    assert any("prototypes" in e.message for e in events)
    assert s.is_instant("emsnn") and s.is_instant("explainlfs") and not s.is_instant("grad-sim")
    assert ex.settings["method"] == "emsnn" and ex.settings["xi2"] == 0.6
    np.testing.assert_array_equal(ex.mask1, ex.heat1 > 0.6)
    # The same map as EMSNN computing its prototypes from the raw gallery arrays.
    h1, h2 = s.embeddings[0], s.embeddings[5]
    raw = PairInput(h1=h1, h2=h2, similarity=float(h1 @ h2), xi1=0.3, gallery=s.embeddings,
                    gallery_labels=s.gallery.labels_array(), label1=s.label_of(0), label2=s.label_of(5))
    ref = make_explainer("emsnn", decoder=s.decoder).explain(raw)
    np.testing.assert_allclose(ex.heat1, ref.heat1, atol=1e-6)
    np.testing.assert_allclose(ex.heat2, ref.heat2, atol=1e-6)
    assert not s.model_loaded
