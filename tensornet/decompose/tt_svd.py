"""TT-SVD (Oseledets 2011): a left-to-right sweep of truncated SVDs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensornet import _backend as B
from tensornet import _chunked
from tensornet._backend import Array
from tensornet._chunked import is_chunked
from tensornet._validation import (
    check_array,
    check_choice,
    check_rng,
    check_rtol,
    check_tt_caps,
)
from tensornet.formats.tt import TTTensor
from tensornet.linalg import SVDMethod, _truncated_svd

__all__ = ["tt_svd"]

_METHODS = ("auto", "exact", "randomized")
_ROUNDOFF_GROWTH = 16.0
"""Safety factor on ``eps * max(m, n) * ||x||``, the noise level of a sweep's matrices."""


def tt_svd(
    x: Array,
    *,
    rtol: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TTTensor:
    """Decompose a dense tensor into tensor-train format.

    A left-to-right sweep over the ``d - 1`` unfoldings ``(r_k n_k) x rest``; each
    truncated SVD drops a tail of at most ``rtol * ||x|| / sqrt(d - 1)``, so that
    ``||x - result||_F <= rtol * ||x||_F`` whenever no ``max_rank`` cap binds.
    Ranks never exceed the numerical rank of the unfolding they come from.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch; real or complex; integer input is promoted to
        floating point). The result has ``x``'s array type, dtype and device.
    rtol : float, optional
        Target relative Frobenius error. None: exact up to round-off (numerical ranks).
    max_rank : int or sequence of int, optional
        Cap on every bond (int), on each of the ``d - 1`` bonds, or a ``TTTensor.ranks``
        tuple (``d + 1`` ints with 1 at both ends). With ``rtol``, the smaller rank wins.
    method : {"auto", "exact", "randomized"}
        SVD path for each unfolding (see :func:`tensornet.linalg.truncated_svd`);
        ``"auto"`` takes the randomized range finder where ``max_rank`` is small
        against the unfolding, and LAPACK's thin SVD otherwise.
    rng : numpy.random.Generator, int or None
        Randomness of the randomized path (ignored by the exact path).

    Returns
    -------
    TTTensor
        Cores ``(r_k, n_k, r_{k+1})``.

    Raises
    ------
    TypeError
        If ``x`` is not a numeric array or an option has the wrong type.
    ValueError
        If ``x`` is 0-d, has an empty dimension or non-finite entries, or an option is
        out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd
    >>> x = np.einsum("i,j,k->ijk", np.arange(1.0, 4), np.ones(4), np.arange(5.0))
    >>> t = tt_svd(x, rtol=1e-10)
    >>> t.ranks
    (1, 1, 1, 1)
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-10 * np.linalg.norm(x))
    True
    """
    if is_chunked(x):
        return _tt_svd_chunked(x, rtol=rtol, max_rank=max_rank, method=method, rng=rng)
    x = check_array(x, "x")
    rtol = check_rtol(rtol)
    shape = tuple(int(n) for n in x.shape)
    d = len(shape)
    caps = check_tt_caps(max_rank, d)
    method = check_choice(method, "method", _METHODS)  # type: ignore[assignment]
    gen = check_rng(rng)
    xp = B.namespace(x)
    if d == 1:
        return TTTensor([xp.reshape(x, (1, shape[0], 1))])
    total = float(B.norm(x))
    if total == 0.0:
        return _zero_tt(x, shape)
    tol = None if rtol is None else rtol * total / math.sqrt(d - 1)
    cores: list[Array] = []
    _sweep(x, shape, 0, 1, cores, tol=tol, caps=caps, method=method, rng=gen, total=total)
    return TTTensor(cores)


def _zero_tt(like: Array, shape: tuple[int, ...]) -> TTTensor:
    xp = B.namespace(like)
    return TTTensor([xp.zeros((1, n, 1), dtype=like.dtype, device=B.device(like)) for n in shape])


def _sweep(
    rest: Array,
    shape: tuple[int, ...],
    start: int,
    rank: int,
    cores: list[Array],
    *,
    tol: float | None,
    caps: Sequence[int] | None,
    method: SVDMethod,
    rng: np.random.Generator,
    total: float,
    eps: float | None = None,
) -> None:
    """The in-memory sweep from bond ``start`` on: appends the cores of modes ``start..``.

    ``rest`` holds the not yet decomposed part, ``rank`` x ``shape[start:]`` entries;
    ``eps`` is that of the data's dtype (default: ``rest``'s).
    """
    xp = B.namespace(rest)
    eps = B.eps(rest) if eps is None else eps
    for k in range(start, len(shape) - 1):
        mat = xp.reshape(rest, (rank * shape[k], -1))
        # Round-off carried from earlier steps lives at eps * ||x|| (times LAPACK's modest
        # growth factor), not at eps * s_0 of `mat`: singular values below it are noise.
        floor = _ROUNDOFF_GROWTH * eps * max(int(mat.shape[0]), int(mat.shape[1])) * total
        res = _truncated_svd(
            mat,
            tol=tol,
            cap=None if caps is None else caps[k],
            method=method,
            rng=rng,
            floor=floor,
        )
        new_rank = int(res.s.shape[0])
        cores.append(xp.reshape(res.U, (rank, shape[k], new_rank)))
        rest = xp.astype(res.s[:, None], res.Vh.dtype) * res.Vh
        rank = new_rank
    cores.append(xp.reshape(rest, (rank, shape[-1], 1)))


def _tt_svd_chunked(
    x: Any,
    *,
    rtol: float | None,
    max_rank: int | Sequence[int] | None,
    method: SVDMethod,
    rng: np.random.Generator | int | None,
) -> TTTensor:
    """TT-SVD of a dask array without loading it (:mod:`tensornet._chunked`).

    Each bond is one pass over the data (a Gram matrix, plus a TSQR pass where the Gram
    matrix cannot resolve the tail); the projections stay lazy until the remaining part
    fits in memory, where the sweep continues in memory. Cores come back as NumPy arrays
    of ``x``'s dtype.
    """
    x = _chunked.check_chunked(x, "x")
    rtol = check_rtol(rtol)
    shape = tuple(int(n) for n in x.shape)
    d = len(shape)
    caps = check_tt_caps(max_rank, d)
    method = check_choice(method, "method", _METHODS)  # type: ignore[assignment]
    gen = check_rng(rng)
    dtype = np.dtype(x.dtype)
    eps = float(np.finfo(dtype).eps)
    if d == 1:
        (vector,) = _chunked.compute(x)
        _chunked.check_finite(vector, "x")
        return TTTensor([vector.reshape(1, shape[0], 1)])
    rest = x[None]  # (rank, n_k, ..., n_{d-1}) with rank 1
    rank = 1
    cores: list[Array] = []
    tol: float | None = None
    total = 0.0
    for k in range(d - 1):
        if k > 0 and _chunked.small_enough(rest):
            (arr,) = _chunked.compute(rest)
            _chunked.check_finite(arr, "x")
            _sweep(
                arr,
                shape,
                k,
                rank,
                cores,
                tol=tol,
                caps=caps,
                method=method,
                rng=gen,
                total=total,
                eps=eps,
            )
            break
        (g,) = _chunked.compute(_chunked.gram(rest, (0, 1)))
        _chunked.check_finite(g, "x")
        if k == 0:
            total = math.sqrt(max(float(np.real(np.trace(g))), 0.0))
            if total == 0.0:
                return _zero_tt(np.zeros(1, dtype=dtype), shape)
            tol = None if rtol is None else rtol * total / math.sqrt(d - 1)
        rows, cols = rank * shape[k], math.prod(shape[k + 1 :])
        floor = _ROUNDOFF_GROWTH * eps * max(rows, cols) * total
        u, _, _ = _chunked.truncate(
            rest,
            (0, 1),
            g,
            tol=tol,
            cap=None if caps is None else caps[k],
            eps=eps,
            floor=floor,
        )
        new_rank = int(u.shape[1])
        cores.append(u.reshape(rank, shape[k], new_rank))
        rest = _chunked.project(rest, u, 2)
        rank = new_rank
    else:
        (last,) = _chunked.compute(rest)
        cores.append(last.reshape(rank, shape[-1], 1))
    return TTTensor([np.asarray(c).astype(dtype, copy=False) for c in cores])
