"""The norm suite: its claims can fail, its profiles build, its metrics are computed as stated."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from impl.norms import FixNorm, LayerNorm, ScaleNorm
from suites.data.translation import TranslationData, train_tokenizer
from suites.harness import Diverged
from suites.harness.core import RunContext, StepCost
from suites.harness.training import stop_reason_name
from suites.norm import SUITE, timing
from suites.norm import experiments as ex
from suites.norm.claims import FAIL_VAL_LOSS
from suites.norm.figures import paired_bootstrap
from suites.norm.profiles import PROFILES

DATA = os.environ.get("CLAIMBENCH_DATA")
SMOKE = PROFILES["smoke"]


def toy_data() -> TranslationData:
    """A tiny word-for-word "German-English" corpus, tokenised like Multi30k (no data directory)."""
    rng = np.random.default_rng(0)
    lexicon = {"ein": "a", "mann": "man", "hund": "dog", "rennt": "runs", "sitzt": "sits", "rot": "red"}
    pairs = []
    for _ in range(120):
        words = list(rng.choice(list(lexicon), size=rng.integers(3, 7)))
        pairs.append((" ".join(words), " ".join(lexicon[w] for w in words) + " ."))
    tok = train_tokenizer([s for p in pairs for s in p], 60)
    split = {"train": pairs[:80], "val": pairs[80:100], "test": pairs[100:]}
    ids = {k: [(tok.encode(a).ids, tok.encode(b).ids) for a, b in v] for k, v in split.items()}
    return TranslationData(tok, split, ids)


@pytest.fixture
def toy(monkeypatch):
    data = toy_data()
    monkeypatch.setattr(ex, "load", lambda ctx, task: data)
    return data


def cell_of(experiment: str, method: str, task: str | None = None):
    exp = next(e for e in SUITE.build(SMOKE) if e.name == experiment)
    return next(c for c in exp.cells("norm", 1) if c.method == method and (task is None or c.task == task))


def test_profiles_change_sizes_only_and_build():
    assert list(PROFILES) == ["smoke", "quick", "standard", "full"]
    for name, profile in PROFILES.items():
        exps = SUITE.build(profile)
        assert [e.name for e in exps] == ["table3", "nowarmup", "throughput"], name
        assert next(e for e in exps if e.name == "throughput").exclusive
        counts = {e.name: len(e.cells("norm", 1)) for e in exps}
        assert counts["table3"] == 4 * profile.seeds
        assert counts["nowarmup"] == 2 * 2 * profile.nowarmup_seeds
        assert counts["throughput"] == 2 * profile.timing_blocks
        for e in exps[:2]:  # trained experiments carry a step cost: their cap, timed per update
            assert isinstance(e.cost, StepCost) and e.cost.steps in (profile.steps, profile.nowarmup_steps)
    standard = PROFILES["standard"]
    assert standard.seeds >= 5 and standard.test_limit is None and standard.val_limit is None
    assert standard.nowarmup_steps >= 300  # at least an epoch of about 270 updates
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


def test_claims_declare_the_evidence_their_runs_need():
    evidence = {c.id: c.evidence for c in SUITE.claims}
    assert all(evidence[i] is None for i in evidence if i.startswith("norm.speed."))
    assert all(evidence[i] == "target" for i in evidence if i.startswith("norm.learn."))
    assert all(evidence[i] == "converged" for i in evidence if i.split(".")[1] in ("bleu", "grad", "ppl", "warmup"))
    assert not any(c.metric == "loss_falling" for c in SUITE.claims)
    (warm,) = {c.protocol for c in SUITE.claims if c.id.startswith("norm.warmup.")}
    assert str(FAIL_VAL_LOSS) in warm  # the failure criterion is stated in the claim, before any run


def test_failure_share_reads_divergence_and_a_stall_as_failed_runs(monkeypatch):
    def diverge(*args, **kwargs):
        raise Diverged("loss became nan at update 3", {"failed": 1.0, "step": 3})

    monkeypatch.setattr(ex, "train", diverge)
    cell = cell_of("nowarmup", "post_ln")
    ctx = RunContext(profile="smoke", settings=SMOKE)
    with pytest.raises(Diverged) as info:
        ex.run_nowarmup(cell, ctx)
    assert info.value.metrics == {"failed": 1.0, "step": 3, "bleu": 0.0}
    for val, failed in ((FAIL_VAL_LOSS + 0.1, 1.0), (FAIL_VAL_LOSS - 0.1, 0.0)):  # a stall fails, learning does not
        metrics = {"bleu": 5.0, "val_loss": val, "_grad_norms": [1.0]}
        monkeypatch.setattr(ex, "train", lambda *a, m=metrics, **k: (dict(m), []))
        assert ex.run_nowarmup(cell, ctx)["failed"] == failed


def test_gradient_statistics_by_hand():
    norms = [100.0] + [1.0] * 8 + [3.0]  # the first tenth is dropped
    stats = ex.grad_stats(norms)
    assert stats["grad_norm_mean"] == pytest.approx(11 / 9)
    assert stats["grad_norm_spikes"] == 1.0  # 3 > 2 x median 1
    assert stats["grad_norm_cv"] == pytest.approx(np.std([1.0] * 8 + [3.0]) / (11 / 9))


def test_bleu_is_scored_on_detokenised_text(toy):
    """translate() must hand sacrebleu words, not subword pieces: a model that outputs exactly the
    reference's pieces scores 100 against the raw reference text."""
    model = ex.make_model(SMOKE, toy, ex.TABLE3["pre_ln"], 1, "small")
    eos = toy.tokenizer.token_to_id("</s>")
    targets = [t for _, t in toy.ids["test"]]

    def oracle(src, bos, eos_id, max_len):
        out = torch.zeros(len(targets), max(map(len, targets)) + 1, dtype=torch.long)
        for i, t in enumerate(targets):
            out[i, : len(t) + 1] = torch.tensor(t + [eos])
        return out

    model.greedy = oracle
    hyps = ex.translate(model, toy, "test", "cpu", None, batch_size=len(targets))
    refs = [p[1] for p in toy.pairs["test"]]
    assert hyps == refs
    assert ex.bleu(hyps, refs) == pytest.approx(100.0)
    pieces = [" ".join(toy.tokenizer.id_to_token(i) for i in t) for t in targets]
    assert ex.bleu(pieces, refs) < 50  # what scoring the pieces would give


