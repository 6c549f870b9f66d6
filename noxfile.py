"""Sessions: tests (default), lint, reproduce, regression, report, site, bench, data.

All sessions share one environment, `.venv` (or $CLAIMBENCH_VENV), created on first use with
`pip install -e .[all]` and reinstalled only when pyproject.toml changes: installing torch,
transformers and aeon takes minutes, so it is done once, not per session. pip (not uv) is used
because only pip sees the pinned CPU build of torch that this class of machine carries.

Options go after `--`, e.g. `nox -s reproduce -- lora --profile smoke --jobs 2`.
The data directory comes from $CLAIMBENCH_DATA (or `--data-dir` in the posargs).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
VENV = Path(os.environ.get("CLAIMBENCH_VENV", ROOT / ".venv"))
PYTHON = VENV / "bin" / "python"
# The versions every committed provenance.json names; regenerate with `nox -s lock` after a
# deliberate upgrade (and rerun the results it moves).
CONSTRAINTS = ROOT / "constraints.txt"

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "none"


def environment(session: nox.Session) -> str:
    """The shared environment's python, (re)installing the project when pyproject.toml changed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()
    stamp = VENV / ".claimbench-installed"
    if not stamp.exists() or stamp.read_text() != wanted:
        if not PYTHON.exists():
            session.run(sys.executable, "-m", "venv", str(VENV), external=True)
        session.run(str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip", external=True)
        session.run(str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[all]", "-c", str(CONSTRAINTS),
                    external=True)  # fmt: skip
        stamp.write_text(wanted)
    session.env["HF_HUB_OFFLINE"] = "1"
    session.env["TRANSFORMERS_OFFLINE"] = "1"
    return str(PYTHON)


def claimbench(session: nox.Session, python: str, *args: str) -> None:
    session.run(python, "-m", "suites.harness.cli", *args, external=True)


def implemented_suites(session: nox.Session, python: str) -> list[str]:
    code = "from suites.harness.registry import implemented; print(' '.join(implemented()))"
    out = session.run(python, "-c", code, external=True, silent=True)
    return out.split()


def split_suites(posargs: list[str]) -> tuple[list[str], list[str]]:
    """Leading bare words are suite names; the rest are options for `claimbench run`."""
    suites = []
    for i, arg in enumerate(posargs):
        if arg.startswith("-"):
            return suites, posargs[i:]
        suites.append(arg)
    return suites, []


@nox.session
def tests(session: nox.Session) -> None:
    """pytest on tiny models and the smoke profiles."""
    python = environment(session)
    session.run(python, "-m", "pytest", *(session.posargs or ["-q"]), external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    python = environment(session)
    session.run(python, "-m", "ruff", "check", ".", external=True)
    session.run(python, "-m", "ruff", "format", "--check", ".", external=True)


@nox.session(default=False)
def reproduce(session: nox.Session) -> None:
    """Run suites (default: all implemented) at a profile (default quick), then rebuild the reports.

    Every cell is measured anew (`--fresh`: the committed rows go to runs.previous.csv); after an
    interruption, `nox -s reproduce -- --resume` continues where it stopped.
    """
    python = environment(session)
    suites, options = split_suites(session.posargs)
    if "--profile" not in options:
        options = ["--profile", "quick", *options]
    if "--jobs" not in options:  # as the committed results were made: two cells at a time, one thread each
        options = ["--jobs", "2", *options]
    options = [o for o in options if o != "--resume"] if "--resume" in options else ["--fresh", *options]
    claimbench(session, python, "run", *(suites or implemented_suites(session, python)), *options)
    where = (
        options[options.index("--results-dir") : options.index("--results-dir") + 2]
        if "--results-dir" in options
        else []
    )
    claimbench(session, python, "report", *where)


@nox.session(default=False)
def data(session: nox.Session) -> None:
    """`claimbench data list|verify|fetch` (default: list), e.g. `nox -s data -- fetch --mirror URL`."""
    claimbench(session, environment(session), "data", *(session.posargs or ["list"]))


@nox.session(default=False)
def report(session: nox.Session) -> None:
    """Rebuild every report, REPRODUCE.md and README's table from results/ without rerunning."""
    claimbench(session, environment(session), "report")


def regression_claims(session: nox.Session, python: str, suites: list[str]) -> dict[str, list[str]]:
    """suite -> the claims of its `regression` subset (cheap `quick` experiments), for the suites given."""
    code = (
        "import json, sys; from suites.harness.registry import get_suite; "
        "print(json.dumps({n: list(get_suite(n).regression) for n in sys.argv[1:]}))"
    )
    out = session.run(python, "-c", code, *suites, external=True, silent=True)
    return {name: claims for name, claims in json.loads(out.strip().splitlines()[-1]).items() if claims}


@nox.session(default=False)
def regression(session: nox.Session) -> None:
    """Rerun the smoke profile, and each suite's regression subset of quick, into a temporary folder
    and compare them with the committed results/ (smoke leaves many claims not run; the quick subset
    covers some of them, timing claims included)."""
    python = environment(session)
    suites, options = split_suites(session.posargs)
    suites = suites or implemented_suites(session, python)
    with tempfile.TemporaryDirectory(prefix="claimbench-regression-") as fresh:
        claimbench(session, python, "run", *suites, "--profile", "smoke", "--results-dir", fresh, "--no-progress",
                   *options)  # fmt: skip
        claimbench(session, python, "compare", str(ROOT / "results"), fresh, "--profile", "smoke")
        for name, claims in regression_claims(session, python, suites).items():
            only = [arg for claim in claims for arg in ("--only", claim)]
            claimbench(session, python, "run", name, "--profile", "quick", "--jobs", "2", "--results-dir", fresh,
                       "--no-progress", *only, *options)  # fmt: skip
            claimbench(session, python, "compare", str(ROOT / "results"), fresh, "--profile", "quick", *only)


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Write constraints.txt from the shared environment (what the tests and the main job install)."""
    python = environment(session)
    frozen = session.run(python, "-m", "pip", "freeze", "--exclude-editable", external=True, silent=True)
    # "+cpu" is the local build label of the CPU wheel; the constraint pins the version, whichever build
    lines = [line.replace("+cpu", "") for line in frozen.splitlines() if "==" in line]
    CONSTRAINTS.write_text("# generated by `nox -s lock`; do not edit by hand\n" + "\n".join(sorted(lines)) + "\n")


@nox.session(default=False)
def site(session: nox.Session) -> None:
    """The static site of every claim (index with filters, a page per claim and suite) in site/."""
    claimbench(session, environment(session), "site", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Performance benchmarks (speed and memory targets), written to results/bench/."""
    python = environment(session)
    for script in sorted((ROOT / "tests" / "bench").glob("bench_*.py")):
        out = ROOT / "results" / "bench" / f"{script.stem.removeprefix('bench_')}.md"
        session.run(python, str(script), "--out", str(out), *session.posargs, external=True)
