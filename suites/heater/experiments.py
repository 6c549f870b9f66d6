"""Run functions of the Heater suite: one cell = one method trained and evaluated on one task.

Every cell returns per-user arrays (Recall@20 and NDCG@20, the claims' metrics; the other metrics
and cut-offs as means) of the TEST users, sorted by user id and restricted to users with at least
one relevant candidate, so that all methods of a task line up user by user. Neural methods are chosen by validation Recall (sum over K) and
reported on test. BPR pretraining is shared by every method of a (task, seed) and cached in the
process.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import torch

from impl.heater import FitConfig, Heater, HeaterConfig, fit
from impl.recsys import (
    KS,
    BPRConfig,
    DropoutNet,
    DropoutNetConfig,
    knn_scores,
    linmap,
    popularity,
    ranking_metrics,
    standardize,
    train_bpr,
)
from suites.data.recsys import LOADERS, ColdStart, slice_cold_start
from suites.harness import Diverged, Experiment

# Per task: the official optimiser schedule and L2 (LastFM's script for user cold start, CiteULike's
# for item cold start; MovieLens follows the script of its protocol).
TASKS = {
    "lastfm": {"dataset": "lastfm", "reg": 1e-3, "decay_every": 2, "decay": 0.9},
    "citeulike": {"dataset": "citeulike", "reg": 1e-4, "decay_every": 10, "decay": 0.8},
    "movielens-item": {"dataset": "movielens-item", "reg": 1e-4, "decay_every": 10, "decay": 0.8},
    "movielens-user": {"dataset": "movielens-user", "reg": 1e-3, "decay_every": 2, "decay": 0.9},
}

NEURAL = {
    "heater": {"model": "heater"},
    "heater_p0": {"model": "heater", "p": 0.0},  # no randomized training
    "heater_k1": {"model": "heater", "n_experts": 1},  # no mixture of experts
    "heater_alpha0": {"model": "heater", "alpha": 0.0},  # no guide term
    "dropoutnet": {"model": "dropoutnet"},
}
SHALLOW = {
    "linmap": {"model": "linmap"},
    "knn": {"model": "knn"},
    "popularity": {"model": "popularity"},
    "random": {"model": "random"},
}


PER_USER = ("recall@20", "ndcg@20")


def p_method(p: float) -> str:
    return f"heater_p{p:g}"


def methods(settings) -> dict[str, dict]:
    sweep = {p_method(p): {"model": "heater", "p": float(p)} for p in settings.p_sweep if p != 0.5}
    return {**NEURAL, **sweep, **SHALLOW}


def build(settings) -> list[Experiment]:
    tasks = {name: TASKS[name] for name in settings.datasets}
    return [
        Experiment(name="coldstart", run=run_coldstart, tasks=tasks, methods=methods(settings), seeds=settings.seeds)
    ]


# ----------------------------------------------------------------------------------------------
# Data and pretraining (cached: every method of a task reads the same split and the same BPR)


@lru_cache(maxsize=4)
def load_task(dataset: str, data_dir: str | None, content_dim: int, slice_users: int, slice_items: int) -> ColdStart:
    data = LOADERS[dataset](data_dir, content_dim=content_dim)
    if slice_users:
        data = slice_cold_start(data, slice_users, slice_items)
    return data


@lru_cache(maxsize=4)
def pretrain(data: ColdStart, seed: int, epochs: int, rank: int, device: str):
    torch.manual_seed(seed)
    cfg = BPRConfig(dim=rank, epochs=epochs)
    U, V, losses = train_bpr(data.n_users, data.n_items, data.train[:, 0], data.train[:, 1], cfg, device)
    return U, V, losses


def _tensor(x, device):
    """Content rows as a torch tensor: sparse when mostly zeros (LastFM's adjacency)."""
    if sp.issparse(x):
        x = x.tocsr()
        crow, col = (torch.as_tensor(a.astype(np.int64)) for a in (x.indptr, x.indices))
        values = torch.as_tensor(x.data, dtype=torch.float32)
        return torch.sparse_csr_tensor(crow, col, values, x.shape, check_invariants=False).to(device)
    return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)


class Inputs:
    """Feeds the two-tower models: CF vectors (standardised as the official code: the cold side
    clipped to +-1, the warm side to +-5) and the cold side's content; a cold entity (all-zero CF
    row) always reads its content."""

    def __init__(self, data: ColdStart, U: np.ndarray, V: np.ndarray, device: str):
        self.data, self.device = data, device
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
        if self.data.cold == "user":
            kw.update(u_content=self._content(users), u_drop=drop)
        else:
            kw.update(v_content=self._content(items), v_drop=drop)
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


# ----------------------------------------------------------------------------------------------
# The run function


