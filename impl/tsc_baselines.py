"""Deep time series classification baselines of Wang, Yan & Oates (2017).

"Time series classification from scratch with deep neural networks: a strong baseline" (IJCNN
2017): MLP, FCN and ResNet, here for multivariate input (batch, T, C), the way Fawaz et al.'s
dl-4-tsc applied them to the multivariate archive the GTN paper compares against (the GTN paper's
baseline numbers are dl-4-tsc's). Every layer size is multiplied by `width` so a profile can
shrink a model without changing its shape.

Unequal lengths: the originals assume equal-length series. dl-4-tsc made the multivariate archive
equal-length by resampling every series to the longest length (cubic interpolation,
`suites.data.timeseries.resample_to_longest`), not by zero padding, and the GTN suite feeds them
that way. Given zero-padded input instead, convolutions and GAP treat the zeros as data and the MLP
reads them; `masked_pool=True` (FCN, ResNet) then makes global average pooling average only the
valid steps given `lengths` (the convolutions still see the zeros at the end of short series, as
they see their own "same" padding at the ends of every series).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scaled(n: int, width: float) -> int:
    """A layer size scaled by width, at least 1."""
    return max(1, round(n * width))


def masked_gap(h: Tensor, lengths: Tensor | None) -> Tensor:
    """Global average pool over time of h (batch, channels, T); only the valid steps if lengths."""
    if lengths is None:
        return h.mean(-1)
    valid = torch.arange(h.shape[-1], device=h.device)[None, :] < lengths.to(h.device)[:, None]
    h = h * valid[:, None, :]
    return h.sum(-1) / valid.sum(-1, keepdim=True).clamp_min(1)


@dataclass
class FCNConfig:
    n_channels: int
    n_classes: int
    width: float = 1.0  # filters 128/256/128 * width
    masked_pool: bool = False  # original: GAP over all steps, padding included


@dataclass
class ResNetConfig:
    n_channels: int
    n_classes: int
    width: float = 1.0  # filters 64/128/128 * width
    masked_pool: bool = False


@dataclass
class MLPConfig:
    n_channels: int
    n_steps: int  # the MLP reads the flattened (T*C) padded series, so T is part of its shape
    n_classes: int
    width: float = 1.0  # 500 units per hidden layer * width


class ConvBlock(nn.Module):
    """Conv1d ('same' padding) -> BatchNorm -> optional ReLU: the unit of FCN and ResNet."""

    def __init__(self, c_in: int, c_out: int, kernel: int, relu: bool = True) -> None:
        super().__init__()
        # Keras 'same' padding keeps T, so the kernels 8/5/3 stack without shrinking the series;
        # for even kernels the extra zero goes on the right, as in Keras (explicit, because
        # torch's padding="same" copies the input for even kernels and warns).
        self.pad = ((kernel - 1) // 2, kernel // 2)
        self.conv = nn.Conv1d(c_in, c_out, kernel)
        self.bn = nn.BatchNorm1d(c_out)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(F.pad(x, self.pad)))
        return F.relu(x) if self.relu else x


class FCN(nn.Module):
    """Three conv blocks (128, 256, 128 filters; kernels 8, 5, 3), GAP, linear softmax layer."""

    def __init__(self, cfg: FCNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        f1, f2, f3 = (scaled(n, cfg.width) for n in (128, 256, 128))
        self.blocks = nn.Sequential(ConvBlock(cfg.n_channels, f1, 8), ConvBlock(f1, f2, 5), ConvBlock(f2, f3, 3))
        self.head = nn.Linear(f3, cfg.n_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x: (batch, T, C) -> logits (batch, n_classes)."""
        h = self.blocks(x.transpose(1, 2))  # Conv1d wants (batch, C, T)
        return self.head(masked_gap(h, lengths if self.cfg.masked_pool else None))


class ResidualBlock(nn.Module):
    """Conv blocks 8/5/3 with a shortcut; 1x1 conv + BN on the shortcut when widths differ."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(c_in, c_out, 8), ConvBlock(c_out, c_out, 5), ConvBlock(c_out, c_out, 3, relu=False)
        )
        # As in Wang et al.'s / dl-4-tsc's code: a BN-only shortcut when no projection is needed.
        if c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out))
        else:
            self.shortcut = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """Three residual blocks (64, 128, 128 filters), GAP, linear softmax layer."""

    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        f1, f2, f3 = (scaled(n, cfg.width) for n in (64, 128, 128))
        self.blocks = nn.Sequential(ResidualBlock(cfg.n_channels, f1), ResidualBlock(f1, f2), ResidualBlock(f2, f3))
        self.head = nn.Linear(f3, cfg.n_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = self.blocks(x.transpose(1, 2))
        return self.head(masked_gap(h, lengths if self.cfg.masked_pool else None))


class MLP(nn.Module):
    """Dropout 0.1 -> [Dense 500 + ReLU -> dropout 0.2, 0.2, 0.3] x 3 -> linear softmax layer."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        units = scaled(500, cfg.width)
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(0.1)]
        d_in = cfg.n_steps * cfg.n_channels
        for p in (0.2, 0.2, 0.3):
            layers += [nn.Linear(d_in, units), nn.ReLU(), nn.Dropout(p)]
            d_in = units
        layers.append(nn.Linear(d_in, cfg.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """lengths is accepted for a uniform interface and ignored, as in the original."""
        return self.net(x)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
