"""Random tensors in the tensornet formats (Gaussian cores, reproducible through ``rng=``).

Every generator draws its numbers from a NumPy ``Generator`` in float64 and rounds
them to the requested dtype, so the same ``rng`` seed gives the same tensor in
every dtype (up to that rounding). Results are NumPy-backed; move them with the
array library of your choice afterwards.

Cores are scaled so that the entries of the dense tensor have unit variance
(``E|x_i|^2 == 1`` exactly): core ``k`` is drawn i.i.d. with variance
``1 / r_{k+1}``. An entry of the dense tensor is a sum of ``r_1 * ... * r_{d-1}``
uncorrelated products of ``d`` core entries, each product of variance
``1 / (r_1 * ... * r_{d-1})``. Complex dtypes get circular complex Gaussian entries
(real and imaginary parts each of half that variance).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensornet._backend import is_array
from tensornet._validation import _describe, check_choice, check_int, check_rng, check_shape
from tensornet.formats.cp import CPTensor
from tensornet.formats.stp_formats import (
    STRTensor,
    STTTensor,
    STTuckerTensor,
    _sttucker_plan,
    check_k,
    str_core_shapes,
    stt_core_shapes,
)
from tensornet.formats.tr import TRTensor
from tensornet.formats.tt import TTTensor
from tensornet.formats.tt_matrix import TTMatrix
from tensornet.formats.tucker import TuckerTensor, check_modes, check_tucker_ranks

__all__ = [
    "random_cp",
    "random_str",
    "random_stt",
    "random_sttucker",
    "random_tr",
    "random_tt",
    "random_tt_matrix",
    "random_tucker",
]

DTypeLike = Any
"""A NumPy dtype (or type) or one of the strings of :data:`DTYPES`."""

DTYPES = ("float32", "float64", "complex64", "complex128")
"""The dtypes the random generators produce."""


def _check_dtype(dtype: object, name: str = "dtype") -> np.dtype[Any]:
    """Validate a dtype argument: one of :data:`DTYPES`, as a string or a NumPy dtype."""
    if isinstance(dtype, str):
        return np.dtype(check_choice(dtype, name, DTYPES))
    allowed = ", ".join(repr(d) for d in DTYPES)
    if dtype is None:
        raise TypeError(f"{name} must be a NumPy dtype or one of {allowed}; got None")
    try:
        result = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as exc:
        raise TypeError(
            f"{name} must be a NumPy dtype or one of {allowed}; got {_describe(dtype)}"
        ) from exc
    if result.name not in DTYPES:
        raise ValueError(f"{name} must be one of {allowed}; got dtype {result.name!r}")
    return result


def _requested_ranks(ranks: object, n_modes: int, name: str = "ranks") -> tuple[int, ...]:
    """Parse ``ranks`` (int, d - 1 bond ranks, or the full d + 1 tuple) into the full tuple."""
    n_bonds = n_modes - 1
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        return (1, *(check_int(ranks, name, minimum=1),) * n_bonds, 1)
    if is_array(ranks):
        ranks = np.asarray(ranks).ravel().tolist()
    if not isinstance(ranks, Sequence) or isinstance(ranks, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {_describe(ranks)}")
    values = tuple(check_int(r, f"{name}[{i}]", minimum=1) for i, r in enumerate(ranks))
    if len(values) == n_bonds:
        return (1, *values, 1)
    if len(values) == n_modes + 1:
        if values[0] != 1 or values[-1] != 1:
            raise ValueError(
                f"{name} given as the full tuple (length {n_modes + 1}) must start and end "
                f"with 1, got {values}"
            )
        return values
    raise ValueError(
        f"{name} must be an int, {n_bonds} bond ranks, or the full tuple (1, r_1, ..., 1) of "
        f"length {n_modes + 1} for {n_modes} modes; got a sequence of length {len(values)}"
    )


def _feasible_tt_ranks(sizes: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    """Largest TT ranks ``<= ranks`` (full tuple) that a tensor of mode sizes ``sizes`` can have.

    TT ranks are attained by generic cores iff ``r_{k+1} <= r_k n_k`` and
    ``r_k <= n_k r_{k+1}`` for every core ``k``; a forward then a backward pass of
    ``min`` enforces both. This implies ``r_k <= min(prod(sizes[:k]), prod(sizes[k:]))``,
    the rank of the unfolding.
    """
    result = list(ranks)
    result[0] = result[-1] = 1
    for k, n in enumerate(sizes):
        result[k + 1] = min(result[k + 1], result[k] * n)
    for k in range(len(sizes) - 1, -1, -1):
        result[k] = min(result[k], sizes[k] * result[k + 1])
    return tuple(result)


def _requested_tr_ranks(ranks: object, n_modes: int, name: str = "ranks") -> tuple[int, ...]:
    """Parse ring ``ranks`` (int, d bond ranks, or the full d + 1 tuple) into the full tuple."""
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        return (check_int(ranks, name, minimum=1),) * (n_modes + 1)
    if is_array(ranks):
        ranks = np.asarray(ranks).ravel().tolist()
    if not isinstance(ranks, Sequence) or isinstance(ranks, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {_describe(ranks)}")
    values = tuple(check_int(r, f"{name}[{i}]", minimum=1) for i, r in enumerate(ranks))
    if len(values) == n_modes:
        return (*values, values[0])
    if len(values) == n_modes + 1:
        if values[0] != values[-1]:
            raise ValueError(
                f"{name} given as the full tuple (length {n_modes + 1}) must close the ring "
                f"(first == last), got {values}"
            )
        return values
    raise ValueError(
        f"{name} must be an int, {n_modes} bond ranks (r_0, ..., r_{{d-1}}), or the full tuple "
        f"(r_0, ..., r_{{d-1}}, r_0) of length {n_modes + 1} for {n_modes} modes; got a "
        f"sequence of length {len(values)}"
    )


def _feasible_tr_ranks(sizes: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    """Largest ring ranks ``<= ranks`` (full tuple) with no bond larger than its core allows.

    A bond is always reducible when ``r_{k+1} > r_k n_k`` or ``r_k > n_k r_{k+1}`` for a
    core ``k`` (the core's unfolding has smaller rank); ``min`` passes around the ring
    until none changes enforce both for every core, the closing bond included.
    """
    d = len(sizes)
    bonds = list(ranks[:d])
    changed = True
    while changed:
        changed = False
        for k, n in enumerate(sizes):
            right = min(bonds[(k + 1) % d], bonds[k] * n)
            left = min(bonds[k], n * right)
            if (left, right) != (bonds[k], bonds[(k + 1) % d]):
                bonds[k], bonds[(k + 1) % d] = left, right
                changed = True
    return (*bonds, bonds[0])


def _gaussian_cores(
    core_shapes: Sequence[tuple[int, ...]], ranks: Sequence[int], rng: object, dtype: object
) -> list[np.ndarray]:
    gen = check_rng(rng)
    dt = _check_dtype(dtype)
    cores = []
    for k, shape in enumerate(core_shapes):
        scale = 1.0 / math.sqrt(ranks[k + 1])
        values = gen.standard_normal(shape)
        if dt.kind == "c":
            values = (values + 1j * gen.standard_normal(shape)) * math.sqrt(0.5)
        cores.append((values * scale).astype(dt))
    return cores


def random_tt(
    shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> TTTensor:
    """Random tensor train with Gaussian cores and unit-variance entries.

    Core ``k`` has shape ``(r_k, n_k, r_{k+1})`` and i.i.d. entries of variance
    ``1 / r_{k+1}``, so every entry of the dense tensor has variance exactly 1
    (see the module docstring).

    Requested ranks above what the shape allows are clipped to the largest
    attainable TT ranks: ``r_{k+1} <= r_k n_k`` and ``r_k <= n_k r_{k+1}`` for every
    core, which implies ``r_k <= min(prod(shape[:k]), prod(shape[k:]))`` (the rank
    of the unfolding). With probability one the result then has exactly
    ``result.ranks`` as its TT ranks (``tt_svd(result.to_dense()).ranks`` agrees).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : int or sequence of int
        One int for every bond, the ``d - 1`` bond ranks ``(r_1, ..., r_{d-1})``, or
        the full tuple ``(1, r_1, ..., r_{d-1}, 1)`` (as :attr:`TTTensor.ranks`).
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same tensor.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``. The
        numbers are drawn in float64 and rounded, so float32 cores equal the rounded
        float64 cores of the same seed.

    Returns
    -------
    TTTensor
        NumPy-backed cores of dtype ``dtype``.

    Raises
    ------
    TypeError
        If ``shape``, ``ranks``, ``rng`` or ``dtype`` has the wrong type.
    ValueError
        If a size or rank is < 1, ``ranks`` has the wrong length, a full ranks tuple
        does not start and end with 1, or ``dtype`` is not one of the four above.

    Examples
    --------
    >>> from tensornet.random import random_tt
    >>> random_tt((3, 4, 5), 2, rng=0)
    TTTensor(shape=(3, 4, 5), ranks=(1, 2, 2, 1), dtype=float64, num_params=32)
    >>> random_tt((2, 3, 4), 10, rng=0).ranks  # clipped to the attainable ranks
    (1, 2, 4, 1)
    >>> random_tt((2, 2), [1, 2, 1], rng=0, dtype="complex64").dtype
    dtype('complex64')
    """
    sizes = check_shape(shape, "shape")
    full = _feasible_tt_ranks(sizes, _requested_ranks(ranks, len(sizes)))
    core_shapes = [(full[k], n, full[k + 1]) for k, n in enumerate(sizes)]
    return TTTensor(tuple(_gaussian_cores(core_shapes, full, rng, dtype)))


def random_tr(
    shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> TRTensor:
    """Random tensor ring with Gaussian cores and unit-variance entries.

    Core ``k`` has shape ``(r_k, n_k, r_{k+1})`` (``r_d = r_0``) and i.i.d. entries of
    variance ``1 / r_{k+1}``: an entry of the dense tensor is a sum of
    ``r_0 r_1 ... r_{d-1}`` uncorrelated products of variance ``1 / (r_1 ... r_{d-1} r_0)``,
    so it has variance exactly 1.

    Requested ranks are clipped so that no bond exceeds what its cores can carry:
    ``r_{k+1} <= r_k n_k`` and ``r_k <= n_k r_{k+1}`` for every core, the last one (and
    so the closing bond) included. A larger bond is always removed by
    :func:`~tensornet.formats.tr.tr_round`, whereas with probability one the ranks
    returned here are kept by it (they are the ranks of the ring's open chain).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : int or sequence of int
        One int for every bond, the ``d`` bond ranks ``(r_0, ..., r_{d-1})`` (``r_0``
        the closing bond), or the full tuple ``(r_0, ..., r_{d-1}, r_0)`` (as
        :attr:`TRTensor.ranks`).
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same ring.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``; the
        numbers are drawn in float64 and rounded.

    Returns
    -------
    TRTensor
        NumPy-backed cores of dtype ``dtype``.

    Raises
    ------
    TypeError
        If ``shape``, ``ranks``, ``rng`` or ``dtype`` has the wrong type.
    ValueError
        If a size or rank is < 1, ``ranks`` has the wrong length, a full ranks tuple
        does not close (first != last), or ``dtype`` is not supported.

    Examples
    --------
    >>> from tensornet.random import random_tr
    >>> random_tr((3, 4, 5), 2, rng=0)
    TRTensor(shape=(3, 4, 5), ranks=(2, 2, 2, 2), dtype=float64, num_params=48)
    >>> random_tr((3, 4, 5), (1, 2, 3), rng=0).ranks  # r_0 = 1: a TT
    (1, 2, 3, 1)
    >>> random_tr((2, 2), 5, rng=0).ranks  # clipped: r_1 <= r_0 n_0 and r_0 <= n_1 r_1 ...
    (5, 5, 5)
    >>> random_tr((2, 3), (1, 9), rng=0).ranks  # ... but r_1 <= 1 * 2
    (1, 2, 1)
    """
    sizes = check_shape(shape, "shape")
    full = _feasible_tr_ranks(sizes, _requested_tr_ranks(ranks, len(sizes)))
    core_shapes = [(full[k], n, full[k + 1]) for k, n in enumerate(sizes)]
    return TRTensor(tuple(_gaussian_cores(core_shapes, full, rng, dtype)))


def random_tt_matrix(
    row_shape: Sequence[int],
    col_shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> TTMatrix:
    """Random TT-matrix with Gaussian cores and unit-variance entries.

    Core ``k`` has shape ``(r_k, m_k, n_k, r_{k+1})`` and i.i.d. entries of variance
    ``1 / r_{k+1}``, so every entry of the dense ``(prod(m), prod(n))`` matrix has
    variance exactly 1. Ranks are clipped as in :func:`random_tt` for the merged
    mode sizes ``m_k * n_k``.

    Parameters
    ----------
    row_shape : sequence of int
        Row mode sizes ``(m_0, ..., m_{d-1})``.
    col_shape : sequence of int
        Column mode sizes ``(n_0, ..., n_{d-1})``, as many as ``row_shape``.
    ranks : int or sequence of int
        One int for every bond, the ``d - 1`` bond ranks, or the full tuple
        ``(1, r_1, ..., r_{d-1}, 1)``.
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same matrix.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``.

    Returns
    -------
    TTMatrix
        NumPy-backed cores of dtype ``dtype``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``row_shape`` and ``col_shape`` differ in length, a size or rank is < 1,
        ``ranks`` has the wrong length, or ``dtype`` is not supported.

    Examples
    --------
    >>> from tensornet.random import random_tt_matrix
    >>> a = random_tt_matrix((2, 3), (4, 5), 3, rng=0)
    >>> a.row_shape, a.col_shape, a.ranks, a.shape
    ((2, 3), (4, 5), (1, 3, 1), (6, 20))
    """
    rows = check_shape(row_shape, "row_shape")
    cols = check_shape(col_shape, "col_shape")
    if len(rows) != len(cols):
        raise ValueError(
            f"row_shape and col_shape must have the same length, got row_shape={rows} "
            f"and col_shape={cols}"
        )
    sizes = tuple(m * n for m, n in zip(rows, cols, strict=True))
    full = _feasible_tt_ranks(sizes, _requested_ranks(ranks, len(sizes)))
    core_shapes = [
        (full[k], m, n, full[k + 1]) for k, (m, n) in enumerate(zip(rows, cols, strict=True))
    ]
    return TTMatrix(tuple(_gaussian_cores(core_shapes, full, rng, dtype)))


# -- Tucker and CP --------------------------------------------------------------------------------
def _gaussian(gen: np.random.Generator, shape: tuple[int, ...], dt: np.dtype[Any]) -> np.ndarray:
    """Unit-variance Gaussian array (circular complex for complex ``dt``), drawn in float64."""
    values = gen.standard_normal(shape)
    if dt.kind == "c":
        values = (values + 1j * gen.standard_normal(shape)) * math.sqrt(0.5)
    return values


def _feasible_tucker_ranks(sizes: Sequence[int], ranks: dict[int, int]) -> dict[int, int]:
    """Largest multilinear ranks ``<= ranks`` that a tensor of mode sizes ``sizes`` can have.

    Multilinear ranks are attained by a generic core and factors iff ``r_k <= n_k`` and
    ``r_k <= prod_{j != k} r_j`` for every mode (unfactored modes count with ``n_j``);
    lowering one rank can lower others, so the rule is applied until nothing changes.
    """
    full = {k: min(r, sizes[k]) for k, r in ranks.items()}
    changed = True
    while changed:
        changed = False
        current = [full.get(k, n) for k, n in enumerate(sizes)]
        for k in full:
            others = math.prod(current[:k] + current[k + 1 :])
            if full[k] > others:
                full[k] = others
                changed = True
    return full


def random_tucker(
    shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    modes: int | Sequence[int] | None = None,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> TuckerTensor:
    """Random (partial) Tucker tensor with Gaussian core and factors, unit-variance entries.

    The core has i.i.d. unit-variance entries and factor ``k`` (``n_k x r_k``) i.i.d.
    entries of variance ``1 / r_k``, so every entry of the dense tensor, a sum of
    ``prod(r_k)`` uncorrelated products, has variance exactly 1. Factors are not
    orthonormal (decompositions such as :func:`tensornet.hosvd` return orthonormal ones).

    Requested ranks above what the shape allows are clipped to the largest attainable
    multilinear ranks: ``r_k <= n_k`` and ``r_k <= prod_{j != k} r_j``. With probability
    one the result then has exactly ``result.ranks`` as its multilinear ranks (the ranks
    of its unfoldings).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : int or sequence of int
        As in :func:`tensornet.hosvd`: one int for every factored mode, one int per
        factored mode (in the order of ``modes``), or the full core shape.
    modes : int or sequence of int, optional
        The factored modes; None factors every mode. Other modes get no factor.
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same tensor. The core is drawn
        first, then the factors in mode order.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``.

    Returns
    -------
    TuckerTensor
        NumPy-backed core and factors of dtype ``dtype``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a size or rank is < 1, ``ranks`` has the wrong length, a mode is out of
        range or repeated, or ``dtype`` is not supported.

    Examples
    --------
    >>> from tensornet.random import random_tucker
    >>> random_tucker((4, 5, 6), 2, rng=0)
    TuckerTensor(shape=(4, 5, 6), ranks=(2, 2, 2), modes=(0, 1, 2), dtype=float64, num_params=38)
    >>> random_tucker((8, 6, 3, 3), (3, 2), modes=(0, 1), rng=0).ranks  # Tucker-2
    (3, 2, 3, 3)
    >>> random_tucker((2, 9, 9), 5, rng=0).ranks  # clipped: r_0 <= 2, r_1 <= r_0 r_2 ...
    (2, 5, 5)
    """
    sizes = check_shape(shape, "shape")
    factored = check_modes(modes, len(sizes))
    full = _feasible_tucker_ranks(sizes, check_tucker_ranks(ranks, factored, sizes))
    dt = _check_dtype(dtype)
    gen = check_rng(rng)
    core_shape = tuple(full.get(k, n) for k, n in enumerate(sizes))
    core = _gaussian(gen, core_shape, dt).astype(dt)
    factors: list[np.ndarray | None] = [None] * len(sizes)
    for k in sorted(full):
        values = _gaussian(gen, (sizes[k], full[k]), dt) / math.sqrt(full[k])
        factors[k] = values.astype(dt)
    return TuckerTensor(core, factors)


def random_cp(
    shape: Sequence[int],
    rank: int,
    *,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> CPTensor:
    """Random CP tensor with Gaussian factors and unit-variance entries.

    Factors have i.i.d. unit-variance entries and every weight is ``1 / sqrt(R)``, so
    every entry of the dense tensor, a sum of ``R`` uncorrelated products, has variance
    exactly 1. Ranks are not clipped (a CP rank may exceed the mode sizes); Gaussian
    factors with ``R <= n_k`` are well conditioned with high probability.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    rank : int
        Number of rank-one terms ``R`` (>= 1).
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same tensor.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``.

    Returns
    -------
    CPTensor
        NumPy-backed weights and factors of dtype ``dtype``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a size or the rank is < 1, or ``dtype`` is not supported.

    Examples
    --------
    >>> from tensornet.random import random_cp
    >>> random_cp((4, 5, 6), 3, rng=0)
    CPTensor(shape=(4, 5, 6), rank=3, dtype=float64, num_params=48)
    """
    sizes = check_shape(shape, "shape")
    r = check_int(rank, "rank", minimum=1)
    dt = _check_dtype(dtype)
    gen = check_rng(rng)
    weights = np.full(r, 1.0 / math.sqrt(r)).astype(dt)
    factors = [_gaussian(gen, (n, r), dt).astype(dt) for n in sizes]
    return CPTensor(weights, factors)


def _stored_variance_cores(
    core_shapes: Sequence[tuple[int, int, int]], rng: object, dtype: object
) -> list[np.ndarray]:
    """Gaussian cores of variance ``1 / (stored right size)``: unit-variance dense entries.

    In the STP chains each stored right index of a core is one new free index of the sum
    that makes an entry (the copy index ``s`` of ``⊗ I_k`` is fixed once a full core
    has chosen it), so the count of products in an entry is the product of the stored
    right sizes and each product has the inverse variance.
    """
    ranks = [1, *(s[2] for s in core_shapes)]
    return _gaussian_cores(core_shapes, ranks, rng, dtype)


def random_stt(
    shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    k: int,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> STTTensor:
    """Random STT with Gaussian cores and unit-variance dense entries.

    Ranks are not clipped to what the shape allows (an STT with larger bonds than its
    unfoldings is valid, only redundant).

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : int or sequence of int
        Ranks of the equivalent ordinary format (see the format's class).
    k : int
        Size of the identity factor; it must divide the sizes it multiplies.
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same tensor.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a size or rank is < 1, ``ranks`` has the wrong length, or ``k`` does not divide
        a size it must divide.

    Examples
    --------
    >>> from tensornet.random import random_stt
    >>> random_stt((4, 5, 6, 7), 4, k=2, rng=0)
    STTTensor(shape=(4, 5, 6, 7), ranks=(1, 4, 4, 4, 1), k=2, dtype=float64, num_params=88)
    """
    k = check_k(k)
    shapes = stt_core_shapes(shape, ranks, k)
    return STTTensor(tuple(_stored_variance_cores(shapes, rng, dtype)), k=k)


def random_str(
    shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    k: int,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> STRTensor:
    """Random STR with Gaussian cores and unit-variance dense entries.

    Ranks are not clipped to what the shape allows.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : int or sequence of int
        Ranks of the equivalent ordinary format (see the format's class).
    k : int
        Size of the identity factor; it must divide the sizes it multiplies.
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same tensor.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a size or rank is < 1, ``ranks`` has the wrong length, or ``k`` does not divide
        a size it must divide.

    Examples
    --------
    >>> from tensornet.random import random_str
    >>> random_str((4, 5, 6), 6, k=2, rng=0)
    STRTensor(shape=(4, 5, 6), ranks=(6, 6, 6, 6), k=2, dtype=float64, num_params=243)
    """
    k = check_k(k)
    shapes = str_core_shapes(shape, ranks, k)
    return STRTensor(tuple(_stored_variance_cores(shapes, rng, dtype)), k=k)


def random_sttucker(
    shape: Sequence[int],
    ranks: int | Sequence[int],
    *,
    k: int,
    modes: int | Sequence[int] | None = None,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = "float64",
) -> STTuckerTensor:
    """Random STTucker tensor: unit-variance core, factors of variance ``k / R_n``.

    A row of ``U_n ⊗ I_k`` has ``R_n / k`` non-zeros, so every dense entry is a sum of
    ``prod(R_n / k)`` products of variance ``prod(k / R_n)``: unit variance.

    Parameters
    ----------
    shape : sequence of int
        Mode sizes ``(n_0, ..., n_{d-1})``.
    ranks : int or sequence of int
        Ranks of the equivalent ordinary format (see the format's class).
    k : int
        Size of the identity factor; it must divide the sizes it multiplies.
    modes : int or sequence of int, optional
        The factored modes (None: all), as in :func:`random_tucker`.
    rng : numpy.random.Generator, int or None
        Source of randomness; the same seed gives the same tensor.
    dtype : str or numpy dtype
        One of ``"float32"``, ``"float64"``, ``"complex64"``, ``"complex128"``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If a size or rank is < 1, ``ranks`` has the wrong length, or ``k`` does not divide
        a size it must divide.

    Examples
    --------
    >>> from tensornet.random import random_sttucker
    >>> t = random_sttucker((6, 8, 10), 4, k=2, rng=0)
    >>> t.ranks, t.k, t.num_params
    ((4, 4, 4), 2, 88)
    """
    k = check_k(k)
    sizes, full = _sttucker_plan(shape, ranks, k, modes)
    dt = _check_dtype(dtype)
    gen = check_rng(rng)
    core_shape = tuple(full.get(m, n) for m, n in enumerate(sizes))
    core = _gaussian(gen, core_shape, dt).astype(dt)
    factors: list[np.ndarray | None] = [None] * len(sizes)
    for m in sorted(full):
        values = _gaussian(gen, (sizes[m] // k, full[m] // k), dt) * math.sqrt(k / full[m])
        factors[m] = values.astype(dt)
    return STTuckerTensor(core, factors, k=k)
