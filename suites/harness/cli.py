"""`claimbench`: list suites, run them, rebuild reports, compare two results folders.

Exit codes: 0 success; 1 a regression, a failed cell or unreadable results; 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tabulate import tabulate

from suites.data import ENV_VAR as DATA_ENV_VAR
from suites.data import DatasetUnavailable, is_available, resolve_data_dir

from .compare import FAIL, compare, render
from .core import PROFILES
from .registry import UnknownSuite, entries, get_suite, implemented
from .report import claims_table, rebuild_all, write_suite_report
from .runner import RunOptions, UsageError, results_folder, run_suite
from .store import ResultsCorrupt

REPO_ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claimbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="suites, claims, profiles and datasets (and whether each is here)")
    listing.add_argument("suites", nargs="*", help="limit to these suites")
    listing.add_argument("--data-dir", help=f"data directory (default: ${DATA_ENV_VAR})")

    run = sub.add_parser("run", help="run suites at a profile, then write their reports")
    run.add_argument("suites", nargs="+", metavar="SUITE")
    run.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    run.add_argument("--seeds", type=int, help="number of seeds (default: the profile's)")
    run.add_argument("--base-seed", type=int, default=RunOptions.base_seed, help="seeds derive from it")
    run.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    run.add_argument("--data-dir", help=f"data directory (default: ${DATA_ENV_VAR})")
    run.add_argument("--jobs", type=int, default=1, help="cells run in N parallel processes (default 1)")
    run.add_argument("--threads", type=int, help="torch threads per cell (default: cores / jobs)")
    run.add_argument("--only", action="append", default=[], metavar="CLAIM_ID", help="run what this claim needs")
    run.add_argument("--fresh", action="store_true",
                     help="rerun finished cells too (default: resume); old rows go to runs.previous.csv")  # fmt: skip
    run.add_argument("--dataset", action="append", default=[], metavar="NAME",
                     help="run on these datasets instead of the profile's (suites with a dataset list)")  # fmt: skip
    run.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    report = sub.add_parser("report", help="rebuild every report, and REPRODUCE.md beside results/, without rerunning")
    report.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")

    comp = sub.add_parser("compare", help="regression diff of two results folders (exit 1 on a regression)")
    comp.add_argument("before", type=Path)
    comp.add_argument("after", type=Path)
    comp.add_argument("--profile", action="append", default=[], help="limit to these profiles")
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    names = args.suites or list(entries())
    for name in names:
        if name not in entries():
            raise UnknownSuite(f"unknown suite {name!r}; known suites: {', '.join(sorted(entries()))}")
        if name not in implemented():
            print(f"{name}: {entries()[name][0]} - not implemented yet\n")
            continue
        suite = get_suite(name)
        extra = f" (pip extra: {suite.extra})" if suite.extra else ""
        print(f"{name}: {suite.title}{extra}\n  profiles: {', '.join(suite.profiles)}")
        print(tabulate([[c.id, c.source, c.paper_text, c.test, c.direction] for c in suite.claims],
                       headers=["claim", "source", "paper", "test", "direction"], tablefmt="simple"))  # fmt: skip
        if suite.datasets:
            rows = []
            for d in suite.datasets:
                here = _dataset_here(d, args.data_dir)
                rows.append([d.name, "available" if here else "missing", d.source])
            print(tabulate(rows, headers=["dataset", "here", "source"], tablefmt="simple"))
        print()
    return 0


def _dataset_here(dataset, data_dir: str | None) -> bool:
    if dataset.package is not None:
        import importlib.util

        return importlib.util.find_spec(dataset.package) is not None
    return all(is_available(f, data_dir) for f in dataset.files)


def cmd_run(args: argparse.Namespace) -> int:
    suites = [get_suite(name) for name in args.suites]  # fail on a bad name before running anything
    if args.data_dir:
        os.environ[DATA_ENV_VAR] = args.data_dir  # worker processes resolve data through it too
    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"  # also the bars of libraries (transformers' weight loading)
    if any(f for s in suites for d in s.datasets if d.package is None for f in d.files):
        try:
            resolve_data_dir(args.data_dir)
        except DatasetUnavailable as exc:
            raise UsageError(str(exc)) from exc
    failed = 0
    for suite in suites:
        options = RunOptions(
            profile=args.profile, seeds=args.seeds, base_seed=args.base_seed, device=args.device,
            data_dir=args.data_dir, jobs=args.jobs, threads=args.threads, only=tuple(args.only), fresh=args.fresh,
            results_dir=args.results_dir, show_progress=not args.no_progress,
            overrides={"datasets": args.dataset} if args.dataset else {},
        )  # fmt: skip
        store, tally = run_suite(suite, options)
        judged = write_suite_report(suite, args.profile, args.results_dir)
        shown = [c for c in judged if not args.only or c["id"] in args.only]
        folder = results_folder(options, suite)
        print(f"\n{suite.name} / {args.profile}: " + ", ".join(f"{n} {s}" for s, n in tally.items() if n))
        print(claims_table(shown))
        print(f"results: {folder}/runs.csv, claims.json, report.md")
        failed += tally.get("error", 0)
    if failed:
        print(f"\n{failed} cell(s) failed; their tracebacks are in runs.csv (status=error). A rerun retries them.")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    for path in rebuild_all(args.results_dir):
        print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    for folder in (args.before, args.after):
        if not folder.is_dir():
            raise UsageError(f"results folder {folder} does not exist")
    diffs, compared = compare(args.before, args.after, tuple(args.profile) or None)
    print(render(diffs, compared))
    if compared == 0:
        print("nothing to compare: no suite/profile with claims.json in the first folder")
        return 1
    return 1 if any(d.outcome == FAIL for d in diffs) else 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = _parser().parse_args(argv)
    handlers = {"list": cmd_list, "run": cmd_run, "report": cmd_report, "compare": cmd_compare}
    try:
        return handlers[args.command](args)
    except (UsageError, UnknownSuite) as exc:
        print(f"claimbench: error: {exc}", file=sys.stderr)
        return 2
    except ResultsCorrupt as exc:
        print(f"claimbench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nclaimbench: interrupted; finished cells are saved, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
