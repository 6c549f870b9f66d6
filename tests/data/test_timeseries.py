"""Time series loaders on the real data (skipped without CLAIMBENCH_DATA) and on tiny fakes."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from suites.data import ENV_VAR, DatasetUnavailable
from suites.data.timeseries import (
    GTN_PAPER_DATASETS,
    load,
    load_baydogan,
    load_uea,
    normalise_per_channel,
    paper_dataset_status,
)


@pytest.fixture(scope="module")
def data_dir() -> str:
    path = os.environ.get(ENV_VAR)
    if not path:
        pytest.skip(f"real data not configured: set {ENV_VAR} to the data directory")
    return path


@pytest.mark.parametrize(
    "name,expected",
    [
        ("ECG", (100, 100, 152, 2, 2)),
        ("JapaneseVowels", (270, 370, 29, 12, 9)),
        ("Libras", (180, 180, 45, 2, 15)),
        ("Wafer", (298, 896, 198, 6, 2)),
    ],
)
def test_paper_datasets_match_the_paper_table(data_dir, name, expected):
    ds = load(name, data_dir)
    paper = GTN_PAPER_DATASETS[name]
    shape = (len(ds.y_train), len(ds.y_test), ds.n_steps, ds.n_channels, ds.n_classes)
    assert shape == expected == tuple(paper[k] for k in ("train", "test", "length", "channels", "classes"))
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert set(np.unique(ds.y_train)) | set(np.unique(ds.y_test)) == set(range(ds.n_classes))
    assert max(ds.len_train.max(), ds.len_test.max()) == ds.n_steps  # padded to the longest of both
    for X, lengths in ((ds.X_train, ds.len_train), (ds.X_test, ds.len_test)):
        pad = np.arange(ds.n_steps)[None, :] >= lengths[:, None]
        assert np.all(X[pad] == 0.0)
    # The preferred sources: raw values where they exist, the leak flagged where they do not.
    if name == "Wafer":
        assert "padded" in ds.source and "leak" in ds.notes.lower()
    else:
        assert "padded" not in ds.source and "leak" not in ds.notes.lower()


def test_japanese_vowels_uea_and_padded_mat_agree(data_dir):
    uea = load_uea("JapaneseVowels", data_dir)
    mat = load_baydogan("JapaneseVowels", data_dir, padded=True)
    assert uea.classes == mat.classes
    np.testing.assert_array_equal(uea.y_train, mat.y_train)
    np.testing.assert_array_equal(uea.y_test, mat.y_test)
    np.testing.assert_array_equal(uea.len_train, mat.len_train)
    np.testing.assert_array_equal(uea.len_test, mat.len_test)
    assert uea.len_train.min() == 7 and uea.n_steps == 29


def test_ecg_original_and_padded_agree_on_structure(data_dir):
    raw = load_baydogan("ECG", data_dir)
    padded = load_baydogan("ECG", data_dir, padded=True)
    np.testing.assert_array_equal(raw.y_train, padded.y_train)
    np.testing.assert_array_equal(raw.len_test, padded.len_test)
    assert min(raw.len_train.min(), raw.len_test.min()) == 39 and raw.n_steps == 152
    assert raw.classes == ["1", "2"] and all(type(c) is str for c in raw.classes)


def test_normalisation_uses_training_statistics_only(data_dir):
    ds = load("Libras", data_dir)
    norm = normalise_per_channel(ds)
    valid_tr = np.arange(ds.n_steps)[None, :] < ds.len_train[:, None]
    values = norm.X_train[valid_tr]
    np.testing.assert_allclose(values.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(values.std(0), 1.0, atol=1e-4)
    valid_te = np.arange(ds.n_steps)[None, :] < ds.len_test[:, None]
    assert np.abs(norm.X_test[valid_te].mean(0)).max() > 1e-3  # test mean is not forced to 0
    # The same affine map on both splits: recover it from train and check it on test.
    mean = ds.X_train[valid_tr].astype(np.float64).mean(0)
    std = ds.X_train[valid_tr].astype(np.float64).std(0)
    np.testing.assert_allclose(norm.X_test[valid_te], (ds.X_test[valid_te] - mean) / std, atol=1e-4)


def test_normalisation_keeps_padding_zero(data_dir):
    ds = normalise_per_channel(load("JapaneseVowels", data_dir))
    pad = np.arange(ds.n_steps)[None, :] >= ds.len_test[:, None]
    assert pad.any() and np.all(ds.X_test[pad] == 0.0)


def test_corrupt_copy_raises_naming_sha256(data_dir, tmp_path):
    (tmp_path / "baydogan").mkdir()
    copy = tmp_path / "baydogan" / "ECG.mat"
    shutil.copyfile(os.path.join(data_dir, "baydogan", "ECG.mat"), copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    copy.write_bytes(bytes(raw))
    with pytest.raises(DatasetUnavailable, match="sha256"):
        load("ECG", tmp_path)


def test_paper_status_is_read_from_files(data_dir):
    status = paper_dataset_status(data_dir)
    assert set(status) == set(GTN_PAPER_DATASETS) and len(status) == 13
    assert {n for n, p in status.items() if p} == {"ECG", "JapaneseVowels", "Libras", "Wafer"}


# --- no real data needed ------------------------------------------------------------------------


def test_missing_dataset_names_path_and_source(tmp_path):
    with pytest.raises(DatasetUnavailable, match="uea/NoSuchSet/NoSuchSet_TRAIN.ts") as err:
        load("NoSuchSet", tmp_path)
    assert "UEA" in str(err.value) and "timeseriesclassification.com" in str(err.value)
    with pytest.raises(DatasetUnavailable, match="baydogan/AUSLAN.mat") as err:
        load("AUSLAN", tmp_path)
    assert "Baydogan" in str(err.value)
    with pytest.raises(DatasetUnavailable, match="invalid dataset name"):
        load("../etc", tmp_path)


TS = """@problemName {name}
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true walk run jump
@data
{rows}
"""


def test_a_new_uea_dataset_loads_by_name(tmp_path):
    folder = tmp_path / "uea" / "Toy"
    folder.mkdir(parents=True)
    train = "1,2,3:4,5,6:walk\n1,2:3,4:run\n0.5,1,1.5,2:1,1,1,1:jump"
    test = "1,1,1,1,1:2,2,2,2,2:run\n3:4:walk"
    (folder / "Toy_TRAIN.ts").write_text(TS.format(name="Toy", rows=train))
    (folder / "Toy_TEST.ts").write_text(TS.format(name="Toy", rows=test))
    ds = load("Toy", tmp_path)
    assert ds.X_train.shape == (3, 5, 2) and ds.X_test.shape == (2, 5, 2)  # longest of train+test
    np.testing.assert_array_equal(ds.len_train, [3, 2, 4])
    np.testing.assert_array_equal(ds.len_test, [5, 1])
    assert ds.classes == ["jump", "run", "walk"]
    np.testing.assert_array_equal(ds.y_train, [2, 1, 0])
    np.testing.assert_array_equal(ds.y_test, [1, 2])
    np.testing.assert_array_equal(ds.X_train[0, :, 1], [4, 5, 6, 0, 0])
    norm = normalise_per_channel(ds)
    assert norm.X_train[1, 2:].tolist() == [[0.0, 0.0]] * 3


def test_resampling_follows_dl4tsc(tmp_path):
    # dl-4-tsc's transform_to_same_length, transcribed: interp1d(kind="cubic") from each series'
    # own steps onto linspace(0, L - 1, T), channel by channel.
    from scipy.interpolate import interp1d

    from suites.data.timeseries import TimeSeriesDataset, resample_to_longest

    rng = np.random.default_rng(0)
    T, C = 9, 2
    lengths = np.array([9, 5, 4])
    X = np.zeros((3, T, C), dtype=np.float32)
    for i, L in enumerate(lengths):
        X[i, :L] = rng.normal(size=(L, C))
    ds = TimeSeriesDataset("toy", X, np.arange(3), lengths, X.copy(), np.arange(3), lengths.copy(),
                           ["a", "b", "c"], "toy", "raw")  # fmt: skip
    out = resample_to_longest(ds)
    for i, L in enumerate(lengths):
        for c in range(C):
            expected = interp1d(np.arange(L), X[i, :L, c].astype(np.float64), kind="cubic")(np.linspace(0, L - 1, T))
            np.testing.assert_allclose(out.X_train[i, :, c], expected, rtol=0, atol=1e-5)
    assert out.len_train.tolist() == [T, T, T] and "dl-4-tsc" in out.notes
    np.testing.assert_array_equal(out.X_train[0], X[0])  # a full-length series is untouched


def test_not_run_messages_name_the_uea_counterparts(tmp_path):
    for name, counterpart in (("ArabicDigits", "SpokenArabicDigits"), ("PEMS", "PEMS-SF"),
                              ("CharacterTrajectories", "1422/1436"), ("UWave", "UWaveGestureLibrary")):  # fmt: skip
        with pytest.raises(DatasetUnavailable, match=counterpart):
            load(name, tmp_path)
