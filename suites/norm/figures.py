"""Figures of the norm suite: validation curves, BLEU per setup, gradient norms, throughput; and the
per-seed paired bootstrap of BLEU (sacrebleu's resampling of sentences) as a table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SETUPS = ("post_ln", "pre_ln", "pre_fix_ln", "pre_fix_sn")
LABELS = {
    "post_ln": "(1) PostNorm+LN",
    "pre_ln": "(2) PreNorm+LN",
    "pre_fix_ln": "(3) PreNorm+FixNorm+LN",
    "pre_fix_sn": "(4) PreNorm+FixNorm+SN",
}


def _save(fig, path: Path) -> Path:
    from suites.harness.figures import save_png

    return save_png(fig, path)


def _ok(frame: pd.DataFrame, experiment: str) -> pd.DataFrame:
    return frame[(frame["experiment"] == experiment) & (frame["status"] == "ok")]


def bleu_from_stats(stats: np.ndarray) -> float:
    """Corpus BLEU (sacrebleu's formula, no smoothing needed at corpus level) from summed statistics."""
    from sacrebleu.metrics import BLEU

    return BLEU()._compute_score_from_stats(list(stats)).score


def paired_bootstrap(base: np.ndarray, other: np.ndarray, resamples: int = 1000, seed: int = 12345):
    """Koehn (2004) paired bootstrap as sacrebleu does it: resample sentences with replacement, the
    same sentences for both systems; returns (delta, p) where p is the share of resamples in which
    `other` does not beat `base`."""
    rng = np.random.default_rng(seed)
    n = len(base)
    idx = rng.integers(0, n, size=(resamples, n))
    worse = 0
    for rows in idx:
        worse += bleu_from_stats(other[rows].sum(0)) <= bleu_from_stats(base[rows].sum(0))
    delta = bleu_from_stats(other.sum(0)) - bleu_from_stats(base.sum(0))
    return delta, (worse + 1) / (resamples + 1)


def bootstrap_table(frame: pd.DataFrame, folder: Path) -> Path | None:
    from suites.harness.store import load_units

    lookup = load_units(folder.parent)
    rows = _ok(frame, "table3")
    rows = rows[rows["metric"] == "bleu_stats"]
    if rows.empty:
        return None
    lines = [
        "# Paired bootstrap of BLEU per seed (1,000 resamples of test sentences)",
        "",
        "| task | seed | setup | delta BLEU vs (1) | p (not better) |",
        "|---|---|---|---|---|",
    ]
    for (task, seed), group in rows.groupby(["task", "seed"]):
        arrays = {
            r.method: lookup(r.experiment, r.task, r.method, r.params, int(r.seed), "bleu_stats")
            for r in group.itertuples()
        }
        if arrays.get("post_ln") is None:
            continue
        for method in SETUPS[1:]:
            if arrays.get(method) is None:
                continue
            delta, p = paired_bootstrap(arrays["post_ln"], arrays[method])
            lines.append(f"| {task} | {seed} | {LABELS[method]} | {delta:+.2f} | {p:.3f} |")
    path = folder / "bleu_bootstrap.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def grad_trace_figure(t3: pd.DataFrame, folder: Path) -> Path | None:
    """Global gradient norm per update, first seed of each setup (the paper's Figure 2)."""
    import matplotlib.pyplot as plt

    from suites.harness.store import load_units

    lookup = load_units(folder.parent)
    rows = t3[t3["metric"] == "grad_norm_trace"]
    if rows.empty:
        return None
    first = rows["seed"].min()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows[rows["seed"] == first].itertuples():
        trace = lookup(r.experiment, r.task, r.method, r.params, int(r.seed), "grad_norm_trace")
        if trace is not None:
            ax.plot(np.arange(1, len(trace) + 1), trace, label=LABELS.get(r.method, r.method), lw=0.8)
    ax.set(xlabel="update", ylabel="global gradient norm (before clipping)", yscale="log",
           title=f"Gradient norms, seed {first}")  # fmt: skip
    ax.legend(fontsize=7)
    return _save(fig, folder / "grad_norm_trace.png")


def figures(frame: pd.DataFrame, judged: list[dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    out: list[Path] = []
    t3 = _ok(frame, "table3")
    if not t3.empty:
        curves = t3[t3["metric"].str.startswith("val_loss@")].copy()
        curves["step"] = curves["metric"].str.split("@").str[1].astype(int)
        fig, ax = plt.subplots(figsize=(6, 4))
        for method in SETUPS:
            c = curves[curves["method"] == method].groupby("step")["value"].agg(["mean", "min", "max"])
            if not c.empty:
                ax.plot(c.index, c["mean"], label=LABELS[method])
                ax.fill_between(c.index, c["min"], c["max"], alpha=0.2)
        ax.set(xlabel="update", ylabel="validation NLL per token", title="Validation loss (mean, range over seeds)")
        ax.legend()
        out.append(_save(fig, folder / "val_loss.png"))

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for ax, metric, title in ((axes[0], "bleu", "test BLEU"), (axes[1], "grad_norm_mean", "mean gradient norm")):
            m = t3[t3["metric"] == metric]
            for i, method in enumerate(SETUPS):
                v = m[m["method"] == method]["value"].to_numpy()
                ax.scatter(np.full(len(v), i), v, s=18)
                if len(v):
                    ax.hlines(v.mean(), i - 0.3, i + 0.3)
            ax.set_xticks(range(len(SETUPS)), [LABELS[s].split(" ")[0] for s in SETUPS])
            ax.set_title(f"{title} per seed")
        out.append(_save(fig, folder / "bleu_grad.png"))
        traces = grad_trace_figure(t3, folder)
        if traces is not None:
            out.append(traces)
        table = bootstrap_table(frame, folder)
        if table is not None:
            out.append(table)
    tp = _ok(frame, "throughput")
    if not tp.empty:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        tasks = sorted(tp["task"].unique())
        for j, (metric, label) in enumerate((("layer_tokens_per_s", "LayerNorm"), ("scale_tokens_per_s", "ScaleNorm"))):
            means = [tp[(tp["task"] == t) & (tp["metric"] == metric)]["value"].mean() for t in tasks]
            base = [tp[(tp["task"] == t) & (tp["metric"] == "layer_tokens_per_s")]["value"].mean() for t in tasks]
            ax.bar(np.arange(len(tasks)) + 0.4 * j, np.array(means) / np.array(base), width=0.4, label=label)
        ax.set_xticks(np.arange(len(tasks)) + 0.2, tasks)
        ax.set(ylabel="throughput relative to LayerNorm", title="Throughput (mean over timing blocks)")
        ax.legend()
        out.append(_save(fig, folder / "throughput.png"))
    nw = frame[(frame["experiment"] == "nowarmup") & (frame["metric"] == "failed")]
    if not nw.empty:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        share = nw.groupby(["task", "method"])["value"].mean().unstack()
        share.plot.bar(ax=ax, rot=0)
        ax.set(ylabel="share of seeds failed", title="No warmup: failed runs", ylim=(0, 1.05))
        out.append(_save(fig, folder / "nowarmup_failed.png"))
    return out
