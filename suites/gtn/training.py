"""How every neural method of the GTN suite is trained, selected and timed.

One rule for all (see `profiles`): the harness's `EarlyStopping` on the epoch's mean training loss,
with the authors' optimiser, batch and learning-rate schedule (halved on a plateau of the training
loss: the paper's "reduced on plateau", dl-4-tsc's ReduceLROnPlateau; there is no validation set).
Every neural cell records both selections:
    acc           honest: the weights with the lowest training loss, evaluated on the test set once
                  (the paper's stated rule, and dl-4-tsc's ModelCheckpoint on the training loss);
    acc_official  the official code's: the maximum test accuracy over evaluations every
                  `eval_every` epochs (optimistic: selection on the test set); gap = the difference;
and the harness's training record (stop_reason, train_steps = epochs, best_step, last_improvement).
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from impl.gtn import GTNConfig
from suites.data.timeseries import TimeSeriesDataset
from suites.harness import Diverged
from suites.harness.training import EarlyStopping, TrainingRecord

from .profiles import Budget


def batch_size(budget: Budget, n_train: int) -> int:
    """The recipe's batch; dl-4-tsc's min(n_train / 10, batch) where the recipe says so."""
    return max(1, min(budget.batch_size, int(n_train / 10))) if budget.tenth_batch else budget.batch_size


def make_optimizer(model: torch.nn.Module, budget: Budget) -> torch.optim.Optimizer:
    if budget.optimizer == "adadelta":  # Keras' Adadelta (dl-4-tsc's MLP): rho 0.95, epsilon 1e-7
        return torch.optim.Adadelta(model.parameters(), lr=budget.lr, rho=0.95, eps=1e-7)
    optimizers = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad}
    return optimizers[budget.optimizer](model.parameters(), lr=budget.lr)


def forward(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor):
    out = model(x, lengths)
    return (out.logits, out.gate) if hasattr(out, "logits") else (out, None)


@torch.no_grad()
def evaluate(model, X, L, y, batch: int = 256) -> tuple[float, np.ndarray | None]:
    """Accuracy (%) and the mean gate weights (step, channel) over the set, if the model has a gate."""
    model.eval()
    correct, gates = 0, []
    for i in range(0, len(X), batch):
        logits, gate = forward(model, X[i : i + batch], L[i : i + batch])
        correct += int((logits.argmax(-1) == y[i : i + batch]).sum())
        if gate is not None:
            gates.append(gate.double().sum(0))
    mean_gate = (torch.stack(gates).sum(0) / len(X)).cpu().numpy() if gates else None
    return 100.0 * correct / len(X), mean_gate


def train_steps(model, opt, X, L, y, batches, epoch: int, record=None) -> float:
    """One pass of optimizer steps over `batches` (index tensors); returns the summed loss x batch.

    The only training step of the suite: the epoch loop and the cost timer both call it.
    """
    model.train()
    total = 0.0
    for idx in batches:
        loss = F.cross_entropy(forward(model, X[idx], L[idx])[0], y[idx])
        if not torch.isfinite(loss):
            metrics = record.metrics() if record is not None else {}
            raise Diverged(f"training loss {loss.item()} at epoch {epoch}", metrics=metrics)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def train_and_evaluate(
    model: torch.nn.Module, ds: TimeSeriesDataset, budget: Budget, eval_every: int, seed: int, device: str
) -> dict[str, float]:
    """Train by the one stopping rule; report both selections and the training record."""
    dev = torch.device(device)
    model.to(dev)
    X, L, y = (torch.from_numpy(a).to(dev) for a in (ds.X_train, ds.len_train, ds.y_train))
    test = [torch.from_numpy(a).to(dev) for a in (ds.X_test, ds.len_test, ds.y_test)]
    _, gate_init = evaluate(model, *test)  # the control of the gate claim: the gate before training
    opt = make_optimizer(model, budget)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=budget.plateau_patience, min_lr=budget.min_lr
    )
    stop = EarlyStopping(budget.stop_patience, budget.min_delta, mode="min", cap=budget.max_epochs)
    order = torch.Generator().manual_seed(seed)  # the minibatch order, from the cell's seed
    size = batch_size(budget, len(X))

    best_state, official, train_s, stopped = None, [], 0.0, False
    while not stopped:
        epoch = stop.checks + 1
        batches = [idx.to(dev) for idx in torch.randperm(len(X), generator=order).split(size)]
        _sync(dev)
        start = time.perf_counter()
        diverged = TrainingRecord("diverged", epoch, stop.best_step, stop.last_improvement)
        epoch_loss = train_steps(model, opt, X, L, y, batches, epoch, diverged) / len(X)
        _sync(dev)
        train_s += time.perf_counter() - start
        plateau.step(epoch_loss)
        stopped = stop.update(epoch_loss)
        if stop.improved:  # the paper's rule: keep the model with the best training loss
            best_state = copy.deepcopy(model.state_dict())
        if epoch % eval_every == 0 or stopped:  # the official rule: watch the test set
            official.append(evaluate(model, *test)[0])

    model.load_state_dict(best_state)
    acc, gate = evaluate(model, *test)
    metrics = {
        "acc": acc,
        "acc_official": max(official),
        "gap": max(official) - acc,
        "acc_last": official[-1],  # the model after the final epoch (no selection at all)
        "train_acc": evaluate(model, X, L, y)[0],
        "best_train_loss": stop.best,
        "evals": float(len(official)),
        "train_s": train_s,
        "s_per_epoch": train_s / stop.checks,
        "n_params": float(sum(p.numel() for p in model.parameters())),
        **stop.record().metrics(),
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


def seconds_per_epoch(model, ds: TimeSeriesDataset, budget: Budget, device: str, warmup: int = 2, timed: int = 3):
    """Seconds per training epoch of `model` on `ds`, from a few timed optimizer steps after warm-up
    (the same `train_steps` as training), scaled to the epoch's number of batches."""
    dev = torch.device(device)
    model.to(dev)
    X, L, y = (torch.from_numpy(a).to(dev) for a in (ds.X_train, ds.len_train, ds.y_train))
    size = batch_size(budget, len(X))
    opt = make_optimizer(model, budget)
    idx = torch.arange(min(size, len(X)), device=dev)
    train_steps(model, opt, X, L, y, [idx] * warmup, 0)
    _sync(dev)
    start = time.perf_counter()
    train_steps(model, opt, X, L, y, [idx] * timed, 0)
    _sync(dev)
    per_step = (time.perf_counter() - start) / timed
    return per_step * -(-len(X) // size)
