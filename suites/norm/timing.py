"""Timing of the norm suite: ScaleNorm against LayerNorm, one timing block per fresh process.

The speed claims take the timing cell as the independent unit, and each cell times its block in a
process of its own (spawned here, whatever the executor does), so the allocator's and the heap's
state differ between units as they would between two users' runs: that noise then widens the
interval instead of deciding the verdict (issue 24: one process gave 1.27 [1.17, 1.37], the next
1.17 [0.98, 1.40]). Each cell records which ScaleNorm kernel ran (`scale_cpp_kernel`).
"""

from __future__ import annotations

import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch


def time_per_call(fn, reps: int, device: str) -> tuple[float, float]:
    """Seconds and minor page faults (this process) per call of fn."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(reps):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / reps
    return seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / reps


def norm_step(norm, x, dy):
    """One forward + backward of a norm layer on x, as inside a network (also the norm bench's step)."""

    def step():
        x.grad = None
        norm(x).backward(dy)

    return step


def model_step(model, batch, s):
    """One training update of the suite's own step code (experiments.update) on a fixed batch."""
    from suites.norm.experiments import update

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    return lambda: update(model, opt, batch, s.label_smoothing, s.clip)


def synthetic_batch(s, vocab_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A batch shaped like the profile's: about `max_tokens` target tokens in sentences of 16 pieces
    (Multi30k's English averages about 13 words); for cost estimates, where no data is loaded."""
    rows, length = max(1, s.max_tokens // 16), 16
    src = torch.randint(4, vocab_size, (rows, length), generator=generator)
    tgt = torch.randint(4, vocab_size, (rows, length + 1), generator=generator)
    return src, tgt[:, :-1], tgt[:, 1:]


def step_seconds(cell, ctx) -> float:
    """Seconds per training update of this profile's model for `cell` (StepCost.time_step): builds the
    model (its depth and setup), warms up for 2 updates, times 3. No data is loaded (the vocabulary
    is the profile's size), so an estimate costs a few seconds, not a BPE training."""
    from impl.seq2seq import Seq2Seq
    from suites.norm.experiments import make_config

    s = ctx.settings
    torch.manual_seed(0)
    layers = cell.task_kwargs.get("depth", s.layers)
    model = Seq2Seq(make_config(s, s.vocab_size, cell.method_kwargs, layers, s.init)).to(ctx.device).train()
    batch = tuple(t.to(ctx.device) for t in synthetic_batch(s, s.vocab_size, torch.Generator().manual_seed(0)))
    step = model_step(model, batch, s)
    time_per_call(step, 2, ctx.device)
    return time_per_call(step, 3, ctx.device)[0]


def time_block(task: str, seed: int, settings, device: str, threads: int) -> dict[str, float]:
    """One timing block: LayerNorm and ScaleNorm alternate `timing_rounds` times (ABAB...), so drift of
    the machine hits both alike; the block's speedup is LayerNorm's median time over ScaleNorm's."""
    from impl.norms import LayerNorm, ScaleNorm, scale_norm_backend
    from impl.seq2seq import Seq2Seq
    from suites.norm.experiments import make_config

    torch.set_num_threads(threads)
    s = settings
    torch.manual_seed(seed)
    if task == "norm_layer":
        rows, d = s.timing_rows, s.timing_d
        x = torch.randn(rows, d, device=device, requires_grad=True)
        dy = torch.randn(rows, d, device=device)
        steps = {k: norm_step(m.to(device), x, dy) for k, m in (("layer", LayerNorm(d)), ("scale", ScaleNorm(d)))}
        tokens = rows
    else:  # a whole training step of the Table 3 model, PreNorm with either norm, on the same batch
        # A batch of the profile's shape with random token ids: the step's arithmetic does not depend on
        # which ids they are, and the child process then needs no BPE training (seconds per cell).
        batch = tuple(t.to(device) for t in synthetic_batch(s, s.vocab_size, torch.Generator().manual_seed(seed)))
        steps = {}
        for k in ("layer", "scale"):
            torch.manual_seed(seed)
            cfg = make_config(s, s.vocab_size, dict(prenorm=True, norm=k, fixnorm=False), s.layers, s.init)
            steps[k] = model_step(Seq2Seq(cfg).to(device).train(), batch, s)
        tokens = int((batch[2] != 0).sum())
    times, faults = {"layer": [], "scale": []}, {"layer": [], "scale": []}
    for fn in steps.values():
        time_per_call(fn, s.timing_reps, device)  # warm-up
    for _ in range(s.timing_rounds):
        for k, fn in steps.items():
            seconds, per_call = time_per_call(fn, s.timing_reps, device)
            times[k].append(seconds)
            faults[k].append(per_call)
    layer, scale = float(np.median(times["layer"])), float(np.median(times["scale"]))
    return {
        "speedup": layer / scale,
        "layer_tokens_per_s": tokens / layer,
        "scale_tokens_per_s": tokens / scale,
        "scale_cpp_kernel": float(scale_norm_backend(device) == "cpp"),  # which kernel ran (0: the eager Function)
        "layer_native_kernel": 1.0,  # LayerNorm is torch's own fused kernel (aten native_layer_norm) on every device
        # Re-faulting freed buffers (glibc's heap trimming) can cost as much as the norm itself on CPU,
        # and hits either side by the heap's state: recorded so a reader can tell it from the norm.
        "layer_faults_per_step": float(np.median(faults["layer"])),
        "scale_faults_per_step": float(np.median(faults["scale"])),
    }


def run_throughput(cell, ctx):
    """A timing cell: its block runs in a freshly spawned process, so cells are independent units."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        args = (cell.task, cell.seed, ctx.settings, ctx.device, ctx.threads)
        return pool.submit(time_block, *args).result()
