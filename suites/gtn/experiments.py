"""The GTN suite's cells: which models, on which data, trained and selected how.

Experiments
    main    datasets x methods x seeds: the paper's GTN (masked step-wise tower), its ablations,
            the official code's variant, and the baselines FCN, ResNet, MLP (Wang et al. 2017, as
            dl-4-tsc ran them) and MiniRocket (aeon), on the same splits and seeds.
    zscore  one dataset, the paper's GTN on z-scored against raw values: the official code feeds
            raw values, so z-scoring is a departure, measured here.

Data. GTN models read the series zero padded to the longest length across train and test (as the
paper did) with the true lengths for the padding mask; the baselines read them resampled to that
length by cubic interpolation (as dl-4-tsc did). Every channel is z-scored with TRAINING
statistics only (`suites.data.timeseries`), except in the raw arm of `zscore`.

Training. One stated rule for every neural method (see `profiles`): train until the training
loss stops improving, with a cap; `capped` = 1 flags a run the cap stopped. The learning rate is
halved on a plateau of the training loss (the paper's "reduced on plateau"; there is no validation
set). Every neural cell records both selections:
    acc           honest: the weights with the lowest training loss, evaluated on the test set once;
    acc_official  the official code's: the maximum test accuracy over evaluations every
                  `eval_every` epochs (optimistic: selection on the test set); gap = the difference.
The paper's GTN also records `acc_train_mask`: the same weights evaluated without the step-wise
mask, the official code's evaluation (it masks in training only). Accuracies are in percent.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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
from suites.harness import Diverged, Experiment

from .profiles import Budget, GTNProfile

# The paper's GTN: step-wise mask (causal) in training and evaluation, padding hidden.
_PAPER = {"kind": "gtn", "towers": "both", "fusion": "gate", "mask": True, "causal": True, "variant": "paper"}
METHODS: dict[str, dict[str, Any]] = {
    "gtn": _PAPER,
    "gtn_concat": {**_PAPER, "fusion": "concat"},
    "gtn_step": {**_PAPER, "towers": "step"},
    "gtn_channel": {**_PAPER, "towers": "channel"},
    "gtn_nomask": {**_PAPER, "causal": False},  # the paper's mask ablation: no step-wise mask
    # The released code: no tanh or projection before the gate, the mask in training only, no
    # padding mask, its own size and training recipe (`official`, `train_official`).
    "gtn_official": {
        "kind": "gtn",
        "towers": "both",
        "fusion": "gate",
        "mask": False,
        "causal": True,
        "causal_eval": False,
        "variant": "official",
        "size": "official",
    },  # fmt: skip
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
    return [
        Experiment(name="main", run=run, tasks=tasks, methods=METHODS, seeds=s.seeds),
        Experiment(
            name="zscore",
            run=run,
            tasks={s.zscore_dataset: {"name": s.zscore_dataset}},
            methods=ZSCORE_METHODS,
            seeds=s.seeds,
        ),  # fmt: skip
    ]


# --------------------------------------------------------------------------------------------- one cell


def run(cell, ctx) -> dict[str, float]:
    s: GTNProfile = ctx.settings
    method = cell.method_kwargs
    kind = method["kind"]
    form = "raw" if method.get("raw") else ("padded" if kind == "gtn" else "resampled")
    ds = dataset(cell.task_kwargs["name"], ctx.data_dir, form)
    if kind == "minirocket":
        return run_minirocket(ds, cell.seed, s, ctx.threads)
    model = build_model(method, ds, s)
    budget = s.budget("official" if method.get("size") == "official" else kind)
    return train_and_evaluate(model, ds, budget, s.eval_every, cell.seed, ctx.device)


def build_model(method: dict[str, Any], ds: TimeSeriesDataset, s: GTNProfile) -> torch.nn.Module:
    C, T, K = ds.n_channels, ds.n_steps, ds.n_classes
    kind = method["kind"]
    if kind == "gtn":
        size = s.official if method.get("size") == "official" else s.gtn
        switches = {k: method[k] for k in ("towers", "fusion", "mask", "causal", "variant")}
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


class StopRule:
    """Stop once the training loss has gone `patience` epochs without improving on the best so far
    by more than `min_delta` (absolute, in nats, as Keras' EarlyStopping counts it)."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best, self.stale = math.inf, 0

    def update(self, loss: float) -> bool:
        if loss < self.best - self.min_delta:
            self.best, self.stale = loss, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


def make_optimizer(model: torch.nn.Module, budget: Budget) -> torch.optim.Optimizer:
    optimizers = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad, "adadelta": torch.optim.Adadelta}
    return optimizers[budget.optimizer](model.parameters(), lr=budget.lr)


