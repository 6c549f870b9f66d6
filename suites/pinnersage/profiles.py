"""How big each profile is. A profile changes sizes, never code paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PinnerSageProfile:
    seeds: int  # seeds per cell: importance sampling (all), population draw (synthetic); MovieLens vectors are deterministic
    tasks: tuple[str, ...]  # which user sets: movielens, movielens_lastn (real), synthetic (labelled so)
    synthetic_users: int  # users in the synthetic population
    item2vec_dim: int  # item embedding size (skip-gram PPMI + truncated SVD, impl/item2vec.py)
    k: int = 50  # candidates retrieved per user (split across the user's embeddings)
    n_targets: int = 10  # next actions held out per user
    cut_quantile: float = 0.7  # movielens: the global cut time is this quantile of all timestamps
    speed_items: int = 20_000  # catalogue size (synthetic vectors) of the exact-vs-HNSW throughput test
    speed_queries: int = 2_000  # queries per timing block
    speed_blocks: int = 5  # timing blocks (the independent units of the speed claim)
    threads: int = 1  # torch/faiss threads per cell (the machine is shared)


PROFILES = {
    "smoke": PinnerSageProfile(
        seeds=1, tasks=("synthetic",), synthetic_users=60, item2vec_dim=16,
        speed_items=3_000, speed_queries=300, speed_blocks=3,
    ),
    "quick": PinnerSageProfile(
        seeds=2, tasks=("movielens", "movielens_lastn", "synthetic"), synthetic_users=600,
        item2vec_dim=32,
    ),
    # CPU, well inside 90 min with --jobs 2: 5 seeds, 3,000 synthetic users, 64-d item vectors, a
    # 100,000-item catalogue for the speed claim. Estimated, not run end to end: quick's measured
    # cell times (340 cell-seconds in all at 2 seeds and 600 users) scaled by seeds (x2.5) and by
    # synthetic users (x5) give ~1,650 cell-seconds, ~15 min on 2 cores. Nothing here trains by
    # iteration (item vectors are PPMI + truncated SVD, closed form), so no run has a stopping rule.
    "standard": PinnerSageProfile(
        seeds=5, tasks=("movielens", "movielens_lastn", "synthetic"), synthetic_users=3_000,
        item2vec_dim=64, speed_items=100_000, speed_queries=5_000, speed_blocks=10,
    ),
    "full": PinnerSageProfile(
        seeds=5, tasks=("movielens", "movielens_lastn", "synthetic"), synthetic_users=5_000,
        item2vec_dim=64, speed_items=200_000, speed_queries=10_000, speed_blocks=10,
    ),
}  # fmt: skip
