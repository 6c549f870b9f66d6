"""Repeated looks that keep the error rate: group-sequential alpha spending (Lan & DeMets 1983).

Adding seeds to an inconclusive claim and judging it again is a second look at the same
hypothesis; judging every look at alpha inflates the chance of a false good verdict (five looks
at 0.05 give about 0.13). Instead, the procedure fixes in advance the most units a claim may
reach (`max_units`) and an alpha-spending function, here the O'Brien-Fleming type of Lan-DeMets

    alpha(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)),   t = n_k / max_units (information fraction),

which spends almost nothing early and nearly all of alpha at t = 1. Look k may use only the alpha
spent between t_{k-1} and t_k; the z boundary c_k that spends exactly that, given that the
earlier looks did not cross theirs, follows from the joint law of the looks' statistics
(Brownian motion in t: independent increments), computed by numerical integration on a grid
(Armitage, McPherson & Rowe 1969), deterministic and exact to about 1e-4 in z. The judge then
uses the look's nominal level 1 - Phi(c_k) in place of alpha: its interval at 1 - 2 alpha_k
(before the family's Bonferroni split) decides, so both sides (a good verdict and "not
reproduced") are guarded. Looks may come at any n (the spending function, not a fixed schedule,
sets each look's share); a look at or beyond max_units spends the rest, and after that nothing
more can be decided. With t tests at small n the nominal-level approach is the usual
approximation (Jennison & Turnbull 2000, ch. 3), and it overshoots a little at small n; a t test
therefore gets levels calibrated once by simulation of the t statistic's exact null law
(`t_levels`). The simulation in the tests checks the error rate across looks.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import stats as sps
from scipy.optimize import brentq

ALPHA = 0.05
GRID_POINTS = 2001
LOWER_B = -10.0  # on the Brownian scale (variance t <= 1): the density below is negligible


_integrate = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it


def obrien_fleming_spending(t: float, alpha: float = ALPHA) -> float:
    """Alpha spent by information fraction t (one-sided), Lan-DeMets O'Brien-Fleming type."""
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    return float(2 * (1 - sps.norm.cdf(sps.norm.ppf(1 - alpha / 2) / math.sqrt(t))))


def pocock_spending(t: float, alpha: float = ALPHA) -> float:
    """Lan-DeMets Pocock type: spends alpha more evenly (earlier decisions, a stricter last look)."""
    return 0.0 if t <= 0 else float(alpha * math.log(1 + (math.e - 1) * min(t, 1.0)))


def _crossing(density: np.ndarray, grid: np.ndarray, bound: float, step: float) -> float:
    """P(no earlier crossing, and B(t_k) >= bound) for a look whose increment has sd sqrt(step)."""
    tail = sps.norm.sf((bound - grid) / math.sqrt(step))
    return float(_integrate(density * tail, grid))


def boundaries(
    fractions: Sequence[float],
    alpha: float = ALPHA,
    spending: Callable[[float, float], float] = obrien_fleming_spending,
) -> list[float]:
    """One-sided z boundaries c_k for looks at increasing information fractions.

    Fractions above 1 are treated as 1 (all alpha spent); a look that adds no information or has
    no alpha left gets an infinite boundary (it cannot decide)."""
    result: list[float] = []
    grid = density = None
    previous_t, previous_spent = 0.0, 0.0
    for t in (min(f, 1.0) for f in fractions):
        spent = spending(t, alpha)
        share, step = spent - previous_spent, t - previous_t
        if share <= 1e-12 or step <= 0:
            result.append(math.inf)
            continue
        if density is None:  # the first look: B(t) ~ N(0, t)
            c = float(sps.norm.isf(share))
            bound = c * math.sqrt(t)
            grid = np.linspace(LOWER_B, bound, GRID_POINTS)
            density = sps.norm.pdf(grid, scale=math.sqrt(t))
        else:

            def excess(b, grid=grid, density=density, step=step, share=share):
                return _crossing(density, grid, b, step) - share

            bound = brentq(excess, -20.0, 20.0, xtol=1e-10)
            c = bound / math.sqrt(t)
            new_grid = np.linspace(LOWER_B, bound, GRID_POINTS)
            kernel = sps.norm.pdf((new_grid[:, None] - grid[None, :]) / math.sqrt(step)) / math.sqrt(step)
            density = _integrate(kernel * density[None, :], grid, axis=1)
            grid = new_grid
        result.append(c)
        previous_t, previous_spent = t, spent
    return result


