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
for each, and runs slower than PyTorch's fused LayerNorm. A custom autograd Function with a
hand-derived backward (`_ScaleNormFunction`, one saved tensor) still took 1.25-1.45x LayerNorm's
forward + backward time on CPU (2048 x 512 fp32), and torch.compile of the same math about 1.03x:
each direction still makes several trips through memory, where LayerNorm's CPU kernel makes one
per row. So on CPU `scale_norm` runs a fused per-row C++ kernel (impl/csrc/scale_norm.cpp: reduce a
row, then write it while it is still in cache; rows split over torch's threads) behind a C++
autograd node, compiled on first use by torch.utils.cpp_extension and kept in torch's extension
cache (about 20 s, once). Measured on 2048 x 512 fp32 (2-core AVX-512 VM, results/bench/norm.md):
forward + backward through autograd takes 0.66-0.81x of nn.LayerNorm's time when neither pays page
faults, and the forward alone runs as fast as one elementwise multiply, i.e. at the memory bandwidth
floor. Under glibc's default allocator either norm may re-fault its 4 MB buffers each step,
depending on the heap's state, and the ratio moved between 0.71x and 1.00x over five runs. The
eager Function remains for CUDA tensors (not measured here: no GPU), for dtypes the kernel does not
cover, and for machines that cannot build the kernel (no C++ compiler or no ninja), with one
warning saying so; `scale_norm_backend()` says which path runs.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import threading
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FixNorm",
    "LayerNorm",
    "RMSNorm",
    "ScaleNorm",
    "make_norm",
    "scale_norm",
    "scale_norm_backend",
    "scale_norm_naive",
]


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


_KERNEL_SOURCE = Path(__file__).resolve().parent / "csrc" / "scale_norm.cpp"
# -fopenmp: at::parallel_for is a header template that only runs in parallel when compiled with
# OpenMP (the OpenMP runtime itself comes from libtorch). -march=native: measured 0.75x against
# 0.92x LayerNorm's time with one thread (AVX2/AVX-512 FMAs instead of SSE2); the portable flags
# are the second try for compilers that reject it.
_KERNEL_FLAGS = (("-O3", "-fopenmp", "-march=native"), ("-O3", "-fopenmp"))
_kernel = None  # torch.ops.claimbench_norms, once the kernel is built and loaded
_kernel_error: str | None = None  # why it could not be built, once tried and failed
_kernel_lock = threading.Lock()


def _cpu_tag() -> str:
    """The CPU model and feature flags: -march=native code only runs on CPUs like the builder's, so
    they go into the module name, and a cache directory shared between machines stays safe."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "".join(next((ln for ln in lines if ln.startswith(k)), "") for k in ("model name", "flags"))
    except OSError:
        return platform.processor() or platform.machine()


def _build_kernel():
    from torch.utils import cpp_extension

    source = _KERNEL_SOURCE.read_bytes()
    old_path = os.environ.get("PATH", "")
    try:  # `pip install ninja` puts the binary in the package, not always on PATH (a venv not activated)
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + old_path
    except ImportError:
        pass
    try:
        for i, flags in enumerate(_KERNEL_FLAGS):
            # A changed source, flag set, torch or CPU gets a new name, so torch rebuilds it.
            key = b"\0".join([source, " ".join(flags).encode(), torch.__version__.encode(), _cpu_tag().encode()])
            name = "claimbench_scale_norm_" + hashlib.sha256(key).hexdigest()[:16]
            try:
                cpp_extension.load(
                    name=name, sources=[str(_KERNEL_SOURCE)], extra_cflags=list(flags), is_python_module=False
                )
                return torch.ops.claimbench_norms
            except Exception:
                if i == len(_KERNEL_FLAGS) - 1:
                    raise
    finally:
        os.environ["PATH"] = old_path


def _load_kernel():
    """The compiled kernel module, built on first call; None (and one warning) if it cannot be."""
    global _kernel, _kernel_error
    if _kernel is None and _kernel_error is None:
        with _kernel_lock:
            if _kernel is None and _kernel_error is None:
                try:
                    _kernel = _build_kernel()
                except Exception as err:  # never fail a forward pass over a build
                    detail = " ".join(str(err).split())
                    _kernel_error = f"{type(err).__name__}: {detail[:400]}"
                    warnings.warn(
                        "ScaleNorm: could not build the C++ CPU kernel, so it runs the slower eager autograd "
                        f"path ({_kernel_error}). Fix: install a C++ compiler (g++/clang++) and ninja "
                        "(`pip install ninja`), then restart Python.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
    return _kernel


def _kernel_applies(x: torch.Tensor, g: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and g.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and x.dim() >= 1
        and g.numel() == 1
    )


def scale_norm_backend(device: str | torch.device = "cpu") -> str:
    """Which path `scale_norm` takes for float tensors on `device`: "cpp" (the fused kernel) or
    "eager" (the autograd Function of tensor ops). Builds the kernel if it was not built yet."""
    if torch.device(device).type != "cpu":
        return "eager"
    return "cpp" if _load_kernel() is not None else "eager"


def scale_norm(x: torch.Tensor, g: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Fast ScaleNorm: same values and gradients as `scale_norm_naive`, fewer passes.

    CPU float tensors go through the C++ kernel when it builds; anything else through the eager
    autograd Function."""
    if _kernel_applies(x, g) and _load_kernel() is not None:
        return _kernel.scale_norm(x, g, eps)
    return _ScaleNormFunction.apply(x, g, eps)


class ScaleNorm(nn.Module):
    """ScaleNorm with one learned scalar g, initialised to sqrt(d) (the paper; not 1)."""

    def __init__(self, d: int, eps: float = 1e-5, fast: bool = True):
        super().__init__()
        self.d, self.eps, self.fast = d, eps, fast
        self.g = nn.Parameter(torch.tensor(math.sqrt(d)))
        if fast:  # build the CPU kernel now, not inside the first (timed) training step
            _load_kernel()

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
