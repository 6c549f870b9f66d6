"""Profiles of the Heater suite: a profile changes sizes, never code paths.

Training-budget rule (the same for every neural method of a task: Heater, its ablations and
DropoutNet): `epochs` passes over the training positives, each with `neg` fresh sampled negatives
per positive, momentum SGD at `lr` with the task's official decay, batch `batch`; the model kept is
the one with the best validation sum of Recall@{20,50,100}, evaluated after every epoch. A run whose
training loss still fell by more than 1% over its last epoch is flagged (`loss_still_falling` = 1).
BPR pretraining gets `bpr_epochs` epochs, shared by all methods of a (task, seed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeaterProfile:
    seeds: int  # training runs per (task, method); the split is fixed, the seed changes init and sampling
    datasets: tuple[str, ...]  # tasks to run: lastfm, citeulike, movielens-item, movielens-user
    epochs: int  # training epochs of every neural method (the budget rule above)
    rank: int  # CF vector, expert, shared-layer and output width (official 200)
    epoch_positives: int  # positives drawn per epoch (0 = all, the official epoch); a CPU budget cap
    lr: float  # momentum-SGD learning rate (official 0.005)
    batch: int  # pairs per step (official 1024)
    neg: int  # sampled negatives per positive (official 5)
    bpr_epochs: int  # BPR-MF pretraining epochs (200-d, lr 0.005, L2 1e-3)
    citeulike_content_dim: int  # SVD size of CiteULike's tag tf-idf (the paper: 300, from text)
    p_sweep: tuple[float, ...]  # randomized-training probabilities of the robustness claim (0.5 = Heater)
    knn_k: int  # neighbours of the content-KNN baseline
    slice_users: int = 0  # >0: keep this many users per split and `slice_items` items (smoke only)
    slice_items: int = 0
    threads: int = 1  # torch threads per cell (the runner applies it)


PROFILES = {
    # Seconds: a slice of LastFM, every code path (all methods, the p sweep, model selection).
    "smoke": HeaterProfile(
        seeds=1, datasets=("lastfm",), epochs=2, rank=32, epoch_positives=0, lr=0.005, batch=1024, neg=5, bpr_epochs=2,
        citeulike_content_dim=300, p_sweep=(0.1, 0.9), knn_k=20, slice_users=120, slice_items=400,
    ),
    # This machine (2 shared cores), about 5 minutes: all four tasks, two seeds, 64-d vectors, two
    # epochs of 10,000 positives each (+5 negatives each), batch 2048, learning rate raised to 0.05 so
    # that so short a budget gets somewhere, CiteULike tags reduced to 64 SVD dimensions. Far from
    # the paper's budget: the loss_still_falling flag says which runs were cut short.
    "quick": HeaterProfile(
        seeds=2, datasets=("lastfm", "citeulike", "movielens-item", "movielens-user"), epochs=2, rank=64,
        epoch_positives=10000, lr=0.05, batch=2048, neg=5, bpr_epochs=10, citeulike_content_dim=64,
        p_sweep=(0.1, 0.3, 0.7, 0.9), knn_k=50,
    ),
    # The official hyperparameters (GPU): 100 epochs, lr 0.005, batch 1024, 5 negatives.
    "full": HeaterProfile(
        seeds=5, datasets=("lastfm", "citeulike", "movielens-item", "movielens-user"), epochs=100, rank=200,
        epoch_positives=0, lr=0.005,
        batch=1024, neg=5, bpr_epochs=100, citeulike_content_dim=300, p_sweep=(0.1, 0.3, 0.7, 0.9), knn_k=50,
    ),
}  # fmt: skip
