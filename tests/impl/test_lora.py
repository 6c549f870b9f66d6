"""Tests for impl/lora.py (the layer) and impl/lora_model.py (injection, checkpoints, merging, counting). Tiny models
defined here or built from a config; nothing downloaded."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from impl.lora import LoRAConfig, LoRALinear
from impl.lora_model import (
    count_parameters,
    inject_lora,
    load_lora,
    load_lora_state_dict,
    lora_parameter_count,
    lora_state_dict,
    matches_target,
    merge_and_unload,
    merge_lora,
    save_lora,
    unmerge_lora,
)

D, DA, L = 12, 16, 2  # TinyNet (tests/conftest.py, fixture tiny_net): width, attention width (!= D), blocks


def randomize_B(model: nn.Module, seed: int = 1, std: float = 0.5) -> None:
    """Make every lora_B non-zero: with B = 0, merged == unmerged holds trivially."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("lora_B"):
                p.copy_(torch.randn(p.shape, generator=g) * std)


def x_in(*shape: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- config


def test_config_scaling_and_validation() -> None:
    assert LoRAConfig().scaling == 1.0  # alpha None -> alpha = r
    assert LoRAConfig(r=8, alpha=16).scaling == 2.0
    assert LoRAConfig(r=4, alpha=8).scaling == 2.0
    assert LoRAConfig(target_modules="query").target_modules == ("query",)
    for bad in [
        dict(r=0),
        dict(r=-1),
        dict(init_A="xavier"),
        dict(bias="lora_only"),
        dict(dropout=1.0),
        dict(target_modules=()),
    ]:
        with pytest.raises(ValueError):
            LoRAConfig(**bad)


# ----------------------------------------------------------------------------- counting


@pytest.mark.parametrize(("r", "expected"), [(1, 112), (2, 224), (4, 448), (8, 896)])
def test_trainable_parameter_count_exact(r: int, expected: int, tiny_net) -> None:
    # query and value are D x DA = 12 -> 16 in each of 2 blocks: 4 matrices * r * (12 + 16) = 112 r
    model = tiny_net()
    total = count_parameters(model, trainable_only=False)
    names = inject_lora(model, LoRAConfig(r=r))
    assert names == ["blocks.0.query", "blocks.0.value", "blocks.1.query", "blocks.1.value"]
    assert count_parameters(model) == expected
    assert lora_parameter_count([(D, DA)] * 4, r) == expected
    assert count_parameters(model, trainable_only=False) == total + expected
    assert sum(v.numel() for v in lora_state_dict(model).values()) == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"blocks.{i}.{m}.lora_{ab}" for i in range(L) for m in ("query", "value") for ab in "AB"}


def test_bias_all_counts_every_bias(tiny_net) -> None:
    model = tiny_net()
    inject_lora(model, LoRAConfig(r=2, bias="all"))
    # biases per block: query 16 + key 16 + (value has none) + out 12 + fc 20 + proj 12 + norm 12 = 88
    n_bias = L * 88 + 3  # + classifier bias
    assert count_parameters(model) == 2 * 112 + n_bias
    state = lora_state_dict(model)
    assert sum(v.numel() for k, v in state.items() if k.endswith("bias")) == n_bias
    assert "blocks.0.query.base.bias" in state


def test_lora_parameter_count_gpt3_arithmetic() -> None:
    # GPT-3 175B: r = 4 on Wq and Wv (12288 x 12288) in 96 layers -> the paper's 18.87M.
    n = lora_parameter_count([(12288, 12288)] * (2 * 96), r=4)
    assert n == 18_874_368
    assert round(175_255.8e6 / n) == 9285  # "10,000x" in the abstract; the arithmetic says ~9,285x
    assert lora_parameter_count([(12288, 12288)] * (2 * 96), r=1) == 4_718_592  # Table 4: 4.7M
    assert lora_parameter_count([(3, 5), (7, 2)], r=3) == 3 * 8 + 3 * 9
    with pytest.raises(ValueError):
        lora_parameter_count([(3, 5)], r=0)


def test_count_parameters_counts_tied_weights_once() -> None:
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    assert count_parameters(nn.ModuleDict({"e": emb, "h": head}), trainable_only=False) == 40


# ----------------------------------------------------------------------------- the layer


