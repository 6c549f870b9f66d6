"""Executors: the same rows whichever ran the cells, resume after a killed driver, exclusive cells alone.

The Ray tests start a local Ray instance with 2 CPUs; the Slurm tests use submitit's local backend.
Both skip when the `cluster` extra is not installed. This module also defines the `timing` suite
its tests run (each cell records when it started and ended).
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suites.harness import Experiment, Suite
from suites.harness.executors import TIMING_METRICS
from suites.harness.runner import RunOptions, UsageError
from suites.harness.store import RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
HAS_RAY = importlib.util.find_spec("ray") is not None
HAS_SUBMITIT = importlib.util.find_spec("submitit") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="the cluster extra (ray) is not installed")
needs_submitit = pytest.mark.skipif(not HAS_SUBMITIT, reason="the cluster extra (submitit) is not installed")
TIMING_CELLS = 6 + 2


def run_timed(cell, ctx):
    start = time.time()
    time.sleep(0.4 if cell.experiment == "alone" else 0.3)
    end = time.time()
    with open(os.environ["TIMING_LOG"], "a") as fh:
        fh.write(json.dumps({"experiment": cell.experiment, "start": start, "end": end, "pid": os.getpid()}) + "\n")
    return {"slept": 1.0}


def build_timing(settings):
    return [
        Experiment("alone", run_timed, tasks={"t": {}}, methods={"probe": {}}, seeds=2, exclusive=True),
        Experiment("shared", run_timed, tasks={"a": {}, "b": {}, "c": {}}, methods={"m": {}}, seeds=2),
    ]


TIMING_SUITE = Suite(name="timing", title="timing", claims=(), profiles={"smoke": {"seeds": 1}}, build=build_timing)


def claimbench(*args: str, env: dict | None = None, check: int | None = 0, timeout: int = 300):
    full_env = {
        **os.environ,
        "CLAIMBENCH_SUITES": "tiny=tiny_suite:SUITE,timing=test_executors:TIMING_SUITE",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "suites"), str(ROOT / "tests" / "harness")]),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **(env or {}),
    }
    proc = subprocess.run([sys.executable, "-m", "suites.harness.cli", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


WORKER = re.compile(r" \[on host [^\]]+\]$")


def measured(folder: Path) -> list[tuple]:
    """Every non-timing value of a runs.csv, in file order."""
    with open(folder / "runs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == RUN_COLUMNS
    for r in rows:  # a remote worker names itself in a not-run note; that is where it ran, not a result
        r["note"] = WORKER.sub("", r["note"])
    return [tuple(r[c] for c in RUN_COLUMNS if c != "wall_s") for r in rows if r["metric"] not in TIMING_METRICS]


@pytest.fixture(scope="module")
def tiny_jobs1(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("jobs1")
    claimbench("run", "tiny", "--profile", "quick", "--results-dir", str(results), "--no-progress")
    return results / "tiny" / "quick"


def overlaps(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def assert_exclusive_cells_ran_alone(log: Path) -> None:
    spans = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(spans) == TIMING_CELLS
    for a, b in itertools.combinations(spans, 2):
        if "alone" in (a["experiment"], b["experiment"]):
            assert not overlaps(a, b), f"an exclusive cell overlapped another: {a} {b}"


def run_timing(tmp_path: Path, *executor: str) -> None:
    log = tmp_path / "times.jsonl"
    claimbench("run", "timing", "--profile", "smoke", "--results-dir", str(tmp_path / "r"), "--no-progress",
               *executor, env={"TIMING_LOG": str(log)})  # fmt: skip
    assert_exclusive_cells_ran_alone(log)
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_exclusive_cells_run_alone_with_local_processes(tmp_path):
    spans = run_timing(tmp_path, "--jobs", "2")
    shared = [s for s in spans if s["experiment"] == "shared"]
    # The check can fail: shared cells did run side by side.
    assert any(overlaps(a, b) for a, b in itertools.combinations(shared, 2))


def test_the_overlap_check_can_fail(tmp_path):
    log = tmp_path / "times.jsonl"
    log.write_text(
        "".join(json.dumps({"experiment": e, "start": s, "end": s + 1.0, "pid": 1}) + "\n"
                for e, s in [("alone", 0.0), ("shared", 0.5)] + [("shared", 10.0 + i) for i in range(6)])
    )  # fmt: skip
    with pytest.raises(AssertionError, match="overlapped"):
        assert_exclusive_cells_ran_alone(log)


@pytest.mark.parametrize(
    ("executor", "module", "extra"), [("ray", "ray", "ray[default]"), ("slurm", "submitit", "submitit")]
)
def test_a_missing_extra_names_it(executor, module, extra, monkeypatch):
    from suites.harness.executors import make_executor

    monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    with pytest.raises(UsageError) as info:
        make_executor(RunOptions(executor=executor))
    assert "cluster" in str(info.value) and extra in str(info.value) and "pip install" in str(info.value)


def test_an_unknown_executor_is_refused(tmp_path):
    proc = claimbench("run", "tiny", "--executor", "kubernetes", "--results-dir", str(tmp_path), check=2)
    assert "invalid choice: 'kubernetes'" in proc.stderr


@needs_ray
def test_ray_gives_the_rows_of_jobs_1_and_resumes_after_a_killed_driver(tiny_jobs1, tmp_path):
    args = [sys.executable, "-m", "suites.harness.cli", "run", "tiny", "--profile", "quick", "--results-dir",
            str(tmp_path), "--no-progress", "--executor", "ray", "--jobs", "2"]  # fmt: skip
    env = {**os.environ, "CLAIMBENCH_SUITES": "tiny=tiny_suite:SUITE", "TINY_SLEEP": "0.3",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'suites'}"}  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    runs = tmp_path / "tiny" / "quick" / "runs.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (runs.exists() and len(runs.read_text().splitlines()) > 10):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray instance it started
    proc.wait()
    survived = runs.read_text().splitlines()
    assert 10 < len(survived) < len(measured(tiny_jobs1))
    out = claimbench("run", "tiny", "--profile", "quick", "--results-dir", str(tmp_path), "--no-progress",
                     "--executor", "ray", "--jobs", "2").stdout  # fmt: skip
    assert "skipped (finished before)" in out
    assert measured(tmp_path / "tiny" / "quick") == measured(tiny_jobs1)
    final = runs.read_text().splitlines()
    finished = [line for line in survived[1:] if ",ok," in line]
    assert all(line in final for line in finished)  # rows finished before the kill are kept, not rerun
    doc = json.loads((tmp_path / "tiny" / "quick" / "provenance.json").read_text())
    assert all(machine["host"] for machine in doc["machines"])


@needs_ray
def test_exclusive_cells_run_alone_on_ray(tmp_path):
    run_timing(tmp_path, "--executor", "ray", "--jobs", "2")


@needs_ray
@pytest.mark.slow
def test_ray_runs_a_real_suite_like_jobs_1(tmp_path):
    if not os.environ.get("CLAIMBENCH_DATA"):
        pytest.skip("real data not configured: set CLAIMBENCH_DATA to the data directory")
    common = ["--profile", "smoke", "--no-progress"]
    claimbench("run", "gtn", *common, "--results-dir", str(tmp_path / "one"), timeout=480)
    claimbench("run", "gtn", *common, "--results-dir", str(tmp_path / "ray"), "--executor", "ray", "--jobs", "2",
               timeout=480)  # fmt: skip
    assert measured(tmp_path / "ray" / "gtn" / "smoke") == measured(tmp_path / "one" / "gtn" / "smoke")
    with open(tmp_path / "ray" / "gtn" / "smoke" / "runs.csv", newline="") as fh:
        not_run = [r["note"] for r in csv.DictReader(fh) if r["status"] == "not_run" and "missing" in r["note"]]
    assert all(WORKER.search(note) for note in not_run)  # a missing file names the worker that looked for it


@needs_submitit
def test_submitit_local_gives_the_rows_of_jobs_1(tiny_jobs1, tmp_path):
    claimbench("run", "tiny", "--profile", "quick", "--results-dir", str(tmp_path), "--no-progress",
               "--executor", "slurm", "--slurm-backend", "local", "--cells-per-job", "20")  # fmt: skip
    assert measured(tmp_path / "tiny" / "quick") == measured(tiny_jobs1)
    assert (tmp_path / "tiny" / "quick" / "provenance.json").exists()


def max_at_once(spans: list[dict]) -> int:
    edges = sorted([(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@needs_submitit
def test_exclusive_cells_run_alone_under_submitit_and_at_most_array_parallelism_at_once(tmp_path):
    # Three jobs of two shared cells: submitit's local backend alone would start all three at once.
    spans = run_timing(tmp_path, "--executor", "slurm", "--slurm-backend", "local", "--cells-per-job", "2",
                       "--array-parallelism", "2")  # fmt: skip
    assert max_at_once([s for s in spans if s["experiment"] == "shared"]) <= 2


class Ref:
    """An object reference: hashable, and distinct even when two results are equal."""

    def __init__(self, value):
        self.value = value


class FakeRay:
    """Just enough of ray's API to see what each cell asks for, running tasks in this process."""

    def __init__(self):
        self.requests, self.initialized = [], False

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.init_kwargs, self.initialized = kwargs, True

    def shutdown(self):
        self.initialized = False

    def put(self, value):
        return value

    def remote(self, **_):
        fake = self

        def wrap(fn):
            class Task:
                def options(self, **resources):
                    fake.requests.append(resources)
                    return self

                def remote(self, *args):
                    return Ref(fn(*args))

            return Task()

        return wrap

    def wait(self, refs, num_returns):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value