def nominal_levels(fractions: Sequence[float], alpha: float = ALPHA, spending=obrien_fleming_spending) -> list[float]:
    """The one-sided level each look's own test uses (1 - Phi(c_k)); 0 where a look cannot decide."""
    return [float(sps.norm.sf(c)) for c in boundaries(fractions, alpha, spending)]


CALIBRATION_REPLICATES = 200_000
CALIBRATION_SEED = 20_240_601


@lru_cache(maxsize=256)
def t_levels(
    looks: tuple[int, ...], max_units: int, alpha: float = ALPHA, spending=obrien_fleming_spending
) -> tuple[float, ...]:
    """Nominal levels for a one-sample (or paired) t test at looks of `looks` units, calibrated so
    that each look spends exactly its share of alpha under normal units.

    The z boundaries assume a known variance; with the variance estimated from a few units, the
    looks' t statistics depend on one another more than the z statistics do, and z-nominal levels
    overshoot alpha (measured over 200,000 null sequences, O'Brien-Fleming type: 0.0516 at looks of
    4, 8, ..., 20 units, 0.0543 at 2, 4, ..., 10; Pocock type 0.0538 and 0.0577). The t statistic's null law does not
    depend on the variance, so its boundaries can be found by simulation once: a fixed seed and
    200,000 sequences make them deterministic, to about 0.0005 in alpha."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    total = np.zeros(CALIBRATION_REPLICATES)
    squares = np.zeros(CALIBRATION_REPLICATES)
    alive = np.ones(CALIBRATION_REPLICATES, dtype=bool)
    levels, seen, spent_before = [], 0, 0.0
    for n in looks:
        draws = rng.standard_normal((CALIBRATION_REPLICATES, n - seen))
        total += draws.sum(axis=1)
        squares += (draws**2).sum(axis=1)
        seen = n
        spent = spending(min(n / max_units, 1.0), alpha)
        crossing = int(round((spent - spent_before) * CALIBRATION_REPLICATES))
        if crossing < 1 or n < 2:
            levels.append(0.0)
            continue
        mean = total / n
        sd = np.sqrt(np.maximum(squares - n * mean**2, 0.0) / (n - 1))
        stat = np.where(alive, mean / (sd / math.sqrt(n)), -np.inf)
        bound = float(np.partition(stat, -crossing)[-crossing])
        alive &= stat < bound
        levels.append(float(sps.t.sf(bound, df=n - 1)))
        spent_before = spent
    return tuple(levels)


@dataclass(frozen=True)
class SequentialPlan:
    """A claim's looks: fixed before the first look, `max_units` and the spending function."""

    max_units: int
    alpha: float = ALPHA
    spending: Callable[[float, float], float] = obrien_fleming_spending
    name: str = "group-sequential, Lan-DeMets O'Brien-Fleming-type alpha spending"

    def fractions(self, looks: Sequence[int]) -> list[float]:
        if any(b <= a for a, b in zip(looks, looks[1:], strict=False)):
            raise ValueError(f"looks must add units: {list(looks)}")
        return [min(n / self.max_units, 1.0) for n in looks]

    def level(self, looks: Sequence[int], test: str = "") -> float:
        """The one-sided alpha for the latest look, given the units at every look so far (in order).

        Pass it to the judge in place of alpha; 0.0 means this look cannot decide (all spent). A t
        test ("ttest") gets its calibrated level (`t_levels`); other tests the z-nominal level."""
        fractions = self.fractions(looks)
        if fractions[-1] >= 1.0 and len(fractions) > 1 and fractions[-2] >= 1.0:
            return 0.0
        if test == "ttest":
            return t_levels(tuple(looks), self.max_units, self.alpha, self.spending)[-1]
        return nominal_levels(fractions, self.alpha, self.spending)[-1]

    def exhausted(self, looks: Sequence[int]) -> bool:
        """Whether the looks so far reached max_units: no alpha is left for another."""
        return bool(looks) and looks[-1] >= self.max_units


def first_crossing_share(
    values: np.ndarray, looks: Sequence[int], levels: Sequence[float], bound: float = 0.0
) -> float:
    """Share of simulated sequences (rows of `values`, one unit per column) whose one-sided t test
    of mean > bound rejects at some look (n = looks[k], at level levels[k]) before any earlier one."""
    crossed = np.zeros(values.shape[0], dtype=bool)
    for n, level in zip(looks, levels, strict=True):
        if level <= 0:
            continue
        head = values[:, :n]
        t = (head.mean(axis=1) - bound) / (head.std(axis=1, ddof=1) / math.sqrt(n))
        crossed |= t > sps.t.isf(level, df=n - 1)
    return float(crossed.mean())


