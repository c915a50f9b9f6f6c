"""The cost model of the factorized layers: traced costs, path choice, tuning, weight cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tensornet_torch import cost
from tensornet_torch.cost import DeviceProfile, PathCost
from tensornet_torch.layers import (
    CPConv2d,
    FactorizedConv2d,
    STRConv2d,
    STTConv2d,
    STTuckerConv2d,
    TRConv2d,
    TTConv2d,
    TuckerConv2d,
)

F64 = torch.float64

FACTORIES: dict[str, Callable[..., FactorizedConv2d]] = {
    "tucker": lambda **kw: TuckerConv2d(8, 12, 3, ranks=(4, 3), **kw),
    "cp": lambda **kw: CPConv2d(8, 12, 3, ranks=5, **kw),
    "tt": lambda **kw: TTConv2d(8, 12, 3, ranks=3, **kw),
    "tr": lambda **kw: TRConv2d(8, 12, 3, ranks=(2, 3, 2, 2), **kw),
    "str": lambda **kw: STRConv2d(8, 12, 3, ranks=(4, 2, 4, 2), k=2, **kw),
    "stt": lambda **kw: STTConv2d(8, 12, 3, ranks=4, k=2, **kw),
    "sttucker": lambda **kw: STTuckerConv2d(8, 12, 3, ranks=(4, 4), k=2, **kw),
}
GEOMETRIES: dict[str, dict[str, Any]] = {
    "pad1": {"padding": 1},
    "stride2": {"padding": 1, "stride": 2},
    "groups2": {"padding": 1, "groups": 2},
    "reflect": {"padding": 1, "padding_mode": "reflect"},
}


def make(name: str, geometry: str = "pad1", **kw: Any) -> FactorizedConv2d:
    torch.manual_seed(0)
    return FACTORIES[name](**GEOMETRIES[geometry], **kw)


def reference(layer: FactorizedConv2d, x: torch.Tensor) -> torch.Tensor:
    """nn.Conv2d with the reconstructed kernel: the definition of the layer's output."""
    return layer.to_conv()(x)


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_path_equals_conv2d_with_the_reconstructed_kernel(name: str, geometry: str) -> None:
    layer = make(name, geometry, dtype=F64)
    x = torch.randn(3, 8, 9, 10, dtype=F64)
    expected = reference(layer, x)
    for path in type(layer).PATHS:
        layer.forward_mode = path
        torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_traced_macs_equal_the_flop_counter_of_a_real_call(name: str) -> None:
    layer = make(name, "stride2")
    x = torch.randn(2, 8, 9, 10)
    costs = layer.path_costs(2, 9, 10, precontracted=False)
    for path in type(layer).PATHS:
        layer.forward_mode = path
        with FlopCounterMode(display=False) as counter:
            layer(x)
        assert 2 * costs[path].macs == counter.get_total_flops()


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("name", list(FACTORIES))
def test_path_macs_counts_every_path_as_traced(name: str, geometry: str) -> None:
    # compress() reports path_macs()[choose_path()], so every path needs its count
    # (the weight-only part is a formula, which may count a contraction order that torch
    # does not take; the per-sample part is exact)
    layer = make(name, geometry)
    counted, weights_only = layer.path_macs(3, 9, 10), layer.path_macs(0, 9, 10)
    assert set(counted) == set(type(layer).PATHS)
    traced = layer.path_costs(3, 9, 10, precontracted=True)
    for path in type(layer).PATHS:
        assert counted[path] - weights_only[path] == traced[path].macs, path
        assert weights_only[path] >= 0


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("name", list(FACTORIES))
def test_dense_path_convolves_with_a_contiguous_kernel_like_conv2d(name: str, grad: bool) -> None:
    # a transposed kernel makes oneDNN reorder it on every call, a channels-last one turns
    # the output channels-last: the dense path must be nn.Conv2d's call, layout included
    layer = make(name)
    layer.forward_mode = "dense"
    conv = layer.to_conv()
    x = torch.randn(2, 8, 9, 10)
    with torch.set_grad_enabled(grad):
        (weight,) = layer._weights("dense")
        assert weight.is_contiguous()
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            out, expected = layer(inp), conv(inp)
            assert out.stride() == expected.stride()
            torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_precontracted_cost_leaves_out_the_weight_only_part(name: str) -> None:
    layer = make(name)
    full = layer.path_costs(4, 8, 8, precontracted=False)
    applied = layer.path_costs(4, 8, 8, precontracted=True)
    for path in type(layer).PATHS:
        assert applied[path].macs <= full[path].macs
        assert applied[path].launches <= full[path].launches
    # the dense path without its kernel rebuild is exactly one convolution
    assert applied["dense"].macs == 4 * layer.dense_macs(8, 8)
    assert full["dense"].macs > applied["dense"].macs
    # and the factorized pipeline's input-dependent part is what factorized_macs counts
    assert applied["factorized"].macs == 4 * layer.factorized_macs(8, 8)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_traced_bytes_cover_reading_the_input_and_writing_the_output(name: str) -> None:
    layer = make(name)
    batch, size = 3, 8
    costs = layer.path_costs(batch, size, size, precontracted=True)
    x_bytes = batch * 8 * size * size * 4
    out_bytes = batch * 12 * size * size * 4
    for path in type(layer).PATHS:
        assert costs[path].bytes >= x_bytes + out_bytes


