"""Multi30k task 1 (English-German image descriptions), the raw gzipped text files."""

from __future__ import annotations

from . import Source, plain

_REPO = "https://raw.githubusercontent.com/multi30k/dataset/c9be912dc05a3ebf9ae5bb5f7f58c1791cda43ab/data/task1/raw/"

_SHA256 = {
    "multi30k/test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "multi30k/test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "multi30k/train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "multi30k/train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "multi30k/val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "multi30k/val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
}

SOURCES = (
    Source(
        folder="multi30k",
        name="Multi30k task 1 (Elliott et al. 2016)",
        url="https://github.com/multi30k/dataset (data/task1/raw/)",
        licence="non-commercial research and educational use (Flickr terms of use)",
        citation="D. Elliott, S. Frank, K. Sima'an, L. Specia, Multi30K: Multilingual English-German Image "
        "Descriptions, 5th Workshop on Vision and Language, 2016",
        how="copy train, val and test_2016_flickr .en.gz/.de.gz from github multi30k/dataset, data/task1/raw/, "
        "into multi30k/",
        sha256=_SHA256,
        downloads=tuple(plain(_REPO + relpath.split("/", 1)[1], relpath) for relpath in _SHA256),
    ),
)
