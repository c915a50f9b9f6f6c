"""TTLinear: an nn.Linear whose weight is a TT-matrix."""

from __future__ import annotations

import io
import math
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

from tensornet_torch.layers._modes import balanced_factors, prime_count  # noqa: E402
from tensornet_torch.layers.tt_linear import TTLinear, linear_modes  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add overhead (and contend on shared machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(**kw: Any) -> TTLinear:
    options: dict[str, Any] = {"in_modes": (2, 3, 4), "out_modes": (3, 1, 4), "ranks": (3, 2)}
    options.update(kw)
    return TTLinear(24, 12, **options)


def rel_err(a: Any, b: Any) -> float:
    a, b = a.detach(), b.detach()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def count_macs(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops()) // 2


# -- forward --------------------------------------------------------------------------------------
@pytest.mark.parametrize("lead", [(), (1,), (5,), (2, 3), (2, 0)])
@pytest.mark.parametrize("bias", [True, False])
def test_both_paths_equal_f_linear_with_the_reconstructed_weight(lead: tuple, bias: bool) -> None:
    torch.manual_seed(0)
    layer = make(bias=bias, dtype=torch.float64)
    x = torch.randn(*lead, 24, dtype=torch.float64)
    expected = F.linear(x, layer.reconstruct(), layer.bias)
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        out = layer(x)
        assert out.shape == (*lead, 12)
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("in_modes", "out_modes", "ranks"),
    [((24,), (12,), ()), ((4, 6), (6, 2), 5), ((2, 2, 2, 3), (1, 2, 3, 2), (2, 3, 2))],
)
def test_any_number_of_cores_matches_the_ttmatrix_it_stores(
    in_modes: tuple, out_modes: tuple, ranks: Any
) -> None:
    torch.manual_seed(1)
    layer = TTLinear(
        24, 12, in_modes=in_modes, out_modes=out_modes, ranks=ranks, dtype=torch.float64
    )
    ttm = layer.to_ttm()
    assert ttm.row_shape == out_modes and ttm.col_shape == in_modes
    torch.testing.assert_close(layer.reconstruct(), ttm.to_dense(), rtol=1e-13, atol=1e-15)
    x = torch.randn(3, 24, dtype=torch.float64)
    layer.forward_mode = "factorized"
    torch.testing.assert_close(layer(x), x @ ttm.to_dense().T + layer.bias)


@given(
    pairs=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
    rank=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_factorized_path_is_the_ttmatrix_product_for_any_modes(
    pairs: list[tuple[int, int]], rank: int, seed: int
) -> None:
    torch.manual_seed(seed)
    in_modes = tuple(n for n, _ in pairs)
    out_modes = tuple(m for _, m in pairs)
    layer = TTLinear(
        math.prod(in_modes),
        math.prod(out_modes),
        in_modes=in_modes,
        out_modes=out_modes,
        ranks=rank,
        dtype=torch.float64,
        forward_mode="factorized",
    )
    x = torch.randn(3, layer.in_features, dtype=torch.float64)
    expected = x @ layer.to_ttm().to_dense().T + layer.bias
    torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-12)


def test_float32_keeps_dtype_and_agrees_between_paths() -> None:
    torch.manual_seed(2)
    layer = make()
    x = torch.randn(4, 24)
    outs = []
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        outs.append(layer(x))
        assert outs[-1].dtype == torch.float32
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_device_and_dtype_arguments_place_every_parameter() -> None:
    layer = make(device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in layer.parameters())
    assert all(p.device.type == "meta" for p in make(device="meta").parameters())


