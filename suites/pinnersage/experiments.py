"""Run functions: users -> embeddings -> K candidates -> per-user hit and recall.

Every retrieval cell returns `hit` and `recall` as 1-D arrays with one entry per test user, in the
order of `Users.user_ids`, which depends only on the task and seed, so every method of a task is
paired user by user (the user is the independent unit). Item embeddings (item2vec, MovieLens) and
synthetic populations are built once per (task, seed) and cached in the process.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import lru_cache

import numpy as np

from impl import pinnersage as ps
from impl.item2vec import Item2VecConfig
from suites.harness import Experiment
from suites.harness.training import TrainingRecord

from .data import Users, movielens_users, synthetic_users

# Ward cut: one alpha for every task, fixed from the cluster counts of the training histories before
# any retrieval was scored at it (median MovieLens user 9-17 clusters, 10th percentile 2-5; the
# paper's light users have 3-5, its heavy users 75-100); the served embeddings are the top 3.
TASKS = {
    "movielens": {"kind": "movielens", "protocol": "global", "alpha": 1.5},
    "movielens_lastn": {"kind": "movielens", "protocol": "per_user", "alpha": 1.5},
    "synthetic": {"kind": "synthetic", "alpha": 1.5},
}

# PinnerSage as served (Ward + medoid + lambda 0.01, top 3) and one-change variants (Table 3).
RETRIEVAL_METHODS = {
    "last": {"baseline": "last"},
    "mean": {"baseline": "mean"},
    "decay": {"baseline": "decay", "lam": 0.01},
    "pinnersage_sample1": {"select": "sample", "n_embeddings": 1},
    "pinnersage": {},
    "centroid": {"representative": "centroid"},
    "kmeans": {"linkage": "kmeans", "kmeans_k": 5},
    "complete": {"linkage": "complete"},
    "lambda_0": {"lam": 0.0},
    "lambda_0.1": {"lam": 0.1},
}


@lru_cache(maxsize=8)
def _users(task: str, seed: int, data_dir: str | None, settings, device: str) -> Users:
    spec = TASKS[task]
    if spec["kind"] == "synthetic":
        return synthetic_users(settings.synthetic_users, n_targets=settings.n_targets, seed=seed)
    i2v = Item2VecConfig(dim=settings.item2vec_dim)  # ppmi_svd: closed-form skip-gram embeddings
    return movielens_users(
        data_dir, settings.cut_quantile, n_targets=settings.n_targets, protocol=spec["protocol"], item2vec=i2v,
        seed=seed, device=device,
    )  # fmt: skip


def users_for(cell, ctx) -> Users:
    return _users(cell.task, cell.seed, ctx.data_dir, ctx.settings, ctx.device)


def embeddings(users: Users, method_kwargs: dict, alpha: float, seed: int, progress: bool) -> list[np.ndarray]:
    kwargs = dict(method_kwargs)
    if "baseline" in kwargs:
        return ps.embed_users(users.histories, users.item_emb, kwargs["baseline"], kwargs.get("lam", 0.01),
                              seed=seed, progress=progress)  # fmt: skip
    cfg = ps.PinnerSageConfig(alpha=alpha, **kwargs)
    return ps.embed_users(users.histories, users.item_emb, cfg, seed=seed, progress=progress)


def _provenance(users: Users) -> dict:
    info = {"n_users": float(len(users.targets)), "synthetic": float(users.info.get("synthetic", False))}
    losses = users.info.get("item2vec_losses")
    if losses:  # a trained learner (sgns, not the default): its record, by its rule (impl/item2vec.py:
        # the last epoch's relative loss drop below `tol`), `cap` when its epochs ran out first
        reason = "cap" if users.info["item2vec_still_falling"] else "converged"
        info.update(TrainingRecord(reason, len(losses), len(losses), len(losses)).metrics())
        info["item2vec_final_loss"] = float(losses[-1])
    return info


def run_retrieval(cell, ctx) -> dict:
    users = users_for(cell, ctx)
    method = {**cell.method_kwargs, **cell.kwargs}
    vectors = embeddings(users, method, cell.task_kwargs["alpha"], cell.seed, ctx.show_progress)
    cands = ps.retrieve(vectors, users.item_emb, ctx.settings.k, exclude=users.exclude, device=ctx.device)
    hit, recall = ps.hit_and_recall(cands, users.targets)
    out = {"hit": hit, "recall": recall, "embeddings_per_user": float(np.mean([len(v) for v in vectors]))}
    if cell.method == "pinnersage" and cell.experiment == "retrieval":  # once per task and seed: Ward's spread
        cfg = ps.PinnerSageConfig(alpha=cell.task_kwargs["alpha"])
        counts = [ps.ward_labels(users.item_emb[h[0]].astype(np.float64), cfg.alpha).max() + 1
                  for h in users.histories]  # fmt: skip
        out["ward_clusters_median"] = float(np.median(counts))
    return {**out, **_provenance(users)}


def run_ann(cell, ctx) -> dict:
    """PinnerSage's candidates from exact search or HNSW; HNSW also reports its overlap with exact."""
    users = users_for(cell, ctx)
    vectors = embeddings(users, {}, cell.task_kwargs["alpha"], cell.seed, ctx.show_progress)
    exact = ps.retrieve(vectors, users.item_emb, ctx.settings.k, exclude=users.exclude, device=ctx.device)
    cands = exact
    out = {}
    if cell.method == "hnsw":
        index = ps.hnsw_index(users.item_emb, **cell.method_kwargs)
        cands = ps.retrieve(vectors, users.item_emb, ctx.settings.k, exclude=users.exclude, index=index)
        out["ann_overlap"] = ps.overlap(cands, exact)
    hit, recall = ps.hit_and_recall(cands, users.targets)
    return {"hit": hit, "recall": recall, **out, **_provenance(users)}


