"""Profiles of the norm suite: sizes only; every profile runs the same code paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NormProfile:
    seeds: int  # training runs per configuration (the independent unit of the training claims)
    threads: int  # torch threads per cell
    n_train: int | None  # training pairs used (None: all 29,000); the BPE vocabulary is learnt on these
    vocab_size: int  # joint German-English BPE vocabulary
    d_model: int  # model width d
    n_heads: int  # attention heads
    d_ff: int  # feed-forward width
    layers: int  # encoder and decoder layers of the Table 3 models
    dropout: float  # dropout everywhere (paper: 0.3)
    word_dropout: float  # share of input tokens replaced by <unk> in training (paper: 0.1)
    label_smoothing: float  # paper: 0.1
    init: str  # attention init of the Table 3 models: small (the paper's SmallInit) or xavier
    max_tokens: int  # target tokens per batch (paper: 4096)
    steps: int  # safety cap on Adam updates per Table 3 run (a run stopped by it records `cap`)
    warmup: int  # InvSqrtDecay warmup updates
    peak_lr: float  # InvSqrtDecay learning rate at the end of warmup
    clip: float  # global gradient-norm clipping (paper: 1.0)
    eval_every: int  # updates between validation losses (one check of the stopping rule)
    patience: int  # checks without improvement by more than min_delta before a run has converged
    min_delta: float  # validation NLL per token an improvement must exceed (the same for every method)
    val_limit: int | None  # validation pairs used for the validation loss (None: all 1,014)
    target_val_loss: float  # validation NLL per token that "learns faster" counts updates to (fixed in advance)
    test_limit: int | None  # test pairs translated for BLEU (None: all 1,000)
    nowarmup_shallow: int  # layers (encoder and decoder) of the shallow warmup-free comparison (paper: 4)
    nowarmup_deep: int  # layers of the deep warmup-free comparison (paper: 5 and 6 fail for PostNorm)
    nowarmup_seeds: int  # seeds per warmup-free configuration (each run is a unit of the failure share)
    nowarmup_steps: int  # safety cap on updates per warmup-free run (same stopping rule as Table 3)
    nowarmup_lr: float  # the constant learning rate of NoWarmup (decayed x0.8 on validation plateaus)
    nowarmup_init: str  # attention init of the warmup-free runs
    timing_rows: int  # vectors per norm-layer timing (timing_rows x timing_d)
    timing_d: int  # vector size of the norm-layer timing
    timing_reps: int  # repetitions per timed measurement
    timing_rounds: int  # LayerNorm/ScaleNorm alternations per timing block
    timing_blocks: int  # timing cells per task, each its own process (the unit of the throughput claims)


# fmt: off
PROFILES = {
    "smoke": NormProfile(
        seeds=2, threads=1, n_train=300, vocab_size=300, d_model=16, n_heads=2, d_ff=32, layers=1,
        dropout=0.1, word_dropout=0.1, label_smoothing=0.1, init="small", max_tokens=300, steps=8, warmup=4,
        peak_lr=1e-3, clip=1.0, eval_every=4, patience=1, min_delta=0.0, val_limit=16, target_val_loss=6.0,
        test_limit=16, nowarmup_shallow=1, nowarmup_deep=2, nowarmup_seeds=2, nowarmup_steps=4, nowarmup_lr=1e-3, nowarmup_init="small",
        timing_rows=256, timing_d=64, timing_reps=2, timing_rounds=2, timing_blocks=2,
    ),
    # This CPU: d=64, 2+2 layers, capped at 160 updates of about 600 target tokens (about a third of an
    # epoch), so every run stops at the cap (`cap`) and the claims about trained models come out
    # inconclusive here: Table 3 (norm.bleu.*), gradients (norm.grad.*), perplexity (norm.ppl.*) and the
    # no-warmup claims (norm.warmup.*) are left to `standard`; norm.learn.* is decided here only if every
    # run reaches target_val_loss within the cap. Only the timing claims (norm.speed.*) are decided at quick.
    # Before this change quick took 4 min 25 s wall with --jobs 2 (measured). Timing cells now each run in
    # a process of their own, which cost 10-17 s a cell at smoke under load (measured), so the warmup-free
    # runs, whose claims are left to standard, drop from 3 seeds to 2 to pay for it.
    "quick": NormProfile(
        seeds=3, threads=1, n_train=None, vocab_size=2000, d_model=64, n_heads=4, d_ff=128, layers=2,
        dropout=0.1, word_dropout=0.1, label_smoothing=0.1, init="small", max_tokens=600, steps=160, warmup=50,
        peak_lr=2e-3, clip=1.0, eval_every=40, patience=3, min_delta=0.01, val_limit=200, target_val_loss=5.0,
        test_limit=200, nowarmup_shallow=2, nowarmup_deep=6, nowarmup_seeds=2, nowarmup_steps=80, nowarmup_lr=1e-3,
        nowarmup_init="small", timing_rows=2048, timing_d=512, timing_reps=10, timing_rounds=5, timing_blocks=4,
    ),
    # CPU, a reduced, named size: "d64-3L" = d=64, 3+3 layers, 4 heads, ffn 256, a 4,000-piece joint BPE,
    # all 29,000 training pairs, batches of about 1,500 target tokens (about 270 updates an epoch), the
    # paper's recipe otherwise (label smoothing 0.1, word dropout 0.1, SmallInit, clip 1.0, PreNorm's
    # final norm, FixNorm, ScaleNorm g = sqrt(d)); dropout 0.1, not 0.3, for a model this small.
    # Why not d=128, 3+3, ffn 512 (issue 24's trial size): 1,500 updates of 2,000 tokens took 9-13 min a
    # run on 2 threads and were still improving; 20 Table 3 runs to convergence plus the warmup-free
    # runs would take about 5-6 h with --jobs 2, against the 2 h budget.
    # Every check is more than an epoch, so a warmup-free run is judged on at least an epoch of training.
    # Measured (under load, 1 thread, the suite's own update on synthetic batches of the profile's shape):
    # at load average 4-5 on 2 cores, d64-3L 0.41 s/update, d=64 2+2 0.33 s, d=128 3+3 ffn 512 at 2,000
    # tokens 1.2-1.5 s (the idle figure for that size is about 0.36-0.52 s on 2 threads); at load
    # average 6.5-7, StepCost.time_step of this profile: Table 3 0.54-0.57 s (ScaleNorm 0.84), warmup-free
    # 3+3 0.68-0.70 s, 6+6 1.32-1.33 s. Load costs about 2-3x, so an idle machine should give about
    # 0.2 s/update for d64-3L and 0.45 s for 6+6 (estimated, not measured).
    # Estimated wall time on an idle machine: a Table 3 run stops by its rule after about 8-10 epochs
    # (2,200-2,700 updates, patience included), about 9 min with evaluation and greedy decoding of the
    # 1,000 test sentences; 20 runs = about 185 CPU-min. Warmup-free runs (3 seeds x 2 methods x 2 depths)
    # stop when their outcome is decided: validation NLL at or below claims.FAIL_VAL_LOSS (trains; expected
    # at the first or second check, 300-600 updates), patience (a stall: 900 updates at the earliest), or
    # divergence; about 40 CPU-min. Timing: 10 cells, about 4 min. Total about 230 CPU-min, i.e. about
    # 1 h 55 min wall with --jobs 2: at the limit; check it with measured step times on an idle machine first.
    # The deep warmup-free depth (6) is provisional: `python -m suites.norm.pilot --profile standard`
    # (PostNorm vs PreNorm without warmup at depths 2-6) decides it before the standard run; it has only
    # been run at the smoke size here (it works; its result is not yet known).
    "standard": NormProfile(
        seeds=5,  # Table 3's four setups x 5 seeds (the issue's minimum; the unit of every training claim)
        threads=1,  # one thread per cell, two cells at a time with --jobs 2 on this 2-core machine
        n_train=None,  # all 29,000 pairs: a converged model on the whole task, comparable to references
        vocab_size=4000,  # joint BPE; 4,000 rather than 6,000 keeps the output layer (the largest matmul) small
        d_model=64, n_heads=4, d_ff=256, layers=3,  # d64-3L (see above)
        dropout=0.1,  # the paper's 0.3 is for d=512 on IWSLT; a d=64 model underfits with it
        word_dropout=0.1,  # the paper's
        label_smoothing=0.1,  # the paper's
        init="small",  # SmallInit, as the paper's Table 3
        max_tokens=1500,  # target tokens per batch (paper 4,096; fewer updates an epoch would slow learning)
        steps=3000,  # safety cap (about 11 epochs); a run it stops records `cap` and holds its claims back
        warmup=800,  # InvSqrtDecay warmup, about 3 epochs (paper 8k of about 40k updates: a fifth)
        peak_lr=1.5e-3,  # peak of InvSqrtDecay for a d=64 model (the paper's formula gives 1.4e-3 at d=512, 8k)
        clip=1.0,  # the paper's
        eval_every=300,  # one check a little over an epoch: validation loss every 300 updates
        patience=2,  # two checks (about 2 epochs) without improvement: converged. NoWarmup's x0.8 decay waits
        # 3 validations without improvement, so it cannot act before this rule stops a warmup-free run: those
        # runs train at their constant rate (a run that stalls has failed before any decay could rescue it)
        min_delta=0.01,  # nats per token; smaller gains than this are noise on 1,014 validation pairs
        val_limit=None,  # all 1,014 validation pairs
        target_val_loss=2.8,  # "learns faster": updates to this NLL (the d=128 trial was at 2.57 by 1,000 updates)
        test_limit=None,  # all 1,000 test pairs (BLEU comparable to published Multi30k figures)
        nowarmup_shallow=3,  # the Table 3 depth, without warmup
        nowarmup_deep=6,  # provisional; the depth pilot (suites/norm/pilot.py) decides it
        nowarmup_seeds=3,  # 3 per configuration: the failure share is 0/3..3/3; more do not fit in 2 h
        nowarmup_steps=2400,  # cap (about 9 epochs) for slow progress; a stall or a pass stops a run well before
        nowarmup_lr=1e-3,  # constant from update 1: large for PostNorm (the paper's Table 5 used 3e-4 at d=512)
        nowarmup_init="xavier",  # where PostNorm can fail: Table 2, Xavier PostNorm fails where SmallInit trains
        timing_rows=2048, timing_d=512, timing_reps=10, timing_rounds=5,  # as quick (measured stable there)
        timing_blocks=5,  # 5 cells (processes) per timing task
    ),
    # The paper's configuration (Section 4.1); for a GPU. The paper selects by dev BLEU; the rule here
    # watches validation loss every 500 updates with patience 5.
    "full": NormProfile(
        seeds=5, threads=4, n_train=None, vocab_size=8000, d_model=512, n_heads=8, d_ff=2048, layers=6,
        dropout=0.3, word_dropout=0.1, label_smoothing=0.1, init="small", max_tokens=4096, steps=40000,
        warmup=8000, peak_lr=512**-0.5 * 8000**-0.5, clip=1.0, eval_every=500, patience=5, min_delta=0.005,
        val_limit=None, target_val_loss=2.0, test_limit=None, nowarmup_shallow=4, nowarmup_deep=6,
        nowarmup_seeds=5, nowarmup_steps=40000, nowarmup_lr=3e-4, nowarmup_init="small", timing_rows=8192, timing_d=512,
        timing_reps=20, timing_rounds=7, timing_blocks=10,
    ),
}
# fmt: on
