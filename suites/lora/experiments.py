"""The LoRA suite's experiments: run functions `run(cell, ctx) -> {metric: value}` and `build`.

Fine-tuning (quality, rank, Section 7) lives in finetune.py, memory in memory.py; the rest is here:
parameter counts, checkpoint sizes, inference latency and training throughput.
"""

from __future__ import annotations

import copy
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from suites.harness import Diverged, Experiment, StepCost
from suites.lora import finetune, memory
from suites.lora.models import (
    ADAPTER_BOTTLENECK,
    ADAPTER_H,
    ADAPTER_L,
    QV,
    adamw,
    build_any,
    build_causal,
    build_checkpointable,
    family,
    loss_of,
    prepare,
    random_batch,
    sync,
    trainable,
    vocab_of,
)


def run_params(cell, ctx) -> dict[str, float]:
    """Trainable parameters of one configuration, counted on a meta-device model."""
    from impl.lora import LoRAConfig
    from impl.lora_model import count_parameters, inject_lora, lora_parameter_count
    from suites.data.pretrained import ARCHS, meta_model

    spec = ARCHS[cell.task]
    model = meta_model(cell.task)
    total = count_parameters(model, trainable_only=False)
    kw = cell.method_kwargs
    if kw["r"] is None:
        return {"params": float(total), "total_params": float(total)}
    targets = spec.qv_targets if kw["targets"] == "qv" else (spec.q_target,)
    names = inject_lora(model, LoRAConfig(r=kw["r"], target_modules=targets))
    counted = count_parameters(model)
    shapes = [(m.in_features, m.out_features) for m in (model.get_submodule(n) for n in names)]
    formula = lora_parameter_count(shapes, kw["r"])
    if counted != formula:  # the module count and the paper's formula must agree
        raise RuntimeError(f"{cell.task}: counted {counted} LoRA parameters, formula says {formula}")
    return {"params": float(counted), "total_params": float(total), "adapted_matrices": float(len(names))}


def run_checkpoint(cell, ctx) -> dict[str, float]:
    """Bytes on disk of the full state dict vs the LoRA weights (r=4 on Wq,Wv, as in the paper's
    350 GB -> 35 MB); for GPT-3 from the count at 2 bytes per parameter (fp16)."""
    from impl.lora import LoRAConfig
    from impl.lora_model import count_parameters, inject_lora, load_lora, lora_state_dict, save_lora

    r = cell.method_kwargs.get("r")
    if cell.task_kwargs.get("analytic"):
        from suites.data.pretrained import ARCHS, meta_model

        model = meta_model(cell.task)
        if r is not None:
            inject_lora(model, LoRAConfig(r=r, target_modules=ARCHS[cell.task].qv_targets))
        n = count_parameters(model, trainable_only=r is not None)
        return {"bytes": float(2 * n), "params": float(n), "bytes_per_param": 2.0}
    name = cell.task
    model = build_checkpointable(name)
    if r is not None:
        inject_lora(model, LoRAConfig(r=r, target_modules=QV[family(name)]))
        with torch.no_grad():  # a trained-looking B, so the reload check below means something
            for k, v in lora_state_dict(model).items():
                if k.endswith("lora_B"):
                    v.normal_(0, 0.02)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint.pt"
        if r is None:
            torch.save(model.state_dict(), path)
            n = count_parameters(model, trainable_only=False)
            reload_ok = 1.0
        else:
            save_lora(model, path)
            n = count_parameters(model)
            fresh = build_checkpointable(name)
            inject_lora(fresh, LoRAConfig(r=r, target_modules=QV[family(name)]))
            load_lora(fresh, path)
            a, b = lora_state_dict(model), lora_state_dict(fresh)
            reload_ok = float(all(torch.equal(a[k], b[k]) for k in a))
        size = path.stat().st_size
    if reload_ok != 1.0:
        raise RuntimeError("the saved LoRA checkpoint did not load back identically")
    return {"bytes": float(size), "params": float(n), "bytes_per_param": size / n, "reload_ok": reload_ok}


LATENCY_VARIANTS = ("base", "lora_merged", "lora_unmerged", "adapter_h", "adapter_l")


