"""MovieLens 100K loader: counts against GroupLens' published figures, both layouts, honest failures."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from suites.data import ENV_VAR, DatasetUnavailable, is_available
from suites.data.movielens import load_movielens

DATA = os.environ.get(ENV_VAR)  # the data directory setting, as every loader reads it
needs_ml = pytest.mark.skipif(
    not DATA or not is_available("movielens-100k/ml-100k.inter", DATA), reason=f"MovieLens 100K not in ${ENV_VAR}"
)


@needs_ml
def test_counts_match_grouplens_readme():
    inter, items, users = load_movielens(DATA)
    # GroupLens' README: 100,000 ratings (1-5) from 943 users on 1682 movies, each user rated >= 20.
    assert len(inter) == 100_000
    assert inter["user_id"].nunique() == 943 and inter["item_id"].nunique() == 1682
    assert len(items) == 1682 and len(users) == 943
    assert set(inter["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert inter.groupby("user_id").size().min() == 20
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert inter["timestamp"].dtype == np.int64
    # First row of the file, and the collection period (Sept 1997 - April 1998).
    assert inter.iloc[0].tolist() == [196, 242, 3.0, 881250949]
    span = pd.to_datetime(inter["timestamp"], unit="s")
    assert span.min() >= pd.Timestamp("1997-09-19") and span.max() <= pd.Timestamp("1998-04-23")
    toy = items.set_index("item_id").loc[1]
    assert (
        toy["title"] == "Toy Story" and toy["year"] == 1995 and toy["genres"] == ("Animation", "Children's", "Comedy")
    )
    assert users.set_index("user_id").loc[2].tolist() == [53, "F", "other"]


@needs_ml
def test_grouplens_layout_gives_the_same_frames(tmp_path):
    """Write u.data/u.item/u.user from the RecBole frames and read them back through the other reader."""
    inter, items, users = load_movielens(DATA)
    folder = tmp_path / "movielens-100k"
    folder.mkdir()
    inter.to_csv(folder / "u.data", sep="\t", header=False, index=False)
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
              "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # fmt: skip
    with open(folder / "u.item", "w", encoding="latin-1") as fh:
        for row in items.itertuples():
            year = "" if pd.isna(row.year) else f"01-Jan-{row.year}"
            title = row.title if pd.isna(row.year) else f"{row.title} ({row.year})"
            flags = "|".join("1" if g in row.genres else "0" for g in genres)
            fh.write(f"{row.item_id}|{title}|{year}||http://x|{flags}\n")
    users.assign(zip="00000").to_csv(folder / "u.user", sep="|", header=False, index=False)
    inter2, items2, users2 = load_movielens(tmp_path)
    pd.testing.assert_frame_equal(inter, inter2)
    pd.testing.assert_frame_equal(users, users2)
    pd.testing.assert_frame_equal(items, items2)


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(DatasetUnavailable, match=r"movielens-100k/ml-100k.inter is missing.*grouplens"):
        load_movielens(tmp_path)
    if not is_available("movielens-100k/ml-100k.inter", DATA):
        return
    folder = tmp_path / "movielens-100k"
    shutil.copytree(f"{DATA}/movielens-100k", folder)
    with open(folder / "ml-100k.inter", "a") as fh:
        fh.write("1\t1\t5\t0\n")
    with pytest.raises(DatasetUnavailable, match="corrupt"):
        load_movielens(tmp_path)
