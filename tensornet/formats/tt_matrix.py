"""TT-matrix (matrix product operator) format and its native algebra.

Layout: ``cores[k].shape == (r_k, m_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``, so that::

    A[(i_0, ..., i_{d-1}), (j_0, ..., j_{d-1})]
        = G_0[:, i_0, j_0, :] @ G_1[:, i_1, j_1, :] @ ... @ G_{d-1}[:, i_{d-1}, j_{d-1}, :]

where the row index of the ``(M, N) = (prod(m_k), prod(n_k))`` matrix is the C-order
multi-index of ``(i_0, ..., i_{d-1})`` and the column index that of ``(j_0, ..., j_{d-1})``.

A TT-matrix is a TT whose mode ``k`` is the pair ``(i_k, j_k)`` merged in C order
(size ``m_k * n_k``): :func:`ttm_to_tt` and :func:`tt_to_ttm` switch between the two
views by reshaping the cores, and norms, sums and rounding reuse the TT algorithms.
No operation here densifies the matrix unless its name says so (``to_dense``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_array, check_shape
from tensornet.contract import contract
from tensornet.formats._base import (
    CoreSequenceFormat,
    TensorFormat,
    check_scalar,
    common_dtype,
    dtype_name,
)
from tensornet.formats.tt import (
    TTTensor,
    _check_cores,
    check_bonds,
    tt_add,
    tt_inner,
    tt_norm,
    tt_round,
)

__all__ = [
    "TTMatrix",
    "tt_to_ttm",
    "ttm_add",
    "ttm_inner",
    "ttm_matmul",
    "ttm_matvec",
    "ttm_norm",
    "ttm_round",
    "ttm_scale",
    "ttm_to_dense",
    "ttm_to_tt",
    "ttm_transpose",
]


@dataclass(frozen=True, eq=False, repr=False)
class TTMatrix(CoreSequenceFormat):
    """A matrix in TT-matrix (matrix product operator) format.

    Parameters
    ----------
    cores : sequence of arrays
        ``cores[k]`` has shape ``(r_k, m_k, n_k, r_{k+1})`` with ``r_0 = r_d = 1``
        (``m_k``: row mode, ``n_k``: column mode); all cores share one array
        library, dtype and device.

    Attributes
    ----------
    cores : tuple of arrays
    row_shape : tuple of int
        ``(m_0, ..., m_{d-1})``.
    col_shape : tuple of int
        ``(n_0, ..., n_{d-1})``.
    shape : tuple of int
        The matrix shape ``(prod(row_shape), prod(col_shape))``.
    ranks : tuple of int
        ``(1, r_1, ..., r_{d-1}, 1)``.

    Raises
    ------
    TypeError
        If ``cores`` is not a sequence of floating arrays of one library and dtype.
    ValueError
        If a core is not 4-d, has an empty dimension, or neighbouring bonds disagree.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix
    >>> a = TTMatrix([np.ones((1, 2, 3, 2)), np.ones((2, 4, 5, 1))])
    >>> a
    TTMatrix(row_shape=(2, 4), col_shape=(3, 5), ranks=(1, 2, 1), dtype=float64, num_params=52)
    >>> a.shape, a.order
    ((8, 15), 2)
    >>> float(a.to_dense()[0, 0])
    2.0
    """

    cores: Sequence[Array]  # stored as a tuple

    def __post_init__(self) -> None:
        cores = _check_cores(self.cores, 4, "cores")
        check_bonds(cores, "cores", ring=False)
        object.__setattr__(self, "cores", cores)

    # -- summary properties -------------------------------------------------------------
    @property
    def row_shape(self) -> tuple[int, ...]:
        """Row mode sizes ``(m_0, ..., m_{d-1})``."""
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def col_shape(self) -> tuple[int, ...]:
        """Column mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(int(c.shape[2]) for c in self.cores)

    @property
    def shape(self) -> tuple[int, int]:  # type: ignore[override]
        """Matrix shape ``(prod(row_shape), prod(col_shape))``."""
        return (math.prod(self.row_shape), math.prod(self.col_shape))

    @property
    def order(self) -> int:
        """Number of cores ``d`` (not the 2 of the matrix shape)."""
        return len(self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Bond sizes ``(1, r_1, ..., r_{d-1}, 1)``."""
        return (1, *(int(c.shape[3]) for c in self.cores))

    def __repr__(self) -> str:
        return (
            f"TTMatrix(row_shape={self.row_shape}, col_shape={self.col_shape}, "
            f"ranks={self.ranks}, dtype={dtype_name(self.dtype)}, num_params={self.num_params})"
        )

    # -- delegating methods -------------------------------------------------------------
    def to_dense(self) -> Array:
        """The full ``(M, N)`` matrix (allocates ``M * N`` entries)."""
        return ttm_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying."""
        return ttm_norm(self)

    def round(
        self, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
    ) -> TTMatrix:
        """Recompress; see :func:`ttm_round`."""
        return ttm_round(self, rtol=rtol, max_rank=max_rank)

    @property
    def T(self) -> TTMatrix:
        """Transpose (row and column modes swapped); see :func:`ttm_transpose`."""
        return ttm_transpose(self)

    def __matmul__(self, other: object) -> Any:
        if isinstance(other, TTMatrix):
            return ttm_matmul(self, other)
        if isinstance(other, TTTensor) or B.is_array(other):
            return ttm_matvec(self, other)
        return NotImplemented

    def _add(self, other: Any) -> TTMatrix:
        return ttm_add(self, other)

    def _scale(self, alpha: Any) -> TTMatrix:
        return ttm_scale(self, alpha)


def _astype(xp: Any, x: Array, dtype: Any) -> Array:
    """``x`` as ``dtype``, without a copy when it already has it."""
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _check_ttm(t: object, name: str) -> TTMatrix:
    if not isinstance(t, TTMatrix):
        raise TypeError(f"{name} must be a TTMatrix, got {type(t).__name__}")
    return t


# -- views and dense conversion ----------------------------------------------------------------
def ttm_to_tt(t: TTMatrix) -> TTTensor:
    """View a TT-matrix as a TT whose mode ``k`` merges ``(m_k, n_k)`` in C order.

    Parameters
    ----------
    t : TTMatrix
        Cores ``(r_k, m_k, n_k, r_{k+1})``.

    Returns
    -------
    TTTensor
        Cores ``(r_k, m_k * n_k, r_{k+1})``; entry ``i_k * n_k + j_k`` of mode ``k``
        is ``(i_k, j_k)``. Same ranks, no arithmetic.

    Raises
    ------
    TypeError
        If ``t`` is not a TTMatrix.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_to_tt
    >>> ttm_to_tt(TTMatrix([np.ones((1, 2, 3, 2)), np.ones((2, 4, 5, 1))])).shape
    (6, 20)
    """
    t = _check_ttm(t, "t")
    xp = B.namespace(t.cores[0])
    return TTTensor(tuple(xp.reshape(c, (int(c.shape[0]), -1, int(c.shape[3]))) for c in t.cores))


def tt_to_ttm(t: TTTensor, row_shape: Sequence[int], col_shape: Sequence[int]) -> TTMatrix:
    """Split each mode ``k`` of a TT into the pair ``(m_k, n_k)`` (C order): a TT-matrix.

    Inverse of :func:`ttm_to_tt`.

    Parameters
    ----------
    t : TTTensor
        Cores ``(r_k, m_k * n_k, r_{k+1})``.
    row_shape : sequence of int
        ``(m_0, ..., m_{d-1})``, one entry per mode of ``t``.
    col_shape : sequence of int
        ``(n_0, ..., n_{d-1})``, with ``row_shape[k] * col_shape[k] == t.shape[k]``.

    Returns
    -------
    TTMatrix
        Cores ``(r_k, m_k, n_k, r_{k+1})``, same ranks.

    Raises
    ------
    TypeError
        If ``t`` is not a TTTensor or a shape is not a sequence of ints.
    ValueError
        If the lengths of ``row_shape``/``col_shape`` differ from ``t.order`` or
        ``row_shape[k] * col_shape[k] != t.shape[k]``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import TTTensor
    >>> from tensornet.formats.tt_matrix import tt_to_ttm
    >>> t = TTTensor([np.ones((1, 6, 2)), np.ones((2, 20, 1))])
    >>> tt_to_ttm(t, (2, 4), (3, 5)).shape
    (8, 15)
    """
    if not isinstance(t, TTTensor):
        raise TypeError(f"t must be a TTTensor, got {type(t).__name__}")
    rows = check_shape(row_shape, "row_shape")
    cols = check_shape(col_shape, "col_shape")
    for name, dims in (("row_shape", rows), ("col_shape", cols)):
        if len(dims) != t.order:
            raise ValueError(
                f"{name} must have one entry per mode of t ({t.order}), got {name}={dims}"
            )
    merged = tuple(m * n for m, n in zip(rows, cols, strict=True))
    if merged != t.shape:
        raise ValueError(
            f"row_shape[k] * col_shape[k] must equal t.shape[k] for every mode k; got "
            f"row_shape={rows}, col_shape={cols} (products {merged}) for t.shape={t.shape}"
        )
    xp = B.namespace(t.cores[0])
    return TTMatrix(
        tuple(
            xp.reshape(c, (int(c.shape[0]), m, n, int(c.shape[2])))
            for c, m, n in zip(t.cores, rows, cols, strict=True)
        )
    )


def ttm_to_dense(t: TTMatrix) -> Array:
    """Contract a TT-matrix into the full ``(M, N)`` matrix.

    Row ``i`` is the C-order multi-index of ``(i_0, ..., i_{d-1})`` over ``row_shape``,
    column ``j`` likewise over ``col_shape``.

    Parameters
    ----------
    t : TTMatrix

    Returns
    -------
    array, shape (prod(row_shape), prod(col_shape))
        Of the cores' array type, dtype and device.

    Raises
    ------
    TypeError
        If ``t`` is not a TTMatrix.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_to_dense
    >>> eye = np.eye(2).reshape(1, 2, 2, 1)
    >>> ttm_to_dense(TTMatrix([eye, eye, eye])).shape
    (8, 8)
    >>> bool(np.array_equal(ttm_to_dense(TTMatrix([eye, eye, eye])), np.eye(8)))
    True
    """
    t = _check_ttm(t, "t")
    xp = B.namespace(t.cores[0])
    # result[(rows so far), (cols so far), bond]: rows and columns grow in C order.
    result = xp.reshape(t.cores[0], t.cores[0].shape[1:])
    for core in t.cores[1:]:
        p, q, _ = result.shape
        _, m, n, s = core.shape
        result = xp.reshape(contract("pqr,rmns->pmqns", result, core), (p * m, q * n, s))
    return xp.reshape(result, t.shape)


# -- norms and linear combinations -------------------------------------------------------------
def ttm_inner(a: TTMatrix, b: TTMatrix) -> Array:
    """Frobenius inner product ``<a, b> = sum(conj(a) * b)`` without densifying.

    Parameters
    ----------
    a, b : TTMatrix
        Same ``row_shape`` and ``col_shape``.

    Returns
    -------
    array, shape ()
        0-d array of the cores' library.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a TTMatrix.
    ValueError
        If their row or column shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_inner
    >>> a = TTMatrix([np.ones((1, 2, 3, 1))])
    >>> float(ttm_inner(a, 2 * a))
    12.0
    """
    a = _check_ttm(a, "a")
    b = _check_ttm(b, "b")
    _check_same_shapes(a, b)
    return tt_inner(ttm_to_tt(a), ttm_to_tt(b))


def ttm_norm(t: TTMatrix) -> Array:
    """Frobenius norm, from the merged-mode TT view (never densifies).

    Parameters
    ----------
    t : TTMatrix

    Returns
    -------
    array, shape ()
        Real 0-d array of the cores' library.

    Raises
    ------
    TypeError
        If ``t`` is not a TTMatrix.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_norm
    >>> eye = np.eye(3).reshape(1, 3, 3, 1)
    >>> bool(np.isclose(ttm_norm(TTMatrix([eye, eye])), 3.0))
    True
    """
    t = _check_ttm(t, "t")
    return tt_norm(ttm_to_tt(t))


def _check_same_shapes(a: TTMatrix, b: TTMatrix) -> None:
    if a.row_shape != b.row_shape or a.col_shape != b.col_shape:
        raise ValueError(
            "a and b must have the same row_shape and col_shape, got "
            f"a: {a.row_shape} x {a.col_shape} and b: {b.row_shape} x {b.col_shape}"
        )


def ttm_add(a: TTMatrix, b: TTMatrix) -> TTMatrix:
    """Sum of two TT-matrices of the same row and column shapes; ranks add.

    Round afterwards with :func:`ttm_round` to recompress.

    Parameters
    ----------
    a, b : TTMatrix
        Same ``row_shape`` and ``col_shape``; one array library and device (dtypes
        are promoted).

    Returns
    -------
    TTMatrix
        Ranks ``(1, a.ranks[1] + b.ranks[1], ..., 1)``.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a TTMatrix or they mix array libraries.
    ValueError
        If their row or column shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_add
    >>> eye = np.eye(2).reshape(1, 2, 2, 1)
    >>> s = ttm_add(TTMatrix([eye, eye]), TTMatrix([eye, eye]))
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * np.eye(4)))
    ((1, 2, 1), True)
    """
    a = _check_ttm(a, "a")
    b = _check_ttm(b, "b")
    _check_same_shapes(a, b)
    return tt_to_ttm(tt_add(ttm_to_tt(a), ttm_to_tt(b)), a.row_shape, a.col_shape)


def ttm_scale(t: TTMatrix, alpha: Any) -> TTMatrix:
    """Multiply ``t`` by the scalar ``alpha`` (scales the first core).

    The result dtype is the promotion of ``t.dtype`` with ``alpha`` (a complex
    ``alpha`` makes a real TT-matrix complex; Python floats keep float32 as float32).

    Parameters
    ----------
    t : TTMatrix
    alpha : number or 0-d array

    Returns
    -------
    TTMatrix
        Same ranks.

    Raises
    ------
    TypeError
        If ``t`` is not a TTMatrix or ``alpha`` is not a scalar.
    ValueError
        If ``alpha`` is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_scale
    >>> eye = np.eye(2).reshape(1, 2, 2, 1)
    >>> bool(np.allclose(ttm_scale(TTMatrix([eye]), 3.0).to_dense(), 3 * np.eye(2)))
    True
    """
    t = _check_ttm(t, "t")
    alpha = check_scalar(alpha)
    first = t.cores[0] * alpha
    xp = B.namespace(first)
    rest = tuple(_astype(xp, c, first.dtype) for c in t.cores[1:])
    return TTMatrix((first, *rest))


def ttm_transpose(t: TTMatrix) -> TTMatrix:
    """Transpose: swap the row and column mode of every core (no conjugation).

    Parameters
    ----------
    t : TTMatrix
        Shape ``(M, N)``.

    Returns
    -------
    TTMatrix
        Shape ``(N, M)``; ``row_shape`` and ``col_shape`` exchanged, same ranks.

    Raises
    ------
    TypeError
        If ``t`` is not a TTMatrix.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_transpose
    >>> a = TTMatrix([np.ones((1, 2, 3, 2)), np.ones((2, 4, 5, 1))])
    >>> ttm_transpose(a).row_shape, ttm_transpose(a).col_shape
    ((3, 5), (2, 4))
    """
    t = _check_ttm(t, "t")
    xp = B.namespace(t.cores[0])
    return TTMatrix(tuple(xp.permute_dims(c, (0, 2, 1, 3)) for c in t.cores))


def ttm_round(
    t: TTMatrix, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
) -> TTMatrix:
    """Recompress a TT-matrix to lower ranks (TT rounding of the merged-mode view).

    Same guarantees as :func:`tensornet.tt_round`: ``||t - result||_F <= rtol * ||t||_F``
    when no ``max_rank`` cap binds; O(d m n r^3), nothing is densified.

    Parameters
    ----------
    t : TTMatrix
    rtol : float, optional
        Target relative Frobenius error. None drops only numerically zero
        singular values (exact up to round-off).
    max_rank : int or sequence of int, optional
        Cap per bond (one int, or d - 1 ints). With ``rtol`` too, the smaller rank wins.

    Returns
    -------
    TTMatrix
        Same row and column shapes.

    Raises
    ------
    TypeError, ValueError
        On a non-TTMatrix input or invalid ``rtol`` / ``max_rank``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_round
    >>> eye = np.eye(2).reshape(1, 2, 2, 1)
    >>> a = TTMatrix([eye, eye, eye])
    >>> (a + a).ranks, ttm_round(a + a).ranks
    ((1, 2, 2, 1), (1, 1, 1, 1))
    """
    t = _check_ttm(t, "t")
    rounded = tt_round(ttm_to_tt(t), rtol=rtol, max_rank=max_rank)
    return tt_to_ttm(rounded, t.row_shape, t.col_shape)


# -- products ------------------------------------------------------------------------------------
def ttm_matvec(a: TTMatrix, x: TTTensor | Array) -> TTTensor | Array:
    """Matrix-vector product ``a @ x`` with ``x`` in TT format or dense.

    * ``x`` a :class:`~tensornet.TTTensor` with ``x.shape == a.col_shape``: the result
      is a TTTensor of shape ``a.row_shape`` whose ranks are the products
      ``a.ranks[k] * x.ranks[k]`` (round it with :func:`tensornet.tt_round`).
    * ``x`` a dense array of shape ``a.col_shape`` (a tensor) or ``(N,)`` (a flat
      vector, C order): the result is a dense array of shape ``a.row_shape`` or
      ``(M,)`` respectively. It is computed core by core, never forming ``a``
      densely (cost ~ ``sum_k M_<k * r_k * n_k * N_>k * m_k * r_{k+1}``).

    Parameters
    ----------
    a : TTMatrix
        Shape ``(M, N)``.
    x : TTTensor or array
        Same array library and device as ``a``; dtypes are promoted.

    Returns
    -------
    TTTensor or array
        A TTTensor for a TTTensor ``x``, an array for an array ``x``.

    Raises
    ------
    TypeError
        If ``a`` is not a TTMatrix, ``x`` is neither a TTTensor nor a numeric array,
        or they mix array libraries.
    ValueError
        If the shape of ``x`` does not match ``a.col_shape`` (or ``(N,)``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_matvec
    >>> rng = np.random.default_rng(0)
    >>> a = TTMatrix([rng.standard_normal((1, 2, 3, 2)), rng.standard_normal((2, 4, 5, 1))])
    >>> x = rng.standard_normal(15)
    >>> y = ttm_matvec(a, x)
    >>> y.shape, bool(np.allclose(y, a.to_dense() @ x))
    ((8,), True)
    >>> ttm_matvec(a, x.reshape(3, 5)).shape
    (2, 4)
    """
    a = _check_ttm(a, "a")
    if isinstance(x, TTTensor):
        return _matvec_tt(a, x)
    if isinstance(x, TensorFormat):
        raise TypeError(f"x must be a TTTensor or a dense array, got {type(x).__name__}")
    x = check_array(x, "x")
    return _matvec_dense(a, x)


def _matvec_tt(a: TTMatrix, x: TTTensor) -> TTTensor:
    if x.shape != a.col_shape:
        raise ValueError(
            f"x must have shape a.col_shape={a.col_shape}, got a TTTensor of shape {x.shape}"
        )
    xp, dtype = common_dtype([a.cores[0], x.cores[0]], "a's cores and x's cores")
    cores = []
    for g, h in zip(a.cores, x.cores, strict=True):
        (ra, m, _, sa), (rx, _, sx) = g.shape, h.shape
        prod = contract("amnb,cnd->acmbd", _astype(xp, g, dtype), _astype(xp, h, dtype))
        cores.append(xp.reshape(prod, (ra * rx, m, sa * sx)))
    return TTTensor(tuple(cores))


def _matvec_dense(a: TTMatrix, x: Array) -> Array:
    rows, cols = a.shape
    shape = tuple(int(n) for n in x.shape)
    if shape == a.col_shape:
        out_shape: tuple[int, ...] = a.row_shape
    elif shape == (cols,):
        out_shape = (rows,)
    else:
        raise ValueError(
            f"x must have shape a.col_shape={a.col_shape} or ({cols},), got shape {shape}"
        )
    xp, dtype = common_dtype([a.cores[0], x], "a's cores and x")
    # z[(rows done), bond, (columns left)]: each core turns its column mode into a row mode.
    z = xp.reshape(_astype(xp, x, dtype), (1, 1, cols))
    for core in a.cores:
        p, r, rest = z.shape
        _, m, n, s = core.shape
        z = xp.reshape(z, (p, r, n, rest // n))
        z = contract("prnq,rmns->pmsq", z, _astype(xp, core, dtype))
        z = xp.reshape(z, (p * m, s, rest // n))
    return xp.reshape(z, out_shape)


def ttm_matmul(a: TTMatrix, b: TTMatrix) -> TTMatrix:
    """Matrix product ``a @ b`` of two TT-matrices; ranks multiply.

    Core ``k`` of the result is ``sum_j A_k[:, i, j, :] (x) B_k[:, j, l, :]`` (Kronecker
    product of the bonds). Round it with :func:`ttm_round`.

    Parameters
    ----------
    a : TTMatrix
        Shape ``(M, K)``.
    b : TTMatrix
        Shape ``(K, N)`` with ``b.row_shape == a.col_shape``.

    Returns
    -------
    TTMatrix
        ``row_shape = a.row_shape``, ``col_shape = b.col_shape``, ranks
        ``a.ranks[k] * b.ranks[k]``.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a TTMatrix or they mix array libraries.
    ValueError
        If ``b.row_shape != a.col_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tt_matrix import TTMatrix, ttm_matmul
    >>> rng = np.random.default_rng(0)
    >>> a = TTMatrix([rng.standard_normal((1, 2, 3, 2)), rng.standard_normal((2, 4, 5, 1))])
    >>> c = ttm_matmul(a, a.T)
    >>> c.shape, c.ranks, bool(np.allclose(c.to_dense(), a.to_dense() @ a.to_dense().T))
    ((8, 8), (1, 4, 1), True)
    """
    a = _check_ttm(a, "a")
    b = _check_ttm(b, "b")
    if b.row_shape != a.col_shape:
        raise ValueError(
            f"b must have row_shape equal to a.col_shape={a.col_shape}, got "
            f"b.row_shape={b.row_shape}"
        )
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    cores = []
    for g, h in zip(a.cores, b.cores, strict=True):
        (ra, m, _, sa), (rb, _, n, sb) = g.shape, h.shape
        prod = contract("amkb,ckne->acmnbe", _astype(xp, g, dtype), _astype(xp, h, dtype))
        cores.append(xp.reshape(prod, (ra * rb, m, n, sa * sb)))
    return TTMatrix(tuple(cores))
