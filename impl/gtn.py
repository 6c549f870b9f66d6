"""Gated Transformer Networks for multivariate time series classification.

Liu, Gong, Shen et al., "Gated Transformer Networks for Multivariate Time Series Classification",
arXiv 2103.14438 (2021). Official code: github ZZUFaceBookDL/GTN.

Input x is (batch, T steps, C channels), zero padded to a common length T, with the true lengths
alongside. Two towers of post-LN transformer encoders read it:

    step-wise tower     tokens = the T time steps    (embedding R^C -> R^d, + sinusoidal PE)
    channel-wise tower  tokens = the C channels      (embedding R^T -> R^d, no PE: channels
                                                      have no order)

and a gate mixes them (paper notation, C = channel-wise, S = step-wise feature):

    h = W [C ; S] + b,   (g1, g2) = softmax(h),   z = [C * g1 ; S * g2],   logits = W_out z

Two readings of the paper exist, both selectable with `GTNConfig.variant`:
    "paper"    : embedding = tanh(linear); each tower's flattened output goes through a linear
                 layer + tanh before the gate (the paper's text names "a fully connected layer and
                 a non-linear activation" without saying which; tanh matches its embedding).
    "official" : what the released code does: linear embedding, no tanh, the flattened tower
                 outputs feed the gate and the classifier directly.

Masks. The paper's step-wise tower is masked: a lower-triangular (causal) mask lets step t attend
only to steps <= t (`causal=True`). The paper does not say when; the official code applies it in
training only and evaluates without it (`causal_eval=False` reproduces that; the default applies
it in training and evaluation alike). The official code has no padding mask. Here `mask=True`
additionally makes the padding invisible: the step-wise tower never attends to padded steps (a key
padding mask) and drops them from its readout, and the channel-wise tower sees the padded values
replaced by exact zeros, so changing what sits in the padding changes nothing.

The gate weights come back with the logits (`GTNOutput.gate`, columns ordered (step, channel)) so
a suite can report them; the paper reports (0.7786 step, 0.2214 channel) on AUSLAN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Towers = Literal["both", "step", "channel"]
Fusion = Literal["gate", "concat"]
Variant = Literal["paper", "official"]
Readout = Literal["flatten", "mean"]

# Column order of `GTNOutput.gate`.
GATE_ORDER = ("step", "channel")


@dataclass
class GTNConfig:
    n_channels: int  # C: variables per time step
    n_steps: int  # T: padded series length (the step tower's PE and flatten size)
    n_classes: int
    d_model: int = 512
    d_hidden: int = 1024  # feed-forward width
    n_heads: int = 8
    d_qk: int = 8  # per-head query/key size ("q" in the official code)
    d_v: int = 8  # per-head value size ("v")
    n_layers: int = 8  # encoders per tower ("N")
    dropout: float = 0.2
    towers: Towers = "both"
    fusion: Fusion = "gate"  # only meaningful with towers="both"
    mask: bool = True  # hide padding (needs lengths in forward)
    causal: bool = False  # the paper's step-wise mask: step t attends to steps <= t
    causal_eval: bool = True  # False: the mask in training only, as the official code applies it
    variant: Variant = "paper"
    # How the step tower's T outputs become one vector: "flatten" as in paper and code (T*d
    # features; padded steps zeroed when masked), or "mean" over the valid steps (cheaper, for
    # long series). The channel tower is always flattened: its C tokens are distinct variables.
    readout: Readout = "flatten"

    def __post_init__(self) -> None:
        if self.towers not in ("both", "step", "channel"):
            raise ValueError(f"towers must be both|step|channel, got {self.towers!r}")
        if self.fusion not in ("gate", "concat"):
            raise ValueError(f"fusion must be gate|concat, got {self.fusion!r}")
        if self.variant not in ("paper", "official"):
            raise ValueError(f"variant must be paper|official, got {self.variant!r}")
        if self.readout not in ("flatten", "mean"):
            raise ValueError(f"readout must be flatten|mean, got {self.readout!r}")

    @property
    def gated(self) -> bool:
        return self.towers == "both" and self.fusion == "gate"


class GTNOutput(NamedTuple):
    logits: Tensor  # (batch, n_classes)
    gate: Tensor | None  # (batch, 2) softmax weights ordered GATE_ORDER; None if not gated


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with per-head sizes d_qk, d_v as in the official code.

    `allowed` is a boolean (batch, 1, L, L) or broadcastable mask, True where attention is allowed.
    """

    def __init__(self, cfg: GTNConfig) -> None:
        super().__init__()
        self.h, self.d_qk, self.d_v = cfg.n_heads, cfg.d_qk, cfg.d_v
        self.W_q = nn.Linear(cfg.d_model, cfg.n_heads * cfg.d_qk)
        self.W_k = nn.Linear(cfg.d_model, cfg.n_heads * cfg.d_qk)
        self.W_v = nn.Linear(cfg.d_model, cfg.n_heads * cfg.d_v)
        self.W_o = nn.Linear(cfg.n_heads * cfg.d_v, cfg.d_model)

    def forward(self, x: Tensor, allowed: Tensor | None = None) -> Tensor:
        B, L, _ = x.shape
        q = self.W_q(x).view(B, L, self.h, self.d_qk).transpose(1, 2)  # (B, h, L, d_qk)
        k = self.W_k(x).view(B, L, self.h, self.d_qk).transpose(1, 2)
        v = self.W_v(x).view(B, L, self.h, self.d_v).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, h, L, d_v)
        return self.W_o(y.transpose(1, 2).reshape(B, L, self.h * self.d_v))


