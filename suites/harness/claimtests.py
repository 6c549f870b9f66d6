"""The library of tests a claim can name (`Claim.test`), each a class the judge reads the same way.

Each is a class built from (claim, data) that gives the
effect, an interval at any level and one-sided p-values at any boundary, so the judge itself has
no per-test branches: `ttest` (paired or one-sample; log scale for ratio effects), `wilcoxon`
(Hodges-Lehmann estimate and interval), `bootstrap` (mean over many units: users, examples),
`exact` (deterministic figures), `friedman` (rank advantage over the best other method across
blocks), `spread` (max - min of several methods' means: "flat in r"), `spread_across_tasks`
(max - min of one method's means over tasks). Suites may add their own
with `register_test`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import stats
from .core import INF, Claim


@dataclass
class ClaimData:
    """A claim's samples, one value per independent unit; `baseline` is aligned with `treatment`."""

    treatment: pd.Series
    baseline: pd.Series | None
    rows: pd.DataFrame  # every selected row, with a `role` column (treatment/baseline)
    failed: pd.DataFrame | None = None  # runs that diverged or gave no value, scored as the worst value


class Test:
    """What the judge needs from a statistical test of one claim.

    `effect` is the estimate; `interval(level)` its two-sided interval; `p_greater(b)` and
    `p_less(b)` the one-sided p-values of "the effect exceeds b" and "is below b". `scale` maps an
    effect to the scale the test works on (log for ratios), where `sd` is the spread of one unit,
    for the power calculation. `p_floor` is the smallest one-sided p the test's own distribution can
    reach (1/(B+1) for B resamples); `floor_at(n)` the smallest an exact test reaches with n units.
    """

    name = "test"
    deterministic = False
    note = ""

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        self.claim = claim
        self.n = len(data.treatment)

    effect: float = math.nan
    sd: float = math.nan
    p_floor: float = 0.0

    def floor_at(self, n: int) -> float:
        """The smallest one-sided p any exact test reaches with n independent units: the sign flip's
        2^-n. The judge never reports a p below it, whatever the test's own distribution says."""
        return 0.5**n

    def interval(self, level: float) -> tuple[float, float]:
        raise NotImplementedError

    def p_greater(self, bound: float) -> float:
        raise NotImplementedError

    def p_less(self, bound: float) -> float:
        raise NotImplementedError

    def scale(self, value: float) -> float:
        return value

    def unscale(self, value: float) -> float:
        return value


TESTS: dict[str, type[Test]] = {}


def register_test(name: str) -> Callable[[type[Test]], type[Test]]:
    def wrap(cls: type[Test]) -> type[Test]:
        TESTS[name] = cls
        return cls

    return wrap


def _unit_effects(claim: Claim, data: ClaimData) -> np.ndarray:
    """Per-unit effects: differences, log ratios (ratio claims), or the values themselves."""
    x = data.treatment.to_numpy(float)
    if claim.effect == "ratio":
        if np.any(x <= 0) or (data.baseline is not None and np.any(data.baseline.to_numpy(float) <= 0)):
            raise ValueError("a ratio effect needs strictly positive values")
        return np.log(x) - (np.log(data.baseline.to_numpy(float)) if data.baseline is not None else 0.0)
    return x - data.baseline.to_numpy(float) if data.baseline is not None else x


class _OnScale(Test):
    """A test that works on per-unit effects d (log ratios for ratio claims) and reports on the claim's scale."""

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        self.ratio = claim.effect == "ratio"
        self.d = _unit_effects(claim, data)
        values = [data.treatment.to_numpy(float)] + (
            [data.baseline.to_numpy(float)] if data.baseline is not None else []
        )
        self.magnitude = max(float(np.max(np.abs(v))) if v.size else 0.0 for v in values)
        self.sd = float(np.std(self.d, ddof=1)) if self.d.size > 1 else math.nan

    def scale(self, value: float) -> float:
        if not self.ratio:
            return value
        return math.log(value) if value > 0 else -INF

    def unscale(self, value: float) -> float:
        return math.exp(value) if self.ratio else value


class Resampled(Test):
    """A test read off a bootstrap distribution of the effect (`draws`, on the test's scale):
    percentile interval, and p as the share of draws on the wrong side of the bound."""

    RESAMPLES = 4999
    draws: np.ndarray

    def interval(self, level: float) -> tuple[float, float]:
        low, high = np.quantile(self.draws, [0.5 - level / 2, 0.5 + level / 2])
        return self.unscale(float(low)), self.unscale(float(high))

    def p_greater(self, bound: float) -> float:
        return float((1 + np.sum(self.draws <= self.scale(bound))) / (len(self.draws) + 1))

    def p_less(self, bound: float) -> float:
        return float((1 + np.sum(self.draws >= self.scale(bound))) / (len(self.draws) + 1))

    @property
    def p_floor(self) -> float:  # type: ignore[override]
        return 1.0 / (self.RESAMPLES + 1)


