"""The machinery every suite shares.

Writing a suite (see tests/suites/tiny_suite.py for a complete small example):

1. Write one run function per experiment: `run(cell, ctx) -> {metric: value}`. It reads
   `cell.task_kwargs`, `cell.method_kwargs`, `cell.kwargs` (the grid point) and `cell.seed`
   (already applied to random, numpy and torch), and `ctx.settings` (the profile's sizes),
   `ctx.device`, `ctx.data_dir`. It times only the method (warm-up first, synchronise on GPU),
   raises `Diverged` on a NaN/inf loss and lets `DatasetUnavailable` propagate for missing data.
2. Declare the experiments in `build(settings) -> [Experiment(...)]`; the profile's settings change
   sizes, never code paths. `settings["seeds"]` is the number of seeds.
3. Declare the claims as data: `Claim(id, statement, source, experiment, metric, treatment,
   baseline, test, direction, margin, paper_value, ...)`; see `Claim`'s docstring.
4. Bundle them: `SUITE = Suite(name, title, claims, profiles={"smoke": ..., "quick": ...,
   "full": ...}, build=build, figures=..., datasets=...)` and register it in `registry.KNOWN`.

Tests available to claims (`judge.TESTS`): wilcoxon, ttest, ratio, tost, noninferiority,
one_sample, exact, friedman; a suite may add its own with `judge.register_test`.
"""

from .core import Cell, Claim, DatasetSpec, Diverged, Experiment, RunContext, StepCost, Suite, family
from .judge import register_test
from .training import EarlyStopping, TrainingRecord

__all__ = [
    "Cell",
    "Claim",
    "DatasetSpec",
    "Diverged",
    "EarlyStopping",
    "Experiment",
    "RunContext",
    "StepCost",
    "Suite",
    "TrainingRecord",
    "family",
    "register_test",
]
