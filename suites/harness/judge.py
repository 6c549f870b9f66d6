"""From tidy rows to verdicts: select a claim's samples, run its test, read the result.

The test is looked up by name in `TESTS` and the verdict follows from the claim's direction and
margin; nothing here knows any paper. Suites may register further tests with `register_test`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .core import Claim
from .stats import TestResult

ALPHA = 0.05
REPRODUCED = "reproduced"
PARTIAL = "partially reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)


@dataclass
class ClaimData:
    """A claim's samples. `treatment`/`baseline` are aligned on the claim's pair_on key."""

    treatment: pd.Series
    baseline: pd.Series | None
    rows: pd.DataFrame  # every selected row, with a `role` column (treatment/baseline)


TestFn = Callable[[Claim, ClaimData], TestResult]
TESTS: dict[str, TestFn] = {}


def register_test(name: str) -> Callable[[TestFn], TestFn]:
    def wrap(fn: TestFn) -> TestFn:
        TESTS[name] = fn
        return fn

    return wrap


def frame_of(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """runs.csv rows as a DataFrame with every params key expanded into its own column."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    params = pd.DataFrame([json.loads(p) for p in frame["params"]], index=frame.index)
    clashes = set(params.columns) & set(frame.columns)
    if clashes:
        raise ValueError(f"params {sorted(clashes)} clash with runs.csv columns; rename them")
    return pd.concat([frame, params], axis=1)