@register_test("ttest")
class TTest(_OnScale):
    """Student t on the per-unit effects (paired t with a baseline, one-sample t without; on log
    ratios for ratio claims, so the effect is the geometric mean ratio)."""

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        if self.d.size < 2:
            raise ValueError(f"a t test needs at least 2 units, got {self.d.size}")
        self.mean = float(np.mean(self.d))
        self.se = self.sd / math.sqrt(self.d.size)
        self.effect = self.unscale(self.mean)
        self.name = ("paired t" if data.baseline is not None else "one-sample t") + (
            " on log ratios" if self.ratio else ""
        )
        self.df = self.d.size - 1

    def interval(self, level: float) -> tuple[float, float]:
        if self.se == 0:
            return self.effect, self.effect
        half = sps.t.ppf(0.5 + level / 2, self.df) * self.se
        return self.unscale(self.mean - half), self.unscale(self.mean + half)

    def _t(self, bound: float) -> float:
        b = self.scale(bound)
        if self.se == 0:
            return INF if self.mean > b else (-INF if self.mean < b else 0.0)
        return (self.mean - b) / self.se

    def _sign_p(self, bound: float, alternative: str) -> float:
        """Every unit has the same effect: no variance for a t, so the exact sign test decides."""
        above = int(np.sum(self.d > self.scale(bound)))
        below = int(np.sum(self.d < self.scale(bound)))
        if above + below == 0:
            return 1.0
        k = above if alternative == "greater" else below
        return float(sps.binomtest(k, above + below, 0.5, alternative="greater").pvalue)

    def p_greater(self, bound: float) -> float:
        if self.se == 0:
            return self._sign_p(bound, "greater")
        return float(sps.t.sf(self._t(bound), self.df))

    def p_less(self, bound: float) -> float:
        if self.se == 0:
            return self._sign_p(bound, "less")
        return float(sps.t.cdf(self._t(bound), self.df))


@register_test("wilcoxon")
class Wilcoxon(_OnScale):
    """Wilcoxon signed-rank on the per-unit effects, with the Hodges-Lehmann estimate (the median
    of the Walsh averages) and its distribution-free interval, so estimate, interval and test are
    about the same quantity. Float noise is snapped to exact ties before ranking; p-values are exact
    and tie-aware for small n (see `stats.signed_rank_p`)."""

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        if self.d.size < 2:
            raise ValueError(f"a signed-rank test needs at least 2 units, got {self.d.size}")
        noise = max(1e-9 * float(np.max(np.abs(self.d))), 1e-12 * self.magnitude)
        self.d = stats.snap_float_noise(self.d, noise)
        self.walsh = stats.walsh_averages(self.d)
        self.effect = self.unscale(float(np.median(self.walsh)))
        self.name = "Wilcoxon signed-rank, Hodges-Lehmann" + (" on log ratios" if self.ratio else "")
        self.p_floor = 0.5**self.d.size

    def interval(self, level: float) -> tuple[float, float]:
        low, high = stats.hodges_lehmann_interval(self.d, level)
        return self.unscale(low), self.unscale(high)

    def p_greater(self, bound: float) -> float:
        return stats.signed_rank_p(self.d - self.scale(bound), "greater")

    def p_less(self, bound: float) -> float:
        return stats.signed_rank_p(self.d - self.scale(bound), "less")


@register_test("bootstrap")
class Bootstrap(Resampled, _OnScale):
    """Percentile bootstrap of the mean per-unit effect over units (many units: users, examples)."""

    RESAMPLES = 9999

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        if self.d.size < 2:
            raise ValueError(f"a bootstrap needs at least 2 units, got {self.d.size}")
        self.mean = float(np.mean(self.d))
        self.effect = self.unscale(self.mean)
        self.draws = stats.bootstrap_means(self.d, self.RESAMPLES, seed=0)
        self.name = "bootstrap over units" + (" on log ratios" if self.ratio else "")
        self.note = stats.small_n_bootstrap_note(self.d.size)


@register_test("exact")
class Exact(Test):
    """Deterministic figures (counts, sizes, analytic numbers): no sampling, so no p-value; the
    interval is the range over units (a point when there is one)."""

    deterministic = True
    name = "exact (deterministic)"

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        x = data.treatment.to_numpy(float)
        if data.baseline is None:
            per_unit = x
        elif claim.effect == "ratio":
            per_unit = x / data.baseline.to_numpy(float)
        else:
            per_unit = x - data.baseline.to_numpy(float)
        self.values = per_unit
        self.effect = float(np.mean(per_unit))

    def interval(self, level: float) -> tuple[float, float]:
        return float(np.min(self.values)), float(np.max(self.values))

    def p_greater(self, bound: float) -> float:
        return math.nan

    p_less = p_greater


