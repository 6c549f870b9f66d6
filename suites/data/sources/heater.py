"""The Heater paper's cold-start splits (LastFM users, CiteULike items) and the hetrec2011 LastFM files."""

from __future__ import annotations

from . import Source, archive, plain

# The commit the splits were taken from: pinned so the checksums keep matching.
_REPO = "https://raw.githubusercontent.com/Zziwei/Heater--Cold-Start-Recommendation/7d9e897d8af469b9459054f169e3bfc7aa43458c/data/"
_HETREC = "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"

_SPLITS = {
    "heater/citeulike/test.csv": "1bd729ca010d3e72da3e06e7a2622c1b8c3d5615d6c8cd72ccbbaaba31040c7f",
    "heater/citeulike/test_item_ids.csv": "ef7af432445a002a011bea59d7da251c4b723135b574ca531a66a4f60de5cec4",
    "heater/citeulike/train.csv": "73d55a5b2781925ea31ce8ccb5c7d74891d3c25bf6747ec2e3d2d625e0e51d15",
    "heater/citeulike/vali.csv": "f118e2c3c5702e2be67d20996b77036778b53784459695cafd154cb8ee37ffd9",
    "heater/lastfm/test.csv": "36ceedf3a02ee8f6c029ac5fd5418bebe7848461a024f4b0c1c609948e469dae",
    "heater/lastfm/train.csv": "04b743f97f0a50d5c691417f2aab74f7396ab07d87ca3f21d229dba920d3e1fd",
    "heater/lastfm/user_content.npz": "e3019efbd3c05948a4278bd7485465253fc5d47d7352bea05d877e7602caa8a3",
    "heater/lastfm/vali.csv": "2e6872bb17eb2c926a14ce14c3cb32f40118ef18ae85b7667fe9b5e66eb0662a",
}
_REPO_FOLDER = {"heater/citeulike/": "CiteULike/", "heater/lastfm/": "LastFM/"}
_HETREC_FILES = {
    "heater/lastfm/readme.txt": "6fe5d1e6f67b025fc50cd70883dd1a1ff16c5ff37b5b7abfb33644b83468b209",
    "heater/lastfm/user_artists.dat": "001400dc3c7d2667fca6e4ea6dc6acc31a9dd28ad5cd0f74cea988c019934d3b",
    "heater/lastfm/user_friends.dat": "9a3a8f7fa5f5ec832335e5b58ed69a4cf27c6f6f6afcde62134810eea46445a7",
}


def _repo_url(relpath: str) -> str:
    folder, name = relpath.rsplit("/", 1)
    return _REPO + _REPO_FOLDER[folder + "/"] + name


SOURCES = (
    Source(
        folder="heater",
        name="Heater paper splits (LastFM user cold start, CiteULike item cold start)",
        url="https://github.com/Zziwei/Heater--Cold-Start-Recommendation (folder data/)",
        licence="research use; cite Zhu et al. and the original datasets",
        citation="Z. Zhu, S. Sefati, P. Saadatpanah, J. Caverlee, Recommendation for New Users and New Items via "
        "Randomized Training and Mixture-of-Experts Transformation, SIGIR 2020",
        how="copy data/LastFM/{train,vali,test}.csv and user_content.npz into heater/lastfm/, and "
        "data/CiteULike/{train,vali,test,test_item_ids}.csv into heater/citeulike/",
        sha256=_SPLITS,
        downloads=tuple(plain(_repo_url(relpath), relpath) for relpath in _SPLITS),
    ),
    Source(
        folder="heater/lastfm",
        name="hetrec2011-lastfm-2k (GroupLens)",
        url="https://grouplens.org/datasets/hetrec-2011/ (hetrec2011-lastfm-2k.zip)",
        licence="research use; cite Cantador et al. and Last.fm",
        citation="I. Cantador, P. Brusilovsky, T. Kuflik, 2nd Workshop on Information Heterogeneity and Fusion "
        "in Recommender Systems (HetRec 2011), RecSys 2011",
        how="download hetrec2011-lastfm-2k.zip from GroupLens and put user_artists.dat, user_friends.dat and "
        "readme.txt into heater/lastfm/",
        sha256=_HETREC_FILES,
        downloads=(archive(_HETREC, {relpath: relpath.rsplit("/", 1)[1] for relpath in _HETREC_FILES}),),
    ),
)
