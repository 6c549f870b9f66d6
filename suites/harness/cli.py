"""`claimbench`: list suites, run them, rebuild reports, compare two results folders, get the data.

Exit codes: 0 success; 1 a regression, a failed cell or unreadable results; 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from tabulate import tabulate

from suites.data import ENV_VAR as DATA_ENV_VAR
from suites.data import DatasetUnavailable, is_available, resolve_data_dir

from . import provenance
from .compare import FAIL, compare, render
from .core import PROFILES
from .costs import cost_table
from .judge import VERDICTS
from .registry import UnknownSuite, entries, get_suite
from .report import claims_table, held_back, rebuild_all, write_suite_report
from .runner import LOG_FILE, RunOptions, UsageError, results_folder, run_suite, variant_of
from .store import ResultsCorrupt, read_claims, read_runs

REPO_ROOT = Path(__file__).resolve().parents[2]


def duration(text: str) -> float:
    """'90s', '30m', '2h' (or plain seconds) as seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write e.g. 90s, 30m or 2h") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claimbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="suites, claims, profiles and datasets (and whether each is here)")
    listing.add_argument("suites", nargs="*", help="limit to these suites")
    listing.add_argument("--data-dir", help=f"data directory (default: ${DATA_ENV_VAR})")
    listing.add_argument("--costs", action="store_true",
                         help="each profile's cost: estimated from timed steps of its model, measured where it ran")  # fmt: skip
    listing.add_argument("--profile", action="append", default=[], help="with --costs: only these profiles")
    listing.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")

    run = sub.add_parser("run", help="run suites at a profile, then write their reports")
    run.add_argument("suites", nargs="+", metavar="SUITE")
    run.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)} (default quick)")
    run.add_argument("--seeds", type=int, help="number of seeds (default: the profile's)")
    run.add_argument("--base-seed", type=int, default=RunOptions.base_seed, help="seeds derive from it")
    run.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    run.add_argument("--data-dir", help=f"data directory (default: ${DATA_ENV_VAR})")
    run.add_argument("--jobs", type=int, default=1,
                     help="cells run in at most N parallel processes, within this machine's cores and free memory "
                          "(default 1)")  # fmt: skip
    run.add_argument("--threads", type=int, help="torch threads per cell (default: cores / jobs)")
    run.add_argument("--only", action="append", default=[], metavar="CLAIM_ID", help="run what this claim needs")
    run.add_argument("--fresh", action="store_true",
                     help="rerun finished cells too (default: resume); old rows go to runs.previous.csv")  # fmt: skip
    run.add_argument("--dataset", action="append", default=[], metavar="NAME",
                     help="run on these datasets instead of the profile's (suites with a dataset list)")  # fmt: skip
    run.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--until-decided", action="store_true",
                     help="after the profile's seeds, add seeds where claims are inconclusive, judged by "
                          "group-sequential alpha spending (Lan-DeMets O'Brien-Fleming), until --budget")  # fmt: skip
    run.add_argument("--budget", type=duration, metavar="DURATION", help="with --until-decided: e.g. 90s, 30m, 2h")
    where = run.add_argument_group("where cells run (extra `cluster` for ray and slurm)")
    where.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                       help="local processes (default), a Ray cluster, or Slurm through submitit")  # fmt: skip
    where.add_argument("--ray-address", help="an existing Ray cluster (e.g. auto); default: start a local one")
    where.add_argument("--partition", help="Slurm partition")
    where.add_argument("--time-limit", type=int, default=60, metavar="MIN", help="Slurm time limit per job")
    where.add_argument("--gpus-per-cell", type=int, help="Slurm GPUs per job (default: the experiment's)")
    where.add_argument("--cells-per-job", type=int, default=1,
                       help="Slurm: cells run one after another in one array job (many small cells)")  # fmt: skip
    where.add_argument("--array-parallelism", type=int,
                       help="Slurm: at most this many array jobs at once (with --slurm-backend local, default: what "
                            "this machine's cores and free memory hold)")  # fmt: skip
    where.add_argument("--slurm-backend", choices=("slurm", "local"), default="slurm",
                       help="local: submitit's local executor on this machine (for testing)")  # fmt: skip

    report = sub.add_parser("report", help="rebuild every report, and REPRODUCE.md beside results/, without rerunning")
    report.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")

    site = sub.add_parser("site", help="build the static site of every claim (a self-contained folder)")
    site.add_argument("--results-dir", type=Path, default=REPO_ROOT / "results")
    site.add_argument("--out", type=Path, default=REPO_ROOT / "site", help="the folder to write (default: site/)")

    grade = sub.add_parser(
        "grade", help="judge your own rows (runs.csv schema, or a results folder) against a suite's claims"
    )
    grade.add_argument("suite")
    grade.add_argument("rows", type=Path, help="a CSV in the runs.csv schema (suites/harness/schema/runs.schema.json)")
    grade.add_argument("--out", type=Path, required=True, help="the folder for claims.json, report.md, figures/")
    grade.add_argument("--device", help="the device the rows were measured on (default: from provenance, or cpu)")

    comp = sub.add_parser("compare", help="regression diff of two results folders (exit 1 on a regression)")
    comp.add_argument("before", type=Path)
    comp.add_argument("after", type=Path)
    comp.add_argument("--profile", action="append", default=[], help="limit to these profiles")
    comp.add_argument("--timing", action="store_true",
                      help="fail timing and memory claims whose verdict flips or whose effect leaves the committed "
                           "interval (on a quiet machine; without it they are shown as drift)")  # fmt: skip
    comp.add_argument("--only", action="append", default=[], metavar="CLAIM_ID",
                      help="limit to these claims and the experiments behind them")  # fmt: skip
    try:
        from suites.data import cli as data_cli
    except ImportError:  # the data command is optional: the harness runs without it
        data_cli = None
    if data_cli is not None:
        data_cli.add_parser(sub)
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    names = args.suites or list(entries())
    for name in names:
        if name not in entries():
            raise UnknownSuite(f"unknown suite {name!r}; known suites: {', '.join(sorted(entries()))}")
        try:
            suite = get_suite(name)
        except UnknownSuite as exc:  # its extra is not installed: say so, and list the others
            if args.suites:
                raise
            print(f"{name}: {exc}\n")
            continue
        unknown = [p for p in args.profile if p not in suite.profiles]
        if unknown:
            raise UsageError(f"unknown profile {unknown[0]!r} for suite {name}; choose from {sorted(suite.profiles)}")
        extra = f" (pip extra: {suite.extra})" if suite.extra else ""
        print(f"{name}: {suite.title}{extra}\n  profiles: {', '.join(suite.profiles)}")
        print(tabulate([[c.id, c.source, c.paper_text, c.test, c.direction] for c in suite.claims],
                       headers=["claim", "source", "paper", "test", "direction"], tablefmt="simple"))  # fmt: skip
        if args.costs:
            print(cost_table(suite, args.results_dir, args.data_dir, tuple(args.profile)))
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
    # Libraries' own bars (transformers' weight loading) would tear the suite's bar: off, everywhere
    # (worker processes inherit it). The suite's bar sets `disable` itself and is unaffected.
    os.environ["TQDM_DISABLE"] = "1"
    if any(f for s in suites for d in s.datasets if d.package is None for f in d.files):
        try:
            resolve_data_dir(args.data_dir)
        except DatasetUnavailable as exc:
            raise UsageError(str(exc)) from exc
    if args.until_decided and not args.budget:
        raise UsageError("--until-decided needs --budget DURATION (e.g. --budget 2h)")
    cluster = {"ray_address": args.ray_address, "partition": args.partition, "time_min": args.time_limit,
               "gpus": args.gpus_per_cell, "cells_per_job": args.cells_per_job,
               "array_parallelism": args.array_parallelism, "slurm_backend": args.slurm_backend}  # fmt: skip
    failed, data_errors, summary, logs = 0, 0, [], []
    for suite in suites:
        options = RunOptions(
            profile=args.profile, seeds=args.seeds, base_seed=args.base_seed, device=args.device,
            data_dir=args.data_dir, jobs=args.jobs, threads=args.threads, only=tuple(args.only), fresh=args.fresh,
            results_dir=args.results_dir, show_progress=not args.no_progress,
            overrides={"datasets": args.dataset} if args.dataset else {},
            executor=args.executor, cluster=cluster,
        )  # fmt: skip
        # A run with overrides writes to its own folder (named after them), never into the profile's rows;
        # --until-decided adds seeds to the profile's own folder by design.
        if not args.until_decided:
            options.variant = variant_of(args.seeds, options.overrides, args.base_seed, args.threads)
        folder = results_folder(options, suite)
        committed = folder / "claims.json"
        before = {c["id"]: c["verdict"] for c in read_claims(committed)} if committed.exists() else {}
        if args.until_decided:
            from .sequential import run_until_decided

            result = run_until_decided(suite, options, args.budget)
            print(f"{suite.name}: until-decided stopped: {result['stopped']}; seeds per experiment {result['seeds']}")
            tally = {}
            judged = write_suite_report(suite, folder.name, args.results_dir, judged=result["claims"])
        else:
            store, tally = run_suite(suite, options)
            judged = write_suite_report(suite, folder.name, args.results_dir)
        shown = [c for c in judged if not args.only or c["id"] in args.only]
        print(f"\n{suite.name} / {args.profile}: " + ", ".join(f"{n} {s} cells" for s, n in tally.items() if n))
        if args.only:  # a few claims asked for by name: their rows
            print(claims_table(shown))
        data_errors += print_run_summary(folder, shown, before)
        warn_if_dirty(folder)
        failed += tally.get("error", 0)
        verdicts = Counter(c["verdict"] for c in shown)
        summary.append([f"{suite.name}/{args.profile}", len(shown), *(verdicts.get(v, 0) for v in VERDICTS),
                        held_back(shown)])  # fmt: skip
        logs.append(folder / LOG_FILE)
    print("\nSummary of verdicts:")
    print(tabulate(summary, headers=["suite/profile", "claims", *VERDICTS, "held back"], tablefmt="github"))
    for log in logs:
        if log.exists():
            print(f"library warnings and messages of the cells: {log}")
    if failed:
        print(f"\n{failed} cell(s) failed; their tracebacks are in runs.csv (status=error). A rerun retries them.")
    if data_errors:
        print(f"\n{data_errors} cell(s) found a corrupt data file (see above for the fix); the other cells are saved.")
    return 1 if failed or data_errors else 0


