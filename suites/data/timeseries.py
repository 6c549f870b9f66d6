"""Multivariate time series classification datasets (the GTN suite's data).

Three readers, all through `data_file` (checksums verified, clear errors, no synthetic fallback):

    load_uea(name)        uea/<Name>/<Name>_{TRAIN,TEST}.ts (UEA 2018 archive, aeon's reader); any
                          name present in the data directory works, no code change needed
    load_baydogan(name)   baydogan/<Name>.mat, Baydogan's original files (struct `mts` of cell
                          arrays, channel x time), or with padded=True baydogan/padded/<Name>.mat
                          (pre-padded and pre-normalised by a third party: see the notes field)
    load(name)            the preferred raw source for a name (see `candidates`)

Every dataset comes back zero padded to the longest series across train AND test (what the GTN
paper did), with the true lengths kept so a model can mask the padding, and labels mapped to
0..K-1 with one mapping for train and test. Values are as stored; `normalise_per_channel` z-scores
with training statistics only (a departure from the official GTN code, which feeds raw values),
and `resample_to_longest` stretches every series to the longest length the way dl-4-tsc prepared
the multivariate archive for its baselines (cubic interpolation instead of zero padding).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.io

from suites.data import DatasetUnavailable, data_file, is_available

PathLike = str | os.PathLike | None

PADDED_NOTE = (
    "baydogan/padded conversion (FilippoMB/Bidirectional-Deep-readout-Echo-State-Network): values "
    "pre-normalised per channel by the converters, the TEST SET WITH ITS OWN STATISTICS (a leak), "
    "and some exact zeros replaced by the mean"
)


@dataclass
class TimeSeriesDataset:
    name: str
    X_train: np.ndarray  # [n, T, C] float32, zero padded to the longest length in train and test
    y_train: np.ndarray  # int64 class indices 0..K-1 (same mapping for train and test)
    len_train: np.ndarray  # int64 true lengths
    X_test: np.ndarray
    y_test: np.ndarray
    len_test: np.ndarray
    classes: list[str]  # classes[k] is the original label of index k
    source: str  # the file(s) read, relative to the data directory
    notes: str  # provenance caveats (normalisation, leaks), shown in reports

    @property
    def n_steps(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_channels(self) -> int:
        return self.X_train.shape[2]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def shape_summary(self) -> dict[str, int]:
        return {
            "train": len(self.y_train),
            "test": len(self.y_test),
            "length": self.n_steps,
            "channels": self.n_channels,
            "classes": self.n_classes,
        }


# The GTN paper's 13 datasets (Table 1): shapes as the paper gives them, and where each comes from.
# Whether one is loadable is decided by `paper_dataset_status` from the files, never from here.
_BAYDOGAN = "Baydogan's multivariate archive (the GTN paper's source), baydogan/<Name>.mat"
GTN_PAPER_DATASETS: dict[str, dict] = {
    name: {"train": tr, "test": te, "length": T, "channels": C, "classes": K, "source": src}
    for name, tr, te, T, C, K, src in [
        ("ArabicDigits", 6600, 2200, 93, 13, 10, _BAYDOGAN),
        ("AUSLAN", 1140, 1425, 136, 22, 95, _BAYDOGAN),
        ("CharacterTrajectories", 300, 2558, 205, 3, 20, _BAYDOGAN),
        ("CMUsubject16", 29, 29, 580, 62, 2, _BAYDOGAN),
        ("ECG", 100, 100, 152, 2, 2, _BAYDOGAN),
        ("JapaneseVowels", 270, 370, 29, 12, 9, "UEA archive 2018 (same split as Baydogan's)"),
        ("Libras", 180, 180, 45, 2, 15, "UEA archive 2018 (same split as Baydogan's)"),
        ("UWave", 200, 4278, 315, 3, 8, _BAYDOGAN + " (not UEA's UWaveGestureLibrary: other split)"),
        ("KickvsPunch", 16, 10, 841, 62, 2, _BAYDOGAN),
        ("NetFlow", 803, 534, 997, 4, 2, _BAYDOGAN),
        ("PEMS", 267, 173, 144, 963, 7, _BAYDOGAN),
        ("Wafer", 298, 896, 198, 6, 2, _BAYDOGAN),
        ("WalkvsRun", 28, 16, 1918, 62, 2, _BAYDOGAN),
    ]
}

# Where the UEA 2018 archive has the same data (same split, or says how it differs): named in the
# not-run message so a user knows which download makes the claim runnable or gives a proxy.
UEA_COUNTERPARTS = {
    "ArabicDigits": "UEA's SpokenArabicDigits (6599/2199: the same split less one series in each)",
    "PEMS": "UEA's PEMS-SF (267/173: the same split)",
    "CharacterTrajectories": "UEA's CharacterTrajectories (the same series, another split: 1422/1436, not 300/2558)",
    "UWave": "UEA's UWaveGestureLibrary (another split: 120/320, not 200/4278; the suite runs it as a labelled proxy)",
}

# Raw sources first (the data README's advice); the pre-normalised padded copies last.
_PREFERRED_UEA = {"JapaneseVowels", "Libras"}


def candidates(name: str) -> list[tuple[str, str]]:
    """(reader, relative path) pairs for `name`, most preferred first.

    ECG -> original baydogan/ECG.mat; JapaneseVowels, Libras -> UEA (raw values, same split);
    other paper datasets (Wafer included) -> Baydogan original, then the padded conversion;
    any other name -> UEA.
    """
    _check_name(name)
    uea = ("uea", f"uea/{name}/{name}_TRAIN.ts")
    original = ("baydogan", f"baydogan/{name}.mat")
    padded = ("baydogan_padded", f"baydogan/padded/{name}.mat")
    if name not in GTN_PAPER_DATASETS:
        return [uea]
    if name in _PREFERRED_UEA:
        return [uea, original, padded]
    return [original, padded]


def load(name: str, data_dir: PathLike = None) -> TimeSeriesDataset:
    """The preferred available source for `name`; DatasetUnavailable naming the canonical one.

    A file that is present but corrupt raises (from `data_file`) rather than falling back to
    another source, so a result never silently changes provenance.
    """
    options = candidates(name)
    for reader, relpath in options:
        if is_available(relpath, data_dir):
            if reader == "uea":
                return load_uea(name, data_dir)
            return load_baydogan(name, data_dir, padded=reader == "baydogan_padded")
    # Nothing present: raise the canonical file's message (what it is, where to get it).
    reader, relpath = options[0]
    try:
        data_file(relpath, data_dir)
    except DatasetUnavailable as err:
        others = ", ".join(p for _, p in options[1:])
        suffix = f" (also accepted: {others})" if others else ""
        if name in UEA_COUNTERPARTS:
            suffix += f"; from the UEA archive: {UEA_COUNTERPARTS[name]}"
        raise DatasetUnavailable(f"dataset {name!r}: {err}{suffix}") from None
    raise AssertionError("unreachable: data_file found a file is_available did not")


def load_uea(name: str, data_dir: PathLike = None) -> TimeSeriesDataset:
    """uea/<Name>/<Name>_{TRAIN,TEST}.ts, read with aeon; any dataset present works."""
    from aeon.datasets import load_from_ts_file  # aeon is heavy; import only when reading .ts

    _check_name(name)
    paths = [data_file(f"uea/{name}/{name}_{split}.ts", data_dir) for split in ("TRAIN", "TEST")]
    series, labels = [], []
    for path in paths:
        X, y = load_from_ts_file(str(path))
        # aeon gives a 3D array (n, C, T) for equal lengths, else a list of (C, T_i) arrays.
        series.append([_trim_trailing_nan(np.asarray(x, dtype=np.float64).T, path) for x in X])
        labels.append(np.asarray(y).astype(str))
    return _assemble(
        name,
        series[0],
        labels[0],
        series[1],
        labels[1],
        source=f"uea/{name}/{name}_{{TRAIN,TEST}}.ts",
        notes="UEA archive 2018, raw values",
    )


def load_baydogan(name: str, data_dir: PathLike = None, padded: bool = False) -> TimeSeriesDataset:
    """Baydogan's original baydogan/<Name>.mat, or the padded conversion baydogan/padded/<Name>.mat."""
    _check_name(name)
    if padded:
        relpath = f"baydogan/padded/{name}.mat"
        mat = scipy.io.loadmat(data_file(relpath, data_dir))
        parts = []
        for X_key, Y_key, L_key in (("X", "Y", "X_len"), ("Xte", "Yte", "Xte_len")):
            X = np.asarray(mat[X_key], dtype=np.float64)  # [samples, time, channels]
            lengths = np.asarray(mat[L_key]).ravel().astype(np.int64)
            parts.append(([X[i, : lengths[i]] for i in range(len(X))], _labels(mat[Y_key])))
        notes = PADDED_NOTE
    else:
        relpath = f"baydogan/{name}.mat"
        mts = scipy.io.loadmat(data_file(relpath, data_dir))["mts"][0, 0]
        parts = []
        for X_key, Y_key in (("train", "trainlabels"), ("test", "testlabels")):
            cells = mts[X_key].ravel()  # cell array of (channels, time) matrices
            parts.append(([np.asarray(c, dtype=np.float64).T for c in cells], _labels(mts[Y_key])))
        notes = "Baydogan's original file, raw values"
    (Xtr, ytr), (Xte, yte) = parts
    return _assemble(name, Xtr, ytr, Xte, yte, source=relpath, notes=notes)


