"""The GTN suite's cells: which models, on which data, trained and selected how.

Experiments
    main      datasets x methods x seeds: the paper's GTN (masked step-wise tower), its ablations,
              the released code's variant at the same size and recipe, and the baselines FCN,
              ResNet, MLP (Wang et al. 2017, at dl-4-tsc's recipes) and MiniRocket (aeon), on the
              same splits and seeds. The paper's datasets decide the per-dataset claims; the other
              UEA datasets (outside the paper's table) add units to the comparisons across datasets.
    official  the released code's variant at the released code's size (`official`, its recipe
              `train_official`) on `official_datasets`, beside the same variant at the profile's
              GTN size (`gtn_official_reduced`, when the sizes differ): what model size does.
    zscore    one dataset, the paper's GTN on z-scored against raw values: the official code feeds
              raw values, so z-scoring is a departure, measured here.

Data. GTN models read the series zero padded to the longest length across train and test (as the
paper did) with the true lengths for the padding mask; the baselines read them resampled to that
length by cubic interpolation (as dl-4-tsc did). Every channel is z-scored with TRAINING
statistics only (`suites.data.timeseries`), except in the raw arm of `zscore`.

Training and selection: `training.py` (one stopping rule for every method, both selections, the
training record). Costs: every experiment's `StepCost` times a few steps of the profile's model.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from impl.gtn import GTN, GTNConfig
from impl.tsc_baselines import FCN, MLP, FCNConfig, MLPConfig, ResNet, ResNetConfig
from suites.data import DatasetUnavailable, is_available, resolve_data_dir
from suites.data.timeseries import (
    GTN_PAPER_DATASETS,
    TimeSeriesDataset,
    candidates,
    load,
    normalise_per_channel,
    resample_to_longest,
)
from suites.harness import Experiment, StepCost
from suites.harness.training import TrainingRecord

from .profiles import GTNProfile
from .training import seconds_per_epoch, train_and_evaluate

# The paper's GTN: step-wise mask (causal) in training and evaluation, padding hidden.
_PAPER = {"kind": "gtn", "towers": "both", "fusion": "gate", "mask": True, "causal": True, "variant": "paper"}
_OFFICIAL = {**_PAPER, "mask": False, "causal_eval": False, "variant": "official"}
METHODS: dict[str, dict[str, Any]] = {
    "gtn": _PAPER,
    "gtn_concat": {**_PAPER, "fusion": "concat"},
    "gtn_step": {**_PAPER, "towers": "step"},
    "gtn_channel": {**_PAPER, "towers": "channel"},
    "gtn_nomask": {**_PAPER, "causal": False},  # the paper's mask ablation: no step-wise mask
    # The released code's structure: no tanh or projection before the gate, the mask in training
    # only, no padding mask; in `main` at the profile's GTN size and recipe (a variant comparison).
    "gtn_official": _OFFICIAL,
    "fcn": {"kind": "fcn"},
    "resnet": {"kind": "resnet"},
    "mlp": {"kind": "mlp"},
    "minirocket": {"kind": "minirocket"},
}
NEURAL = [m for m, kw in METHODS.items() if kw["kind"] != "minirocket"]
ZSCORE_METHODS = {"gtn": _PAPER, "gtn_raw": {**_PAPER, "raw": True}}


# --------------------------------------------------------------------------------------------- data


@lru_cache(maxsize=16)
def dataset(name: str, data_dir: str | None, form: str = "padded") -> TimeSeriesDataset:
    """A dataset as a method reads it: "padded" (z-scored), "resampled" (z-scored) or "raw" (padded).

    Cached per process: a UEA .ts parse costs up to a second.
    """
    if form == "raw":
        return load(name, data_dir)
    ds = normalise_per_channel(load(name, data_dir))
    return resample_to_longest(ds) if form == "resampled" else ds


def check_datasets(settings: GTNProfile, data_dir: str | None) -> None:
    """Datasets asked for by name must load (the loader's error names the file and its source)."""
    for name in settings.datasets:
        dataset(name, data_dir)


def absent_paper_datasets(listed: list[str]) -> list[str]:
    """The paper's datasets not in `listed` whose files are not in the data directory.

    Decided from the files (through $CLAIMBENCH_DATA, which the CLI sets from --data-dir), so a
    dataset copied in later runs without a code change. They become tasks that end `not run`.
    """
    try:
        data_dir = str(resolve_data_dir(None))
    except DatasetUnavailable:
        data_dir = None
    return [
        name
        for name in GTN_PAPER_DATASETS
        if name not in listed and (data_dir is None or not any(is_available(p, data_dir) for _, p in candidates(name)))
    ]


def build(s: GTNProfile) -> list[Experiment]:
    listed = list(s.datasets)
    tasks = {name: {"name": name} for name in listed + absent_paper_datasets(listed)}
    official = {"gtn_official": {**_OFFICIAL, "size": "official"}}
    if s.official != s.gtn:  # the same variant at the profile's GTN size, paired by seed
        official["gtn_official_reduced"] = _OFFICIAL
    official_tasks = {name: {"name": name} for name in s.official_datasets}
    return [
        Experiment(name="main", run=run, tasks=tasks, methods=METHODS, seeds=s.seeds, cost=cost(s, METHODS)),
        Experiment(name="official", run=run, tasks=official_tasks, methods=official, seeds=s.official_seeds or s.seeds,
                   cost=cost(s, official)),
        Experiment(name="zscore", run=run, tasks={s.zscore_dataset: {"name": s.zscore_dataset}},
                   methods=ZSCORE_METHODS, seeds=s.seeds, cost=cost(s, ZSCORE_METHODS)),
    ]  # fmt: skip


def budget_of(method: dict[str, Any], s: GTNProfile):
    return s.budget("official" if method.get("size") == "official" else method["kind"])


def cost(s: GTNProfile, methods: dict[str, dict[str, Any]]) -> StepCost:
    """The most epochs a cell takes (the largest cap among `methods`) and, per cell, the seconds per
    epoch of its model timed over a few steps, scaled by its own cap over that largest one (so steps x
    time_step is the cell's most time). MiniRocket: its whole fit, spread over the same steps."""
    steps = max(budget_of(m, s).max_epochs for m in methods.values() if m["kind"] != "minirocket")

    def time_step(cell, ctx) -> float:
        method = cell.method_kwargs
        ds = dataset(cell.task_kwargs["name"], ctx.data_dir, form_of(method))
        if method["kind"] == "minirocket":
            return run_minirocket(ds, cell.seed, s, ctx.threads)["train_s"] / steps
        budget = budget_of(method, s)
        torch.manual_seed(cell.seed)
        per_epoch = seconds_per_epoch(build_model(method, ds, s), ds, budget, ctx.device)
        return per_epoch * budget.max_epochs / steps

    return StepCost(steps=steps, time_step=time_step)


# --------------------------------------------------------------------------------------------- one cell


def form_of(method: dict[str, Any]) -> str:
    return "raw" if method.get("raw") else ("padded" if method["kind"] == "gtn" else "resampled")


def run(cell, ctx) -> dict[str, float]:
    s: GTNProfile = ctx.settings
    method = cell.method_kwargs
    ds = dataset(cell.task_kwargs["name"], ctx.data_dir, form_of(method))
    if method["kind"] == "minirocket":
        return run_minirocket(ds, cell.seed, s, ctx.threads)
    model = build_model(method, ds, s)
    return train_and_evaluate(model, ds, budget_of(method, s), s.eval_every, cell.seed, ctx.device)


def build_model(method: dict[str, Any], ds: TimeSeriesDataset, s: GTNProfile) -> torch.nn.Module:
    C, T, K = ds.n_channels, ds.n_steps, ds.n_classes
    kind = method["kind"]
    if kind == "gtn":
        size = s.official if method.get("size") == "official" else s.gtn
        switches = {k: method[k] for k in ("towers", "fusion", "mask", "causal", "variant")}  # no silent default
        cfg = GTNConfig(n_channels=C, n_steps=T, n_classes=K, causal_eval=method.get("causal_eval", True),
                        **switches, **vars(size))  # fmt: skip
        return GTN(cfg)
    if kind == "fcn":
        return FCN(FCNConfig(n_channels=C, n_classes=K, width=s.baseline_width))
    if kind == "resnet":
        return ResNet(ResNetConfig(n_channels=C, n_classes=K, width=s.baseline_width))
    if kind == "mlp":
        return MLP(MLPConfig(n_channels=C, n_steps=T, n_classes=K, width=s.baseline_width))
    raise ValueError(f"unknown method kind {kind!r}")


def run_minirocket(ds: TimeSeriesDataset, seed: int, s: GTNProfile, threads: int) -> dict[str, float]:
    """MiniRocket (aeon) on the same resampled, normalised splits; no epochs, so no selection."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    to_aeon = lambda X: np.ascontiguousarray(X.transpose(0, 2, 1), dtype=np.float64)  # noqa: E731  (n, C, T)
    torch_threads = torch.get_num_threads()
    try:
        clf = MiniRocketClassifier(n_kernels=s.minirocket_kernels, n_jobs=threads, random_state=seed)
        start = time.perf_counter()
        clf.fit(to_aeon(ds.X_train), ds.y_train)
        train_s = time.perf_counter() - start
        acc = 100.0 * float(np.mean(clf.predict(to_aeon(ds.X_test)) == ds.y_test))
    finally:
        # aeon/numba change the process's thread settings; torch cells after this one in the
        # same process ran 25x slower until this was restored.
        torch.set_num_threads(torch_threads)
    # A closed-form fit (random kernels, then ridge regression with its own cross-validated
    # penalty): complete when it returns, so its record says converged after its one step.
    return {"acc": acc, "train_s": train_s, **TrainingRecord.fixed_budget(1, 1).metrics()}
