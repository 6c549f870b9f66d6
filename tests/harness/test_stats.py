"""Tests for suites.harness.stats against independent reference values.

Every expected number below comes from a published worked example (source named next to it) or
is derived by hand in a comment from first principles. Closed forms used repeatedly:

* Student t with 2 degrees of freedom has the CDF  F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so a
  one-sided upper p-value is 1/2 - t / (2 sqrt(2 + t^2)) and the two-sided one is
  1 - |t| / sqrt(2 + t^2). Its quantiles from the t table: t_0.95 = 2.919986, t_0.975 = 4.302653.
* Chi-square with 1 df is Z^2, so its upper tail is erfc(sqrt(x / 2)); with 2 df it is exp(-x / 2).
"""

from __future__ import annotations

import math

import numpy as np
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
# signed ranks, Hodges-Lehmann, bootstrap distributions


def test_signed_rank_p_hollander_wolfe_published_example():
    # Exact null: the 2^9 = 512 sign patterns are equally likely. W+ = 40 of a maximum 45 means
    # W- <= 5; the rank subsets with sum <= 5 are {}, {1}, {2}, {3}, {4}, {5}, {1,2}, {1,3},
    # {1,4}, {2,3}: 10 of them, so P(W+ >= 40) = 10/512 = 0.01953125 (R: 0.01953).
    d = np.subtract(HW_X, HW_Y)
    assert S.signed_rank_p(d, "greater") == pytest.approx(10 / 512, rel=1e-9)
    assert S.signed_rank_p(d, "less") == pytest.approx(1 - 7 / 512, rel=1e-9)  # 1 - P(W- <= 4)


def test_signed_rank_p_drops_zeros_and_has_no_evidence_without_differences():
    assert S.signed_rank_p([0.0, 0.0, 0.0], "greater") == 1.0
    # one zero dropped: five positive differences, exact p = 2**-5
    assert S.signed_rank_p([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "greater") == pytest.approx(2**-5)


def test_snap_float_noise_makes_exact_zeros_and_ties():
    snapped = S.snap_float_noise([0.1 + 0.2 - 0.3 + 1.0 - 1.0, 0.1 - 0.08, 0.32 - 0.3, 0.5])
    assert snapped[1] == snapped[2]
    assert abs(snapped[0]) < 1e-15
    assert S.snap_float_noise([0.0, 0.0]).tolist() == [0.0, 0.0]


def test_walsh_averages_and_hodges_lehmann_by_hand():
    w = S.walsh_averages([1.0, 3.0, 8.0])
    assert w.tolist() == [1.0, 2.0, 3.0, 4.5, 5.5, 8.0]
    assert float(np.median(w)) == 3.75
    # n = 3: no two-sided 95% interval exists (2 * 2**-3 > 0.05): the data cannot bound the effect
    assert S.hodges_lehmann_interval([1.0, 3.0, 8.0], 0.95) == (-math.inf, math.inf)
    # n = 6, level 1 - 2/64: the exact bounds are the smallest and largest Walsh averages
    d = [1.0, 2.0, 4.0, 7.0, 11.0, 16.0]
    assert S.hodges_lehmann_interval(d, 1 - 2 / 64) == (1.0, 16.0)


def test_bootstrap_means_are_seeded_and_centred():
    d = np.arange(20.0)
    a, b = S.bootstrap_means(d, 500, seed=3), S.bootstrap_means(d, 500, seed=3)
    assert np.array_equal(a, b)
    assert abs(a.mean() - d.mean()) < 0.5


@pytest.mark.parametrize(
    "call",
    [
        lambda: S.signed_rank_p([1.0, float("nan")], "greater"),
        lambda: S.signed_rank_p([1.0, 2.0], "bigger"),
        lambda: S.hodges_lehmann_interval([1.0, 2.0, 3.0], 95),
        lambda: S.walsh_averages([[1.0, 2.0]]),
        lambda: S.nemenyi_critical_difference(1, 10),
    ],
)
def test_invalid_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
