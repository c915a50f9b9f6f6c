"""CPConv2d: a rank-R CP kernel run as 1x1 -> (kh x 1) -> (1 x kw) -> 1x1 convolutions."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensornet as tn

torch = pytest.importorskip("torch")
F = torch.nn.functional
nn = torch.nn

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tensornet_torch.layers.cp_conv import CPConv2d, cp_rank_bound  # noqa: E402

F64 = torch.float64


def _rel(a: Any, b: Any) -> float:
    a, b = a.detach(), b.detach()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def _reference(layer: CPConv2d, x: Any) -> Any:
    """``nn.Conv2d`` of the same geometry holding the reconstructed kernel."""
    conv = nn.Conv2d(**layer.geometry_kwargs(), dtype=x.dtype, device=x.device)
    with torch.no_grad():
        conv.weight.copy_(layer.reconstruct())
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    return conv(x).detach()


def _cp_kernel(shape: tuple[int, ...], rank: int, seed: int) -> Any:
    """A kernel of exact CP rank ``rank`` (float64)."""
    gen = torch.Generator().manual_seed(seed)
    factors = [torch.randn(n, rank, generator=gen, dtype=F64) for n in shape]
    return torch.einsum("tr,sr,hr,wr->tshw", *factors)


GEOMETRIES = [
    pytest.param({"stride": 1, "padding": 1}, id="stride1-pad1"),
    pytest.param({"stride": 2, "padding": 1}, id="stride2"),
    pytest.param({"stride": (2, 1), "padding": (2, 0)}, id="tuple-stride-padding"),
    pytest.param({"padding": "same"}, id="same"),
    pytest.param({"padding": "same", "kernel_size": (2, 4)}, id="same-even-kernel"),
    pytest.param({"padding": "valid"}, id="valid"),
    pytest.param({"dilation": (2, 3), "padding": 2}, id="dilation"),
    pytest.param({"groups": 2, "padding": 1}, id="groups2"),
    pytest.param({"groups": 3, "stride": 2, "kernel_size": (1, 3)}, id="groups3-1x3"),
    pytest.param({"kernel_size": (5, 2), "padding": (2, 1)}, id="non-square"),
    pytest.param({"padding_mode": "reflect", "padding": 1, "stride": 2}, id="reflect"),
    pytest.param({"padding_mode": "circular", "padding": (1, 2)}, id="circular"),
    pytest.param({"padding_mode": "reflect", "padding": "same", "dilation": 2}, id="reflect-same"),
]


def _layer(geometry: dict[str, Any], rank: int = 3, **kwargs: Any) -> CPConv2d:
    geo = dict(geometry)
    kernel = geo.pop("kernel_size", 3)
    groups = geo.get("groups", 1)
    return CPConv2d(2 * groups, 3 * groups, kernel, **geo, ranks=rank, **kwargs)


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("mode", ["factorized", "dense"])
def test_forward_equals_conv2d_with_reconstructed_kernel(
    geometry: dict[str, Any], mode: str
) -> None:
    torch.manual_seed(0)
    layer = _layer(geometry, dtype=F64, forward_mode=mode)
    for x in (
        torch.randn(2, layer.in_channels, 9, 11, dtype=F64),
        torch.randn(1, layer.in_channels, 8, 7, dtype=F64),
    ):
        out = layer(x)
        assert out.shape == _reference(layer, x).shape
        assert _rel(out, _reference(layer, x)) < 1e-13


@pytest.mark.parametrize("geometry", GEOMETRIES[:4] + GEOMETRIES[10:])
def test_unbatched_input_gives_the_unbatched_conv2d_output(geometry: dict[str, Any]) -> None:
    torch.manual_seed(1)
    layer = _layer(geometry, dtype=F64, forward_mode="factorized")
    x = torch.randn(layer.in_channels, 7, 8, dtype=F64)
    out = layer(x)
    assert out.dim() == 3
    assert _rel(out, _reference(layer, x)) < 1e-13


@given(
    groups=st.integers(1, 3),
    per_group=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from([0, 1, (2, 0), "same", "valid"]),
    padding_mode=st.sampled_from(["zeros", "reflect", "circular", "replicate"]),
    rank=st.integers(1, 4),
    bias=st.booleans(),
)
def test_factorized_pipeline_equals_conv2d_for_any_geometry(
    groups: int,
    per_group: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: Any,
    padding_mode: str,
    rank: int,
    bias: bool,
) -> None:
    assume(padding != "same" or stride == (1, 1))  # nn.Conv2d rejects 'same' with strides
    torch.manual_seed(2)
    layer = CPConv2d(
        per_group[0] * groups,
        per_group[1] * groups,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bias,
        padding_mode=padding_mode,
        dtype=F64,
        ranks=rank,
        forward_mode="factorized",
    )
    x = torch.randn(2, layer.in_channels, 9, 10, dtype=F64)
    ref = _reference(layer, x)
    out = layer(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, rtol=0, atol=1e-13 * float(ref.abs().max() + 1))


def test_float32_paths_agree_to_float32_round_off() -> None:
    torch.manual_seed(3)
    layer = CPConv2d(8, 6, 3, padding=1, stride=2, ranks=5)
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    x = torch.randn(2, 8, 10, 10)
    layer.forward_mode = "factorized"
    a = layer(x)
    layer.forward_mode = "dense"
    b = layer(x)
    assert a.dtype == torch.float32
    assert _rel(a, b) < 1e-5


def test_kernel_is_the_sum_of_rank_one_terms_of_the_factors() -> None:
    torch.manual_seed(4)
    layer = CPConv2d(4, 6, (3, 2), groups=2, ranks=3, dtype=F64)
    w = layer.reconstruct()
    for g in range(2):
        a = layer.last[3 * g : 3 * g + 3]
        b = layer.first[3 * g : 3 * g + 3].T
        h = layer.vertical[3 * g : 3 * g + 3].T
        v = layer.horizontal[3 * g : 3 * g + 3].T
        expected = torch.einsum("tr,sr,hr,wr->tshw", a, b, h, v)
        assert _rel(w[3 * g : 3 * g + 3], expected) < 1e-14
        assert _rel(layer.to_cp(g).to_dense(), expected) < 1e-14


def test_factorized_macs_match_a_hand_count() -> None:
    layer = CPConv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, ranks=3)
    # 7 x 9 input, symmetric zero padding:
    # H' = (7 + 2 - 3) // 2 + 1 = 4, W' = (9 + 2 - 2) // 2 + 1 = 5
    first = 7 * 9 * 4 * 3  # 1x1, S=4 -> g R = 6 channels
    vertical = 4 * 9 * 2 * 3 * 3  # depthwise (3 x 1), height already strided, width not
    horizontal = 4 * 5 * 2 * 3 * 2  # depthwise (1 x 2)
    last = 4 * 5 * 6 * 3  # 1x1, per group R -> T' = 3
    assert layer.factorized_macs(7, 9) == first + vertical + horizontal + last == 2004
    # reflect padding is applied up front: the pipeline starts at 9 x 11
    reflect = CPConv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, ranks=3, padding_mode="reflect")
    assert reflect.factorized_macs(7, 9) == 9 * 11 * 12 + 4 * 11 * 18 + 240 + 360
    # reconstruct: g R (kh kw + S' kh kw + T' S' kh kw)
    assert layer.reconstruct_macs() == 2 * 3 * (6 + 2 * 6 + 3 * 2 * 6) == 324


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_factorized_macs_equal_the_counted_convolution_macs(geometry: dict[str, Any]) -> None:
    layer = _layer(geometry, forward_mode="factorized")
    x = torch.randn(3, layer.in_channels, 9, 11)
    with FlopCounterMode(display=False) as counter:
        layer(x)
    assert counter.get_total_flops() == 2 * 3 * layer.factorized_macs(9, 11)


def test_auto_path_takes_the_cheaper_one() -> None:
    layer = CPConv2d(32, 32, 3, padding=1, ranks=2)
    macs = layer.path_macs(4, 16, 16)
    assert macs["factorized"] < macs["dense"]
    assert layer.choose_path(4, 16, 16) == "factorized"
    big = CPConv2d(4, 4, 3, padding=1, ranks=64)
    assert big.choose_path(4, 16, 16) == "dense"


def test_to_conv_is_exact() -> None:
    torch.manual_seed(5)
    layer = CPConv2d(6, 4, (3, 1), stride=(2, 1), padding=(1, 0), groups=2, ranks=3, dtype=F64)
    conv = layer.to_conv()
    assert isinstance(conv, nn.Conv2d)
    assert conv.groups == 2 and conv.stride == (2, 1) and conv.weight.dtype == F64
    assert torch.equal(conv.weight, layer.reconstruct().detach())
    assert conv.bias is not None and layer.bias is not None
    assert torch.equal(conv.bias, layer.bias.detach())
    x = torch.randn(2, 6, 9, 9, dtype=F64)
    assert _rel(conv(x), layer(x)) < 1e-13


def test_state_dict_round_trips_through_weights_only_load() -> None:
    torch.manual_seed(6)
    layer = CPConv2d(4, 6, 3, padding=1, groups=2, ranks=3)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(state) == {"first", "vertical", "horizontal", "last", "bias"}
    fresh = CPConv2d(4, 6, 3, padding=1, groups=2, ranks=3)
    fresh.load_state_dict(state)
    x = torch.randn(1, 4, 6, 6)
    assert torch.equal(fresh(x), layer(x))


def test_reset_parameters_matches_conv2d_kernel_variance_on_average() -> None:
    torch.manual_seed(7)
    layer = CPConv2d(16, 32, 3, ranks=8)
    ratios = []
    for _ in range(40):
        layer.reset_parameters()
        ratios.append(float(layer.reconstruct().detach().var()) / layer.kernel_variance())
    assert abs(np.mean(ratios) - 1.0) < 0.2
    reference = nn.Conv2d(16, 32, 3)
    assert abs(float(reference.weight.var()) / layer.kernel_variance() - 1) < 0.2
    bound = 1 / np.sqrt(16 * 9)
    assert layer.bias is not None and float(layer.bias.abs().max()) <= bound


@pytest.mark.parametrize("mode", ["factorized", "dense"])
def test_gradients_reach_every_factor_and_the_bias(mode: str) -> None:
    torch.manual_seed(8)
    layer = CPConv2d(4, 6, 3, padding=1, groups=2, ranks=3, forward_mode=mode)
    layer(torch.randn(2, 4, 5, 5)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert float(p.grad.abs().sum()) > 0, name


def test_device_and_dtype_are_honoured() -> None:
    layer = CPConv2d(4, 6, 3, ranks=2, device="cpu", dtype=F64)
    assert all(p.dtype == F64 and p.device.type == "cpu" for p in layer.parameters())
    meta = CPConv2d(4, 6, 3, ranks=2, device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert layer.to_conv().weight.dtype == F64


def test_parameter_shapes_and_repr() -> None:
    layer = CPConv2d(4, 6, (3, 2), groups=2, bias=False, ranks=5)
    assert layer.first.shape == (10, 2)
    assert layer.vertical.shape == (10, 3)
    assert layer.horizontal.shape == (10, 2)
    assert layer.last.shape == (6, 5)
    assert layer.bias is None
    assert layer.rank == 5 and layer.ranks == (5,)
    assert layer.num_params == 10 * 2 + 10 * 3 + 10 * 2 + 6 * 5
    assert "ranks=5" in repr(layer) and "groups=2" in repr(layer)


@pytest.mark.parametrize(
    ("ranks", "error"),
    [(0, ValueError), (-2, ValueError), (2.0, TypeError), ("3", TypeError), (True, TypeError)],
)
def test_bad_ranks_are_rejected(ranks: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="ranks"):
        CPConv2d(4, 6, 3, ranks=ranks)


def test_bad_input_and_from_conv_arguments_are_rejected() -> None:
    layer = CPConv2d(4, 6, 3, ranks=2)
    with pytest.raises(ValueError, match="4 input channels"):
        layer(torch.randn(1, 5, 8, 8))
    with pytest.raises(ValueError, match="forward_mode"):
        CPConv2d(4, 6, 3, ranks=2, forward_mode="fast")
    conv = nn.Conv2d(4, 6, 3)
    with pytest.raises(ValueError, match="rtol, ranks or both"):
        CPConv2d.from_conv(conv)
    with pytest.raises(ValueError, match="rtol"):
        CPConv2d.from_conv(conv, rtol=-0.1)
    with pytest.raises(TypeError, match="rtol"):
        CPConv2d.from_conv(conv, rtol="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ranks"):
        CPConv2d.from_conv(conv, ranks=0)
    with pytest.raises(TypeError, match="conv"):
        CPConv2d.from_conv(nn.Linear(4, 6))
    with pytest.raises(ValueError, match="n_iter_max"):
        CPConv2d.from_conv(conv, ranks=2, n_iter_max=0)
    with pytest.raises(ValueError, match="group"):
        layer.to_cp(1)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("rtol", [0.6, 0.3])
def test_from_conv_with_rtol_bounds_the_relative_kernel_error(groups: int, rtol: float) -> None:
    torch.manual_seed(9)
    conv = nn.Conv2d(3 * groups, 4 * groups, 3, padding=1, groups=groups, dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rank search is silent about ALS convergence
        layer = CPConv2d.from_conv(conv, rtol=rtol, n_iter_max=30, rng=0)
    w = conv.weight.detach()
    assert _rel(layer.reconstruct().detach(), w) <= rtol
    assert layer.rank <= cp_rank_bound((4, 3, 3, 3))
    assert layer.groups == groups and layer.padding == (1, 1)
    assert layer.bias is not None and conv.bias is not None
    assert torch.equal(layer.bias.detach(), conv.bias.detach())
    x = torch.randn(2, 3 * groups, 6, 6, dtype=F64)
    assert _rel(layer(x), conv(x)) < 2 * rtol


def test_from_conv_rank_search_finds_an_exact_low_rank() -> None:
    conv = nn.Conv2d(5, 6, 3, bias=False, dtype=F64)
    with torch.no_grad():
        conv.weight.copy_(_cp_kernel((6, 5, 3, 3), 3, seed=10))
    layer = CPConv2d.from_conv(conv, rtol=1e-6, rng=0)
    assert layer.rank <= 3
    assert layer.bias is None
    assert _rel(layer.reconstruct().detach(), conv.weight.detach()) <= 1e-6


def test_from_conv_pads_groups_of_different_rank_with_zero_columns() -> None:
    conv = nn.Conv2d(8, 10, (2, 3), groups=2, dtype=F64)
    with torch.no_grad():
        conv.weight[:5].copy_(_cp_kernel((5, 4, 2, 3), 1, seed=11))
        conv.weight[5:].copy_(_cp_kernel((5, 4, 2, 3), 2, seed=12))
    layer = CPConv2d.from_conv(conv, rtol=1e-8, rng=0)
    assert layer.rank == 2
    first_group = layer.to_cp(0)
    assert float(first_group.factors[0][:, 1].abs().max()) == 0.0  # padded column
    assert _rel(layer.reconstruct().detach(), conv.weight.detach()) <= 1e-8


@pytest.mark.filterwarnings("ignore::tensornet.ConvergenceWarning")
def test_from_conv_with_ranks_alone_fits_that_rank() -> None:
    torch.manual_seed(13)
    conv = nn.Conv2d(4, 6, 3, groups=2)
    layer = CPConv2d.from_conv(conv, ranks=4, n_iter_max=20, rng=0)
    assert layer.rank == 4 and layer.last.dtype == torch.float32
    assert layer.first.shape == (8, 2)


def test_from_conv_with_ranks_alone_warns_when_als_does_not_converge() -> None:
    torch.manual_seed(14)
    conv = nn.Conv2d(4, 6, 3, dtype=F64)
    with pytest.warns(tn.ConvergenceWarning):
        CPConv2d.from_conv(conv, ranks=3, n_iter_max=2, rng=0)


def test_from_conv_rank_cap_wins_over_rtol() -> None:
    torch.manual_seed(15)
    conv = nn.Conv2d(4, 6, 3, dtype=F64)
    layer = CPConv2d.from_conv(conv, rtol=1e-6, ranks=2, n_iter_max=10, rng=0)
    assert layer.rank == 2
    assert _rel(layer.reconstruct().detach(), conv.weight.detach()) > 1e-6


def test_from_conv_raises_when_rtol_is_out_of_reach_without_a_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At the bound prod(shape) / max(shape) one ALS solve is exact for a generic kernel, so
    # an unreachable rtol needs ALS to fail: pretend every fit has relative error 1.
    import tensornet_torch.layers.cp_conv as cp_conv

    monkeypatch.setattr(cp_conv, "_relative_error", lambda cp, block: 1.0)
    conv = nn.Conv2d(4, 5, 3, dtype=F64)
    with pytest.raises(ValueError, match=r"could not reach rtol=0.5: .* at rank 36 "):
        CPConv2d.from_conv(conv, rtol=0.5, n_iter_max=1, rng=0)
    grouped = nn.Conv2d(4, 6, 1, groups=2, dtype=F64)
    with pytest.raises(ValueError, match=r"rtol=0.5 in group 0: .* at rank 2 "):
        CPConv2d.from_conv(grouped, rtol=0.5, n_iter_max=1, rng=0)


def test_from_conv_reaches_rtol_zero_at_the_rank_bound() -> None:
    # rank 36 = 4 * 3 * 3: the mode-0 least-squares solve of CP-ALS is exact
    torch.manual_seed(16)
    conv = nn.Conv2d(4, 5, 3, dtype=F64)
    layer = CPConv2d.from_conv(conv, rtol=0.0, n_iter_max=2, rng=0)
    assert layer.rank <= cp_rank_bound((5, 4, 3, 3)) == 36
    assert _rel(layer.reconstruct().detach(), conv.weight.detach()) < 1e-12


def test_from_conv_keeps_the_weight_dtype_and_is_reproducible_with_rng() -> None:
    torch.manual_seed(17)
    conv = nn.Conv2d(3, 4, 3)
    a = CPConv2d.from_conv(conv, rtol=0.5, n_iter_max=20, rng=1)
    b = CPConv2d.from_conv(conv, rtol=0.5, n_iter_max=20, rng=1)
    assert a.first.dtype == torch.float32
    assert a.rank == b.rank
    assert torch.equal(a.reconstruct(), b.reconstruct())
    assert _rel(a.reconstruct().detach(), conv.weight.detach()) <= 0.5 + 1e-6


@pytest.mark.cuda
def test_cuda_forward_paths_and_from_conv_stay_on_the_device() -> None:
    torch.manual_seed(18)
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2, device="cuda", dtype=F64)
    layer = CPConv2d.from_conv(conv, rtol=0.5, n_iter_max=20, rng=0)
    assert all(p.device.type == "cuda" for p in layer.parameters())
    x = torch.randn(2, 4, 8, 8, device="cuda", dtype=F64)
    layer.forward_mode = "factorized"
    a = layer(x)
    layer.forward_mode = "dense"
    assert _rel(a, layer(x)) < 1e-12
    assert _rel(layer.reconstruct().detach(), conv.weight.detach()) <= 0.5
    fresh = CPConv2d(4, 6, 3, ranks=3, device="cuda")
    assert fresh.last.device.type == "cuda"


def test_tol_reaches_cp_als() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a loose tol converges quietly
        loose = CPConv2d.from_conv(conv, ranks=4, rng=0, tol=1e-2, n_iter_max=500)
    assert loose.rank == 4
    with pytest.warns(tn.ConvergenceWarning):
        CPConv2d.from_conv(conv, ranks=4, rng=0, tol=1e-14, n_iter_max=3)
    with pytest.raises(ValueError, match="tol"):
        CPConv2d.from_conv(conv, ranks=4, tol=-1.0)
