"""How the Heater suite trains: BPR pretraining, the two-tower models' inputs, the stopping rules,
the training record of every run, and the measured cost of one epoch.

Stopping rules (one for every neural method of a task, written next to the profile's sizes):
- BPR pretraining: `EarlyStopping` on its training loss (mode min, `bpr_patience`, `bpr_min_delta`,
  cap `bpr_epochs`): a cold-start split has no held-out pairs of the warm side to validate BPR on.
- Heater, its ablations and sweeps, and DropoutNet: `EarlyStopping` on the validation sum of
  Recall@{20,50,100} after every epoch (mode max, `patience`, cap `epochs`); the model reported is
  the one of the best validation sum, as the official main_*.py keeps it.
A run is `converged` only when both its own rule and the BPR rule it starts from fired.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import torch

from impl.heater import FitConfig, Heater, HeaterConfig, drop_indicator, fit, sgd
from impl.recsys import KS, BPRConfig, DropoutNet, DropoutNetConfig, ranking_metrics, standardize, train_bpr
from suites.data.recsys import LOADERS, ColdStart, slice_cold_start
from suites.harness import Diverged
from suites.harness.training import EarlyStopping, TrainingRecord

# Closed-form or memory-based methods (KNN, popularity, random) train nothing: their rule is met
# by construction (zero steps of a zero-step rule). LinMap inherits the BPR record it is fitted on.
NOTHING_TO_TRAIN = TrainingRecord.fixed_budget(0, 0)


@lru_cache(maxsize=4)
def load_task(dataset: str, data_dir: str | None, content_dim: int, slice_users: int, slice_items: int) -> ColdStart:
    data = LOADERS[dataset](data_dir, content_dim=content_dim)
    if slice_users:
        data = slice_cold_start(data, slice_users, slice_items)
    return data


def rank_of(s, dataset: str) -> int:
    """The CF and model width of a dataset at a profile (CiteULike may run narrower: see profiles.py)."""
    return s.citeulike_rank if dataset == "citeulike" else s.rank


def bpr_rule(s) -> EarlyStopping:
    return EarlyStopping(patience=s.bpr_patience, min_delta=s.bpr_min_delta, mode="min", cap=s.bpr_epochs)


def model_rule(s) -> EarlyStopping:
    return EarlyStopping(patience=s.patience, min_delta=s.min_delta, mode="max", cap=s.epochs)


@lru_cache(maxsize=16)  # every (task, seed) of a profile: cells come method by method, seed by seed
def pretrain(data: ColdStart, seed: int, rank: int, s, device: str) -> tuple[np.ndarray, np.ndarray, TrainingRecord]:
    """BPR vectors of a (task, seed), shared by every method of it, and how BPR stopped."""
    torch.manual_seed(seed)
    rule = bpr_rule(s)
    cfg = BPRConfig(dim=rank, epochs=s.bpr_epochs)
    try:
        U, V, _ = train_bpr(data.n_users, data.n_items, data.train[:, 0], data.train[:, 1], cfg, device, stop=rule)
    except FloatingPointError as exc:
        raise Diverged(f"BPR pretraining: {exc}") from exc
    return U, V, rule.record()


def combined(bpr: TrainingRecord, own: TrainingRecord) -> TrainingRecord:
    """The record of a run on pretrained vectors: its own, unless BPR fell short of its rule (then
    BPR's reason: a model fitted to vectors that were still learning is not converged either)."""
    if own.stop_reason == "converged" and bpr.stop_reason != "converged":
        return replace(own, stop_reason=bpr.stop_reason)
    return own


def _tensor(x, device):
    """Content rows as a torch tensor: sparse when mostly zeros (LastFM's adjacency)."""
    if sp.issparse(x):
        x = x.tocsr()
        crow, col = (torch.as_tensor(a.astype(np.int64)) for a in (x.indptr, x.indices))
        values = torch.as_tensor(x.data, dtype=torch.float32)
        return torch.sparse_csr_tensor(crow, col, values, x.shape, check_invariants=False).to(device)
    return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)


