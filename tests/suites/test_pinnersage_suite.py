"""The PinnerSage suite: its claims can fail, its lift test is right, its data protocol does not leak,
and the smoke profile runs end to end (synthetic users only)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from suites.data import ENV_VAR, is_available
from suites.harness.judge import NOT_RUN, PARTIAL, judge
from suites.harness.report import write_suite_report
from suites.harness.runner import RunOptions, run_suite
from suites.pinnersage import SUITE
from suites.pinnersage.claims import CLAIMS, TASKS
from suites.pinnersage.data import DAY, movielens_users
from suites.pinnersage.profiles import PROFILES

DATA = os.environ.get(ENV_VAR)  # the data directory setting, as every loader reads it
needs_ml = pytest.mark.skipif(
    not DATA or not is_available("movielens-100k/ml-100k.inter", DATA), reason=f"no MovieLens in ${ENV_VAR}"
)


VERDICT_CLAIMS = [c for c in CLAIMS if c.direction != "measurement"]


def test_size_claims_are_partial_when_the_lift_is_real_but_small():
    from suites.harness import kit

    claim = next(c for c in CLAIMS if c.size is not None)
    rows, units = kit.rows_for(claim, 1.2)  # a 1.2x lift against the paper's size
    verdict = judge([claim], rows, units=units)[0]
    assert verdict["verdict"] == PARTIAL and "direction reproduced" in verdict["notes"]


def test_claims_are_families_per_population():
    families = {c.family_name for c in CLAIMS}
    for task in TASKS:
        for fam in ("multi", "multi_hit", "medoid", "linkage", "lambda", "count", "hnsw"):
            assert f"pinnersage.{task}.{fam}" in families
    for c in CLAIMS:
        assert c.claimed_region() is not None or c.direction == "measurement"
        if c.test == "lift":
            assert c.unit == ("task", "element") and c.effect == "ratio"
    last = next(c for c in CLAIMS if c.id == "pinnersage.movielens.multi.last")
    assert last.paper_value == pytest.approx(1.88)  # Table 3: +88% recall over the last pin


def test_profiles_change_sizes_not_code_paths():
    smoke, quick, standard, full = (PROFILES[p] for p in ("smoke", "quick", "standard", "full"))
    assert list(PROFILES) == ["smoke", "quick", "standard", "full"]
    assert smoke.tasks == ("synthetic",)
    assert set(quick.tasks) == set(standard.tasks) == set(full.tasks) == set(TASKS)
    assert quick.seeds >= 2 and standard.seeds >= 5
    assert full.synthetic_users >= standard.synthetic_users > quick.synthetic_users
    with pytest.raises(TypeError):
        type(quick)(**{**vars(quick), "epochs": 3})


@needs_ml
def test_movielens_global_cut_does_not_leak():
    from impl.item2vec import Item2VecConfig
    from suites.data.movielens import load_movielens

    users = movielens_users(DATA, 0.7, n_targets=10, protocol="global", item2vec=Item2VecConfig(dim=8, epochs=1))
    inter, _, _ = load_movielens(DATA)
    cut = users.info["cut_unix"]
    assert users.info["train_interactions"] == int((inter["timestamp"] < cut).sum())
    item_ids = np.sort(inter["item_id"].unique())
    later_only = set(inter["item_id"]) - set(inter[inter["timestamp"] < cut]["item_id"])
    assert later_only  # some films are first rated after the cut: they must have no embedding
    rows = np.searchsorted(item_ids, sorted(later_only))
    assert np.all(users.item_emb[rows] == 0)
    for (items, times, t_now), targets, u in zip(users.histories, users.targets, users.user_ids, strict=True):
        assert t_now == cut / DAY and np.all(times < t_now)
        mine = inter[inter["user_id"] == u]
        assert sorted(item_ids[items]) == sorted(mine[mine["timestamp"] < cut]["item_id"])
        after = mine[mine["timestamp"] >= cut].set_index("item_id")["timestamp"]
        # the next 10: their times are the 10 earliest after the cut (ties within a second shuffled)
        assert sorted(after.loc[item_ids[targets]]) == sorted(after)[:10]
    assert len(users.targets) == 130  # users with >= 5 actions before the cut and >= 1 after


@needs_ml
def test_movielens_lastn_targets_never_share_a_second_with_the_history():
    from impl.item2vec import Item2VecConfig
    from suites.data.movielens import load_movielens

    inter, _, _ = load_movielens(DATA)
    item_ids = np.sort(inter["item_id"].unique())
    runs = [movielens_users(DATA, n_targets=10, protocol="per_user", item2vec=Item2VecConfig(dim=8), seed=s)
            for s in (0, 1)]  # fmt: skip
    for users in runs:
        assert len(users.targets) == 943
        for (_, times, t_now), targets, u in zip(users.histories, users.targets, users.user_ids, strict=True):
            assert np.all(times < t_now)  # strictly before the first target's second
            mine = inter[inter["user_id"] == u].set_index("item_id")["timestamp"]
            assert (mine.loc[item_ids[targets]] / DAY >= t_now).all() and len(targets) == 10
    # within-second order is a seeded shuffle, not the item id: another seed picks other targets
    assert any(set(a) != set(b) for a, b in zip(runs[0].targets, runs[1].targets, strict=True))


def test_the_served_embeddings_are_actual_items_the_medoids():
    from impl import pinnersage as ps
    from suites.pinnersage.data import synthetic_users
    from suites.pinnersage.experiments import embeddings

    users = synthetic_users(40, seed=3)
    vectors = embeddings(users, {}, 1.5, seed=0, progress=False)
    centroid = embeddings(users, {"representative": "centroid"}, 1.5, seed=0, progress=False)
    for (items, times, t_now), mine in zip(users.histories, vectors, strict=True):
        P = users.item_emb[items]
        emb = ps.pinnersage(P, times, t_now, ps.PinnerSageConfig(alpha=1.5))
        np.testing.assert_array_equal(mine, P[emb.members])  # every vector is a history item: its medoid
        medoid_of = ps.medoids(P.astype(np.float64), emb.labels)
        np.testing.assert_array_equal(medoid_of[emb.labels[emb.members]], emb.members)
    assert any(not np.allclose(a, b) for a, b in zip(vectors, centroid, strict=True))


@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path):
    options = RunOptions(profile="smoke", results_dir=tmp_path, show_progress=False)
    _, tally = run_suite(SUITE, options)
    assert tally.get("error", 0) == 0
    judged = write_suite_report(SUITE, "smoke", tmp_path)
    by_id = {c["id"]: c for c in judged}
    assert [c["id"] for c in judged] == [c.id for c in CLAIMS]
    for c in judged:
        if ".synthetic." in c["id"] or ".speed." in c["id"]:
            assert c["verdict"] != NOT_RUN, (c["id"], c["notes"])
        else:  # MovieLens is not in the smoke profile
            assert c["verdict"] == NOT_RUN
    # training runs are the units, users the level inside each run
    multi = by_id["pinnersage.synthetic.multi.last"]
    assert multi["n"] == PROFILES["smoke"].seeds and "training runs" in multi["notes"] and "elements" in multi["notes"]
    runs = pd.read_csv(tmp_path / "pinnersage" / "smoke" / "runs.csv")
    assert (runs[runs["metric"] == "synthetic"]["value"] == 1).all()
    assert (tmp_path / "pinnersage" / "smoke" / "figures" / "recall_vs_embeddings.png").stat().st_size > 0
