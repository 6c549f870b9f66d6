"""Grade anyone's results against a suite's claims: external rows, the same judge, the same rule.

A reimplementation, a reproducibility report or an agent's output is graded when its rows follow
the published schema (`schema/runs.schema.json`: one row per cell and metric, as in runs.csv).
`grade` validates the rows (columns, types, and the names the suite knows), judges them with
`judge.judge`, and writes claims.json and report.md into a folder the caller names. Nothing is
rerun and no value is changed; claims whose rows are absent are `not run`, with the reason.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import forest, provenance, training
from .audit import audit_notes
from .core import Suite
from .judge import NOT_RUN, collect, frame_of, judge, select
from .report import RULE_SUMMARY, claims_table, measurements_table, ours
from .store import UNITS, atomic_write_text, load_units, read_runs, write_claims

SCHEMA_PATH = Path(__file__).with_name("schema") / "runs.schema.json"
PROFILE = "external"  # the profile field of claims.json: these rows came from outside claimbench
DEFAULTS = {"params": "{}", "status": "ok", "note": "", "wall_s": None}
MIN_UNITS = {"exact": 1}  # every other test needs a spread, so at least two units
MAX_LISTED = 8  # names and lines listed per problem; the rest are counted
REPO_RESULTS = Path(__file__).resolve().parents[2] / "results"


class RowsInvalid(ValueError):
    """External rows that cannot be graded; the message lists every problem and how to fix it."""


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# the schema: jsonschema when installed, else a checker of exactly the keywords the schema uses

_TYPES = {"string": str, "integer": int, "number": (int, float), "null": type(None), "object": dict}


def _small_checker(instance: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """type, required, enum, minLength and minimum: the keywords runs.schema.json uses."""
    errors = [f"{name!r} is a required property" for name in spec.get("required", ()) if name not in instance]
    for name, rule in spec.get("properties", {}).items():
        if name not in instance:
            continue
        value = instance[name]
        kinds = rule.get("type")
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if kinds and not any(isinstance(value, _TYPES[k]) and not isinstance(value, bool) for k in kinds):
            errors.append(f"{value!r} is not of type {', '.join(map(repr, kinds))}")
        elif "enum" in rule and value not in rule["enum"]:
            errors.append(f"{value!r} is not one of {rule['enum']}")
        elif isinstance(value, str) and len(value) < rule.get("minLength", 0):
            errors.append(f"{value!r} should be non-empty")
        elif isinstance(value, (int, float)) and "minimum" in rule and value < rule["minimum"]:
            errors.append(f"{value!r} is less than the minimum of {rule['minimum']}")
    return errors


def schema_errors(row: Mapping[str, Any], spec: Mapping[str, Any] | None = None) -> list[str]:
    """The schema's complaints about one parsed row, each prefixed with the column it concerns."""
    spec = spec or schema()
    try:
        import jsonschema
    except ImportError:  # not a dependency yet: the small checker covers the keywords used
        return _small_checker(row, spec)
    validator = jsonschema.Draft202012Validator(spec)
    return [(f"{e.path[0]}: " if e.path else "") + e.message for e in validator.iter_errors(dict(row))]


# --------------------------------------------------------------------------------------------
# reading external rows


def _number(text: str) -> float | str | None:
    text = text.strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text  # left as text: the schema names it


def _integer(text: str) -> int | str:
    try:
        return int(text.strip())
    except ValueError:
        return text


def parse_rows(text: str, source: str) -> list[dict[str, Any]]:
    """CSV text in the runs.csv schema -> typed rows; RowsInvalid lists every problem found."""
    spec = schema()
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    missing = [c for c in spec["required"] if c not in columns]
    if missing:
        raise RowsInvalid(
            f"{source}: missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'}). "
            f"Add them: every row needs {', '.join(spec['required'])}; params, status, note and wall_s are "
            f"optional (defaults {{}}, ok, '', empty). The schema is {SCHEMA_PATH}."
        )
    rows, problems = [], []
    for line, raw in enumerate(reader, start=2):
        if None in raw or any(v is None for v in raw.values()):
            problems.append(f"{source} line {line}: {len(columns)} columns expected; check the commas and quoting")
            continue
        row: dict[str, Any] = {**DEFAULTS, **{k: v for k, v in raw.items() if v != "" or k not in DEFAULTS}}
        row["seed"] = _integer(row["seed"])
        row["value"] = _number(row["value"])
        row["wall_s"] = _number(row["wall_s"]) if isinstance(row["wall_s"], str) else row["wall_s"]
        found = schema_errors(row, spec)
        try:
            if not isinstance(json.loads(row["params"]), dict):
                found.append(f"params: {row['params']!r} is not a JSON object")
        except ValueError:
            found.append(f'params: {row["params"]!r} is not JSON; write {{}} or e.g. {{"rank": 4}}')
        problems += [f"{source} line {line}: {message}" for message in found]
        row["value"] = math.nan if row["value"] is None else row["value"]  # the judge reads NaN as "no value"
        rows.append(row)
    if problems:
        raise RowsInvalid(_listing(problems, f"{source} does not follow the schema {SCHEMA_PATH}"))
    return rows