def test_layer_shapes_init_and_zero_start() -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 24)
    layer = LoRALinear(base, r=4, alpha=8)
    assert layer.lora_A.shape == (4, 16) and layer.lora_B.shape == (24, 4)
    assert layer.scaling == 2.0 and not layer.merged
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) == 64
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad
    x = x_in(5, 16)
    torch.testing.assert_close(layer(x), base(x), rtol=0, atol=0)  # B = 0: exactly the base layer
    assert layer(x_in(2, 3, 16)).shape == (2, 3, 24)
    assert layer(x_in(16)).shape == (24,)


def test_kaiming_init_matches_loralib_exactly() -> None:
    layer = LoRALinear(nn.Linear(256, 64), r=8)
    torch.manual_seed(123)
    layer.reset_lora_parameters()
    torch.manual_seed(123)
    ref = torch.empty(8, 256)
    nn.init.kaiming_uniform_(ref, a=math.sqrt(5))  # loralib: LoRALinear.reset_parameters
    torch.testing.assert_close(layer.lora_A.detach(), ref, rtol=0, atol=0)
    assert torch.count_nonzero(layer.lora_B) == 0


def test_gaussian_vs_kaiming_init_statistics() -> None:
    torch.manual_seed(0)
    d_in, r = 256, 8
    kaim = LoRALinear(nn.Linear(d_in, 64), r=r, init_A="kaiming").lora_A.detach()
    gaus = LoRALinear(nn.Linear(d_in, 64), r=r, init_A="gaussian").lora_A.detach()
    bound = 1 / math.sqrt(d_in)  # kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(d_in), 1/sqrt(d_in))
    assert kaim.abs().max() <= bound
    assert kaim.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert gaus.std().item() == pytest.approx(1 / r, rel=0.05)
    assert gaus.abs().max() > 2 / r  # unbounded tails, unlike the uniform
    kurt = lambda t: (((t - t.mean()) / t.std()) ** 4).mean().item()  # noqa: E731
    assert kurt(kaim) == pytest.approx(1.8, abs=0.15)  # uniform
    assert kurt(gaus) == pytest.approx(3.0, abs=0.3)  # normal


def test_dropout_only_on_lora_path() -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 16)
    layer = LoRALinear(base, r=4, alpha=8, dropout=0.5).train()
    x = x_in(64, 16)
    # B = 0: even with dropout 0.5 in train mode the output is exactly W0 x + b (base path untouched)
    torch.testing.assert_close(layer(x), base(x), rtol=0, atol=0)
    randomize_B(layer)
    torch.manual_seed(7)
    y = layer(x)
    torch.manual_seed(7)
    xd = F.dropout(x, 0.5, training=True)  # the same mask: dropout is the forward's only RNG use
    expected = base(x) + 2.0 * (xd @ layer.lora_A.T) @ layer.lora_B.T
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(layer(x), layer(x))  # train mode: stochastic
    layer.eval()
    y1, y2 = layer(x), layer(x)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)  # eval mode: deterministic
    torch.testing.assert_close(y1, base(x) + 2.0 * (x @ layer.lora_A.T) @ layer.lora_B.T, rtol=1e-6, atol=1e-6)
    assert isinstance(LoRALinear(nn.Linear(4, 4), r=2).lora_dropout, nn.Identity)  # p = 0: no dropout work


