"""A complete suite in a few lines: the template for a new suite, and the harness tests' subject.

A real suite is a package, `suites/<name>/`, with these parts as files: `profiles.py` (the typed
profile), `experiments.py` (run functions and `build`), `claims.py` (the claims, in families),
`figures.py`, and `__init__.py` holding `SUITE`. The registry finds the package by itself, so
adding a suite touches nothing outside it.

"Paper": a noisy estimator `better` beats `plain`, `copy` is equivalent to `plain`, and the model
has exactly 10 parameters. Everything is numpy, so a cell takes microseconds. Environment knobs
used by the harness tests: TINY_SLEEP (seconds per cell, for kill-and-resume), TINY_FAIL (a
method that raises), TINY_MISSING (a method whose data file is corrupt).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from suites.data import DatasetUnavailable
from suites.harness import Claim, DatasetSpec, Diverged, Experiment, StepCost, Suite, TrainingRecord, family


@dataclass(frozen=True)
class TinyProfile:
    seeds: int  # seeds per method (shared by all methods: every comparison is paired)
    n: int  # "training steps": reported, changes nothing else


PROFILES = {
    "smoke": TinyProfile(seeds=3, n=50),
    "quick": TinyProfile(seeds=5, n=500),
    "standard": TinyProfile(seeds=5, n=1000),
    "full": TinyProfile(seeds=10, n=5000),
}
RULE_STEPS = 50  # the "paper's" fixed budget: every profile trains at least this far


def time_step(cell, ctx) -> float:
    """Seconds per "training step": the probe `claimbench list --costs` multiplies by the steps."""
    start = time.perf_counter()
    sum(range(1_000))
    return time.perf_counter() - start


def run_estimate(cell, ctx):
    time.sleep(float(os.environ.get("TINY_SLEEP", "0")))
    if cell.method == os.environ.get("TINY_FAIL"):
        raise RuntimeError(f"{cell.method} was told to fail")
    if cell.method == os.environ.get("TINY_MISSING"):
        raise DatasetUnavailable(f"tiny/{cell.method}.csv in the data directory is corrupt; fix: fetch it again")
    if cell.method_kwargs["lr"] > 1:  # far too large a step: the loss blows up
        raise Diverged("loss became inf at step 3", metrics={"steps": 3})
    # The task sets the level, the method its bonus. Noise shared by all methods of a seed makes
    # the pairs tight; a little noise of each method's own keeps the differences from being constant.
    shared = np.random.default_rng(cell.seed).normal(0, 0.05)
    own = np.random.default_rng([cell.seed, cell.method_kwargs["id"]]).normal(0, 0.005)
    score = cell.task_kwargs["level"] + cell.method_kwargs["bonus"] + shared + own
    record = TrainingRecord.fixed_budget(ctx.settings.n, rule_steps=RULE_STEPS)
    return {"score": float(score), "steps": float(ctx.settings.n), **record.metrics()}


def run_count(cell, ctx):
    start = time.perf_counter()
    sum(range(10_000))
    return {"params": float(cell.kwargs["width"] * 2), "seconds": time.perf_counter() - start}


def build(settings):
    return [
        Experiment(
            name="estimate",
            run=run_estimate,
            tasks={"easy": {"level": 1.0}, "hard": {"level": 0.5}},
            methods={
                "plain": {"id": 0, "bonus": 0.0, "lr": 0.1},
                "better": {"id": 1, "bonus": 0.2, "lr": 0.1},
                "copy": {"id": 2, "bonus": 0.0, "lr": 0.1},
                "unstable": {"id": 3, "bonus": 0.0, "lr": 10.0},
            },
            seeds=settings.seeds,
            cost=StepCost(steps=settings.n, time_step=time_step),
        ),
        Experiment(name="count", run=run_count, tasks={"model": {}}, methods={"tiny": {}}, grid={"width": [5]}),
    ]


BETTER = Claim(
    id="tiny.estimate.better",
    statement="better beats plain",
    source="Table 1",
    experiment="estimate",
    metric="score",
    treatment={"method": "better"},
    baseline={"method": "plain"},
    test="ttest",
    direction="greater",
    margin=0.1,
    paper_value=0.2,
    tolerance=1e-9,
)

CLAIMS = (
    # One family: its members share one multiplicity adjustment; each is one line of changes.
    *family(
        BETTER,
        [
            dict(id="tiny.estimate.better"),
            dict(
                id="tiny.estimate.copy",
                statement="copy is as good as plain",
                treatment={"method": "copy"},
                direction="equivalent",
                margin=0.05,
                paper_value=None,
            ),
        ],
    ),  # fmt: skip
    Claim(
        id="tiny.count.params",
        statement="the model has 10 parameters",
        source="Section 2",
        experiment="count",
        metric="params",
        treatment={"method": "tiny"},
        test="exact",
        direction="match",
        paper_value=10,
        tolerance=0,
    ),
    Claim(
        id="tiny.count.seconds",
        statement="how long counting takes (a measurement, not a claim)",
        source="Section 3",
        experiment="count",
        metric="seconds",
        treatment={"method": "tiny"},
        test="exact",
        direction="measurement",
        tolerance=0.5,
        machine_dependent=True,
    ),
)

SUITE = Suite(
    name="tiny",
    title="A tiny example",
    claims=CLAIMS,
    profiles=PROFILES,
    build=build,
)

# The same suite declaring a dataset from the data directory: `run` must then find a data directory.
SUITE_WITH_DATA = replace(
    SUITE,
    name="tinydata",
    datasets=(DatasetSpec("BasicMotions", ("uea/BasicMotions/BasicMotions_TRAIN.ts",), "UEA archive"),),
)

# The same suite declaring `steps` a performance switch (compared exactly by `claimbench compare`).
SUITE_WITH_SWITCH = replace(SUITE, switches=("steps",))