def _listing(problems: Sequence[str], headline: str) -> str:
    shown = [f"  - {p}" for p in problems[:MAX_LISTED]]
    more = [f"  (+{len(problems) - MAX_LISTED} more)"] if len(problems) > MAX_LISTED else []
    return "\n".join([f"{headline}:", *shown, *more])


def read_external(rows_path: Path) -> tuple[list[dict[str, Any]], Any, str]:
    """Rows, a per-unit array lookup (a results folder with units/, else None) and the device.

    ROWS is a CSV file, or a results folder holding runs.csv (and optionally units/ and
    provenance.json, as `claimbench run` writes them)."""
    rows_path = Path(rows_path)
    folder = rows_path if rows_path.is_dir() else None
    path = rows_path / "runs.csv" if folder else rows_path
    if not path.is_file():
        raise RowsInvalid(f"{path} does not exist; ROWS is a CSV in the runs.csv schema or a folder holding runs.csv")
    rows = parse_rows(path.read_text(encoding="utf-8"), str(path))
    units = load_units(folder) if folder and (folder / UNITS).is_dir() else None
    devices = {str(r["device"]) for r in rows if r.get("device")}
    machines = provenance.machines_of(provenance.read(folder) or {}) if folder else []
    device = devices.pop() if len(devices) == 1 else str(machines[0].get("device", "cpu")) if machines else "cpu"
    return rows, units, device


# --------------------------------------------------------------------------------------------
# the names a suite knows


def known_names(suite: Suite) -> dict[str, Any]:
    """Experiments (with their tasks and methods) at any profile, and the metrics the suite uses.

    Metrics are not declared by experiments, so they are those its claims read, the training
    record, and those in the suite's committed results (what its own runs emit)."""
    experiments: dict[str, dict[str, set[str]]] = {}
    for profile in suite.profiles:
        try:
            built = suite.experiments(profile)
        except Exception:  # noqa: BLE001 - a profile that cannot be built here names nothing new
            continue
        for e in built:
            names = experiments.setdefault(e.name, {"tasks": set(), "methods": set()})
            names["tasks"].update(e.tasks)
            names["methods"].update(e.methods)
    metrics = {*training.RECORD_METRICS, training.REACHED_TARGET}
    for claim in suite.claims:
        names = experiments.setdefault(claim.experiment, {"tasks": set(), "methods": set()})
        metrics.add(claim.metric)
        for filters in (claim.treatment, claim.baseline or {}):
            for column, kind in (("task", "tasks"), ("method", "methods")):
                wanted = filters.get(column)
                names[kind].update(wanted if isinstance(wanted, (list, tuple, set)) else [wanted] if wanted else [])
    for committed in sorted((REPO_RESULTS / suite.name).glob("*/runs.csv")):
        metrics.update(r["metric"] for r in read_runs(committed, facts=False))
    return {"experiments": experiments, "metrics": metrics}


def _unknown(kind: str, value: str, lines: list[int], known: set[str], where: str = "") -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    at = ", ".join(map(str, lines[:MAX_LISTED])) + (" ..." if len(lines) > MAX_LISTED else "")
    return f"unknown {kind} {value!r}{where} on line(s) {at}{hint}; known: {', '.join(sorted(known))}"