def make_conv1d(nx: int, nf: int) -> nn.Module:
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    conv = Conv1D(nf, nx)
    nn.init.normal_(conv.weight, std=0.2)
    nn.init.normal_(conv.bias, std=0.2)
    return conv


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_merge_unmerge_unload_fp32(kind: str) -> None:
    torch.manual_seed(0)
    base = nn.Linear(16, 24) if kind == "linear" else make_conv1d(16, 24)
    w0 = base.weight.detach().clone()
    layer = LoRALinear(base, r=4, alpha=8, fan_in_fan_out=kind == "conv1d")
    assert layer.lora_A.shape == (4, 16) and layer.lora_B.shape == (24, 4)
    randomize_B(layer)
    x = x_in(3, 5, 16)
    # reference computed by hand in float64: W0 x + b + (alpha/r) B A x
    w0_oi = (w0 if kind == "linear" else w0.T).double()
    ref = x.double() @ w0_oi.T + base.bias.double() + 2.0 * x.double() @ (layer.lora_B @ layer.lora_A).double().T
    y = layer(x)
    torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-6)
    assert (y - base(x)).abs().max() > 0.1  # the LoRA path contributes: the test is not trivial
    layer.merge()
    w_merged = base.weight.detach().clone()
    assert layer.merged and not torch.equal(w_merged, w0)
    delta = 2.0 * layer.lora_B.detach() @ layer.lora_A.detach()
    torch.testing.assert_close(w_merged, w0 + (delta if kind == "linear" else delta.T), rtol=0, atol=1e-6)
    layer.merge()  # idempotent
    torch.testing.assert_close(base.weight.detach(), w_merged, rtol=0, atol=0)
    torch.testing.assert_close(layer(x), y, rtol=1e-6, atol=1e-6)
    layer.unmerge()
    layer.unmerge()  # idempotent
    assert not layer.merged
    torch.testing.assert_close(base.weight.detach(), w0, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer(x), y, rtol=1e-6, atol=1e-6)
    plain = merge_and_unload(layer)
    assert plain is base and type(plain) is type(base)
    torch.testing.assert_close(plain(x), y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_merge_unmerge_bf16(kind: str) -> None:
    torch.manual_seed(0)
    base = nn.Linear(64, 48) if kind == "linear" else make_conv1d(64, 48)
    layer = LoRALinear(base, r=8, alpha=16, fan_in_fan_out=kind == "conv1d")
    randomize_B(layer, std=0.2)
    x = x_in(4, 64)
    ref = layer(x).detach()  # fp32 reference
    layer.to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    y = layer(xb)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()  # backward runs in bf16
    assert layer.lora_A.grad.dtype == torch.bfloat16 and layer.lora_B.grad is not None
    # bf16 keeps 8 bits of mantissa (eps 2^-8 = 0.0039); |y| ~ 2 here, sums of 64 terms
    tol = dict(rtol=2e-2, atol=2e-2 * ref.abs().max().item())
    torch.testing.assert_close(y.float(), ref, **tol)
    layer.merge()
    torch.testing.assert_close(layer(xb).float(), ref, **tol)
    torch.testing.assert_close(layer(xb).float(), y.float(), **tol)
    layer.unmerge()
    torch.testing.assert_close(layer(xb).float(), y.float(), **tol)
    plain = merge_and_unload(layer)
    torch.testing.assert_close(plain(xb).float(), ref, **tol)


def test_mixed_precision_autocast_and_fp32_lora_on_bf16_base() -> None:
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(64, 48), r=8, alpha=16)
    randomize_B(layer, std=0.2)
    x = x_in(4, 64)
    ref = layer(x).detach()
    tol = dict(rtol=2e-2, atol=2e-2 * ref.abs().max().item())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp32 parameters, bf16 compute
        y = layer(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert layer.lora_A.grad.dtype == torch.float32 and layer.lora_B.grad.abs().sum() > 0
    torch.testing.assert_close(y.float(), ref, **tol)
    layer.base.to(torch.bfloat16)  # frozen base in bf16, LoRA kept in fp32
    y = layer(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16 and layer.lora_A.dtype == torch.float32
    torch.testing.assert_close(y.float(), ref, **tol)
    layer.merge()
    torch.testing.assert_close(layer(x.to(torch.bfloat16)).float(), ref, **tol)


def test_fan_in_fan_out_must_match_layout() -> None:
    with pytest.raises(ValueError, match="fan_in_fan_out=True"):
        LoRALinear(make_conv1d(4, 6), r=2)
    with pytest.raises(ValueError, match="nn.Linear"):
        LoRALinear(nn.Linear(4, 6), r=2, fan_in_fan_out=True)
    with pytest.raises(TypeError):
        LoRALinear(nn.Conv2d(3, 3, 1), r=2)


# ----------------------------------------------------------------------------- whole model


def test_model_merge_unmerge_merge_and_unload(tiny_net) -> None:
    model = tiny_net()
    x = x_in(2, 5, D)
    y0 = model(x)
    inject_lora(model, LoRAConfig(r=4, alpha=8))
    torch.testing.assert_close(model(x), y0, rtol=0, atol=0)  # B = 0 at start
    randomize_B(model)
    y = model(x)
    assert (y - y0).abs().max() > 1e-2
    merge_lora(model)
    merge_lora(model)
    torch.testing.assert_close(model(x), y, rtol=1e-6, atol=1e-6)
    unmerge_lora(model)
    unmerge_lora(model)
    torch.testing.assert_close(model(x), y, rtol=1e-6, atol=1e-6)
    ref = tiny_net()
    for (n, p), (n_ref, p_ref) in zip(
        [(n, p) for n, p in model.named_parameters() if "lora_" not in n], ref.named_parameters(), strict=True
    ):
        assert n.replace(".base", "") == n_ref
        torch.testing.assert_close(p, p_ref, rtol=0, atol=1e-6)  # W0 restored
    merged = merge_and_unload(model)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert type(merged.blocks[0].query) is nn.Linear
    assert [n for n, _ in merged.named_parameters()] == [n for n, _ in ref.named_parameters()]
    torch.testing.assert_close(merged(x), y, rtol=1e-6, atol=1e-6)


def test_base_weights_unchanged_and_only_lora_gets_gradients(tiny_net) -> None:
    model = tiny_net().train()
    inject_lora(model, LoRAConfig(r=2, dropout=0.1))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    lora0 = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    # all parameters handed to AdamW with weight decay: frozen ones must still not move
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    x, target = x_in(4, 6, D), torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(3))
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).flatten(0, 1), target.flatten()).backward()
        for n, p in model.named_parameters():
            if "lora_" in n:
                assert p.grad is not None, n
                if n.endswith("lora_B") or step > 0:  # A's gradient is B^T (...), zero while B = 0
                    assert p.grad.abs().sum() > 0, n
            else:
                assert p.grad is None, n
        opt.step()
    for n, p in model.named_parameters():
        if "lora_" in n:
            assert not torch.equal(p, lora0[n]), n
        else:
            assert torch.equal(p, frozen[n]), n