def test_ray_requests_exactly_what_an_experiment_declares(monkeypatch):
    from suites.harness import executors

    fake = FakeRay()
    monkeypatch.setattr(executors, "require", lambda *a: fake)
    seen = []
    monkeypatch.setattr(executors, "execute", lambda e, c, o, s: seen.append(c) or "result")
    monkeypatch.setattr(executors, "remote_execute", lambda env, e, c, o, s: executors.execute(e, c, o, s))
    big = Experiment("big", run_timed, tasks={"t": {}}, methods={"m": {}}, cpus=4, gpus=2, memory_gb=1.5)
    plain = Experiment("plain", run_timed, tasks={"t": {}}, methods={"m": {}})
    pending = [(e, c) for e in (big, plain) for c in e.cells("s", 0)]
    finished = []
    for device, plain_gpus in (("cpu", 0), ("cuda", 1)):
        fake.requests.clear()
        options = RunOptions(executor="ray", device=device, jobs=2)
        executors.make_executor(options).run(pending, {}, lambda e: None, lambda c, r: finished.append(r))
        assert fake.requests == [{"num_cpus": 4, "num_gpus": 2, "memory": int(1.5 * 2**30)},
                                 {"num_cpus": 1, "num_gpus": plain_gpus}]  # fmt: skip
    assert fake.init_kwargs["num_cpus"] == 2 and not fake.initialized  # a local instance, shut down after
    assert finished == ["result"] * 4


