"""Two statistical tests the GTN claims use, registered with the judge.

Both are generic; they live here until the harness's library of tests takes them over.
    vs_best               paired t of the treatment against the best of several baseline methods
                          in each unit (the best chosen per unit after the fact, which favours the
                          baselines: conservative for a non-inferiority claim)
    spread_across_tasks   how much a quantity differs between tasks: the range of the task means,
                          with a bootstrap interval that resamples seeds within each task and a
                          Kruskal-Wallis p across tasks (a measurement)
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from suites.harness.judge import ClaimData, TTest, _Resampled, register_test


@register_test("vs_best")
class VsBest(TTest):
    def __init__(self, claim, data: ClaimData) -> None:
        unit = list(claim.unit)
        base = data.rows[data.rows["role"] == "baseline"]
        best = base.groupby(unit + ["method"])["value"].mean().groupby(level=unit).max()
        if len(unit) == 1:
            best.index = best.index.get_level_values(0)
        common = data.treatment.index.intersection(best.index)
        super().__init__(claim, ClaimData(data.treatment.loc[common], best.loc[common], data.rows))
        self.name = "paired t against the best baseline in each unit"
        methods = ", ".join(sorted(base["method"].unique()))
        self.note = f"best of {methods} per unit"


@register_test("spread_across_tasks")
class SpreadAcrossTasks(_Resampled):
    """Interval and p-values read off the bootstrap draws of the range (the harness's `_Resampled`)."""

    RESAMPLES = 2000

    def __init__(self, claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        rows = data.rows[data.rows["role"] == "treatment"]
        groups = {t: g["value"].to_numpy(float) for t, g in rows.groupby("task") if len(g)}
        if len(groups) < 2:
            raise ValueError(f"needs at least two tasks, got {len(groups)}")
        self.n = len(groups)
        means = {t: float(v.mean()) for t, v in groups.items()}
        self.effect = max(means.values()) - min(means.values())
        rng = np.random.default_rng(0)
        values = list(groups.values())
        self.draws = np.array(
            [np.ptp([v[rng.integers(0, len(v), len(v))].mean() for v in values]) for _ in range(self.RESAMPLES)]
        )
        flat = np.concatenate(values)
        kruskal = math.nan if np.ptp(flat) == 0 else float(sps.kruskal(*values).pvalue)
        self.name = "range of task means; bootstrap over seeds within tasks"
        order = sorted(means.items(), key=lambda kv: kv[1])
        self.note = (
            "per-task means: " + ", ".join(f"{t} {m:.3f}" for t, m in order) + f"; Kruskal-Wallis p={kruskal:.3g}"
        )
