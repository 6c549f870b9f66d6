"""Runs that hold on a small machine: bounded concurrency, no orphans, declared memory enforced (issue #30).

The drivers here run the tiny suite through the CLI in a subprocess, so that a test can kill one
with SIGKILL and then look for the processes it left. Every worker process a run starts carries a
marker naming its results folder, which is how "left behind" is checked.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from suites.harness import Experiment, Suite
from suites.harness.runner import RunOptions, UsageError, run_cell, run_suite
from suites.harness.supervise import DRIVER_FILE, PEAKS_FILE, RUN_ENV, Capacity, marked_processes

# The tiny suite and test_executors' helpers, importable here as the CLI's subprocesses see them.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "suites")]
from test_executors import HAS_RAY, HAS_SUBMITIT, ROOT, claimbench, max_at_once, measured  # noqa: E402
from tiny_suite import SUITE as TINY  # noqa: E402

psutil = pytest.importorskip("psutil")

BACKENDS = {
    "local": ["--jobs", "2"],
    "ray": ["--executor", "ray", "--jobs", "2"],
    "slurm": ["--executor", "slurm", "--slurm-backend", "local", "--cells-per-job", "3"],
}
AVAILABLE = {"local": True, "ray": HAS_RAY, "slurm": HAS_SUBMITIT}


def test_capacity_admits_what_the_machine_holds():
    small = Experiment("small", print, tasks={"t": {}}, methods={"m": {}}, memory_gb=3)
    wide = Experiment("wide", print, tasks={"t": {}}, methods={"m": {}}, cpus=2, memory_gb=1)
    machine = Capacity(cpus=2, memory_gb=8)
    assert machine.admits(small, [small]) and not machine.admits(small, [small, small])  # cores
    assert not Capacity(cpus=8, memory_gb=8).admits(small, [small, small])  # memory: 9 GB > 8
    assert not machine.admits(small, [wide]) and machine.admits(wide, [])  # one cell always runs
    assert not Capacity(cpus=8, memory_gb=80, slots=2).admits(small, [small, small])  # --jobs
    assert machine.most_at_once([small, wide]) == 2


def test_the_concurrency_check_can_fail():
    assert max_at_once([{"start": 0, "end": 1}, {"start": 0.5, "end": 2}, {"start": 0.6, "end": 3}]) == 3


def wait_for_rows_and_workers(folder: Path, rows: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until some rows are written and some worker runs (between two jobs, none may)."""
    runs, deadline = folder / "runs.csv", time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the driver ended before it could be killed"
        if runs.exists() and len(runs.read_text().splitlines()) > rows and marked_processes(folder):
            return
        time.sleep(0.1)


def start_driver(tmp_path: Path, backend: str, stderr) -> tuple[list[str], subprocess.Popen, Path]:
    """A tiny smoke run on `backend` in its own session (so a test can clean up after a failure and
    signal the driver alone), with cells of a second: a worker left running would still be busy."""
    args = ["run", "tiny", "--profile", "smoke", "--seeds", "1", "--results-dir", str(tmp_path), "--no-progress",
            *BACKENDS[backend]]  # fmt: skip
    env = {**os.environ, "CLAIMBENCH_SUITES": "tiny=tiny_suite:SUITE", "TINY_SLEEP": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'suites'}"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "suites.harness.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)  # fmt: skip
    return args, proc, tmp_path / "tiny" / "smoke+seeds=1"


