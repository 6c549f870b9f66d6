"""Rows built for a purpose: any claim's data at a chosen effect, for tests that show a verdict can fail.

`rows_for(claim, effect)` builds runs.csv-style rows (and, for claims over elements, the per-element
arrays) whose effect, as the claim's own test computes it, is `effect`, with little noise and enough
training runs to decide: every run meets the claim's evidence requirement. `effect_inside(claim)`
and `effect_outside(claim)` pick an effect in the claimed region and one on its far side (the null
side for a direction claim), so one generic test can show, for every claim of every suite, that it
comes out `reproduced` on the first and `not reproduced` on the second. A suite from outside
claimbench uses the same kit in its own tests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .core import Claim, canonical_params
from .training import REACHED_TARGET, TrainingRecord

UNITS = 12  # training runs (or datasets) per side: 2^-12 leaves room for any family's adjustment
ELEMENTS = 50  # elements per run, for claims over users or examples
BASE = 1.0  # the baseline's level (positive, so ratios are defined)
Loader = Callable[[str, str, str, str, int, str], "np.ndarray | None"]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) else value


def _scale(claim: Claim, low: float, high: float) -> float:
    finite = [abs(v) for v in (low, high) if math.isfinite(v)]
    return max(max(finite, default=1.0), 1.0) if claim.effect != "ratio" else 1.0


def effect_inside(claim: Claim) -> float:
    """An effect well inside the claimed region."""
    low, high = claim.claimed_region()
    if claim.effect == "ratio" or claim.test == "lift":
        if math.isfinite(low) and math.isfinite(high):
            return math.sqrt(max(low, 1e-9) * high)
        return max(low, 1e-9) * 2 if math.isfinite(low) else high / 2
    if math.isfinite(low) and math.isfinite(high):
        return (low + high) / 2
    step = _scale(claim, low, high)
    return low + step if math.isfinite(low) else high - step


def effect_outside(claim: Claim) -> float:
    """An effect clear of the claimed region: deep on the null side for a direction claim (so the
    verdict is `not reproduced`, not "direction reproduced"), else beyond the nearest edge."""
    low, high = claim.claimed_region()
    ratio = claim.effect == "ratio" or claim.test == "lift"
    null = claim.null_region()
    if null is not None:
        n = claim.neutral
        if ratio:
            return n / 2 if claim.direction == "greater" else n * 2
        step = _scale(claim, low, high)
        return n - step if claim.direction == "greater" else n + step
    if ratio:
        return max(low, 1e-9) / 2 if math.isfinite(low) else high * 2
    step = _scale(claim, low, high) if not (math.isfinite(low) and math.isfinite(high)) else (high - low)
    step = step or max(abs(low) / 2, 1.0)  # a point region (an exact count): any other value is outside
    return low - step if math.isfinite(low) else high + step


def _noise(claim: Claim, effect: float) -> float:
    """Noise small against the effect's distance from the region's edges, so the verdict is clear."""
    edges = [b for b in (*(claim.claimed_region() or ()), *(claim.null_region() or ())) if math.isfinite(b)]
    if claim.effect == "ratio" or claim.test == "lift":
        gaps = [abs(math.log(effect) - math.log(b)) for b in edges if b > 0]
    else:
        gaps = [abs(effect - b) for b in edges]
    return 0.02 * min(gaps, default=1.0)


def _side(filters: Mapping[str, Any] | None) -> tuple[str, dict[str, Any], str | None]:
    """(method, params, task) of the first run a side's filters select."""
    filters = dict(filters or {})
    method = str(_first(filters.pop("method", "m")))
    task = filters.pop("task", None)
    return method, {k: _first(v) for k, v in filters.items()}, (str(_first(task)) if task is not None else None)


def _row(claim: Claim, method: str, params: Mapping, task: str, seed: int, metric: str, value: float) -> dict:
    return dict(experiment=claim.experiment, task=task, method=method, params=canonical_params(params),
                seed=seed, metric=metric, value=float(value), status="ok", note="")  # fmt: skip


def _records(claim: Claim, method: str, params: Mapping, task: str, seed: int, stop_reason: str) -> list[dict]:
    if claim.evidence == "target":
        return [_row(claim, method, params, task, seed, REACHED_TARGET, float(stop_reason == "converged"))]
    if claim.evidence == "converged":
        record = TrainingRecord(stop_reason, 10, 8, 8).metrics()
        return [_row(claim, method, params, task, seed, k, v) for k, v in record.items()]
    return []


