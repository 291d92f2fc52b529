"""The attribute predictor, SANE's choice and the deletion evaluation, on a gallery with a known answer.

Scenes of coloured squares on grey noise; each class shows a fixed set of colours (the AwA2-style
matrix says which); the model's features detect colours (``_object_models.ColourNet``). So the
predictor must learn "red", "green", "blue", its activation maps must sit on the squares, and for a
pair sharing only a red square SANE must answer "red".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lfs_gui.attributes.evaluate import AttributeEvaluation, heldout_map, summarize_deletions
from lfs_gui.attributes.features import FeatureMaps, iter_feature_maps
from lfs_gui.attributes.predictor import AttributeHead, load_predictor
from lfs_gui.attributes.train import (
    _fold_projection,
    average_precision,
    iter_train_attributes,
    mean_average_precision,
    split_heldout,
)
from lfs_gui.data.attributes import find_attribute_source, gallery_attributes
from lfs_gui.data.galleries import open_gallery
from lfs_gui.attributes.sane import SaneChooser, agreement, region_mask
from lfs_gui.jobs import Progress, run_generator
from lfs_gui.models.base import ModelLoadError

from _attribute_fixtures import COLOUR_NAMES, write_object_gallery
from _object_models import colour_model, scene, to_input


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("objects")
    images = write_object_gallery(root, per_class=8)
    gal = open_gallery(images)
    attrs = gallery_attributes(find_attribute_source(gal.root, gal.kind), gal.relpaths, gal.labels_array(), gal.classes)
    model = colour_model()
    gen = iter_train_attributes(model, gal.paths, gal.labels_array(), attrs, epochs=40, hidden=16, lr=1e-2,
                                heldout=0.25, seed=0, use_cache=False)
    events = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        pred = stop.value
    return {"gallery": gal, "attrs": attrs, "model": model, "pred": pred, "events": events, "root": root}


def test_average_precision_known_answers() -> None:
    assert average_precision(np.array([0.9, 0.8, 0.1]), np.array([1, 0, 1])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)  # ties: pessimistic
    assert np.isnan(average_precision(np.array([0.1]), np.array([0])))
    m, aps = mean_average_precision(np.array([[0.9, 0.2], [0.1, 0.3]]), np.array([[1, 1], [0, 1]]))
    assert m == pytest.approx(1.0) and np.isnan(aps[1])  # attribute 2 has no negative: left out


def test_heldout_split_is_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(4), [10, 5, 2, 1])
    a, b = split_heldout(labels, 0.2, 3), split_heldout(labels, 0.2, 3)
    assert np.array_equal(a, b)
    assert [int(a[labels == c].sum()) for c in range(4)] == [2, 1, 1, 0]


def test_predictor_learns_the_colours_and_maps_sit_on_the_objects(trained) -> None:
    pred, ev = trained["pred"], trained["events"]
    assert all(isinstance(e, Progress) for e in ev)
    assert any(e.message.startswith("features") for e in ev) and ev[-1].message.startswith("training: epoch 40/40")
    m = pred.meta["metrics"]
    assert m["n_heldout"] == 8 and m["map_heldout"] > 0.95
    assert pred.names == COLOUR_NAMES and pred.in_channels == 3
    model = trained["model"]
    x = to_input(model, scene({"red": (8, 40), "green": (40, 8)}, seed=11))  # a new red_green scene
    conf, aam = pred.predict(model, x)
    assert conf[0, 0] > 0.5 and conf[0, 1] > 0.5 and conf[0, 2] < 0.5
    assert aam.shape == (1, 3, 8, 8) and np.allclose(aam.sum(axis=(2, 3)), 1.0, atol=1e-5)
    r, c = np.unravel_index(int(aam[0, 0].argmax()), (8, 8))
    assert 1 <= r <= 2 and 5 <= c <= 6  # the red square's cells
    r, c = np.unravel_index(int(aam[0, 1].argmax()), (8, 8))
    assert 5 <= r <= 6 and 1 <= c <= 2


def test_file_round_trip_weights_only_and_model_check(trained, tmp_path: Path) -> None:
    pred, model = trained["pred"], trained["model"]
    path = pred.save(tmp_path / "attributes.pt")
    back = load_predictor(path)
    x = to_input(model, scene({"green": (24, 24)}, seed=12))
    np.testing.assert_allclose(back.predict(model, x)[0], pred.predict(model, x)[0], atol=1e-6)
    assert back.names == pred.names and back.heldout_map == pytest.approx(pred.heldout_map)
    other = colour_model(dim=4)
    with pytest.raises(ModelLoadError, match="retrain it"):
        back.check_model(other, path)
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelLoadError, match="bad.pt"):
        load_predictor(tmp_path / "bad.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ModelLoadError, match="format"):
        load_predictor(tmp_path / "other.pt")


def test_pca_projection_folds_into_the_head() -> None:
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(5, 12, 4, 4, generator=g)
    proj = torch.linalg.qr(torch.randn(12, 4, generator=g))[0].numpy()
    mean = torch.randn(12, generator=g).numpy()
    fm = FeatureMaps(np.zeros((5, 4, 4, 4), np.float16), np.ones(5, bool), 12, proj, mean)
    head = AttributeHead(4, 3, hidden=6)
    reduced = torch.einsum("bchw,cr->brhw", raw - torch.from_numpy(mean).view(1, -1, 1, 1), torch.from_numpy(proj))
    full = _fold_projection(head, fm)
    with torch.no_grad():
        torch.testing.assert_close(full(raw), head(reduced), atol=1e-5, rtol=1e-5)


def test_feature_cache_and_pca_reduction(trained) -> None:
    model, paths = trained["model"], trained["gallery"].paths[:6]
    first = run_generator(iter_feature_maps(model, paths, batch=4, reduce_to=2, fit_images=3))
    assert first.maps.shape == (6, 2, 8, 8) and first.proj.shape == (3, 2) and not first.from_cache
    again = run_generator(iter_feature_maps(model, paths, batch=4, reduce_to=2, fit_images=3))
    assert again.from_cache and np.array_equal(again.maps, first.maps)
    with torch.no_grad():
        f = model.forward_features(torch.cat([to_input(model, np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB"))) for p in paths]))
    want = torch.einsum("bchw,cr->brhw", f - torch.from_numpy(first.mean).view(1, -1, 1, 1), torch.from_numpy(first.proj))
    np.testing.assert_allclose(first.maps.astype(np.float32), want.numpy(), atol=2e-2)


def test_cancel_stops_training_without_a_file(trained, tmp_path: Path) -> None:
    gal, attrs = trained["gallery"], trained["attrs"]
    gen = iter_train_attributes(trained["model"], gal.paths, gal.labels_array(), attrs, epochs=5, use_cache=False)
    next(gen)
    gen.close()  # the consumer stops iterating: nothing more runs, nothing is written
    assert not list(tmp_path.iterdir())


def test_sane_picks_the_shared_attribute(trained) -> None:
    model, pred = trained["model"], trained["pred"]
    x1 = to_input(model, scene({"red": (8, 8), "blue": (40, 40)}, seed=21))
    x2 = to_input(model, scene({"red": (40, 16), "green": (8, 40)}, seed=22))
    from lfs_gui.explain.base import PairInput
    from lfs_gui.explain.registry import make_explainer

    hp = make_explainer("sim-decomp", model=model).explain(PairInput.from_tensors(model, x1, x2))
    choice = SaneChooser(pred, model, candidates=3).choose(x1, x2, hp.heat1, hp.heat2)
    assert choice.ranked[0].name == "red"
    assert choice.ranked[0].deletion_drop == max(r.deletion_drop for r in choice.ranked) > 0
    assert choice.label().startswith("matched on: red (")
    assert choice.cost["model_forwards"] == 2 + 2 * 3
    d = choice.describe()
    assert d["matched_on"][0]["name"] == "red" and "formula" in d
    heat = choice.heat(2, choice.ranked[0].index)
    assert heat.max() == pytest.approx(1.0) and np.unravel_index(int(heat.argmax()), heat.shape)[0] >= 5
    # no deletion term: no deletion forwards
    plain = SaneChooser(pred, model, candidates=3, w_deletion=0.0).choose(x1, x2, hp.heat1, hp.heat2)
    assert plain.cost["model_forwards"] == 2 and all(r.deletion_drop == 0.0 for r in plain.ranked)
    with pytest.raises(ValueError):
        SaneChooser(pred, model, w_confidence=0, w_agreement=0, w_deletion=0)


def test_agreement_and_region_helpers() -> None:
    aam = np.zeros((4, 4), np.float32)
    aam[0, 0] = 1.0
    sal = np.zeros((8, 8), np.float32)
    sal[:2, :2] = 1.0
    assert agreement(aam, sal) == pytest.approx(1.0)
    assert agreement(aam, np.roll(sal, 4, axis=0)) == pytest.approx(0.0)
    m = region_mask(aam, (16, 16), 0.25)
    assert m.dtype == torch.bool and int(m.sum()) == 64 and bool(m[0, 0]) and not bool(m[15, 15])


def test_deletion_evaluation_chosen_beats_random(trained) -> None:
    gal, model, pred = trained["gallery"], trained["model"], trained["pred"]
    emb = model.embed_images([__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB") for p in gal.paths])
    ev = AttributeEvaluation(model, pred, gal.paths, emb, gal.labels_array(), n_pairs=8, xi1=0.2, seed=0,
                             saliency="sim-decomp", chooser_settings={"candidates": 3})
    recs = run_generator(ev.iter_run())
    assert len(recs) + ev.skipped_no_present == len(ev.pairs) > 0 and recs
    s = summarize_deletions(recs)
    assert s["n_pairs"] == len(recs) and s["drop_chosen"]["mean"] > s["drop_random"]["mean"]
    assert 0.0 <= s["chosen_minus_random"]["wins"] <= 1.0
    hm = run_generator(heldout_map(model, pred, gal.paths, trained["attrs"]))
    assert hm["n_heldout"] == 8 and hm["map_heldout"] == pytest.approx(pred.heldout_map, abs=0.02)
