"""TTConv2d: a TT kernel over [t_1..t_a, kh*kw, s_1..s_b], run as s-cores -> conv -> t-cores."""

from __future__ import annotations

import io
import itertools
import math
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

from tensornet_torch.layers.tt_conv import (  # noqa: E402
    TTConv2d,
    check_tt_ranks,
)

F64 = torch.float64


def _rel(a: Any, b: Any) -> float:
    a, b = a.detach(), b.detach()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def _reference(layer: TTConv2d, x: Any) -> Any:
    """``nn.Conv2d`` of the same geometry holding the reconstructed kernel."""
    conv = nn.Conv2d(**layer.geometry_kwargs(), dtype=x.dtype, device=x.device)
    with torch.no_grad():
        conv.weight.copy_(layer.reconstruct())
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    return conv(x).detach()


def _tensorize(block: Any, modes: tuple[int, ...]) -> Any:
    """A group's kernel (T', S', kh, kw) as the tensor of modes [t.., kh*kw, s..]."""
    return block.permute(0, 2, 3, 1).reshape(modes)


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

MODES = [
    pytest.param({}, id="default-modes"),
    pytest.param({"in_modes": (2, 3), "out_modes": (2, 2, 2)}, id="3-out-modes"),
    pytest.param({"in_modes": (6,), "out_modes": (8,)}, id="one-mode-each"),
]


def _layer(geometry: dict[str, Any], ranks: Any = 3, **kwargs: Any) -> TTConv2d:
    geo = dict(geometry)
    kernel = geo.pop("kernel_size", 3)
    groups = geo.get("groups", 1)
    return TTConv2d(6 * groups, 8 * groups, kernel, **geo, ranks=ranks, **kwargs)


