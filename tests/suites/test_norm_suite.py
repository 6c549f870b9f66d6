"""The norm suite: its claims can fail, its profiles build, its metrics are computed as stated."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from suites.harness import Diverged
from suites.harness.core import RunContext
from suites.harness.judge import judge
from suites.norm import SUITE
from suites.norm import experiments as ex
from suites.norm.figures import bleu_from_stats, paired_bootstrap
from suites.norm.profiles import PROFILES

DATA = os.environ.get("CLAIMBENCH_DATA")


def test_profiles_change_sizes_only_and_build():
    for name, profile in PROFILES.items():
        exps = SUITE.build(profile)
        assert [e.name for e in exps] == ["table3", "nowarmup", "throughput"], name
        assert next(e for e in exps if e.name == "throughput").exclusive
        counts = {e.name: len(e.cells("norm", 1)) for e in exps}
        assert counts["table3"] == 4 * profile.seeds
        assert counts["nowarmup"] == 2 * 2 * profile.seeds
        assert counts["throughput"] == 2 * profile.timing_blocks
    assert PROFILES["full"].d_model == 512 and PROFILES["full"].layers == 6 and PROFILES["full"].n_heads == 8
    assert PROFILES["full"].nowarmup_deep == 6 and PROFILES["full"].nowarmup_lr == 3e-4


def test_every_claim_points_at_rows_the_experiments_make():
    exps = {e.name: e for e in SUITE.build(PROFILES["smoke"])}
    for claim in SUITE.claims:
        exp = exps[claim.experiment]
        for side in (claim.treatment, claim.baseline or {}):
            methods = side.get("method", [])
            for m in methods if isinstance(methods, list) else [methods]:
                assert m in exp.methods, (claim.id, m)
            if "task" in side:
                assert side["task"] in exp.tasks, claim.id
    families = {c.family_name for c in SUITE.claims}
    assert {"norm.speed", "norm.warmup", "norm.learn", "norm.bleu", "norm.grad", "norm.ppl"} <= families


def synthetic_rows(claim, effect_side: str, n: int = 8) -> list[dict]:
    """Rows for one claim with the effect on the `effect_side` ("null" or "claimed") of its region."""
    rng = np.random.default_rng(0)
    task = claim.treatment.get("task", "de-en")
    ratio = claim.effect == "ratio"
    region = claim.claimed_region()
    if effect_side == "claimed":
        low, high = region
        target = (
            (low + high) / 2
            if np.isfinite(low) and np.isfinite(high)
            else (low * 1.5 if np.isfinite(low) else high * 0.5)
        )
        if np.isfinite(low) and not np.isfinite(high):
            target = low + (abs(low) + 1.0) * (0.5 if not ratio else 0.3)
        if not np.isfinite(low) and np.isfinite(high):
            target = high - (abs(high) + 1.0) * (0.5 if not ratio else 0.3) if not ratio else high * 0.7
    else:  # well outside the claimed region
        low, high = region
        target = (
            (low - 1.0 if not ratio else low * 0.7) if np.isfinite(low) else (high + 1.0 if not ratio else high * 1.4)
        )
    rows = []
    for seed in range(n):
        base_value = 2.0 + rng.normal(0, 0.01)
        noise = rng.normal(0, 0.01)
        treated = base_value * target * (1 + noise) if ratio else base_value + target + noise
        if claim.baseline is None:
            treated = target * (1 + noise) if ratio else target + noise
        pairs = [(claim.treatment, treated)] + ([(claim.baseline, base_value)] if claim.baseline else [])
        for side, value in pairs:
            method = side["method"][0] if isinstance(side["method"], list) else side["method"]
            rows.append(dict(
                suite="norm", experiment=claim.experiment, task=side.get("task", task), method=method,
                params="{}", seed=seed, metric=claim.metric, value=float(value), status="ok", note="",
                wall_s=0.0, device="cpu",
            ))  # fmt: skip
    return rows


@pytest.mark.parametrize("claim", [c for c in SUITE.claims if c.direction != "measurement"], ids=lambda c: c.id)
def test_every_claim_can_come_out_not_reproduced_and_reproduced(claim):
    bad = judge([claim], synthetic_rows(claim, "null"))[0]
    assert bad["verdict"] == "not reproduced", bad
    good = judge([claim], synthetic_rows(claim, "claimed"))[0]
    assert good["verdict"] == "reproduced", good


def test_failure_share_reads_divergence_as_a_failed_run(monkeypatch):
    def diverge(*args, **kwargs):
        raise Diverged("loss became nan at update 3", {"failed": 1.0, "step": 3})

    monkeypatch.setattr(ex, "train", diverge)
    cell = SUITE.build(PROFILES["smoke"])[1].cells("norm", 1)[0]
    ctx = RunContext(profile="smoke", settings=PROFILES["smoke"])
    with pytest.raises(Diverged) as info:
        ex.run_nowarmup(cell, ctx)
    assert info.value.metrics == {"failed": 1.0, "step": 3, "bleu": 0.0}
    # a run that trains but learns nothing has failed too
    monkeypatch.setattr(ex, "train", lambda *a, **k: ({"bleu": 0.4, "val_loss": 6.0, "final_train_loss": 6.1,
                                                     "loss_falling": 0.0, "grad_norm_mean": 1.0}, None))  # fmt: skip
    assert ex.run_nowarmup(cell, ctx)["failed"] == 1.0


def test_gradient_statistics_and_still_falling_by_hand():
    norms = [100.0] + [1.0] * 8 + [3.0]  # the first tenth is dropped
    stats = ex.grad_stats(norms)
    assert stats["grad_norm_mean"] == pytest.approx(11 / 9)
    assert stats["grad_norm_spikes"] == 1.0  # 3 > 2 x median 1
    assert stats["grad_norm_cv"] == pytest.approx(np.std([1.0] * 8 + [3.0]) / (11 / 9))
    assert ex.still_falling([5.0] * 16 + [4.5, 4.5, 4.0, 4.0]) == 1.0  # last tenth 1% below the tenth before
    assert ex.still_falling([5.0] * 10 + [4.0] * 10) == 0.0  # fell, then flat
    assert ex.still_falling([5.0] * 20) == 0.0


def test_bleu_statistics_and_paired_bootstrap_against_sacrebleu():
    from sacrebleu.metrics import BLEU

    refs = ["a man is riding a horse .", "two dogs play in the snow .", "a woman reads a book on the bus ."] * 5
    good = ["a man is riding a horse .", "two dogs play in snow .", "a woman reads a book on a bus ."] * 5
    bad = ["a man is on a horse .", "dogs in the snow .", "woman with a book ."] * 5
    score, stats = ex.bleu(good, refs)
    assert score == pytest.approx(BLEU().corpus_score(good, [refs]).score)
    assert stats.shape == (15, 10)
    assert bleu_from_stats(stats.sum(0)) == pytest.approx(score)
    _, bad_stats = ex.bleu(bad, refs)
    delta, p = paired_bootstrap(bad_stats, stats, resamples=200)
    assert delta == pytest.approx(score - BLEU().corpus_score(bad, [refs]).score)
    assert p < 0.01
    assert paired_bootstrap(stats, stats, resamples=200)[1] == 1.0  # a system never beats itself


def test_smoke_profile_is_small():
    smoke, quick = PROFILES["smoke"], PROFILES["quick"]
    for field in ("steps", "d_model", "test_limit", "nowarmup_steps", "timing_rows"):
        assert getattr(smoke, field) < getattr(quick, field), field
    assert set(f.name for f in dataclasses.fields(smoke)) >= {"seeds", "threads"}


@pytest.mark.slow
@pytest.mark.skipif(not DATA, reason="CLAIMBENCH_DATA is not set")
def test_one_training_cell_on_real_data():
    cell = SUITE.build(PROFILES["smoke"])[0].cells("norm", 1)[0]
    ctx = RunContext(profile="smoke", settings=PROFILES["smoke"], data_dir=DATA)
    metrics = ex.run_table3(cell, ctx)
    assert metrics["bleu_stats"].shape == (PROFILES["smoke"].test_limit, 10)
    assert 0.0 <= metrics["bleu"] <= 100.0
    assert metrics["test_ppl_ls"] > 1.0
    assert len(metrics["grad_norm_trace"]) == PROFILES["smoke"].steps
    assert {"val_loss@4", "val_loss@8", "steps_to_target", "loss_falling"} <= set(metrics)


def test_layer_timing_cell_reports_speed_and_page_faults():
    throughput = next(e for e in SUITE.build(PROFILES["smoke"]) if e.name == "throughput")
    cell = next(c for c in throughput.cells("norm", 1) if c.task == "norm_layer")
    ctx = RunContext(profile="smoke", settings=PROFILES["smoke"], data_dir=None)
    metrics = ex.run_throughput(cell, ctx)
    # speedup is LayerNorm's time over ScaleNorm's, i.e. ScaleNorm's throughput over LayerNorm's
    assert metrics["speedup"] == pytest.approx(metrics["scale_tokens_per_s"] / metrics["layer_tokens_per_s"])
    assert metrics["layer_faults_per_step"] >= 0 and metrics["scale_faults_per_step"] >= 0
