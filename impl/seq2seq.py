"""Transformer encoder-decoder with the norm's position and kind as configuration.

Nguyen & Salazar (2019), "Transformers without Tears":
- PostNorm (Vaswani et al.):  x_{l+1} = Norm(x_l + F(x_l))
- PreNorm:                    x_{l+1} = x_l + F(Norm(x_l)), plus one final Norm on each stack's output
- Norm is LayerNorm, ScaleNorm or RMSNorm (impl.norms); FixNorm puts the tied embeddings on the
  unit sphere.
- SmallInit draws attention weights with std sqrt(2/(5d)) instead of Xavier's sqrt(2/(2d)); the
  feed-forward weights are Xavier-normal in both.
- Word dropout (the paper's recipe, 0.1): during training each source and target input token
  (not padding) is replaced by <unk> with probability `word_dropout`, so the model cannot lean on any
  one word; evaluation and decoding never drop.
- Tied source/target/output embeddings (one joint subword vocabulary), inputs scaled by sqrt(d),
  sinusoidal positions (sin on even, cos on odd dimensions).
Schedules: InvSqrtDecay with linear warmup, and NoWarmup (constant, x0.8 on a validation plateau).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from impl.norms import FixNorm, make_norm


@dataclass
class Seq2SeqConfig:
    vocab_size: int
    d_model: int = 512
    n_heads: int = 8
    d_ff: int = 2048
    enc_layers: int = 6
    dec_layers: int = 6
    dropout: float = 0.3
    norm: str = "layer"  # layer | scale | rms
    prenorm: bool = True  # False: PostNorm
    fixnorm: bool = False  # l2-normalised tied embeddings
    init: str = "small"  # small (attention std sqrt(2/(5d))) | xavier (sqrt(2/(2d)))
    pad_id: int = 0
    unk_id: int = 1  # what word dropout puts in a dropped token's place
    word_dropout: float = 0.0  # paper: 0.1; 0 leaves the inputs as they are
    max_len: int = 512

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.init not in ("small", "xavier"):
            raise ValueError(f"init must be 'small' or 'xavier', got {self.init!r}")


def positional_encoding(length: int, d: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float32) / d)
    pe = torch.zeros(length, d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe


class MultiheadAttention(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.h, self.dropout = cfg.n_heads, cfg.dropout
        d = cfg.d_model
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)
        std = math.sqrt(2 / (5 * d)) if cfg.init == "small" else math.sqrt(2 / (2 * d))
        for lin in (self.q, self.kv, self.o):
            nn.init.normal_(lin.weight, std=std)
            nn.init.zeros_(lin.bias)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None, cache: dict | None = None
    ) -> torch.Tensor:
        """mask: bool, True where attention is allowed, broadcastable to (B, h, Tq, Tk).

        cache (incremental decoding): keys and values kept between calls. Self-attention appends
        the new positions' to it; cross-attention (memory is not x) computes them once."""
        b, tq, d = x.shape
        q = self.q(x).view(b, tq, self.h, -1).transpose(1, 2)
        if cache is not None and "k" in cache and memory is not x:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self.kv(memory).view(b, memory.shape[1], 2, self.h, -1).permute(2, 0, 3, 1, 4)
            if cache is not None:
                if "k" in cache:
                    k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
                cache["k"], cache["v"] = k, v
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.o(y.transpose(1, 2).reshape(b, tq, d))


class FeedForward(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.up, self.down = nn.Linear(cfg.d_model, cfg.d_ff), nn.Linear(cfg.d_ff, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        std = math.sqrt(2 / (cfg.d_ff + cfg.d_model))  # Xavier normal
        for lin in (self.up, self.down):
            nn.init.normal_(lin.weight, std=std)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dropout(F.relu(self.up(x))))


class Residual(nn.Module):
    """One sublayer with its norm: PreNorm x + F(N(x)) or PostNorm N(x + F(x)).

    The two differ in nothing but where the norm sits, so a model can be switched by one flag.
    """

    def __init__(self, cfg: Seq2SeqConfig, fn: nn.Module):
        super().__init__()
        self.fn, self.norm, self.prenorm = fn, make_norm(cfg.norm, cfg.d_model), cfg.prenorm
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, *args) -> torch.Tensor:
        if self.prenorm:
            return x + self.dropout(self.fn(self.norm(x), *args))
        return self.norm(x + self.dropout(self.fn(x, *args)))


