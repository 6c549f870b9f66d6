"""Tiny models shared by the test files (built from configs with a fixed seed; nothing downloaded).

Each fixture returns a factory, so a test can build as many fresh copies as it needs:
`def test_x(tiny_bert): a, b = tiny_bert(), tiny_bert()`. Dropout is off everywhere, so train and
eval mode compute the same function and equality checks stay exact.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

# Width, attention width (!= D so that d_in != d_out), MLP width and blocks of TinyNet.
D, DA, FF, L = 12, 16, 20, 2
# Hidden size, MLP width, layers, labels of the tiny HF models.
H, H_FF, H_LAYERS, LABELS = 32, 37, 2, 3


class Block(nn.Module):
    """A transformer block written out by hand: separate Wq, Wk, Wv, Wo, a GELU MLP, a LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(D, DA)
        self.key = nn.Linear(D, DA)
        self.value = nn.Linear(D, DA, bias=False)
        self.out = nn.Linear(DA, D)
        self.fc = nn.Linear(D, FF)
        self.proj = nn.Linear(FF, D)
        self.norm = nn.LayerNorm(D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.query(x) @ self.key(x).transpose(-1, -2) / math.sqrt(DA), dim=-1)
        x = x + self.out(a @ self.value(x))
        return self.norm(x + self.proj(F.gelu(self.fc(x))))


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.classifier = nn.Linear(D, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.classifier(x)


def _tiny_net(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet().eval()


def _bert_config(**kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=50, hidden_size=H, num_hidden_layers=H_LAYERS, num_attention_heads=2,
                      intermediate_size=H_FF, max_position_embeddings=32, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, **kw)  # fmt: skip


def _tiny_bert(seed: int = 0):
    from transformers import BertModel

    torch.manual_seed(seed)
    return BertModel(_bert_config()).eval()


def _tiny_bert_cls(seed: int = 0):
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(_bert_config(num_labels=LABELS)).eval()


def _tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=H, intermediate_size=48, num_hidden_layers=H_LAYERS,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


def _tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=50, n_positions=16, n_embd=H, n_layer=H_LAYERS, n_head=2, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0)  # fmt: skip
    return GPT2Model(cfg).eval()


@pytest.fixture
def tiny_net():
    """TinyNet (two hand-written blocks and a 3-way classifier), in eval mode."""
    return _tiny_net


@pytest.fixture
def tiny_bert():
    """transformers BertModel: 2 layers, hidden 32, 2 heads, MLP 37, vocab 50."""
    return _tiny_bert


@pytest.fixture
def tiny_bert_cls():
    """BertForSequenceClassification with the tiny_bert body and 3 labels."""
    return _tiny_bert_cls


@pytest.fixture
def tiny_llama():
    """LlamaForCausalLM: 2 layers, hidden 32, 4 heads, 2 KV heads (GQA), MLP 48, vocab 64."""
    return _tiny_llama


@pytest.fixture
def tiny_gpt2():
    """GPT2Model (Conv1D layers, fused c_attn): 2 layers, hidden 32, 2 heads, vocab 50."""
    return _tiny_gpt2
