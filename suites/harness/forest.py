"""The forest plot of a suite: every judged claim's effect, its decision interval and its claimed region.

Layout: one row per claim, each with its OWN x axis. The claims of one suite mix units and scales
(a parameter count of 1.75e11, an accuracy difference of -1.6 points, a speed-up ratio of 1.27x);
a shared axis would crush all but one of them, and a normalised "distance to the region" would
hide the numbers a reader checks against the paper and has no natural unit for half-open regions
("> 96.8"). So each row keeps its claim's own units, the region is shaded where the verdict is
decided, and the numbers are printed beside the row. Ratio effects get a log axis when every value
is positive, because 0.5x and 2x are equally far from 1x.

Claims without an interval are never dropped: not-run claims (and any judged claim whose effect
is missing) are listed under the rows, by id, with their verdict.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .figures import save_png

VERDICT_COLOURS = {
    "reproduced": "#1b7837",
    "partially reproduced": "#7fbc41",
    "not reproduced": "#c51b7d",
    "inconclusive": "#e08214",
    "measured": "#4d4d4d",
    "not run": "#999999",
}
REGION_COLOUR = "#a6dba0"
NULL_COLOUR = "#f1b6da"
ROW_INCHES = 0.46
WIDTH_INCHES = 11.0
# a paper value that would stretch the axis more than this many times is shown as an arrow at the edge
STRETCH_LIMIT = 4.0

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"


def parse_region(text: str | None) -> tuple[float, float] | None:
    """judge._region_text back to (low, high): "> 1", "< 0.9", "(0.95, 1.05)", "any"; "" is None."""
    text = (text or "").strip()
    if not text:
        return None
    if text == "any":
        return (-math.inf, math.inf)
    match = re.fullmatch(rf"([<>])\s*({_NUMBER})", text)
    if match:
        value = float(match.group(2))
        return (value, math.inf) if match.group(1) == ">" else (-math.inf, value)
    match = re.fullmatch(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)", text)
    if match:
        return (float(match.group(1)), float(match.group(2)))
    raise ValueError(f"cannot read the region {text!r}: expected '> a', '< b', '(a, b)' or 'any'")


def compact(value: float | None) -> str:
    """Four significant digits: enough to see the gap that decides a verdict beside the axis."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.4g}"


def is_drawable(claim: Mapping[str, Any]) -> bool:
    values = (claim.get("measured"), claim.get("ci_low"), claim.get("ci_high"))
    return claim.get("verdict") != "not run" and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _uses_log(claim: Mapping[str, Any], points: Sequence[float]) -> bool:
    """Ratios spanning more than a factor of 4; within that a log axis reads like a linear one."""
    positive = all(p > 0 for p in points) and bool(points)
    return claim.get("effect_kind") == "ratio" and positive and max(points) / min(points) > 4


def axis_limits(claim: Mapping[str, Any]) -> tuple[float, float, bool, bool]:
    """(low, high, log, paper_on_axis) for one row: the interval, the region's finite edges and the
    null side's edge always fit; the paper's value fits unless it would crush the interval."""
    region = parse_region(claim.get("claimed_region")) or ()
    null = parse_region(claim.get("null_region")) or ()
    core = _finite([claim["measured"], claim["ci_low"], claim["ci_high"], *region, *null])
    paper = claim.get("paper_value")
    log = _uses_log(claim, core + _finite([paper]))
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)
    low, high = min(map(scale, core)), max(map(scale, core))
    paper_on_axis = False
    if paper is not None and math.isfinite(paper) and (not log or paper > 0):
        with_paper = (min(low, scale(paper)), max(high, scale(paper)))
        span = high - low
        if span == 0 or (with_paper[1] - with_paper[0]) <= STRETCH_LIMIT * span:
            low, high, paper_on_axis = *with_paper, True
    span = high - low
    # an exact count has no span: a window of +-1% (or +-1 around zero) keeps its point in view
    exact_pad = 0.05 if log else (abs(low) * 0.01 or 1.0)
    pad = 0.08 * span if span > 0 else exact_pad
    low, high = low - pad, high + pad
    if log:
        return 10**low, 10**high, True, paper_on_axis
    return low, high, False, paper_on_axis


def tick_digits(low: float, high: float) -> int:
    """Significant digits that tell neighbouring ticks apart (1.88686e+07, not 1.887e+07 five times)."""
    span = abs(high - low)
    magnitude = max(abs(low), abs(high))
    if span == 0 or magnitude == 0:
        return 4
    return min(12, max(3, math.ceil(math.log10(magnitude / (span / 4))) + 1))