class SelfAttention(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.att = MultiheadAttention(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: dict | None = None) -> torch.Tensor:
        return self.att(x, x, mask, cache)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.att, self.ff = Residual(cfg, SelfAttention(cfg)), Residual(cfg, FeedForward(cfg))

    def forward(self, x, src_mask):
        return self.ff(self.att(x, src_mask))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.att = Residual(cfg, SelfAttention(cfg))
        self.cross = Residual(cfg, MultiheadAttention(cfg))
        self.ff = Residual(cfg, FeedForward(cfg))

    def forward(self, y, memory, tgt_mask, src_mask, cache: dict | None = None):
        self_cache = cross_cache = None
        if cache is not None:
            self_cache, cross_cache = cache.setdefault("self", {}), cache.setdefault("cross", {})
        return self.ff(self.cross(self.att(y, tgt_mask, self_cache), memory, src_mask, cross_cache))


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        if cfg.fixnorm:
            self.embed = FixNorm(cfg.vocab_size, d)
        else:
            self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=cfg.pad_id)
            nn.init.normal_(self.embed.weight, std=d**-0.5)
        self.register_buffer("pe", positional_encoding(cfg.max_len, d), persistent=False)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        # PreNorm leaves each stack's output un-normalised, hence one final norm per stack.
        self.enc_norm = make_norm(cfg.norm, d) if cfg.prenorm else nn.Identity()
        self.dec_norm = make_norm(cfg.norm, d) if cfg.prenorm else nn.Identity()
        self.out_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.dropout = nn.Dropout(cfg.dropout)

    def drop_words(self, tokens: torch.Tensor) -> torch.Tensor:
        """Word dropout: in training, each non-padding token becomes <unk> with probability word_dropout."""
        p = self.cfg.word_dropout
        if not self.training or p <= 0:
            return tokens
        drop = (torch.rand(tokens.shape, device=tokens.device) < p) & (tokens != self.cfg.pad_id)
        return tokens.masked_fill(drop, self.cfg.unk_id)

    def embed_tokens(self, tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        tokens = self.drop_words(tokens)
        t = tokens.shape[1]
        if offset + t > self.cfg.max_len:
            raise ValueError(f"sequence of length {offset + t} exceeds max_len={self.cfg.max_len}")
        x = self.embed(tokens) * math.sqrt(self.cfg.d_model) + self.pe[offset : offset + t]
        return self.dropout(x)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src_mask = (src != self.cfg.pad_id)[:, None, None, :]
        x = self.embed_tokens(src)
        for layer in self.encoder:
            x = layer(x, src_mask)
        return self.enc_norm(x), src_mask

    def decode(
        self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor, cache: list[dict] | None = None
    ) -> torch.Tensor:
        """Logits for every target position; position t sees target tokens <= t only.

        With `cache` (one dict per decoder layer, empty at the start), `tgt_in` holds only the next
        position: earlier positions' keys and values come from the cache, so a greedy step costs one
        position instead of the whole prefix."""
        if cache is None:
            t = tgt_in.shape[1]
            causal, offset = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril(), 0
        else:  # the one new position may see every cached one
            causal, offset = None, cache[0]["self"]["k"].shape[2] if cache[0].get("self") else 0
        y = self.embed_tokens(tgt_in, offset)
        for i, layer in enumerate(self.decoder):
            y = layer(y, memory, causal, src_mask, None if cache is None else cache[i])
        y = self.dec_norm(y)
        weight = self.embed.normalized() if self.cfg.fixnorm else self.embed.weight
        return F.linear(y, weight, self.out_bias)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, src_mask = self.encode(src)
        return self.decode(tgt_in, memory, src_mask)

    def loss(self, logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
        """Label-smoothed cross entropy per target token (padding ignored)."""
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            tgt_out.reshape(-1),
            ignore_index=self.cfg.pad_id,
            label_smoothing=label_smoothing,
        )

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, bos: int, eos: int, max_len: int) -> torch.Tensor:
        """Greedy decoding, one position per step through the decoder's key/value cache."""
        memory, src_mask = self.encode(src)
        out = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        cache: list[dict] = [{} for _ in self.decoder]
        for _ in range(max_len):
            nxt = self.decode(out[:, -1:], memory, src_mask, cache)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.cfg.pad_id), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == eos
            if done.all():
                break
        return out[:, 1:]

    @torch.no_grad()
    def beam(self, src: torch.Tensor, bos: int, eos: int, max_len: int, size: int = 4, alpha: float = 0.6):
        """Beam search for one sentence (src of shape (1, S)), GNMT length penalty ((5+|y|)/6)^alpha."""
        memory, src_mask = self.encode(src)
        beams = [(0.0, [bos])]
        finished = []
        for _ in range(max_len):
            seqs = torch.tensor([b[1] for b in beams], device=src.device)
            n = len(beams)
            logp = self.decode(seqs, memory.expand(n, -1, -1), src_mask.expand(n, -1, -1, -1))[:, -1]
            logp = logp.log_softmax(-1)
            scores = torch.tensor([b[0] for b in beams], device=src.device)[:, None] + logp
            top = scores.flatten().topk(size)
            beams = []
            for score, idx in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                seq = seqs[idx // logp.shape[1]].tolist() + [idx % logp.shape[1]]
                if seq[-1] == eos:
                    finished.append((score / ((5 + len(seq) - 1) / 6) ** alpha, seq))
                else:
                    beams.append((score, seq))
            if not beams or len(finished) >= size:
                break
        finished += [(s / ((5 + len(q) - 1) / 6) ** alpha, q) for s, q in beams]
        return max(finished)[1][1:]


def inv_sqrt_lr(step: int, d_model: int, warmup: int, scale: float = 1.0) -> float:
    """InvSqrtDecay: scale * d^-0.5 * min(n^-0.5, n * warmup^-1.5), n counted from 1."""
    n = max(step, 1)
    return scale * d_model**-0.5 * min(n**-0.5, n * warmup**-1.5)


class PlateauDecay:
    """NoWarmup: a constant learning rate, multiplied by `factor` after `patience` validations without
    improvement (the paper: 0.8 and 3)."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, factor: float = 0.8, patience: int = 3):
        self.optimizer, self.lr, self.factor, self.patience = optimizer, lr, factor, patience
        self.best, self.bad = math.inf, 0
        self._set()

    def _set(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def step_validation(self, val_loss: float) -> None:
        if val_loss < self.best:
            self.best, self.bad = val_loss, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            self.lr *= self.factor
            self.bad = 0
            self._set()
