"""Statistical tests that turn paired measurements into evidence for or against a claim.

Everything here is a thin, validated layer over scipy.stats and statsmodels: the libraries do the
statistics, this module fixes the conventions the harness relies on.

Conventions
-----------
* ``x`` is the treatment (the method the claim is about) and ``y`` the baseline, measured on the
  same seeds / tasks / items, so every comparison is paired and the effect is ``x - y`` (or
  ``mean(x) / mean(y)`` for ratios).
* ``alternative`` is the claim's direction for treatment vs baseline: ``"greater"`` means
  "x is larger than y", ``"less"`` means "x is smaller than y", ``"two-sided"`` means "they differ".
  It selects the tail of the p-value only.
* The confidence interval in a :class:`TestResult` is always a two-sided interval of the effect
  (95% unless the function says otherwise), whatever the alternative. It describes how large the
  effect is; the p-value carries the direction. A one-sided test can therefore be significant at
  5% while the 95% two-sided interval touches zero.
* Undefined results are NaN with a reason in ``note`` (all differences zero, zero variance, n too
  small to ever reach significance); they never raise. Invalid *inputs* (NaN, unequal lengths,
  wrong shapes, non-positive values for ratios) raise ``ValueError``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as _sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import ttost_paired

__all__ = [
    "TestResult",
    "block_ranks",
    "bootstrap_means",
    "hodges_lehmann_interval",
    "signed_rank_p",
    "snap_float_noise",
    "walsh_averages",
    "average_ranks",
    "bootstrap_ci_mean_diff",
    "bootstrap_ci_ratio",
    "friedman",
    "holm",
    "mcnemar_test",
    "nemenyi_critical_difference",
    "noninferiority_paired",
    "one_sample_ttest",
    "paired_bootstrap_corpus",
    "paired_ttest",
    "paired_wilcoxon",
    "pairwise_wilcoxon_holm",
    "ratio_test",
    "tost_paired",
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


def _paired(x: Any, y: Any, min_n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    xa = _as_1d(x, "x")
    ya = _as_1d(y, "y")
    if xa.size != ya.size:
        raise ValueError(f"paired samples need equal lengths, got len(x)={xa.size} and len(y)={ya.size}")
    if xa.size < min_n:
        raise ValueError(f"paired test needs at least {min_n} pairs, got {xa.size}")
    return xa, ya


def _tolerance(*arrays: np.ndarray) -> float:
    scale = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    return _REL_TOL * scale


def _all_zero(d: np.ndarray, tol: float) -> bool:
    return bool(np.all(np.abs(d) <= tol))


def _constant(d: np.ndarray, tol: float) -> bool:
    return bool(np.ptp(d) <= tol)


def _side(alternative: str) -> str:
    return "two-sided" if alternative == "two-sided" else f"one-sided, {alternative}"


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def small_n_bootstrap_note(n: int) -> str:
    # A bootstrap of n=3 seeds has only 10 distinct resample means; its interval is far too narrow.
    return f"bootstrap CI from n={n} pairs under-covers; read it with care" if n < 10 else ""


# --------------------------------------------------------------------------------------------
# bootstrap confidence intervals


def _bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., Any],
    confidence: float,
    n_resamples: int,
    seed: int,
    method: str,
) -> tuple[float, float]:
    """Paired scipy.stats.bootstrap; falls back from BCa to percentile when BCa is undefined.

    BCa is undefined when the bootstrap distribution is degenerate (e.g. the statistic is the same
    on every resample); the percentile interval is then the honest answer (a point).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    n = data[0].size
    batch = max(1, _BOOTSTRAP_CELLS_PER_BATCH // max(n, 1))
    kwargs = dict(
        n_resamples=n_resamples,
        confidence_level=confidence,
        paired=True,
        vectorized=True,
        batch=batch,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.bootstrap(data, statistic, method=method, rng=np.random.default_rng(seed), **kwargs)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if method != "percentile" and not (math.isfinite(low) and math.isfinite(high)):
            res = stats.bootstrap(data, statistic, method="percentile", rng=np.random.default_rng(seed), **kwargs)
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _ratio_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) / np.mean(y, axis=axis)


def bootstrap_ci_mean_diff(
    x: Any,
    y: Any,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    *,
    method: str = "BCa",
) -> tuple[float, float]:
    """Paired bootstrap interval of mean(x - y).

    Pairs (x_i, y_i) are resampled together (``scipy.stats.bootstrap(paired=True)``), so the
    interval reflects the paired design. BCa by default; the interval is deterministic for a given
    seed. Zero-variance differences give the point interval (d, d).
    """
    xa, ya = _paired(x, y)
    d = xa - ya
    if _constant(d, _tolerance(xa, ya)):
        m = float(np.mean(d))
        return m, m
    return _bootstrap_ci((xa, ya), _mean_diff, confidence, n_resamples, seed, method)


def bootstrap_ci_ratio(
    x: Any,
    y: Any,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    *,
    method: str = "BCa",
) -> tuple[float, float]:
    """Paired bootstrap interval of the ratio of means mean(x) / mean(y).

    Pairs are resampled together. ``y`` must have a non-zero mean on every resample, so all y
    values must be of one sign and non-zero; positive values are required for both.
    """
    xa, ya = _paired(x, y)
    _check_positive(xa, ya)
    if _constant(xa / ya, _REL_TOL * float(np.max(xa / ya))):
        r = float(np.mean(xa) / np.mean(ya))
        return r, r
    return _bootstrap_ci((xa, ya), _ratio_of_means, confidence, n_resamples, seed, method)


def _check_positive(x: np.ndarray, y: np.ndarray) -> None:
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("ratio statistics need strictly positive x and y (e.g. latencies, throughputs)")


# --------------------------------------------------------------------------------------------
# paired location tests


def paired_wilcoxon(
    x: Any,
    y: Any,
    alternative: Alternative = "two-sided",
    *,
    n_resamples: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Wilcoxon signed-rank test on the paired differences x - y (``scipy.stats.wilcoxon``).

    effect: mean(x - y). CI: 95% paired bootstrap (BCa) of that mean, since the signed-rank test
    itself is about the pseudo-median and has no interval for the mean. Zero differences are
    dropped (scipy's ``zero_method="wilcox"``); with few non-zero pairs the exact test cannot reach
    5% at all, and the note says so (m non-zero pairs: smallest one-sided p is 2**-m).
    statistic: scipy's (W+ for one-sided, min(W+, W-) for two-sided).
    """
    _check_alternative(alternative)
    xa, ya = _paired(x, y)
    d = xa - ya
    n = d.size
    tol = _tolerance(xa, ya)
    effect = float(np.mean(d))
    name = f"wilcoxon signed-rank ({_side(alternative)})"
    if _all_zero(d, tol):
        return TestResult(name, 0.0, 0.0, 0.0, _NAN, n, _NAN, "all differences zero: no evidence either way")
    low, high = bootstrap_ci_mean_diff(xa, ya, n_resamples=n_resamples, seed=seed)
    # Float noise (0.1 + 0.2 - 0.3, or 0.02 measured as 0.019999999999999907) must neither become a
    # signed rank nor break a tie: snap it to exact zeros and exact ties first.
    d = snap_float_noise(d)
    res = stats.wilcoxon(d[d != 0], alternative=alternative) if np.any(d != 0) else None
    p = signed_rank_p(d, alternative)
    m = int(np.count_nonzero(d))
    notes = []
    if m < n:
        notes.append(f"{n - m} zero differences dropped")
    smallest = min(1.0, (1.0 if alternative == "two-sided" else 0.5) * 2.0 ** (1 - m))
    if smallest > 0.05:
        sides = "two-sided" if alternative == "two-sided" else "one-sided"
        notes.append(f"n={m}: smallest attainable {sides} Wilcoxon p is {smallest:.4g}")
    notes.append(small_n_bootstrap_note(n))
    statistic = float(res.statistic) if res is not None else _NAN
    return TestResult(name, effect, low, high, p, n, statistic, _join(*notes))


def _t_result(
    name: str,
    d: np.ndarray,
    tol: float,
    popmean: float,
    alternative: str,
    confidence: float = 0.95,
    effect_shift: float = 0.0,
    extra_note: str = "",
    what: str = "differences",
) -> TestResult:
    """One-sample t test of mean(d) against ``popmean`` with a two-sided ``confidence`` interval.

    Shared by the paired, one-sample, ratio and non-inferiority tests (a paired t test *is* a
    one-sample t test on the differences). The interval is of mean(d) - effect_shift.
    """
    n = d.size
    effect = float(np.mean(d)) - effect_shift
    if _constant(d, tol):
        # R's t.test stops with "data are essentially constant"; scipy returns t=+-inf, p=0, which
        # would declare a deterministic difference infinitely significant. Report it as undefined.
        why = f"all {what} zero" if _all_zero(d, tol) else f"{what} have zero variance"
        return TestResult(name, effect, effect, effect, _NAN, n, _NAN, _join(f"{why}: t test undefined", extra_note))
    res = stats.ttest_1samp(d, popmean=popmean, alternative=alternative)
    ci = stats.ttest_1samp(d, popmean=popmean).confidence_interval(confidence)
    return TestResult(
        name,
        effect,
        float(ci.low) - effect_shift,
        float(ci.high) - effect_shift,
        float(res.pvalue),
        n,
        float(res.statistic),
        extra_note,
    )


def paired_ttest(x: Any, y: Any, alternative: Alternative = "two-sided") -> TestResult:
    """Paired t test (``scipy.stats.ttest_rel``).

    effect: mean(x - y). CI: two-sided 95% t interval of the mean difference (what
    ``ttest_rel(...).confidence_interval()`` gives for the two-sided test). statistic: t, df = n - 1.
    """
    _check_alternative(alternative)
    xa, ya = _paired(x, y)
    d = xa - ya
    name = f"paired t ({_side(alternative)})"
    tol = _tolerance(xa, ya)
    if _constant(d, tol):
        return _t_result(name, d, tol, 0.0, alternative)
    res = stats.ttest_rel(xa, ya, alternative=alternative)
    ci = stats.ttest_rel(xa, ya).confidence_interval(0.95)
    return TestResult(
        name, float(np.mean(d)), float(ci.low), float(ci.high), float(res.pvalue), d.size, float(res.statistic)
    )


def one_sample_ttest(x: Any, target: float, alternative: Alternative = "two-sided") -> TestResult:
    """One-sample t test of mean(x) against a fixed ``target`` (``scipy.stats.ttest_1samp``).

    Use it to compare our seeds with a paper's reported number. effect: mean(x) - target.
    CI: two-sided 95% t interval of mean(x) - target.
    """
    _check_alternative(alternative)
    xa = _as_1d(x, "x", min_n=2)
    if not math.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    name = f"one-sample t vs {target:g} ({_side(alternative)})"
    return _t_result(name, xa, _tolerance(xa), float(target), alternative, effect_shift=float(target))


def ratio_test(
    x: Any,
    y: Any,
    alternative: Alternative = "two-sided",
    *,
    n_resamples: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Is mean(x) / mean(y) different from 1 (speed-ups, memory ratios)?

    effect: mean(x) / mean(y), with a 95% paired bootstrap (BCa) interval.
    p: paired t test on log(x) - log(y), i.e. H0 "geometric mean of the per-pair ratios x_i/y_i
    is 1". Logs make the ratio additive and roughly symmetric, which a t test needs; the tested
    quantity (geometric mean of ratios) is therefore not exactly the reported effect (ratio of
    arithmetic means) and the note gives the geometric mean ratio too. Requires x, y > 0.
    """
    _check_alternative(alternative)
    xa, ya = _paired(x, y)
    _check_positive(xa, ya)
    effect = float(np.mean(xa) / np.mean(ya))
    log_d = np.log(xa) - np.log(ya)
    gmr = float(np.exp(np.mean(log_d)))
    low, high = bootstrap_ci_ratio(xa, ya, n_resamples=n_resamples, seed=seed)
    name = f"ratio of means; paired t on log ratios ({_side(alternative)})"
    note = _join(f"p tests the geometric mean ratio ({gmr:.4g}) against 1", small_n_bootstrap_note(xa.size))
    # log differences of equal values are exactly 0.0, so a tiny absolute tolerance suffices here
    t = _t_result(name, log_d, _REL_TOL, 0.0, alternative, extra_note=note, what="log ratios")
    return TestResult(name, effect, low, high, t.p_value, xa.size, t.statistic, t.note)


# --------------------------------------------------------------------------------------------
# equivalence and non-inferiority


def tost_paired(x: Any, y: Any, low: float, high: float) -> TestResult:
    """Paired equivalence test (TOST; ``statsmodels.stats.weightstats.ttost_paired``).

    H0: mean(x - y) <= low or mean(x - y) >= high; H1: low < mean(x - y) < high. A small p means
    "equivalent within [low, high]". p: the larger of the two one-sided t p-values.
    effect: mean(x - y). CI: the *90%* t interval of mean(x - y), the interval that matches a 5%
    TOST: it lies inside [low, high] exactly when TOST rejects at 5%.
    statistic: t of the binding (larger-p) one-sided test.
    """
    xa, ya = _paired(x, y)
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ValueError(f"equivalence bounds need finite low < high, got low={low}, high={high}")
    d = xa - ya
    n = d.size
    effect = float(np.mean(d))
    name = f"TOST paired t (bounds [{low:g}, {high:g}])"
    ci_note = "CI is the 90% t interval (matches a 5% TOST)"
    if _constant(d, _tolerance(xa, ya)):
        note = _join("differences have zero variance: t test undefined", ci_note)
        return TestResult(name, effect, effect, effect, _NAN, n, _NAN, note)
    p, (t_low, p_low, _), (t_high, p_high, _) = ttost_paired(xa, ya, low, high)
    ci = stats.ttest_rel(xa, ya).confidence_interval(0.90)
    t_bind = t_low if p_low >= p_high else t_high
    return TestResult(name, effect, float(ci.low), float(ci.high), float(p), n, float(t_bind), ci_note)


def noninferiority_paired(
    x: Any,
    y: Any,
    margin: float,
    alternative: Literal["greater", "less"] = "greater",
) -> TestResult:
    """Paired non-inferiority t test: is x no worse than y by more than ``margin``?

    ``alternative="greater"`` (higher is better, e.g. accuracy): H0 mean(x - y) <= -margin,
    a one-sided t test of (x - y + margin) > 0. ``alternative="less"`` (lower is better, e.g.
    latency, loss): H0 mean(x - y) >= +margin, a one-sided t test of (x - y - margin) < 0.
    A small p means "non-inferior within the margin". effect: mean(x - y); CI: two-sided 95% t
    interval of mean(x - y) (non-inferiority at 2.5% one-sided <=> CI clears -margin / +margin).
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"non-inferiority is one-sided: alternative must be 'greater' or 'less', got {alternative!r}")
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite non-negative number, got {margin}")
    xa, ya = _paired(x, y)
    d = xa - ya
    popmean = -margin if alternative == "greater" else margin
    better = "higher" if alternative == "greater" else "lower"
    name = f"non-inferiority paired t (margin {margin:g}, {better} is better)"
    return _t_result(name, d, _tolerance(xa, ya), popmean, alternative)


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
# two classifiers on one test set


def _newcombe_paired_ci(n11: int, n12: int, n21: int, n22: int, confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe (1998) method 10 ("square-and-add" hybrid score) interval for p1 - p2, paired.

    p1 = (n11 + n12) / n, p2 = (n11 + n21) / n. The Wilson intervals of the two marginals come from
    statsmodels (``proportion_confint(method="wilson")``); statsmodels 0.15 has no paired version,
    so only the combination with the correlation correction phi is written here.
    """
    n = n11 + n12 + n21 + n22
    p1, p2 = (n11 + n12) / n, (n11 + n21) / n
    alpha = 1.0 - confidence
    l1, u1 = proportion_confint(n11 + n12, n, alpha=alpha, method="wilson")
    l2, u2 = proportion_confint(n11 + n21, n, alpha=alpha, method="wilson")
    marg = (n11 + n12) * (n21 + n22) * (n11 + n21) * (n12 + n22)
    det = n11 * n22 - n12 * n21
    # Newcombe's continuity-corrected phi: shrink a positive det by n/2, keep a negative one.
    corrected = det - n / 2 if det > n / 2 else (det if det < 0 else 0.0)
    phi = corrected / math.sqrt(marg) if marg > 0 else 0.0
    d = p1 - p2
    lower = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    upper = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return float(lower), float(upper)


def _as_bool(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype != bool:
        if arr.dtype.kind not in "iuf" or not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name} must be boolean (or 0/1) per-item correctness")
        arr = arr.astype(bool)
    return arr


def mcnemar_test(correct_a: Any, correct_b: Any, exact: bool | None = None) -> TestResult:
    """McNemar test for two classifiers scored on the same test items.

    ``correct_a[i]`` / ``correct_b[i]``: whether classifier a / b got item i right. Only discordant
    items count: b_only = a right & b wrong, c_only = a wrong & b right. ``exact=None`` picks the
    exact binomial test when b_only + c_only < 25 and the continuity-corrected chi-square otherwise
    (both ``statsmodels.stats.contingency_tables.mcnemar``). p is two-sided.
    effect: accuracy(a) - accuracy(b). CI: 95% Newcombe (1998, method 10) hybrid score interval for
    a paired difference of proportions (closed form, good coverage even with few discordant pairs).
    statistic: min(b_only, c_only) for the exact test, chi-square otherwise.
    """
    a = _as_bool(correct_a, "correct_a")
    b = _as_bool(correct_b, "correct_b")
    if a.size != b.size:
        raise ValueError(f"correct_a and correct_b must score the same items, got {a.size} and {b.size}")
    if a.size < 1:
        raise ValueError("mcnemar_test needs at least one item")
    n11 = int(np.sum(a & b))
    n12 = int(np.sum(a & ~b))
    n21 = int(np.sum(~a & b))
    n22 = int(np.sum(~a & ~b))
    n = a.size
    discordant = n12 + n21
    use_exact = discordant < 25 if exact is None else bool(exact)
    name = "mcnemar (exact binomial)" if use_exact else "mcnemar (chi-square, continuity-corrected)"
    effect = (n12 - n21) / n
    low, high = _newcombe_paired_ci(n11, n12, n21, n22)
    counts = f"a-only correct {n12}, b-only correct {n21}, n={n}"
    if discordant == 0:
        # statsmodels' chi-square divides by zero here and reports p = 0; there is simply no evidence.
        note = f"no discordant items: classifiers agree on every item; {counts}"
        return TestResult(name, 0.0, low, high, 1.0, n, _NAN, note)
    res = _sm_mcnemar([[n11, n12], [n21, n22]], exact=use_exact, correction=True)
    return TestResult(name, effect, low, high, float(res.pvalue), n, float(res.statistic), counts)


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
# corpus-level metrics (BLEU)


def _take(seq: Any, idx: np.ndarray) -> Any:
    if seq is None:
        return None
    if isinstance(seq, np.ndarray):
        return seq[idx]
    return [seq[i] for i in idx]


def paired_bootstrap_corpus(
    metric: Callable[[Any, Any], float],
    sys_a: Sequence[Any],
    sys_b: Sequence[Any],
    refs: Sequence[Any] | None,
    n_resamples: int = 1000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
) -> TestResult:
    """Koehn (2004) paired bootstrap resampling for a corpus-level metric such as BLEU.

    ``metric(hyps, refs) -> float`` scores a whole corpus; ``sys_a[i]``, ``sys_b[i]`` and
    ``refs[i]`` belong to sentence i (for sacrebleu: ``lambda h, r: corpus_bleu(h, [r]).score``;
    ``refs`` may be None for reference-free metrics). Sentence indices are resampled with
    replacement (``scipy.stats.bootstrap``) and both systems are scored on the same resample.

    effect: metric(a) - metric(b) on the full corpus. CI: percentile interval of the resampled
    differences. p: one-sided for "a is better than b": the fraction of resamples on which a is not
    better (metric(a) - metric(b) <= 0), Koehn's "a wins in 1 - p of the samples". It is a Monte
    Carlo estimate (resolution 1 / n_resamples; 0 means < 1 / n_resamples), and it is not the
    mean-shifted variant sacrebleu reports.
    """
    n = len(sys_a)
    if len(sys_b) != n or (refs is not None and len(refs) != n):
        raise ValueError(
            f"sys_a, sys_b and refs must align sentence by sentence, got lengths {n}, {len(sys_b)}, "
            f"{None if refs is None else len(refs)}"
        )
    if n < 2:
        raise ValueError(f"paired bootstrap needs at least 2 sentences, got {n}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")

    def delta(idx: np.ndarray) -> float:
        r = _take(refs, idx)
        return float(metric(_take(sys_a, idx), r)) - float(metric(_take(sys_b, idx), r))

    score_a = float(metric(sys_a, refs))
    score_b = float(metric(sys_b, refs))
    effect = score_a - score_b
    res = stats.bootstrap(
        (np.arange(n),),
        delta,
        n_resamples=n_resamples,
        confidence_level=confidence,
        vectorized=False,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    deltas = np.asarray(res.bootstrap_distribution, dtype=float)
    p = float(np.mean(deltas <= 0))
    notes = [f"metric(a)={score_a:.4g}, metric(b)={score_b:.4g}"]
    if np.all(deltas == 0):
        notes.append("metric identical for both systems on every resample")
    elif p == 0:
        notes.append(f"a better on every resample: p < {1 / n_resamples:.2g}")
    return TestResult(
        f"paired bootstrap (Koehn 2004; one-sided, a > b; {n_resamples} resamples)",
        effect,
        float(res.confidence_interval.low),
        float(res.confidence_interval.high),
        p,
        n,
        _NAN,
        _join(*notes),
    )


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
        q = int(np.searchsorted(cdf, tail - 1e-12))  # smallest q with P(W+ <= q) >= tail
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
