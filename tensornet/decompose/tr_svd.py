"""TR-SVD (Zhao et al. 2016; Mickelin & Karaman 2020): a tensor ring from one sweep of SVDs.

The sweep from start mode ``s`` (ALGORITHMS.md §3), in our C-order conventions:

1. Rotate the modes so that ``s`` comes first: ``y = permute_dims(x, (s, s+1, ..., s-1))``.
2. Truncated SVD of the ``n_s x rest`` unfolding: ``U (n_s, r)``, ``s V^H (r, rest)``.
3. Split the first rank ``r = r0 * r1``. Column ``a`` of ``U`` is read as the pair
   ``(alpha0, alpha1)`` with ``a = alpha0 * r1 + alpha1`` (C order, ``r0`` index major:
   ``U.reshape(n_s, r0, r1)``), so the first core is ``G_s[alpha0, i, alpha1] = U[i, a]``,
   shape ``(r0, n_s, r1)``. The same split of the rows of ``s V^H`` moves ``alpha0`` to the
   end: the remainder has shape ``(r1, n_{s+1}, ..., n_{s-1}, r0)``. This is the split used by
   Zhao et al.'s TR-SVD, TensorLy's ``tensor_ring`` and the RSDTR authors' code.
4. A TT-SVD sweep over the middle modes ``s+1, ..., s-2`` (the closing index ``r0`` rides
   along with the last mode); the carried remainder ``(r_{s-1}, n_{s-1}, r0)`` is the last
   core and closes the ring through ``r0``.
5. Rotate the cores back, so that ``cores[k]`` belongs to mode ``k`` of ``x``.

Error: the sweep is ``d - 1`` truncated SVDs (the first one plus ``d - 2`` middle ones), and
each drops a tail of at most ``delta = rtol * ||x|| / sqrt(d - 1)``. The kept left factors
have orthonormal columns and the split of step 3 only permutes entries, so each step's
residual is orthogonal to everything built later (``x = U U^H x + (I - U U^H) x`` and the
rest of the sweep only changes the ``U U^H x`` part through the isometry ``U``). Hence
``||x - x_hat||^2`` is the sum of the squared tails and ``||x - x_hat|| <= rtol * ||x||``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from tensornet import _backend as B
from tensornet import _chunked
from tensornet._backend import Array
from tensornet._chunked import is_chunked
from tensornet._validation import (
    check_array,
    check_choice,
    check_int,
    check_max_rank,
    check_mode,
    check_rng,
    check_rtol,
)
from tensornet.decompose.tt_svd import _ROUNDOFF_GROWTH
from tensornet.formats.tr import TRTensor
from tensornet.linalg import SVDMethod, TruncatedSVD, _truncated_svd

__all__ = ["tr_svd"]

_METHODS = ("auto", "exact", "randomized")


# -- shared steps of TR-SVD and the RSDTR search (tr_search.py) --------------------------------
def _rotation(order: int, start: int) -> tuple[int, ...]:
    """Mode order ``(start, start + 1, ..., start - 1)`` of the sweep from ``start``."""
    return tuple((start + j) % order for j in range(order))


def _rotate(x: Array, start: int) -> Array:
    """``x`` with its modes rotated so that ``start`` comes first (a copy only if needed)."""
    if start == 0:
        return x
    return B.namespace(x).permute_dims(x, _rotation(x.ndim, start))


def _floor(x: Array, mat_shape: tuple[int, int], total: float) -> float:
    """Round-off level of a sweep matrix: carried errors are ``eps * ||x||``, not ``eps * s_0``."""
    return _ROUNDOFF_GROWTH * B.eps(x) * max(mat_shape) * total


def _divisors(r: int) -> list[int]:
    """Divisors of ``r`` in increasing order."""
    small = [q for q in range(1, math.isqrt(r) + 1) if r % q == 0]
    return sorted({*small, *(r // q for q in small)})


def _balanced_r0(r: int) -> int:
    """The most balanced split ``r = r0 * r1``: the largest divisor ``r0 <= sqrt(r)``."""
    return max(q for q in range(1, math.isqrt(r) + 1) if r % q == 0)


def _check_split(r0: int, r: int, start: int) -> None:
    if r % r0:
        raise ValueError(
            f"r0 must divide the first rank r = r0 * r1 = {r} (the rank kept from the "
            f"mode-{start} unfolding), got r0={r0}; the divisors of {r} are {_divisors(r)}"
        )


def _first_svd(
    x: Array,
    start: int,
    *,
    tol: float | None,
    cap: int | None,
    method: str,
    rng: np.random.Generator,
    total: float,
) -> TruncatedSVD:
    """Truncated SVD of the ``n_start x rest`` unfolding (``rest`` in cyclic mode order)."""
    xp = B.namespace(x)
    mat = xp.reshape(_rotate(x, start), (int(x.shape[start]), -1))
    shape = (int(mat.shape[0]), int(mat.shape[1]))
    return _truncated_svd(
        mat, tol=tol, cap=cap, method=method, rng=rng, floor=_floor(x, shape, total)
    )


Sweep = tuple[list[Array], list[float]]


def _sweep_steps(
    x: Array,
    start: int,
    first: TruncatedSVD,
    r0: int,
    *,
    tol: float | None,
    caps: Sequence[int] | None,
    method: str,
    rng: np.random.Generator,
    total: float,
) -> Generator[tuple[int, Array, int], None, Sweep]:
    """The sweep of :func:`_ring_sweep`, pausing before each middle SVD.

    Yields ``(j, mat, rank)`` before the SVD of sweep step ``j`` (matrix ``mat``, left bond
    ``rank``); resuming it runs that SVD. Returns the cores and tails (StopIteration value).
    """
    xp = B.namespace(x)
    d = x.ndim
    sizes = [int(x.shape[m]) for m in _rotation(d, start)]
    r = int(first.s.shape[0])
    r1 = r // r0
    # Step 3: columns a = alpha0 * r1 + alpha1 of U; rows of s V^H likewise.
    head = xp.permute_dims(xp.reshape(first.U, (sizes[0], r0, r1)), (1, 0, 2))
    carry = xp.astype(first.s[:, None], first.Vh.dtype) * first.Vh  # (r, rest)
    carry = xp.permute_dims(xp.reshape(carry, (r0, r1, -1)), (1, 2, 0))  # (r1, rest, r0)
    rotated = [head]
    tails = [float(first.error)]
    rank = r1
    for j in range(1, d - 1):  # Step 4: TT-SVD over the middle modes, r0 merged at the end
        mat = xp.reshape(carry, (rank * sizes[j], -1))
        shape = (int(mat.shape[0]), int(mat.shape[1]))
        yield j, mat, rank
        res = _truncated_svd(
            mat,
            tol=tol,
            cap=None if caps is None else caps[j - 1],
            method=method,
            rng=rng,
            floor=_floor(x, shape, total),
        )
        new_rank = int(res.s.shape[0])
        rotated.append(xp.reshape(res.U, (rank, sizes[j], new_rank)))
        tails.append(float(res.error))
        carry = xp.astype(res.s[:, None], res.Vh.dtype) * res.Vh
        rank = new_rank
    rotated.append(xp.reshape(carry, (rank, sizes[-1], r0)))  # closes the ring through r0
    return [rotated[(k - start) % d] for k in range(d)], tails


def _ring_sweep(
    x: Array,
    start: int,
    first: TruncatedSVD,
    r0: int,
    *,
    tol: float | None,
    caps: Sequence[int] | None,
    method: str,
    rng: np.random.Generator,
    total: float,
) -> Sweep:
    """Cores (original mode order) and per-SVD tails of TR-SVD from a precomputed first SVD.

    ``caps`` caps the ``d - 2`` middle SVDs (None: no cap). ``r0`` must divide the rank of
    ``first``. The returned tails start with ``first.error``.
    """
    steps = _sweep_steps(
        x, start, first, r0, tol=tol, caps=caps, method=method, rng=rng, total=total
    )
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: Sweep = done.value
            return result


def _zero_ring(x: Array) -> TRTensor:
    """Rank-1 zero cores with ``x``'s shape, array type, dtype and device."""
    xp = B.namespace(x)
    return TRTensor([xp.zeros((1, int(n), 1), dtype=x.dtype, device=B.device(x)) for n in x.shape])


