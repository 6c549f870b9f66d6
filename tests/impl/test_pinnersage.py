"""PinnerSage: Ward cut, medoids, importance and retrieval against hand-computed cases and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score

from impl import pinnersage as ps
from impl.item2vec import Item2VecConfig, item_embeddings, ppmi_svd, skipgram_pairs, train_item2vec
from suites.pinnersage.data import synthetic_users


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return adjusted_rand_score(a, b) == 1.0 and len(np.unique(a)) == len(np.unique(b))


def test_ward_cut_hand_computed():
    # Points 0, 1, 10, 11 on a line. scipy's Ward height for merging clusters a, b is
    # sqrt(2 n_a n_b / (n_a + n_b)) * ||c_a - c_b||: {0}+{1} -> 1, {10}+{11} -> 1, {0,1}+{10,11} -> sqrt(2)*10.
    P = np.array([[0.0], [1.0], [10.0], [11.0]])
    assert ps.ward_labels(P, alpha=0.5).tolist() == [0, 1, 2, 3]
    assert ps.ward_labels(P, alpha=1.5).tolist() == [0, 0, 1, 1]
    assert ps.ward_labels(P, alpha=14.0).tolist() == [0, 0, 1, 1]
    assert ps.ward_labels(P, alpha=14.2).tolist() == [0, 0, 0, 0]
    assert ps.ward_labels(P, alpha=0.5, max_clusters=2).tolist() == [0, 0, 1, 1]


def test_ward_labels_agree_with_scipy_fcluster():
    rng = np.random.default_rng(0)
    for _ in range(5):
        P = rng.normal(size=(60, 8))
        for alpha in (2.0, 4.0, 8.0):
            ours = ps.ward_labels(P, alpha)
            theirs = fcluster(linkage(P, "ward"), t=alpha, criterion="distance")
            assert _same_partition(ours, theirs)
            assert 1 < ours.max() + 1 < 60 or alpha == 8.0


def test_medoid_hand_computed_differs_from_l1_medoid_and_centroid():
    # 1-D points 0, .1, .2, .3, 10. Sum of squared distances is least at .3 (94.23 vs 96.10 at .2);
    # sum of absolute distances (an L1 medoid) would pick .2; the centroid is 2.12, not a member.
    P = np.array([[0.0], [0.1], [0.2], [0.3], [10.0]])
    labels = np.zeros(5, dtype=np.int64)
    assert ps.medoids(P, labels).tolist() == [3]
    assert ps.centroids(P, labels)[0, 0] == pytest.approx(2.12)
    sq = ((P - P.T) ** 2).sum(1)
    assert sq[3] == pytest.approx(94.23) and sq[2] == pytest.approx(96.10)


def test_medoids_are_members_and_minimise_squared_distance():
    rng = np.random.default_rng(1)
    P = rng.normal(size=(80, 5))
    labels = ps.ward_labels(P, alpha=3.0)
    med = ps.medoids(P, labels)
    for c, m in enumerate(med):
        assert labels[m] == c
        members = np.flatnonzero(labels == c)
        cost = [((P[members] - P[i]) ** 2).sum() for i in members]  # brute force
        assert m == members[int(np.argmin(cost))]


def test_importance_hand_computed():
    labels = np.array([0, 0, 1])
    T = np.array([0.0, 10.0, 9.0])
    np.testing.assert_allclose(ps.importance(labels, T, 10.0, 0.1), [np.exp(-1) + 1, np.exp(-0.1)])
    np.testing.assert_allclose(ps.importance(labels, T, 10.0, 0.0), [2.0, 1.0])
    with pytest.raises(ValueError, match="after t_now"):
        ps.importance(labels, T, 5.0, 0.1)


def test_importance_ordering_follows_recency_as_lambda_grows():
    # Cluster A: 5 actions 100 days ago; cluster B: 2 actions today. Frequency (lambda 0) favours A;
    # lambda 0.01 gives A 5 e^-1 = 1.84 < B = 2; lambda 0.1 leaves A with nothing.
    P = np.array([[0.0, 0.0]] * 5 + [[10.0, 0.0]] * 2) + np.linspace(0, 0.01, 7)[:, None]
    T = np.array([0.0] * 5 + [100.0] * 2)
    first = {}
    for lam in (0.0, 0.01, 0.1):
        cfg = ps.PinnerSageConfig(alpha=1.0, lam=lam, n_embeddings=1)
        emb = ps.pinnersage(P, T, 100.0, cfg)
        first[lam] = int(emb.members[0])
    assert first[0.0] < 5 and first[0.01] >= 5 and first[0.1] >= 5
    imp = [ps.importance(np.array([0] * 5 + [1] * 2), T, 100.0, lam) for lam in (0.0, 0.01, 0.1)]
    ratios = [a / b for a, b in imp]
    assert ratios[0] > ratios[1] > ratios[2]
    assert imp[1] == pytest.approx([5 * np.exp(-1), 2.0])


def test_pinnersage_serves_top_k_medoids_and_sampling_is_seeded():
    P = np.array([[0.0, 0], [0.1, 0], [5, 5], [5.1, 5], [5.2, 5], [-5, 5]])
    T = np.array([1.0, 2, 3, 4, 5, 6])
    emb = ps.pinnersage(P, T, 6.0, ps.PinnerSageConfig(alpha=1.0, lam=0.0, n_embeddings=2))
    assert emb.n_clusters == 3
    assert emb.members.tolist() == [3, 0]  # the 3-action cluster's middle item, then the first cluster
    np.testing.assert_allclose(emb.vectors, P[emb.members], rtol=1e-6)  # served = the medoids reported
    np.testing.assert_allclose(emb.importance, [3.0, 2.0])
    cfg = ps.PinnerSageConfig(alpha=1.0, lam=0.0, n_embeddings=1, select="sample")
    draws = [int(ps.pinnersage(P, T, 6.0, cfg, np.random.default_rng(s)).members[0]) for s in range(300)]
    share = np.mean([d == 3 for d in draws])
    assert 0.4 < share < 0.6  # importance 3 of 6
    again = [int(ps.pinnersage(P, T, 6.0, cfg, np.random.default_rng(s)).members[0]) for s in range(300)]
    assert draws == again
    cent = ps.pinnersage(P, T, 6.0, ps.PinnerSageConfig(alpha=1.0, lam=0.0, representative="centroid"))
    np.testing.assert_allclose(cent.vectors[0], [5.1, 5.0], rtol=1e-6)


def test_variants_kmeans_and_complete():
    rng = np.random.default_rng(2)
    P = np.concatenate([rng.normal(c, 0.05, size=(10, 2)) for c in ((0, 0), (3, 0), (0, 3))])
    ward = ps.cluster(P, ps.PinnerSageConfig(alpha=2.0))
    complete = ps.cluster(P, ps.PinnerSageConfig(alpha=2.0, linkage="complete"))
    kmeans = ps.cluster(P, ps.PinnerSageConfig(alpha=2.0, linkage="kmeans", kmeans_k=3))
    assert ward.max() + 1 == 3 and _same_partition(ward, complete) and _same_partition(ward, kmeans)
    # On unstructured data the partitions differ, but complete linkage is cut at Ward's cluster count
    # (only the merge criterion changes), and k-means has exactly k clusters.
    X = rng.normal(size=(50, 4))
    cfg = ps.PinnerSageConfig(alpha=3.0)
    n_ward = ps.cluster(X, cfg).max() + 1
    assert 2 < n_ward < 50
    assert ps.cluster(X, ps.PinnerSageConfig(alpha=3.0, linkage="complete")).max() + 1 == n_ward
    assert ps.cluster(X, ps.PinnerSageConfig(alpha=3.0, linkage="kmeans")).max() + 1 == 5


def test_single_embedding_baselines():
    P = np.array([[1.0, 0], [0, 1], [1, 1]])
    T = np.array([0.0, 2.0, 1.0])
    np.testing.assert_allclose(ps.single_embedding(P, T, 2.0, "last")[0], [0, 1])
    np.testing.assert_allclose(ps.single_embedding(P, T, 2.0, "mean")[0], [2 / 3, 2 / 3], rtol=1e-6)
    w = np.exp(-0.5 * np.array([2.0, 0.0, 1.0]))
    np.testing.assert_allclose(ps.single_embedding(P, T, 2.0, "decay", lam=0.5)[0], w @ P / w.sum(), rtol=1e-6)


def test_clustering_recovers_synthetic_interests():
    users = synthetic_users(40, spread=0.2, seed=3)
    ari = [adjusted_rand_score(t, ps.ward_labels(users.item_emb[h[0]].astype(np.float64), 1.5))
           for h, t in zip(users.histories, users.truth, strict=True)]  # fmt: skip
    assert np.mean(ari) > 0.9


def test_retrieval_exact_round_robin_and_hnsw():
    rng = np.random.default_rng(4)
    items = rng.normal(size=(500, 8)).astype(np.float32)
    a, b = items[10] * 3, items[20]  # cosine ignores the scale
    cands = ps.retrieve([np.stack([a, b])], items, k=6, exclude=[np.array([10])])
    _, order_a = ps.exact_search(a[None], items, 5)
    _, order_b = ps.exact_search(b[None], items, 5)
    assert order_a[0, 0] == 10 and order_b[0, 0] == 20
    la, lb = [i for i in order_a[0] if i != 10], list(order_b[0])
    assert cands[0].tolist() == [la[0], lb[0], la[1], lb[1], la[2], lb[2]]
    queries = [rng.normal(size=(2, 8)).astype(np.float32) for _ in range(50)]
    exact = ps.retrieve(queries, items, k=20)
    approx = ps.retrieve(queries, items, k=20, index=ps.hnsw_index(items))
    assert np.mean(ps.overlap(approx, exact)) > 0.95
    hit, rec = ps.hit_and_recall([np.array([1, 2, 3])], [np.array([3, 4])])
    assert hit.tolist() == [1.0] and rec.tolist() == [0.5]


def test_embed_users_batch_matches_one_by_one():
    users = synthetic_users(5, seed=5)
    cfg = ps.PinnerSageConfig(alpha=1.5, select="sample")
    batch = ps.embed_users(users.histories, users.item_emb, cfg, seed=7, progress=False)
    rng = np.random.default_rng(7)
    for (items, T, t_now), got in zip(users.histories, batch, strict=True):
        np.testing.assert_array_equal(got, ps.pinnersage(users.item_emb[items], T, t_now, cfg, rng).vectors)


def test_item2vec_pairs_and_learns_cooccurrence():
    assert skipgram_pairs([np.array([0, 1, 2])], 1).tolist() == [[0, 1], [1, 2], [1, 0], [2, 1]]
    # Two disjoint item communities: items co-occur only within their community.
    rng = np.random.default_rng(6)
    seqs = [rng.choice(10, 20) + 10 * (u % 2) for u in range(200)]
    res = train_item2vec(seqs, 21, Item2VecConfig(dim=8, epochs=5, window=3, batch_size=256), seed=0)
    assert not res.seen[20] and np.all(res.embeddings[20] == 0)
    sims = res.embeddings[:20] @ res.embeddings[:20].T
    within = (sims[:10, :10].sum() - 10) / 90
    across = sims[:10, 10:].mean()
    assert within > across + 0.3
    assert res.losses[-1] < res.losses[0]


def test_ppmi_svd_hand_computed_and_learns_cooccurrence():
    # Sequences [0 1] and [1 2], window 1: pairs (0,1),(1,0),(1,2),(2,1). With smoothing 1 and k = 1,
    # PMI(0,1) = log(C01 * N / (row0 * col1)) = log(1 * 4 / (1 * 2)) = log 2 > 0; PMI(0,2) has no count -> 0.
    res = ppmi_svd([np.array([0, 1]), np.array([1, 2])], 3, dim=2, window=1, negatives=1, smoothing=1.0)
    M = np.array([[0, np.log(2), 0], [np.log(2), 0, np.log(2)], [0, np.log(2), 0]])
    U, S, _ = np.linalg.svd(M)
    ref = U[:, :2] * np.sqrt(S[:2])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    ours = res.embeddings
    np.testing.assert_allclose(np.abs(ours @ ours.T), np.abs(ref @ ref.T), atol=1e-5)  # up to signs of the axes
    rng = np.random.default_rng(6)
    seqs = [rng.choice(10, 20) + 10 * (u % 2) for u in range(200)]
    res = item_embeddings(seqs, 21, Item2VecConfig(dim=4, window=3, negatives=1))  # PMI within = log 2
    assert not res.seen[20] and np.all(res.embeddings[20] == 0)
    sims = res.embeddings[:20] @ res.embeddings[:20].T
    assert (sims[:10, :10].sum() - 10) / 90 > sims[:10, 10:].mean() + 0.5
    again = item_embeddings(seqs, 21, Item2VecConfig(dim=4, window=3, negatives=1))
    np.testing.assert_array_equal(res.embeddings, again.embeddings)  # deterministic