def name_problems(suite: Suite, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Experiments, tasks, methods and metrics the suite does not know, each once, with the known ones."""
    known = known_names(suite)
    experiments, metrics = known["experiments"], known["metrics"]
    seen: dict[tuple[str, ...], list[int]] = {}
    for line, row in enumerate(rows, start=2):
        if row["experiment"] not in experiments:
            seen.setdefault(("experiment", row["experiment"]), []).append(line)
            continue
        names = experiments[row["experiment"]]
        for column, kind in (("task", "tasks"), ("method", "methods")):
            if row[column] not in names[kind]:
                seen.setdefault((column, row[column], row["experiment"]), []).append(line)
        if row["metric"] not in metrics:
            seen.setdefault(("metric", row["metric"]), []).append(line)
    problems = []
    for key, lines in seen.items():
        kind, value = key[0], key[1]
        if kind == "experiment":
            problems.append(_unknown(kind, value, lines, set(experiments)))
        elif kind == "metric":
            problems.append(_unknown(kind, value, lines, metrics))
        else:
            problems.append(_unknown(kind, value, lines, experiments[key[2]][f"{kind}s"], f" in experiment {key[2]!r}"))
    return problems


# --------------------------------------------------------------------------------------------
# grading


def _units_present(claim, frame, units) -> int | None:
    """Independent units the claim's test would see (None when its rows cannot be collected)."""
    try:
        data = collect(claim, frame, units)
    except (ValueError, KeyError):
        return None
    if data.treatment.empty:
        return None
    return len(data.treatment)


def _absent_reason(claim, frame) -> str | None:
    """Why a claim has no rows to judge, in the terms of external rows (None: rows are there)."""
    ran = frame[(frame["experiment"] == claim.experiment)] if not frame.empty else frame
    if not ran.empty and ran["status"].isin(["not_run", "error"]).any():
        return None  # the judge's reason names the rows' own notes
    for side, filters in (("treatment", claim.treatment), ("baseline", claim.baseline)):
        if filters is None:
            continue
        mine = select(ran[ran["metric"] == claim.metric], filters) if not ran.empty else ran
        if mine.empty:
            wanted = ", ".join(f"{k}={v}" for k, v in filters.items())
            return (f"no rows of metric {claim.metric!r} in experiment {claim.experiment!r} for the {side} "
                    f"({wanted}); add them to grade this claim")  # fmt: skip
    return None


def grade(suite: Suite, rows_path: Path, out: Path, device: str | None = None) -> list[dict[str, Any]]:
    """Judge external rows against the suite's claims; write claims.json, report.md and figures/forest.png
    into `out`.

    Raises RowsInvalid (nothing written) when the rows break the schema or name experiments, tasks,
    methods or metrics the suite does not know. Claims with too few units, or none, are `not run`
    with the reason and, for too few, how many units the test needs."""
    rows, units, found_device = read_external(Path(rows_path))
    problems = name_problems(suite, rows)
    if problems:
        raise RowsInvalid(_listing(problems, f"{rows_path}: names the suite {suite.name!r} does not know"))
    frame = frame_of(rows)
    judged = judge(suite.claims, rows, device=device or found_device, units=units)
    for entry in judged:
        claim = suite.claim(entry["id"])
        if entry["verdict"] == NOT_RUN:
            n = _units_present(claim, frame, units)
            needed = MIN_UNITS.get(claim.test, 2)
            if n is not None and n < needed:
                entry["notes"] = (f"too few units: {n} unit(s) of {'/'.join(claim.unit)} where the {claim.test} test "
                                  f"needs at least {needed}; add rows for {needed - n} more ({entry['notes']})")  # fmt: skip
            else:
                entry["notes"] = _absent_reason(claim, frame) or entry["notes"]
        entry["paper_audit"] = audit_notes(claim)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_claims(out / "claims.json", suite.name, PROFILE, judged)
    title = f"{suite.title} (external rows): every claim against the paper"
    forest.forest_plot(judged, out / "figures" / "forest.png", title)
    atomic_write_text(out / "report.md", report_text(suite, judged, frame, Path(rows_path)))
    return judged


def report_text(suite: Suite, judged: Sequence[Mapping[str, Any]], frame, rows_path: Path) -> str:
    graded = [c for c in judged if c["verdict"] != NOT_RUN]
    lines = [
        f"# {suite.title}: `{suite.name}` claims graded on external rows",
        "",
        f"Generated by `claimbench grade {suite.name} {rows_path}` from rows claimbench did not produce; "
        "the claims, their regions and the rule are the suite's own, declared before these rows existed.",
        "",
        f"{len(graded)} of {len(judged)} claims had rows to judge; the others are `not run`, with the reason.",
        "",
        "## Claims",
        "",
        RULE_SUMMARY,
        "",
        claims_table(graded) if graded else "No claim had rows to judge.",
        "",
        "### Claim by claim",
        "",
    ]
    lines[-3:-3] = ["![forest](figures/forest.png)", ""]
    for c in graded:
        lines.append(f"- **{c['id']}** ({c['source']}): \"{c['statement']}\" Paper: {c['paper_value_text']}. "
                     f"Ours: {ours(c)} ({c['verdict']}).")  # fmt: skip
        if c["notes"]:
            lines.append(f"  Notes: {c['notes']}")
        if c.get("paper_audit"):
            lines.append(f"  Paper-number audit: {c['paper_audit']}")
    not_run = [c for c in judged if c["verdict"] == NOT_RUN]
    if not_run:
        lines += ["", "## Not run", "", *(f"- **{c['id']}**: {c['notes']}" for c in not_run)]
    if not frame.empty:
        lines += ["", "## Measurements", "", measurements_table(frame)]
    return "\n".join(lines) + "\n"
