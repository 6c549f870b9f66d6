"""The LoRA suite's figures: memory against batch, the rank curve, latency per variant, quality per
method and the dev pilot's learning-rate curves. Every PNG is written by save_png (byte-stable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from suites.harness.figures import save_png
from suites.lora.experiments import LATENCY_VARIANTS

QUALITY_METHODS = ("full", "lora", "bitfit", "adapter_h", "adapter_l", "head")


def figures(frame, judged, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[frame["status"] == "ok"]
    written: list[Path] = []

    mem = ok[ok["experiment"] == "memory"]
    if not mem.empty:
        wide = mem.pivot_table(index=["task", "method", "shape"], columns="metric", values="value", aggfunc="mean")
        wide = wide.reset_index()
        tasks = sorted(wide["task"].unique())
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            sub = wide[wide["task"] == task]
            main_seq = sub["seq"].mode().iloc[0]
            for method, color in (("full", "tab:red"), ("lora", "tab:blue")):
                part = sub[sub["method"] == method].sort_values("batch")
                if part.empty:
                    continue
                same = part[part["seq"] == main_seq]
                ax.plot(same["batch"], same["train_mb"], "o", color=color, label=f"{method} measured")
                # The analytic line at the main length: static part + activations (linear in batch).
                static = (same["pred_weights_mb"] + same["pred_grads_mb"] + same["pred_optim_mb"]).mean()
                per_sample = (same["pred_acts_mb"] / same["batch"]).mean()
                xs = np.linspace(0, same["batch"].max() * 1.1, 50)
                ax.plot(xs, static + per_sample * xs, "-", color=color, alpha=0.7, label=f"{method} analytic")
                other = part[part["seq"] != main_seq]
                for row in other.itertuples():
                    ax.plot([row.batch], [row.train_mb], "D", color=color, mfc="none")
                    ax.plot([row.batch], [row.predicted_mb], "x", color=color)
                    ax.annotate(f"len {row.seq:g}", (row.batch, row.train_mb), fontsize=7, xytext=(4, 0),
                                textcoords="offset points")  # fmt: skip
            ax.set_title(f"{task} (length {main_seq:g}; diamonds/x: other lengths, measured/analytic)", fontsize=8)
            _labels(ax, "batch size", "training memory (MiB)")
        written.append(_finish(fig, folder / "memory_vs_batch.png"))

    rank = ok[(ok["experiment"] == "finetune") & (ok["metric"] == "test_acc")]
    rank = rank[rank["method"].str.startswith("qv_") | rank["method"].isin(["lora", "q_r8", "head"])]
    if not rank.empty:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for task, sub in rank.groupby("task"):
            qv = sub[sub["method"].str.startswith("qv_") | (sub["method"] == "lora")].copy()
            qv["r"] = qv["method"].map(lambda m: 8 if m == "lora" else int(m.rsplit("r", 1)[-1]))
            stats_ = qv.groupby("r")["value"].agg(["mean", "std"]).sort_index()
            line = ax.errorbar(stats_.index, stats_["mean"], yerr=stats_["std"].fillna(0), marker="o", capsize=3,
                               label=f"{task} Wq,Wv")  # fmt: skip
            q = sub[sub["method"] == "q_r8"]["value"]
            if len(q):
                ax.plot([8], [q.mean()], "s", color=line[0].get_color(), mfc="none", label=f"{task} Wq (r=8)")
            probe = sub[sub["method"] == "head"]["value"]
            if len(probe):  # the rank claims mean something only above this line
                ax.axhline(probe.mean(), color=line[0].get_color(), ls=":", lw=1, label=f"{task} head only")
        ax.set_xscale("log", base=2)
        _labels(ax, "rank r", "test accuracy (points)")
        written.append(_finish(fig, folder / "rank_curve.png"))

    lat_all = ok[ok["experiment"] == "latency"]
    lat = lat_all[lat_all["metric"].str.startswith("latency_ms.")]
    if not lat.empty:
        kinds = [k for k in ("small", "large") if k in set(lat["batch_kind"])]
        tasks = sorted(lat["task"].unique())
        fig, axes = plt.subplots(len(tasks), len(kinds), figsize=(5 * len(kinds), 3.5 * len(tasks)), squeeze=False)
        for i, task in enumerate(tasks):
            for j, kind in enumerate(kinds):
                ax = axes[i][j]
                sub = lat[(lat["task"] == task) & (lat["batch_kind"] == kind)]
                med = sub.groupby("metric")["value"].median()
                names = [n for n in LATENCY_VARIANTS if f"latency_ms.{n}" in med.index]
                vals = [med[f"latency_ms.{n}"] for n in names]
                bars = ax.bar(
                    names, vals, color=["grey", "tab:blue", "tab:cyan", "tab:red", "tab:orange"][: len(names)]
                )
                base = med.get("latency_ms.base", np.nan)
                for bar, v in zip(bars, vals, strict=True):
                    ax.annotate(f"{100 * (v / base - 1):+.1f}%", (bar.get_x() + bar.get_width() / 2, v),
                                ha="center", va="bottom", fontsize=7)  # fmt: skip
                dims = lat_all[(lat_all["task"] == task) & (lat_all["batch_kind"] == kind)]
                dims = dims.groupby("metric")["value"].first()
                ax.set_title(f"{task}, batch {dims.get('batch', np.nan):g} x {dims.get('seq', np.nan):g} tokens",
                             fontsize=9)  # fmt: skip
                ax.set_ylabel("median forward time (ms)")
                ax.tick_params(axis="x", labelsize=7, rotation=20)
        written.append(_finish(fig, folder / "latency.png"))

    qual = ok[(ok["experiment"] == "finetune") & (ok["metric"] == "test_acc")]
    qual = qual[qual["method"].isin(QUALITY_METHODS)]
    if not qual.empty:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        order = [m for m in QUALITY_METHODS if m in set(qual["method"])]
        tasks = sorted(qual["task"].unique())
        width = 0.8 / max(len(tasks), 1)
        for k, task in enumerate(tasks):
            sub = qual[qual["task"] == task].groupby("method")["value"].agg(["mean", "std"]).reindex(order)
            ax.bar(np.arange(len(order)) + k * width, sub["mean"], width, yerr=sub["std"].fillna(0), capsize=3,
                   label=task)  # fmt: skip
        ax.set_xticks(np.arange(len(order)) + width * (len(tasks) - 1) / 2, order)
        _labels(ax, "", "test accuracy (points)")
        written.append(_finish(fig, folder / "quality.png"))

    pilot = ok[(ok["experiment"] == "pilot") & (ok["metric"].isin(["dev_acc", "lr"]))]
    if not pilot.empty:
        wide = pilot.pivot_table(index=["task", "method", "lr_step"], columns="metric", values="value").reset_index()
        tasks = sorted(wide["task"].unique())
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            for method, sub in wide[wide["task"] == task].groupby("method"):
                sub = sub.sort_values("lr")
                line = ax.plot(sub["lr"], sub["dev_acc"], "o-", label=method)
                chosen = sub[sub["lr_step"] == 0]
                ax.plot(chosen["lr"], chosen["dev_acc"], "*", ms=12, color=line[0].get_color())
            ax.set_xscale("log")
            ax.set_title(f"dev pilot, {task}", fontsize=9)
            _labels(ax, "backbone learning rate (star: the fixed one)", "dev accuracy (points)")
        written.append(_finish(fig, folder / "pilot.png"))
    return written


def _labels(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def _finish(fig, path: Path) -> Path:
    fig.tight_layout()
    return save_png(fig, path)  # closes the figure
