"""What a profile costs, estimated before it runs and measured once it has.

An estimate is built from the profile's own model size: each trained experiment declares a
`StepCost` (the most steps one cell takes, and a probe that times a few steps of that profile's
model on this machine), so estimate = seconds per step x steps x cells, summed over experiments.
Experiments without a step model are counted as unknown, never guessed. Once a profile has run, its
measured cell wall times (runs.csv) stand beside the estimate, and the ratio shows how good the
estimate was.

For `full` the CPU figure is also turned into a GPU figure under a stated assumption: the measured
float32 matmul rate of this CPU against a named GPU's datasheet peak at an assumed utilisation.
That is an assumption, labelled as one, not a measurement.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from .core import RunContext, Suite
from .store import read_runs

# The GPU a `full` estimate assumes, from its datasheet, and the share of its peak that typical
# small-batch training reaches (an assumption; stated in every table that uses it).
GPU_NAME = "NVIDIA A100 40GB"
GPU_PEAK_FLOPS = 19.5e12  # dense float32 (not TF32) from NVIDIA's A100 datasheet
GPU_UTILISATION = 0.3
CELL_KEY = ("experiment", "task", "method", "params", "seed")


@dataclass
class ExperimentCost:
    name: str
    cells: int
    estimate_s: float | None  # CPU-seconds for all cells (None: no step model, or the probe failed)
    measured_s: float | None  # summed cell wall time from runs.csv (None: this profile has not run)
    measured_cells: int = 0
    note: str = ""


def probe_seconds(experiment, cells, ctx: RunContext) -> tuple[float | None, str]:
    """CPU-seconds for the cells: one probe per (task, method), times steps, times its cells. Cells
    whose data are not here cost nothing (they will be `not run`) and are counted in the note."""
    from suites.data import DatasetUnavailable

    if experiment.cost is None:
        return None, "no step model"
    total, probes, missing = 0.0, {}, set()
    for cell in cells:
        key = (cell.task, cell.method)
        if cell.task in missing:
            continue
        if key not in probes:
            try:
                probes[key] = float(experiment.cost.time_step(cell, ctx))
            except DatasetUnavailable:
                missing.add(cell.task)
                continue
            except Exception as exc:  # noqa: BLE001 - a probe that cannot run is reported, not fatal
                return None, f"probe failed for {cell.task}/{cell.method}: {str(exc).splitlines()[0][:120]}"
        total += probes[key] * experiment.cost.steps
    return total, (
        f"{len(missing)} task(s) without data here (not run): {', '.join(sorted(missing))}" if missing else ""
    )


def measured_seconds(folder: Path) -> dict[str, tuple[float, int]]:
    """experiment -> (summed cell wall time, cells) of the finished cells in a results folder."""
    rows = [r for r in read_runs(folder / "runs.csv", facts=False) if r["status"] in ("ok", "diverged")]
    per_cell = {tuple(r[k] for k in CELL_KEY): float(r["wall_s"]) for r in rows}
    out: dict[str, tuple[float, int]] = {}
    for key, wall in per_cell.items():
        seconds, count = out.get(key[0], (0.0, 0))
        out[key[0]] = (seconds + wall, count + 1)
    return out


def estimate(suite: Suite, profile: str, results_dir: Path, data_dir: str | None = None) -> list[ExperimentCost]:
    settings = suite.settings(profile)
    ctx = RunContext(profile=profile, settings=settings, data_dir=data_dir, threads=1, show_progress=False)
    measured = measured_seconds(Path(results_dir) / suite.name / profile)
    costs = []
    for experiment in suite.build(settings):
        cells = experiment.cells(suite.name, 0)
        seconds, note = probe_seconds(experiment, cells, ctx)
        ran = measured.get(experiment.name)
        costs.append(ExperimentCost(experiment.name, len(cells), seconds, ran[0] if ran else None,
                                    ran[1] if ran else 0, note))  # fmt: skip
    return costs


def cpu_matmul_flops(size: int = 512, repeats: int = 5) -> float:
    """This machine's float32 matmul rate on one thread (FLOP/s), the best of a few timings."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 2 * size**3 / best


def _hours(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 3600:.3g}"


def cost_table(suite: Suite, results_dir: Path, data_dir: str | None = None, profiles: tuple[str, ...] = ()) -> str:
    """Per profile and experiment: estimated CPU-hours from timed steps, and measured ones where run."""
    rows, totals = [], {}
    for profile in profiles or tuple(suite.profiles):
        for c in estimate(suite, profile, results_dir, data_dir):
            ratio = f"{c.estimate_s / c.measured_s:.2f}" if c.estimate_s and c.measured_s else "-"
            measured = f"{_hours(c.measured_s)} ({c.measured_cells} cells)" if c.measured_s is not None else "not run"
            rows.append([profile, c.name, c.cells, _hours(c.estimate_s), measured, ratio, c.note])
            known, unknown = totals.get(profile, (0.0, 0))
            totals[profile] = (known + (c.estimate_s or 0.0), unknown + (c.estimate_s is None))
    headers = ["profile", "experiment", "cells", "at most CPU-h (estimated)", "measured CPU-h", "estimate/measured",
               "note"]  # fmt: skip
    lines = [tabulate(rows, headers=headers, tablefmt="simple"), ""]
    cores = os.cpu_count() or 1
    for profile, (seconds, unknown) in totals.items():
        extra = f" (+ {unknown} experiment(s) without an estimate)" if unknown else ""
        lines.append(f"{profile}: about {seconds / 3600:.3g} CPU-hours{extra}, "
                     f"{seconds / 3600 / cores:.3g} h wall on this machine's {cores} cores")  # fmt: skip
    if "full" in totals:
        flops = cpu_matmul_flops()
        speedup = GPU_PEAK_FLOPS * GPU_UTILISATION / flops
        lines.append(
            f"full on a GPU (an ASSUMPTION, not a measurement): one {GPU_NAME} at {GPU_UTILISATION:.0%} of its "
            f"{GPU_PEAK_FLOPS / 1e12:.1f} TFLOP/s float32 datasheet peak against this CPU's measured "
            f"{flops / 1e9:.1f} GFLOP/s per thread (a 512x512 matmul) is {speedup:.0f}x one thread here: "
            f"about {totals['full'][0] / 3600 / speedup:.3g} GPU-hours"
        )
    lines.append("Estimates are upper bounds: seconds per step timed here over a few steps of each profile's model, "
                 "x the most steps a cell may take (its cap), x cells; runs that their stopping rule ends early "
                 "cost less, so the measured column can be far below.")  # fmt: skip
    return "\n".join(lines)
