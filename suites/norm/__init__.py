"""Transformers without Tears (Nguyen & Salazar, 2019): PreNorm vs PostNorm, ScaleNorm, FixNorm,
regenerated on Multi30k German-English."""

from __future__ import annotations

from suites.harness import DatasetSpec, Suite
from suites.norm.claims import CLAIMS
from suites.norm.experiments import build
from suites.norm.figures import figures
from suites.norm.profiles import PROFILES

NOTES = """\
Stopping rule (one rule for every method): validation NLL per token every `eval_every` updates;
a run has converged once it has gone `patience` checks without improving by more than `min_delta`;
`steps` (`nowarmup_steps`) is a safety cap, and a run it stops records `cap`, which holds back every
verdict on claims about trained models (only `standard` and `full` train to the rule; `quick` leaves
norm.bleu, norm.grad, norm.ppl and norm.warmup to `standard`). The best checkpoint by validation loss
is evaluated. Data: Multi30k task 1, German to English, joint BPE learnt on the training set only;
BLEU is sacrebleu's corpus BLEU of greedy translations, detokenised (the paper: beam search), with
the per-seed paired bootstrap of sacrebleu's PairedTest in figures/bleu_bootstrap.md and each setup's
BLEU beside a published Multi30k reference in figures/bleu_table3.md. Recipe: label smoothing 0.1,
word dropout 0.1 (input tokens replaced by <unk>), InvSqrtDecay warmup (Table 3, learns-faster),
NoWarmup (constant rate from update 1, x0.8 on plateaus) for the warmup-free runs, which fail when
they diverge or their validation NLL stays above claims.FAIL_VAL_LOSS. The paper trains d=512,
6-layer models on five IWSLT pairs; `standard` trains d=64, 3+3-layer models ("d64-3L"). FixNorm's
embeddings start at uniform +-0.01 as in the official code, so their gradients are large and
clipping at 1.0 is active in almost every update. Timing cells each run in a freshly spawned process
(the speed claims' unit) and record which ScaleNorm kernel ran."""

SUITE = Suite(
    name="norm",
    title="Transformers without Tears: PreNorm, ScaleNorm and FixNorm",
    claims=CLAIMS,
    profiles=PROFILES,
    build=build,
    figures=figures,
    datasets=(
        DatasetSpec(
            "multi30k",
            tuple(f"multi30k/{s}.{lang}.gz" for s in ("train", "val", "test_2016_flickr") for lang in ("de", "en")),
            "Multi30k task 1 (Elliott et al. 2016), github multi30k/dataset data/task1/raw",
        ),
    ),
    extra="norm",
    switches=("scale_cpp_kernel",),  # the fused C++ ScaleNorm kernel ran: a silent fallback fails `compare`
    notes=NOTES,
)
