"""Tidy results on disk, one folder per suite and profile.

- runs.csv: one row per cell x metric, holding only what varies by row;
- provenance.json: code, packages and machines, once (see provenance.py);
- units/<cell hash>.npz: the per-unit arrays a cell returned (per user, per example), whose mean is
  the row's value;
- claims.json: the judged claims.

Every write goes to a temporary file that then replaces the target (`os.replace` is atomic), so a
run killed at any moment leaves either the previous file or the new one, never half of one. A cell's
arrays and provenance are written before its rows, so a row never points at a missing array. A file
that does not parse is reported and left untouched: finished rows are never overwritten.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import provenance
from .core import Cell

RUN_COLUMNS = ("experiment", "task", "method", "params", "seed", "metric", "value", "status", "note", "wall_s")
# runs.csv before provenance.json existed: the same rows with eight constant columns.
LEGACY_COLUMNS = (
    "suite", "experiment", "task", "method", "params", "seed", "metric", "value", "status", "note",
    "git_sha", "git_dirty", "versions", "device", "cpu", "gpu", "threads", "wall_s",
)  # fmt: skip
UNITS = "units"
STATUSES = ("ok", "diverged", "error", "not_run")
FINISHED = ("ok", "diverged")  # a rerun skips these cells; errors and not-run cells are retried
CLAIMS_SCHEMA_VERSION = 1


class ResultsCorrupt(RuntimeError):
    """A results file exists but cannot be read. It has not been modified."""


def atomic_write(path: Path, write: Callable[[IO], Any], mode: str = "w") -> None:
    """`write(file)` into a temporary file beside `path`, then replace `path` with it in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        text = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with os.fdopen(fd, mode, **text) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def format_value(value: Any) -> str:
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return "nan"
    return repr(value)


def row_key(row: Mapping[str, Any]) -> tuple[str, str, str, str, int]:
    return (row["experiment"], row["task"], row["method"], row["params"], int(row["seed"]))


FACTS = ("git_sha", "git_dirty", "versions", "device", "cpu", "gpu", "threads", "host")


def read_runs(path: Path, facts: bool = True) -> list[dict[str, Any]]:
    """Rows of a runs.csv, validated; `ResultsCorrupt` names the file and the problem.

    With `facts`, each row also carries, read-only, the provenance of the environment that ran it
    (FACTS, from provenance.json; they are never written back to runs.csv).
    """
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
    if tuple(reader.fieldnames or ()) not in (RUN_COLUMNS, LEGACY_COLUMNS):
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
    legacy = tuple(reader.fieldnames or ()) == LEGACY_COLUMNS
    by_cell = {} if legacy or not facts else provenance.row_facts(path.parent)
    for i, row in enumerate(rows):
        env = row if legacy else by_cell.get(None) or by_cell.get(row_key(row), {})
        packages = env.get("packages")
        found = {**env, "versions": ";".join(f"{k}={v}" for k, v in packages.items())} if packages else env
        rows[i] = {k: row[k] for k in RUN_COLUMNS}
        if facts:
            rows[i].update({k: found.get(k, "") for k in FACTS})
    return rows


def is_legacy(path: Path) -> bool:
    if not path.exists():
        return False
    with open(path, encoding="utf-8") as fh:
        return tuple(fh.readline().rstrip("\n").split(",")) == LEGACY_COLUMNS


