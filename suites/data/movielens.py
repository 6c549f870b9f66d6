"""MovieLens 100K (GroupLens): ratings with timestamps, movies, users.

`load_movielens(data_dir)` returns three pandas DataFrames, read through `data_file` (checksums
verified, clear errors, no synthetic fallback):

    inter  user_id, item_id (int64), rating (float64), timestamp (int64, unix seconds); 100,000 rows
    items  item_id (int64), title (str), year (Int64, missing for 1 movie), genres (tuple of str)
    users  user_id (int64), age (int64), gender (str), occupation (str)

Two layouts are read: RecBole's atomic files `movielens-100k/ml-100k.{inter,item,user}` (typed
tab-separated headers such as `user_id:token`; what this machine has) and GroupLens' original
`movielens-100k/u.{data,item,user}` (the `ml-100k.zip` layout). RecBole's layout is preferred.
"""

from __future__ import annotations

import os
from functools import lru_cache

import pandas as pd

from suites.data import DatasetUnavailable, data_file, resolve_data_dir

PathLike = str | os.PathLike | None

FOLDER = "movielens-100k"
RECBOLE = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
GROUPLENS = ("u.data", "u.item", "u.user")
# Column order of the 19 genre flags in GroupLens' u.item (u.genre).
GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def _read_atomic(path) -> pd.DataFrame:
    """A RecBole atomic file: tab separated, header `name:type`; the types are dropped from the names."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def _year(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.replace("", None), errors="coerce").round().astype("Int64")


def _load_recbole(data_dir: PathLike):
    inter_p, item_p, user_p = (data_file(f"{FOLDER}/{name}", data_dir) for name in RECBOLE)
    raw = _read_atomic(inter_p)
    inter = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype("int64"),
            "item_id": raw["item_id"].astype("int64"),
            "rating": raw["rating"].astype("float64"),
            "timestamp": raw["timestamp"].astype("float64").astype("int64"),
        }
    )
    raw = _read_atomic(item_p)
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"].astype("int64"),
            "title": raw["movie_title"],
            "year": _year(raw["release_year"]),
            "genres": [tuple(g.split()) for g in raw["class"]],
        }
    )
    raw = _read_atomic(user_p)
    users = pd.DataFrame(
        {
            "user_id": raw["user_id"].astype("int64"),
            "age": raw["age"].astype("int64"),
            "gender": raw["gender"],
            "occupation": raw["occupation"],
        }
    )
    return inter, items, users


def _load_grouplens(data_dir: PathLike):
    data_p, item_p, user_p = (data_file(f"{FOLDER}/{name}", data_dir) for name in GROUPLENS)
    inter = pd.read_csv(data_p, sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
    inter = inter.astype({"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "int64"})
    cols = ["item_id", "title", "release", "video", "url", *GROUPLENS_GENRES]
    raw = pd.read_csv(item_p, sep="|", header=None, names=cols, encoding="latin-1", dtype=str, keep_default_na=False)
    flags = raw[list(GROUPLENS_GENRES)].to_numpy() == "1"
    # Titles of dated movies carry the year in brackets ("Toy Story (1995)"); RecBole strips it, so do we.
    stripped = raw["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True)
    title = stripped.where(raw["release"] != "", raw["title"])
    items = pd.DataFrame(
        {
            "item_id": raw["item_id"].astype("int64"),
            "title": title,
            "year": _year(raw["release"].str[-4:]),
            "genres": [tuple(g for g, on in zip(GROUPLENS_GENRES, row, strict=True) if on) for row in flags],
        }
    )
    raw = pd.read_csv(user_p, sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"])
    users = raw[["user_id", "age", "gender", "occupation"]].astype({"user_id": "int64", "age": "int64"})
    return inter, items, users


@lru_cache(maxsize=4)
def _load_cached(data_dir: str):
    try:
        return _load_recbole(data_dir)
    except DatasetUnavailable as recbole_error:
        try:
            return _load_grouplens(data_dir)
        except DatasetUnavailable:
            raise recbole_error from None


def load_movielens(data_dir: PathLike = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(inter, items, users) of MovieLens 100K; copies, so callers may modify them."""
    inter, items, users = _load_cached(str(resolve_data_dir(data_dir)))
    return inter.copy(), items.copy(), users.copy()
