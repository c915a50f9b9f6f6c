"""TT-matrix decomposition of a dense matrix: TT-SVD over interleaved row/column modes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_array, check_shape
from tensornet.decompose.tt_svd import tt_svd
from tensornet.formats.tt_matrix import TTMatrix, tt_to_ttm
from tensornet.linalg import SVDMethod

__all__ = ["ttm_from_dense"]


def ttm_from_dense(
    matrix: Array,
    row_shape: Sequence[int],
    col_shape: Sequence[int],
    *,
    rtol: float | None = None,
    max_rank: int | Sequence[int] | None = None,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TTMatrix:
    """Decompose a dense matrix into TT-matrix format.

    The ``(M, N)`` matrix is reshaped (C order) to ``(m_0, ..., m_{d-1}, n_0, ...,
    n_{d-1})``, permuted to ``(m_0, n_0, m_1, n_1, ...)``, each pair merged into one
    mode of size ``m_k * n_k``, and decomposed by :func:`tensornet.tt_svd`; the cores
    are then split back to ``(r_k, m_k, n_k, r_{k+1})``. The permutation is an
    isometry, so the TT-SVD bound carries over: ``||matrix - result||_F <= rtol *
    ||matrix||_F`` whenever no ``max_rank`` cap binds.

    Parameters
    ----------
    matrix : array, shape (M, N)
        Dense matrix (NumPy or torch; real or complex; integer input is promoted to
        floating point). The result has its array type, dtype and device.
    row_shape : sequence of int
        ``(m_0, ..., m_{d-1})`` with ``prod(row_shape) == M``.
    col_shape : sequence of int
        ``(n_0, ..., n_{d-1})`` with ``prod(col_shape) == N`` and the same length as
        ``row_shape`` (use 1 for modes without columns or rows).
    rtol : float, optional
        Target relative Frobenius error. None: exact up to round-off (numerical ranks).
    max_rank : int or sequence of int, optional
        Cap on every bond (int) or on each of the ``d - 1`` bonds. With ``rtol``,
        the smaller rank wins.
    method : {"auto", "exact", "randomized"}
        SVD path of each unfolding (see :func:`tensornet.tt_svd`).
    rng : numpy.random.Generator, int or None
        Randomness of the randomized path (ignored by the exact path).

    Returns
    -------
    TTMatrix
        Cores ``(r_k, m_k, n_k, r_{k+1})``.

    Raises
    ------
    TypeError
        If ``matrix`` is not a numeric array, a shape is not a sequence of ints, or
        an option has the wrong type.
    ValueError
        If ``matrix`` is not a finite 2-d array, ``row_shape`` and ``col_shape`` differ
        in length or do not multiply to ``M`` and ``N``, or an option is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tt_matrix import ttm_from_dense
    >>> a = np.kron(np.arange(1.0, 7).reshape(2, 3), np.arange(20.0).reshape(4, 5))
    >>> t = ttm_from_dense(a, (2, 4), (3, 5), rtol=1e-12)
    >>> t.ranks, t.shape
    ((1, 1, 1), (8, 15))
    >>> bool(np.allclose(t.to_dense(), a))
    True
    """
    matrix = check_array(matrix, "matrix", min_ndim=2)
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be a matrix (2 dimensions), got shape {tuple(matrix.shape)}")
    rows = check_shape(row_shape, "row_shape")
    cols = check_shape(col_shape, "col_shape")
    if len(rows) != len(cols):
        raise ValueError(
            "row_shape and col_shape must have the same length (one pair per core), got "
            f"row_shape={rows} and col_shape={cols}"
        )
    n_rows, n_cols = (int(n) for n in matrix.shape)
    if math.prod(rows) != n_rows:
        raise ValueError(
            f"row_shape must multiply to the number of rows of matrix ({n_rows}), got "
            f"row_shape={rows} with product {math.prod(rows)}"
        )
    if math.prod(cols) != n_cols:
        raise ValueError(
            f"col_shape must multiply to the number of columns of matrix ({n_cols}), got "
            f"col_shape={cols} with product {math.prod(cols)}"
        )
    d = len(rows)
    xp = B.namespace(matrix)
    interleaved = tuple(axis for k in range(d) for axis in (k, d + k))
    tensor = xp.permute_dims(xp.reshape(matrix, rows + cols), interleaved)
    merged = xp.reshape(tensor, tuple(m * n for m, n in zip(rows, cols, strict=True)))
    tt = tt_svd(merged, rtol=rtol, max_rank=max_rank, method=method, rng=rng)
    return tt_to_ttm(tt, rows, cols)
