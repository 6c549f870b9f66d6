"""Shared recommendation pieces: ranking metrics, BPR matrix factorisation, cold-start baselines.

Metrics follow the Heater/DropoutNet evaluation code (utils.batch_eval_recall):

    Recall@K    = hits in the top K / |relevant|        (not / min(K, |relevant|))
    Precision@K = hits in the top K / K
    NDCG@K      = sum_{r <= K} rel_r / log2(r + 1)  /  sum_{r <= min(|relevant|, K)} 1 / log2(r + 1)

computed per user over a candidate set and returned PER USER (1-D arrays), because the independent
unit of every recall claim is the user. Users with no relevant candidate are dropped by the caller.

Baselines (each returns user and item vectors, or a score function, for the same evaluation):
- BPR-MF (Rendle et al. 2009): pretrains the CF vectors that Heater, DropoutNet and LinMap start from.
- DropoutNet (Volkovs et al. 2017): [CF vector ; content] -> dense + BatchNorm + tanh -> linear
  per side; trained, as published, to regress the pretrained scores U.V, with the user CF vector of
  a fraction p of the pairs zeroed and, independently, the item CF vector of another fraction p
  ("input dropout" on both sides), so the network learns to score from content alone, which is what
  a cold user or item has (impl/heater.fit with `target` = U.V and `sides` = 2).
- LinMap: a ridge least-squares map from content to the CF space, fitted on warm entities.
- content KNN: a cold entity scores as the similarity-weighted interactions of its k nearest warm
  neighbours in content space (cosine).
- popularity: number of training interactions of the item (no signal for cold items: ties).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

KS = (20, 50, 100)


def ranking_metrics(scores: Tensor, relevant: Tensor, ks: tuple[int, ...] = KS) -> dict[str, np.ndarray]:
    """Per-user Recall/Precision/NDCG at each K.

    scores: (users, candidates) float; relevant: (users, candidates) bool. Every user must have at
    least one relevant candidate. Returns {"recall@20": array(users), ...}. Ties in the score are
    broken by torch.topk (lowest index first on CPU); with a real-valued model they do not occur.
    """
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    n_rel = relevant.sum(1)
    if bool((n_rel == 0).any()):
        raise ValueError("every evaluated user needs at least one relevant candidate; drop users without one")
    k_max = min(max(ks), scores.shape[1])
    top = torch.topk(scores, k_max, dim=1, sorted=True).indices
    hits = torch.gather(relevant, 1, top).double()  # (users, k_max): 1 where rank r holds a relevant item
    discount = 1.0 / torch.log2(torch.arange(2, k_max + 2, dtype=torch.float64, device=scores.device))
    cum_hits = hits.cumsum(1)
    dcg = (hits * discount).cumsum(1)
    ideal = discount.cumsum(0)
    n_rel = n_rel.double()
    out = {}
    for k in ks:
        kk = min(k, k_max)
        found = cum_hits[:, kk - 1]
        best = ideal[(torch.clamp(n_rel, max=kk) - 1).long()]
        out[f"recall@{k}"] = (found / n_rel).cpu().numpy()
        out[f"precision@{k}"] = (found / k).cpu().numpy()
        out[f"ndcg@{k}"] = (dcg[:, kk - 1] / best).cpu().numpy()
    return out


def standardize(x: np.ndarray, clip: float) -> np.ndarray:
    """Column standardisation over the non-zero rows, clipped to +-clip; all-zero rows stay zero.

    As the official code does for the pretrained CF vectors: a cold entity has a zero row, which
    must stay "no preference" after scaling. Heater clips the cold side to +-1 (the range of the
    tanh content transform that replaces it) and the warm side to +-5.
    """
    x = np.asarray(x, dtype=np.float64)
    nz = np.any(x != 0, axis=1)
    out = np.zeros_like(x)
    if nz.any():
        rows = x[nz]
        mean, std = rows.mean(0), rows.std(0)
        std[std == 0] = 1.0
        out[nz] = (rows - mean) / std
    out = np.clip(out, -clip, clip)
    out[np.abs(out) < 1e-5] = 0.0
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# BPR matrix factorisation


@dataclass
class BPRConfig:
    dim: int = 200  # the paper's 200-d CF vectors
    lr: float = 0.005  # the paper's BPR learning rate (Adam here: the paper does not name the optimiser)
    reg: float = 0.001  # the paper's BPR L2
    epochs: int = 20  # the most epochs (a `stop` rule usually ends training sooner)
    batch: int = 4096


class StoppingRule(Protocol):
    """A stopping rule (suites.harness.training.EarlyStopping has this shape): `update` once per
    epoch with the monitored value returns True to stop; `improved` says that epoch set a new best."""

    improved: bool

    def update(self, value: float) -> bool: ...


def train_bpr(
    n_users: int,
    n_items: int,
    users: np.ndarray,
    items: np.ndarray,
    cfg: BPRConfig,
    device: str = "cpu",
    stop: StoppingRule | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """BPR-MF on the training pairs. Returns (U, V, loss per epoch); rows of entities with no
    training pair are exactly zero (they are cold: the model knows nothing of them). `stop` is fed
    each epoch's training loss (no held-out pairs exist for a cold-start split's warm side) and ends
    training when it says so; the vectors returned are the last epoch's."""
    gen = torch.Generator(device="cpu").manual_seed(int(torch.initial_seed()) % (2**31))
    U = nn.Parameter(torch.randn(n_users, cfg.dim, generator=gen).mul_(0.01).to(device))
    V = nn.Parameter(torch.randn(n_items, cfg.dim, generator=gen).mul_(0.01).to(device))
    opt = torch.optim.Adam([U, V], lr=cfg.lr)
    u_all = torch.as_tensor(users, dtype=torch.long, device=device)
    i_all = torch.as_tensor(items, dtype=torch.long, device=device)
    warm_items = torch.unique(i_all)
    losses = []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(u_all), generator=gen).to(device)
        neg_all = warm_items[torch.randint(len(warm_items), (len(u_all),), generator=gen).to(device)]
        total = 0.0
        for start in range(0, len(order), cfg.batch):
            idx = order[start : start + cfg.batch]
            u, i, j = U[u_all[idx]], V[i_all[idx]], V[neg_all[idx]]
            x = (u * (i - j)).sum(1)
            loss = -F.logsigmoid(x).mean() + cfg.reg * (u.pow(2).sum(1) + i.pow(2).sum(1) + j.pow(2).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(order))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"BPR loss became {losses[-1]} at epoch {len(losses) - 1}")
        if stop is not None and stop.update(losses[-1]):
            break
    Un, Vn = U.detach().cpu().numpy(), V.detach().cpu().numpy()
    Un[np.setdiff1d(np.arange(n_users), users)] = 0.0
    Vn[np.setdiff1d(np.arange(n_items), items)] = 0.0
    return Un.astype(np.float32), Vn.astype(np.float32), losses


