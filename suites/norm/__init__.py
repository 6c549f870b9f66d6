"""Transformers without Tears (Nguyen & Salazar, 2019): PreNorm vs PostNorm, ScaleNorm, FixNorm,
regenerated on Multi30k German-English."""

from __future__ import annotations

from suites.harness import DatasetSpec, Suite
from suites.norm.claims import CLAIMS
from suites.norm.experiments import build
from suites.norm.figures import figures
from suites.norm.profiles import PROFILES

NOTES = """\
Training budget rule: every configuration makes the same number of Adam updates (profile `steps`,
`nowarmup_steps` for the warmup-free runs) on batches of about `max_tokens` target tokens and is
evaluated after its last update (no checkpoint selection, no early stopping). Runs whose mean
training loss over their last tenth of updates was more than 1% below the tenth before are flagged
(`loss_falling`, claim norm.budget.falling); every verdict's notes count the flagged runs behind it. Data: Multi30k task 1, German to English, joint BPE learnt on the training
set only; BLEU is sacrebleu's detokenised corpus BLEU of greedy translations. The paper trains
d=512, 6-layer models on five IWSLT pairs; the quick profile trains d=64, 2-layer models for 160
updates of about 600 target tokens (about a third of an epoch) on this CPU, so its verdicts are
about small, briefly trained models. FixNorm's embeddings start at uniform +-0.01 as in the official
code, so their gradients are large and clipping at 1.0 is active in almost every update."""

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
    notes=NOTES,
)
