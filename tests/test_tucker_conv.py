"""TuckerConv2d and the FactorizedConv2d base: nn.Conv2d behaviour, both paths, conversion."""

from __future__ import annotations

import io
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from tensornet_torch.layers import FactorizedConv2d, TuckerConv2d  # noqa: E402

GEOMETRIES: list[dict[str, Any]] = [
    {},
    {"stride": 2, "padding": 1},
    {"padding": "same", "dilation": 2},
    {"padding": "valid"},
    {"padding": (1, 0), "groups": 2},
    {"kernel_size": (3, 2), "padding": "same"},
    {"kernel_size": (1, 5), "stride": (2, 1), "padding": (0, 2)},
    {"padding": 1, "padding_mode": "reflect"},
    {"padding": 2, "padding_mode": "circular", "bias": False},
    {"groups": 4, "stride": 2},
]


def _conv(geometry: dict[str, Any], dtype: Any = torch.float64) -> nn.Conv2d:
    kwargs = dict(geometry)
    kernel = kwargs.pop("kernel_size", 3)
    torch.manual_seed(0)
    return nn.Conv2d(8, 12, kernel, dtype=dtype, **kwargs)


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("mode", ["factorized", "dense", "auto"])
def test_full_rank_layer_reproduces_the_convolution(geometry: dict[str, Any], mode: str) -> None:
    conv = _conv(geometry)
    layer = TuckerConv2d.from_conv(conv, rtol=1e-12, forward_mode=mode)
    x = torch.randn(3, 8, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(layer(x[0]), conv(x[0]), rtol=1e-10, atol=1e-12)  # unbatched
    torch.testing.assert_close(layer.to_conv()(x), conv(x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_low_rank_paths_agree_and_match_conv2d_with_the_reconstructed_kernel(
    geometry: dict[str, Any],
) -> None:
    conv = _conv(geometry)
    layer = TuckerConv2d.from_conv(conv, ranks=(2, 1))
    x = torch.randn(1, 8, 7, 6, dtype=torch.float64)
    layer.forward_mode = "factorized"
    factorized = layer(x)
    layer.forward_mode = "dense"
    dense = layer(x)
    reference = layer.to_conv()(x)
    torch.testing.assert_close(factorized, dense, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(factorized, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rtol", [0.05, 0.3, 0.7])
def test_from_conv_honours_rtol_on_the_whole_kernel(rtol: float) -> None:
    for groups in (1, 2):
        conv = nn.Conv2d(16, 24, 3, groups=groups, dtype=torch.float64)
        layer = TuckerConv2d.from_conv(conv, rtol=rtol)
        with torch.no_grad():
            error = float(torch.linalg.vector_norm(layer.reconstruct() - conv.weight))
            total = float(torch.linalg.vector_norm(conv.weight))
        assert error <= rtol * total * (1 + 1e-9)
        torch.testing.assert_close(layer.bias, conv.bias)


def test_ranks_cap_and_counts() -> None:
    conv = nn.Conv2d(16, 32, 3, padding=1)
    layer = TuckerConv2d.from_conv(conv, ranks=(8, 4))
    assert layer.ranks == (8, 4)
    assert layer.num_params == 4 * 16 + 8 * 4 * 9 + 32 * 8 + 32
    assert layer.dense_num_params == 32 * 16 * 9 + 32
    h = w = 10
    assert layer.dense_macs(h, w) == 10 * 10 * 32 * 16 * 9
    assert layer.factorized_macs(h, w) == 100 * 16 * 4 + 100 * 8 * 4 * 9 + 100 * 32 * 8
    strided = TuckerConv2d(16, 32, 3, stride=2, ranks=(8, 4))
    assert strided.output_size(10, 10) == (4, 4)
    assert strided.factorized_macs(10, 10) == 100 * 16 * 4 + 16 * 8 * 4 * 9 + 16 * 32 * 8


def test_auto_picks_the_cheaper_path() -> None:
    cheap = TuckerConv2d(64, 64, 3, padding=1, ranks=(4, 4))
    assert cheap.choose_path(8, 32, 32) == "factorized"
    full = TuckerConv2d(8, 8, 3, padding=1, ranks=(8, 8))
    assert full.choose_path(8, 32, 32) == "dense"
    macs = full.path_macs(8, 32, 32)
    assert macs["dense"] == 8 * full.dense_macs(32, 32) + full.reconstruct_macs()
    full.forward_mode = "factorized"
    assert full.choose_path(8, 32, 32) == "factorized"


def test_default_init_matches_conv2d_variance_and_bias_range() -> None:
    torch.manual_seed(0)
    ours = torch.stack([TuckerConv2d(32, 64, 3, ranks=(16, 8)).weight.var() for _ in range(20)])
    theirs = torch.stack([nn.Conv2d(32, 64, 3).weight.var() for _ in range(20)])
    assert abs(float(ours.mean()) / float(theirs.mean()) - 1) < 0.2
    layer = TuckerConv2d(32, 64, 3, ranks=4)
    assert layer.bias is not None
    assert float(layer.bias.abs().max()) <= 1 / (32 * 9) ** 0.5


def test_state_dict_round_trip_with_weights_only() -> None:
    layer = TuckerConv2d(8, 16, 3, ranks=(4, 2))
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    other = TuckerConv2d(8, 16, 3, ranks=(4, 2))
    other.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(other.weight, layer.weight)


def test_gradients_reach_every_factor_on_both_paths() -> None:
    for mode in ("factorized", "dense"):
        layer = TuckerConv2d(4, 6, 3, ranks=(3, 2), forward_mode=mode)
        layer(torch.randn(2, 4, 5, 5)).square().sum().backward()
        for name, p in layer.named_parameters():
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, (mode, name)


def test_device_dtype_and_repr() -> None:
    layer = TuckerConv2d(8, 16, 3, padding=1, ranks=(4, 2), dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    assert layer.to_conv().weight.dtype == torch.float64
    assert isinstance(layer, FactorizedConv2d)
    text = repr(TuckerConv2d(8, 16, 3, padding=1, bias=False, ranks=(4, 2)))
    assert "ranks=(4, 2)" in text and "bias=False" in text and "padding=(1, 1)" in text
    float32 = TuckerConv2d.from_conv(nn.Conv2d(8, 16, 3), ranks=2)
    assert float32.first.dtype == torch.float32


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="rtol, ranks"):
        TuckerConv2d.from_conv(nn.Conv2d(4, 4, 3))
    with pytest.raises(TypeError, match=r"conv must be a torch\.nn\.Conv2d"):
        TuckerConv2d.from_conv(nn.Linear(4, 4), ranks=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ranks"):
        TuckerConv2d(4, 4, 3, ranks=(0, 2))
    with pytest.raises(TypeError, match="ranks"):
        TuckerConv2d(4, 4, 3, ranks="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="forward_mode"):
        TuckerConv2d(4, 4, 3, ranks=2, forward_mode="fast")
    with pytest.raises(ValueError):  # nn.Conv2d's own geometry check
        TuckerConv2d(4, 6, 3, groups=4, ranks=2)
    layer = TuckerConv2d(4, 6, 3, ranks=2)
    with pytest.raises(ValueError, match="input channels"):
        layer(torch.randn(1, 5, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(8, 8))


def test_matches_functional_conv_with_the_weight_property() -> None:
    layer = TuckerConv2d(6, 8, (3, 5), stride=(1, 2), padding=(1, 2), dilation=(2, 1), ranks=3)
    x = torch.randn(2, 6, 11, 13)
    expected = F.conv2d(x, layer.weight, layer.bias, (1, 2), (1, 2), (2, 1))
    layer.forward_mode = "factorized"
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
def test_runs_on_cuda() -> None:
    conv = nn.Conv2d(8, 16, 3, padding=1).cuda()
    layer = TuckerConv2d.from_conv(conv, rtol=0.3)
    assert layer.first.device.type == "cuda"
    x = torch.randn(2, 8, 16, 16, device="cuda")
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        torch.testing.assert_close(layer(x), layer.to_conv()(x), rtol=1e-4, atol=1e-4)
