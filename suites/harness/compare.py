"""The regression check: compare two results folders claim by claim and metric by metric.

A changed verdict, a claim's measured effect moving beyond the claim's tolerance, or a metric
moving beyond the tolerance of the claims that use it fails the check. Machine-dependent claims
(timings, memory) take independent processes as their units, so their committed interval covers
what a rerun on the same quiet machine sees: with `timing=True` they fail when their verdict flips
or their effect leaves the committed interval. Without it (CI, whose machine's load nobody
controls) those moves are shown as drift, never failed: a check that fails on noise is worse than
none. The
performance switches a suite declares (`Suite.switches`, e.g. whether the fast kernel ran) are
compared exactly. `only` restricts the check to some claims and the experiments behind them (the
regression subset of a larger profile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from .registry import get_suite
from .store import read_claims, read_runs, row_key

FAIL, DRIFT = "FAIL", "drift (machine-dependent, not failing)"


@dataclass
class Difference:
    where: str
    item: str
    a: str
    b: str
    tolerance: str
    outcome: str


def _moved(a: float | None, b: float | None, tolerance: float, relative: bool) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    scale = max(abs(a), abs(b), 1e-12) if relative else 1.0
    return abs(a - b) > tolerance * scale


def _suite(suite_name: str):
    try:
        return get_suite(suite_name)
    except KeyError:
        return None


def _tolerances(suite_name: str) -> dict[tuple[str, str], tuple[float, bool]]:
    """(experiment, metric) -> (tightest tolerance of the claims using it, machine-dependent)."""
    suite = _suite(suite_name)
    claims = suite.claims if suite is not None else ()
    found: dict[tuple[str, str], tuple[float, bool]] = {}
    for c in claims:
        key = (c.experiment, c.metric)
        tol, machine = found.get(key, (math.inf, False))
        found[key] = (min(tol, c.tolerance), machine or c.machine_dependent)
    return found


def _outside(interval_of: dict, value: float | None) -> bool:
    """Whether a rerun's effect left the committed confidence interval (a deterministic claim's range
    over units is no confidence interval: its moves are read against the tolerance instead)."""
    low, high, level = interval_of.get("ci_low"), interval_of.get("ci_high"), interval_of.get("ci_level")
    if value is None or low is None or high is None or level is None or level >= 1:
        return False
    return not (float(low) <= float(value) <= float(high))


def compare_profile(
    a: Path, b: Path, where: str, suite_name: str, only: tuple[str, ...] = (), timing: bool = False
) -> list[Difference]:
    diffs: list[Difference] = []
    claims_a = {c["id"]: c for c in read_claims(a / "claims.json") if not only or c["id"] in only}
    experiments = {c.get("experiment") for c in claims_a.values()} if only else None
    claims_b = {c["id"]: c for c in read_claims(b / "claims.json")} if (b / "claims.json").exists() else {}
    for cid, ca in claims_a.items():
        cb = claims_b.get(cid)
        if cb is None:
            diffs.append(Difference(where, cid, ca["verdict"], "missing", "", FAIL))
            continue
        machine = bool(ca.get("machine_dependent"))
        soft = FAIL if timing or not machine else DRIFT
        if ca["verdict"] != cb["verdict"]:
            diffs.append(Difference(where, f"{cid} verdict", ca["verdict"], cb["verdict"], "", soft))
        tol = float(ca.get("tolerance") or 0.0)
        if machine and _outside(ca, cb["measured"]):
            interval = f"committed interval [{ca['ci_low']:.6g}, {ca['ci_high']:.6g}]"
            diffs.append(Difference(where, f"{cid} effect", str(ca["measured"]), str(cb["measured"]), interval, soft))
        elif _moved(ca["measured"], cb["measured"], tol, relative=machine):
            kind = "rel" if machine else "abs"
            diffs.append(Difference(where, f"{cid} effect", str(ca["measured"]), str(cb["measured"]),
                                    f"{kind} {tol:g}", DRIFT if machine else FAIL))  # fmt: skip

    tolerances = _tolerances(suite_name)
    suite = _suite(suite_name)
    switches = set(suite.switches) if suite is not None else set()
    rows_b = {(row_key(r), r["metric"]): r for r in read_runs(b / "runs.csv")}
    for ra in read_runs(a / "runs.csv"):
        if experiments is not None and ra["experiment"] not in experiments:
            continue
        key = (row_key(ra), ra["metric"])
        label = f"{'/'.join(str(k) for k in key[0] if k not in ('{}',))} {ra['metric']}"
        rb = rows_b.get(key)
        if rb is None:
            diffs.append(Difference(where, label, f"{ra['value']!r}", "missing", "", FAIL))
            continue
        if ra["status"] != rb["status"]:
            diffs.append(Difference(where, label, ra["status"], rb["status"], "", FAIL))
            continue
        if ra["metric"] in switches:  # a performance switch: the same path must run, exactly
            if ra["value"] != rb["value"]:
                diffs.append(Difference(where, label, f"{ra['value']:g}", f"{rb['value']:g}", "exact", FAIL))
            continue
        tol, machine = tolerances.get((ra["experiment"], ra["metric"]), (None, False))
        if tol is None:  # a metric no claim uses: not judged here
            continue
        if _moved(ra["value"], rb["value"], tol, relative=machine):
            diffs.append(Difference(where, label, f"{ra['value']:.6g}", f"{rb['value']:.6g}",
                                    f"{'rel' if machine else 'abs'} {tol:g}", DRIFT if machine else FAIL))  # fmt: skip
    return diffs


def compare(
    dir_a: Path, dir_b: Path, profiles: tuple[str, ...] | None = None, only: tuple[str, ...] = (), timing: bool = False
) -> tuple[list[Difference], int]:
    """Differences between every suite/profile present in dir_a and dir_b; and how many were compared."""
    diffs: list[Difference] = []
    compared = 0
    for claims_file in sorted(Path(dir_a).glob("*/*/claims.json")):
        profile_dir = claims_file.parent
        suite_name, profile = profile_dir.parent.name, profile_dir.name
        if profiles and profile not in profiles:
            continue
        other = Path(dir_b) / suite_name / profile
        where = f"{suite_name}/{profile}"
        if only and not any(c["id"] in only for c in read_claims(claims_file)):
            continue
        if not (other / "runs.csv").exists():
            diffs.append(Difference(where, "results", "present", "missing", "", FAIL))
            continue
        compared += 1
        diffs.extend(compare_profile(profile_dir, other, where, suite_name, only, timing))
    return diffs, compared


def render(diffs: list[Difference], compared: int) -> str:
    failures = sum(d.outcome == FAIL for d in diffs)
    head = f"compared {compared} suite profile(s): {failures} failure(s), {len(diffs) - failures} drift(s)"
    if not diffs:
        return head + "; no differences beyond tolerance."
    table = tabulate([[d.where, d.item, d.a, d.b, d.tolerance, d.outcome] for d in diffs],
                     headers=["suite/profile", "what", "before", "now", "tolerance", "outcome"], tablefmt="github")  # fmt: skip
    return f"{head}\n\n{table}"