# ----------------------------------------------------------------------------------------------
# DropoutNet


def trunc_normal_(w: Tensor, std: float = 0.01) -> Tensor:
    """TensorFlow's truncated_normal_initializer: redraw beyond two standard deviations."""
    return nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def matmul(x: Tensor, w: Tensor) -> Tensor:
    """x @ w for a dense x or a sparse (COO or CSR) x: content such as an adjacency row is mostly
    zeros. CSR goes through embedding_bag, whose backward stays sparse-cheap."""
    if x.layout == torch.sparse_csr:
        offsets = x.crow_indices()[:-1]
        return F.embedding_bag(x.col_indices(), w, offsets, mode="sum", per_sample_weights=x.values())
    if x.is_sparse:
        return torch.sparse.mm(x, w)
    return x @ w


def linear(x: Tensor, layer: nn.Linear) -> Tensor:
    """layer(x) for a dense or sparse x."""
    return layer(x) if x.layout == torch.strided else matmul(x, layer.weight.t()) + layer.bias


class DenseBNTanh(nn.Module):
    """dense -> BatchNorm -> tanh, as the official `dense_batch_fc_tanh(..., do_norm=True)`.

    BatchNorm as tf.contrib.layers.batch_norm(decay=0.9, epsilon=1e-3, center, scale)."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.fc = nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out, eps=1e-3, momentum=0.1)
        trunc_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.bn(self.fc(x)))


class Tower(nn.Module):
    """Shared layers then a linear output embedding (one tower per side)."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], d_out: int):
        super().__init__()
        dims = (d_in, *hidden)
        self.layers = nn.Sequential(*(DenseBNTanh(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)))
        self.out = nn.Linear(dims[-1], d_out)
        trunc_normal_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.layers(x))


