"""GTN: shapes, masking, gate, every ablation trains, parameter count by hand."""

from __future__ import annotations

import itertools
import math
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


_SWITCHES = (("both", "step", "channel"), ("gate", "concat"), (True, False), ("paper", "official"), ("flatten", "mean"))
ABLATIONS = sorted({(tw, fu if tw == "both" else "gate", m, v, r) for tw, fu, m, v, r in itertools.product(*_SWITCHES)})


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


# --- the official forward pass, transcribed --------------------------------------------------------
# A small transcription of the released code's `Transformer.forward` (github ZZUFaceBookDL/GTN,
# module/transformer.py, encoder.py, multiHeadAttention.py, feedForward.py), written here from its
# structure: heads split by chunking the projection and stacking the chunks on the batch axis, the
# causal mask as a -2**32+1 fill applied only when stage == "train", post-LN encoders, the
# step-wise tower embedded by `embedding_channel` (R^C -> R^d) with the sin/cos table added, the
# channel-wise tower by `embedding_input` (R^T -> R^d) with none, and the gate over the
# concatenation [step ; channel]. Our model's weights are copied across by name.


class RefMHA(torch.nn.Module):
    def __init__(self, d, q, v, h, mask):
        super().__init__()
        self.W_q, self.W_k = torch.nn.Linear(d, q * h), torch.nn.Linear(d, q * h)
        self.W_v, self.W_o = torch.nn.Linear(d, v * h), torch.nn.Linear(v * h, d)
        self.h, self.q, self.mask = h, q, mask

    def forward(self, x, stage):
        Q, K, V = (torch.cat(W(x).chunk(self.h, dim=-1), dim=0) for W in (self.W_q, self.W_k, self.W_v))
        score = Q @ K.transpose(-1, -2) / self.q**0.5
        if self.mask and stage == "train":
            keep = torch.tril(torch.ones_like(score[0])) > 0
            score = torch.where(keep, score, torch.full_like(score[0], -(2.0**32) + 1))
        heads = torch.softmax(score, dim=-1) @ V
        return self.W_o(torch.cat(heads.chunk(self.h, dim=0), dim=-1))


class RefEncoder(torch.nn.Module):
    def __init__(self, d, d_hidden, q, v, h, mask):
        super().__init__()
        self.MHA = RefMHA(d, q, v, h, mask)
        self.linear_1, self.linear_2 = torch.nn.Linear(d, d_hidden), torch.nn.Linear(d_hidden, d)
        self.layerNormal_1, self.layerNormal_2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)

    def forward(self, x, stage):
        x = self.layerNormal_1(self.MHA(x, stage) + x)
        return self.layerNormal_2(self.linear_2(F.relu(self.linear_1(x))) + x)


