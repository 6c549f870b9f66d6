"""Ranking metrics against hand-computed cases and a transcription of the official evaluation;
standardisation, BPR, LinMap and KNN on cases small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from impl.recsys import (
    BPRConfig,
    DropoutNet,
    DropoutNetConfig,
    knn_scores,
    linmap,
    ranking_metrics,
    standardize,
    train_bpr,
)


def _metrics(scores, rel, ks):
    return ranking_metrics(torch.tensor(scores, dtype=torch.float32), torch.tensor(rel), ks)


def test_metrics_hand_computed():
    scores = [[0.9, 0.1, 0.8, 0.3, 0.5], [0.2, 0.4, 0.6, 0.8, 1.0]]
    rel = [[True, False, False, True, False], [True, False, False, False, False]]
    m = _metrics(scores, rel, (2, 4, 5))
    # user 0 ranks items 0, 2, 4, 3, 1 (relevant: 0 and 3); user 1 ranks 4, 3, 2, 1, 0 (relevant: 0)
    np.testing.assert_allclose(m["recall@2"], [0.5, 0.0])
    np.testing.assert_allclose(m["precision@2"], [0.5, 0.0])
    np.testing.assert_allclose(m["ndcg@2"], [1 / (1 + 1 / math.log2(3)), 0.0])
    np.testing.assert_allclose(m["recall@4"], [1.0, 0.0])
    np.testing.assert_allclose(m["precision@4"], [0.5, 0.0])
    np.testing.assert_allclose(m["ndcg@4"], [(1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)), 0.0])
    np.testing.assert_allclose(m["recall@5"], [1.0, 1.0])
    np.testing.assert_allclose(m["ndcg@5"][1], 1 / math.log2(6))
    assert m["recall@2"].shape == (2,)


def test_recall_divides_by_all_relevant_and_ndcg_caps_ideal_at_k():
    # three relevant items, the top two are both relevant: recall 2/3 (not 2/min(2, 3)), NDCG 1
    m = _metrics([[3.0, 2.0, 1.0, 0.0]], [[True, True, False, True]], (2,))
    np.testing.assert_allclose(m["recall@2"], [2 / 3])
    np.testing.assert_allclose(m["ndcg@2"], [1.0])


def test_users_without_relevant_items_are_refused():
    with pytest.raises(ValueError, match="at least one relevant"):
        _metrics([[1.0, 0.0]], [[False, False]], (1,))


def _official(scores, rel, ks):
    """The official utils.batch_eval_recall, transcribed with a loop per user."""
    idcg_array = 1 / np.log2(np.arange(1, 101) + 1)
    idcg_table = np.cumsum(idcg_array)
    out = {}
    for k in ks:
        rec, ndcg = [], []
        for s, r in zip(scores, rel, strict=True):
            top = np.argsort(-s, kind="stable")[:k]
            hits = r[top].astype(float)
            rec.append(hits.sum() / r.sum())
            idcg = idcg_table[int(min(r.sum() - 1, k - 1))]
            ndcg.append((hits * idcg_array[:k]).sum() / idcg)
        out[f"recall@{k}"], out[f"ndcg@{k}"] = np.array(rec), np.array(ndcg)
    return out


def test_metrics_match_official_transcription():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 150)).astype(np.float32)
    rel = rng.random((40, 150)) < 0.1
    rel[:, 0] = True
    ours = _metrics(scores, rel, (20, 50, 100))
    ref = _official(scores, rel, (20, 50, 100))
    for key, value in ref.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-12, err_msg=key)


def test_standardize_keeps_cold_rows_zero_and_clips():
    x = np.array([[0.0, 0.0], [1.0, 10.0], [3.0, 10.0], [5.0, 40.0]])
    z = standardize(x, clip=1.0)
    assert np.all(z[0] == 0)
    col0 = (np.array([1.0, 3.0, 5.0]) - 3.0) / np.std([1.0, 3.0, 5.0])
    np.testing.assert_allclose(z[1:, 0], np.clip(col0, -1, 1), rtol=1e-6)
    assert z.max() <= 1.0 and z.min() >= -1.0


def test_bpr_learns_a_block_structure_and_zeroes_unseen_rows():
    torch.manual_seed(0)
    users = np.repeat(np.arange(8), 4)
    items = np.concatenate([np.arange(4) if u < 4 else np.arange(4, 8) for u in range(8)])
    U, V, losses = train_bpr(9, 9, users, items, BPRConfig(dim=4, lr=0.05, epochs=60, batch=8))
    assert losses[-1] < losses[0]
    assert np.all(U[8] == 0) and np.all(V[8] == 0)
    s = U[:8] @ V[:8].T
    assert (s[:4, :4].mean() - s[:4, 4:].mean()) > 0.5 and (s[4:, 4:].mean() - s[4:, :4].mean()) > 0.5


def test_linmap_recovers_an_exact_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    w = rng.normal(size=(5, 3))
    np.testing.assert_allclose(linmap(x, x @ w, ridge=1e-9), w, atol=1e-5)


def test_knn_scores_hand_computed():
    query = np.array([[1.0, 0.0]])
    warm = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    inter = np.array([[1, 0], [0, 1], [1, 1]], dtype=float)
    # k = 2: neighbours are warm 0 (cos 1) and warm 2 (cos 1/sqrt2); warm 1 (cos 0) is dropped
    s = knn_scores(query, warm, inter, k=2)
    np.testing.assert_allclose(s, [[1 + 1 / math.sqrt(2), 1 / math.sqrt(2)]], rtol=1e-6)


def test_dropoutnet_dropped_rows_ignore_the_cf_vector_and_param_count():
    torch.manual_seed(0)
    net = DropoutNet(DropoutNetConfig(rank_in=4, user_content_dim=3, hidden=(5,), rank_out=2)).eval()
    # user side: dense (4+3)x5+5, BN 2x5, out 5x2+2; item side: dense 4x5+5, BN 10, out 12
    assert sum(p.numel() for p in net.parameters()) == (40 + 10 + 12) + (25 + 10 + 12)
    c = torch.randn(3, 3)
    drop = torch.ones(3, 1)
    a = net.user_embedding(torch.randn(3, 4), c, drop)
    b = net.user_embedding(torch.randn(3, 4), c, drop)
    torch.testing.assert_close(a, b)
    # sparse content gives the same answer as dense content
    torch.testing.assert_close(net.user_embedding(torch.zeros(3, 4), c.to_sparse(), drop), a)
    torch.testing.assert_close(net.user_embedding(torch.zeros(3, 4), c.to_sparse_csr(), drop), a)


def test_bpr_stops_when_its_rule_says_so():
    class StopAfter:
        improved = True

        def __init__(self, n):
            self.n, self.seen = n, []

        def update(self, value):
            self.seen.append(value)
            return len(self.seen) >= self.n

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 20, 300), rng.integers(0, 15, 300)
    rule = StopAfter(3)
    torch.manual_seed(0)
    _, _, losses = train_bpr(20, 15, users, items, BPRConfig(dim=4, epochs=50, batch=64), stop=rule)
    assert len(losses) == 3 and rule.seen == losses
