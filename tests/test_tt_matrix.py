"""TT-matrix format: every operation against its dense counterpart, and ttm_from_dense."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensornet.decompose.tt_matrix import ttm_from_dense
from tensornet.decompose.tt_svd import tt_svd
from tensornet.formats.tt import TTTensor
from tensornet.formats.tt_matrix import (
    TTMatrix,
    tt_to_ttm,
    ttm_add,
    ttm_inner,
    ttm_matmul,
    ttm_matvec,
    ttm_norm,
    ttm_round,
    ttm_scale,
    ttm_to_dense,
    ttm_to_tt,
    ttm_transpose,
)

DTYPES = [np.float32, np.float64, np.complex128]
SEEDS = st.integers(0, 2**32 - 1)


# -- helpers -----------------------------------------------------------------------------------
def eps(dtype: Any) -> float:
    return float(np.finfo(dtype).eps)


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    values = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def random_ttm(
    rng: np.random.Generator,
    row_shape: tuple[int, ...],
    col_shape: tuple[int, ...],
    ranks: tuple[int, ...],
    dtype: Any,
) -> TTMatrix:
    return TTMatrix(
        [
            random_array(rng, (ranks[k], m, n, ranks[k + 1]), dtype)
            for k, (m, n) in enumerate(zip(row_shape, col_shape, strict=True))
        ]
    )


def random_tt(
    rng: np.random.Generator, shape: tuple[int, ...], ranks: tuple[int, ...], dtype: Any
) -> TTTensor:
    return TTTensor(
        [random_array(rng, (ranks[k], n, ranks[k + 1]), dtype) for k, n in enumerate(shape)]
    )


def core_scale(cores: tuple[np.ndarray, ...]) -> float:
    """Product of the cores' Frobenius norms: an upper bound of the dense norm."""
    return math.prod(float(np.linalg.norm(c)) for c in cores)


def assert_close(actual: object, expected: object, *, scale: float, dtype: Any) -> None:
    """||actual - expected|| <= 100 eps(dtype) scale, with a message showing both sides."""
    diff = np.asarray(actual) - np.asarray(expected)
    err = float(np.linalg.norm(diff))
    bound = 100 * eps(dtype) * scale
    assert err <= bound, f"error {err:.3e} > bound {bound:.3e} (eps={eps(dtype):.1e})"


def reference_dense(t: TTMatrix) -> np.ndarray:
    """Entry-wise definition: A[i, j] = G_0[:, i_0, j_0, :] @ ... @ G_{d-1}[:, i_, j_, :]."""
    rows, cols = t.shape
    out = np.empty((rows, cols), dtype=t.dtype)
    for i in range(rows):
        ii = np.unravel_index(i, t.row_shape)
        for j in range(cols):
            jj = np.unravel_index(j, t.col_shape)
            prod = np.eye(1, dtype=t.dtype)
            for core, ik, jk in zip(t.cores, ii, jj, strict=True):
                prod = prod @ core[:, ik, jk, :]
            out[i, j] = prod[0, 0]
    return out


@st.composite
def ttm_specs(
    draw: st.DrawFn, *, max_order: int = 3, max_dim: int = 3, max_rank: int = 3
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]:
    """(row_shape, col_shape, ranks, seed) of a small random TT-matrix."""
    d = draw(st.integers(1, max_order))
    dims = st.lists(st.integers(1, max_dim), min_size=d, max_size=d)
    rows = tuple(draw(dims))
    cols = tuple(draw(dims))
    bonds = draw(st.lists(st.integers(1, max_rank), min_size=d - 1, max_size=d - 1))
    return rows, cols, (1, *bonds, 1), draw(SEEDS)


