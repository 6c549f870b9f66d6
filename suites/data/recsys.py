"""Cold-start recommendation datasets: LastFM and CiteULike with the Heater paper's splits, and
MovieLens-100K with seeded item-cold and user-cold splits built here.

Every loader returns a `ColdStart`: training pairs, validation and test pairs, the candidate items
of validation and test (cold items for item cold start; all warm items for user cold start, as
the official code), and the content of the cold side. Files are read through `data_file`
(checksums verified; a missing file raises DatasetUnavailable naming its source).

Content:
- LastFM: the user friendship adjacency (1892 x 1892), exactly the paper's user content.
- CiteULike: the paper used item TEXT (tf-idf -> SVD 300), which is not available here; the item
  TAGS of CiteULike-a (item-tag.dat, tf-idf -> truncated SVD) stand in, and every table says so.
- MovieLens-100K: items = genres + release year + title words (tf-idf -> SVD 32); users = age
  band + gender + occupation. Positives are ratings >= 4.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from suites.data import data_file, resolve_data_dir

PathLike = str | os.PathLike | None
CITEULIKE_CONTENT_NOTE = "CiteULike item content = tags (citeulike-a item-tag.dat), not the paper's item text"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: loaders cache one per split
class ColdStart:
    name: str
    cold: str  # "user" or "item": which side is new at test time
    n_users: int
    n_items: int
    train: np.ndarray  # (n, 2) int64 (user, item) positives
    vali: np.ndarray
    test: np.ndarray
    vali_items: np.ndarray  # candidate items ranked for validation users
    test_items: np.ndarray
    content: np.ndarray  # float32 content of the cold side, one row per user (or item)
    note: str = ""

    @property
    def warm_items(self) -> np.ndarray:
        return np.unique(self.train[:, 1])

    def eval_split(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, candidate items, relevance (users x candidates, bool)) of "vali" or "test".

        Users are sorted ascending and kept only with at least one relevant candidate, so every
        method of a task returns its per-user arrays in the same order."""
        pairs, items = (self.vali, self.vali_items) if split == "vali" else (self.test, self.test_items)
        col = np.full(self.n_items, -1, dtype=np.int64)
        col[items] = np.arange(len(items))
        keep = col[pairs[:, 1]] >= 0
        pairs = pairs[keep]
        users = np.unique(pairs[:, 0])
        row = np.searchsorted(users, pairs[:, 0])
        rel = np.zeros((len(users), len(items)), dtype=bool)
        rel[row, col[pairs[:, 1]]] = True
        return users, items, rel


def _pairs(path) -> np.ndarray:
    frame = pd.read_csv(path)
    if list(frame.columns[:2]) != ["uid", "iid"]:
        raise ValueError(f"{path.name}: expected columns uid,iid, found {list(frame.columns)}")
    return frame[["uid", "iid"]].to_numpy(dtype=np.float64).astype(np.int64)


@lru_cache(maxsize=2)
def _lastfm(root: str) -> ColdStart:
    train, vali, test = (_pairs(data_file(f"heater/lastfm/{s}.csv", root)) for s in ("train", "vali", "test"))
    adjacency = sp.load_npz(data_file("heater/lastfm/user_content.npz", root))
    n_users = adjacency.shape[0]
    n_items = int(max(train[:, 1].max(), vali[:, 1].max(), test[:, 1].max())) + 1
    warm = np.unique(train[:, 1])
    return ColdStart(
        name="lastfm",
        cold="user",
        n_users=n_users,
        n_items=n_items,
        train=train,
        vali=vali,
        test=test,
        vali_items=warm,
        test_items=warm,
        content=np.asarray(adjacency.todense(), dtype=np.float32),
        note="LastFM hetrec2011, the paper's split and user content (friendship adjacency)",
    )


def load_lastfm(data_dir: PathLike = None) -> ColdStart:
    return _lastfm(str(resolve_data_dir(data_dir)))


