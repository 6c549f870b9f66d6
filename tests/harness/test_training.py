"""The one stopping rule and training record every suite uses."""

from __future__ import annotations

import pytest

from suites.harness.training import STOP_REASONS, EarlyStopping, TrainingRecord, meets, stop_reason_name


def run(rule: EarlyStopping, values) -> list[bool]:
    return [rule.update(v) for v in values]


def test_patience_counts_checks_since_the_last_improvement_beyond_min_delta():
    rule = EarlyStopping(patience=2, min_delta=0.1)
    # 1.0 sets the best; 0.95 improves the best but by less than min_delta (so patience runs on);
    # 0.93 likewise: two checks without a real improvement stop it.
    assert run(rule, [1.0, 0.95, 0.93]) == [False, False, True]
    record = rule.record()
    assert record == TrainingRecord("converged", train_steps=3, best_step=3, last_improvement=1)


def test_max_mode_and_the_cap():
    rule = EarlyStopping(patience=3, mode="max", cap=4)
    assert run(rule, [0.1, 0.2, 0.3, 0.4]) == [False, False, False, True]
    assert rule.record().stop_reason == "cap" and rule.best == 0.4 and rule.best_step == 4
    rule = EarlyStopping(patience=1, mode="max", cap=2)
    assert run(rule, [0.5, 0.4]) == [False, True]
    assert rule.record().stop_reason == "converged"  # the rule fired at the cap's check: converged


def test_improved_marks_the_model_to_keep():
    rule = EarlyStopping(patience=5)
    marks = []
    for v in [3.0, 2.0, 2.5, 1.0]:
        rule.update(v)
        marks.append(rule.improved)
    assert marks == [True, True, False, True]


def test_records_round_trip_through_metrics():
    for reason in STOP_REASONS:
        m = TrainingRecord(reason, 10, 7, 6).metrics()
        assert stop_reason_name(m["stop_reason"]) == reason
    assert stop_reason_name(99.0) == "unknown" and stop_reason_name(float("nan")) == "unknown"
    with pytest.raises(ValueError, match="stop_reason"):
        TrainingRecord("stopped", 1, 1, 1)


def test_fixed_budget_is_converged_only_at_the_papers_budget():
    assert TrainingRecord.fixed_budget(100, rule_steps=100).stop_reason == "converged"
    assert TrainingRecord.fixed_budget(60, rule_steps=100).stop_reason == "budget"


def test_meets():
    converged = TrainingRecord("converged", 3, 2, 2).metrics()
    assert meets("converged", converged, "ok") == (True, "converged")
    assert meets("converged", TrainingRecord("cap", 3, 3, 3).metrics(), "ok") == (False, "cap")
    assert meets("converged", {}, "ok") == (False, "no training record")
    assert meets("converged", {}, "diverged") == (True, "diverged")
    assert meets("target", {"reached_target": 1.0}, "ok") == (True, "target reached")
    assert meets("target", {"reached_target": 0.0}, "ok") == (False, "target not reached")
