"""The fine-tuning baselines the LoRA paper compares against, on LoRA's injection mechanism.

  full       every parameter trains (the "FT" rows of Tables 2-4)
  bitfit     only bias vectors train (Ben Zaken et al., 2021), plus the task head
  head       only the task head trains (a linear probe on frozen features)
  lora       impl.lora_model.inject_lora, plus the task head
  adapter_h  Houlsby et al. (2019): a bottleneck adapter after the attention output projection and
             after the MLP output projection of every block (two per block), and the block's
             LayerNorms retrained per task (Houlsby: "new layer normalization parameters per task")
  adapter_l  Lin et al. (2020): one adapter per block "after the MLP module and after a LayerNorm"
             (the LoRA paper's description), with Lin et al.'s own LayerNorm at the adapter's input

The LoRA paper counts both (its Section 5.1) as
    |Theta| = L_Adpt * (2 d_model r + r + d_model) + 2 * L_LN * d_model
(L_Adpt adapters, L_LN trained LayerNorms with a gain and a bias each): see `adapter_parameter_count`.

Targets are selected with impl.lora_model.matches_target (full-suffix matching on dotted names), so
"output.dense" selects BERT's MLP output ("layer.3.output.dense") and not the attention output
("layer.3.attention.output.dense").
"""

from __future__ import annotations

from torch import Tensor, nn

from impl.lora import LoRAConfig
from impl.lora_model import inject_lora, select_modules, set_module

__all__ = [
    "METHODS",
    "AdaptedModule",
    "Adapter",
    "adapter_parameter_count",
    "inject_adapters",
    "prepare_for_finetuning",
]

METHODS: tuple[str, ...] = ("full", "bitfit", "head", "lora", "adapter_h", "adapter_l")


class Adapter(nn.Module):
    """Bottleneck adapter: x + up(act(down(norm(x)))), d -> m -> d, 2 d m + d + m parameters
    (+ 2 d with Lin et al.'s input LayerNorm, layer_norm=True).

    Both projections start from a truncated normal with std 1e-3 and zero biases (Houlsby's
    `init_scale`), so the adapter starts as a near-identity and training starts (almost) at the
    pretrained model. Nonlinearity: GELU as in Houlsby's code, ReLU for Lin et al.'s.
    """

    def __init__(self, d: int, bottleneck: int, init_std: float = 1e-3, layer_norm: bool = False) -> None:
        super().__init__()
        if bottleneck <= 0:
            raise ValueError(f"bottleneck must be positive, got {bottleneck}")
        self.norm: nn.Module = nn.LayerNorm(d) if layer_norm else nn.Identity()
        self.down = nn.Linear(d, bottleneck)
        self.act = nn.ReLU() if layer_norm else nn.GELU()
        self.up = nn.Linear(bottleneck, d)
        for lin in (self.down, self.up):
            nn.init.trunc_normal_(lin.weight, std=init_std, a=-2 * init_std, b=2 * init_std)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(self.act(self.down(self.norm(x))))


def _width(module: nn.Module) -> int:
    """The width of a module's output: Linear's out_features, a norm's weight length."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[-1]
    weight = getattr(module, "weight", None)
    if isinstance(weight, Tensor) and weight.dim() == 1:  # RMSNorm and friends
        return weight.numel()
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if linears:  # a block such as an MLP: its last projection (registered last in HF code)
        return linears[-1].out_features
    raise ValueError(f"cannot tell the output width of {type(module).__name__}: wrap a Linear, a norm or an MLP")


class AdaptedModule(nn.Module):
    """A frozen module whose output passes through an Adapter: adapter(base(x))."""

    def __init__(self, base: nn.Module, bottleneck: int, layer_norm: bool = False) -> None:
        super().__init__()
        self.base = base
        ref = next(base.parameters())
        self.adapter = Adapter(_width(base), bottleneck, layer_norm=layer_norm).to(ref.device, ref.dtype)

    @property
    def weight(self) -> Tensor:  # some HF code reads layer.weight (e.g. its dtype)
        return self.base.weight

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        return self.adapter(self.base(x, *args, **kwargs))


AdaptedLinear = AdaptedModule  # the name used before adapters could follow a norm or an MLP


def inject_adapters(
    model: nn.Module, target_modules: tuple[str, ...], bottleneck: int, pattern: bool = False, layer_norm: bool = False
) -> list[str]:
    """Wrap each matched module (a Linear, a LayerNorm, an MLP block) so its output passes through a
    fresh Adapter. In place. Only sets up modules; requires_grad is left as it is
    (prepare_for_finetuning freezes). Returns the wrapped names; ValueError if nothing matched."""
    if isinstance(target_modules, str):
        target_modules = (target_modules,)
    selected = select_modules(model, tuple(target_modules), pattern)
    bad = [(n, type(m).__name__) for n, m in selected if next(m.parameters(), None) is None]
    if bad:
        raise ValueError(f"adapter targets {list(target_modules)} matched modules without parameters: {bad[:8]}")
    for _, module in selected:
        _width(module)  # fails before anything is changed
    for name, module in selected:
        set_module(model, name, AdaptedModule(module, bottleneck, layer_norm))
    return [n for n, _ in selected]


def adapter_parameter_count(d_model: int, bottleneck: int, n_adapters: int, n_layer_norms: int) -> int:
    """The LoRA paper's |Theta| for adapters: L_Adpt (2 d r + r + d) + 2 L_LN d (r = bottleneck)."""
    return n_adapters * (2 * d_model * bottleneck + bottleneck + d_model) + 2 * n_layer_norms * d_model


def _in_head(name: str, head: tuple[str, ...]) -> bool:
    return any(name == h or name.startswith(h + ".") for h in head)


def prepare_for_finetuning(
    model: nn.Module,
    method: str,
    *,
    head: tuple[str, ...] = ("classifier",),
    lora: LoRAConfig | None = None,
    adapter_h_targets: tuple[str, ...] = ("attention.output.dense", "output.dense"),
    adapter_h_norms: tuple[str, ...] = ("attention.output.LayerNorm", "output.LayerNorm"),
    adapter_l_targets: tuple[str, ...] = ("output.LayerNorm",),
    bottleneck: int = 16,
    pattern: bool = False,
) -> nn.Module:
    """Set up `model` in place for one fine-tuning method and return it.

    The task head (parameters under any module name in `head`, component-wise prefix) is always
    trainable; for "full" everything is. `head=()` means no head (e.g. a causal LM); a head that
    matches nothing is an error, because a silently frozen random head ruins a run.
    Defaults are BERT's names; Llama: adapter_h_targets ("self_attn.o_proj", "mlp.down_proj"),
    adapter_h_norms ("input_layernorm", "post_attention_layernorm"), adapter_l_targets ("mlp",).
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
        elif method == "adapter_h":
            norms = [m for _, m in select_modules(model, tuple(adapter_h_norms), pattern)] if adapter_h_norms else []
            inject_adapters(model, adapter_h_targets, bottleneck, pattern)
            for m in norms:
                m.requires_grad_(True)
        elif method == "adapter_l":
            inject_adapters(model, adapter_l_targets, bottleneck, pattern, layer_norm=True)
        for m in model.modules():
            if isinstance(m, Adapter):
                m.requires_grad_(True)
    for n, p in model.named_parameters():
        if _in_head(n, head):
            p.requires_grad_(True)
    return model
