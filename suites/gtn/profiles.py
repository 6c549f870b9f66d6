"""The GTN suite's profiles: one typed setting per field, so a misspelt one fails at load time.

A profile changes sizes, never code paths. The training budget follows one stated rule for every
neural method (GTN, its ablations, the official variant and the baselines): train until the
training loss stops improving (no improvement above `min_delta` nats for `stop_patience`
epochs), never beyond `max_epochs`; a run that the cap stopped is flagged (`capped` = 1). This
scales each author's budget to the profile: dl-4-tsc's 2000/1500/5000 epochs and GTN's 100 are
caps in `full`, and smaller caps here, with the same stopping rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suites.data.timeseries import GTN_PAPER_DATASETS


@dataclass(frozen=True)
class ModelSize:
    """A GTN's sizes (the official code's names in brackets)."""

    d_model: int  # token width [d_model]
    d_hidden: int  # feed-forward width [d_hidden]
    n_heads: int  # attention heads [h]
    d_qk: int  # per-head query/key size [q]
    d_v: int  # per-head value size [v]
    n_layers: int  # encoders per tower [N]
    dropout: float = 0.2  # [dropout]


@dataclass(frozen=True)
class Budget:
    """One training recipe: optimiser, batch, and the stopping rule with its cap."""

    optimizer: str  # adam | adagrad | adadelta
    lr: float
    batch_size: int
    max_epochs: int  # the cap; a run stopped by it is flagged `capped`
    stop_patience: int  # epochs without an improvement > min_delta before stopping
    plateau_patience: int  # epochs without improvement before the learning rate is halved
    min_delta: float = 1e-3  # improvement of the training loss (nats, absolute) that counts


@dataclass(frozen=True)
class GTNProfile:
    datasets: tuple[str, ...]  # the main experiment's datasets (absent paper datasets are added as not run)
    seeds: int  # seeds per cell; the claims across datasets average them (datasets are the units)
    gtn: ModelSize  # the paper's GTN and its ablations
    official: ModelSize  # the official variant (its default: 512/1024/8/8/8/8)
    zscore_dataset: str  # where raw values are compared with z-scored ones (the official code feeds raw values)
    baseline_width: float  # FCN/ResNet/MLP layer sizes times this
    train_gtn: Budget
    train_official: Budget
    train_fcn: Budget
    train_resnet: Budget
    train_mlp: Budget
    eval_every: int  # the official selection evaluates the test set every this many epochs
    minirocket_kernels: int
    threads: int | None = None  # intra-op threads per cell (None: cores / jobs)
    notes: str = field(default="", compare=False)  # what this profile leaves out, for the report

    def budget(self, kind: str) -> Budget:
        return getattr(self, f"train_{kind}")


# The UEA datasets of the 2018 archive that are in the data directory here (JapaneseVowels and
# Libras are also paper datasets). `full` runs them all.
UEA_HERE = (
    "ArticularyWordRecognition", "AtrialFibrillation", "BasicMotions", "ERing", "Epilepsy",
    "FingerMovements", "Handwriting", "LSST", "NATOPS", "PenDigits", "RacketSports", "StandWalkJump",
    "UWaveGestureLibrary",
)  # fmt: skip

_TINY = ModelSize(d_model=8, d_hidden=16, n_heads=2, d_qk=4, d_v=4, n_layers=1)
_SMOKE_BUDGET = Budget("adam", 1e-3, 32, max_epochs=3, stop_patience=2, plateau_patience=5)
_SMALL = ModelSize(d_model=16, d_hidden=32, n_heads=2, d_qk=8, d_v=8, n_layers=1)
_QUICK_BUDGET = Budget("adam", 1e-3, 32, max_epochs=20, stop_patience=3, plateau_patience=2)
_OFFICIAL = ModelSize(d_model=512, d_hidden=1024, n_heads=8, d_qk=8, d_v=8, n_layers=8)

PROFILES: dict[str, GTNProfile] = {
    "smoke": GTNProfile(
        datasets=("ECG", "Libras"),  # one with padding (the mask paths), one without
        seeds=2,
        gtn=_TINY,
        official=_TINY,
        zscore_dataset="ECG",
        baseline_width=1 / 16,
        train_gtn=_SMOKE_BUDGET,
        train_official=_SMOKE_BUDGET,
        train_fcn=_SMOKE_BUDGET,
        train_resnet=_SMOKE_BUDGET,
        train_mlp=_SMOKE_BUDGET,
        eval_every=1,
        minirocket_kernels=84,
        # Small models: a second intra-op thread costs more than it gives on a busy 2-core machine.
        threads=1,
    ),
    "quick": GTNProfile(
        # The paper datasets present here (Wafer as the converted file), UWaveGestureLibrary as a
        # labelled proxy for the paper's UWave (another split), and three small UEA datasets.
        datasets=(
            "ECG",
            "JapaneseVowels",
            "Libras",
            "Wafer",
            "UWaveGestureLibrary",
            "BasicMotions",
            "ERing",
            "RacketSports",
        ),  # fmt: skip
        seeds=2,
        gtn=_SMALL,
        # The official default (512 wide, 8 encoders, batch 3) costs about 6 s an epoch on ECG
        # here: 10 minutes a run. quick runs the official variant at the small size instead.
        official=_SMALL,
        zscore_dataset="ECG",
        baseline_width=0.125,
        train_gtn=_QUICK_BUDGET,
        train_official=_QUICK_BUDGET,
        train_fcn=_QUICK_BUDGET,
        train_resnet=_QUICK_BUDGET,
        train_mlp=_QUICK_BUDGET,
        eval_every=5,  # as the official code
        minirocket_kernels=10_000,
        threads=1,
        notes="a small GTN (d_model 16, one encoder per tower, Adam 1e-3, batch 32) and eighth-width baselines, "
        "each trained until its training loss stops improving (3 epochs without 0.001 nats), capped at 20 epochs; "
        "the official variant at the same small size and recipe",
    ),
    "full": GTNProfile(
        # The paper's configuration and dl-4-tsc's budgets as caps. The `paper` variant's Linear(T*d -> d)
        # per tower is large on long series (about 503M parameters on WalkvsRun, T = 1918): about 6 GB
        # with Adagrad's state, which fits a data-centre GPU; `full` needs --device cuda in practice.
        datasets=(*GTN_PAPER_DATASETS, *UEA_HERE),
        seeds=5,
        gtn=_OFFICIAL,
        official=_OFFICIAL,
        zscore_dataset="ECG",
        baseline_width=1.0,
        train_gtn=Budget("adagrad", 1e-4, 3, max_epochs=100, stop_patience=20, plateau_patience=10),
        train_official=Budget("adagrad", 1e-4, 3, max_epochs=100, stop_patience=100, plateau_patience=100),
        train_fcn=Budget("adam", 1e-3, 16, max_epochs=2000, stop_patience=100, plateau_patience=50),
        train_resnet=Budget("adam", 1e-3, 64, max_epochs=1500, stop_patience=100, plateau_patience=50),
        train_mlp=Budget("adadelta", 1.0, 16, max_epochs=5000, stop_patience=400, plateau_patience=200),
        eval_every=5,
        minirocket_kernels=10_000,
        notes="the paper's configuration; the official variant trains its fixed 100 epochs (stop_patience 100)",
    ),
}