def test_save_load_round_trip(tmp_path, tiny_net) -> None:
    cfg = LoRAConfig(r=4, alpha=8)
    model = tiny_net()
    inject_lora(model, cfg)
    randomize_B(model)
    x = x_in(2, 5, D)
    y = model(x)
    path = tmp_path / "lora.pt"
    save_lora(model, path)
    saved = torch.load(path, weights_only=True)
    assert sorted(saved) == sorted(
        f"blocks.{i}.{m}.lora_{ab}" for i in range(L) for m in ("query", "value") for ab in "AB"
    )
    other = tiny_net()  # same W0, fresh LoRA (B = 0, different A)
    inject_lora(other, cfg)
    assert (other(x) - y).abs().max() > 1e-2
    load_lora(other, path)
    torch.testing.assert_close(other(x), y, rtol=0, atol=0)
    # loading into a merged model keeps the merged weight consistent
    merged = tiny_net()
    inject_lora(merged, cfg)
    merge_lora(merged)
    load_lora_state_dict(merged, lora_state_dict(model))
    assert all(m.merged for m in merged.modules() if isinstance(m, LoRALinear))
    torch.testing.assert_close(merged(x), y, rtol=1e-6, atol=1e-6)
    unmerge_lora(merged)
    for (n, p), p_ref in zip(
        [(n, p) for n, p in merged.named_parameters() if "lora_" not in n], tiny_net().parameters(), strict=True
    ):
        torch.testing.assert_close(p, p_ref, rtol=0, atol=1e-6, msg=n)


def test_load_mismatch_raises_clear_errors(tiny_net) -> None:
    src = tiny_net()
    inject_lora(src, LoRAConfig(r=4))
    state = lora_state_dict(src)
    wrong_r = tiny_net()
    inject_lora(wrong_r, LoRAConfig(r=8))
    with pytest.raises(ValueError, match=r"shape mismatch.*blocks\.0\.query\.lora_A"):
        load_lora_state_dict(wrong_r, state)
    fewer = tiny_net()
    inject_lora(fewer, LoRAConfig(r=4, target_modules=("query",)))
    with pytest.raises(ValueError, match=r"unexpected keys \(4\).*value\.lora_A"):
        load_lora_state_dict(fewer, state)
    more = tiny_net()
    inject_lora(more, LoRAConfig(r=4, target_modules=("query", "value", "key")))
    with pytest.raises(ValueError, match=r"missing keys \(4\).*key\.lora_A"):
        load_lora_state_dict(more, state)
    with pytest.raises(ValueError, match="no LoRA layers"):
        lora_state_dict(tiny_net())


# ----------------------------------------------------------------------------- selection


