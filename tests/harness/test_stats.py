"""Tests for suites.harness.stats against independent reference values.

Every expected number below comes from a published worked example (source named next to it) or
is derived by hand in a comment from first principles. Closed forms used repeatedly:

* Student t with 2 degrees of freedom has the CDF  F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so a
  one-sided upper p-value is 1/2 - t / (2 sqrt(2 + t^2)) and the two-sided one is
  1 - |t| / sqrt(2 + t^2). Its quantiles from the t table: t_0.95 = 2.919986, t_0.975 = 4.302653.
* Chi-square with 1 df is Z^2, so its upper tail is erfc(sqrt(x / 2)); with 2 df it is exp(-x / 2).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from suites.harness import figures as F
from suites.harness import stats as S

T2_95 = 2.919986  # t table, df = 2, 0.95 quantile
T2_975 = 4.302653  # t table, df = 2, 0.975 quantile


def t2_upper(t: float) -> float:
    """P(T > t) for Student t with 2 df (closed form)."""
    return 0.5 - t / (2 * math.sqrt(2 + t * t))


# --------------------------------------------------------------------------------------------
# reference data sets

# Student (1908) / Cushny & Peebles (1905) sleep data, as R's `sleep`: extra hours of sleep.
SLEEP_DRUG1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_DRUG2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

# Hollander & Wolfe (1973, p. 29f; 3rd ed. Example 3.1): Hamilton depression scale factor IV for
# 9 patients, first (x) and second (y) visit. Published: T+ = 40; R's
# wilcox.test(x, y, paired = TRUE, alternative = "greater") gives V = 40, p-value = 0.01953.
HW_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HW_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]

# Hollander & Wolfe (1973, p. 140ff): rounding first base, 22 players x 3 methods.
# Published (R friedman.test example): Friedman chi-squared = 11.143, df = 2, p-value = 0.003805.
ROUNDING_TIMES = [
    [5.40, 5.50, 5.55], [5.85, 5.70, 5.75], [5.20, 5.60, 5.50], [5.55, 5.50, 5.40],
    [5.90, 5.85, 5.70], [5.45, 5.55, 5.60], [5.40, 5.40, 5.35], [5.45, 5.50, 5.35],
    [5.25, 5.15, 5.00], [5.85, 5.80, 5.70], [5.25, 5.20, 5.10], [5.65, 5.55, 5.45],
    [5.60, 5.35, 5.45], [5.05, 5.00, 4.95], [5.50, 5.50, 5.40], [5.45, 5.55, 5.50],
    [5.55, 5.55, 5.35], [5.45, 5.50, 5.55], [5.50, 5.45, 5.25], [5.65, 5.60, 5.40],
    [5.70, 5.65, 5.55], [6.30, 6.30, 6.25],
]  # fmt: skip


def correctness_from_table(n11: int, n12: int, n21: int, n22: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-item correctness of classifiers a and b that reproduces the paired 2x2 table
    [[both right, only a right], [only b right, both wrong]]."""
    a = np.array([True] * n11 + [True] * n12 + [False] * n21 + [False] * n22)
    b = np.array([True] * n11 + [False] * n12 + [True] * n21 + [False] * n22)
    return a, b


# --------------------------------------------------------------------------------------------
# Wilcoxon signed-rank


def test_wilcoxon_hollander_wolfe_published_example():
    # Exact null: the 2^9 = 512 sign patterns are equally likely. W+ = 40 of a maximum 45 means
    # W- <= 5; the rank subsets with sum <= 5 are {}, {1}, {2}, {3}, {4}, {5}, {1,2}, {1,3},
    # {1,4}, {2,3}: 10 of them, so P(W+ >= 40) = 10/512 = 0.01953125 (R: 0.01953).
    res = S.paired_wilcoxon(HW_X, HW_Y, alternative="greater", n_resamples=500)
    assert res.statistic == 40
    assert res.p_value == pytest.approx(10 / 512, rel=1e-9)
    assert res.n == 9
    assert res.effect == pytest.approx(np.mean(np.subtract(HW_X, HW_Y)))
    assert res.ci_low < res.effect < res.ci_high
    assert "one-sided" in res.test and "greater" in res.test