def log_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 x 10^k inside [low, high], thinned to at most five so the labels do not collide."""
    ticks = [m * 10.0**k for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
             for m in (1, 2, 5) if low <= m * 10.0**k <= high]  # fmt: skip
    step = max(1, math.ceil(len(ticks) / 5))
    return ticks[::step]


def _draw_row(ax: Any, claim: Mapping[str, Any]) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    low, high, log, paper_on_axis = axis_limits(claim)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(log_ticks(low, high)))
        ax.xaxis.set_minor_locator(NullLocator())
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    digits = tick_digits(low, high)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.{digits}g}"))
    ax.set_xlim(low, high)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=6, length=2, pad=1)
    null = parse_region(claim.get("null_region"))
    if null is not None:
        ax.axvspan(max(null[0], low), min(null[1], high), color=NULL_COLOUR, alpha=0.5, lw=0, hatch="///")
    region = parse_region(claim.get("claimed_region"))
    if region is not None:
        left, right = max(region[0], low), min(region[1], high)
        if right > left:
            ax.axvspan(left, right, color=REGION_COLOUR, alpha=0.7, lw=0)
        else:  # a point region (a count matched exactly): a band would be invisible
            ax.axvline(region[0], color=REGION_COLOUR, lw=4)
    colour = VERDICT_COLOURS.get(claim["verdict"], "black")
    ax.plot([claim["ci_low"], claim["ci_high"]], [0, 0], color=colour, lw=3, solid_capstyle="butt", gid="interval")
    ax.plot([claim["measured"]], [0], "o", color=colour, ms=5, mec="white", mew=0.6, gid="effect")
    paper = claim.get("paper_value")
    if paper_on_axis:
        ax.plot([paper], [0], "D", mfc="none", mec="black", ms=6, mew=1.1, gid="paper")
    elif paper is not None:
        right = paper > high
        ax.annotate(f"paper {compact(paper)} {'→' if right else '←'}", xy=(1.0 if right else 0.0, 0.5),
                    xycoords="axes fraction", ha="right" if right else "left", va="center", fontsize=6,
                    gid="paper_off_axis")  # fmt: skip


def _legend(fig: Any, top: float) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=c, lw=3, label=v) for v, c in VERDICT_COLOURS.items() if v != "not run"]
    handles += [
        Patch(color=REGION_COLOUR, alpha=0.7, label="claimed region"),
        Patch(facecolor=NULL_COLOUR, alpha=0.5, hatch="///", label="null side"),
        Line2D([], [], ls="none", marker="D", mfc="none", mec="black", label="paper's value"),
        Line2D([], [], ls="none", marker="o", color="black", label="effect (ours)"),
    ]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, top), ncol=5, fontsize=7, frameon=False)


def unplotted_lines(judged: Sequence[Mapping[str, Any]], width: int = 150) -> list[str]:
    """The claims without a drawable interval, by verdict, as wrapped lines of ids."""
    groups: dict[str, list[str]] = {}
    for claim in judged:
        if not is_drawable(claim):
            groups.setdefault(claim.get("verdict", "?"), []).append(claim["id"])
    lines = []
    for verdict, ids in groups.items():
        lines += textwrap.wrap(f"{verdict} ({len(ids)}, no interval; reasons in report.md): {', '.join(ids)}", width)
    return lines


def forest_figure(judged: Sequence[Mapping[str, Any]], title: str) -> Any:
    """The forest plot as a matplotlib Figure (forest_plot saves it); rows in claims.json order."""
    from matplotlib.figure import Figure

    rows = [c for c in judged if is_drawable(c)]
    notes = unplotted_lines(judged)
    header, footer = 0.95, 0.35 + 0.16 * len(notes)
    height = header + ROW_INCHES * max(len(rows), 1) + footer
    fig = Figure(figsize=(WIDTH_INCHES, height))
    fig.suptitle(title, y=1 - 0.12 / height, fontsize=11)
    fig.text(0.5, 1 - 0.36 / height, "effect with its decision interval; each row has its own x scale (log for "
             "ratios)", ha="center", va="center", fontsize=7.5, color="#333333")  # fmt: skip
    _legend(fig, 1 - 0.45 / height)
    left, right = 3.3 / WIDTH_INCHES, 1 - 2.6 / WIDTH_INCHES
    for i, claim in enumerate(rows):
        bottom = 1 - (header + ROW_INCHES * (i + 1)) / height
        ax = fig.add_axes((left, bottom + 0.17 / height, right - left, (ROW_INCHES - 0.25) / height))
        ax.set_gid(f"row:{claim['id']}")
        _draw_row(ax, claim)
        ax.text(-0.01, 0.5, claim["id"], transform=ax.transAxes, ha="right", va="center", fontsize=7)
        numbers = f"{compact(claim['measured'])} [{compact(claim['ci_low'])}, {compact(claim['ci_high'])}]"
        ax.text(1.01, 0.62, numbers, transform=ax.transAxes, ha="left", va="center", fontsize=6.5)
        paper = claim.get("paper_value_text") or "not reported"
        verdict = f"{claim['verdict']}; paper: {textwrap.shorten(paper, 30, placeholder='…')}"
        ax.text(1.01, 0.05, verdict, transform=ax.transAxes, ha="left", va="center", fontsize=6,
                color=VERDICT_COLOURS.get(claim["verdict"], "black"))  # fmt: skip
    fig.supxlabel(
        "each row: the claim's effect in its own units (difference, or ratio for x-fold claims)",
        y=(footer - 0.08) / height if notes else 0.1 / height,
        fontsize=7,
        va="center",
    )
    if not rows:
        fig.text(0.5, 1 - (header + ROW_INCHES / 2) / height, "no claim has an interval to draw", ha="center")
    for j, line in enumerate(notes):
        fig.text(0.02, (footer - 0.25 - 0.16 * j) / height, line, fontsize=6.5, va="center", gid="unplotted")
    return fig


def forest_plot(judged: list[dict], path: Path, title: str) -> Path:
    """Draw `judged` (claims.json entries) as a forest plot into `path` (a byte-stable PNG)."""
    return save_png(forest_figure(judged, title), Path(path), dpi=110)
