"""The statistics the judge and the figures stand on, as thin validated layers over scipy and
statsmodels: Holm's correction, Friedman and ranks over blocks, pairwise Wilcoxon with Holm for
critical-difference diagrams, and the signed-rank machinery of the judge's Wilcoxon test (float
noise snapped to exact ties, tie-aware exact p-values, Hodges-Lehmann intervals by inverting the
test), plus bootstrap distributions of a mean.

Undefined results are NaN with a reason in ``note``; invalid inputs (NaN, wrong shapes) raise
``ValueError``. Tests that no suite uses wait here until one needs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

__all__ = [
    "TestResult",
    "average_ranks",
    "block_ranks",
    "bootstrap_means",
    "friedman",
    "hierarchical_means",
    "hodges_lehmann_interval",
    "holm",
    "nemenyi_critical_difference",
    "pairwise_wilcoxon_holm",
    "run_variance_share",
    "signed_rank_p",
    "snap_float_noise",
    "walsh_averages",
]

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")
_NAN = float("nan")
# Differences smaller than this fraction of the data's magnitude are floating-point noise
# (e.g. 0.1 + 0.2 - 0.3), not a measured effect; used only to detect degenerate inputs.
_REL_TOL = 1e-12
# scipy.stats.bootstrap materialises (batch x n) resamples; cap the cells per batch so a
# per-item bootstrap over a large test set does not allocate gigabytes.
_BOOTSTRAP_CELLS_PER_BATCH = 4_000_000


@dataclass(frozen=True)
class TestResult:
    """The outcome of one statistical test of one effect.

    Attributes:
        test: what was run, e.g. ``"wilcoxon signed-rank (one-sided, greater)"``.
        effect: the quantity the claim is about (mean paired difference x - y, ratio of means,
            accuracy difference, Kendall's W, ...); each function's docstring says which.
        ci_low, ci_high: confidence interval of ``effect`` (two-sided 95% unless the function says
            otherwise); NaN when undefined.
        p_value: p-value of the test for the requested alternative; NaN when undefined (see note).
        n: number of pairs / blocks / items the test used.
        statistic: the test statistic (t, W+, chi-square, ...); NaN when undefined.
        note: why something is NaN, or a caveat the reader needs (small n, approximations).
    """

    __test__ = False  # the name starts with "Test": keep pytest from collecting it

    test: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    statistic: float = _NAN
    note: str = ""


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def _as_1d(values: Any, name: str, min_n: int = 1) -> np.ndarray:
    """A finite 1-D float array, or a ValueError saying what is wrong with ``values``."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values: {arr.tolist()}")
    if arr.size < min_n:
        raise ValueError(f"{name} needs at least {min_n} values, got {arr.size}")
    return arr


def _tolerance(*arrays: np.ndarray) -> float:
    scale = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    return _REL_TOL * scale


def _all_zero(d: np.ndarray, tol: float) -> bool:
    return bool(np.all(np.abs(d) <= tol))


def small_n_bootstrap_note(n: int) -> str:
    # A bootstrap of n=3 seeds has only 10 distinct resample means; its interval is far too narrow.
    return f"bootstrap CI from n={n} pairs under-covers; read it with care" if n < 10 else ""


# --------------------------------------------------------------------------------------------
# multiple comparisons


