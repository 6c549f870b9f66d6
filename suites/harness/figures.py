"""Figures every suite shares: byte-stable PNGs, a check for what a reader needs, and the
critical-difference diagram.

`save_png` strips what matplotlib stamps into a PNG (its version), so a figure changes in
`git diff results/` only when what it shows changed, and crops to what is drawn, so a long tick
label or a legend placed outside the axes is never cut off at the canvas edge.
`figure_problems` lists what a figure lacks (a title, axis labels, a key for several series).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .stats import _as_1d, nemenyi_critical_difference


def save_png(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Write `fig` to `path` as a PNG with no metadata (white background), free it, return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # bbox_inches="tight" grows or shrinks the canvas to the drawn artists: labels are never cut
    fig.savefig(path, dpi=dpi, format="png", facecolor="white", metadata={"Software": None}, bbox_inches="tight",
                pad_inches=0.12)  # fmt: skip
    if plt.fignum_exists(getattr(fig, "number", -1)):
        plt.close(fig)
    return path


def _has_data(ax: Any) -> bool:
    return bool(ax.lines or ax.collections or ax.patches or ax.images)


def figure_problems(fig: Any) -> list[str]:
    """What a reader would miss in `fig`: no title (suptitle or axes title), a data axis without an
    x or y label (shared labels via fig.supxlabel/supylabel count), or several labelled series with
    no legend to tell them apart. Empty when the figure reads on its own."""
    fig.draw_without_rendering()  # tick labels are only known once the figure has been laid out
    problems = []
    titled = bool(getattr(fig, "_suptitle", None) and fig._suptitle.get_text())
    titled = titled or any(ax.get_title() for ax in fig.axes)
    if not titled:
        problems.append("no title: set fig.suptitle or an axes title")
    shared_x = bool(getattr(fig, "_supxlabel", None) and fig._supxlabel.get_text())
    shared_y = bool(getattr(fig, "_supylabel", None) and fig._supylabel.get_text())
    # one legend for all panels (on the figure or on one of its axes) keys every panel's labelled series
    figure_legend = bool(fig.legends) or any(ax.get_legend() is not None for ax in fig.axes)
    for i, ax in enumerate(fig.axes):
        if not ax.axison or not _has_data(ax):
            continue
        name = f"axes {i}" + (f" ({ax.get_title()})" if ax.get_title() else "")
        if not (ax.get_xlabel() or shared_x or _needs_no_label(ax.xaxis)):
            problems.append(f"{name}: no x label")
        if not (ax.get_ylabel() or shared_y or _needs_no_label(ax.yaxis)):
            problems.append(f"{name}: no y label")
        labelled = [h for h in ax.get_legend_handles_labels()[1] if not h.startswith("_")]
        unkeyed_labels = len(labelled) > 1 and not figure_legend
        if unkeyed_labels or (not labelled and not figure_legend and len(_series_colours(ax)) > 1):
            problems.append(f"{name}: several series and no key (label them and call ax.legend)")
        for tick in ax.get_xticklabels() + ax.get_yticklabels():
            if _CODED_TICK.fullmatch(tick.get_text()) and not (ax.get_legend() or figure_legend):
                problems.append(f"{name}: tick label {tick.get_text()!r} is a code with no key; name the category")
                break
    return problems


def _series_colours(ax: Any) -> set[str]:
    """Distinct colours of the lines and markers of `ax` (bars are left out: their x labels name them)."""
    from matplotlib.colors import to_hex

    colours = {to_hex(line.get_color()) for line in ax.lines}
    for collection in ax.collections:
        faces = collection.get_facecolor()
        if len(faces):
            colours.add(to_hex(faces[0]))
    return colours


# "(1)", "(2)" ...: labels that mean something only with a key beside them
_CODED_TICK = re.compile(r"\(\d+\)")


def _needs_no_label(axis: Any) -> bool:
    """An axis with no ticks shows no scale; named categories (bars per method) label themselves."""
    texts = [t.get_text() for t in axis.get_ticklabels()]
    return not any(texts) or any(t and not _NUMERIC.fullmatch(t.replace("\u2212", "-")) for t in texts)


_NUMERIC = re.compile(r"[-+]?[\d.,]+(e[-+]?\d+)?%?|\$.*\$")


def _cliques(order: list[int], not_different: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """Maximal runs [s, e] of the rank-sorted methods in which no pair differs significantly."""
    spans = []
    k = len(order)
    for s in range(k):
        e = s
        while e + 1 < k and all(not_different(order[i], order[e + 1]) for i in range(s, e + 1)):
            e += 1
        if e > s:
            spans.append((s, e))
    # a run inside a longer run adds nothing to the picture
    return [sp for sp in spans if not any(o != sp and o[0] <= sp[0] and sp[1] <= o[1] for o in spans)]


def cd_diagram(
    avg_ranks: Any,
    names: Sequence[str],
    pairwise: pd.DataFrame | None,
    path: str | Path,
    title: str = "",
    *,
    n_blocks: int | None = None,
    alpha: float = 0.05,
) -> Path:
    """Critical-difference diagram (Demsar 2006; the aeon / Ismail Fawaz layout), saved as a PNG.

    Methods sit on an axis of average rank (1 = best, on the left); the better half is labelled on
    the left, the rest on the right. Thick bars join methods that are NOT significantly different:
    by default according to ``pairwise`` (the frame from :func:`pairwise_wilcoxon_holm`, its
    ``significant`` column); when ``pairwise`` is None, by the Nemenyi critical difference, which
    needs ``n_blocks`` and is drawn as a CD bar above the axis.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state, works headless

    ranks = _as_1d(avg_ranks, "avg_ranks")
    names = [str(s) for s in names]
    k = ranks.size
    if len(names) != k:
        raise ValueError(f"got {len(names)} names for {k} average ranks")
    cd = None
    if pairwise is None:
        if n_blocks is None:
            raise ValueError("without pairwise tests the Nemenyi fallback needs n_blocks")
        cd = nemenyi_critical_difference(k, n_blocks, alpha) if k >= 2 else 0.0

        def not_different(i: int, j: int) -> bool:
            return abs(ranks[i] - ranks[j]) <= cd
    else:
        missing = {"a", "b", "significant"} - set(pairwise.columns)
        if missing:
            raise ValueError(f"pairwise frame lacks columns {sorted(missing)}")
        sig = {}
        for a, b, s in zip(pairwise["a"], pairwise["b"], pairwise["significant"], strict=True):
            sig[(str(a), str(b))] = sig[(str(b), str(a))] = bool(s)

        def not_different(i: int, j: int) -> bool:
            key = (names[i], names[j])
            if key not in sig:
                raise ValueError(f"pairwise frame has no row for {names[i]} vs {names[j]}")
            return not sig[key]

    order = sorted(range(k), key=lambda i: ranks[i])
    spans = _cliques(order, not_different)

    lo = min(1, math.floor(float(ranks.min())))
    hi = max(k, math.ceil(float(ranks.max())))
    n_left = (k + 1) // 2
    n_rows = max(n_left, k - n_left)
    width, text_space = 7.0, 1.8
    # vertical layout in inches, top to bottom: title, CD bar, rank axis, clique bars, name rows
    top = 0.45 + (0.4 if title else 0.0) + (0.35 if cd is not None else 0.0)
    bar_zone = top + 0.25
    label_top = bar_zone + 0.2 * len(spans) + 0.15
    height = label_top + 0.28 * (n_rows - 1) + 0.6  # the last 0.3 in hold the key to the bars
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, like the text lines of the diagram

    if title:  # a suptitle, not free text, so figure_problems and readers of the Figure see it as the title
        fig.suptitle(title, x=0.5, y=1 - 0.25 / height, ha="center", va="center", fontsize=11)

    def xpos(rank: float) -> float:
        return text_space + (width - 2 * text_space) * (rank - lo) / max(hi - lo, 1)

    ax.plot([xpos(lo), xpos(hi)], [top, top], color="k", lw=1.5)
    for t in np.arange(lo, hi + 0.25, 0.5):
        major = float(t).is_integer()
        ax.plot([xpos(t), xpos(t)], [top, top - (0.12 if major else 0.06)], color="k", lw=1)
        if major:
            ax.text(xpos(t), top - 0.16, f"{int(t)}", ha="center", va="bottom", fontsize=9)

    if cd is not None:
        y_cd = top - 0.38
        ax.plot([xpos(lo), xpos(lo + cd)], [y_cd, y_cd], color="k", lw=2)
        ax.text(xpos(lo + cd / 2), y_cd - 0.05, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)

    for pos, idx in enumerate(order):
        left = pos < n_left
        row = pos if left else k - 1 - pos
        y = label_top + 0.28 * row
        x_end = text_space - 0.1 if left else width - text_space + 0.1
        ax.plot([xpos(ranks[idx]), xpos(ranks[idx]), x_end], [top, y, y], color="k", lw=0.8)
        ax.text(
            x_end - 0.05 if left else x_end + 0.05,
            y,
            f"{names[idx]} ({ranks[idx]:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize=9,
        )

    for level, (s, e) in enumerate(spans):
        y = bar_zone + 0.2 * level
        ax.plot(
            [xpos(ranks[order[s]]) - 0.05, xpos(ranks[order[e]]) + 0.05],
            [y, y],
            color="k",
            lw=3,
            solid_capstyle="round",
        )

    # the key: without it a reader cannot tell what a bar asserts, or which test drew it
    joined_by = "pairwise Wilcoxon, Holm-adjusted" if cd is None else f"Nemenyi critical difference, alpha={alpha:g}"
    ax.text(width / 2, height - 0.15, f"average rank, 1 = best; thick bars join methods not significantly different "
            f"({joined_by})", ha="center", va="center", fontsize=8, color="#333333")  # fmt: skip
    return save_png(fig, Path(path), dpi=150)
