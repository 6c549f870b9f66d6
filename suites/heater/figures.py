"""Figures of the Heater suite: Recall@K per method (one panel per task) and the p sweep."""

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


def p_sweep(frame: pd.DataFrame, path: Path) -> Path | None:
    rows = _ok(frame)
    rows = rows[(rows["metric"] == "ndcg@20") & rows["method"].str.match(r"^heater(_p[0-9.]+)?$")]
    if rows.empty:
        return None
    rows = rows.assign(p=rows["method"].map(lambda m: 0.5 if m == "heater" else float(m.removeprefix("heater_p"))))
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for task, t in rows.groupby("task"):
        curve = t.groupby("p")["value"].mean().sort_index()
        ax.plot(curve.index, curve.values, marker="o", label=task)
    ax.set_xlabel("p (fraction of pairs whose CF vector is replaced)")
    ax.set_ylabel("NDCG@20 (test)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def figures(frame: pd.DataFrame, judged_claims, folder: Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = [recall_curves(frame, folder / "recall_at_k.png"), p_sweep(frame, folder / "p_sweep.png")]
    return [p for p in made if p is not None]
