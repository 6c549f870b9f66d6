"""Multi30k loader and tokenisation (skipped when the data directory is not set)."""

from __future__ import annotations

import os

import pytest

from suites.data import DatasetUnavailable
from suites.data.translation import SIZES, collate, load_multi30k, token_batches, train_tokenizer

DATA = os.environ.get("CLAIMBENCH_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="CLAIMBENCH_DATA is not set (Multi30k lives in the data directory)")


@needs_data
def test_split_sizes_and_alignment():
    for split, n in SIZES.items():
        pairs = load_multi30k(split, "de", "en", DATA)
        assert len(pairs) == n
    train = load_multi30k("train", "de", "en", DATA)
    assert train[0] == (
        "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
        "Two young, White males are outside near many bushes.",
    )
    assert load_multi30k("train", "en", "de", DATA)[0] == train[0][::-1]


@needs_data
def test_vocabulary_is_learnt_on_training_data_only_and_round_trips(monkeypatch):
    import suites.data.translation as tr

    seen = []
    real = tr.train_tokenizer
    monkeypatch.setattr(tr, "train_tokenizer", lambda texts, n: seen.extend(texts) or real(texts, n))
    data = tr.multi30k.__wrapped__(300, "de", "en", DATA, n_train=500)
    assert sorted(seen) == sorted(s for p in data.pairs["train"] for s in p)
    assert len(data.pairs["train"]) == 500 and len(data.pairs["test"]) == 1000
    assert data.vocab_size == 300
    assert [data.tokenizer.token_to_id(t) for t in ("<pad>", "<unk>", "<s>", "</s>")] == [0, 1, 2, 3]
    # detokenised decoding gives the sentence back (sacrebleu scores detokenised text)
    checked = 0
    for (_, tgt_ids), (_, tgt) in zip(data.ids["test"][:50], data.pairs["test"][:50], strict=True):
        if 1 not in tgt_ids:  # no unknown characters
            assert data.decode(tgt_ids) == tgt
            checked += 1
    assert checked > 25


def test_tokenizer_uses_only_the_texts_given():
    tok = train_tokenizer(["aaa bbb", "aaa ccc"] * 20, vocab_size=40)
    assert tok.token_to_id("<pad>") == 0
    assert tok.encode("zzz").ids.count(1) >= 1  # unseen characters map to <unk>


def test_bad_arguments_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="unknown Multi30k split"):
        load_multi30k("dev", data_dir=tmp_path)
    with pytest.raises(ValueError, match="German and English"):
        load_multi30k("train", "de", "fr", tmp_path)
    with pytest.raises(DatasetUnavailable, match="multi30k"):
        load_multi30k("train", "de", "en", tmp_path)


def test_token_batches_and_collate():
    examples = [([5] * n, [6] * (n % 7 + 1)) for n in range(1, 60)]
    batches = token_batches(examples, max_tokens=40, max_len=50)
    flat = sorted(i for b in batches for i in b)
    assert flat == [i for i, (a, _) in enumerate(examples) if len(a) <= 50]
    for b in batches:
        assert len(b) * max(len(examples[i][1]) + 1 for i in b) <= 40 or len(b) == 1
    src, tgt_in, tgt_out = collate([([7, 8], [9]), ([7], [9, 10])], [0, 1])
    assert src.tolist() == [[7, 8, 3], [7, 3, 0]]
    assert tgt_in.tolist() == [[2, 9, 0], [2, 9, 10]]
    assert tgt_out.tolist() == [[9, 3, 0], [9, 10, 3]]
