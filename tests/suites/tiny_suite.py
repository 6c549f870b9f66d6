"""A complete suite in a few lines: the reference example, and the harness tests' subject.

"Paper": a noisy estimator `better` beats `plain`, `copy` is equivalent to `plain`, and the model
has exactly 10 parameters. Everything is numpy, so a cell takes microseconds. Environment knobs
used by the harness tests: TINY_SLEEP (seconds per cell, for kill-and-resume), TINY_FAIL (a
method that raises).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from suites.harness import Claim, DatasetSpec, Diverged, Experiment, Suite


def run_estimate(cell, ctx):
    time.sleep(float(os.environ.get("TINY_SLEEP", "0")))
    if cell.method == os.environ.get("TINY_FAIL"):
        raise RuntimeError(f"{cell.method} was told to fail")
    if cell.method_kwargs["lr"] > 1:  # far too large a step: the loss blows up
        raise Diverged("loss became inf at step 3", metrics={"steps": 3})
    # The task sets the level, the method its bonus. Noise shared by all methods of a seed makes
    # the pairs tight; a little noise of each method's own keeps the differences from being constant.
    shared = np.random.default_rng(cell.seed).normal(0, 0.05)
    own = np.random.default_rng([cell.seed, cell.method_kwargs["id"]]).normal(0, 0.005)
    score = cell.task_kwargs["level"] + cell.method_kwargs["bonus"] + shared + own
    return {"score": float(score), "steps": float(ctx.settings["n"])}


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
            seeds=settings["seeds"],
        ),
        Experiment(name="count", run=run_count, tasks={"model": {}}, methods={"tiny": {}}, grid={"width": [5]}),
    ]


CLAIMS = (
    Claim(
        id="tiny.better",
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
    ),
    Claim(
        id="tiny.copy",
        statement="copy is as good as plain",
        source="Table 1",
        experiment="estimate",
        metric="score",
        treatment={"method": "copy"},
        baseline={"method": "plain"},
        test="tost",
        direction="equivalent",
        margin=0.05,
        tolerance=1e-9,
    ),
    Claim(
        id="tiny.params",
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
        id="tiny.fast",
        statement="counting takes no time at all",
        source="Section 3",
        experiment="count",
        metric="seconds",
        treatment={"method": "tiny"},
        test="exact",
        direction="at_least",
        target=0.0,
        tolerance=0.5,
        machine_dependent=True,
    ),
)

SUITE = Suite(
    name="tiny",
    title="A tiny example",
    claims=CLAIMS,
    profiles={"smoke": {"seeds": 3, "n": 50}, "quick": {"seeds": 5, "n": 500}, "full": {"seeds": 10, "n": 5000}},
    build=build,
)

# The same suite declaring a dataset from the data directory: `run` must then find a data directory.
SUITE_WITH_DATA = replace(
    SUITE,
    name="tinydata",
    datasets=(DatasetSpec("BasicMotions", ("uea/BasicMotions/BasicMotions_TRAIN.ts",), "UEA archive"),),
)
