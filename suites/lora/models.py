"""The model-family adapter of the LoRA suite: which models, which matrices each method adapts, and
a uniform way to build, batch and take a loss from either kind of model (a BERT-style sentence
classifier or a Llama-style causal LM)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

# name -> (family, synthetic). Synthetic models have random weights and say so in their name.
MODELS: dict[str, tuple[str, bool]] = {
    "minilm-l6": ("bert", False),
    "smollm2-135m": ("llama", False),
    "synthetic-tiny-bert": ("bert", True),
    "synthetic-tiny-llama": ("llama", True),
    "synthetic-gpt2-medium-shape": ("llama", True),
}
QV = {"bert": ("query", "value"), "llama": ("q_proj", "v_proj")}
Q_ONLY = {"bert": ("query",), "llama": ("q_proj",)}
# Houlsby: after the attention output and the MLP output projections, and the blocks' norms retrained.
ADAPTER_H = {"bert": ("attention.output.dense", "output.dense"), "llama": ("self_attn.o_proj", "mlp.down_proj")}
ADAPTER_H_NORMS = {
    "bert": ("attention.output.LayerNorm", "output.LayerNorm"),
    "llama": ("input_layernorm", "post_attention_layernorm"),
}
# Lin et al.: after the MLP and after a LayerNorm (BERT is post-LN: the block's output norm; Llama is
# pre-norm, so the adapter follows the MLP and brings its own LayerNorm, as every AdapterL does).
ADAPTER_L = {"bert": ("output.LayerNorm",), "llama": ("mlp",)}
# MiniLM: AdapterH with bottleneck 8 trains 2*6*(2*384*8 + 384 + 8) + 2*12*384 = 87k parameters,
# LoRA r=8 on Wq,Wv 74k: comparable budgets.
ADAPTER_BOTTLENECK = 8


def family(model: str) -> str:
    return MODELS[model][0]


def build_classifier(model: str, num_labels: int, device: str = "cpu", cached: bool = True) -> torch.nn.Module:
    from suites.data import pretrained

    if model == "minilm-l6":
        return pretrained.load_minilm(num_labels, device, cached=cached)
    if model == "synthetic-tiny-bert":
        return pretrained.tiny_bert_classifier(num_labels, device=device)
    raise ValueError(f"{model!r} is not a classifier model")


def build_encoder(model: str, device: str = "cpu") -> torch.nn.Module:
    """The bare encoder (no task head), for checkpoint sizes."""
    from suites.data import pretrained

    if model == "minilm-l6":
        return pretrained.load_minilm_encoder(device)
    if model == "synthetic-tiny-bert":
        return pretrained.tiny_bert_classifier(2, device=device).encoder
    raise ValueError(f"{model!r} is not an encoder model")


def build_causal(model: str, device: str = "cpu", cached: bool = True) -> torch.nn.Module:
    from suites.data import pretrained

    if model == "smollm2-135m":
        return pretrained.load_smollm2(device, cached=cached)
    if model == "synthetic-tiny-llama":
        return pretrained.tiny_llama(device=device)
    if model == "synthetic-gpt2-medium-shape":
        return pretrained.gpt2_medium_shaped(device=device)
    raise ValueError(f"{model!r} is not a causal LM")


def build_any(model: str, device: str = "cpu", cached: bool = True) -> torch.nn.Module:
    """A trainable model of either kind: classifiers get a 5-way head, LMs train on next tokens."""
    if family(model) == "bert":
        return build_classifier(model, 5, device, cached)
    return build_causal(model, device, cached)


def build_checkpointable(model: str) -> torch.nn.Module:
    """What a checkpoint of the model holds: the encoder of a classifier, the whole LM."""
    return build_encoder(model) if family(model) == "bert" else build_causal(model)


def prepare(model: torch.nn.Module, model_name: str, method: str, r: int = 8, alpha: float | None = None,
            targets: tuple[str, ...] | None = None) -> torch.nn.Module:  # fmt: skip
    """impl.adapters.prepare_for_finetuning with this suite's targets for the model's family.
    alpha=None means alpha = r (scaling 1 at every rank, so ranks share one learning rate)."""
    from impl.adapters import prepare_for_finetuning
    from impl.lora import LoRAConfig

    fam = family(model_name)
    head = ("classifier",) if fam == "bert" else ()
    lora = LoRAConfig(r=r, alpha=alpha, target_modules=targets or QV[fam]) if method == "lora" else None
    return prepare_for_finetuning(model, method, head=head, lora=lora, adapter_h_targets=ADAPTER_H[fam],
                                  adapter_h_norms=ADAPTER_H_NORMS[fam], adapter_l_targets=ADAPTER_L[fam],
                                  bottleneck=ADAPTER_BOTTLENECK)  # fmt: skip


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def random_batch(model_name: str, vocab: int, batch: int, seq: int, seed: int, device: str) -> dict[str, torch.Tensor]:
    """Random token ids (content is irrelevant to memory and time); labels for the model's loss."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=gen)
    out = {"input_ids": ids.to(device)}
    if family(model_name) == "bert":
        out["attention_mask"] = torch.ones_like(ids).to(device)
        out["labels"] = torch.randint(0, 5, (batch,), generator=gen).to(device)
    else:
        out["labels"] = ids.to(device)
    return out


def vocab_of(model: torch.nn.Module) -> int:
    return int(model.config.vocab_size)


def loss_of(model_name: str, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    if family(model_name) == "bert":
        logits = model(batch["input_ids"], batch["attention_mask"])
        return torch.nn.functional.cross_entropy(logits, batch["labels"])
    return model(input_ids=batch["input_ids"], labels=batch["labels"], use_cache=False).loss


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW with the fused kernel (CPU and CUDA). The default for-each loop costs full fine-tuning of
    MiniLM about half its step time on a CPU (measured: 0.19 s of a 0.38 s step, 0.03 s fused),
    which would inflate LoRA's measured speed-up with an optimizer cost the paper's setting does not have."""
    return torch.optim.AdamW(params, fused=True, **kwargs)


def parse_shape(shape: str) -> tuple[int, int]:
    """ "8x64" -> (batch 8, sequence length 64)."""
    batch, _, seq = shape.partition("x")
    return int(batch), int(seq)
