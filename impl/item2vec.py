"""Item2vec (Barkan & Koenigstein 2016): skip-gram with negative sampling over user sequences.

PinnerSage takes item embeddings as given (PinSage at Pinterest). Where there are none, we learn
them from the training period's interactions only, so no future information leaks into the user
representations: each user's items in time order form a "sentence"; items within `window`
positions of each other are positive pairs; `negatives` items drawn from the unigram^0.75
distribution are negative pairs (word2vec's choice). The returned embeddings are the input
vectors, L2-normalised (retrieval is by cosine).

Training budget rule: `epochs` full passes, a fixed number for every run; `still_falling` reports
whether the last epoch still lowered the loss by more than `tol` (relative), so a run stopped
early is flagged rather than hidden.

`ppmi_svd` is the closed-form counterpart (Levy & Goldberg, NeurIPS 2014: SGNS implicitly factorises
the word-context PMI matrix shifted by log k): the same skip-gram pairs counted, shifted positive
PMI with the context distribution smoothed by 0.75, truncated SVD, U sqrt(S). Deterministic, no
training budget, and seconds instead of minutes on a shared CPU; the suite uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds


@dataclass(frozen=True)
class Item2VecConfig:
    dim: int = 32  # embedding size
    window: int = 5  # positions either side that count as context
    negatives: int = 5  # negative samples per positive pair
    epochs: int = 10  # full passes over all pairs (the budget rule)
    batch_size: int = 4096
    lr: float = 0.01  # Adam
    tol: float = 0.01  # last-epoch relative loss drop above this -> still_falling
    learner: str = "ppmi_svd"  # ppmi_svd (closed form, deterministic) | sgns (trained with Adam)


@dataclass
class Item2VecResult:
    embeddings: np.ndarray  # [n_items, dim] float32, rows L2-normalised; zero rows for unseen items
    seen: np.ndarray  # [n_items] bool: the item occurs in the training sequences
    losses: list[float]  # mean loss per epoch
    still_falling: bool


def skipgram_pairs(sequences: Sequence[np.ndarray], window: int) -> np.ndarray:
    """All (centre, context) pairs within `window` positions, both orders; [n_pairs, 2] int64."""
    out = []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for offset in range(1, window + 1):
            if len(seq) > offset:
                a, b = seq[:-offset], seq[offset:]
                out.append(np.stack([a, b], 1))
                out.append(np.stack([b, a], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def train_item2vec(
    sequences: Sequence[np.ndarray], n_items: int, cfg: Item2VecConfig, seed: int = 0, device: str = "cpu"
) -> Item2VecResult:
    """Learn item vectors from `sequences` (item indices in 0..n_items-1, each in time order)."""
    if n_items < 2:
        raise ValueError(f"item2vec needs at least 2 items (got n_items={n_items})")
    pairs = skipgram_pairs(sequences, cfg.window)
    if len(pairs) == 0:
        raise ValueError("item2vec: no training pairs; every sequence is shorter than 2 items")
    counts = np.bincount(np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]), minlength=n_items)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.as_tensor(counts.astype(np.float64) ** 0.75, dtype=torch.float32).to(device)
    w_in = torch.nn.Parameter((torch.rand(n_items, cfg.dim, generator=gen) - 0.5).div(cfg.dim).to(device))
    w_out = torch.nn.Parameter(torch.zeros(n_items, cfg.dim, device=device))
    opt = torch.optim.Adam([w_in, w_out], lr=cfg.lr)
    pairs_t = torch.as_tensor(pairs, device=device)
    losses = []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(pairs_t), generator=gen).to(device)
        total, n = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            batch = pairs_t[order[start : start + cfg.batch_size]]
            centre, context = w_in[batch[:, 0]], w_out[batch[:, 1]]
            neg_idx = torch.multinomial(noise, len(batch) * cfg.negatives, replacement=True).view(len(batch), -1)
            pos = F.logsigmoid((centre * context).sum(-1))
            neg = F.logsigmoid(-torch.einsum("bd,bkd->bk", centre, w_out[neg_idx])).sum(-1)
            loss = -(pos + neg).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
            n += len(batch)
        losses.append(total / n)
        if not np.isfinite(losses[-1]):
            break
    still_falling = len(losses) >= 2 and (losses[-2] - losses[-1]) / abs(losses[-2]) > cfg.tol
    emb = w_in.detach().cpu().numpy().astype(np.float32)
    seen = counts > 0
    emb[~seen] = 0.0
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
    return Item2VecResult(embeddings=emb, seen=seen, losses=losses, still_falling=bool(still_falling))


def ppmi_svd(
    sequences: Sequence[np.ndarray],
    n_items: int,
    dim: int = 32,
    window: int = 5,
    negatives: int = 5,
    smoothing: float = 0.75,
) -> Item2VecResult:
    """Item vectors from the SVD of the shifted positive PMI of skip-gram co-occurrences (see above)."""
    pairs = skipgram_pairs(sequences, window)
    if len(pairs) == 0:
        raise ValueError("ppmi_svd: no co-occurring pairs; every sequence is shorter than 2 items")
    counts = np.bincount(pairs[:, 0] * n_items + pairs[:, 1], minlength=n_items * n_items)
    C = counts.reshape(n_items, n_items).astype(np.float64)
    row = C.sum(1)
    ctx = C.sum(0) ** smoothing
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(C * C.sum()) - np.log(np.outer(row, ctx) * C.sum() / ctx.sum()) - np.log(negatives)
    ppmi = np.where(np.isfinite(pmi) & (C > 0), np.maximum(pmi, 0.0), 0.0)
    dim = min(dim, n_items - 1)
    if n_items <= 500:
        U, S, _ = np.linalg.svd(ppmi)
    else:  # truncated SVD (Lanczos), far cheaper than a full one; a fixed start vector keeps it deterministic
        v0 = np.random.default_rng(0).uniform(0.5, 1.5, n_items)
        U, S, _ = svds(csr_matrix(ppmi), k=dim, v0=v0)
    order = np.argsort(-S)[:dim]
    emb = (U[:, order] * np.sqrt(S[order])).astype(np.float32)
    seen = np.bincount(np.concatenate([np.asarray(q, dtype=np.int64) for q in sequences]), minlength=n_items) > 0
    emb[~seen] = 0.0
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)
    return Item2VecResult(embeddings=emb, seen=seen, losses=[], still_falling=False)


def item_embeddings(
    sequences: Sequence[np.ndarray], n_items: int, cfg: Item2VecConfig, seed: int = 0, device: str = "cpu"
) -> Item2VecResult:
    """The configured learner: `ppmi_svd` (closed form) or `sgns` (trained)."""
    if cfg.learner == "ppmi_svd":
        return ppmi_svd(sequences, n_items, cfg.dim, cfg.window, cfg.negatives)
    if cfg.learner == "sgns":
        return train_item2vec(sequences, n_items, cfg, seed=seed, device=device)
    raise ValueError(f"unknown item embedding learner {cfg.learner!r}; choose 'ppmi_svd' or 'sgns'")
