"""Heater: cold-start recommendation with randomized training and a mixture-of-experts transform.

Zhu, Sefati, Saadatpanah, Caverlee, "Recommendation for New Users and New Items via Randomized
Training and Mixture-of-Experts Transformation", SIGIR 2020. Official code (TensorFlow 1):
github Zziwei/Heater--Cold-Start-Recommendation, `model.py`. This follows that graph:

    content transform (per side with content x):
        gate   g   = tanh(x W_g + b_g)                                   (K values, NOT a softmax)
        expert e_k = tanh(dense ... tanh(x W_k + b_k))                   (`hidden`, last = rank_in)
        phi(x)     = tanh(sum_k g_k e_k)
    randomized training: with indicator d (1 = replace), the side's input is
        z = pref (1 - d) + phi(x) d
        a fraction p of the pairs of each batch has d = 1 (exactly floor(p B), drawn without
        replacement); at evaluation d = 1 for cold entities (an all-zero CF row), else 0
    shared layers: h = tanh(BatchNorm(z W_s + b_s)), embedding = h W_o + b_o (user and item apart)
    score = <user embedding, item embedding>
    loss  = mean (score - target)^2 + reg * sum of squared dense weights and biases
            + alpha * sum_batch ||phi(x) - pref||^2            (the guide term, "SC" in the paper)

Switches for the ablations: p = 0 (no randomized training: only cold entities use phi at test
time, and phi is trained by the guide term alone), n_experts = 1 (one transform, still gated by a
tanh scalar as the official graph does with dim = 1), alpha = 0 (no guide term).

`fit` is the official training procedure (momentum SGD, 5 sampled negatives per positive, lr
decay, model chosen by validation recall; the stopping rule is passed in) and also trains
DropoutNet, which shares the interface (its targets are the pretrained scores U.V, and both sides
are dropped: `target` and `FitConfig.sides`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from impl.recsys import StoppingRule, Tower, linear, matmul, trunc_normal_


@dataclass
class HeaterConfig:
    rank_in: int = 200  # size of the pretrained CF vectors
    user_content_dim: int = 0  # 0: users have no content (item cold start)
    item_content_dim: int = 0  # 0: items have no content (user cold start)
    hidden: tuple[int, ...] = (200,)  # expert layers ("model_select"); the last must equal rank_in
    rank_out: int = 200  # output embedding size
    n_experts: int = 5  # K ("dim" in the official code)
    reg: float = 1e-3  # L2 weight: LastFM 1e-3, CiteULike 1e-4
    alpha: float = 1e-4  # guide-term weight


class MoETransform(nn.Module):
    """phi(x) = tanh(sum_k tanh(gate(x))_k * expert_k(x)).

    The K experts' weights are stacked, layer by layer, as (K, d_in, d_out) in TensorFlow's
    [in, out] layout, so all experts run in one matmul; expert k's layer l is weights[l][k]."""

    def __init__(self, d_content: int, hidden: tuple[int, ...], n_experts: int):
        super().__init__()
        self.gate = nn.Linear(d_content, n_experts)
        trunc_normal_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)
        dims = (d_content, *hidden)
        self.weights = nn.ParameterList(
            nn.Parameter(trunc_normal_(torch.empty(n_experts, a, b))) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(n_experts, b)) for b in dims[1:])

    @property
    def n_experts(self) -> int:
        return self.gate.out_features

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, d_content), dense or a torch sparse matrix (LastFM's friendship rows are ~1% full)."""
        gate = torch.tanh(linear(x, self.gate))  # (B, K)
        K, d_in, d_out = self.weights[0].shape
        flat = self.weights[0].permute(1, 0, 2).reshape(d_in, K * d_out)
        h = matmul(x, flat)
        h = torch.tanh(h.view(-1, K, d_out) + self.biases[0])
        for w, b in zip(self.weights[1:], self.biases[1:], strict=True):
            h = torch.tanh(torch.einsum("bki,kio->bko", h, w) + b)
        return torch.tanh(torch.einsum("bk,bkd->bd", gate, h))


class Heater(nn.Module):
    def __init__(self, cfg: HeaterConfig):
        super().__init__()
        if cfg.hidden[-1] != cfg.rank_in:
            raise ValueError(f"the last expert layer ({cfg.hidden[-1]}) must equal rank_in ({cfg.rank_in})")
        if cfg.user_content_dim <= 0 and cfg.item_content_dim <= 0:
            raise ValueError("Heater needs content on at least one side (user_content_dim or item_content_dim)")
        self.cfg = cfg
        self.user_transform = (
            MoETransform(cfg.user_content_dim, cfg.hidden, cfg.n_experts) if cfg.user_content_dim else None
        )
        self.item_transform = (
            MoETransform(cfg.item_content_dim, cfg.hidden, cfg.n_experts) if cfg.item_content_dim else None
        )
        self.user = Tower(cfg.rank_in, (cfg.rank_out,), cfg.rank_out)
        self.item = Tower(cfg.rank_in, (cfg.rank_out,), cfg.rank_out)

    def _side(self, transform, pref, content, drop):
        if transform is None:
            return pref, pref.new_zeros(())
        phi = transform(content)
        guide = (phi - pref).pow(2).sum()
        if drop is None:
            return pref, guide
        return pref * (1 - drop) + phi * drop, guide

    def forward(self, u_pref, v_pref, u_content=None, v_content=None, u_drop=None, v_drop=None):
        """Returns (user embedding, item embedding, alpha * guide term). drop: (B, 1), 1 = use content."""
        u, guide_u = self._side(self.user_transform, u_pref, u_content, u_drop)
        v, guide_v = self._side(self.item_transform, v_pref, v_content, v_drop)
        return self.user(u), self.item(v), self.cfg.alpha * (guide_u + guide_v)

    def user_embedding(self, pref, content=None, drop=None):
        return self.user(self._side(self.user_transform, pref, content, drop)[0])

    def item_embedding(self, pref, content=None, drop=None):
        return self.item(self._side(self.item_transform, pref, content, drop)[0])

    def l2(self) -> Tensor:
        """Sum of squares of every dense weight and bias (BatchNorm's scale and shift excluded)."""
        return sum(p.pow(2).sum() for n, p in self.named_parameters() if ".bn." not in n)


# ----------------------------------------------------------------------------------------------
# Training (the official main_*.py loop)


@dataclass
class FitConfig:
    epochs: int = 100  # the paper's budget: the most epochs a run may take (the rule usually stops it sooner)
    lr: float = 0.005
    momentum: float = 0.9
    batch: int = 1024
    neg: int = 5  # sampled negatives per positive
    p: float = 0.5  # fraction of the pairs of a batch whose CF vector is replaced (randomized training / dropout)
    sides: int = 1  # independent indicators per pair: 1 = the cold side (Heater), 2 = user and item (DropoutNet)
    decay_every: int = 2  # LastFM: x0.9 every 2 epochs; CiteULike: x0.8 every 10
    decay: float = 0.9


@dataclass
class FitResult:
    best_epoch: int  # 0-based epoch of the state kept (the best validation score)
    best_vali: float
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch (without the L2 term)
    valis: list[float] = field(default_factory=list)  # validation score after every epoch
    state: dict | None = None


def drop_indicator(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 1) randomized-training indicator: exactly floor(p n) ones, drawn without replacement."""
    drop = np.zeros((n, 1), dtype=np.float32)
    n_drop = int(math.floor(p * n))
    if n_drop:
        drop[rng.choice(n, n_drop, replace=False)] = 1.0
    return drop


def sgd(model: nn.Module, cfg: FitConfig, reg: float) -> torch.optim.SGD:
    """Momentum SGD whose weight decay 2 reg is exactly the gradient of `reg * model.l2()` (every dense
    weight and bias; BatchNorm's scale and shift carry none): the same update as the official loss
    term, without a pass over every parameter to compute it."""
    decayed = [p for n, p in model.named_parameters() if ".bn." not in n]
    free = [p for n, p in model.named_parameters() if ".bn." in n]
    groups = [{"params": decayed, "weight_decay": 2 * reg}, {"params": free, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def fit(
    model: nn.Module,
    inputs: Callable[[np.ndarray, np.ndarray, Tensor], dict],
    users: np.ndarray,
    items: np.ndarray,
    warm_items: np.ndarray,
    cfg: FitConfig,
    validate: Callable[[nn.Module], float],
    rng: np.random.Generator,
    rule: StoppingRule,
    target: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    device: str = "cpu",
) -> FitResult:
    """Train on (user, item) positives with `neg` sampled warm negatives each, epoch after epoch,
    until `rule` (fed the validation score after every epoch) says stop or `cfg.epochs` is reached;
    the model ends in the state of the best validation score, as the official code reports it.

    inputs(users, items, drop) -> keyword arguments of model.forward for the batch (the caller
    knows which side is cold and has content); drop is the (B, cfg.sides) indicator, 1 = replace.
    target(users, items) -> regression targets; None: 1 for positives and 0 for negatives (Heater).
    validate(model) -> the validation sum of Recall@{20,50,100} (the model is in eval mode).
    """
    opt = sgd(model, cfg, model.cfg.reg)
    result = FitResult(best_epoch=-1, best_vali=-math.inf)
    lr = cfg.lr
    for epoch in range(cfg.epochs):
        n_pos = len(users)
        all_u = np.concatenate([users, np.tile(users, cfg.neg)])
        all_i = np.concatenate([items, rng.choice(warm_items, size=cfg.neg * n_pos, replace=True)])
        if target is None:
            y_all = np.concatenate([np.ones(n_pos), np.zeros(cfg.neg * n_pos)]).astype(np.float32)
        else:
            y_all = np.asarray(target(all_u, all_i), dtype=np.float32)
        order = rng.permutation(len(all_u))
        model.train()
        total = 0.0
        for start in range(0, len(order), cfg.batch):
            idx = order[start : start + cfg.batch]
            drop = np.concatenate([drop_indicator(len(idx), cfg.p, rng) for _ in range(cfg.sides)], 1)
            u_emb, v_emb, extra = model(**inputs(all_u[idx], all_i[idx], torch.as_tensor(drop, device=device)))
            pred = (u_emb * v_emb).sum(1)
            loss = (pred - torch.as_tensor(y_all[idx], device=device)).pow(2).mean() + extra
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        result.losses.append(total / len(order))
        if (epoch + 1) % cfg.decay_every == 0:
            lr *= cfg.decay
            for group in opt.param_groups:
                group["lr"] = lr
        model.eval()
        with torch.no_grad():
            score = validate(model)
        result.valis.append(score)
        stop = rule.update(score)
        if rule.improved:
            result.best_vali, result.best_epoch = score, epoch
            result.state = copy.deepcopy(model.state_dict())
        if stop:
            break
    if result.state is not None:
        model.load_state_dict(result.state)
    model.eval()
    return result
