"""Fitting the semi-tensor-product formats to dense data by alternating least squares.

Every STP format is multilinear in its stored arrays (``G ↦ G ⊗ I_k`` is linear), so
fixing all arrays but one leaves a linear least-squares problem in that one.

STT and STR (:func:`stt_fit`, :func:`str_fit`) are rings of equivalent cores ``C_j``
(``C_j = G_j`` for a full core, ``G_j ⊗ I_k`` for a reduced one; an STT is the ring with
closing bond 1). With ``Q_j`` the subchain of the other equivalent cores (as in
:func:`tensornet.tr_als`), the mode-``j`` unfolding is ``X_(j)[i, m] = sum_{a, b}
C_j[a, i, b] Q_j[b, m, a]``. For a reduced core, ``C_j[(a, s), i, (b, t)] = G_j[a, i, b]
delta(s, t)`` gives ``X_(j)[i, m] = sum G_j[a, i, b] Q~_j[b, m, a]`` with the partial trace
``Q~_j[b, m, a] = sum_s Q_j[(b, s), m, (a, s)]``: the same least-squares problem as TR-ALS
with ``k**2`` fewer unknowns, solved through its normal equations (pseudo-inverse at the
round-off level, so a degenerate problem gives the minimum-norm solution). Each update
can only lower the residual.

STTucker (:func:`sttucker_fit`) uses the orthonormal form, as HOOI does for Tucker:
``U_n ⊗ I_k`` has orthonormal columns when ``U_n`` has, the best core for orthonormal
factors is the projection ``x x_n (U_n ⊗ I_k)^H``, and the best ``U_n`` given the others
spans the leading left singular vectors of the *k-folded* unfolding
``Y[a, (s, m)] = Y_(n)[a k + s, m]`` of ``y = x x_{j != n} (U_j ⊗ I_k)^H``, because
``||(U ⊗ I_k)^H Y_(n)||^2 = ||U^H [Y_0, ..., Y_{k-1}]||^2``. The error is then
``sqrt(||x||^2 - ||core||^2)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
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
from tensornet.decompose.tr_als import _solve_core, _subchain, _svd_cores, _unfold
from tensornet.decompose.tt_svd import tt_svd
from tensornet.formats.stp_formats import (
    STRTensor,
    STTTensor,
    STTuckerTensor,
    _sttucker_plan,
    check_k,
    kron_identity,
    partial_trace,
    str_core_shapes,
    stt_core_shapes,
)
from tensornet.linalg import _truncated_svd, qr
from tensornet.stp import stp_mode_product

__all__ = ["STPInit", "str_fit", "stt_fit", "sttucker_fit"]

STPInit = Literal["svd", "random"]
_INITS = ("svd", "random")

Callback = Callable[[int, float], object]
"""``callback(sweep, relative_error)``, called after every sweep (sweeps count from 1)."""


# -- shared argument handling ------------------------------------------------------------------
def _check_options(
    n_iter_max: object, tol: object, callback: object
) -> tuple[int, float, Callback | None]:
    n_iter = check_int(n_iter_max, "n_iter_max", minimum=1)
    tol_value = check_rtol(tol, "tol")
    if tol_value is None:
        raise TypeError("tol must be a real number >= 0, got None")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {_describe(callback)}")
    return n_iter, tol_value, callback


def _init_choice(init: object, cls: type, default: str = "svd") -> str | None:
    """``"svd"`` / ``"random"`` (``default`` for None), or None for an instance of ``cls``."""
    if isinstance(init, cls):
        return None
    if init is not None and not isinstance(init, str):
        raise TypeError(f"init must be 'svd', 'random' or an {cls.__name__}, got {_describe(init)}")
    return check_choice(default if init is None else init, "init", _INITS)


def _check_start(x: Array, init: Any, shapes: Sequence[tuple[int, ...]], k: int) -> list[Array]:
    """Cores of a user-given start, checked against ``x``, the stored shapes and ``k``."""
    name = type(init).__name__
    if init.shape != tuple(int(n) for n in x.shape):
        raise ValueError(f"init must have the shape of x {tuple(x.shape)}, got {init.shape}")
    if init.k != k:
        raise ValueError(f"init must have k = {k}, got an {name} with k = {init.k}")
    got = [tuple(int(n) for n in c.shape) for c in init.cores]
    if got != [tuple(s) for s in shapes]:
        raise ValueError(
            f"init must have the requested ranks (stored core shapes {list(shapes)}), got an "
            f"{name} with ranks {init.ranks} (stored core shapes {got})"
        )
    xp = check_same_namespace([x, init.cores[0]], "x and init", same_dtype=False)
    return [xp.astype(c, x.dtype) for c in init.cores]


def _report(
    name: str, n_iter_max: int, error: float, change: float, tol: float, converged: bool
) -> None:
    if not converged:
        warnings.warn(
            f"{name} stopped at n_iter_max={n_iter_max} sweeps with relative error "
            f"{error:.3e} still changing by {change:.3e} (tol={tol:g}); increase n_iter_max "
            "or tol",
            ConvergenceWarning,
            stacklevel=3,
        )


# -- STT / STR: ALS on rings of full and reduced cores ---------------------------------------------
def _random_chain(
    x: Array, shapes: Sequence[tuple[int, int, int]], rng: np.random.Generator, total: float
) -> list[Array]:
    """Gaussian stored cores of variance ``1 / (stored right size)``, dense entries ``~||x||``."""
    scale = total / math.sqrt(math.prod(int(n) for n in x.shape))
    cores = [B.standard_normal(x, tuple(s), rng) * (1.0 / math.sqrt(s[2])) for s in shapes]
    cores[0] = cores[0] * scale
    return cores


def _pad_to(core: Array, shape: tuple[int, int, int]) -> Array:
    """``core`` cut and/or zero-padded to ``shape`` on its two bond axes."""
    xp = B.namespace(core)
    core = core[: shape[0], :, : shape[2]]
    r, _n, s = (int(m) for m in core.shape)
    if (r, s) == (shape[0], shape[2]):
        return core
    out = xp.zeros(shape, dtype=core.dtype, device=B.device(core))
    left = xp.concat([core, out[:r, :, s:]], axis=2)
    return xp.concat([left, out[r:, :, :]], axis=0)


def _stt_svd_start(
    x: Array,
    shapes: Sequence[tuple[int, int, int]],
    k: int,
    rng: np.random.Generator,
    total: float,
) -> list[Array]:
    """STT start: the ordinary decomposition it equals, read back as an STT.

    ``k = 1`` or ``d <= 2``: TT-SVD capped at the ranks (an STT with no reduced core is a
    TT). Otherwise an STT is exactly the TR of ranks ``(k, R_1/k, ..., R_{d-1}/k)``
    (:func:`~tensornet.formats.stp_formats.stt_to_tr`): TR-SVD from mode 0 at those ranks
    (capped, then padded as in :func:`tensornet.tr_als`), its end cores folded back.
    """
    xp = B.namespace(x)
    d = x.ndim
    if k == 1 or d <= 2:
        caps = [s[2] for s in shapes[:-1]]
        cores = list(tt_svd(x, max_rank=caps).cores) if d > 1 else [xp.reshape(x, shapes[0])]
        return [_pad_to(c, s) for c, s in zip(cores, shapes)]
    bonds = (k, *(s[0] for s in shapes[1:-1]), shapes[-1][0] // k)
    ring = _svd_cores(x, bonds, rng, total)
    f, tail = ring[0], ring[-1]  # (k, n_0, R_1/k) and (R_{d-1}/k, n_{d-1}, k)
    n0, nl = int(f.shape[1]), int(tail.shape[1])
    first = xp.reshape(xp.permute_dims(f, (1, 2, 0)), (1, n0, shapes[0][2]))
    last = xp.reshape(xp.permute_dims(tail, (0, 2, 1)), (shapes[-1][0], nl, 1))
    return [first, *ring[1:-1], last]


def _str_svd_start(
    x: Array, shapes: Sequence[tuple[int, int, int]], k: int, rng: np.random.Generator, total: float
) -> list[Array]:
    """STR start: the compact TR (ranks ``R / k``) by TR-SVD, ``G_0`` lifted to ``G~ ⊗ I_k / k``.

    An STR is exactly the TR of ranks ``R / k`` with first core ``partial_trace(G_0)``, and
    ``partial_trace(G~ ⊗ I_k / k) = G~``: the start represents the TR-SVD ring exactly.
    """
    d = x.ndim
    if d == 1:
        return _svd_cores(x, (shapes[0][0],), rng, total)
    bonds = (shapes[0][0] // k, *(s[0] for s in shapes[1:]))
    ring = _svd_cores(x, bonds, rng, total)
    return [kron_identity(ring[0], k) / k, *ring[1:]]


def _chain_als(
    x: Array,
    cores: list[Array],
    reduced: Sequence[bool],
    k: int,
    *,
    n_iter_max: int,
    tol: float,
    callback: Callback | None,
    name: str,
) -> list[Array]:
    """Sweeps of core-by-core least squares over a ring of full and reduced cores."""
    d = x.ndim
    total = float(B.norm(x))
    equivalent = [kron_identity(c, k) if r else c for c, r in zip(cores, reduced)]
    previous = math.inf
    change = math.inf
    error = math.inf
    converged = False
    for sweep in range(1, n_iter_max + 1):
        for j in range(d):
            xj = _unfold(x, j)
            q = _subchain(equivalent, j)  # (R_{j+1}, J, R_j)
            if reduced[j]:
                q = partial_trace(q, k)
            cores[j] = _solve_core(xj, q)
            equivalent[j] = kron_identity(cores[j], k) if reduced[j] else cores[j]
        residual = xj - contract("aib,bja->ij", cores[-1], q)
        error = float(B.norm(residual)) / total
        change = abs(previous - error)
        previous = error
        if callback is not None:
            callback(sweep, error)
        if change < tol:
            converged = True
            break
    _report(name, n_iter_max, error, change, tol, converged)
    return cores


def _fit_chain(
    x: Any,
    shapes: Sequence[tuple[int, int, int]],
    k: int,
    *,
    ring: bool,
    init: object,
    rng: object,
    n_iter_max: object,
    tol: object,
    callback: object,
) -> list[Array]:
    cls = STRTensor if ring else STTTensor
    n_iter, tol_value, cb = _check_options(n_iter_max, tol, callback)
    gen = check_rng(rng)
    # STT: the SVD start is exact only without reduced cores; otherwise random starts
    # recovered generated STTs more often (docs/benchmarks.md), so None means random.
    default = "svd" if ring or k == 1 or x.ndim <= 2 else "random"
    choice = _init_choice(init, cls, default)
    total = float(B.norm(x))
    xp = B.namespace(x)
    if choice is None:
        cores = _check_start(x, init, shapes, k)
    elif total == 0.0:  # the zero tensor of these ranks fits exactly
        return [xp.zeros(s, dtype=x.dtype, device=B.device(x)) for s in shapes]
    elif choice == "random":
        cores = _random_chain(x, shapes, gen, total)
    else:
        start = _str_svd_start if ring else _stt_svd_start
        cores = [xp.astype(c, x.dtype) for c in start(x, shapes, k, gen, total)]
    if total == 0.0:
        return [xp.zeros_like(c) for c in cores]
    d = x.ndim
    reduced = [j > 0 and (ring or j < d - 1) for j in range(d)]
    name = "str_fit" if ring else "stt_fit"
    return _chain_als(
        x, cores, reduced, k, n_iter_max=n_iter, tol=tol_value, callback=cb, name=name
    )


def stt_fit(
    x: Array,
    ranks: int | Sequence[int],
    *,
    k: int,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    rng: np.random.Generator | int | None = None,
    init: STPInit | STTTensor | None = None,
    callback: Callback | None = None,
) -> STTTensor:
    """Fit a semi-tensor train (STT) of the given ranks and ``k`` by alternating least squares.

    Each sweep solves for the cores ``0, ..., d - 1`` in turn, each a linear
    least-squares problem with the others fixed (module docstring); a reduced core has
    ``k**2`` fewer unknowns than the TT core it stands for. The relative error
    ``||x - t||_F / ||x||_F`` is measured after every sweep, cannot increase (up to
    round-off), and the iteration stops when it changes by less than ``tol``. ALS
    reaches a stationary point, not necessarily the best STT: compare starts
    (``init="random"`` with other seeds) when the error stalls.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch, any device; real or complex). The result has its
        array type, dtype and device.
    ranks : int or sequence of int
        Ranks of the equivalent TT, exactly: one int, the ``d - 1`` bonds, or
        ``(1, R_1, ..., R_{d-1}, 1)``. ``k`` must divide every bond of a middle core;
        :func:`~tensornet.formats.stp_formats.stt_num_params` gives the parameter count
        before fitting.
    k : int
        Size of the identity factor (>= 1); ``k = 1`` fits an ordinary TT.
    n_iter_max : int
        Maximum number of sweeps (>= 1).
    tol : float
        Stop when the relative error changes by less than ``tol`` (>= 0) in a sweep.
    rng : numpy.random.Generator, int or None
        Randomness of the start (random start, padding of the SVD start).
    init : {"svd", "random"}, STTTensor or None
        ``"svd"``: the ordinary decomposition that the STT equals: TT-SVD when ``k = 1``
        or ``d <= 2``; otherwise TR-SVD at the ring ranks ``(k, R_1/k, ..., R_{d-1}/k)``
        (see :func:`~tensornet.formats.stp_formats.stt_to_tr`), capped and padded as in
        :func:`tensornet.tr_als`. ``"random"``: Gaussian cores. An STTTensor of this
        shape, ranks and ``k`` starts from its cores. None (default): ``"svd"`` when
        ``k = 1`` or ``d <= 2``, else ``"random"``: a capped TR-SVD is not exact on a
        ring, and from it ALS recovered generated STTs less often than from random starts
        (27 of 30 against 30 of 30, docs/benchmarks.md).
    callback : callable, optional
        ``callback(sweep, relative_error)`` after every sweep: convergence history.

    Returns
    -------
    STTTensor
        With exactly the requested ranks and ``k``.

    Raises
    ------
    TypeError
        If ``x`` is not numeric or an option has the wrong type.
    ValueError
        If ``x`` is 0-d, empty or non-finite, ``ranks`` is malformed, ``k`` does not divide
        a bond of a middle core, ``n_iter_max < 1``, ``tol < 0``, or ``init`` does not
        match.

    Warns
    -----
    ConvergenceWarning
        If ``n_iter_max`` sweeps ran without the error settling within ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import random_stt, stt_fit
    >>> x = random_stt((6, 8, 8, 6), 4, k=2, rng=0).to_dense()
    >>> t = stt_fit(x, 4, k=2, tol=1e-13, rng=0)
    >>> t.ranks, t.k, t.num_params
    ((1, 4, 4, 4, 1), 2, 112)
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-6 * np.linalg.norm(x))
    True
    """
    x = check_array(x, "x")
    k = check_k(k)
    shapes = stt_core_shapes(tuple(int(n) for n in x.shape), ranks, k)
    cores = _fit_chain(
        x,
        shapes,
        k,
        ring=False,
        init=init,
        rng=rng,
        n_iter_max=n_iter_max,
        tol=tol,
        callback=callback,
    )
    return STTTensor(cores, k=k)


def str_fit(
    x: Array,
    ranks: int | Sequence[int],
    *,
    k: int,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    rng: np.random.Generator | int | None = None,
    init: STPInit | STRTensor | None = "svd",
    callback: Callback | None = None,
) -> STRTensor:
    """Fit a semi-tensor ring (STR) of the given ranks and ``k`` by alternating least squares.

    As :func:`stt_fit`, on the ring ``trace(G_0 ⋉ G_1 ⋉ ... ⋉ G_{d-1})``. Only the partial
    trace of ``G_0`` enters the tensor (an STR equals the TR of ranks ``R / k``; see
    :func:`~tensornet.formats.stp_formats.str_to_tr`), so the least-squares problem of
    ``G_0`` is degenerate and its minimum-norm solution ``G~ ⊗ I_k / k`` is returned.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch, any device; real or complex).
    ranks : int or sequence of int
        Ranks of the equivalent TR: one int, the ``d`` bonds ``(R_0, ..., R_{d-1})`` or
        ``(R_0, ..., R_{d-1}, R_0)``; ``k`` must divide every bond when ``d >= 2``.
    k : int
        Size of the identity factor (>= 1); ``k = 1`` fits an ordinary TR (as
        :func:`tensornet.tr_als`, from the same start).
    n_iter_max, tol, rng, callback
        As in :func:`stt_fit`.
    init : {"svd", "random"} or STRTensor
        ``"svd"`` (default; None too): the TR-SVD of ``x`` at the compact ranks ``R / k``
        (capped, then padded as in :func:`tensornet.tr_als`), its first core lifted to
        ``G~ ⊗ I_k / k``. ``"random"``: Gaussian cores. An STRTensor of this shape, ranks
        and ``k`` starts from its cores.

    Returns
    -------
    STRTensor
        With exactly the requested ranks and ``k``.

    Raises
    ------
    TypeError, ValueError
        As :func:`stt_fit`.

    Warns
    -----
    ConvergenceWarning
        If ``n_iter_max`` sweeps ran without the error settling within ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import random_str, str_fit
    >>> x = random_str((6, 8, 10), 4, k=2, rng=0).to_dense()
    >>> t = str_fit(x, 4, k=2, tol=1e-13, rng=0)
    >>> t.ranks, t.num_params
    ((4, 4, 4, 4), 168)
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-6 * np.linalg.norm(x))
    True
    """
    x = check_array(x, "x")
    k = check_k(k)
    shapes = str_core_shapes(tuple(int(n) for n in x.shape), ranks, k)
    cores = _fit_chain(
        x,
        shapes,
        k,
        ring=True,
        init=init,
        rng=rng,
        n_iter_max=n_iter_max,
        tol=tol,
        callback=callback,
    )
    return STRTensor(cores, k=k)


# -- STTucker: orthonormal ALS (HOOI on k-folded unfoldings) ---------------------------------------
def _folded(y: Array, mode: int, k: int) -> Array:
    """``Y[a, (s, m)] = Y_(mode)[a k + s, m]``: the k-folded mode unfolding, ``(n / k, k rest)``."""
    xp = B.namespace(y)
    return xp.reshape(xp.moveaxis(y, mode, 0), (int(y.shape[mode]) // k, -1))


def _leading(mat: Array, rank: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """``rank`` orthonormal leading left singular vectors of ``mat`` and their values.

    When ``mat`` has fewer non-zero singular values, the basis is completed with random
    orthonormal directions (their singular values are 0).
    """
    xp = B.namespace(mat)
    res = _truncated_svd(mat, tol=None, cap=rank, method="exact")
    u, s = res.U, res.s
    missing = rank - int(u.shape[1])
    if float(B.norm(s)) == 0.0:
        u, s, missing = u[:, :0], s[:0], rank
    if missing > 0:
        extra = B.standard_normal(mat, (int(mat.shape[0]), missing), rng)
        extra = extra - u @ (B.conj(xp.matrix_transpose(u)) @ extra)
        extra, _ = qr(extra)
        u = xp.concat([u, extra], axis=1)
        s = xp.concat([s, xp.zeros((missing,), dtype=s.dtype, device=B.device(s))])
    return u, s


def _project(x: Array, factors: dict[int, Array], k: int, skip: int | None = None) -> Array:
    """``x x_n (U_n ⊗ I_k)^H`` for every factored mode except ``skip``."""
    for m, u in factors.items():
        if m != skip:
            x = stp_mode_product(x, B.conj(B.namespace(u).matrix_transpose(u)), m, k=k)
    return x


def sttucker_fit(
    x: Array,
    ranks: int | Sequence[int],
    *,
    k: int,
    modes: int | Sequence[int] | None = None,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    rng: np.random.Generator | int | None = None,
    init: STPInit | STTuckerTensor | None = "svd",
    callback: Callback | None = None,
) -> STTuckerTensor:
    """Fit a semi-tensor Tucker (STTucker) tensor of the given ranks and ``k``.

    ``x ≈ core x_n (U_n ⊗ I_k)`` with orthonormal ``U_n`` of shape ``(n_n / k, R_n / k)``.
    Alternating least squares in orthonormal form (HOOI on k-folded unfoldings; module
    docstring): each sweep updates every factor given the others, the core is the
    projection of ``x``, and the relative error ``sqrt(||x||^2 - ||core||^2) / ||x||``
    cannot increase. Stops when it changes by less than ``tol`` in a sweep, or when the
    core norm no longer changes beyond round-off (``100 eps``; the error, computed from
    it by cancellation, is only known to about ``sqrt(eps)``).

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch, any device; real or complex).
    ranks : int or sequence of int
        Multilinear ranks of the equivalent Tucker tensor, as in :func:`tensornet.hooi`
        (one int, one per factored mode, or the full core shape); ``k`` must divide the
        size and the rank of every factored mode.
        :func:`~tensornet.formats.stp_formats.sttucker_num_params` gives the count.
    k : int
        Size of the identity factor (>= 1); ``k = 1`` is HOOI.
    modes : int or sequence of int, optional
        The factored modes (None: all); Tucker-2 of a conv kernel is ``modes=(0, 1)``.
    n_iter_max, tol, rng, callback
        As in :func:`stt_fit`.
    init : {"svd", "random"} or STTuckerTensor
        ``"svd"`` (default; None too): the STP analogue of ST-HOSVD, i.e. mode by mode the
        leading left singular vectors of the k-folded unfolding, then projection (the
        HOSVD factor projected onto the ``U ⊗ I_k`` structure in the best way).
        ``"random"``: random orthonormal factors. An STTuckerTensor of this shape, ranks,
        modes and ``k`` starts from its (orthonormalized) factors.

    Returns
    -------
    STTuckerTensor
        Orthonormal factors, exactly the requested ranks (directions beyond the rank of
        ``x`` are completed at random), core ``x x_n (U_n ⊗ I_k)^H``.

    Raises
    ------
    TypeError, ValueError
        As :func:`stt_fit`; also when a rank exceeds its mode size.

    Warns
    -----
    ConvergenceWarning
        If ``n_iter_max`` sweeps ran without the error settling within ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import random_sttucker, sttucker_fit
    >>> x = random_sttucker((8, 10, 12), 4, k=2, rng=0).to_dense()
    >>> t = sttucker_fit(x, 4, k=2, tol=1e-14, rng=0)
    >>> t.ranks, t.num_params
    ((4, 4, 4), 94)
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-10 * np.linalg.norm(x))
    True
    """
    x = check_array(x, "x")
    k = check_k(k)
    shape = tuple(int(n) for n in x.shape)
    _, full = _sttucker_plan(shape, ranks, k, modes)
    order = sorted(full)
    n_iter, tol_value, cb = _check_options(n_iter_max, tol, callback)
    gen = check_rng(rng)
    choice = _init_choice(init, STTuckerTensor)
    xp = B.namespace(x)
    total = float(B.norm(x))
    factors: dict[int, Array] = {}
    if choice is None:
        assert isinstance(init, STTuckerTensor)
        if (
            init.shape != shape
            or init.k != k
            or init.ranks != tuple(full.get(m, n) for m, n in enumerate(shape))
            or init.modes != tuple(order)
        ):
            raise ValueError(
                f"init must have the shape {shape}, k = {k}, modes {tuple(order)} and ranks "
                f"{tuple(full.get(m, n) for m, n in enumerate(shape))} requested, got {init!r}"
            )
        check_same_namespace([x, init.core], "x and init", same_dtype=False)
        for m in order:
            f = init.factors[m]
            assert f is not None
            factors[m], _ = qr(xp.astype(f, x.dtype))
    else:
        y = x
        for m in order:
            if choice == "random":
                u, _ = qr(B.standard_normal(x, (shape[m] // k, full[m] // k), gen))
            else:
                u, _ = _leading(_folded(y, m, k), full[m] // k, gen)
                y = _project(y, {m: u}, k)
            factors[m] = u
    if total == 0.0:
        core = _project(x, factors, k)
        return STTuckerTensor(core, [factors.get(m) for m in range(len(shape))], k=k)
    previous = math.inf
    change = error = math.inf
    converged = False
    core = x
    # The error comes from ||core|| by cancellation, so it is only known to about
    # sqrt(eps): near an exact fit it jitters by ~1e-8 (float64) from sweep to sweep. A
    # core norm that no longer changes beyond round-off (as in HOOI) is converged too.
    resolution = 100.0 * B.eps(x)
    previous_kept = -1.0
    for sweep in range(1, n_iter + 1):
        for m in order:
            y = _project(x, factors, k, skip=m)
            factors[m], s = _leading(_folded(y, m, k), full[m] // k, gen)
        core = _project(y, {order[-1]: factors[order[-1]]}, k)
        kept = float(B.norm(s)) / total
        error = math.sqrt(max(1.0 - kept * kept, 0.0))
        change = abs(previous - error)
        stalled = abs(kept - previous_kept) <= resolution * kept
        previous, previous_kept = error, kept
        if cb is not None:
            cb(sweep, error)
        if change < tol_value or stalled:
            converged = True
            break
    _report("sttucker_fit", n_iter, error, change, tol_value, converged)
    return STTuckerTensor(core, [factors.get(m) for m in range(len(shape))], k=k)
