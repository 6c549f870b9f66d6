"""The two kinds of users the suite evaluates on, in one shape (`Users`).

movielens (real): MovieLens 100K with one global cut time. Item embeddings (item2vec-style, PPMI-SVD) are
learned from the interactions before the cut only; a test user is anyone with at least `min_history`
actions before the cut and at least one after it; history = their actions before the cut (times in
days), t_now = the cut, targets = their first `n_targets` actions after it (MovieLens users rate in
bursts, so "next day" would leave most users without targets; we state next-N instead).

movielens_lastn (real, protocol="per_user"): every user's last `n_targets` actions mark the
targets: from the second of the first of them on, every action is a target candidate (the first
`n_targets` are kept), everything before is history, t_now = that second; item2vec learns from
all histories. Actions within one second are ordered by a seeded shuffle (both protocols). All 943 users are tested, at a cost the global cut does not have: the embeddings see
other users' actions that happened after a given user's targets (no user's own targets, though).

synthetic (labelled so everywhere): items scattered around `n_topics` topic centres on the unit
sphere; each user has 1..`max_interests` interests (a small neighbourhood of items within one topic each) with Dirichlet weights, each active
during a random window of the last `days` days; some windows end before t_now (lapsed interests).
Actions fall at uniform times, each on an interest active at that moment (in proportion to its
weight); targets come from the interests still active at t_now. The truth (topic of every action)
is kept, so cluster recovery and the expected ordering multi > single are testable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DAY = 86_400.0


@dataclass
class Users:
    name: str
    item_emb: np.ndarray  # [n_items, d] float32; a zero row = an item the embedding never saw
    histories: list[tuple[np.ndarray, np.ndarray, float]]  # per user: item indices, times (days), t_now
    targets: list[np.ndarray]  # per user: the held-out next items
    user_ids: np.ndarray  # the order every per-user array follows
    truth: list[np.ndarray] = field(default_factory=list)  # synthetic only: topic of every history action
    info: dict = field(default_factory=dict)  # provenance: sizes, training loss, protocol

    @property
    def exclude(self) -> list[np.ndarray]:
        return [h[0] for h in self.histories]


def synthetic_users(
    n_users: int,
    n_topics: int = 30,
    items_per_topic: int = 200,
    local: int = 30,
    dim: int = 16,
    spread: float = 0.35,
    max_interests: int = 5,
    actions: tuple[int, int] = (20, 120),
    days: float = 90.0,
    n_targets: int = 10,
    seed: int = 0,
) -> Users:
    """See the module docstring. An interest is narrow: the `local` items of its topic nearest to a
    random item of that topic (a user likes some films of a genre, not the genre); the user's actions
    and targets in that interest are drawn from those items, targets among the ones not yet seen."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_topics, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic_of_item = np.repeat(np.arange(n_topics), items_per_topic)
    emb = centres[topic_of_item] + spread * rng.normal(size=(len(topic_of_item), dim)) / np.sqrt(dim)
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    histories, targets, truth = [], [], []
    for _ in range(n_users):
        m = int(rng.integers(1, max_interests + 1))
        topics = rng.choice(n_topics, size=m, replace=False)
        hoods = []
        for topic in topics:
            members = np.arange(topic * items_per_topic, (topic + 1) * items_per_topic)
            seed_item = emb[rng.choice(members)]
            hoods.append(members[np.argsort(-(emb[members] @ seed_item), kind="stable")[:local]])
        weight = rng.dirichlet(np.ones(m))
        start = rng.uniform(0, days * 0.7, size=m)
        end = np.minimum(days, start + rng.uniform(days * 0.2, days, size=m))
        end[int(rng.integers(m))] = days  # at least one interest is still active at t_now
        n = int(rng.integers(actions[0], actions[1] + 1))
        times = np.sort(rng.uniform(0, days, size=n))
        active = (times[:, None] >= start[None]) & (times[:, None] <= end[None])
        active[~active.any(1), int(np.argmax(end))] = True
        p = active * weight
        p /= p.sum(1, keepdims=True)
        which = (p.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
        items = np.array([hoods[j][rng.integers(local)] for j in which], dtype=np.int64)
        live = weight * (end >= days)
        chosen = rng.choice(m, size=n_targets, p=live / live.sum())
        pool = [np.setdiff1d(h, items) for h in hoods]  # a target the user already has is no test
        picks = {int(rng.choice(pool[j])) for j in chosen if len(pool[j])}
        histories.append((items, times, days))
        targets.append(np.array(sorted(picks), dtype=np.int64))
        truth.append(topics[which])
    keep = [i for i, t in enumerate(targets) if len(t)]
    return Users(
        name="synthetic",
        item_emb=emb,
        histories=[histories[i] for i in keep],
        targets=[targets[i] for i in keep],
        user_ids=np.array(keep),
        truth=[truth[i] for i in keep],
        info={
            "synthetic": True,
            "n_items": len(emb),
            "n_topics": n_topics,
            "local": local,
            "dim": dim,
            "spread": spread,
        },  # fmt: skip
    )


def movielens_users(
    data_dir,
    cut_quantile: float = 0.8,
    min_history: int = 5,
    n_targets: int = 10,
    protocol: str = "global",
    item2vec=None,
    seed: int = 0,
    device: str = "cpu",
) -> Users:
    """See the module docstring; `item2vec` is an Item2VecConfig (learner and size of the item vectors)."""
    from impl.item2vec import Item2VecConfig, item_embeddings
    from suites.data.movielens import load_movielens

    inter, _, _ = load_movielens(data_dir)
    # MovieLens stamps many ratings of one user in the same second. Their order within a second is
    # unknown: a seeded shuffle decides it (not the item id), so "next" never means "lowest id".
    inter = inter.assign(tie=np.random.default_rng(seed).permutation(len(inter)))
    inter = inter.sort_values(["timestamp", "tie"], kind="stable")
    item_ids = np.sort(inter["item_id"].unique())
    inter["idx"] = np.searchsorted(item_ids, inter["item_id"].to_numpy())
    if protocol == "global":
        cut = float(np.quantile(inter["timestamp"].to_numpy(), cut_quantile))
        train, test = inter[inter["timestamp"] < cut], inter[inter["timestamp"] >= cut]
    elif protocol == "per_user":
        cut = math.nan
        # A time-boundary cut per user: the second of the user's n_targets-th last action starts the
        # targets, and every action in that second or later is on the target side, so no target
        # shares a second with the history (with a rank cut, 45% of users had a target in the
        # same second as their last history action, which favours the `last` baseline).
        last = inter.groupby("user_id").cumcount(ascending=False) < n_targets
        first_target = inter[last].groupby("user_id")["timestamp"].min()
        after = inter["timestamp"].to_numpy() >= inter["user_id"].map(first_target).to_numpy()
        train, test = inter[~after], inter[after]
    else:
        raise ValueError(f"unknown MovieLens protocol {protocol!r}; choose 'global' or 'per_user'")
    sequences = [g["idx"].to_numpy() for _, g in train.groupby("user_id", sort=True)]
    result = item_embeddings(sequences, len(item_ids), item2vec or Item2VecConfig(), seed=seed, device=device)
    before = {u: g for u, g in train.groupby("user_id", sort=True)}
    histories, targets, users = [], [], []
    for u, g in test.groupby("user_id", sort=True):
        h = before.get(u)
        if h is None or len(h) < min_history:
            continue
        t_now = cut if protocol == "global" else float(g["timestamp"].iloc[0])
        histories.append((h["idx"].to_numpy(), h["timestamp"].to_numpy() / DAY, t_now / DAY))
        targets.append(g["idx"].to_numpy()[:n_targets])
        users.append(u)
    n_unseen = sum(int((~result.seen[t]).sum()) for t in targets)
    return Users(
        name="movielens" if protocol == "global" else "movielens_lastn",
        item_emb=result.embeddings,
        histories=histories,
        targets=targets,
        user_ids=np.array(users),
        info={
            "synthetic": False,
            "protocol": protocol,
            "n_items": len(item_ids),
            "cut_unix": cut,
            "train_interactions": len(train),
            "targets_unseen_in_training": n_unseen,
            "item2vec_learner": (item2vec or Item2VecConfig()).learner,
            "item2vec_losses": result.losses,
            "item2vec_still_falling": result.still_falling,
        },
    )