def normalise_per_channel(ds: TimeSeriesDataset) -> TimeSeriesDataset:
    """Z-score each channel with the TRAINING set's mean and std over its valid (unpadded) steps.

    The test set is transformed with the same statistics (its own mean is not forced to 0), and
    padding stays exactly 0 so masks and zero-padding conventions still hold.
    """
    valid_tr = _valid(ds.len_train, ds.n_steps)
    values = ds.X_train[valid_tr].astype(np.float64)  # [n_valid_steps, C]
    mean = values.mean(0)
    std = values.std(0)
    std = np.where(std > 0, std, 1.0)  # a constant channel stays constant (0), not NaN

    def apply(X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        out = (X - mean) / std
        out[~_valid(lengths, X.shape[1])] = 0.0
        return out.astype(np.float32)

    notes = ds.notes + "; z-scored per channel with training statistics"
    return replace(
        ds,
        X_train=apply(ds.X_train, ds.len_train),
        X_test=apply(ds.X_test, ds.len_test),
        notes=notes,
    )


def resample_to_longest(ds: TimeSeriesDataset) -> TimeSeriesDataset:
    """Every series stretched to the padded length by cubic interpolation, as dl-4-tsc prepared the
    multivariate archive for its baselines (`transform_to_same_length`: scipy's interp1d, kind
    "cubic", from the series' own steps onto `linspace(0, L - 1, T)`); lengths become T.

    Series shorter than 4 steps cannot carry a cubic spline and are interpolated with the highest
    degree they allow. Interpolation is linear in the values, so it commutes with z-scoring.
    """
    from scipy.interpolate import make_interp_spline

    def stretch(X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        T = X.shape[1]
        out = np.empty_like(X)
        for i, L in enumerate(lengths):
            series = X[i, :L].astype(np.float64)
            if L == T:
                out[i] = series
            elif L == 1:
                out[i] = series[0]
            else:
                spline = make_interp_spline(np.arange(L), series, k=min(3, L - 1), axis=0)
                out[i] = spline(np.linspace(0, L - 1, T))
        return out

    full = lambda lengths: np.full_like(lengths, ds.n_steps)  # noqa: E731
    return replace(
        ds,
        X_train=stretch(ds.X_train, ds.len_train),
        X_test=stretch(ds.X_test, ds.len_test),
        len_train=full(ds.len_train),
        len_test=full(ds.len_test),
        notes=ds.notes + "; resampled to the longest length (cubic, as dl-4-tsc)",
    )


def paper_dataset_status(data_dir: PathLike = None) -> dict[str, str | None]:
    """For each of the paper's datasets: the file `load` would read, or None when absent."""
    status: dict[str, str | None] = {}
    for name in GTN_PAPER_DATASETS:
        status[name] = next((p for _, p in candidates(name) if is_available(p, data_dir)), None)
    return status


def uea_available(data_dir: PathLike = None) -> list[str]:
    """UEA datasets present in the data directory (both splits), by folder name."""
    from suites.data import resolve_data_dir

    try:
        root = resolve_data_dir(data_dir) / "uea"
    except DatasetUnavailable:
        return []
    if not root.is_dir():
        return []
    return sorted(
        d.name for d in root.iterdir() if (d / f"{d.name}_TRAIN.ts").is_file() and (d / f"{d.name}_TEST.ts").is_file()
    )


# --- helpers ---------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    # Names become paths; refuse anything that could leave the data directory.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise DatasetUnavailable(f"invalid dataset name {name!r} (letters, digits, _ . - only)")


def _labels(raw: np.ndarray) -> np.ndarray:
    """Label strings; MATLAB stores integers as floats at times: 1.0 -> "1", not "1.0"."""
    arr = np.asarray(raw).ravel()
    if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    return arr.astype(str)


def _trim_trailing_nan(x: np.ndarray, path: os.PathLike) -> np.ndarray:
    """(T, C) series; some .ts files pad unequal series with trailing NaNs: cut them off.

    NaNs inside a series are missing values, which the GTN protocol does not define: refuse them.
    """
    finite_rows = np.isfinite(x).all(axis=1)
    n = len(x)
    while n > 0 and not finite_rows[n - 1]:
        n -= 1
    if not finite_rows[:n].all():
        raise DatasetUnavailable(f"{path.name}: missing values inside a series are not supported")
    return x[:n]


def _sort_key(label: str) -> tuple[int, float | str]:
    # Numeric labels in numeric order (so "10" follows "9"), otherwise lexicographic.
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def _valid(lengths: np.ndarray, T: int) -> np.ndarray:
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


def _pad(series: Sequence[np.ndarray], T: int) -> np.ndarray:
    C = series[0].shape[1]
    out = np.zeros((len(series), T, C), dtype=np.float32)
    for i, s in enumerate(series):
        if s.shape[1] != C:
            raise ValueError(f"sample {i} has {s.shape[1]} channels, expected {C}")
        out[i, : len(s)] = s
    return out


def _assemble(
    name: str,
    Xtr: Sequence[np.ndarray],
    ytr: np.ndarray,
    Xte: Sequence[np.ndarray],
    yte: np.ndarray,
    source: str,
    notes: str,
) -> TimeSeriesDataset:
    """Lists of (T_i, C) series -> one zero-padded dataset with a shared label mapping."""
    classes = sorted({str(c) for c in ytr} | {str(c) for c in yte}, key=_sort_key)
    index = {c: k for k, c in enumerate(classes)}
    len_tr = np.array([len(s) for s in Xtr], dtype=np.int64)
    len_te = np.array([len(s) for s in Xte], dtype=np.int64)
    T = int(max(len_tr.max(), len_te.max()))  # longest across train AND test, as the paper did
    return TimeSeriesDataset(
        name=name,
        X_train=_pad(Xtr, T),
        y_train=np.array([index[str(c)] for c in ytr], dtype=np.int64),
        len_train=len_tr,
        X_test=_pad(Xte, T),
        y_test=np.array([index[str(c)] for c in yte], dtype=np.int64),
        len_test=len_te,
        classes=list(classes),
        source=source,
        notes=notes,
    )