def select(frame: pd.DataFrame, filters: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, wanted in filters.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        mask &= frame[column].isin(values)
    return frame[mask]


def _alternative(claim: Claim) -> str:
    return {"greater": "greater", "less": "less"}.get(claim.direction, "two-sided")


def _paired(data: ClaimData) -> tuple[np.ndarray, np.ndarray]:
    if data.baseline is None:
        raise ValueError("this test needs a baseline")
    return data.treatment.to_numpy(float), data.baseline.to_numpy(float)


@register_test("wilcoxon")
def _wilcoxon(claim: Claim, data: ClaimData) -> TestResult:
    return stats.paired_wilcoxon(*_paired(data), alternative=_alternative(claim))


@register_test("ttest")
def _ttest(claim: Claim, data: ClaimData) -> TestResult:
    return stats.paired_ttest(*_paired(data), alternative=_alternative(claim))


@register_test("ratio")
def _ratio(claim: Claim, data: ClaimData) -> TestResult:
    return stats.ratio_test(*_paired(data), alternative=_alternative(claim))


@register_test("tost")
def _tost(claim: Claim, data: ClaimData) -> TestResult:
    """Equivalence within +-margin; without a baseline, of the treatment values to `neutral`."""
    x = data.treatment.to_numpy(float)
    y = data.baseline.to_numpy(float) if data.baseline is not None else np.full_like(x, claim.neutral)
    if claim.effect == "difference":
        return stats.tost_paired(x, y, -claim.margin, claim.margin)
    # Equivalence of a ratio within 1 +- margin is equivalence of log ratios.
    res = stats.tost_paired(np.log(x), np.log(y), math.log(1 - claim.margin), math.log(1 + claim.margin))
    return TestResult(
        test=res.test + " on log ratio",
        effect=float(np.exp(res.effect)),
        ci_low=float(np.exp(res.ci_low)),
        ci_high=float(np.exp(res.ci_high)),
        p_value=res.p_value,
        n=res.n,
        statistic=res.statistic,
        note=(res.note + "; " if res.note else "") + "effect = geometric mean ratio",
    )


@register_test("noninferiority")
def _noninferiority(claim: Claim, data: ClaimData) -> TestResult:
    return stats.noninferiority_paired(*_paired(data), margin=claim.margin)


@register_test("one_sample")
def _one_sample(claim: Claim, data: ClaimData) -> TestResult:
    """Mean of a measured quantity against the claim's reference value (two-sided t).

    The effect reported is the measured mean itself (with its CI), not its distance from the
    reference, so the table reads "paper 91.0, ours 88.2 [86.9, 89.5]".
    """
    res = stats.one_sample_ttest(data.treatment.to_numpy(float), claim.reference, alternative="two-sided")
    shift = claim.reference
    return replace(res, effect=res.effect + shift, ci_low=res.ci_low + shift, ci_high=res.ci_high + shift)


@register_test("exact")
def _exact(claim: Claim, data: ClaimData) -> TestResult:
    """Deterministic quantities (counts, sizes, analytic figures): no sampling, so no p-value."""
    x = data.treatment.to_numpy(float)
    if data.baseline is None:
        per_pair = x
    elif claim.effect == "ratio":
        per_pair = x / data.baseline.to_numpy(float)
    else:
        per_pair = x - data.baseline.to_numpy(float)
    return TestResult(
        test="exact (deterministic)",
        effect=float(np.mean(per_pair)),
        ci_low=float(np.min(per_pair)),
        ci_high=float(np.max(per_pair)),
        p_value=math.nan,
        n=len(per_pair),
        note="deterministic: interval is the range over pairs",
    )


@register_test("friedman")
def _friedman(claim: Claim, data: ClaimData) -> TestResult:
    """The treatment ranks first among many methods over many blocks (datasets).

    effect = (best average rank among the baselines) - (treatment's average rank): positive when
    the treatment ranks first. p is the Friedman test's; pairwise Holm-corrected Wilcoxon tests
    against every baseline are listed in the note.
    """
    table = data.rows.pivot_table(index=list(claim.pair_on), columns="method", values="value", aggfunc="mean")
    table = table.dropna()
    treatment = claim.treatment["method"]
    names = [treatment] + [m for m in table.columns if m != treatment]
    matrix = table[names].to_numpy(float)
    higher_is_better = claim.direction != "less"
    ranks = stats.average_ranks(matrix, higher_is_better=higher_is_better)
    overall = stats.friedman(matrix)
    pairwise = stats.pairwise_wilcoxon_holm(matrix, names)
    versus = pairwise[(pairwise["a"] == treatment) | (pairwise["b"] == treatment)]
    note = "average ranks " + ", ".join(f"{n} {r:.2f}" for n, r in zip(names, ranks, strict=True))
    note += "; Holm-Wilcoxon vs " + ", ".join(
        f"{row.b if row.a == treatment else row.a} p={row.p_holm:.3g}" for row in versus.itertuples()
    )
    return TestResult(
        test="Friedman + pairwise Wilcoxon (Holm)",
        effect=float(np.min(ranks[1:]) - ranks[0]),
        ci_low=math.nan,
        ci_high=math.nan,
        p_value=overall.p_value,
        n=matrix.shape[0],
        statistic=overall.statistic,
        note=note,
    )


def collect(claim: Claim, frame: pd.DataFrame) -> ClaimData:
    rows = frame[(frame["metric"] == claim.metric) & (frame["experiment"] == claim.experiment)]
    rows = rows[rows["status"].isin(["ok", "diverged"])]
    key = list(claim.pair_on)
    treated = select(rows, claim.treatment).assign(role="treatment")
    if claim.baseline is None:
        return ClaimData(treated.groupby(key)["value"].mean(), None, treated)
    base = select(rows, claim.baseline).assign(role="baseline")
    if claim.test == "friedman":  # many methods: the test pivots the rows itself
        both = pd.concat([treated, base])
        return ClaimData(treated.groupby(key)["value"].mean(), None, both)
    t = treated.groupby(key)["value"].mean()
    b = base.groupby(key)["value"].mean()
    common = t.index.intersection(b.index)
    return ClaimData(t.loc[common], b.loc[common], pd.concat([treated, base]))


def decide(claim: Claim, result: TestResult, p: float) -> str:
    """The verdict, from the direction, the margin and the (adjusted) p-value."""
    deterministic = result.test.startswith("exact")
    significant = deterministic or (math.isfinite(p) and p < ALPHA)
    effect, low, high = result.effect, result.ci_low, result.ci_high
    if not math.isfinite(effect):
        return INCONCLUSIVE
    if claim.direction == "match":
        scale = abs(claim.reference) or 1.0
        return REPRODUCED if abs(effect - claim.reference) <= claim.margin * scale else NOT_REPRODUCED
    if claim.direction == "at_least":
        floor = claim.reference - claim.margin
        if effect >= floor:
            return REPRODUCED
        if deterministic or (math.isfinite(high) and high < floor):
            return NOT_REPRODUCED
        return PARTIAL
    if claim.direction == "equivalent":
        if significant and not deterministic:
            return REPRODUCED
        lo_bound, hi_bound = (
            (1 - claim.margin, 1 + claim.margin) if claim.effect == "ratio" else (-claim.margin, claim.margin)
        )
        if deterministic:
            return REPRODUCED if lo_bound <= effect <= hi_bound else NOT_REPRODUCED
        if math.isfinite(low) and (low > hi_bound or high < lo_bound):
            return NOT_REPRODUCED
        return INCONCLUSIVE
    if claim.direction == "noninferior":
        if deterministic:
            return REPRODUCED if effect >= -claim.margin else NOT_REPRODUCED
        if significant:
            return REPRODUCED
        if math.isfinite(high) and high < -claim.margin:
            return NOT_REPRODUCED
        return INCONCLUSIVE
    sign = 1.0 if claim.direction == "greater" else -1.0
    advantage = sign * (effect - claim.neutral)
    if advantage > 0:
        return REPRODUCED if significant and advantage >= claim.margin else PARTIAL
    if significant and advantage < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _not_run_reason(claim: Claim, frame: pd.DataFrame, device: str) -> str:
    if "cuda" in claim.requires and not device.startswith("cuda"):
        return "needs a GPU (run with --device cuda)"
    if frame.empty:
        return "no rows: the experiment was not run"
    mine = select(frame[frame["experiment"] == claim.experiment], claim.treatment)
    skipped = mine[mine["status"] == "not_run"]["note"].unique()
    if len(skipped):
        return "; ".join(sorted(skipped)[:3]) + (f" (+{len(skipped) - 3} more)" if len(skipped) > 3 else "")
    failed = mine[mine["status"] == "error"]
    if len(failed):
        return f"{len(failed)} cell(s) failed with an error (status=error in runs.csv)"
    return f"no rows of metric {claim.metric!r} in experiment {claim.experiment!r} (profile too small or not run)"


def _skipped_note(claim: Claim, frame: pd.DataFrame) -> str:
    mine = select(frame[frame["experiment"] == claim.experiment], claim.treatment)
    tasks = sorted(mine[mine["status"].isin(["not_run", "error"])]["task"].unique())
    return f"{len(tasks)} task(s) not run or failed: {', '.join(tasks)}" if tasks else ""


def _run_test(claim: Claim, frame: pd.DataFrame, device: str) -> tuple[TestResult | None, str]:
    """The claim's test result, or None and the reason it could not run."""
    data = collect(claim, frame) if not frame.empty else None
    if data is None or data.treatment.empty or (data.baseline is not None and data.baseline.empty):
        return None, _not_run_reason(claim, frame, device)
    try:
        return TESTS[claim.test](claim, data), ""
    except (ValueError, ZeroDivisionError) as exc:  # e.g. too few pairs for the test: inconclusive
        nan = math.nan
        return TestResult(claim.test, nan, nan, nan, nan, len(data.treatment), note=str(exc)), ""


def judge(claims: Sequence[Claim], rows: Sequence[Mapping[str, Any]], device: str = "cpu") -> list[dict[str, Any]]:
    """One claims.json object per claim; p-values Holm-adjusted across the claims given."""
    frame = frame_of(rows)
    outcomes = [(claim, *_run_test(claim, frame, device)) for claim in claims]
    raw = [r.p_value if r is not None else math.nan for _, r, _ in outcomes]
    adjusted = stats.holm(raw)
    judged = []
    for (claim, result, reason), p_adj in zip(outcomes, adjusted, strict=True):
        entry: dict[str, Any] = {
            "id": claim.id,
            "statement": claim.statement,
            "source": claim.source,
            "paper_value": claim.paper_value,
            "paper_value_text": claim.paper_text,
            "metric": claim.metric,
            "direction": claim.direction,
            "margin": claim.margin,
            "effect_kind": claim.effect,
            "machine_dependent": claim.machine_dependent,
            "tolerance": claim.tolerance,
            "protocol": claim.protocol,
        }
        if result is None:
            entry.update(test=claim.test, measured=None, ci_low=None, ci_high=None, p_value=None, p_raw=None,
                         n=0, verdict=NOT_RUN, notes=reason)  # fmt: skip
        else:
            verdict = decide(claim, result, float(p_adj))
            notes = "; ".join(n for n in (result.note, _skipped_note(claim, frame)) if n)
            entry.update(test=result.test, measured=result.effect, ci_low=result.ci_low, ci_high=result.ci_high,
                         p_value=float(p_adj), p_raw=result.p_value, n=result.n, verdict=verdict, notes=notes)  # fmt: skip
        judged.append(entry)
    return judged
