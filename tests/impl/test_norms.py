"""impl.norms against the paper's formulas and a transcription of the official code.

The official modules (tnq177/transformers_without_tears, layers.py/model.py/utils.py) are
transcribed below in a few lines each, with our weights copied into them.
"""

from __future__ import annotations

import math
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from impl import norms
from impl.norms import (
    FixNorm,
    LayerNorm,
    RMSNorm,
    ScaleNorm,
    make_norm,
    scale_norm,
    scale_norm_backend,
    scale_norm_naive,
)
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


# --- the fused C++ kernel (CPU) -------------------------------------------------------------------

# float32 tolerance for kernel against naive: both round differently (sum order, g/r vs g*(1/r)), a few
# ulps; tight enough that test_kernel_tolerance_catches_wrong_backwards fails wrong formulas.
TIGHT = dict(rtol=1e-5, atol=1e-7)
HAS_COMPILER = any(shutil.which(c) for c in ("c++", "g++", "clang++"))


@pytest.fixture
def kernel():
    if not HAS_COMPILER:
        pytest.skip("no C++ compiler (c++/g++/clang++) on PATH, so ScaleNorm cannot build its CPU kernel")
    assert scale_norm_backend("cpu") == "cpp", f"kernel failed to build: {norms._kernel_error}"


def test_kernel_is_the_cpu_path(kernel):
    assert norms._kernel_error is None
    assert scale_norm_backend(torch.device("cpu")) == "cpp"
    assert scale_norm_backend("cuda") == "eager"
    x = torch.randn(4, 16, requires_grad=True)
    assert _through_kernel(ScaleNorm(16)(x))
    assert not _through_kernel(ScaleNorm(16, fast=False)(x))


def _through_kernel(y: torch.Tensor) -> bool:
    return "ScaleNormFunction" in y.grad_fn.name()  # the C++ node, torch::autograd::CppNode<...>


def test_kernel_refuses_second_derivatives(kernel):
    x = torch.randn(3, 8, requires_grad=True)
    (gx,) = torch.autograd.grad(ScaleNorm(8)(x).sum(), x)  # once is fine
    assert gx.shape == x.shape
    with pytest.raises(RuntimeError, match=r"differentiable once.*fast=False"):
        torch.autograd.grad(ScaleNorm(8)(x).pow(2).sum(), x, create_graph=True)


def _kernel_case(dtype):
    """3-D, non-contiguous (a permute), d = 99 (six of the kernel's 16-lane blocks plus a tail), two
    rows with norm below eps, g = 1.7 != sqrt(d)."""
    torch.manual_seed(4)
    x = torch.randn(99, 7, 5, dtype=dtype).permute(2, 1, 0)  # (5, 7, 99), last dim strided
    x[1, 3] = 1e-8 * torch.randn(99, dtype=dtype)  # ||x|| ~ 1e-7 < eps: clamp active
    x[4, 0] = 0.0
    assert not x.is_contiguous()
    g = torch.tensor(1.7, dtype=dtype)
    dy = torch.randn(5, 7, 99, dtype=dtype)
    return x, g, dy


def _grads(fn, x, g, dy):
    x, g = x.detach().clone().requires_grad_(True), g.detach().clone().requires_grad_(True)
    y = fn(x, g)
    gx, gg = torch.autograd.grad(y, (x, g), dy)
    return y.detach(), gx, gg


def test_kernel_equals_naive_float32(kernel):
    x, g, dy = _kernel_case(torch.float32)
    y, gx, gg = _grads(scale_norm, x, g, dy)
    y0, gx0, gg0 = _grads(scale_norm_naive, x, g, dy)
    assert y.shape == x.shape and y.dtype == torch.float32 and gg.shape == ()
    torch.testing.assert_close(y, y0, **TIGHT)
    torch.testing.assert_close(gx, gx0, **TIGHT)
    torch.testing.assert_close(gg, gg0, **TIGHT)
    # the clamped rows: r = eps is a constant, so dx = (g/eps) dy exactly as derived
    for i, j in ((1, 3), (4, 0)):
        torch.testing.assert_close(gx[i, j], (1.7 / 1e-5) * dy[i, j], **TIGHT)
    torch.testing.assert_close(y[4, 0], torch.zeros(99))