# --------------------------------------------------------------------------------------------
# the driver: add seeds where they buy the most decisions, look again at the spent level

LOOKS_FILE = "sequential.json"
MAX_GROWTH = 4  # a claim may grow to this many times its first look's units, fixed before that look
UNITS_NOTE = re.compile(r"about (\d+) units(?: \([^)]*\))? would decide it")


def _judge_at(suite, rows, levels: Mapping[str, float], units, device: str = "cpu") -> dict[str, dict]:
    """The judge's entries, each claim judged at its own look's level (the rest at the usual alpha)."""
    from . import judge as judging

    return {e["id"]: e for e in judging.judge(suite.claims, rows, device=device, units=units, alpha=levels)}


def _seed_cost(rows: list[dict]) -> dict[str, float]:
    """Measured CPU-seconds one more seed of each experiment costs: every (task, method, params)
    cell's mean wall time, summed (the runner runs a claim's whole experiment)."""
    cells: dict[tuple, list[float]] = {}
    for r in rows:
        if r["status"] in ("ok", "diverged") and r.get("wall_s") not in ("", None):
            key = (r["experiment"], r["task"], r["method"], r["params"], r["seed"])
            cells.setdefault(key, [float(r["wall_s"])])
    per_config: dict[tuple, list[float]] = {}
    for (experiment, task, method, params, _), wall in cells.items():
        per_config.setdefault((experiment, task, method, params), []).append(wall[0])
    cost: dict[str, float] = {}
    for (experiment, *_), walls in per_config.items():
        cost[experiment] = cost.get(experiment, 0.0) + sum(walls) / len(walls)
    return cost


def units_wanted(entry: Mapping, plan: Mapping, power: float) -> tuple[int, float] | None:
    """Units to aim for and the chance they decide the claim, from the judge's note.

    The note's count is at this look's strict level; later looks spend more of alpha, so the count
    is rescaled to the last look's level by the normal-approximation ratio
    ((z_final + z_power) / (z_now + z_power))^2, then capped at the plan's max_units (with the
    chance of deciding scaled down when the cap falls short)."""
    note = UNITS_NOTE.search(entry.get("notes") or "")
    if note is None or not entry.get("ci_level") or plan["looks"][-1] >= plan["max_units"]:
        return None
    now = (1 - entry["ci_level"]) / 2  # this look's level after the family's Bonferroni split
    fractions = [min(n / plan["max_units"], 1.0) for n in plan["looks"]] + [1.0]
    final = now * nominal_levels(fractions)[-1] / max(plan["levels"][-1], 1e-300)
    z_power = sps.norm.isf(1 - power)
    scale = ((sps.norm.isf(min(final, 0.5)) + z_power) / (sps.norm.isf(min(now, 0.5)) + z_power)) ** 2
    needed = int(note.group(1)) * scale
    target = min(math.ceil(needed), plan["max_units"])
    return target, power * min(1.0, plan["max_units"] / needed)


def _gains_from_seeds(claim) -> bool:
    """Seeds add units where training runs are the units, or the level above elements."""
    return "seed" in claim.unit or "element" in claim.unit


def next_step(suite, entries, state, seeds: Mapping[str, int], cost: Mapping[str, float], budget_left: float):
    """(experiment, seeds to add, expected decisions) with the most expected decisions per CPU-second
    that fits the budget, or None. Only claims whose units are training runs gain units from seeds;
    adding seeds to an experiment serves every undecided claim on it."""
    from .judge import INCONCLUSIVE, POWER

    wants = {}
    for claim in suite.claims:
        entry, plan = entries.get(claim.id), state["claims"].get(claim.id)
        if entry and plan and not plan.get("decided") and entry["verdict"] == INCONCLUSIVE and _gains_from_seeds(claim):
            wanted = units_wanted(entry, plan, POWER)
            if wanted is not None and wanted[0] > entry["n"]:
                wants[claim.id] = (claim.experiment, entry["n"] / max(seeds[claim.experiment], 1), *wanted)
    best = None
    for claim_id, (experiment, per_seed, target, _) in wants.items():
        add = max(1, math.ceil((target - entries[claim_id]["n"]) / max(per_seed, 1e-9)))
        spend = add * cost.get(experiment, math.inf)
        if spend > budget_left:
            continue
        gained = sum(chance for i, (e, ps, t, chance) in wants.items()
                     if e == experiment and entries[i]["n"] + add * ps >= t)  # fmt: skip
        score = gained / max(spend, 1e-9)
        if gained > 0 and (best is None or score > best[3]):
            best = (experiment, add, gained, score)
    return None if best is None else best[:3]


