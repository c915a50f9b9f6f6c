"""Public test helpers: hypothesis strategies and tolerance-aware asserts.

The asserts work on NumPy arrays, torch tensors (any device; they are copied to
the host) and format containers (densified with ``.to_dense()``). They compare in
the relative Frobenius norm with tolerances derived from ``finfo(dtype).eps``.

The strategies need `hypothesis <https://hypothesis.readthedocs.io>`_ (the
``test`` extra); it is imported when a strategy is first called, so the asserts
work without it. ``import tensornet`` never imports this module.

Examples
--------
>>> import numpy as np
>>> from tensornet.testing import assert_tensors_close
>>> x = np.arange(6.0).reshape(2, 3)
>>> assert_tensors_close(x, x)
>>> assert_tensors_close(x + 1e-3, x)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
AssertionError: relative Frobenius error 3.303e-04 exceeds rtol 2.220e-13 + slack ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from tensornet import _backend as B
from tensornet._validation import _describe, check_int, check_rtol, check_shape
from tensornet.formats.tr import TRTensor
from tensornet.formats.tt import TTTensor
from tensornet.random import (
    DTypeLike,
    _check_dtype,
    _feasible_tr_ranks,
    _feasible_tt_ranks,
    random_tr,
    random_tt,
)

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "SLACK_FACTOR",
    "TOLERANCE_FACTOR",
    "assert_relative_error",
    "assert_tensors_close",
    "default_tolerance",
    "rtols",
    "shapes",
    "tr_ranks",
    "tr_tensors",
    "tt_ranks",
    "tt_tensors",
]

TOLERANCE_FACTOR = 1000.0
"""``default_tolerance(dtype) == TOLERANCE_FACTOR * finfo(dtype).eps``."""

SLACK_FACTOR = 4.0
"""Round-off slack of the asserts: ``SLACK_FACTOR * eps * sqrt(size)`` on top of ``rtol``."""

_BFLOAT16_EPS = 2.0**-7


# -- tolerances ----------------------------------------------------------------------------------
def _eps_or_none(dtype: object) -> float | None:
    """Machine epsilon of a floating dtype (real part), None for integer and bool dtypes."""
    if not isinstance(dtype, type) and B.is_array(dtype):  # classes like np.float32 also pass
        dtype = dtype.dtype  # type: ignore[attr-defined]
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        # Dtypes of other libraries (torch.float32, ...) by name, without importing them.
        name = str(dtype).rsplit(".", 1)[-1]
        if name == "bfloat16":
            return _BFLOAT16_EPS
        try:
            dt = np.dtype(name)
        except TypeError:
            raise TypeError(f"dtype must be a numeric dtype, got {_describe(dtype)}") from None
    if dt.kind in "fc":
        return float(np.finfo(dt).eps)
    if dt.kind in "biu":
        return None
    raise TypeError(f"dtype must be a numeric dtype, got {dt}")


def _eps(*dtypes: object) -> float:
    """Largest epsilon among the floating ``dtypes`` (float64's if none is floating)."""
    values = [e for e in (_eps_or_none(d) for d in dtypes) if e is not None]
    return max(values) if values else float(np.finfo(np.float64).eps)


def default_tolerance(dtype: Any) -> float:
    """Default relative tolerance for comparing results of dtype ``dtype``.

    ``TOLERANCE_FACTOR * eps`` with ``eps`` the machine epsilon of the (real part
    of the) dtype: about 1.2e-4 for float32/complex64 and 2.2e-13 for
    float64/complex128. Integer and bool dtypes count as float64 (tensornet
    promotes them to it).

    Parameters
    ----------
    dtype : dtype, str or array
        A NumPy dtype or type, a dtype name, a torch dtype, or an array (its dtype).

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``dtype`` is not a numeric dtype.

    Examples
    --------
    >>> from tensornet.testing import default_tolerance
    >>> default_tolerance("float64") < default_tolerance("float32")
    True
    >>> default_tolerance("complex64") == default_tolerance("float32")
    True
    """
    return TOLERANCE_FACTOR * _eps(dtype)


# -- asserts -------------------------------------------------------------------------------------
def _as_host(x: object, name: str) -> np.ndarray:
    """``x`` as a host NumPy array; format containers are densified."""
    if not B.is_array(x) and callable(getattr(x, "to_dense", None)):
        x = x.to_dense()  # type: ignore[attr-defined]
    if B.is_array(x):
        host = B.to_numpy(x)
    else:
        try:
            host = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be an array or a format, got {_describe(x)}") from exc
    if host.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be numeric, got an array of dtype {host.dtype}")
    return host


def _largest_difference(diff: np.ndarray) -> str:
    if diff.size == 0:
        return ""
    mags = np.abs(diff)
    if not np.any(np.isfinite(mags)):
        return "; no finite entrywise difference"
    index = np.unravel_index(int(np.nanargmax(np.where(np.isnan(mags), -1.0, mags))), diff.shape)
    where = tuple(int(i) for i in index)
    return f"; largest entrywise difference {float(mags[index]):.3e} at index {where}"


def _check_close(actual: object, expected: object, rtol: float | None, atol: float) -> float:
    a = _as_host(actual, "actual")
    e = _as_host(expected, "expected")
    if a.shape != e.shape:
        raise AssertionError(f"shape mismatch: actual {a.shape} vs expected {e.shape}")
    eps = _eps(a.dtype, e.dtype)
    tol = TOLERANCE_FACTOR * eps if rtol is None else rtol
    work = np.result_type(a.dtype, e.dtype, np.float64)
    diff = a.astype(work) - e.astype(work)
    error = float(np.linalg.norm(diff.ravel()))
    reference = float(np.linalg.norm(e.astype(work).ravel()))
    size = max(int(e.size), 1)
    slack = SLACK_FACTOR * eps * math.sqrt(size)
    bound = atol + (tol + slack) * reference
    relative = error / reference if reference > 0 else (0.0 if error == 0 else math.inf)
    if not (math.isfinite(error) and math.isfinite(reference) and error <= bound):
        extra = f" + atol {atol:.3e}" if atol else ""
        raise AssertionError(
            f"relative Frobenius error {relative:.3e} exceeds rtol {tol:.3e} + slack {slack:.3e}"
            f"{extra} (slack = {SLACK_FACTOR:g} * eps * sqrt(size), eps = {eps:.3e}, size = "
            f"{size}); ||actual - expected||_F = {error:.3e}, ||expected||_F = "
            f"{reference:.3e}{_largest_difference(diff)}"
        )
    return relative


def assert_relative_error(actual: Any, expected: Any, rtol: float, *, atol: float = 0.0) -> float:
    """Assert ``||actual - expected||_F <= atol + (rtol + slack) * ||expected||_F``.

    ``slack = SLACK_FACTOR * eps * sqrt(size)`` (``SLACK_FACTOR`` is 4) absorbs the
    round-off of computing in the dtype: ``eps`` is the machine epsilon of the less
    precise of the two dtypes (float64's for integer inputs) and ``size`` the number
    of entries. So ``rtol=0`` checks agreement up to round-off, and an ``rtol``
    promised by a decomposition is checked with room for the arithmetic only.
    The norms are computed on the host in float64 (complex128 for complex input).
    A zero ``expected`` needs ``||actual||_F <= atol``; NaN or Inf entries fail.

    Parameters
    ----------
    actual, expected : array or format container
        NumPy arrays, torch tensors (any device) or containers with ``.to_dense()``;
        same shape.
    rtol : float
        Allowed relative Frobenius error (>= 0).
    atol : float
        Allowed absolute Frobenius error on top (>= 0).

    Returns
    -------
    float
        The measured relative error ``||actual - expected||_F / ||expected||_F``.

    Raises
    ------
    AssertionError
        If the shapes differ or the error exceeds the bound; the message shows the
        measured error, the bound and the largest entrywise difference.
    TypeError, ValueError
        If an input is not numeric or ``rtol`` / ``atol`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd
    >>> from tensornet.testing import assert_relative_error
    >>> x = np.random.default_rng(0).standard_normal((4, 5, 6))
    >>> _ = assert_relative_error(tt_svd(x, rtol=0.3), x, 0.3)
    >>> assert_relative_error(np.zeros(3), np.ones(3), 0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    AssertionError: relative Frobenius error 1.000e+00 exceeds rtol 5.000e-01 ...
    """
    value = check_rtol(rtol)
    if value is None:
        raise TypeError("rtol must be a real number >= 0, got None")
    bound = check_rtol(atol, "atol")
    return _check_close(actual, expected, value, bound or 0.0)


def assert_tensors_close(
    actual: Any, expected: Any, *, rtol: float | None = None, atol: float = 0.0
) -> None:
    """Assert that two tensors agree up to a dtype-aware relative tolerance.

    The check of :func:`assert_relative_error` with ``rtol`` defaulting to
    :func:`default_tolerance` of the less precise of the two dtypes.

    Parameters
    ----------
    actual, expected : array or format container
        NumPy arrays, torch tensors (any device) or containers with ``.to_dense()``
        (e.g. a :class:`~tensornet.TTTensor`), same shape.
    rtol : float, optional
        Allowed relative Frobenius error; default ``default_tolerance(dtype)``.
    atol : float
        Allowed absolute Frobenius error on top (>= 0).

    Raises
    ------
    AssertionError
        If the shapes differ or the error exceeds the tolerance; the message shows
        the measured error.
    TypeError, ValueError
        If an input is not numeric or ``rtol`` / ``atol`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd
    >>> from tensornet.testing import assert_tensors_close
    >>> x = np.arange(24.0).reshape(2, 3, 4)
    >>> assert_tensors_close(tt_svd(x), x)
    >>> assert_tensors_close(np.float32(1.0 + 1e-6) * x, x.astype(np.float32))
    """
    _check_close(actual, expected, check_rtol(rtol), check_rtol(atol, "atol") or 0.0)


# -- hypothesis strategies ----------------------------------------------------------------------
def _st() -> ModuleType:
    try:
        import hypothesis.strategies as st
    except ImportError as exc:  # pragma: no cover - hypothesis is a test dependency
        raise ImportError(
            "the strategies of tensornet.testing need hypothesis: pip install 'tensornet[test]'"
        ) from exc
    return st


def _check_bounds(low: object, high: object, low_name: str, high_name: str) -> tuple[int, int]:
    lo = check_int(low, low_name, minimum=1)
    hi = check_int(high, high_name, minimum=1)
    if hi < lo:
        raise ValueError(f"{high_name} must be >= {low_name} ({lo}), got {hi}")
    return lo, hi


def shapes(
    min_order: int = 1, max_order: int = 4, min_size: int = 1, max_size: int = 5
) -> SearchStrategy[tuple[int, ...]]:
    """Strategy for tensor shapes: ``min_order..max_order`` modes of size ``min_size..max_size``.

    Parameters
    ----------
    min_order, max_order : int
        Bounds on the number of modes (>= 1).
    min_size, max_size : int
        Bounds on every mode size (>= 1).

    Returns
    -------
    hypothesis strategy of tuple of int

    Raises
    ------
    TypeError
        If a bound is not an int.
    ValueError
        If a bound is < 1 or a maximum is below its minimum.

    Examples
    --------
    >>> from tensornet.testing import shapes
    >>> shape = shapes(max_order=3, max_size=4).example()  # doctest: +SKIP
    """
    lo_d, hi_d = _check_bounds(min_order, max_order, "min_order", "max_order")
    lo_n, hi_n = _check_bounds(min_size, max_size, "min_size", "max_size")
    st = _st()
    return st.lists(st.integers(lo_n, hi_n), min_size=lo_d, max_size=hi_d).map(tuple)


def tt_ranks(shape: Sequence[int], max_rank: int = 4) -> SearchStrategy[tuple[int, ...]]:
    """Strategy for attainable TT ranks of a tensor of shape ``shape``.

    Draws the full tuple ``(1, r_1, ..., r_{d-1}, 1)`` (as :attr:`TTTensor.ranks`) with
    every ``r_k <= max_rank``, never above the rank of the unfolding
    ``min(prod(shape[:k]), prod(shape[k:]))``, and consistent with its neighbours
    (``r_{k+1} <= r_k n_k``, ``r_k <= n_k r_{k+1}``), so that
    ``random_tt(shape, ranks).ranks == ranks`` and a generic tensor of these ranks
    has exactly them.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes (a concrete shape; combine with :func:`shapes` through
        ``flatmap``).
    max_rank : int
        Cap on every bond rank (>= 1).

    Returns
    -------
    hypothesis strategy of tuple of int

    Raises
    ------
    TypeError, ValueError
        If ``shape`` or ``max_rank`` is invalid.

    Examples
    --------
    >>> from tensornet.testing import shapes, tt_ranks
    >>> strategy = shapes().flatmap(lambda s: tt_ranks(s, max_rank=3))
    """
    sizes = check_shape(shape, "shape")
    cap = check_int(max_rank, "max_rank", minimum=1)
    st = _st()
    bonds = st.lists(st.integers(1, cap), min_size=len(sizes) - 1, max_size=len(sizes) - 1)
    return bonds.map(lambda b: _feasible_tt_ranks(sizes, (1, *b, 1)))


def _chain_tensors(
    ranks_strategy: Callable[[tuple[int, ...], int], SearchStrategy[tuple[int, ...]]],
    build: Callable[..., Any],
    sizes: tuple[int, int, int, int],
    max_rank: int,
    dtype: DTypeLike,
) -> SearchStrategy[Any]:
    """Shape, then valid ranks and a seed, then ``build(shape, ranks, rng=seed, dtype=...)``."""
    dt = _check_dtype(dtype)
    rank_cap = check_int(max_rank, "max_rank", minimum=1)
    st = _st()

    def draw_args(shape: tuple[int, ...]) -> SearchStrategy[tuple[Any, ...]]:
        return st.tuples(st.just(shape), ranks_strategy(shape, rank_cap), st.integers(0, 2**32 - 1))

    def make(args: tuple[Any, ...]) -> Any:
        shape, ranks, seed = args
        return build(shape, ranks, rng=seed, dtype=dt)

    return shapes(*sizes).flatmap(draw_args).map(make)


def tt_tensors(
    min_order: int = 1,
    max_order: int = 4,
    min_size: int = 1,
    max_size: int = 5,
    max_rank: int = 4,
    dtype: DTypeLike = "float64",
) -> SearchStrategy[TTTensor]:
    """Strategy for random NumPy-backed :class:`~tensornet.TTTensor` objects.

    Draws a shape from :func:`shapes`, ranks from :func:`tt_ranks` and a seed, and
    builds the tensor with :func:`tensornet.random.random_tt` (Gaussian cores,
    unit-variance entries), so shrinking simplifies shapes and ranks.

    Parameters
    ----------
    min_order, max_order, min_size, max_size : int
        Passed to :func:`shapes`.
    max_rank : int
        Passed to :func:`tt_ranks`.
    dtype : str or numpy dtype
        ``"float32"``, ``"float64"``, ``"complex64"`` or ``"complex128"``.

    Returns
    -------
    hypothesis strategy of TTTensor

    Raises
    ------
    TypeError, ValueError
        If a bound or ``dtype`` is invalid.

    Examples
    --------
    >>> from hypothesis import given
    >>> from tensornet.testing import tt_tensors
    >>> @given(tt_tensors(max_order=3, dtype="complex128"))
    ... def test_norm_is_nonnegative(t):
    ...     assert float(t.norm()) >= 0
    >>> test_norm_is_nonnegative()
    """
    sizes = (min_order, max_order, min_size, max_size)
    return _chain_tensors(tt_ranks, random_tt, sizes, max_rank, dtype)


def tr_ranks(shape: Sequence[int], max_rank: int = 4) -> SearchStrategy[tuple[int, ...]]:
    """Strategy for tensor-ring ranks of a tensor of shape ``shape``.

    Draws the full tuple ``(r_0, r_1, ..., r_{d-1}, r_0)`` (as :attr:`TRTensor.ranks`)
    with every bond ``<= max_rank``, clipped as :func:`tensornet.random.random_tr` clips
    (no bond larger than its cores can carry), so that
    ``random_tr(shape, ranks).ranks == ranks``.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes (a concrete shape; combine with :func:`shapes` through ``flatmap``).
    max_rank : int
        Cap on every bond rank (>= 1).

    Returns
    -------
    hypothesis strategy of tuple of int

    Raises
    ------
    TypeError, ValueError
        If ``shape`` or ``max_rank`` is invalid.

    Examples
    --------
    >>> from tensornet.testing import shapes, tr_ranks
    >>> strategy = shapes(min_order=2).flatmap(lambda s: tr_ranks(s, max_rank=3))
    """
    sizes = check_shape(shape, "shape")
    cap = check_int(max_rank, "max_rank", minimum=1)
    st = _st()
    bonds = st.lists(st.integers(1, cap), min_size=len(sizes), max_size=len(sizes))
    return bonds.map(lambda b: _feasible_tr_ranks(sizes, (*b, b[0])))


def tr_tensors(
    min_order: int = 1,
    max_order: int = 4,
    min_size: int = 1,
    max_size: int = 5,
    max_rank: int = 4,
    dtype: DTypeLike = "float64",
) -> SearchStrategy[TRTensor]:
    """Strategy for random NumPy-backed :class:`~tensornet.TRTensor` objects.

    Draws a shape from :func:`shapes`, ranks from :func:`tr_ranks` and a seed, and
    builds the ring with :func:`tensornet.random.random_tr` (Gaussian cores,
    unit-variance entries).

    Parameters
    ----------
    min_order, max_order, min_size, max_size : int
        Passed to :func:`shapes`.
    max_rank : int
        Passed to :func:`tr_ranks`.
    dtype : str or numpy dtype
        ``"float32"``, ``"float64"``, ``"complex64"`` or ``"complex128"``.

    Returns
    -------
    hypothesis strategy of TRTensor

    Raises
    ------
    TypeError, ValueError
        If a bound or ``dtype`` is invalid.

    Examples
    --------
    >>> from hypothesis import given
    >>> from tensornet.testing import tr_tensors
    >>> @given(tr_tensors(max_order=3, dtype="complex128"))
    ... def test_norm_is_nonnegative(t):
    ...     assert float(t.norm()) >= 0
    >>> test_norm_is_nonnegative()
    """
    sizes = (min_order, max_order, min_size, max_size)
    return _chain_tensors(tr_ranks, random_tr, sizes, max_rank, dtype)


def rtols(min_value: float = 1e-6, max_value: float = 0.9) -> SearchStrategy[float]:
    """Strategy for relative tolerances, log-uniform in ``[min_value, max_value]``.

    Parameters
    ----------
    min_value, max_value : float
        Bounds, ``0 < min_value <= max_value``.

    Returns
    -------
    hypothesis strategy of float

    Raises
    ------
    TypeError
        If a bound is not a real number.
    ValueError
        If a bound is not finite and positive or ``max_value < min_value``.

    Examples
    --------
    >>> from tensornet.testing import rtols
    >>> strategy = rtols(1e-3, 0.5)
    """
    lo = check_rtol(min_value, "min_value")
    hi = check_rtol(max_value, "max_value")
    if lo is None or lo <= 0:
        raise ValueError(f"min_value must be a real number > 0, got {min_value!r}")
    if hi is None or hi < lo:
        raise ValueError(f"max_value must be a real number >= min_value ({lo}), got {max_value!r}")
    st = _st()
    exponents = st.floats(math.log10(lo), math.log10(hi))
    return exponents.map(lambda e: min(max(10.0**e, lo), hi))
