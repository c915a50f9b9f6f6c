"""Truncated SVD, QR and the randomized range finder.

The truncation rule (ALGORITHMS.md §1): keep the smallest rank ``r >= 1`` whose
dropped tail satisfies ``sqrt(sum_{i >= r} s_i**2) <= tol``, never more than the
numerical rank of the matrix, then cap it by ``max_rank``. Full SVD matrices are
never requested from LAPACK.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_array, check_choice, check_int, check_rng, check_rtol

__all__ = ["SVDMethod", "TruncatedSVD", "qr", "randomized_range_finder", "truncated_svd"]

SVDMethod = Literal["auto", "exact", "randomized"]
_METHODS = ("auto", "exact", "randomized")

N_OVERSAMPLES = 10
"""Extra columns the randomized sketch takes beyond the target rank."""
N_POWER_ITER = 2
"""Power (subspace) iterations of the randomized range finder."""
_AUTO_MIN_RATIO = 4
"""method="auto" sketches when ``min(m, n) >= _AUTO_MIN_RATIO * (max_rank + N_OVERSAMPLES)``."""


class TruncatedSVD(NamedTuple):
    """Result of :func:`truncated_svd`.

    Attributes
    ----------
    U : array, shape (m, r)
        Orthonormal left singular vectors.
    s : array, shape (r,)
        Singular values, descending, real.
    Vh : array, shape (r, n)
        Orthonormal right singular vectors (conjugate-transposed).
    error : float
        Frobenius norm of ``a - U @ diag(s) @ Vh`` (the dropped tail).
    """

    U: Array
    s: Array
    Vh: Array
    error: float


def qr(a: Array) -> tuple[Array, Array]:
    """Reduced QR decomposition ``a = Q @ R`` of an (m, n) matrix.

    Returns ``Q`` of shape (m, k) and ``R`` of shape (k, n), ``k = min(m, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(3, 2)
    >>> q, r = qr(a)
    >>> bool(np.allclose(q @ r, a))
    True
    """
    xp = B.namespace(a)
    q, r = xp.linalg.qr(a, mode="reduced")
    return q, r


def _svd(a: Array) -> tuple[Array, Array, Array]:
    """Thin SVD through the array library (LAPACK gesdd, gesvd as fallback).

    A wide NumPy matrix is factored through its (copy-free) transpose: ``a.T = U' S V'^H``
    gives ``a = V'^T S U'^T``. NumPy's LAPACK is 1.2 to 3 times faster on the tall
    orientation of a matrix (benchmarks/bench_tt.py, docs/benchmarks.md).
    """
    if type(a) is np.ndarray and a.shape[0] < a.shape[1]:
        ut, s, vht = _svd(a.T)
        # C order, as from the direct call: the TT sweep carries and reshapes Vh.
        return np.ascontiguousarray(vht.T), s, np.ascontiguousarray(ut.T)
    xp = B.namespace(a)
    try:
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
    except np.linalg.LinAlgError:  # gesdd did not converge: use the slower, robust driver
        import scipy.linalg

        u, s, vh = scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesvd")
    return u, s, vh


def _mh(a: Array) -> Array:
    """Conjugate transpose of a matrix."""
    xp = B.namespace(a)
    return B.conj(xp.matrix_transpose(a))


def randomized_range_finder(
    a: Array,
    size: int,
    *,
    n_power_iter: int = N_POWER_ITER,
    rng: np.random.Generator | int | None = None,
) -> Array:
    """Orthonormal basis ``Q`` (m, size) that approximately spans the range of ``a``.

    Halko, Martinsson & Tropp (2011), Algorithm 4.4: a Gaussian sketch followed
    by ``n_power_iter`` subspace iterations, re-orthonormalized by QR at every step.

    Parameters
    ----------
    a : array, shape (m, n)
        The matrix.
    size : int
        Number of basis vectors (target rank plus oversampling), ``<= min(m, n)``.
    n_power_iter : int
        Number of power iterations (more sharpens a slowly decaying spectrum).
    rng : numpy.random.Generator, int or None
        Source of the Gaussian test matrix.

    Returns
    -------
    array, shape (m, size)
        Matrix with orthonormal columns.
    """
    size = check_int(size, "size", minimum=1)
    n_power_iter = check_int(n_power_iter, "n_power_iter", minimum=0)
    gen = check_rng(rng)
    omega = B.standard_normal(a, (a.shape[1], size), gen)
    ah = _mh(a)
    if a.shape[0] <= a.shape[1]:
        # Wide: re-orthonormalize only the short (m, size) side; the (n, size) products stay
        # unnormalized (each step squares the spectrum once, well within double range).
        q, _ = qr(a @ omega)
        for _ in range(n_power_iter):
            q, _ = qr(a @ (ah @ q))
        return q
    y = a @ omega  # tall: orthonormalize the short (n, size) side, one tall QR at the end
    for _ in range(n_power_iter):
        z, _ = qr(ah @ y)
        y = a @ z
    q, _ = qr(y)
    return q


def _numerical_rank(s: Array, shape: tuple[int, int], eps: float, floor: float = 0.0) -> int:
    """Number of singular values above ``max(s[0] * max(m, n) * eps, floor)``.

    The first term is NumPy's ``matrix_rank`` rule; ``floor`` is an absolute level
    of round-off that a caller knows from context (e.g. ``||x||`` in a TT-SVD sweep,
    where the matrix carries the rounding errors of earlier steps).
    """
    s_host = np.asarray(B.to_numpy(s), dtype=np.float64)
    if s_host.size == 0 or s_host[0] == 0:
        return 0
    return int(np.count_nonzero(s_host > max(s_host[0] * max(shape) * eps, floor)))


def _rank_for_tail(tail_sq: np.ndarray, tol: float) -> int:
    """Smallest r with ``tail_sq[r] <= tol**2`` (``tail_sq[r]`` = error squared of rank r)."""
    ok = np.flatnonzero(tail_sq <= tol * tol)
    return int(ok[0]) if ok.size else tail_sq.size - 1


def _choose_rank(
    s: Array,
    outside_sq: float,
    shape: tuple[int, int],
    eps: float,
    tol: float | None,
    cap: int | None,
    floor: float = 0.0,
) -> tuple[int, float]:
    """Apply the truncation rule to singular values ``s``.

    ``outside_sq`` is the squared Frobenius norm of the part of the matrix that ``s``
    does not describe (0 for an exact SVD; ``||a||^2 - sum(s^2)`` for a sketch).
    Returns the rank and the Frobenius error of the truncation.
    """
    s_host = np.asarray(B.to_numpy(s), dtype=np.float64)
    # tail_sq[r] = squared error of keeping r values: reversed cumulative sum, exact for small tails
    tail_sq = np.concatenate((np.cumsum((s_host**2)[::-1])[::-1], [0.0])) + outside_sq
    rank = _numerical_rank(s, shape, eps, floor)
    if tol is not None:
        rank = min(rank, _rank_for_tail(tail_sq, tol))
    if cap is not None:
        rank = min(rank, cap)
    rank = max(rank, 1)
    return rank, math.sqrt(float(tail_sq[rank]))


def _sketch_size(cap: int | None, shape: tuple[int, int]) -> int | None:
    """Size of the randomized sketch worth using for ``cap``, or None when exact is cheaper."""
    if cap is None:
        return None
    size = cap + N_OVERSAMPLES
    # The sketch costs ~ (2 n_power_iter + 2) matmul passes of m * n * size plus QRs of the
    # (max(m, n), size) blocks, against ~ m * n * min(m, n) for the dense SVD. Measured with
    # two power iterations on 2 cores (benchmarks/bench_tt.py, docs/benchmarks.md): at
    # min(m, n) = 4 * size the sketch is 2-4x faster on (80, 1728) matrices and 0.9-1.3x on
    # (80, 20736) ones (the QRs of its long blocks are memory-bound); 6 * size left that unused.
    if _AUTO_MIN_RATIO * size <= min(shape):
        return size
    return None


def _truncated_svd(
    a: Array,
    *,
    tol: float | None,
    cap: int | None,
    method: str = "auto",
    rng: np.random.Generator | None = None,
    floor: float = 0.0,
) -> TruncatedSVD:
    """Truncated SVD of an already validated matrix with an absolute tail tolerance ``tol``.

    Singular values at or below the absolute round-off level ``floor`` count as zero.
    """
    xp = B.namespace(a)
    shape = (int(a.shape[0]), int(a.shape[1]))
    eps = B.eps(a)
    total_sq = float(B.norm(a)) ** 2
    if total_sq == 0.0:
        m, n = shape
        return TruncatedSVD(
            xp.zeros((m, 1), dtype=a.dtype, device=B.device(a)),
            xp.zeros((1,), dtype=xp.abs(a[:1, 0]).dtype, device=B.device(a)),
            xp.zeros((1, n), dtype=a.dtype, device=B.device(a)),
            0.0,
        )
    size = None
    if method == "randomized":
        size = cap + N_OVERSAMPLES if cap is not None else min(32, min(shape))
    elif method == "auto":
        size = _sketch_size(cap, shape)
    # "auto" with only a tail target: a very wide or tall matrix goes through its small Gram
    # matrix where that resolves the target (2.77 s -> 0.58 s on a 32 x 1,048,576 unfolding,
    # docs/benchmarks.md, issue 8); the exact SVD otherwise
    approximate = method == "randomized" or (
        method == "auto"
        and (cap is not None or (tol is not None and _gram_pays(None, shape, None)))
    )
    if approximate and not _resolvable(tol, total_sq, shape, eps):
        size = None  # the sketch cannot certify so small a tail: exact SVD
    elif approximate and _gram_pays(cap, shape, size):
        result = _gram_svd(a, total_sq, shape, eps, tol, cap, floor)
        if result is not None:
            return result
    while size is not None and size < min(shape):
        if rng is None:  # only the randomized path needs one (default_rng costs ~8 us a call)
            rng = np.random.default_rng(0)
        q = randomized_range_finder(a, size, rng=rng)
        ub, s, vh = _svd(_mh(q) @ a)
        outside_sq = max(total_sq - float(np.sum(np.asarray(B.to_numpy(s), np.float64) ** 2)), 0.0)
        rank, error = _choose_rank(s, outside_sq, shape, eps, tol, cap, floor)
        if (tol is None or error <= tol or rank == cap) and rank < size:
            return TruncatedSVD(q @ ub[:, :rank], s[:rank], vh[:rank, :], error)
        size *= 2  # the sketch missed too much energy: widen it (then go exact)
    u, s, vh = _svd(a)
    rank, error = _choose_rank(s, 0.0, shape, eps, tol, cap, floor)
    return TruncatedSVD(u[:, :rank], s[:rank], vh[:rank, :], error)


def _resolvable(tol: float | None, total_sq: float, shape: tuple[int, int], eps: float) -> bool:
    """Whether an error measured as ``||a||^2 - sum(kept s^2)`` can certify a tail ``tol``.

    That difference carries round-off of about ``min(m, n) * eps * ||a||^2``; a target
    below ten times that resolution goes to the exact SVD, whose tails come from ``s``.
    """
    return tol is None or tol * tol > 10 * min(shape) * eps * total_sq


_GRAM_MIN_ASPECT = 8
"""The Gram path needs ``max(m, n) >= _GRAM_MIN_ASPECT * min(m, n)`` (very wide or tall)."""
_GRAM_MAX_SIZE = 4096
"""... and ``min(m, n) <= _GRAM_MAX_SIZE`` (its eigenproblem is ``min(m, n)`` square)."""


def _gram_pays(cap: int | None, shape: tuple[int, int], size: int | None) -> bool:
    """Whether the Gram path is the cheap approximate route for this matrix.

    For a very wide or tall matrix whose short side is not larger than the sketch, the
    sketch cannot help (it would span everything) but the Gram matrix ``a a^H`` of the
    short side costs ``m^2 n`` BLAS-3 flops against LAPACK's far slower bidiagonalization.
    """
    short, long = min(shape), max(shape)
    sketch = size if size is not None else (cap or short) + N_OVERSAMPLES
    return long >= _GRAM_MIN_ASPECT * short and short <= min(sketch, _GRAM_MAX_SIZE)


def _gram_svd(
    a: Array,
    total_sq: float,
    shape: tuple[int, int],
    eps: float,
    tol: float | None,
    cap: int | None,
    floor: float,
) -> TruncatedSVD | None:
    """Truncated SVD from the eigendecomposition of the short-side Gram matrix.

    ``a a^H = U diag(s^2) U^H`` (wide ``a``; ``a^H a`` for tall), then ``diag(s) Vh =
    U_r^H a`` for the kept ``r`` only. The kept part is an orthogonal projection of
    ``a``, so the error is ``sqrt(sum of dropped s^2)`` as for the SVD, resolved to
    about ``sqrt(min(m, n) eps) ||a||``. Eigenvalues below ``sqrt(eps) * s_0^2`` are
    not resolved by a Gram matrix: if the rank needs them, return None (go exact).
    """
    xp = B.namespace(a)
    wide = shape[0] <= shape[1]
    gram = a @ _mh(a) if wide else _mh(a) @ a
    w, vecs = xp.linalg.eigh(gram)
    w_host = np.asarray(B.to_numpy(w), dtype=np.float64)[::-1].clip(min=0.0)
    s_host = np.sqrt(w_host)
    outside_sq = max(total_sq - float(w_host.sum()), 0.0)
    rank, error = _choose_rank(s_host, outside_sq, shape, eps, tol, cap, floor)
    if s_host[rank - 1] <= 1e3 * math.sqrt(eps) * s_host[0]:
        return None
    basis = xp.flip(vecs, axis=1)[:, :rank]
    s = xp.asarray(s_host[:rank], dtype=w.dtype, device=B.device(a))
    if wide:
        vh = (_mh(basis) @ a) / xp.astype(s[:, None], a.dtype)
        return TruncatedSVD(basis, s, vh, error)
    u = (a @ basis) / xp.astype(s[None, :], a.dtype)
    return TruncatedSVD(u, s, _mh(basis), error)


def truncated_svd(
    a: Array,
    *,
    rtol: float | None = None,
    max_rank: int | None = None,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TruncatedSVD:
    """Truncated singular value decomposition of a matrix.

    Keeps the smallest rank ``r`` with ``||a - U diag(s) Vh||_F <= rtol * ||a||_F``
    (never above the numerical rank of ``a``), capped by ``max_rank``. Full SVD
    matrices are never formed.

    Parameters
    ----------
    a : array, shape (m, n)
        Matrix (NumPy array or torch tensor; real or complex).
    rtol : float, optional
        Target relative Frobenius error. None keeps the numerical rank.
    max_rank : int, optional
        Cap on the rank. When both are given, the smaller rank wins.
    method : {"auto", "exact", "randomized"}
        ``"exact"``: LAPACK thin SVD. ``"randomized"``: range finder with power
        iterations, widened until the ``rtol`` target is met (the error is then
        measured exactly from ``||a||_F``, so the bound still holds). ``"auto"``:
        randomized when ``max_rank`` is small against ``min(m, n)``.
    rng : numpy.random.Generator, int or None
        Randomness of the randomized path.

    Returns
    -------
    TruncatedSVD
        ``(U, s, Vh, error)`` with ``error`` the Frobenius norm of the residual.

    Raises
    ------
    ValueError
        If ``a`` is not a finite, non-empty matrix or an option is out of range.
    TypeError
        If ``a`` is not numeric or an option has the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 40))
    >>> res = truncated_svd(a, rtol=1e-8)
    >>> res.U.shape, res.s.shape, res.Vh.shape
    ((50, 3), (3,), (3, 40))
    """
    a = check_array(a, "a", min_ndim=2)
    if a.ndim != 2:
        raise ValueError(f"a must be a matrix (2 dimensions), got shape {tuple(a.shape)}")
    rtol = check_rtol(rtol)
    cap = None if max_rank is None else check_int(max_rank, "max_rank", minimum=1)
    method = check_choice(method, "method", _METHODS)  # type: ignore[assignment]
    tol = None if rtol is None else rtol * float(B.norm(a))
    return _truncated_svd(a, tol=tol, cap=cap, method=method, rng=check_rng(rng))