def run_coldstart(cell, ctx):
    s = ctx.settings
    task, method = cell.task_kwargs, cell.method_kwargs
    data = load_task(task["dataset"], ctx.data_dir, s.citeulike_content_dim, s.slice_users, s.slice_items)
    device = ctx.device
    U, V, bpr_losses = pretrain(data, cell.seed, s.bpr_epochs, s.rank, device)
    start = time.perf_counter()
    extra = {}
    if method["model"] in ("heater", "dropoutnet"):
        scores_fn, extra = _train_neural(data, U, V, task, method, s, cell.seed, device)
    else:
        scores_fn = _shallow(data, U, V, method["model"], s, cell.seed)
    seconds = time.perf_counter() - start
    out = evaluate(scores_fn, data, "test", device)
    # Per-user arrays where a claim pairs users (@20); the other cut-offs as means (figures, tables).
    row = {k: (v if k in PER_USER else float(v.mean())) for k, v in out.items()}
    row.update(extra)
    row.update({"train_seconds": seconds, "test_users": float(len(out["recall@20"])),
                "bpr_loss_still_falling": float(len(bpr_losses) < 2 or bpr_losses[-1] < 0.99 * bpr_losses[-2])})  # fmt: skip
    return row


def _train_neural(data, U, V, task, method, s, seed, device):
    inputs = Inputs(data, U, V, device)
    side = {"user_content_dim": inputs.content_dim} if data.cold == "user" else {"item_content_dim": inputs.content_dim}
    if method["model"] == "heater":
        cfg = HeaterConfig(
            **side, rank_in=s.rank, hidden=(s.rank,), rank_out=s.rank, reg=task["reg"],
            alpha=method.get("alpha", 1e-4), n_experts=method.get("n_experts", 5),
        )  # fmt: skip
        model = Heater(cfg).to(device)
    else:
        model = DropoutNet(
            DropoutNetConfig(**side, rank_in=s.rank, hidden=(s.rank,), rank_out=s.rank, reg=task["reg"])
        ).to(device)
    fit_cfg = FitConfig(
        epochs=s.epochs, lr=s.lr, batch=s.batch, neg=s.neg, p=method.get("p", 0.5), epoch_positives=s.epoch_positives,
        decay_every=task["decay_every"], decay=task["decay"],
    )  # fmt: skip

    def scores(model_, users, items):
        u_emb, v_emb = inputs.embed(model_, users, items)
        return u_emb @ v_emb.t()

    def validate(model_):  # fit calls it under no_grad
        return vali_score(evaluate(lambda u, i: scores(model_, u, i), data, "vali", device))

    try:
        result = fit(model, inputs, data.train[:, 0], data.train[:, 1], data.warm_items, fit_cfg, validate,
                     np.random.default_rng(seed), device)  # fmt: skip
    except FloatingPointError as exc:
        raise Diverged(str(exc)) from exc
    extra = {"best_epoch": float(result.best_epoch), "vali_recall_sum": result.best_vali,
             "final_train_loss": result.losses[-1], "loss_still_falling": float(result.still_falling)}  # fmt: skip
    return (lambda u, i: _no_grad(scores, model, u, i)), extra


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


def _shallow(data: ColdStart, U, V, model: str, s, seed: int):
    train = data.train
    if model == "random":
        rng = np.random.default_rng(seed)
        return lambda users, items: rng.random((len(users), len(items)), dtype=np.float32)
    if model == "popularity":
        pop = popularity(data.n_items, train[:, 1])
        rng = np.random.default_rng(seed)  # ties (every cold item has zero) broken at random
        return lambda users, items: np.tile(pop[items], (len(users), 1)) + rng.random((len(users), len(items))) * 1e-3
    warm_side = np.unique(train[:, 0] if data.cold == "user" else train[:, 1])
    if model == "linmap":
        own, other = (U, V) if data.cold == "user" else (V, U)
        W = linmap(data.content[warm_side], own[warm_side])

        def linmap_scores(users, items):
            if data.cold == "user":
                return (data.content[users] @ W) @ V[items].T
            return U[users] @ (data.content[items] @ W).T

        return linmap_scores
    if model == "knn":
        R = sp.csr_matrix((np.ones(len(train)), (train[:, 0], train[:, 1])), shape=(data.n_users, data.n_items))

        def knn(users, items):
            if data.cold == "user":  # neighbours among training users, their items
                return knn_scores(
                    data.content[users], data.content[warm_side], R[warm_side][:, items].toarray(), s.knn_k
                )
            # cold items: neighbours among warm items; a user scores an item by its neighbours' interactions
            item_scores = knn_scores(data.content[items], data.content[warm_side], R[users][:, warm_side].T.tocsr(), s.knn_k)  # fmt: skip
            return item_scores.T

        return knn
    raise ValueError(f"unknown method model {model!r}")