@dataclass
class DropoutNetConfig:
    rank_in: int = 200  # CF vector size
    user_content_dim: int = 0  # 0: this side has no content
    item_content_dim: int = 0
    hidden: tuple[int, ...] = (200,)  # the original uses (800, 400); Heater's width keeps capacity equal
    rank_out: int = 200
    reg: float = 1e-3  # L2 on the dense weights and biases, as Heater's loss


class DropoutNetSide(nn.Module):
    """Tower over [CF vector ; content]. The first dense layer is one weight over the concatenation,
    applied as W_pref pref + W_content content so that a sparse content matrix stays sparse."""

    def __init__(self, rank_in: int, d_content: int, hidden: tuple[int, ...], d_out: int):
        super().__init__()
        self.rank_in = rank_in
        self.tower = Tower(rank_in + d_content, hidden, d_out)

    def forward(self, pref: Tensor, content: Tensor | None, drop: Tensor | None) -> Tensor:
        if drop is not None:  # dropped pairs (and cold entities) see a zero CF vector
            pref = pref * (1 - drop)
        first = self.tower.layers[0]
        w = first.fc.weight
        h = pref @ w[:, : self.rank_in].t() + first.fc.bias
        if content is not None:
            w_c = w[:, self.rank_in :].t()
            h = h + matmul(content, w_c)
        h = torch.tanh(first.bn(h))
        for layer in self.tower.layers[1:]:
            h = layer(h)
        return self.tower.out(h)


class DropoutNet(nn.Module):
    """Same call signature as Heater: returns (user embedding, item embedding, extra loss)."""

    def __init__(self, cfg: DropoutNetConfig):
        super().__init__()
        self.cfg = cfg
        self.user = DropoutNetSide(cfg.rank_in, cfg.user_content_dim, cfg.hidden, cfg.rank_out)
        self.item = DropoutNetSide(cfg.rank_in, cfg.item_content_dim, cfg.hidden, cfg.rank_out)

    def forward(self, u_pref, v_pref, u_content=None, v_content=None, u_drop=None, v_drop=None):
        u = self.user(u_pref, u_content, u_drop)
        v = self.item(v_pref, v_content, v_drop)
        return u, v, u.new_zeros(())

    def user_embedding(self, pref, content=None, drop=None):
        return self.user(pref, content, drop)

    def item_embedding(self, pref, content=None, drop=None):
        return self.item(pref, content, drop)

    def l2(self) -> Tensor:
        return sum(p.pow(2).sum() for n, p in self.named_parameters() if ".bn." not in n)


# ----------------------------------------------------------------------------------------------
# Closed-form and memory-based baselines


def linmap(content_warm: np.ndarray, pref_warm: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """W minimising ||content W - pref||^2 + ridge ||W||^2 (content -> CF space)."""
    x = np.asarray(content_warm, dtype=np.float64)
    a = x.T @ x + ridge * np.eye(x.shape[1])
    return np.linalg.solve(a, x.T @ np.asarray(pref_warm, dtype=np.float64)).astype(np.float32)


def knn_scores(
    content_query: np.ndarray, content_warm: np.ndarray, interactions_warm: np.ndarray, k: int = 50
) -> np.ndarray:
    """Scores of query entities: sum over their k most cosine-similar warm entities of sim x row.

    interactions_warm: (warm entities, targets) 0/1 matrix, dense or scipy sparse; returns
    (queries, targets) dense."""

    def unit(a):
        a = np.asarray(a, dtype=np.float32)
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.maximum(norm, 1e-12)

    sim = unit(content_query) @ unit(content_warm).T
    k = min(k, sim.shape[1])
    keep = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(sim.shape[0]), k)
    sparse_sim = sp.csr_matrix((np.take_along_axis(sim, keep, axis=1).ravel(), (rows, keep.ravel())), shape=sim.shape)
    out = sparse_sim @ interactions_warm
    return np.asarray(out.todense() if sp.issparse(out) else out, dtype=np.float32)


def popularity(n_items: int, items: np.ndarray) -> np.ndarray:
    return np.bincount(items, minlength=n_items).astype(np.float32)
