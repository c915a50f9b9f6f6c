"""TR-ALS (Zhao et al. 2016): fit a tensor ring of given ranks by alternating least squares.

Core ``k`` enters the ring linearly. With the subchain ``Q_k`` of the other cores contracted
around the ring, ``Q_k[b, j, a] = (G_{k+1}[:, i_{k+1}, :] ... G_{k-1}[:, i_{k-1}, :])[b, a]``
(``j`` runs over the other modes in the cyclic order ``k+1, ..., k-1``, C order), the mode-k
unfolding of the ring is ``X_(k) = G_(k) M_k`` with ``G_(k)[i, (a, b)] = G_k[a, i, b]`` and
``M_k[(a, b), j] = Q_k[b, j, a]``. Fixing the other cores, the best ``G_k`` solves the linear
least-squares problem ``min ||X_(k) - G M_k||_F`` through its normal equations
``G (M_k M_k^H) = X_(k) M_k^H``: a ``(r_k r_{k+1})``-square Hermitian system, solved with an
eigendecomposition and a pseudo-inverse cut at the round-off level of the Gram matrix, so a
rank-deficient subchain gives the minimum-norm solution instead of NaN. Each update can only
lower the residual, so the error sequence is non-increasing up to round-off.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Literal

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
from tensornet.decompose.tr_svd import _divisors, _first_svd, _ring_sweep, _rotate
from tensornet.formats.tr import TRTensor

__all__ = ["tr_als"]

TRInit = Literal["svd", "random"]
_INITS = ("svd", "random")

PAD_SCALE = 1e-2
"""Size of the random entries that pad a TR-SVD start up to the requested ranks, relative to
the root-mean-square entry of the core they pad (exact zeros would never be updated by ALS)."""


# -- arguments -----------------------------------------------------------------------------------
def _check_ranks(ranks: object, order: int, name: str = "ranks") -> tuple[int, ...]:
    """Bond sizes ``(r_0, ..., r_{d-1})`` from an int, the d bonds, or ``TRTensor.ranks``."""
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        return (check_int(ranks, name, minimum=1),) * order
    if B.is_array(ranks):
        ranks = np.asarray(B.to_numpy(ranks)).ravel().tolist()
    if not isinstance(ranks, Sequence) or isinstance(ranks, (str, bytes)):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {_describe(ranks)}")
    values = tuple(check_int(r, f"{name}[{i}]", minimum=1) for i, r in enumerate(ranks))
    if len(values) == order:
        return values
    if len(values) == order + 1:
        if values[0] != values[-1]:
            raise ValueError(
                f"{name} given as TRTensor.ranks (length {order + 1}) must end with its first "
                f"entry (the ring closes), got {values}"
            )
        return values[:-1]
    raise ValueError(
        f"{name} must be an int, the {order} bond sizes (r_0, ..., r_{order - 1}) or "
        f"TRTensor.ranks of length {order + 1} for {order} modes; got a sequence of length "
        f"{len(values)}"
    )


# -- initialization --------------------------------------------------------------------------------
def _random_cores(
    x: Array, bonds: tuple[int, ...], rng: np.random.Generator, total: float
) -> list[Array]:
    """Gaussian cores whose ring has ``||x||``-sized entries (variance ``1 / r_{k+1}`` each)."""
    d = x.ndim
    scale = total / math.sqrt(math.prod(int(n) for n in x.shape))
    cores = []
    for k in range(d):
        shape = (bonds[k], int(x.shape[k]), bonds[(k + 1) % d])
        core = B.standard_normal(x, shape, rng) * (1.0 / math.sqrt(bonds[(k + 1) % d]))
        cores.append(core * scale if k == 0 else core)
    return cores


def _fit_to(core: Array, shape: tuple[int, int, int], rng: np.random.Generator) -> Array:
    """``core`` truncated and/or padded with small random entries to ``shape``."""
    xp = B.namespace(core)
    core = core[: shape[0], :, : shape[2]]
    if tuple(int(n) for n in core.shape) == shape:
        return core
    rms = float(B.norm(core)) / math.sqrt(math.prod(int(n) for n in core.shape))
    out = B.standard_normal(core, shape, rng) * (PAD_SCALE * (rms if rms > 0 else 1.0))
    r, s = int(core.shape[0]), int(core.shape[2])
    left = xp.concat([core, out[:r, :, s:]], axis=2)
    return xp.concat([left, out[r:, :, :]], axis=0)


def _svd_cores(
    x: Array, bonds: tuple[int, ...], rng: np.random.Generator, total: float
) -> list[Array]:
    """TR-SVD from mode 0 capped at ``bonds``, then truncated/padded to exactly ``bonds``.

    The first SVD keeps at most ``r_0 r_1`` singular triplets; its rank is cut to the
    largest ``r0' * r1' <= r`` with ``r0' <= r_0`` and ``r1' <= r_1``.
    """
    d = x.ndim
    if d == 1:  # the ring of one core: x on the (0, 0) entry of the closing bond, then padding
        core = B.namespace(x).reshape(x, (1, int(x.shape[0]), 1))
        return [_fit_to(core, (bonds[0], int(x.shape[0]), bonds[0]), rng)]
    first = _first_svd(
        x, 0, tol=None, cap=bonds[0] * bonds[1 % d], method="exact", rng=rng, total=total
    )
    r = int(first.s.shape[0])
    usable = [
        (p, q)
        for p in range(1, r + 1)
        for q in _divisors(p)
        if q <= bonds[0] and p // q <= bonds[1 % d]
    ]
    rank, r0 = max(usable)
    first = first._replace(U=first.U[:, :rank], s=first.s[:rank], Vh=first.Vh[:rank, :])
    cores, _ = _ring_sweep(
        x, 0, first, r0, tol=None, caps=bonds[2:], method="exact", rng=rng, total=total
    )
    return [
        _fit_to(core, (bonds[k], int(x.shape[k]), bonds[(k + 1) % d]), rng)
        for k, core in enumerate(cores)
    ]


def _init_cores(
    x: Array, bonds: tuple[int, ...], init: object, rng: np.random.Generator, total: float
) -> list[Array]:
    if isinstance(init, TRTensor):
        if init.shape != tuple(int(n) for n in x.shape):
            raise ValueError(
                f"init must have the shape of x {tuple(x.shape)}, got a TRTensor of shape "
                f"{init.shape}"
            )
        if init.ranks[:-1] != bonds:
            raise ValueError(
                f"init must have the requested ranks {(*bonds, bonds[0])}, got {init.ranks}"
            )
        check_same_namespace([x, init.cores[0]], "x and init", same_dtype=False)
        xp = B.namespace(x)
        return [xp.astype(core, x.dtype) for core in init.cores]
    if init is not None and not isinstance(init, str):
        raise TypeError(f"init must be 'svd', 'random' or a TRTensor, got {_describe(init)}")
    choice = check_choice("svd" if init is None else init, "init", _INITS)
    if choice == "random" or total == 0.0:
        return _random_cores(x, bonds, rng, total)
    return _svd_cores(x, bonds, rng, total)


# -- the sweep -------------------------------------------------------------------------------------
def _subchain(cores: Sequence[Array], k: int) -> Array:
    """``Q_k`` of shape ``(r_{k+1}, prod of the other modes, r_k)``: cores k+1, ..., k-1."""
    xp = B.namespace(cores[0])
    d = len(cores)
    if d == 1:  # the empty chain is the identity on the closing bond
        r = int(cores[0].shape[0])
        eye = xp.eye(r, dtype=cores[0].dtype, device=B.device(cores[0]))
        return xp.reshape(eye, (r, 1, r))
    chain = cores[(k + 1) % d]
    for j in range(2, d):
        chain = contract("amb,bnc->amnc", chain, cores[(k + j) % d])
        chain = xp.reshape(chain, (int(chain.shape[0]), -1, int(chain.shape[-1])))
    return chain


def _psd_solve(gram: Array, rhs: Array) -> Array:
    """``rhs @ pinv(gram)`` for a Hermitian positive semi-definite ``gram``.

    Eigenvalues below ``p * eps * max(eigenvalue)`` (``p`` the size of ``gram``) are
    round-off of the Gram product and are dropped, as in a pseudo-inverse.
    """
    xp = B.namespace(gram)
    w, v = xp.linalg.eigh(gram)
    w_host = np.asarray(B.to_numpy(w), dtype=np.float64)
    cutoff = float(w_host.max(initial=0.0)) * int(gram.shape[0]) * B.eps(gram)
    inv = np.where(w_host > cutoff, 1.0 / np.where(w_host > cutoff, w_host, 1.0), 0.0)
    inv_w = xp.asarray(inv, device=B.device(gram))
    inv_w = xp.astype(inv_w, v.dtype)
    return ((rhs @ v) * inv_w[None, :]) @ B.conj(xp.matrix_transpose(v))


def _unfold(x: Array, k: int) -> Array:
    """Mode-k unfolding ``(n_k, rest)`` with the other modes in cyclic order k+1, ..., k-1."""
    return B.namespace(x).reshape(_rotate(x, k), (int(x.shape[k]), -1))


def _solve_core(xk: Array, q: Array) -> Array:
    """The core ``(r_k, n_k, r_{k+1})`` minimizing ``||X_(k) - G_(k) M_k||`` for subchain ``q``."""
    xp = B.namespace(xk)
    r_next, r_k = int(q.shape[0]), int(q.shape[2])
    qc = B.conj(q)
    gram = xp.reshape(contract("bja,djc->abcd", q, qc), (r_k * r_next, r_k * r_next))
    rhs = xp.reshape(contract("ij,bja->iab", xk, qc), (int(xk.shape[0]), r_k * r_next))
    g = _psd_solve(gram, rhs)  # (n_k, r_k * r_next)
    return xp.permute_dims(xp.reshape(g, (int(xk.shape[0]), r_k, r_next)), (1, 0, 2))


def _update(x: Array, cores: list[Array], k: int) -> tuple[Array, Array, Array]:
    """Least-squares core ``k``; returns it with the unfolding and subchain it was fit to."""
    xk = _unfold(x, k)
    q = _subchain(cores, k)  # (r_{k+1}, J, r_k)
    return _solve_core(xk, q), xk, q


def _relative_error(xk: Array, core: Array, q: Array, total: float) -> float:
    """``||X_(k) - G_(k) M_k|| / ||x||`` for the ring with core ``k`` and subchain ``q``."""
    return float(B.norm(xk - contract("aib,bja->ij", core, q))) / total


def tr_als(
    x: Array,
    ranks: int | Sequence[int],
    *,
    n_iter_max: int = 100,
    tol: float = 1e-8,
    rng: np.random.Generator | int | None = None,
    init: TRInit | TRTensor | None = "svd",
) -> TRTensor:
    """Fit a tensor ring of the given ranks to a dense tensor by alternating least squares.

    Each sweep updates the cores ``0, ..., d - 1`` in turn; core ``k`` solves the linear
    least-squares problem against the mode-``k`` unfolding with the other cores fixed
    (see the module docstring). The relative error ``||x - ring||_F / ||x||_F`` is
    measured after every sweep and cannot increase (up to round-off); the iteration stops
    when it changes by less than ``tol`` between sweeps. ALS converges to a stationary
    point, not necessarily the best ring of these ranks: restart from other ``rng`` seeds
    (``init="random"``) when the error stalls above what the ranks should allow.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch, any device; real or complex). The result has
        ``x``'s array type, dtype and device.
    ranks : int or sequence of int
        The bond sizes, exactly: the ``d`` bonds ``(r_0, ..., r_{d-1})`` (bond ``r_k`` is
        the left bond of mode ``k``), or ``TRTensor.ranks`` ``(r_0, ..., r_{d-1}, r_0)``,
        or one int for every bond.
    n_iter_max : int
        Maximum number of sweeps (>= 1).
    tol : float
        Convergence tolerance (>= 0) on the change of the relative error between two
        sweeps; ``tol=0`` runs exactly ``n_iter_max`` sweeps (and does not warn).
    rng : numpy.random.Generator, int or None
        Randomness of the random start and of the padding of the SVD start.
    init : {"svd", "random"} or TRTensor
        ``"svd"`` (default; None means the same): TR-SVD from mode 0 with its ranks capped
        at ``ranks`` (first rank ``r_0 r_1``), truncated or padded with small random entries
        (:data:`PAD_SCALE`) to exactly ``ranks``. ``"random"``: Gaussian cores scaled to
        ``||x||``. A TRTensor of ``x``'s shape and these ranks starts from its cores.

    Returns
    -------
    TRTensor
        Cores ``(r_k, n_k, r_{k+1})`` with exactly the requested ranks.

    Raises
    ------
    TypeError
        If ``x`` is not numeric, ``ranks`` is not an int or a sequence of ints, or
        ``init``/``rng`` has the wrong type.
    ValueError
        If ``x`` is 0-d, empty or non-finite, ``ranks`` has the wrong length, a rank is
        < 1, ``TRTensor.ranks``-style ``ranks`` do not close, ``n_iter_max < 1``, ``tol < 0``,
        or ``init`` does not match ``x`` and ``ranks``.

    Warns
    -----
    ConvergenceWarning
        If ``n_iter_max`` sweeps ran without the error settling within ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tr_als import tr_als
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.standard_normal(s) for s in [(2, 6, 3), (3, 7, 2), (2, 8, 2)]]
    >>> x = np.einsum("aib,bjc,cka->ijk", *cores)
    >>> t = tr_als(x, (2, 3, 2), n_iter_max=500, tol=1e-12, rng=0)
    >>> t.ranks
    (2, 3, 2, 2)
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-6 * np.linalg.norm(x))
    True
    """
    x = check_array(x, "x")
    d = x.ndim
    bonds = _check_ranks(ranks, d)
    n_iter_max = check_int(n_iter_max, "n_iter_max", minimum=1)
    tol_value = check_rtol(tol, "tol")
    if tol_value is None:
        raise TypeError("tol must be a real number >= 0, got None")
    gen = check_rng(rng)
    total = float(B.norm(x))
    cores = _init_cores(x, bonds, init, gen, total)
    if total == 0.0:  # the zero ring of these ranks fits exactly
        xp = B.namespace(x)
        return TRTensor([xp.zeros_like(core) for core in cores])
    previous = _relative_error(_unfold(x, 0), cores[0], _subchain(cores, 0), total)
    change = math.inf
    for _ in range(n_iter_max):
        for k in range(d):
            cores[k], xk, q = _update(x, cores, k)
        error = _relative_error(xk, cores[-1], q, total)
        change = abs(previous - error)
        previous = error
        if change < tol_value:
            break
    else:
        if tol_value > 0:  # tol=0 asks for n_iter_max sweeps: nothing to warn about
            warnings.warn(
                f"tr_als stopped at n_iter_max={n_iter_max} sweeps with relative error "
                f"{previous:.3e} still changing by {change:.3e} (tol={tol_value:g})",
                ConvergenceWarning,
                stacklevel=2,
            )
    return TRTensor(cores)