def print_run_summary(folder: Path, judged: list[dict], before: dict[str, str]) -> int:
    """What changed against the results that were there, why cells did not run, and what to read next.
    Returns the number of cells whose data file is corrupt."""
    changed = [
        (c["id"], before[c["id"]], c["verdict"]) for c in judged if before.get(c["id"], c["verdict"]) != c["verdict"]
    ]
    if before:
        print(f"  against the results that were in {folder}: {len(changed)} verdict(s) changed")
        for claim_id, old, new in changed[:10]:
            print(f"    {claim_id}: {old} -> {new}")
        if len(changed) > 10:
            print(f"    ... and {len(changed) - 10} more (git diff {folder}/claims.json)")
    reasons = Counter()
    data_errors = 0
    for row in read_runs(folder / "runs.csv", facts=False):
        if row["status"] == "not_run":
            reason = row["note"].strip().splitlines()[0] if row["note"].strip() else "no reason recorded"
            reasons[reason] += 1
            # a corrupt file is an error to fix; a dataset that is simply not here (the paper datasets a
            # user has not fetched) is listed, and the run still succeeds
            data_errors += " is corrupt" in reason
    for reason, n in reasons.most_common():
        print(f"  {n} cell(s) not run: {reason}")
    print(f"  read next: {folder}/report.md (every claim with its notes), figures/forest.png")
    return data_errors


