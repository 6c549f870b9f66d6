"""The forest plot draws what claims.json says: one row per judged claim with its own axis, the
interval in the verdict's colour, the claimed region, the paper's value; the rest listed by id."""

from __future__ import annotations

import math

import pytest
from matplotlib.colors import to_hex

from suites.harness import figures, forest
from suites.harness.judge import _region_text
from tests.harness.report_fixtures import claim_entry, sample_claims


@pytest.mark.parametrize("region", [(1.0, math.inf), (-math.inf, 0.9), (0.95, 1.05), (-2.0, 2.0), (96.8, math.inf)])
def test_parse_region_reads_what_the_judge_writes(region):
    assert forest.parse_region(_region_text(region)) == region


def test_parse_region_rejects_what_it_cannot_read():
    assert forest.parse_region("") is None
    with pytest.raises(ValueError, match="cannot read the region"):
        forest.parse_region("between 1 and 2")


def _rows(fig):
    return {ax.get_gid().removeprefix("row:"): ax for ax in fig.axes if (ax.get_gid() or "").startswith("row:")}


def _line(ax, gid):
    (line,) = [ln for ln in ax.lines if ln.get_gid() == gid]
    return line


def test_every_claim_with_an_interval_gets_a_row_in_its_verdicts_colour():
    claims = sample_claims()
    rows = _rows(forest.forest_figure(claims, "toy"))
    drawn = [c for c in claims if c["verdict"] != "not run"]
    assert list(rows) == [c["id"] for c in drawn]  # claims.json order, measurements included
    for claim in drawn:
        interval = _line(rows[claim["id"]], "interval")
        assert list(interval.get_xdata()) == [claim["ci_low"], claim["ci_high"]]
        assert to_hex(interval.get_color()) == forest.VERDICT_COLOURS[claim["verdict"]]
        low, high = rows[claim["id"]].get_xlim()
        assert low < claim["ci_low"] and claim["ci_high"] < high  # the whole interval is in view


def test_each_row_has_its_own_scale():
    rows = _rows(forest.forest_figure(sample_claims(), "toy"))
    params, ratio = rows["toy.count.params"].get_xlim(), rows["toy.speed.ratio"].get_xlim()
    assert params[0] > 1e10 and ratio[1] < 10


def test_claimed_region_is_shaded_and_paper_value_marked():
    claims = sample_claims()
    rows = _rows(forest.forest_figure(claims, "toy"))
    size = rows["toy.speed.size"]  # region (1.25, 1.41), paper 1.33
    spans = [p.get_x() for p in size.patches], [p.get_x() + p.get_width() for p in size.patches]
    assert any(math.isclose(a, 1.25) and math.isclose(b, 1.41) for a, b in zip(*spans, strict=True))
    assert list(_line(size, "paper").get_xdata()) == [1.33]
    floor = rows["toy.acc.floor"]  # "> 96.8": shaded from 96.8 to the right edge
    assert any(math.isclose(p.get_x(), 96.8) for p in floor.patches)
    measured = rows["toy.count.params"]
    assert not measured.patches  # a measurement has no region to shade
    assert not [ln for ln in measured.lines if ln.get_gid() == "paper"]


def test_not_run_claims_are_listed_not_dropped():
    fig = forest.forest_figure(sample_claims(), "toy")
    listed = " ".join(t.get_text() for t in fig.texts if t.get_gid() == "unplotted")
    assert "not run (1" in listed and "toy.acc.missing" in listed


def test_far_paper_value_is_an_arrow_not_a_crushed_axis():
    claim = claim_entry("toy.ckpt.x", "reproduced", claimed_region="> 100", null_region="", measured=570.0,
                        ci_low=560.0, ci_high=580.0, paper_value=1e6)  # fmt: skip
    ax = _rows(forest.forest_figure([claim], "toy"))["toy.ckpt.x"]
    assert ax.get_xlim()[1] < 1000
    assert any(t.get_gid() == "paper_off_axis" and "1e+06" in t.get_text() for t in ax.texts)


def test_ratios_over_a_wide_range_get_a_log_axis():
    wide = claim_entry("toy.ckpt.ratio", "reproduced", effect_kind="ratio", claimed_region="> 100",
                       null_region="< 1", measured=570.0, ci_low=560.0, ci_high=580.0, paper_value=1e4)  # fmt: skip
    narrow = sample_claims()[0]
    rows = _rows(forest.forest_figure([wide, narrow], "toy"))
    assert rows["toy.ckpt.ratio"].get_xscale() == "log"
    assert rows["toy.speed.ratio"].get_xscale() == "linear"


def test_exact_counts_get_ticks_that_differ():
    assert forest.tick_digits(1.8868e7, 1.8875e7) >= 6
    ticks = [f"{v:.{forest.tick_digits(1.8868e7, 1.8875e7)}g}" for v in (1.8869e7, 1.8871e7, 1.8873e7)]
    assert len(set(ticks)) == 3


def test_forest_plot_writes_a_byte_stable_png(tmp_path):
    first = forest.forest_plot(sample_claims(), tmp_path / "a" / "forest.png", "toy")
    second = forest.forest_plot(sample_claims(), tmp_path / "b" / "forest.png", "toy")
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()


def test_a_suite_with_nothing_to_draw_still_gets_a_figure(tmp_path):
    claims = [c for c in sample_claims() if c["verdict"] == "not run"]
    fig = forest.forest_figure(claims, "toy")
    assert not _rows(fig)
    assert forest.forest_plot(claims, tmp_path / "f.png", "toy").exists()


# --------------------------------------------------------------------------------------------
# the shared figure helpers (suites/harness/figures.py)


def _figure(**parts):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot(1, 1, 1)
    for i in range(2):
        ax.plot([0, 1], [i, i + 1], label=parts.get("labels", [None, None])[i])
    if parts.get("title"):
        ax.set_title(parts["title"])
    ax.set_xlabel(parts.get("xlabel", ""))
    ax.set_ylabel(parts.get("ylabel", ""))
    if parts.get("legend"):
        ax.legend()
    return fig


def test_figure_problems_names_what_a_reader_would_miss():
    problems = figures.figure_problems(_figure())
    assert any("no title" in p for p in problems)
    assert any("no x label" in p for p in problems) and any("no y label" in p for p in problems)
    assert any("no key" in p for p in problems)  # two colours, nothing says which is which
    good = _figure(title="t", xlabel="step", ylabel="loss", labels=["a", "b"], legend=True)
    assert figures.figure_problems(good) == []


def test_figure_problems_catches_coded_categories_without_a_key():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1, title="BLEU per setup", ylabel="BLEU")
    ax.bar([0, 1], [1, 2])
    ax.set_xticks([0, 1], ["(1)", "(2)"])
    assert any("'(1)' is a code" in p for p in figures.figure_problems(fig))
    ax.set_xticks([0, 1], ["PostNorm+LN", "PreNorm+LN"])
    assert figures.figure_problems(fig) == []


def test_the_forest_plot_passes_the_check():
    assert figures.figure_problems(forest.forest_figure(sample_claims(), "toy")) == []


def test_save_png_keeps_labels_that_reach_past_the_canvas(tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(3, 2))
    fig.add_subplot(1, 1, 1).set_ylabel("a label far to the left", labelpad=120)
    path = figures.save_png(fig, tmp_path / "wide.png", dpi=50)
    assert Image.open(path).size[0] > 3 * 50  # the canvas grew to hold the label instead of cutting it
