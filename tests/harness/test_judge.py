"""Verdict logic and sample selection, on hand-made rows and results."""

from __future__ import annotations

import json
import math

import pytest

from suites.harness.core import Claim
from suites.harness.judge import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_RUN,
    PARTIAL,
    REPRODUCED,
    collect,
    decide,
    frame_of,
    judge,
)  # fmt: skip
from suites.harness.stats import TestResult


def claim(**kw) -> Claim:
    base = dict(id="x.y", statement="s", source="T1", experiment="e", metric="acc",
                treatment={"method": "a"}, baseline={"method": "b"})  # fmt: skip
    return Claim(**{**base, **kw})


def result(effect, low, high, test="wilcoxon") -> TestResult:
    return TestResult(test=test, effect=effect, ci_low=low, ci_high=high, p_value=math.nan, n=5)


def row(method, task, seed, value, metric="acc", status="ok", **params) -> dict:
    return dict(suite="x", experiment="e", task=task, method=method, params=json.dumps(params), seed=seed,
                metric=metric, value=value, status=status, note="")  # fmt: skip


@pytest.mark.parametrize(
    ("direction", "margin", "effect", "p", "verdict"),
    [
        ("greater", 0.0, 0.5, 0.01, REPRODUCED),
        ("greater", 1.0, 0.5, 0.01, PARTIAL),  # significant but smaller than the claimed size
        ("greater", 0.0, 0.5, 0.30, PARTIAL),  # right direction, not significant
        ("greater", 0.0, -0.5, 0.01, NOT_REPRODUCED),  # significant the other way
        ("greater", 0.0, -0.5, 0.30, INCONCLUSIVE),
        ("less", 0.0, -0.5, 0.01, REPRODUCED),
        ("less", 0.0, 0.5, 0.01, NOT_REPRODUCED),
    ],
)
def test_directional_verdicts(direction, margin, effect, p, verdict):
    assert decide(claim(direction=direction, margin=margin), result(effect, effect - 0.1, effect + 0.1), p) == verdict


def test_equivalence_and_noninferiority_verdicts():
    eq = claim(direction="equivalent", margin=0.02, effect="ratio", test="tost")
    assert decide(eq, result(1.0, 0.99, 1.01), 0.001) == REPRODUCED
    assert decide(eq, result(1.3, 1.25, 1.35), 0.9) == NOT_REPRODUCED  # interval entirely outside 1 +- 2%
    assert decide(eq, result(1.01, 0.95, 1.07), 0.3) == INCONCLUSIVE
    ni = claim(direction="noninferior", margin=1.0, test="noninferiority")
    assert decide(ni, result(-0.2, -0.5, 0.1), 0.01) == REPRODUCED
    assert decide(ni, result(-3.0, -4.0, -2.0), 0.99) == NOT_REPRODUCED
    assert decide(ni, result(-1.0, -3.0, 1.0), 0.4) == INCONCLUSIVE


def test_target_verdicts():
    at_least = claim(direction="at_least", paper_value=91.0, margin=1.0, baseline=None, test="one_sample")
    assert decide(at_least, result(90.5, 89.0, 92.0), 0.5) == REPRODUCED  # within the 1-point margin
    assert decide(at_least, result(85.0, 84.0, 86.0), 0.001) == NOT_REPRODUCED
    assert decide(at_least, result(88.0, 85.0, 91.0), 0.2) == PARTIAL
    match = claim(direction="match", paper_value=18_874_368, margin=0.0, baseline=None, test="exact")
    assert (
        decide(match, result(18_874_368, 18_874_368, 18_874_368, test="exact (deterministic)"), math.nan) == REPRODUCED
    )
    assert (
        decide(match, result(18_874_369, 18_874_369, 18_874_369, test="exact (deterministic)"), math.nan)
        == NOT_REPRODUCED
    )


def test_collect_pairs_on_task_and_seed_and_averages_the_rest():
    rows = [row("a", "t1", 1, 1.0, r=1), row("a", "t1", 1, 3.0, r=2), row("b", "t1", 1, 1.0),
            row("a", "t2", 1, 5.0, r=1), row("b", "t2", 1, 4.0), row("b", "t3", 1, 9.0)]  # fmt: skip
    data = collect(claim(), frame_of(rows))
    assert list(data.treatment.index) == [("t1", 1), ("t2", 1)]  # t3 has no treatment: unpaired, dropped
    assert list(data.treatment) == [2.0, 5.0] and list(data.baseline) == [1.0, 4.0]
    only_r2 = collect(claim(treatment={"method": "a", "r": 2}), frame_of(rows))
    assert list(only_r2.treatment) == [3.0]


def test_judge_holm_adjusts_and_names_why_a_claim_did_not_run():
    rows = [row("a", f"t{i}", s, 1.0 + 0.1 * i + s) for i in range(4) for s in range(2)]
    rows += [row("b", f"t{i}", s, 0.5 + 0.1 * i + s + 0.01 * ((i + s) % 3)) for i in range(4) for s in range(2)]
    rows += [row("a", "t9", 0, math.nan, metric="not_run", status="not_run") | {"experiment": "other",
             "note": "dataset file uea/X is missing"}]  # fmt: skip
    claims = [claim(id="c1", test="ttest"), claim(id="c2", test="ttest", metric="acc"),
              claim(id="c3", experiment="other", metric="acc")]  # fmt: skip
    judged = {c["id"]: c for c in judge(claims, rows)}
    assert judged["c1"]["verdict"] == REPRODUCED
    assert judged["c1"]["p_value"] == pytest.approx(min(1.0, 2 * judged["c1"]["p_raw"]))  # Holm, 2 p-values
    assert judged["c3"]["verdict"] == NOT_RUN and "uea/X is missing" in judged["c3"]["notes"]


def test_claim_validation():
    with pytest.raises(ValueError, match="direction"):
        claim(direction="bigger")
    with pytest.raises(ValueError, match="target"):
        claim(direction="match", baseline=None)
