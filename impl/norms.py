"""Normalisation layers of "Transformers without Tears" (Nguyen & Salazar, 2019).

- LayerNorm: the usual per-dimension mean/variance normalisation with gain and bias.
- ScaleNorm(x; g) = g * x / max(||x||, eps): one learned scalar g per layer, initialised to sqrt(d)
  so that the output has the norm a unit-variance d-vector would have (a common port sets g = 1,
  which shrinks every activation by sqrt(d); tested against).
- RMSNorm: the closest relative, a per-dimension gain instead of one scalar.
- FixNorm: word embeddings projected onto the unit sphere; with a ScaleNorm in front of the output
  layer the logits become g * cos(w, x).

ScaleNorm's selling point is speed (about 3d operations per vector against LayerNorm's 7d), but
written as plain tensor operations it launches several kernels and keeps autograd intermediates
for each, and runs slower than PyTorch's fused LayerNorm. `ScaleNorm(fast=True)` therefore uses a
custom autograd Function with a hand-derived backward that needs one saved tensor and two passes
over the input per direction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FixNorm", "LayerNorm", "RMSNorm", "ScaleNorm", "make_norm", "scale_norm", "scale_norm_naive"]


def scale_norm_naive(x: torch.Tensor, g: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The paper's formula, left to autograd (the reference the fast version is tested against)."""
    return x * (g / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=eps))


class _ScaleNormFunction(torch.autograd.Function):
    """y = g x / r with r = max(||x||, eps).

    Backward (for r = ||x|| > eps): dL/dx = (g/r) (dy - x (dy.x) / r^2) and dL/dg = sum (dy.x) / r.
    Where the clamp is active r is a constant, so dL/dx = (g/r) dy. Only x and 1/r are saved, and
    the backward writes the product dy * x into the buffer that becomes dL/dx, so it allocates one
    full-size tensor (the operation is memory-bound; measured: blocking the rows for cache was slower
    with more than one thread, and not reliably faster with one).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
        inv = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_(min=eps).reciprocal_()
        ctx.save_for_backward(x, g, inv)
        ctx.eps = eps
        return x * (inv * g)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, g, inv = ctx.saved_tensors
        dy = dy.contiguous()
        dx = torch.mul(dy, x)
        dot = dx.sum(dim=-1, keepdim=True)  # dy.x per vector
        # Rows whose norm was clamped: r is a constant there, so no projection term.
        coef = dot * inv * inv * (inv < 1.0 / ctx.eps).to(x.dtype)
        torch.addcmul(dy, x, coef, value=-1.0, out=dx).mul_(inv * g)
        dg = (dot * inv).sum().reshape(g.shape) if ctx.needs_input_grad[1] else None
        return dx, dg, None


def scale_norm(x: torch.Tensor, g: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Fast ScaleNorm: same values and gradients as `scale_norm_naive`, fewer passes."""
    return _ScaleNormFunction.apply(x, g, eps)


class ScaleNorm(nn.Module):
    """ScaleNorm with one learned scalar g, initialised to sqrt(d) (the paper; not 1)."""

    def __init__(self, d: int, eps: float = 1e-5, fast: bool = True):
        super().__init__()
        self.d, self.eps, self.fast = d, eps, fast
        self.g = nn.Parameter(torch.tensor(math.sqrt(d)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d:
            raise ValueError(f"ScaleNorm was built for d={self.d} but got vectors of size {x.shape[-1]}")
        return (scale_norm if self.fast else scale_norm_naive)(x, self.g, self.eps)

    def extra_repr(self) -> str:
        return f"d={self.d}, eps={self.eps}, fast={self.fast}"


class LayerNorm(nn.LayerNorm):
    """torch's fused LayerNorm (gain 1, bias 0 at init), named here so every norm builds alike."""

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__(d, eps=eps)


class RMSNorm(nn.RMSNorm):
    """x / rms(x) * gamma with a per-dimension gain (torch's implementation)."""

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__(d, eps=eps)


NORMS = {"layer": LayerNorm, "scale": ScaleNorm, "rms": RMSNorm}


def make_norm(kind: str, d: int) -> nn.Module:
    """A norm layer by name: layer | scale | rms."""
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; choose one of {sorted(NORMS)}")
    return NORMS[kind](d)


class FixNorm(nn.Module):
    """Tied word embeddings on the unit sphere (Nguyen & Chiang 2018).

    Inputs look up the l2-normalised rows; output logits are x . w/||w||. With a ScaleNorm (gain g)
    before the output layer, as in PreNorm + ScaleNorm, the logits are g * cos(x, w): the learned
    scale lives in that norm, as in the official code. Rows start uniform in [-0.01, 0.01].
    """

    def __init__(self, vocab_size: int, d: int, init_range: float = 0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, d).uniform_(-init_range, init_range))

    def normalized(self) -> torch.Tensor:
        return F.normalize(self.weight, dim=-1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.normalized())

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized())