@register_test("friedman")
class RankAdvantage(Resampled):
    """The treatment ranks first among many methods over many blocks (datasets are the units).

    effect = (best average rank among the other methods) - (the treatment's average rank): positive
    when the treatment ranks first. `better` says which metric values rank first. Interval and
    p-values from a bootstrap over blocks; the Friedman omnibus p goes to the notes.
    """

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        unit = [c for c in claim.unit if c in data.rows.columns]
        table = data.rows.pivot_table(index=unit, columns="method", values="value", aggfunc="mean").dropna()
        treatment = claim.treatment["method"]
        names = [treatment] + [m for m in table.columns if m != treatment]
        matrix = table[names].to_numpy(float)
        self.n = matrix.shape[0]
        if self.n < 2 or len(names) < 2:
            raise ValueError(f"a rank comparison needs >= 2 blocks and >= 2 methods, got {matrix.shape}")
        ranks = stats.block_ranks(matrix, higher_is_better=claim.better == "higher")
        self.effect = float(np.min(ranks[:, 1:].mean(axis=0)) - ranks[:, 0].mean())
        rng = np.random.default_rng(0)
        idx = rng.integers(0, self.n, size=(self.RESAMPLES, self.n))
        boot = ranks[idx]  # resamples x blocks x methods
        self.draws = boot[:, :, 1:].mean(axis=1).min(axis=1) - boot[:, :, 0].mean(axis=1)
        mean_ranks = ", ".join(f"{n} {r:.2f}" for n, r in zip(names, ranks.mean(axis=0), strict=True))
        omnibus = stats.friedman(matrix)
        self.name = "rank advantage over the best other method, bootstrap over blocks"
        self.note = f"average ranks {mean_ranks}; Friedman p={omnibus.p_value:.3g}"
        listed = claim.baseline.get("method") if claim.baseline else None
        absent = [m for m in listed if m not in names] if isinstance(listed, (list, tuple)) else []
        if absent:  # the ranking is among fewer methods than the claim names: say so beside the verdict
            self.note += f"; ranked without {', '.join(absent)} (not run here)"
        self.sd = float(np.std(self.draws) * math.sqrt(self.n))
        self.methods = len(names)

    def floor_at(self, n: int) -> float:
        """Under the null every method is equally likely to rank first in a block: the exact
        permutation p of "first in every block" is (1/methods)^blocks."""
        return (1.0 / self.methods) ** n


@register_test("spread")
class Spread(Resampled):
    """How far apart several methods are: max - min of their mean values over units (blocks).

    For "flat in r"-style claims: declare direction="equivalent" with the margin, so the claim is
    reproduced when the whole interval of the spread lies below the margin (every pair within it)
    and not reproduced when even its lower end exceeds it. Interval and p from a bootstrap over
    units; the methods' means go to the notes.
    """

    def __init__(self, claim: Claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        unit = [c for c in claim.unit if c in data.rows.columns]
        table = data.rows.pivot_table(index=unit, columns="method", values="value", aggfunc="mean").dropna()
        matrix = table.to_numpy(float)
        self.n = matrix.shape[0]
        if self.n < 2 or matrix.shape[1] < 2:
            raise ValueError(f"a spread needs >= 2 units and >= 2 methods, got {matrix.shape}")
        means = matrix.mean(axis=0)
        self.effect = float(means.max() - means.min())
        idx = np.random.default_rng(0).integers(0, self.n, size=(self.RESAMPLES, self.n))
        boot = matrix[idx].mean(axis=1)  # resamples x methods
        self.draws = boot.max(axis=1) - boot.min(axis=1)
        self.sd = float(np.std(self.draws) * math.sqrt(self.n))
        self.name = "spread of method means (max - min), bootstrap over units"
        self.note = "means " + ", ".join(f"{m} {v:.3g}" for m, v in zip(table.columns, means, strict=True))


@register_test("spread_across_tasks")
class SpreadAcrossTasks(Resampled):
    """How much one quantity differs between tasks (datasets): the range (max - min) of the task
    means, with a bootstrap that resamples seeds within each task; Kruskal-Wallis p in the notes."""

    RESAMPLES = 2000

    def __init__(self, claim, data: ClaimData) -> None:
        super().__init__(claim, data)
        rows = data.rows[data.rows["role"] == "treatment"]
        groups = {t: g["value"].to_numpy(float) for t, g in rows.groupby("task") if len(g)}
        if len(groups) < 2:
            raise ValueError(f"needs at least two tasks, got {len(groups)}")
        self.n = len(groups)
        self.single = min(len(v) for v in groups.values()) < 2
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
        if self.single:
            self.note += "; one seed in some task: nothing to resample there, so no interval"

    def interval(self, level: float) -> tuple[float, float]:
        if self.single:  # a resample of one value is that value: certainty from nothing
            return -INF, INF
        return super().interval(level)

    @property
    def p_floor(self) -> float:  # type: ignore[override]
        return 1.0 if self.single else super().p_floor
