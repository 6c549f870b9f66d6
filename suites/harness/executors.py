"""Where cells run: local processes (default), a Ray cluster, or Slurm through submitit.

Every executor takes the same pending cells and hands each finished cell's result back to the
driver through `finish(cell, result)` as soon as it arrives; the driver alone writes the results
folder. Cells seed themselves, so rows do not depend on the executor. Each executor runs the shared
cells first, then the exclusive ones one at a time with nothing of the run beside them, and
requests exactly the resources an experiment declares (`Experiment.cpus`, `gpus`, `memory_gb`).

Processes started on this machine (local processes, a local Ray instance, submitit's local backend)
are admitted within `supervise.Capacity`: this machine's cores and free memory against what the
running cells declare, and at most `--jobs` (`--array-parallelism` for Slurm) at once. On a real
cluster its scheduler places the cells. Each worker ends with its driver (see supervise.py).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from . import supervise
from .core import Cell, Experiment
from .runner import CellResult, RunOptions, UsageError, execute

Pending = Sequence[tuple[Experiment, Cell]]
Started = Callable[[Experiment], None]
Finish = Callable[[Cell, CellResult], None]
# What a worker needs from the driver's environment (a worker elsewhere does not inherit it).
FORWARDED_ENV = ("CLAIMBENCH_DATA", "CLAIMBENCH_SUITES", "TQDM_DISABLE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "OMP_NUM_THREADS", "MKL_NUM_THREADS", supervise.RUN_ENV)  # fmt: skip
# Metrics that measure the machine rather than the method: no two runs share them, so comparisons
# of rows across executors or runs leave them out. Every suite's timing metrics are listed here.
TIMING_METRICS = frozenset({
    "seconds",  # the tiny test suite
    "train_s", "s_per_epoch",  # gtn
    "train_seconds",  # heater
    "latency", "speedup", "throughput",  # lora
    "layer_tokens_per_s", "scale_tokens_per_s", "layer_faults_per_step", "scale_faults_per_step",
    "seconds_to_target",  # norm
    "speed",  # pinnersage
})  # fmt: skip


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
    supervise.become_worker()
    return execute(experiment, cell, options, settings)


def remote_chunk(environ: dict[str, str], chunk: list[tuple[Experiment, Cell]], options: RunOptions,
                 settings: Any) -> list[CellResult]:  # fmt: skip
    os.environ.update(environ)
    supervise.become_worker()
    return [execute(e, c, options, settings) for e, c in chunk]


def local_capacity(pending: Pending, slots: int | None, flag: str) -> supervise.Capacity:
    """This machine's capacity with at most `slots` cells at once; says so when `slots` is more than fits."""
    capacity = supervise.Capacity.of_this_machine(slots)
    fits = supervise.Capacity.of_this_machine().most_at_once([e for e, _ in pending])
    if slots and slots > fits:
        print(f"claimbench: {flag} {slots} asks for more than this machine holds ({capacity.describe()}): "
              f"at most {fits} cell(s) run at once", file=sys.stderr)  # fmt: skip
    return capacity


class LocalExecutor:
    """In the driver (`--jobs 1`), or in at most `--jobs` spawned processes that this machine holds."""

    def __init__(self, options: RunOptions):
        self.options = options

    def run(self, pending: Pending, settings: Any, started: Started, finish: Finish) -> None:
        shared, alone = split(pending)
        if self.options.jobs > 1 and len(shared) > 1:
            capacity = local_capacity(shared, self.options.jobs, "--jobs")
            workers = min(self.options.jobs, capacity.most_at_once([e for e, _ in shared]))
            spawn = lambda: ProcessPoolExecutor(workers, mp_context=get_context("spawn"),  # noqa: E731
                                                initializer=supervise.become_worker)  # fmt: skip
            pool = spawn()
            running: dict = {}
            experiment_of = {c.key: e for e, c in shared}

            def done(future, cell: Cell) -> None:
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker process is the cell's error row
                    result = failure(cell, exc, f" on {socket.gethostname()}")
                started(experiment_of[cell.key])
                finish(cell, result)

            def submit(e: Experiment, c: Cell):
                nonlocal pool
                try:
                    return pool.submit(execute, e, c, self.options, settings)
                except BrokenProcessPool:  # a worker was killed (its cells are error rows): go on with a new pool
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = spawn()
                    return pool.submit(execute, e, c, self.options, settings)

            wait_any = lambda futures: wait(futures, return_when=FIRST_COMPLETED).done  # noqa: E731
            try:
                supervise.run_within(capacity, shared, submit, wait_any, done, running)
            finally:
                # On an interruption, waiting for the running cells would keep the user waiting:
                # the run's guard ends the worker processes instead.
                pool.shutdown(wait=not running, cancel_futures=True)
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
        capacity = supervise.Capacity()  # a cluster's scheduler places the cells
        if started_here and not self.address:
            capacity = local_capacity(pending, self.options.jobs, "--jobs")
            cpus = min(self.options.jobs, int(capacity.cpus))
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        elif started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        task = ray.remote(max_retries=0)(remote_execute)
        environ, options = forwarded_env(), ray.put(self.options)
        settings_ref = ray.put(settings)

        def submit(e: Experiment, c: Cell):
            resources = {"num_cpus": e.cpus, "num_gpus": gpus_per_cell(e, self.options)}
            if e.memory_gb:
                resources["memory"] = int(e.memory_gb * 2**30)
            return task.options(**resources).remote(environ, e, c, options, settings_ref)

        def done(ref, cell: Cell) -> None:
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a crashed worker is the cell's error row
                result = failure(cell, exc, " (Ray task)")
            started(experiment_of[cell.key])
            finish(cell, result)

        experiment_of = {c.key: e for e, c in pending}
        wait_any = lambda refs: ray.wait(refs, num_returns=1)[0]  # noqa: E731
        running: dict = {}
        try:
            shared, alone = split(pending)
            supervise.run_within(capacity, shared, submit, wait_any, done, running)
            # One at a time, after everything else of the run has finished.
            supervise.run_within(supervise.Capacity(slots=1), alone, submit, wait_any, done, running)
        finally:
            for ref in running if not started_here else ():  # tasks on a cluster outlive the driver otherwise
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()


