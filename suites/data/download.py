"""Downloading one file or archive into the data directory, verified, never half-written.

Each file is streamed to a temporary name beside its target and renamed only after its sha256
matched the checksum table, so a failed, interrupted or corrupt download leaves nothing behind.
Used by `claimbench data fetch` (suites/data/cli.py).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from . import SHA256, WHERE, Download, fix_hint, sha256_of

TIMEOUT_S = 60
NO_NETWORK = (
    "there seems to be no network here. Use --mirror URL, a copy laid out like the data directory "
    "(URL/<relpath>; a local folder or file:// URL works), or copy the files by hand into "
    f"{WHERE} as `claimbench data list` shows"
)


class FetchError(Exception):
    """One file could not be fetched; the message says why and what to do."""


class Offline(FetchError):
    """The host cannot be reached: every further download would fail the same way."""


def fetch_one(download: Download, files: list[str], root: Path, progress: bool) -> None:
    created = _make_parents(root, files)
    try:
        if not download.is_archive:
            (relpath,) = files
            _get(download.url, root / relpath, relpath, progress, check=relpath)
            return
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as scratch:
            zipped = Path(scratch) / "archive.zip"
            _get(download.url, zipped, download.url.rsplit("/", 1)[-1], progress, check=None)
            _extract(zipped, download, files, root)
    finally:
        for folder in reversed(created):  # folders made for files that never arrived
            with contextlib.suppress(OSError):
                folder.rmdir()


def _make_parents(root: Path, files: list[str]) -> list[Path]:
    created = []
    for relpath in files:
        missing = [p for p in reversed((root / relpath).parents) if p not in created and not p.exists()]
        for folder in missing:
            folder.mkdir()
            created.append(folder)
    return created


def _get(url: str, target: Path, label: str, progress: bool, check: str | None) -> None:
    """Stream `url` into a temporary file beside `target`; rename once complete (and verified)."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise FetchError(_not_there(url, check, f"HTTP {exc.code} {exc.reason}", exc.code == 404)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):
            raise FetchError(_not_there(url, check, "no such file", True)) from None
        raise Offline(f"cannot reach {url} ({exc.reason}): {NO_NETWORK}") from None
    except OSError as exc:  # timeouts and resets outside URLError
        raise Offline(f"cannot reach {url} ({exc}): {NO_NETWORK}") from None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False,
                      disable=not progress) as bar:  # fmt: skip
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
            if total is not None and out.tell() != total:
                raise FetchError(f"{label}: download cut short ({out.tell()} of {total} bytes); run fetch again")
        if check is not None:
            _verify_download(Path(tmp), check, url)
        os.replace(tmp, target)
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{label}: download from {url} failed ({exc!r}); run fetch again") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _not_there(url: str, relpath: str | None, why: str, absent: bool) -> str:
    what = relpath or url.rsplit("/", 1)[-1]
    hint = f" {fix_hint(relpath)}" if relpath else ""
    return f"{what}: {'not found at' if absent else 'could not be downloaded from'} {url} ({why}).{hint}"


def _verify_download(path: Path, relpath: str, url: str) -> None:
    actual = sha256_of(path)
    if actual != SHA256[relpath]:
        raise FetchError(
            f"{relpath}: the file downloaded from {url} does not match its checksum (sha256 {actual}, expected "
            f"{SHA256[relpath]}), so it was not written. The source may have changed or the mirror holds a bad "
            f"copy. {fix_hint(relpath)}"
        )


def _extract(zipped: Path, download: Download, files: list[str], root: Path) -> None:
    try:
        archive = zipfile.ZipFile(zipped)
    except zipfile.BadZipFile:
        raise FetchError(f"{download.url} did not return a zip archive. {fix_hint(files[0])}") from None
    with archive:
        by_name = {Path(info.filename).name: info for info in archive.infolist() if not info.is_dir()}
        problems = []
        for relpath in files:
            member = by_name.get(download.files[relpath])
            if member is None:
                problems.append(f"{relpath}: {download.url} holds no {download.files[relpath]}. {fix_hint(relpath)}")
                continue
            target = root / relpath
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            try:
                with archive.open(member) as src, os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                _verify_download(Path(tmp), relpath, download.url)
                os.replace(tmp, target)
            except FetchError as exc:
                problems.append(str(exc))
            except (zipfile.BadZipFile, OSError) as exc:  # a damaged member (CRC error) or a full disk
                problems.append(f"{relpath}: extracting it from {download.url} failed ({exc}); run fetch again")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    if problems:
        raise FetchError("\n        ".join(problems))
