"""From tidy rows to verdicts: one interval rule for every claim.

The rule
--------
1. Before any run, every claim declares its effect (treatment - baseline, treatment / baseline,
   or a single quantity), its independent unit, its claimed region (where the paper's statement
   holds) and, for direction claims, its null side (`Claim.claimed_region`, `Claim.null_region`).
2. Rows inside one unit (seeds of one dataset, say) are averaged first; `n` is always the number
   of independent units. Claims over elements (users, examples) keep the training run as the
   level above them and resample runs, then elements (HierarchicalBootstrap), so the interval holds
   what retraining would change; n then counts runs. A run that diverged or gave no value counts
   as the worst observed value of the metric, never drops out of the pairing.
3. The decision interval is the effect's confidence interval from the claim's test. Every
   decision is one-sided (a direction, a floor, non-inferiority) or a pair of one-sided decisions
   (equivalence, a value +- tolerance), so the level is 1 - 2 alpha', where alpha' = alpha / m and
   m is the number of claims judged in the claim's own family (Bonferroni within the family, never
   across unrelated claims). The interval that decides is the interval shown; p-values are shown
   raw and Holm-adjusted within the family.
4. The verdict:
   - reproduced: the interval lies inside the claimed region;
   - partially reproduced: a direction claim whose interval excludes the null side but is not
     inside the claimed region (the size is not confirmed); the notes say
     "direction reproduced; X against the paper's Y";
   - not reproduced: the interval lies outside the claimed region (no overlap);
   - inconclusive: anything else; the notes give the number of units that would decide it at the
     observed variance (the smallest n whose interval would give a verdict and whose reachable p
     is below alpha), or say that the units that exist cannot;
   - not run: the reason.
   No p is reported below what the test can reach at its n: the exact sign flip's 2^-n (a rank
   test's (1/methods)^n; a resampling's 1/(B+1)). A good verdict also needs the claim's own test
   to reject at alpha (Holm within the family), and neither a good verdict nor "not reproduced"
   comes from units whose smallest reachable adjusted p is alpha or more.
   A claim about trained models declares the evidence its runs need (`Claim.evidence`, see
   training.py); when any run behind it falls short (stopped by a cap or a reduced budget, or has
   no training record), a would-be decided verdict (good or not reproduced) is inconclusive, and
   the note says how many runs fell short, why, and which profile decides it.
5. Deterministic figures (test "exact") have no sampling error: a `match` claim is reproduced when
   the value equals the paper's at the precision the paper printed (`precision`), partially
   reproduced within `rel_tolerance`, not reproduced otherwise; for other directions the range over
   units must lie inside the claimed region, else the claim is not reproduced (a figure is no
   question of size).
6. Measurements (direction "measurement") get a 95% interval, no p and no verdict.

Tests are looked up by name in `TESTS` (`claimtests.py`, the library of tests a claim can name);
suites may add their own with `register_test`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from scipy import stats as sps

from . import audit, stats
from .claimtests import TESTS, ClaimData, Test, register_test  # noqa: F401 - suites import register_test here
from .core import Claim
from .hierarchical import HierarchicalBootstrap
from .selection import CELL, UnitsLoader, collect, frame_of, select  # noqa: F401 - the judge's API
from .training import evidence_of, evidence_text  # noqa: F401 - reports read evidence_text here

ALPHA = 0.05
HIERARCHICAL = ("ttest", "wilcoxon", "bootstrap", "lift")  # tests of a mean effect, resampled in two levels
POWER = 0.8
REPRODUCED = "reproduced"
PARTIAL = "partially reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
MEASURED = "measured"
VERDICTS = (REPRODUCED, PARTIAL, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN, MEASURED)
GOOD = (REPRODUCED, PARTIAL)

# --------------------------------------------------------------------------------------------
# the rule


def _inside(low: float, high: float, region: tuple[float, float]) -> bool:
    """Strictly inside: an interval that touches a boundary has not cleared it (an interval [0, 0]
    is not evidence of an effect > 0)."""
    return (low > region[0] or math.isinf(region[0])) and (high < region[1] or math.isinf(region[1]))


def _apart(low: float, high: float, region: tuple[float, float]) -> bool:
    return high < region[0] or low > region[1]


def claim_p(claim: Claim, test: Test) -> float:
    """The p-value of "the claim holds" against its nearest null: the direction, the floor, the
    non-inferiority margin, or both equivalence bounds (TOST)."""
    if test.deterministic:
        return math.nan
    region = claim.claimed_region()
    if claim.direction == "greater":
        return test.p_greater(claim.neutral)
    if claim.direction == "less":
        return test.p_less(claim.neutral)
    if region is None:
        return min(1.0, 2 * min(test.p_greater(claim.neutral), test.p_less(claim.neutral)))
    if math.isinf(region[1]):
        return test.p_greater(region[0])
    if math.isinf(region[0]):
        return test.p_less(region[1])
    return max(test.p_greater(region[0]), test.p_less(region[1]))


def decide(claim: Claim, effect: float, low: float, high: float, deterministic: bool = False) -> str:
    """The verdict from where the decision interval [low, high] lies (rule 4 and 5 above)."""
    region = claim.claimed_region()
    if region is None:
        return MEASURED
    if not all(math.isfinite(v) or math.isinf(v) for v in (effect, low, high)) or math.isnan(effect):
        return INCONCLUSIVE
    if deterministic and claim.direction == "match":
        distance = abs(effect - claim.reference)
        if distance <= (claim.precision / 2 if claim.precision else 1e-9 * max(1.0, abs(claim.reference))):
            return REPRODUCED
        return PARTIAL if distance <= claim.rel_tolerance * abs(claim.reference) else NOT_REPRODUCED
    if _inside(low, high, region):
        return REPRODUCED
    if deterministic:  # no sampling error: a figure outside the region is a mismatch, not a question of size
        return NOT_REPRODUCED
    null = claim.null_region()
    if null is not None and _apart(low, high, null):
        return PARTIAL
    if _apart(low, high, region):
        return NOT_REPRODUCED
    return INCONCLUSIVE


MAX_UNITS = 10**7


def units_to_decide(claim: Claim, test: Test, m: int, alpha: float = ALPHA) -> int | None:
    """Units that would decide the claim at the observed effect and variance: the smallest n at which
    an interval of the claim's level, shrunk as 1/sqrt(n) around the effect (with 80% power), gives
    a verdict other than inconclusive, and the test's smallest attainable p at n (2^-n for a sign
    flip), Holm-adjusted for the family's m claims, is below alpha. None when nothing could."""
    if not (math.isfinite(test.sd) and test.sd > 0 and math.isfinite(test.effect)):
        return None
    center = test.scale(test.effect)

    def decides(n: int) -> bool:
        # the exact floor at n (a resampling's own 1/(B+1) shrinks with more resamples, not more units)
        if n < 2 or test.floor_at(n) * m >= alpha:
            return False
        # a one-sided t at alpha/m with 80% power (the t quantiles give R's pwr.t.test within a unit)
        half = (sps.t.ppf(1 - alpha / m, n - 1) + sps.t.ppf(POWER, n - 1)) * test.sd / math.sqrt(n)
        return decide(claim, test.effect, test.unscale(center - half), test.unscale(center + half)) != INCONCLUSIVE

    high = max(test.n, 2)
    while not decides(high):
        high *= 2
        if high > MAX_UNITS:
            return None
    low = max(test.n, 1)
    while low < high:  # the smallest deciding n (decides is monotone in n)
        mid = (low + high) // 2
        low, high = (low, mid) if decides(mid) else (mid + 1, high)
    return high


