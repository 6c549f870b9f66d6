"""Figures of the Heater suite: Recall@K per method (one panel per task) and Figure 7's sweeps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from suites.harness.figures import save_png  # noqa: E402

KS = (20, 50, 100)
ORDER = ("heater", "heater_p0", "heater_k1", "heater_alpha0", "dropoutnet", "linmap", "knn", "popularity", "random")


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[(frame["experiment"] == "coldstart") & (frame["status"] == "ok")].copy()
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    return rows


def recall_curves(frame: pd.DataFrame, path: Path) -> Path | None:
    rows = _ok(frame)
    rows = rows[rows["metric"].isin([f"recall@{k}" for k in KS]) & rows["method"].isin(ORDER)]
    if rows.empty:
        return None
    tasks = sorted(rows["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        t = rows[rows["task"] == task].groupby(["method", "metric"])["value"].mean()
        for method in [m for m in ORDER if m in t.index.get_level_values(0)]:
            ys = [t.get((method, f"recall@{k}"), float("nan")) for k in KS]
            ax.plot(KS, ys, marker="o", lw=2.2 if method == "heater" else 1.0, label=method)
        ax.set_title(task + (" (tags as content)" if task == "citeulike" else ""))
        ax.set_xlabel("K")
        ax.set_xticks(KS)
    axes[0][0].set_ylabel("Recall@K (test, mean over users)")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_png(fig, path)


SWEEPS = (  # (panel, method prefix, the default's value, axis label): Figure 7's three sweeps
    ("p", "heater_p", 0.5, "p (fraction of pairs whose CF vector is replaced)"),
    ("k", "heater_k", 5.0, "number of experts K"),
    ("alpha", "heater_alpha", 1e-4, "alpha (guide-term weight)"),
)


def sweeps(frame: pd.DataFrame, path: Path) -> Path | None:
    """NDCG@20 against each swept setting, per task: the `sensitivity` points and Table 3's ablation
    ends (p 0, K 1, alpha 0 from `coldstart`), with the default (`heater`) at its own value."""
    rows = frame[frame["experiment"].isin(["coldstart", "sensitivity"]) & (frame["status"] == "ok")].copy()
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    rows = rows[rows["metric"] == "ndcg@20"]
    if rows.empty or not rows["method"].str.match(r"^heater_(p|k|alpha)[0-9.e-]+$").any():
        return None
    fig, axes = plt.subplots(1, len(SWEEPS), figsize=(4.2 * len(SWEEPS), 3.4), squeeze=False)
    for ax, (name, prefix, default, label) in zip(axes[0], SWEEPS, strict=True):
        for task, t in rows.groupby("task"):
            points = {default: t[t["method"] == "heater"]["value"].mean()}
            for method, m in t[t["method"].str.match(rf"^{prefix}[0-9.e-]+$")].groupby("method"):
                points[float(method.removeprefix(prefix))] = m["value"].mean()
            if len(points) > 1:
                xs = sorted(points)
                ax.plot(xs, [points[x] for x in xs], marker="o", label=task)
        if name == "alpha":
            ax.set_xscale("symlog", linthresh=1e-5)
        ax.set_xlabel(label)
        ax.set_title(f"Figure 7: {name}")
    axes[0][0].set_ylabel("NDCG@20 (test, mean over seeds)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def figures(frame: pd.DataFrame, judged_claims, folder: Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = [recall_curves(frame, folder / "recall_at_k.png"), sweeps(frame, folder / "sweeps.png")]
    return [p for p in made if p is not None]
