"""The results folder: rows, per-unit arrays, provenance beside them, and the conversion of old files."""

from __future__ import annotations

import csv
import json
import math
import os

import numpy as np
import pytest

from suites.harness import provenance
from suites.harness.core import Cell, Experiment
from suites.harness.runner import RunOptions, execute
from suites.harness.store import (
    LEGACY_COLUMNS,
    RUN_COLUMNS,
    ResultsCorrupt,
    RunStore,
    load_units,
    migrate_legacy,
    read_runs,
    units_name,
)

CELL = Cell("s", "exp", "taskA", "m1", '{"k":1}', 7)
ENV = {"host": "node1", "python": "3.11", "packages": {"numpy": "2.0"}, "device": "cpu", "cpu": "X", "gpu": "",
       "threads": 1}  # fmt: skip


def row(cell: Cell, metric: str, value: float, status: str = "ok") -> dict:
    return {"experiment": cell.experiment, "task": cell.task, "method": cell.method, "params": cell.params,
            "seed": cell.seed, "metric": metric, "value": value, "status": status, "note": "", "wall_s": 0.5}  # fmt: skip


def run_metrics(metrics: dict) -> tuple[list[dict], dict]:
    experiment = Experiment("exp", lambda cell, ctx: metrics, tasks={"taskA": {}}, methods={"m1": {}})
    result = execute(experiment, CELL, RunOptions(profile="smoke", show_progress=False), {"seeds": 1})
    return result.rows, result.units


def test_runs_csv_holds_only_what_varies_by_row(tmp_path):
    store = RunStore(tmp_path / "runs.csv")
    store.record(CELL, [row(CELL, "acc", 0.5)], environment=ENV)
    header = (tmp_path / "runs.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == RUN_COLUMNS
    assert "suite" not in header and "git_sha" not in header and "cpu" not in header
    doc = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance.machines_of(doc) == [ENV] and "cells" not in doc  # one machine: no per-cell map
    assert doc["packages"] == ENV["packages"] and "packages" not in doc["machines"][0]  # shared: written once
    assert doc["git_sha"] and isinstance(doc["git_dirty"], bool)
    # Rows read back carry their environment's facts, read-only.
    (back,) = read_runs(tmp_path / "runs.csv")
    assert back["cpu"] == "X" and back["host"] == "node1" and back["versions"] == "numpy=2.0"


def test_cells_on_two_hosts_name_their_host_per_cell(tmp_path):
    other = Cell("s", "exp", "taskB", "m1", "{}", 7)
    store = RunStore(tmp_path / "runs.csv")
    store.record(CELL, [row(CELL, "acc", 0.5)], environment=ENV)
    store.record(other, [row(other, "acc", 0.6)], environment={**ENV, "host": "node2"})
    doc = json.loads((tmp_path / "provenance.json").read_text())
    assert sorted(m["host"] for m in doc["machines"]) == ["node1", "node2"]
    assert sorted(doc["cells"].values()) == [0, 1]
    hosts = {r["task"]: r["host"] for r in read_runs(tmp_path / "runs.csv")}
    assert hosts == {"taskA": "node1", "taskB": "node2"}
    # Rerunning taskB on node1 leaves one environment: the map goes away again.
    RunStore(tmp_path / "runs.csv").record(other, [row(other, "acc", 0.6)], environment=ENV)
    assert "cells" not in json.loads((tmp_path / "provenance.json").read_text())


def test_a_per_unit_array_is_stored_and_its_mean_is_the_value(tmp_path):
    per_user = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    rows, units = run_metrics({"hit": per_user, "loss": 0.25})
    values = {r["metric"]: r["value"] for r in rows}
    assert values == {"hit": 0.6, "loss": 0.25} and {r["status"] for r in rows} == {"ok"}
    store = RunStore(tmp_path / "runs.csv")
    store.record(CELL, rows, units, ENV)
    assert (tmp_path / "units" / units_name(CELL.key)).exists()
    lookup = load_units(tmp_path)
    np.testing.assert_array_equal(lookup("exp", "taskA", "m1", '{"k":1}', 7, "hit"), per_user)
    assert lookup("exp", "taskA", "m1", '{"k":1}', 7, "loss") is None  # a plain number has no array
    assert lookup("exp", "taskA", "m1", '{"k":1}', 8, "hit") is None  # another seed never ran


def test_a_two_dimensional_array_averages_over_all_entries():
    rows, units = run_metrics({"err": np.array([[1.0, 3.0], [5.0, 7.0], [0.0, 2.0]])})
    assert rows[0]["value"] == pytest.approx(3.0) and units["err"].shape == (3, 2)


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.array([1.0, np.nan]), "non-finite"), (np.zeros((2, 2, 2)), "1-D or 2-D"), (np.array([]), "non-empty")],
)
def test_a_bad_array_is_an_error_row_and_stores_nothing(value, message):
    rows, units = run_metrics({"hit": value})
    assert rows[0]["status"] == "error" and message in rows[0]["note"] and units == {}


