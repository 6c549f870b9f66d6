"""Expand a suite's grid into cells, run what is not finished, record every cell as it ends.

A cell that raises becomes an error row (with its traceback) and the run goes on; a diverged
training becomes a `diverged` row, which is a data point; a missing dataset becomes a `not_run`
row with the loader's message. Cells run in parallel processes with `jobs > 1`; each cell seeds
itself from its own seed, so the rows do not depend on `jobs`. Exclusive cells (timings, memory)
run afterwards, one at a time.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from suites.data import DatasetUnavailable

from . import provenance
from .core import Cell, Diverged, Experiment, RunContext, Suite
from .registry import get_suite
from .store import RunStore

DEFAULT_BASE_SEED = 20211


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""


@dataclass
class RunOptions:
    profile: str = "quick"
    seeds: int | None = None
    base_seed: int = DEFAULT_BASE_SEED
    device: str = "cpu"
    data_dir: str | None = None
    jobs: int = 1
    threads: int | None = None
    only: Sequence[str] = ()
    fresh: bool = False  # rerun finished cells too (their old rows are kept in runs.previous.csv)
    results_dir: Path = Path("results")
    show_progress: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)  # profile settings, e.g. {"datasets": [...]}

    def setting_overrides(self) -> dict[str, Any]:
        return {**self.overrides, **({"seeds": self.seeds} if self.seeds is not None else {})}

    def resolved_threads(self, settings: Mapping[str, Any]) -> int:
        """--threads, else the profile's `threads` setting, else cores / jobs."""
        return self.threads or settings.get("threads") or max(1, (os.cpu_count() or 1) // self.jobs)


def validate(suite: Suite, options: RunOptions) -> None:
    if options.profile not in suite.profiles:
        raise UsageError(
            f"unknown profile {options.profile!r} for suite {suite.name}; choose one of {sorted(suite.profiles)}"
        )
    if options.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {options.jobs})")
    if options.seeds is not None and options.seeds < 1:
        raise UsageError(f"--seeds must be at least 1 (got {options.seeds})")
    try:
        settings = suite.settings(options.profile, options.setting_overrides())
        if suite.check is not None and options.overrides:
            suite.check(settings, options.data_dir)
    except (ValueError, DatasetUnavailable) as exc:
        raise UsageError(str(exc)) from exc
    known = {c.id for c in suite.claims}
    unknown = [c for c in options.only if c not in known]
    if unknown:
        raise UsageError(f"unknown claim id(s) {unknown} in suite {suite.name}; known: {sorted(known)}")
    if not (options.device == "cpu" or options.device.startswith("cuda")):
        raise UsageError(f"unknown device {options.device!r}; use cpu or cuda")
    if options.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")


def plan(suite: Suite, options: RunOptions) -> list[tuple[Experiment, Cell]]:
    """Every cell of the profile (restricted to the experiments of --only claims), in grid order."""
    experiments = suite.experiments(options.profile, options.setting_overrides())
    if options.only:
        wanted = {suite.claim(c).experiment for c in options.only}
        experiments = [e for e in experiments if e.name in wanted]
    return [(e, cell) for e in experiments for cell in e.cells(suite.name, options.base_seed)]


