"""Where cells run: local processes (default), a Ray cluster, or Slurm through submitit.

Every executor takes the same pending cells and hands each finished cell's result back to the
driver through `finish(cell, result)` as soon as it arrives; the driver alone writes the results
folder. Cells seed themselves, so rows do not depend on the executor. Each executor runs the shared
cells first, then the exclusive ones one at a time with nothing of the run beside them, and
requests exactly the resources an experiment declares (`Experiment.cpus`, `gpus`, `memory_gb`).
We schedule nothing ourselves beyond that order: Ray and Slurm place the cells.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from .core import Cell, Experiment
from .runner import CellResult, RunOptions, UsageError, execute

Pending = Sequence[tuple[Experiment, Cell]]
Started = Callable[[Experiment], None]
Finish = Callable[[Cell, CellResult], None]
# What a worker needs from the driver's environment (a worker elsewhere does not inherit it).
FORWARDED_ENV = ("CLAIMBENCH_DATA", "CLAIMBENCH_SUITES", "TQDM_DISABLE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # fmt: skip


def require(module: str, executor: str, pip_name: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(
            f"--executor {executor} needs {pip_name}, from claimbench's `cluster` extra, which is not installed: "
            f"pip install 'claimbench[cluster]' (or pip install '{pip_name}')"
        ) from exc


def split(pending: Pending) -> tuple[list, list]:
    return [(e, c) for e, c in pending if not e.exclusive], [(e, c) for e, c in pending if e.exclusive]


def gpus_per_cell(experiment: Experiment, options: RunOptions) -> float:
    if experiment.gpus is not None:
        return experiment.gpus
    return 1 if options.device.startswith("cuda") else 0


def failure(cell: Cell, exc: BaseException, where: str = "") -> CellResult:
    """An error row for a cell whose worker died (killed, out of memory, timed out)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
    note = f"the worker running this cell failed{where}:\n{text}"
    row = {"experiment": cell.experiment, "task": cell.task, "method": cell.method, "params": cell.params,
           "seed": cell.seed, "metric": "error", "value": float("nan"), "status": "error", "note": note, "wall_s": 0.0}  # fmt: skip
    return CellResult([row])


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


def remote_execute(environ: dict[str, str], experiment: Experiment, cell: Cell, options: RunOptions,
                   settings: Any) -> CellResult:  # fmt: skip
    os.environ.update(environ)
    return execute(experiment, cell, options, settings)


def remote_chunk(environ: dict[str, str], chunk: list[tuple[Experiment, Cell]], options: RunOptions,
                 settings: Any) -> list[CellResult]:  # fmt: skip
    os.environ.update(environ)
    return [execute(e, c, options, settings) for e, c in chunk]


class LocalExecutor:
    """Today's behaviour: in the driver (`--jobs 1`), or in N spawned processes."""

    def __init__(self, options: RunOptions):
        self.options = options

    def run(self, pending: Pending, settings: Any, started: Started, finish: Finish) -> None:
        shared, alone = split(pending)
        if self.options.jobs > 1 and len(shared) > 1:
            with ProcessPoolExecutor(max_workers=self.options.jobs, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(execute, e, c, self.options, settings): (e, c) for e, c in shared}
                for future in as_completed(futures):
                    e, c = futures[future]
                    started(e)
                    try:
                        result = future.result()
                    except Exception as exc:  # noqa: BLE001 - a dead worker process is the cell's error row
                        result = failure(c, exc, f" on {socket.gethostname()}")
                    finish(c, result)
            shared = []
        for e, c in [*shared, *alone]:
            started(e)
            finish(c, execute(e, c, self.options, settings))