def test_path_costs_follow_the_dtype() -> None:
    layer = make("tr")  # no layout change by dtype (Tucker copies float32 to channels-last)
    single = layer.path_costs(2, 8, 8, dtype=torch.float32)["factorized"]
    double = layer.path_costs(2, 8, 8, dtype=F64)["factorized"]
    assert double.macs == single.macs
    assert double.bytes == 2 * single.bytes


@pytest.mark.parametrize("name", list(FACTORIES))
def test_auto_takes_the_path_with_the_smallest_estimated_time(name: str) -> None:
    layer = make(name)
    for batch, size in ((1, 2), (1, 8), (64, 32)):
        seconds = layer.estimated_seconds(batch, size, size)
        assert set(seconds) == set(type(layer).PATHS)
        assert layer.choose_path(batch, size, size) == min(seconds, key=seconds.__getitem__)


def test_auto_prefers_the_pipeline_for_a_strongly_compressed_layer_on_a_large_input() -> None:
    layer = TuckerConv2d(128, 128, 3, padding=1, ranks=(8, 8))
    assert layer.choose_path(32, 32, 32) == "factorized"


def test_auto_prefers_the_dense_kernel_for_a_full_rank_layer() -> None:
    layer = TuckerConv2d(8, 8, 3, padding=1, ranks=(8, 8))
    assert layer.choose_path(8, 32, 32) == "dense"


def test_forced_modes_are_taken_whatever_the_cost() -> None:
    layer = TRConv2d(8, 12, 3, padding=1, ranks=(2, 3, 2, 2))
    for path in TRConv2d.PATHS:
        layer.forward_mode = path
        assert layer.choose_path(1, 8, 8) == path
    with pytest.raises(ValueError, match="forward_mode"):
        TuckerConv2d(8, 8, 3, ranks=2, forward_mode="fused-spatial")


def test_a_calibrated_profile_changes_the_estimate_and_can_be_removed() -> None:
    layer = make("tt")
    before = layer.estimated_seconds(4, 8, 8)
    slow = DeviceProfile(macs_per_s=1.0, bytes_per_s=1.0, launch_s=0.0)
    cost.set_profile("cpu", torch.float32, slow)
    try:
        assert cost.get_profile("cpu", torch.float32) is slow
        costs = layer.path_costs(4, 8, 8)
        after = layer.estimated_seconds(4, 8, 8)
        for path, c in costs.items():
            assert after[path] == sum(max(k.macs, k.bytes) for k in c.kernels)
    finally:
        cost.set_profile("cpu", torch.float32, None)
    assert layer.estimated_seconds(4, 8, 8) == before


def test_calibrate_measures_positive_figures_without_installing() -> None:
    profile = cost.calibrate("cpu", torch.float32, install=False)
    assert profile.macs_per_s > 0 and profile.bytes_per_s > 0 and profile.launch_s >= 0
    assert cost.get_profile("cpu", torch.float32) == cost.DEFAULT_PROFILES[("cpu", torch.float32)]


def test_profile_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="macs_per_s"):
        DeviceProfile(0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="launch_s"):
        DeviceProfile(1.0, 1.0, -1.0)
    with pytest.raises(TypeError, match="profile"):
        cost.set_profile("cpu", torch.float32, "fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dtype"):
        cost.get_profile("cpu", "float32")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat"):
        cost.measure(lambda: None, "cpu", repeat=0)


