"""One generic test drives every method of every implemented suite (benchopt style).

Each method gets one smoke-profile cell (its first task and seed) through the runner, which must
produce finite metrics or an honest `not_run` naming missing data; never an error.
"""

from __future__ import annotations

import pytest

from suites.harness.registry import get_suite, implemented
from suites.harness.runner import RunOptions, run_cell


def method_cells():
    for name in implemented():
        suite = get_suite(name)
        for experiment in suite.experiments("smoke"):
            cells = experiment.cells(name, base_seed=0)
            for method in experiment.methods:
                first = next(c for c in cells if c.method == method)
                yield pytest.param(suite, experiment, first, id=f"{name}:{experiment.name}:{method}")


@pytest.mark.slow
@pytest.mark.parametrize(("suite", "experiment", "cell"), list(method_cells()))
def test_every_method_runs_on_smoke(suite, experiment, cell):
    rows = run_cell(suite, experiment, cell, RunOptions(profile="smoke", show_progress=False))
    assert rows, "a cell must record at least one row"
    statuses = {r["status"] for r in rows}
    assert statuses <= {"ok", "diverged", "not_run"}, rows[0]["note"]
    for row in rows:
        assert isinstance(row["value"], float)
        if row["status"] == "ok":
            assert row["value"] == row["value"], f"{row['metric']} is NaN"


@pytest.mark.parametrize("name", implemented())
def test_claims_reference_experiments_that_exist(name):
    """Every claim's experiment is built at the paper-scale profiles (standard, full); a smaller
    profile may leave an experiment out, and its claims then say `not run` with that reason."""
    suite = get_suite(name)
    for profile in [p for p in ("standard", "full") if p in suite.profiles]:
        experiments = {e.name for e in suite.experiments(profile)}
        for claim in suite.claims:
            assert claim.experiment in experiments, f"{claim.id}: no experiment {claim.experiment!r} in {profile}"


@pytest.mark.parametrize("name", implemented())
def test_every_claim_has_a_failure_region(name):
    """Every verdict can come out "not reproduced": the claimed region leaves some effects out."""
    from suites.harness.judge import TESTS

    suite = get_suite(name)
    for claim in suite.claims:
        assert claim.test in TESTS, f"{claim.id}: test {claim.test!r} is not registered"
        if claim.direction == "measurement":
            continue
        low, high = claim.claimed_region()
        assert low > float("-inf") or high < float("inf"), f"{claim.id}: its claimed region is every effect"


def every_claim():
    for name in implemented():
        for claim in get_suite(name).claims:
            if claim.direction != "measurement":
                yield pytest.param(claim, id=claim.id)


@pytest.mark.parametrize("claim", list(every_claim()))
def test_every_claim_can_come_out_reproduced_and_not_reproduced(claim):
    """Rows built for the purpose (suites.harness.kit): an effect inside the claimed region is
    reproduced, one on its far side is not, and for a claim about trained models the same rows on
    runs that stopped at a cap are held back as inconclusive."""
    from suites.harness import kit
    from suites.harness.judge import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, judge

    def verdict(effect, stop_reason="converged"):
        rows, units = kit.rows_for(claim, effect, stop_reason)
        (entry,) = judge([claim], rows, units=units)
        return entry

    inside, outside = verdict(kit.effect_inside(claim)), verdict(kit.effect_outside(claim))
    assert inside["verdict"] == REPRODUCED, (kit.effect_inside(claim), inside["measured"], inside["notes"])
    assert outside["verdict"] == NOT_REPRODUCED, (kit.effect_outside(claim), outside["measured"], outside["notes"])
    if claim.evidence is not None:
        assert verdict(kit.effect_inside(claim), "cap")["verdict"] == INCONCLUSIVE


@pytest.mark.parametrize("name", implemented())
def test_every_experiment_travels_to_a_worker_process(name):
    """Executors pickle each experiment to their workers: every profile's experiments must survive it."""
    import pickle

    suite = get_suite(name)
    for profile in suite.profiles:
        for experiment in suite.experiments(profile):
            copy = pickle.loads(pickle.dumps(experiment))
            assert copy.name == experiment.name and copy.run is experiment.run and copy.cost is None