class Inputs:
    """Feeds the two-tower models: CF vectors standardised as the official code (the cold side
    clipped to +-1, the range of the tanh transform that replaces it; the warm side to +-5) and
    the cold side's content. In training, drop column 0 goes to the cold side (Heater); with
    `both_sides` (DropoutNet) column 0 drops the user and column 1 the item CF vector. At
    evaluation a cold entity (all-zero CF row) always reads its content, a warm one its CF vector."""

    def __init__(self, data: ColdStart, U: np.ndarray, V: np.ndarray, device: str, both_sides: bool = False):
        self.data, self.device, self.both_sides = data, device, both_sides
        self.U = torch.as_tensor(standardize(U, 1.0 if data.cold == "user" else 5.0), device=device)
        self.V = torch.as_tensor(standardize(V, 1.0 if data.cold == "item" else 5.0), device=device)
        dense = data.content
        self.content = sp.csr_matrix(dense) if (dense != 0).mean() < 0.1 else dense
        self.content_dim = dense.shape[1]

    def _content(self, ids):
        return _tensor(self.content[ids], self.device)

    def __call__(self, users, items, drop):
        u, v = torch.as_tensor(users, device=self.device), torch.as_tensor(items, device=self.device)
        kw = {"u_pref": self.U[u], "v_pref": self.V[v]}
        key = "u" if self.data.cold == "user" else "v"
        kw[f"{key}_content"] = self._content(users if key == "u" else items)
        if drop is not None and self.both_sides:
            kw.update(u_drop=drop[:, 0:1], v_drop=drop[:, 1:2])
        elif drop is not None:
            kw[f"{key}_drop"] = drop[:, 0:1]
        return kw

    def embed(self, model, users, items):
        """Embeddings for evaluation; the indicator is 1 exactly for the cold (all-zero) rows."""
        kw = self(users, items, None)
        key = "u" if self.data.cold == "user" else "v"
        kw[f"{key}_drop"] = (kw[f"{key}_pref"].abs().sum(1, keepdim=True) == 0).float()
        u = model.user_embedding(kw["u_pref"], kw.get("u_content"), kw.get("u_drop"))
        v = model.item_embedding(kw["v_pref"], kw.get("v_content"), kw.get("v_drop"))
        return u, v


def evaluate(scores_fn, data: ColdStart, split: str, device: str) -> dict[str, np.ndarray]:
    users, items, rel = data.eval_split(split)
    scores = scores_fn(users, items)
    return ranking_metrics(torch.as_tensor(scores, device=device), torch.as_tensor(rel, device=device))


def vali_score(metrics) -> float:
    return float(sum(metrics[f"recall@{k}"].mean() for k in KS))


def build_model(data: ColdStart, inputs: Inputs, task, method, s):
    side = {"user_content_dim": inputs.content_dim} if data.cold == "user" else {"item_content_dim": inputs.content_dim}
    rank = rank_of(s, task["dataset"])
    if method["model"] == "heater":
        cfg = HeaterConfig(
            **side, rank_in=rank, hidden=(rank,), rank_out=rank, reg=task["reg"],
            alpha=method.get("alpha", 1e-4), n_experts=method.get("n_experts", 5),
        )  # fmt: skip
        return Heater(cfg)
    return DropoutNet(DropoutNetConfig(**side, rank_in=rank, hidden=(rank,), rank_out=rank, reg=task["reg"]))


def fit_config(task, method, s) -> FitConfig:
    dropout_net = method["model"] == "dropoutnet"
    return FitConfig(
        epochs=s.epochs, lr=s.lr, batch=s.batch, neg=s.neg, p=method.get("p", 0.5), sides=2 if dropout_net else 1,
        decay_every=task["decay_every"], decay=task["decay"],
    )  # fmt: skip


