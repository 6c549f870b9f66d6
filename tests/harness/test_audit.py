"""The audit of the papers' numbers, checked against exact enumerations (every k of every N)."""

from __future__ import annotations

from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from suites.harness.audit import (
    AUDITED,
    CONSISTENT,
    GTN_TABLE1,
    INCONSISTENT,
    NORM_TABLE3,
    Share,
    StatedMean,
    attainable_counts,
    audit,
    audit_notes,
    check_mean,
    check_share,
    nearest_attainable,
    round_half_up,
)


def printed_share(k: int, denominator: int, decimals: int, rounding: str = ROUND_HALF_UP) -> str:
    """k / denominator as a percentage printed at `decimals` places, by Decimal (an independent rounding)."""
    exact = Decimal(100 * k) / Decimal(denominator)
    return str(exact.quantize(Decimal(1).scaleb(-decimals), rounding=rounding))


def test_japanese_vowels_is_not_attainable_at_one_decimal():
    assert {printed_share(k, 370, 1) for k in range(371)} & {"98.7"} == set()  # the enumeration itself
    assert attainable_counts("98.7", 370) == []
    assert nearest_attainable("98.7", 370) == ("98.6", "98.9")
    assert attainable_counts("98.6", 370) == [365] and attainable_counts("98.9", 370) == [366]


@pytest.mark.parametrize("decimals", [0, 1, 2])
def test_attainability_matches_enumeration_for_every_small_test_set(decimals):
    for n in range(1, 41):
        reachable: dict[str, list[int]] = {}
        for k in range(n + 1):  # an exact half may have been rounded either way: both count
            for printed in {printed_share(k, n, decimals, r) for r in (ROUND_HALF_UP, ROUND_HALF_DOWN)}:
                reachable.setdefault(printed, []).append(k)
        step = Decimal(1).scaleb(-decimals)
        for i in range(int(100 / step) + 1):
            printed = str((i * step).quantize(step))
            assert attainable_counts(printed, n) == reachable.get(printed, []), (printed, n)


def test_a_mean_over_runs_has_a_finer_grid():
    # CMUsubject16 (29 test cases): MLP's 60.0 is no k/29, but is 174/290, a mean of ten runs
    assert attainable_counts("60.0", 29) == []
    assert attainable_counts("60.0", 29, runs=10) == [174]


def test_findings_say_what_they_assume():
    finding = check_share(Share("p", "T1", "98.7", 370, assumption="a single run", claims=("x.y",)))
    assert finding.outcome == INCONSISTENT
    assert "nearest attainable values are 98.6 and 98.9 (assuming a single run)" in finding.detail
    assert check_share(Share("p", "T1", "98.6", 370)).detail == "98.6% = 365/370 at the printed precision"


@pytest.mark.parametrize(
    ("stated", "rows", "outcome"),
    [
        ("1.5", ("1.0", "2.0"), CONSISTENT),
        ("1.6", ("1.0", "2.0"), CONSISTENT),  # 1.5 +- 0.05 and 1.6 +- 0.05 touch at 1.55: could be right
        ("1.7", ("1.0", "2.0"), INCONSISTENT),
        ("1.4", ("1.0", "2.0"), CONSISTENT),
        ("1.3", ("1.0", "2.0"), INCONSISTENT),
        ("2", ("1.0", "2.0"), CONSISTENT),  # printed as an integer: 1.5 to 2.5
    ],
)
def test_stated_mean_against_its_rows(stated, rows, outcome):
    assert check_mean(StatedMean("p", "T", stated, rows)).outcome == outcome


def test_stated_mean_difference_uses_both_rows():
    setup, rows, stated = NORM_TABLE3["norm.bleu.scalenorm"]
    post = ("18.47", "29.37", "31.94", "27.85", "33.39")
    assert check_mean(StatedMean("p", setup, stated, rows, post)).outcome == CONSISTENT
    assert check_mean(StatedMean("p", setup, "1.12", rows, post)).outcome == INCONSISTENT
    with pytest.raises(ValueError, match="5 rows against 4"):
        check_mean(StatedMean("p", setup, stated, rows, post[:4]))


def test_round_half_up_is_exact():
    assert round_half_up(Fraction(1, 8), 2) == "0.13"
    assert round_half_up(Fraction(-1, 8), 2) == "-0.12"
    assert round_half_up(Fraction(2, 3), 0) == "1"
    assert round_half_up(Fraction(98649, 1000), 1) == "98.6"


def test_the_declared_papers_values_have_one_inconsistency():
    flagged = [f for f in audit() if f.outcome == INCONSISTENT]
    assert [(f.source, f.check) for f in flagged] == [("GTN Table 1, JapaneseVowels, GTN", "attainable share")]
    assert len(audit()) == len(AUDITED)


def test_declared_values_match_the_suites_claims():
    """The audited text is the value the suites judge against, so a finding concerns the number in use."""
    from suites.gtn.claims import PAPER_TABLE1
    from suites.harness.registry import get_suite

    for dataset, printed in GTN_TABLE1.items():
        as_numbers = tuple(None if v is None else float(v) for v in printed)
        assert as_numbers == tuple(PAPER_TABLE1[dataset][m] for m in ("MLP", "FCN", "ResNet", "GTN")), dataset
    norm = get_suite("norm")
    for claim_id, (_, _, stated) in NORM_TABLE3.items():
        assert norm.claim(claim_id).paper_value == float(stated)
    claimed = {c for v in AUDITED for c in v.claims}
    known = (
        {c.id for c in get_suite("gtn").claims} | {c.id for c in norm.claims} | {c.id for c in get_suite("lora").claims}
    )
    assert claimed <= known, sorted(claimed - known)


def test_audit_notes_sit_beside_their_claim():
    from suites.harness.core import Claim

    def claim(claim_id: str) -> Claim:
        return Claim(id=claim_id, statement="", source="", experiment="main", metric="acc", treatment={})

    assert "98.6 and 98.9" in audit_notes(claim("gtn.acc.JapaneseVowels"))
    assert audit_notes(claim("gtn.acc.ECG")) == ""
    assert audit_notes(claim("norm.bleu.prenorm")) == ""  # consistent findings are not flagged
    assert GTN_TABLE1["JapaneseVowels"][3] == "98.7"
