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
    unknown = sorted((set(settings.datasets) | set(settings.sweep_datasets)) - set(TASKS))
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
            experiments=("coldstart", "sensitivity"),
        ),
        DatasetSpec(
            "citeulike",
            (*(f"heater/citeulike/{s}.csv" for s in ("train", "vali", "test")), "citeulike-a/item-tag.dat"),
            "Heater repository (the paper's item-cold-start split) and CiteULike-a (item tags)",
            experiments=("coldstart", "sensitivity"),
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
        "item text, which is not available. The family heater.content sets the suite's content-only KNN beside "
        "the paper's KNN: on CiteULike a tag KNN at or above the paper's text KNN (.2192) says the tags are no "
        "weaker a content signal than the text, so a gap between Heater and the paper there cannot be put down "
        "to the content; read the CiteULike rows in direction and size only. MovieLens-100K is not in the paper "
        "(no paper values). DropoutNet runs as published: it regresses the pretrained scores U.V and drops the "
        "CF vectors of both sides (its own hidden width equals Heater's, not the original 800-400). Stopping "
        "rules (profiles.py, training.py): BPR by its training loss, every neural method by validation Recall "
        "with the same patience and cap; a run is converged only when both rules fired, and every verdict "
        "needs converged runs (else inconclusive, decided at standard)."
    ),
)