def test_matches_target_rules() -> None:
    bert = "encoder.layer.3.attention.output.dense"
    bert_ffn = "encoder.layer.3.output.dense"
    assert matches_target("encoder.layer.3.attention.self.query", ("query",))
    assert not matches_target("encoder.layer.3.attention.self.query_x", ("query",))
    assert matches_target(bert_ffn, ("output.dense",))
    assert not matches_target(bert, ("output.dense",))  # the AdapterL trap: plain suffix would match
    assert matches_target(bert, ("attention.output.dense",))
    assert matches_target("output.dense", ("output.dense",))
    assert matches_target("model.layers.11.mlp.down_proj", ("mlp.down_proj",))
    assert matches_target("model.layers.0.self_attn.o_proj", ("o_proj",))
    assert not matches_target("model.layers.0.self_attn.o_proj", ("attn.o_proj",))
    assert matches_target(bert, (r".*\.attention\.output\.dense",), pattern=True)
    assert not matches_target(bert, (r"output\.dense",), pattern=True)  # fullmatch, not search
    assert matches_target("a.b", "b")  # a bare string is one target


def test_inject_errors(tiny_net) -> None:
    with pytest.raises(ValueError, match=r"no module matched.*'q_proj'.*blocks\.0\.query"):
        inject_lora(tiny_net(), LoRAConfig(target_modules=("q_proj", "v_proj")))
    with pytest.raises(ValueError, match="cannot wrap.*LayerNorm"):
        inject_lora(tiny_net(), LoRAConfig(target_modules=("norm",)))
    model = tiny_net()
    inject_lora(model, LoRAConfig())
    with pytest.raises(ValueError, match="already has LoRA"):
        inject_lora(model, LoRAConfig())


def test_inject_with_regex(tiny_net) -> None:
    model = tiny_net()
    names = inject_lora(model, LoRAConfig(r=2, target_modules=(r"blocks\.1\.(query|out)",), pattern=True))
    assert names == ["blocks.1.query", "blocks.1.out"]
    assert count_parameters(model) == 2 * (D + DA) + 2 * (DA + D)


# ----------------------------------------------------------------------------- HF models


def test_inject_into_bert(tiny_bert) -> None:
    model = tiny_bert()
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    y0 = model(input_ids=ids).last_hidden_state
    names = inject_lora(model, LoRAConfig(r=4, alpha=8))
    assert names == [f"encoder.layer.{i}.attention.self.{m}" for i in range(2) for m in ("query", "value")]
    assert count_parameters(model) == 4 * 4 * (32 + 32)
    torch.testing.assert_close(model(input_ids=ids).last_hidden_state, y0, rtol=0, atol=0)
    randomize_B(model, std=0.3)
    y = model(input_ids=ids).last_hidden_state
    assert (y - y0).abs().max() > 1e-2
    merge_lora(model)
    torch.testing.assert_close(model(input_ids=ids).last_hidden_state, y, rtol=1e-5, atol=1e-5)
    unmerge_lora(model)
    merge_and_unload(model)
    torch.testing.assert_close(model(input_ids=ids).last_hidden_state, y, rtol=1e-5, atol=1e-5)
    assert type(model.encoder.layer[0].attention.self.query) is nn.Linear


def test_inject_into_llama(tiny_llama) -> None:
    model = tiny_llama()
    ids = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(0))
    y0 = model(input_ids=ids).logits
    names = inject_lora(model, LoRAConfig(r=2, target_modules=("q_proj", "v_proj")))
    assert names == [f"model.layers.{i}.self_attn.{m}" for i in range(2) for m in ("q_proj", "v_proj")]
    # q_proj 32 -> 32, v_proj 32 -> 16 (2 kv heads x head_dim 8): per layer r*(64) + r*(48)
    assert count_parameters(model) == 2 * (2 * 64 + 2 * 48)
    torch.testing.assert_close(model(input_ids=ids).logits, y0, rtol=0, atol=0)
    randomize_B(model, std=0.3)
    y = model(input_ids=ids).logits
    assert (y - y0).abs().max() > 1e-3
    merge_and_unload(model)
    torch.testing.assert_close(model(input_ids=ids).logits, y, rtol=1e-5, atol=1e-5)
    other = tiny_llama()
    names = inject_lora(other, LoRAConfig(r=1, target_modules=("self_attn.o_proj", "mlp.down_proj")))
    assert names == [f"model.layers.{i}.{m}" for i in range(2) for m in ("self_attn.o_proj", "mlp.down_proj")]
    assert count_parameters(other) == 2 * ((32 + 32) + (48 + 32))