def tr_svd(
    x: Array,
    *,
    rtol: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    start: int = 0,
    r0: int | None = None,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TRTensor:
    """Decompose a dense tensor into tensor-ring format with one sweep of truncated SVDs.

    The sweep starts at mode ``start``: a truncated SVD of the ``n_start x rest``
    unfolding keeps rank ``r``, split as ``r = r0 * r1`` into the two bonds of the
    ``start`` core (``r0`` closes the ring); a TT-SVD sweep over the following modes
    does the rest (see the module docstring for the index order of the split). Each
    of the ``d - 1`` SVDs drops a tail of at most ``rtol * ||x|| / sqrt(d - 1)``, so
    ``||x - result||_F <= rtol * ||x||_F`` whenever no ``max_rank`` cap binds. The
    cores are returned in the original mode order (``cores[k]`` belongs to mode ``k``).

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch; real or complex; integer input is promoted to
        floating point). The result has ``x``'s array type, dtype and device.
    rtol : float, optional
        Target relative Frobenius error. None: exact up to round-off (numerical ranks).
    max_rank : int or sequence of int, optional
        Caps on the ranks of the ``d - 1`` SVDs of the sweep, in sweep order: the first
        entry caps the product ``r = r0 * r1 = r_start * r_{start+1}``, entry ``j >= 1``
        caps the bond ``r_{start+j+1}`` (bond ``r_k`` is the left bond of mode ``k``,
        indices mod ``d``). An int caps all of them. With ``rtol``, the smaller rank wins.
    start : int
        The mode the sweep starts from (negative values count from the end).
    r0 : int, optional
        The closing bond ``r_start``; it must divide the first rank ``r`` (which depends
        on the data, ``rtol`` and ``max_rank``). None: the most balanced split, ``r0``
        the largest divisor of ``r`` with ``r0 <= sqrt(r)``; ``r0 = 1`` gives a TT.
    method : {"auto", "exact", "randomized"}
        SVD path of each unfolding (see :func:`tensornet.linalg.truncated_svd`).
    rng : numpy.random.Generator, int or None
        Randomness of the randomized path (ignored by the exact path).

    Returns
    -------
    TRTensor
        Cores ``(r_k, n_k, r_{k+1})`` with ``r_start = r0`` and ``r_{start+1} = r / r0``.

    Raises
    ------
    TypeError
        If ``x`` is not a numeric array or an option has the wrong type.
    ValueError
        If ``x`` is 0-d, has an empty dimension or non-finite entries, an option is out
        of range, or ``r0`` does not divide the first rank.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tr_svd import tr_svd
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.standard_normal(s) for s in [(2, 8, 3), (3, 9, 2), (2, 10, 2)]]
    >>> x = np.einsum("aib,bjc,cka->ijk", *cores)  # a ring with ranks (2, 3, 2, 2)
    >>> t = tr_svd(x, rtol=1e-10, r0=2)
    >>> t.ranks[:2]  # r = 6 from the mode-0 unfolding, split as r0 * r1 = 2 * 3
    (2, 3)
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-10 * np.linalg.norm(x))
    True
    >>> [core.shape[1] for core in tr_svd(x, rtol=1e-10, start=2).cores]  # original order
    [8, 9, 10]
    """
    if is_chunked(x):
        return _tr_svd_chunked(
            x, rtol=rtol, max_rank=max_rank, start=start, r0=r0, method=method, rng=rng
        )
    x = check_array(x, "x")
    rtol = check_rtol(rtol)
    d = x.ndim
    caps = check_max_rank(max_rank, d - 1)
    start = check_mode(start, d, "start")
    split = None if r0 is None else check_int(r0, "r0", minimum=1)
    method = check_choice(method, "method", _METHODS)  # type: ignore[assignment]
    gen = check_rng(rng)
    xp = B.namespace(x)
    total = float(B.norm(x))
    if d == 1 or total == 0.0:  # first rank 1: a (1, n, 1) core per mode
        if split is not None:
            _check_split(split, 1, start)
        if total == 0.0:
            return _zero_ring(x)
        return TRTensor([xp.reshape(x, (1, int(x.shape[0]), 1))])
    tol = None if rtol is None else rtol * total / math.sqrt(d - 1)
    first = _first_svd(
        x,
        start,
        tol=tol,
        cap=None if caps is None else caps[0],
        method=method,
        rng=gen,
        total=total,
    )
    r = int(first.s.shape[0])
    if split is None:
        split = _balanced_r0(r)
    _check_split(split, r, start)
    cores, _ = _ring_sweep(
        x,
        start,
        first,
        split,
        tol=tol,
        caps=None if caps is None else caps[1:],
        method=method,
        rng=gen,
        total=total,
    )
    return TRTensor(cores)


def _tr_svd_chunked(
    x: Any,
    *,
    rtol: float | None,
    max_rank: int | Sequence[int] | None,
    start: int,
    r0: int | None,
    method: SVDMethod,
    rng: np.random.Generator | int | None,
) -> TRTensor:
    """TR-SVD of a dask array without loading it (:mod:`tensornet._chunked`).

    The same sweep as the in-memory path: the first unfolding (mode ``start``, which must
    be one chunk) and each middle bond cost one pass over the data (a Gram matrix, plus a
    TSQR pass where it cannot resolve the tail); the carried remainder stays lazy until it
    fits one dask chunk, then the sweep goes on in memory. Cores come back as NumPy arrays
    of ``x``'s dtype.
    """
    shape0 = tuple(int(n) for n in x.shape)
    start = check_mode(start, len(shape0), "start")
    x = _chunked.check_chunked(x, "x", whole_mode=start)
    rtol = check_rtol(rtol)
    d = len(shape0)
    caps = check_max_rank(max_rank, d - 1)
    split = None if r0 is None else check_int(r0, "r0", minimum=1)
    method = check_choice(method, "method", _METHODS)  # type: ignore[assignment]
    gen = check_rng(rng)
    dtype = np.dtype(x.dtype)
    eps = float(np.finfo(dtype).eps)
    if d == 1:
        if split is not None:
            _check_split(split, 1, start)
        (vector,) = _chunked.compute(x)
        _chunked.check_finite(vector, "x")
        return TRTensor([vector.reshape(1, shape0[0], 1)])
    y = x.transpose(_rotation(d, start))
    (g,) = _chunked.compute(_chunked.gram(y, (0,)))
    _chunked.check_finite(g, "x")
    total = math.sqrt(max(float(np.real(np.trace(g))), 0.0))
    if total == 0.0:
        if split is not None:
            _check_split(split, 1, start)
        return TRTensor([np.zeros((1, n, 1), dtype=dtype) for n in shape0])
    tol = None if rtol is None else rtol * total / math.sqrt(d - 1)
    u, carry, _ = _chunked_first(
        y, g, tol=tol, cap=None if caps is None else caps[0], eps=eps, total=total
    )
    r = int(u.shape[1])
    if split is None:
        split = _balanced_r0(r)
    _check_split(split, r, start)
    rotated, _ = _chunked_ring_rest(
        u,
        carry,
        [int(n) for n in y.shape],
        split,
        tol=tol,
        caps=None if caps is None else caps[1:],
        method=method,
        rng=gen,
        eps=eps,
        total=total,
    )
    cores = [rotated[(k - start) % d] for k in range(d)]
    return TRTensor([np.asarray(c).astype(dtype, copy=False) for c in cores])


def _chunked_first(
    y: Any, g: np.ndarray, *, tol: float | None, cap: int | None, eps: float, total: float
) -> tuple[np.ndarray, Any, float]:
    """First truncation of a rotated dask array ``y`` whose mode-0 Gram matrix is ``g``.

    Returns the kept left vectors ``(n_0, r)``, the lazy carry ``U^H y`` (``r x`` the
    other modes) and the tail.
    """
    n0 = int(y.shape[0])
    cols = math.prod(int(n) for n in y.shape) // n0
    floor = _ROUNDOFF_GROWTH * eps * max(n0, cols) * total
    u, _, error = _chunked.truncate(y, (0,), g, tol=tol, cap=cap, eps=eps, floor=floor)
    return u, _chunked.project(y, u, 1), error


def _chunked_ring_rest(
    u: np.ndarray,
    carry: Any,
    sizes: list[int],
    split: int,
    *,
    tol: float | None,
    caps: Sequence[int] | None,
    method: SVDMethod,
    rng: np.random.Generator,
    eps: float,
    total: float,
) -> tuple[list[np.ndarray], list[float]]:
    """The sweep after the first truncation, on a lazy or in-memory carry (rotated order).

    ``carry`` is ``U^H y`` of shape ``(r, n_1, ..., n_{d-1})`` (dask or NumPy); the split
    ``r = split * r1`` moves ``split`` to the end as in the in-memory sweep. Returns the
    cores in the rotated mode order and the tails of the middle truncations.
    """
    d = len(sizes)
    r = int(u.shape[1])
    r1 = r // split
    rotated: list[np.ndarray] = [u.reshape(sizes[0], split, r1).transpose(1, 0, 2)]
    carry = carry.reshape(split, r1, *sizes[1:])
    carry = carry.transpose(1, *range(2, d + 1), 0)  # (r1, n_1, ..., n_{d-1}, r0)
    rank = r1
    tails: list[float] = []
    for j in range(1, d - 1):  # the middle modes; r0 rides along at the end
        cap = None if caps is None else caps[j - 1]
        rows = rank * sizes[j]
        cols = math.prod(int(n) for n in carry.shape) // rows
        floor = _ROUNDOFF_GROWTH * eps * max(rows, cols) * total
        if _chunked.is_chunked(carry) and _chunked.small_enough(carry):
            (carry,) = _chunked.compute(carry)
            _chunked.check_finite(carry, "x")
        if _chunked.is_chunked(carry):
            (g,) = _chunked.compute(_chunked.gram(carry, (0, 1)))
            _chunked.check_finite(g, "x")
            basis, _, error = _chunked.truncate(
                carry, (0, 1), g, tol=tol, cap=cap, eps=eps, floor=floor
            )
            carry = _chunked.project(carry, basis, 2)
        else:
            res = _truncated_svd(
                carry.reshape(rows, -1), tol=tol, cap=cap, method=method, rng=rng, floor=floor
            )
            basis, error = res.U, float(res.error)
            carry = (res.s[:, None].astype(res.Vh.dtype) * res.Vh).reshape(
                int(res.s.shape[0]), *carry.shape[2:]
            )
        new_rank = int(basis.shape[1])
        rotated.append(np.asarray(basis).reshape(rank, sizes[j], new_rank))
        tails.append(error)
        rank = new_rank
    if _chunked.is_chunked(carry):
        (carry,) = _chunked.compute(carry)
    rotated.append(np.asarray(carry).reshape(rank, sizes[-1], split))
    return rotated, tails