def test_paired_bootstrap_through_sacrebleu():
    from sacrebleu.metrics import BLEU

    refs = ["a man is riding a horse .", "two dogs play in the snow .", "a woman reads a book on the bus ."] * 5
    good = ["a man is riding a horse .", "two dogs play in snow .", "a woman reads a book on a bus ."] * 5
    bad = ["a man is on a horse .", "dogs in the snow .", "woman with a book ."] * 5
    delta, p = paired_bootstrap(bad, {"good": good}, refs, resamples=200)["good"]
    assert delta == pytest.approx(BLEU().corpus_score(good, [refs]).score - BLEU().corpus_score(bad, [refs]).score)
    assert p < 0.01
    delta, p = paired_bootstrap(good, {"bad": bad}, refs, resamples=200)["bad"]  # sacrebleu's p is two-sided
    assert delta < 0 and p < 0.01


def test_table3_setups_are_built_as_named():
    """Each Table 3 setup, as the experiment builds it: where the norm sits, which norm, FixNorm."""
    data = toy_data()
    methods = next(e for e in SUITE.build(SMOKE) if e.name == "table3").methods
    want = {  # name: (prenorm, norm class, fixnorm)
        "post_ln": (False, LayerNorm, False), "pre_ln": (True, LayerNorm, False),
        "pre_fix_ln": (True, LayerNorm, True), "pre_fix_sn": (True, ScaleNorm, True),
    }  # fmt: skip
    assert set(methods) == set(want)
    for name, (prenorm, norm_cls, fixnorm) in want.items():
        model = ex.make_model(SMOKE, data, methods[name], 2, "small")
        norms = [m for m in model.modules() if isinstance(m, LayerNorm | ScaleNorm | torch.nn.LayerNorm)]
        assert norms and all(type(m) is norm_cls for m in norms), name
        assert isinstance(model.embed, FixNorm) == fixnorm, name
        assert isinstance(model.enc_norm, torch.nn.Identity) != prenorm, name  # PreNorm's final norm
        assert model.encoder[0].att.prenorm == prenorm and model.decoder[-1].ff.prenorm == prenorm, name
        if norm_cls is ScaleNorm:
            assert all(float(m.g.detach()) == pytest.approx(SMOKE.d_model**0.5) for m in norms)  # g = sqrt(d)
        assert model.cfg.word_dropout == SMOKE.word_dropout > 0


