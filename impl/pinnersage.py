"""PinnerSage (Pal et al., KDD 2020): a user as a few medoids of Ward clusters of their actions.

For one user with action items P (m x d, fixed item embeddings) at times T (days):
  1. cluster P with Ward agglomerative clustering (scipy), cut where the merge distance exceeds
     alpha, optionally capped at `max_clusters` clusters;
  2. represent each cluster C by its medoid argmin_{m in C} sum_{j in C} ||P_m - P_j||^2;
  3. importance(C) = sum_{i in C} exp(-lambda (T_now - T_i))  (lambda per day; 0 = frequency);
  4. serve the `n_embeddings` most important medoids (or sample them in proportion to importance).
Retrieval: each embedding fetches its nearest items (exact cosine or HNSW) and the lists are
blended round-robin into one candidate list of size K.

Variants for the paper's ablations (Table 3): `representative="centroid"`; `linkage="kmeans"`
(k = `kmeans_k`, scikit-learn) or `linkage="complete"` (cut at the number of clusters Ward gives the
same user, so only the merge criterion differs). Single-embedding baselines: last item, mean,
time-decayed average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from tqdm.auto import tqdm

LINKAGES = ("ward", "complete", "kmeans")
REPRESENTATIVES = ("medoid", "centroid")
SELECTIONS = ("top", "sample")
BASELINES = ("last", "mean", "decay")


@dataclass(frozen=True)
class PinnerSageConfig:
    alpha: float = 1.0  # Ward cut: stop merging where scipy's merge height exceeds alpha
    max_clusters: int | None = None  # optional cap on the number of clusters per user
    linkage: str = "ward"  # ward | complete | kmeans
    kmeans_k: int = 5  # clusters for the k-means variant (the paper's k = 5)
    representative: str = "medoid"  # medoid | centroid
    lam: float = 0.01  # importance decay per day
    n_embeddings: int = 3  # embeddings served per user
    select: str = "top"  # top (by importance) | sample (in proportion to importance, without replacement)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("linkage", self.linkage, LINKAGES),
            ("representative", self.representative, REPRESENTATIVES),
            ("select", self.select, SELECTIONS),
        ):
            if value not in allowed:
                raise ValueError(f"PinnerSageConfig.{name}={value!r}: choose one of {allowed}")
        if self.alpha <= 0 or self.n_embeddings < 1 or self.lam < 0:
            raise ValueError("PinnerSageConfig needs alpha > 0, n_embeddings >= 1 and lam >= 0")


@dataclass
class UserEmbedding:
    vectors: np.ndarray  # [k, d] the served embeddings, most important first (top) or in draw order
    importance: np.ndarray  # [k] their importance
    labels: np.ndarray  # [m] cluster label 0..c-1 of every action
    members: np.ndarray  # [k] the action index of each medoid (-1 for a centroid)
    n_clusters: int


def _check(P: np.ndarray, T: np.ndarray | None = None) -> None:
    if P.ndim != 2 or len(P) == 0:
        raise ValueError(f"a user needs a 2-D array of at least one action embedding (got shape {P.shape})")
    if T is not None and T.shape != (len(P),):
        raise ValueError(f"timestamps must have one entry per action: {T.shape} vs {len(P)} actions")


def ward_labels(P: np.ndarray, alpha: float, max_clusters: int | None = None) -> np.ndarray:
    """Ward clusters of the rows of P cut at merge height alpha (at most max_clusters); labels 0..c-1."""
    _check(P)
    if len(P) == 1:
        return np.zeros(1, dtype=np.int64)
    Z = linkage(P, method="ward")
    labels = fcluster(Z, t=alpha, criterion="distance")
    if max_clusters is not None and labels.max() > max_clusters:
        labels = fcluster(Z, t=max_clusters, criterion="maxclust")
    return _relabel(labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels as 0..c-1 in order of first appearance (scipy numbers from 1, k-means arbitrarily)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)


def cluster(P: np.ndarray, cfg: PinnerSageConfig, seed: int = 0) -> np.ndarray:
    """Cluster labels of one user's actions under the configured linkage."""
    labels = ward_labels(P, cfg.alpha, cfg.max_clusters)
    if cfg.linkage == "ward" or len(P) == 1:
        return labels
    if cfg.linkage == "complete":
        c = int(labels.max()) + 1
        return _relabel(fcluster(linkage(P, method="complete"), t=c, criterion="maxclust"))
    from sklearn.cluster import KMeans

    k = min(cfg.kmeans_k, len(np.unique(P, axis=0)))
    return _relabel(KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(P))


