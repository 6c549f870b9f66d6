"""Expand a suite's grid into cells, run what is not finished, record every cell as it ends.

A cell that raises becomes an error row (with its traceback and host) and the run goes on; a
diverged training becomes a `diverged` row, which is a data point; a missing dataset becomes a
`not_run` row with the loader's message. Where cells run is the executor's business (local
processes, Ray, Slurm; see executors.py); the driver alone writes the results folder, one cell at a
time as results arrive, so every executor resumes the same way. Each cell seeds itself from its own
seed, so the rows depend neither on `jobs` nor on the executor. Exclusive cells (timings, memory)
run afterwards, one at a time.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import random
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from suites.data import DatasetUnavailable

from . import provenance, supervise
from .core import Cell, Diverged, Experiment, RunContext, Suite
from .store import RunStore, row_key

DEFAULT_BASE_SEED = 20211
LOG_FILE = "run.log"


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """A profile setting from a typed profile (dataclass) or a plain dict."""
    if isinstance(settings, dict):
        return settings.get(name, default)
    return getattr(settings, name, default)


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
    variant: str = ""  # the user's overrides as a folder suffix ("seeds=5,datasets=ECG"); see variant_of
    executor: str = "local"  # local | ray | slurm
    cluster: dict[str, Any] = field(default_factory=dict)  # executor options (ray_address, partition, ...)

    def run_record(self) -> dict[str, Any]:
        """What provenance.json records of the run: the profile, its variant and every override."""
        return {"profile": self.profile, "variant": self.variant, "seeds": self.seeds, "base_seed": self.base_seed,
                "threads": self.threads, "only": list(self.only), "overrides": dict(self.overrides),
                "device": self.device}  # fmt: skip

    def setting_overrides(self) -> dict[str, Any]:
        return {**self.overrides, **({"seeds": self.seeds} if self.seeds is not None else {})}

    def resolved_threads(self, settings: Any, exclusive: bool = False) -> int:
        """--threads, else the profile's `threads` setting, else cores / jobs, or every core for an
        exclusive cell, which runs with nothing beside it (elsewhere: one per cell's CPU)."""
        if self.threads or setting(settings, "threads"):
            return int(self.threads or setting(settings, "threads"))
        return max(1, (os.cpu_count() or 1) // (1 if exclusive else self.jobs)) if self.executor == "local" else 0


def variant_of(seeds: int | None, overrides: dict[str, Any], base_seed: int, threads: int | None) -> str:
    """The folder suffix of a run with overrides ('' for the profile as it is)."""
    parts = [f"seeds={seeds}"] if seeds is not None else []
    parts += [
        f"{k}={'+'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in sorted(overrides.items())
    ]
    parts += [f"base_seed={base_seed}"] if base_seed != DEFAULT_BASE_SEED else []
    parts += [f"threads={threads}"] if threads is not None else []
    return ",".join(parts)


def validate(suite: Suite, options: RunOptions) -> Any:
    """Check the options against the suite; returns the run's settings (resolved once)."""
    from .executors import EXECUTORS

    if options.profile not in suite.profiles:
        raise UsageError(
            f"unknown profile {options.profile!r} for suite {suite.name}; choose one of {sorted(suite.profiles)}"
        )
    if options.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {options.jobs})")
    if options.seeds is not None and options.seeds < 1:
        raise UsageError(f"--seeds must be at least 1 (got {options.seeds})")
    if options.executor not in EXECUTORS:
        raise UsageError(f"unknown executor {options.executor!r}; choose one of {', '.join(EXECUTORS)}")
    try:
        settings = suite.settings(options.profile, options.setting_overrides())
        if suite.check is not None and options.overrides:
            suite.check(settings, options.data_dir)
        elif "datasets" in options.overrides:  # no check of its own: the names the suite's profiles know
            known = {t for p in suite.profiles for e in suite.experiments(p) for t in e.tasks}
            unknown = sorted(set(options.overrides["datasets"]) - known)
            if unknown:
                raise ValueError(f"suite {suite.name} has no dataset {unknown[0]!r}; known: {', '.join(sorted(known))}")
    except (ValueError, DatasetUnavailable) as exc:
        raise UsageError(str(exc)) from exc
    known = {c.id for c in suite.claims}
    unknown = [c for c in options.only if c not in known]
    if unknown:
        raise UsageError(f"unknown claim id(s) {unknown} in suite {suite.name}; known: {sorted(known)}")
    if not (options.device == "cpu" or options.device.startswith("cuda")):
        raise UsageError(f"unknown device {options.device!r}; use cpu or cuda")
    if options.device.startswith("cuda") and options.executor == "local":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    return settings


def plan(suite: Suite, options: RunOptions, settings: Any = None) -> list[tuple[Experiment, Cell]]:
    """Every cell of the profile (restricted to the experiments of --only claims), in grid order."""
    if settings is None:
        settings = suite.settings(options.profile, options.setting_overrides())
    experiments = suite.build(settings)
    if options.only:
        wanted = {suite.claim(c).experiment for c in options.only}
        experiments = [e for e in experiments if e.name in wanted]
    return [(e, cell) for e in experiments for cell in e.cells(suite.name, options.base_seed)]


def is_finite(value: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):
        return False


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class CellResult:
    """What a cell sends back to the driver: its rows, its per-unit arrays, where it ran, its log."""

    rows: list[dict[str, Any]]
    units: dict[str, np.ndarray] = field(default_factory=dict)
    environment: dict[str, Any] | None = None
    log: str = ""
    peak_rss_gb: float | None = None  # machine data, kept in peak_memory.json, never a row


def _stream_handlers() -> list[logging.StreamHandler]:
    loggers = [
        logging.getLogger(),
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    return [h for lg in loggers for h in lg.handlers if type(h) is logging.StreamHandler]


@contextlib.contextmanager
def captured_output():
    """Route a cell's prints, warnings, library log records and bars into a buffer (for run.log).

    Library loggers (transformers) hold their own stream handlers on the real stderr; those are
    pointed at the buffer for the duration of the cell, and handlers created during the cell (a
    library imported by it) are pointed back at the real stderr afterwards, for the next capture.
    """
    buffer = io.StringIO()
    real = (sys.stdout, sys.stderr)
    moved = [(h, h.setStream(buffer)) for h in _stream_handlers() if h.stream in real]
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        for handler, stream in moved:
            handler.setStream(stream)
        for handler in _stream_handlers():
            if handler.stream is buffer:
                handler.setStream(real[1])


def execute(experiment: Experiment, cell: Cell, options: RunOptions, settings: Any) -> CellResult:
    """Run one cell where it is (driver or worker); never raises for a failure of the cell itself."""
    import torch

    threads = options.resolved_threads(settings, experiment.exclusive) or max(1, experiment.cpus)
    torch.set_num_threads(threads)
    ctx = RunContext(
        profile=options.profile,
        settings=settings,
        device=options.device,
        data_dir=options.data_dir,
        threads=threads,
        show_progress=False,  # one bar per suite, drawn by the driver; nested bars would tear it
    )
    env = provenance.environment(options.device, threads)
    base = {"experiment": cell.experiment, "task": cell.task, "method": cell.method, "params": cell.params,
            "seed": cell.seed}  # fmt: skip
    missing = [r for r in experiment.requires if r == "cuda" and not options.device.startswith("cuda")]
    if missing:
        note = "needs a GPU (run with --device cuda)"
        return CellResult([{**base, "metric": "not_run", "value": math.nan, "status": "not_run", "note": note,
                            "wall_s": 0.0}], environment=env)  # fmt: skip
    seed_everything(cell.seed)
    where = "" if options.executor == "local" else f" [on host {socket.gethostname()}]"
    memory = supervise.MemoryWatch(experiment.memory_gb)
    with captured_output() as log:
        start = time.perf_counter()
        try:
            with memory:
                try:
                    metrics = dict(experiment.run(cell, ctx))
                    status, note = "ok", ""
                except Diverged as exc:
                    metrics = {**exc.metrics, "diverged": 1.0}
                    status, note = "diverged", str(exc)
                except DatasetUnavailable as exc:
                    metrics, status, note = {"not_run": math.nan}, "not_run", str(exc) + where
                except Exception:  # noqa: BLE001 - any failure of a cell is recorded, and the run goes on
                    metrics = {"error": math.nan}
                    status, note = "error", traceback.format_exc(limit=8) + f"host: {socket.gethostname()}"
        except supervise.MemoryLimitExceeded:  # sent into the cell (or at its end) by the watch
            metrics, status = {"error": math.nan}, "error"
            note = memory.note(experiment.name) + f" host: {socket.gethostname()}"
        wall = round(time.perf_counter() - start, 3)
    units = {}
    for metric, value in metrics.items():
        if isinstance(value, np.ndarray) or (hasattr(value, "shape") and getattr(value, "ndim", 0) > 0):
            array = np.asarray(value, dtype=float)
            if array.ndim not in (1, 2) or array.size == 0:
                status, note = "error", f"metric {metric!r}: a per-unit array must be 1-D or 2-D and non-empty"
                metrics[metric] = math.nan
                continue
            units[metric] = array
            metrics[metric] = float(array.mean())
    if status == "ok":
        bad = [m for m, v in metrics.items() if not is_finite(v)] + [m for m, a in units.items() if not is_finite(a)]
        if not metrics:
            metrics, status, note = {"error": math.nan}, "error", "the run function returned no metrics"
        elif bad:
            status, note = "error", f"non-finite metric(s) {bad}: a run function must raise Diverged instead"
    rows = [
        {**base, "metric": metric, "value": float(value), "status": status, "note": note, "wall_s": wall}
        for metric, value in metrics.items()
    ]
    return CellResult(rows, units if status == "ok" else {}, env, log.getvalue(), memory.peak_gb)


def run_cell(suite: Suite, experiment: Experiment, cell: Cell, options: RunOptions) -> list[dict[str, Any]]:
    """The rows of one cell, run here (for tests and tools that drive a single cell)."""
    return execute(experiment, cell, options, suite.settings(options.profile, options.setting_overrides())).rows


def results_folder(options: RunOptions, suite: Suite) -> Path:
    """<results>/<suite>/<profile>, or <profile>+<overrides> for a run with overrides, so its rows
    never mix with the profile's (an --only run's cells are the profile's own, and stay there)."""
    name = options.profile + (f"+{options.variant}" if options.variant else "")
    return Path(options.results_dir) / suite.name / name


def run_suite(suite: Suite, options: RunOptions) -> tuple[RunStore, dict[str, int]]:
    """Run every unfinished cell of the suite's profile; returns the store and a status tally."""
    from .executors import make_executor

    settings = validate(suite, options)
    executor = make_executor(options)  # a missing extra fails here, before anything is written
    cells = plan(suite, options, settings)
    folder = results_folder(options, suite)
    # Every process the executor starts here ends with this block, however it ends; a live run of
    # the same folder is refused before anything is written.
    with supervise.RunGuard(folder, say=lambda text: tqdm.write(text, file=sys.stderr)):
        return _run_cells(options, settings, executor, cells, folder, f"{suite.name}/{options.profile}")


def _run_cells(options: RunOptions, settings: Any, executor: Any, cells: list, folder: Path,
               name: str) -> tuple[RunStore, dict[str, int]]:  # fmt: skip
    store = RunStore(folder / "runs.csv", order=[c.key for _, c in cells], run=options.run_record())
    if options.fresh and store.path.exists():
        # Set the old rows aside first, so an interrupted fresh run resumes as a fresh run.
        shutil.copyfile(store.path, store.path.with_name("runs.previous.csv"))
        # Fresh means fresh for every planned experiment: its cells that left the plan go too; the
        # experiments an --only run leaves out keep their rows.
        planned = {e.name for e, _ in cells}
        store.forget({row_key(r) for r in store.rows if r["experiment"] in planned})
    done = store.finished()
    pending = [(e, c) for e, c in cells if c.key not in done]
    tally = {"skipped (finished before)": len(cells) - len(pending)}
    log_path = folder / LOG_FILE
    folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(pending), desc=name, disable=not options.show_progress,
               unit="cell", dynamic_ncols=True)  # fmt: skip

    def started(experiment: Experiment) -> None:
        bar.set_postfix_str(experiment.name, refresh=True)

    experiments = {e.name: e for e, _ in cells}

    def finish(cell: Cell, result: CellResult) -> None:
        store.record(cell, result.rows, result.units, result.environment)
        supervise.record_peak(folder, experiments[cell.experiment], cell.label(), result.peak_rss_gb)
        rows = result.rows
        status = rows[0]["status"] if rows else "ok"
        tally[status] = tally.get(status, 0) + 1
        if result.log.strip():
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(f"--- {cell.label()}\n{result.log.rstrip()}\n")
        if status == "error":  # a diverged training is a data point, counted in the summary
            bar.write(f"{status}: {cell.label()}: {rows[0]['note'].strip().splitlines()[-1]}")
        if status == "not_run":  # ends at once: counting it would make the ETA promise the rest as fast
            bar.total -= 1
            bar.refresh()
        else:
            bar.update(1)

    try:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"=== {name}: {len(pending)} cell(s) with executor {options.executor}, "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")  # fmt: skip
        executor.run(pending, settings, started, finish)
    finally:
        bar.close()
    return store, tally