def test_wilcoxon_two_sided_and_wrong_direction():
    # Two-sided doubles the one-sided tail: 20/512. The wrong tail is P(W+ <= 40) = 1 - P(W+ >= 41)
    # = 1 - P(W- <= 4) = 1 - 7/512 (rank subsets with sum <= 4: {}, {1}, {2}, {3}, {4}, {1,2}, {1,3}).
    two = S.paired_wilcoxon(HW_X, HW_Y, n_resamples=200)
    assert two.p_value == pytest.approx(20 / 512, rel=1e-9)
    wrong = S.paired_wilcoxon(HW_X, HW_Y, alternative="less", n_resamples=200)
    assert wrong.p_value == pytest.approx(1 - 7 / 512, rel=1e-9)
    assert wrong.p_value > 0.9


def test_wilcoxon_small_n_says_significance_is_unreachable():
    # n = 3, all differences positive: one-sided exact p = 1/2^3 = 0.125, the smallest possible.
    res = S.paired_wilcoxon([1.0, 2.0, 3.5], [0.0, 0.5, 1.0], alternative="greater", n_resamples=200)
    assert res.p_value == pytest.approx(0.125)
    assert "0.125" in res.note and "n=3" in res.note


def test_wilcoxon_drops_zero_differences_and_says_so():
    # d = [0, 1, 2, 3, 4, 5]: the zero is dropped, leaving 5 positive differences; exact
    # one-sided p = 1/2^5 = 0.03125.
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    res = S.paired_wilcoxon(x, x - np.arange(6.0), alternative="greater", n_resamples=200)
    assert res.p_value == pytest.approx(1 / 32)
    assert "1 zero differences dropped" in res.note


