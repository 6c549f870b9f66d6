"""Training memory: an analytic model (weights + gradients + optimizer state + activations) and the
run functions that measure peak memory in a fresh process (`python -m suites.lora.memprobe`) and
evaluate the model at GPT-3 175B, as the paper's 1.2 TB -> 350 GB counts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from suites.harness import Diverged
from suites.lora.models import family, parse_shape

REPO_ROOT = Path(__file__).resolve().parents[2]
MB = 2**20

# Bytes per element. fp32: what the CPU measurements run (AdamW keeps m and v in fp32).
# mixed: standard mixed-precision Adam (Rajbhandari et al. 2020, ZeRO): every weight in fp16, and
# per trainable parameter an fp16 gradient plus fp32 master weight, m and v (16 bytes in all).
# fp16-adam: everything in fp16 (8 bytes per trainable parameter), an alternative accounting.
PRECISIONS: dict[str, dict[str, float]] = {
    "fp32": {"weight": 4, "grad": 4, "optim": 8, "act": 4},
    "mixed": {"weight": 2, "grad": 2, "optim": 12, "act": 2},
    "fp16-adam": {"weight": 2, "grad": 2, "optim": 4, "act": 2},
}


@dataclass(frozen=True)
class Shape:
    """What the activation model needs to know about a transformer."""

    kind: str  # "bert" (post-LN, GELU MLP, dropout, attention scores stored), "llama" (pre-RMSNorm, SwiGLU)
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    kv: int  # width of K and V (hidden, or n_kv_heads * head_dim under GQA)
    dropout: bool
    lm_head: bool


def shape_of(model: torch.nn.Module, model_name: str) -> Shape:
    c = model.config
    kind = family(model_name)
    if kind == "bert":
        dropout = c.hidden_dropout_prob > 0 or c.attention_probs_dropout_prob > 0
        return Shape("bert", c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size,
                     c.vocab_size, c.hidden_size, dropout, lm_head=False)  # fmt: skip
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return Shape("llama", c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size,
                 c.vocab_size, c.num_key_value_heads * head_dim, c.attention_dropout > 0, lm_head=True)  # fmt: skip


def activation_bytes(shape: Shape, batch: int, seq: int, act_bytes: float) -> float:
    """Bytes autograd keeps for the backward pass: what each layer saves, counted by hand.

    T = batch * seq tokens, h hidden, f ffn width, a heads. Derived from which tensors PyTorch's
    autograd saves in transformers' eager layers (cf. Korthikanti et al. 2022, "Reducing
    activation recomputation", whose 34sbh + 5as^2b is the 16-bit version of the BERT case):

    bert, per layer: layer input (Q/K/V input), Q, K, V, attention context (Wo input), LN1 input,
      LN1 output (MLP input), LN2 input: 8 Th; GELU input and output: 2 Tf; softmax output and,
      with dropout, the dropped probabilities: 2 a s T; dropout masks (1 byte): 2 Th + a s T.
      Embeddings: LN input Th (+ mask).
    llama, per layer: two RMSNorms (input and normalised output each): 4 Th; Q and attention output:
      2 Th; K and V: 2 T kv; SwiGLU gate, SiLU(gate), up and their product: 4 Tf. No s^2 term: the
      causal SDPA kernel recomputes scores. LM head: logits, log-softmax output and their gradient,
      3 T V, plus the final norm 2 Th.
    Transient workspace of the backward pass and the allocator's slack are not modelled.
    """
    T = batch * seq
    h, f, a, L = shape.hidden, shape.ffn, shape.heads, shape.layers
    if shape.kind in ("bert", "gpt"):
        floats = L * (8 * T * h + 2 * T * f + (2 if shape.dropout else 1) * a * seq * T) + T * h
        masks = (L * (2 * T * h + a * seq * T) + T * h) if shape.dropout else 0
    else:
        floats = L * (6 * T * h + 2 * T * shape.kv + 4 * T * f) + 2 * T * h
        masks = 0
    if shape.lm_head:
        floats += 3 * T * shape.vocab
    return floats * act_bytes + masks


def training_memory(shape: Shape, total: int, n_trainable: int, batch: int, seq: int, precision: str,
                    activations: bool = True) -> dict[str, float]:  # fmt: skip
    """The analytic model: weights + gradients + optimizer state + activations, in bytes."""
    b = PRECISIONS[precision]
    parts = {
        "weights": total * b["weight"],
        "grads": n_trainable * b["grad"],
        "optim": n_trainable * b["optim"],
        "acts": activation_bytes(shape, batch, seq, b["act"]) if activations else 0.0,
    }
    parts["total"] = sum(parts.values())
    return parts


def run_memory(cell, ctx) -> dict[str, float]:
    """Peak training memory of one (model, method, batch) in a fresh process, plus the analytic
    model's prediction for it."""
    s = ctx.settings
    batch, seq = parse_shape(cell.kwargs["shape"])
    args = {"model": cell.task, "method": cell.method, "batch": batch, "seq": seq, "steps": s.memory_steps,
            "device": ctx.device, "threads": ctx.threads, "seed": cell.seed}  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "suites.lora.memprobe", json.dumps(args)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEMPROBE ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        if "ModelUnavailable" in proc.stderr or "DatasetUnavailable" in proc.stderr:
            from suites.data import DatasetUnavailable

            raise DatasetUnavailable("\n".join(tail))
        raise RuntimeError(f"memory probe failed (exit {proc.returncode}):\n" + "\n".join(tail))
    got = json.loads(lines[-1][len("MEMPROBE ") :])
    if got.get("diverged"):
        raise Diverged("non-finite loss in the memory probe")
    shape = Shape(**got["shape"])
    pred = training_memory(shape, got["total_params"], got["trainable_params"], batch, seq, "fp32")
    measured = got["peak_bytes"] - got["runtime_bytes"]
    return {
        "train_mb": measured / MB,  # peak minus the process's footprint before the model existed
        "peak_mb": got["peak_bytes"] / MB,
        "runtime_mb": got["runtime_bytes"] / MB,
        "loaded_mb": got["loaded_bytes"] / MB,
        "predicted_mb": pred["total"] / MB,
        "pred_weights_mb": pred["weights"] / MB,
        "pred_grads_mb": pred["grads"] / MB,
        "pred_optim_mb": pred["optim"] / MB,
        "pred_acts_mb": pred["acts"] / MB,
        "abs_rel_error": abs(pred["total"] / measured - 1.0),
        "rel_error": pred["total"] / measured - 1.0,
        "trainable_params": float(got["trainable_params"]),
        "total_params": float(got["total_params"]),
        "peak_reset": float(got["peak_reset"]),
        "batch": float(batch),
        "seq": float(seq),
    }