def warn_if_dirty(*folders: Path) -> int:
    """Say loudly which results came from a tree with uncommitted changes; returns how many."""
    dirty = [f for f in folders if provenance.is_dirty(f)]
    for folder in dirty:
        sha = (provenance.read(folder) or {}).get("git_sha", "unknown")
        print(
            f"WARNING: {folder} was produced from a working tree with UNCOMMITTED CHANGES (on top of {sha}); "
            "no commit reproduces these numbers. Commit, then rerun with --fresh.",
            file=sys.stderr,
        )
    return len(dirty)


def cmd_report(args: argparse.Namespace) -> int:
    if not args.results_dir.is_dir():  # before anything is written: REPRODUCE.md and README stay as they are
        raise UsageError(f"results folder {args.results_dir} does not exist; pass --results-dir with a results folder")
    for path in rebuild_all(args.results_dir):
        print(f"wrote {path}")
    warn_if_dirty(*sorted(p.parent for p in Path(args.results_dir).glob("*/*/runs.csv")))
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from .site import build_site

    if not args.results_dir.is_dir():
        raise UsageError(f"results folder {args.results_dir} does not exist; pass --results-dir with a results folder")
    print(f"wrote {build_site(args.results_dir, args.out, REPO_ROOT)}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from .grade import RowsInvalid, grade

    suite = get_suite(args.suite)
    try:
        judged = grade(suite, args.rows, args.out, device=args.device)
    except RowsInvalid as exc:
        raise UsageError(str(exc)) from exc
    print(claims_table(judged))
    print(f"wrote {args.out}/claims.json, report.md and figures/forest.png")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    for folder in (args.before, args.after):
        if not folder.is_dir():
            raise UsageError(f"results folder {folder} does not exist")
    diffs, compared = compare(args.before, args.after, tuple(args.profile) or None, tuple(args.only), args.timing)
    warn_if_dirty(*sorted(p.parent for folder in (args.before, args.after) for p in folder.glob("*/*/runs.csv")))
    print(render(diffs, compared))
    if compared == 0:
        print("nothing to compare: no suite/profile with claims.json in the first folder")
        return 1
    return 1 if any(d.outcome == FAIL for d in diffs) else 0


def main(argv: list[str] | None = None) -> int:
    # The commands set environment variables for the cells' worker processes; a caller in the same
    # process (a test, a notebook) gets its environment back unchanged.
    saved = dict(os.environ)
    try:
        return _main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched from a hub at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    args = _parser().parse_args(argv)
    handlers = {"list": cmd_list, "run": cmd_run, "report": cmd_report, "compare": cmd_compare, "site": cmd_site,
                "grade": cmd_grade}  # fmt: skip
    if args.command == "data":
        from suites.data import cli as data_cli

        handlers["data"] = data_cli.run
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
