"""The tiny suite, end to end through the CLI: list, run, resume after kill -9, report, compare."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_CELLS = {"smoke": 2 * 4 * 3 + 1, "quick": 2 * 4 * 5 + 1}


def claimbench(*args: str, env: dict | None = None, check: int | None = 0) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "CLAIMBENCH_SUITES": "tiny=tiny_suite:SUITE,tinydata=tiny_suite:SUITE_WITH_DATA",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'suites'}",
        **(env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "suites.harness.cli", *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def rows(results: Path, profile: str = "smoke") -> list[dict]:
    with open(results / "tiny" / profile / "runs.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, table: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)


def cells(table: list[dict]) -> set[tuple]:
    return {(r["experiment"], r["task"], r["method"], r["params"], r["seed"]) for r in table}


def claims(results: Path, profile: str = "smoke") -> dict[str, dict]:
    document = json.loads((results / "tiny" / profile / "claims.json").read_text())
    assert document["schema_version"] == 1
    return {c["id"]: c for c in document["claims"]}


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("smoke") / "results"
    claimbench("run", "tiny", "--profile", "smoke", "--results-dir", str(results), "--no-progress")
    return results


def test_list_shows_every_suite_and_its_claims():
    out = claimbench("list").stdout
    assert "tiny.estimate.better" in out and "tiny.count.params" in out
    for name in ("lora", "gtn", "norm"):
        assert f"{name}:" in out


def test_run_writes_tidy_rows_with_provenance(smoke_results):
    table = rows(smoke_results)
    assert len(cells(table)) == TINY_CELLS["smoke"]
    # runs.csv holds only what varies by row; the code and the machine are in provenance.json, once.
    assert list(table[0]) == ["experiment", "task", "method", "params", "seed", "metric", "value", "status", "note",
                              "wall_s"]  # fmt: skip
    assert all(float(row["wall_s"]) >= 0 for row in table)
    doc = json.loads((smoke_results / "tiny" / "smoke" / "provenance.json").read_text())
    assert doc["git_sha"] and isinstance(doc["git_dirty"], bool) and "cells" not in doc
    (machine,) = doc["machines"]
    assert machine["cpu"] and machine["device"] == "cpu" and machine["threads"] >= 1 and "torch" in doc["packages"]
    diverged = [r for r in table if r["status"] == "diverged"]
    assert {r["method"] for r in diverged} == {"unstable"}
    assert {r["metric"] for r in diverged} == {"steps", "diverged"}
    # Seeds are shared across methods: every method ran on the same three seeds.
    seeds = {m: {r["seed"] for r in table if r["method"] == m} for m in ("plain", "better", "copy")}
    assert seeds["plain"] == seeds["better"] == seeds["copy"] and len(seeds["plain"]) == 3


def test_claims_are_judged(smoke_results):
    judged = claims(smoke_results)
    better = judged["tiny.estimate.better"]
    assert better["verdict"] == "reproduced" and better["measured"] == pytest.approx(0.2, abs=0.02)
    assert better["ci_low"] < better["measured"] < better["ci_high"] and better["ci_high"] - better["ci_low"] < 0.05
    assert better["n"] == 6  # 2 tasks x 3 seeds
    assert judged["tiny.estimate.copy"]["verdict"] == "reproduced"
    params = judged["tiny.count.params"]
    assert params["verdict"] == "reproduced" and params["measured"] == 10
    assert params["p_value"] is None  # deterministic: no p-value is invented
    report = (smoke_results / "tiny" / "smoke" / "report.md").read_text()
    assert "tiny.estimate.better" in report and "reproduced" in report


def test_rerun_skips_finished_cells(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    before = (results / "tiny" / "smoke" / "runs.csv").read_text()
    out = claimbench("run", "tiny", "--profile", "smoke", "--results-dir", str(results), "--no-progress").stdout
    assert f"{TINY_CELLS['smoke']} skipped" in out
    assert (results / "tiny" / "smoke" / "runs.csv").read_text() == before


def test_jobs_do_not_change_results(smoke_results, tmp_path):
    claimbench("run", "tiny", "--profile", "smoke", "--jobs", "2", "--results-dir", str(tmp_path), "--no-progress")

    def measured(table):  # everything but timings, which no two runs share
        table = [r for r in table if r["metric"] != "seconds"]
        return [
            (r["experiment"], r["task"], r["method"], r["seed"], r["metric"], r["value"], r["status"]) for r in table
        ]

    assert measured(rows(tmp_path)) == measured(rows(smoke_results))


def test_kill_minus_nine_loses_nothing_and_resumes(tmp_path):
    env = {
        **os.environ,
        "CLAIMBENCH_SUITES": "tiny=tiny_suite:SUITE",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'suites'}",
        "TINY_SLEEP": "0.2",
    }
    args = [sys.executable, "-m", "suites.harness.cli", "run", "tiny", "--profile", "quick",
            "--results-dir", str(tmp_path), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "tiny" / "quick" / "runs.csv"
    deadline = time.time() + 60
    while time.time() < deadline:
        if runs.exists() and len(cells(rows(tmp_path, "quick"))) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survived = rows(tmp_path, "quick")  # parses: the file was never half written
    assert 5 <= len(cells(survived)) < TINY_CELLS["quick"]

    claimbench("run", "tiny", "--profile", "quick", "--results-dir", str(tmp_path), "--no-progress")
    final = rows(tmp_path, "quick")
    assert len(cells(final)) == TINY_CELLS["quick"]
    # Rows finished before the kill are kept as they were, wall time included: not recomputed.
    assert all(row in final for row in survived)


def test_failing_cell_is_recorded_and_the_run_goes_on(tmp_path):
    proc = claimbench("run", "tiny", "--profile", "smoke", "--results-dir", str(tmp_path), "--no-progress",
                      env={"TINY_FAIL": "better"}, check=1)  # fmt: skip
    assert "3 cell(s) failed" in proc.stdout or "6 cell(s) failed" in proc.stdout
    table = rows(tmp_path)
    errors = [r for r in table if r["status"] == "error"]
    assert errors and all(r["method"] == "better" and "was told to fail" in r["note"] for r in errors)
    assert any(r["method"] == "plain" and r["status"] == "ok" for r in table)
    assert claims(tmp_path)["tiny.estimate.better"]["verdict"] == "not run"
    # A rerun retries only the failed cells.
    out = claimbench("run", "tiny", "--profile", "smoke", "--results-dir", str(tmp_path), "--no-progress").stdout
    assert f"{TINY_CELLS['smoke'] - len(cells(errors))} skipped" in out
    assert claims(tmp_path)["tiny.estimate.better"]["verdict"] == "reproduced"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuch"], "unknown suite 'nosuch'"),
        (["run", "tiny", "--profile", "huge"], "unknown profile 'huge'"),
        (["run", "tiny", "--only", "tiny.nope"], "unknown claim id"),
        (["run", "tiny", "--jobs", "0"], "--jobs must be at least 1"),
        (["run", "tiny", "--dataset", "X"], "no setting 'datasets'"),
        (["run", "tinydata", "--data-dir", "/nonexistent/claimbench"], "does not exist"),
        (["list", "nosuch"], "unknown suite"),
    ],
)
def test_bad_input_is_a_clear_error(args, message, tmp_path):
    proc = (
        claimbench(*args, "--results-dir", str(tmp_path), check=2) if args[0] == "run" else claimbench(*args, check=2)
    )
    assert message in proc.stderr
    assert not (tmp_path / "tiny").exists()  # nothing was written


def test_missing_data_directory_is_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CLAIMBENCH_DATA"}
    proc = subprocess.run(
        [sys.executable, "-m", "suites.harness.cli", "run", "tinydata", "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**env, "CLAIMBENCH_SUITES": "tinydata=tiny_suite:SUITE_WITH_DATA",
             "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'suites'}"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no data directory set" in proc.stderr and "CLAIMBENCH_DATA" in proc.stderr


def test_truncated_runs_csv_is_reported_and_kept(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    runs = results / "tiny" / "smoke" / "runs.csv"
    damaged = runs.read_text()[:-40]
    runs.write_text(damaged)
    proc = claimbench("run", "tiny", "--profile", "smoke", "--results-dir", str(results), check=1)
    assert "truncated" in proc.stderr and str(runs) in proc.stderr
    assert runs.read_text() == damaged


def test_corrupt_claims_json_is_reported(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    (results / "tiny" / "smoke" / "claims.json").write_text('{"schema_version": 1, "claims": [')
    proc = claimbench("compare", str(results), str(smoke_results), check=1)
    assert "not valid JSON" in proc.stderr


def test_report_rebuilds_from_results_without_rerunning(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    (results / "tiny" / "smoke" / "report.md").unlink()
    runs_before = (results / "tiny" / "smoke" / "runs.csv").read_text()
    claimbench("report", "--results-dir", str(results))
    assert "tiny.estimate.better" in (results / "tiny" / "smoke" / "report.md").read_text()
    reproduce = (tmp_path / "REPRODUCE.md").read_text()
    assert "tiny.estimate.better" in reproduce
    assert (results / "tiny" / "smoke" / "runs.csv").read_text() == runs_before


def test_compare_passes_on_identical_and_fails_on_an_altered_metric(smoke_results, tmp_path):
    assert "0 failure(s)" in claimbench("compare", str(smoke_results), str(smoke_results)).stdout

    altered = tmp_path / "results"
    shutil.copytree(smoke_results, altered)
    runs = altered / "tiny" / "smoke" / "runs.csv"
    table = rows(altered)
    target = next(r for r in table if r["method"] == "better" and r["metric"] == "score")
    target["value"] = repr(float(target["value"]) + 0.01)
    write_rows(runs, table)
    proc = claimbench("compare", str(smoke_results), str(altered), check=1)
    assert "FAIL" in proc.stdout and "better" in proc.stdout and "score" in proc.stdout


def test_compare_fails_on_a_changed_verdict(smoke_results, tmp_path):
    altered = tmp_path / "results"
    shutil.copytree(smoke_results, altered)
    path = altered / "tiny" / "smoke" / "claims.json"
    document = json.loads(path.read_text())
    document["claims"][0]["verdict"] = "not reproduced"
    path.write_text(json.dumps(document))
    proc = claimbench("compare", str(smoke_results), str(altered), check=1)
    assert "tiny.estimate.better verdict" in proc.stdout


def test_compare_shows_machine_dependent_drift_without_failing(smoke_results, tmp_path):
    altered = tmp_path / "results"
    shutil.copytree(smoke_results, altered)
    table = rows(altered)
    timing = next(r for r in table if r["metric"] == "seconds")
    timing["value"] = repr(float(timing["value"]) * 3)  # 200% slower: beyond the 50% tolerance
    write_rows(altered / "tiny" / "smoke" / "runs.csv", table)
    proc = claimbench("compare", str(smoke_results), str(altered))
    assert "0 failure(s), 1 drift(s)" in proc.stdout and "seconds" in proc.stdout


def test_fresh_reruns_finished_cells_and_keeps_the_old_rows(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    before = (results / "tiny" / "smoke" / "runs.csv").read_text()
    out = claimbench("run", "tiny", "--profile", "smoke", "--fresh", "--results-dir", str(results), "--no-progress")
    summary = next(line for line in out.stdout.splitlines() if line.startswith("tiny / smoke"))
    assert "skipped" not in summary and "6 diverged" in summary
    assert (results / "tiny" / "smoke" / "runs.previous.csv").read_text() == before
    assert len(cells(rows(results))) == TINY_CELLS["smoke"]


def test_fresh_drops_cells_that_left_the_plan_but_keeps_experiments_only_leaves_out(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    path = results / "tiny" / "smoke" / "runs.csv"
    table = rows(results)
    stale = {**next(r for r in table if r["experiment"] == "estimate"), "method": "retired"}
    write_rows(path, [*table, stale])
    only = ("--only", "tiny.estimate.better")
    claimbench("run", "tiny", "--profile", "smoke", "--fresh", *only, "--results-dir", str(results), "--no-progress")
    after = rows(results)
    assert "retired" not in {r["method"] for r in after}
    assert {r["experiment"] for r in after} == {"estimate", "count"}  # --only left `count` alone


def test_console_ends_with_the_verdicts_and_names_the_log(smoke_results, tmp_path):
    out = claimbench("run", "tiny", "--profile", "smoke", "--results-dir", str(tmp_path), "--no-progress").stdout
    summary = out[out.index("Summary of verdicts") :]
    assert "| tiny/smoke" in summary and "reproduced" in summary
    log = tmp_path / "tiny" / "smoke" / "run.log"
    assert f"library warnings and messages of the cells: {log}" in out and log.exists()


def test_report_and_compare_warn_about_a_dirty_tree(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    path = results / "tiny" / "smoke" / "provenance.json"
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "git_dirty": False}))  # as from a clean checkout
    assert "UNCOMMITTED" not in claimbench("report", "--results-dir", str(results)).stderr
    path.write_text(json.dumps({**document, "git_dirty": True}))
    for proc in (
        claimbench("report", "--results-dir", str(results)),
        claimbench("compare", str(smoke_results), str(results)),
    ):
        assert "WARNING" in proc.stderr and "UNCOMMITTED CHANGES" in proc.stderr and "tiny/smoke" in proc.stderr


def test_list_costs_estimates_every_profile_from_timed_steps_and_shows_measured_ones(smoke_results, tmp_path):
    out = claimbench("list", "tiny", "--costs", "--results-dir", str(smoke_results)).stdout
    table = [ln.split() for ln in out.splitlines() if ln.split()[:2] in (["smoke", "estimate"], ["full", "estimate"])]
    (smoke, full) = table
    assert int(smoke[2]) == 2 * 4 * 3 and int(full[2]) == 2 * 4 * 10
    # the estimate follows the profile's steps: full trains 100x smoke's steps in 10/3 the cells
    ratio = float(full[3]) / float(smoke[3])
    assert 100 * 10 / 3 / 4 < ratio < 100 * 10 / 3 * 4  # one probe per profile, so timing noise within 4x
    assert "(24 cells)" in out  # smoke has run: its measured time stands beside the estimate
    count_rows = [ln for ln in out.splitlines() if ln.split()[1:2] == ["count"]]
    assert all("unknown" in ln and "no step model" in ln for ln in count_rows)
    assert "GPU-hours" in out and "ASSUMPTION" in out
    only = claimbench("list", "tiny", "--costs", "--profile", "quick", "--results-dir", str(smoke_results)).stdout
    assert "quick: about" in only and "smoke: about" not in only
    bad = claimbench("list", "tiny", "--costs", "--profile", "huge", "--results-dir", str(smoke_results), check=2)
    assert "unknown profile 'huge'" in bad.stderr and "tiny.estimate" not in bad.stdout


def test_report_and_site_on_a_missing_results_folder_exit_2_and_change_nothing(tmp_path):
    readme, reproduce = (ROOT / "README.md").read_text(), (ROOT / "REPRODUCE.md").read_text()
    for command in ("report", "site"):
        proc = claimbench(command, "--results-dir", str(tmp_path / "typo"), check=2)
        assert "typo does not exist" in proc.stderr
    assert (ROOT / "README.md").read_text() == readme and (ROOT / "REPRODUCE.md").read_text() == reproduce


def test_compare_fails_a_timing_claim_that_flips_or_leaves_its_committed_interval(smoke_results, tmp_path):
    altered = tmp_path / "results"
    shutil.copytree(smoke_results, altered)
    path = altered / "tiny" / "smoke" / "claims.json"
    document = json.loads(path.read_text())
    better = next(c for c in document["claims"] if c["id"] == "tiny.estimate.better")
    committed = copy.deepcopy(document)
    # the committed claim, as a timing claim: machine-dependent, with its interval
    for doc in (committed, document):
        next(c for c in doc["claims"] if c["id"] == "tiny.estimate.better")["machine_dependent"] = True
    (smoke_copy := tmp_path / "committed").mkdir()
    shutil.copytree(smoke_results / "tiny", smoke_copy / "tiny")
    (smoke_copy / "tiny" / "smoke" / "claims.json").write_text(json.dumps(committed))
    inside = (better["ci_low"] + better["ci_high"]) / 2
    for measured, outcome in ((inside, 0), (better["ci_high"] + 1.0, 1)):
        next(c for c in document["claims"] if c["id"] == "tiny.estimate.better")["measured"] = measured
        path.write_text(json.dumps(document))
        proc = claimbench("compare", str(smoke_copy), str(altered), "--timing", check=outcome)
        assert ("committed interval" in proc.stdout) == bool(outcome)
    # without --timing (CI: nobody controls its machine's load) the same move is drift, not a failure
    drift = claimbench("compare", str(smoke_copy), str(altered), check=0)
    assert "committed interval" in drift.stdout and "0 failure(s)" in drift.stdout


def test_compare_reads_performance_switches_exactly_and_only_restricts_to_claims(smoke_results, tmp_path):
    altered = tmp_path / "results"
    shutil.copytree(smoke_results, altered)
    table = rows(altered)
    steps = next(r for r in table if r["metric"] == "steps")  # no claim uses it: compared by nobody...
    steps["value"] = repr(float(steps["value"]) + 1)
    write_rows(altered / "tiny" / "smoke" / "runs.csv", table)
    assert "0 failure(s)" in claimbench("compare", str(smoke_results), str(altered)).stdout
    env = {"CLAIMBENCH_SUITES": "tiny=tiny_suite:SUITE_WITH_SWITCH"}  # ...unless declared a switch
    proc = claimbench("compare", str(smoke_results), str(altered), env=env, check=1)
    assert "exact" in proc.stdout and "steps" in proc.stdout
    only = claimbench("compare", str(smoke_results), str(altered), "--only", "tiny.count.params", env=env)
    assert "0 failure(s)" in only.stdout  # the estimate experiment is not behind that claim


def test_grade_judges_external_rows_and_rejects_bad_ones_with_exit_2(tmp_path):
    rows = ROOT / "tests" / "harness" / "data" / "external_rows.csv"
    out = claimbench("grade", "gtn", str(rows), "--out", str(tmp_path / "graded")).stdout
    assert "gtn.acc.JapaneseVowels" in out and (tmp_path / "graded" / "claims.json").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("experiment,task\nmain,ECG\n")
    proc = claimbench("grade", "gtn", str(bad), "--out", str(tmp_path / "nothing"), check=2)
    assert "missing" in proc.stderr and not (tmp_path / "nothing").exists()


def test_until_decided_needs_a_budget_and_records_its_looks(tmp_path):
    proc = claimbench("run", "tiny", "--profile", "smoke", "--until-decided", "--results-dir", str(tmp_path), check=2)
    assert "--budget" in proc.stderr
    claimbench("run", "tiny", "--profile", "smoke", "--until-decided", "--budget", "bad", "--results-dir",
               str(tmp_path), check=2)  # fmt: skip
    out = claimbench("run", "tiny", "--profile", "smoke", "--until-decided", "--budget", "20s", "--results-dir",
                     str(tmp_path), "--no-progress").stdout  # fmt: skip
    assert "until-decided stopped" in out
    assert (tmp_path / "tiny" / "smoke" / "sequential.json").exists()


def test_readme_generated_blocks_match_the_registry_and_the_committed_results():
    """README's suite table and verdict table are generated; this fails when they drift."""
    from suites.harness.report import readme_text

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_text(text, ROOT / "results") == text, "run `nox -s report` to regenerate README's tables"
    assert "not implemented yet" not in text


