"""The fine-tuning baselines the LoRA paper compares against, on LoRA's injection mechanism.

  full       every parameter trains (the "FT" rows of Tables 2-4)
  bitfit     only bias vectors train (Ben Zaken et al., 2021), plus the task head
  head       only the task head trains (a linear probe on frozen features)
  lora       impl.lora.inject_lora, plus the task head
  adapter_h  Houlsby et al. (2019): a bottleneck adapter after the attention output projection
             and after the MLP output projection of every block (two per block)
  adapter_l  Lin et al. (2020): one adapter per block, after the MLP output projection only

Targets are selected with impl.lora.matches_target (full-suffix matching on dotted names), so
"output.dense" selects BERT's MLP output ("layer.3.output.dense") and not the attention output
("layer.3.attention.output.dense").
"""

from __future__ import annotations

from torch import Tensor, nn

from impl.lora import LoRAConfig, _select, _set_module, inject_lora

__all__ = ["METHODS", "Adapter", "AdaptedLinear", "inject_adapters", "prepare_for_finetuning"]

METHODS: tuple[str, ...] = ("full", "bitfit", "head", "lora", "adapter_h", "adapter_l")


class Adapter(nn.Module):
    """Houlsby bottleneck: x + up(act(down(x))), d -> m -> d, 2 d m + d + m parameters.

    Both projections start from a truncated normal with std 1e-3 and zero biases (Houlsby's
    `init_scale`), so the adapter starts as a near-identity and training starts (almost) at the
    pretrained model. Nonlinearity: GELU, as in Houlsby's code.
    """

    def __init__(self, d: int, bottleneck: int, init_std: float = 1e-3) -> None:
        super().__init__()
        if bottleneck <= 0:
            raise ValueError(f"bottleneck must be positive, got {bottleneck}")
        self.down = nn.Linear(d, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, d)
        for lin in (self.down, self.up):
            nn.init.trunc_normal_(lin.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(self.act(self.down(x)))


class AdaptedLinear(nn.Module):
    """A frozen linear layer whose output passes through an Adapter: adapter(base(x))."""

    def __init__(self, base: nn.Linear, bottleneck: int) -> None:
        super().__init__()
        self.base = base
        self.adapter = Adapter(base.out_features, bottleneck).to(base.weight.device, base.weight.dtype)

    @property
    def weight(self) -> Tensor:  # some HF code reads layer.weight (e.g. its dtype)
        return self.base.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.adapter(self.base(x))


def inject_adapters(
    model: nn.Module, target_modules: tuple[str, ...], bottleneck: int, pattern: bool = False
) -> list[str]:
    """Wrap each matched nn.Linear so its output passes through a fresh Adapter. In place.

    Only sets up modules; requires_grad is left as it is (prepare_for_finetuning freezes).
    Returns the wrapped module names; ValueError if nothing matched or a match is not an nn.Linear.
    """
    if isinstance(target_modules, str):
        target_modules = (target_modules,)
    selected = _select(model, tuple(target_modules), pattern)
    bad = [(n, type(m).__name__) for n, m in selected if type(m) is not nn.Linear]
    if bad:
        raise ValueError(f"adapter targets {list(target_modules)} matched non-nn.Linear modules: {bad[:8]}")
    for name, module in selected:
        _set_module(model, name, AdaptedLinear(module, bottleneck))
    return [n for n, _ in selected]


def _in_head(name: str, head: tuple[str, ...]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head)


def prepare_for_finetuning(
    model: nn.Module,
    method: str,
    *,
    head: tuple[str, ...] = ("classifier",),
    lora: LoRAConfig | None = None,
    adapter_h_targets: tuple[str, ...] = ("attention.output.dense", "output.dense"),
    adapter_l_targets: tuple[str, ...] = ("output.dense",),
    bottleneck: int = 16,
    pattern: bool = False,
) -> nn.Module:
    """Set up `model` in place for one fine-tuning method and return it.

    The task head (parameters under any module name in `head`, component-wise prefix) is always
    trainable; for "full" everything is. `head=()` means no head (e.g. a causal LM); a head that
    matches nothing is an error, because a silently frozen random head ruins a run.
    `pattern` applies to the adapter targets; LoRA targets come with their own `lora.pattern`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown fine-tuning method {method!r}; valid: {', '.join(METHODS)}")
    if isinstance(head, str):
        head = (head,)
    head = tuple(head)
    if head and not any(_in_head(n, head) for n, _ in model.named_parameters()):
        raise ValueError(f"head {list(head)} matches no parameter of the model; pass head=() if it has none")

    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    if method == "lora":
        inject_lora(model, lora if lora is not None else LoRAConfig())  # freezes all but LoRA (+ biases)
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        if method == "bitfit":
            # Every bias vector, including LayerNorm's (BitFit trains "all bias terms").
            for n, p in model.named_parameters():
                if n.rsplit(".", 1)[-1] == "bias":
                    p.requires_grad_(True)
        elif method in ("adapter_h", "adapter_l"):
            targets = adapter_h_targets if method == "adapter_h" else adapter_l_targets
            inject_adapters(model, targets, bottleneck, pattern)
            for m in model.modules():
                if isinstance(m, Adapter):
                    m.requires_grad_(True)
    for n, p in model.named_parameters():
        if _in_head(n, head):
            p.requires_grad_(True)
    return model