def migrate_legacy(folder: Path) -> bool:
    """Move the constant columns of an old runs.csv into provenance.json; no value changes.

    Returns whether the folder was migrated. Values are copied as text, so not a digit moves.
    """
    path = Path(folder) / "runs.csv"
    if not is_legacy(path):
        return False
    read_runs(path)  # validates; raises ResultsCorrupt and leaves the file alone if it is damaged
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    environments: dict[str, dict[str, Any]] = {}
    cells: dict[str, str] = {}
    shas = {(r["git_sha"], r["git_dirty"]) for r in rows}
    for row in rows:
        packages = dict(item.split("=", 1) for item in row["versions"].split(";") if item)
        env = {"host": "", "python": "", "packages": packages, "device": row["device"], "cpu": row["cpu"],
               "gpu": row["gpu"], "threads": int(row["threads"])}  # fmt: skip
        if len(shas) > 1:  # a folder resumed across commits: keep the code state per environment
            env = {"git_sha": row["git_sha"], "git_dirty": bool(int(row["git_dirty"])), **env}
        env_id = provenance.environment_id(env)
        environments[env_id] = env
        cells[provenance.cell_id(row_key({**row, "seed": int(row["seed"])}))] = env_id
    sha, dirty = sorted(shas)[0] if len(shas) == 1 else ("mixed", any(int(d) for _, d in shas))
    code = {"git_sha": sha, "git_dirty": bool(int(dirty)) if len(shas) == 1 else dirty}
    atomic_write_text(path.with_name(provenance.FILE), _json_text(provenance.document(code, environments, cells)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUN_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
    return True


def _json_text(document: Any) -> str:
    return json.dumps(document, indent=2) + "\n"


def units_name(key: tuple) -> str:
    """The file name of a cell's per-unit arrays: a stable hash of its key."""
    return hashlib.sha256(provenance.cell_id(key).encode()).hexdigest()[:16] + ".npz"


def write_units(folder: Path, key: tuple, arrays: Mapping[str, np.ndarray]) -> None:
    path = Path(folder) / UNITS / units_name(key)
    atomic_write(path, lambda fh: np.savez(fh, **{name: np.asarray(a) for name, a in arrays.items()}), mode="wb")


def load_units(folder: Path):
    """A lookup for the judge: (experiment, task, method, params, seed, metric) -> array or None.

    None when the cell returned a plain number for that metric (or never ran).
    """
    folder = Path(folder)
    opened: dict[str, Any] = {}

    def lookup(experiment: str, task: str, method: str, params: str, seed: int, metric: str) -> np.ndarray | None:
        name = units_name((experiment, task, method, params, int(seed)))
        if name not in opened:
            path = folder / UNITS / name
            try:
                with np.load(path, allow_pickle=False) as data:
                    opened[name] = {k: data[k] for k in data.files}
            except FileNotFoundError:
                opened[name] = {}
            except (OSError, ValueError) as exc:
                raise ResultsCorrupt(f"{path} cannot be read ({exc}); rerun the cell with --fresh") from exc
        return opened[name].get(metric)

    return lookup


def write_runs(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUN_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "value": format_value(row["value"])})
    atomic_write_text(path, buffer.getvalue())


class RunStore:
    """The results folder of one suite and profile: runs.csv kept in grid order, provenance.json and
    units/, rewritten after each cell."""

    def __init__(self, path: Path, order: list[tuple] | None = None, run: Mapping[str, Any] | None = None):
        self.path = path
        self.folder = path.parent
        migrate_legacy(self.folder)
        self.rows = read_runs(path)
        self.order = {key: i for i, key in enumerate(order or [])}
        doc = provenance.read(self.folder) or {}
        machines = provenance.machines_of(doc)
        ids = [provenance.environment_id(m) for m in machines]
        self.environments: dict[str, dict[str, Any]] = dict(zip(ids, machines, strict=True))
        self.cells: dict[str, str] = {c: ids[i] for c, i in doc.get("cells", {}).items() if i < len(ids)}
        if "cells" not in doc and ids:
            self.cells = {provenance.cell_id(row_key(r)): ids[0] for r in self.rows}
        # Code state: the run writing now. A folder resumed across commits keeps each earlier
        # environment's code state inside that environment, so nothing is misattributed.
        self.code = provenance.code_state()
        previous = {k: doc[k] for k in ("git_sha", "git_dirty") if k in doc}
        if previous and previous != self.code:
            self.environments = {k: {**previous, **v} for k, v in self.environments.items()}
        if run is not None:  # the resolved profile and every override of the run writing now
            self.code = {**self.code, "run": dict(run)}

    def finished(self) -> set[tuple]:
        return {row_key(r) for r in self.rows if r["status"] in FINISHED}

    def forget(self, keys: set[tuple]) -> None:
        """Drop the rows of these cells, then save."""
        self.rows = [r for r in self.rows if row_key(r) not in keys]
        self._save()

    def record(
        self,
        cell: Cell,
        rows: list[dict[str, Any]],
        units: Mapping[str, np.ndarray] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace whatever the store held for this cell by its new rows, then save.

        Order: the cell's arrays, then provenance, then runs.csv, each atomically.
        """
        if units:
            write_units(self.folder, cell.key, units)
        if environment is not None:
            env_id = provenance.environment_id(environment)
            self.environments[env_id] = dict(environment)
            self.cells[provenance.cell_id(cell.key)] = env_id
        self.rows = [r for r in self.rows if row_key(r) != cell.key] + rows
        # Python's sort is stable: rows of one cell keep their metric order, and cells that the
        # current grid does not know (from earlier runs) stay, after the known ones.
        self.rows.sort(key=lambda r: self.order.get(row_key(r), len(self.order)))
        self._save()

    def _save(self) -> None:
        present = {provenance.cell_id(row_key(r)) for r in self.rows}
        self.cells = {c: e for c, e in self.cells.items() if c in present}
        if self.cells:
            doc = provenance.document(self.code, self.environments, self.cells)
            atomic_write_text(self.folder / provenance.FILE, _json_text(doc))
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