def test_unknown_dtypes_fall_back_to_the_float32_figures() -> None:
    expected = cost.DEFAULT_PROFILES[("cpu", torch.float32)]
    assert cost.get_profile("cpu", torch.complex64) == expected


def test_roofline_sums_the_slower_of_compute_and_memory_per_kernel() -> None:
    profile = DeviceProfile(macs_per_s=10.0, bytes_per_s=100.0, launch_s=1.0)
    path = PathCost((cost.Kernel("gemm", 100, 100), cost.Kernel("memory", 1, 1000)))
    assert path.macs == 101 and path.bytes == 1100 and path.launches == 2
    assert path.seconds(profile) == pytest.approx((10.0 + 1.0) + (10.0 + 1.0))
    assert (path + PathCost((cost.Kernel("memory", 0, 0),))).launches == 3


def test_convolutions_have_their_own_rate_and_launch_cost() -> None:
    profile = DeviceProfile(10.0, 100.0, 1.0, conv_macs_per_s=5.0, conv_launch_s=3.0)
    assert profile.kernel_seconds(cost.Kernel("conv", 100, 0)) == pytest.approx(20.0 + 3.0)
    assert profile.kernel_seconds(cost.Kernel("gemm", 100, 0)) == pytest.approx(10.0 + 1.0)
    with pytest.raises(ValueError, match="conv_macs_per_s"):
        DeviceProfile(1.0, 1.0, 0.0, conv_macs_per_s=0.0)


def test_narrow_convolutions_run_at_a_fraction_of_the_rate() -> None:
    profile = DeviceProfile(10.0, 1e9, 0.0, conv_macs_per_s=10.0, conv_lanes=16)
    wide, narrow = cost.Kernel("conv", 100, 0, 0, 32), cost.Kernel("conv", 100, 0, 0, 4)
    assert profile.kernel_seconds(wide) == pytest.approx(10.0)
    assert profile.kernel_seconds(narrow) == pytest.approx(40.0)  # 4 of 16 lanes busy
    assert profile.kernel_seconds(cost.Kernel("conv", 100, 0)) == pytest.approx(10.0)
    assert profile.kernel_seconds(cost.Kernel("gemm", 100, 0, 0, 4)) == pytest.approx(10.0)
    # the padded blocked layout moves lanes / channels times the bytes
    streaming = DeviceProfile(1e9, 10.0, 0.0, conv_lanes=16)
    assert streaming.kernel_seconds(cost.Kernel("conv", 0, 100, 0, 4)) == pytest.approx(40.0)
    fresh = DeviceProfile(1e9, 1e9, 0.0, fresh_threshold=100, fresh_bytes_per_s=1.0, conv_lanes=16)
    assert fresh.kernel_seconds(cost.Kernel("conv", 0, 0, 40, 16)) == pytest.approx(0.0)
    assert fresh.kernel_seconds(cost.Kernel("conv", 0, 0, 40, 4)) == pytest.approx(160.0)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="conv_lanes"):
            DeviceProfile(1.0, 1.0, 0.0, conv_lanes=bad)  # type: ignore[arg-type]


def test_traced_convolutions_record_their_output_channels_per_group() -> None:
    x = torch.empty(2, 8, 6, 6, device="meta")

    def channels(weight: torch.Tensor, groups: int) -> int:
        traced, _ = cost.trace_cost(lambda: F.conv2d(x, weight, groups=groups), device="cpu")
        (kernel,) = traced.kernels
        return kernel.channels

    assert channels(torch.empty(12, 8, 3, 3, device="meta"), 1) == 12
    assert channels(torch.empty(12, 4, 3, 3, device="meta"), 2) == 6
    assert channels(torch.empty(8, 1, 3, 1, device="meta"), 8) == 0  # depthwise


def test_a_narrow_ring_pipeline_loses_to_the_dense_kernel_on_cpu() -> None:
    # measured in bench_speed: TRConv2d 16 -> 16 ranks 4 at batch 32, 32 x 32: the 4 -> 4
    # spatial convolutions made the pipelines 0.5-0.7x of nn.Conv2d, the dense path 1.1x
    layer = TRConv2d(16, 16, 3, padding=1, ranks=4)
    assert layer.choose_path(32, 32, 32) == "dense"


