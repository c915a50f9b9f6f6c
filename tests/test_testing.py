"""Tests of tensornet.testing: asserts catch perturbations, strategies draw valid objects."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensornet import TTTensor, tt_svd
from tensornet.random import random_tt
from tensornet.testing import (
    SLACK_FACTOR,
    TOLERANCE_FACTOR,
    assert_relative_error,
    assert_tensors_close,
    default_tolerance,
    rtols,
    shapes,
    tt_ranks,
    tt_tensors,
)

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


def _perturbed(x: np.ndarray, relative: float, seed: int = 0) -> np.ndarray:
    """``x`` plus noise of Frobenius norm ``relative * ||x||``."""
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    return x + relative * np.linalg.norm(x) / np.linalg.norm(noise) * noise


# -- default_tolerance ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "eps"),
    [
        ("float64", EPS64),
        (np.float32, EPS32),
        (np.dtype("complex64"), EPS32),
        ("complex128", EPS64),
        (np.zeros(2, dtype=np.float32), EPS32),
        ("int64", EPS64),
        (np.bool_, EPS64),
    ],
)
def test_default_tolerance_is_a_multiple_of_eps(dtype: Any, eps: float) -> None:
    assert default_tolerance(dtype) == TOLERANCE_FACTOR * eps


def test_default_tolerance_accepts_torch_dtypes_and_tensors() -> None:
    torch = pytest.importorskip("torch")
    assert default_tolerance(torch.float32) == TOLERANCE_FACTOR * EPS32
    assert default_tolerance(torch.complex128) == TOLERANCE_FACTOR * EPS64
    assert default_tolerance(torch.zeros(2, dtype=torch.float16)) == TOLERANCE_FACTOR * float(
        np.finfo(np.float16).eps
    )
    assert default_tolerance(torch.bfloat16) == TOLERANCE_FACTOR * 2.0**-7


@pytest.mark.parametrize("dtype", ["U5", object, "not-a-dtype"])
def test_default_tolerance_refuses_non_numeric_dtypes(dtype: Any) -> None:
    with pytest.raises(TypeError, match="dtype must be a numeric dtype"):
        default_tolerance(dtype)


# -- assert_relative_error ------------------------------------------------------------------------
def test_assert_relative_error_passes_on_equal_inputs_and_returns_zero() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    assert assert_relative_error(x, x.copy(), 0.0) == 0.0


def test_assert_relative_error_passes_within_rtol_and_fails_beyond() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    y = _perturbed(x, 1e-3)
    assert assert_relative_error(y, x, 2e-3) == pytest.approx(1e-3)
    with pytest.raises(AssertionError, match=r"relative Frobenius error 1\.000e-03 exceeds rtol"):
        assert_relative_error(y, x, 5e-4)


def test_assert_relative_error_allows_round_off_slack_only() -> None:
    x = np.random.default_rng(1).standard_normal((4, 5, 6))
    slack = SLACK_FACTOR * EPS64 * math.sqrt(x.size)
    assert_relative_error(_perturbed(x, 0.5 * slack), x, 0.0)
    with pytest.raises(AssertionError, match="slack"):
        assert_relative_error(_perturbed(x, 2 * slack), x, 0.0)


def test_assert_relative_error_slack_follows_the_less_precise_dtype() -> None:
    x = np.random.default_rng(2).standard_normal(100)
    y = _perturbed(x, 1e-7).astype(np.float32)  # within float32 round-off, not float64's
    assert_relative_error(y, x, 0.0)
    with pytest.raises(AssertionError):
        assert_relative_error(_perturbed(x, 1e-7), x, 0.0)


def test_assert_relative_error_with_zero_expected_needs_atol() -> None:
    zero = np.zeros(4)
    assert_relative_error(zero, zero, 0.0)
    with pytest.raises(AssertionError, match="inf"):
        assert_relative_error(np.full(4, 1e-12), zero, 0.5)
    assert_relative_error(np.full(4, 1e-12), zero, 0.5, atol=1e-11)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_assert_relative_error_fails_on_non_finite_entries(bad: float) -> None:
    x = np.ones((2, 3))
    y = x.copy()
    y[1, 2] = bad
    with pytest.raises(AssertionError):
        assert_relative_error(y, x, 0.5)
    with pytest.raises(AssertionError):
        assert_relative_error(x, y, 0.5)


def test_assert_relative_error_reports_the_largest_difference() -> None:
    x = np.zeros((2, 3)) + 1.0
    y = x.copy()
    y[1, 2] += 0.5
    expected = r"largest entrywise difference 5\.000e-01 at index \(1, 2\)"
    with pytest.raises(AssertionError, match=expected):
        assert_relative_error(y, x, 1e-3)


def test_assert_relative_error_fails_on_shape_mismatch() -> None:
    expected = r"shape mismatch: actual \(2, 3\) vs expected \(3, 2\)"
    with pytest.raises(AssertionError, match=expected):
        assert_relative_error(np.ones((2, 3)), np.ones((3, 2)), 1.0)


def test_assert_relative_error_refuses_bad_tolerances() -> None:
    x = np.ones(3)
    with pytest.raises(ValueError, match="rtol"):
        assert_relative_error(x, x, -1.0)
    with pytest.raises(TypeError, match="rtol"):
        assert_relative_error(x, x, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="atol"):
        assert_relative_error(x, x, 0.1, atol=math.nan)


def test_assert_relative_error_refuses_non_numeric_inputs() -> None:
    with pytest.raises(TypeError, match="actual must be numeric"):
        assert_relative_error(np.array(["a", "b"]), np.ones(2), 0.1)


# -- assert_tensors_close -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_assert_tensors_close_passes_on_equal_and_fails_on_perturbed(dtype: str) -> None:
    x = random_tt((3, 4, 5), 3, rng=0, dtype=dtype).to_dense()
    assert_tensors_close(x, x.copy())
    y = (x + 1e3 * default_tolerance(dtype) * np.linalg.norm(x) / np.sqrt(x.size)).astype(dtype)
    with pytest.raises(AssertionError, match="relative Frobenius error"):
        assert_tensors_close(y, x)


def test_assert_tensors_close_default_tolerance_depends_on_the_dtype() -> None:
    x = np.random.default_rng(3).standard_normal((5, 6))
    y = _perturbed(x, 1e-8)
    assert_tensors_close(y.astype(np.float32), x.astype(np.float32))
    with pytest.raises(AssertionError):
        assert_tensors_close(y, x)
    assert_tensors_close(y, x, rtol=1e-7)


def test_assert_tensors_close_densifies_formats() -> None:
    t = random_tt((3, 4, 5), 2, rng=4)
    x = t.to_dense()
    assert_tensors_close(t, x)
    assert_tensors_close(x, t)
    assert_tensors_close(tt_svd(x), t)
    with pytest.raises(AssertionError):
        assert_tensors_close(t * 1.001, t)


def test_assert_tensors_close_accepts_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((3, 4))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    assert_tensors_close(tx, x)
    assert_tensors_close(x, tx * 1)
    assert_tensors_close(TTTensor((tx.reshape(1, 12, 1),)), x.ravel())
    with pytest.raises(AssertionError):
        assert_tensors_close(tx + 1e-3, x)


def test_assert_tensors_close_fails_on_shape_mismatch() -> None:
    with pytest.raises(AssertionError, match="shape mismatch"):
        assert_tensors_close(np.ones(6), np.ones((2, 3)))


# -- strategies -----------------------------------------------------------------------------------
@given(shapes(min_order=2, max_order=3, min_size=2, max_size=4))
def test_shapes_respect_their_bounds(shape: tuple[int, ...]) -> None:
    assert isinstance(shape, tuple) and 2 <= len(shape) <= 3
    assert all(isinstance(n, int) and 2 <= n <= 4 for n in shape)


@given(shapes(max_order=5, max_size=4).flatmap(lambda s: st.tuples(st.just(s), tt_ranks(s, 3))))
def test_tt_ranks_are_attainable_and_below_the_caps(args: tuple[Any, ...]) -> None:
    shape, ranks = args
    d = len(shape)
    assert len(ranks) == d + 1 and ranks[0] == ranks[-1] == 1
    for k in range(1, d):
        assert 1 <= ranks[k] <= min(3, math.prod(shape[:k]), math.prod(shape[k:]))
    for k, n in enumerate(shape):
        assert ranks[k + 1] <= ranks[k] * n and ranks[k] <= n * ranks[k + 1]
    assert random_tt(shape, ranks, rng=0).ranks == ranks


@given(tt_tensors(min_order=2, max_order=4, max_size=4, max_rank=3, dtype="complex64"))
def test_tt_tensors_are_valid_tensors_within_bounds(t: TTTensor) -> None:
    assert isinstance(t, TTTensor)
    assert 2 <= t.order <= 4 and all(1 <= n <= 4 for n in t.shape)
    assert max(t.ranks) <= 3
    assert t.dtype == np.complex64
    assert np.all(np.isfinite(t.to_dense()))


@given(rtols(1e-4, 0.5))
def test_rtols_lie_within_bounds(rtol: float) -> None:
    assert isinstance(rtol, float) and 1e-4 <= rtol <= 0.5


@given(rtols())
def test_default_rtols_lie_within_bounds(rtol: float) -> None:
    assert 1e-6 <= rtol <= 0.9


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: shapes(min_order=0), ValueError, "min_order must be >= 1"),
        (lambda: shapes(min_order=3, max_order=2), ValueError, "max_order must be >= min_order"),
        (lambda: shapes(max_size=2.5), TypeError, "max_size must be an integer"),  # type: ignore[arg-type]
        (lambda: tt_ranks((2, 0)), ValueError, r"shape\[1\] must be >= 1"),
        (lambda: tt_ranks((2, 3), max_rank=0), ValueError, "max_rank must be >= 1"),
        (lambda: tt_tensors(dtype="int8"), ValueError, "dtype must be one of"),
        (lambda: rtols(0.0, 0.5), ValueError, "min_value must be a real number > 0"),
        (lambda: rtols(0.5, 0.1), ValueError, "max_value must be a real number >= min_value"),
        (lambda: rtols(math.inf), ValueError, "min_value must be a finite"),
    ],
)
def test_strategies_refuse_bad_bounds(factory: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        factory()


def test_importing_tensornet_does_not_import_testing_or_hypothesis() -> None:
    code = (
        "import sys, tensornet; "
        "bad = [m for m in ('tensornet.testing', 'hypothesis') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