class RefTransformer(torch.nn.Module):
    """The released forward; with `paper=True` the paper's text on top of it (tanh after each
    embedding; per tower a linear layer + tanh before the gate) and the mask also at evaluation."""

    def __init__(self, cfg: GTNConfig, paper: bool = False):
        super().__init__()
        d, T, C = cfg.d_model, cfg.n_steps, cfg.n_channels
        args = (d, cfg.d_hidden, cfg.d_qk, cfg.d_v, cfg.n_heads)
        self.encoder_list_1 = torch.nn.ModuleList(RefEncoder(*args, mask=True) for _ in range(cfg.n_layers))
        self.encoder_list_2 = torch.nn.ModuleList(RefEncoder(*args, mask=False) for _ in range(cfg.n_layers))
        self.embedding_channel, self.embedding_input = torch.nn.Linear(C, d), torch.nn.Linear(T, d)
        d_z = 2 * d if paper else d * T + d * C
        if paper:
            self.proj_S, self.proj_C = torch.nn.Linear(d * T, d), torch.nn.Linear(d * C, d)
        self.gate = torch.nn.Linear(d_z, 2)
        self.output_linear = torch.nn.Linear(d_z, cfg.n_classes)
        self.T, self.d, self.paper = T, d, paper

    def forward(self, x, stage):
        if self.paper:
            return self._paper_forward(x)
        enc1 = self.embedding_channel(x)
        pe = torch.ones_like(enc1[0])
        angle = torch.arange(self.T).unsqueeze(-1).to(x.dtype) @ torch.exp(
            torch.arange(0, self.d, 2).to(x.dtype) * -(math.log(10000) / self.d)
        ).unsqueeze(0)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
        enc1 = enc1 + pe
        for encoder in self.encoder_list_1:
            enc1 = encoder(enc1, stage)
        enc2 = self.embedding_input(x.transpose(-1, -2))
        for encoder in self.encoder_list_2:
            enc2 = encoder(enc2, stage)
        enc1, enc2 = enc1.reshape(len(x), -1), enc2.reshape(len(x), -1)
        gate = torch.softmax(self.gate(torch.cat([enc1, enc2], dim=-1)), dim=-1)
        return self.output_linear(torch.cat([enc1 * gate[:, 0:1], enc2 * gate[:, 1:2]], dim=-1)), gate

    def _paper_forward(self, x):
        # Written out again rather than shared with the released path, so that a tanh dropped from
        # either place in impl/gtn.py, or the mask dropped at evaluation, shows as a mismatch.
        position = torch.arange(self.T).unsqueeze(-1).to(x.dtype)
        angle = position * torch.exp(torch.arange(0, self.d, 2).to(x.dtype) * -(math.log(10000) / self.d))
        pe = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(self.T, self.d)
        enc1 = torch.tanh(self.embedding_channel(x)) + pe
        for encoder in self.encoder_list_1:
            enc1 = encoder(enc1, "train")  # the paper masks the step-wise tower at evaluation too
        enc2 = torch.tanh(self.embedding_input(x.transpose(-1, -2)))
        for encoder in self.encoder_list_2:
            enc2 = encoder(enc2, "train")  # no mask in this tower, whatever the stage
        S = torch.tanh(self.proj_S(enc1.reshape(len(x), -1)))
        Ch = torch.tanh(self.proj_C(enc2.reshape(len(x), -1)))
        gate = torch.softmax(self.gate(torch.cat([S, Ch], dim=-1)), dim=-1)
        return self.output_linear(torch.cat([S * gate[:, 0:1], Ch * gate[:, 1:2]], dim=-1)), gate


def to_reference(model: GTN) -> RefTransformer:
    """Our weights under the official code's names."""
    ref = RefTransformer(model.cfg, paper=model.cfg.variant == "paper").to(next(model.parameters()).dtype)
    names = {
        "attn.": "MHA.",
        "ffn.fc1": "linear_1",
        "ffn.fc2": "linear_2",
        "ln1": "layerNormal_1",
        "ln2": "layerNormal_2",
    }
    state = {}
    for key, value in model.state_dict().items():
        for tower, ref_list, ref_embed in (("step.", "encoder_list_1.", "embedding_channel."),
                                           ("channel.", "encoder_list_2.", "embedding_input.")):  # fmt: skip
            if key.startswith(tower):
                key = key[len(tower) :].replace("blocks.", ref_list).replace("embed.", ref_embed)
        for ours, theirs in names.items():
            key = key.replace(ours, theirs)
        key = key.replace("head.", "output_linear.")
        state[key] = value
    ref.load_state_dict(state, strict=True)  # every parameter mapped, none left over
    return ref.eval()


def official_model(seed: int = 0, **overrides) -> GTN:
    torch.manual_seed(seed)
    cfg = tiny(variant="official", mask=False, causal=True, causal_eval=False, d_model=8, n_layers=2, **overrides)
    return GTN(cfg).double().eval()