# -- container ---------------------------------------------------------------------------------
def test_ttmatrix_summary_properties() -> None:
    a = TTMatrix([np.ones((1, 2, 3, 2)), np.ones((2, 4, 5, 3)), np.ones((3, 1, 2, 1))])
    assert a.row_shape == (2, 4, 1)
    assert a.col_shape == (3, 5, 2)
    assert a.shape == (8, 30)
    assert a.order == 3
    assert a.ranks == (1, 2, 3, 1)
    assert a.num_params == 12 + 120 + 6
    assert a.size == 240
    assert a.dtype == np.float64
    assert a.device == "cpu"
    assert repr(a) == (
        "TTMatrix(row_shape=(2, 4, 1), col_shape=(3, 5, 2), ranks=(1, 2, 3, 1), "
        "dtype=float64, num_params=138)"
    )


def test_ttmatrix_is_immutable_and_never_densified_implicitly() -> None:
    a = TTMatrix([np.ones((1, 2, 2, 1))])
    with pytest.raises(AttributeError):
        a.cores = ()  # type: ignore[misc]
    with pytest.raises(TypeError, match="never densified implicitly"):
        np.asarray(a)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs())
def test_ttm_to_dense_matches_entrywise_definition(dtype: Any, spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    a = random_ttm(np.random.default_rng(seed), rows, cols, ranks, dtype)
    dense = a.to_dense()
    assert dense.shape == a.shape
    assert dense.dtype == dtype
    assert_close(dense, reference_dense(a), scale=core_scale(a.cores), dtype=dtype)
    assert_close(ttm_to_dense(a), dense, scale=core_scale(a.cores), dtype=dtype)


@given(spec=ttm_specs())
def test_ttm_to_tt_and_back_is_identity_on_the_merged_view(spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    a = random_ttm(np.random.default_rng(seed), rows, cols, ranks, np.float64)
    t = ttm_to_tt(a)
    assert t.shape == tuple(m * n for m, n in zip(rows, cols, strict=True))
    assert t.ranks == a.ranks
    # Merged mode k is (i_k, j_k) in C order: permute the dense matrix to (m_0, n_0, m_1, ...).
    d = len(rows)
    interleaved = [axis for k in range(d) for axis in (k, d + k)]
    expected = a.to_dense().reshape(rows + cols).transpose(interleaved).reshape(t.shape)
    assert_close(t.to_dense(), expected, scale=core_scale(a.cores), dtype=np.float64)
    back = tt_to_ttm(t, rows, cols)
    for c, c0 in zip(back.cores, a.cores, strict=True):
        np.testing.assert_array_equal(c, c0)


# -- products ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs(), x_bonds=st.lists(st.integers(1, 3), min_size=2, max_size=2))
def test_ttm_matvec_of_tt_equals_dense_matvec(dtype: Any, spec: tuple, x_bonds: list) -> None:
    rows, cols, ranks, seed = spec
    rng = np.random.default_rng(seed)
    a = random_ttm(rng, rows, cols, ranks, dtype)
    x_ranks = (1, *x_bonds[: len(cols) - 1], 1)
    x = random_tt(rng, cols, x_ranks, dtype)
    y = ttm_matvec(a, x)
    assert isinstance(y, TTTensor)
    assert y.shape == rows
    assert y.ranks == tuple(r * s for r, s in zip(a.ranks, x.ranks, strict=True))
    assert y.dtype == dtype
    expected = a.to_dense() @ x.to_dense().reshape(-1)
    scale = core_scale(a.cores) * core_scale(x.cores)
    assert_close(y.to_dense().reshape(-1), expected, scale=scale, dtype=dtype)
    assert_close((a @ x).to_dense(), y.to_dense(), scale=scale, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs())
def test_ttm_matvec_of_dense_vector_equals_dense_matvec(dtype: Any, spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    rng = np.random.default_rng(seed)
    a = random_ttm(rng, rows, cols, ranks, dtype)
    x = random_array(rng, (a.shape[1],), dtype)
    expected = a.to_dense() @ x
    scale = core_scale(a.cores) * float(np.linalg.norm(x))
    flat = ttm_matvec(a, x)
    assert flat.shape == (a.shape[0],)
    assert flat.dtype == dtype
    assert_close(flat, expected, scale=scale, dtype=dtype)
    tensor = a @ x.reshape(cols)
    assert tensor.shape == rows
    assert_close(tensor.reshape(-1), expected, scale=scale, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs(), b_cols=st.lists(st.integers(1, 3), min_size=3, max_size=3))
def test_ttm_matmul_equals_dense_matmul(dtype: Any, spec: tuple, b_cols: list) -> None:
    rows, cols, ranks, seed = spec
    rng = np.random.default_rng(seed)
    a = random_ttm(rng, rows, cols, ranks, dtype)
    b = random_ttm(rng, cols, tuple(b_cols[: len(cols)]), ranks[::-1], dtype)
    c = ttm_matmul(a, b)
    assert c.row_shape == a.row_shape
    assert c.col_shape == b.col_shape
    assert c.ranks == tuple(r * s for r, s in zip(a.ranks, b.ranks, strict=True))
    scale = core_scale(a.cores) * core_scale(b.cores)
    assert_close(c.to_dense(), a.to_dense() @ b.to_dense(), scale=scale, dtype=dtype)
    assert_close((a @ b).to_dense(), c.to_dense(), scale=scale, dtype=dtype)


# -- linear combinations, transpose, norm ------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs(), alpha=st.floats(-3, 3, allow_nan=False))
def test_ttm_add_and_scale_equal_dense_linear_combinations(
    dtype: Any, spec: tuple, alpha: float
) -> None:
    rows, cols, ranks, seed = spec
    rng = np.random.default_rng(seed)
    a = random_ttm(rng, rows, cols, ranks, dtype)
    b = random_ttm(rng, rows, cols, ranks[::-1], dtype)
    da, db = a.to_dense(), b.to_dense()
    scale = core_scale(a.cores) + core_scale(b.cores)
    total = ttm_add(a, b)
    assert total.ranks[1:-1] == tuple(r + s for r, s in zip(a.ranks, b.ranks, strict=True))[1:-1]
    assert total.dtype == dtype
    assert_close(total.to_dense(), da + db, scale=scale, dtype=dtype)
    assert_close((a - b).to_dense(), da - db, scale=scale, dtype=dtype)
    scaled = ttm_scale(a, alpha)
    assert scaled.dtype == dtype
    assert_close(scaled.to_dense(), alpha * da, scale=3 * scale, dtype=dtype)
    assert_close((alpha * a).to_dense(), alpha * da, scale=3 * scale, dtype=dtype)
    assert_close((a * alpha).to_dense(), alpha * da, scale=3 * scale, dtype=dtype)
    assert_close((-a).to_dense(), -da, scale=scale, dtype=dtype)
    assert_close((a / 4).to_dense(), da / 4, scale=scale, dtype=dtype)


def test_ttm_scale_by_complex_promotes_every_core() -> None:
    a = random_ttm(np.random.default_rng(0), (2, 3), (3, 2), (1, 2, 1), np.float64)
    scaled = ttm_scale(a, 2j)
    assert scaled.dtype == np.complex128
    assert all(c.dtype == np.complex128 for c in scaled.cores)
    np.testing.assert_allclose(scaled.to_dense(), 2j * a.to_dense(), rtol=100 * eps(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs())
def test_ttm_transpose_equals_dense_transpose(dtype: Any, spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    a = random_ttm(np.random.default_rng(seed), rows, cols, ranks, dtype)
    t = ttm_transpose(a)
    assert (t.row_shape, t.col_shape, t.ranks) == (cols, rows, a.ranks)
    # The contraction order may differ from a's (round-off only); the transposed cores are exact.
    assert_close(t.to_dense(), a.to_dense().T, scale=core_scale(a.cores), dtype=dtype)
    for c, c0 in zip(t.cores, a.cores, strict=True):
        np.testing.assert_array_equal(c, np.transpose(c0, (0, 2, 1, 3)))
    for c, c0 in zip(a.T.T.cores, a.cores, strict=True):
        np.testing.assert_array_equal(c, c0)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs())
def test_ttm_norm_and_inner_equal_dense_frobenius(dtype: Any, spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    rng = np.random.default_rng(seed)
    a = random_ttm(rng, rows, cols, ranks, dtype)
    b = random_ttm(rng, rows, cols, ranks, dtype)
    da, db = a.to_dense(), b.to_dense()
    scale = core_scale(a.cores)
    assert abs(float(a.norm()) - np.linalg.norm(da)) <= 100 * eps(dtype) * scale
    assert abs(float(ttm_norm(a)) - np.linalg.norm(da)) <= 100 * eps(dtype) * scale
    inner = complex(ttm_inner(a, b))
    assert abs(inner - np.vdot(da, db)) <= 100 * eps(dtype) * scale * core_scale(b.cores)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=ttm_specs())
def test_ttm_round_of_sum_restores_ranks(dtype: Any, spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    a = ttm_round(random_ttm(np.random.default_rng(seed), rows, cols, ranks, dtype))
    doubled = a + a
    assert doubled.ranks[1:-1] == tuple(2 * r for r in a.ranks[1:-1])
    rounded = doubled.round()
    assert rounded.ranks == a.ranks
    assert rounded.dtype == dtype
    assert_close(rounded.to_dense(), 2 * a.to_dense(), scale=2 * core_scale(a.cores), dtype=dtype)


@given(spec=ttm_specs(), rtol=st.floats(1e-3, 0.9))
def test_ttm_round_meets_rtol_bound(spec: tuple, rtol: float) -> None:
    rows, cols, ranks, seed = spec
    a = random_ttm(np.random.default_rng(seed), rows, cols, ranks, np.float64)
    rounded = ttm_round(a, rtol=rtol)
    assert all(r <= s for r, s in zip(rounded.ranks, a.ranks, strict=True))
    dense = a.to_dense()
    err = np.linalg.norm(rounded.to_dense() - dense)
    assert err <= rtol * np.linalg.norm(dense) + 100 * eps(np.float64) * core_scale(a.cores)


def test_ttm_round_max_rank_caps_every_bond() -> None:
    a = random_ttm(np.random.default_rng(1), (2, 3, 2), (3, 2, 2), (1, 3, 3, 1), np.float64)
    assert ttm_round(a, max_rank=2).ranks == (1, 2, 2, 1)
    assert a.round(max_rank=[1, 2]).ranks == (1, 1, 2, 1)


# -- ttm_from_dense ----------------------------------------------------------------------------
@st.composite
def matrix_specs(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    d = draw(st.integers(1, 3))
    dims = st.lists(st.integers(1, 4), min_size=d, max_size=d)
    return tuple(draw(dims)), tuple(draw(dims)), draw(SEEDS)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=matrix_specs())
def test_ttm_from_dense_is_exact_at_full_rank(dtype: Any, spec: tuple) -> None:
    rows, cols, seed = spec
    matrix = random_array(np.random.default_rng(seed), (math.prod(rows), math.prod(cols)), dtype)
    t = ttm_from_dense(matrix, rows, cols)
    assert (t.row_shape, t.col_shape) == (rows, cols)
    assert t.dtype == dtype
    assert_close(t.to_dense(), matrix, scale=float(np.linalg.norm(matrix)), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(spec=matrix_specs(), rtol=st.floats(1e-3, 0.9))
def test_ttm_from_dense_meets_rtol_bound(dtype: Any, spec: tuple, rtol: float) -> None:
    rows, cols, seed = spec
    matrix = random_array(np.random.default_rng(seed), (math.prod(rows), math.prod(cols)), dtype)
    t = ttm_from_dense(matrix, rows, cols, rtol=rtol)
    full = ttm_from_dense(matrix, rows, cols)
    assert all(r <= s for r, s in zip(t.ranks, full.ranks, strict=True))
    norm = float(np.linalg.norm(matrix))
    err = float(np.linalg.norm(t.to_dense() - matrix))
    assert err <= rtol * norm + 100 * eps(dtype) * norm


@given(spec=ttm_specs(max_rank=2))
def test_ttm_from_dense_recovers_a_low_rank_ttm(spec: tuple) -> None:
    rows, cols, ranks, seed = spec
    a = random_ttm(np.random.default_rng(seed), rows, cols, ranks, np.float64)
    dense = a.to_dense()
    # rtol well above round-off: with rtol=None, round-off carried from one SVD to the next
    # can sit just above the numerical-rank threshold and keep a spurious direction.
    rtol = 1e-8
    t = ttm_from_dense(dense, rows, cols, rtol=rtol)
    assert all(r <= s for r, s in zip(t.ranks, a.ranks, strict=True))
    err = float(np.linalg.norm(t.to_dense() - dense))
    assert err <= rtol * float(np.linalg.norm(dense))


def test_ttm_from_dense_max_rank_caps_ranks_and_randomized_path_agrees() -> None:
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((64, 64))
    capped = ttm_from_dense(matrix, (4, 4, 4), (4, 4, 4), max_rank=3)
    assert capped.ranks == (1, 3, 3, 1)
    exact = ttm_from_dense(matrix, (4, 4, 4), (4, 4, 4), rtol=0.3, method="exact")
    randomized = ttm_from_dense(matrix, (4, 4, 4), (4, 4, 4), rtol=0.3, method="randomized", rng=0)
    norm = np.linalg.norm(matrix)
    for t in (exact, randomized):
        assert np.linalg.norm(t.to_dense() - matrix) <= 0.3 * norm


def test_ttm_from_dense_of_zero_matrix_is_rank_one_zero() -> None:
    t = ttm_from_dense(np.zeros((6, 4)), (2, 3), (2, 2), rtol=0.1)
    assert t.ranks == (1, 1, 1)
    np.testing.assert_array_equal(t.to_dense(), np.zeros((6, 4)))
    assert float(t.norm()) == 0.0


def test_ttm_from_dense_of_kronecker_product_has_rank_one() -> None:
    rng = np.random.default_rng(5)
    factors = [rng.standard_normal((m, n)) for m, n in ((2, 3), (3, 2), (2, 2))]
    matrix = np.kron(np.kron(factors[0], factors[1]), factors[2])
    t = ttm_from_dense(matrix, (2, 3, 2), (3, 2, 2), rtol=1e-10)
    assert t.ranks == (1, 1, 1, 1)
    assert_close(t.to_dense(), matrix, scale=float(np.linalg.norm(matrix)), dtype=np.float64)


# -- dtype and array library preservation --------------------------------------------------------
def test_float32_is_never_upcast() -> None:
    rng = np.random.default_rng(0)
    a = random_ttm(rng, (2, 3), (3, 2), (1, 2, 1), np.float32)
    x = random_tt(rng, (3, 2), (1, 2, 1), np.float32)
    results = [
        a.to_dense(),
        a.norm(),
        ttm_matvec(a, x.to_dense()),
        (a @ x).cores[0],
        (a @ a.T).cores[0],
        (a + a).cores[0],
        (2.5 * a).cores[1],
        a.round(rtol=0.1).cores[0],
        ttm_from_dense(a.to_dense(), (2, 3), (3, 2)).cores[0],
    ]
    assert [r.dtype for r in results] == [np.float32] * len(results)


def test_mixed_dtypes_promote() -> None:
    rng = np.random.default_rng(0)
    a = random_ttm(rng, (2, 3), (3, 2), (1, 2, 1), np.float32)
    x = random_array(rng, (6,), np.complex128)
    y = a @ x
    assert y.dtype == np.complex128
    np.testing.assert_allclose(y, a.to_dense().astype(np.complex128) @ x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_tensors_keep_type_and_dtype(dtype_name: str) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    tol = 100 * torch.finfo(dtype).eps
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> object:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    a = TTMatrix([randn(1, 2, 3, 2), randn(2, 3, 2, 2), randn(2, 2, 2, 1)])
    x = TTTensor([randn(1, 3, 2), randn(2, 2, 2), randn(2, 2, 1)])
    dense = a.to_dense()
    assert isinstance(dense, torch.Tensor)
    assert dense.dtype == dtype
    scale = core_scale(tuple(c.numpy() for c in a.cores))

    def check(result: object, expected: object, scale: float) -> None:
        assert isinstance(result, torch.Tensor)
        assert result.dtype == dtype
        assert float(torch.linalg.norm(result - expected)) <= tol * scale

    vec = randn(a.shape[1])
    check(a @ vec, dense @ vec, scale * float(torch.linalg.norm(vec)))
    check((a @ vec.reshape(a.col_shape)).reshape(-1), dense @ vec, scale * float(vec.norm()))
    check((a @ x).to_dense().reshape(-1), dense @ x.to_dense().reshape(-1), scale * 10)
    check((a @ a.T).to_dense(), dense @ dense.T, scale**2)
    check((a + 2.0 * a).to_dense(), 3 * dense, 3 * scale)
    check(a.T.to_dense(), dense.T, scale)
    check((a + a).round().to_dense(), 2 * dense, 2 * scale)
    norm = a.norm()
    assert isinstance(norm, torch.Tensor)
    assert abs(float(norm) - float(torch.linalg.norm(dense))) <= tol * scale
    t = ttm_from_dense(dense, a.row_shape, a.col_shape, rtol=0.0)
    assert all(isinstance(c, torch.Tensor) and c.dtype == dtype for c in t.cores)
    assert t.ranks == a.ranks
    check(t.to_dense(), dense, scale)


@pytest.mark.cuda
def test_cuda_tensors_stay_on_their_device() -> None:
    torch = pytest.importorskip("torch")
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    a = TTMatrix(
        [
            torch.randn(1, 2, 3, 2, device=dev, generator=gen),
            torch.randn(2, 3, 2, 1, device=dev, generator=gen),
        ]
    )
    x = torch.randn(6, device=dev, generator=gen)
    dense = a.to_dense()
    results = [dense, a @ x, (a @ a.T).cores[0], (a + a).round().cores[0], a.norm()]
    results += list(ttm_from_dense(dense, a.row_shape, a.col_shape).cores)
    assert all(r.device.type == "cuda" and r.dtype == torch.float32 for r in results)
    assert float(torch.linalg.norm(a @ x - dense @ x)) <= 1e-4 * float(torch.linalg.norm(dense))


# -- errors --------------------------------------------------------------------------------------
def test_bad_cores_are_rejected_with_the_argument_name() -> None:
    with pytest.raises(ValueError, match=r"cores\[0\] must have 4 dimensions"):
        TTMatrix([np.ones((1, 2, 1))])
    with pytest.raises(ValueError, match=r"cores\[1\] has left rank 3 but cores\[0\]"):
        TTMatrix([np.ones((1, 2, 2, 2)), np.ones((3, 2, 2, 1))])
    with pytest.raises(ValueError, match="cores must have boundary ranks 1"):
        TTMatrix([np.ones((2, 2, 2, 1))])
    with pytest.raises(TypeError, match="cores must be a sequence of arrays"):
        TTMatrix(np.ones((1, 2, 2, 1)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cores must share one dtype"):
        TTMatrix([np.ones((1, 2, 2, 1)), np.ones((1, 2, 2, 1), dtype=np.float32)])


def test_shape_mismatches_are_rejected_with_the_argument_name() -> None:
    a = TTMatrix([np.ones((1, 2, 3, 1)), np.ones((1, 4, 5, 1))])
    b = TTMatrix([np.ones((1, 3, 2, 1)), np.ones((1, 5, 4, 1))])
    with pytest.raises(ValueError, match=r"x must have shape a.col_shape=\(3, 5\)"):
        ttm_matvec(a, TTTensor([np.ones((1, 5, 1)), np.ones((1, 3, 1))]))
    with pytest.raises(ValueError, match=r"x must have shape a.col_shape=\(3, 5\) or \(15,\)"):
        ttm_matvec(a, np.ones(8))
    with pytest.raises(ValueError, match=r"x must have shape"):
        _ = a @ np.ones((5, 3))
    with pytest.raises(ValueError, match=r"b must have row_shape equal to a.col_shape"):
        ttm_matmul(a, a)
    with pytest.raises(ValueError, match="a and b must have the same row_shape and col_shape"):
        ttm_add(a, b)
    with pytest.raises(ValueError, match="a and b must have the same row_shape and col_shape"):
        ttm_inner(a, b)
    with pytest.raises(ValueError, match="row_shape must have one entry per mode of t"):
        tt_to_ttm(ttm_to_tt(a), (2, 4, 1), (3, 5, 1))
    with pytest.raises(ValueError, match=r"row_shape\[k\] \* col_shape\[k\] must equal t.shape"):
        tt_to_ttm(ttm_to_tt(a), (3, 4), (2, 4))


def test_bad_types_are_rejected_with_the_argument_name() -> None:
    a = TTMatrix([np.ones((1, 2, 3, 1))])
    t = TTTensor([np.ones((1, 3, 1))])
    with pytest.raises(TypeError, match="a must be a TTMatrix"):
        ttm_matvec(t, t)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="b must be a TTMatrix"):
        ttm_matmul(a, t)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x must be a TTTensor or a dense array"):
        ttm_matvec(a, a)
    with pytest.raises(TypeError, match="x must be a numeric array"):
        ttm_matvec(a, "abc")
    with pytest.raises(TypeError, match="t must be a TTMatrix"):
        ttm_round(t)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="t must be a TTMatrix"):
        ttm_to_tt(t)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="t must be a TTTensor"):
        tt_to_ttm(a, (2,), (3,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="alpha must be a number"):
        ttm_scale(a, "2")
    with pytest.raises(TypeError):
        _ = a @ "abc"
    with pytest.raises(TypeError):
        _ = a + t
    with pytest.raises(TypeError, match="rtol must be a real number"):
        ttm_round(a, rtol="0.1")  # type: ignore[arg-type]


def test_ttm_from_dense_rejects_bad_shapes_with_the_argument_name() -> None:
    matrix = np.ones((6, 4))
    with pytest.raises(ValueError, match=r"row_shape must multiply to the number of rows"):
        ttm_from_dense(matrix, (2, 2), (2, 2))
    with pytest.raises(ValueError, match=r"col_shape must multiply to the number of columns"):
        ttm_from_dense(matrix, (2, 3), (2, 3))
    with pytest.raises(ValueError, match="row_shape and col_shape must have the same length"):
        ttm_from_dense(matrix, (2, 3), (4,))
    with pytest.raises(ValueError, match=r"matrix must be a matrix \(2 dimensions\)"):
        ttm_from_dense(np.ones((2, 3, 4)), (2,), (3,))
    with pytest.raises(ValueError, match="matrix must have at least 2 dimension"):
        ttm_from_dense(np.ones(6), (2, 3), (1, 1))
    with pytest.raises(ValueError, match=r"row_shape\[1\] must be >= 1"):
        ttm_from_dense(matrix, (6, 0), (4, 1))
    with pytest.raises(ValueError, match="matrix must contain only finite values"):
        ttm_from_dense(np.full((6, 4), np.nan), (2, 3), (2, 2))
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        ttm_from_dense(matrix, (2, 3), (2, 2), max_rank=0)
    with pytest.raises(ValueError, match="method must be one of"):
        ttm_from_dense(matrix, (2, 3), (2, 2), method="fast")  # type: ignore[arg-type]


def test_ttm_matvec_agrees_with_tt_svd_view_of_a_kronecker_operator() -> None:
    """A Kronecker operator A_0 (x) A_1 applied to a rank-1 TT gives the rank-1 TT of images."""
    rng = np.random.default_rng(7)
    a0, a1 = rng.standard_normal((2, 3)), rng.standard_normal((4, 5))
    op = TTMatrix([a0.reshape(1, 2, 3, 1), a1.reshape(1, 4, 5, 1)])
    u, v = rng.standard_normal(3), rng.standard_normal(5)
    x = tt_svd(np.outer(u, v))
    y = op @ x
    assert y.ranks == (1, 1, 1)
    np.testing.assert_allclose(y.to_dense(), np.outer(a0 @ u, a1 @ v), rtol=1e-12, atol=1e-12)
