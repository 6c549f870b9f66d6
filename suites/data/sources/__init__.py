"""Dataset families: one module per family, each declaring its `Source`s.

A module here sets `SOURCES = (Source(...), ...)`. `suites.data` discovers every module with
pkgutil, so a new dataset family is one new file. A `Source` names where its files come from
(licence, citation, how to get them by hand), the sha256 of every file as it sits in the data
directory, and the downloads `claimbench data fetch` uses to obtain them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Download:
    """One downloadable file at its canonical URL.

    `files` maps a data-directory-relative path to what it is taken from: for a plain file, None
    (the download is the file); for a zip archive, the member's base name (archives differ in
    whether they wrap their files in a folder, so the member is found by name wherever it is).
    """

    url: str
    files: Mapping[str, str | None]

    @property
    def is_archive(self) -> bool:
        return any(member is not None for member in self.files.values())


def plain(url: str, relpath: str) -> Download:
    return Download(url, {relpath: None})


def archive(url: str, members: Mapping[str, str]) -> Download:
    """A zip archive; `members` maps relpath -> member base name."""
    return Download(url, dict(members))


@dataclass(frozen=True)
class Source:
    """Where a group of files in the data directory comes from.

    `folder` is the data-directory prefix the source owns (e.g. "baydogan/padded"); a file that
    no source lists is attributed to the source with the longest matching folder.
    """

    folder: str
    name: str
    url: str  # the page a person reads (the downloads hold the actual files)
    licence: str
    citation: str
    how: str  # how to get the files by hand
    sha256: Mapping[str, str] = field(default_factory=dict)  # relpath -> sha256
    downloads: tuple[Download, ...] = ()

    def __post_init__(self) -> None:
        for relpath in self.sha256:
            if not relpath.startswith(self.folder + "/"):
                raise ValueError(f"source {self.name!r}: {relpath} is outside its folder {self.folder}/")
        for download in self.downloads:
            outside = [p for p in download.files if not p.startswith(self.folder + "/")]
            if outside:
                raise ValueError(f"source {self.name!r}: download {download.url} writes outside {self.folder}/")

    def download_for(self, relpath: str) -> Download | None:
        return next((d for d in self.downloads if relpath in d.files), None)


def discover() -> dict[str, tuple[Source, ...]]:
    """family module name -> its sources, for every module in this package."""
    found: dict[str, tuple[Source, ...]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        sources = tuple(getattr(module, "SOURCES", ()))
        if not sources or not all(isinstance(s, Source) for s in sources):
            raise TypeError(f"{module.__name__} must define SOURCES = (Source(...), ...)")
        found[info.name] = sources
    return found
