"""LoRA applied to a whole model (Hu et al., 2021): which modules get a LoRALinear (impl/lora.py),
injecting them, saving and loading only the LoRA weights (the paper's small checkpoints), merging
for deployment, and counting trainable parameters (the paper's |Theta|)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from impl.lora import LoRAConfig, LoRALinear, is_conv1d, is_supported

__all__ = [
    "count_parameters",
    "inject_lora",
    "load_lora",
    "load_lora_state_dict",
    "lora_layers",
    "lora_parameter_count",
    "lora_state_dict",
    "matches_target",
    "merge_and_unload",
    "merge_lora",
    "save_lora",
    "select_modules",
    "set_module",
    "unmerge_lora",
]


# --------------------------------------------------------------------------- module selection


def matches_target(name: str, targets: Iterable[str], pattern: bool = False) -> bool:
    """Whether module `name` (dotted, as in `named_modules()`) is selected by `targets`.

    pattern=True: each target is a regular expression that must match the WHOLE name (re.fullmatch).

    pattern=False ("full-suffix" matching on dotted names):
      * a target without a dot matches the last component: "query" selects
        "encoder.layer.0.attention.self.query".
      * a dotted target is a path inside a repeated block and must match the whole path below the
        block index: the name is the target itself or ends with ".<digits>.<target>". So in BERT,
        "output.dense" selects "encoder.layer.0.output.dense" (the MLP output) but NOT
        "encoder.layer.0.attention.output.dense", which is "attention.output.dense". Plain suffix
        matching (PEFT's rule) would catch both. Llama: "self_attn.o_proj", "mlp.down_proj".
    """
    if isinstance(targets, str):
        targets = (targets,)
    for t in targets:
        if pattern:
            if re.fullmatch(t, name):
                return True
        elif "." not in t:
            if name.rsplit(".", 1)[-1] == t:
                return True
        elif name == t or re.search(rf"(^|\.)\d+\.{re.escape(t)}$", name):
            return True
    return False


def select_modules(model: nn.Module, targets: tuple[str, ...], pattern: bool) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs selected by targets; ValueError naming the targets if none is."""
    found = [(n, m) for n, m in model.named_modules() if n and matches_target(n, targets, pattern)]
    if not found:
        linear = [n for n, m in model.named_modules() if is_supported(m)]
        hint = ", ".join(linear[:8]) + (", ..." if len(linear) > 8 else "")
        rule = "regexes (fullmatch)" if pattern else "targets"
        raise ValueError(
            f"no module matched the {rule} {list(targets)}. Linear layers in this model: [{hint}]. "
            "Undotted targets match the last name component; dotted ones the full path below a block "
            "index (see matches_target); pattern=True takes regexes."
        )
    return found


def set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    for n, m in model.named_modules():
        if isinstance(m, LoRALinear):
            yield n, m


# --------------------------------------------------------------------------- injection


def inject_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Wrap every targeted linear layer of `model` in a LoRALinear, in place.

    Freezes every parameter except lora_A / lora_B (and all biases when config.bias == "all").
    Returns the names of the adapted modules. ValueError if nothing matched, if a matched module
    is not an nn.Linear / Conv1D (a target that hits a container is a mistake, not a no-op), or if
    a matched module already has LoRA.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("model already has LoRA layers; inject_lora is applied once")
    selected = select_modules(model, config.target_modules, config.pattern)
    bad = [(n, type(m).__name__) for n, m in selected if not is_supported(m)]
    if bad:
        raise ValueError(
            f"targets {list(config.target_modules)} matched modules LoRA cannot wrap "
            f"(only nn.Linear and Conv1D): {bad[:8]}"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    names = []
    for name, module in selected:
        layer = LoRALinear(module, config.r, config.alpha, config.dropout, config.init_A, is_conv1d(module),
                           config.enable_lora, config.fp32_lora)  # fmt: skip
        set_module(model, name, layer)
        names.append(name)
    if config.bias == "all":
        for n, p in model.named_parameters():
            if n.rsplit(".", 1)[-1] == "bias":
                p.requires_grad_(True)
    # Remembered so that lora_state_dict knows whether biases belong to the checkpoint.
    model.lora_config = config
    return names


# --------------------------------------------------------------------------- checkpoints


def _is_lora_key(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("lora_A", "lora_B")


def _in_modules(key: str, modules: tuple[str, ...]) -> bool:
    return any(key.startswith(m + ".") for m in modules)


def lora_state_dict(model: nn.Module, modules_to_save: Iterable[str] = ()) -> dict[str, Tensor]:
    """Only the LoRA weights, plus every bias if inject_lora was called with bias="all", plus the
    whole state of the modules named in `modules_to_save` (e.g. ("classifier",): a task head
    trained with LoRA; PEFT's modules_to_save).

    For GPT-3 with r=4 on Wq, Wv this is the paper's 35 MB checkpoint instead of 350 GB.
    """
    modules = (modules_to_save,) if isinstance(modules_to_save, str) else tuple(modules_to_save)
    config = getattr(model, "lora_config", None)
    with_bias = config is not None and config.bias == "all"
    full = model.state_dict(keep_vars=True)
    absent = [m for m in modules if not any(_in_modules(k, (m,)) for k in full)]
    if absent:
        raise ValueError(f"modules_to_save {absent} hold no parameters in this model")
    state = {
        k: v.detach()
        for k, v in full.items()
        if _is_lora_key(k) or (with_bias and k.rsplit(".", 1)[-1] == "bias") or _in_modules(k, modules)
    }
    if not any(_is_lora_key(k) for k in state):
        raise ValueError("model has no LoRA layers (call inject_lora first)")
    return state


@torch.no_grad()
def load_lora_state_dict(model: nn.Module, state: dict[str, Tensor], modules_to_save: Iterable[str] = ()) -> None:
    """Load a lora_state_dict. Strict: the key sets and shapes must agree exactly (pass the same
    modules_to_save as when saving). Merged layers are unmerged, loaded and merged again, so the
    merged weight stays consistent."""
    own = lora_state_dict(model, modules_to_save)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = [
        (k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shape:
        msg = ["LoRA state dict does not match the model:"]
        if missing:
            msg.append(f"missing keys ({len(missing)}): {missing[:6]}{' ...' if len(missing) > 6 else ''}")
        if unexpected:
            msg.append(f"unexpected keys ({len(unexpected)}): {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}")
        if shape:
            msg.append(f"shape mismatch (key, checkpoint, model; a different r?): {shape[:6]}")
        msg.append("Were the same target_modules, r, bias and modules_to_save used?")
        raise ValueError("\n  ".join(msg))
    merged = [m for _, m in lora_layers(model) if m.merged]
    for m in merged:
        m.unmerge()
    for k, v in own.items():
        v.copy_(state[k])
    for m in merged:
        m.merge()


def save_lora(model: nn.Module, path: str | Path, modules_to_save: Iterable[str] = ()) -> None:
    torch.save({k: v.cpu() for k, v in lora_state_dict(model, modules_to_save).items()}, path)


def load_lora(model: nn.Module, path: str | Path, modules_to_save: Iterable[str] = ()) -> None:
    load_lora_state_dict(model, torch.load(path, map_location="cpu", weights_only=True), modules_to_save)


# --------------------------------------------------------------------------- merging


def merge_lora(model: nn.Module) -> None:
    for _, m in lora_layers(model):
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for _, m in lora_layers(model):
        m.unmerge()


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge every LoRALinear and put its base layer (now holding W0 + (alpha/r) B A) back in its
    place: the result is the original architecture with no trace of LoRA. In place; returns model
    (or the merged base layer if `model` itself is a LoRALinear)."""
    if isinstance(model, LoRALinear):
        model.merge()
        return model.base
    for name, m in list(lora_layers(model)):
        m.merge()
        set_module(model, name, m.base)
    if hasattr(model, "lora_config"):
        del model.lora_config
    return model


# --------------------------------------------------------------------------- counting


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    # model.parameters() yields each tensor once, so tied weights are counted once.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def lora_parameter_count(shapes: list[tuple[int, int]], r: int) -> int:
    """Analytic |Theta| = sum over adapted matrices of r * (d_in + d_out).

    For square d_model x d_model matrices this is the paper's 2 * L_hat * d_model * r; e.g. GPT-3
    175B, r=4 on Wq and Wv in 96 layers: 192 * 2 * 12288 * 4 = 18,874,368 (the paper's 18.87M)."""
    if r <= 0:
        raise ValueError(f"r must be positive, got {r}")
    return sum(r * (d_in + d_out) for d_in, d_out in shapes)
