"""STTuckerConv2d and STTConv2d: the FactorizedConv2d contract and the STP structure."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensornet as tn

torch = pytest.importorskip("torch")
F = torch.nn.functional

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tensornet_torch.layers._base import FactorizedConv2d  # noqa: E402
from tensornet_torch.layers.stp_conv import (  # noqa: E402
    STTConv2d,
    STTuckerConv2d,
    kernel_modes,
    tensorize_kernel,
)
from tensornet_torch.layers.tucker_conv import TuckerConv2d  # noqa: E402

Factory = Callable[..., FactorizedConv2d]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add overhead (and contend on shared machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_sttucker(in_ch: int = 8, out_ch: int = 12, ks: Any = 3, **kw: Any) -> STTuckerConv2d:
    return STTuckerConv2d(in_ch, out_ch, ks, ranks=(4, 4), k=2, **kw)


def make_stt(in_ch: int = 8, out_ch: int = 12, ks: Any = 3, **kw: Any) -> STTConv2d:
    return STTConv2d(in_ch, out_ch, ks, ranks=4, k=2, **kw)


FACTORIES = {"sttucker": make_sttucker, "stt": make_stt}

GEOMETRIES: dict[str, dict[str, Any]] = {
    "plain": {"ks": 3},
    "stride2-pad1": {"ks": 3, "stride": 2, "padding": 1},
    "nonsquare-tuple-pad": {"ks": (3, 2), "padding": (1, 2), "stride": (2, 1)},
    "same-even-kernel": {"ks": (2, 2), "padding": "same"},
    "valid-dilated": {"ks": 3, "padding": "valid", "dilation": 2},
    "same-dilated": {"ks": 3, "padding": "same", "dilation": (2, 1)},
    "groups": {"ks": 3, "padding": 1, "groups": 2},
    "reflect": {"ks": 3, "padding": 1, "padding_mode": "reflect"},
    "circular-stride": {"ks": (3, 2), "padding": (1, 1), "padding_mode": "circular", "stride": 2},
    "pointwise": {"ks": 1},
    "no-bias": {"ks": 3, "padding": 1, "bias": False},
}


def reference(layer: FactorizedConv2d, x: Any) -> Any:
    """``F.conv2d`` with the reconstructed kernel, padding handled as nn.Conv2d does."""
    weight = layer.reconstruct()
    padding: Any = layer.padding
    if layer.padding_mode != "zeros":
        x = F.pad(x, layer._pad4, mode=layer.padding_mode)
        padding = 0
    return F.conv2d(x, weight, layer.bias, layer.stride, padding, layer.dilation, layer.groups)


def rel_err(a: Any, b: Any) -> float:
    a, b = a.detach(), b.detach()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def count_macs(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops()) // 2


# -- forward contract -----------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("geometry", list(GEOMETRIES), ids=list(GEOMETRIES))
@pytest.mark.parametrize("name", list(FACTORIES))
def test_both_paths_equal_conv2d_with_reconstructed_kernel(name: str, geometry: str) -> None:
    torch.manual_seed(0)
    layer = FACTORIES[name](**GEOMETRIES[geometry], dtype=torch.float64)
    x = torch.randn(3, 8, 9, 10, dtype=torch.float64)
    expected = reference(layer, x)
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        out = layer(x)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert layer.to_conv()(x).shape == expected.shape


@st.composite
def stt_layers(draw: st.DrawFn) -> STTConv2d:
    """Small STT layers: random modes, k, ranks (multiples of k) and geometry."""
    k = draw(st.sampled_from([1, 2, 3]))
    out_modes = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    in_modes = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    d = len(out_modes) + 1 + len(in_modes)
    ranks = tuple(k * draw(st.integers(1, 2)) for _ in range(d - 1))
    groups = draw(st.sampled_from([1, 2]))
    return STTConv2d(
        groups * math.prod(in_modes),
        groups * math.prod(out_modes),
        (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        stride=draw(st.integers(1, 2)),
        padding=draw(st.integers(0, 1)),
        dilation=draw(st.integers(1, 2)),
        groups=groups,
        ranks=ranks,
        k=k,
        out_modes=out_modes,
        in_modes=in_modes,
        dtype=torch.float64,
    )


@given(layer=stt_layers(), seed=st.integers(0, 2**16))
def test_stt_factorized_path_equals_conv2d_for_any_modes_ranks_and_k(
    layer: STTConv2d, seed: int
) -> None:
    torch.manual_seed(seed)
    layer.reset_parameters()
    x = torch.randn(2, layer.in_channels, 7, 6, dtype=torch.float64)
    layer.forward_mode = "factorized"
    torch.testing.assert_close(layer(x), reference(layer, x), rtol=1e-10, atol=1e-12)
    assert layer.num_params - layer.out_channels == layer.groups * tn.stt_num_params(
        layer.modes, layer.ranks, layer.k
    )


@pytest.mark.parametrize("name", list(FACTORIES))
def test_batch_of_one_and_unbatched_input_match_the_batched_result(name: str) -> None:
    torch.manual_seed(1)
    layer = FACTORIES[name](padding=1, stride=2, dtype=torch.float64)
    x = torch.randn(2, 8, 7, 6, dtype=torch.float64)
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        full = layer(x)
        torch.testing.assert_close(layer(x[:1]), full[:1], rtol=1e-12, atol=1e-12)
        unbatched = layer(x[1])
        assert unbatched.shape == full.shape[1:]
        torch.testing.assert_close(unbatched, full[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_channels_last_and_strided_inputs_are_read_correctly(name: str) -> None:
    torch.manual_seed(20)
    layer = FACTORIES[name](padding=1, groups=2, dtype=torch.float64, forward_mode="factorized")
    x = torch.randn(2, 8, 10, 10, dtype=torch.float64).to(memory_format=torch.channels_last)
    x = x[:, :, ::2, 1:]
    torch.testing.assert_close(layer(x), reference(layer, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_empty_batch_gives_an_empty_output_like_conv2d(name: str) -> None:
    layer = FACTORIES[name](padding=1, groups=2)
    x = torch.randn(0, 8, 5, 5)
    expected = layer.to_conv()(x)
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        assert layer(x).shape == expected.shape == (0, 12, 5, 5)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_float32_paths_agree_and_keep_dtype(name: str) -> None:
    torch.manual_seed(2)
    layer = FACTORIES[name](padding=1)
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    x = torch.randn(2, 8, 6, 6)
    expected = reference(layer, x)
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        out = layer(x)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_device_and_dtype_arguments_place_every_parameter(name: str) -> None:
    layer = FACTORIES[name](device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in layer.parameters())
    meta = FACTORIES[name](device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())


@pytest.mark.parametrize("name", list(FACTORIES))
def test_gradients_reach_every_parameter_on_both_paths(name: str) -> None:
    torch.manual_seed(3)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    for mode in ("factorized", "dense"):
        layer = FACTORIES[name](padding=1, dtype=torch.float64, forward_mode=mode)
        layer(x).square().sum().backward()
        for pname, p in layer.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list(FACTORIES))
def test_gradients_of_both_paths_agree(name: str) -> None:
    torch.manual_seed(4)
    layer = FACTORIES[name](padding=1, groups=2, dtype=torch.float64)
    x = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    grads = []
    for mode in ("factorized", "dense"):
        layer.zero_grad()
        layer.forward_mode = mode
        layer(x).sin().sum().backward()
        grads.append([torch.clone(p.grad) for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# -- cost model -----------------------------------------------------------------------------------
COST_GEOMETRIES = [
    {"ks": 3, "padding": 1},
    {"ks": 3, "padding": 1, "padding_mode": "reflect"},
    {"ks": (2, 3), "stride": 2, "padding": (0, 1), "groups": 2},
    {"ks": (2, 2), "padding": "same", "groups": 2},
    {"ks": (3, 1), "dilation": 2},
]


@pytest.mark.parametrize("geometry", COST_GEOMETRIES)
def test_sttucker_macs_match_the_operations_torch_runs(geometry: dict[str, Any]) -> None:
    geometry = dict(geometry)
    layer = STTuckerConv2d(8, 12, geometry.pop("ks"), ranks=(4, 4), k=2, **geometry)
    x = torch.randn(1, 8, 10, 11)
    layer.forward_mode = "factorized"
    assert count_macs(lambda: layer(x)) == layer.factorized_macs(10, 11)
    assert count_macs(layer.reconstruct) == layer.reconstruct_macs()


@pytest.mark.parametrize("geometry", COST_GEOMETRIES)
def test_stt_macs_match_the_operations_torch_runs(geometry: dict[str, Any]) -> None:
    geometry = dict(geometry)
    g = geometry.get("groups", 1)
    ks = geometry.pop("ks")
    layer = STTConv2d(
        16 * g, 16 * g, ks, ranks=4, k=2, out_modes=(2, 2, 4), in_modes=(4, 2, 2), **geometry
    )
    x = torch.randn(1, 16 * g, 10, 11)
    layer.forward_mode = "factorized"
    assert count_macs(lambda: layer(x)) == layer.factorized_macs(10, 11)
    assert count_macs(layer.reconstruct) == layer.reconstruct_macs()


def test_sttucker_macs_by_hand_are_k_times_fewer_in_the_pointwise_stages() -> None:
    layer = STTuckerConv2d(8, 12, 3, padding=1, ranks=(4, 4), k=2)
    # H W S r_in / k + H W r_out r_in 9 + H W T r_out / k at H = W = 10
    assert layer.factorized_macs(10, 10) == 100 * 8 * 4 // 2 + 100 * 4 * 4 * 9 + 100 * 12 * 4 // 2
    tucker = TuckerConv2d(8, 12, 3, padding=1, ranks=(4, 4))
    pointwise = tucker.factorized_macs(10, 10) - 100 * 4 * 4 * 9
    assert layer.factorized_macs(10, 10) - 100 * 4 * 4 * 9 == pointwise // 2
    # reconstruct: the cheaper order, in-factor first: (r_out S r_in + T S r_out) 9 / k
    assert layer.reconstruct_macs() == (4 * 8 * 4 + 12 * 8 * 4) * 9 // 2
    assert layer.num_params == 2 * 4 + 4 * 4 * 9 + 6 * 2 + 12
    assert layer.dense_num_params == 12 * 8 * 9 + 12


def test_stt_macs_by_hand() -> None:
    layer = STTConv2d(8, 12, 3, padding=1, ranks=(4, 4, 6, 4), k=2)
    assert layer.modes == (3, 4, 9, 4, 2)
    p = 10 * 10
    expected = (
        p * 8 * 4  # last core (full), s_2 = 2 into R_4 = 4
        + p * 4 * 6 * 4 // 2  # reduced input core s_1 = 4: P (s_1) R_3 R_4 / k
        + p * 4 * 6 * 9 // 2  # spatial core: P' R_2 R_3 kh kw / k
        + p * 4 * 4 * 4 // 2  # reduced output core t_2 = 4: P' (t_2) R_1 R_2 / k
        + p * 12 * 4  # first core (full): P' T R_1
    )
    assert layer.factorized_macs(10, 10) == expected
    stored = 1 * 3 * 4 + 2 * 4 * 2 + 2 * 9 * 3 + 3 * 4 * 2 + 4 * 2 * 1
    assert layer.num_params == stored + 12
    assert layer.num_params - 12 == tn.stt_num_params(layer.modes, layer.ranks, 2)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_auto_path_takes_the_cheaper_path(name: str) -> None:
    layer = FACTORIES[name](padding=1)
    for batch, size in ((1, 2), (64, 32)):
        seconds = layer.estimated_seconds(batch, size, size)
        expected = min(type(layer).PATHS, key=seconds.__getitem__)
        assert layer.choose_path(batch, size, size) == expected


# -- conversion, serialization, init --------------------------------------------------------------
@pytest.mark.parametrize("name", list(FACTORIES))
def test_to_conv_holds_exactly_the_reconstructed_kernel_and_bias(name: str) -> None:
    torch.manual_seed(5)
    layer = FACTORIES[name](stride=2, padding=(1, 0), groups=2, dtype=torch.float64)
    conv = layer.to_conv()
    assert isinstance(conv, torch.nn.Conv2d)
    assert torch.equal(conv.weight, layer.reconstruct())
    assert torch.equal(conv.bias, layer.bias)
    assert (conv.stride, conv.padding, conv.groups) == ((2, 2), (1, 0), 2)
    assert conv.weight.dtype == torch.float64
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(conv(x), layer(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_state_dict_round_trip_through_weights_only_load(name: str) -> None:
    torch.manual_seed(6)
    layer = FACTORIES[name](padding=1, groups=2)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    fresh = FACTORIES[name](padding=1, groups=2)
    fresh.load_state_dict(state)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: STTuckerConv2d(32, 32, 3, ranks=(8, 8), k=2),
        lambda: STTuckerConv2d(16, 24, (3, 1), ranks=(12, 8), k=4, groups=2),
        lambda: STTConv2d(32, 32, 3, ranks=8, k=2),
        lambda: STTConv2d(16, 32, 3, ranks=(4, 8, 8, 8), k=4),
    ],
    ids=["sttucker", "sttucker-groups", "stt", "stt-k4"],
)
def test_reset_parameters_matches_conv2d_kernel_variance_on_average(factory: Callable) -> None:
    ratios = []
    for seed in range(24):
        torch.manual_seed(seed)
        layer = factory()
        w = layer.reconstruct().detach()
        ratios.append(float(w.square().mean()) / layer.kernel_variance())
        bound = 1.0 / math.sqrt(layer.in_channels // layer.groups * math.prod(layer.kernel_size))
        assert layer.bias.abs().max() <= bound
    assert 0.8 <= float(np.mean(ratios)) <= 1.2
    # the same target as nn.Conv2d's kaiming-uniform(a = sqrt(5)) default
    conv = torch.nn.Conv2d(
        layer.in_channels, layer.out_channels, layer.kernel_size, groups=layer.groups
    )
    assert layer.kernel_variance() == pytest.approx(float(conv.weight.detach().var()), rel=0.2)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_extra_repr_names_geometry_ranks_and_k(name: str) -> None:
    layer = FACTORIES[name](padding=1, groups=2, bias=False, forward_mode="dense")
    text = repr(layer)
    for part in ("8, 12", "padding=(1, 1)", "groups=2", "bias=False", "k=2", "ranks=("):
        assert part in text, text
    assert "forward_mode='dense'" in text
    if name == "stt":
        assert "out_modes=(2, 3)" in text and "in_modes=(2, 2)" in text


# -- STTucker structure and from_conv -------------------------------------------------------------
def test_sttucker_with_k1_is_a_tucker_layer_with_the_same_parameters() -> None:
    torch.manual_seed(7)
    tucker = TuckerConv2d(8, 12, 3, padding=1, groups=2, ranks=(4, 2), dtype=torch.float64)
    st = STTuckerConv2d(8, 12, 3, padding=1, groups=2, ranks=(4, 2), k=1, dtype=torch.float64)
    assert {n: p.shape for n, p in st.named_parameters()} == {
        n: p.shape for n, p in tucker.named_parameters()
    }
    st.load_state_dict(tucker.state_dict())
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(st.reconstruct(), tucker.reconstruct(), rtol=1e-13, atol=1e-15)
    st.forward_mode = tucker.forward_mode = "factorized"
    torch.testing.assert_close(st(x), tucker(x), rtol=1e-12, atol=1e-12)
    assert st.factorized_macs(6, 6) == tucker.factorized_macs(6, 6)


def test_sttucker_kernel_is_the_sttucker_tensor_of_its_factors() -> None:
    torch.manual_seed(8)
    layer = STTuckerConv2d(8, 12, (3, 2), groups=2, ranks=(4, 2), k=2, dtype=torch.float64)
    kernel = layer.reconstruct()
    for g in range(2):
        t = layer.decomposition(g)
        assert t.k == 2 and t.ranks == (4, 2, 3, 2) and t.modes == (0, 1)
        u_out, u_in = t.factors[0], t.factors[1]
        assert u_out is not None and u_in is not None
        assert u_out.shape == (3, 2) and u_in.shape == (2, 1)
        torch.testing.assert_close(t.to_dense(), kernel[6 * g : 6 * (g + 1)])
    with pytest.raises(ValueError, match="group"):
        layer.decomposition(2)


@pytest.mark.parametrize("k", [1, 2])
def test_sttucker_from_conv_recovers_a_kernel_of_that_structure(k: int) -> None:
    torch.manual_seed(9)
    source = STTuckerConv2d(8, 12, 3, padding=1, groups=2, ranks=(4, 2), k=k, dtype=torch.float64)
    conv = source.to_conv()
    layer = STTuckerConv2d.from_conv(conv, ranks=(4, 2), k=k, rng=0)
    assert layer.ranks == (4, 2) and layer.k == k and layer.groups == 2
    assert rel_err(layer.reconstruct(), conv.weight) < 1e-10
    assert torch.equal(layer.bias, conv.bias)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("rtol", [0.2, 0.5, 0.8])
def test_sttucker_from_conv_meets_rtol_with_ranks_multiple_of_k(rtol: float) -> None:
    torch.manual_seed(10)
    conv = torch.nn.Conv2d(16, 24, 3, groups=2, dtype=torch.float64)
    layer = STTuckerConv2d.from_conv(conv, rtol=rtol, k=2, rng=0)
    assert all(r % 2 == 0 for r in layer.ranks)
    assert rel_err(layer.reconstruct(), conv.weight) <= rtol * (1 + 1e-9)
    capped = STTuckerConv2d.from_conv(conv, rtol=rtol, ranks=(4, 2), k=2, rng=0)
    assert capped.ranks[0] <= 4 and capped.ranks[1] <= 2


def test_sttucker_from_conv_pads_groups_to_common_ranks() -> None:
    torch.manual_seed(11)
    conv = torch.nn.Conv2d(8, 8, 3, groups=2, bias=False, dtype=torch.float64)
    with torch.no_grad():  # group 0: STTucker ranks (2, 2) with k = 2; group 1 generic
        conv.weight[:4] = tensor_of_k2_structure(conv.weight[:4])
    layer = STTuckerConv2d.from_conv(conv, rtol=1e-8, k=2, rng=0)
    assert layer.ranks == (4, 4) and layer.bias is None
    assert rel_err(layer.reconstruct(), conv.weight) <= 1e-8
    assert torch.count_nonzero(layer.last[:2, 1:]) == 0  # group 0 padded with zero columns


def tensor_of_k2_structure(block: Any) -> Any:
    """A (4, 4, 3, 3) kernel of STTucker ranks (2, 2) with k = 2 (reduced ranks 1)."""
    gen = torch.Generator().manual_seed(0)
    u_out = torch.randn(2, 1, generator=gen, dtype=block.dtype)
    u_in = torch.randn(2, 1, generator=gen, dtype=block.dtype)
    core = torch.randn(2, 2, 3, 3, generator=gen, dtype=block.dtype)
    return tn.STTuckerTensor(core, [u_out, u_in, None, None], k=2).to_dense()


def test_sttucker_k1_from_conv_is_at_least_as_accurate_as_tucker_hosvd() -> None:
    torch.manual_seed(12)
    conv = torch.nn.Conv2d(16, 24, 3, groups=2, dtype=torch.float64)
    for ranks in ((4, 4), (6, 2)):
        st = STTuckerConv2d.from_conv(conv, ranks=ranks, k=1, rng=0)
        tucker = TuckerConv2d.from_conv(conv, ranks=ranks)
        e_st = rel_err(st.reconstruct(), conv.weight)
        e_tucker = rel_err(tucker.reconstruct(), conv.weight)
        assert st.ranks == tucker.ranks == ranks
        assert e_st <= e_tucker * (1 + 1e-9)  # HOOI refines the HOSVD start
        assert e_st >= 0.9 * e_tucker  # and both are the Tucker-2 of that kernel


def test_sttucker_from_conv_keeps_float32_and_caps_ranks_at_the_channels() -> None:
    torch.manual_seed(13)
    conv = torch.nn.Conv2d(4, 8, 3)
    layer = STTuckerConv2d.from_conv(conv, ranks=(16, 16), k=2, rng=0)
    assert layer.ranks == (8, 4) and layer.core.dtype == torch.float32
    assert rel_err(layer.reconstruct(), conv.weight) < 1e-5


# -- STT structure and from_conv ------------------------------------------------------------------
def test_stt_kernel_is_the_stt_of_its_cores_and_the_tr_it_equals() -> None:
    torch.manual_seed(14)
    layer = STTConv2d(8, 12, (3, 2), groups=2, ranks=(2, 4, 4, 2), k=2, dtype=torch.float64)
    kernel = layer.reconstruct()
    for g in range(2):
        t = layer.decomposition(g)
        block = tensorize_kernel(kernel[6 * g : 6 * (g + 1)], layer.modes)
        assert t.shape == layer.modes and t.ranks == layer.ranks and t.k == 2
        torch.testing.assert_close(t.to_dense(), block)
        ring = t.to_tr()  # the documented forward path: a TR of ranks (k, R/k, ..., k)
        assert ring.ranks == (2, 1, 2, 2, 1, 2)
        torch.testing.assert_close(ring.to_dense(), block)
        assert ring.num_params == t.num_params


def test_stt_layout_matches_the_admm_tt_special_tensorization() -> None:
    kernel = torch.arange(6 * 4 * 3 * 2, dtype=torch.float64).reshape(6, 4, 3, 2)
    _, _, modes = kernel_modes(6, 4, (3, 2), (2, 3), (4,))
    x = tensorize_kernel(kernel, modes)
    assert modes == (2, 3, 6, 4)
    # W[t, s, h, w] sits at ((t_1, t_2), h kw + w, s)
    assert x[1, 2, 2 * 2 + 1, 3] == kernel[1 * 3 + 2, 3, 2, 1]
    assert kernel_modes(64, 32, (3, 3)) == ((8, 8), (8, 4), (8, 8, 9, 8, 4))
    assert kernel_modes(48, 7, (1, 1))[:2] == ((6, 8), (7,))


def test_stt_with_k1_is_a_tt_and_fits_no_worse_than_tt_svd() -> None:
    torch.manual_seed(15)
    conv = torch.nn.Conv2d(8, 8, 3, dtype=torch.float64)
    layer = STTConv2d.from_conv(conv, ranks=4, k=1, rng=0, n_iter_max=5, tol=1e-3)
    tt = layer.decomposition().to_tt()
    assert layer.modes == (2, 4, 9, 4, 2) and tt.ranks == layer.ranks == (1, 4, 4, 4, 4, 1)
    block = tensorize_kernel(conv.weight.detach(), layer.modes)
    svd = tn.tt_svd(block, max_rank=list(layer.ranks[1:-1]))
    e_svd = rel_err(svd.to_dense(), block)
    assert rel_err(layer.reconstruct(), conv.weight) <= e_svd * (1 + 1e-9)


@pytest.mark.parametrize("groups", [1, 2])
def test_stt_from_conv_recovers_a_kernel_of_that_structure(groups: int) -> None:
    torch.manual_seed(16)
    c = 4 * groups
    source = STTConv2d(c, c, 3, padding=1, groups=groups, ranks=2, k=2, dtype=torch.float64)
    conv = source.to_conv()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.ConvergenceWarning)
        layer = STTConv2d.from_conv(conv, ranks=2, k=2, rng=0, n_iter_max=60, tol=1e-12)
    assert layer.ranks == source.ranks and layer.modes == source.modes
    assert rel_err(layer.reconstruct(), conv.weight) < 1e-6
    assert torch.equal(layer.bias, conv.bias)


def test_stt_from_conv_keeps_dtype_and_reports_the_fit() -> None:
    torch.manual_seed(17)
    conv = torch.nn.Conv2d(8, 8, 3)
    with pytest.warns(tn.ConvergenceWarning):
        layer = STTConv2d.from_conv(conv, ranks=4, k=2, rng=0, n_iter_max=2, tol=0.0)
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    assert rel_err(layer.reconstruct(), conv.weight) < 1.0
    assert layer.num_params < conv.weight.numel() + 8


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [STTuckerConv2d, STTConv2d])
def test_bad_k_is_rejected_with_a_message_naming_it(cls: type) -> None:
    ranks: Any = (4, 4) if cls is STTuckerConv2d else 4
    for bad, error in ((0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="k"):
            cls(8, 12, 3, ranks=ranks, k=bad)
    with pytest.raises(ValueError, match="k = 3 must divide"):
        cls(8, 12, 3, ranks=(6, 6) if cls is STTuckerConv2d else 4, k=3)


def test_sttucker_k_must_divide_channels_per_group_and_ranks() -> None:
    with pytest.raises(ValueError, match="in_channels / groups"):
        STTuckerConv2d(6, 8, 3, ranks=(4, 4), k=4)
    with pytest.raises(ValueError, match="out_channels / groups"):
        STTuckerConv2d(8, 12, 3, ranks=(4, 4), k=4, groups=2)
    with pytest.raises(ValueError, match=r"ranks\[1\] \(r_in\)"):
        STTuckerConv2d(8, 12, 3, ranks=(4, 3), k=2)
    with pytest.raises(ValueError, match="positive"):
        STTuckerConv2d(8, 12, 3, ranks=(4, 0), k=2)
    with pytest.raises(TypeError, match="ranks"):
        STTuckerConv2d(8, 12, 3, ranks="4", k=2)  # type: ignore[arg-type]


def test_stt_bad_ranks_and_modes_are_rejected() -> None:
    with pytest.raises(ValueError, match="k = 2 must divide"):
        STTConv2d(8, 12, 3, ranks=(4, 3, 4, 4), k=2)
    with pytest.raises(ValueError, match="bond ranks"):
        STTConv2d(8, 12, 3, ranks=(4, 4), k=2)
    with pytest.raises(ValueError, match="start and end with 1"):
        STTConv2d(8, 12, 3, ranks=(2, 4, 4, 4, 4, 1), k=2)
    with pytest.raises(ValueError, match=r"out_modes must multiply to out_channels / groups = 12"):
        STTConv2d(8, 12, 3, ranks=4, k=2, out_modes=(2, 2))
    with pytest.raises(ValueError, match="in_modes must multiply to in_channels / groups = 4"):
        STTConv2d(8, 12, 3, ranks=4, k=2, groups=2, in_modes=(8,))
    with pytest.raises(TypeError, match="in_modes"):
        STTConv2d(8, 12, 3, ranks=4, k=2, in_modes=8)  # type: ignore[arg-type]


def test_from_conv_requires_ranks_or_rtol_and_a_conv() -> None:
    conv = torch.nn.Conv2d(8, 8, 3)
    with pytest.raises(ValueError, match="give rtol, ranks or both"):
        STTuckerConv2d.from_conv(conv, k=2)
    with pytest.raises(ValueError, match="needs ranks"):
        STTConv2d.from_conv(conv, k=2)
    with pytest.raises(ValueError, match="does not take rtol"):
        STTConv2d.from_conv(conv, ranks=4, k=2, rtol=0.1)
    with pytest.raises(ValueError, match="k = 3 must divide"):
        STTuckerConv2d.from_conv(conv, ranks=(6, 6), k=3)
    with pytest.raises(ValueError, match=r"ranks\[0\]"):
        STTuckerConv2d.from_conv(conv, ranks=(3, 4), k=2)
    with pytest.raises(ValueError, match="rtol"):
        STTuckerConv2d.from_conv(conv, rtol=-1.0, k=2)
    with pytest.raises(TypeError, match=r"nn\.Conv2d"):
        STTuckerConv2d.from_conv(torch.nn.Linear(3, 3), ranks=2, k=1)
    with pytest.raises(TypeError, match=r"nn\.Conv2d"):
        STTConv2d.from_conv(torch.nn.Linear(3, 3), ranks=2, k=1)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_wrong_input_is_rejected_with_its_shape(name: str) -> None:
    layer = FACTORIES[name]()
    with pytest.raises(ValueError, match="8 input channels"):
        layer(torch.randn(1, 4, 6, 6))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layer(torch.randn(8, 6))
    with pytest.raises(ValueError, match="forward_mode"):
        layer.forward_mode = "fast"


# -- CUDA -----------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("name", list(FACTORIES))
def test_cuda_layer_matches_cpu_on_both_paths(name: str) -> None:
    torch.manual_seed(18)
    layer = FACTORIES[name](padding=1, groups=2, dtype=torch.float64)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    expected = layer(x)
    gpu = layer.to("cuda")
    for mode in ("factorized", "dense"):
        gpu.forward_mode = mode
        out = gpu(x.cuda())
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
def test_cuda_from_conv_stays_on_the_device() -> None:
    torch.manual_seed(19)
    conv = torch.nn.Conv2d(8, 8, 3, device="cuda", dtype=torch.float64)
    st = STTuckerConv2d.from_conv(conv, rtol=0.5, k=2, rng=0)
    assert all(p.device.type == "cuda" for p in st.parameters())
    assert rel_err(st.reconstruct(), conv.weight) <= 0.5 * (1 + 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.ConvergenceWarning)
        stt = STTConv2d.from_conv(conv, ranks=4, k=2, rng=0, n_iter_max=3)
    assert all(p.device.type == "cuda" for p in stt.parameters())
