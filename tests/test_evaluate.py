"""``lfs_gui.metrics.evaluate`` end to end on tiny real models: pair sampling, one question and the same
noise and ties for every method, pairing with random, the summaries, NaN accounting, the report
files, and a planted model whose true cell importances are known (a map built from them must beat
random and come close to the greedy oracle)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from _tiny_models import mean_fill, planted_gallery, planted_model

from lfs_gui.explain.base import Explainer, HeatPair, PairInput, make_cost, unit_map
from lfs_gui.metrics.bounds import gap_closed, symmetric_relevance_gain
from lfs_gui.metrics.evaluate import Evaluation
from lfs_gui.metrics.pairs import sample_pairs
from lfs_gui.metrics.report import aucs_from_curves_csv, write_report
from lfs_gui.metrics.summary import SUMMARY_COLUMNS, summarize


class ConstantExplainer(Explainer):
    """The same value everywhere: every cell ties, so its order is the tie-breaking permutation."""

    name = "constant"

    def _explain(self, pair: PairInput) -> HeatPair:
        return self._result(pair, np.full((40, 40), 0.5, np.float32), np.full((40, 40), 0.5, np.float32), make_cost())


class PlantedExplainer(Explainer):
    """The planted model's exact per-cell terms of the cosine (× the target's sign), one value per cell."""

    name = "planted"
    needs = frozenset({"model"})

    def _explain(self, pair: PairInput) -> HeatPair:
        c = self.sign(pair) * self.model.cell_contributions(pair.x1, pair.x2)
        heat = unit_map(np.kron(c, np.ones((5, 5))))
        return self._result(pair, heat, heat, make_cost(2))


@pytest.fixture(scope="module")
def planted():
    model = planted_model()
    images, labels = planted_gallery()
    emb = model.embed_images(images)
    return model, images, emb, labels


def evaluation(planted, **kw) -> Evaluation:
    model, images, emb, labels = planted
    explainers = {"constant": ConstantExplainer(target=kw.get("target", "decision")),
                  "planted": PlantedExplainer(model=model, target=kw.get("target", "decision"))}
    kw.setdefault("methods", ["random", "grad-sim"])
    kw.setdefault("steps", 6)
    kw.setdefault("oracle_batch", 64)
    return Evaluation(model, None, images, emb, labels, explainers=explainers, n_pairs=kw.pop("n_pairs", 2),
                      perturbations=kw.pop("perturbations", (mean_fill(), "noise")), xi1=kw.pop("xi1", 0.5), **kw)


def run(ev: Evaluation) -> list:
    gen = ev.iter_run()
    progress = []
    try:
        while True:
            progress.append(next(gen))
    except StopIteration as stop:
        records = stop.value
    assert progress and progress[-1].done == progress[-1].total
    return records


def test_sample_pairs_classes_thresholds_and_seed():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 8))
    labels = np.repeat(np.arange(3), 10)
    emb = centres[labels] + 0.6 * rng.normal(size=(30, 8))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    labels = labels.astype(object)
    labels[[4, 15]] = None  # unlabelled items take no part
    xi1 = 0.4
    pairs = sample_pairs(emb, labels, 6, xi1, seed=1)
    sims = emb @ emb.T
    sim_pairs = [p for p in pairs if p.similar]
    dis_pairs = [p for p in pairs if not p.similar]
    assert len(sim_pairs) == 6 and len(dis_pairs) == 6 and pairs[:6] == sim_pairs  # similar first
    for p in pairs:
        assert p.i != p.j and p.i not in (4, 15) and p.j not in (4, 15)
        assert p.similarity == pytest.approx(sims[p.i, p.j], abs=1e-6)
    assert all(labels[p.i] == labels[p.j] and p.similarity > xi1 for p in sim_pairs)
    assert all(labels[p.i] != labels[p.j] and p.similarity <= xi1 for p in dis_pairs)
    assert sample_pairs(emb, labels, 6, xi1, seed=1) == pairs
    assert sample_pairs(emb, labels, 6, xi1, seed=2) != pairs
    # without labels: only the threshold decides
    free = sample_pairs(emb, None, 4, xi1, seed=0)
    assert all((p.similarity > xi1) == p.similar for p in free)
    # a threshold nothing passes: fewer pairs, not an error
    assert not [p for p in sample_pairs(emb, labels, 3, 1.5, seed=0) if p.similar]


def test_same_pairs_noise_and_ties_for_every_method(planted):
    ev = evaluation(planted)
    records = run(ev)
    by_curve: dict[tuple, dict[str, object]] = {}
    for r in records:
        by_curve.setdefault((r.pair, r.perturbation, r.mode, r.order), {})[r.method] = r
    methods = {"random", "grad-sim", "constant", "planted"}
    assert all(set(v) == methods for v in by_curve.values())
    for key, recs in by_curve.items():
        assert len({(r.i, r.j) for r in recs.values()}) == 1
        assert len({r.noise for r in recs.values()}) == 1, key  # the same noise, checked by its digest
        assert len({r.sim0 for r in recs.values()}) == 1
        # a constant map is ranked by the tie-breaking permutation: exactly random's order and score
        assert recs["constant"].cells == recs["random"].cells and recs["constant"].auc == recs["random"].auc
    noise = {(k[0], k[1]): next(iter(v.values())).noise for k, v in by_curve.items() if k[1] == "noise"}
    assert len(set(noise.values())) == len(noise) > 1  # but a new draw on each pair
    # maps come from the index's embeddings (as in the app), and the curves' forwards agree with them
    assert all(abs(r.similarity - r.sim0) < 1e-5 for r in records) and not ev.stale
    _, _, emb, _ = planted
    for r in records:
        assert r.similarity == pytest.approx(float(emb[r.i].astype(np.float64) @ emb[r.j]), abs=1e-6)
    assert ev.settings()["target"] == "decision" and "random map" in ev.settings()["selectivity"]["ties"]


def test_a_stale_index_is_reported(planted, caplog):
    model, images, emb, labels = planted
    stale = emb.copy()
    stale[:, :8] += 0.2  # as if the index had been built by another model
    stale /= np.linalg.norm(stale, axis=1, keepdims=True)
    ev = Evaluation(model, None, images, stale, labels, methods=["random"], n_pairs=1, perturbations=(mean_fill(),),
                    orders=("morf",), steps=2, xi1=0.5)
    run(ev)
    assert ev.stale and ev.settings()["stale_pairs"] == ev.stale
    assert "stale" in caplog.text


def test_summaries_pair_with_random_and_the_oracle(planted):
    ev = evaluation(planted, perturbations=(mean_fill(),), bounds=True)
    records = run(ev)
    rows = summarize(records)
    assert {r["order"] for r in rows} == {"morf", "lerf", "srg"} and all(r["target"] == "decision" for r in rows)
    auc = {(r.order, r.pair_type, r.method, r.i, r.j): r.auc for r in records}
    lower = {(r.order, r.pair_type, r.method, r.i, r.j): r.lower_is_better for r in records}
    pairs = sorted({(r.pair_type, r.i, r.j) for r in records})
    for row in rows:
        if row["method"] == "random":
            assert "vs_random_mean" not in row
            continue
        o, t, m = row["order"], row["pair_type"], row["method"]
        keys = [(i, j) for (pt, i, j) in pairs if pt == t]

        def score(method, i, j):
            if o != "srg":
                return auc[(o, t, method, i, j)]
            return symmetric_relevance_gain(auc[("morf", t, method, i, j)], auc[("lerf", t, method, i, j)],
                                            lower[("morf", t, method, i, j)])

        mine = np.array([score(m, i, j) for i, j in keys])
        rnd = np.array([score("random", i, j) for i, j in keys])
        orc = np.array([score("oracle", i, j) for i, j in keys])
        assert row["n"] == len(keys) and row["n_undefined"] == 0
        assert row["auc_mean"] == pytest.approx(mine.mean())
        assert row["vs_random_mean"] == pytest.approx((mine - rnd).mean())
        good = (mine - rnd < 0) if row["direction"] == "lower" else (mine - rnd > 0)
        assert row["better_than_random"] == pytest.approx(good.mean())
        g = gap_closed(rnd, mine, orc)
        assert row["gap_closed"] == pytest.approx(g.mean, nan_ok=True)
        if m == "oracle":
            assert row["gap_closed"] == pytest.approx(1.0)
    srg_random = [r for r in rows if r["order"] == "srg" and r["method"] == "random"]
    assert srg_random and all(r["direction"] == "higher" for r in srg_random)


def test_planted_importances_beat_random_and_approach_the_oracle(planted):
    ev = evaluation(planted, perturbations=(mean_fill(),), orders=("morf",), methods=["random"], bounds=True)
    records = run(ev)
    rows = {(r["pair_type"], r["method"]): r for r in summarize(records)}
    sim = rows[("similar", "planted")]
    assert sim["vs_random_mean"] < 0 and sim["better_than_random"] == 1.0
    assert sim["gap_closed"] > 0.8, sim  # the true importances order nearly as well as the greedy search
    assert rows[("similar", "oracle")]["auc_mean"] <= sim["auc_mean"] + 1e-9
    assert rows[("similar", "constant")]["gap_closed"] == pytest.approx(0.0, abs=1e-12)
    dis = rows[("dissimilar", "planted")]
    assert dis["direction"] == "higher" and dis["vs_random_mean"] > 0 and dis["gap_closed"] > 0.5, dis


def test_nan_pairs_are_counted_not_dropped():
    """With ξ1 far below zero every pair is 'similar'; those with sim_0 ≤ 0.05 (here: images whose only
    coloured cells do not overlap on a mean-colour background, cosine ≈ 0) have no ratio curve and are
    counted, not dropped."""
    from PIL import Image

    model = planted_model()
    images = []
    for cells in ([0, 9], [0, 9, 18], [27, 36], [27, 45], [54, 63], [54, 62]):
        arr = np.full((8, 8, 3), 128 / 255)  # grey 128: exactly 0 in the planted model's normalised space
        for c in cells:
            arr[c // 8, c % 8] = (0.2, 0.5, 0.1)
        images.append(Image.fromarray((np.kron(arr, np.ones((4, 4, 1))) * 255).astype(np.uint8)))
    emb = model.embed_images(images)
    ev = Evaluation(model, None, images, emb, None, methods=["random"], n_pairs=6, perturbations=(mean_fill(),),
                    orders=("morf",), xi1=-0.99)
    records = run(ev)
    low = {(r.i, r.j) for r in records if r.sim0 <= 0.05}
    assert low and len(low) < len({(r.i, r.j) for r in records})
    assert all(abs(r.sim0) < 1e-6 for r in records if (r.i, r.j) in low)
    assert all(np.isnan(r.auc) for r in records if (r.i, r.j) in low)
    assert all(np.isfinite(r.auc) for r in records if (r.i, r.j) not in low)
    row = next(r for r in summarize(records) if r["pair_type"] == "similar")
    assert row["n_undefined"] == len(low) and row["n"] + row["n_undefined"] == len({(r.i, r.j) for r in records})
    assert np.isfinite(row["auc_mean"])


def test_a_method_that_cannot_answer_is_counted_not_asked_another_question(planted):
    model, images, emb, labels = planted
    from lfs_gui.models.decoder import DenseDecoder

    torch.manual_seed(0)
    ev = Evaluation(model, DenseDecoder(model.dim, 16).eval(), images, emb, labels, methods=["explainlfs", "grad-sim"],
                    n_pairs=2, perturbations=(mean_fill(),), orders=("morf",), xi1=0.5, target="similarity")
    records = run(ev)
    assert {r.pair_type for r in records if r.method == "explainlfs"} == {"similar"}
    assert {r.pair_type for r in records if r.method == "grad-sim"} == {"similar", "dissimilar"}
    assert {r.target for r in records} == {"similarity"}
    u = ev.settings()["unavailable"]["explainlfs on dissimilar pairs"]
    assert u["pairs"] == 2 and "different" in u["reason"]
    # on dissimilar pairs the similarity target's deletion curve should fall: lower is better
    assert all(r.lower_is_better for r in records if r.order == "morf")
    with pytest.raises(ValueError, match="target"):
        Evaluation(model, None, images, emb, labels, explainers={"c": ConstantExplainer(target="similarity")},
                   methods=["random"], target="decision", xi1=0.5)


def test_report_files_record_the_target_and_bounds(planted, tmp_path):
    ev = evaluation(planted, perturbations=(mean_fill(),), bounds=True)
    records = run(ev)
    written = write_report(records, tmp_path, ev.settings(), compress=True)
    assert {"summary.csv", "summary.md", "paired.csv", "curves.csv.gz", "settings.json"} <= set(written)
    assert "mean_curves_fill_deletion_morf.png" in written and "mean_curves_fill_deletion_lerf.svg" in written
    with open(tmp_path / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == SUMMARY_COLUMNS
    assert {r["target"] for r in rows} == {"decision"} and {r["order"] for r in rows} == {"morf", "lerf", "srg"}
    planted_row = next(r for r in rows if r["method"] == "planted" and r["order"] == "morf" and r["pair_type"] == "similar")
    assert float(planted_row["gap_closed"]) > 0.5 and planted_row["gap_closed_ci95"]
    assert json.loads((tmp_path / "settings.json").read_text())["target"] == "decision"
    aucs = aucs_from_curves_csv(tmp_path / "curves.csv.gz")
    for r in records:
        key = (r.target, r.perturbation, r.mode, r.order, r.pair_type, r.method, r.i, r.j)
        assert aucs[key] == pytest.approx(r.auc, rel=1e-5, nan_ok=True)
    md = (tmp_path / "summary.md").read_text()
    assert "target **decision**" in md and "oracle" in md and "gap closed" in md
    with Image.open(tmp_path / "mean_curves_fill_deletion_morf.png") as both:
        width = both.size[0]
    one_type = [r for r in records if r.pair_type == "similar"]  # a --pair-types similar run: one panel, not an empty one
    write_report(one_type, tmp_path / "similar", ev.settings(), compress=True)
    with Image.open(tmp_path / "similar" / "mean_curves_fill_deletion_morf.png") as one:
        assert one.size[0] == width // 2


def test_progress_reports_time_left(planted):
    ev = evaluation(planted, perturbations=(mean_fill(),), orders=("morf",), methods=["random"])
    messages = [p.message for p in ev.iter_run()]
    assert messages and all("about" in m and "left" in m for m in messages)


def test_the_cli_progress_line_shows_the_estimate_however_fast(planted, capsys):
    """The bar draws the first and the last message at once (tqdm's own redraws are time-throttled), so
    the estimate shows even when every unit finishes within a millisecond."""
    from lfs_gui.cli._common import progress_bar
    from lfs_gui.cli.cmd_evaluate import _show_message
    from lfs_gui.jobs import Progress

    def instant():
        for done, left in ((1, "about 2 s left"), (2, "about 1 s left"), (3, "about 0 s left")):
            yield Progress(done, 3, f"pair 1/1 (similar): m · {left}")
        return "ok"

    assert progress_bar(instant(), desc="evaluating", on_item=_show_message) == "ok"
    err = capsys.readouterr().err
    assert "about 2 s left" in err and "about 0 s left" in err


def test_the_app_and_evaluate_agree_on_the_demo():
    """ξ1 has one value, maps come from the same embeddings and random's curve (noise, ties) is the same
    in the session the app and ``lfs-gui explain`` use as in ``evaluate``; every p default is the registry's."""
    from lfs_gui.explain.registry import default_settings
    from lfs_gui.jobs import run_generator
    from lfs_gui.session import Session
    from lfs_gui.viewer_state import ViewerState

    s = Session.open_demo()
    labels = s.gallery.labels_array()
    ev = Evaluation(s.model, s.decoder, s.gallery.paths, s.embeddings, labels, methods=["random", "explainlfs"],
                    n_pairs=1, perturbations=("noise",), orders=("morf",), steps=3)
    assert ev.xi1 == s.suggested_xi1() == round(ev.xi1, 2)
    records = run(ev)
    for r in (r for r in records if r.pair == 0):
        app_map = s.explain(r.i, r.j, r.method, xi1=ev.xi1)
        ev_map = ev.explainers[r.method].explain(ev.pair_input(ev.pairs[0]))
        np.testing.assert_array_equal(app_map.heat2, ev_map.heat2)
        app_curve = run_generator(s.iter_curve(r.i, r.j, app_map, steps=3, perturbation="noise", seed=0))
        assert app_curve.auc == pytest.approx(r.auc, abs=1e-6) and app_curve.settings["target"] == r.target
        assert app_curve.settings["noise_crc32"] == r.noise and list(app_curve.order) == r.cells
    state = ViewerState()
    for method in ("explainlfs-rel", "explainlfs", "explainlfs-thesis"):
        state.update_explain(method=method)
        assert state.explain.p == default_settings(method)["p"]
    assert state.explain.target == default_settings("grad-sim")["target"] == ev.target == "decision"