@pytest.mark.parametrize("modes", MODES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("mode", ["factorized", "dense"])
def test_forward_equals_conv2d_with_reconstructed_kernel(
    geometry: dict[str, Any], modes: dict[str, Any], mode: str
) -> None:
    torch.manual_seed(0)
    layer = _layer(geometry, dtype=F64, forward_mode=mode, **modes)
    for x in (
        torch.randn(2, layer.in_channels, 9, 11, dtype=F64),
        torch.randn(1, layer.in_channels, 8, 7, dtype=F64),
    ):
        ref = _reference(layer, x)
        out = layer(x)
        assert out.shape == ref.shape
        assert _rel(out, ref) < 1e-13


@pytest.mark.parametrize("geometry", GEOMETRIES[:4] + GEOMETRIES[10:])
def test_unbatched_input_gives_the_unbatched_conv2d_output(geometry: dict[str, Any]) -> None:
    torch.manual_seed(1)
    layer = _layer(geometry, dtype=F64, forward_mode="factorized")
    x = torch.randn(layer.in_channels, 7, 8, dtype=F64)
    out = layer(x)
    assert out.dim() == 3
    assert _rel(out, _reference(layer, x)) < 1e-13


@st.composite
def _factorization(draw: st.DrawFn, n_modes: int) -> tuple[int, ...]:
    return tuple(draw(st.integers(1, 3)) for _ in range(n_modes))


@given(
    groups=st.integers(1, 2),
    in_modes=st.integers(1, 3).flatmap(_factorization),
    out_modes=st.integers(1, 3).flatmap(_factorization),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from([0, 1, (2, 0), "same"]),
    padding_mode=st.sampled_from(["zeros", "reflect", "circular", "replicate"]),
    bond=st.integers(1, 5),
    bias=st.booleans(),
)
def test_factorized_pipeline_equals_conv2d_for_any_modes_and_geometry(
    groups: int,
    in_modes: tuple[int, ...],
    out_modes: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: Any,
    padding_mode: str,
    bond: int,
    bias: bool,
) -> None:
    assume(padding != "same" or stride == (1, 1))  # nn.Conv2d rejects 'same' with strides
    torch.manual_seed(2)
    d = len(out_modes) + 1 + len(in_modes)
    ranks = [1 + (bond + k) % 4 for k in range(d - 1)]  # uneven bonds, so plans vary
    layer = TTConv2d(
        math.prod(in_modes) * groups,
        math.prod(out_modes) * groups,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bias,
        padding_mode=padding_mode,
        dtype=F64,
        ranks=ranks,
        in_modes=in_modes,
        out_modes=out_modes,
        forward_mode="factorized",
    )
    x = torch.randn(2, layer.in_channels, 7, 6, dtype=F64)
    ref = _reference(layer, x)
    with FlopCounterMode(display=False) as counter:
        out = layer(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, rtol=0, atol=1e-13 * float(ref.abs().max() + 1))
    assert counter.get_total_flops() == 2 * layer.path_macs(2, 7, 6)["factorized"]


def test_float32_paths_agree_to_float32_round_off() -> None:
    torch.manual_seed(3)
    layer = TTConv2d(8, 6, 3, padding=1, stride=2, ranks=4)
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    x = torch.randn(2, 8, 10, 10)
    layer.forward_mode = "factorized"
    a = layer(x)
    layer.forward_mode = "dense"
    b = layer(x)
    assert a.dtype == torch.float32
    assert _rel(a, b) < 1e-5


def test_kernel_is_the_tensor_train_of_the_tensorized_channels() -> None:
    torch.manual_seed(4)
    layer = TTConv2d(
        12, 8, (3, 2), groups=2, ranks=(3, 4, 2), in_modes=(2, 3), out_modes=(4,), dtype=F64
    )
    assert layer.modes == (4, 6, 2, 3)
    w = layer.reconstruct().detach()
    for g in range(2):
        tt = layer.to_tt(g)
        assert tt.shape == layer.modes and tt.ranks == (1, 3, 4, 2, 1)
        dense = tt.to_dense()
        assert _rel(dense, _tensorize(w[4 * g : 4 * g + 4], layer.modes)) < 1e-14
        # C order: spatial index h * kw + w, input channel s_1 * 3 + s_2
        assert torch.allclose(dense[1, 2 * 2 + 1, 1, 2], w[4 * g + 1, 1 * 3 + 2, 2, 1])


def test_default_modes_are_balanced_with_the_small_factor_outside() -> None:
    assert TTConv2d(64, 7, 1, ranks=1).in_modes == (8, 8)
    assert TTConv2d(7, 1, 1, ranks=1).in_modes == (7,)
    assert TTConv2d(1, 7, 1, ranks=1).in_modes == (1,)
    layer = TTConv2d(48, 32, 3, ranks=2)
    assert layer.out_modes == (4, 8)
    assert layer.in_modes == (8, 6)
    assert layer.modes == (4, 8, 9, 8, 6)
    grouped = TTConv2d(24, 12, 1, groups=2, ranks=2)
    assert grouped.in_modes == (4, 3) and grouped.out_modes == (2, 3)


def test_int_ranks_are_clipped_to_the_unfolding_sizes() -> None:
    modes = (2, 4, 9, 4, 2)
    assert check_tt_ranks(100, modes) == (1, 2, 8, 8, 2, 1)
    assert check_tt_ranks(3, modes) == (1, 2, 3, 3, 2, 1)
    assert check_tt_ranks((5, 6, 7, 8), modes) == (1, 5, 6, 7, 8, 1)  # sequences as given
    assert check_tt_ranks((1, 5, 6, 7, 8, 1), modes) == (1, 5, 6, 7, 8, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ranks": 0}, ValueError, "ranks"),
        ({"ranks": 2.0}, TypeError, "ranks"),
        ({"ranks": "3"}, TypeError, "ranks"),
        ({"ranks": True}, TypeError, "ranks"),
        ({"ranks": (2, 2)}, ValueError, "4 bond ranks"),
        ({"ranks": (2, 0, 2, 2)}, ValueError, r"ranks\[1\]"),
        ({"ranks": (2, 2, 2.5, 2)}, TypeError, "ranks"),
        ({"ranks": (2, 2, 2, 2, 2, 2)}, ValueError, "ranks"),
        ({"ranks": 2, "in_modes": (2, 2)}, ValueError, "in_channels / groups = 6"),
        ({"ranks": 2, "out_modes": (3, 3)}, ValueError, "out_channels / groups = 8"),
        ({"ranks": 2, "out_modes": ()}, ValueError, "out_modes"),
        ({"ranks": 2, "in_modes": (6, 1.0)}, TypeError, "in_modes"),
        ({"ranks": 2, "in_modes": 6}, TypeError, "in_modes"),
        ({"ranks": 2, "in_modes": (-2, -3)}, ValueError, "in_modes"),
        ({"ranks": 2, "forward_mode": "fast"}, ValueError, "forward_mode"),
    ],
)
def test_bad_ranks_and_modes_are_rejected(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TTConv2d(6, 8, 3, **kwargs)


def _all_partitions(m: int) -> list[tuple[tuple[int, int], ...]]:
    result = []
    for cuts in itertools.product([False, True], repeat=max(m - 1, 0)):
        blocks, lo = [], 0
        for k, cut in enumerate(cuts):
            if cut:
                blocks.append((lo, k))
                lo = k + 1
        blocks.append((lo, m - 1))
        result.append(tuple(blocks))
    return result


@given(
    in_modes=st.lists(st.integers(2, 4), min_size=1, max_size=4).map(tuple),
    out_modes=st.lists(st.integers(2, 4), min_size=1, max_size=4).map(tuple),
    seed=st.integers(0, 2**16),
)
def test_plans_minimize_the_per_pixel_macs_over_all_block_partitions(
    in_modes: tuple[int, ...], out_modes: tuple[int, ...], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    d = len(out_modes) + 1 + len(in_modes)
    ranks = [int(r) for r in rng.integers(1, 9, size=d - 1)]
    layer = TTConv2d(
        math.prod(in_modes),
        math.prod(out_modes),
        1,
        ranks=ranks,
        in_modes=in_modes,
        out_modes=out_modes,
        device="meta",
    )
    rho, a = layer.ranks, len(out_modes)

    def in_cost(blocks: tuple[tuple[int, int], ...]) -> int:  # blocks of s-core indices 0..b-1
        return sum(
            math.prod(in_modes[: hi + 1]) * rho[a + 2 + hi] * rho[a + 1 + lo] for lo, hi in blocks
        )

    def out_cost(blocks: tuple[tuple[int, int], ...]) -> int:
        return sum(rho[lo] * rho[hi + 1] * math.prod(out_modes[lo:]) for lo, hi in blocks)

    chosen_in = tuple((lo - a - 1, hi - a - 1) for lo, hi in layer.in_plan)
    assert in_cost(chosen_in) == min(in_cost(p) for p in _all_partitions(len(in_modes)))
    assert out_cost(layer.out_plan) == min(out_cost(p) for p in _all_partitions(a))
    # execution order: outer s-blocks first, inner t-blocks first
    assert layer.in_plan[0][1] == d - 1 and layer.in_plan[-1][0] == a + 1
    assert layer.out_plan[0][1] == a - 1 and layer.out_plan[-1][0] == 0
    assert layer.factorized_macs(1, 1) == in_cost(chosen_in) + rho[a] * rho[a + 1] + out_cost(
        layer.out_plan
    )


def test_plan_merges_full_bonds_and_streams_through_small_ones() -> None:
    full = TTConv2d(64, 64, 3, ranks=8)  # in_modes (8, 8), r_{d-1} = 8 = s_2: nothing shrinks
    assert full.in_plan == ((3, 4),) and full.out_plan == ((0, 1),)
    # r_{a+1} = 16, r_{d-1} = 2: absorbing s_2 first (64 * 2) then s_1 (8 * 2 * 16) < 64 * 16
    thin = TTConv2d(64, 64, 3, ranks=(2, 16, 16, 2))
    assert thin.in_plan == ((4, 4), (3, 3)) and thin.out_plan == ((1, 1), (0, 0))
    x = torch.randn(1, 64, 5, 5)
    for layer in (full, thin):
        layer.forward_mode = "factorized"
        assert _rel(layer(x), _reference(layer, x)) < 1e-5


def test_factorized_and_reconstruct_macs_match_a_hand_count() -> None:
    # modes (t_1, t_2, kh kw, s_1, s_2) = (2, 3, 6, 2, 2), bonds (1, 2, 3, 4, 2, 1), groups 2
    layer = TTConv2d(
        8, 12, (3, 2), stride=2, padding=1, groups=2, ranks=(2, 3, 4, 2), in_modes=(2, 2)
    )
    assert layer.out_modes == (2, 3) and layer.modes == (2, 3, 6, 2, 2)
    # s-side: s_2 alone costs 4 * 1 * 2 = 8 per pixel, then s_1: 2 * 2 * 4 = 16 -> 24;
    # merged: 4 * 1 * 4 = 16 -> merged wins. t-side: t_2 alone 3 * 3 * 2 = 18, then
    # t_1: 1 * 2 * 6 = 12 -> 30; merged 1 * 3 * 6 = 18 -> merged wins.
    assert layer.in_plan == ((3, 4),) and layer.out_plan == ((0, 1),)
    # 7 x 9 input: H' = (7 + 2 - 3) // 2 + 1 = 4, W' = (9 + 2 - 2) // 2 + 1 = 5
    per_group = 7 * 9 * 16 + 4 * 5 * (3 * 4 * 6) + 4 * 5 * 18
    assert layer.factorized_macs(7, 9) == 2 * per_group
    # merging (s_1, s_2): 4 * 2 * 2 * 2 * 1 = 32; (t_1, t_2): 1 * 2 * 2 * 3 * 3 = 36
    assert layer.precontract_macs() == 2 * (32 + 36)
    assert layer.path_macs(5, 7, 9)["factorized"] == 5 * 2 * per_group + 2 * 68
    # left-to-right chain: 2*2*3*3 + 6*3*6*4 + 36*4*2*2 + 72*2*2*1
    assert layer.reconstruct_macs() == 2 * (36 + 432 + 576 + 288)
    with FlopCounterMode(display=False) as counter:
        layer.reconstruct()
    assert counter.get_total_flops() == 2 * layer.reconstruct_macs()


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_factorized_macs_equal_the_counted_macs(geometry: dict[str, Any]) -> None:
    layer = _layer(geometry, ranks=(2, 3, 4, 2), forward_mode="factorized")
    x = torch.randn(3, layer.in_channels, 9, 11)
    with FlopCounterMode(display=False) as counter:
        layer(x)
    assert counter.get_total_flops() == 2 * layer.path_macs(3, 9, 11)["factorized"]


def test_auto_path_takes_the_cheaper_one() -> None:
    layer = TTConv2d(64, 64, 3, padding=1, ranks=2)
    assert layer.choose_path(4, 16, 16) == "factorized"
    big = TTConv2d(4, 4, 3, padding=1, ranks=(2, 36, 36, 2), in_modes=(2, 2))
    assert big.choose_path(4, 16, 16) == "dense"
    x = torch.randn(4, 4, 16, 16)
    assert _rel(big(x), _reference(big, x)) < 1e-5


def test_to_conv_is_exact() -> None:
    torch.manual_seed(5)
    layer = TTConv2d(6, 4, (3, 1), stride=(2, 1), padding=(1, 0), groups=2, ranks=2, dtype=F64)
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
    layer = TTConv2d(12, 8, 3, padding=1, groups=2, ranks=(2, 3, 3, 2))
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(state) == {f"cores.{k}" for k in range(5)} | {"bias"}
    fresh = TTConv2d(12, 8, 3, padding=1, groups=2, ranks=(2, 3, 3, 2))
    fresh.load_state_dict(state)
    x = torch.randn(1, 12, 6, 6)
    assert torch.equal(fresh(x), layer(x))


def test_reset_parameters_matches_conv2d_kernel_variance_on_average() -> None:
    torch.manual_seed(7)
    layer = TTConv2d(16, 32, 3, ranks=4)
    ratios = []
    for _ in range(40):
        layer.reset_parameters()
        ratios.append(float(layer.reconstruct().detach().var()) / layer.kernel_variance())
    assert abs(np.mean(ratios) - 1.0) < 0.2
    bound = 1 / np.sqrt(16 * 9)
    assert layer.bias is not None and float(layer.bias.abs().max()) <= bound


@pytest.mark.parametrize("mode", ["factorized", "dense"])
def test_gradients_reach_every_core_and_the_bias(mode: str) -> None:
    torch.manual_seed(8)
    layer = TTConv2d(12, 8, 3, padding=1, groups=2, ranks=2, forward_mode=mode)
    layer(torch.randn(2, 12, 5, 5)).square().sum().backward()
    names = [name for name, _ in layer.named_parameters()]
    assert len(names) == len(layer.modes) + 1
    for name, p in layer.named_parameters():
        assert p.grad is not None, name
        assert float(p.grad.abs().sum()) > 0, name


def test_device_and_dtype_are_honoured() -> None:
    layer = TTConv2d(6, 8, 3, ranks=2, device="cpu", dtype=F64)
    assert all(p.dtype == F64 and p.device.type == "cpu" for p in layer.parameters())
    meta = TTConv2d(6, 8, 3, ranks=2, device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert layer.to_conv().weight.dtype == F64


def test_parameter_shapes_and_repr() -> None:
    layer = TTConv2d(12, 8, (3, 2), groups=2, bias=False, ranks=(2, 3, 3), in_modes=(6,))
    assert layer.modes == (2, 2, 6, 6)
    assert [tuple(c.shape) for c in layer.cores] == [
        (2, 1, 2, 2),
        (2, 2, 2, 3),
        (2, 3, 6, 3),
        (2, 3, 6, 1),
    ]
    assert layer.bias is None
    assert layer.num_params == 2 * (1 * 2 * 2 + 2 * 2 * 3 + 3 * 6 * 3 + 3 * 6 * 1)
    text = repr(layer)
    assert "ranks=(1, 2, 3, 3, 1)" in text and "in_modes=(6,)" in text and "groups=2" in text


def test_bad_input_and_from_conv_arguments_are_rejected() -> None:
    layer = TTConv2d(6, 8, 3, ranks=2)
    with pytest.raises(ValueError, match="6 input channels"):
        layer(torch.randn(1, 5, 8, 8))
    conv = nn.Conv2d(6, 8, 3)
    with pytest.raises(ValueError, match="rtol, ranks or both"):
        TTConv2d.from_conv(conv)
    with pytest.raises(ValueError, match="rtol"):
        TTConv2d.from_conv(conv, rtol=-0.1)
    with pytest.raises(TypeError, match="rtol"):
        TTConv2d.from_conv(conv, rtol="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ranks"):
        TTConv2d.from_conv(conv, ranks=(2, 2))
    with pytest.raises(ValueError, match="in_modes"):
        TTConv2d.from_conv(conv, rtol=0.1, in_modes=(4,))
    with pytest.raises(TypeError, match="conv"):
        TTConv2d.from_conv(nn.Linear(4, 6))
    with pytest.raises(ValueError, match="group"):
        layer.to_tt(1)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("rtol", [0.5, 0.2, 0.05])
def test_from_conv_with_rtol_bounds_the_relative_kernel_error(groups: int, rtol: float) -> None:
    torch.manual_seed(9)
    conv = nn.Conv2d(16 * groups, 8 * groups, 3, padding=1, groups=groups, dtype=F64)
    layer = TTConv2d.from_conv(conv, rtol=rtol)
    w = conv.weight.detach()
    assert _rel(layer.reconstruct(), w) <= rtol
    assert layer.groups == groups and layer.padding == (1, 1)
    assert layer.modes == (2, 4, 9, 4, 4)
    assert layer.bias is not None and conv.bias is not None
    assert torch.equal(layer.bias.detach(), conv.bias.detach())
    x = torch.randn(2, 16 * groups, 6, 6, dtype=F64)
    assert _rel(layer(x), conv(x)) < 2 * rtol
    layer.forward_mode = "factorized"
    assert _rel(layer(x), _reference(layer, x)) < 1e-13


def test_from_conv_matches_tt_svd_of_each_group_and_pads_ranks_with_zeros() -> None:
    conv = nn.Conv2d(8, 8, 3, groups=2, bias=False, dtype=F64)
    modes = (2, 2, 9, 2, 2)
    low = torch.as_tensor(tn.random_tt(modes, 1, rng=0).to_dense())
    with torch.no_grad():
        conv.weight[:4].copy_(low.reshape(4, 3, 3, 4).permute(0, 3, 1, 2))
    layer = TTConv2d.from_conv(conv, rtol=1e-10)
    assert layer.bias is None and layer.modes == modes
    w = conv.weight.detach()
    expected_ranks = []
    for g in range(2):
        block = _tensorize(w[4 * g : 4 * g + 4], modes)
        expected = tn.tt_svd(block, rtol=1e-10, method="exact")
        expected_ranks.append(expected.ranks)
        tt = layer.to_tt(g)
        assert _rel(tt.to_dense(), block) <= 1e-10
        assert _rel(tt.to_dense(), expected.to_dense()) <= 1e-12
    assert expected_ranks[0] == (1, 1, 1, 1, 1, 1)
    assert layer.ranks == tuple(max(r) for r in zip(*expected_ranks)) != expected_ranks[0]
    assert float(layer.to_tt(0).cores[1][:, :, 1:].abs().max()) == 0.0  # padded bonds


def test_from_conv_rank_cap_wins_over_rtol() -> None:
    torch.manual_seed(10)
    conv = nn.Conv2d(16, 16, 3, dtype=F64)
    layer = TTConv2d.from_conv(conv, rtol=1e-8, ranks=3)
    assert max(layer.ranks) <= 3
    assert _rel(layer.reconstruct(), conv.weight.detach()) > 1e-8
    capped = TTConv2d.from_conv(conv, ranks=(2, 5, 5, 2))
    assert capped.ranks == (1, 2, 5, 5, 2, 1)
    exact = TTConv2d.from_conv(conv, rtol=0.0)
    assert _rel(exact.reconstruct(), conv.weight.detach()) < 1e-13


def test_from_conv_with_custom_modes_and_float32() -> None:
    torch.manual_seed(11)
    conv = nn.Conv2d(12, 8, (1, 3), stride=(1, 2), padding=(0, 1))
    layer = TTConv2d.from_conv(conv, rtol=0.3, in_modes=(2, 2, 3), out_modes=(8,))
    assert layer.modes == (8, 3, 2, 2, 3)
    assert layer.cores[0].dtype == torch.float32
    assert _rel(layer.reconstruct(), conv.weight.detach()) <= 0.3 + 1e-6
    x = torch.randn(2, 12, 5, 9)
    layer.forward_mode = "factorized"
    a = layer(x)
    layer.forward_mode = "dense"
    assert _rel(a, layer(x)) < 1e-5


@pytest.mark.cuda
def test_cuda_forward_paths_and_from_conv_stay_on_the_device() -> None:
    torch.manual_seed(12)
    conv = nn.Conv2d(8, 12, 3, padding=1, groups=2, device="cuda", dtype=F64)
    layer = TTConv2d.from_conv(conv, rtol=0.3)
    assert all(p.device.type == "cuda" for p in layer.parameters())
    x = torch.randn(2, 8, 8, 8, device="cuda", dtype=F64)
    layer.forward_mode = "factorized"
    a = layer(x)
    layer.forward_mode = "dense"
    assert _rel(a, layer(x)) < 1e-12
    assert _rel(layer.reconstruct(), conv.weight.detach()) <= 0.3
    fresh = TTConv2d(8, 12, 3, ranks=3, device="cuda")
    assert fresh.cores[0].device.type == "cuda"
