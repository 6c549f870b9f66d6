"""Where a number came from: the code (git), the packages and the machine, once per results folder.

Each results folder holds one `provenance.json` beside its runs.csv, the way asv writes one
machine.json: the code state of the driver (git sha, dirty flag), and one entry per distinct
environment that ran cells (host, packages, device, CPU/GPU model, threads). When cells ran in more
than one environment (a cluster, or a resume on another machine), `cells` names the environment of
each cell; otherwise every cell ran in the only one, and the file says so by omitting `cells`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import re
import socket
import subprocess
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FILE = "provenance.json"
SCHEMA_VERSION = 1
NOT_TRACKED_EXTRAS = ("test", "all", "cluster")  # tools, not what computes a number


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@cache
def git_state() -> tuple[str, bool]:
    """(short sha, dirty); ("unknown", False) outside a git checkout.

    results/ is excluded from the dirty check: writing results must not make the code dirty.
    """
    sha = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return sha, bool(status)


def _requirement_name(requirement: str) -> tuple[str, str | None]:
    """('ray', 'cluster') from 'ray[default]; extra == "cluster"'."""
    spec, _, marker = requirement.partition(";")
    name = re.split(r"[\s\[<>=!~;]", spec.strip(), maxsplit=1)[0]
    extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
    return name, extra.group(1) if extra else None


@cache
def tracked_packages() -> tuple[str, ...]:
    """The packages that compute numbers: claimbench's dependencies and its suites' extras.

    Read from pyproject.toml in a source checkout (the installed metadata may predate an edit of
    it), else from the installed distribution's metadata. Adding a suite's extra tracks its packages.
    """
    requirements: list[str] = []
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.exists():
        import tomllib

        project = tomllib.loads(pyproject.read_text())["project"]
        requirements += project.get("dependencies", [])
        for extra, items in project.get("optional-dependencies", {}).items():
            requirements += [f'{item}; extra == "{extra}"' for item in items]
    else:
        with contextlib.suppress(metadata.PackageNotFoundError):
            requirements += metadata.requires("claimbench") or []
    names = []
    for requirement in requirements:
        name, extra = _requirement_name(requirement)
        if extra not in NOT_TRACKED_EXTRAS and name != "claimbench" and name not in names:
            names.append(name)
    return tuple(names)


@cache
def package_versions() -> dict[str, str]:
    found = {}
    for name in tracked_packages():
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model(device: str) -> str:
    if not device.startswith("cuda"):
        return ""
    import torch

    return torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else "unavailable"


def environment(device: str, threads: int) -> dict[str, Any]:
    """Facts about the machine a cell runs on; computed where the cell runs (a worker, on a cluster)."""
    return {
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": device,
        "cpu": cpu_model(),
        "gpu": gpu_model(device),
        "threads": threads,
    }


def environment_id(env: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:8]


def cell_id(key: tuple) -> str:
    """A readable, unambiguous name of a cell key (experiment, task, method, params, seed)."""
    return json.dumps(list(key), separators=(",", ":"))


def read(folder: Path) -> dict[str, Any] | None:
    """The folder's provenance.json, or None when there is none (results from before it existed)."""
    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        from .store import ResultsCorrupt

        raise ResultsCorrupt(f"{path} is not valid JSON ({exc}); restore it from git or rerun the suite") from exc
    return document


def document(code: Mapping[str, Any], environments: Mapping[str, Mapping], cells: Mapping[str, str]) -> dict:
    """The provenance.json content from environments (by id) and the environment id of each cell.

    Packages shared by every machine are written once, at the top; `cells` (cell -> index into
    `machines`) only when more than one machine ran cells.
    """
    used = sorted(set(cells.values()))
    machines = [dict(environments[e]) for e in used]
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **code}
    packages = [m.get("packages") for m in machines]
    if machines and all(p == packages[0] for p in packages):
        doc["packages"] = packages[0]
        machines = [{k: v for k, v in m.items() if k != "packages"} for m in machines]
    doc["machines"] = machines
    if len(used) > 1:
        doc["cells"] = {c: used.index(e) for c, e in sorted(cells.items())}
    return doc


def machines_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The full environment of each machine of a provenance.json (shared packages put back)."""
    shared = {"packages": doc["packages"]} if "packages" in doc else {}
    return [{**shared, **m} for m in doc.get("machines", [])]


def code_state() -> dict[str, Any]:
    sha, dirty = git_state()
    return {"git_sha": sha, "git_dirty": dirty}


def is_dirty(folder: Path) -> bool:
    doc = read(folder)
    return bool(doc and doc.get("git_dirty"))


def row_facts(folder: Path) -> dict[Any, dict[str, Any]]:
    """cell key -> the environment that ran it, with the code state ({None: env} when one machine ran all)."""
    doc = read(folder)
    if not doc:
        return {}
    code = {"git_sha": doc.get("git_sha", "unknown"), "git_dirty": int(bool(doc.get("git_dirty")))}
    machines = [{**code, **m} for m in machines_of(doc)]
    if "cells" not in doc:
        return {None: machines[0]} if machines else {}
    return {tuple(json.loads(c)): machines[i] for c, i in doc["cells"].items() if i < len(machines)}


def describe(folder: Path) -> str:
    """One line for a report: code, device, hardware, threads and packages of the folder's results."""
    doc = read(folder)
    if not doc:
        return "Provenance: not recorded."
    envs = machines_of(doc)
    dirty = " (UNCOMMITTED CHANGES: no commit reproduces these numbers)" if doc.get("git_dirty") else ""
    if not envs:
        return f"Code: git {doc.get('git_sha')}{dirty}."
    first = envs[0]
    hardware = sorted({e["gpu"] or e["cpu"] for e in envs})
    threads = sorted({str(e["threads"]) for e in envs})
    hosts = sorted({e.get("host") or "" for e in envs} - {""})
    where = f" on {len(hosts)} hosts" if len(hosts) > 1 else ""
    packages = ", ".join(f"{k} {v}" for k, v in first.get("packages", {}).items())
    return (
        f"Code: git {doc.get('git_sha')}{dirty}. Device: {first['device']} ({'; '.join(hardware)}){where}, "
        f"{'/'.join(threads)} thread(s) per cell. Packages: {packages}."
    )
