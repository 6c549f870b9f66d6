"""The GTN suite's figures: accuracy per dataset against the paper, gate weights, and the
critical-difference diagram of GTN against the baselines (drawn by the harness)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .claims import PAPER_GATE_AUSLAN, PAPER_TABLE1

COMPARED = ["gtn", "fcn", "resnet", "mlp", "minirocket"]


def _save(fig, path: Path) -> Path:
    from suites.harness.figures import save_png  # byte-stable PNGs, no library version stamp

    save_png(fig, path)
    return path


def _bars(ax, frame, tasks, series) -> None:
    """Grouped bars of mean +- sd over seeds; series = [(method, metric, label)]."""
    width = 0.8 / len(series)
    x = np.arange(len(tasks))
    for i, (method, metric, label) in enumerate(series):
        sel = frame[(frame["method"] == method) & (frame["metric"] == metric)].groupby("task")["value"]
        mean, sd = sel.mean().reindex(tasks), sel.std().reindex(tasks).fillna(0)
        ax.bar(x + (i - (len(series) - 1) / 2) * width, mean, width=width, yerr=sd, capsize=2, label=label)
    ax.set_xticks(x, tasks, rotation=30, ha="right")


def accuracy_figure(main, folder: Path):
    from matplotlib.figure import Figure

    gtn = main[main["method"] == "gtn"]
    tasks = sorted(gtn["task"].unique())
    if not tasks:
        return None
    fig = Figure(figsize=(max(6.0, 1.0 * len(tasks) + 2), 4.0))
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, main, tasks, [("gtn", "acc", "GTN, honest"), ("gtn", "acc_official", "GTN, official selection"),
                            ("gtn_official", "acc", "released structure at this size, honest")])  # fmt: skip
    paper = [PAPER_TABLE1.get(t, {}).get("GTN") for t in tasks]
    px = [i for i, v in enumerate(paper) if v is not None]
    ax.scatter(px, [paper[i] for i in px], marker="D", color="k", zorder=3, label="paper (Table 1)")
    ax.set_ylabel("test accuracy (%)")
    low = min([float(gtn[gtn["metric"] == "acc"]["value"].min())] + [paper[i] for i in px])
    ax.set_ylim(max(0.0, 10 * math.floor(low / 10) - 10), 101)
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title("GTN accuracy per dataset (bars: mean, whiskers: sd over seeds)")
    fig.tight_layout()
    return _save(fig, folder / "accuracy_per_dataset.png")


def gate_figure(main, folder: Path):
    from matplotlib.figure import Figure

    gtn = main[main["method"] == "gtn"]
    tasks = sorted(gtn[gtn["metric"] == "gate_step"]["task"].unique())
    if not tasks:
        return None
    fig = Figure(figsize=(max(6.0, 0.9 * len(tasks) + 2), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, main, tasks, [("gtn", "gate_step", "step-wise weight, trained"),
                            ("gtn", "gate_step_init", "step-wise weight, at initialisation (control)")])  # fmt: skip
    ax.axhline(PAPER_GATE_AUSLAN[0], ls="--", color="k", lw=1, label=f"paper, AUSLAN ({PAPER_GATE_AUSLAN[0]})")
    ax.axhline(0.5, ls=":", color="grey", lw=1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean gate weight (test set)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    ax.set_title("Step-wise gate weight per dataset (whiskers: sd over seeds)")
    fig.tight_layout()
    fig.subplots_adjust(right=0.68)  # room for the legend outside the axes
    return _save(fig, folder / "gate_weights.png")


def cd_figure(main, folder: Path):
    from suites.harness import figures as harness_figures
    from suites.harness import stats

    acc = main[(main["metric"] == "acc") & main["method"].isin(COMPARED)]
    table = acc.pivot_table(index="task", columns="method", values="value", aggfunc="mean").dropna()
    if len(table) < 2 or not set(COMPARED) <= set(table.columns):
        return None
    matrix = table[COMPARED].to_numpy(float)
    path = folder / "cd_diagram.png"
    harness_figures.cd_diagram(stats.average_ranks(matrix), COMPARED, stats.pairwise_wilcoxon_holm(matrix, COMPARED), path,
         title=f"Accuracy ranks over {len(table)} datasets", n_blocks=len(table))  # fmt: skip
    return path


def figures(frame, judged, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    main = frame[(frame["experiment"] == "main") & (frame["status"] == "ok")]
    drawn = (accuracy_figure(main, folder), gate_figure(main, folder), cd_figure(main, folder))
    return [p for p in drawn if p is not None]