def test_inject_into_gpt2_conv1d() -> None:
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2)).eval()
    ids = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    names = inject_lora(model, LoRAConfig(r=4, target_modules=("c_attn",)))
    assert names == ["h.0.attn.c_attn", "h.1.attn.c_attn"]
    layer = model.h[0].attn.c_attn
    assert layer.fan_in_fan_out and layer.lora_A.shape == (4, 32) and layer.lora_B.shape == (96, 4)
    assert count_parameters(model) == 2 * 4 * (32 + 96)
    randomize_B(model, std=0.3)
    y = model(input_ids=ids).last_hidden_state
    merge_and_unload(model)
    assert type(model.h[0].attn.c_attn).__name__ == "Conv1D"
    torch.testing.assert_close(model(input_ids=ids).last_hidden_state, y, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- the fused training path


def plain_reference(layer: LoRALinear, x: torch.Tensor) -> torch.Tensor:
    """The layer's function written with ordinary autograd ops (no custom backward, no in-place)."""
    w = layer.base.weight.T if layer.fan_in_fan_out else layer.base.weight
    out = x @ w.T + layer.scaling * (x @ layer.lora_A.T) @ layer.lora_B.T
    return out if layer.base.bias is None else out + layer.base.bias


@pytest.mark.parametrize("kind", ["linear", "conv1d", "no_bias", "bias_trains"])
def test_fused_function_equals_plain_autograd(kind: str) -> None:
    torch.manual_seed(0)
    base = {"linear": nn.Linear(16, 24), "no_bias": nn.Linear(16, 24, bias=False), "bias_trains": nn.Linear(16, 24)}
    base = base.get(kind) or make_conv1d(16, 24)
    layer = LoRALinear(base, r=4, alpha=8, fan_in_fan_out=kind == "conv1d")
    randomize_B(layer)
    if kind == "bias_trains":  # bias="all": the custom backward must produce the bias gradient too
        base.bias.requires_grad_(True)
    x = x_in(3, 5, 16).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    g = x_in(3, 5, 24, seed=9)
    y = layer(x)
    assert "LoRAFunction" in type(y.grad_fn.next_functions[0][0]).__name__  # the fused path was taken
    y.backward(g)
    got = {n: p.grad.clone() for n, p in layer.named_parameters() if p.requires_grad}
    layer.zero_grad(set_to_none=True)
    y_ref = plain_reference(layer, x_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-6)
    assert x.grad.abs().max() > 0
    for n, p in layer.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(got[n], p.grad, rtol=1e-6, atol=1e-6, msg=n)
    assert set(got) == ({"lora_A", "lora_B", "base.bias"} if kind == "bias_trains" else {"lora_A", "lora_B"})


def test_fused_path_passes_gradcheck_in_float64() -> None:
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(5, 4).double(), r=2, alpha=3)
    randomize_B(layer)
    layer.base.bias.requires_grad_(True)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    from impl.lora import _LoRAFunction

    inputs = (x, layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B, layer.scaling, False)
    assert torch.autograd.gradcheck(_LoRAFunction.apply, inputs)


# ----------------------------------------------------------------------------- hazards


def test_train_unmerges_and_training_a_merged_layer_is_an_error(tiny_net) -> None:
    model = tiny_net()
    inject_lora(model, LoRAConfig(r=2))
    randomize_B(model)
    x = x_in(2, 5, D)
    y = model(x)
    merge_lora(model)
    layer = model.blocks[0].query
    assert layer.merged
    model.train()  # as loralib: train mode unmerges, so A and B receive gradients again
    assert not layer.merged
    torch.testing.assert_close(model(x), y, rtol=1e-6, atol=1e-6)
    model(x).sum().backward()
    assert layer.lora_B.grad is not None and layer.lora_B.grad.abs().sum() > 0
    layer.merge()  # merged by hand while training: a backward that would train nothing is refused
    torch.testing.assert_close(model(x), y, rtol=1e-6, atol=1e-6)  # the forward is still right
    with pytest.raises(RuntimeError, match="merged LoRA layer"):
        model(x).sum().backward()
    with torch.no_grad():  # inference under no_grad is fine
        model(x)
    model.eval()
    layer.merge()
    torch.testing.assert_close(model(x), y, rtol=1e-6, atol=1e-6)  # eval keeps the merge