def holm(p_values: Any) -> np.ndarray:
    """Holm step-down adjusted p-values (``statsmodels multipletests(method="holm")``).

    NaN entries (tests that were undefined) pass through as NaN and are left out of the family,
    so they neither count towards m nor get adjusted.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p-values must lie in [0, 1]: {p.tolist()}")
    out = np.full(p.shape, np.nan)
    if finite.any():
        out[finite] = multipletests(p[finite], method="holm")[1]
    return out


# --------------------------------------------------------------------------------------------
# many methods over many datasets


def _as_matrix(matrix: Any, min_blocks: int = 2, min_methods: int = 2) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-D [blocks x methods], got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("matrix contains NaN or infinite values")
    if m.shape[0] < min_blocks or m.shape[1] < min_methods:
        raise ValueError(f"need at least {min_blocks} blocks and {min_methods} methods, got shape {m.shape}")
    return m


def friedman(matrix: Any) -> TestResult:
    """Friedman test that k >= 3 methods rank alike over N blocks (``scipy.stats.friedmanchisquare``).

    ``matrix`` is [blocks (datasets / tasks) x methods]. statistic: the tie-corrected Friedman
    chi-square (df = k - 1, chi-square approximation, rough for few blocks). effect: Kendall's
    coefficient of concordance W = chi2 / (N (k - 1)), from 0 (no consistent ordering) to 1 (every
    block ranks the methods identically). No CI (NaN).
    """
    m = _as_matrix(matrix, min_blocks=2, min_methods=3)
    n_blocks, k = m.shape
    name = "friedman chi-square"
    if np.all(np.ptp(m, axis=1) <= _tolerance(m)):
        note = "all methods tied in every block: test undefined"
        return TestResult(name, _NAN, _NAN, _NAN, _NAN, n_blocks, _NAN, note)
    res = stats.friedmanchisquare(*m.T)
    chi2 = float(res.statistic)
    w = chi2 / (n_blocks * (k - 1))
    return TestResult(name, w, _NAN, _NAN, float(res.pvalue), n_blocks, chi2, f"effect is Kendall's W; k={k} methods")


def average_ranks(matrix: Any, higher_is_better: bool = True) -> np.ndarray:
    """Mean rank of each method over blocks; rank 1 is the best in a block, ties get the mean rank.

    ``matrix`` is [blocks x methods]; ranks come from ``scipy.stats.rankdata(method="average")``.
    """
    return block_ranks(matrix, higher_is_better).mean(axis=0)


def block_ranks(matrix: Any, higher_is_better: bool = True) -> np.ndarray:
    """Rank of each method within each block [blocks x methods]: 1 is the best, ties share the mean rank."""
    m = _as_matrix(matrix, min_blocks=1, min_methods=1)
    return stats.rankdata(-m if higher_is_better else m, method="average", axis=1)


def pairwise_wilcoxon_holm(
    matrix: Any,
    names: Sequence[str],
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Two-sided Wilcoxon signed-rank test for every pair of methods, Holm-adjusted over all pairs.

    ``matrix`` is [blocks x methods]. Returns one row per pair (i < j, in the given order) with
    columns ``a, b, mean_diff`` (mean over blocks of a - b), ``p_value`` (two-sided, unadjusted;
    NaN when a and b tie on every block), ``p_holm`` and ``significant`` (p_holm < alpha).
    """
    m = _as_matrix(matrix, min_blocks=2, min_methods=2)
    names = [str(s) for s in names]
    if len(names) != m.shape[1]:
        raise ValueError(f"got {len(names)} names for {m.shape[1]} methods")
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique: {names}")
    tol = _tolerance(m)
    rows = []
    for i, j in combinations(range(m.shape[1]), 2):
        d = snap_float_noise(m[:, i] - m[:, j], tol)
        p = _NAN if _all_zero(d, tol) else signed_rank_p(d, "two-sided")
        rows.append({"a": names[i], "b": names[j], "mean_diff": float(np.mean(d)), "p_value": p})
    df = pd.DataFrame(rows, columns=["a", "b", "mean_diff", "p_value"])
    df["p_holm"] = holm(df["p_value"].to_numpy()) if len(df) else []
    df["significant"] = (df["p_holm"] < alpha).astype(bool)  # NaN compares False: undefined is not significant
    return df