def _forward(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor):
    out = model(x, lengths)
    return (out.logits, out.gate) if hasattr(out, "logits") else (out, None)


@torch.no_grad()
def evaluate(model, X, L, y, batch: int = 256) -> tuple[float, np.ndarray | None]:
    """Accuracy (%) and the mean gate weights (step, channel) over the set, if the model has a gate."""
    model.eval()
    correct, gates = 0, []
    for i in range(0, len(X), batch):
        logits, gate = _forward(model, X[i : i + batch], L[i : i + batch])
        correct += int((logits.argmax(-1) == y[i : i + batch]).sum())
        if gate is not None:
            gates.append(gate.double().sum(0))
    mean_gate = (torch.stack(gates).sum(0) / len(X)).cpu().numpy() if gates else None
    return 100.0 * correct / len(X), mean_gate


def train_and_evaluate(
    model: torch.nn.Module, ds: TimeSeriesDataset, budget: Budget, eval_every: int, seed: int, device: str
) -> dict[str, float]:
    """Train by the budget rule; report both selections (see the module docstring)."""
    dev = torch.device(device)
    model.to(dev)
    X, L, y = (torch.from_numpy(a).to(dev) for a in (ds.X_train, ds.len_train, ds.y_train))
    test = [torch.from_numpy(a).to(dev) for a in (ds.X_test, ds.len_test, ds.y_test)]
    _, gate_init = evaluate(model, *test)  # the control of the gate claim: the gate before training
    opt = make_optimizer(model, budget)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=budget.plateau_patience)
    stop = StopRule(budget.stop_patience, budget.min_delta)
    order = torch.Generator().manual_seed(seed)  # the minibatch order, from the cell's seed

    best_loss, best_epoch, best_state, stopped = math.inf, 0, None, False
    official: list[float] = []
    train_s, epoch = 0.0, 0
    while epoch < budget.max_epochs and not stopped:
        epoch += 1
        model.train()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        total = 0.0
        for idx in torch.randperm(len(X), generator=order).split(budget.batch_size):
            idx = idx.to(dev)
            loss = F.cross_entropy(_forward(model, X[idx], L[idx])[0], y[idx])
            if not torch.isfinite(loss):
                raise Diverged(f"training loss {loss.item()} at epoch {epoch}", metrics={"epochs": float(epoch)})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_s += time.perf_counter() - start
        epoch_loss = total / len(X)
        plateau.step(epoch_loss)
        stopped = stop.update(epoch_loss)
        if epoch_loss < best_loss:  # the paper's rule: keep the model with the best training loss
            best_loss, best_epoch, best_state = epoch_loss, epoch, copy.deepcopy(model.state_dict())
        if epoch % eval_every == 0 or stopped or epoch == budget.max_epochs:  # the official rule: watch the test set
            official.append(evaluate(model, *test)[0])

    model.load_state_dict(best_state)
    acc, gate = evaluate(model, *test)
    metrics = {
        "acc": acc,
        "acc_official": max(official),
        "gap": max(official) - acc,
        "acc_last": official[-1],  # the model after the final epoch (no selection at all)
        "train_acc": evaluate(model, X, L, y)[0],
        "best_train_loss": best_loss,
        "best_epoch": float(best_epoch),
        "epochs": float(epoch),
        "capped": float(not stopped),  # 1: the cap ended training while the loss still improved
        "evals": float(len(official)),
        "train_s": train_s,
        "s_per_epoch": train_s / epoch,
        "n_params": float(sum(p.numel() for p in model.parameters())),
    }
    if gate is not None:
        metrics["gate_step"], metrics["gate_channel"] = float(gate[0]), float(gate[1])
        metrics["gate_step_init"] = float(gate_init[0])
        # How much further from an even split training moved the gate than initialisation had it.
        metrics["gate_shift"] = abs(float(gate[0]) - 0.5) - abs(float(gate_init[0]) - 0.5)
    cfg = getattr(model, "cfg", None)
    if isinstance(cfg, GTNConfig) and cfg.causal and cfg.causal_eval:
        model.cfg = replace(cfg, causal_eval=False)  # the official evaluation: no mask at test time
        metrics["acc_train_mask"] = evaluate(model, *test)[0]
        metrics["mask_eval_gain"] = acc - metrics["acc_train_mask"]
        model.cfg = cfg
    return metrics


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
    return {"acc": acc, "train_s": train_s}
