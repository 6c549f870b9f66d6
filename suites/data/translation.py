"""Multi30k task 1 (Elliott et al. 2016): German-English image-caption translation.

Files come from the data directory through `suites.data.data_file` (checksums verified); the
canonical source is github multi30k/dataset, data/task1/raw/ (29,000 / 1,014 / 1,000 pairs in
train / val / test_2016_flickr). A joint subword vocabulary (byte-pair encoding, `tokenizers`)
is learnt on the training sentences of both languages only, never on val or test. Pre-tokenisation
is SentencePiece-style (Metaspace), so decoding gives back detokenised text for sacrebleu.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache

from suites.data import data_file

CANONICAL_SOURCE = "https://github.com/multi30k/dataset/tree/master/data/task1/raw"
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}
SIZES = {"train": 29000, "val": 1014, "test": 1000}
LANGS = ("de", "en")
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0..3, in this order


def _read_lines(relpath: str, data_dir: str | os.PathLike | None) -> list[str]:
    with gzip.open(data_file(relpath, data_dir), "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def load_multi30k(
    split: str, src: str = "de", tgt: str = "en", data_dir: str | os.PathLike | None = None
) -> list[tuple[str, str]]:
    """(source, target) sentence pairs of one split, in file order."""
    if split not in SPLITS:
        raise ValueError(f"unknown Multi30k split {split!r}; choose one of {sorted(SPLITS)}")
    if {src, tgt} != set(LANGS):
        raise ValueError(f"Multi30k task 1 pairs German and English; got src={src!r}, tgt={tgt!r}")
    a = _read_lines(f"multi30k/{SPLITS[split]}.{src}.gz", data_dir)
    b = _read_lines(f"multi30k/{SPLITS[split]}.{tgt}.gz", data_dir)
    if len(a) != len(b):
        raise ValueError(f"Multi30k {split}: {len(a)} {src} lines but {len(b)} {tgt} lines; the files do not match")
    return list(zip(a, b, strict=True))


def train_tokenizer(texts: list[str], vocab_size: int):
    """A joint BPE tokenizer learnt on `texts` (pass training sentences only)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


@dataclass
class TranslationData:
    """Token ids per split plus the tokenizer; ids do not include BOS/EOS (the batcher adds them)."""

    tokenizer: object
    pairs: dict[str, list[tuple[str, str]]]
    ids: dict[str, list[tuple[list[int], list[int]]]]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([i for i in ids if i >= len(SPECIALS)])


@lru_cache(maxsize=4)
def multi30k(
    vocab_size: int = 8000,
    src: str = "de",
    tgt: str = "en",
    data_dir: str | None = None,
    n_train: int | None = None,
) -> TranslationData:
    """Multi30k tokenised with a joint BPE vocabulary learnt on (the first `n_train`) training pairs."""
    pairs = {split: load_multi30k(split, src, tgt, data_dir) for split in SPLITS}
    if n_train is not None:
        pairs["train"] = pairs["train"][:n_train]
    tok = train_tokenizer([s for pair in pairs["train"] for s in pair], vocab_size)
    ids = {
        split: [
            (a.ids, b.ids)
            for a, b in zip(tok.encode_batch([p[0] for p in ps]), tok.encode_batch([p[1] for p in ps]), strict=True)
        ]
        for split, ps in pairs.items()
    }
    return TranslationData(tok, pairs, ids)


def token_batches(examples: list[tuple[list[int], list[int]]], max_tokens: int, max_len: int = 100) -> list[list[int]]:
    """Indices of `examples` grouped into batches of about `max_tokens` target tokens, similar lengths
    together (the paper batches by tokens). Pairs longer than `max_len` on either side are left out."""
    order = sorted(
        (i for i, (a, b) in enumerate(examples) if len(a) <= max_len and len(b) <= max_len),
        key=lambda i: (len(examples[i][1]), len(examples[i][0]), i),
    )
    batches, current, longest = [], [], 0
    for i in order:
        n = max(longest, len(examples[i][1]) + 1)
        if current and n * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, n = [], len(examples[i][1]) + 1
        current.append(i)
        longest = n
    if current:
        batches.append(current)
    return batches


def collate(examples, indices, pad_id: int = 0, bos_id: int = 2, eos_id: int = 3):
    """(src, tgt_in, tgt_out) LongTensors: src + EOS, BOS + tgt, tgt + EOS, right-padded."""
    import torch

    srcs = [examples[i][0] + [eos_id] for i in indices]
    tgts = [examples[i][1] for i in indices]
    s_len, t_len = max(map(len, srcs)), max(map(len, tgts)) + 1
    src = torch.full((len(indices), s_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((len(indices), t_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((len(indices), t_len), pad_id, dtype=torch.long)
    for r, (s, t) in enumerate(zip(srcs, tgts, strict=True)):
        src[r, : len(s)] = torch.tensor(s)
        tgt_in[r, : len(t) + 1] = torch.tensor([bos_id] + t)
        tgt_out[r, : len(t) + 1] = torch.tensor(t + [eos_id])
    return src, tgt_in, tgt_out
