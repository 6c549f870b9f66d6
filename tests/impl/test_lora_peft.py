"""Peer check: our LoRA against PEFT's on identical models with identical (non-zero) A and B."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

peft = pytest.importorskip("peft")
# emitted by transformers when PEFT inspects an HF model; not ours
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

from impl.lora import (  # noqa: E402
    LoRAConfig,
    count_parameters,
    inject_lora,
    lora_state_dict,
    merge_and_unload,
    merge_lora,
    unmerge_lora,
)

TOL = dict(rtol=1e-6, atol=1e-6)  # ours vs PEFT in the same state (merged, unmerged, unloaded)
# Merged vs unmerged through a whole model: W0 x + s B A x and (W0 + s B A) x round differently
# (~1e-7 per op in fp32) and LayerNorms amplify that; the single-layer 1e-6 check is in test_lora.py.
TOL_DEEP = dict(rtol=1e-5, atol=1e-5)


class Block(nn.Module):
    def __init__(self, d: int = 12, da: int = 16) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(d, da), nn.Linear(d, da), nn.Linear(d, da)
        self.out = nn.Linear(da, d)
        self.scale = 1 / math.sqrt(da)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.query(x) @ self.key(x).transpose(-1, -2) * self.scale, dim=-1)
        return x + self.out(a @ self.value(x))


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block() for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet().eval()


def tiny_gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
    )
    return GPT2Model(cfg).eval()


def tiny_bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(cfg).eval()


def build_pair(make, r: int, alpha: float, targets: tuple[str, ...], dropout: float = 0.0, fan_in_fan_out=False):
    """The same model twice: ours with inject_lora, PEFT's with get_peft_model; shared non-zero A, B."""
    ours, theirs = make(), make()
    inject_lora(ours, LoRAConfig(r=r, alpha=alpha, target_modules=targets, dropout=dropout))
    cfg = peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        target_modules=list(targets),
        lora_dropout=dropout,
        fan_in_fan_out=fan_in_fan_out,
        bias="none",
    )
    theirs = peft.get_peft_model(theirs, cfg)
    g = torch.Generator().manual_seed(1)
    peft_params = dict(theirs.named_parameters())
    with torch.no_grad():
        for k, p in lora_state_dict(ours).items():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)  # B non-zero: otherwise trivially equal
            peft_params[f"base_model.model.{k}.default.weight"].copy_(p)
    return ours, theirs


CASES = {
    "tiny": (
        tiny_net,
        lambda: torch.randn(3, 5, 12, generator=torch.Generator().manual_seed(2)),
        ("query", "value"),
        False,
    ),
    "bert": (
        tiny_bert,
        lambda: torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(2)),
        ("query", "value"),
        False,
    ),
    "gpt2-conv1d": (
        tiny_gpt2,
        lambda: torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(2)),
        ("c_attn", "c_proj"),
        True,
    ),
}


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out if isinstance(out, torch.Tensor) else out.last_hidden_state


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(("r", "alpha"), [(4, 4), (8, 16)])
def test_same_outputs_merged_unmerged_unloaded(case: str, r: int, alpha: float) -> None:
    make, make_x, targets, fan = CASES[case]
    ours, theirs = build_pair(make, r, alpha, targets, fan_in_fan_out=fan)
    x = make_x()
    y_base = run(make(), x)
    y = run(ours, x)
    assert (y - y_base).abs().max() > 1e-2  # LoRA changes the output: the comparison is not trivial
    assert count_parameters(ours) == theirs.get_nb_trainable_parameters()[0]
    torch.testing.assert_close(y, run(theirs, x), **TOL)
    merge_lora(ours)
    theirs.merge_adapter()
    torch.testing.assert_close(run(ours, x), run(theirs, x), **TOL)
    torch.testing.assert_close(run(ours, x), y, **TOL_DEEP)
    unmerge_lora(ours)
    theirs.unmerge_adapter()
    torch.testing.assert_close(run(ours, x), run(theirs, x), **TOL)
    plain_ours, plain_theirs = merge_and_unload(ours), theirs.merge_and_unload()
    torch.testing.assert_close(run(plain_ours, x), run(plain_theirs, x), **TOL)
    torch.testing.assert_close(run(plain_ours, x), y, **TOL_DEEP)


def test_same_gradients_and_same_dropout() -> None:
    ours, theirs = build_pair(tiny_net, 4, 8, ("query", "value"), dropout=0.3)
    ours.train()
    theirs.train()
    x = CASES["tiny"][1]()
    torch.manual_seed(5)
    loss_ours = F.mse_loss(ours(x), torch.zeros_like(x))
    torch.manual_seed(5)
    loss_theirs = F.mse_loss(theirs(x), torch.zeros_like(x))
    # same dropout masks drawn in the same order: dropout sits on the LoRA input in both
    torch.testing.assert_close(loss_ours, loss_theirs, **TOL)
    loss_ours.backward()
    loss_theirs.backward()
    grads_theirs = {n: p.grad for n, p in theirs.named_parameters() if p.requires_grad}
    assert len(grads_theirs) == 8
    for n, p in ours.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(
                p.grad, grads_theirs[f"base_model.model.{n}.default.weight"], rtol=1e-5, atol=1e-6, msg=n
            )