def train_neural(data, U, V, task, method, s, seed, device):
    """Train one neural method to its rule; returns (score function, metrics, its own record)."""
    dropout_net = method["model"] == "dropoutnet"
    inputs = Inputs(data, U, V, device, both_sides=dropout_net)
    torch.manual_seed(seed)  # the same initial weights whatever ran before in this process
    model = build_model(data, inputs, task, method, s).to(device)
    # DropoutNet regresses the pretrained scores U.V (the raw BPR vectors), Heater 0/1 targets.
    target = (lambda u, i: np.einsum("bd,bd->b", U[u], V[i])) if dropout_net else None

    def scores(model_, users, items):
        u_emb, v_emb = inputs.embed(model_, users, items)
        return u_emb @ v_emb.t()

    def validate(model_):  # fit calls it under no_grad
        return vali_score(evaluate(lambda u, i: scores(model_, u, i), data, "vali", device))

    rule = model_rule(s)
    try:
        result = fit(model, inputs, data.train[:, 0], data.train[:, 1], data.warm_items, fit_config(task, method, s),
                     validate, np.random.default_rng(seed), rule, target=target, device=device)  # fmt: skip
    except FloatingPointError as exc:
        raise Diverged(str(exc)) from exc
    extra = {"vali_recall_sum": result.best_vali, "final_train_loss": result.losses[-1]}

    def score_fn(u, i):
        with torch.no_grad():
            return scores(model, u, i)

    return score_fn, extra, rule.record()


def _bpr_epoch_seconds(data: ColdStart, rank: int, device: str) -> float:
    """Seconds per BPR epoch: one epoch over a 3-batch sample of the training pairs, scaled up."""
    n = min(len(data.train), 3 * BPRConfig.batch)
    start = time.perf_counter()
    train_bpr(data.n_users, data.n_items, data.train[:n, 0], data.train[:n, 1], BPRConfig(dim=rank, epochs=1), device)
    return (time.perf_counter() - start) * len(data.train) / n


def time_epoch(cell, ctx, steps: int = 6, warmup: int = 2) -> float:
    """Seconds per training epoch of this cell's model at this profile, from `steps` optimiser steps
    of the suite's own model and optimiser after `warmup` steps (random CF vectors: a step costs
    the same), scaled to the epoch's batches, plus one validation pass, plus the BPR pretraining
    (timed the same way) spread over the cap's epochs, as if every cell pretrained its own (cells of
    one process share it, so this is an upper bound)."""
    s, task, method = ctx.settings, cell.task_kwargs, cell.method_kwargs
    data = load_task(task["dataset"], ctx.data_dir, s.citeulike_content_dim, s.slice_users, s.slice_items)
    rank = rank_of(s, task["dataset"])
    bpr = _bpr_epoch_seconds(data, rank, ctx.device) * s.bpr_epochs / max(s.epochs, 1)
    if method["model"] not in ("heater", "dropoutnet"):  # closed form on the BPR vectors: BPR is the cost
        return bpr
    rng = np.random.default_rng(0)
    U = rng.normal(size=(data.n_users, rank)).astype(np.float32)
    V = rng.normal(size=(data.n_items, rank)).astype(np.float32)
    inputs = Inputs(data, U, V, ctx.device, both_sides=method["model"] == "dropoutnet")
    model = build_model(data, inputs, task, method, s).to(ctx.device).train()
    cfg = fit_config(task, method, s)
    opt = sgd(model, cfg, task["reg"])

    def step():
        idx = rng.integers(0, len(data.train), s.batch)
        drop = np.concatenate([drop_indicator(s.batch, cfg.p, rng) for _ in range(cfg.sides)], 1)
        u_emb, v_emb, extra = model(**inputs(data.train[idx, 0], data.train[idx, 1], torch.as_tensor(drop)))
        loss = (u_emb * v_emb).sum(1).pow(2).mean() + extra
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    batches = -(-len(data.train) * (1 + s.neg) // s.batch)
    per_epoch = (time.perf_counter() - start) / steps * batches
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        evaluate(lambda u, i: torch.matmul(*_pair(inputs.embed(model, u, i))), data, "vali", ctx.device)
    return per_epoch + (time.perf_counter() - start) + bpr


def _pair(embeddings):
    u, v = embeddings
    return u, v.t()
