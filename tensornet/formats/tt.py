"""Tensor train (TT) format and its native algebra.

Layout: ``cores[k].shape == (r_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``, so that
``X[i_0, ..., i_{d-1}] = G_0[:, i_0, :] @ G_1[:, i_1, :] @ ... @ G_{d-1}[:, i_{d-1}, :]``.
No operation here densifies the tensor unless its name says so (``to_dense``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensornet import _backend as B
from tensornet import _chunked
from tensornet._backend import Array
from tensornet._validation import (
    check_array,
    check_index,
    check_mode,
    check_rtol,
    check_same_namespace,
    check_tt_caps,
)
from tensornet.contract import contract
from tensornet.formats._base import (
    CoreSequenceFormat,
    check_same_shape,
    check_scalar,
    common_dtype,
    dtype_name,
)
from tensornet.linalg import _choose_rank, _truncated_svd, qr

__all__ = [
    "TTTensor",
    "tt_add",
    "tt_hadamard",
    "tt_inner",
    "tt_mode_product",
    "tt_norm",
    "tt_orthogonalize",
    "tt_round",
    "tt_scale",
    "tt_to_dense",
]


def _check_cores(cores: object, ndim: int, name: str) -> tuple[Array, ...]:
    """Validate a sequence of cores: arrays of ``ndim`` dims, one library, dtype and device."""
    if B.is_array(cores) or not isinstance(cores, Sequence) or isinstance(cores, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of arrays, got {type(cores).__name__}")
    if len(cores) == 0:
        raise ValueError(f"{name} must contain at least one core, got an empty sequence")
    result = []
    for k, core in enumerate(cores):
        if not B.is_array(core):
            raise TypeError(f"{name}[{k}] must be an array, got {type(core).__name__}")
        xp = B.namespace(core)
        if not xp.isdtype(core.dtype, ("real floating", "complex floating")):
            raise TypeError(f"{name}[{k}] must have a floating dtype, got {core.dtype}")
        if core.ndim != ndim:
            raise ValueError(
                f"{name}[{k}] must have {ndim} dimensions, got shape {tuple(core.shape)}"
            )
        if any(int(n) == 0 for n in core.shape):
            raise ValueError(f"{name}[{k}] must not have empty dimensions, got {tuple(core.shape)}")
        result.append(core)
    check_same_namespace(result, name)
    return tuple(result)


def check_bonds(cores: Sequence[Array], name: str, *, ring: bool) -> tuple[int, ...]:
    """Check that consecutive cores share bond sizes; return the ranks tuple (length d + 1)."""
    ranks = [int(cores[0].shape[0])]
    for k, core in enumerate(cores):
        if int(core.shape[0]) != ranks[-1]:
            raise ValueError(
                f"{name}[{k}] has left rank {int(core.shape[0])} but {name}[{k - 1}] has right "
                f"rank {ranks[-1]}"
            )
        ranks.append(int(core.shape[-1]))
    if ring and ranks[0] != ranks[-1]:
        raise ValueError(
            f"{name} must close the ring: first left rank {ranks[0]} != last right rank {ranks[-1]}"
        )
    if not ring and (ranks[0] != 1 or ranks[-1] != 1):
        raise ValueError(
            f"{name} must have boundary ranks 1 (ranks[0] == ranks[-1] == 1), got "
            f"{ranks[0]} and {ranks[-1]}"
        )
    return tuple(ranks)


@dataclass(frozen=True, eq=False, repr=False)
class TTTensor(CoreSequenceFormat):
    """A tensor in tensor-train format.

    Parameters
    ----------
    cores : sequence of arrays
        ``cores[k]`` has shape ``(r_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``; all
        cores share one array library, dtype and device.

    Attributes
    ----------
    cores : tuple of arrays
    shape : tuple of int
        ``(n_0, ..., n_{d-1})``.
    ranks : tuple of int
        ``(1, r_1, ..., r_{d-1}, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import TTTensor
    >>> t = TTTensor([np.ones((1, 2, 3)), np.ones((3, 4, 1))])
    >>> t
    TTTensor(shape=(2, 4), ranks=(1, 3, 1), dtype=float64, num_params=18)
    >>> float(t[1, 2])
    3.0
    """

    cores: Sequence[Array]  # stored as a tuple

    def __post_init__(self) -> None:
        cores = _check_cores(self.cores, 3, "cores")
        check_bonds(cores, "cores", ring=False)
        object.__setattr__(self, "cores", cores)

    # -- summary properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Bond sizes ``(1, r_1, ..., r_{d-1}, 1)``."""
        return (1, *(int(c.shape[2]) for c in self.cores))

    def __repr__(self) -> str:
        return (
            f"TTTensor(shape={self.shape}, ranks={self.ranks}, dtype={dtype_name(self.dtype)}, "
            f"num_params={self.num_params})"
        )

    # -- delegating methods -------------------------------------------------------------
    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries)."""
        return tt_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying."""
        return tt_norm(self)

    def round(
        self, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
    ) -> TTTensor:
        """Recompress; see :func:`tt_round`."""
        return tt_round(self, rtol=rtol, max_rank=max_rank)

    def _add(self, other: Any) -> TTTensor:
        return tt_add(self, other)

    def _scale(self, alpha: Any) -> TTTensor:
        return tt_scale(self, alpha)

    def __getitem__(self, index: object) -> Any:
        """Entries or a sub-tensor as a ``TTTensor``.

        Integers fix a mode, slices keep it; nothing is densified. ``t[i, j, k]`` gives a
        scalar: a NumPy scalar for NumPy cores, a 0-d tensor for torch cores.
        """
        return _getitem(self, index)


def _check_tt(t: object, name: str) -> TTTensor:
    if not isinstance(t, TTTensor):
        raise TypeError(f"{name} must be a TTTensor, got {type(t).__name__}")
    return t


def _normalize_index(index: object, shape: tuple[int, ...]) -> list[int | slice]:
    """Expand ``index`` (ints, slices, one Ellipsis) to one entry per mode."""
    items = list(index) if isinstance(index, tuple) else [index]
    n_ellipsis = sum(item is Ellipsis for item in items)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_ellipsis:
        at = next(i for i, item in enumerate(items) if item is Ellipsis)
        fill = len(shape) - (len(items) - 1)
        items[at : at + 1] = [slice(None)] * max(fill, 0)
    if len(items) > len(shape):
        raise IndexError(f"too many indices for a tensor of order {len(shape)}: got {len(items)}")
    items += [slice(None)] * (len(shape) - len(items))
    result: list[int | slice] = []
    for mode, (item, size) in enumerate(zip(items, shape)):
        if isinstance(item, slice):
            if len(range(*item.indices(size))) == 0:
                raise IndexError(f"slice {item} selects no entries of mode {mode} (size {size})")
            result.append(item)
        else:
            result.append(check_index(item, size, f"index of mode {mode}"))
    return result


def _getitem(t: TTTensor, index: object) -> Any:
    items = _normalize_index(index, t.shape)
    kept: list[Array] = []
    pending: Array | None = None  # product of the matrices of fixed modes not yet absorbed
    for core, item in zip(t.cores, items):
        if isinstance(item, slice):
            piece = core[:, item, :]
            if pending is not None:
                piece = contract("ab,bnc->anc", pending, piece)
                pending = None
            kept.append(piece)
        else:
            matrix = core[:, item, :]
            pending = matrix if pending is None else pending @ matrix
    if not kept:
        assert pending is not None
        return pending[0, 0]
    if pending is not None:
        kept[-1] = contract("anb,bc->anc", kept[-1], pending)
    return TTTensor(kept)


# -- dense conversion and contraction-based ops ----------------------------------------------
def tt_to_dense(t: TTTensor) -> Array:
    """Contract a TT into the full tensor of shape ``t.shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import TTTensor, tt_to_dense
    >>> tt_to_dense(TTTensor([np.ones((1, 2, 1)), np.ones((1, 3, 1))])).shape
    (2, 3)
    """
    t = _check_tt(t, "t")
    xp = B.namespace(t.cores[0])
    result = t.cores[0]
    for core in t.cores[1:]:
        left = xp.reshape(result, (-1, int(result.shape[-1])))
        result = contract("ab,bnc->anc", left, core)
    return xp.reshape(result, t.shape)


def tt_inner(a: TTTensor, b: TTTensor) -> Array:
    """Inner product ``<a, b> = sum(conj(a) * b)`` without densifying, O(d n r^3).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd, tt_inner
    >>> x = np.arange(24.0).reshape(2, 3, 4)
    >>> t = tt_svd(x)
    >>> bool(np.isclose(tt_inner(t, t), np.sum(x * x)))
    True
    """
    a = _check_tt(a, "a")
    b = _check_tt(b, "b")
    check_same_shape(a, b)
    common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    env = contract("anb,anc->bc", B.conj(a.cores[0]), b.cores[0])
    for ca, cb in zip(a.cores[1:], b.cores[1:]):
        env = contract("ab,anc,bnd->cd", env, B.conj(ca), cb)
    return env[0, 0]


def tt_orthogonalize(t: TTTensor, center: int = 0) -> TTTensor:
    """Gauge ``t`` so cores left of ``center`` are left-orthogonal and those right of it
    right-orthogonal; the tensor is unchanged.

    Ranks may shrink where a bond exceeds the size of the matrix it joins.

    Parameters
    ----------
    t : TTTensor
    center : int
        Mode that carries the norm afterwards (negative counts from the end).

    Returns
    -------
    TTTensor
        Same tensor; ``norm(result.cores[center])`` equals ``t.norm()``.
    """
    t = _check_tt(t, "t")
    center = check_mode(center, t.order, "center")
    xp = B.namespace(t.cores[0])
    cores = list(t.cores)
    for k in range(center):
        r, n, _ = cores[k].shape
        q, rmat = qr(xp.reshape(cores[k], (r * n, -1)))
        cores[k] = xp.reshape(q, (r, n, -1))
        cores[k + 1] = contract("ab,bnc->anc", rmat, cores[k + 1])
    for k in range(t.order - 1, center, -1):
        _, n, r = cores[k].shape
        mat = xp.reshape(cores[k], (int(cores[k].shape[0]), n * r))
        q, rmat = qr(B.conj(xp.matrix_transpose(mat)))
        cores[k] = xp.reshape(B.conj(xp.matrix_transpose(q)), (-1, n, r))
        cores[k - 1] = contract("anb,cb->anc", cores[k - 1], B.conj(rmat))
    return TTTensor(cores)


def tt_norm(t: TTTensor) -> Array:
    """Frobenius norm, from the orthogonalized first core (no cancellation, no densifying).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd, tt_norm
    >>> x = np.arange(24.0).reshape(2, 3, 4)
    >>> bool(np.isclose(tt_norm(tt_svd(x)), np.linalg.norm(x)))
    True
    """
    t = _check_tt(t, "t")
    return B.norm(tt_orthogonalize(t, 0).cores[0])


def tt_scale(t: TTTensor, alpha: Any) -> TTTensor:
    """Multiply ``t`` by the scalar ``alpha`` (scales the first core)."""
    t = _check_tt(t, "t")
    alpha = check_scalar(alpha)
    xp = B.namespace(t.cores[0])
    first = t.cores[0] * alpha  # may promote (complex alpha, float64 scalar on float32)
    return TTTensor([first, *(xp.astype(c, first.dtype) for c in t.cores[1:])])


def tt_add(a: TTTensor, b: TTTensor) -> TTTensor:
    """Sum of two TTs of the same shape; ranks add (round afterwards with :func:`tt_round`).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd, tt_add
    >>> x = np.arange(24.0).reshape(2, 3, 4)
    >>> s = tt_add(tt_svd(x), tt_svd(x))
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * x))
    ((1, 4, 4, 1), True)
    """
    a = _check_tt(a, "a")
    b = _check_tt(b, "b")
    check_same_shape(a, b)
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    ca = [xp.astype(c, dtype) for c in a.cores]
    cb = [xp.astype(c, dtype) for c in b.cores]
    if a.order == 1:
        return TTTensor([ca[0] + cb[0]])
    dev = B.device(ca[0])
    cores = [xp.concat([ca[0], cb[0]], axis=2)]
    for x, y in zip(ca[1:-1], cb[1:-1]):
        (ra, n, sa), (rb, _, sb) = x.shape, y.shape
        top = xp.concat([x, xp.zeros((ra, n, sb), dtype=dtype, device=dev)], axis=2)
        bottom = xp.concat([xp.zeros((rb, n, sa), dtype=dtype, device=dev), y], axis=2)
        cores.append(xp.concat([top, bottom], axis=0))
    cores.append(xp.concat([ca[-1], cb[-1]], axis=0))
    return TTTensor(cores)


def tt_hadamard(a: TTTensor, b: TTTensor) -> TTTensor:
    """Elementwise product; ranks multiply (slices are Kronecker products)."""
    a = _check_tt(a, "a")
    b = _check_tt(b, "b")
    check_same_shape(a, b)
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    cores = []
    for x, y in zip(a.cores, b.cores):
        (ra, n, sa), (rb, _, sb) = x.shape, y.shape
        prod = contract("anb,cnd->acnbd", xp.astype(x, dtype), xp.astype(y, dtype))
        cores.append(xp.reshape(prod, (ra * rb, n, sa * sb)))
    return TTTensor(cores)


def tt_mode_product(t: TTTensor, u: Array, mode: int) -> TTTensor:
    """Mode product ``t x_mode u``: contract mode ``mode`` with the columns of ``u``.

    Parameters
    ----------
    t : TTTensor
    u : array, shape (J, n_mode)
        Matrix of ``t``'s array library.
    mode : int

    Returns
    -------
    TTTensor
        Same ranks; mode ``mode`` now has size ``J``.
    """
    t = _check_tt(t, "t")
    mode = check_mode(mode, t.order)
    u = check_array(u, "u", min_ndim=2)
    if u.ndim != 2 or int(u.shape[1]) != t.shape[mode]:
        raise ValueError(
            f"u must be a matrix with {t.shape[mode]} columns (size of mode {mode}), got shape "
            f"{tuple(u.shape)}"
        )
    xp, dtype = common_dtype([t.cores[0], u], "t's cores and u")
    cores = [xp.astype(c, dtype) for c in t.cores]
    cores[mode] = contract("jn,anb->ajb", xp.astype(u, dtype), cores[mode])
    return TTTensor(cores)


def tt_round(
    t: TTTensor, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
) -> TTTensor:
    """Recompress a TT to lower ranks (Oseledets' TT rounding).

    Right-to-left QR orthogonalization, then a left-to-right sweep of truncated
    SVDs with per-bond tolerance ``rtol * ||t|| / sqrt(d - 1)``, so that
    ``||t - result|| <= rtol * ||t||`` when no ``max_rank`` cap binds. Cost
    O(d n r^3); nothing is densified.

    Parameters
    ----------
    t : TTTensor
    rtol : float, optional
        Target relative Frobenius error. None drops only numerically zero
        singular values (exact up to round-off).
    max_rank : int or sequence of int, optional
        Cap per bond (one int, d - 1 ints, or a ``TTTensor.ranks`` tuple of d + 1 ints
        with 1 at both ends). With ``rtol`` too, the smaller rank wins.

    Returns
    -------
    TTTensor

    Raises
    ------
    TypeError, ValueError
        On a non-TT input or invalid ``rtol`` / ``max_rank``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd, tt_round
    >>> t = tt_svd(np.arange(24.0).reshape(2, 3, 4))
    >>> (t + t).ranks, tt_round(t + t).ranks
    ((1, 4, 4, 1), (1, 2, 2, 1))
    """
    t = _check_tt(t, "t")
    rtol = check_rtol(rtol)
    caps = check_tt_caps(max_rank, t.order)
    if t.order == 1:
        return t
    if any(_chunked.is_chunked(c) for c in t.cores):
        return _tt_round_chunked(t, rtol, caps)
    xp = B.namespace(t.cores[0])
    ortho = tt_orthogonalize(t, 0)
    cores = list(ortho.cores)
    total = float(B.norm(cores[0]))
    floor = chain_noise_floor(t.cores)
    if total <= floor:  # zero, or round-off of a cancelled sum such as t - t
        return _zeros_like_tt(t)
    tol = None if rtol is None else rtol * total / math.sqrt(t.order - 1)
    for k in range(t.order - 1):
        r, n, _ = cores[k].shape
        res = _truncated_svd(
            xp.reshape(cores[k], (r * n, -1)),
            tol=tol,
            cap=None if caps is None else caps[k],
            floor=floor,
        )
        cores[k] = xp.reshape(res.U, (r, n, -1))
        carry = res.s[:, None] * res.Vh
        cores[k + 1] = contract("ab,bnc->anc", xp.astype(carry, cores[k + 1].dtype), cores[k + 1])
    return TTTensor(cores)


def _tt_round_chunked(t: TTTensor, rtol: float | None, caps: Sequence[int] | None) -> TTTensor:
    """TT rounding of a TT whose cores are dask arrays (large mode sizes), out of core.

    Every factorization is a TSQR of one core's unfolding (:func:`tensornet._chunked.tsqr_r`:
    one pass over that core, only an ``r x r`` triangle comes back), so nothing squares
    the condition number: right to left, ``R_k = (U S) Q_k`` with ``Q_k = S^-1 U^H R_k``
    kept lazy (numerically zero ``s`` dropped); left to right, the SVD of the tall
    unfolding's ``R`` gives the truncation, ``G_k <- A V / s`` and ``s V^H`` moves right.
    The result's cores are lazy dask arrays (compute or store them as needed).
    """
    import dask.array as da

    d = t.order
    dtype = np.dtype(t.cores[0].dtype)
    eps = float(np.finfo(dtype).eps)
    cores: list[Any] = [
        c if _chunked.is_chunked(c) else da.from_array(np.asarray(c)) for c in t.cores
    ]

    def tall_r(core: Any) -> np.ndarray:
        """``R`` of the ``(r n, r')`` unfolding of ``core`` (the TSQR returns its conjugate)."""
        return np.conj(_chunked.tsqr_r(core, (2,)))

    # round-off level: d eps times a bound on ||t|| (as chain_noise_floor, left products)
    rs = [tall_r(c) for c in cores]
    norms = [float(np.linalg.norm(r, 2)) for r in rs[:-1]] + [float(np.linalg.norm(rs[-1]))]
    bound = 0.0 if min(norms) == 0.0 else math.exp(sum(math.log(n) for n in norms))
    floor = d * eps * bound
    for k in range(d - 1, 0, -1):  # right to left: R_k = (U S) Q_k
        r_factor = _chunked.tsqr_r(cores[k], (0,))  # A^H = Q' R' for A = R_k
        u, s, _ = np.linalg.svd(r_factor.conj().T, full_matrices=False)
        keep = max(int(np.sum(s > floor)), 1)
        u, s = u[:, :keep], s[:keep]
        left = (u / np.where(s > 0, s, 1.0)).conj().T
        cores[k] = da.tensordot(left.astype(cores[k].dtype), cores[k], axes=([1], [0]))
        right = (u * s).astype(cores[k - 1].dtype)
        cores[k - 1] = da.tensordot(cores[k - 1], right, axes=([2], [0]))
    r_next = tall_r(cores[0])
    total = float(np.linalg.norm(r_next))
    if total <= floor:  # zero, or round-off of a cancelled sum such as t - t
        return TTTensor([da.zeros((1, n, 1), dtype=dtype) for n in t.shape])
    tol = None if rtol is None else rtol * total / math.sqrt(d - 1)
    for k in range(d - 1):  # left to right: truncated SVD of the tall unfolding
        r, n, r2 = (int(m) for m in cores[k].shape)
        _, s, vh = np.linalg.svd(r_next if k == 0 else tall_r(cores[k]), full_matrices=False)
        rank, _ = _choose_rank(
            s, 0.0, (r * n, r2), eps, tol, None if caps is None else caps[k], floor
        )
        v = vh[:rank].conj().T
        cores[k] = da.tensordot(cores[k], (v / s[:rank]).astype(cores[k].dtype), axes=([2], [0]))
        carry = (s[:rank, None] * vh[:rank]).astype(cores[k + 1].dtype)
        cores[k + 1] = da.tensordot(carry, cores[k + 1], axes=([1], [0]))
    return TTTensor(cores)


def chain_noise_floor(cores: Sequence[Array]) -> float:
    """Round-off level of a chain of cores: ``d * eps * B`` with ``B`` a bound on its norm.

    With ``L_k = reshape(G_k, (r_k n_k, r_{k+1}))`` the partial products satisfy
    ``||X||_F <= prod_{k<d-1} ||L_k||_2 * ||L_{d-1}||_F``, and the mirror bound holds with
    ``R_k = reshape(G_k, (r_k, n_k r_{k+1}))`` from the right; ``B`` is the smaller one.
    Orthogonalization and SVD errors live at ``eps * B``, so content below the floor
    cannot be resolved; for a left- or right-orthogonalized train ``B == ||X||``. (Products
    of Frobenius norms would overestimate by up to ``prod_k sqrt(r_k)``.) Computed in log
    space so that long chains neither overflow nor underflow; 0 if a core is zero.
    """
    xp = B.namespace(cores[0])
    d = len(cores)

    def log_bound(mats: list[Array]) -> float:
        norms = [float(xp.linalg.svdvals(m)[0]) for m in mats[:-1]] + [float(B.norm(mats[-1]))]
        return -math.inf if min(norms) == 0.0 else sum(math.log(n) for n in norms)

    shapes = [tuple(int(n) for n in c.shape) for c in cores]
    left = [xp.reshape(c, (r * n, s)) for c, (r, n, s) in zip(cores, shapes)]
    right = [xp.reshape(c, (r, n * s)) for c, (r, n, s) in zip(cores, shapes)][::-1]
    log_b = min(log_bound(left), log_bound(right))
    if log_b == -math.inf:
        return 0.0
    return math.exp(min(math.log(d * B.eps(cores[0])) + log_b, 700.0))


def _zeros_like_tt(t: TTTensor) -> TTTensor:
    xp = B.namespace(t.cores[0])
    return TTTensor([xp.zeros((1, n, 1), dtype=t.dtype, device=t.device) for n in t.shape])