def rows_for(claim: Claim, effect: float, stop_reason: str = "converged", seed: int = 0) -> tuple[list[dict], Loader]:
    """Rows (and a per-element loader) for which the claim's test measures about `effect`.

    Every run carries a training record that stopped by `stop_reason` when the claim needs
    evidence. Units vary over the claim's unit columns that its filters do not fix.
    """
    rng = np.random.default_rng(seed)
    noise = _noise(claim, effect)
    ratio = claim.effect == "ratio" or claim.test == "lift"
    t_method, t_params, t_task = _side(claim.treatment)
    units = [c for c in claim.unit if c != "element"]
    # Over elements the training runs are the units that decide (seeds); else the first unit column
    # the filters leave free.
    vary = "seed" if "element" in claim.unit else None
    vary = vary or next((c for c in units if c == "seed" or (c == "task" and t_task is None)), None)
    free = [c for c in units if c not in ("seed", "task", "method") and c not in claim.treatment]
    vary = vary or next(iter(free), None)
    rows: list[dict] = []
    arrays: dict[tuple[str, int], np.ndarray] = {}

    def unit_key(i: int) -> tuple[str, int, dict]:
        task = t_task or "t0"
        if vary == "task":
            task = f"t{i}"
        extra = {c: 0 for c in free}  # unit columns that are parameters: present in every row
        if vary in free:
            extra[vary] = i
        return task, (i + 1 if vary == "seed" else 1), extra

    def emit(method: str, params: Mapping, task: str, seed_: int, value: float) -> None:
        if "element" in claim.unit:
            values = value + rng.normal(0, noise * 0.2, ELEMENTS)
            if ratio:
                values = np.abs(values)
            arrays[(f"{method}|{canonical_params(params)}|{task}", seed_)] = values
            value = float(values.mean())
        rows.append(_row(claim, method, params, task, seed_, claim.metric, value))
        rows.extend(_records(claim, method, params, task, seed_, stop_reason))

    n_units = UNITS if vary is not None else 1
    if claim.test in ("friedman", "spread"):
        _many_methods(claim, effect, n_units, unit_key, emit, rng, noise)
    elif claim.test == "spread_across_tasks":
        for i in range(4):
            level = BASE + effect * i / 3
            for s in range(1, 4):
                emit(t_method, t_params, f"t{i}", s, level + rng.normal(0, noise * 0.1))
    else:
        for i in range(n_units):
            task, seed_, extra = unit_key(i)
            jitter = rng.normal(0, noise)
            if claim.baseline is None:
                value = effect * math.exp(jitter) if ratio else effect + jitter
                emit(t_method, {**t_params, **extra}, task, seed_, value)
                continue
            b_method, b_params, b_task = _side(claim.baseline)
            base = BASE + rng.normal(0, abs(noise))
            emit(b_method, {**b_params, **extra}, b_task or task, seed_, base)
            value = base * effect * math.exp(jitter) if ratio else base + effect + jitter
            emit(t_method, {**t_params, **extra}, task, seed_, value)

    def load(experiment: str, task: str, method: str, params: str, seed_: int, metric: str):
        return arrays.get((f"{method}|{canonical_params(json.loads(params))}|{task}", seed_))

    return rows, load


def _many_methods(claim: Claim, effect: float, n_units: int, unit_key, emit, rng, noise: float) -> None:
    """Friedman (rank advantage) and spread claims: several methods per unit."""
    t_method, t_params, _ = _side(claim.treatment)
    if claim.test == "friedman":
        others = claim.baseline.get("method") if claim.baseline else ["b", "c"]
        others = list(others) if isinstance(others, (list, tuple)) else [others]
        sign = 1.0 if claim.better == "higher" else -1.0
        for i in range(n_units):
            task, seed_, extra = unit_key(i)
            for rank, method in enumerate(others, start=1):  # others in a fixed order
                emit(method, {**t_params, **extra}, task, seed_, BASE + sign * rank * 0.1 + rng.normal(0, 0.001))
            # effect > 0: the treatment ranks first in every block; effect <= 0: last
            place = (len(others) + 1) * 0.1 if effect > 0 else -0.1
            emit(t_method, {**t_params, **extra}, task, seed_, BASE + sign * place + rng.normal(0, 0.001))
        return
    methods = claim.treatment.get("method")
    methods = list(methods) if isinstance(methods, (list, tuple)) else [methods]
    params = {k: v for k, v in claim.treatment.items() if k != "method"}
    grid_key = next((k for k, v in params.items() if isinstance(v, (list, tuple))), None)
    members = [(m, {**{k: _first(v) for k, v in params.items()}}) for m in methods]
    if grid_key is not None and len(methods) == 1:  # the spread runs over a parameter (ranks r)
        members = [(methods[0], {**{k: _first(v) for k, v in params.items()}, grid_key: g}) for g in params[grid_key]]
    for i in range(n_units):
        task, seed_, extra = unit_key(i)
        for j, (method, p) in enumerate(members):
            level = BASE + effect * j / max(len(members) - 1, 1)
            emit(str(method), {**p, **extra}, task, seed_, level + rng.normal(0, noise * 0.05))