def test_kernel_tolerance_catches_wrong_backwards(kernel):
    x, g, dy = _kernel_case(torch.float32)
    _, gx, gg = _grads(scale_norm, x, g, dy)
    r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=1e-5)
    dot = (dy * x).sum(-1, keepdim=True)
    clamped = r <= 1e-5
    wrong = {
        "no projection term": (g / r) * dy,
        "projection also where clamped": (g / r) * (dy - x * dot / r**2),
        "g/r off by 1e-4": (g / r) * (dy - x * dot / r**2 * (~clamped)) * (1 + 1e-4),
    }
    for name, gx_wrong in wrong.items():
        with pytest.raises(AssertionError):
            torch.testing.assert_close(gx, gx_wrong, **TIGHT)
            pytest.fail(f"tolerance does not catch a backward with {name}")
    with pytest.raises(AssertionError):  # dg off by one part in 1e4
        torch.testing.assert_close(gg, (dot / r).sum() * (1 + 1e-4), **TIGHT)


def test_kernel_float64_gradcheck_and_equals_naive(kernel):
    x, g, dy = _kernel_case(torch.float64)
    y, gx, gg = _grads(scale_norm, x, g, dy)
    y0, gx0, gg0 = _grads(scale_norm_naive, x, g, dy)
    torch.testing.assert_close(y, y0, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(gx, gx0, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(gg, gg0, rtol=1e-12, atol=1e-14)
    xs = x[:2, :3, :13].detach().clone().requires_grad_(True)  # small, gradcheck is O(numel^2)
    xs.data[1, 2] = 1e-9  # a clamped row, far from the kink so finite differences stay on one side
    gs = g.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: scale_norm(a, b, 1e-5), (xs, gs))
    assert _through_kernel(scale_norm(xs, gs))


def test_kernel_gradient_against_hand_derivation(kernel):
    # as test_fast_gradient_against_hand_derivation, in float32 through the kernel
    x = torch.tensor([3.0, 4.0], requires_grad=True)
    g = torch.tensor(5.0, requires_grad=True)
    y = scale_norm(x, g)
    assert _through_kernel(y)
    y.backward(torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(x.grad, torch.tensor([0.64, -0.48]), **TIGHT)
    torch.testing.assert_close(g.grad, torch.tensor(0.6), **TIGHT)


def test_eager_function_still_matches_naive():
    # the fallback (CUDA, no compiler) is no longer what scale_norm runs on CPU, so test it directly
    x, g, dy = _kernel_case(torch.float64)
    eager = lambda a, b: norms._ScaleNormFunction.apply(a, b, 1e-5)
    y, gx, gg = _grads(eager, x, g, dy)
    y0, gx0, gg0 = _grads(scale_norm_naive, x, g, dy)
    torch.testing.assert_close(y, y0)
    torch.testing.assert_close(gx, gx0)
    torch.testing.assert_close(gg, gg0)


def test_build_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    def no_compiler():
        raise RuntimeError("Error building extension: c++: not found")

    monkeypatch.setattr(norms, "_kernel", None)
    monkeypatch.setattr(norms, "_kernel_error", None)
    monkeypatch.setattr(norms, "_build_kernel", no_compiler)
    x = torch.randn(3, 8, requires_grad=True)
    with pytest.warns(RuntimeWarning, match=r"c\+\+: not found.*install a C\+\+ compiler .* ninja"):
        y = ScaleNorm(8)(x)
    torch.testing.assert_close(y, scale_norm_naive(x, torch.tensor(math.sqrt(8))))
    assert type(y.grad_fn).__name__ == "_ScaleNormFunctionBackward"
    assert scale_norm_backend() == "eager"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning comes once, not per call
        ScaleNorm(8)(x).sum().backward()
