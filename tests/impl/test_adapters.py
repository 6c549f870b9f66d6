"""Tests for impl/adapters.py: the fine-tuning baselines on tiny HF models built from configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from impl.adapters import (
    METHODS,
    AdaptedLinear,
    AdaptedModule,
    Adapter,
    adapter_parameter_count,
    inject_adapters,
    prepare_for_finetuning,
)
from impl.lora import LoRAConfig, LoRALinear
from impl.lora_model import count_parameters

H, FF, NL, LABELS, M = 32, 37, 2, 3, 4  # tiny_bert_cls (tests/conftest.py): hidden, MLP, layers, labels; bottleneck
ADAPTER = 2 * H * M + H + M  # down (H*M + M) + up (M*H + H) = 292
HEAD = H * LABELS + LABELS  # BertForSequenceClassification.classifier = 99
LN = 2 * H  # one LayerNorm: gain and bias


IDS = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))


def trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


# ----------------------------------------------------------------------------- the adapter


def test_adapter_param_count_and_forward() -> None:
    torch.manual_seed(0)
    a = Adapter(H, M)
    assert count_parameters(a) == ADAPTER == 292
    x = torch.randn(5, H)
    # near-identity at init: up(act(down(x))) is O(1e-3 * 1e-3)
    assert (a(x) - x).abs().max() < 1e-4
    assert a.up.weight.abs().max() <= 2e-3 and torch.count_nonzero(a.up.bias) == 0
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    expected = x + (F.gelu(x @ a.down.weight.T + a.down.bias)) @ a.up.weight.T + a.up.bias
    torch.testing.assert_close(a(x), expected, rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError):
        Adapter(H, 0)


def test_inject_adapters_bert_houlsby_vs_lin(tiny_bert_cls) -> None:
    model = tiny_bert_cls()
    names = inject_adapters(model, ("attention.output.dense", "output.dense"), bottleneck=M)
    assert names == [
        f"bert.encoder.layer.{i}.{m}" for i in range(NL) for m in ("attention.output.dense", "output.dense")
    ]
    model = tiny_bert_cls()
    names = inject_adapters(model, ("output.dense",), bottleneck=M)
    # full-suffix matching: "output.dense" must not catch "attention.output.dense"
    assert names == [f"bert.encoder.layer.{i}.output.dense" for i in range(NL)]
    assert isinstance(model.bert.encoder.layer[0].output.dense, AdaptedLinear)
    assert type(model.bert.encoder.layer[0].attention.output.dense) is nn.Linear
    with pytest.raises(ValueError, match="no module matched"):
        inject_adapters(model, ("o_proj",), bottleneck=M)
    with pytest.raises(ValueError, match="without parameters"):
        inject_adapters(tiny_bert_cls(), ("attention.output.dropout",), bottleneck=M)


def test_adapter_output_passes_through_adapter() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(8, 6)
    wrapped = AdaptedLinear(lin, bottleneck=2)
    with torch.no_grad():
        for p in wrapped.adapter.parameters():
            p.normal_()
    x = torch.randn(3, 8)
    torch.testing.assert_close(wrapped(x), wrapped.adapter(lin(x)), rtol=0, atol=0)
    assert (wrapped(x) - lin(x)).abs().max() > 0.1


# ----------------------------------------------------------------------------- methods: exact counts


def test_methods_constant() -> None:
    assert METHODS == ("full", "bitfit", "head", "lora", "adapter_h", "adapter_l")


@pytest.mark.parametrize(
    ("method", "kwargs", "expected"),
    [
        ("head", {}, HEAD),
        # every bias: per layer q, k, v, attn-out, attn-LN (5H) + intermediate (FF) + out, out-LN (2H);
        # + embeddings LN (H) + pooler (H) + classifier weight and bias
        ("bitfit", {}, NL * (7 * H + FF) + 2 * H + HEAD),
        ("lora", {"lora": LoRAConfig(r=8)}, 2 * NL * 8 * (H + H) + HEAD),
        (
            "lora",
            {"lora": LoRAConfig(r=2, target_modules=("query", "value", "intermediate.dense"))},
            NL * (2 * 2 * (H + H) + 2 * (H + FF)) + HEAD,
        ),
        # Houlsby: two adapters per block and the block's two LayerNorms retrained
        ("adapter_h", {"bottleneck": M}, 2 * NL * ADAPTER + 2 * NL * LN + HEAD),
        # Lin et al.: one adapter per block with its own input LayerNorm
        ("adapter_l", {"bottleneck": M}, NL * (ADAPTER + LN) + HEAD),
    ],
)
def test_trainable_counts_exact(method: str, kwargs: dict, expected: int, tiny_bert_cls) -> None:
    model = prepare_for_finetuning(tiny_bert_cls(), method, **kwargs)
    assert count_parameters(model) == expected
    names = trainable(model)
    assert {"classifier.weight", "classifier.bias"} <= names


def test_numbers_are_what_they_claim(tiny_bert_cls) -> None:
    # The analytic numbers above, spelled out once, so a formula slip in the test is visible too.
    assert HEAD == 99 and ADAPTER == 292
    assert count_parameters(prepare_for_finetuning(tiny_bert_cls(), "bitfit")) == 685
    assert count_parameters(prepare_for_finetuning(tiny_bert_cls(), "adapter_h", bottleneck=M)) == 1267 + 256
    assert count_parameters(prepare_for_finetuning(tiny_bert_cls(), "adapter_l", bottleneck=M)) == 683 + 128
    assert count_parameters(prepare_for_finetuning(tiny_bert_cls(), "lora")) == 2048 + 99


def test_full_and_which_parameters(tiny_bert_cls) -> None:
    model = tiny_bert_cls()
    for p in model.parameters():
        p.requires_grad_(False)
    prepare_for_finetuning(model, "full")
    assert count_parameters(model) == count_parameters(model, trainable_only=False)

    bitfit = prepare_for_finetuning(tiny_bert_cls(), "bitfit")
    assert all(n.endswith("bias") or n.startswith("classifier.") for n in trainable(bitfit))
    assert "bert.encoder.layer.0.attention.output.LayerNorm.bias" in trainable(bitfit)

    lora = prepare_for_finetuning(tiny_bert_cls(), "lora")
    assert all("lora_" in n or n.startswith("classifier.") for n in trainable(lora))
    assert isinstance(lora.bert.encoder.layer[1].attention.self.value, LoRALinear)

    ah = prepare_for_finetuning(tiny_bert_cls(), "adapter_h", bottleneck=M)
    assert all(".adapter." in n or "LayerNorm" in n or n.startswith("classifier.") for n in trainable(ah))
    assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in trainable(ah)
    assert "bert.embeddings.LayerNorm.weight" not in trainable(ah)  # the blocks' norms only
    assert sum(isinstance(m, Adapter) for m in ah.modules()) == 2 * NL


def test_errors(tiny_bert_cls, tiny_llama) -> None:
    with pytest.raises(ValueError, match="full, bitfit, head, lora, adapter_h, adapter_l"):
        prepare_for_finetuning(tiny_bert_cls(), "prefix")
    with pytest.raises(ValueError, match="head.*matches no parameter"):
        prepare_for_finetuning(tiny_llama(), "lora")  # no "classifier" in a causal LM
    with pytest.raises(ValueError, match="head.*matches no parameter"):
        prepare_for_finetuning(tiny_bert_cls(), "head", head=("classif",))  # component-wise prefix


def test_llama_adapters_and_lora(tiny_llama) -> None:
    m_h = prepare_for_finetuning(tiny_llama(), "adapter_h", head=(), bottleneck=M,
                                 adapter_h_targets=("self_attn.o_proj", "mlp.down_proj"),
                                 adapter_h_norms=("input_layernorm", "post_attention_layernorm"))  # fmt: skip
    assert isinstance(m_h.model.layers[0].self_attn.o_proj, AdaptedLinear)
    assert isinstance(m_h.model.layers[0].mlp.down_proj, AdaptedLinear)
    assert count_parameters(m_h) == 2 * NL * ADAPTER + 2 * NL * H  # RMSNorm: a gain, no bias
    m_l = prepare_for_finetuning(tiny_llama(), "adapter_l", head=(), bottleneck=M, adapter_l_targets=("mlp",))
    assert isinstance(m_l.model.layers[0].mlp, AdaptedModule)
    assert count_parameters(m_l) == NL * (ADAPTER + LN)
    ids = torch.randint(0, 64, (2, 5), generator=torch.Generator().manual_seed(0))
    assert m_l(input_ids=ids).logits.shape == (2, 5, 64)
    m_lora = prepare_for_finetuning(
        tiny_llama(), "lora", head=("lm_head",), lora=LoRAConfig(r=2, target_modules=("q_proj", "v_proj"))
    )
    # q 32->32, v 32->16, two layers; plus the (untied) lm_head 32 x 64
    assert count_parameters(m_lora) == NL * (2 * 64 + 2 * 48) + 64 * H


@pytest.mark.parametrize("method", ["bitfit", "head", "lora", "adapter_h", "adapter_l"])
def test_training_moves_only_trainable_params(method: str, tiny_bert_cls) -> None:
    model = prepare_for_finetuning(tiny_bert_cls(), method, bottleneck=M).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    labels = torch.tensor([0, 2])
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        model(input_ids=IDS, labels=labels).loss.backward()
        for n, p in model.named_parameters():
            assert (p.grad is not None) == p.requires_grad, n
        opt.step()
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert not torch.equal(p, before[n]), n
        else:
            assert torch.equal(p, before[n]), n


def test_adapters_start_near_the_pretrained_model(tiny_bert_cls) -> None:
    ref = tiny_bert_cls()
    y0 = ref(input_ids=IDS).logits
    for method in ("adapter_h", "adapter_l"):
        y = prepare_for_finetuning(tiny_bert_cls(), method, bottleneck=M)(input_ids=IDS).logits
        torch.testing.assert_close(y, y0, rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------- faithful placement and counts


@pytest.mark.parametrize(("method", "n_adapters", "n_norms"), [("adapter_h", 2 * NL, 2 * NL), ("adapter_l", NL, NL)])
def test_trainable_counts_follow_the_papers_formula(method: str, n_adapters: int, n_norms: int, tiny_bert_cls) -> None:
    """The LoRA paper (Section 5.1): |Theta| = L_Adpt (2 d r + r + d) + 2 L_LN d."""
    model = prepare_for_finetuning(tiny_bert_cls(), method, bottleneck=M, head=())
    assert count_parameters(model) == adapter_parameter_count(H, M, n_adapters, n_norms)
    assert adapter_parameter_count(1024, 16, 48, 48) == 48 * (2 * 1024 * 16 + 16 + 1024) + 2 * 48 * 1024


def test_adapter_l_sits_after_the_mlp_and_its_layernorm(tiny_bert_cls) -> None:
    model = prepare_for_finetuning(tiny_bert_cls(), "adapter_l", bottleneck=M)
    layer = model.bert.encoder.layer[0]
    wrapped = layer.output.LayerNorm
    assert isinstance(wrapped, AdaptedModule) and isinstance(wrapped.base, nn.LayerNorm)
    assert isinstance(layer.attention.output.LayerNorm, nn.LayerNorm)  # the attention's norm is not adapted
    assert type(layer.output.dense) is nn.Linear
    a = wrapped.adapter
    assert isinstance(a.norm, nn.LayerNorm) and isinstance(a.act, nn.ReLU)
    with torch.no_grad():
        for p in a.parameters():
            p.normal_()
    x = torch.randn(2, 5, H)
    h = wrapped.base(x)  # the block's own output LayerNorm, then Lin et al.'s adapter with its own LayerNorm
    expected = (
        h
        + F.relu(F.layer_norm(h, (H,), a.norm.weight, a.norm.bias) @ a.down.weight.T + a.down.bias) @ (a.up.weight.T)
        + a.up.bias
    )
    torch.testing.assert_close(wrapped(x), expected, rtol=1e-5, atol=1e-5)
