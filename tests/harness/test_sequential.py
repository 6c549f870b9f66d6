"""Group-sequential alpha spending: published boundaries, and a simulation under the null showing
that repeated looks keep the error rate where a naive repeated test does not (seconds on one core)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from suites.harness.sequential import (
    SequentialPlan,
    boundaries,
    first_crossing_share,
    nominal_levels,
    obrien_fleming_spending,
    pocock_spending,
)

ALPHA = 0.05
REPLICATES = 20_000


def monte_carlo_ceiling(alpha: float, replicates: int) -> float:
    """alpha plus three Monte Carlo standard errors: a correct procedure stays below it."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / replicates)


def test_four_equal_looks_match_the_published_boundaries():
    # Lan-DeMets O'Brien-Fleming type, one-sided alpha 0.025, four equally spaced looks
    # (Jennison & Turnbull 2000, Table 7.6; gsDesign sfLDOF): 4.333, 2.963, 2.359, 2.014
    assert boundaries([0.25, 0.5, 0.75, 1.0], 0.025) == pytest.approx([4.3326, 2.9631, 2.3590, 2.0141], abs=2e-3)


def test_the_first_look_spends_exactly_the_spending_function():
    for t in (0.1, 0.3, 0.5):
        c = boundaries([t], ALPHA)[0]
        assert sps.norm.sf(c) == pytest.approx(obrien_fleming_spending(t, ALPHA), rel=1e-9)
    assert nominal_levels([1.0], ALPHA) == pytest.approx([ALPHA])  # one look is the fixed-sample test


def test_levels_spend_no_more_than_alpha_in_total():
    levels = nominal_levels([0.2, 0.4, 0.6, 0.8, 1.0], ALPHA)
    assert all(a < b for a, b in zip(levels, levels[1:], strict=False))  # early looks are strict
    assert levels[-1] < ALPHA < sum(levels)  # the last look pays for the earlier ones, a little


def test_a_look_beyond_the_maximum_cannot_decide():
    plan = SequentialPlan(max_units=10)
    assert plan.level([5, 10]) > 0 and plan.exhausted([5, 10])
    assert plan.level([5, 10, 12]) == 0.0  # all alpha spent at t = 1
    with pytest.raises(ValueError, match="looks must add units"):
        plan.level([6, 6])


def test_calibrated_t_levels_spend_like_the_z_levels_at_large_n():
    looks = (25, 50, 75, 100)
    plan = SequentialPlan(max_units=100)
    calibrated = [plan.level(looks[: k + 1], test="ttest") for k in range(1, 4)]
    assert calibrated == pytest.approx(nominal_levels([0.25, 0.5, 0.75, 1.0])[1:], rel=0.1)


def test_pocock_spends_earlier():
    assert pocock_spending(0.2) > obrien_fleming_spending(0.2)
    assert pocock_spending(1.0) == pytest.approx(ALPHA) == obrien_fleming_spending(1.0)


@pytest.mark.parametrize(
    ("looks", "spending"),
    [
        ((4, 8, 12, 16, 20), obrien_fleming_spending),
        ((3, 5, 9, 14, 20), obrien_fleming_spending),  # looks wherever the budget put them
        ((4, 8, 12, 16, 20), pocock_spending),
    ],
)
def test_repeated_looks_keep_the_error_rate_under_the_null(looks, spending):
    """Units drawn at the claim's boundary (the worst case of the null): the share of sequences that
    reach a good verdict at any look stays at alpha, while judging every look at alpha exceeds it."""
    values = np.random.default_rng(2024).standard_normal((REPLICATES, looks[-1]))
    plan = SequentialPlan(max_units=looks[-1], spending=spending)
    levels = [plan.level(looks[: k + 1], test="ttest") for k in range(len(looks))]
    ceiling = monte_carlo_ceiling(ALPHA, REPLICATES)
    sequential = first_crossing_share(values, looks, levels)
    naive = first_crossing_share(values, looks, [ALPHA] * len(looks))
    assert sequential <= ceiling, (sequential, levels)
    assert sequential > ALPHA - 0.015  # and it is not wasting the error rate (it spends alpha)
    assert naive > ceiling, naive  # the check can fail: repeated looks at alpha inflate it