def test_slurm_requests_exactly_what_an_experiment_declares(monkeypatch, tmp_path):
    from suites.harness import executors

    made = []

    class FakeAutoExecutor:
        def __init__(self, folder, cluster):
            self.cluster, self.params = cluster, {}
            made.append(self)

        def update_parameters(self, **params):
            self.params.update(params)

    fake = type("submitit", (), {"AutoExecutor": FakeAutoExecutor})
    monkeypatch.setattr(executors, "require", lambda *a: fake)
    options = RunOptions(executor="slurm", device="cuda", results_dir=tmp_path,
                         cluster={"partition": "gpu", "time_min": 90, "array_parallelism": 8})  # fmt: skip
    slurm = executors.make_executor(options)
    big = Experiment("big", run_timed, tasks={"t": {}}, methods={"m": {}}, cpus=4, gpus=2, memory_gb=16)
    slurm.executor(big)
    slurm.executor(Experiment("probe", run_timed, tasks={"t": {}}, methods={"m": {}}, exclusive=True), exclusive=True)
    assert made[0].cluster == "slurm"
    assert made[0].params == {"timeout_min": 90, "cpus_per_task": 4, "gpus_per_node": 2, "mem_gb": 16,
                              "name": "claimbench-big", "slurm_partition": "gpu", "slurm_array_parallelism": 8}  # fmt: skip
    assert made[1].params["slurm_exclusive"] is True and made[1].params["gpus_per_node"] == 1  # cuda run: one GPU
