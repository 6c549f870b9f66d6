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
    label_smoothing: float  # paper: 0.1
    init: str  # attention init of the Table 3 models: small (the paper's SmallInit) or xavier
    max_tokens: int  # target tokens per batch (paper: 4096)
    steps: int  # the training budget: Adam updates per run, the same for every configuration
    warmup: int  # InvSqrtDecay warmup updates
    peak_lr: float  # InvSqrtDecay learning rate at the end of warmup
    clip: float  # global gradient-norm clipping (paper: 1.0)
    eval_every: int  # updates between validation losses
    val_limit: int | None  # validation pairs used for the validation loss (None: all 1,014)
    target_val_loss: float  # validation NLL per token that "learns faster" counts updates to (fixed in advance)
    test_limit: int | None  # test pairs translated for BLEU (None: all 1,000)
    nowarmup_shallow: int  # layers (encoder and decoder) of the shallow warmup-free comparison (paper: 4)
    nowarmup_deep: int  # layers of the deep warmup-free comparison (paper: 5 and 6 fail for PostNorm)
    nowarmup_steps: int  # updates per warmup-free run
    nowarmup_lr: float  # the constant learning rate of NoWarmup (decayed x0.8 on validation plateaus)
    nowarmup_init: str  # attention init of the warmup-free runs
    fail_bleu: float  # a warmup-free run below this test BLEU (or diverged) has failed
    timing_rows: int  # vectors per norm-layer timing (timing_rows x timing_d)
    timing_d: int  # vector size of the norm-layer timing
    timing_reps: int  # repetitions per timed measurement
    timing_rounds: int  # LayerNorm/ScaleNorm alternations per timing block
    timing_blocks: int  # timing blocks (the independent unit of the throughput claims)


# fmt: off
PROFILES = {
    "smoke": NormProfile(
        seeds=2, threads=1, n_train=300, vocab_size=300, d_model=16, n_heads=2, d_ff=32, layers=1,
        dropout=0.1, label_smoothing=0.1, init="small", max_tokens=300, steps=8, warmup=4, peak_lr=1e-3,
        clip=1.0, eval_every=4, val_limit=16, target_val_loss=5.0, test_limit=16, nowarmup_shallow=1,
        nowarmup_deep=2, nowarmup_steps=4, nowarmup_lr=1e-3, nowarmup_init="small", fail_bleu=1.0,
        timing_rows=256, timing_d=64, timing_reps=2, timing_rounds=2, timing_blocks=2,
    ),
    # This CPU: d=64, 2+2 layers, 160 updates of about 600 target tokens (about a third of an epoch);
    # 4 min 25 s wall with --jobs 2 (measured). Timings repeat 10 calls per measurement: 3 left a
    # 2 ms layer timing at the mercy of one scheduler hiccup.
    "quick": NormProfile(
        seeds=3, threads=1, n_train=None, vocab_size=2000, d_model=64, n_heads=4, d_ff=128, layers=2,
        dropout=0.1, label_smoothing=0.1, init="small", max_tokens=600, steps=160, warmup=50, peak_lr=2e-3,
        clip=1.0, eval_every=40, val_limit=200, target_val_loss=5.0, test_limit=200, nowarmup_shallow=2,
        nowarmup_deep=6, nowarmup_steps=80, nowarmup_lr=1e-3, nowarmup_init="small", fail_bleu=1.0,
        timing_rows=2048, timing_d=512, timing_reps=10, timing_rounds=5, timing_blocks=4,
    ),
    # The paper's configuration (Section 4.1); for a GPU.
    "full": NormProfile(
        seeds=5, threads=4, n_train=None, vocab_size=8000, d_model=512, n_heads=8, d_ff=2048, layers=6,
        dropout=0.3, label_smoothing=0.1, init="small", max_tokens=4096, steps=20000, warmup=8000,
        peak_lr=512**-0.5 * 8000**-0.5, clip=1.0, eval_every=500, val_limit=None, target_val_loss=2.0,
        test_limit=None, nowarmup_shallow=4, nowarmup_deep=6, nowarmup_steps=20000, nowarmup_lr=3e-4,
        nowarmup_init="small", fail_bleu=1.0, timing_rows=8192, timing_d=512, timing_reps=20, timing_rounds=7,
        timing_blocks=10,
    ),
}
# fmt: on