def test_it_still_decides_real_effects():
    """Under an effect of 0.8 sd the procedure decides almost as often as a single final test."""
    values = np.random.default_rng(7).standard_normal((5_000, 20)) + 0.8
    looks = (4, 8, 12, 16, 20)
    plan = SequentialPlan(max_units=20)
    sequential = first_crossing_share(values, looks, [plan.level(looks[: k + 1], test="ttest") for k in range(5)])
    final_only = first_crossing_share(values, (20,), (ALPHA,))
    assert sequential > final_only - 0.03 and sequential > 0.9


# --------------------------------------------------------------------------------------------
# the driver, on a suite of microsecond cells


def _run_noisy(cell, ctx):
    noise = np.random.default_rng([cell.seed, cell.method_kwargs["id"]]).normal(0, 0.4)
    return {"score": float(cell.method_kwargs["bonus"] + noise)}


def _noisy_suite():
    from suites.harness.core import Claim, Experiment, Suite, family

    base = Claim(id="noisy.vs.base", statement="", source="T", experiment="est", metric="score",
                 treatment={"method": "better"}, baseline={"method": "plain"}, test="ttest", direction="greater",
                 paper_value=1.0)  # fmt: skip
    claims = family(base, [dict(id="noisy.vs.better"), dict(id="noisy.vs.copy", treatment={"method": "copy"})])
    methods = {"plain": {"id": 0, "bonus": 0.0}, "better": {"id": 1, "bonus": 1.0}, "copy": {"id": 2, "bonus": 0.0}}

    def build(settings):
        return [Experiment(name="est", run=_run_noisy, tasks={"t": {}}, methods=methods, seeds=settings["seeds"])]

    return Suite(name="noisy", title="noisy", claims=claims, profiles={"smoke": {"seeds": 3}}, build=build)


def _options(tmp_path):
    from suites.harness.runner import RunOptions

    return RunOptions(profile="smoke", results_dir=tmp_path, show_progress=False, jobs=1, threads=1)


def test_until_decided_adds_seeds_and_decides_at_the_spent_level(tmp_path):
    from suites.harness.judge import GOOD, INCONCLUSIVE, NOT_REPRODUCED
    from suites.harness.sequential import LOOKS_FILE, run_until_decided
    from suites.harness.store import read_runs

    suite = _noisy_suite()
    result = run_until_decided(suite, _options(tmp_path), budget_s=60)
    claims = {c["id"]: c for c in result["claims"]}
    better, copy = claims["noisy.vs.better"], claims["noisy.vs.copy"]
    assert better["verdict"] in GOOD and better["looks"] >= 2  # the planned 3 seeds could not decide it
    assert copy["verdict"] in (INCONCLUSIVE, NOT_REPRODUCED)  # no effect: never a good verdict
    state = json.loads((tmp_path / "noisy" / "smoke" / LOOKS_FILE).read_text())
    plan = state["claims"]["noisy.vs.better"]
    assert plan["max_units"] == 12 and plan["looks"][0] == 3
    assert better["decision_level"] == pytest.approx(SequentialPlan(12).level(plan["looks"], "ttest"))
    assert better["ci_level"] == pytest.approx(1 - 2 * better["decision_level"] / 2)  # Bonferroni in the family of 2
    seeds = {r["seed"] for r in read_runs(tmp_path / "noisy" / "smoke" / "runs.csv")}
    assert len(seeds) == result["seeds"]["est"] > 3

    again = run_until_decided(suite, _options(tmp_path), budget_s=60)  # resumes: nothing rerun, nothing revisited
    assert {c["id"]: c["verdict"] for c in again["claims"]} == {i: c["verdict"] for i, c in claims.items()}
    assert again["seeds"] == result["seeds"]


def test_until_decided_stops_at_the_budget(tmp_path):
    from suites.harness.sequential import run_until_decided

    result = run_until_decided(_noisy_suite(), _options(tmp_path), budget_s=0)
    assert result["stopped"] == "budget spent" and result["seeds"]["est"] == 3
    assert all(c["looks"] == 1 for c in result["claims"])