def test_trace_cost_counts_products_and_ignores_views() -> None:
    a = torch.empty(8, 4, device="meta")
    b = torch.empty(4, 6, device="meta")
    traced, out = cost.trace_cost(lambda: (a @ b).reshape(6, 8).t(), device="cpu")
    assert traced.kernels == (cost.Kernel("gemm", 8 * 4 * 6, (32 + 24 + 48) * 4, 48 * 4),)
    assert tuple(out.shape) == (8, 6)


def test_tuned_mode_times_once_and_keeps_a_path() -> None:
    cost.clear_tuning_cache()
    layer = make("tr", forward_mode="tuned")
    x = torch.randn(2, 8, 8, 8)
    calls: list[str] = []
    original = layer._run_path

    def counting(path: str, inp: torch.Tensor, *args: Any) -> torch.Tensor:
        calls.append(path)
        return original(path, inp, *args)

    layer._run_path = counting  # type: ignore[method-assign]
    with torch.no_grad():
        first = layer(x)
        timed = len(calls)
        second = layer(x)
    assert set(calls[: timed - 1]) == set(TRConv2d.PATHS)  # every path timed once
    assert len(calls) == timed + 1  # the second call runs only the chosen path
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, reference(layer, x), rtol=1e-4, atol=1e-5)
    # a second layer of the same structure reuses the measurement
    twin = make("tr", forward_mode="tuned")
    twin._run_path = counting  # type: ignore[method-assign]
    with torch.no_grad():
        twin(x)
    assert len(calls) == timed + 2
    cost.clear_tuning_cache()


def count_weight_builds(layer: FactorizedConv2d) -> list[str]:
    calls: list[str] = []
    original = layer.path_weights

    def counting(path: str) -> tuple[torch.Tensor, ...]:
        calls.append(path)
        return original(path)

    layer.path_weights = counting  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("path", ["dense", "factorized"])
def test_weights_are_precontracted_once_without_gradients(path: str) -> None:
    layer = make("tt", forward_mode=path).eval()
    calls = count_weight_builds(layer)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        first = layer(x)
        second = layer(x)
    assert calls == [path]
    torch.testing.assert_close(first, second)


def test_precontracted_weights_follow_parameter_updates() -> None:
    layer = make("tucker", forward_mode="dense").eval()
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        layer(x)
        layer.core.mul_(2.0)  # in place, as an optimizer step
        out = layer(x)
    torch.testing.assert_close(out, reference(layer, x), rtol=1e-5, atol=1e-5)
    layer.load_state_dict({k: v * 3 for k, v in layer.state_dict().items()})
    with torch.no_grad():
        out = layer(x)
    torch.testing.assert_close(out, reference(layer, x), rtol=1e-5, atol=1e-5)


def test_no_cache_while_gradients_flow() -> None:
    layer = make("tt", forward_mode="dense")
    calls = count_weight_builds(layer)
    x = torch.randn(2, 8, 8, 8)
    layer(x).sum().backward()
    layer(x).sum().backward()
    assert calls == ["dense", "dense"]
    assert all(p.grad is not None for p in layer.parameters())


def test_precontract_can_be_switched_off() -> None:
    layer = make("tt", forward_mode="dense")
    layer.precontract = False
    calls = count_weight_builds(layer)
    with torch.no_grad():
        layer(torch.randn(1, 8, 8, 8))
        layer(torch.randn(1, 8, 8, 8))
    assert calls == ["dense", "dense"]


def test_moving_the_layer_drops_the_cache() -> None:
    layer = make("tr", forward_mode="fused-spatial")
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        layer(x)
    assert layer._weight_cache
    layer.double()
    assert not layer._weight_cache
    with torch.no_grad():
        out = layer(x.double())
    assert out.dtype == F64
    torch.testing.assert_close(out, reference(layer, x.double()), rtol=1e-10, atol=1e-10)


def test_fused_spatial_ring_path_is_three_sublayers() -> None:
    layer = TRConv2d(16, 16, 3, padding=1, ranks=(2, 3, 2, 4))
    costs = layer.path_costs(1, 8, 8, precontracted=True)
    kinds = [k.kind for k in costs["fused-spatial"].kernels if k.macs > 0]
    assert kinds == ["gemm", "conv", "gemm"]
    ra, rb, rc, _ = 2, 3, 2, 4
    spatial = 8 * 8 * rb * ra * rc * 9
    assert costs["fused-spatial"].macs == 8 * 8 * 16 * rb * rc + spatial + 8 * 8 * 16 * rb * ra


