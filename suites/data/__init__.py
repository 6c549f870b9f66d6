"""Dataset files: where they live, where they come from, and their checksums.

Every loader goes through `data_file(relpath)`. It resolves the data directory (`--data-dir`,
then the `CLAIMBENCH_DATA` environment variable), checks that the file exists and that its
sha256 matches the checksum table, and otherwise raises `DatasetUnavailable` with a message naming
the file, its canonical public source and how to obtain it. There is no silent fallback to
synthetic data.

Sources and checksums are declared per dataset family in `suites/data/sources/<family>.py` and
discovered here, so a new family is one new module. Messages name files relative to the data
directory, never by absolute path: they end up in committed results.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .sources import Download, Source, discover

ENV_VAR = "CLAIMBENCH_DATA"
WHERE = f"the data directory (${ENV_VAR} or --data-dir)"

__all__ = [
    "ENV_VAR", "FAMILIES", "SHA256", "SOURCES", "DatasetUnavailable", "Download", "Source", "data_file",
    "fix_hint", "is_available", "resolve_data_dir", "sha256_of", "source_of",
]  # fmt: skip


class DatasetUnavailable(RuntimeError):
    """A dataset file is missing, unreadable or corrupt. The message says how to fix it."""


FAMILIES: dict[str, tuple[Source, ...]] = discover()
SOURCES: tuple[Source, ...] = tuple(s for sources in FAMILIES.values() for s in sources)


def _merged_sha256() -> dict[str, str]:
    merged: dict[str, str] = {}
    for source in SOURCES:
        for relpath, digest in source.sha256.items():
            if relpath in merged:
                raise ValueError(f"{relpath} has a checksum in two sources")
            merged[relpath] = digest
    return dict(sorted(merged.items()))


# sha256 of every known file, relative to the data directory.
SHA256: dict[str, str] = _merged_sha256()


def source_of(relpath: str) -> Source:
    """The source that lists `relpath`, else the one with the longest folder containing it."""
    for source in SOURCES:
        if relpath in source.sha256 or source.download_for(relpath) is not None:
            return source
    owners = [s for s in SOURCES if relpath.startswith(s.folder + "/")]
    if not owners:
        raise KeyError(f"no known source for {relpath!r}")
    return max(owners, key=lambda s: len(s.folder))


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the explicit argument, else $CLAIMBENCH_DATA."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(ENV_VAR)
    if not chosen:
        raise DatasetUnavailable(
            f"no data directory set: pass --data-dir DIR or set {ENV_VAR}=DIR "
            "(the folder that holds uea/, baydogan/, heater/, ...; `claimbench data fetch` fills it)"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        origin = "--data-dir" if data_dir not in (None, "") else f"${ENV_VAR}"
        raise DatasetUnavailable(
            f"the data directory given by {origin} does not exist or is not a folder: create it and run "
            f"`claimbench data fetch`, or point {origin} at the folder that holds the datasets"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}


def verified(path: Path, expected: str) -> tuple[bool, str]:
    """(matches, actual sha256) for a present file, remembering files already checked unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) == expected:
        return True, expected
    actual = sha256_of(path)
    if actual == expected:
        _verified[key] = actual
    return actual == expected, actual


def data_file(relpath: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of a verified dataset file, or `DatasetUnavailable` saying how to get it.

    Files listed in `SHA256` must match their checksum; a file that is not listed (a dataset a
    user added by name) is accepted as it is.
    """
    root = resolve_data_dir(data_dir)
    path = root / relpath
    if not path.is_file():
        raise DatasetUnavailable(f"dataset file {relpath} is missing from {WHERE}. {fix_hint(relpath)}")
    expected = SHA256.get(relpath)
    if expected is None:
        return path
    ok, actual = verified(path, expected)
    if not ok:
        raise DatasetUnavailable(corrupt_message(relpath, actual, expected))
    return path


def is_available(relpath: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether the file is present (checksum not checked: cheap enough for `claimbench list`)."""
    try:
        return (resolve_data_dir(data_dir) / relpath).is_file()
    except DatasetUnavailable:
        return False


def corrupt_message(relpath: str, actual: str, expected: str) -> str:
    return (
        f"dataset file {relpath} in {WHERE} is corrupt: its sha256 {actual} does not match the expected "
        f"{expected}. It was left in place; move it aside, then get it again. {fix_hint(relpath)}"
    )


def fix_hint(relpath: str) -> str:
    """Where the file comes from and how to get it (fetch command and by hand)."""
    try:
        source = source_of(relpath)
    except KeyError:
        return "It is not a dataset claimbench knows; check the name."
    text = f"Source: {source.name}, {source.url} ({source.licence})."
    if source.download_for(relpath) is not None:
        text += f" Fix: `claimbench data fetch {relpath}`, or by hand: {source.how}."
    else:
        text += f" Fix: no automatic download is known for it; by hand: {source.how}."
    return text