def test_warmup_free_runs_start_at_their_full_rate_and_table3_runs_warm_up(toy):
    ctx = RunContext(profile="smoke", settings=SMOKE)
    free = ex.run_nowarmup(cell_of("nowarmup", "post_ln", "deep"), ctx)
    assert free["first_lr"] == SMOKE.nowarmup_lr and free["max_lr"] <= SMOKE.nowarmup_lr
    warm = ex.run_table3(cell_of("table3", "post_ln"), ctx)
    assert warm["first_lr"] == pytest.approx(SMOKE.peak_lr / SMOKE.warmup)  # update 1 of a linear warmup
    assert warm["max_lr"] == pytest.approx(SMOKE.peak_lr)  # the peak is reached at `warmup`
    for m in (free, warm):  # every trained run says how it stopped
        assert stop_reason_name(m["stop_reason"]) in ("converged", "cap")
        assert {"train_steps", "best_step", "last_improvement"} <= set(m)
    assert len(ex.decode_text(warm["test_hyps_utf8"])) == min(SMOKE.test_limit, len(toy.pairs["test"]))


def test_the_stopping_rule_stops_a_run_that_stopped_improving(toy, monkeypatch):
    ctx = RunContext(profile="smoke", settings=dataclasses.replace(SMOKE, steps=400, eval_every=4, patience=1))
    monkeypatch.setattr(ex, "mean_loss", lambda *a, **k: 3.0)  # flat validation loss: converged at check 2
    metrics = ex.run_table3(cell_of("table3", "pre_ln"), ctx)
    assert stop_reason_name(metrics["stop_reason"]) == "converged" and metrics["train_steps"] == 2


def test_a_warmup_free_run_stops_once_its_outcome_is_decided(toy, monkeypatch):
    settings = dataclasses.replace(SMOKE, nowarmup_steps=400, eval_every=4, patience=3)
    ctx = RunContext(profile="smoke", settings=settings)
    monkeypatch.setattr(ex, "mean_loss", lambda *a, **k: FAIL_VAL_LOSS - 0.5)  # it has trained: decided
    free = ex.run_nowarmup(cell_of("nowarmup", "pre_ln", "deep"), ctx)
    assert free["failed"] == 0.0 and free["stopped_decided"] == 1.0 and free["train_steps"] == 1
    assert stop_reason_name(free["stop_reason"]) == "converged"
    ctx = RunContext(profile="smoke", settings=dataclasses.replace(settings, steps=12))
    warm = ex.run_table3(cell_of("table3", "pre_ln"), ctx)  # Table 3 runs are not stopped by it
    assert warm["stopped_decided"] == 0.0 and warm["train_steps"] == 3


def test_step_cost_times_the_profiles_model():
    cell = cell_of("nowarmup", "pre_ln", "deep")
    seconds = timing.step_seconds(cell, RunContext(profile="smoke", settings=SMOKE))
    assert 0 < seconds < 5


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
    assert len(ex.decode_text(metrics["test_hyps_utf8"])) == PROFILES["smoke"].test_limit
    assert 0.0 <= metrics["bleu"] <= 100.0
    assert metrics["test_ppl_ls"] > 1.0
    assert {"val_loss@4", "steps_to_target", "stop_reason"} <= set(metrics)


def test_layer_timing_cell_reports_speed_and_page_faults():
    throughput = next(e for e in SUITE.build(PROFILES["smoke"]) if e.name == "throughput")
    cell = next(c for c in throughput.cells("norm", 1) if c.task == "norm_layer")
    ctx = RunContext(profile="smoke", settings=PROFILES["smoke"], data_dir=None)
    metrics = timing.run_throughput(cell, ctx)  # in a process of its own
    # speedup is LayerNorm's time over ScaleNorm's, i.e. ScaleNorm's throughput over LayerNorm's
    assert metrics["speedup"] == pytest.approx(metrics["scale_tokens_per_s"] / metrics["layer_tokens_per_s"])
    assert metrics["layer_faults_per_step"] >= 0 and metrics["scale_faults_per_step"] >= 0
    assert metrics["scale_cpp_kernel"] in (0.0, 1.0)  # which ScaleNorm kernel ran is recorded