def test_fused_spatial_keeps_gradients() -> None:
    layer = TRConv2d(8, 12, 3, padding=1, ranks=(2, 3, 2, 2), dtype=F64)
    x = torch.randn(2, 8, 6, 6, dtype=F64)
    grads = {}
    for path in ("factorized", "fused-spatial"):
        layer.zero_grad()
        layer.forward_mode = path
        layer(x).square().sum().backward()
        grads[path] = [p.grad.clone() for p in layer.parameters() if p.grad is not None]
    for a, b in zip(grads["factorized"], grads["fused-spatial"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_costs_are_traced_once_per_structure(monkeypatch: pytest.MonkeyPatch) -> None:
    traces: list[object] = []
    original = cost.trace_cost

    def counting(*args: Any, **kwargs: Any) -> Any:
        traces.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(cost, "trace_cost", counting)
    a, b = make("tt"), make("tt")
    first = a.path_costs(2, 8, 13)
    assert len(traces) == 2 * len(TTConv2d.PATHS)  # weight part and input part per path
    assert b.path_costs(2, 8, 13) == first
    assert a.path_costs(2, 8, 13, precontracted=True)
    assert len(traces) == 2 * len(TTConv2d.PATHS)
    a.path_costs(3, 8, 13)
    assert len(traces) == 4 * len(TTConv2d.PATHS)


def test_conv_module_is_untouched_by_tracing() -> None:
    layer = make("cp")
    params = {n: p for n, p in layer.named_parameters()}
    layer.path_costs(3, 5, 7)
    assert {n: p for n, p in layer.named_parameters()} == params
    assert all(p.device.type == "cpu" for p in layer.parameters())
    x = torch.randn(1, 8, 5, 7)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.reconstruct(), layer.bias, padding=1))
    assert isinstance(layer.to_conv(), nn.Conv2d)


@pytest.mark.parametrize("name", ["tt", "stt"])
def test_cores_in_a_parameter_list_drive_the_cache_and_the_gradient_check(name: str) -> None:
    layer = make(name, bias=False, forward_mode="dense")
    x = torch.randn(2, 8, 8, 8)
    assert layer.choose_path(2, 8, 8) == "dense"
    layer.forward_mode = "auto"
    layer(x)  # no IndexError without a bias
    layer.forward_mode = "dense"
    with torch.no_grad():
        before = layer(x)
        layer.cores[0].mul_(2.0)  # the cached kernel must notice
        after = layer(x)
    torch.testing.assert_close(after, reference(layer, x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)
    out = layer(x)  # gradients flow to the cores
    assert out.requires_grad


@pytest.mark.parametrize("name", list(FACTORIES))
def test_tracing_does_no_arithmetic_on_the_real_parameters(name: str) -> None:
    layer = make(name)
    seen: list[str] = []

    class Devices(cost._KernelRecorder):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
            leaves = torch.utils._pytree.tree_leaves((args, kwargs))
            seen.extend(t.device.type for t in leaves if isinstance(t, torch.Tensor))
            return super().__torch_dispatch__(func, types, args, kwargs)

    original = cost._KernelRecorder
    cost._KernelRecorder = Devices  # type: ignore[misc]
    try:
        layer.path_costs(2, 7, 9)
    finally:
        cost._KernelRecorder = original  # type: ignore[misc]
    assert seen and set(seen) == {"meta"}


def test_large_fresh_outputs_pay_the_page_fault_rate() -> None:
    profile = DeviceProfile(1.0, 100.0, 0.0, fresh_threshold=1000, fresh_bytes_per_s=10.0)
    small = cost.Kernel("memory", 0, 900, 900)
    large = cost.Kernel("memory", 0, 2000, 2000)
    in_place = cost.Kernel("memory", 0, 2000, 0)
    assert profile.kernel_seconds(small) == pytest.approx(9.0)
    assert profile.kernel_seconds(large) == pytest.approx(20.0 + 200.0)
    assert profile.kernel_seconds(in_place) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="fresh_threshold"):
        DeviceProfile(1.0, 1.0, 0.0, fresh_threshold=10)


def test_in_place_kernels_allocate_nothing() -> None:
    a = torch.empty(8, 4, device="meta")
    traced, _ = cost.trace_cost(lambda: a.add_(1.0), device="cpu")
    assert traced.kernels[0].allocated == 0
    traced, _ = cost.trace_cost(lambda: a + 1.0, device="cpu")
    assert traced.kernels[0].allocated == 8 * 4 * 4