@lru_cache(maxsize=1)
def _latency_variants(model_name: str, device: str) -> dict[str, torch.nn.Module]:
    """The base model and four copies: LoRA (r=4, Wq,Wv, non-zero B) merged and unmerged, AdapterH,
    AdapterL (bottleneck 8). Built once per process and model."""
    from impl.adapters import inject_adapters
    from impl.lora import LoRAConfig
    from impl.lora_model import inject_lora, lora_state_dict, merge_lora

    fam = family(model_name)
    torch.manual_seed(0)
    base = build_causal(model_name, "cpu")
    variants = {"base": base}
    lora = copy.deepcopy(base)
    inject_lora(lora, LoRAConfig(r=4, target_modules=QV[fam]))
    with torch.no_grad():  # a non-zero B, as after training; merged and unmerged share it
        for k, v in lora_state_dict(lora).items():
            if k.endswith("lora_B"):
                v.normal_(0, 0.02)
    variants["lora_merged"] = copy.deepcopy(lora)
    merge_lora(variants["lora_merged"])
    variants["lora_unmerged"] = lora
    for name, targets in (("adapter_h", ADAPTER_H[fam]), ("adapter_l", ADAPTER_L[fam])):
        m = copy.deepcopy(base)
        inject_adapters(m, targets, ADAPTER_BOTTLENECK, layer_norm=name == "adapter_l")
        variants[name] = m
    return {k: v.to(device).eval().requires_grad_(False) for k, v in variants.items()}


def run_latency(cell, ctx) -> dict[str, float]:
    """One block: warm-up rounds, then `rounds` rounds in which every variant runs one forward
    pass (the order rotates each round). Per variant: the median time; per non-base variant: the
    median over rounds of its time / the base's time in the same round (a paired ratio)."""
    s = ctx.settings
    batch, seq = s.latency_shapes[cell.kwargs["batch_kind"]]
    variants = _latency_variants(cell.task, ctx.device)
    names = list(variants)
    ids = random_batch(cell.task, vocab_of(variants["base"]), batch, seq, cell.seed, ctx.device)["input_ids"]

    def once(model) -> float:
        sync(ctx.device)
        start = time.perf_counter()
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
        sync(ctx.device)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for _ in range(s.latency_warmup):
            for n in names:
                once(variants[n])
        for k in range(s.latency_rounds):
            shift = k % len(names)
            for n in names[shift:] + names[:shift]:
                times[n].append(once(variants[n]))
    base = np.asarray(times["base"])
    out: dict[str, float] = {"batch": float(batch), "seq": float(seq)}
    for n in names:
        out[f"latency_ms.{n}"] = float(np.median(times[n]) * 1e3)
        if n != "base":
            out[f"latency_ratio.{n}"] = float(np.median(np.asarray(times[n]) / base))
    return out


def run_throughput(cell, ctx) -> dict[str, float]:
    """Full fine-tuning and LoRA (r=8, Wq,Wv) on two copies of the same model and batch; after
    warm-up, alternate one training step (forward, backward, AdamW step) of each, `rounds` times.
    speedup = median over rounds of t_full / t_lora (paired within a round)."""
    s = ctx.settings
    batch, seq = s.throughput_shape
    name = cell.task
    torch.manual_seed(cell.seed)
    models = {m: prepare(build_any(name, ctx.device), name, m).train() for m in ("full", "lora")}
    optimizers = {m: adamw(trainable(models[m]), lr=1e-6) for m in models}
    data = random_batch(name, vocab_of(models["full"]), batch, seq, cell.seed, ctx.device)

    def step(m: str) -> float:
        sync(ctx.device)
        start = time.perf_counter()
        loss = loss_of(name, models[m], data)
        loss.backward()
        optimizers[m].step()
        optimizers[m].zero_grad(set_to_none=True)
        sync(ctx.device)
        if not torch.isfinite(loss):
            raise Diverged(f"non-finite loss in the {m} throughput run")
        return time.perf_counter() - start

    for _ in range(s.throughput_warmup):
        step("full")
        step("lora")
    times: dict[str, list[float]] = {"full": [], "lora": []}
    for k in range(s.throughput_rounds):
        for m in ("full", "lora") if k % 2 == 0 else ("lora", "full"):
            times[m].append(step(m))
    full, lora = np.asarray(times["full"]), np.asarray(times["lora"])
    tokens = batch * seq
    return {
        "step_ms.full": float(np.median(full) * 1e3),
        "step_ms.lora": float(np.median(lora) * 1e3),
        "tokens_per_s.full": float(tokens / np.median(full)),
        "tokens_per_s.lora": float(tokens / np.median(lora)),
        "speedup": float(np.median(full / lora)),
        "batch": float(batch),
        "seq": float(seq),
    }


