"""Figures: recall vs number of embeddings (Figure 7's shape), and each variant's lift with its interval."""

from __future__ import annotations

from pathlib import Path

import numpy as np

LABEL = {"movielens": "MovieLens (global cut)", "movielens_lastn": "MovieLens (last 10 out)",
         "synthetic": "SYNTHETIC users"}  # fmt: skip


def _save(fig, path: Path) -> Path:
    try:
        from suites.harness.figures import save_png
    except ImportError:  # older harness: plain savefig without the timestamp metadata
        fig.savefig(path, dpi=110, metadata={"Software": None})
        return path
    save_png(fig, path)
    return path


def figures(frame, judged, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = frame[(frame["experiment"] == "n_embeddings") & (frame["status"] == "ok")]
    if not rows.empty and "n_embeddings" in rows.columns:
        fig = Figure(figsize=(10.0, 4.0))
        for i, (metric, label) in enumerate((("hit", "hit rate@50"), ("recall", "recall@50"))):
            ax = fig.add_subplot(1, 2, i + 1)
            for task, part in rows[rows["metric"] == metric].groupby("task"):
                curve = part.groupby("n_embeddings")["value"].agg(["mean", "std"]).sort_index()
                ax.errorbar(curve.index.astype(int), curve["mean"], yerr=curve["std"].fillna(0), marker="o",
                            capsize=3, label=LABEL.get(task, task))  # fmt: skip
            ax.set_xlabel("embeddings served per user (top by importance)")
            ax.set_ylabel(f"{label} of the next items (mean over users)")
            ax.legend(fontsize=7)
        fig.suptitle("PinnerSage: hit rate and recall vs number of embeddings (paper: Figure 7); bars: sd over seeds")
        fig.tight_layout()
        written.append(_save(fig, folder / "recall_vs_embeddings.png"))

    lifts = [c for c in judged if c.get("effect_kind") == "ratio" and c.get("experiment", "retrieval") != "speed"
             and c.get("measured") is not None and ".speed." not in c["id"] and c["id"].split(".")[2] != "count"]  # fmt: skip
    if lifts:
        tasks = sorted({c["id"].split(".")[1] for c in lifts})
        fig = Figure(figsize=(7.5, 0.35 * len(lifts) + 1.5))
        ax = fig.add_subplot(1, 1, 1)
        y = np.arange(len(lifts))[::-1]
        colours = dict(zip(tasks, ("tab:blue", "tab:orange", "tab:green"), strict=False))
        for yi, c in zip(y, lifts, strict=True):
            task = c["id"].split(".")[1]
            ax.errorbar(c["measured"], yi, xerr=[[c["measured"] - c["ci_low"]], [c["ci_high"] - c["measured"]]],
                        fmt="o", color=colours[task], capsize=2)  # fmt: skip
            if c.get("paper_value") is not None:
                ax.plot(c["paper_value"], yi, marker="x", color="black")
        ax.axvline(1.0, color="grey", lw=0.8)
        short = {"movielens": "ML global cut", "movielens_lastn": "ML last-10-out", "synthetic": "SYNTHETIC"}
        ax.set_yticks(y, [f"{c['id'].split('.', 2)[2]} [{short.get(c['id'].split('.')[1])}]" for c in lifts],
                      fontsize=7)  # fmt: skip
        ax.set_xlabel("recall lift of PinnerSage over the variant (ratio of means)\n"
                      "bars: family-adjusted decision interval; x: the paper's lift (Table 3)")  # fmt: skip
        ax.set_title("PinnerSage vs baselines and variants")
        fig.tight_layout()
        written.append(_save(fig, folder / "lifts.png"))
    return written
