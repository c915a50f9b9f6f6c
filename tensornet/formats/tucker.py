"""Tucker format and its native algebra.

Layout: ``core.shape == ranks`` and ``factors[k].shape == (n_k, r_k)``, so that::

    X = core x_0 F_0 x_1 F_1 ... x_{d-1} F_{d-1}, i.e.
    X[i_0, ..., i_{d-1}] = sum_j core[j_0, ..., j_{d-1}] F_0[i_0, j_0] ... F_{d-1}[i_{d-1}, j_{d-1}]

A *partial* Tucker leaves some modes unfactored: ``factors[k] is None`` means the
identity (``r_k == n_k``, the core carries mode ``k`` as it is). :attr:`TuckerTensor.modes`
lists the factored modes; Tucker-2 of a conv kernel ``(T, S, kh, kw)`` has
``modes == (0, 1)``. Factors need not be orthonormal (decompositions return
orthonormal ones; sums and mode products do not keep them so). Nothing here densifies
the tensor unless its name says so (``to_dense``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import opt_einsum

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import (
    _describe,
    check_array,
    check_int,
    check_max_rank,
    check_mode,
    check_rtol,
    check_same_namespace,
)
from tensornet.contract import contract
from tensornet.formats._base import TensorFormat, check_scalar, common_dtype, dtype_name
from tensornet.formats.tt import TTTensor, tt_round
from tensornet.linalg import qr

__all__ = [
    "TuckerTensor",
    "tucker_add",
    "tucker_mode_product",
    "tucker_norm",
    "tucker_scale",
    "tucker_to_dense",
    "tucker_to_tt",
]


# -- einsum and mode-product helpers (shared with cp.py and the decompositions) -------------------
def einsum_symbols(count: int, start: int = 0) -> str:
    """``count`` distinct einsum letters, starting at letter number ``start``."""
    return "".join(opt_einsum.get_symbol(i) for i in range(start, start + count))


def multi_mode_product(x: Array, factors: Sequence[Array | None], *, adjoint: bool) -> Array:
    """Apply one matrix per mode of ``x`` in a single cached contraction.

    ``adjoint=False``: ``x x_k F_k`` for ``F_k`` of shape ``(n_k, r_k)`` (mode ``k`` of ``x``
    has size ``r_k`` and becomes ``n_k``). ``adjoint=True``: ``x x_k F_k^H`` (mode size
    ``n_k`` becomes ``r_k``). ``None`` entries leave their mode unchanged.
    """
    d = x.ndim
    inner = einsum_symbols(d)
    outer = einsum_symbols(d, start=d)
    terms = [inner]
    operands = [x]
    out = []
    for k, f in enumerate(factors):
        if f is None:
            out.append(inner[k])
            continue
        terms.append(inner[k] + outer[k] if adjoint else outer[k] + inner[k])
        operands.append(B.conj(f) if adjoint else f)
        out.append(outer[k])
    if len(operands) == 1:
        return x
    return contract(",".join(terms) + "->" + "".join(out), *operands)


def unfold(x: Array, mode: int) -> Array:
    """Mode-``mode`` unfolding ``(n_mode, prod(other sizes))``, other modes in C order."""
    xp = B.namespace(x)
    return xp.reshape(xp.moveaxis(x, mode, 0), (int(x.shape[mode]), -1))


def fold(mat: Array, mode: int, shape: Sequence[int]) -> Array:
    """Inverse of :func:`unfold`: ``mat`` of shape ``(shape[mode], rest)`` back to ``shape``."""
    xp = B.namespace(mat)
    others = [int(n) for k, n in enumerate(shape) if k != mode]
    return xp.moveaxis(xp.reshape(mat, (int(shape[mode]), *others)), 0, mode)


# -- argument parsing shared by the Tucker decompositions and random_tucker -----------------------
def check_modes(modes: object, order: int, name: str = "modes") -> tuple[int, ...]:
    """Validate the factored modes: None (all), an int, or distinct mode indices.

    Returns the modes non-negative, in the order given.
    """
    if modes is None:
        return tuple(range(order))
    if isinstance(modes, numbers.Integral) and not isinstance(modes, bool):
        values: tuple[int, ...] = (check_mode(modes, order, name),)
    elif isinstance(modes, Sequence) and not isinstance(modes, (str, bytes)):
        values = tuple(check_mode(m, order, f"{name}[{i}]") for i, m in enumerate(modes))
    else:
        raise TypeError(
            f"{name} must be None, an int or a sequence of ints, got {_describe(modes)}"
        )
    if not values:
        raise ValueError(f"{name} must name at least one mode, got an empty sequence")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a mode, got {values}")
    return values


def check_tucker_ranks(
    ranks: object, modes: Sequence[int], shape: Sequence[int], name: str = "ranks"
) -> dict[int, int]:
    """Parse Tucker ranks into ``{mode: rank}`` over the factored ``modes``.

    Accepted: one int (every factored mode); a sequence of ``len(modes)`` ints, read
    in the order of ``modes``; or, when ``len(modes) < len(shape)``, the full core
    shape (as :attr:`TuckerTensor.ranks`) whose entries for unfactored modes must
    equal the mode sizes.
    """
    d = len(shape)
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        return dict.fromkeys(modes, check_int(ranks, name, minimum=1))
    if B.is_array(ranks):
        host = np.asarray(B.to_numpy(ranks))
        if host.ndim == 0:
            return dict.fromkeys(modes, check_int(host.item(), name, minimum=1))
        ranks = host.ravel().tolist()
    if isinstance(ranks, Sequence) and not isinstance(ranks, (str, bytes)):
        values = tuple(check_int(r, f"{name}[{i}]", minimum=1) for i, r in enumerate(ranks))
        if len(values) == len(modes):
            return dict(zip(modes, values))
        if len(values) == d:
            for k in range(d):
                if k not in modes and values[k] != shape[k]:
                    raise ValueError(
                        f"{name} given as the full core shape (length {d}) must have "
                        f"{name}[{k}] == {shape[k]} (mode {k} is not factored), got {values[k]}"
                    )
            return {k: values[k] for k in modes}
        raise ValueError(
            f"{name} must be an int, {len(modes)} ints (one per factored mode {tuple(modes)}) "
            f"or the full core shape of length {d}; got a sequence of length {len(values)}"
        )
    if isinstance(ranks, (str, bytes)) or ranks is None:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {_describe(ranks)}")
    value = check_int(ranks, name, minimum=1)
    return dict.fromkeys(modes, value)


# -- the container --------------------------------------------------------------------------------
def _check_core_and_factors(core: Any, factors: Any) -> tuple[Array, tuple[Array | None, ...]]:
    if not B.is_array(core):
        raise TypeError(f"core must be an array, got {_describe(core)}")
    xp = B.namespace(core)
    if not xp.isdtype(core.dtype, ("real floating", "complex floating")):
        raise TypeError(f"core must have a floating dtype, got {core.dtype}")
    if core.ndim < 1:
        raise ValueError(f"core must have at least 1 dimension, got shape {tuple(core.shape)}")
    if any(int(n) == 0 for n in core.shape):
        raise ValueError(f"core must not have empty dimensions, got shape {tuple(core.shape)}")
    if (
        B.is_array(factors)
        or not isinstance(factors, Sequence)
        or isinstance(factors, (str, bytes))
    ):
        raise TypeError(
            f"factors must be a sequence of arrays or None (one per mode), got "
            f"{type(factors).__name__}"
        )
    if len(factors) != core.ndim:
        raise ValueError(
            f"factors must have one entry per mode of core ({core.ndim}), got {len(factors)}"
        )
    checked: list[Array | None] = []
    for k, f in enumerate(factors):
        if f is None:
            checked.append(None)
            continue
        if not B.is_array(f):
            raise TypeError(f"factors[{k}] must be an array or None, got {type(f).__name__}")
        rank = int(core.shape[k])
        if f.ndim != 2 or int(f.shape[1]) != rank or int(f.shape[0]) == 0:
            raise ValueError(
                f"factors[{k}] must have shape (n_{k}, {rank}) (core.shape[{k}] == {rank}), got "
                f"shape {tuple(f.shape)}"
            )
        checked.append(f)
    check_same_namespace([core, *(f for f in checked if f is not None)], "core and factors")
    return core, tuple(checked)


@dataclass(frozen=True, eq=False, repr=False)
class TuckerTensor(TensorFormat):
    """A tensor in (possibly partial) Tucker format.

    Parameters
    ----------
    core : array, shape (r_0, ..., r_{d-1})
        The core tensor.
    factors : sequence of arrays or None
        One entry per mode: ``factors[k]`` of shape ``(n_k, r_k)``, or ``None`` for a mode
        that is not factored (identity: ``n_k == r_k``). Core and factors share one array
        library, dtype and device.

    Attributes
    ----------
    core : array
    factors : tuple of (array or None)
    shape : tuple of int
        ``(n_0, ..., n_{d-1})``.
    ranks : tuple of int
        ``core.shape`` (for an unfactored mode, ``r_k == n_k``).
    modes : tuple of int
        The factored modes, ascending.

    Raises
    ------
    TypeError
        If ``core`` or a factor is not a floating array, or they mix libraries or dtypes.
    ValueError
        If ``factors`` does not have one entry per mode or a factor's shape does not
        match the core.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tucker import TuckerTensor
    >>> t = TuckerTensor(np.ones((2, 3, 4)), [np.ones((5, 2)), None, np.ones((6, 4))])
    >>> t
    TuckerTensor(shape=(5, 3, 6), ranks=(2, 3, 4), modes=(0, 2), dtype=float64, num_params=58)
    >>> float(t.to_dense()[0, 0, 0])
    8.0
    """

    core: Array
    factors: Sequence[Array | None]  # stored as a tuple

    def __post_init__(self) -> None:
        _, factors = _check_core_and_factors(self.core, self.factors)
        object.__setattr__(self, "factors", factors)

    # -- summary properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(
            int(r) if f is None else int(f.shape[0]) for r, f in zip(self.core.shape, self.factors)
        )

    @property
    def ranks(self) -> tuple[int, ...]:
        """Multilinear ranks, ``core.shape`` (``n_k`` for an unfactored mode)."""
        return tuple(int(r) for r in self.core.shape)

    @property
    def modes(self) -> tuple[int, ...]:
        """The factored modes (those with a factor matrix), ascending."""
        return tuple(k for k, f in enumerate(self.factors) if f is not None)

    @property
    def num_params(self) -> int:
        """Entries of the core plus entries of the factors."""
        return math.prod(self.ranks) + sum(
            int(f.shape[0]) * int(f.shape[1]) for f in self.factors if f is not None
        )

    @property
    def dtype(self) -> Any:
        """Dtype of the core and factors."""
        return self.core.dtype

    @property
    def device(self) -> Any:
        """Device of the core and factors."""
        return B.device(self.core)

    def __repr__(self) -> str:
        return (
            f"TuckerTensor(shape={self.shape}, ranks={self.ranks}, modes={self.modes}, "
            f"dtype={dtype_name(self.dtype)}, num_params={self.num_params})"
        )

    # -- delegating methods -------------------------------------------------------------
    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries)."""
        return tucker_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying."""
        return tucker_norm(self)

    def _add(self, other: Any) -> TuckerTensor:
        return tucker_add(self, other)

    def _scale(self, alpha: Any) -> TuckerTensor:
        return tucker_scale(self, alpha)


def _check_tucker(t: object, name: str) -> TuckerTensor:
    if not isinstance(t, TuckerTensor):
        raise TypeError(f"{name} must be a TuckerTensor, got {type(t).__name__}")
    return t


# -- dense conversion, norm, algebra ---------------------------------------------------------------
def tucker_to_dense(t: TuckerTensor) -> Array:
    """Multiply the core by every factor: the full tensor of shape ``t.shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tucker import TuckerTensor, tucker_to_dense
    >>> tucker_to_dense(TuckerTensor(np.ones((1, 2)), [np.ones((3, 1)), None])).shape
    (3, 2)
    """
    t = _check_tucker(t, "t")
    return multi_mode_product(t.core, t.factors, adjoint=False)


def _orthonormalized(t: TuckerTensor) -> TuckerTensor:
    """Same tensor with orthonormal factors: ``F_k = Q_k R_k``, core ``x_k R_k``.

    A mode whose factor has more columns than rows shrinks to ``n_k``.
    """
    qs: list[Array | None] = []
    rs: list[Array | None] = []
    for f in t.factors:
        if f is None:
            qs.append(None)
            rs.append(None)
        else:
            q, r = qr(f)
            qs.append(q)
            rs.append(r)
    return TuckerTensor(multi_mode_product(t.core, rs, adjoint=False), qs)


def tucker_norm(t: TuckerTensor) -> Array:
    """Frobenius norm without densifying.

    Each factor is QR-factored, ``F_k = Q_k R_k``; orthonormal ``Q_k`` preserve the
    norm, so ``||t|| = ||core x_k R_k||``. Cost ``O(sum_k n_k r_k^2 + prod(r) sum_k r_k)``.
    Unlike the Gram-matrix formula ``<core, core x_k F_k^H F_k>``, this has no
    cancellation: the norm of ``t - t`` comes out at round-off of ``||t||``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tucker import TuckerTensor, tucker_norm
    >>> t = TuckerTensor(np.ones((2, 2)), [np.ones((3, 2)), np.eye(2)])
    >>> bool(np.isclose(tucker_norm(t), np.linalg.norm(t.to_dense())))
    True
    """
    t = _check_tucker(t, "t")
    return B.norm(_orthonormalized(t).core)


def tucker_scale(t: TuckerTensor, alpha: Any) -> TuckerTensor:
    """Multiply ``t`` by the scalar ``alpha`` (scales the core)."""
    t = _check_tucker(t, "t")
    alpha = check_scalar(alpha)
    xp = B.namespace(t.core)
    core = t.core * alpha  # may promote (complex alpha, float64 scalar on float32)
    return TuckerTensor(core, [None if f is None else xp.astype(f, core.dtype) for f in t.factors])


def _pad(
    xp: Any, x: Array, modes: Sequence[int], before: Sequence[int], after: Sequence[int]
) -> Array:
    """Zero-pad ``x`` on the given modes (``before[i]`` / ``after[i]`` entries)."""
    for k, lo, hi in zip(modes, before, after):
        parts = []
        if lo:
            shape = list(x.shape)
            shape[k] = lo
            parts.append(xp.zeros(tuple(shape), dtype=x.dtype, device=B.device(x)))
        parts.append(x)
        if hi:
            shape = list(x.shape)
            shape[k] = hi
            parts.append(xp.zeros(tuple(shape), dtype=x.dtype, device=B.device(x)))
        x = xp.concat(parts, axis=k) if len(parts) > 1 else x
    return x


def tucker_add(a: TuckerTensor, b: TuckerTensor) -> TuckerTensor:
    """Sum of two Tucker tensors of the same shape, without densifying.

    The factored modes of the result are those of ``a`` or ``b``; there the factors
    are concatenated, ``[F_a, F_b]`` (a mode factored in only one of them takes the
    identity for the other), and the core is block diagonal, ranks ``r_a + r_b``.
    Modes factored in neither keep their size, and the two cores overlap there.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tucker import TuckerTensor, tucker_add
    >>> t = TuckerTensor(np.ones((1, 2)), [np.ones((3, 1)), None])
    >>> s = tucker_add(t, t)
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * t.to_dense()))
    ((2, 2), True)
    """
    a = _check_tucker(a, "a")
    b = _check_tucker(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    xp, dtype = common_dtype([a.core, b.core], "cores of a and b")
    dev = B.device(a.core)
    modes = tuple(k for k in range(a.order) if a.factors[k] is not None or b.factors[k] is not None)

    def factor(t: TuckerTensor, k: int) -> Array:
        f = t.factors[k]
        if f is None:
            return xp.eye(t.shape[k], dtype=dtype, device=dev)
        return xp.astype(f, dtype)

    ra = [a.ranks[k] for k in modes]
    rb = [b.ranks[k] for k in modes]
    core = _pad(xp, xp.astype(a.core, dtype), modes, [0] * len(modes), rb) + _pad(
        xp, xp.astype(b.core, dtype), modes, ra, [0] * len(modes)
    )
    factors: list[Array | None] = [None] * a.order
    for k in modes:
        factors[k] = xp.concat([factor(a, k), factor(b, k)], axis=1)
    return TuckerTensor(core, factors)


def tucker_mode_product(t: TuckerTensor, u: Array, mode: int) -> TuckerTensor:
    """Mode product ``t x_mode u``: contract mode ``mode`` with the columns of ``u``.

    Only the factor changes (``u @ F_mode``; an unfactored mode gets ``u`` as its
    factor), so the cost is that of one small matrix product.

    Parameters
    ----------
    t : TuckerTensor
    u : array, shape (J, n_mode)
        Matrix of ``t``'s array library.
    mode : int

    Returns
    -------
    TuckerTensor
        Same core; mode ``mode`` now has size ``J`` and is factored.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tucker import TuckerTensor, tucker_mode_product
    >>> t = TuckerTensor(np.ones((2, 2)), [np.ones((3, 2)), None])
    >>> tucker_mode_product(t, np.ones((5, 2)), 1).shape
    (3, 5)
    """
    t = _check_tucker(t, "t")
    mode = check_mode(mode, t.order)
    u = check_array(u, "u", min_ndim=2)
    if u.ndim != 2 or int(u.shape[1]) != t.shape[mode]:
        raise ValueError(
            f"u must be a matrix with {t.shape[mode]} columns (size of mode {mode}), got shape "
            f"{tuple(u.shape)}"
        )
    xp, dtype = common_dtype([t.core, u], "t's core and u")
    f = t.factors[mode]
    u = xp.astype(u, dtype)
    factors = [None if g is None else xp.astype(g, dtype) for g in t.factors]
    factors[mode] = u if f is None else u @ xp.astype(f, dtype)
    return TuckerTensor(xp.astype(t.core, dtype), factors)


def tucker_to_tt(
    t: TuckerTensor, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
) -> TTTensor:
    """Convert a Tucker tensor to tensor-train format without densifying it.

    The factors are orthonormalized (QR, ``F_k = Q_k R_k``, ``R_k`` absorbed into the
    core); the core is written exactly as a TT by a left-to-right QR sweep and rounded
    with :func:`tensornet.tt_round` (``rtol``, ``max_rank``); then each ``Q_k`` is
    absorbed into its TT core by a mode product. Because the ``Q_k`` are orthonormal,
    ``||t - result|| = ||core' - TT(core')||``, so ``rtol`` bounds the error relative to
    ``||t||`` exactly as in :func:`tensornet.tt_round`. Cost: ``O(prod(ranks) * r)`` for
    the core plus ``O(sum_k n_k r_k^2)`` for the factors; nothing of size ``prod(shape)``.

    Parameters
    ----------
    t : TuckerTensor
    rtol : float, optional
        Target relative Frobenius error. None: exact up to round-off (numerically zero
        singular values are dropped).
    max_rank : int or sequence of int, optional
        Cap on every TT bond (or on each of the ``d - 1`` bonds); with ``rtol`` the
        smaller rank wins.

    Returns
    -------
    TTTensor
        Shape ``t.shape``; bond ``k`` at most the rank of the core's unfolding.

    Raises
    ------
    TypeError, ValueError
        On a non-Tucker input or invalid ``rtol`` / ``max_rank``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tucker import TuckerTensor, tucker_to_tt
    >>> rng = np.random.default_rng(0)
    >>> t = TuckerTensor(rng.standard_normal((2, 3, 2)),
    ...                  [rng.standard_normal((5, 2)), None, rng.standard_normal((4, 2))])
    >>> tt = tucker_to_tt(t)
    >>> tt.ranks, bool(np.allclose(tt.to_dense(), t.to_dense()))
    ((1, 2, 2, 1), True)
    """
    t = _check_tucker(t, "t")
    rtol = check_rtol(rtol)
    check_max_rank(max_rank, t.order - 1)
    ortho = _orthonormalized(t)
    train = tt_round(_dense_to_tt(ortho.core), rtol=rtol, max_rank=max_rank)
    cores = list(train.cores)
    for k, q in enumerate(ortho.factors):
        if q is not None:
            cores[k] = contract("nr,arb->anb", q, cores[k])
    return TTTensor(cores)


def _dense_to_tt(x: Array) -> TTTensor:
    """Exact (unrounded) TT of a small dense tensor by a left-to-right QR sweep."""
    xp = B.namespace(x)
    shape = tuple(int(n) for n in x.shape)
    cores = []
    rest = x
    rank = 1
    for k in range(len(shape) - 1):
        q, r = qr(xp.reshape(rest, (rank * shape[k], -1)))
        new_rank = int(q.shape[1])
        cores.append(xp.reshape(q, (rank, shape[k], new_rank)))
        rest, rank = r, new_rank
    cores.append(xp.reshape(rest, (rank, shape[-1], 1)))
    return TTTensor(cores)