def test_wilcoxon_identical_samples_do_not_crash():
    res = S.paired_wilcoxon([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert math.isnan(res.p_value)
    assert "all differences zero" in res.note
    assert (res.effect, res.ci_low, res.ci_high) == (0.0, 0.0, 0.0)


def test_wilcoxon_treats_float_noise_as_zero():
    # 0.1 + 0.2 != 0.3 in binary floating point; that residue is not a measured effect.
    res = S.paired_wilcoxon([0.1 + 0.2, 1.0], [0.3, 1.0])
    assert math.isnan(res.p_value)
    assert "all differences zero" in res.note


# --------------------------------------------------------------------------------------------
# t tests


def test_paired_ttest_student_sleep_published():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9,
    # p-value = 0.002833, 95% CI -2.4598858 -0.7001142, mean difference -1.58.
    res = S.paired_ttest(SLEEP_DRUG1, SLEEP_DRUG2)
    assert res.statistic == pytest.approx(-4.0621, abs=1e-4)
    assert res.p_value == pytest.approx(0.002833, abs=1e-6)
    assert res.effect == pytest.approx(-1.58)
    assert res.ci_low == pytest.approx(-2.4598858, abs=1e-6)
    assert res.ci_high == pytest.approx(-0.7001142, abs=1e-6)
    assert res.n == 10


def test_paired_ttest_direction():
    # One-sided p is half the two-sided one in the direction of the effect (drug 1 < drug 2) ...
    less = S.paired_ttest(SLEEP_DRUG1, SLEEP_DRUG2, alternative="less")
    assert less.p_value == pytest.approx(0.002833 / 2, abs=1e-6)
    # ... and 1 - that in the wrong direction.
    greater = S.paired_ttest(SLEEP_DRUG1, SLEEP_DRUG2, alternative="greater")
    assert greater.p_value == pytest.approx(1 - 0.002833 / 2, abs=1e-6)
    # The interval is the two-sided 95% one whatever the tail, so it is the same for all three.
    assert (greater.ci_low, greater.ci_high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-6)


def test_paired_ttest_degenerate_cases():
    same = S.paired_ttest([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert math.isnan(same.p_value) and "all differences zero" in same.note
    shifted = S.paired_ttest([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert math.isnan(shifted.p_value) and "zero variance" in shifted.note
    assert (shifted.effect, shifted.ci_low, shifted.ci_high) == (1.0, 1.0, 1.0)


def test_one_sample_ttest_hand_derived():
    # x = [1, 3, 5], target 1: mean 3, s^2 = (4 + 0 + 4) / 2 = 4, se = 2 / sqrt(3),
    # t = (3 - 1) / se = sqrt(3), df = 2. Two-sided p = 1 - sqrt(3) / sqrt(5) = 0.2254033.
    # 95% CI of mean - target: 2 -+ 4.302653 * 2 / sqrt(3) = 2 -+ 4.968275.
    res = S.one_sample_ttest([1.0, 3.0, 5.0], target=1.0)
    assert res.statistic == pytest.approx(math.sqrt(3))
    assert res.p_value == pytest.approx(1 - math.sqrt(3 / 5), rel=1e-6)
    assert res.effect == pytest.approx(2.0)
    assert res.ci_low == pytest.approx(2 - T2_975 * 2 / math.sqrt(3), abs=1e-5)
    assert res.ci_high == pytest.approx(2 + T2_975 * 2 / math.sqrt(3), abs=1e-5)
    # one-sided in the direction of the effect: t2_upper(sqrt(3)) = 0.1127017; wrong way: 0.8873
    assert S.one_sample_ttest([1.0, 3.0, 5.0], 1.0, "greater").p_value == pytest.approx(t2_upper(math.sqrt(3)))
    assert S.one_sample_ttest([1.0, 3.0, 5.0], 1.0, "less").p_value == pytest.approx(1 - t2_upper(math.sqrt(3)))


def test_one_sample_ttest_on_differences_equals_published_paired_t():
    # A paired t test is a one-sample t test of the differences against 0 (Student's sleep data).
    d = np.subtract(SLEEP_DRUG1, SLEEP_DRUG2)
    res = S.one_sample_ttest(d, target=0.0)
    assert res.statistic == pytest.approx(-4.0621, abs=1e-4)
    assert res.p_value == pytest.approx(0.002833, abs=1e-6)


# --------------------------------------------------------------------------------------------
# bootstrap intervals


def test_bootstrap_mean_diff_covers_truth_and_is_seeded():
    rng = np.random.default_rng(1)
    y = rng.normal(10.0, 1.0, 40)
    x = y + 1.0 + rng.normal(0.0, 0.5, 40)  # true mean difference 1.0
    lo, hi = S.bootstrap_ci_mean_diff(x, y, n_resamples=2000, seed=3)
    assert lo < 1.0 < hi
    assert lo > 0.5 and hi < 1.5  # n = 40, sd 0.5: half-width ~ 2 * 0.5 / sqrt(40) = 0.16
    assert S.bootstrap_ci_mean_diff(x, y, n_resamples=2000, seed=3) == (lo, hi)
    assert S.bootstrap_ci_mean_diff(x, y, n_resamples=2000, seed=4) != (lo, hi)


def test_bootstrap_mean_diff_is_paired():
    # y varies a lot between pairs, x - y hardly at all. A paired interval is narrow (sd of d is
    # 0.01); an unpaired one would be ~100 times wider (sd of y is ~1).
    y = np.linspace(0.0, 3.0, 30)
    x = y + 0.5 + 0.01 * np.sin(np.arange(30))
    lo, hi = S.bootstrap_ci_mean_diff(x, y, n_resamples=1000)
    assert hi - lo < 0.05
    assert lo < 0.5 + 0.01 * np.mean(np.sin(np.arange(30))) < hi


def test_bootstrap_mean_diff_coverage_is_near_nominal():
    # 100 independent normal samples with true mean difference 0.3: a 95% interval should cover
    # the truth about 95 times (binomial sd ~2.2); BCa at n = 30 undercovers slightly.
    covered = 0
    for i in range(100):
        rng = np.random.default_rng(100 + i)
        d = rng.normal(0.3, 1.0, 30)
        lo, hi = S.bootstrap_ci_mean_diff(d, np.zeros(30), n_resamples=500, seed=i)
        covered += lo < 0.3 < hi
    assert 85 <= covered <= 99


def test_bootstrap_zero_variance_is_a_point():
    assert S.bootstrap_ci_mean_diff([1.5, 2.5, 3.5], [1.0, 2.0, 3.0]) == (0.5, 0.5)
    assert S.bootstrap_ci_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == (2.0, 2.0)


def test_bootstrap_ratio_covers_true_ratio():
    rng = np.random.default_rng(7)
    y = rng.uniform(1.0, 2.0, 50)
    x = 2.0 * y * rng.lognormal(0.0, 0.05, 50)  # mean(x)/mean(y) close to 2
    lo, hi = S.bootstrap_ci_ratio(x, y, n_resamples=2000, seed=1)
    assert lo < 2.0 < hi
    assert hi - lo < 0.1


# --------------------------------------------------------------------------------------------
# ratio test


def test_ratio_test_hand_derived():
    # y = 1, x = e, e^2, e^3: log ratios 1, 2, 3, mean 2, s = 1, se = 1/sqrt(3), t = 2 sqrt(3),
    # df = 2, two-sided p = 1 - t / sqrt(2 + t^2) = 1 - 2 sqrt(3) / sqrt(14) = 0.0741799.
    # effect = mean(e, e^2, e^3) / 1 = 10.06429.
    x = [math.e, math.e**2, math.e**3]
    res = S.ratio_test(x, [1.0, 1.0, 1.0], n_resamples=200)
    assert res.effect == pytest.approx((math.e + math.e**2 + math.e**3) / 3)
    assert res.statistic == pytest.approx(2 * math.sqrt(3))
    assert res.p_value == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14), rel=1e-6)
    assert "geometric mean ratio (7.389)" in res.note  # exp(2)
    greater = S.ratio_test(x, [1.0, 1.0, 1.0], "greater", n_resamples=200)
    assert greater.p_value == pytest.approx(t2_upper(2 * math.sqrt(3)), rel=1e-6)
    less = S.ratio_test(x, [1.0, 1.0, 1.0], "less", n_resamples=200)
    assert less.p_value > 0.9


def test_ratio_test_requires_positive_values():
    with pytest.raises(ValueError, match="positive"):
        S.ratio_test([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        S.ratio_test([-1.0, 2.0], [1.0, 1.0])


# --------------------------------------------------------------------------------------------
# Holm


def test_holm_hand_computed():
    # m = 4. Sorted p: 0.005, 0.01, 0.03, 0.04 -> times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04;
    # running max: 0.02, 0.03, 0.06, 0.06. Back in input order:
    adj = S.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])


def test_holm_nan_passes_through_and_leaves_family():
    # the family is {0.01, 0.04} (m = 2): 0.01 * 2 = 0.02, then max(0.02, 0.04 * 1) = 0.04
    adj = S.holm([0.01, float("nan"), 0.04])
    assert adj[0] == pytest.approx(0.02) and adj[2] == pytest.approx(0.04)
    assert math.isnan(adj[1])
    assert np.all(np.isnan(S.holm([float("nan"), float("nan")])))
    assert S.holm([]).size == 0
    np.testing.assert_allclose(S.holm([0.4, 0.9]), [0.8, 0.9])  # 0.4 * 2; max(0.8, 0.9 * 1)
    np.testing.assert_allclose(S.holm([0.6, 0.9]), [1.0, 1.0])  # 0.6 * 2 = 1.2 is capped at 1


def test_holm_rejects_non_probabilities():
    with pytest.raises(ValueError):
        S.holm([0.5, 1.5])


# --------------------------------------------------------------------------------------------
# McNemar


def test_mcnemar_cavo_example_exact_and_newcombe():
    # Cavo et al. (2012) paired table [[59, 6], [16, 80]] as used by Fagerland, Lydersen & Laake
    # (2014, Stat Med 33:2850) and the R package contingencytables (chapter 8 tests):
    # Newcombe square-and-add: estimate -0.0621 (95% CI -0.1186 to -0.0046).
    # Exact McNemar by hand: discordant 6 vs 16, p = 2 * P(Bin(22, 1/2) <= 6)
    # = 2 * (1 + 22 + 231 + 1540 + 7315 + 26334 + 74613) / 2^22 = 2 * 110056 / 4194304.
    a, b = correctness_from_table(59, 6, 16, 80)
    res = S.mcnemar_test(a, b)  # 22 discordant < 25: exact by default
    assert "exact" in res.test
    assert res.p_value == pytest.approx(2 * 110056 / 2**22, rel=1e-9)
    assert res.effect == pytest.approx(-10 / 161)
    assert res.ci_low == pytest.approx(-0.1186, abs=5e-5)
    assert res.ci_high == pytest.approx(-0.0046, abs=5e-5)
    assert res.n == 161


def test_mcnemar_chi_square_hand_computed():
    # Edwards' continuity-corrected statistic (|b - c| - 1)^2 / (b + c) = 81 / 22 on 1 df;
    # upper tail of chi2(1) = erfc(sqrt(x / 2)).
    a, b = correctness_from_table(59, 6, 16, 80)
    res = S.mcnemar_test(a, b, exact=False)
    assert res.statistic == pytest.approx(81 / 22)
    assert res.p_value == pytest.approx(math.erfc(math.sqrt(81 / 44)), rel=1e-9)
    # 40 discordant items: the default switches to chi-square; (|30 - 10| - 1)^2 / 40 = 9.025
    a, b = correctness_from_table(50, 30, 10, 10)
    res = S.mcnemar_test(a, b)
    assert "chi-square" in res.test
    assert res.p_value == pytest.approx(math.erfc(math.sqrt(9.025 / 2)), rel=1e-9)
    assert res.effect == pytest.approx(0.2)


def test_mcnemar_small_exact_and_direction():
    # b = 1 (only a right), c = 7 (only b right): p = 2 * (C(8,0) + C(8,1)) / 2^8 = 18/256.
    a, b = correctness_from_table(10, 1, 7, 2)
    res = S.mcnemar_test(a, b)
    assert res.p_value == pytest.approx(18 / 256)
    assert res.effect == pytest.approx((1 - 7) / 20)  # a is worse: negative effect
    assert res.ci_low < res.effect < res.ci_high < 0.05
    swapped = S.mcnemar_test(b, a)
    assert swapped.effect == pytest.approx(-res.effect)
    assert (swapped.ci_low, swapped.ci_high) == pytest.approx((-res.ci_high, -res.ci_low))


def test_mcnemar_no_discordant_items():
    a = np.array([True, False, True, True])
    res = S.mcnemar_test(a, a.copy(), exact=False)  # statsmodels alone would say p = 0 here
    assert res.p_value == 1.0
    assert res.effect == 0.0
    assert "no discordant" in res.note


def test_mcnemar_validates_inputs():
    with pytest.raises(ValueError, match="same items"):
        S.mcnemar_test([True, False], [True])
    with pytest.raises(ValueError, match="boolean"):
        S.mcnemar_test([0.5, 1.0], [1.0, 0.0])
    assert S.mcnemar_test([1, 0, 1], [0, 0, 1]).n == 3  # 0/1 integers are fine


# --------------------------------------------------------------------------------------------
# equivalence and non-inferiority


def test_tost_hand_derived_not_equivalent():
    # d = x - y = [0.1, 0.3, 0.5]: mean 0.3, s = 0.2, se = 0.2/sqrt(3), df = 2, bounds +-0.5.
    # lower test t = (0.3 + 0.5)/se = 4 sqrt(3) (p tiny); upper test t = (0.3 - 0.5)/se = -sqrt(3),
    # p = P(T < -sqrt(3)) = t2_upper(sqrt(3)) = 0.1127017. TOST p = max = 0.1127 -> not equivalent.
    # 90% CI: 0.3 -+ 2.919986 * 0.2/sqrt(3) = (-0.0371694, 0.6371694), which pokes past 0.5.
    y = np.array([1.0, 2.0, 3.0])
    res = S.tost_paired(y + [0.1, 0.3, 0.5], y, -0.5, 0.5)
    assert res.p_value == pytest.approx(t2_upper(math.sqrt(3)), rel=1e-6)
    assert res.statistic == pytest.approx(-math.sqrt(3))
    assert res.effect == pytest.approx(0.3)
    half = T2_95 * 0.2 / math.sqrt(3)
    assert (res.ci_low, res.ci_high) == pytest.approx((0.3 - half, 0.3 + half), abs=1e-5)
    assert "90%" in res.note


def test_tost_accepts_equivalence_and_rejects_a_real_difference():
    rng = np.random.default_rng(0)
    y = rng.normal(100.0, 5.0, 30)  # e.g. latency in ms per seed
    same = y + rng.normal(0.0, 0.2, 30)
    res = S.tost_paired(same, y, -1.0, 1.0)
    assert res.p_value < 0.001
    assert -1.0 < res.ci_low < res.ci_high < 1.0  # 90% CI inside the bounds <=> TOST rejects at 5%
    slower = y + 2.0 + rng.normal(0.0, 0.2, 30)
    res = S.tost_paired(slower, y, -1.0, 1.0)
    assert res.p_value > 0.99
    assert res.ci_low > 1.0


def test_tost_validates_bounds():
    with pytest.raises(ValueError, match="low < high"):
        S.tost_paired([1.0, 2.0], [1.0, 2.5], 0.5, -0.5)


def test_noninferiority_hand_derived():
    # d = x - y = [-0.1, -0.3, -0.2]: mean -0.2, s = 0.1, se = 0.1/sqrt(3), df = 2.
    # margin 0.5: t = (-0.2 + 0.5)/se = 3 sqrt(3), p = t2_upper(3 sqrt(3)) = 0.0175 -> non-inferior.
    # margin 0.1: t = (-0.2 + 0.1)/se = -sqrt(3), p = 1 - t2_upper(sqrt(3)) = 0.887 -> not shown.
    y = np.array([0.80, 0.85, 0.90])
    x = y + [-0.1, -0.3, -0.2]
    wide = S.noninferiority_paired(x, y, margin=0.5)
    assert wide.statistic == pytest.approx(3 * math.sqrt(3))
    assert wide.p_value == pytest.approx(t2_upper(3 * math.sqrt(3)), rel=1e-6)
    assert wide.effect == pytest.approx(-0.2)
    # two-sided 95% CI of mean(x - y): -0.2 -+ 4.302653 * 0.1/sqrt(3)
    half = T2_975 * 0.1 / math.sqrt(3)
    assert (wide.ci_low, wide.ci_high) == pytest.approx((-0.2 - half, -0.2 + half), abs=1e-5)
    narrow = S.noninferiority_paired(x, y, margin=0.1)
    assert narrow.p_value == pytest.approx(1 - t2_upper(math.sqrt(3)), rel=1e-6)


def test_noninferiority_lower_is_better():
    # latency: x slower than y by 0.2 on average (d = [0.1, 0.3, 0.2]); margin 0.5 means
    # H0 mean(d) >= 0.5. t = (0.2 - 0.5)/se = -3 sqrt(3) -> p = t2_upper(3 sqrt(3)) again.
    y = np.array([10.0, 11.0, 12.0])
    res = S.noninferiority_paired(y + [0.1, 0.3, 0.2], y, margin=0.5, alternative="less")
    assert res.p_value == pytest.approx(t2_upper(3 * math.sqrt(3)), rel=1e-6)
    assert "lower is better" in res.test
    with pytest.raises(ValueError, match="one-sided"):
        S.noninferiority_paired(y, y, 0.5, alternative="two-sided")
    with pytest.raises(ValueError, match="margin"):
        S.noninferiority_paired(y, y + 1, -0.5)


# --------------------------------------------------------------------------------------------
# Friedman, ranks, pairwise tests, critical difference


def test_friedman_rounding_times_published():
    res = S.friedman(ROUNDING_TIMES)
    assert res.statistic == pytest.approx(11.143, abs=5e-4)
    assert res.p_value == pytest.approx(0.003805, abs=5e-7)
    assert res.n == 22
    assert res.effect == pytest.approx(res.statistic / (22 * 2))  # Kendall's W = chi2 / (N (k-1))
    assert math.isnan(res.ci_low) and math.isnan(res.ci_high)


def test_friedman_hand_derived_perfect_concordance():
    # 4 blocks, every block ranks A < B < C: rank sums 4, 8, 12.
    # chi2 = 12 / (N k (k+1)) * sum R^2 - 3 N (k+1) = 12/48 * 224 - 48 = 8; W = 8 / (4 * 2) = 1;
    # p = exp(-8/2) = e^-4 (chi-square with 2 df).
    m = [[1.0, 2.0, 3.0], [0.1, 0.5, 0.9], [5.0, 6.0, 7.0], [0.0, 0.2, 0.3]]
    res = S.friedman(m)
    assert res.statistic == pytest.approx(8.0)
    assert res.effect == pytest.approx(1.0)
    assert res.p_value == pytest.approx(math.exp(-4.0))


def test_friedman_degenerate_and_invalid():
    res = S.friedman(np.ones((4, 3)))
    assert math.isnan(res.p_value) and "tied" in res.note
    with pytest.raises(ValueError, match="3 methods"):
        S.friedman([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="NaN"):
        S.friedman([[1.0, 2.0, float("nan")], [3.0, 4.0, 5.0]])


def test_average_ranks_with_ties_by_hand():
    m = [
        [0.9, 0.8, 0.8],  # higher better: A 1, B 2.5, C 2.5 | lower better: A 3, B 1.5, C 1.5
        [0.7, 0.9, 0.6],  # higher better: A 2, B 1,   C 3   | lower better: A 2, B 3,   C 1
        [0.5, 0.5, 0.5],  # all tied: 2, 2, 2 either way
    ]
    np.testing.assert_allclose(S.average_ranks(m), [5 / 3, 5.5 / 3, 7.5 / 3])
    np.testing.assert_allclose(S.average_ranks(m, higher_is_better=False), [7 / 3, 6.5 / 3, 4.5 / 3])


def _three_ordered_methods(n_blocks: int) -> np.ndarray:
    # A > B > C on every block, with distinct |differences| so the exact null has no ties.
    base = np.linspace(0.5, 0.8, n_blocks)
    steps = 0.01 * np.arange(1, n_blocks + 1)
    return np.column_stack([base + steps, base, base - 1.5 * steps])


def test_pairwise_wilcoxon_holm_by_hand():
    # 8 blocks, all differences of one sign: two-sided exact p = 2 / 2^8 = 0.0078125 for each of
    # the 3 pairs. Holm: 3p = 0.0234375, then max(3p, 2p), max(., p): all 0.0234375 < 0.05.
    df = S.pairwise_wilcoxon_holm(_three_ordered_methods(8), ["A", "B", "C"])
    assert list(df.columns) == ["a", "b", "mean_diff", "p_value", "p_holm", "significant"]
    assert list(zip(df["a"], df["b"], strict=True)) == [("A", "B"), ("A", "C"), ("B", "C")]
    np.testing.assert_allclose(df["p_value"], [2 / 256] * 3)
    np.testing.assert_allclose(df["p_holm"], [3 * 2 / 256] * 3)
    assert df["significant"].all()
    assert (df["mean_diff"] > 0).all()  # a - b, and a is the better one in every row


def test_pairwise_wilcoxon_holm_small_n_and_ties():
    # 6 blocks: raw p = 2 / 2^6 = 0.03125, Holm 3 * 0.03125 = 0.09375: nothing significant.
    df = S.pairwise_wilcoxon_holm(_three_ordered_methods(6), ["A", "B", "C"])
    np.testing.assert_allclose(df["p_holm"], [0.09375] * 3)
    assert not df["significant"].any()
    # a method identical to another: p undefined (NaN), never significant, and out of the family
    m = _three_ordered_methods(8)
    m = np.column_stack([m, m[:, 0]])
    df = S.pairwise_wilcoxon_holm(m, ["A", "B", "C", "A2"])
    tied = df[(df["a"] == "A") & (df["b"] == "A2")].iloc[0]
    assert math.isnan(tied["p_value"]) and not tied["significant"]
    assert df["p_holm"].max() == pytest.approx(5 * 2 / 256)  # family of 5 defined pairs
    with pytest.raises(ValueError, match="names"):
        S.pairwise_wilcoxon_holm(m, ["A", "B"])


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table5(k, q):
    # Demsar (2006, JMLR 7, Table 5a): q_0.05 for k classifiers; CD = q sqrt(k (k+1) / (6 N)).
    # The table divides 3-decimal studentized-range values by sqrt(2) (k = 3: 3.314 / sqrt(2) =
    # 2.3433, exact 2.3437), so agreement is to about 1e-3.
    cd = S.nemenyi_critical_difference(k, 10)
    assert cd / math.sqrt(k * (k + 1) / 60) == pytest.approx(q, abs=1e-3)


def test_nemenyi_demsar_worked_example():
    # Demsar (2006, section 3.2.4): four classifiers on 14 data sets, CD = 2.569 sqrt(20/84) = 1.25.
    assert S.nemenyi_critical_difference(4, 14) == pytest.approx(1.25, abs=5e-3)
    # alpha = 0.10, k = 4: Demsar Table 5a gives q_0.10 = 2.291
    assert S.nemenyi_critical_difference(4, 14, alpha=0.10) / math.sqrt(20 / 84) == pytest.approx(2.291, abs=6e-4)


def test_cliques_by_hand():
    # Methods in rank order 0 < 1 < 2 < 3; only (0, 2) and (0, 3) differ significantly.
    # Runs with no significant pair: [0, 1] and [1, 3]; nothing is nested, so both are drawn.
    sig = {(0, 2), (0, 3)}

    def not_different(i: int, j: int) -> bool:
        return (min(i, j), max(i, j)) not in sig

    assert F._cliques([0, 1, 2, 3], not_different) == [(0, 1), (1, 3)]
    # No significant pair at all: one bar over everything, the nested runs are dropped.
    assert F._cliques([0, 1, 2], lambda i, j: True) == [(0, 2)]


def _is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 2000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_cd_diagram_writes_png_with_pairwise_and_nemenyi(tmp_path):
    m = _three_ordered_methods(8)
    m = np.column_stack([m, m[:, 1] + 0.001 * np.arange(8)])  # D: nearly B
    names = ["A", "B", "C", "D"]
    ranks = S.average_ranks(m)
    pairwise = S.pairwise_wilcoxon_holm(m, names)
    out = tmp_path / "figs" / "cd.png"
    F.cd_diagram(ranks, names, pairwise, out, title="toy")
    assert _is_png(out)
    out2 = tmp_path / "cd_nemenyi.png"
    F.cd_diagram(ranks, names, None, out2, n_blocks=8)
    assert _is_png(out2)
    with pytest.raises(ValueError, match="n_blocks"):
        F.cd_diagram(ranks, names, None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no row"):
        F.cd_diagram(ranks, names, pairwise[pairwise["a"] != "A"], tmp_path / "y.png")


# --------------------------------------------------------------------------------------------
# paired bootstrap for corpus metrics


def _mean_metric(hyps, refs) -> float:
    return float(np.mean(hyps))


def test_corpus_bootstrap_constant_shift_is_exact():
    # metric = mean of sentence scores; a = b + 1 on every sentence: delta is 1 on every
    # resample, so effect = 1, CI = (1, 1) and a never loses: p = 0.
    b = np.linspace(0.0, 1.0, 50)
    res = S.paired_bootstrap_corpus(_mean_metric, b + 1.0, b, None, n_resamples=200)
    assert res.effect == pytest.approx(1.0)
    assert (res.ci_low, res.ci_high) == pytest.approx((1.0, 1.0))
    assert res.p_value == 0.0
    assert "p < " in res.note


def test_corpus_bootstrap_matches_normal_theory():
    # With metric = mean, delta* = mean of resampled d; by the CLT P*(delta* <= 0) is close to
    # Phi(-mean(d) / (sd(d) / sqrt(n))) (sd with ddof = 0: the bootstrap world's variance).
    rng = np.random.default_rng(5)
    d = rng.normal(0.2, 1.0, 200)
    b = rng.normal(20.0, 3.0, 200)
    z = d.mean() / (d.std() / math.sqrt(d.size))
    expected = 0.5 * math.erfc(z / math.sqrt(2))
    res = S.paired_bootstrap_corpus(_mean_metric, b + d, b, None, n_resamples=2000, seed=1)
    assert res.effect == pytest.approx(d.mean())
    assert res.p_value == pytest.approx(expected, abs=0.015)
    # CI ~ mean(d) -+ 1.96 sd/sqrt(n)
    half = 1.96 * d.std() / math.sqrt(d.size)
    assert res.ci_low == pytest.approx(d.mean() - half, abs=0.03)
    assert res.ci_high == pytest.approx(d.mean() + half, abs=0.03)
    # the other way round, a is worse: the one-sided p for "a > b" is large
    rev = S.paired_bootstrap_corpus(_mean_metric, b, b + d, None, n_resamples=2000, seed=1)
    assert rev.p_value > 0.9
    again = S.paired_bootstrap_corpus(_mean_metric, b + d, b, None, n_resamples=2000, seed=1)
    assert again == res  # same seed, same answer


def test_corpus_bootstrap_keeps_refs_aligned_with_hypotheses():
    # Sentence-level accuracy over string lists: a copies the references, b never does. If the
    # resampling ever misaligned hypotheses and references, metric(a) would drop below 1.
    refs = [f"sentence {i}" for i in range(30)]
    sys_a = list(refs)
    sys_b = [r + " (wrong)" for r in refs]

    def accuracy(hyps, rfs) -> float:
        return sum(h == r for h, r in zip(hyps, rfs, strict=True)) / len(hyps)

    res = S.paired_bootstrap_corpus(accuracy, sys_a, sys_b, refs, n_resamples=100)
    assert res.effect == 1.0
    assert (res.ci_low, res.ci_high) == (1.0, 1.0)
    assert res.p_value == 0.0
    same = S.paired_bootstrap_corpus(accuracy, sys_a, sys_a, refs, n_resamples=50)
    assert same.p_value == 1.0 and "identical" in same.note
    with pytest.raises(ValueError, match="align"):
        S.paired_bootstrap_corpus(accuracy, sys_a, sys_b[:-1], refs)


# --------------------------------------------------------------------------------------------
# input validation and the result type


@pytest.mark.parametrize(
    "call",
    [
        lambda: S.paired_ttest([1.0, 2.0, 3.0], [1.0, 2.0]),
        lambda: S.paired_wilcoxon([1.0, float("nan")], [1.0, 2.0]),
        lambda: S.paired_ttest([1.0], [2.0]),
        lambda: S.paired_ttest([1.0, 2.0], [2.0, 1.0], alternative="bigger"),
        lambda: S.one_sample_ttest([1.0], 0.0),
        lambda: S.bootstrap_ci_mean_diff([[1.0, 2.0]], [[1.0, 2.0]]),
        lambda: S.bootstrap_ci_mean_diff([1.0, 2.0], [1.0, 3.0], confidence=95),
        lambda: S.paired_ttest(["a", "b"], [1.0, 2.0]),
        lambda: S.nemenyi_critical_difference(1, 10),
    ],
)
def test_invalid_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_test_result_is_frozen_and_serialisable():
    res = S.paired_ttest(SLEEP_DRUG1, SLEEP_DRUG2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.p_value = 0.5  # type: ignore[misc]
    row = dataclasses.asdict(res)
    assert set(row) == {"test", "effect", "ci_low", "ci_high", "p_value", "n", "statistic", "note"}
    assert all(type(row[k]) is float for k in ("effect", "ci_low", "ci_high", "p_value", "statistic"))
    assert isinstance(pd.DataFrame([row]), pd.DataFrame)