def test_lora_weights_of_a_bf16_model_are_fp32_by_default() -> None:
    base = nn.Linear(32, 16).to(torch.bfloat16)
    layer = LoRALinear(base, r=4)
    assert layer.lora_A.dtype == layer.lora_B.dtype == torch.float32
    assert LoRALinear(nn.Linear(32, 16).to(torch.bfloat16), r=4, fp32_lora=False).lora_A.dtype == torch.bfloat16
    assert LoRALinear(nn.Linear(32, 16).double(), r=4).lora_A.dtype == torch.float64  # never lowered
    model = nn.Sequential(nn.Linear(32, 16)).to(torch.bfloat16)
    inject_lora(model, LoRAConfig(r=4, target_modules=("0",)))
    assert model[0].lora_B.dtype == torch.float32
    randomize_B(layer, std=0.1)
    y = layer(x_in(4, 32).to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert layer.lora_A.grad.dtype == torch.float32
    # a small update that bf16 would lose (below half of bf16's eps at 1.0) survives in fp32
    with torch.no_grad():
        layer.lora_A.fill_(1.0)
        layer.lora_A.add_(1e-3)
    assert layer.lora_A[0, 0].item() == pytest.approx(1.001)
    assert LoRAConfig().fp32_lora


def test_enable_lora_on_fused_qkv_equals_separate_q_and_v_adapters(tiny_gpt2) -> None:
    """GPT-2's c_attn holds [Wq | Wk | Wv]. enable_lora=(True, False, True) must compute exactly what
    LoRA on three separate projections computes when only q and v are adapted."""
    torch.manual_seed(0)
    d, r = 8, 2
    fused = make_conv1d(d, 3 * d)  # weight [in, 3 out]
    layer = LoRALinear(fused, r=r, alpha=4, fan_in_fan_out=True, enable_lora=(True, False, True))
    assert layer.lora_A.shape == (2 * r, d) and layer.lora_B.shape == (2 * d, r)
    assert count_parameters(layer) == lora_parameter_count([(d, d), (d, d)], r) == 2 * 2 * d * r  # 2 L d r per layer
    randomize_B(layer)
    sep = {}
    for i, name in enumerate("qkv"):
        lin = nn.Linear(d, d)
        with torch.no_grad():
            lin.weight.copy_(fused.weight[:, i * d : (i + 1) * d].T)
            lin.bias.copy_(fused.bias[i * d : (i + 1) * d])
        sep[name] = LoRALinear(lin, r=r, alpha=4) if name != "k" else lin
    with torch.no_grad():
        for j, name in enumerate("qv"):
            sep[name].lora_A.copy_(layer.lora_A[j * r : (j + 1) * r])
            sep[name].lora_B.copy_(layer.lora_B[j * d : (j + 1) * d])
    x = x_in(3, d)
    expected = torch.cat([sep[n](x) for n in "qkv"], dim=-1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(layer(x)[:, d : 2 * d], fused(x)[:, d : 2 * d])  # k untouched: the base output as is
    layer.merge()
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    layer.unmerge()
    torch.testing.assert_close(fused.weight[:, d : 2 * d], sep["k"].weight.T, rtol=0, atol=0)
    # through a whole GPT-2: q and v adapted in every block, 2 * L * d * r * 2 parameters
    model = tiny_gpt2()
    inject_lora(model, LoRAConfig(r=4, target_modules=("c_attn",), enable_lora=(True, False, True)))
    assert count_parameters(model) == 2 * 2 * 32 * 4 * 2
    with pytest.raises(ValueError, match="divide out_features"):
        LoRALinear(nn.Linear(8, 10), r=2, enable_lora=(True, False, True))


def test_save_lora_can_save_the_trained_head(tmp_path, tiny_net) -> None:
    model = tiny_net()
    inject_lora(model, LoRAConfig(r=2))
    model.classifier.requires_grad_(True)
    randomize_B(model)
    with torch.no_grad():
        model.classifier.weight.add_(1.0)  # "trained"
    save_lora(model, tmp_path / "a.pt", modules_to_save=("classifier",))
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    assert {"classifier.weight", "classifier.bias"} <= set(state)
    fresh = tiny_net()
    inject_lora(fresh, LoRAConfig(r=2))
    load_lora(fresh, tmp_path / "a.pt", modules_to_save=("classifier",))
    x = x_in(2, 5, D)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="unexpected keys"):
        load_lora(fresh, tmp_path / "a.pt")  # without the head named: strict
    with pytest.raises(ValueError, match="hold no parameters"):
        lora_state_dict(model, modules_to_save=("head",))