def _looks(suite, entries, state, max_growth: int) -> dict[str, float]:
    """Record a new look for every claim whose units grew; returns each planned claim's level."""
    levels = {}
    for claim in suite.claims:
        plan, n = state["claims"].get(claim.id), entries[claim.id]["n"]
        if not claim.claimed_region() or n < 2 or (plan and plan.get("decided")):
            continue
        if plan is None:  # the first look fixes the claim's plan, before its verdict is seen
            plan = state["claims"][claim.id] = {"max_units": n * max_growth, "looks": [], "levels": []}
        if not plan["looks"] or n > plan["looks"][-1]:
            plan["looks"].append(n)
            plan["levels"].append(SequentialPlan(plan["max_units"]).level(plan["looks"], claim.test))
        levels[claim.id] = plan["levels"][-1]
    return levels


def run_until_decided(suite, options, budget_s: float, max_growth: int = MAX_GROWTH, clock=time.monotonic) -> dict:
    """Run the profile's planned seeds, then add seeds to the experiments behind inconclusive claims,
    judging each claim at its look's spent level, until `budget_s` seconds of added runs are spent
    or nothing more can be decided within them. Resumable: the looks are kept in
    `<results>/<suite>/<profile>/sequential.json`, and finished cells are never rerun.

    Returns {"claims": judged entries (with `looks` and `decision_level`), "stopped": why, "seeds"}."""
    from .runner import results_folder, run_suite, setting
    from .store import atomic_write_text, load_units, read_runs, write_claims

    folder = results_folder(options, suite)
    path = folder / LOOKS_FILE
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"claims": {}, "seeds": {}}
    settings = suite.settings(options.profile, options.setting_overrides())
    planned = options.seeds or setting(settings, "seeds", 1)
    seeds = {e.name: int(state["seeds"].get(e.name, planned)) for e in suite.build(settings)}
    for count in sorted(set(seeds.values())):  # each experiment at the seeds it had reached
        wanted = tuple(c.id for c in suite.claims if seeds.get(c.experiment) == count)
        if len(set(seeds.values())) == 1 or wanted:
            run_suite(suite, replace(options, seeds=count, only=wanted if len(set(seeds.values())) > 1 else ()))
    start, units_before = clock(), None
    while True:
        rows = read_runs(folder / "runs.csv")
        entries = _judge_at(suite, rows, {}, load_units(folder), options.device)
        units_now = sum(e["n"] for e in entries.values())
        entries = _judge_at(suite, rows, _looks(suite, entries, state, max_growth), load_units(folder), options.device)
        for claim_id, plan in state["claims"].items():
            if plan.get("decided"):
                entries[claim_id] = plan["decided"]
                continue
            entries[claim_id].update(looks=len(plan["looks"]), decision_level=plan["levels"][-1],
                                     sequential=SequentialPlan(1).name)  # fmt: skip
            if entries[claim_id]["verdict"] not in ("inconclusive", "not run", "measured"):
                plan["decided"] = entries[claim_id]  # the first decision stands: later looks do not revisit it
        state["seeds"] = seeds
        atomic_write_text(path, json.dumps(state, indent=2) + "\n")
        left = budget_s - (clock() - start)
        step = next_step(suite, entries, state, seeds, _seed_cost(rows), left)
        if step is None or units_now == units_before:
            stopped = ("added seeds gave no new units (see the errors in runs.csv)" if step is not None
                       else "budget spent" if left <= 0 else "nothing more can be decided within the budget")  # fmt: skip
            break
        experiment, add, _ = step
        seeds[experiment] += add
        units_before = units_now
        only = tuple(c.id for c in suite.claims if c.experiment == experiment)
        run_suite(suite, replace(options, seeds=seeds[experiment], only=only, fresh=False))
    judged = [entries[c.id] for c in suite.claims]
    write_claims(folder / "claims.json", suite.name, options.profile, judged)
    return {"claims": judged, "stopped": stopped, "seeds": seeds}
