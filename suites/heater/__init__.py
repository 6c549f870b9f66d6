"""Heater (Zhu et al., SIGIR 2020): cold-start recommendation with randomized training and a
mixture-of-experts transform, against DropoutNet, LinMap, content KNN, popularity and random, on
LastFM (user cold start), CiteULike (item cold start, tags as content) and MovieLens-100K (both)."""

from __future__ import annotations

from suites.data import DatasetUnavailable
from suites.harness import DatasetSpec, Suite

from .claims import CLAIMS
from .experiments import TASKS, build
from .figures import figures
from .profiles import PROFILES


def check(settings, data_dir) -> None:
    """--dataset names must be tasks this suite knows (a typo fails before the run)."""
    unknown = sorted(set(settings.datasets) - set(TASKS))
    if unknown:
        raise DatasetUnavailable(f"heater has no dataset {', '.join(unknown)}; choose from {', '.join(TASKS)}")


SUITE = Suite(
    name="heater",
    title="Heater: cold-start recommendation (Zhu et al. SIGIR 2020)",
    claims=CLAIMS,
    profiles=PROFILES,
    build=build,
    figures=figures,
    datasets=(
        DatasetSpec(
            "lastfm",
            (*(f"heater/lastfm/{s}.csv" for s in ("train", "vali", "test")), "heater/lastfm/user_content.npz"),
            "Heater repository (hetrec2011-lastfm-2k, the paper's user-cold-start split)",
            experiments=("coldstart",),
        ),
        DatasetSpec(
            "citeulike",
            (*(f"heater/citeulike/{s}.csv" for s in ("train", "vali", "test")), "citeulike-a/item-tag.dat"),
            "Heater repository (the paper's item-cold-start split) and CiteULike-a (item tags)",
            experiments=("coldstart",),
        ),
        DatasetSpec(
            "movielens",
            tuple(f"movielens-100k/ml-100k.{k}" for k in ("inter", "item", "user")),
            "GroupLens MovieLens 100K (RecBole files)",
            experiments=("coldstart",),
        ),
    ),
    extra="recsys",
    check=check,
    notes=(
        "CiteULike item content here is the item TAGS (citeulike-a item-tag.dat, tf-idf -> SVD); the paper used "
        "item text, which is not available. MovieLens-100K is not in the paper (no paper values). "
        "Training budget: every neural method of a task gets the same epochs, optimiser and schedule "
        "(see profiles.py); runs whose loss still fell at the end carry loss_still_falling = 1 (bpr_loss_still_falling for the "
        "BPR pretraining), and every verdict's notes count the flagged runs behind it."
    ),
)