# --------------------------------------------------------------------------- the experiments

# Quality methods, then LoRA's ranks on Wq,Wv and the fixed-budget Wq alone (Table 5). "lora" (r = 8
# on Wq,Wv, alpha 8) is the rank family's r = 8 member too: one run serves both claims.
FINETUNE_METHODS = {
    **{m: {"method": m} for m in ("full", "bitfit", "adapter_h", "adapter_l", "head")},
    "lora": {"method": "lora", "r": 8, "targets": "qv"},
    **{f"qv_r{r}": {"method": "lora", "r": r, "targets": "qv"} for r in (1, 2, 4, 64)},
    "q_r8": {"method": "lora", "r": 8, "targets": "q"},
}
PILOT_METHODS = ("full", "lora", "bitfit", "adapter_h", "adapter_l")  # head only is the probe: nothing to pick
PARAM_METHODS = {"full": {"r": None}, **{f"lora_r{r}": {"r": r, "targets": "qv"} for r in (1, 4, 8, 16)}}


def build(s) -> list[Experiment]:
    from suites.data.pretrained import ARCHS

    text_tasks = {f"{d}/{s.text_model}": {"dataset": d} for d in s.datasets}
    methods = {k: v for k, v in FINETUNE_METHODS.items() if k in s.finetune_methods}
    ckpt_tasks = {m: {} for m in s.checkpoint_models}
    ckpt_tasks["gpt3-175b"] = {"analytic": True}
    # the most steps one fine-tuning or pilot cell takes (its cap; the dev checks and test scoring come on top)
    train_cost = StepCost(steps=s.eval_every * s.max_checks, time_step=finetune.time_step)
    return [
        Experiment("params", run_params, tasks={a: {} for a in ARCHS}, methods=PARAM_METHODS),
        Experiment("memory_analytic", memory.run_memory_analytic, tasks={"gpt3-175b": {}},
                   methods={"full": {}, "lora": {"r": 4}}),
        Experiment("checkpoint", run_checkpoint, tasks=ckpt_tasks, methods={"full": {}, "lora_r4": {"r": 4}}),
        Experiment("pilot", finetune.run_pilot, grid={"lr_step": [-1, 0, 1]},
                   tasks={t: kw for t, kw in text_tasks.items() if kw["dataset"] in s.pilot_datasets},
                   methods={m: {"method": m} for m in PILOT_METHODS if m in s.finetune_methods}, cost=train_cost),
        Experiment("finetune", finetune.run_finetune, tasks=text_tasks, methods=methods, seeds=s.seeds,
                   cost=train_cost),
        # Not exclusive: a probe reads its own process's peak, which a neighbouring cell cannot move.
        Experiment("memory", memory.run_memory, tasks={m: {} for m in s.memory_models},
                   methods={"full": {}, "lora": {}}, grid={"shape": list(s.memory_shapes)}, seeds=s.memory_repeats,
                   memory_gb=4.0),
        Experiment("latency", run_latency, tasks={m: {} for m in s.latency_models},
                   methods={"interleaved": {}}, grid={"batch_kind": ["small", "large"]},
                   seeds=s.latency_blocks, exclusive=True),
        Experiment("throughput", run_throughput, tasks={m: {} for m in s.throughput_models},
                   methods={"interleaved": {}}, seeds=s.throughput_blocks, exclusive=True),
    ]  # fmt: skip
