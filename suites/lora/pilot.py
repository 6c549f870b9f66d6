"""The learning-rate pilot's acceptance rule: is each fixed learning rate an interior optimum on dev?

The pilot (finetune.run_pilot) trains one seed per method and dataset at the profile's rate times
pilot_factor ** lr_step, lr_step in -1, 0, 1, by the same stopping rule as every fine-tuning run, and
returns the per-example dev cross-entropy of the model it keeps (`dev_loss`, an array the runner
stores in units/; the row holds its mean). The rate is accepted when the middle step has the lowest
dev loss and each neighbour is worse by more than the dev noise: `NOISE_Z` standard errors of the
paired per-example difference (the same dev examples score every rate). A neighbour that ties or
wins means the grid must move or widen (move the profile's rate one step towards the better edge
and rerun the pilot), never that the tie is read as an optimum.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

NOISE_Z = 1.96  # a difference the dev set can tell at the 5% level (two-sided), paired over dev examples
Units = Callable[..., np.ndarray | None]


def paired_gap(worse: np.ndarray, best: np.ndarray) -> tuple[float, float]:
    """(mean of worse - best, its standard error) over the same dev examples."""
    diff = np.asarray(worse, dtype=np.float64) - np.asarray(best, dtype=np.float64)
    return float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(len(diff)))


def pilot_problems(frame: pd.DataFrame, units: Units) -> list[str]:
    """One line per (task, method) whose middle learning rate is not an interior optimum of the
    pilot in `frame` (runs.csv rows); `units` is store.load_units of the same folder."""
    rows = frame[(frame["experiment"] == "pilot") & (frame["metric"] == "dev_loss") & (frame["status"] == "ok")]
    problems = []
    for (task, method), sub in rows.groupby(["task", "method"]):
        losses = {}
        for row in sub.itertuples(index=False):
            arr = units("pilot", task, method, row.params, row.seed, "dev_loss")
            if arr is None:
                problems.append(f"{task}/{method}: no per-example dev losses (a pilot from an older protocol)")
                break
            losses[json.loads(row.params)["lr_step"]] = arr
        else:
            problems += _check(f"{task}/{method}", losses)
    return problems


def _check(name: str, losses: dict[int, np.ndarray]) -> list[str]:
    if not {-1, 0, 1} <= set(losses):
        return [f"{name}: the pilot lacks lr steps {sorted({-1, 0, 1} - set(losses))}"]
    means = {step: float(np.mean(arr)) for step, arr in losses.items()}
    out = []
    for step in (-1, 1):
        gap, se = paired_gap(losses[step], losses[0])
        if gap <= NOISE_Z * se:
            side = "lower" if step < 0 else "higher"
            out.append(f"{name}: the {side} neighbour's dev loss {means[step]:.4f} is not worse than the middle's "
                       f"{means[0]:.4f} by more than the noise ({gap:+.4f}, {NOISE_Z} x SE {se:.4f}): "
                       f"move the rate towards it or widen the grid")  # fmt: skip
    return out
