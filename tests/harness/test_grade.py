"""Grading external rows: the shipped example comes out both ways on the GTN suite's real claims, and
every kind of bad input fails with an error that names the problem and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from suites.harness.grade import SCHEMA_PATH, RowsInvalid, _small_checker, grade, parse_rows, schema
from suites.harness.judge import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED, judge
from suites.harness.registry import get_suite
from suites.harness.store import RUN_COLUMNS, load_units, read_claims, read_runs

EXAMPLE = Path(__file__).parent / "data" / "external_rows.csv"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gtn():
    return get_suite("gtn")


@pytest.fixture(scope="module")
def graded(gtn, tmp_path_factory):
    out = tmp_path_factory.mktemp("graded")
    return {c["id"]: c for c in grade(gtn, EXAMPLE, out)}, out


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _example_text(transform=lambda line: line) -> str:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return "\n".join([lines[0], *map(transform, lines[1:])]) + "\n"


def test_example_comes_out_both_ways(graded):
    claims, _ = graded
    assert claims["gtn.acc.JapaneseVowels"]["verdict"] == REPRODUCED
    assert claims["gtn.acc.ECG"]["verdict"] == NOT_REPRODUCED
    assert claims["gtn.acc.JapaneseVowels"]["n"] == 8
    # both judged claims of the family share its adjustment: m = 2, level 1 - 2 * 0.05 / 2
    assert claims["gtn.acc.ECG"]["ci_level"] == pytest.approx(0.95)


def test_too_few_units_says_how_many_the_test_needs(graded):
    libras = graded[0]["gtn.acc.Libras"]
    assert libras["verdict"] == NOT_RUN
    assert "too few units: 1 unit(s) of task/seed" in libras["notes"]
    assert "needs at least 2" in libras["notes"] and "1 more" in libras["notes"]


def test_absent_rows_are_not_run_with_the_reason(graded):
    official = graded[0]["gtn.acc_official.JapaneseVowels"]
    assert official["verdict"] == NOT_RUN
    assert "no rows of metric 'acc_official'" in official["notes"]
    rank = graded[0]["gtn.rank.vs_baselines"]
    assert rank["verdict"] == NOT_RUN and "for the baseline" in rank["notes"]


def test_outputs_are_written_and_readable(graded):
    claims, out = graded
    stored = {c["id"]: c["verdict"] for c in read_claims(out / "claims.json")}
    assert stored == {i: c["verdict"] for i, c in claims.items()}
    assert json.loads((out / "claims.json").read_text())["profile"] == "external"
    report = (out / "report.md").read_text()
    assert "gtn.acc.JapaneseVowels" in report and "## Not run" in report
    assert (out / "figures" / "forest.png").stat().st_size > 0 and "figures/forest.png" in report
    # the audit's finding sits beside the claim whose paper value it concerns
    assert "nearest attainable values are 98.6 and 98.9" in claims["gtn.acc.JapaneseVowels"]["paper_audit"]
    assert "Paper-number audit" in report
    assert claims["gtn.acc.ECG"]["paper_audit"] == ""


def test_a_results_folder_grades_like_its_csv(gtn, graded, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "runs.csv")
    again = {c["id"]: c["verdict"] for c in grade(gtn, folder, tmp_path / "out")}
    assert again == {i: c["verdict"] for i, c in graded[0].items()}


def test_runs_without_training_record_are_held_back(gtn, tmp_path):
    rows = _write(tmp_path, _example_text(lambda line: "" if ",stop_reason," in line else line).replace("\n\n", "\n"))
    claims = {c["id"]: c for c in grade(gtn, rows, tmp_path / "out")}
    assert claims["gtn.acc.JapaneseVowels"]["verdict"] == INCONCLUSIVE
    assert "no training record" in claims["gtn.acc.JapaneseVowels"]["notes"]


@pytest.mark.parametrize("name", ["gtn", "heater"])  # heater pairs per-user arrays (units/)
def test_grade_uses_the_same_judge_as_a_run(name, tmp_path):
    """claimbench's own committed rows pass the schema and get the verdicts the judge gives them."""
    suite, folder = get_suite(name), REPO / "results" / name / "smoke"
    rows = read_runs(folder / "runs.csv")
    expected = judge(suite.claims, rows, device=rows[0]["device"] or "cpu", units=load_units(folder))
    assert {c["id"]: c["verdict"] for c in grade(suite, folder, tmp_path / "out")} == {
        c["id"]: c["verdict"] for c in expected
    }