class RayExecutor:
    """Each cell is a Ray task asking for the experiment's resources; `--ray-address` joins a cluster."""

    def __init__(self, options: RunOptions):
        self.ray = require("ray", "ray", "ray[default]")
        self.options = options
        self.address = options.cluster.get("ray_address")

    def run(self, pending: Pending, settings: Any, started: Started, finish: Finish) -> None:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            where = {"address": self.address} if self.address else {"num_cpus": self.options.jobs}
            ray.init(**where, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        task = ray.remote(max_retries=0)(remote_execute)
        environ, options = forwarded_env(), ray.put(self.options)
        settings_ref = ray.put(settings)

        def submit(e: Experiment, c: Cell):
            resources = {"num_cpus": e.cpus, "num_gpus": gpus_per_cell(e, self.options)}
            if e.memory_gb:
                resources["memory"] = int(e.memory_gb * 2**30)
            return task.options(**resources).remote(environ, e, c, options, settings_ref)

        def collect(ref, e: Experiment, c: Cell) -> None:
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a crashed worker is the cell's error row
                result = failure(c, exc, " (Ray task)")
            started(e)
            finish(c, result)

        try:
            shared, alone = split(pending)
            refs = {submit(e, c): (e, c) for e, c in shared}
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for ref in ready:
                    collect(ref, *refs.pop(ref))
            for e, c in alone:  # one at a time, after everything else of the run has finished
                collect(submit(e, c), e, c)
        finally:
            if started_here:
                ray.shutdown()


class SlurmExecutor:
    """Cells as Slurm jobs through submitit: one job array per experiment, `cells_per_job` cells per job.

    `slurm_backend="local"` uses submitit's local executor (subprocesses on this machine), for tests.
    """

    def __init__(self, options: RunOptions):
        self.submitit = require("submitit", "slurm", "submitit")
        self.options = options
        cluster = options.cluster
        self.backend = cluster.get("slurm_backend") or "slurm"
        self.partition = cluster.get("partition")
        self.time_min = int(cluster.get("time_min") or 60)
        self.cells_per_job = max(1, int(cluster.get("cells_per_job") or 1))
        self.parallel = cluster.get("array_parallelism")
        self.gpus = cluster.get("gpus")  # overrides the experiments' own GPU count
        self.folder = Path(cluster.get("slurm_folder") or Path(options.results_dir) / ".submitit")
        self.poll_s = float(cluster.get("poll_s") or (0.5 if self.backend == "local" else 10))

    def executor(self, e: Experiment, exclusive: bool = False):
        ex = self.submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.backend)
        gpus = self.gpus if self.gpus is not None else gpus_per_cell(e, self.options)
        params = {"timeout_min": self.time_min, "cpus_per_task": e.cpus, "gpus_per_node": int(gpus),
                  "mem_gb": e.memory_gb, "name": f"claimbench-{e.name}", "slurm_partition": self.partition,
                  "slurm_array_parallelism": self.parallel, "slurm_exclusive": exclusive or None}  # fmt: skip
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return ex

    def run(self, pending: Pending, settings: Any, started: Started, finish: Finish) -> None:
        environ = forwarded_env()
        shared, alone = split(pending)
        jobs = []
        by_experiment: dict[str, list] = {}
        for e, c in shared:
            by_experiment.setdefault(e.name, []).append((e, c))
        for group in by_experiment.values():
            chunks = [group[i : i + self.cells_per_job] for i in range(0, len(group), self.cells_per_job)]
            n = len(chunks)
            submitted = self.executor(group[0][0]).map_array(remote_chunk, [environ] * n, chunks,
                                                             [self.options] * n, [settings] * n)  # fmt: skip
            jobs += list(zip(submitted, chunks, strict=True))
        self.wait(jobs, started, finish)
        for e, c in alone:  # one at a time, with the node to itself
            job = self.executor(e, exclusive=True).submit(remote_chunk, environ, [(e, c)], self.options, settings)
            self.wait([(job, [(e, c)])], started, finish)

    def wait(self, jobs: list, started: Started, finish: Finish) -> None:
        while jobs:
            still = []
            for job, chunk in jobs:
                if not job.done():
                    still.append((job, chunk))
                    continue
                try:
                    results = job.result()
                except Exception as exc:  # noqa: BLE001 - a failed job (killed, timed out) is its cells' error rows
                    results = [failure(c, exc, f" (Slurm job {job.job_id})") for _, c in chunk]
                for (e, c), result in zip(chunk, results, strict=True):
                    started(e)
                    finish(c, result)
            jobs = still
            if jobs:
                time.sleep(self.poll_s)


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor, "slurm": SlurmExecutor}


def make_executor(options: RunOptions):
    if options.executor not in EXECUTORS:
        raise UsageError(f"unknown executor {options.executor!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[options.executor](options)