def nemenyi_critical_difference(n_methods: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks (Demsar 2006, eq. in section 3.2.2).

    CD = q_alpha * sqrt(k (k + 1) / (6 N)), with q_alpha the upper-alpha quantile of the
    studentized range for k groups and infinite df divided by sqrt(2)
    (``scipy.stats.studentized_range``). Two methods whose average ranks differ by more than CD
    are significantly different.
    """
    if n_methods < 2 or n_blocks < 1:
        raise ValueError(f"need n_methods >= 2 and n_blocks >= 1, got {n_methods}, {n_blocks}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    q = float(stats.studentized_range.ppf(1 - alpha, n_methods, np.inf)) / math.sqrt(2)
    return q * math.sqrt(n_methods * (n_methods + 1) / (6.0 * n_blocks))


# --------------------------------------------------------------------------------------------
# signed ranks with float noise, Hodges-Lehmann intervals, bootstrap distributions

# Differences closer than this fraction of the largest |difference| are one value measured twice.
_SNAP = 1e-9
# Up to this many non-zero differences the tie-aware p-value enumerates all 2**n sign patterns.
_EXACT_PERMUTATION_MAX = 16


def snap_float_noise(d: Any, tol: float | None = None) -> np.ndarray:
    """Differences with float noise removed: values within `tol` of zero become 0, and values
    within `tol` of each other become one value, so that ranks see exact zeros and exact ties.

    `tol` defaults to 1e-9 of the largest |difference| (0.019999999999999907 and
    0.020000000000000018 are the same measured 0.02).
    """
    d = _as_1d(d, "d")
    scale = float(np.max(np.abs(d))) if d.size else 0.0
    tol = _SNAP * scale if tol is None else tol
    if tol <= 0:
        return d.copy()
    return np.round(d / tol) * tol


def signed_rank_p(d: Any, alternative: Alternative = "two-sided") -> float:
    """p-value of the Wilcoxon signed-rank test on differences `d` (zeros dropped), tie-aware.

    Without ties, scipy's exact null distribution; with ties among at most 16 non-zero
    differences, the exact permutation distribution of the mid-rank statistic over all 2**n sign
    patterns (what scipy's "exact" ignores); beyond that, the tie-corrected normal approximation.
    1.0 when every difference is zero (no evidence either way).
    """
    _check_alternative(alternative)
    d = snap_float_noise(d)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    ties = np.unique(np.abs(d)).size < d.size
    if not ties:
        method = "exact" if d.size <= 50 else "asymptotic"
    elif d.size <= _EXACT_PERMUTATION_MAX:
        method = stats.PermutationMethod(n_resamples=2**d.size)
    else:
        method = "asymptotic"
    return float(stats.wilcoxon(d, alternative=alternative, method=method).pvalue)


def walsh_averages(d: Any) -> np.ndarray:
    """All (d_i + d_j) / 2 for i <= j, sorted: the Hodges-Lehmann estimate is their median."""
    d = _as_1d(d, "d")
    i, j = np.triu_indices(d.size)
    return np.sort((d[i] + d[j]) / 2.0)


def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(W+ <= w) for w = 0..n(n+1)/2 under H0, by counting subsets of {1..n} with each rank sum."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for k in range(1, n + 1):
        counts[k:] = counts[k:] + counts[:-k].copy()
    return np.cumsum(counts) / 2.0**n


def hodges_lehmann_interval(d: Any, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the pseudo-median, by inverting the signed-rank test.

    The bounds are order statistics of the Walsh averages (as R's `wilcox.test(conf.int=TRUE)`):
    exact for n <= 60, normal approximation beyond. A level the test cannot reach at this n (with
    n = 4, 2**-4 = 0.0625 > 0.025) gives (-inf, inf): the data cannot bound the effect.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    w = walsh_averages(d)
    n, big_m = int(_as_1d(d, "d").size), w.size
    tail = (1 - level) / 2
    if n <= 60:
        cdf = _signed_rank_cdf(n)
        q = int(np.searchsorted(cdf, tail + 1e-12, side="right"))  # largest k with P(W+ <= k - 1) <= tail
    else:
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        q = int(math.floor(big_m / 2 - stats.norm.ppf(1 - tail) * sd))
    if q < 1:
        return -math.inf, math.inf
    return float(w[q - 1]), float(w[big_m - q])


def bootstrap_means(d: Any, n_resamples: int = 9999, seed: int = 0) -> np.ndarray:
    """Means of `n_resamples` resamples of `d` with replacement (deterministic for a seed)."""
    d = _as_1d(d, "d")
    rng = np.random.default_rng(seed)
    batch = max(1, _BOOTSTRAP_CELLS_PER_BATCH // d.size)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        out[start : start + size] = d[rng.integers(0, d.size, size=(size, d.size))].mean(axis=1)
    return out


def hierarchical_means(
    runs: Sequence[np.ndarray], strata: Sequence[Any], n_resamples: int = 1999, seed: int = 0
) -> np.ndarray:
    """Pooled column means of a two-level bootstrap: training runs, then elements within each run.

    `runs[i]` is one training run's (elements x columns) array and `strata[i]` its stratum (the
    task): within each stratum, each resample draws as many runs as it has, with replacement, and
    for every drawn run as many of its elements, with replacement. A resample's value is the mean
    of each column over every element it drew (so tasks weigh by their element counts, as a pooled
    mean does). Returns (n_resamples x columns). The interval it gives holds what retraining would
    change, not only test-sample noise (Davison & Hinkley 1997, sec. 3.8, resampling at both stages).
    """
    if not runs:
        raise ValueError("no runs to resample")
    rng = np.random.default_rng(seed)
    columns = runs[0].shape[1]
    # Each run's element-level resample sums, drawn once per resample slot (batched: a large test
    # set times thousands of resamples would not fit in memory at once).
    element_sums = []
    for values in runs:
        n = values.shape[0]
        sums = np.empty((n_resamples, columns))
        batch = max(1, _BOOTSTRAP_CELLS_PER_BATCH // max(n, 1))
        for start in range(0, n_resamples, batch):
            size = min(batch, n_resamples - start)
            idx = rng.integers(0, n, size=(size, n))
            sums[start : start + size] = values[idx].sum(axis=1)
        element_sums.append(sums)
    totals = np.zeros((n_resamples, columns))
    counts = np.zeros(n_resamples)
    rows = np.arange(n_resamples)
    for stratum in dict.fromkeys(strata):
        members = [i for i, s in enumerate(strata) if s == stratum]
        drawn = rng.integers(0, len(members), size=(n_resamples, len(members)))
        for slot in range(len(members)):
            # A run drawn into a second slot takes another of its element draws (shifted rows),
            # so the two slots are not the same resample of that run.
            for j, member in enumerate(members):
                chosen = drawn[:, slot] == j
                shifted = (rows[chosen] + slot * 7919) % n_resamples
                totals[chosen] += element_sums[member][shifted]
                counts[chosen] += runs[member].shape[0]
    return totals / counts[:, None]


def run_variance_share(run_means: np.ndarray, run_sampling_var: np.ndarray) -> float:
    """The share of the variance of one run's mean effect that comes from training (seeds), the rest
    being test-sample noise: (between-run variance - mean sampling variance) / between-run variance,
    floored at 0 (a method-of-moments estimate; NaN with fewer than two runs)."""
    if len(run_means) < 2:
        return _NAN
    between = float(np.var(run_means, ddof=1))
    if between <= 0:
        return 0.0
    return max(between - float(np.mean(run_sampling_var)), 0.0) / between
