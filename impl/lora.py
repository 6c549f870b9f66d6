"""LoRA: Low-Rank Adaptation of Large Language Models (Hu et al., 2021, arXiv 2106.09685).

A frozen pretrained weight W0 (d_out x d_in) is adapted by a low-rank update

    h = W0 x + (alpha / r) * B A x,        A: r x d_in,  B: d_out x r,  r << min(d_in, d_out)

Only A and B are trained. B starts at zero, so training starts exactly at the pretrained model.
For deployment the update is merged, W = W0 + (alpha / r) B A, and inference costs nothing extra.

This file is the layer (LoRALinear and its configuration); impl/lora_model.py applies it to a
whole model: choosing modules, injecting, saving, merging and counting. Plain PyTorch, the paper's
notation, nothing imported from `suites/`. Names follow the official code (loralib) and PEFT
(`lora_A`, `lora_B`, `scaling`, `merge`) so checkpoints and habits carry over.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LoRAConfig", "LoRALinear", "is_conv1d", "is_supported"]

INIT_A = ("kaiming", "gaussian")
BIAS_MODES = ("none", "all")


@dataclass
class LoRAConfig:
    r: int = 8
    # None -> alpha = r, i.e. scaling 1. The paper sets alpha "to the first r we try and not tune it",
    # so that changing r later does not require re-tuning the learning rate.
    alpha: float | None = None
    # Dropout on the input of the LoRA path only (the frozen W0 x path is never dropped).
    # The official GPT-2 runs use 0.1; the paper text does not mention it.
    dropout: float = 0.0
    # "kaiming": the official code (loralib), kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(d_in), 1/sqrt(d_in)),
    # the same as nn.Linear's default. "gaussian": the paper text ("random Gaussian initialization");
    # the paper gives no std, we use std = 1/r like PEFT's init_lora_weights="gaussian".
    init_A: str = "kaiming"
    # Which modules to adapt. See `matches_target` for the exact rule. The paper's best budget
    # choice (Table 5) is Wq and Wv, which is the default.
    target_modules: tuple[str, ...] = ("query", "value")
    pattern: bool = False
    # "none": only A and B train. "all": every bias in the model trains too (loralib's bias="all").
    bias: str = "none"
    # Fused projections (GPT-2's c_attn computes q, k, v in one matrix): split the output into
    # len(enable_lora) equal parts and adapt only the True ones, each with its own rank-r A and B
    # (loralib's MergedLinear). (True, False, True) on c_attn adapts Wq and Wv only.
    enable_lora: tuple[bool, ...] | None = None
    # LoRA weights of a 16-bit model are kept in fp32 (PEFT's autocast_adapter_dtype=True): a bf16
    # A and B would round most small updates away. False: LoRA takes the base weight's dtype.
    fp32_lora: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):  # a bare string would be matched letter by letter
            self.target_modules = (self.target_modules,)
        self.target_modules = tuple(self.target_modules)
        _check_hparams(self.r, self.dropout, self.init_A)
        if self.bias not in BIAS_MODES:
            raise ValueError(f"bias must be one of {BIAS_MODES}, got {self.bias!r}")
        if not self.target_modules:
            raise ValueError("target_modules is empty: nothing to adapt")
        if self.enable_lora is not None:
            self.enable_lora = tuple(bool(e) for e in self.enable_lora)

    @property
    def scaling(self) -> float:
        return _scaling(self.r, self.alpha)


def _check_hparams(r: int, dropout: float, init_A: str) -> None:
    if not isinstance(r, int) or r <= 0:
        raise ValueError(f"LoRA rank r must be a positive int, got {r!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if init_A not in INIT_A:
        raise ValueError(f"init_A must be one of {INIT_A}, got {init_A!r}")


def _scaling(r: int, alpha: float | None) -> float:
    return (r if alpha is None else alpha) / r


def is_conv1d(module: nn.Module) -> bool:
    # GPT-2's transformers.pytorch_utils.Conv1D: a linear layer storing its weight as [in, out]
    # and computing x @ W + b. Detected by name so that impl/ does not depend on transformers.
    return (
        type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None and module.weight.dim() == 2
    )


def is_supported(module: nn.Module) -> bool:
    # Exact type, not isinstance: subclasses of nn.Linear (quantised layers, other adapters)
    # have their own forward, which LoRALinear bypasses (see LoRALinear.forward).
    return type(module) is nn.Linear or is_conv1d(module)


def _merged_backward_error(grad: Tensor) -> Tensor:
    raise RuntimeError(
        "backward through a merged LoRA layer: its A and B would receive no gradient. Call model.train() "
        "(which unmerges, as in loralib) or unmerge_lora(model) before training."
    )


class _LoRAFunction(torch.autograd.Function):
    """h = W0 x + b + s B (A x) as one autograd node, for the common training case (no dropout).

    Autograd on the plain expression computes the input gradient as two [tokens, d_in] tensors,
    g W0 and s (g B) A, and then adds them. Here the second term is accumulated into the first in
    place (one addmm_ with beta = 1): one allocation and one pass over the input gradient fewer, which
    is most of what LoRA adds to a frozen layer's backward. The r-wide products are formed as
    [r, tokens] matrices (A x^T, B^T g^T), the layout in which the BLAS kernels for these skinny
    products ran fastest (measured, one thread, 1024 x 1024: 0.5 ms for A x^T against 0.8 ms for
    x A^T, and 0.3 against 0.7 ms for the weight gradients). Without the cache these products are
    bound by memory (a 4 MB pass each), so their order matters: about 4% of the step. Saves x (as
    nn.Linear does) and the r-wide A x^T. Gradients for W0 and b only when they are trainable (bias="all").
    """

    @staticmethod
    def forward(ctx, x, weight, bias, A, B, scaling: float, fan_in_fan_out: bool):
        w = weight.T if fan_in_fan_out else weight  # [out, in] either way
        ax_t = torch.mm(A, x.T)  # [r, tokens]; before the big product, which then finds x in cache
        h = F.linear(x, w, bias)
        h.addmm_(ax_t.T, B.T.contiguous(), alpha=scaling)
        ctx.save_for_backward(x, weight, A, B, ax_t)
        ctx.scaling, ctx.fan_in_fan_out = scaling, fan_in_fan_out
        return h

    @staticmethod
    def backward(ctx, g):
        x, weight, A, B, ax_t = ctx.saved_tensors
        s = ctx.scaling
        need_x, need_w, need_b, need_A, need_B = ctx.needs_input_grad[:5]
        w = weight.T if ctx.fan_in_fan_out else weight
        # Both r-wide products that read g run back to back, while g is in cache.
        gb_t = torch.mm(B.T.contiguous(), g.T)  # [r, tokens]: shared by dx and dA
        dx = dw = db = dA = dB = None
        if need_B:
            dB = torch.mm(ax_t, g).mul_(s).T
        if need_x:
            dx = g @ w
            dx.addmm_(gb_t.T, A, alpha=s)  # + s (g B) A, in place
        if need_A:
            dA = torch.mm(gb_t, x).mul_(s)
        if need_w:
            dw = g.T @ x
            dw = dw.T if ctx.fan_in_fan_out else dw
        if need_b:
            db = g.sum(0)
        return dx, dw, db, dA, dB, None, None


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (alpha / r) B A.

    `base` is an nn.Linear (weight [out, in]) or a GPT-2 style Conv1D (fan_in_fan_out=True,
    weight stored [in, out]). The base module is kept as is (as `self.base`), so merging and
    unloading hand back the very object that was wrapped. `enable_lora`: see LoRAConfig.

    A merged layer has no LoRA path, so training it would update nothing: `.train()` unmerges
    (as loralib does), and a backward pass through a layer merged by hand in training mode is an error.
    """

    def __init__(
        self,
        base: nn.Module,
        r: int,
        alpha: float | None = None,
        dropout: float = 0.0,
        init_A: str = "kaiming",
        fan_in_fan_out: bool = False,
        enable_lora: tuple[bool, ...] | None = None,
        fp32_lora: bool = True,
    ) -> None:
        super().__init__()
        _check_hparams(r, dropout, init_A)
        if type(base) is nn.Linear:
            if fan_in_fan_out:
                raise ValueError("fan_in_fan_out=True is for Conv1D (weight [in, out]); nn.Linear stores [out, in]")
            out_features, in_features = base.weight.shape
        elif is_conv1d(base):
            if not fan_in_fan_out:
                raise ValueError("Conv1D stores its weight as [in, out]: pass fan_in_fan_out=True")
            in_features, out_features = base.weight.shape
        else:
            raise TypeError(f"LoRALinear wraps nn.Linear or Conv1D, got {type(base).__name__}")
        self.base = base
        self.in_features, self.out_features = in_features, out_features
        self.fan_in_fan_out = fan_in_fan_out
        self.r, self.alpha = r, (r if alpha is None else alpha)
        self.scaling = _scaling(r, alpha)
        self.init_A = init_A
        self.merged = False
        # Output parts of a fused projection; the adapted ones get their own A (r rows) and B.
        self.enable_lora = tuple(enable_lora) if enable_lora is not None else (True,)
        parts, n_on = len(self.enable_lora), sum(self.enable_lora)
        if n_on == 0 or out_features % parts:
            raise ValueError(
                f"enable_lora={enable_lora} must have a True entry and divide out_features={out_features} equally"
            )
        self.part = out_features // parts
        # W0 (and its bias) are frozen; inject_lora re-enables biases when bias="all".
        for p in base.parameters():
            p.requires_grad_(False)
        # Identity when p = 0, so the common case does no dropout work at all (as in loralib).
        self.lora_dropout: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        w = base.weight
        dtype = torch.promote_types(w.dtype, torch.float32) if fp32_lora else w.dtype
        self.lora_A = nn.Parameter(torch.empty(n_on * r, in_features, device=w.device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.empty(n_on * self.part, r, device=w.device, dtype=dtype))
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        # Initialise in fp32 and cast, so a bf16 model gets the same draws as an fp32 one.
        A = torch.empty(self.lora_A.shape, device=self.lora_A.device, dtype=torch.float32)
        if self.init_A == "kaiming":
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))
        else:
            nn.init.normal_(A, std=1.0 / self.r)
        with torch.no_grad():
            self.lora_A.copy_(A)
            # B = 0: the update B A is zero at the start, so step 0 is the pretrained model.
            self.lora_B.zero_()

    # HF code sometimes reads `layer.weight` / `layer.bias` (e.g. for its dtype); delegate to W0.
    @property
    def weight(self) -> Tensor:
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    @property
    def fused(self) -> bool:
        return self.enable_lora != (True,)

    def _parts(self) -> Iterator[tuple[int, Tensor, Tensor]]:
        """(first output row, A_i, B_i) for each adapted part of the output."""
        on = [k for k, e in enumerate(self.enable_lora) if e]
        for i, k in enumerate(on):
            yield (
                k * self.part,
                self.lora_A[i * self.r : (i + 1) * self.r],
                self.lora_B[i * self.part : (i + 1) * self.part],
            )

    def delta_weight(self) -> Tensor:
        """(alpha / r) B A in the base weight's layout and dtype (computed in fp32 at least)."""
        dtype = torch.promote_types(self.lora_A.dtype, torch.float32)
        delta = torch.zeros(self.out_features, self.in_features, dtype=dtype, device=self.lora_A.device)
        for row, A, B in self._parts():
            delta[row : row + self.part] = (B.to(dtype) @ A.to(dtype)) * self.scaling
        if self.fan_in_fan_out:
            delta = delta.T
        return delta.to(self.base.weight.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """W = W0 + (alpha / r) B A. Idempotent. While merged, forward is just the base layer."""
        if not self.merged:
            self.base.weight.add_(self.delta_weight())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W = W - (alpha / r) B A: back to W0 (exactly up to floating-point rounding). Idempotent."""
        if self.merged:
            self.base.weight.sub_(self.delta_weight())
            self.merged = False

    def train(self, mode: bool = True) -> LoRALinear:
        if mode:
            self.unmerge()  # a merged layer would train nothing (loralib does the same)
        return super().train(mode)

    def _base_forward(self, x2: Tensor) -> Tensor:
        # The base layer on a 2-D input. Computed here rather than by calling self.base, so the
        # output is a fresh tensor (not a view) that the LoRA update can be added into in place.
        w, b = self.base.weight, self.base.bias
        if self.fan_in_fan_out:
            return x2 @ w if b is None else torch.addmm(b, x2, w)
        return F.linear(x2, w, b)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if self.merged:
            h = self._base_forward(x2)  # W0 + (alpha/r) B A
            if self.training and torch.is_grad_enabled() and self.lora_A.requires_grad:
                # Merged while training: A and B are not in the graph, so a step would update nothing.
                # Tie them in with an exact zero so that backward reaches the hook and fails loudly.
                h = h + 0.0 * self.lora_A.sum()
                h.register_hook(_merged_backward_error)
            return h.view(*lead, self.out_features)
        w, A, B = self.base.weight, self.lora_A, self.lora_B
        if (
            not self.fused
            and isinstance(self.lora_dropout, nn.Identity)
            and x2.dtype == w.dtype == A.dtype
            and not torch.is_autocast_enabled(x2.device.type)
        ):
            h = _LoRAFunction.apply(x2, w, self.base.bias, A, B, self.scaling, self.fan_in_fan_out)
            return h.view(*lead, self.out_features)
        # General path: dropout, a fused projection, mixed dtypes or autocast (which does not cast
        # in-place ops, so the update is done in the output's dtype).
        h = self._base_forward(x2)
        # The scaling multiplies the r-wide A x rather than the d_out-wide output: r / d_out of the work.
        ax = F.linear(self.lora_dropout(x2.to(A.dtype)), A) * self.scaling
        ax = ax if ax.dtype == h.dtype else ax.to(h.dtype)
        for i, (row, _, B_i) in enumerate(self._parts()):
            B_i = B_i if B_i.dtype == h.dtype else B_i.to(h.dtype)
            # h += (A x) B^T inside one GEMM call (beta = 1). In place is safe for autograd: neither
            # linear nor addmm saves its output.
            out = h if not self.fused else h[:, row : row + self.part]  # a slice is a view: still in place
            out.addmm_(ax[:, i * self.r : (i + 1) * self.r], B_i.T)
        return h.view(*lead, self.out_features)

    def extra_repr(self) -> str:
        fused = f", enable_lora={self.enable_lora}" if self.fused else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
            f"alpha={self.alpha}, scaling={self.scaling:g}, fan_in_fan_out={self.fan_in_fan_out}, "
            f"merged={self.merged}{fused}"
        )
