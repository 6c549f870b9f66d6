"""impl.norms against the paper's formulas and a transcription of the official code.

The official modules (tnq177/transformers_without_tears, layers.py/model.py/utils.py) are
transcribed below in a few lines each, with our weights copied into them.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from impl.norms import FixNorm, LayerNorm, RMSNorm, ScaleNorm, make_norm, scale_norm, scale_norm_naive
from impl.seq2seq import positional_encoding


class OfficialScaleNorm(torch.nn.Module):
    """layers.py ScaleNorm, transcribed."""

    def __init__(self, scale, eps=1e-5):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.eps = eps

    def forward(self, x):
        norm = self.scale / torch.norm(x, dim=-1, keepdim=True).clamp(min=self.eps)
        return x * norm


def official_positional_encoding(dim, sentence_length):
    """utils.py get_positional_encoding after the 2021 fix, transcribed."""
    div_term = -(torch.arange(end=float(dim)) // 2) * 2.0 / dim
    div_term = torch.pow(10000.0, div_term).reshape(1, -1)
    pos = torch.arange(end=float(sentence_length)).reshape(-1, 1)
    encoded_vec = torch.matmul(pos, div_term)
    encoded_vec[:, 0::2] = torch.sin(encoded_vec[:, 0::2])
    encoded_vec[:, 1::2] = torch.cos(encoded_vec[:, 1::2])
    return encoded_vec.reshape([sentence_length, dim])


@pytest.mark.parametrize("fast", [True, False])
def test_scalenorm_output_norm_is_g(fast):
    torch.manual_seed(0)
    norm = ScaleNorm(64, fast=fast)
    with torch.no_grad():
        norm.g.fill_(3.7)
    y = norm(torch.randn(5, 7, 64) * 13.0)
    torch.testing.assert_close(y.norm(dim=-1), torch.full((5, 7), 3.7))


def test_g_starts_at_sqrt_d_not_one():
    for d in (16, 512):
        norm = ScaleNorm(d)
        assert norm.g.shape == ()  # one scalar per layer, not a vector
        assert norm.g.item() == pytest.approx(math.sqrt(d))
        # then a vector of unit-variance entries keeps its typical norm
        y = norm(torch.randn(1000, d))
        assert y.norm(dim=-1).mean().item() == pytest.approx(math.sqrt(d), rel=1e-5)


def test_matches_official_scalenorm_with_weights_copied():
    torch.manual_seed(1)
    ours, theirs = ScaleNorm(32), OfficialScaleNorm(32**0.5)
    with torch.no_grad():
        ours.g.fill_(2.25)
        theirs.scale.fill_(2.25)
    x = torch.randn(4, 9, 32)
    x[0, 0] = 0.0  # the clamp
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2)
    dy = torch.randn_like(y1)
    y1.backward(dy)
    y2.backward(dy)
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.g.grad, theirs.scale.grad)


def test_fast_gradients_pass_gradcheck_and_equal_naive():
    torch.manual_seed(2)
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    x[1, 2] = 1e-7  # below eps: the clamp is active there
    x.requires_grad_(True)
    g = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: scale_norm(a, b, 1e-5), (x, g))
    dy = torch.randn(3, 5, 8, dtype=torch.float64)
    gx_fast, gg_fast = torch.autograd.grad(scale_norm(x, g), (x, g), dy)
    gx_naive, gg_naive = torch.autograd.grad(scale_norm_naive(x, g), (x, g), dy)
    torch.testing.assert_close(gx_fast, gx_naive)
    torch.testing.assert_close(gg_fast, gg_naive)
    torch.testing.assert_close(scale_norm(x, g), scale_norm_naive(x, g))


def test_fast_gradient_against_hand_derivation():
    # d/dx of g x/||x|| at x = (3, 4), g = 5, upstream (1, 0): (g/r)(e1 - x x1/r^2) = (0.64, -0.48)
    x = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    scale_norm(x, g).backward(torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(x.grad, torch.tensor([0.64, -0.48], dtype=torch.float64))
    torch.testing.assert_close(g.grad, torch.tensor(0.6, dtype=torch.float64))


def test_make_norm_kinds_and_bad_name():
    assert isinstance(make_norm("layer", 8), LayerNorm)
    assert isinstance(make_norm("scale", 8), ScaleNorm)
    assert isinstance(make_norm("rms", 8), RMSNorm)
    assert sum(p.numel() for p in make_norm("layer", 8).parameters()) == 16
    assert sum(p.numel() for p in make_norm("scale", 8).parameters()) == 1
    assert sum(p.numel() for p in make_norm("rms", 8).parameters()) == 8
    with pytest.raises(ValueError, match="unknown norm"):
        make_norm("batch", 8)
    with pytest.raises(ValueError, match="d=8"):
        ScaleNorm(8)(torch.randn(2, 9))


def test_rmsnorm_formula():
    x = torch.randn(3, 6)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(RMSNorm(6)(x), expected)


def test_fixnorm_matches_official_embedding_and_logits():
    torch.manual_seed(3)
    fix = FixNorm(20, 16)
    assert fix.weight.abs().max().item() <= 0.01  # uniform [-0.01, 0.01] init
    with torch.no_grad():
        fix.weight.normal_()
    w = fix.weight.detach()
    tokens = torch.tensor([[1, 5, 19], [0, 0, 7]])
    # model.py: word_embedding = F.normalize(self.word_embedding, dim=-1); F.embedding(toks, word_embedding)
    torch.testing.assert_close(fix(tokens), F.embedding(tokens, F.normalize(w, dim=-1)))
    torch.testing.assert_close(fix(tokens).norm(dim=-1), torch.ones(2, 3))
    # logits with a ScaleNorm in front are g * cos(x, w)
    x = torch.randn(4, 16)
    sn = ScaleNorm(16)
    logits = fix.logits(sn(x))
    cos = F.cosine_similarity(x[:, None, :], w[None, :, :], dim=-1)
    torch.testing.assert_close(logits, sn.g.detach() * cos, rtol=1e-5, atol=1e-5)


def test_positional_encoding_sin_on_even_cos_on_odd():
    pe = positional_encoding(50, 16)
    torch.testing.assert_close(pe, official_positional_encoding(16, 50))
    p = 7
    torch.testing.assert_close(pe[p, 0], torch.tensor(math.sin(p)))
    torch.testing.assert_close(pe[p, 1], torch.tensor(math.cos(p)))
    torch.testing.assert_close(pe[p, 2], torch.tensor(math.sin(p / 10000 ** (2 / 16))))
    torch.testing.assert_close(pe[p, 3], torch.tensor(math.cos(p / 10000 ** (2 / 16))))
