"""Tucker: HOSVD / ST-HOSVD / HOOI bounds and recovery, format-native ops against dense."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tensornet import ConvergenceWarning
from tensornet.decompose.tucker import hooi, hosvd, st_hosvd
from tensornet.formats.tucker import (
    TuckerTensor,
    tucker_add,
    tucker_mode_product,
    tucker_norm,
    tucker_scale,
    tucker_to_dense,
    tucker_to_tt,
)
from tensornet.io import load, register_format, save
from tensornet.random import random_tucker
from tensornet.testing import assert_relative_error, assert_tensors_close, shapes

SCALARS = st.one_of(st.just(0.0), st.floats(1e-3, 3), st.floats(-3, -1e-3))
"""Scalars that neither underflow in float32 nor differ only in round-off."""
SVD_BASED = [hosvd, st_hosvd]
Decomposition = Callable[..., TuckerTensor]


def _slack(dtype: object) -> float:
    """Round-off allowance for a bound checked in ``dtype``."""
    return 100 * float(np.finfo(np.dtype(dtype)).eps)


def _rel_error(t: TuckerTensor, x: np.ndarray) -> float:
    work = np.result_type(x.dtype, np.float64)
    diff = t.to_dense().astype(work) - x.astype(work)
    return float(np.linalg.norm(diff) / np.linalg.norm(x.astype(work)))


def _unfold(x: np.ndarray, k: int) -> np.ndarray:
    return np.moveaxis(x, k, 0).reshape(x.shape[k], -1)


def _multilinear_ranks(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(np.linalg.matrix_rank(_unfold(x, k))) for k in range(x.ndim))


def _assert_orthonormal(t: TuckerTensor) -> None:
    tol = 1e-4 if t.dtype in (np.float32, np.complex64) else 1e-12
    for f in t.factors:
        if f is not None:
            np.testing.assert_allclose(f.conj().T @ f, np.eye(f.shape[1]), atol=tol)


@st.composite
def dense_tensors(draw: st.DrawFn, dtype: str = "float64", min_order: int = 1) -> np.ndarray:
    """Dense tensors: random, or low multilinear rank plus a little noise (decaying spectra)."""
    shape = draw(shapes(min_order=min_order, max_order=4, max_size=6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = random_tucker(shape, 2, rng=rng, dtype=dtype).to_dense()
        x = x + 1e-3 * rng.standard_normal(shape).astype(x.dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x, dtype=dtype)


@st.composite
def modes_of(draw: st.DrawFn, order: int) -> tuple[int, ...] | None:
    """None (every mode) or a non-empty subset of the modes, in a random order."""
    if draw(st.booleans()):
        return None
    return tuple(draw(st.permutations(range(order)))[: draw(st.integers(1, order))])


# -- the rtol bound --------------------------------------------------------------------------------
@pytest.mark.parametrize("decompose", SVD_BASED)
@given(x=dense_tensors(), rtol=st.floats(1e-8, 0.9), data=st.data())
def test_hosvd_and_st_hosvd_honour_rtol_bound(
    decompose: Decomposition, x: np.ndarray, rtol: float, data: st.DataObject
) -> None:
    modes = data.draw(modes_of(x.ndim))
    t = decompose(x, rtol=rtol, modes=modes)
    assert _rel_error(t, x) <= rtol + _slack(x.dtype)
    _assert_orthonormal(t)


@given(x=dense_tensors(), rtol=st.floats(1e-6, 0.9), data=st.data())
def test_hosvd_drops_at_most_rtol_over_sqrt_m_per_mode(
    x: np.ndarray, rtol: float, data: st.DataObject
) -> None:
    # The stated split: each of the m factored modes drops a tail <= rtol ||x|| / sqrt(m).
    modes = data.draw(modes_of(x.ndim))
    t = hosvd(x, rtol=rtol, modes=modes)
    m = len(t.modes)
    delta = rtol * np.linalg.norm(x) / math.sqrt(m)
    for k in t.modes:
        f = t.factors[k]
        assert f is not None
        tail = np.linalg.norm(_unfold(x, k) - f @ (f.conj().T @ _unfold(x, k)))
        assert tail <= delta + _slack(x.dtype) * np.linalg.norm(x)


@pytest.mark.parametrize("decompose", SVD_BASED)
@given(x=dense_tensors(dtype="float32"), rtol=st.floats(1e-3, 0.9))
def test_float32_honours_rtol_bound_and_stays_float32(
    decompose: Decomposition, x: np.ndarray, rtol: float
) -> None:
    t = decompose(x, rtol=rtol)
    assert t.dtype == np.float32
    assert all(f is None or f.dtype == np.float32 for f in t.factors)
    assert _rel_error(t, x) <= rtol + _slack(np.float32)


@pytest.mark.parametrize("decompose", SVD_BASED)
@given(x=dense_tensors(dtype="complex128"), rtol=st.floats(1e-8, 0.9))
def test_complex_honours_rtol_bound(decompose: Decomposition, x: np.ndarray, rtol: float) -> None:
    t = decompose(x, rtol=rtol)
    assert t.dtype == np.complex128
    assert _rel_error(t, x) <= rtol + _slack(x.dtype)


def test_st_hosvd_is_no_worse_than_hosvd_at_equal_ranks_typically() -> None:
    # Not a theorem, but the documented "usually smaller error": check it on a fixed case.
    x = np.random.default_rng(3).standard_normal((8, 9, 10))
    assert _rel_error(st_hosvd(x, ranks=4), x) <= _rel_error(hosvd(x, ranks=4), x) + 1e-12


# -- ranks: semantics and exact recovery -----------------------------------------------------------
@pytest.mark.parametrize("decompose", [hosvd, st_hosvd, hooi])
@given(shape=shapes(min_order=1, max_order=4, max_size=6), data=st.data())
def test_tensors_built_in_tucker_form_are_recovered_with_their_ranks(
    decompose: Decomposition, shape: tuple[int, ...], data: st.DataObject
) -> None:
    modes = data.draw(modes_of(len(shape)))
    requested = data.draw(st.integers(1, 4))
    truth = random_tucker(shape, requested, modes=modes, rng=data.draw(st.integers(0, 2**32 - 1)))
    x = truth.to_dense()
    if decompose is hooi:
        order = range(len(shape)) if modes is None else modes
        t = hooi(x, [truth.ranks[k] for k in order], modes=modes)
    else:
        t = decompose(x, modes=modes)
    assert t.ranks == truth.ranks
    assert t.modes == truth.modes
    assert_tensors_close(t, x)


@pytest.mark.parametrize("decompose", SVD_BASED)
@given(x=dense_tensors())
def test_full_rank_decomposition_is_exact(decompose: Decomposition, x: np.ndarray) -> None:
    t = decompose(x)
    assert_tensors_close(t, x)
    assert t.ranks == _multilinear_ranks(x)


@pytest.mark.parametrize("decompose", SVD_BASED)
@given(x=dense_tensors(), cap=st.integers(1, 4), rtol=st.one_of(st.none(), st.floats(0.0, 0.5)))
def test_smaller_of_ranks_and_rtol_wins(
    decompose: Decomposition, x: np.ndarray, cap: int, rtol: float | None
) -> None:
    capped = decompose(x, ranks=cap, rtol=rtol)
    free = decompose(x, rtol=rtol)
    assert all(r <= min(cap, n) for r, n in zip(capped.ranks, x.shape, strict=True))
    # Mode 0 sees the same matrix (x's unfolding) with and without the cap.
    assert capped.ranks[0] == min(free.ranks[0], cap)
    if decompose is hosvd:  # every HOSVD mode sees x's unfolding
        assert capped.ranks == tuple(min(r, cap) for r in free.ranks)


@given(x=dense_tensors(), rtol=st.one_of(st.none(), st.floats(0.0, 0.5)))
def test_ranks_never_exceed_unfolding_ranks(x: np.ndarray, rtol: float | None) -> None:
    limits = _multilinear_ranks(x)
    for decompose in SVD_BASED:
        t = decompose(x, rtol=rtol)
        assert all(r <= max(q, 1) for r, q in zip(t.ranks, limits, strict=True))


@pytest.mark.parametrize(
    ("ranks", "modes", "expected"),
    [
        (3, None, (3, 3, 3, 3)),
        ((4, 3, 2, 1), None, (4, 3, 2, 1)),
        ((4, 2), (0, 1), (4, 2, 3, 3)),
        ((2, 4), (1, 0), (4, 2, 3, 3)),  # read in the order of modes
        ((4, 2, 3, 3), (0, 1), (4, 2, 3, 3)),  # the full core shape
        (np.array([4, 2]), (0, 1), (4, 2, 3, 3)),
        (np.int64(2), (0, 1), (2, 2, 3, 3)),
        (np.array(2), np.int64(3), (8, 6, 3, 2)),
        (2, 1, (8, 2, 3, 3)),
        (2, -1, (8, 6, 3, 2)),
    ],
)
def test_ranks_argument_forms(ranks: Any, modes: Any, expected: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).standard_normal((8, 6, 3, 3))
    for decompose in (hosvd, st_hosvd):
        assert decompose(x, ranks=ranks, modes=modes).ranks == expected
    assert hooi(x, ranks, modes=modes).ranks == expected


def test_partial_tucker_2_of_a_conv_kernel() -> None:
    # Tucker-2 on the channel modes (T, S) of a (T, S, kh, kw) kernel, built exactly so.
    truth = random_tucker((16, 12, 3, 3), (4, 3), modes=(0, 1), rng=5)
    kernel = truth.to_dense()
    for t in (hosvd(kernel, modes=(0, 1)), st_hosvd(kernel, modes=(0, 1))):
        assert t.modes == (0, 1) and t.factors[2] is None and t.factors[3] is None
        assert t.ranks == (4, 3, 3, 3)
        assert_tensors_close(t, kernel)
    t = hooi(kernel, (4, 3), modes=(0, 1))
    assert t.ranks == (4, 3, 3, 3)
    assert_tensors_close(t, kernel)
    assert t.num_params == 4 * 3 * 9 + 16 * 4 + 12 * 3


def test_zero_tensor_gives_rank_one_zero_core_and_orthonormal_factors() -> None:
    x = np.zeros((3, 4, 5))
    for t in (hosvd(x, rtol=0.1), st_hosvd(x), hooi(x, 2), hosvd(x, modes=(1,))):
        assert all(t.ranks[k] == 1 for k in t.modes)
        assert not np.any(np.isnan(t.to_dense()))
        assert float(t.norm()) == 0.0
        _assert_orthonormal(t)


def test_order_one_tensor() -> None:
    x = np.arange(1.0, 5.0)
    for t in (hosvd(x), st_hosvd(x), hooi(x, 1)):
        assert t.ranks == (1,)
        assert_tensors_close(t, x)


# -- HOOI ------------------------------------------------------------------------------------------
@given(x=dense_tensors(min_order=2), data=st.data())
def test_hooi_is_never_worse_than_its_hosvd_start(x: np.ndarray, data: st.DataObject) -> None:
    ranks = tuple(data.draw(st.integers(1, n)) for n in x.shape)
    start = hosvd(x, ranks=ranks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        refined = hooi(x, ranks, n_iter_max=20)
        from_random = hooi(x, ranks, n_iter_max=5, init="random", rng=0)
    slack = _slack(x.dtype) * np.linalg.norm(x)
    err = np.linalg.norm(refined.to_dense() - x)
    assert err <= np.linalg.norm(start.to_dense() - x) + slack
    # The error identity of orthonormal Tucker: ||x - t||^2 = ||x||^2 - ||core||^2.
    for t in (refined, from_random):
        _assert_orthonormal(t)
        expected = math.sqrt(max(np.linalg.norm(x) ** 2 - np.linalg.norm(t.core) ** 2, 0.0))
        assert abs(np.linalg.norm(t.to_dense() - x) - expected) <= 1e-6 * np.linalg.norm(x)


def test_hooi_improves_on_hosvd_of_a_noisy_low_rank_tensor() -> None:
    rng = np.random.default_rng(1)
    x = random_tucker((10, 11, 12), 3, rng=rng).to_dense() + 0.3 * rng.standard_normal((10, 11, 12))
    assert _rel_error(hooi(x, 3), x) < _rel_error(hosvd(x, ranks=3), x)


def test_hooi_from_a_tucker_start_is_no_worse_than_the_start() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 7, 8))
    start = TuckerTensor(
        rng.standard_normal((2, 3, 2)),
        [rng.standard_normal((6, 2)), rng.standard_normal((7, 3)), rng.standard_normal((8, 2))],
    )
    t = hooi(x, (2, 3, 2), init=start)
    assert np.linalg.norm(t.to_dense() - x) <= np.linalg.norm(start.to_dense() - x)


def test_hooi_warns_when_not_converged_and_not_when_converged() -> None:
    x = np.random.default_rng(4).standard_normal((7, 8, 9))
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 sweep: "):
        hooi(x, 3, n_iter_max=1, tol=0.0)
    exact = random_tucker((7, 8, 9), 3, rng=4).to_dense()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        hooi(exact, 3)
        hooi(exact.astype(np.float32), 3)  # round-off of float32 counts as converged
        hooi(exact, 3, init="random", rng=0)


# -- argument checks -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"modes": 3}, ValueError, "modes must be in"),
        ({"modes": (0, 0)}, ValueError, "modes must not repeat a mode"),
        ({"modes": ()}, ValueError, "modes must name at least one mode"),
        ({"modes": "01"}, TypeError, "modes must be None, an int or a sequence"),
        ({"modes": (0, 1.5)}, TypeError, r"modes\[1\] must be an integer"),
        ({"ranks": 0}, ValueError, "ranks must be >= 1"),
        ({"ranks": (2, 2)}, ValueError, "ranks must be an int, 3 ints"),
        ({"ranks": (2, 0, 2)}, ValueError, r"ranks\[1\] must be >= 1"),
        ({"ranks": "2"}, TypeError, "ranks must be an int or a sequence"),
        ({"ranks": True}, TypeError, "ranks must be an integer"),
        ({"ranks": np.array([2.5, 1, 1])}, TypeError, r"ranks\[0\] must be an integer"),
        ({"ranks": (2, 5, 5), "modes": (0,)}, ValueError, r"ranks\[1\] == 4 \(mode 1"),
        ({"rtol": -0.1}, ValueError, "rtol must be a finite real number >= 0"),
        ({"rtol": "0.1"}, TypeError, "rtol must be a real number"),
        ({"method": "fast"}, ValueError, "method must be one of 'auto', 'exact', 'randomized'"),
        ({"rng": "seed"}, TypeError, "rng must be"),
    ],
)
def test_bad_options_are_rejected_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    x = np.ones((3, 4, 5))
    for decompose in SVD_BASED:
        with pytest.raises(error, match=match):
            decompose(x, **kwargs)
    if "rtol" not in kwargs:
        ranks = kwargs.pop("ranks", 2)
        with pytest.raises(error, match=match):
            hooi(x, ranks, **kwargs)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        ("abc", TypeError, "x must be a numeric array"),
        (np.array(1.0), ValueError, "x must have at least 1 dimension"),
        (np.full((2, 3), np.nan), ValueError, "x must contain only finite values"),
        (np.ones((2, 0)), ValueError, "x must not have empty dimensions"),
    ],
)
def test_bad_data_is_rejected(x: Any, error: type[Exception], match: str) -> None:
    for decompose in SVD_BASED:
        with pytest.raises(error, match=match):
            decompose(x)
    with pytest.raises(error, match=match):
        hooi(x, 1)


def test_hooi_rejects_bad_iteration_options_and_inits() -> None:
    x = np.ones((3, 4, 5))
    with pytest.raises(ValueError, match="n_iter_max must be >= 1"):
        hooi(x, 2, n_iter_max=0)
    with pytest.raises(TypeError, match="tol must be a real number >= 0"):
        hooi(x, 2, tol=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init must be one of 'hosvd', 'st_hosvd', 'random'"):
        hooi(x, 2, init="svd")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"init must be one of .* or a TuckerTensor"):
        hooi(x, 2, init=np.ones((3, 4, 5)))  # type: ignore[arg-type]
    start = hosvd(x, ranks=2)
    with pytest.raises(ValueError, match=r"init must have ranks \(3, 3, 3\)"):
        hooi(x, 3, init=start)
    with pytest.raises(ValueError, match=r"init must factor the modes \(0, 1\)"):
        hooi(x, 2, modes=(0, 1), init=start)
    with pytest.raises(ValueError, match="init must have the shape of x"):
        hooi(np.ones((3, 4, 6)), 2, init=start)


def test_integer_input_is_promoted() -> None:
    x = np.arange(24).reshape(2, 3, 4)
    t = hosvd(x)
    assert t.dtype == np.float64
    assert_tensors_close(t, x.astype(float))


# -- the container ---------------------------------------------------------------------------------
def test_container_properties_and_repr() -> None:
    t = TuckerTensor(np.ones((2, 3, 4)), [np.ones((5, 2)), None, np.ones((6, 4))])
    assert t.shape == (5, 3, 6) and t.order == 3 and t.ranks == (2, 3, 4) and t.modes == (0, 2)
    assert t.num_params == 24 + 10 + 24
    assert t.dtype == np.float64 and t.device == "cpu"
    assert repr(t) == (
        "TuckerTensor(shape=(5, 3, 6), ranks=(2, 3, 4), modes=(0, 2), dtype=float64, num_params=58)"
    )
    assert isinstance(t.factors, tuple)
    with pytest.raises(TypeError, match="never densified implicitly"):
        np.asarray(t)


@pytest.mark.parametrize(
    ("core", "factors", "error", "match"),
    [
        ([[1.0]], [None, None], TypeError, "core must be an array"),
        (np.ones((2, 3), dtype=int), [None, None], TypeError, "core must have a floating dtype"),
        (np.ones((2, 3)), np.ones((2, 2)), TypeError, "factors must be a sequence"),
        (np.ones((2, 3)), [None], ValueError, r"one entry per mode of core \(2\)"),
        (np.ones((2, 3)), [np.ones((4, 3)), None], ValueError, r"factors\[0\] must have shape"),
        (np.ones((2, 3)), [np.ones(2), None], ValueError, r"factors\[0\] must have shape"),
        (np.ones((2, 3)), ["a", None], TypeError, r"factors\[0\] must be an array or None"),
        (np.ones((2, 3)), [np.ones((4, 2), np.float32), None], TypeError, "share one dtype"),
        (np.ones((2, 0)), [None, None], ValueError, "core must not have empty dimensions"),
    ],
)
def test_container_rejects_inconsistent_data(
    core: Any, factors: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TuckerTensor(core, factors)


# -- format-native algebra against dense -----------------------------------------------------------
@st.composite
def tucker_pairs(draw: st.DrawFn) -> tuple[TuckerTensor, TuckerTensor]:
    """Two Tucker tensors of one shape and dtype, each with its own factored modes."""
    shape = draw(shapes(min_order=1, max_order=4, max_size=5))
    dtype = draw(st.sampled_from(["float32", "float64", "complex128"]))
    seed = draw(st.integers(0, 2**32 - 1))
    a = random_tucker(shape, draw(st.integers(1, 3)), modes=draw(modes_of(len(shape))), rng=seed)
    b = random_tucker(
        shape, draw(st.integers(1, 3)), modes=draw(modes_of(len(shape))), rng=seed + 1
    )
    return _astype(a, dtype), _astype(b, dtype)


def _astype(t: TuckerTensor, dtype: str) -> TuckerTensor:
    return TuckerTensor(
        t.core.astype(dtype), [None if f is None else f.astype(dtype) for f in t.factors]
    )


@given(pair=tucker_pairs())
def test_tucker_norm_equals_dense_norm(pair: tuple[TuckerTensor, TuckerTensor]) -> None:
    a, _ = pair
    tol = 1e-5 if a.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(float(tucker_norm(a)), np.linalg.norm(a.to_dense()), rtol=tol)
    np.testing.assert_allclose(float(a.norm()), np.linalg.norm(a.to_dense()), rtol=tol)


@given(pair=tucker_pairs())
def test_tucker_add_and_sub_equal_dense(pair: tuple[TuckerTensor, TuckerTensor]) -> None:
    a, b = pair
    total = a + b
    assert_tensors_close(total, a.to_dense() + b.to_dense())
    assert_tensors_close(a - b, a.to_dense() - b.to_dense())
    assert_tensors_close(tucker_add(a, b), a.to_dense() + b.to_dense())
    assert total.modes == tuple(sorted(set(a.modes) | set(b.modes)))
    for k in total.modes:
        assert total.ranks[k] == a.ranks[k] + b.ranks[k]


@given(pair=tucker_pairs(), alpha=SCALARS)
def test_tucker_scale_and_operators_equal_dense(
    pair: tuple[TuckerTensor, TuckerTensor], alpha: float
) -> None:
    a, _ = pair
    dense = a.to_dense()
    assert_tensors_close(tucker_scale(a, alpha), alpha * dense)
    assert_tensors_close(alpha * a, alpha * dense)
    assert_tensors_close(-a, -dense)
    assume(alpha != 0)
    assert_tensors_close(a / alpha, dense / alpha)


def test_tucker_norm_of_difference_has_no_cancellation() -> None:
    t = random_tucker((5, 6, 7), 3, rng=1)
    u = random_tucker((5, 6, 7), 2, rng=2)
    assert float((t - t).norm()) <= 1e-14 * float(t.norm())
    small = t + 1e-9 * u - t
    np.testing.assert_allclose(float(small.norm()), 1e-9 * float(u.norm()), rtol=1e-5)


@given(pair=tucker_pairs(), data=st.data())
def test_tucker_mode_product_equals_dense(
    pair: tuple[TuckerTensor, TuckerTensor], data: st.DataObject
) -> None:
    a, _ = pair
    mode = data.draw(st.integers(0, a.order - 1))
    u = np.random.default_rng(0).standard_normal((data.draw(st.integers(1, 4)), a.shape[mode]))
    expected = np.moveaxis(np.tensordot(u.astype(a.dtype), a.to_dense(), axes=(1, mode)), 0, mode)
    result = tucker_mode_product(a, u.astype(a.dtype), mode)
    assert mode in result.modes and result.core.shape == a.core.shape
    assert_tensors_close(result, expected)


@given(pair=tucker_pairs())
def test_tucker_to_tt_is_exact(pair: tuple[TuckerTensor, TuckerTensor]) -> None:
    a, _ = pair
    tt = tucker_to_tt(a)
    assert tt.shape == a.shape and tt.dtype == a.dtype
    assert_tensors_close(tt, a.to_dense())
    for k in range(a.order - 1):  # bonds never exceed the core's unfolding sizes
        assert tt.ranks[k + 1] <= min(math.prod(a.ranks[: k + 1]), math.prod(a.ranks[k + 1 :]))


@given(pair=tucker_pairs(), rtol=st.floats(1e-6, 0.9))
def test_tucker_to_tt_honours_rtol_bound(
    pair: tuple[TuckerTensor, TuckerTensor], rtol: float
) -> None:
    a, _ = pair
    assume(a.dtype != np.float32)
    assert_relative_error(tucker_to_tt(a, rtol=rtol), a.to_dense(), rtol)


def test_tucker_to_tt_max_rank_caps_bonds() -> None:
    t = random_tucker((5, 6, 7, 4), 3, rng=0)
    assert max(tucker_to_tt(t, max_rank=2).ranks) == 2


def test_ops_reject_mismatched_shapes_and_types() -> None:
    a = random_tucker((3, 4), 2, rng=0)
    b = random_tucker((3, 5), 2, rng=0)
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        tucker_add(a, b)
    with pytest.raises(TypeError, match="a must be a TuckerTensor"):
        tucker_add(a.to_dense(), a)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="t must be a TuckerTensor"):
        tucker_to_dense(a.to_dense())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="u must be a matrix with 4 columns"):
        tucker_mode_product(a, np.ones((2, 3)), 1)
    with pytest.raises(ValueError, match="mode must be in"):
        tucker_mode_product(a, np.ones((2, 3)), 2)
    with pytest.raises(TypeError, match="alpha must be a number"):
        tucker_scale(a, "2")
    with pytest.raises(ZeroDivisionError):
        a / 0
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        tucker_to_tt(a, max_rank=0)


def test_mixed_precision_add_promotes() -> None:
    a = random_tucker((3, 4), 2, rng=0, dtype="float32")
    b = random_tucker((3, 4), 2, rng=1, dtype="float64")
    assert (a + b).dtype == np.float64


# -- save / load -----------------------------------------------------------------------------------
def test_save_load_round_trip_keeps_missing_factors(tmp_path: Path) -> None:
    register_format(TuckerTensor)  # a no-op once tensornet.formats exports it
    t = random_tucker((6, 5, 3, 3), (3, 2), modes=(0, 1), rng=0, dtype="float32")
    back = load(save(tmp_path / "tucker", t))
    assert type(back) is TuckerTensor
    assert back.modes == (0, 1) and back.factors[2] is None and back.factors[3] is None
    assert back.core.dtype == np.float32
    assert np.array_equal(back.core, t.core)
    assert all(
        (f is None and g is None) or np.array_equal(f, g)
        for f, g in zip(back.factors, t.factors, strict=True)
    )


# -- torch tensors through the same code ---------------------------------------------------------
@pytest.mark.parametrize("dtype_name", ["float32", "float64", "complex64"])
def test_torch_tensors_keep_type_and_dtype(dtype_name: str) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    x = torch.randn(5, 6, 7, dtype=dtype, generator=torch.Generator().manual_seed(0))
    results = [
        hosvd(x, rtol=0.3),
        st_hosvd(x, ranks=3, modes=(0, 2)),
        hooi(x, 3),
        hooi(x, 2, init="random", rng=0),
    ]
    results += [results[0] + results[1], 2 * results[0]]
    for t in results:
        arrays = [t.core, *(f for f in t.factors if f is not None)]
        assert all(isinstance(a, torch.Tensor) and a.dtype == dtype for a in arrays)
    assert isinstance(results[0].norm(), torch.Tensor)
    err = torch.linalg.vector_norm(results[0].to_dense() - x) / torch.linalg.vector_norm(x)
    assert float(err) <= 0.3 + 1e-5
    tt = tucker_to_tt(results[2])
    assert all(isinstance(c, torch.Tensor) and c.dtype == dtype for c in tt.cores)


@pytest.mark.cuda
def test_cuda_tensors_stay_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(16, 12, 3, 3, device="cuda")
    for t in (hosvd(x, rtol=0.3), st_hosvd(x, modes=(0, 1)), hooi(x, (4, 3), modes=(0, 1))):
        assert t.core.is_cuda and all(f.is_cuda for f in t.factors if f is not None)
        assert t.dtype == torch.float32
        assert t.norm().is_cuda
        assert all(c.is_cuda for c in tucker_to_tt(t).cores)