def power_note(claim: Claim, test: Test, m: int, alpha: float = ALPHA) -> str:
    """What would decide an inconclusive claim, or that the data that exist cannot."""
    needed = units_to_decide(claim, test, m, alpha)
    unit = "/".join(claim.unit)
    if needed is None:
        return f"no number of units ({unit}) decides it at the observed effect and variance"
    if needed <= test.n:
        return ""
    if "seed" in claim.unit or "element" in claim.unit:  # training runs can always be added
        return f"about {needed} units ({unit}) would decide it at the observed variance (n={test.n} now)"
    return (f"about {needed} units ({unit}) would decide it at the observed variance, but these rows hold "
            f"{test.n}: not decidable with the data that exist here")  # fmt: skip


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
    ran = frame[frame["experiment"] == claim.experiment]
    for filters in (claim.treatment, claim.baseline or {}):
        if not ran.empty and select(ran, filters).empty:
            wanted = ", ".join(f"{k}={v}" for k, v in filters.items())
            return f"this profile does not run {wanted} in experiment {claim.experiment!r}"
    return f"no rows of metric {claim.metric!r} in experiment {claim.experiment!r} (profile too small or not run)"


def _skipped_note(claim: Claim, frame: pd.DataFrame) -> str:
    mine = select(frame[frame["experiment"] == claim.experiment], claim.treatment)
    tasks = sorted(mine[mine["status"].isin(["not_run", "error"])]["task"].unique())
    return f"{len(tasks)} task(s) not run or failed: {', '.join(tasks)}" if tasks else ""


