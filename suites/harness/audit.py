"""An audit of the papers' own numbers: can each printed value be right as printed?

Two checks, both on values declared below as data (the printed text, so the printed precision is
exact, with its source in /work/shared/papers/*.md), neither ever changing a value:

- attainability (GRIM, Brown & Heathers 2017): a share of a test set of N cases is k/N for some
  integer k; printed as a percentage at d decimals it is attainable only when some k/N rounds to
  it. A mean over r runs of such shares is k/(rN). When no k works, the value cannot be right as
  printed (a typo, another test set, or another aggregation than the one assumed, named in the
  finding);
- stated means: a table's stated mean (or mean difference) against the mean of its printed rows.
  Every printed value stands for an interval of half a unit in its last place, so the rows' mean
  lies in an interval too; the stated mean is consistent when its own interval overlaps that one.

Findings are reported beside the claims they concern (`audit_notes(claim)`), never applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

CONSISTENT, INCONSISTENT = "consistent", "inconsistent"


def decimals_of(printed: str) -> int:
    return len(printed.split(".", 1)[1]) if "." in printed else 0


def half_unit(printed: str) -> Fraction:
    """Half a unit in the last printed place: the rounding error a printed value may carry."""
    return Fraction(1, 2 * 10 ** decimals_of(printed))


def round_half_up(value: Fraction, decimals: int) -> str:
    """`value` printed at `decimals` places, halves rounded up (exact: no binary floating point)."""
    whole = math.floor(value * 10**decimals + Fraction(1, 2))
    digits = str(abs(whole)).rjust(decimals + 1, "0")
    sign = "-" if whole < 0 else ""
    return sign + (f"{digits[:-decimals]}.{digits[-decimals:]}" if decimals else digits)


@dataclass(frozen=True)
class Share:
    """A printed percentage that is a share of `n` test cases (a mean over `runs` runs of such shares)."""

    paper: str
    source: str
    printed: str  # as printed, e.g. "98.7"
    n: int  # test-set size
    runs: int = 1  # values averaged into the printed one (1: a single run, or a median of runs)
    claims: tuple[str, ...] = ()  # claim ids whose paper value this is
    assumption: str = ""  # what the check takes for granted (aggregation, which set N counts)


@dataclass(frozen=True)
class StatedMean:
    """A stated mean of printed rows, or of their differences from baseline rows (`minus`)."""

    paper: str
    source: str
    stated: str
    rows: tuple[str, ...]
    minus: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    paper: str
    source: str
    check: str  # "attainable share" or "stated mean"
    outcome: str  # consistent | inconsistent
    detail: str
    claims: tuple[str, ...] = ()


def attainable_counts(printed: str, n: int, runs: int = 1) -> list[int]:
    """Every k with k / (runs * n), as a percentage, rounding to `printed` (half a unit either way).

    An exact half counts for both neighbours: the paper's rounding convention is not known, and a
    value is flagged only when no convention could have printed it."""
    denominator = n * runs
    target, half = Fraction(printed), half_unit(printed)
    low = math.ceil((target - half) * denominator / 100)
    high = math.floor((target + half) * denominator / 100)
    return [k for k in range(max(low, 0), min(high, denominator) + 1)]


def nearest_attainable(printed: str, n: int, runs: int = 1) -> tuple[str, str]:
    """The closest printed values below and above `printed` that some k / (runs * n) rounds to."""
    denominator, decimals = n * runs, decimals_of(printed)
    shown = [round_half_up(Fraction(100 * k, denominator), decimals) for k in range(denominator + 1)]
    below = max((s for s in shown if Fraction(s) < Fraction(printed)), key=Fraction, default="none")
    above = min((s for s in shown if Fraction(s) > Fraction(printed)), key=Fraction, default="none")
    return below, above


def check_share(value: Share) -> Finding:
    counts = attainable_counts(value.printed, value.n, value.runs)
    of = f"{value.runs} x {value.n}" if value.runs > 1 else str(value.n)
    if counts:
        detail = f"{value.printed}% = {counts[0]}/{of} at the printed precision"
        outcome = CONSISTENT
    else:
        below, above = nearest_attainable(value.printed, value.n, value.runs)
        detail = (f"{value.printed}% is not k/{of} for any integer k at {decimals_of(value.printed)} decimal(s); "
                  f"the nearest attainable values are {below} and {above}")  # fmt: skip
        outcome = INCONSISTENT
    if value.assumption:
        detail += f" (assuming {value.assumption})"
    return Finding(value.paper, value.source, "attainable share", outcome, detail, value.claims)


def check_mean(value: StatedMean) -> Finding:
    if value.minus and len(value.minus) != len(value.rows):
        raise ValueError(f"{value.source}: {len(value.rows)} rows against {len(value.minus)} baseline rows")
    count = len(value.rows)
    total = sum(map(Fraction, value.rows)) - sum(map(Fraction, value.minus))
    slack = (sum(map(half_unit, value.rows)) + sum(map(half_unit, value.minus))) / count
    mean = total / count
    stated, stated_half = Fraction(value.stated), half_unit(value.stated)
    overlap = mean - slack <= stated + stated_half and stated - stated_half <= mean + slack
    shown = f"{float(mean):.4g} (between {float(mean - slack):.4g} and {float(mean + slack):.4g} from the printed rows)"
    what = "mean difference" if value.minus else "mean"
    detail = f"stated {what} {value.stated}; the {count} printed rows give {shown}"
    return Finding(value.paper, value.source, "stated mean", CONSISTENT if overlap else INCONSISTENT, detail,
                   value.claims)  # fmt: skip


# --------------------------------------------------------------------------------------------
# the audited values, as data (from /work/shared/papers/*.md)

# GTN Table 1 with the test-set sizes of its dataset list. GTN's own column is taken as one run
# (the paper reports no repetitions); the baselines are Fawaz et al.'s means over 10 runs.
GTN_TEST_SIZES = {"ArabicDigits": 2200, "AUSLAN": 1425, "CharacterTrajectories": 2558, "CMUsubject16": 29,
                  "ECG": 100, "JapaneseVowels": 370, "Libras": 180, "UWave": 4278, "KickvsPunch": 10,
                  "NetFlow": 534, "PEMS": 173, "Wafer": 896, "WalkvsRun": 16}  # fmt: skip
GTN_TABLE1 = {  # dataset: (MLP, FCN, ResNet, GTN), as printed
    "ArabicDigits": ("96.9", "99.4", "99.6", "98.8"), "AUSLAN": ("93.3", "97.5", "97.4", "97.5"),
    "CharacterTrajectories": ("96.9", "99.0", "99.0", "97.0"), "CMUsubject16": ("60.0", "100", "99.7", "100"),
    "ECG": ("74.8", "87.2", "86.7", "91.0"), "JapaneseVowels": ("97.6", "99.3", "99.2", "98.7"),
    "Libras": ("78.0", "96.4", "95.4", "88.9"), "UWave": ("90.1", "93.4", "92.6", "91.0"),
    "KickvsPunch": ("61.0", "54.0", "51.0", "90.0"), "NetFlow": ("55.0", "89.1", "62.7", "100"),
    "PEMS": (None, None, None, "93.6"), "Wafer": ("89.4", "98.2", "98.9", "99.1"),
    "WalkvsRun": ("70.0", "100", "100", "100"),
}  # fmt: skip
GTN_CLAIMS = ("gtn.acc", "gtn.acc_official", "gtn.official_code", "gtn.official_code_optimistic")


def _gtn_shares() -> list[Share]:
    shares = []
    for dataset, printed in GTN_TABLE1.items():
        for method, value in zip(("MLP", "FCN", "ResNet", "GTN"), printed, strict=True):
            if value is None:
                continue
            own = method == "GTN"
            shares.append(Share(
                paper="gtn", source=f"GTN Table 1, {dataset}, {method}", printed=value, n=GTN_TEST_SIZES[dataset],
                runs=1 if own else 10, claims=tuple(f"{c}.{dataset}" for c in GTN_CLAIMS) if own else (),
                assumption="a single run" if own else "a mean over Fawaz et al.'s 10 runs",
            ))  # fmt: skip
    return shares


# LoRA Table 2 (RoBERTa-base, GLUE dev, median of 5 seeds: one run's value). The dev-set sizes are
# GLUE's (Wang et al. 2019), not in the paper: SST-2 872, MRPC 408, RTE 277; MRPC as accuracy.
GLUE_DEV = {"SST-2": 872, "MRPC": 408, "RTE": 277}
LORA_TABLE2 = {  # method: the eight tasks MNLI SST-2 MRPC CoLA QNLI QQP RTE STS-B, then avg
    "full FT": ("87.6", "94.8", "90.2", "63.6", "92.8", "91.9", "78.7", "91.2", "86.4"),
    "BitFit": ("84.7", "93.7", "92.7", "62.0", "91.8", "84.0", "81.5", "90.8", "85.2"),
    "Adapter (D)": ("87.1", "94.2", "88.5", "60.8", "93.1", "90.2", "71.5", "89.7", "84.4"),
    "LoRA": ("87.5", "95.1", "89.7", "63.4", "93.3", "90.8", "86.6", "91.5", "87.2"),
}
LORA_TASKS = ("MNLI", "SST-2", "MRPC", "CoLA", "QNLI", "QQP", "RTE", "STS-B")
LORA_AVG_CLAIMS = {"full FT": ("lora.quality.vs_full_acc",), "LoRA": ("lora.quality.vs_full_acc",)}


def _lora_values() -> list[Share | StatedMean]:
    values: list[Share | StatedMean] = []
    for method, row in LORA_TABLE2.items():
        values.append(StatedMean("lora", f"LoRA Table 2, RoBERTa-base, {method}, avg", row[-1], row[:-1],
                                 claims=LORA_AVG_CLAIMS.get(method, ())))  # fmt: skip
        if method in ("full FT", "LoRA"):  # the others are copied from papers whose aggregation is not stated
            for task, n in GLUE_DEV.items():
                values.append(Share("lora", f"LoRA Table 2, RoBERTa-base, {method}, {task}",
                                    row[LORA_TASKS.index(task)], n, assumption="GLUE's dev-set size; a median "
                                    "of 5 seeds is one seed's accuracy"))  # fmt: skip
    return values


# Transformers without Tears Table 3: "avg delta" = mean over the 5 pairs of (setup - PostNorm).
NORM_POST = ("18.47", "29.37", "31.94", "27.85", "33.39")
NORM_TABLE3 = {
    "norm.bleu.prenorm": ("PreNorm + LayerNorm", ("19.09", "29.45", "31.92", "28.13", "33.79"), "0.27"),
    "norm.bleu.fixnorm": ("PreNorm + FixNorm + LayerNorm", ("19.38", "29.50", "32.45", "28.39", "34.35"), "0.61"),
    "norm.bleu.scalenorm": ("PreNorm + FixNorm + ScaleNorm", ("20.91", "30.25", "32.79", "28.44", "34.15"), "1.10"),
}
NORM_MEANS = [
    StatedMean("scalenorm", f"Transformers without Tears Table 3, {setup}, avg delta", stated, rows, NORM_POST, (claim,))
    for claim, (setup, rows, stated) in NORM_TABLE3.items()
]  # fmt: skip

AUDITED: tuple[Share | StatedMean, ...] = (*_gtn_shares(), *_lora_values(), *NORM_MEANS)


def audit(values: tuple[Share | StatedMean, ...] = AUDITED) -> list[Finding]:
    """Every declared value checked; the values themselves are never changed."""
    return [check_share(v) if isinstance(v, Share) else check_mean(v) for v in values]


def findings_for(claim_id: str, findings: list[Finding] | None = None) -> list[Finding]:
    return [f for f in (audit() if findings is None else findings) if claim_id in f.claims]


def audit_notes(claim, findings: list[Finding] | None = None) -> str:
    """The text for a claim's report entry: its paper value's inconsistent findings ('' when none)."""
    flagged = [f for f in findings_for(claim.id, findings) if f.outcome == INCONSISTENT]
    return "; ".join(f"{f.source}: {f.detail}" for f in flagged)
