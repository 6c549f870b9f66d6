"""GTN: shapes, masking, gate, every ablation trains, parameter count by hand."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from impl.gtn import GTN, GTNConfig, GTNOutput

B, T, C, K = 4, 7, 3, 5


def tiny(**overrides) -> GTNConfig:
    base = dict(
        n_channels=C, n_steps=T, n_classes=K, d_model=8, d_hidden=16, n_heads=2, d_qk=4, d_v=4, n_layers=1, dropout=0.0
    )
    base.update(overrides)
    return GTNConfig(**base)


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([T, 5, 3, 1])
    x = torch.randn(B, T, C, generator=g)
    x[torch.arange(T)[None, :] >= lengths[:, None]] = 0.0  # zero padded, as the loaders give
    y = torch.randint(0, K, (B,), generator=g)
    return x, lengths, y


def repad(x: torch.Tensor, lengths: torch.Tensor, value: float) -> torch.Tensor:
    """The same series with something else in the padding."""
    x = x.clone()
    x[torch.arange(T)[None, :] >= lengths[:, None]] = value
    return x


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_shapes_equal_and_unequal_lengths(variant):
    torch.manual_seed(0)
    model = GTN(tiny(variant=variant)).eval()
    x, lengths, _ = batch()
    for lens in (None, torch.full((B,), T), lengths):
        out = model(x, lens)
        assert isinstance(out, GTNOutput)
        assert out.logits.shape == (B, K)
        assert out.gate.shape == (B, 2)
    with pytest.raises(ValueError):
        model(x[:, :-1], None)


@pytest.mark.parametrize("readout", ["flatten", "mean"])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_mask_hides_padding(variant, readout):
    torch.manual_seed(0)
    x, lengths, _ = batch()
    x_noisy = repad(x, lengths, 3.7)
    masked = GTN(tiny(variant=variant, readout=readout, mask=True, causal=False)).eval()
    a, b = masked(x, lengths), masked(x_noisy, lengths)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(a.gate, b.gate, rtol=0, atol=1e-6)
    # Same weights without the mask: the padding now leaks, so the test above can fail.
    unmasked = GTN(tiny(variant=variant, readout=readout, mask=False))
    unmasked.load_state_dict(masked.state_dict())
    unmasked.eval()
    c, d = unmasked(x, lengths), unmasked(x_noisy, lengths)
    assert (c.logits - d.logits).abs().max() > 1e-3


def test_mask_hides_nan_padding():
    torch.manual_seed(0)
    x, lengths, _ = batch()
    model = GTN(tiny(towers="both")).eval()
    out = model(repad(x, lengths, float("nan")), lengths)
    torch.testing.assert_close(out.logits, model(x, lengths).logits, rtol=0, atol=1e-6)


def test_single_towers_hide_padding():
    torch.manual_seed(0)
    x, lengths, _ = batch()
    for towers in ("step", "channel"):
        model = GTN(tiny(towers=towers, causal=True)).eval()
        a, b = model(x, lengths), model(repad(x, lengths, -2.0), lengths)
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-6)


def test_causal_mask_hides_the_future():
    torch.manual_seed(0)
    model = GTN(tiny(towers="step", causal=True, mask=False, variant="official", readout="flatten")).eval()
    x, _, _ = batch()
    x2 = x.clone()
    x2[:, -1] += 1.0  # change only the last step
    S1 = model._step_feature(x, None).view(B, T, -1)  # official + flatten: the raw tower output
    S2 = model._step_feature(x2, None).view(B, T, -1)
    torch.testing.assert_close(S1[:, :-1], S2[:, :-1], rtol=0, atol=1e-6)
    assert (S1[:, -1] - S2[:, -1]).abs().max() > 1e-4


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gate_is_a_distribution(variant):
    torch.manual_seed(1)
    x, lengths, _ = batch()
    gate = GTN(tiny(variant=variant)).eval()(x, lengths).gate
    torch.testing.assert_close(gate.sum(-1), torch.ones(B))
    assert ((gate > 0) & (gate < 1)).all()


def test_no_gate_without_gating():
    x, lengths, _ = batch()
    for cfg in (tiny(fusion="concat"), tiny(towers="step"), tiny(towers="channel")):
        assert GTN(cfg).eval()(x, lengths).gate is None


ABLATIONS = sorted(
    {
        (towers, fusion if towers == "both" else "gate", mask, variant, readout)
        for towers, fusion, mask, variant, readout in itertools.product(
            ("both", "step", "channel"), ("gate", "concat"), (True, False), ("paper", "official"), ("flatten", "mean")
        )
    }
)


@pytest.mark.parametrize("towers,fusion,mask,variant,readout", ABLATIONS)
def test_every_ablation_trains_one_step(towers, fusion, mask, variant, readout):
    torch.manual_seed(0)
    model = GTN(tiny(towers=towers, fusion=fusion, mask=mask, variant=variant, readout=readout, dropout=0.2))
    x, lengths, y = batch()
    opt = torch.optim.Adagrad(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    loss = F.cross_entropy(model(x, lengths).logits, y)
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    changed = sum(not torch.equal(p0, p) for p0, p in zip(before, model.parameters(), strict=True))
    assert changed > 0.9 * len(before)  # nearly every tensor got a gradient
    assert torch.isfinite(F.cross_entropy(model(x, lengths).logits, y))


def test_parameter_count_by_hand():
    # d_model 8, 2 heads of q = 3, v = 4, FFN 16, one encoder per tower; C = 3, T = 7, K = 5.
    cfg = tiny(d_model=8, n_heads=2, d_qk=3, d_v=4, d_hidden=16, n_layers=1)
    mha = (8 * 6 + 6) * 2 + (8 * 8 + 8) + (8 * 8 + 8)  # W_q, W_k: 8 -> 2*3; W_v: 8 -> 2*4; W_o: 8 -> 8
    ffn = (8 * 16 + 16) + (16 * 8 + 8)
    layer_norms = 2 * (8 + 8)
    block = mha + ffn + layer_norms
    assert (mha, ffn, block) == (252, 280, 564)
    step_tower = (3 * 8 + 8) + block  # embedding R^C -> R^d (sinusoidal PE has no parameters)
    channel_tower = (7 * 8 + 8) + block  # embedding R^T -> R^d
    d_z = 7 * 8 + 3 * 8  # flattened step (T*d) and channel (C*d) features = 80
    official = step_tower + channel_tower + (d_z * 2 + 2) + (d_z * 5 + 5)  # gate, classifier
    assert official == 1791
    assert GTN(replace(cfg, variant="official")).num_params() == official
    # Paper: a linear layer per tower to d before the gate, so gate and classifier read 2d = 16.
    paper = step_tower + channel_tower + (56 * 8 + 8) + (24 * 8 + 8) + (16 * 2 + 2) + (16 * 5 + 5)
    assert paper == 1999
    assert GTN(replace(cfg, variant="paper")).num_params() == paper
    # Concatenation drops only the gate; one tower drops the other tower and shrinks the head.
    assert GTN(replace(cfg, variant="official", fusion="concat")).num_params() == official - (d_z * 2 + 2)
    assert GTN(replace(cfg, variant="official", towers="step")).num_params() == step_tower + 56 * 5 + 5


def test_bad_config_is_rejected():
    with pytest.raises(ValueError):
        tiny(towers="three")
    with pytest.raises(ValueError):
        tiny(variant="mine")
