"""A claim's rows: which runs stand behind it, how they pair, and what a failed run counts as.

`collect` selects the rows of a claim's metric on each side (treatment, baseline), averages them
inside each independent unit and pairs the sides on it; the judge then hands the result to the
claim's test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .claimtests import ClaimData
from .core import Claim

UnitsLoader = Callable[[str, str, str, str, int, str], "np.ndarray | None"]
CELL = ["experiment", "task", "method", "params", "seed"]


def frame_of(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """runs.csv rows as a DataFrame with every params key expanded into its own column."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    params = pd.DataFrame([json.loads(p) for p in frame["params"]], index=frame.index)
    clashes = set(params.columns) & set(frame.columns)
    if clashes:
        raise ValueError(f"params {sorted(clashes)} clash with runs.csv columns; rename them")
    return pd.concat([frame, params], axis=1)


def select(frame: pd.DataFrame, filters: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, wanted in filters.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        mask &= frame[column].isin(values)
    return frame[mask]


def _per_element(rows: pd.DataFrame, claim: Claim, units: UnitsLoader | None) -> pd.DataFrame:
    """Rows expanded to one row per element of their stored per-unit arrays."""
    if units is None:
        raise ValueError(f"claim {claim.id} pairs per-unit arrays, but no per-unit values were stored")
    parts = []
    for row in rows.itertuples(index=False):
        values = units(row.experiment, row.task, row.method, row.params, int(row.seed), row.metric)
        if values is None:
            raise ValueError(f"no per-unit values of {row.metric!r} for {row.task}/{row.method} seed {row.seed}")
        values = np.asarray(values, dtype=float)
        values = values.reshape(len(values), -1).mean(axis=1)
        part = pd.DataFrame({"element": np.arange(len(values)), "value": values})
        for column in rows.columns:
            if column not in ("value", "element"):
                part[column] = getattr(row, column)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def collect(claim: Claim, frame: pd.DataFrame, units: UnitsLoader | None = None) -> ClaimData:
    """The claim's values, averaged within each independent unit and paired on it.

    Claims over elements keep the training run as a level of the unit (the key gains `seed`, shared
    by all methods, so pairs stay paired), for the hierarchical resampling in `HierarchicalBootstrap`.
    Runs behind the claim that diverged or hold no value of the metric count against their method
    (see `failed_runs`), never drop out of the pairing.
    """
    experiment = frame[frame["experiment"] == claim.experiment]
    rows = experiment[(experiment["metric"] == claim.metric) & experiment["status"].isin(["ok", "diverged"])]
    key = list(claim.unit)
    if "element" in key and "seed" not in key:
        key.insert(key.index("element"), "seed")
    missing = [c for c in key if c not in frame.columns and c != "element"]
    if missing:
        raise ValueError(f"claim {claim.id}: unit column(s) {missing} are not in the rows")
    failed = failed_runs(claim, experiment)
    if len(failed) and "element" in key:
        labels = ", ".join(f"{r.method} {r.task} seed {r.seed}" for r in failed.itertuples())
        raise ValueError(f"{len(failed)} run(s) behind it have no per-element values ({labels}): "
                         "an element claim cannot score a run that failed")  # fmt: skip
    rows = pd.concat([rows[rows["value"].notna()], failed]) if len(failed) else rows
    treated = select(rows, claim.treatment).assign(role="treatment")
    base = select(rows, claim.baseline).assign(role="baseline") if claim.baseline is not None else None
    if "element" in key:
        treated = _per_element(treated, claim, units) if not treated.empty else treated
        if base is not None and not base.empty:
            base = _per_element(base, claim, units)
    t = treated.groupby(key)["value"].mean() if not treated.empty else pd.Series(dtype=float)
    if base is None:
        return ClaimData(t, None, treated, failed)
    if claim.test in ("friedman", "spread"):  # many methods: the test pivots the rows itself
        return ClaimData(t, None, pd.concat([treated, base]), failed)
    b = _baseline_per_unit(claim, base, key)
    common = t.index.intersection(b.index)
    return ClaimData(t.loc[common], b.loc[common], pd.concat([treated, base]), failed)


def failed_runs(claim: Claim, experiment: pd.DataFrame) -> pd.DataFrame:
    """Rows standing in for the runs behind the claim that diverged or have no value of its metric.

    Each gets the worst value of the metric observed among the claim's runs (the lowest when higher
    is better), so a method that fails half the time cannot look better than one that never does;
    an error row (the code crashed) is not a training outcome and stays out, reported as not run.
    """
    ran = experiment[experiment["status"].isin(["ok", "diverged"])]
    sides = [f for f in (claim.treatment, claim.baseline) if f is not None]
    cells = pd.concat([select(ran, f) for f in sides])[CELL].drop_duplicates() if sides else ran[CELL].iloc[0:0]
    scored = ran[(ran["metric"] == claim.metric) & ran["value"].notna()]
    scored = pd.concat([select(scored, f) for f in sides]) if sides else scored
    lost = cells.merge(scored[CELL].drop_duplicates(), on=CELL, how="left", indicator=True)
    lost = lost[lost["_merge"] == "left_only"].drop(columns="_merge")
    if lost.empty or scored.empty:
        return lost.iloc[0:0]
    worst = scored["value"].min() if claim.better == "higher" else scored["value"].max()
    firsts = ran.drop_duplicates(CELL).drop(columns=["metric", "value"])
    return lost.merge(firsts, on=CELL).assign(metric=claim.metric, value=float(worst))


def _baseline_per_unit(claim: Claim, base: pd.DataFrame, key: list[str]) -> pd.Series:
    """The baseline of each unit; with several baseline methods, the best of them in that unit
    (the strongest comparator: "non-inferior to the best baseline")."""
    if base.empty:
        return pd.Series(dtype=float)
    per_method = base.groupby([*key, "method"])["value"].mean()
    if per_method.index.get_level_values("method").nunique() == 1:
        return per_method.droplevel("method")
    best = per_method.groupby(level=key).max if claim.better == "higher" else per_method.groupby(level=key).min
    return best()
