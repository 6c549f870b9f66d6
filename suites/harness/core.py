"""The abstractions every suite is made of: Claim, Experiment, Cell, Suite, RunContext.

A suite is data: its claims say what the paper asserts and how to test it, its experiments say
which cells to run, and its profiles say how big. The runner and the judge read that data and
contain no per-paper branches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

DIRECTIONS = ("greater", "less", "equivalent", "noninferior", "at_least", "match")
PROFILES = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Claim:
    """One sentence of a paper, as data.

    The judge selects the rows of `metric` (from `experiment`) that match `treatment` and, when
    given, `baseline` (row filters on columns or params; a list value means "any of"), averages
    rows that share a `pair_on` key, pairs treatment with baseline on that key, runs `test` and
    reads the result through `direction` and `margin`:

    - greater / less: the treatment beats the baseline; `margin` is the smallest effect that
      counts as reproduced (in effect units; for ratio effects, the distance from 1).
    - equivalent: the effect lies within +-margin (TOST); for ratio effects, within 1 +- margin.
    - noninferior: the treatment is at most `margin` worse than the baseline (higher is better).
    - at_least: a single quantity reaches `target - margin` (e.g. accuracy vs the paper's).
    - match: a single (usually deterministic) quantity equals `target` within relative `margin`.

    `paper_value` is the reference column only and never enters a measured column. `target`
    defaults to it for at_least/match claims.
    """

    id: str
    statement: str
    source: str
    experiment: str
    metric: str
    treatment: Mapping[str, Any]
    baseline: Mapping[str, Any] | None = None
    test: str = "wilcoxon"
    direction: str = "greater"
    margin: float = 0.0
    effect: str = "difference"
    pair_on: tuple[str, ...] = ("task", "seed")
    paper_value: float | None = None
    paper_value_text: str = ""
    target: float | None = None
    tolerance: float = 1e-6
    machine_dependent: bool = False
    protocol: str = ""
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction {self.direction!r} not in {DIRECTIONS}")
        if self.effect not in ("difference", "ratio"):
            raise ValueError(f"claim {self.id}: effect must be 'difference' or 'ratio'")
        if self.direction in ("at_least", "match") and self.reference is None:
            raise ValueError(f"claim {self.id}: a {self.direction} claim needs a target or paper_value")

    @property
    def reference(self) -> float | None:
        return self.target if self.target is not None else self.paper_value

    @property
    def neutral(self) -> float:
        """The effect that means 'no difference'."""
        return 1.0 if self.effect == "ratio" else 0.0

    @property
    def paper_text(self) -> str:
        if self.paper_value_text:
            return self.paper_value_text
        return "not reported" if self.paper_value is None else f"{self.paper_value:g}"


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
    settings: Mapping[str, Any]
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
class Experiment:
    """A grid of cells that share one run function.

    `tasks` and `methods` map names to plain keyword dicts, handed to `run` through the cell, so
    one generic test can drive every method of every suite. `grid` adds further parameters
    (their product). `exclusive` experiments (timings, memory) run one cell at a time with nothing
    else running beside them.
    """

    name: str
    run: RunFn
    tasks: Mapping[str, Mapping[str, Any]]
    methods: Mapping[str, Mapping[str, Any]]
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    seeds: int = 1
    exclusive: bool = False
    requires: tuple[str, ...] = ()

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


FigureFn = Callable[[Any, list[dict], Path], list[Path]]


@dataclass
class Suite:
    """One paper: its claims, its experiments per profile, and its figures.

    `build(settings)` returns the experiments for a profile's settings (`profiles[name]`); a
    profile changes sizes, never code paths. `settings["seeds"]` is the number of seeds (the
    CLI's `--seeds` overrides it); experiments that need no seeds (counts, timings) ignore it.
    `figures(frame, judged_claims, folder)` draws the suite's figures from the tidy rows and returns the files it wrote.
    """

    name: str
    title: str
    claims: Sequence[Claim]
    profiles: Mapping[str, Mapping[str, Any]]
    build: Callable[[Mapping[str, Any]], list[Experiment]]
    figures: FigureFn | None = None
    datasets: Sequence[DatasetSpec] = ()
    extra: str | None = None
    notes: str = ""
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

    def settings(self, profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A profile's settings with overrides (e.g. --seeds, --dataset) applied.

        Only settings the profile already has may be overridden, so a typo cannot pass silently.
        """
        settings = dict(self.profiles[profile])
        for key, value in (overrides or {}).items():
            if key not in settings:
                raise ValueError(f"suite {self.name}, profile {profile}: there is no setting {key!r} to override")
            settings[key] = value
        return settings

    def experiments(self, profile: str, overrides: Mapping[str, Any] | None = None) -> list[Experiment]:
        return self.build(self.settings(profile, overrides))
