"""Tidy results on disk: runs.csv (one row per cell x metric) and claims.json.

Every write goes to a temporary file that then replaces the target (`os.replace` is atomic), so a
run killed at any moment leaves either the previous file or the new one, never half of one. A file
that does not parse is reported and left untouched: finished rows are never overwritten.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .core import Cell

RUN_COLUMNS = (
    "suite", "experiment", "task", "method", "params", "seed", "metric", "value", "status", "note",
    "git_sha", "git_dirty", "versions", "device", "cpu", "gpu", "threads", "wall_s",
)  # fmt: skip
STATUSES = ("ok", "diverged", "error", "not_run")
FINISHED = ("ok", "diverged")  # a rerun skips these cells; errors and not-run cells are retried
CLAIMS_SCHEMA_VERSION = 1


class ResultsCorrupt(RuntimeError):
    """A results file exists but cannot be read. It has not been modified."""


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_value(value: Any) -> str:
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return "nan"
    return repr(value)


def row_key(row: Mapping[str, Any]) -> tuple[str, str, str, str, int]:
    return (row["experiment"], row["task"], row["method"], row["params"], int(row["seed"]))


def read_runs(path: Path) -> list[dict[str, Any]]:
    """Rows of a runs.csv, validated; `ResultsCorrupt` names the file and the problem."""
    if not path.exists():
        return []
    fix = f"move {path} aside (or restore it from git) and rerun; it has not been modified"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsCorrupt(f"cannot read {path}: {exc}; {fix}") from exc
    if not text.endswith("\n"):
        raise ResultsCorrupt(f"{path} is truncated (no final newline); {fix}")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != RUN_COLUMNS:
        raise ResultsCorrupt(f"{path} has columns {reader.fieldnames}, expected {list(RUN_COLUMNS)}; {fix}")
    rows = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise ResultsCorrupt(f"{path} line {line} has the wrong number of fields; {fix}")
        if row["status"] not in STATUSES:
            raise ResultsCorrupt(f"{path} line {line}: unknown status {row['status']!r}; {fix}")
        try:
            row["seed"] = int(row["seed"])
            row["value"] = float(row["value"]) if row["value"] != "" else math.nan
            json.loads(row["params"])
        except ValueError as exc:
            raise ResultsCorrupt(f"{path} line {line}: {exc}; {fix}") from exc
        rows.append(row)
    return rows


def write_runs(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "value": format_value(row["value"])})
    atomic_write_text(path, buffer.getvalue())


class RunStore:
    """The runs.csv of one suite and profile, kept in grid order and rewritten after each cell."""

    def __init__(self, path: Path, order: list[tuple] | None = None):
        self.path = path
        self.rows = read_runs(path)
        self.order = {key: i for i, key in enumerate(order or [])}

    def finished(self) -> set[tuple]:
        return {row_key(r) for r in self.rows if r["status"] in FINISHED}

    def forget(self, keys: set[tuple]) -> None:
        """Drop the rows of these cells, then save."""
        self.rows = [r for r in self.rows if row_key(r) not in keys]
        write_runs(self.path, self.rows)

    def record(self, cell: Cell, rows: list[dict[str, Any]]) -> None:
        """Replace whatever the store held for this cell by its new rows, then save."""
        self.rows = [r for r in self.rows if row_key(r) != cell.key] + rows
        # Python's sort is stable: rows of one cell keep their metric order, and cells that the
        # current grid does not know (from earlier runs) stay, after the known ones.
        self.rows.sort(key=lambda r: self.order.get(row_key(r), len(self.order)))
        write_runs(self.path, self.rows)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_claims(path: Path, suite: str, profile: str, judged: list[dict[str, Any]]) -> None:
    document = {"schema_version": CLAIMS_SCHEMA_VERSION, "suite": suite, "profile": profile, "claims": judged}
    atomic_write_text(path, json.dumps(_json_safe(document), indent=2, sort_keys=False) + "\n")


def read_claims(path: Path) -> list[dict[str, Any]]:
    fix = f"regenerate it with `claimbench report` (or restore it from git); {path} has not been modified"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ResultsCorrupt(f"{path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(document, dict) or document.get("schema_version") != CLAIMS_SCHEMA_VERSION:
        raise ResultsCorrupt(f"{path}: expected schema_version {CLAIMS_SCHEMA_VERSION}; {fix}")
    claims = document.get("claims")
    if not isinstance(claims, list) or not all(isinstance(c, dict) and "id" in c for c in claims):
        raise ResultsCorrupt(f"{path}: 'claims' must be a list of objects with an 'id'; {fix}")
    return claims
