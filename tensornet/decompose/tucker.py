"""Tucker decompositions: HOSVD, sequentially truncated HOSVD and HOOI.

All three return a :class:`~tensornet.formats.tucker.TuckerTensor` with orthonormal
factors ``U_k`` (``n_k x r_k``) on the factored ``modes`` and the core
``x x_k U_k^H``, so ``||x - result||^2 == ||x||^2 - ||core||^2``.

``ranks`` (the same rule for the three functions):

- one int: the rank of every factored mode;
- a sequence with one int per factored mode, read in the order of ``modes``
  (``modes=None`` means ``(0, ..., d - 1)``);
- when ``modes`` leaves some modes unfactored, the full core shape (as
  :attr:`TuckerTensor.ranks`, length ``d``) is accepted too; its entries for unfactored
  modes must equal the mode sizes.

A rank is never above the numerical rank of the unfolding it comes from (so it is
at most ``n_k``). With both ``ranks`` and ``rtol``, the smaller rank wins per mode.

Error bound of ``rtol``: with ``m = len(modes)`` truncations, each drops a tail of
at most ``delta = rtol * ||x|| / sqrt(m)``; the HOSVD error satisfies
``||x - result||^2 <= sum_k tail_k^2 <= m * delta^2 = rtol^2 ||x||^2`` (De Lathauwer
et al. 2000), and ST-HOSVD's error is exactly ``sum_k tail_k^2`` over its own (smaller)
tails (Vannieuwenhoven et al. 2012). So ``||x - result|| <= rtol * ||x||`` whenever no
``ranks`` cap binds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np

from tensornet import _backend as B
from tensornet import _chunked
from tensornet._backend import Array
from tensornet._chunked import is_chunked
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
from tensornet.decompose.tt_svd import _ROUNDOFF_GROWTH
from tensornet.formats.tucker import (
    TuckerTensor,
    check_modes,
    check_tucker_ranks,
    fold,
    multi_mode_product,
    unfold,
)
from tensornet.linalg import SVDMethod, TruncatedSVD, _truncated_svd, qr

__all__ = ["hooi", "hosvd", "st_hosvd"]

_METHODS = ("auto", "exact", "randomized")
_INITS = ("hosvd", "st_hosvd", "random")
_RESOLUTION = 100.0
"""HOOI: relative changes of the core norm below ``_RESOLUTION * eps(dtype)`` are round-off."""

TuckerRanks = int | Sequence[int]


def _zero_tucker(
    x: Array, modes: Sequence[int], shape: tuple[int, ...] | None = None
) -> TuckerTensor:
    """Tucker form of a zero tensor: rank 1 on the factored modes, factors ``e_0``.

    ``x`` gives the namespace, dtype and device, and the shape unless ``shape`` is given.
    """
    xp = B.namespace(x)
    shape = tuple(int(n) for n in x.shape) if shape is None else shape
    core_shape = tuple(1 if k in modes else n for k, n in enumerate(shape))
    factors = [
        xp.eye(n, 1, dtype=x.dtype, device=B.device(x)) if k in modes else None
        for k, n in enumerate(shape)
    ]
    return TuckerTensor(xp.zeros(core_shape, dtype=x.dtype, device=B.device(x)), factors)


def _floor(x: Array, mat: Array, total: float) -> float:
    """Round-off level of an unfolding of ``x`` (or of a projection of it): as in tt_svd."""
    return _ROUNDOFF_GROWTH * B.eps(x) * max(int(mat.shape[0]), int(mat.shape[1])) * total


def _svd_of_unfolding(
    y: Array,
    mode: int,
    *,
    tol: float | None,
    cap: int | None,
    method: str,
    rng: np.random.Generator,
    total: float,
) -> TruncatedSVD:
    mat = unfold(y, mode)
    return _truncated_svd(
        mat, tol=tol, cap=cap, method=method, rng=rng, floor=_floor(y, mat, total)
    )


def _projected(res: TruncatedSVD, y: Array, mode: int) -> Array:
    """``y x_mode U^H`` from the SVD of ``y``'s mode-``mode`` unfolding: ``diag(s) Vh`` folded."""
    xp = B.namespace(y)
    shape = [int(n) for n in y.shape]
    shape[mode] = int(res.s.shape[0])
    return fold(xp.astype(res.s[:, None], res.Vh.dtype) * res.Vh, mode, shape)


