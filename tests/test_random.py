"""Tests of tensornet.random: shapes, exact (clipped) ranks, reproducibility, dtypes, scaling."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensornet import TTTensor
from tensornet.formats.cp import CPTensor
from tensornet.formats.tr import TRTensor, tr_round
from tensornet.formats.tt_matrix import TTMatrix
from tensornet.formats.tucker import TuckerTensor
from tensornet.random import random_cp, random_tr, random_tt, random_tt_matrix, random_tucker
from tensornet.testing import shapes

DTYPES = ["float32", "float64", "complex64", "complex128"]


def _unfolding_ranks(x: np.ndarray) -> tuple[int, ...]:
    """Numerical ranks of the d - 1 sequential unfoldings (C order), as a full TT ranks tuple."""
    d = x.ndim
    ranks = [
        int(np.linalg.matrix_rank(x.reshape(math.prod(x.shape[: k + 1]), -1))) for k in range(d - 1)
    ]
    return (1, *ranks, 1)


# -- shapes and ranks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ranks", "expected"),
    [
        (2, (1, 2, 2, 1)),
        ([2, 3], (1, 2, 3, 1)),
        ((1, 3, 2, 1), (1, 3, 2, 1)),
        (np.array([2, 2]), (1, 2, 2, 1)),
    ],
)
def test_random_tt_accepts_int_bond_and_full_ranks(ranks: Any, expected: tuple[int, ...]) -> None:
    t = random_tt((3, 4, 5), ranks, rng=0)
    assert isinstance(t, TTTensor)
    assert t.shape == (3, 4, 5) and t.ranks == expected
    assert [c.shape for c in t.cores] == [
        (1, 3, expected[1]),
        (expected[1], 4, expected[2]),
        (expected[2], 5, 1),
    ]
    assert all(isinstance(c, np.ndarray) for c in t.cores)


@pytest.mark.parametrize(
    ("shape", "ranks", "expected"),
    [
        ((2, 3, 4), 10, (1, 2, 4, 1)),  # capped by the unfolding sizes
        ((2, 2, 2, 2), [1, 4, 1], (1, 1, 2, 1, 1)),  # capped by the neighbouring bonds
        ((1, 5, 1), 3, (1, 1, 1, 1)),
        ((3, 3), 100, (1, 3, 1)),
        ((5,), 4, (1, 1)),
        ((5,), [], (1, 1)),
        ((5,), (1, 1), (1, 1)),
    ],
)
def test_random_tt_clips_ranks_to_the_largest_attainable(
    shape: tuple[int, ...], ranks: Any, expected: tuple[int, ...]
) -> None:
    t = random_tt(shape, ranks, rng=0)
    assert t.ranks == expected
    assert _unfolding_ranks(t.to_dense()) == expected


@given(shape=shapes(max_order=5, max_size=4), data=st.data())
def test_random_tt_ranks_equal_the_unfolding_ranks_of_its_dense_tensor(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    requested = data.draw(
        st.lists(st.integers(1, 9), min_size=len(shape) - 1, max_size=len(shape) - 1)
    )
    t = random_tt(shape, requested, rng=data.draw(st.integers(0, 2**32 - 1)))
    assert t.shape == shape
    assert all(r <= q for r, q in zip(t.ranks[1:-1], requested, strict=True))
    for k in range(1, len(shape)):
        assert t.ranks[k] <= min(math.prod(shape[:k]), math.prod(shape[k:]))
    assert _unfolding_ranks(t.to_dense()) == t.ranks


def test_requested_ranks_that_are_attainable_are_kept_exactly() -> None:
    t = random_tt((2, 3, 4, 3, 2), (1, 2, 5, 6, 2, 1), rng=0)
    assert t.ranks == (1, 2, 5, 6, 2, 1)


# -- reproducibility ------------------------------------------------------------------------------
def test_random_tt_is_reproducible_from_a_seed() -> None:
    a = random_tt((3, 4, 5), 3, rng=42)
    b = random_tt((3, 4, 5), 3, rng=42)
    c = random_tt((3, 4, 5), 3, rng=np.random.default_rng(42))
    for x, y, z in zip(a.cores, b.cores, c.cores, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z)


def test_random_tt_differs_between_seeds_and_advances_a_generator() -> None:
    a = random_tt((3, 4, 5), 3, rng=1)
    b = random_tt((3, 4, 5), 3, rng=2)
    assert not np.array_equal(a.cores[0], b.cores[0])
    gen = np.random.default_rng(0)
    first, second = random_tt((3, 4), 2, rng=gen), random_tt((3, 4), 2, rng=gen)
    assert not np.array_equal(first.cores[0], second.cores[0])


def test_random_tt_without_rng_works() -> None:
    assert random_tt((2, 3), 2).ranks == (1, 2, 1)


# -- dtypes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [*DTYPES, np.float32, np.dtype("complex64"), np.complex128])
def test_random_tt_has_the_requested_dtype(dtype: Any) -> None:
    t = random_tt((3, 4), 2, rng=0, dtype=dtype)
    assert all(c.dtype == np.dtype(dtype) for c in t.cores)
    if np.dtype(dtype).kind == "c":
        assert all(np.any(c.imag != 0) for c in t.cores)


def test_random_tt_float32_is_the_rounded_float64_draw() -> None:
    t64 = random_tt((3, 4, 5), 3, rng=7, dtype="float64")
    t32 = random_tt((3, 4, 5), 3, rng=7, dtype="float32")
    for a, b in zip(t64.cores, t32.cores, strict=True):
        assert np.array_equal(a.astype(np.float32), b)


@pytest.mark.parametrize("dtype", ["int32", "float16", "bfloat16", "f8", np.int64, np.bool_])
def test_random_tt_refuses_unsupported_dtypes(dtype: Any) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        random_tt((3, 4), 2, dtype=dtype)


@pytest.mark.parametrize("dtype", [None, object(), 3.5])
def test_random_tt_refuses_dtypes_of_the_wrong_type(dtype: Any) -> None:
    with pytest.raises(TypeError, match="dtype must be a NumPy dtype"):
        random_tt((3, 4), 2, dtype=dtype)


# -- scaling --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "ranks", "dtype"),
    [
        ((4, 4, 4), 1, "float64"),
        ((4, 4, 4), 3, "float64"),
        ((3, 5, 2, 4), 4, "complex128"),
        ((6, 6), 6, "float32"),
        ((2, 2, 2, 2, 2, 2), 8, "float64"),
    ],
)
def test_random_tt_entries_have_unit_variance(
    shape: tuple[int, ...], ranks: int, dtype: str
) -> None:
    gen = np.random.default_rng(123)
    means = [
        np.mean(np.abs(random_tt(shape, ranks, rng=gen, dtype=dtype).to_dense()) ** 2)
        for _ in range(400)
    ]
    assert abs(float(np.mean(means)) - 1.0) < 0.2


# -- argument checks ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "ranks", "error", "match"),
    [
        ((3, 4, 5), [2], ValueError, "2 bond ranks, or the full tuple"),
        ((3, 4, 5), [1, 2, 2], ValueError, "2 bond ranks, or the full tuple"),
        ((3, 4, 5), (2, 2, 2, 1), ValueError, "must start and end with 1"),
        ((3, 4, 5), 0, ValueError, "ranks must be >= 1"),
        ((3, 4, 5), [2, 0], ValueError, r"ranks\[1\] must be >= 1"),
        ((3, 4, 5), 2.5, TypeError, "ranks must be an int or a sequence"),
        ((3, 4, 5), "22", TypeError, "ranks must be an int or a sequence"),
        ((3, 4, 5), True, TypeError, "ranks must be an int or a sequence"),
        ((3, 0, 5), 2, ValueError, r"shape\[1\] must be >= 1"),
        ((), 2, ValueError, "at least one dimension"),
        ("345", 2, TypeError, "shape must be a sequence"),
    ],
)
def test_random_tt_refuses_bad_arguments(
    shape: Any, ranks: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        random_tt(shape, ranks)


def test_random_tt_refuses_a_bad_rng() -> None:
    with pytest.raises(TypeError, match="rng must be"):
        random_tt((3, 4), 2, rng="seed")  # type: ignore[arg-type]


# -- TT-matrix ------------------------------------------------------------------------------------
def test_random_tt_matrix_has_the_tt_matrix_core_layout() -> None:
    a = random_tt_matrix((2, 3, 4), (5, 1, 2), (2, 3), rng=0)
    assert isinstance(a, TTMatrix)
    assert [c.shape for c in a.cores] == [(1, 2, 5, 2), (2, 3, 1, 3), (3, 4, 2, 1)]
    assert a.row_shape == (2, 3, 4) and a.col_shape == (5, 1, 2) and a.shape == (24, 10)


def test_random_tt_matrix_clips_ranks_on_the_merged_modes() -> None:
    a = random_tt_matrix((2, 3), (2, 1), 10, rng=0)
    assert a.ranks == (1, 3, 1)  # min(2 * 2, 3 * 1)
    b = random_tt_matrix((2, 2, 2), (1, 1, 1), (1, 1, 4, 1), rng=0)
    assert b.ranks == (1, 1, 2, 1)


def test_random_tt_matrix_is_reproducible_and_typed() -> None:
    a = random_tt_matrix((2, 3), (3, 2), 2, rng=5, dtype="complex64")
    b = random_tt_matrix((2, 3), (3, 2), 2, rng=5, dtype="complex64")
    assert all(x.dtype == np.complex64 for x in a.cores)
    assert all(np.array_equal(x, y) for x, y in zip(a.cores, b.cores, strict=True))


def test_random_tt_matrix_entries_have_unit_variance() -> None:
    gen = np.random.default_rng(7)
    means = [
        np.mean(np.abs(random_tt_matrix((2, 3), (3, 2), 4, rng=gen).to_dense()) ** 2)
        for _ in range(400)
    ]
    assert abs(float(np.mean(means)) - 1.0) < 0.2


def test_random_tt_matrix_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="row_shape and col_shape must have the same length"):
        random_tt_matrix((2, 3), (2,), 2)
    with pytest.raises(ValueError, match=r"col_shape\[0\] must be >= 1"):
        random_tt_matrix((2, 3), (0, 3), 2)


# -- Tucker and CP ---------------------------------------------------------------------------------
def _multilinear_ranks(x: np.ndarray) -> tuple[int, ...]:
    return tuple(
        int(np.linalg.matrix_rank(np.moveaxis(x, k, 0).reshape(x.shape[k], -1)))
        for k in range(x.ndim)
    )


@given(shape=shapes(max_order=4, max_size=5), data=st.data())
def test_random_tucker_ranks_equal_the_multilinear_ranks_of_its_dense_tensor(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    requested = data.draw(st.lists(st.integers(1, 7), min_size=len(shape), max_size=len(shape)))
    t = random_tucker(shape, requested, rng=data.draw(st.integers(0, 2**32 - 1)))
    assert isinstance(t, TuckerTensor) and t.shape == shape
    assert all(r <= min(q, n) for r, q, n in zip(t.ranks, requested, shape, strict=True))
    assert _multilinear_ranks(t.to_dense()) == t.ranks


@pytest.mark.parametrize(
    ("shape", "ranks", "modes", "expected"),
    [
        ((4, 5, 6), 2, None, (2, 2, 2)),
        ((2, 9, 9), 5, None, (2, 5, 5)),
        ((2, 2, 9), (2, 2, 9), None, (2, 2, 4)),  # r_2 <= r_0 * r_1
        ((8, 6, 3, 3), (3, 2), (0, 1), (3, 2, 3, 3)),
        ((8, 6, 3, 3), (3, 2, 3, 3), (0, 1), (3, 2, 3, 3)),
        ((5, 1), 3, 0, (1, 1)),  # r_0 <= r_1 = n_1 = 1
    ],
)
def test_random_tucker_clips_ranks_to_the_largest_attainable(
    shape: tuple[int, ...], ranks: Any, modes: Any, expected: tuple[int, ...]
) -> None:
    t = random_tucker(shape, ranks, modes=modes, rng=0)
    assert t.ranks == expected
    assert _multilinear_ranks(t.to_dense()) == expected


def test_random_tucker_partial_modes_have_no_factor() -> None:
    t = random_tucker((8, 6, 3, 3), 2, modes=(0, 1), rng=0)
    assert t.modes == (0, 1) and t.factors[2] is None and t.factors[3] is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_tucker_and_cp_have_the_requested_dtype_and_are_reproducible(dtype: str) -> None:
    a, b = (
        random_tucker((3, 4, 5), 2, rng=9, dtype=dtype),
        random_tucker((3, 4, 5), 2, rng=9, dtype=dtype),
    )
    assert a.dtype == np.dtype(dtype) and all(f.dtype == np.dtype(dtype) for f in a.factors)
    assert np.array_equal(a.core, b.core)
    c, e = random_cp((3, 4, 5), 2, rng=9, dtype=dtype), random_cp((3, 4, 5), 2, rng=9, dtype=dtype)
    assert c.dtype == np.dtype(dtype) and all(f.dtype == np.dtype(dtype) for f in c.factors)
    assert all(np.array_equal(f, g) for f, g in zip(c.factors, e.factors, strict=True))
    if np.dtype(dtype).kind == "c":
        assert np.any(a.core.imag != 0) and np.any(c.factors[0].imag != 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda gen: random_tucker((4, 5, 3), (2, 3, 3), rng=gen),
        lambda gen: random_tucker((4, 5, 3), 2, modes=(1,), rng=gen, dtype="complex128"),
        lambda gen: random_cp((4, 5, 3), 3, rng=gen),
        lambda gen: random_cp((6, 6), 1, rng=gen, dtype="complex128"),
    ],
)
def test_random_tucker_and_cp_entries_have_unit_variance(make: Any) -> None:
    gen = np.random.default_rng(11)
    means = [np.mean(np.abs(make(gen).to_dense()) ** 2) for _ in range(400)]
    assert abs(float(np.mean(means)) - 1.0) < 0.2


def test_random_cp_shape_rank_and_weights() -> None:
    t = random_cp((3, 4), 6, rng=0)  # CP ranks are not clipped
    assert isinstance(t, CPTensor)
    assert t.shape == (3, 4) and t.rank == 6
    np.testing.assert_allclose(t.weights, 1 / np.sqrt(6))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: random_tucker((3, 4), 0), ValueError, "ranks must be >= 1"),
        (lambda: random_tucker((3, 4), (2, 2, 2)), ValueError, "ranks must be an int, 2 ints"),
        (lambda: random_tucker((3, 4), 2, modes=(0, 0)), ValueError, "modes must not repeat"),
        (lambda: random_tucker((3, 4), 2, modes=2), ValueError, "modes must be in"),
        (lambda: random_tucker((3, 4), 2, dtype="int32"), ValueError, "dtype must be one of"),
        (lambda: random_cp((3, 4), 0), ValueError, "rank must be >= 1"),
        (lambda: random_cp((3, 4), 1.5), TypeError, "rank must be an integer"),
        (lambda: random_cp((3, 0), 2), ValueError, r"shape\[1\] must be >= 1"),
        (lambda: random_cp((3, 4), 2, rng="seed"), TypeError, "rng must be"),
    ],
)
def test_random_tucker_and_cp_refuse_bad_arguments(
    call: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


# -- tensor ring ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ranks", "expected"),
    [
        (2, (2, 2, 2, 2)),
        ([3, 2, 4], (3, 2, 4, 3)),
        ((3, 2, 4, 3), (3, 2, 4, 3)),
        (np.array([1, 2, 3]), (1, 2, 3, 1)),
    ],
)
def test_random_tr_accepts_int_bond_and_full_ranks(ranks: Any, expected: tuple[int, ...]) -> None:
    t = random_tr((3, 4, 5), ranks, rng=0)
    assert isinstance(t, TRTensor)
    assert t.shape == (3, 4, 5) and t.ranks == expected
    assert [c.shape for c in t.cores] == [
        (expected[0], 3, expected[1]),
        (expected[1], 4, expected[2]),
        (expected[2], 5, expected[0]),
    ]


@pytest.mark.parametrize(
    ("shape", "ranks", "expected"),
    [
        ((2, 3), (1, 9), (1, 2, 1)),  # r_1 <= r_0 n_0
        ((2, 2, 2), (8, 1, 1), (2, 1, 1, 2)),  # the closing bond: r_0 <= n_0 r_1, r_0 <= r_2 n_2
        ((5,), 3, (3, 3)),
        ((2, 2), 5, (5, 5, 5)),
    ],
)
def test_random_tr_clips_bonds_larger_than_their_cores_carry(
    shape: tuple[int, ...], ranks: Any, expected: tuple[int, ...]
) -> None:
    assert random_tr(shape, ranks, rng=0).ranks == expected


@given(shape=shapes(min_order=2, max_order=4, max_size=4), data=st.data())
def test_random_tr_ranks_are_kept_by_exact_rounding(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    requested = data.draw(st.lists(st.integers(1, 5), min_size=len(shape), max_size=len(shape)))
    t = random_tr(shape, requested, rng=data.draw(st.integers(0, 2**32 - 1)))
    assert all(r <= q for r, q in zip(t.ranks, (*requested, requested[0]), strict=True))
    for k, n in enumerate(shape):
        assert t.ranks[k + 1] <= t.ranks[k] * n and t.ranks[k] <= n * t.ranks[k + 1]
    assert tr_round(t).ranks == t.ranks


def test_random_tr_is_reproducible_and_typed() -> None:
    a = random_tr((3, 4, 5), 3, rng=42, dtype="complex64")
    b = random_tr((3, 4, 5), 3, rng=np.random.default_rng(42), dtype="complex64")
    assert all(x.dtype == np.complex64 for x in a.cores)
    assert all(np.array_equal(x, y) for x, y in zip(a.cores, b.cores, strict=True))
    t64 = random_tr((3, 4), 2, rng=7)
    t32 = random_tr((3, 4), 2, rng=7, dtype="float32")
    assert all(np.array_equal(x.astype(np.float32), y) for x, y in zip(t64.cores, t32.cores))
    assert not np.array_equal(random_tr((3, 4), 2, rng=1).cores[0], t64.cores[0])


@pytest.mark.parametrize(
    ("shape", "ranks", "dtype"),
    [((4,), 3, "float64"), ((4, 4, 4), (1, 2, 3), "float64"), ((3, 5, 2, 4), 3, "complex128")],
)
def test_random_tr_entries_have_unit_variance(
    shape: tuple[int, ...], ranks: Any, dtype: str
) -> None:
    gen = np.random.default_rng(123)
    means = [
        np.mean(np.abs(random_tr(shape, ranks, rng=gen, dtype=dtype).to_dense()) ** 2)
        for _ in range(400)
    ]
    assert abs(float(np.mean(means)) - 1.0) < 0.2


@pytest.mark.parametrize(
    ("ranks", "error", "match"),
    [
        ([2, 2], ValueError, "3 bond ranks"),
        ((2, 2, 2, 3), ValueError, "must close the ring"),
        (0, ValueError, "ranks must be >= 1"),
        ([2, 0, 2], ValueError, r"ranks\[1\] must be >= 1"),
        (2.5, TypeError, "ranks must be an int or a sequence"),
        ("222", TypeError, "ranks must be an int or a sequence"),
    ],
)
def test_random_tr_refuses_bad_ranks(ranks: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        random_tr((3, 4, 5), ranks)


def test_random_tr_refuses_bad_shape_dtype_and_rng() -> None:
    with pytest.raises(ValueError, match=r"shape\[1\] must be >= 1"):
        random_tr((3, 0), 2)
    with pytest.raises(ValueError, match="dtype must be one of"):
        random_tr((3, 4), 2, dtype="int32")
    with pytest.raises(TypeError, match="rng must be"):
        random_tr((3, 4), 2, rng="seed")  # type: ignore[arg-type]
