"""CP decomposition by alternating least squares (CP-ALS, Carroll & Chang 1970; Harshman 1970).

One sweep updates every factor in turn (mode 0 first). The update of mode ``k``
solves the linear least-squares problem ``min_A ||X_(k) - A K_k^T||_F`` against the
Khatri-Rao product ``K_k`` of the other factors through its normal equations
``A conj(V_k) = M_k``, where

- ``V_k = *_{j != k} F_j^H F_j`` is the Hadamard product of the other Gram
  matrices (``R x R``, Hermitian positive semi-definite), and
- ``M_k = X_(k) conj(K_k)`` is the MTTKRP, evaluated as one cached einsum of ``x`` with
  the other factors, so ``K_k`` (``prod(n_j) x R``) is never formed.

``V_k`` is solved with LAPACK's ``solve``; when it is singular (or the solution is not
finite) the pseudo-inverse is used instead, so the iteration never produces NaN. The
columns of the new factor are normalized and their norms become the weights.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import (
    ConvergenceWarning,
    _describe,
    check_array,
    check_choice,
    check_int,
    check_rng,
    check_rtol,
    check_same_namespace,
)
from tensornet.contract import contract
from tensornet.formats.cp import CPTensor, cp_to_dense
from tensornet.formats.tucker import einsum_symbols, unfold
from tensornet.linalg import _truncated_svd

__all__ = ["cp_als"]

_INITS = ("svd", "random")
_DENSE_ERROR_BELOW = 0.5
"""The error is recomputed densely when ``(||x - x_hat|| / ||x||)^2 < eps**_DENSE_ERROR_BELOW``."""
_FORMULA_RESOLUTION = 10.0
"""Round-off of the relative error from the Gram formula: ``_FORMULA_RESOLUTION * eps / error``."""
_DENSE_RESOLUTION = 10.0
"""Round-off of the relative error computed from the dense residual: ``_DENSE_RESOLUTION * eps``."""


def _mttkrp(x: Array, factors: Sequence[Array], mode: int, rank: int) -> Array:
    """``X_(mode) conj(K)`` with ``K`` the Khatri-Rao product of the other factors, (n_mode, R)."""
    xp = B.namespace(x)
    d = x.ndim
    if d == 1:
        return x[:, None] * xp.ones((1, rank), dtype=x.dtype, device=B.device(x))
    letters = einsum_symbols(d)
    r = einsum_symbols(1, start=d)
    terms = [letters] + [letters[j] + r for j in range(d) if j != mode]
    operands = [B.conj(factors[j]) for j in range(d) if j != mode]
    return contract(",".join(terms) + "->" + letters[mode] + r, x, *operands)


def _gram(f: Array) -> Array:
    xp = B.namespace(f)
    return B.conj(xp.matrix_transpose(f)) @ f


def _hadamard(grams: Sequence[Array], rank: int, like: Array) -> Array:
    xp = B.namespace(like)
    result = xp.ones((rank, rank), dtype=like.dtype, device=B.device(like))
    for g in grams:
        result = result * g
    return result


def _solve_normal_equations(v: Array, m: Array) -> Array:
    """``A`` with ``A conj(V) = M`` for Hermitian ``V``, i.e. ``A^T = V^{-1} M^T``.

    LAPACK ``solve``; the pseudo-inverse when ``V`` is singular or the solution is not
    finite (so a degenerate Gram never turns into NaN).
    """
    xp = B.namespace(v)
    rhs = xp.matrix_transpose(m)
    try:
        sol = xp.linalg.solve(v, rhs)
        if bool(xp.all(xp.isfinite(sol))):
            return xp.matrix_transpose(sol)
    except (np.linalg.LinAlgError, RuntimeError):  # torch's LinAlgError is a RuntimeError
        pass
    return xp.matrix_transpose(xp.linalg.pinv(v) @ rhs)


def _unit_columns(f: Array) -> tuple[Array, Array]:
    """``f`` with unit-norm columns (zero columns left as they are) and the column norms."""
    xp = B.namespace(f)
    norms = xp.linalg.vector_norm(f, axis=0)
    safe = xp.where(norms > 0, norms, xp.ones_like(norms))
    return f / xp.astype(safe, f.dtype)[None, :], norms


def _initial_factors(
    x: Array, rank: int, init: object, gen: np.random.Generator
) -> list[Array | None]:
    """Starting factors of modes 1..d-1 (mode 0 is solved first and needs none)."""
    xp = B.namespace(x)
    shape = tuple(int(n) for n in x.shape)
    factors: list[Array | None] = [None] * len(shape)
    if isinstance(init, CPTensor):
        if init.shape != shape:
            raise ValueError(f"init must have the shape of x {shape}, got {init.shape}")
        if init.rank != rank:
            raise ValueError(f"init must have rank {rank} (the rank argument), got {init.rank}")
        check_same_namespace([x, init.weights], "x and init", same_dtype=False)
        for k in range(1, len(shape)):
            factors[k] = _unit_columns(xp.astype(init.factors[k], x.dtype))[0]
        return factors
    if not isinstance(init, str):
        allowed = ", ".join(repr(c) for c in _INITS)
        raise TypeError(f"init must be one of {allowed} or a CPTensor, got {_describe(init)}")
    choice = check_choice(init, "init", _INITS)
    for k in range(1, len(shape)):
        n = shape[k]
        if choice == "svd":
            res = _truncated_svd(unfold(x, k), tol=None, cap=rank, method="auto", rng=gen)
            columns = [res.U]
            missing = rank - int(res.U.shape[1])
            if missing > 0:  # rank above n_k or the unfolding's rank: random extra columns
                columns.append(_unit_columns(B.standard_normal(x, (n, missing), gen))[0])
            factors[k] = xp.concat(columns, axis=1) if len(columns) > 1 else columns[0]
        else:
            factors[k] = _unit_columns(B.standard_normal(x, (n, rank), gen))[0]
    return factors


def _zero_cp(x: Array, rank: int) -> CPTensor:
    xp = B.namespace(x)
    dev = B.device(x)
    factors = [
        xp.ones((int(n), rank), dtype=x.dtype, device=dev) / math.sqrt(int(n)) for n in x.shape
    ]
    return CPTensor(xp.zeros((rank,), dtype=x.dtype, device=dev), factors)


def cp_als(
    x: Array,
    rank: int,
    *,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    rng: np.random.Generator | int | None = None,
    init: Literal["svd", "random"] | CPTensor = "svd",
) -> CPTensor:
    """CP decomposition of a dense tensor by alternating least squares.

    See the module docstring for the update. After every sweep the relative error
    ``e = ||x - x_hat|| / ||x||`` is evaluated without densifying, from the last MTTKRP
    and the Gram matrices; once ``e^2 < sqrt(eps)`` that formula has lost too many
    digits and ``e`` is recomputed from the dense residual (one extra reconstruction
    per sweep, only near an exact fit).

    Convergence: the sweeps stop when the fit ``1 - e`` changes by less than ``tol``
    between two sweeps, or by less than the round-off with which ``e`` is known in
    ``x``'s dtype (``10 eps / e`` from the formula, ``10 eps`` from the dense
    residual), so float32 runs converge too. Otherwise a
    :class:`~tensornet.ConvergenceWarning` is issued after ``n_iter_max`` sweeps and
    the last iterate is returned (``warnings.simplefilter("error",
    tensornet.ConvergenceWarning)`` turns it into an exception); the return type is
    always a CPTensor. ALS can be slow in "swamps" and can stop at a local minimum:
    for a hard tensor, try several ``init="random"`` starts (``rng``) and keep the best.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch, any device; real or complex; integers are
        promoted to float). The result has ``x``'s array type, dtype and device.
    rank : int
        Number of rank-one terms ``R`` (>= 1; may exceed the mode sizes).
    n_iter_max : int
        Maximum number of sweeps (>= 1).
    tol : float
        Tolerance on the change of the fit ``1 - e`` between sweeps (>= 0).
    rng : numpy.random.Generator, int or None
        Randomness of the random start, of the columns that pad an SVD start, and of
        the randomized SVD of the SVD start.
    init : {"svd", "random"} or CPTensor
        Start: the leading ``R`` left singular vectors of each unfolding (padded with
        random columns where ``R`` exceeds the unfolding's rank), Gaussian factors, or
        the factors of a CPTensor of ``x``'s shape and rank ``R``. Mode 0 is solved
        first, so the first factor and the weights of a start are not used.

    Returns
    -------
    CPTensor
        Unit-norm factor columns, weights ``>= 0`` (cast to ``x``'s dtype), terms
        sorted by decreasing weight. A term the fit drops entirely has weight 0 and may
        keep zero columns.

    Raises
    ------
    TypeError
        If ``x`` is not numeric or an option has the wrong type.
    ValueError
        If ``x`` is 0-d, empty or not finite, an option is out of range, or ``init``
        does not match ``x`` and ``rank``.

    Warns
    -----
    ConvergenceWarning
        If the fit still changes by more than ``tol`` after ``n_iter_max`` sweeps.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.cp_als import cp_als
    >>> rng = np.random.default_rng(0)
    >>> a, b, c = (rng.standard_normal((n, 3)) for n in (6, 7, 8))
    >>> x = np.einsum("ir,jr,kr->ijk", a, b, c)
    >>> t = cp_als(x, 3, rng=0)
    >>> t.rank, bool(np.linalg.norm(t.to_dense() - x) <= 1e-6 * np.linalg.norm(x))
    (3, True)
    """
    arr = check_array(x, "x")
    rank = check_int(rank, "rank", minimum=1)
    n_iter_max = check_int(n_iter_max, "n_iter_max", minimum=1)
    tol_value = check_rtol(tol, "tol")
    if tol_value is None:
        raise TypeError("tol must be a real number >= 0, got None")
    gen = check_rng(rng)
    start = _initial_factors(arr, rank, init, gen)
    total = float(B.norm(arr))
    if total == 0.0:
        return _zero_cp(arr, rank)
    xp = B.namespace(arr)
    d = arr.ndim
    eps = B.eps(arr)
    factors: list[Any] = list(start)
    grams: list[Any] = [None if f is None else _gram(f) for f in factors]
    norms: Any = None
    previous = None
    change = math.inf
    for _ in range(n_iter_max):
        for k in range(d):
            v = _hadamard([g for j, g in enumerate(grams) if j != k], rank, arr)
            m = _mttkrp(arr, factors, k, rank)
            factors[k], norms = _unit_columns(_solve_normal_equations(v, m))
            grams[k] = _gram(factors[k])
        weights = xp.astype(norms, arr.dtype)
        # <x_hat, x> from the last MTTKRP and ||x_hat||^2 from the Grams: no densifying.
        inner = xp.sum(B.conj(weights) * xp.sum(B.conj(factors[-1]) * m, axis=0))
        norm_sq = xp.sum(B.conj(weights) * (_hadamard(grams, rank, arr) @ weights))
        error_sq = (total**2 - 2 * float(xp.real(inner)) + float(xp.real(norm_sq))) / total**2
        if error_sq >= eps**_DENSE_ERROR_BELOW:
            error = math.sqrt(error_sq)
            resolution = _FORMULA_RESOLUTION * eps / error
        else:
            estimate = CPTensor(weights, factors)
            error = float(B.norm(arr - cp_to_dense(estimate))) / total
            resolution = _DENSE_RESOLUTION * eps
        if previous is not None:
            change = abs(previous - error)
            if change <= max(tol_value, resolution):
                break
        previous = error
    else:
        warnings.warn(
            f"cp_als did not converge in {n_iter_max} sweep{'s' if n_iter_max != 1 else ''}: "
            f"the fit changed by {change:.3e} "
            f"in the last sweep, more than tol={tol_value:.3e} (relative error "
            f"{previous:.3e}); increase n_iter_max or tol, or try another init",
            ConvergenceWarning,
            stacklevel=2,
        )
    order = xp.argsort(-norms)
    return CPTensor(xp.take(weights, order), [xp.take(f, order, axis=1) for f in factors])