class SlurmExecutor:
    """Cells as Slurm jobs through submitit: one job array per experiment, `cells_per_job` cells per job.

    `slurm_backend="local"` uses submitit's local executor (subprocesses on this machine, for tests):
    jobs are then submitted one by one within this machine's capacity and `--array-parallelism`,
    since submitit's local backend would start every job of an array at once.
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
        self.poll_s = float(cluster.get("poll_s") or (0.2 if self.backend == "local" else 10))

    def executor(self, e: Experiment, exclusive: bool = False):
        ex = self.submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.backend)
        gpus = self.gpus if self.gpus is not None else gpus_per_cell(e, self.options)
        params = {"timeout_min": self.time_min, "cpus_per_task": e.cpus, "gpus_per_node": int(gpus),
                  "mem_gb": e.memory_gb, "name": f"claimbench-{e.name}", "slurm_partition": self.partition,
                  "slurm_array_parallelism": self.parallel, "slurm_exclusive": exclusive or None}  # fmt: skip
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return ex

    def chunks(self, shared: Pending) -> list[tuple[Experiment, list]]:
        by_experiment: dict[str, list] = {}
        for e, c in shared:
            by_experiment.setdefault(e.name, []).append((e, c))
        n = self.cells_per_job
        return [(group[0][0], group[i : i + n]) for group in by_experiment.values() for i in range(0, len(group), n)]

    def run(self, pending: Pending, settings: Any, started: Started, finish: Finish) -> None:
        environ = forwarded_env()
        shared, alone = split(pending)
        running: dict = {}

        def submit(e: Experiment, chunk: list, exclusive: bool = False):
            job = self.executor(e, exclusive).submit(remote_chunk, environ, chunk, self.options, settings)
            self.remember([job])
            return job

        def done(job, chunk: list) -> None:
            try:
                results = job.result()
            except Exception as exc:  # noqa: BLE001 - a failed job (killed, timed out) is its cells' error rows
                results = [failure(c, exc, f" (Slurm job {job.job_id})") for _, c in chunk]
            for (e, c), result in zip(chunk, results, strict=True):
                started(e)
                finish(c, result)

        try:
            if self.backend == "local":
                capacity = local_capacity(shared, self.parallel, "--array-parallelism")
                supervise.run_within(capacity, self.chunks(shared), submit, self.wait_any, done, running)
            else:
                for e, group in self.arrays(shared):
                    n = len(group)
                    jobs = self.executor(e).map_array(remote_chunk, [environ] * n, group, [self.options] * n,
                                                      [settings] * n)  # fmt: skip
                    self.remember(jobs)
                    running.update({job: (e, chunk) for job, chunk in zip(jobs, group, strict=True)})
                supervise.run_within(supervise.Capacity(), [], submit, self.wait_any, done, running)
            # One at a time, with the node to itself.
            alone_submit = lambda e, chunk: submit(e, chunk, exclusive=True)  # noqa: E731
            alone_chunks = [(e, [(e, c)]) for e, c in alone]
            supervise.run_within(supervise.Capacity(slots=1), alone_chunks, alone_submit, self.wait_any, done, running)
        finally:
            if running and self.backend != "local":
                ids = sorted({str(job.job_id).split("_")[0] for job in running})
                print(f"claimbench: {len(running)} Slurm job(s) of this run are still queued or running and "
                      f"their results will not be collected; end them with:\n  scancel {' '.join(ids)}",
                      file=sys.stderr)  # fmt: skip

    def arrays(self, shared: Pending) -> list[tuple[Experiment, list]]:
        """One array per experiment, as (experiment, chunks)."""
        arrays: dict[str, tuple[Experiment, list]] = {}
        for e, chunk in self.chunks(shared):
            arrays.setdefault(e.name, (e, []))[1].append(chunk)
        return list(arrays.values())

    def remember(self, jobs: list) -> None:
        """Jobs on a real cluster outlive a killed driver: the next run of the folder names them."""
        guard = supervise.active_guard()
        if guard is not None and self.backend != "local":
            guard.add_slurm_jobs([str(job.job_id).split("_")[0] for job in jobs])

    def wait_any(self, jobs: list) -> list:
        while True:
            finished = [job for job in jobs if job.done()]
            if finished or not jobs:
                return finished
            time.sleep(self.poll_s)


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor, "slurm": SlurmExecutor}


def make_executor(options: RunOptions):
    if options.executor not in EXECUTORS:
        raise UsageError(f"unknown executor {options.executor!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[options.executor](options)