def _parse(
    x: object, ranks: object, rtol: object, modes: object, method: object, rng: object
) -> tuple[
    Array, tuple[int, ...], dict[int, int] | None, float | None, SVDMethod, np.random.Generator
]:
    arr = check_array(x, "x")
    shape = tuple(int(n) for n in arr.shape)
    checked_modes = check_modes(modes, len(shape))
    caps = None if ranks is None else check_tucker_ranks(ranks, checked_modes, shape)
    return (
        arr,
        checked_modes,
        caps,
        check_rtol(rtol),
        cast(SVDMethod, check_choice(method, "method", _METHODS)),
        check_rng(rng),
    )


def hosvd(
    x: Array,
    *,
    ranks: TuckerRanks | None = None,
    rtol: float | None = None,
    modes: int | Sequence[int] | None = None,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TuckerTensor:
    """Truncated higher-order SVD (De Lathauwer, De Moor & Vandewalle 2000).

    Factor ``U_k`` holds the leading left singular vectors of the mode-``k`` unfolding
    of ``x``, truncated by the rule of the module docstring (tail at most
    ``rtol * ||x|| / sqrt(len(modes))`` per mode, capped by ``ranks``); the core is
    ``x x_k U_k^H``. Every unfolding is of ``x`` itself, so the factors do not depend on
    each other (:func:`st_hosvd` is cheaper; :func:`hooi` is more accurate at fixed ranks).

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch; real or complex; integers are promoted to float).
        The result has ``x``'s array type, dtype and device.
    ranks : int or sequence of int, optional
        Rank per factored mode (see the module docstring). None: decided by ``rtol``
        (or the numerical ranks when ``rtol`` is None too).
    rtol : float, optional
        Target relative Frobenius error of the whole approximation.
    modes : int or sequence of int, optional
        The modes to factor; None factors every mode. ``modes=(0, 1)`` on a conv kernel
        ``(T, S, kh, kw)`` is Tucker-2 on the channels.
    method : {"auto", "exact", "randomized"}
        SVD path of each unfolding (see :func:`tensornet.linalg.truncated_svd`).
    rng : numpy.random.Generator, int or None
        Randomness of the randomized SVD path.

    Returns
    -------
    TuckerTensor
        Orthonormal factors on ``modes``; ``None`` elsewhere.

    Raises
    ------
    TypeError
        If ``x`` is not numeric or an option has the wrong type.
    ValueError
        If ``x`` is 0-d, empty or not finite, a mode is out of range or repeated, or
        ``ranks`` / ``rtol`` / ``method`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tucker import hosvd
    >>> rng = np.random.default_rng(0)
    >>> x = np.einsum("abc,ia,jb,kc->ijk", rng.standard_normal((2, 3, 2)),
    ...               *(rng.standard_normal((n, r)) for n, r in ((6, 2), (7, 3), (8, 2))))
    >>> t = hosvd(x, rtol=1e-10)
    >>> t.ranks, bool(np.linalg.norm(t.to_dense() - x) <= 1e-10 * np.linalg.norm(x))
    ((2, 3, 2), True)
    >>> hosvd(np.ones((4, 5, 3, 3)), modes=(0, 1)).ranks  # Tucker-2
    (1, 1, 3, 3)
    """
    if is_chunked(x):
        return _tucker_chunked(x, ranks, rtol, modes, method, rng, sequential=False)
    x, modes_, caps, rtol, method, gen = _parse(x, ranks, rtol, modes, method, rng)
    total = float(B.norm(x))
    if total == 0.0:
        return _zero_tucker(x, modes_)
    tol = None if rtol is None else rtol * total / math.sqrt(len(modes_))
    factors: list[Array | None] = [None] * x.ndim
    for k in modes_:
        res = _svd_of_unfolding(
            x,
            k,
            tol=tol,
            cap=None if caps is None else caps[k],
            method=method,
            rng=gen,
            total=total,
        )
        factors[k] = res.U
    return TuckerTensor(multi_mode_product(x, factors, adjoint=True), factors)


def st_hosvd(
    x: Array,
    *,
    ranks: TuckerRanks | None = None,
    rtol: float | None = None,
    modes: int | Sequence[int] | None = None,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TuckerTensor:
    """Sequentially truncated HOSVD (Vannieuwenhoven, Vandebril & Meerbergen 2012).

    Modes are processed in the order of ``modes``: the SVD of the current tensor's
    mode-``k`` unfolding gives ``U_k`` (same truncation rule and bound as
    :func:`hosvd`), and the tensor is replaced at once by its projection
    ``diag(s) Vh`` (mode ``k`` shrinks to ``r_k``), so later SVDs work on smaller
    tensors. Cheaper than :func:`hosvd`, same ``rtol`` bound, usually a smaller error.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch; real or complex).
    ranks : int or sequence of int, optional
        Rank per factored mode (see the module docstring).
    rtol : float, optional
        Target relative Frobenius error of the whole approximation.
    modes : int or sequence of int, optional
        The modes to factor, in processing order; None: ``(0, ..., d - 1)``. Putting
        the mode that shrinks most first is cheapest.
    method : {"auto", "exact", "randomized"}
        SVD path of each unfolding.
    rng : numpy.random.Generator, int or None
        Randomness of the randomized SVD path.

    Returns
    -------
    TuckerTensor
        Orthonormal factors on ``modes``; ``None`` elsewhere.

    Raises
    ------
    TypeError, ValueError
        As :func:`hosvd`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tucker import st_hosvd
    >>> x = np.random.default_rng(0).standard_normal((8, 6, 3, 3))
    >>> t = st_hosvd(x, rtol=0.3, modes=(0, 1))
    >>> t.modes, bool(np.linalg.norm(t.to_dense() - x) <= 0.3 * np.linalg.norm(x))
    ((0, 1), True)
    """
    if is_chunked(x):
        return _tucker_chunked(x, ranks, rtol, modes, method, rng, sequential=True)
    x, modes_, caps, rtol, method, gen = _parse(x, ranks, rtol, modes, method, rng)
    total = float(B.norm(x))
    if total == 0.0:
        return _zero_tucker(x, modes_)
    tol = None if rtol is None else rtol * total / math.sqrt(len(modes_))
    factors: list[Array | None] = [None] * x.ndim
    y = x
    for k in modes_:
        res = _svd_of_unfolding(
            y,
            k,
            tol=tol,
            cap=None if caps is None else caps[k],
            method=method,
            rng=gen,
            total=total,
        )
        factors[k] = res.U
        y = _projected(res, y, k)
    return TuckerTensor(y, factors)


def _tucker_chunked(
    x: Any,
    ranks: object,
    rtol: object,
    modes: object,
    method: object,
    rng: object,
    *,
    sequential: bool,
) -> TuckerTensor:
    """HOSVD / ST-HOSVD of a dask array without loading it (:mod:`tensornet._chunked`).

    HOSVD: the Gram matrices of all factored modes in one pass, the core in a second.
    ST-HOSVD: one pass per mode over the projected tensor, continued in memory once it
    fits one dask chunk. Factors and core come back as NumPy arrays of ``x``'s dtype.
    """
    x = _chunked.check_chunked(x, "x", whole_mode=None)
    shape = tuple(int(n) for n in x.shape)
    modes_ = check_modes(modes, len(shape))
    caps = None if ranks is None else check_tucker_ranks(ranks, modes_, shape)
    tol_rel = check_rtol(rtol)
    check_choice(method, "method", _METHODS)  # the chunked path has its own SVDs
    gen = check_rng(rng)
    dtype = np.dtype(x.dtype)
    eps = float(np.finfo(dtype).eps)
    size = math.prod(shape)

    def floor(rows: int, total: float) -> float:
        return _ROUNDOFF_GROWTH * eps * max(rows, size // rows) * total

    factors: list[Array | None] = [None] * len(shape)
    if not sequential:
        grams = _chunked.compute(*(_chunked.gram(x, (k,)) for k in modes_))
        for g in grams:
            _chunked.check_finite(g, "x")
        total = math.sqrt(max(float(np.real(np.trace(grams[0]))), 0.0))
        if total == 0.0:
            return _zero_tucker(np.zeros((1,) * len(shape), dtype=dtype), modes_, shape)
        tol = None if tol_rel is None else tol_rel * total / math.sqrt(len(modes_))
        for k, g in zip(modes_, grams, strict=True):
            cap = None if caps is None else caps[k]
            u, _, _ = _chunked.truncate(
                x, (k,), g, tol=tol, cap=cap, eps=eps, floor=floor(shape[k], total)
            )
            factors[k] = u
        core = x
        for k in modes_:
            core = _chunked.mode_project(core, cast(np.ndarray, factors[k]), k)
        (dense_core,) = _chunked.compute(core)
    else:
        y: Any = x
        total, tol = 0.0, None
        for i, k in enumerate(modes_):
            cap = None if caps is None else caps[k]
            if i > 0 and _chunked.is_chunked(y) and _chunked.small_enough(y):
                (y,) = _chunked.compute(y)
                _chunked.check_finite(y, "x")
            if not _chunked.is_chunked(y):  # in memory from here on
                res = _svd_of_unfolding(y, k, tol=tol, cap=cap, method="auto", rng=gen, total=total)
                factors[k] = res.U
                y = _projected(res, y, k)
                continue
            (g,) = _chunked.compute(_chunked.gram(y, (k,)))
            _chunked.check_finite(g, "x")
            if i == 0:
                total = math.sqrt(max(float(np.real(np.trace(g))), 0.0))
                if total == 0.0:
                    return _zero_tucker(np.zeros((1,) * len(shape), dtype=dtype), modes_, shape)
                tol = None if tol_rel is None else tol_rel * total / math.sqrt(len(modes_))
            u, _, _ = _chunked.truncate(
                y, (k,), g, tol=tol, cap=cap, eps=eps, floor=floor(int(y.shape[k]), total)
            )
            factors[k] = u
            y = _chunked.mode_project(y, u, k)
        (dense_core,) = _chunked.compute(y) if _chunked.is_chunked(y) else (np.asarray(y),)
    return TuckerTensor(
        dense_core.astype(dtype, copy=False),
        [None if f is None else np.asarray(f).astype(dtype, copy=False) for f in factors],
    )


def _check_tol(tol: object) -> float:
    value = check_rtol(tol, "tol")
    if value is None:
        raise TypeError("tol must be a real number >= 0, got None")
    return value


def _initial_factors(
    x: Array,
    init: object,
    modes: Sequence[int],
    caps: dict[int, int],
    method: SVDMethod,
    gen: np.random.Generator,
) -> tuple[dict[int, Array], TuckerTensor | None]:
    """Orthonormal starting factors of HOOI, and the start itself when its core is a projection."""
    if isinstance(init, TuckerTensor):
        shape = tuple(int(n) for n in x.shape)
        if init.shape != shape:
            raise ValueError(f"init must have the shape of x {shape}, got {init.shape}")
        if init.modes != tuple(sorted(modes)):
            raise ValueError(
                f"init must factor the modes {tuple(sorted(modes))}, got a TuckerTensor "
                f"factoring {init.modes}"
            )
        wanted = tuple(caps[k] for k in init.modes)
        got = tuple(init.ranks[k] for k in init.modes)
        if got != wanted:
            raise ValueError(
                f"init must have ranks {wanted} on modes {init.modes} (from ranks), got {got}"
            )
        xp = check_same_namespace([x, init.core], "x and init", same_dtype=False)
        factors = {}
        for k in modes:
            f = init.factors[k]
            assert f is not None  # init.modes == modes
            factors[k], _ = qr(xp.astype(f, x.dtype))
        return factors, None
    if isinstance(init, str):
        choice = check_choice(init, "init", _INITS)
        if choice == "random":
            factors = {}
            for k in modes:
                n = int(x.shape[k])
                factors[k], _ = qr(B.standard_normal(x, (n, min(caps[k], n)), gen))
            return factors, None
        start = (hosvd if choice == "hosvd" else st_hosvd)(
            x,
            ranks=[caps[k] for k in modes],
            modes=modes,
            method=method,
            rng=gen,
        )
        return {k: f for k, f in enumerate(start.factors) if f is not None}, start
    allowed = ", ".join(repr(c) for c in _INITS)
    raise TypeError(f"init must be one of {allowed} or a TuckerTensor, got {_describe(init)}")


def hooi(
    x: Array,
    ranks: TuckerRanks,
    *,
    modes: int | Sequence[int] | None = None,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    init: Literal["hosvd", "st_hosvd", "random"] | TuckerTensor = "hosvd",
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TuckerTensor:
    """Higher-order orthogonal iteration (De Lathauwer, De Moor & Vandewalle 2000).

    Alternating maximization of ``||x x_k U_k^H||``: for each factored mode ``k`` in
    turn, ``U_k`` becomes the ``r_k`` leading left singular vectors of the mode-``k``
    unfolding of ``x x_{j != k} U_j^H``. Each update can only increase the core norm,
    i.e. decrease the error ``sqrt(||x||^2 - ||core||^2)``, so the result is never worse
    than its start (with a ``"hosvd"`` / ``"st_hosvd"`` start this is also checked
    numerically: if round-off or a randomized SVD made the last sweep worse, the better
    iterate is returned). A sweep is one update of every factored mode.

    Convergence: the sweeps stop when the relative change of the core norm is at most
    ``max(tol, 100 * eps)`` (``eps`` of ``x``'s dtype: smaller changes are round-off,
    so float32 runs converge too). Otherwise a :class:`~tensornet.ConvergenceWarning`
    is issued after ``n_iter_max`` sweeps, and the best iterate is returned;
    ``warnings.simplefilter("error", tensornet.ConvergenceWarning)`` turns it into an
    exception. The return type is always a TuckerTensor.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch; real or complex).
    ranks : int or sequence of int
        Rank per factored mode (see the module docstring); clipped to the numerical
        rank of the unfoldings.
    modes : int or sequence of int, optional
        The modes to factor; None factors every mode.
    n_iter_max : int
        Maximum number of sweeps (>= 1).
    tol : float
        Tolerance on the relative change of the core norm between sweeps.
    init : {"hosvd", "st_hosvd", "random"} or TuckerTensor
        Starting factors: from :func:`hosvd` / :func:`st_hosvd`, random orthonormal
        (``rng``), or the (orthonormalized) factors of a TuckerTensor of ``x``'s shape
        that factors the same modes with these ranks.
    method : {"auto", "exact", "randomized"}
        SVD path. ``"auto"``: the ``"hosvd"`` / ``"st_hosvd"`` start chooses per
        unfolding (see :func:`hosvd`), and the updates use LAPACK's exact SVD: their
        matrices are small (``n_k x prod_{j != k} r_j``), and a sketch's error would
        stall HOOI short of its fixed point on flat spectra (on a Gaussian
        ``(256, 256, 3, 3)`` tensor at ranks ``(32, 32)``, sketched updates end at
        relative error 0.9555, exact ones at 0.9543). ``"exact"`` / ``"randomized"``:
        that path everywhere.
    rng : numpy.random.Generator, int or None
        Randomness of the random start and of the randomized SVD path.

    Returns
    -------
    TuckerTensor
        Orthonormal factors on ``modes``; core ``x x_k U_k^H``.

    Raises
    ------
    TypeError
        If ``x`` is not numeric or an option has the wrong type.
    ValueError
        If an option is out of range, or ``init`` does not match ``x``, ``modes`` or
        ``ranks``.

    Warns
    -----
    ConvergenceWarning
        If the core norm still changes by more than ``tol`` after ``n_iter_max`` sweeps.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tucker import hooi, hosvd
    >>> x = np.random.default_rng(0).standard_normal((6, 7, 8))
    >>> err = lambda t: np.linalg.norm(t.to_dense() - x)
    >>> t = hooi(x, 3)
    >>> t.ranks, bool(err(t) <= err(hosvd(x, ranks=3)))
    ((3, 3, 3), True)
    """
    arr = check_array(x, "x")
    shape = tuple(int(n) for n in arr.shape)
    modes_ = check_modes(modes, len(shape))
    caps = check_tucker_ranks(ranks, modes_, shape)
    n_iter_max = check_int(n_iter_max, "n_iter_max", minimum=1)
    tol = _check_tol(tol)
    method = check_choice(method, "method", _METHODS)  # type: ignore[assignment]
    gen = check_rng(rng)
    factors, start = _initial_factors(arr, init, modes_, caps, method, gen)
    total = float(B.norm(arr))
    if total == 0.0:
        return _zero_tucker(arr, modes_)
    threshold = max(tol, _RESOLUTION * B.eps(arr))
    update_method = "randomized" if method == "randomized" else "exact"
    best = start
    best_norm = -1.0 if start is None else float(B.norm(start.core))
    previous = None if start is None else best_norm
    change = math.inf
    for _ in range(n_iter_max):
        for k in modes_:
            others = [factors[j] if j in factors and j != k else None for j in range(len(shape))]
            y = multi_mode_product(arr, others, adjoint=True)
            res = _svd_of_unfolding(
                y, k, tol=None, cap=caps[k], method=update_method, rng=gen, total=total
            )
            factors[k] = res.U
        core = _projected(res, y, modes_[-1])
        norm = float(B.norm(res.s))
        current = TuckerTensor(core, [factors.get(j) for j in range(len(shape))])
        if norm >= best_norm:
            best, best_norm = current, norm
        if previous is not None:
            change = abs(norm - previous) / max(norm, previous)
            if change <= threshold:
                break
        previous = norm
    else:
        warnings.warn(
            f"hooi did not converge in {n_iter_max} sweep{'s' if n_iter_max != 1 else ''}: "
            "the core norm changed by "
            f"{change:.3e} (relative) in the last sweep, more than tol={tol:.3e}; "
            "increase n_iter_max or tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    assert best is not None
    return best
