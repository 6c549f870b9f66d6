"""Figures every suite shares: byte-stable PNGs, and the critical-difference diagram.

`save_png` strips what matplotlib stamps into a PNG (its version), so a figure changes in
`git diff results/` only when what it shows changed.
"""

from __future__ import annotations

import math
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
    fig.savefig(path, dpi=dpi, format="png", facecolor="white", metadata={"Software": None})
    if plt.fignum_exists(getattr(fig, "number", -1)):
        plt.close(fig)
    return path


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
    height = label_top + 0.28 * (n_rows - 1) + 0.3
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards, like the text lines of the diagram

    if title:
        ax.text(width / 2, 0.25, title, ha="center", va="center", fontsize=11)

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

    return save_png(fig, Path(path), dpi=150)