def _tfidf_svd(counts: sp.csr_matrix, dim: int, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    tfidf = TfidfTransformer(sublinear_tf=True).fit_transform(counts)
    dim = min(dim, min(counts.shape) - 1)
    return TruncatedSVD(n_components=dim, n_iter=5, random_state=seed).fit_transform(tfidf)


@lru_cache(maxsize=2)
def _citeulike(root: str, content_dim: int) -> ColdStart:
    from impl.recsys import standardize

    train, vali, test = (_pairs(data_file(f"heater/citeulike/{s}.csv", root)) for s in ("train", "vali", "test"))
    rows, cols = [], []
    with open(data_file("citeulike-a/item-tag.dat", root)) as fh:
        for item, line in enumerate(fh):
            tags = [int(t) for t in line.split()[1:]]
            rows += [item] * len(tags)
            cols += tags
    n_items = item + 1
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, max(cols) + 1))
    content = standardize(_tfidf_svd(counts, content_dim), clip=5.0)
    n_users = int(max(train[:, 0].max(), vali[:, 0].max(), test[:, 0].max())) + 1
    if max(train[:, 1].max(), vali[:, 1].max(), test[:, 1].max()) >= n_items:
        raise ValueError("CiteULike split refers to items beyond citeulike-a/item-tag.dat: mismatched files")
    return ColdStart(
        name="citeulike",
        cold="item",
        n_users=n_users,
        n_items=n_items,
        train=train,
        vali=vali,
        test=test,
        vali_items=np.unique(vali[:, 1]),
        test_items=np.unique(test[:, 1]),
        content=content,
        note=CITEULIKE_CONTENT_NOTE,
    )


def load_citeulike(data_dir: PathLike = None, content_dim: int = 300) -> ColdStart:
    return _citeulike(str(resolve_data_dir(data_dir)), content_dim)


# ----------------------------------------------------------------------------------------------
# MovieLens-100K: seeded cold splits


def _movielens_positives(data_dir: PathLike):
    from suites.data.movielens import load_movielens

    inter, items, users = load_movielens(data_dir)
    pos = inter[inter["rating"] >= 4]
    # Dense 0-based ids over all users/items of the files, so content rows line up.
    user_ids = np.sort(users["user_id"].to_numpy())
    item_ids = np.sort(items["item_id"].to_numpy())
    pairs = np.stack(
        [np.searchsorted(user_ids, pos["user_id"].to_numpy()), np.searchsorted(item_ids, pos["item_id"].to_numpy())], 1
    ).astype(np.int64)
    return pairs, items.set_index("item_id").loc[item_ids], users.set_index("user_id").loc[user_ids]


def _movielens_item_content(items: pd.DataFrame) -> np.ndarray:
    from sklearn.feature_extraction.text import CountVectorizer

    from impl.recsys import standardize

    genres = sorted({g for gs in items["genres"] for g in (gs.split("|") if isinstance(gs, str) else gs)})
    onehot = np.zeros((len(items), len(genres)), dtype=np.float32)
    for r, gs in enumerate(items["genres"]):
        for g in gs.split("|") if isinstance(gs, str) else gs:
            onehot[r, genres.index(g)] = 1.0
    year = items["year"].astype("float64").to_numpy()
    year = np.where(np.isnan(year), np.nanmedian(year), year)
    decades = np.arange(1920, 2000, 10)
    decade = (np.digitize(year, decades)[:, None] == np.arange(len(decades) + 1)).astype(np.float32)
    words = CountVectorizer(min_df=2).fit_transform(items["title"].fillna(""))
    title = _tfidf_svd(words.tocsr().astype(np.float64), 32)
    dense = np.concatenate([onehot, decade, ((year - year.mean()) / year.std())[:, None], title], 1)
    return standardize(dense, clip=5.0)


def _movielens_user_content(users: pd.DataFrame) -> np.ndarray:
    bands = np.digitize(users["age"].to_numpy(), [18, 25, 35, 45, 50, 56])
    age = (bands[:, None] == np.arange(7)).astype(np.float32)
    gender = (users["gender"].to_numpy() == "F").astype(np.float32)[:, None]
    jobs = sorted(users["occupation"].unique())
    job = (users["occupation"].to_numpy()[:, None] == np.array(jobs)[None, :]).astype(np.float32)
    return np.concatenate([age, gender, job], 1)


