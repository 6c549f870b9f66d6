"""PinnerSage (Pal et al., KDD 2020): multi-embedding users from Ward clusters, medoids and importance.

Regenerates the paper's offline comparison (Table 3, Figure 7) on MovieLens 100K with item2vec-style item
embeddings (skip-gram co-occurrences, PPMI + truncated SVD) learned on the training period only, and on synthetic users with known interests
(labelled synthetic everywhere). See data.py for the temporal protocols and claims.py for the claims.
"""

from __future__ import annotations

from suites.harness import DatasetSpec, Suite

from .claims import CLAIMS
from .experiments import build
from .figures import figures
from .profiles import PROFILES

SUITE = Suite(
    name="pinnersage",
    title="PinnerSage: multi-modal user embeddings (Pal et al., KDD 2020)",
    claims=CLAIMS,
    profiles=PROFILES,
    build=build,
    figures=figures,
    datasets=(
        DatasetSpec(
            "movielens-100k",
            ("movielens-100k/ml-100k.inter", "movielens-100k/ml-100k.item", "movielens-100k/ml-100k.user"),
            "GroupLens MovieLens 100K (RecBole atomic files)",
        ),
    ),
    extra="recsys",
    notes=(
        "Item embeddings: item2vec-style, the closed form of skip-gram with negative sampling (Levy & Goldberg "
        "2014): window-5 co-occurrences over each user's time-ordered training items, shifted positive PMI, "
        "truncated SVD to 32 dimensions; learned on the training period only, deterministic, so no training "
        "budget to state (the trained SGNS variant is in impl/item2vec.py). Ward cut alpha = 1.5 for every task, "
        "fixed from the cluster counts of the training histories. movielens: global cut at the 70% time quantile, targets = each user's first "
        "10 actions after it. movielens_lastn: each user's last 10 actions held out. Recall@50 per user, "
        "candidates split round-robin across a user's embeddings, history items excluded. Synthetic users "
        "and the speed catalogue are SYNTHETIC."
    ),
    regression=(
        "pinnersage.movielens.count.grow",
        "pinnersage.movielens.count.taper",
    ),  # real MovieLens, about a minute
)