@lru_cache(maxsize=2)
def _catalogue(n_items: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic clustered item vectors (dim 32, 200 topics) and queries near them; labelled synthetic."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, 32))
    items = centres[rng.integers(0, 200, n_items)] + 0.5 * rng.normal(size=(n_items, 32))
    queries = centres[rng.integers(0, 200, n_queries)] + 0.5 * rng.normal(size=(n_queries, 32))
    return items.astype(np.float32), queries.astype(np.float32)


def run_speed(cell, ctx) -> dict:
    """Queries per second of exact top-k (torch) vs HNSW (faiss), one value per timing block; search
    only (index built and warmed up first). HNSW's recall@k against exact is per query."""
    s = ctx.settings
    items, queries = _catalogue(s.speed_items, s.speed_queries, cell.seed)
    k = s.k
    if cell.method == "exact":
        search = lambda q: ps.exact_search(q, items, k, device=ctx.device)[1]
    else:
        index = ps.hnsw_index(items, **cell.method_kwargs)
        search = lambda q: ps.hnsw_search(index, q, k)[1]
    search(queries[:64])  # warm-up
    qps = []
    for _ in range(s.speed_blocks):
        start = time.perf_counter()
        found = search(queries)
        qps.append(len(queries) / (time.perf_counter() - start))
    out = {"qps": np.array(qps)}
    if cell.method != "exact":
        truth = ps.exact_search(queries, items, k)[1]
        out["ann_recall"] = ps.overlap(list(found), list(truth))
    return out


def build(settings) -> list[Experiment]:
    tasks = {t: TASKS[t] for t in settings.tasks}
    hnsw = {"M": 32, "ef_construction": 200, "ef_search": 64}
    return [
        Experiment("retrieval", run_retrieval, tasks=tasks, methods=RETRIEVAL_METHODS, seeds=settings.seeds),
        Experiment("n_embeddings", run_retrieval, tasks=tasks, methods={"pinnersage": {}},
                   grid={"n_embeddings": [1, 2, 3, 4, 5]}, seeds=settings.seeds),
        Experiment("ann", run_ann, tasks=tasks, methods={"exact": {}, "hnsw": hnsw}, seeds=settings.seeds),
        Experiment("speed", run_speed, tasks={"catalogue_synthetic": {}}, methods={"exact": {}, "hnsw": hnsw},
                   seeds=1, exclusive=True),
    ]  # fmt: skip


def describe(settings) -> dict:
    return asdict(settings)
