"""Wang et al. (2017) baselines: shapes, one training step, parameter counts by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from impl.tsc_baselines import (
    FCN,
    MLP,
    FCNConfig,
    MLPConfig,
    ResNet,
    ResNetConfig,
    masked_gap,
    num_params,
)

B, T, C, K = 4, 6, 3, 4


def models(width: float = 1 / 16) -> dict[str, torch.nn.Module]:
    return {
        "fcn": FCN(FCNConfig(n_channels=C, n_classes=K, width=width)),
        "resnet": ResNet(ResNetConfig(n_channels=C, n_classes=K, width=width)),
        "mlp": MLP(MLPConfig(n_channels=C, n_steps=T, n_classes=K, width=0.01)),
    }


@pytest.mark.parametrize("name", ["fcn", "resnet", "mlp"])
def test_shapes(name):
    torch.manual_seed(0)
    model = models()[name].eval()
    x = torch.randn(B, T, C)
    assert model(x).shape == (B, K)
    assert model(x, torch.tensor([6, 5, 2, 1])).shape == (B, K)


@pytest.mark.parametrize("name", ["fcn", "resnet", "mlp"])
def test_one_training_step(name):
    torch.manual_seed(0)
    model = models()[name].train()
    x, y = torch.randn(B, T, C), torch.randint(0, K, (B,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    loss = F.cross_entropy(model(x), y)
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(not torch.equal(p0, p) for p0, p in zip(before, model.parameters(), strict=True))


def test_parameter_counts_by_hand():
    m = models(width=1 / 16)  # FCN 8/16/8 filters, ResNet 4/8/8, MLP 5 units (width 0.01)
    conv = lambda c_in, c_out, k: c_in * c_out * k + c_out  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731  (weight + bias; running stats are buffers)
    fcn = conv(3, 8, 8) + bn(8) + conv(8, 16, 5) + bn(16) + conv(16, 8, 3) + bn(8) + (8 * 4 + 4)
    assert fcn == 1348
    assert num_params(m["fcn"]) == fcn
    block1 = conv(3, 4, 8) + bn(4) + conv(4, 4, 5) + bn(4) + conv(4, 4, 3) + bn(4) + conv(3, 4, 1) + bn(4)
    block2 = conv(4, 8, 8) + bn(8) + conv(8, 8, 5) + bn(8) + conv(8, 8, 3) + bn(8) + conv(4, 8, 1) + bn(8)
    block3 = conv(8, 8, 8) + bn(8) + conv(8, 8, 5) + bn(8) + conv(8, 8, 3) + bn(8) + bn(8)  # BN shortcut
    resnet = block1 + block2 + block3 + (8 * 4 + 4)
    assert (block1, block2, block3, resnet) == (284, 896, 1112, 2328)
    assert num_params(m["resnet"]) == resnet
    mlp = (T * C * 5 + 5) + (5 * 5 + 5) * 2 + (5 * 4 + 4)
    assert mlp == 179
    assert num_params(m["mlp"]) == mlp


def test_full_width_counts_match_the_papers_layers():
    # Full width on a 1-channel, 2-class problem: the FCN of Wang et al. has ~265k parameters.
    fcn = FCN(FCNConfig(n_channels=1, n_classes=2))
    expected = (1 * 128 * 8 + 128) + 256 + (128 * 256 * 5 + 256) + 512 + (256 * 128 * 3 + 128) + 256 + (128 * 2 + 2)
    assert num_params(fcn) == expected == 264_962


def test_masked_pool_averages_valid_steps_only():
    h = torch.tensor([[[1.0, 3.0, 100.0, 100.0]]])  # (batch 1, channel 1, T 4); last two are padding
    assert masked_gap(h, torch.tensor([2])).item() == pytest.approx(2.0)
    assert masked_gap(h, None).item() == pytest.approx(51.0)
    model = FCN(FCNConfig(n_channels=C, n_classes=K, width=1 / 16, masked_pool=True)).eval()
    x = torch.randn(B, T, C)
    assert model(x, torch.tensor([6, 5, 2, 1])).shape == (B, K)


# --- forward passes against a functional transcription of Wang et al.'s networks ------------------
# Keras 'same' padding for stride 1 pads k-1 zeros, floor((k-1)/2) on the left and the rest on the
# right; BatchNorm in inference mode uses its running statistics. Random running statistics make
# a misplaced BN or ReLU visible.


def keras_same_conv(h, conv):
    k = conv.kernel_size[0]
    return F.conv1d(F.pad(h, ((k - 1) // 2, k - 1 - (k - 1) // 2)), conv.weight, conv.bias)


def bn(h, layer):
    return F.batch_norm(h, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps)


def randomise_norms(model):
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            torch.nn.init.normal_(m.weight, 1.0, 0.3)
            torch.nn.init.normal_(m.bias, 0.0, 0.3)
    return model.eval()


def conv_bn_relu(h, block, relu=True):
    h = bn(keras_same_conv(h, block.conv), block.bn)
    return F.relu(h) if relu else h


def assert_transcribed(model, features) -> None:
    """model(x) equals features(x as (batch, C, T)) -> global average pool -> linear head."""
    x = torch.randn(B, T, C)
    h = features(x.transpose(1, 2))
    expected = F.linear(h.mean(-1), model.head.weight, model.head.bias)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)


def test_fcn_equals_transcription():
    torch.manual_seed(0)
    model = randomise_norms(FCN(FCNConfig(n_channels=C, n_classes=K, width=1 / 16)))

    def features(h):
        for block in model.blocks:
            h = conv_bn_relu(h, block)
        return h

    assert_transcribed(model, features)


def test_resnet_equals_transcription():
    torch.manual_seed(0)
    model = randomise_norms(ResNet(ResNetConfig(n_channels=C, n_classes=K, width=1 / 16)))

    def features(h):
        for res in model.blocks:
            a, b, c = res.body
            y = conv_bn_relu(conv_bn_relu(conv_bn_relu(h, a), b), c, relu=False)
            if isinstance(res.shortcut, torch.nn.BatchNorm1d):
                short = bn(h, res.shortcut)
            else:
                conv, norm = res.shortcut
                short = bn(F.conv1d(h, conv.weight, conv.bias), norm)
            h = F.relu(y + short)
        return h

    assert_transcribed(model, features)


def test_same_padding_puts_the_extra_zero_on_the_right():
    # Kernel 8 with weights 1..8 on a delta at t = 0: Keras gives out[t] = w[3 - t] for t <= 3.
    from impl.tsc_baselines import ConvBlock

    block = ConvBlock(1, 1, 8)
    with torch.no_grad():
        block.conv.weight.copy_(torch.arange(1.0, 9.0).view(1, 1, 8))
        block.conv.bias.zero_()
    x = torch.zeros(1, 1, 10)
    x[0, 0, 0] = 1.0
    out = F.conv1d(F.pad(x, block.pad), block.conv.weight, block.conv.bias)
    assert out.shape[-1] == 10
    assert out[0, 0, :5].tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]


def test_mlp_layers_and_dropout_rates():
    m = MLP(MLPConfig(n_channels=C, n_steps=T, n_classes=K))
    drops = [layer.p for layer in m.net if isinstance(layer, torch.nn.Dropout)]
    sizes = [(layer.in_features, layer.out_features) for layer in m.net if isinstance(layer, torch.nn.Linear)]
    assert drops == [0.1, 0.2, 0.2, 0.3]
    assert sizes == [(T * C, 500), (500, 500), (500, 500), (500, K)]
    # Flatten order: the MLP reads the series step by step (T major), as Keras' Flatten of (T, C).
    x = torch.randn(1, T, C)
    assert torch.equal(m.net[0](x)[0], x[0].reshape(-1))
