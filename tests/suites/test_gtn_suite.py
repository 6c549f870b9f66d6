"""The GTN suite end to end on its smoke profile: every cell runs, every claim is judged.

The main test needs no real data: it writes two tiny synthetic datasets in UEA .ts format into a
temporary data directory and runs them by name (`--dataset`), which is also the check that a new
UEA dataset needs no code change. A second test runs the real smoke profile when CLAIMBENCH_DATA
is set.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from suites.data import ENV_VAR
from suites.data.timeseries import GTN_PAPER_DATASETS
from suites.gtn import CLAIMS, PROFILES, SUITE, absent_paper_datasets, build
from suites.gtn.experiments import METHODS, NEURAL
from suites.harness.judge import MEASURED, NOT_RUN, VERDICTS
from suites.harness.report import write_suite_report
from suites.harness.runner import RunOptions, run_suite
from suites.harness.training import RECORD_METRICS, stop_reason_name

HEADER = """@problemName {name}
@timeStamps false
@missing false
@univariate false
@dimensions {C}
@equalLength {equal}
@classLabel true {labels}
@data
"""


def write_ts(folder, name: str, n: int, C: int, K: int, lengths: tuple[int, int], seed: int) -> None:
    """A learnable toy problem: class k is a sine of frequency k+1 plus noise (synthetic data)."""
    rng = np.random.default_rng(seed)
    (folder / name).mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        lines = []
        for i in range(n):
            k = i % K
            T = int(rng.integers(lengths[0], lengths[1] + 1))
            t = np.linspace(0, 2 * np.pi, T)
            channels = [np.sin((k + 1) * t + c) + 0.1 * rng.normal(size=T) for c in range(C)]
            lines.append(":".join(",".join(f"{v:.4f}" for v in ch) for ch in channels) + f":c{k}")
        header = HEADER.format(name=name, C=C, equal=str(lengths[0] == lengths[1]).lower(),
                               labels=" ".join(f"c{k}" for k in range(K)))  # fmt: skip
        (folder / name / f"{name}_{split}.ts").write_text(header + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gtn")
    data = root / "data"
    write_ts(data / "uea", "SynthPadded", n=12, C=3, K=2, lengths=(8, 14), seed=1)
    write_ts(data / "uea", "SynthEqual", n=12, C=2, K=3, lengths=(10, 10), seed=2)
    mp = pytest.MonkeyPatch()
    mp.setenv(ENV_VAR, str(data))  # the paper's datasets are all absent from this data dir
    options = RunOptions(
        profile="smoke", data_dir=str(data), results_dir=root / "results", show_progress=False,
        overrides={"datasets": ("SynthPadded", "SynthEqual"), "zscore_dataset": "SynthPadded"},
    )  # fmt: skip
    try:
        _, tally = run_suite(SUITE, options)
        judged = write_suite_report(SUITE, "smoke", root / "results")
    finally:
        mp.undo()
    runs = pd.read_csv(root / "results" / "gtn" / "smoke" / "runs.csv", keep_default_na=False)
    runs["value"] = runs["value"].astype(float)
    return tally, judged, runs, root / "results" / "gtn" / "smoke"


def test_every_cell_runs_or_is_honestly_not_run(synthetic_run):
    tally, _, runs, _ = synthetic_run
    assert tally.get("error", 0) == 0, runs[runs["status"] == "error"]["note"].iloc[0]
    ran = runs[runs["status"] == "ok"]
    assert set(ran[ran["experiment"] == "main"]["task"]) == {"SynthPadded", "SynthEqual"}
    assert set(ran["method"]) == set(METHODS) | {"gtn_raw"}  # smoke: the official size is the GTN size
    not_run = runs[runs["status"] == "not_run"]
    # All 13 of the paper's datasets (absent here) are listed, with a reason.
    assert set(not_run["task"]) == set(GTN_PAPER_DATASETS)
    auslan = not_run[not_run["task"] == "AUSLAN"]["note"].iloc[0]
    assert "baydogan/AUSLAN.mat" in auslan and "Baydogan" in auslan
    assert "SpokenArabicDigits" in not_run[not_run["task"] == "ArabicDigits"]["note"].iloc[0]


def test_cells_record_both_protocols_the_budget_and_the_gate(synthetic_run):
    _, _, runs, _ = synthetic_run
    ok = runs[(runs["status"] == "ok") & (runs["experiment"] == "main")]
    wide = ok.pivot_table(index=["task", "method", "seed"], columns="metric", values="value")
    neural = wide[wide["acc_official"].notna()]
    assert set(neural.index.get_level_values("method")) == set(NEURAL)
    np.testing.assert_allclose(neural["gap"], neural["acc_official"] - neural["acc"])
    # The smoke profile evaluates every epoch, so the honest model was one of those evaluated.
    assert (neural["gap"] >= 0).all()
    assert neural["acc"].between(0, 100).all() and (neural["train_s"] > 0).all()
    # The harness's training record, on every run (MiniRocket's closed-form fit: converged in one step).
    assert wide[list(RECORD_METRICS)].notna().all().all()
    cap = PROFILES["smoke"].train_gtn.max_epochs
    steps, reason = neural["train_steps"], neural["stop_reason"].map(stop_reason_name)
    assert steps.between(1, cap).all() and reason.isin(["converged", "cap"]).all()
    assert ((steps < cap) <= (reason == "converged")).all()  # stopped before the cap: by the rule
    assert (neural["best_step"] <= steps).all() and (neural["last_improvement"] <= steps).all()
    assert (wide.xs("minirocket", level="method")["stop_reason"] == 0).all()
    gated = wide.xs("gtn", level="method")
    np.testing.assert_allclose(gated["gate_step"] + gated["gate_channel"], 1.0, atol=1e-6)
    np.testing.assert_allclose(
        gated["gate_shift"], (gated["gate_step"] - 0.5).abs() - (gated["gate_step_init"] - 0.5).abs()
    )
    # The paper's GTN is masked at evaluation, so it has a second evaluation without the mask. Checked
    # for presence first: NaN - NaN compares equal in assert_allclose, so a dropped mask would pass.
    assert gated["acc_train_mask"].notna().all() and gated["mask_eval_gain"].notna().all()
    np.testing.assert_allclose(gated["mask_eval_gain"], gated["acc"] - gated["acc_train_mask"])
    assert wide.xs("gtn_concat", level="method")["gate_step"].isna().all()
    # Only the paper's masked GTNs have a second (unmasked) evaluation; the official variant masks in training only.
    assert wide.xs("gtn_official", level="method")["acc_train_mask"].isna().all()
    assert wide.xs("gtn_nomask", level="method")["acc_train_mask"].isna().all()
    assert wide.xs("minirocket", level="method")["acc"].notna().all()


def test_every_claim_is_judged(synthetic_run):
    _, judged, _, folder = synthetic_run
    assert [c["id"] for c in judged] == [c.id for c in CLAIMS]
    by_id = {c["id"]: c for c in judged}
    for claim in judged:
        assert claim["verdict"] in VERDICTS
    # No paper dataset is here: their accuracy claims are not run, and say why.
    assert by_id["gtn.acc.ECG"]["verdict"] == NOT_RUN and by_id["gtn.acc.ECG"]["notes"]
    for cid in ("gtn.rank.vs_baselines", "gtn.ablation.gate_vs_concat", "gtn.ablation.mask", "gtn.gate.adapts",
                "gtn.protocol.optimism", "gtn.departure.zscore"):  # fmt: skip
        assert by_id[cid]["verdict"] != NOT_RUN, (cid, by_id[cid]["notes"])
        assert by_id[cid]["n"] >= 2
    assert by_id["gtn.ablation.mask"]["n"] == 2  # datasets are the units: two, whatever the seeds
    assert by_id["gtn.protocol.optimism"]["verdict"] == MEASURED
    document = json.loads((folder / "claims.json").read_text())
    assert len(document["claims"]) == len(CLAIMS)
    for name in ("cd_diagram.png", "accuracy_per_dataset.png", "gate_weights.png"):
        assert (folder / "figures" / name).stat().st_size > 0
    assert "gtn.rank.vs_baselines" in (folder / "report.md").read_text()


# --- every claim can fail -------------------------------------------------------------------------


# --- profiles, the budget rule, absent data -------------------------------------------------------


def test_profiles_change_sizes_not_code_paths():
    assert list(PROFILES) == ["smoke", "quick", "standard", "full"]
    quick, standard, full = PROFILES["quick"], PROFILES["standard"], PROFILES["full"]
    assert quick.seeds >= 2 and standard.seeds >= 5
    paper_here = {"ECG", "JapaneseVowels", "Libras", "Wafer"}
    assert paper_here <= set(standard.datasets) and len(set(standard.datasets) - paper_here) >= 3
    official = full.official
    assert (official.d_model, official.d_hidden, official.n_heads, official.d_qk, official.n_layers) == (
        512,
        1024,
        8,
        8,
        8,
    )
    assert standard.official == official and {"ECG", "JapaneseVowels"} <= set(standard.official_datasets)
    assert full.gtn == official  # the paper's GTN at the official code's size in `full`
    t = full.train_official
    assert (t.optimizer, t.lr, t.batch_size, t.max_epochs) == ("adagrad", 1e-4, 3, 100)
    assert full.eval_every == 5  # the official code tests every 5 epochs
    assert (full.train_fcn.max_epochs, full.train_resnet.max_epochs, full.train_mlp.max_epochs) == (2000, 1500, 5000)
    assert standard.baseline_width == full.baseline_width == 1.0  # the authors' widths
    for p in (quick, standard, full):
        kinds = [p.budget(k) for k in ("gtn", "official", "fcn", "resnet", "mlp")]
        # One stopping rule for every method in a profile; each keeps its authors' optimiser.
        assert len({(b.stop_patience, b.min_delta) for b in kinds}) == 1
        assert [b.optimizer for b in kinds[2:]] == ["adam", "adam", "adadelta"]
        # Caps well above the patience (full: the paper's own 100 GTN epochs), so the rule can fire.
        assert all(b.max_epochs >= (2 if p is full else 10) * b.stop_patience for b in kinds)
    with pytest.raises(TypeError):
        type(quick)(**{**vars(quick), "epochs": 3})  # a misspelt setting fails at load time


def test_each_trained_experiment_has_a_cost_from_its_caps():
    for name in ("quick", "standard", "full"):
        s = PROFILES[name]
        experiments = {e.name: e for e in build(s)}
        assert experiments["main"].cost.steps == max(s.budget(k).max_epochs for k in ("gtn", "fcn", "resnet", "mlp"))
        assert all(e.cost is not None for e in experiments.values())
    official = {e.name: e for e in build(PROFILES["standard"])}["official"]
    assert set(official.methods) == {"gtn_official", "gtn_official_reduced"} and official.seeds == 3


def test_a_cost_times_the_profiles_own_model(tmp_path, monkeypatch):
    from suites.harness.core import RunContext

    data = tmp_path / "data"
    write_ts(data / "uea", "SynthPadded", n=12, C=3, K=2, lengths=(8, 14), seed=1)
    s = replace(PROFILES["smoke"], datasets=("SynthPadded",))
    main = build(s)[0]
    ctx = RunContext(profile="smoke", settings=s, data_dir=str(data), threads=1, show_progress=False)
    for method in ("gtn", "fcn", "minirocket"):
        cell = next(c for c in main.cells("gtn", 0) if c.task == "SynthPadded" and c.method == method)
        assert 0 < main.cost.time_step(cell, ctx) < 60


@pytest.mark.parametrize("method", ["gtn", "gtn_concat", "gtn_step", "gtn_nomask"])
def test_the_paper_methods_mask_the_step_tower_as_the_paper_does(method):
    # The model the suite builds for each method, in evaluation: changing the last real step of a
    # series must leave every earlier step's step-wise output unchanged (the paper's mask) for the
    # masked methods, and must not for the mask ablation.
    from suites.data.timeseries import TimeSeriesDataset
    from suites.gtn.experiments import build_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 9, 3)).astype(np.float32)
    lengths, y = np.array([9, 9, 6, 6]), np.array([0, 1, 0, 1])
    X[2:, 6:] = 0.0
    ds = TimeSeriesDataset("toy", X, y, lengths, X, y, lengths, ["a", "b"], "synthetic", "")
    model = build_model(METHODS[method], ds, PROFILES["quick"]).eval()
    seen = {}
    model.step.register_forward_hook(lambda module, args, out: seen.__setitem__("S", out))
    x, L = torch.from_numpy(X), torch.from_numpy(lengths)
    x2 = x.clone()
    x2[[0, 1], 8] += 1.0
    x2[[2, 3], 5] += 1.0  # the last real step of the padded series
    model(x, L)
    before = seen["S"].clone()
    model(x2, L)
    diff = (before - seen["S"]).abs()
    earlier = max(diff[:2, :8].max().item(), diff[2:, :5].max().item())
    assert math.isfinite(earlier)
    assert (earlier < 1e-6) == (method != "gtn_nomask"), earlier


def test_dl4tsc_batches_and_the_training_record_by_hand():
    from impl.tsc_baselines import FCN, FCNConfig
    from suites.data.timeseries import TimeSeriesDataset
    from suites.gtn.training import batch_size, make_optimizer, train_and_evaluate

    fcn = PROFILES["standard"].train_fcn
    # dl-4-tsc: mini_batch_size = int(min(n_train / 10, batch_size)).
    assert [batch_size(fcn, n) for n in (30, 100, 298)] == [3, 10, 16]
    assert batch_size(PROFILES["standard"].train_gtn, 30) == 32  # GTN: the recipe's own batch
    adadelta = make_optimizer(torch.nn.Linear(2, 2), PROFILES["standard"].train_mlp)
    assert (adadelta.defaults["lr"], adadelta.defaults["rho"], adadelta.defaults["eps"]) == (1.0, 0.95, 1e-7)  # Keras'
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 6, 2)).astype(np.float32), np.arange(20) % 2
    lengths = np.full(20, 6)
    ds = TimeSeriesDataset("toy", X, y, lengths, X, y, lengths, ["a", "b"], "synthetic", "")
    # A cap below the patience: the cap ends the run and the record says so; a patience of 1 with
    # a min_delta no epoch can reach: the rule ends it after one check past the first.
    for budget, reason, steps in ((replace(fcn, max_epochs=3, stop_patience=50), "cap", 3),
                                  (replace(fcn, max_epochs=50, stop_patience=1, min_delta=10.0), "converged", 2)):  # fmt: skip
        torch.manual_seed(0)
        metrics = train_and_evaluate(FCN(FCNConfig(2, 2, width=0.05)), ds, budget, 1, seed=0, device="cpu")
        assert (stop_reason_name(metrics["stop_reason"]), metrics["train_steps"]) == (reason, steps)
        assert 1 <= metrics["best_step"] <= steps and metrics["evals"] == steps


def test_no_capped_flag_and_no_budget_claims():
    # One name per concept: the harness's training record replaced the suite's `capped` flag.
    assert not [c.id for c in CLAIMS if c.id.startswith("gtn.budget") or c.metric == "capped"]
    trained = [c for c in CLAIMS if c.experiment in ("main", "official", "zscore")]
    assert all(c.evidence == "converged" for c in trained)


def test_absent_paper_datasets_come_from_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert len(absent_paper_datasets(["ECG"])) == 12
    (tmp_path / "baydogan").mkdir()
    (tmp_path / "baydogan" / "AUSLAN.mat").write_bytes(b"")  # present (not loaded here)
    assert "AUSLAN" not in absent_paper_datasets([])
    tasks = build(replace(PROFILES["smoke"], datasets=("ECG",)))[0].tasks
    assert list(tasks)[0] == "ECG" and "AUSLAN" not in tasks and "Wafer" in tasks


@pytest.mark.slow
def test_real_smoke_profile(tmp_path):
    import os

    if not os.environ.get(ENV_VAR):
        pytest.skip(f"real data not configured: set {ENV_VAR} to the data directory")
    options = RunOptions(profile="smoke", results_dir=tmp_path, show_progress=False)
    _, tally = run_suite(SUITE, options)
    assert tally.get("error", 0) == 0
    judged = {c["id"]: c for c in write_suite_report(SUITE, "smoke", tmp_path)}
    assert judged["gtn.acc.ECG"]["verdict"] != NOT_RUN and judged["gtn.acc.Libras"]["verdict"] != NOT_RUN
    assert judged["gtn.acc.AUSLAN"]["verdict"] == NOT_RUN
    assert judged["gtn.departure.zscore"]["verdict"] == MEASURED
    assert math.isfinite(judged["gtn.acc.ECG"]["measured"])


def test_a_dataset_asked_for_by_name_must_exist(tmp_path, capsys):
    from suites.harness.cli import main

    args = ["run", "gtn", "--profile", "smoke", "--dataset", "NoSuchSet", "--data-dir", str(tmp_path)]
    assert main([*args, "--results-dir", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "uea/NoSuchSet/NoSuchSet_TRAIN.ts is missing" in err and "timeseriesclassification.com" in err
    assert not (tmp_path / "results").exists()