@pytest.fixture(scope="module")
def tiny_smoke(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("smoke1")
    claimbench("run", "tiny", "--profile", "smoke", "--seeds", "1", "--results-dir", str(results), "--no-progress")
    return results / "tiny" / "smoke+seeds=1"


@pytest.mark.slow
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_killed_driver_leaves_no_worker_and_resumes_with_the_rows_of_jobs_1(backend, tiny_smoke, tmp_path):
    if not AVAILABLE[backend]:
        pytest.skip(f"the cluster extra ({backend}) is not installed")
    args, proc, folder = start_driver(tmp_path, backend, stderr=subprocess.DEVNULL)
    try:
        wait_for_rows_and_workers(folder, 3, proc)
        assert marked_processes(folder), "no worker processes to leave behind: the test proves nothing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 4  # workers check on their driver every half second
        while marked_processes(folder) and time.time() < deadline:
            time.sleep(0.2)
        left = [" ".join(p.cmdline())[:100] for p in marked_processes(folder)]
        assert not left, f"worker processes outlived the killed driver: {left}"
    finally:
        with_group = [p for p in psutil.process_iter() if p.pid != os.getpid() and _session(p) == proc.pid]
        for p in with_group:
            p.kill()
    survived = (folder / "runs.csv").read_text().splitlines()
    assert 3 < len(survived) < len(measured(tiny_smoke))
    out = claimbench(*args).stdout
    assert "skipped (finished before)" in out
    assert measured(folder) == measured(tiny_smoke)  # every non-timing row, as with --jobs 1
    final = (folder / "runs.csv").read_text().splitlines()
    assert all(line in final for line in survived[1:] if ",ok," in line)  # finished rows kept, not rerun
    assert not marked_processes(folder) and not (folder / DRIVER_FILE).exists()


def _session(process) -> int | None:
    try:
        return os.getsid(process.pid)
    except OSError:
        return None


def test_the_next_run_ends_and_names_leftovers_of_a_killed_driver(tmp_path, capsys):
    folder = tmp_path / "tiny" / "smoke"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    marker = f"{os.uname().nodename}|{dead.pid}|None|{folder.resolve()}"
    leftover = subprocess.Popen(["sleep", "60"], env={**os.environ, RUN_ENV: marker})
    try:
        time.sleep(0.2)
        assert [p.pid for p in marked_processes(folder)] == [leftover.pid]
        run_suite(TINY, RunOptions(profile="smoke", results_dir=tmp_path, show_progress=False))
        assert leftover.wait(timeout=10) is not None
        assert f"pid {leftover.pid} (sleep 60)" in capsys.readouterr().err
    finally:
        leftover.kill()


def test_a_folder_that_a_live_driver_holds_is_refused(tmp_path):
    folder = tmp_path / "tiny" / "smoke"
    folder.mkdir(parents=True)
    live = subprocess.Popen(["sleep", "60"])
    try:
        started = psutil.Process(live.pid).create_time()
        (folder / DRIVER_FILE).write_text(json.dumps({"host": os.uname().nodename, "pid": live.pid,
                                                      "started": started, "slurm_jobs": []}))  # fmt: skip
        with pytest.raises(UsageError, match=f"pid {live.pid}"):
            run_suite(TINY, RunOptions(profile="smoke", results_dir=tmp_path, show_progress=False))
        assert not (folder / "runs.csv").exists()
    finally:
        live.kill()
        live.wait()
    run_suite(TINY, RunOptions(profile="smoke", results_dir=tmp_path, show_progress=False))  # its driver is gone


def allocate(cell, ctx):
    chunks = []
    for _ in range(int(cell.kwargs["mb"]) // 20):  # touched pages count, reserved ones do not
        chunks.append(np.ones(20 * 2**20 // 8))
    return {"chunks": float(len(chunks))}


def hungry(memory_gb: float, mb: int) -> Experiment:
    return Experiment("hungry", allocate, tasks={"t": {}}, methods={"m": {}}, grid={"mb": [mb]}, memory_gb=memory_gb)


def memory_suite(memory_gb: float, mb: int) -> Suite:
    return Suite(name="mem", title="mem", claims=(), profiles={"smoke": {"seeds": 1}},
                 build=lambda s: [hungry(memory_gb, mb)])  # fmt: skip


def test_a_cell_over_its_declared_memory_is_an_error_row_naming_the_peak(tmp_path):
    experiment = hungry(0.1, 600)
    [cell] = experiment.cells("mem", 0)
    [row] = run_cell(memory_suite(0.1, 600), experiment, cell, RunOptions(profile="smoke"))
    assert row["status"] == "error" and "experiment hungry declares memory_gb=0.1" in row["note"]
    peak = float(row["note"].split("peak RSS reached ")[1].split(" GB")[0])
    assert 0.1 < peak < 0.5  # stopped soon after the limit, long before the 0.6 GB it would take


def test_a_cell_within_its_declaration_runs_and_its_peak_is_recorded(tmp_path):
    store, tally = run_suite(memory_suite(1.0, 200), RunOptions(profile="smoke", results_dir=tmp_path,
                                                                show_progress=False))  # fmt: skip
    assert tally.get("ok") == 1 and store.rows[0]["value"] == 10.0
    peaks = json.loads((tmp_path / "mem" / "smoke" / PEAKS_FILE).read_text())["experiments"]["hungry"]
    # In the driver (--jobs 1) the peak is what the process grew by: memory freed by an earlier test may
    # be reused, so only part of the 200 MB shows; a worker process would count all of it.
    assert peaks["declared_memory_gb"] == 1.0 and 0.05 < peaks["peak_rss_gb"] < 1.0


@pytest.mark.skipif(not HAS_SUBMITIT, reason="the cluster extra (submitit) is not installed")
def test_ctrl_c_ends_the_workers_of_submitit_local(tmp_path):
    _, proc, folder = start_driver(tmp_path, "slurm", stderr=subprocess.PIPE)
    try:
        wait_for_rows_and_workers(folder, 0, proc)
        proc.send_signal(signal.SIGINT)  # the driver alone, as a terminal's Ctrl-C would not reach a batch job's
        assert proc.wait(timeout=30) == 130
        assert "interrupted" in proc.stderr.read().decode()
        assert not marked_processes(folder) and not (folder / DRIVER_FILE).exists()
    finally:
        for p in [p for p in psutil.process_iter() if p.pid != os.getpid() and _session(p) == proc.pid]:
            p.kill()


class FakeJob:
    def __init__(self, job_id: str):
        self.job_id = job_id

    def done(self):
        raise KeyboardInterrupt  # Ctrl-C while the driver polls


def test_an_interrupted_slurm_run_lists_its_jobs_with_the_scancel_that_ends_them(monkeypatch, tmp_path, capsys):
    from suites.harness import executors
    from suites.harness.supervise import RunGuard

    class FakeAutoExecutor:
        def __init__(self, folder, cluster):
            self.base = {"a": "4001", "b": "4002"}

        def update_parameters(self, **params):
            self.name = params["name"].removeprefix("claimbench-")

        def map_array(self, fn, *columns):
            return [FakeJob(f"{self.base[self.name]}_{i}") for i in range(len(columns[0]))]

    monkeypatch.setattr(executors, "require", lambda *a: type("submitit", (), {"AutoExecutor": FakeAutoExecutor}))
    slurm = executors.make_executor(RunOptions(executor="slurm", results_dir=tmp_path))
    pending = [(e, c) for name in "ab" for e in [Experiment(name, print, tasks={"t": {}}, methods={"m": {}}, seeds=2)]
               for c in e.cells("s", 0)]  # fmt: skip
    with pytest.raises(KeyboardInterrupt), RunGuard(tmp_path / "folder"):
        slurm.run(pending, {}, lambda e: None, lambda c, r: None)
    err = capsys.readouterr().err
    assert "4 Slurm job(s)" in err and "scancel 4001 4002" in err
    # A driver killed outright prints nothing: the next run of the folder names the jobs instead.
    guard = RunGuard(tmp_path / "folder", say=print)
    guard.path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": 0.0, "slurm_jobs": ["4001", "4002"]}))
    with guard:
        pass
    assert "scancel 4001 4002" in capsys.readouterr().out


def run_or_die(cell, ctx):
    if cell.method == "die":
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    time.sleep(0.2)
    return {"x": 1.0}


DYING = Suite(name="dying", title="dying", claims=(), profiles={"smoke": {"seeds": 3}},
              build=lambda s: [Experiment("e", run_or_die, tasks={"t": {}}, methods={"die": {}, "ok": {}}, seeds=3)])  # fmt: skip


@pytest.mark.slow
def test_a_killed_worker_is_an_error_row_and_the_run_goes_on(tmp_path):
    claimbench("run", "dying", "--profile", "smoke", "--results-dir", str(tmp_path), "--no-progress", "--jobs", "2",
               env={"CLAIMBENCH_SUITES": "dying=test_supervision:DYING"}, check=1)  # fmt: skip
    with open(tmp_path / "dying" / "smoke" / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and all(r["status"] == "error" for r in rows if r["method"] == "die")
    assert "the worker running this cell failed" in rows[0]["note"]
    assert rows[-1]["status"] == "ok"  # cells after the dead worker ran in a new pool