def test_missing_columns_are_named_with_the_fix(gtn, tmp_path):
    rows = _write(tmp_path, "experiment,task,method,seed,value\nmain,ECG,gtn,1,90\n")
    with pytest.raises(RowsInvalid, match=r"missing column\(s\) metric") as error:
        grade(gtn, rows, tmp_path / "out")
    assert str(SCHEMA_PATH) in str(error.value)
    assert not (tmp_path / "out").exists()  # nothing is written from rows that failed


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (",JapaneseVowels,", ",JapanesVowels,", r"unknown task 'JapanesVowels' in experiment 'main'.*did you mean 'JapaneseVowels'"),
        (",gtn,", ",gtn_v2,", r"unknown method 'gtn_v2' in experiment 'main'.*known: .*fcn"),
        (",acc,", ",accuracy,", r"unknown metric 'accuracy'.*known: .*acc_official"),
        ("main,", "mian,", r"unknown experiment 'mian'.*did you mean 'main'.*known: main, official, zscore"),
    ],
)  # fmt: skip
def test_unknown_names_list_the_known_ones(gtn, tmp_path, old, new, message):
    rows = _write(tmp_path, _example_text(lambda line: line.replace(old, new, 1)))
    with pytest.raises(RowsInvalid, match=message):
        grade(gtn, rows, tmp_path / "out")


def test_the_known_tasks_cover_every_profile(gtn, tmp_path):
    """NATOPS runs only at the full profile and no claim names it: rows on it are known, not an error."""
    rows = _write(tmp_path, _example_text(lambda line: line.replace(",ECG,", ",NATOPS,")))
    claims = {c["id"]: c for c in grade(gtn, rows, tmp_path / "out")}
    assert claims["gtn.acc.ECG"]["verdict"] == NOT_RUN
    assert claims["gtn.acc.JapaneseVowels"]["verdict"] == REPRODUCED


def test_type_errors_name_the_line_and_column(tmp_path):
    text = _example_text(lambda line: line.replace(",11,", ",eleven,").replace(",ok,", ",finished,"))
    with pytest.raises(RowsInvalid) as error:
        parse_rows(text, "rows.csv")
    message = str(error.value)
    assert "rows.csv line 2: seed: 'eleven' is not of type 'integer'" in message
    assert "status: 'finished' is not one of" in message
    assert "(+" in message  # many problems: the first few listed, the rest counted


def test_bad_params_and_ragged_lines(tmp_path):
    header = ",".join(RUN_COLUMNS)
    with pytest.raises(RowsInvalid, match="params: '\\[1\\]' is not a JSON object"):
        parse_rows(f'{header}\nmain,ECG,gtn,"[1]",1,acc,90,ok,,1\n', "rows.csv")
    with pytest.raises(RowsInvalid, match="line 2: 10 columns expected"):
        parse_rows(f"{header}\nmain,ECG,gtn,{{}},1,acc,90\n", "rows.csv")


def test_optional_columns_take_their_defaults():
    (row,) = parse_rows("experiment,task,method,seed,metric,value\nmain,ECG,gtn,3,acc,\n", "rows.csv")
    assert row["params"] == "{}" and row["status"] == "ok" and row["wall_s"] is None
    assert row["seed"] == 3 and row["value"] != row["value"]  # NaN: no value


def test_schema_describes_exactly_the_runs_csv_columns():
    spec = schema()
    assert list(spec["properties"]) == list(RUN_COLUMNS)
    assert set(spec["required"]) <= set(RUN_COLUMNS)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(spec)


@pytest.mark.parametrize(
    "row",
    [
        {"experiment": "main", "task": "ECG", "method": "gtn", "seed": 1, "metric": "acc", "value": 9.0},
        {"experiment": "", "task": "ECG", "method": "gtn", "seed": "x", "metric": "acc", "value": "a"},
        {"task": "ECG", "method": "gtn", "seed": 1.5, "metric": "acc", "value": None, "status": "done"},
        {"experiment": "main", "task": "ECG", "method": "gtn", "seed": True, "metric": "acc", "value": 1, "wall_s": -1},
    ],
)  # fmt: skip
def test_the_fallback_checker_agrees_with_jsonschema(row):
    """Where jsonschema is not installed the small checker decides; both must find the same number of problems."""
    jsonschema = pytest.importorskip("jsonschema")
    expected = list(jsonschema.Draft202012Validator(schema()).iter_errors(row))
    assert len(_small_checker(row, schema())) == len(expected)
