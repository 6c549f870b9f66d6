"""Micro-benchmark: ScaleNorm (fast and naive) vs torch.nn.LayerNorm vs torch.nn.RMSNorm.

    python tests/bench/bench_norm.py --out results/bench/norm.md [--device cuda]

Forward + backward of one norm layer on a (rows x d) input that requires grad, as inside a network.
All four are timed in interleaved rounds (random order per round), so drifts of machine load hit
them alike; each round gives one ratio to LayerNorm of the same round, and the table reports the
median and interquartile range of those paired ratios. Target (stated in the output): the fast
ScaleNorm at most 0.9x LayerNorm's time on CPU.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root, so `impl` imports when run as a script

from impl.norms import ScaleNorm, scale_norm_backend  # noqa: E402
from suites.harness.provenance import cpu_model  # noqa: E402

TARGET = 0.9


def time_once(norm, x, dy, reps: int, device: str) -> float:
    def step():
        x.grad = None
        norm(x).backward(dy)

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    dev = args.device
    x = torch.randn(args.rows, args.d, device=dev, requires_grad=True)
    dy = torch.randn(args.rows, args.d, device=dev)
    norms = {
        "LayerNorm (torch)": torch.nn.LayerNorm(args.d).to(dev),
        "RMSNorm (torch)": torch.nn.RMSNorm(args.d).to(dev),
        "ScaleNorm fast": ScaleNorm(args.d, fast=True).to(dev),
        "ScaleNorm naive": ScaleNorm(args.d, fast=False).to(dev),
    }
    backend = scale_norm_backend(dev)  # "cpp" (fused kernel) or "eager"; builds the kernel before timing
    for norm in norms.values():
        time_once(norm, x, dy, 3, dev)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in norms}
    ratios: dict[str, list[float]] = {k: [] for k in norms}
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(norms)
        rng.shuffle(order)
        this = {k: time_once(norms[k], x, dy, args.reps, dev) for k in order}
        for k, t in this.items():
            times[k].append(t)
            ratios[k].append(t / this["LayerNorm (torch)"])
    table = []
    for k in norms:
        q1, q2, q3 = statistics.quantiles(ratios[k], n=4, method="inclusive")
        table.append([k, f"{statistics.median(times[k]) * 1e3:.3f}", f"{q2:.2f}", f"{q1:.2f}-{q3:.2f}"])
    fast = statistics.median(ratios["ScaleNorm fast"])
    met = "met" if fast <= TARGET else "NOT met"
    lines = [
        "# ScaleNorm vs LayerNorm vs RMSNorm: forward + backward",
        "",
        f"Input {args.rows} x {args.d} float32 on {dev}; {args.rounds} interleaved rounds of {args.reps} steps; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu_model()}, {platform.python_version()}.",
        "",
        tabulate(table, headers=["norm", "median ms", "x LayerNorm (median)", "IQR"], tablefmt="github"),
        "",
        f"Fast ScaleNorm backend: {backend} (cpp = the fused C++ CPU kernel, eager = the autograd Function "
        "of tensor ops).",
        "",
        f"Target: fast ScaleNorm <= {TARGET}x LayerNorm's time: {met} (median ratio {fast:.2f}, {backend} backend).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