def _build_test(claim: Claim, frame: pd.DataFrame, device: str, units: UnitsLoader | None) -> tuple[Test | None, str]:
    """The claim's test on its units, or None and the reason it could not run."""
    if frame.empty:
        return None, _not_run_reason(claim, frame, device)
    try:
        data = collect(claim, frame, units)
    except ValueError as exc:
        return None, str(exc)
    if data.treatment.empty or (data.baseline is not None and data.baseline.empty):
        return None, _not_run_reason(claim, frame, device)
    if claim.test not in TESTS:
        raise ValueError(f"claim {claim.id}: unknown test {claim.test!r}; registered: {sorted(TESTS)}")
    # Over elements, every test of a mean effect becomes the two-level resampling (training runs,
    # then elements), so the interval holds training variance; see HierarchicalBootstrap.
    hierarchical = "element" in claim.unit and claim.test in HIERARCHICAL
    try:
        test = (HierarchicalBootstrap if hierarchical else TESTS[claim.test])(claim, data)
    except ValueError as exc:  # too few units for the test: the claim cannot be judged from these rows
        return None, f"{claim.test}: {exc}"
    if data.failed is not None and len(data.failed):
        labels = ", ".join(f"{r.method} {r.task} seed {r.seed}" for r in data.failed.itertuples())
        test.note = "; ".join(filter(None, [test.note, f"{len(data.failed)} run(s) diverged or gave no value and "
                                            f"count as the worst observed value: {labels}"]))  # fmt: skip
    return test, ""


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def floor(test: Test) -> float:
    """The smallest one-sided p the test can report at its n."""
    return max(test.p_floor, test.floor_at(test.n))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _region_text(region: tuple[float, float] | None) -> str:
    if region is None:
        return ""
    low, high = region
    if math.isinf(low) and math.isinf(high):
        return "any"
    if math.isinf(high):
        return f"> {_fmt(low)}"
    if math.isinf(low):
        return f"< {_fmt(high)}"
    return f"({_fmt(low)}, {_fmt(high)})"


