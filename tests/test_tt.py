"""Tensor train: decomposition bounds, rounding, and format-native ops against dense."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensornet as tn
from tensornet.random import random_tt
from tensornet.testing import assert_relative_error, assert_tensors_close, shapes, tt_tensors

DTYPES = ["float32", "float64", "complex128"]

# scale factors whose products stay normal numbers in float32
SCALARS = st.floats(-3, 3).filter(lambda a: a == 0 or abs(a) > 1e-6)


def _slack(dtype: object) -> float:
    """Round-off allowance for a bound checked in ``dtype``."""
    return 100 * float(np.finfo(np.dtype(dtype)).eps)


def _unfolding_rank(x: np.ndarray, k: int) -> int:
    mat = x.reshape(math.prod(x.shape[: k + 1]), -1)
    return int(np.linalg.matrix_rank(mat))


@st.composite
def dense_tensors(draw: st.DrawFn, dtype: str = "float64") -> np.ndarray:
    """Dense tensors: either random, or low TT rank plus a little noise (decaying spectra)."""
    shape = draw(shapes(min_order=1, max_order=5, max_size=6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = random_tt(shape, 2, rng=rng, dtype=dtype).to_dense()
        x = x + 1e-3 * rng.standard_normal(shape).astype(x.dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
        if np.dtype(dtype).kind == "c":
            x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x, dtype=dtype)


# -- TT-SVD ---------------------------------------------------------------------------------
@given(x=dense_tensors(), rtol=st.floats(1e-8, 0.9))
def test_tt_svd_honours_rtol_bound(x: np.ndarray, rtol: float) -> None:
    t = tn.tt_svd(x, rtol=rtol)
    err = np.linalg.norm(t.to_dense() - x)
    assert err <= rtol * np.linalg.norm(x) + _slack(x.dtype) * np.linalg.norm(x)


@given(x=dense_tensors(), rtol=st.floats(1e-4, 0.9), seed=st.integers(0, 1000))
def test_tt_svd_randomized_honours_rtol_bound(x: np.ndarray, rtol: float, seed: int) -> None:
    t = tn.tt_svd(x, rtol=rtol, method="randomized", rng=seed)
    err = np.linalg.norm(t.to_dense() - x)
    assert err <= rtol * np.linalg.norm(x) * (1 + 1e-6) + _slack(x.dtype) * np.linalg.norm(x)


@given(x=dense_tensors(dtype="float32"), rtol=st.floats(1e-3, 0.9))
def test_tt_svd_float32_honours_rtol_bound_and_stays_float32(x: np.ndarray, rtol: float) -> None:
    t = tn.tt_svd(x, rtol=rtol)
    assert t.dtype == np.float32
    err = np.linalg.norm((t.to_dense() - x).astype(np.float64))
    assert err <= (rtol + _slack(np.float32)) * np.linalg.norm(x.astype(np.float64))


@given(x=dense_tensors(dtype="complex128"), rtol=st.floats(1e-8, 0.9))
def test_tt_svd_complex_honours_rtol_bound(x: np.ndarray, rtol: float) -> None:
    t = tn.tt_svd(x, rtol=rtol)
    assert t.dtype == np.complex128
    assert np.linalg.norm(t.to_dense() - x) <= (rtol + _slack(x.dtype)) * np.linalg.norm(x)


@given(t=tt_tensors(max_order=5, max_size=5, max_rank=4))
def test_tt_svd_recovers_tt_exactly_at_full_rank(t: tn.TTTensor) -> None:
    x = t.to_dense()
    s = tn.tt_svd(x)
    assert_tensors_close(s, x)
    assert all(a <= b for a, b in zip(s.ranks, t.ranks, strict=False))


@given(x=dense_tensors(), rtol=st.one_of(st.none(), st.floats(0.0, 0.5)))
def test_tt_svd_ranks_never_exceed_unfolding_ranks(x: np.ndarray, rtol: float | None) -> None:
    t = tn.tt_svd(x, rtol=rtol)
    for k in range(x.ndim - 1):
        assert t.ranks[k + 1] <= max(_unfolding_rank(x, k), 1)


@given(x=dense_tensors(), cap=st.integers(1, 4), rtol=st.one_of(st.none(), st.floats(0.0, 0.5)))
def test_tt_svd_max_rank_caps_every_bond(x: np.ndarray, cap: int, rtol: float | None) -> None:
    t = tn.tt_svd(x, rtol=rtol, max_rank=cap)
    assert max(t.ranks) <= cap
    if x.ndim > 1:  # the first bond sees the same unfolding with and without the cap
        assert t.ranks[1] == min(tn.tt_svd(x, rtol=rtol).ranks[1], cap)


def test_tt_svd_per_bond_max_rank() -> None:
    x = np.random.default_rng(0).standard_normal((4, 5, 6, 7))
    assert tn.tt_svd(x, max_rank=[2, 3, 4]).ranks == (1, 2, 3, 4, 1)


def test_tt_svd_zero_tensor_gives_rank_one_zero_cores() -> None:
    t = tn.tt_svd(np.zeros((3, 4, 5)), rtol=0.1)
    assert t.ranks == (1, 1, 1, 1)
    assert not np.any(np.isnan(t.to_dense()))
    assert float(t.norm()) == 0.0


def test_tt_svd_order_one() -> None:
    t = tn.tt_svd(np.arange(1.0, 5.0))
    assert t.ranks == (1, 1)
    np.testing.assert_array_equal(t.to_dense(), np.arange(1.0, 5.0))


def test_tt_svd_rank_deficient_unfoldings() -> None:
    rng = np.random.default_rng(5)
    x = np.einsum("ia,ja,ka->ijk", *(rng.standard_normal((n, 2)) for n in (6, 7, 8)))
    t = tn.tt_svd(x)
    assert t.ranks == (1, 2, 2, 1)
    assert_tensors_close(t, x)


# -- rounding ---------------------------------------------------------------------------------
@given(t=tt_tensors(min_order=2, max_order=5, max_size=5, max_rank=4))
def test_tt_round_of_sum_restores_ranks(t: tn.TTTensor) -> None:
    minimal = tn.tt_round(t)
    doubled = tn.tt_round(minimal + minimal)
    assert doubled.ranks == minimal.ranks
    assert_tensors_close(doubled, 2 * t.to_dense())


@given(t=tt_tensors(min_order=2, max_order=5, max_size=5, max_rank=4), rtol=st.floats(1e-6, 0.9))
def test_tt_round_honours_rtol_bound(t: tn.TTTensor, rtol: float) -> None:
    r = tn.tt_round(t, rtol=rtol)
    assert_relative_error(r.to_dense(), t.to_dense(), rtol)
    assert all(a <= b for a, b in zip(r.ranks, t.ranks, strict=False))


def test_max_rank_takes_a_tt_ranks_tuple() -> None:
    x = np.asarray(tn.random_tt((4, 5, 6, 7), 3, rng=0).to_dense())
    full = tn.tt_svd(x, rtol=1e-10)
    assert tn.tt_svd(x, max_rank=full.ranks).ranks == full.ranks
    assert tn.tt_svd(x, max_rank=(1, 2, 3, 2, 1)).ranks == (1, 2, 3, 2, 1)
    assert tn.tt_round(full, max_rank=[1, 2, 2, 2, 1]).ranks == (1, 2, 2, 2, 1)
    with pytest.raises(ValueError, match=r"read as TTTensor\.ranks and must start and end with 1"):
        tn.tt_svd(x, max_rank=(2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="sequence of 3 ints"):
        tn.tt_svd(x, max_rank=(2, 2))


def test_tt_round_max_rank_and_zero() -> None:
    t = random_tt((4, 4, 4, 4), 3, rng=0)
    assert max(tn.tt_round(t, max_rank=2).ranks) == 2
    zero = tn.tt_round(t - t, rtol=0.1)
    assert zero.ranks == (1, 1, 1, 1, 1)
    assert float(zero.norm()) == 0.0


# -- format-native algebra against dense ---------------------------------------------------------
@st.composite
def tt_pairs(draw: st.DrawFn) -> tuple[tn.TTTensor, tn.TTTensor]:
    shape = draw(shapes(min_order=1, max_order=4, max_size=4))
    seed = draw(st.integers(0, 2**32 - 1))
    dtype = draw(st.sampled_from(DTYPES))
    a = random_tt(shape, draw(st.integers(1, 3)), rng=seed, dtype=dtype)
    b = random_tt(shape, draw(st.integers(1, 3)), rng=seed + 1, dtype=dtype)
    return a, b


@given(pair=tt_pairs())
def test_tt_add_and_sub_equal_dense(pair: tuple[tn.TTTensor, tn.TTTensor]) -> None:
    a, b = pair
    assert_tensors_close(a + b, a.to_dense() + b.to_dense())
    assert_tensors_close(a - b, a.to_dense() - b.to_dense())
    assert (a + b).ranks[1:-1] == tuple(
        x + y for x, y in zip(a.ranks[1:-1], b.ranks[1:-1], strict=False)
    )


@given(pair=tt_pairs())
def test_tt_hadamard_equals_dense_product(pair: tuple[tn.TTTensor, tn.TTTensor]) -> None:
    a, b = pair
    assert_tensors_close(tn.tt_hadamard(a, b), a.to_dense() * b.to_dense())


@given(pair=tt_pairs())
def test_tt_inner_equals_dense_vdot(pair: tuple[tn.TTTensor, tn.TTTensor]) -> None:
    a, b = pair
    expected = np.vdot(a.to_dense(), b.to_dense())
    tol = 1e-4 if a.dtype == np.float32 else 1e-10
    scale = float(np.linalg.norm(a.to_dense()) * np.linalg.norm(b.to_dense()))
    assert abs(complex(tn.tt_inner(a, b)) - expected) <= tol * scale


@given(pair=tt_pairs())
def test_tt_norm_equals_dense_norm(pair: tuple[tn.TTTensor, tn.TTTensor]) -> None:
    a, _ = pair
    tol = 1e-5 if a.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(float(tn.tt_norm(a)), np.linalg.norm(a.to_dense()), rtol=tol)


def test_tt_norm_of_difference_has_no_cancellation() -> None:
    t = random_tt((5, 5, 5, 5), 3, rng=1)
    u = t + tn.tt_scale(t, 1e-9)
    diff = float(tn.tt_norm(u - t))
    np.testing.assert_allclose(diff, 1e-9 * float(t.norm()), rtol=1e-5)


@given(pair=tt_pairs(), alpha=SCALARS)
def test_tt_scale_and_operators_equal_dense(
    pair: tuple[tn.TTTensor, tn.TTTensor], alpha: float
) -> None:
    a, _ = pair
    dense = a.to_dense()
    assert_tensors_close(tn.tt_scale(a, alpha), alpha * dense)
    assert_tensors_close(alpha * a, alpha * dense)
    assert_tensors_close(a * alpha, alpha * dense)
    assert_tensors_close(-a, -dense)
    assume(abs(alpha) > 1e-3)
    assert_tensors_close(a / alpha, dense / alpha)


@given(pair=tt_pairs(), data=st.data())
def test_tt_mode_product_equals_dense(
    pair: tuple[tn.TTTensor, tn.TTTensor], data: st.DataObject
) -> None:
    a, _ = pair
    mode = data.draw(st.integers(0, a.order - 1))
    rows = data.draw(st.integers(1, 4))
    u = np.random.default_rng(0).standard_normal((rows, a.shape[mode])).astype(a.dtype)
    expected = np.moveaxis(np.tensordot(u, a.to_dense(), axes=(1, mode)), 0, mode)
    assert_tensors_close(tn.tt_mode_product(a, u, mode), expected)


@given(pair=tt_pairs(), data=st.data())
def test_tt_orthogonalize_keeps_tensor_and_orthogonality(
    pair: tuple[tn.TTTensor, tn.TTTensor], data: st.DataObject
) -> None:
    a, _ = pair
    center = data.draw(st.integers(0, a.order - 1))
    o = tn.tt_orthogonalize(a, center)
    assert_tensors_close(o, a.to_dense())
    tol = 1e-5 if a.dtype == np.float32 else 1e-12
    for k, core in enumerate(o.cores):
        r, n, s = core.shape
        if k < center:
            m = core.reshape(r * n, s)
            np.testing.assert_allclose(m.conj().T @ m, np.eye(s), atol=tol)
        elif k > center:
            m = core.reshape(r, n * s)
            np.testing.assert_allclose(m @ m.conj().T, np.eye(r), atol=tol)


@given(t=tt_tensors(max_order=4, max_size=5, max_rank=3), data=st.data())
def test_tt_getitem_matches_dense_indexing(t: tn.TTTensor, data: st.DataObject) -> None:
    dense = t.to_dense()
    index = []
    for n in t.shape:
        if data.draw(st.booleans()):
            index.append(data.draw(st.integers(-n, n - 1)))
        else:
            start = data.draw(st.integers(0, n - 1))
            stop = data.draw(st.integers(start + 1, n))
            index.append(slice(start, stop, data.draw(st.sampled_from([1, 2]))))
    result = t[tuple(index)]
    expected = dense[tuple(index)]
    if isinstance(result, tn.TTTensor):
        assert_tensors_close(result, expected)
    else:
        np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_tt_getitem_ellipsis_and_errors() -> None:
    t = random_tt((3, 4, 5), 2, rng=0)
    np.testing.assert_allclose(t[..., 2].to_dense(), t.to_dense()[..., 2])
    np.testing.assert_allclose(t[1, ...].to_dense(), t.to_dense()[1])
    with pytest.raises(IndexError, match="out of bounds"):
        t[3, 0, 0]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0, 0]
    with pytest.raises(IndexError, match="selects no entries"):
        t[2:1]
    with pytest.raises(TypeError, match="must be an integer"):
        t[0.5]


def test_formats_never_densify_implicitly() -> None:
    t = random_tt((3, 4), 2, rng=0)
    with pytest.raises(TypeError, match="never densified implicitly"):
        np.asarray(t)


def test_ops_reject_mismatched_shapes_and_types() -> None:
    a = random_tt((3, 4), 2, rng=0)
    b = random_tt((3, 5), 2, rng=0)
    with pytest.raises(ValueError, match="same shape"):
        tn.tt_add(a, b)
    with pytest.raises(ValueError, match="same shape"):
        tn.tt_inner(a, b)
    with pytest.raises(TypeError, match="a must be a TTTensor"):
        tn.tt_add(a.to_dense(), a)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="u must be a matrix with 4 columns"):
        tn.tt_mode_product(a, np.ones((2, 3)), 1)
    with pytest.raises(ZeroDivisionError):
        a / 0
    with pytest.raises(TypeError, match="alpha must be a number"):
        tn.tt_scale(a, "2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha must be finite"):
        tn.tt_scale(a, float("inf"))


def test_mixed_precision_add_promotes() -> None:
    a = random_tt((3, 4), 2, rng=0, dtype="float32")
    b = random_tt((3, 4), 2, rng=1, dtype="float64")
    assert (a + b).dtype == np.float64


def test_repr_is_a_summary() -> None:
    t = random_tt((3, 4, 5), 2, rng=0)
    assert repr(t) == "TTTensor(shape=(3, 4, 5), ranks=(1, 2, 2, 1), dtype=float64, num_params=32)"


# -- torch tensors through the same code ------------------------------------------------------
@pytest.mark.parametrize("dtype_name", ["float32", "float64", "complex64"])
def test_torch_tensors_keep_type_dtype_through_tt_ops(dtype_name: str) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 6, dtype=dtype, generator=gen)
    t = tn.tt_svd(x, rtol=0.3)
    results = [t, tn.tt_round(t + t, rtol=0.1), tn.tt_hadamard(t, t), 2 * t, t[1:3, :, 2]]
    for r in results:
        assert all(isinstance(c, torch.Tensor) and c.dtype == dtype for c in r.cores)
    err = torch.linalg.vector_norm(t.to_dense() - x) / torch.linalg.vector_norm(x)
    assert float(err) <= 0.3 + 1e-5
    assert isinstance(tn.tt_inner(t, t), torch.Tensor)
    rand = tn.tt_svd(x, max_rank=2, method="randomized", rng=0)
    assert rand.cores[0].dtype == dtype


@pytest.mark.cuda
def test_cuda_tensors_stay_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(6, 7, 8, 9, device="cuda")
    for method in ("exact", "randomized"):
        t = tn.tt_svd(x, rtol=0.2, max_rank=5, method=method)  # type: ignore[arg-type]
        assert all(c.is_cuda and c.dtype == torch.float32 for c in t.cores)
        r = tn.tt_round(t + t, rtol=1e-3)
        assert all(c.is_cuda for c in r.cores)
        assert tn.tt_norm(r).is_cuda


def test_tt_round_keeps_small_but_resolvable_content() -> None:
    t = random_tt((4, 5, 6, 7), 3, rng=2)
    u = random_tt((4, 5, 6, 7), 2, rng=3)
    small = tn.tt_round(t + 1e-6 * u - t)
    assert max(small.ranks) <= 2
    assert_relative_error(small.to_dense(), 1e-6 * u.to_dense(), 1e-6)


def test_tt_round_honours_tight_rtol_on_long_orthonormal_trains() -> None:
    # Left-orthonormal cores have ||G_k||_F = sqrt(r_k): a round-off floor built from
    # Frobenius norms would sit at d * eps * prod sqrt(r_k) ~ 1e-9 here and break the bound.
    levels = 16
    grid = np.linspace(0.0, 1.0, 2**levels)
    f = tn.tt_svd((np.sin(40 * np.pi * grid) * np.exp(-3 * grid)).reshape((2,) * levels))
    g = tn.tt_svd((1.0 / (1.0 + grid**2)).reshape((2,) * levels), rtol=1e-12)
    s = f + g
    r = tn.tt_round(s, rtol=1e-11)
    assert r.num_params < s.num_params
    assert_relative_error(r.to_dense(), s.to_dense(), 1e-11)