def test_units_file_names_are_stable_and_distinct():
    assert units_name(CELL.key) == units_name(("exp", "taskA", "m1", '{"k":1}', 7))
    assert units_name(CELL.key) != units_name(("exp", "taskA", "m1", '{"k":1}', 8))
    assert units_name(CELL.key).endswith(".npz") and len(units_name(CELL.key)) == 16 + 4


def test_a_corrupt_units_file_is_reported(tmp_path):
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / units_name(CELL.key)).write_bytes(b"not a zip")
    with pytest.raises(ResultsCorrupt, match="cannot be read"):
        load_units(tmp_path)(*CELL.key, "hit")


def legacy_rows(dirty: str) -> list[dict]:
    base = {"suite": "gtn", "task": "ECG", "params": "{}", "status": "ok", "note": "", "git_sha": "ab8e94909719",
            "git_dirty": dirty, "versions": "torch=2.13.0+cpu;numpy=2.3.5", "device": "cpu",
            "cpu": "Intel(R) Xeon(R) Processor", "gpu": "", "threads": "1"}  # fmt: skip
    return [
        {**base, "experiment": "main", "method": "gtn", "seed": "1520808693", "metric": "acc", "value": "87.0",
         "wall_s": "3.973"},
        {**base, "experiment": "main", "method": "fcn", "seed": "1520808693", "metric": "acc",
         "value": "0.30000000000000004", "wall_s": "1.5"},
    ]  # fmt: skip


def test_legacy_results_convert_without_changing_a_number(tmp_path):
    old = legacy_rows(dirty="1")
    with open(tmp_path / "runs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LEGACY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(old)
    assert migrate_legacy(tmp_path)
    with open(tmp_path / "runs.csv", newline="") as fh:
        new = list(csv.DictReader(fh))
    assert [{k: r[k] for k in RUN_COLUMNS} for r in old] == new  # text-identical values and wall times
    doc = json.loads((tmp_path / "provenance.json").read_text())
    assert doc["git_sha"] == "ab8e94909719" and doc["git_dirty"] is True  # kept truthfully
    (env,) = provenance.machines_of(doc)
    assert env["packages"] == {"torch": "2.13.0+cpu", "numpy": "2.3.5"} and env["threads"] == 1
    assert provenance.is_dirty(tmp_path)
    assert not migrate_legacy(tmp_path)  # already converted: nothing to do


def test_a_damaged_legacy_file_is_not_converted(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(",".join(LEGACY_COLUMNS) + "\ngtn,main,ECG")  # truncated
    with pytest.raises(ResultsCorrupt, match="truncated"):
        migrate_legacy(tmp_path)
    assert not (tmp_path / "provenance.json").exists()


def test_nan_values_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs.csv")
    store.record(CELL, [row(CELL, "not_run", math.nan, "not_run")], environment=ENV)
    assert math.isnan(read_runs(tmp_path / "runs.csv")[0]["value"])


def test_library_noise_goes_to_the_cell_log_not_the_console(capfd):
    import logging
    import sys

    noisy = logging.getLogger("claimbench_test_noisylib")
    on_stderr = logging.StreamHandler()  # as transformers does at import: a handler on the real stderr
    noisy.addHandler(on_stderr)
    late = logging.getLogger("claimbench_test_latelib")

    def run(cell, ctx):
        noisy.warning("Some weights were UNEXPECTED; this can be ignored")
        print("Loading weights 100%")
        late.addHandler(logging.StreamHandler())  # a library first imported inside the cell
        late.warning("late library message")
        return {"x": 1.0}

    try:
        experiment = Experiment("exp", run, tasks={"taskA": {}}, methods={"m1": {}})
        result = execute(experiment, CELL, RunOptions(profile="smoke", show_progress=False), {"seeds": 1})
        out, err = capfd.readouterr()
        assert "UNEXPECTED" in result.log and "Loading weights" in result.log and "late library" in result.log
        assert "UNEXPECTED" not in out + err and "Loading weights" not in out + err
        assert on_stderr.stream is sys.stderr and late.handlers[0].stream is sys.stderr  # restored for the next cell
    finally:
        noisy.removeHandler(on_stderr)
        late.handlers.clear()


def test_threads_come_from_a_typed_profile_or_a_dict():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Profile:
        seeds: int
        threads: int | None = None

    local = RunOptions(jobs=1)
    assert local.resolved_threads(Profile(seeds=1, threads=3)) == 3
    assert local.resolved_threads({"seeds": 1, "threads": 2}) == 2
    assert RunOptions(jobs=1, threads=5).resolved_threads(Profile(seeds=1, threads=3)) == 5  # --threads wins
    assert local.resolved_threads(Profile(seeds=1)) >= 1  # cores / jobs
    assert RunOptions(jobs=2).resolved_threads(Profile(seeds=1), exclusive=True) == (os.cpu_count() or 1)  # alone
    assert RunOptions(executor="ray").resolved_threads(Profile(seeds=1)) == 0  # the experiment's cpus decide
