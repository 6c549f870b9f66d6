"""Data directory resolution and checksum verification."""

from __future__ import annotations

import shutil

import pytest

from suites.data import SHA256, DatasetUnavailable, data_file, resolve_data_dir, sha256_of

KNOWN = "uea/BasicMotions/BasicMotions_TRAIN.ts"


def test_no_data_directory_names_the_setting(monkeypatch):
    monkeypatch.delenv("CLAIMBENCH_DATA", raising=False)
    with pytest.raises(DatasetUnavailable, match="CLAIMBENCH_DATA"):
        resolve_data_dir(None)


def test_missing_file_names_its_source(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        data_file(KNOWN, tmp_path)
    assert KNOWN in str(err.value) and "timeseriesclassification.com" in str(err.value)


def test_corrupt_file_is_rejected_by_sha256(tmp_path):
    target = tmp_path / KNOWN
    target.parent.mkdir(parents=True)
    target.write_text("not the real file\n")
    with pytest.raises(DatasetUnavailable, match="sha256"):
        data_file(KNOWN, tmp_path)


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