def _split_cold(pairs: np.ndarray, column: int, cold_fraction: float, vali_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    ids = np.unique(pairs[:, column])
    cold = rng.permutation(ids)[: int(round(cold_fraction * len(ids)))]
    n_vali = int(round(vali_fraction * len(cold)))
    vali_ids, test_ids = cold[:n_vali], cold[n_vali:]
    col = pairs[:, column]
    return pairs[~np.isin(col, cold)], pairs[np.isin(col, vali_ids)], pairs[np.isin(col, test_ids)]


@lru_cache(maxsize=4)
def _movielens(root: str, cold: str, seed: int) -> ColdStart:
    pairs, items, users = _movielens_positives(root)
    n_users, n_items = len(users), len(items)
    if cold == "item":  # as CiteULike: a quarter of the items cold, 30% of them for validation
        train, vali, test = _split_cold(pairs, 1, 0.25, 0.3, seed)
        vali_items, test_items = np.unique(vali[:, 1]), np.unique(test[:, 1])
        content = _movielens_item_content(items)
        note = "MovieLens-100K (ratings >= 4), seeded item-cold split; item content = genres, year, title words"
    elif cold == "user":  # as LastFM: 40% of the users cold, a quarter of them for validation
        train, vali, test = _split_cold(pairs, 0, 0.4, 0.25, seed)
        vali_items = test_items = np.unique(train[:, 1])
        content = _movielens_user_content(users)
        note = "MovieLens-100K (ratings >= 4), seeded user-cold split; user content = age, gender, occupation"
    else:
        raise ValueError(f"cold must be 'item' or 'user', got {cold!r}")
    return ColdStart(
        f"movielens-{cold}", cold, n_users, n_items, train, vali, test, vali_items, test_items, content, note
    )


def load_movielens_cold(data_dir: PathLike = None, cold: str = "item", seed: int = 0) -> ColdStart:
    """MovieLens-100K with a cold split. `seed` fixes the split (the dataset), not the training run."""
    return _movielens(str(resolve_data_dir(data_dir)), cold, seed)


def slice_cold_start(data: ColdStart, n_users: int, n_items: int, seed: int = 0) -> ColdStart:
    """A small slice (smoke runs): the n_items most popular training items and up to n_users users
    of each split, drawn with a fixed seed. Candidates are restricted the same way."""
    rng = np.random.default_rng(seed)
    top = np.argsort(-np.bincount(data.train[:, 1], minlength=data.n_items), kind="stable")[:n_items]
    keep_item = np.zeros(data.n_items, dtype=bool)
    keep_item[top] = True
    if data.cold == "item":
        keep_item[data.vali_items[: n_items // 4]] = True
        keep_item[data.test_items[: n_items // 4]] = True

    def cut(pairs):
        pairs = pairs[keep_item[pairs[:, 1]]]
        users = np.unique(pairs[:, 0])
        chosen = rng.choice(users, size=min(n_users, len(users)), replace=False)
        return pairs[np.isin(pairs[:, 0], chosen)]

    train, vali, test = cut(data.train), cut(data.vali), cut(data.test)
    if data.cold == "user":
        vali_items = test_items = np.unique(train[:, 1])
    else:
        vali_items, test_items = np.unique(vali[:, 1]), np.unique(test[:, 1])
    return replace(data, name=data.name + "-slice", train=train, vali=vali, test=test, vali_items=vali_items,
                   test_items=test_items)  # fmt: skip


LOADERS = {
    "lastfm": lambda data_dir, **kw: load_lastfm(data_dir),
    "citeulike": lambda data_dir, content_dim=300, **kw: load_citeulike(data_dir, content_dim),
    "movielens-item": lambda data_dir, split_seed=0, **kw: load_movielens_cold(data_dir, "item", split_seed),
    "movielens-user": lambda data_dir, split_seed=0, **kw: load_movielens_cold(data_dir, "user", split_seed),
}
