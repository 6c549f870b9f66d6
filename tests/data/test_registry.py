"""Data directory resolution, checksum verification, and the per-family source modules."""

from __future__ import annotations

import shutil
import sys

import pytest

import suites.data as data
import suites.data.sources as sources
from suites.data import SHA256, DatasetUnavailable, data_file, resolve_data_dir, sha256_of, source_of

KNOWN = "uea/BasicMotions/BasicMotions_TRAIN.ts"
FAMILIES = {"uea", "baydogan", "heater", "citeulike_a", "movielens_100k", "multi30k"}


def test_no_data_directory_names_the_setting(monkeypatch):
    monkeypatch.delenv("CLAIMBENCH_DATA", raising=False)
    with pytest.raises(DatasetUnavailable, match="CLAIMBENCH_DATA"):
        resolve_data_dir(None)


def test_a_data_directory_that_does_not_exist_is_not_named_by_path(tmp_path):
    with pytest.raises(DatasetUnavailable, match="--data-dir") as err:
        resolve_data_dir(tmp_path / "nowhere")
    assert str(tmp_path) not in str(err.value)


def test_missing_file_names_its_source_and_the_fix_without_absolute_paths(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        data_file(KNOWN, tmp_path)
    message = str(err.value)
    assert f"dataset file {KNOWN} is missing from the data directory ($CLAIMBENCH_DATA or --data-dir)" in message
    assert "timeseriesclassification.com" in message and f"claimbench data fetch {KNOWN}" in message
    assert str(tmp_path) not in message


def test_corrupt_file_is_rejected_by_sha256_named_and_kept(tmp_path):
    target = tmp_path / KNOWN
    target.parent.mkdir(parents=True)
    target.write_text("not the real file\n")
    with pytest.raises(DatasetUnavailable, match="sha256") as err:
        data_file(KNOWN, tmp_path)
    assert f"dataset file {KNOWN} in the data directory" in str(err.value) and "corrupt" in str(err.value)
    assert str(tmp_path) not in str(err.value)
    assert target.read_text() == "not the real file\n"  # never deleted


def test_an_unknown_file_without_a_source_says_so(tmp_path):
    with pytest.raises(DatasetUnavailable, match="not a dataset claimbench knows"):
        data_file("nowhere/x.csv", tmp_path)


def test_every_family_is_a_module_and_the_table_is_their_union():
    assert set(data.FAMILIES) == FAMILIES
    merged = {p: d for sources in data.FAMILIES.values() for s in sources for p, d in s.sha256.items()}
    assert merged == SHA256 and len(SHA256) == 60
    assert tuple(s for sources in data.FAMILIES.values() for s in sources) == data.SOURCES


def test_a_new_family_is_one_new_module(monkeypatch, tmp_path):
    (tmp_path / "newfam.py").write_text(
        "from suites.data.sources import Source, plain\n"
        "SOURCES = (Source('newfam', 'New', 'https://example.org', 'CC0', 'Me 2026', 'copy it',\n"
        "    {'newfam/a.csv': '0' * 64}, (plain('https://example.org/a.csv', 'newfam/a.csv'),)),)\n"
    )
    (tmp_path / "broken.py").write_text("NOTHING = 1\n")
    monkeypatch.setattr(sources, "__path__", [*sources.__path__, str(tmp_path)])
    for name in ("newfam", "broken"):
        monkeypatch.delitem(sys.modules, f"suites.data.sources.{name}", raising=False)
    with pytest.raises(TypeError, match="broken must define SOURCES"):
        sources.discover()
    (tmp_path / "broken.py").unlink()
    found = sources.discover()
    assert set(found) == FAMILIES | {"newfam"} and found["newfam"][0].sha256 == {"newfam/a.csv": "0" * 64}


def test_a_source_cannot_claim_files_outside_its_folder():
    with pytest.raises(ValueError, match="outside its folder"):
        sources.Source("uea", "x", "u", "l", "c", "h", sha256={"multi30k/train.de.gz": "0" * 64})


def test_every_checksummed_file_has_exactly_one_download_and_vice_versa():
    for relpath in SHA256:
        owners = [s for s in data.SOURCES if s.download_for(relpath) is not None]
        assert len(owners) == 1, relpath
        assert owners[0].download_for(relpath).url.startswith(("https://", "http://"))
    downloaded = {p for s in data.SOURCES for d in s.downloads for p in d.files}
    assert downloaded == set(SHA256)


def test_every_source_declares_licence_citation_and_how():
    for s in data.SOURCES:
        assert s.licence and s.citation and s.how and s.url, s.name


def test_sources_are_looked_up_by_file_then_by_longest_folder():
    assert source_of("heater/lastfm/user_artists.dat").name.startswith("hetrec2011")
    assert source_of("heater/lastfm/train.csv").name.startswith("Heater")
    assert source_of("baydogan/padded/Wafer.mat").folder == "baydogan/padded"
    assert source_of("baydogan/AUSLAN.mat").folder == "baydogan"  # a paper dataset nobody ships here
    with pytest.raises(KeyError):
        source_of("nowhere/x.csv")


def test_checksum_table_covers_the_shared_sha256sums():
    try:
        root = resolve_data_dir(None)
    except DatasetUnavailable:
        pytest.skip("CLAIMBENCH_DATA is not set")
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("the data directory has no SHA256SUMS")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name.removeprefix("./")] = digest
    assert listed == SHA256


def test_checksum_table_matches_the_real_files(tmp_path):
    try:
        root = resolve_data_dir(None)
    except DatasetUnavailable:
        pytest.skip("CLAIMBENCH_DATA is not set")
    assert data_file(KNOWN) == root / KNOWN
    # A byte flipped in a copy is caught even when size and name are unchanged.
    shutil.copy(root / KNOWN, tmp_path / "copy")
    blob = bytearray((tmp_path / "copy").read_bytes())
    blob[100] ^= 1
    (tmp_path / "copy").write_bytes(bytes(blob))
    assert sha256_of(tmp_path / "copy") != SHA256[KNOWN]