def medoids(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each cluster 0..c-1, the index of the member minimising the sum of squared distances to the others."""
    out = np.empty(int(labels.max()) + 1, dtype=np.int64)
    sq = (P * P).sum(1)
    for c in range(len(out)):
        idx = np.flatnonzero(labels == c)
        X = P[idx]
        # sum_j ||x_m - x_j||^2 = n ||x_m||^2 - 2 x_m . sum_j x_j + sum_j ||x_j||^2
        cost = len(idx) * sq[idx] - 2.0 * X @ X.sum(0) + sq[idx].sum()
        out[c] = idx[int(np.argmin(cost))]
    return out


def centroids(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([P[labels == c].mean(0) for c in range(int(labels.max()) + 1)])


def importance(labels: np.ndarray, T: np.ndarray, t_now: float, lam: float) -> np.ndarray:
    """Per cluster: sum over its actions of exp(-lam (t_now - t_i)), times in days."""
    if np.any(np.asarray(T) - t_now > 1e-9):
        raise ValueError("an action lies after t_now: importance is defined on past actions only")
    weights = np.exp(-lam * (t_now - np.asarray(T, dtype=np.float64)))
    return np.bincount(labels, weights=weights, minlength=int(labels.max()) + 1)


def pinnersage(
    P: np.ndarray, T: np.ndarray, t_now: float, cfg: PinnerSageConfig, rng: np.random.Generator | None = None
) -> UserEmbedding:
    """The served embeddings of one user (see the module docstring)."""
    P, T = np.asarray(P, dtype=np.float64), np.asarray(T, dtype=np.float64)
    _check(P, T)
    seed = 0 if rng is None else int(rng.integers(2**31 - 1))
    labels = cluster(P, cfg, seed)
    imp = importance(labels, T, t_now, cfg.lam)
    c = len(imp)
    k = min(cfg.n_embeddings, c)
    if cfg.select == "top":
        chosen = np.argsort(-imp, kind="stable")[:k]  # ties: the cluster seen first wins
    else:
        if rng is None:
            raise ValueError("select='sample' needs a seeded numpy Generator (rng=...)")
        chosen = rng.choice(c, size=k, replace=False, p=imp / imp.sum())
    if cfg.representative == "medoid":
        members = medoids(P, labels)[chosen]
        vectors = P[members]
    else:
        members = np.full(k, -1, dtype=np.int64)
        vectors = centroids(P, labels)[chosen]
    return UserEmbedding(vectors.astype(np.float32), imp[chosen], labels, members, c)


def single_embedding(P: np.ndarray, T: np.ndarray, t_now: float, kind: str, lam: float = 0.01) -> np.ndarray:
    """Baselines with one embedding: the last action, the mean, or the exp(-lam dt)-weighted mean; [1, d]."""
    P, T = np.asarray(P, dtype=np.float64), np.asarray(T, dtype=np.float64)
    _check(P, T)
    if kind == "last":
        v = P[int(np.argmax(T))]  # ties: the earliest listed among the latest
    elif kind == "mean":
        v = P.mean(0)
    elif kind == "decay":
        w = np.exp(-lam * (t_now - T))
        v = (w[:, None] * P).sum(0) / w.sum()
    else:
        raise ValueError(f"unknown single-embedding baseline {kind!r}; choose one of {BASELINES}")
    return v[None, :].astype(np.float32)


def embed_users(
    histories: Sequence[tuple[np.ndarray, np.ndarray, float]],
    item_emb: np.ndarray,
    method: str | PinnerSageConfig,
    lam: float = 0.01,
    seed: int = 0,
    progress: bool = True,
) -> list[np.ndarray]:
    """Embeddings of many users: histories[u] = (item indices, times in days, t_now); `method` is a
    PinnerSageConfig or a baseline name. One seeded generator drives all sampling, in user order."""
    rng = np.random.default_rng(seed)
    out = []
    for items, T, t_now in tqdm(histories, desc="users", leave=False, disable=not progress):
        P = item_emb[np.asarray(items)]
        if isinstance(method, PinnerSageConfig):
            out.append(pinnersage(P, T, t_now, method, rng).vectors)
        else:
            out.append(single_embedding(P, T, t_now, method, lam))
    return out


# ---------------------------------------------------------------------------------------- retrieval
def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x, dtype=np.float32), where=n > 0).astype(np.float32)


def exact_search(queries: np.ndarray, items: np.ndarray, k: int, device: str = "cpu", chunk: int = 4096):
    """Exact cosine top-k of every query over all items (torch matmul); (scores, indices) [Q, k]."""
    items_t = torch.as_tensor(_normalise(items), device=device)
    scores, index = [], []
    for start in range(0, len(queries), chunk):
        q = torch.as_tensor(_normalise(queries[start : start + chunk]), device=device)
        s, i = torch.topk(q @ items_t.T, k=min(k, len(items)), dim=1)
        scores.append(s.cpu().numpy())
        index.append(i.cpu().numpy())
    return np.concatenate(scores), np.concatenate(index)


def hnsw_index(items: np.ndarray, M: int = 32, ef_construction: int = 200, ef_search: int = 128):
    """faiss IndexHNSWFlat over L2-normalised items with inner product (= cosine)."""
    import faiss

    index = faiss.IndexHNSWFlat(items.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = ef_search
    index.add(_normalise(items))
    return index


def hnsw_search(index, queries: np.ndarray, k: int):
    import faiss

    index.hnsw.efSearch = max(index.hnsw.efSearch, k)  # HNSW cannot return more than efSearch results
    faiss.omp_set_num_threads(max(1, torch.get_num_threads()))
    scores, idx = index.search(_normalise(queries), k)
    return scores, idx


def retrieve(
    user_vectors: Sequence[np.ndarray],
    items: np.ndarray,
    k: int,
    exclude: Sequence[np.ndarray] = (),
    index=None,
    device: str = "cpu",
) -> list[np.ndarray]:
    """K candidates per user, split across the user's embeddings: each embedding's nearest items
    (excluding the user's `exclude` items), blended round-robin (most important embedding first)
    and deduplicated. Exact search unless an HNSW `index` is given."""
    queries = np.concatenate(user_vectors)
    owner = np.repeat(np.arange(len(user_vectors)), [len(v) for v in user_vectors])
    longest = max((len(e) for e in exclude), default=0)
    depth = min(len(items), k + longest)  # deep enough that k remain after removing history
    _, idx = hnsw_search(index, queries, depth) if index is not None else exact_search(queries, items, depth, device)
    out = []
    for u in range(len(user_vectors)):
        rows = idx[owner == u]
        banned = set(np.asarray(exclude[u]).tolist()) if exclude else set()
        lists = [[i for i in row.tolist() if i >= 0 and i not in banned] for row in rows]
        picked, seen = [], set()
        for rank in range(depth):
            for lst in lists:
                if rank < len(lst) and lst[rank] not in seen and len(picked) < k:
                    seen.add(lst[rank])
                    picked.append(lst[rank])
            if len(picked) >= k:
                break
        out.append(np.asarray(picked, dtype=np.int64))
    return out


def hit_and_recall(candidates: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per user: hit = 1 if any target is among the candidates; recall = share of targets retrieved."""
    hit, recall = np.zeros(len(targets)), np.zeros(len(targets))
    for u, (c, t) in enumerate(zip(candidates, targets, strict=True)):
        found = np.isin(np.asarray(t), c)
        hit[u], recall[u] = float(found.any()), float(found.mean()) if len(t) else np.nan
    return hit, recall


def overlap(approx: Sequence[np.ndarray], exact: Sequence[np.ndarray]) -> np.ndarray:
    """Per user: the share of exact-search candidates the approximate search also returned."""
    return np.array([np.isin(e, a).mean() if len(e) else np.nan for a, e in zip(approx, exact, strict=True)])