def assert_matches_official(model: GTN, x: torch.Tensor) -> None:
    ref = to_reference(model)
    for stage in ("train", "test"):  # train: the causal mask is on (dropout is 0 in both)
        model.train(stage == "train")
        ours = model(x)
        logits, gate = ref(x, stage)
        torch.testing.assert_close(ours.logits, logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(ours.gate, gate, rtol=0, atol=1e-6)
    model.eval()


def test_forward_equals_the_official_transcription():
    model = official_model()
    x = batch()[0].double()
    assert_matches_official(model, x)
    # The comparison has teeth: the mask changes the output, and the gate is not uniform.
    model.train()
    with_mask = model(x).logits
    model.eval()
    assert (with_mask - model(x).logits).abs().max() > 1e-4
    assert (model(x).gate - 0.5).abs().max() > 1e-3


def test_the_transcription_catches_swapped_gate_columns():
    model, x = official_model(), batch()[0].double()
    linear = model.gate
    # The same gate weights, its two output columns swapped: step gets the channel weight.
    linear.forward = lambda h: F.linear(h, linear.weight, linear.bias).flip(-1)
    with pytest.raises(AssertionError):
        assert_matches_official(model, x)


def test_the_transcription_catches_positional_encoding_on_the_wrong_tower():
    from impl.gtn import sinusoidal_encoding

    model, x = official_model(), batch()[0].double()
    model.channel.pe = sinusoidal_encoding(C, model.cfg.d_model).double()
    model.step.pe = None
    with pytest.raises(AssertionError):
        assert_matches_official(model, x)


def test_the_transcription_catches_a_mask_at_evaluation():
    model, x = official_model(), batch()[0].double()
    model.cfg.causal_eval = True  # the paper's reading: masked at test time too; not the code's
    with pytest.raises(AssertionError):
        assert_matches_official(model, x)


def test_causal_mask_in_training_only_shows_the_future_at_evaluation():
    torch.manual_seed(0)
    model = GTN(tiny(towers="step", causal=True, causal_eval=False, mask=False, variant="official"))
    x, _, _ = batch()
    x2 = x.clone()
    x2[:, -1] += 1.0
    for training, hidden in ((True, True), (False, False)):
        model.train(training)
        S1, S2 = (model._step_feature(v, None).view(B, T, -1) for v in (x, x2))
        assert torch.allclose(S1[:, 0], S2[:, 0], atol=1e-6) == hidden  # step 0 sees step T-1 only at eval


@pytest.mark.parametrize("causal", [False, True])
def test_a_padded_series_reads_as_the_short_series_alone(causal):
    # With the padding mask and the mean readout, a series of length L padded to T gives the same
    # logits as a step-only model of length L (same weights, PE is a prefix) on the bare series:
    # catches a readout that divides by T, a leaky key mask, or PE positions shifted by padding.
    torch.manual_seed(0)
    cfg = tiny(towers="step", readout="mean", causal=causal)
    model = GTN(cfg).eval()
    x, lengths, _ = batch()
    out = model(x, lengths).logits
    for i, L in enumerate(lengths.tolist()):
        short = GTN(replace(cfg, n_steps=L)).eval()
        short.load_state_dict(model.state_dict())
        torch.testing.assert_close(short(x[i : i + 1, :L]).logits, out[i : i + 1], rtol=0, atol=1e-5)


# --- the paper's variant, and wiring mistakes each test below was seen to catch ---------------------


def paper_model(seed: int = 0) -> GTN:
    torch.manual_seed(seed)
    cfg = tiny(variant="paper", mask=False, causal=True, d_model=8, n_layers=2)  # masked at evaluation too
    return GTN(cfg).double().eval()


def test_paper_variant_equals_its_transcription():
    # Fails if the tanh after an embedding or after a tower's projection is removed, if the step-wise
    # mask is dropped at evaluation, if the projections are swapped between the towers, or if the
    # positional encoding moves to the channel tower (as the official transcription above).
    model, x = paper_model(), batch()[0].double()
    ref = to_reference(model)
    for training in (True, False):
        model.train(training)
        out = model(x)
        logits, gate = ref(x, "train" if training else "test")
        torch.testing.assert_close(out.logits, logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(out.gate, gate, rtol=0, atol=1e-6)
    # Teeth: without the tanh the transcription differs (the embeddings leave [-1, 1] at this scale).
    with torch.no_grad():
        model.step.embed.weight.mul_(5.0)
    ref = to_reference(model)
    model.step.tanh = False
    assert (model(x).logits - ref(x, "test")[0]).abs().max() > 1e-4


@pytest.mark.parametrize("side", ["future", "past"])
def test_the_step_mask_hides_the_future_not_the_past(side):
    # Change only the last step (the future of every other step) or only the first (their past).
    torch.manual_seed(0)
    model = GTN(tiny(towers="step", causal=True, mask=False, variant="official")).eval()
    x = batch()[0]
    x2 = x.clone()
    x2[:, -1 if side == "future" else 0] += 1.0
    S1, S2 = (model._step_feature(v, None).view(B, T, -1) for v in (x, x2))
    if side == "future":
        assert (S1[:, :-1] - S2[:, :-1]).abs().max() < 1e-6  # no earlier step saw the change
    else:
        assert ((S1[:, 1:] - S2[:, 1:]).abs().amax(-1) > 1e-6).all()  # every later step saw it