def is_finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_cell(suite: Suite, experiment: Experiment, cell: Cell, options: RunOptions) -> list[dict[str, Any]]:
    """Run one cell and return its rows; never raises for a failure of the cell itself."""
    import torch

    settings = suite.settings(options.profile, options.setting_overrides())
    threads = options.resolved_threads(settings)
    torch.set_num_threads(threads)
    ctx = RunContext(
        profile=options.profile,
        settings=settings,
        device=options.device,
        data_dir=options.data_dir,
        threads=threads,
        show_progress=options.show_progress and options.jobs == 1,
    )
    base = {
        "suite": cell.suite, "experiment": cell.experiment, "task": cell.task, "method": cell.method,
        "params": cell.params, "seed": cell.seed, **provenance.stamp(options.device, threads),
    }  # fmt: skip
    missing = [r for r in experiment.requires if r == "cuda" and not options.device.startswith("cuda")]
    if missing:
        return [{**base, "metric": "not_run", "value": float("nan"), "status": "not_run",
                 "note": "needs a GPU (run with --device cuda)", "wall_s": 0.0}]  # fmt: skip
    seed_everything(cell.seed)
    start = time.perf_counter()
    try:
        metrics = dict(experiment.run(cell, ctx))
        status, note = "ok", ""
    except Diverged as exc:
        metrics = {**exc.metrics, "diverged": 1.0}
        status, note = "diverged", str(exc)
    except DatasetUnavailable as exc:
        metrics, status, note = {"not_run": float("nan")}, "not_run", str(exc)
    except Exception:  # noqa: BLE001 - any failure of a cell is recorded, and the run goes on
        metrics, status, note = {"error": float("nan")}, "error", traceback.format_exc(limit=8)
    wall = round(time.perf_counter() - start, 3)
    if status == "ok":
        bad = [m for m, v in metrics.items() if not is_finite(v)]
        if not metrics:
            metrics, status, note = {"error": float("nan")}, "error", "the run function returned no metrics"
        elif bad:
            status, note = "error", f"non-finite metric(s) {bad}: a run function must raise Diverged instead"
    return [
        {**base, "metric": metric, "value": float(value), "status": status, "note": note, "wall_s": wall}
        for metric, value in metrics.items()
    ]


def _worker(suite_name: str, experiment_name: str, cell: Cell, options: RunOptions) -> list[dict[str, Any]]:
    suite = get_suite(suite_name)
    experiments = suite.experiments(options.profile, options.setting_overrides())
    experiment = next(e for e in experiments if e.name == experiment_name)
    return run_cell(suite, experiment, cell, options)


def results_folder(options: RunOptions, suite: Suite) -> Path:
    return Path(options.results_dir) / suite.name / options.profile


def run_suite(suite: Suite, options: RunOptions) -> tuple[RunStore, dict[str, int]]:
    """Run every unfinished cell of the suite's profile; returns the store and a status tally."""
    validate(suite, options)
    cells = plan(suite, options)
    store = RunStore(results_folder(options, suite) / "runs.csv", order=[c.key for _, c in cells])
    if options.fresh and store.path.exists():
        # Set the old rows aside first, so an interrupted fresh run resumes as a fresh run.
        shutil.copyfile(store.path, store.path.with_name("runs.previous.csv"))
        store.forget({c.key for _, c in cells})
    done = store.finished()
    pending = [(e, c) for e, c in cells if c.key not in done]
    tally = {"skipped (finished before)": len(cells) - len(pending)}
    shared = [(e, c) for e, c in pending if not e.exclusive]
    alone = [(e, c) for e, c in pending if e.exclusive]

    bar = tqdm(total=len(pending), desc=f"{suite.name}/{options.profile}", disable=not options.show_progress)

    def finish(cell: Cell, rows: list[dict[str, Any]]) -> None:
        store.record(cell, rows)
        status = rows[0]["status"] if rows else "ok"
        tally[status] = tally.get(status, 0) + 1
        if status in ("error", "diverged"):
            bar.write(f"{status}: {cell.label()}: {rows[0]['note'].strip().splitlines()[-1]}")
        bar.update(1)

    try:
        if options.jobs > 1 and len(shared) > 1:
            with ProcessPoolExecutor(max_workers=options.jobs, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_worker, suite.name, e.name, c, options): c for e, c in shared}
                for future in as_completed(futures):
                    finish(futures[future], future.result())
        else:
            for e, c in shared:
                finish(c, run_cell(suite, e, c, options))
        for e, c in alone:
            finish(c, run_cell(suite, e, c, options))
    finally:
        bar.close()
    return store, tally
