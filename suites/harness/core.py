"""The abstractions every suite is made of: Claim, Experiment, Cell, Suite, RunContext.

A suite is data: its claims say what the paper asserts and how to test it, its experiments say
which cells to run, and its profiles say how big. The runner and the judge read that data and
contain no per-paper branches.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from itertools import product
from pathlib import Path
from typing import Any

from .training import EVIDENCE

DIRECTIONS = ("greater", "less", "equivalent", "noninferior", "at_least", "match", "measurement")
PROFILES = ("smoke", "quick", "standard", "full")
INF = math.inf


@dataclass(frozen=True)
class Claim:
    """One sentence of a paper, as data, with the region where it holds declared before any run.

    The judge selects the rows of `metric` (from `experiment`) that match `treatment` and, when
    given, `baseline` (row filters on columns or params; a list value means "any of"), averages the
    rows inside each independent `unit`, pairs treatment with baseline on the unit, and computes
    the effect (treatment - baseline, or treatment / baseline for `effect="ratio"`; the
    treatment's own value without a baseline) with the interval of the claim's `test`. The
    verdict then follows from where that interval lies (see `judge`), using the regions below.

    `direction` declares the claimed region (where the paper's statement holds) and, for
    direction claims, the null side:

    - greater / less: the effect exceeds neutral + margin (is below neutral - margin); the null
      side is "no effect or the opposite". `size=(low, high)` narrows the claimed region to the
      paper's size ("1.33x" as (1.25, 1.41)); an interval that clears the null side but not the size
      region is "partially reproduced".
    - equivalent: the effect lies within neutral +- margin (TOST-style).
    - noninferior: the treatment is at most `margin` worse than the baseline; `better` says
      which way is better ("higher" for accuracy, "lower" for latency or loss).
    - at_least: a single quantity reaches the floor `reference - margin`.
    - match: a quantity equals `reference` +- margin; for deterministic figures (test "exact")
      it is reproduced when equal at the paper's printed `precision` and partially reproduced
      within `rel_tolerance`.
    - measurement: reported with its interval, no verdict (not a claim of the paper, or a
      quantity that cannot fail by construction).

    With several baseline methods (`baseline={"method": [...]}`), each unit's baseline is the best
    of them in that unit (`better` says which way is better).

    `unit` names the columns of one independent unit: ("task", "seed") when training runs are
    the units, ("task",) when datasets are (seeds are averaged inside), ("task", "element") to
    pair per-unit arrays (users, examples) element by element. `family` groups claims whose
    intervals are adjusted together (default: the id without its last part).

    `paper_value` is the reference column only and never enters a measured column. `target`
    overrides it as the reference of at_least/match claims.

    `bounds` is the range the effect can take (an accuracy in %: (0, 100)); the decision interval is
    clipped to it, so no interval reports values the metric cannot have.

    `evidence` is what every run behind a claim about trained models must have reached (see
    training.py): "converged" (stopped by its suite's stopping rule, or diverged) or "target"
    (reached the target the claim counts steps to). A verdict on runs that fall short is
    `inconclusive`, whatever the interval says; claims about counts, memory or timing need none.
    """

    id: str
    statement: str
    source: str
    experiment: str
    metric: str
    treatment: Mapping[str, Any]
    baseline: Mapping[str, Any] | None = None
    test: str = "ttest"
    direction: str = "greater"
    margin: float = 0.0
    size: tuple[float, float] | None = None
    better: str = "higher"
    effect: str = "difference"
    unit: tuple[str, ...] = ("task", "seed")
    family: str | None = None
    paper_value: float | None = None
    paper_value_text: str = ""
    target: float | None = None
    precision: float | None = None
    rel_tolerance: float = 0.0
    tolerance: float = 1e-6
    machine_dependent: bool = False
    protocol: str = ""
    requires: tuple[str, ...] = ()
    evidence: str | None = None
    bounds: tuple[float, float] | None = None  # the effect's possible range (0-100 for an accuracy in %)

    def __post_init__(self) -> None:
        problems = []
        if self.direction not in DIRECTIONS:
            problems.append(f"direction {self.direction!r} not in {DIRECTIONS}")
        if self.effect not in ("difference", "ratio"):
            problems.append("effect must be 'difference' or 'ratio'")
        if self.better not in ("higher", "lower"):
            problems.append("better must be 'higher' or 'lower'")
        if self.direction in ("at_least", "match") and self.reference is None:
            problems.append(f"a {self.direction} claim needs a target or paper_value")
        if self.direction == "noninferior" and self.baseline is None:
            problems.append("a noninferior claim compares with a baseline")
        if self.size is not None and (self.direction not in ("greater", "less") or not self.size[0] < self.size[1]):
            problems.append("size=(low, high) with low < high belongs to greater/less claims")
        if self.margin < 0:
            problems.append("margin must be >= 0")
        if not self.unit:
            problems.append("unit must name at least one column")
        if self.evidence is not None and self.evidence not in EVIDENCE:
            problems.append(f"evidence {self.evidence!r} not in {EVIDENCE}")
        if problems:
            raise ValueError(f"claim {self.id}: " + "; ".join(problems))

    @property
    def reference(self) -> float | None:
        return self.target if self.target is not None else self.paper_value

    @property
    def family_name(self) -> str:
        return self.family or self.id.rsplit(".", 1)[0]

    @property
    def neutral(self) -> float:
        """The effect that means 'no difference'."""
        return 1.0 if self.effect == "ratio" else 0.0

    @property
    def paper_text(self) -> str:
        if self.paper_value_text:
            return self.paper_value_text
        return "not reported" if self.paper_value is None else f"{self.paper_value:g}"

    def claimed_region(self) -> tuple[float, float] | None:
        """Where the paper's statement holds, as an interval of the effect (None: a measurement)."""
        n, m = self.neutral, self.margin
        if self.direction in ("greater", "less") and self.size is not None:
            return tuple(self.size)
        return {
            "greater": (n + m, INF),
            "less": (-INF, n - m),
            "equivalent": (n - m, n + m),
            "noninferior": (n - m, INF) if self.better == "higher" else (-INF, n + m),
            "at_least": (self.reference - m, INF) if self.reference is not None else None,
            "match": (self.reference - m, self.reference + m) if self.reference is not None else None,
            "measurement": None,
        }[self.direction]

    def null_region(self) -> tuple[float, float] | None:
        """For direction claims, the side that means "no effect or the opposite"."""
        if self.direction == "greater":
            return (-INF, self.neutral)
        if self.direction == "less":
            return (self.neutral, INF)
        return None

    def variant(self, **changes: Any) -> Claim:
        """A sibling claim: this one with a few fields changed (a new id, usually)."""
        return replace(self, **changes)


def family(base: Claim, members: Iterable[Mapping[str, Any]]) -> tuple[Claim, ...]:
    """The claims of one family: `base` with each member's changes (each names its own `id`).

    Like lm-evaluation-harness's `include:` plus overrides: a new member is one line of data.
    """
    members = list(members)
    missing = [i for i, m in enumerate(members) if "id" not in m]
    if missing:
        raise ValueError(f"family {base.family_name}: member(s) {missing} do not set their own id")
    return tuple(base.variant(**{"family": base.family_name, **m}) for m in members)


def canonical_params(params: Mapping[str, Any]) -> str:
    """Deterministic JSON of a params dict: the same grid point always reads the same."""
    return json.dumps(dict(sorted(params.items())), sort_keys=True, separators=(",", ":"))


def derive_seed(base_seed: int, index: int) -> int:
    """The index-th seed of a run. Shared by all methods, so every comparison is paired."""
    digest = hashlib.sha256(f"claimbench:{base_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)


@dataclass(frozen=True)
class Cell:
    """One unit of work: an experiment's task x method x params x seed."""

    suite: str
    experiment: str
    task: str
    method: str
    params: str  # canonical JSON, see canonical_params
    seed: int
    task_kwargs: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    method_kwargs: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.experiment, self.task, self.method, self.params, self.seed)

    @property
    def kwargs(self) -> dict[str, Any]:
        return json.loads(self.params)

    def label(self) -> str:
        params = "" if self.params == "{}" else f" {self.params}"
        return f"{self.experiment}:{self.task}/{self.method}{params} seed={self.seed}"


@dataclass
class RunContext:
    """What a cell may know about the run it is part of."""

    profile: str
    settings: Any  # the profile: a frozen dataclass (or a plain dict in older suites)
    device: str = "cpu"
    data_dir: str | None = None
    threads: int = 1
    show_progress: bool = True

    def progress(self, iterable: Iterable, **kwargs: Any) -> Iterable:
        """tqdm progress for long loops inside a cell (silent in worker processes)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, leave=False, disable=not self.show_progress, **kwargs)


RunFn = Callable[[Cell, RunContext], Mapping[str, float]]


@dataclass(frozen=True)
class StepCost:
    """What one cell of an experiment costs, for estimates made before a profile runs.

    `steps` is the most training steps one cell takes at the profile (its cap, or its fixed budget);
    `time_step(cell, ctx)` returns seconds per step of the profile's model on this machine, timed
    over a few steps (warm-up first), so the estimate follows the model's size, not another profile's
    cell times. A cell that is one measurement (a count, a timing) has steps=1 and times it all.
    """

    steps: int
    time_step: Callable[[Cell, RunContext], float]


@dataclass(frozen=True)
class Experiment:
    """A grid of cells that share one run function.

    `tasks` and `methods` map names to plain keyword dicts, handed to `run` through the cell, so
    one generic test can drive every method of every suite. `grid` adds further parameters
    (their product). `exclusive` experiments (timings, memory) run one cell at a time with nothing
    else running beside them, under every executor.

    `cpus`, `gpus` and `memory_gb` are what one cell needs; the ray and slurm executors request
    exactly that. `gpus=None` means one GPU when the run is on cuda and none on cpu.
    """

    name: str
    run: RunFn
    tasks: Mapping[str, Mapping[str, Any]]
    methods: Mapping[str, Mapping[str, Any]]
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    seeds: int = 1
    exclusive: bool = False
    requires: tuple[str, ...] = ()
    cpus: int = 1
    gpus: float | None = None
    memory_gb: float | None = None
    cost: StepCost | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The cost model serves estimates on the driver; workers never need it, and its probe may
        # be a closure, which cannot be pickled to a worker process.
        return {**self.__dict__, "cost": None}

    def cells(self, suite: str, base_seed: int) -> list[Cell]:
        names = sorted(self.grid)
        points = [dict(zip(names, values, strict=True)) for values in product(*(self.grid[n] for n in names))]
        return [
            Cell(
                suite=suite,
                experiment=self.name,
                task=task,
                method=method,
                params=canonical_params(point),
                seed=derive_seed(base_seed, i),
                task_kwargs=self.tasks[task],
                method_kwargs=self.methods[method],
            )
            for task in self.tasks
            for method in self.methods
            for point in points
            for i in range(self.seeds)
        ]


class Diverged(Exception):
    """Raised by a run function when training diverged (NaN/inf loss): a data point, not a crash."""

    def __init__(self, message: str, metrics: Mapping[str, float] | None = None):
        super().__init__(message)
        self.metrics = dict(metrics or {})


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a suite uses: its files in the data directory and where it comes from."""

    name: str
    files: tuple[str, ...]
    source: str
    package: str | None = None  # pip package that carries the data instead of the data dir
    experiments: tuple[str, ...] = ()  # experiments that read it (for `claimbench data list`); () = found by task name


FigureFn = Callable[[Any, list[dict], Path], list[Path]]


@dataclass
class Suite:
    """One paper: its claims, its experiments per profile, and its figures.

    `build(settings)` returns the experiments for a profile's settings (`profiles[name]`, a frozen
    dataclass with one commented field per setting, so a misspelt setting fails when the suite
    loads); a profile changes sizes, never code paths. `settings.seeds` is the number of seeds (the
    CLI's `--seeds` overrides it); experiments that need no seeds (counts, timings) ignore it.
    `figures(frame, judged_claims, folder)` draws the suite's figures from the tidy rows and returns the files it wrote.
    """

    name: str
    title: str
    claims: Sequence[Claim]
    profiles: Mapping[str, Any]
    build: Callable[[Mapping[str, Any]], list[Experiment]]
    figures: FigureFn | None = None
    datasets: Sequence[DatasetSpec] = ()
    extra: str | None = None
    notes: str = ""
    # Metrics that record which code path ran (e.g. whether the fast kernel was used): `compare` wants
    # them equal exactly, since a silent fallback changes every timing without failing anything else.
    switches: tuple[str, ...] = ()
    # Claims whose `quick` experiments are cheap enough for CI's regression check (`nox -s
    # regression` reruns them and compares with the committed quick results).
    regression: tuple[str, ...] = ()
    # check(settings, data_dir) raises DatasetUnavailable for data the user asked for by name
    # (--dataset) that is not there, so a typo fails before the run instead of as not-run rows.
    check: Callable[[Mapping[str, Any], str | None], None] | None = None

    def __post_init__(self) -> None:
        ids = [c.id for c in self.claims]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"suite {self.name}: duplicate claim ids {sorted(duplicates)}")

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)

    def settings(self, profile: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """A profile's settings with overrides (e.g. --seeds, --dataset) applied, resolved once per run.

        Only settings the profile already has may be overridden, so a typo cannot pass silently.
        """
        settings = self.profiles[profile]
        known = [f.name for f in fields(settings)] if is_dataclass(settings) else list(settings)
        unknown = sorted(set(overrides or {}) - set(known))
        if unknown:
            raise ValueError(
                f"suite {self.name}, profile {profile}: there is no setting {unknown[0]!r} to override "
                f"(settings: {', '.join(known)})"
            )
        if is_dataclass(settings):
            return replace(settings, **(overrides or {}))
        return {**settings, **(overrides or {})}

    def experiments(self, profile: str, overrides: Mapping[str, Any] | None = None) -> list[Experiment]:
        return self.build(self.settings(profile, overrides))