def run_memory_analytic(cell, ctx) -> dict[str, float]:
    """The analytic model at GPT-3 175B: model states, as the paper's figures count them."""
    from impl.lora import LoRAConfig
    from impl.lora_model import count_parameters, inject_lora
    from suites.data.pretrained import ARCHS, meta_model

    spec = ARCHS[cell.task]
    model = meta_model(cell.task)
    total = count_parameters(model, trainable_only=False)
    if cell.method == "lora":
        inject_lora(model, LoRAConfig(r=cell.method_kwargs["r"], target_modules=spec.qv_targets))
        n_train = count_parameters(model)
        total = count_parameters(model, trainable_only=False)
    else:
        n_train = total
    shape = Shape("gpt", spec.layers, spec.d_model, spec.heads, spec.ffn, spec.vocab, spec.d_model, True, True)
    mixed = training_memory(shape, total, n_train, 1, spec.positions, "mixed", activations=False)
    fp16 = training_memory(shape, total, n_train, 1, spec.positions, "fp16-adam", activations=False)
    acts = activation_bytes(shape, 1, spec.positions, PRECISIONS["mixed"]["act"])
    return {"state_bytes": mixed["total"], "state_bytes_fp16_adam": fp16["total"], "weights_bytes": mixed["weights"],
            "act_bytes_b1_full_context": acts, "trainable_params": float(n_train)}  # fmt: skip
