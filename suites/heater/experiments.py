"""Run functions of the Heater suite: one cell = one method trained and evaluated on one task.

Every cell returns per-user arrays (Recall@20 and NDCG@20, the claims' metrics; the other metrics
and cut-offs as means) of the TEST users, sorted by user id and restricted to users with at least
one relevant candidate, so that all methods of a task line up user by user. Neural methods are
trained to the suite's stopping rule and chosen by validation Recall (sum over K), then reported on
test (training.py). Every cell carries its training record (stop_reason, train_steps, best_step,
last_improvement); BPR pretraining is shared by every method of a (task, seed), cached in the process.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from impl.recsys import knn_scores, linmap, popularity
from suites.data.recsys import ColdStart
from suites.harness import Experiment, StepCost

from .training import NOTHING_TO_TRAIN, combined, evaluate, load_task, pretrain, rank_of, time_epoch, train_neural

# Per task: the official optimiser schedule and L2 (LastFM's script for user cold start, CiteULike's
# for item cold start; MovieLens follows the script of its protocol).
TASKS = {
    "lastfm": {"dataset": "lastfm", "reg": 1e-3, "decay_every": 2, "decay": 0.9},
    "citeulike": {"dataset": "citeulike", "reg": 1e-4, "decay_every": 10, "decay": 0.8},
    "movielens-item": {"dataset": "movielens-item", "reg": 1e-4, "decay_every": 10, "decay": 0.8},
    "movielens-user": {"dataset": "movielens-user", "reg": 1e-3, "decay_every": 2, "decay": 0.9},
}

NEURAL = {
    "heater": {"model": "heater"},  # p = 0.5, K = 5 experts, alpha = 1e-4 (the paper's defaults)
    "dropoutnet": {"model": "dropoutnet"},  # as published: regresses U.V, drops both sides' CF vectors
}
# Table 3's ablations: each removes one mechanism (they are also points of Figure 7's sweeps).
ABLATIONS = {
    "heater_p0": {"model": "heater", "p": 0.0},  # no randomized training ("without RT")
    "heater_k1": {"model": "heater", "n_experts": 1},  # no mixture of experts ("without MoET")
    "heater_alpha0": {"model": "heater", "alpha": 0.0},  # no guide term ("without SC")
}
SHALLOW = {
    "linmap": {"model": "linmap"},
    "knn": {"model": "knn"},
    "popularity": {"model": "popularity"},
    "random": {"model": "random"},
}
DEFAULTS = {"p": 0.5, "n_experts": 5, "alpha": 1e-4}

PER_USER = ("recall@20", "ndcg@20")


def p_method(p: float) -> str:
    return f"heater_p{p:g}"


def k_method(k: int) -> str:
    return f"heater_k{k:d}"


def alpha_method(alpha: float) -> str:
    return f"heater_alpha{alpha:g}"


def sweep_methods(settings) -> dict[str, dict]:
    """Figure 7: Heater with one default changed per method (`heater` itself is every sweep's default)."""
    sweeps = {"heater": NEURAL["heater"]}
    for name, values, field in ((p_method, settings.p_sweep, "p"), (k_method, settings.k_sweep, "n_experts"),
                                (alpha_method, settings.alpha_sweep, "alpha")):  # fmt: skip
        for value in values:
            if value != DEFAULTS[field]:
                sweeps.setdefault(name(value), {"model": "heater", field: value})
    return sweeps


def methods(settings) -> dict[str, dict]:
    """Table 2's methods (and Table 3's ablations where the profile runs them)."""
    return {**NEURAL, **(ABLATIONS if settings.ablations else {}), **SHALLOW}


def build(settings) -> list[Experiment]:
    """`coldstart`: Tables 2-3 on every dataset of the profile; `sensitivity`: Figure 7's sweeps on
    the profile's sweep datasets (its own `heater` cells, so every sweep point pairs with them)."""
    cost = StepCost(steps=settings.epochs, time_step=time_epoch)
    experiments = [
        Experiment(
            name="coldstart",
            run=run_coldstart,
            tasks={t: TASKS[t] for t in settings.datasets},
            methods=methods(settings),
            seeds=settings.seeds,
            cost=cost,
        )  # fmt: skip
    ]
    sweeps = sweep_methods(settings)
    if settings.sweep_datasets and settings.sweep_seeds and len(sweeps) > 1:
        experiments.append(
            Experiment(
                name="sensitivity",
                run=run_coldstart,
                tasks={t: TASKS[t] for t in settings.sweep_datasets},
                methods=sweeps,
                seeds=settings.sweep_seeds,
                cost=cost,
            )  # fmt: skip
        )
    return experiments


def run_coldstart(cell, ctx):
    s = ctx.settings
    task, method = cell.task_kwargs, cell.method_kwargs
    data = load_task(task["dataset"], ctx.data_dir, s.citeulike_content_dim, s.slice_users, s.slice_items)
    device = ctx.device
    U, V, bpr = pretrain(data, cell.seed, rank_of(s, task["dataset"]), s, device)
    start = time.perf_counter()
    extra = {}
    if method["model"] in ("heater", "dropoutnet"):
        scores_fn, extra, own = train_neural(data, U, V, task, method, s, cell.seed, device)
        record = combined(bpr, own)
    else:
        scores_fn = _shallow(data, U, V, method["model"], s, cell.seed)
        record = bpr if method["model"] == "linmap" else NOTHING_TO_TRAIN
    seconds = time.perf_counter() - start
    out = evaluate(scores_fn, data, "test", device)
    # Per-user arrays where a claim pairs users (@20); the other cut-offs as means (figures, tables).
    row = {k: (v if k in PER_USER else float(v.mean())) for k, v in out.items()}
    row.update(extra)
    row.update(record.metrics())
    row.update({"train_seconds": seconds, "test_users": float(len(out["recall@20"])),
                "bpr_stop_reason": bpr.metrics()["stop_reason"], "bpr_epochs": float(bpr.train_steps)})  # fmt: skip
    return row


def _shallow(data: ColdStart, U, V, model: str, s, seed: int):
    """Score functions of the closed-form and memory-based baselines."""
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