class FeedForward(nn.Module):
    def __init__(self, cfg: GTNConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.d_model, cfg.d_hidden)
        self.fc2 = nn.Linear(cfg.d_hidden, cfg.d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class EncoderBlock(nn.Module):
    """Post-LN block: x = LN(x + drop(MHA(x))); x = LN(x + drop(FFN(x))), as in paper and code.

    LayerNorm and the FFN act per token, so a padded token can only leak into a valid one through
    attention, which the key mask closes.
    """

    def __init__(self, cfg: GTNConfig) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(cfg)
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, allowed: Tensor | None = None) -> Tensor:
        x = self.ln1(x + self.drop(self.attn(x, allowed)))
        return self.ln2(x + self.drop(self.ffn(x)))


def sinusoidal_encoding(n_positions: int, d_model: int) -> Tensor:
    """The Transformer's fixed sin/cos table, (n_positions, d_model)."""
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : d_model // 2]
    return pe


class Tower(nn.Module):
    """Embedding (+ optional PE) followed by n_layers encoder blocks over one kind of token."""

    def __init__(self, cfg: GTNConfig, d_token: int, n_tokens: int, positional: bool) -> None:
        super().__init__()
        self.embed = nn.Linear(d_token, cfg.d_model)
        self.tanh = cfg.variant == "paper"  # the paper's embedding has tanh, the code's does not
        if positional:
            # A buffer, not a parameter: fixed, moves with .to(device), saved in state_dict.
            self.register_buffer("pe", sinusoidal_encoding(n_tokens, cfg.d_model), persistent=False)
        else:
            self.pe = None
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_layers))

    def forward(self, tokens: Tensor, allowed: Tensor | None = None) -> Tensor:
        x = self.embed(tokens)
        if self.tanh:
            x = torch.tanh(x)
        if self.pe is not None:
            x = x + self.pe[: x.shape[1]]
        for block in self.blocks:
            x = block(x, allowed)
        return x


class GTN(nn.Module):
    def __init__(self, cfg: GTNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, T, C = cfg.d_model, cfg.n_steps, cfg.n_channels
        use_step = cfg.towers in ("both", "step")
        use_channel = cfg.towers in ("both", "channel")
        self.step = Tower(cfg, d_token=C, n_tokens=T, positional=True) if use_step else None
        self.channel = Tower(cfg, d_token=T, n_tokens=C, positional=False) if use_channel else None

        d_S = d * (T if cfg.readout == "flatten" else 1)  # flattened step-wise feature
        d_C = d * C  # flattened channel-wise feature
        if cfg.variant == "paper":
            # The paper's "fully connected layer and non-linear activation" per tower before the
            # gate; it also keeps the gate and classifier small when T*d is large.
            self.proj_S = nn.Linear(d_S, d) if use_step else None
            self.proj_C = nn.Linear(d_C, d) if use_channel else None
            d_S = d_C = d
        else:
            self.proj_S = self.proj_C = None
        d_z = (d_S if use_step else 0) + (d_C if use_channel else 0)
        self.gate = nn.Linear(d_z, 2) if cfg.gated else None
        self.head = nn.Linear(d_z, cfg.n_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> GTNOutput:
        """x: (batch, T, C) zero padded; lengths: (batch,) true lengths (None = all full)."""
        cfg = self.cfg
        if x.shape[1:] != (cfg.n_steps, cfg.n_channels):
            raise ValueError(f"expected (batch, {cfg.n_steps}, {cfg.n_channels}), got {tuple(x.shape)}")
        valid = None  # (B, T) True on real steps
        if cfg.mask and lengths is not None:
            valid = torch.arange(cfg.n_steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]
            # Exact zeros in the padding (where, not multiply: 0 * nan = nan): the channel tower
            # reads whole series, so this makes the padding's content irrelevant to it.
            x = torch.where(valid[:, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))

        feats: list[Tensor] = []
        if self.step is not None:
            feats.append(self._step_feature(x, valid))
        if self.channel is not None:
            C_out = self.channel(x.transpose(1, 2)).flatten(1)  # (B, C*d); each token = one channel
            if self.proj_C is not None:
                C_out = torch.tanh(self.proj_C(C_out))
            feats.append(C_out)

        if self.gate is None:  # concat or a single tower
            return GTNOutput(self.head(torch.cat(feats, dim=-1)), None)
        S_out, C_out = feats
        # Paper: h = W[C;S]+b. The order inside the concatenation is a permutation of W's columns;
        # we keep (step, channel) throughout so gate[:, 0] is always the step-wise weight.
        g = F.softmax(self.gate(torch.cat([S_out, C_out], dim=-1)), dim=-1)
        z = torch.cat([S_out * g[:, 0:1], C_out * g[:, 1:2]], dim=-1)
        return GTNOutput(self.head(z), g)

    def _step_feature(self, x: Tensor, valid: Tensor | None) -> Tensor:
        cfg = self.cfg
        T = x.shape[1]
        allowed = None
        if valid is not None:
            allowed = valid[:, None, None, :]  # (B, 1, 1, T): keys; every query row has >= 1 key
        if cfg.causal and (self.training or cfg.causal_eval):
            tril = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            allowed = tril if allowed is None else allowed & tril
        S = self.step(x, allowed)  # (B, T, d)
        if valid is not None:
            # Padded queries still produce outputs; drop them so the readout sees only real steps.
            S = S * valid[:, :, None]
        if cfg.readout == "mean":
            n = valid.sum(1, keepdim=True) if valid is not None else torch.full((x.shape[0], 1), T, device=x.device)
            S_out = S.sum(1) / n.clamp_min(1)
        else:
            S_out = S.flatten(1)
        if self.proj_S is not None:
            S_out = torch.tanh(self.proj_S(S_out))
        return S_out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
