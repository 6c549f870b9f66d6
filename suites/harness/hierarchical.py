"""Claims over elements (users, examples): training runs, then elements within each run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import stats
from .claimtests import ClaimData, Resampled, Test, _OnScale, _unit_effects, register_test
from .core import Claim


@register_test("lift")  # the ratio of the two sides' means, over elements (it allows elements at 0)
class HierarchicalBootstrap(Resampled, _OnScale):
    """Claims over elements (users, examples): training runs, then elements within each run.

    The data hold one value per (task, seed, element), paired on all three; the effect is the pooled
    mean per-element effect (a difference, or the mean log ratio for ratio claims), or for `lift`
    claims the ratio of the two sides' means (which allows elements at 0). The interval and p come
    from `stats.hierarchical_means`, so they hold what retraining would change; n counts training
    runs, and p never goes below the exact sign-flip floor 2^-runs.
    """

    RESAMPLES = 1999

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        Test.__init__(self, claim, data)
        self.ratio = claim.effect == "ratio" or claim.test == "lift"
        self.lift = claim.test == "lift"
        if self.lift and data.baseline is None:
            raise ValueError("a lift compares a treatment with a baseline")
        index = data.treatment.index
        run_levels = [name for name in index.names if name != "element"]
        t = data.treatment.to_numpy(float)
        b = data.baseline.to_numpy(float) if data.baseline is not None else None
        columns = np.column_stack([t, b]) if self.lift else _unit_effects(claim, data)[:, None]
        frame = pd.DataFrame(columns, index=index)
        groups = list(frame.groupby(level=run_levels, sort=True))
        runs = [g.to_numpy(float) for _, g in groups]
        strata = [key[0] if isinstance(key, tuple) else key for key, _ in groups]  # the task
        self.n = len(runs)
        if self.n < 1 or min(len(r) for r in runs) < 2:
            raise ValueError("a hierarchical bootstrap needs at least one run with 2 or more elements")
        pooled = columns.mean(axis=0)
        means = stats.hierarchical_means(runs, strata, self.RESAMPLES, seed=0)
        if self.lift:
            if pooled[1] <= 0:
                raise ValueError("the baseline's mean is 0: a lift over it is undefined")
            with np.errstate(divide="ignore"):
                self.draws = np.log(np.maximum(means[:, 0], 1e-300)) - np.log(np.maximum(means[:, 1], 1e-300))
            self.effect = float(pooled[0] / pooled[1])
            run_effects = np.array([math.log(max(r[:, 0].mean(), 1e-300) / max(r[:, 1].mean(), 1e-300)) for r in runs])
        else:
            self.draws = means[:, 0]
            self.effect = self.unscale(float(pooled[0]))
            run_effects = np.array([r[:, 0].mean() for r in runs])
        sampling = np.array([r[:, -1].var(ddof=1) / len(r) for r in runs]) if not self.lift else np.zeros(self.n)
        self.sd = float(np.std(run_effects, ddof=1)) if self.n > 1 else math.nan
        per_task = {s: strata.count(s) for s in dict.fromkeys(strata)}
        self.name = ("lift (ratio of means)" if self.lift else "mean per-element effect") + (
            ", hierarchical bootstrap (runs, then elements)"
        )
        notes = [f"{self.n} training runs ({', '.join(f'{k}: {v}' for k, v in per_task.items())}) x "
                 f"{min(len(r) for r in runs)}-{max(len(r) for r in runs)} elements"]  # fmt: skip
        share = stats.run_variance_share(run_effects, sampling)
        if math.isfinite(share) and not self.lift:
            notes.append(f"training runs carry {share:.0%} of the variance of a run's mean effect")
        if min(per_task.values()) < 3:
            notes.append("fewer than 3 training runs per task: the interval cannot hold training variance; "
                         "a profile with at least 3 seeds decides it")  # fmt: skip
        self.note = "; ".join(notes)

    def interval(self, level: float) -> tuple[float, float]:
        low, high = np.quantile(self.draws, [0.5 - level / 2, 0.5 + level / 2], method="inverted_cdf")
        return self.unscale(float(low)), self.unscale(float(high))
