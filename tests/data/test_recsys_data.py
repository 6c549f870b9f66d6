"""Cold-start loaders on the real data (skipped without CLAIMBENCH_DATA): the paper's split sizes,
disjointness of cold entities, candidate sets; and a missing file fails with the source named."""

from __future__ import annotations

import os

import numpy as np
import pytest

from suites.data import ENV_VAR, DatasetUnavailable
from suites.data.recsys import load_citeulike, load_lastfm, load_movielens_cold, slice_cold_start


@pytest.fixture(scope="module")
def data_dir() -> str:
    path = os.environ.get(ENV_VAR)
    if not path:
        pytest.skip(f"real data not configured: set {ENV_VAR} to the data directory")
    return path


def test_lastfm_is_the_papers_user_cold_split(data_dir):
    d = load_lastfm(data_dir)
    # the paper: train 1,136 users / 55,810 pairs; validation 189 / 9,209; test 567 / 27,815
    assert (len(np.unique(d.train[:, 0])), len(d.train)) == (1136, 55810)
    assert (len(np.unique(d.vali[:, 0])), len(d.vali)) == (189, 9209)
    assert (len(np.unique(d.test[:, 0])), len(d.test)) == (567, 27815)
    assert d.cold == "user" and d.content.shape == (1892, 1892)
    assert not set(d.train[:, 0]) & set(d.test[:, 0]) and not set(d.train[:, 0]) & set(d.vali[:, 0])
    users, items, rel = d.eval_split("test")
    np.testing.assert_array_equal(items, np.unique(d.train[:, 1]))  # candidates: all warm items
    assert rel.any(1).all() and np.all(np.diff(users) > 0)


def test_citeulike_is_the_papers_item_cold_split_with_tag_content(data_dir):
    d = load_citeulike(data_dir, content_dim=16)
    assert (len(d.train), len(d.vali), len(d.test)) == (164210, 13037, 27739)
    assert len(d.test_items) == 2378  # the paper: 2,378 cold test items
    assert not set(d.train[:, 1]) & set(d.test_items) and not set(d.train[:, 1]) & set(d.vali_items)
    assert d.content.shape == (16980, 16) and "tags" in d.note
    assert np.abs(d.content).max() <= 5.0


@pytest.mark.parametrize("cold,column", [("item", 1), ("user", 0)])
def test_movielens_cold_splits_are_seeded_and_disjoint(data_dir, cold, column):
    d = load_movielens_cold(data_dir, cold, seed=0)
    again = load_movielens_cold(data_dir, cold, seed=0)
    other = load_movielens_cold(data_dir, cold, seed=1)
    np.testing.assert_array_equal(d.test, again.test)
    assert not np.array_equal(d.test, other.test)
    warm = set(d.train[:, column])
    assert not warm & set(d.test[:, column]) and not warm & set(d.vali[:, column])
    assert d.content.shape[0] == (d.n_items if cold == "item" else d.n_users)
    assert len(d.train) + len(d.vali) + len(d.test) == 55375  # ratings >= 4 in MovieLens-100K


def test_slice_keeps_the_protocol(data_dir):
    s = slice_cold_start(load_lastfm(data_dir), n_users=50, n_items=300)
    assert len(np.unique(s.train[:, 0])) <= 50 and len(s.test_items) <= 300
    assert not set(s.train[:, 0]) & set(s.test[:, 0])


def test_missing_file_names_the_source(tmp_path):
    with pytest.raises(DatasetUnavailable, match="Heater"):
        load_lastfm(tmp_path)