def test_gradients_reach_every_core_and_agree_between_paths() -> None:
    torch.manual_seed(3)
    layer = make(dtype=torch.float64)
    x = torch.randn(2, 5, 24, dtype=torch.float64)
    grads = []
    for mode in ("factorized", "dense"):
        layer.zero_grad()
        layer.forward_mode = mode
        layer(x).sin().sum().backward()
        for name, p in layer.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        grads.append([torch.clone(p.grad) for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# -- cost model -----------------------------------------------------------------------------------
def test_macs_by_hand_and_as_torch_counts_them() -> None:
    layer = make()  # in (2, 3, 4), out (3, 1, 4), ranks (1, 3, 2, 1)
    # left to right sum_k (m_0..m_k)(n_k..n_{d-1}) r_k r_{k+1}, right to left the mirror
    left = 3 * 24 * 1 * 3 + 3 * 12 * 3 * 2 + 12 * 4 * 2 * 1
    right = 2 * 12 * 1 * 3 + 6 * 4 * 3 * 2 + 24 * 4 * 2 * 1
    assert layer.sweep_macs() == {"left_to_right": left, "right_to_left": right}
    assert layer.factorized_macs() == min(left, right) == right
    # sum_{k>=1} (m_0 n_0 .. m_{k-1} n_{k-1}) r_k m_k n_k r_{k+1}
    assert layer.reconstruct_macs() == 6 * 3 * 1 * 3 * 2 + 18 * 2 * 4 * 4 * 1
    assert layer.dense_macs() == 24 * 12
    x = torch.randn(5, 24)
    layer.forward_mode = "factorized"
    assert count_macs(lambda: layer(x)) == 5 * layer.factorized_macs()
    assert count_macs(layer.reconstruct) == layer.reconstruct_macs()
    layer.forward_mode = "dense"
    assert count_macs(lambda: layer(x)) == layer.path_macs(5)["dense"]
    assert layer.macs(5) == layer.path_macs(5)["dense"]


@pytest.mark.parametrize(
    ("in_modes", "out_modes", "direction"),
    [((2, 3, 4), (3, 1, 4), "right_to_left"), ((3, 1, 4), (2, 3, 4), "left_to_right")],
)
def test_both_sweep_directions_are_exact_and_the_cheaper_one_runs(
    in_modes: tuple, out_modes: tuple, direction: str
) -> None:
    torch.manual_seed(9)
    layer = TTLinear(
        math.prod(in_modes),
        math.prod(out_modes),
        in_modes=in_modes,
        out_modes=out_modes,
        ranks=(3, 2),
        dtype=torch.float64,
    )
    x = torch.randn(5, layer.in_features, dtype=torch.float64)
    expected = x @ layer.weight.T
    torch.testing.assert_close(layer._sweep_left_to_right(x), expected)
    torch.testing.assert_close(layer._sweep_right_to_left(x), expected)
    macs = layer.sweep_macs()
    assert min(macs, key=lambda key: macs[key]) == direction
    layer.forward_mode = "factorized"
    assert count_macs(lambda: layer(x)) == 5 * macs[direction] == 5 * layer.factorized_macs()


def test_auto_path_takes_the_cheaper_path() -> None:
    layer = TTLinear(256, 256, ranks=2)
    assert layer.choose_path(1) == "factorized"  # tiny ranks: always cheaper
    wide = TTLinear(16, 16, in_modes=(4, 4), out_modes=(4, 4), ranks=16)
    macs = wide.path_macs(64)
    assert macs["factorized"] > macs["dense"]
    assert wide.choose_path(64) == "dense"
    for batch in (1, 3, 1000):
        m = wide.path_macs(batch)
        expected = "factorized" if m["factorized"] <= m["dense"] else "dense"
        assert wide.choose_path(batch) == expected
        assert wide.macs(batch) == m[expected]


def test_parameter_counts() -> None:
    layer = make()
    assert layer.num_params == 1 * 3 * 2 * 3 + 3 * 1 * 3 * 2 + 2 * 4 * 4 * 1 + 12
    assert layer.num_params - 12 == layer.to_ttm().num_params
    assert layer.dense_num_params == 24 * 12 + 12
    assert make(bias=False).dense_num_params == 24 * 12


# -- init -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "factory",
    [
        lambda: TTLinear(64, 48, ranks=4),
        lambda: TTLinear(100, 30, in_modes=(10, 10), out_modes=(5, 6), ranks=8),
    ],
)
def test_reset_parameters_matches_linear_weight_variance_on_average(factory: Callable) -> None:
    ratios = []
    for seed in range(24):
        torch.manual_seed(seed)
        layer = factory()
        w = layer.weight.detach()
        ratios.append(float(w.square().mean()) * 3.0 * layer.in_features)
        assert layer.bias.abs().max() <= 1.0 / math.sqrt(layer.in_features)
    assert 0.8 <= float(np.mean(ratios)) <= 1.2
    linear = torch.nn.Linear(layer.in_features, layer.out_features)
    target = 1.0 / (3.0 * layer.in_features)
    assert float(linear.weight.detach().var()) == pytest.approx(target, rel=0.2)


# -- conversion -----------------------------------------------------------------------------------
def test_to_linear_holds_exactly_the_weight_and_bias() -> None:
    torch.manual_seed(4)
    layer = make(dtype=torch.float64)
    linear = layer.to_linear()
    assert isinstance(linear, torch.nn.Linear) and linear.weight.dtype == torch.float64
    assert torch.equal(linear.weight, layer.weight)
    assert torch.equal(linear.bias, layer.bias)
    assert make(bias=False).to_linear().bias is None
    x = torch.randn(3, 24, dtype=torch.float64)
    torch.testing.assert_close(linear(x), layer(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rtol", [0.1, 0.5, 0.9])
def test_from_linear_meets_rtol(rtol: float) -> None:
    torch.manual_seed(5)
    linear = torch.nn.Linear(24, 12, dtype=torch.float64)
    layer = TTLinear.from_linear(linear, rtol=rtol, in_modes=(2, 3, 4), out_modes=(3, 1, 4))
    assert rel_err(layer.weight, linear.weight) <= rtol * (1 + 1e-9)
    assert torch.equal(layer.bias, linear.bias)
    assert layer.in_modes == (2, 3, 4) and layer.out_modes == (3, 1, 4)


def test_from_linear_recovers_a_ttmatrix_weight_and_caps_ranks() -> None:
    torch.manual_seed(6)
    source = make(dtype=torch.float64)
    linear = source.to_linear()
    exact = TTLinear.from_linear(linear, rtol=1e-12, in_modes=(2, 3, 4), out_modes=(3, 1, 4))
    assert exact.ranks == source.ranks
    assert rel_err(exact.weight, linear.weight) < 1e-12
    capped = TTLinear.from_linear(linear, ranks=(2, 1), in_modes=(2, 3, 4), out_modes=(3, 1, 4))
    assert capped.ranks == (1, 2, 1, 1)
    only_caps = TTLinear.from_linear(linear, ranks=8, in_modes=(2, 3, 4), out_modes=(3, 1, 4))
    assert rel_err(only_caps.weight, linear.weight) < 1e-12  # caps above the exact ranks
    default = TTLinear.from_linear(torch.nn.Linear(64, 10), rtol=0.3)
    assert (default.in_modes, default.out_modes) == ((4, 4, 4), (5, 2, 1))
    assert default.weight.dtype == torch.float32


def test_state_dict_round_trip_through_weights_only_load() -> None:
    torch.manual_seed(7)
    layer = make()
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = make()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(2, 24)
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)


def test_extra_repr_names_features_modes_and_ranks() -> None:
    text = repr(make(bias=False, forward_mode="dense"))
    for part in (
        "in_features=24",
        "out_features=12",
        "bias=False",
        "in_modes=(2, 3, 4)",
        "out_modes=(3, 1, 4)",
        "ranks=(1, 3, 2, 1)",
        "forward_mode='dense'",
    ):
        assert part in text, text


# -- modes ----------------------------------------------------------------------------------------
def test_default_modes_are_balanced_and_multiply_to_the_features() -> None:
    assert linear_modes(64, 10) == ((4, 4, 4), (5, 2, 1))
    assert linear_modes(784, 100, in_modes=(28, 28)) == ((28, 28), (10, 10))
    assert linear_modes(7, 3) == ((7,), (3,))
    assert linear_modes(12, 8, out_modes=(2, 2, 2))[0] == (3, 2, 2)
    for n in (1, 2, 12, 60, 97, 1024, 720720):
        for count in (1, 2, 3, 4):
            f = balanced_factors(n, count)
            assert math.prod(f) == n and len(f) == count and list(f) == sorted(f, reverse=True)
    assert balanced_factors(16, 3) == (4, 2, 2) and balanced_factors(36, 3) == (4, 3, 3)
    assert prime_count(1) == 0 and prime_count(720720) == 10


# -- validation -----------------------------------------------------------------------------------
def test_modes_that_do_not_fit_are_rejected_with_their_product() -> None:
    with pytest.raises(
        ValueError, match=r"in_modes must multiply to in_features = 24, got \(4, 4\)"
    ):
        TTLinear(24, 12, in_modes=(4, 4), out_modes=(3, 4), ranks=2)
    with pytest.raises(ValueError, match="out_modes must multiply to out_features = 12"):
        TTLinear(24, 12, in_modes=(4, 6), out_modes=(3, 3), ranks=2)
    with pytest.raises(ValueError, match="same length"):
        TTLinear(24, 12, in_modes=(4, 6), out_modes=(3, 2, 2), ranks=2)
    with pytest.raises(ValueError, match=r"in_modes\[1\] must be >= 1"):
        TTLinear(24, 12, in_modes=(24, 0), ranks=2)
    with pytest.raises(TypeError, match="in_modes"):
        TTLinear(24, 12, in_modes=24, ranks=2)  # type: ignore[arg-type]


def test_bad_sizes_ranks_and_options_are_rejected() -> None:
    with pytest.raises(TypeError, match="in_features"):
        TTLinear(True, 12, ranks=2)
    with pytest.raises(ValueError, match="out_features"):
        TTLinear(24, 0, ranks=2)
    with pytest.raises(ValueError, match="2 bond ranks"):
        make(ranks=(2, 2, 2))
    with pytest.raises(ValueError, match="ranks"):
        make(ranks=0)
    with pytest.raises(ValueError, match="forward_mode"):
        make(forward_mode="fast")
    layer = make()
    with pytest.raises(ValueError, match=r"\(\.\.\., 24\)"):
        layer(torch.randn(3, 12))
    with pytest.raises(ValueError, match="give rtol, ranks or both"):
        TTLinear.from_linear(torch.nn.Linear(24, 12))
    with pytest.raises(TypeError, match="Linear"):
        TTLinear.from_linear(torch.nn.Conv2d(2, 2, 1), rtol=0.1)
    assert isinstance(layer.to_ttm(), tn.TTMatrix)


# -- CUDA -----------------------------------------------------------------------------------------
@pytest.mark.cuda
def test_cuda_layer_matches_cpu_and_from_linear_stays_on_device() -> None:
    torch.manual_seed(8)
    layer = make(dtype=torch.float64)
    x = torch.randn(4, 24, dtype=torch.float64)
    expected = layer(x)
    gpu = layer.to("cuda")
    for mode in ("factorized", "dense"):
        gpu.forward_mode = mode
        torch.testing.assert_close(gpu(x.cuda()).cpu(), expected, rtol=1e-10, atol=1e-10)
    linear = torch.nn.Linear(24, 12, device="cuda")
    fitted = TTLinear.from_linear(linear, rtol=0.5)
    assert all(p.device.type == "cuda" for p in fitted.parameters())