def judge(
    claims: Sequence[Claim],
    rows: Sequence[Mapping[str, Any]],
    device: str = "cpu",
    units: UnitsLoader | None = None,
    deciding_profile: str = "standard",
    alpha: float | Mapping[str, float] = ALPHA,
) -> list[dict[str, Any]]:
    """One claims.json object per claim, every verdict by the rule in this module's docstring.

    `deciding_profile` is the profile named in the note of a verdict held back for short runs.
    `alpha` is the error rate, or one per claim id (a sequential look's level; others get ALPHA)."""
    level_of = (lambda cid: alpha.get(cid, ALPHA)) if isinstance(alpha, Mapping) else (lambda cid: alpha)
    frame = frame_of(rows)
    findings = audit.audit()
    built = [(claim, *_build_test(claim, frame, device, units)) for claim in claims]
    # m per family: the claims of the family whose verdict rests on a sampled interval
    sampled = [c.family_name for c, t, _ in built if t is not None and not t.deterministic and c.claimed_region()]
    family_size = {name: sampled.count(name) for name in set(sampled)}
    # No p below what the test can reach at its n (an exact sign flip's 2^-n, a resampling's 1/(B+1)).
    raw_p = {c.id: max(claim_p(c, t), floor(t)) if c.claimed_region() else math.nan for c, t, _ in built if t}
    holm = {}
    for name in family_size:
        ids = [c.id for c, t, _ in built if t is not None and c.family_name == name and c.claimed_region()]
        holm.update(zip(ids, stats.holm([raw_p[i] for i in ids]), strict=True))
    judged = []
    for claim, test, reason in built:
        entry: dict[str, Any] = {
            "id": claim.id,
            "family": claim.family_name,
            "statement": claim.statement,
            "source": claim.source,
            "paper_value": claim.paper_value,
            "paper_value_text": claim.paper_text,
            "metric": claim.metric,
            "direction": claim.direction,
            "claimed_region": _region_text(claim.claimed_region()),
            # numeric bounds for plots (None: unbounded on that side, or a measurement)
            "claimed_low": _finite_or_none((claim.claimed_region() or (None, None))[0]),
            "claimed_high": _finite_or_none((claim.claimed_region() or (None, None))[1]),
            "experiment": claim.experiment,
            "treatment": dict(claim.treatment),
            "baseline": dict(claim.baseline) if claim.baseline is not None else None,
            "null_region": _region_text(claim.null_region()),
            "unit": "/".join(claim.unit),
            "effect_kind": claim.effect,
            "machine_dependent": claim.machine_dependent,
            "tolerance": claim.tolerance,
            "protocol": claim.protocol,
            "paper_audit": audit.audit_notes(claim, findings),
        }
        evidence = evidence_of(claim, frame)
        entry["evidence"] = evidence
        short = evidence["runs"] - evidence["met"] if evidence else 0
        # The short runs, in the form `flagged` always had ("k/n"), so tools that read it keep working.
        entry["flagged"] = {"short of stopping rule": f"{short}/{evidence['runs']}"} if evidence else None
        if test is None:
            entry.update(test=claim.test, measured=None, ci_low=None, ci_high=None, ci_level=None, p_value=None,
                         p_raw=None, n=0, verdict=NOT_RUN, notes=reason)  # fmt: skip
            judged.append(entry)
            continue
        m = family_size.get(claim.family_name, 1)
        a = max(level_of(claim.id), 1e-12)  # 0 (all spent) decides nothing: an interval at 1 - 2e-12
        level = 1.0 if test.deterministic else (1 - a if claim.claimed_region() is None else 1 - 2 * a / m)
        low, high = test.interval(level) if level < 1 else test.interval(0.0)
        if claim.bounds is not None:  # the metric's range: an accuracy interval never passes 100%
            low, high = max(low, claim.bounds[0]), min(high, claim.bounds[1])
        verdict = decide(claim, test.effect, low, high, test.deterministic)
        p_adj = holm.get(claim.id, raw_p[claim.id])
        notes = [test.note, _skipped_note(claim, frame)]
        if verdict in GOOD and not test.deterministic and not (math.isfinite(p_adj) and p_adj < a):
            notes.append(f"the interval clears the boundary but the test does not reject (Holm p={p_adj:.3g})")
            verdict = INCONCLUSIVE
        reachable = min(1.0, floor(test) * m) if not test.deterministic else 0.0
        if verdict == NOT_REPRODUCED and reachable >= a:  # as for a good verdict: n must be able to decide
            notes.append(f"the interval lies outside the claimed region, but at n={test.n} no test can reject")
            verdict = INCONCLUSIVE
        if short and verdict in (*GOOD, NOT_REPRODUCED):
            notes.append(
                f"held back: the interval says {verdict}, but {short} of {evidence['runs']} runs behind it "
                f"stopped short of their stopping rule ({evidence_text(evidence)}); "
                f"runs trained to the rule (profile {deciding_profile}) decide it"
            )
            verdict = INCONCLUSIVE
        if verdict == PARTIAL:
            notes.append(f"direction reproduced; {_fmt(test.effect)} against the paper's {claim.paper_text}")
        if verdict == INCONCLUSIVE:
            notes.append(power_note(claim, test, m, a))
            if reachable >= a:
                notes.append(f"at n={test.n} with {m} claim(s) in the family the smallest attainable adjusted p is "
                             f"{reachable:.3g}: this n cannot decide it")  # fmt: skip
        if m > 1 and not test.deterministic:
            notes.append(f"interval adjusted for {m} claims in family {claim.family_name}")
        entry.update(
            test=test.name,
            measured=test.effect,
            ci_low=low,
            ci_high=high,
            ci_level=level,
            p_value=None if math.isnan(p_adj) else float(p_adj),
            p_raw=None if math.isnan(raw_p[claim.id]) else float(raw_p[claim.id]),
            n=test.n,
            verdict=verdict,
            notes="; ".join(n for n in notes if n),
        )
        judged.append(entry)
    return judged