def test_reproduce_md_is_compact_and_its_tables_do_not_break():
    text = (ROOT / "REPRODUCE.md").read_text(encoding="utf-8")
    assert len(text.encode()) < 60_000
    for line in text.splitlines():
        if line.startswith("| `"):  # a claim row: five cells, no unescaped bar inside a cell
            assert line.replace("\\|", "").count("|") == 6, line


def test_console_summary_names_corrupt_data_exits_1_and_reports_changed_verdicts(tmp_path):
    args = ("run", "tiny", "--profile", "smoke", "--results-dir", str(tmp_path), "--no-progress")
    proc = claimbench(*args, env={"TINY_MISSING": "copy"}, check=1)
    assert "cell(s) not run: tiny/copy.csv in the data directory is corrupt; fix: fetch it again" in proc.stdout
    assert "the other cells are saved" in proc.stdout and "read next:" in proc.stdout
    assert {r["method"] for r in rows(tmp_path) if r["status"] == "ok"} >= {"plain", "better"}
    again = claimbench(*args)  # the data are back: the copy cells run, and its claim's verdict moves
    assert "verdict(s) changed" in again.stdout and "tiny.estimate.copy: not run ->" in again.stdout


def test_a_run_with_overrides_writes_its_own_folder_and_provenance_records_them(smoke_results, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke_results, results)
    before = (results / "tiny" / "smoke" / "runs.csv").read_text()
    claimbench("run", "tiny", "--profile", "smoke", "--seeds", "2", "--base-seed", "7", "--results-dir", str(results),
               "--no-progress")  # fmt: skip
    assert (results / "tiny" / "smoke" / "runs.csv").read_text() == before  # the profile's rows are untouched
    variant = results / "tiny" / "smoke+seeds=2,base_seed=7"
    run = json.loads((variant / "provenance.json").read_text())["run"]
    assert run["profile"] == "smoke" and run["seeds"] == 2 and run["base_seed"] == 7
    assert (variant / "claims.json").exists() and (variant / "report.md").exists()


def test_dataset_names_are_checked_before_the_run_for_suites_without_a_check_of_their_own():
    from suites.harness.registry import get_suite
    from suites.harness.runner import RunOptions, UsageError, validate

    lora = get_suite("lora")
    assert lora.check is None
    with pytest.raises(UsageError, match="has no dataset 'foo'; known: "):
        validate(lora, RunOptions(profile="smoke", overrides={"datasets": ["foo"]}))
