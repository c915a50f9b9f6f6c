"""Semi-tensor product (STP) primitives.

For ``A`` of shape (m, n) and ``B`` of shape (p, q), with ``t = lcm(n, p)``:

- left STP:  ``A ⋉ B = (A ⊗ I_{t/n}) (B ⊗ I_{t/p})``, shape ``(m t/n, q t/p)``;
- right STP: ``A ⋊ B = (I_{t/n} ⊗ A) (I_{t/p} ⊗ B)``, same shape.

Both equal ``A @ B`` when ``n == p``. They are computed without forming the
Kronecker products with identities: with ``alpha = t/n`` and ``beta = t/p``
(coprime), output entry ``((i, a), (k, b))`` sums ``A[i, j] B[r, k]`` over the
``n / beta`` pairs ``(j, r)`` that the two identity factors link, gathered
once per ``(a, b)``; memory is O(m t + t q + output).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_array, check_int, check_mode
from tensornet.contract import contract

__all__ = ["stp", "stp_mode_product", "stp_right"]


def _check_pair(a: Any, b: Any) -> tuple[Array, Array, Any]:
    a = check_array(a, "a", min_ndim=2, finite=False)
    b = check_array(b, "b", min_ndim=2, finite=False)
    xp = B.namespace(a, b)
    dtype = xp.result_type(a.dtype, b.dtype)
    return xp.astype(a, dtype), xp.astype(b, dtype), xp


def _links(n: int, p: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Index tables of the left STP: ``A[:, cols[a, b, u]]`` pairs with ``B[rows[a, b, u], :]``.

    With ``t = lcm(n, p)``, ``alpha = t/n``, ``beta = t/p``: the inner index ``s < t`` is
    ``j * alpha + a`` on A's side and ``r * beta + b`` on B's side. For fixed ``(a, b)``
    the solutions are ``j = j0 + beta * u`` (``j0 = (b - a) alpha^{-1} mod beta``) and
    ``r = alpha * u + (j0 * alpha + a) // beta``, ``u < n / beta``.
    """
    t = math.lcm(n, p)
    alpha, beta = t // n, t // p
    inverse = pow(alpha, -1, beta) if beta > 1 else 0
    a_idx = np.arange(alpha)[:, None, None]
    b_idx = np.arange(beta)[None, :, None]
    u = np.arange(n // beta)[None, None, :]
    j0 = ((b_idx - a_idx) * inverse) % beta
    cols = j0 + beta * u
    rows = alpha * u + (j0 * alpha + a_idx) // beta
    return alpha, beta, cols, rows


def _gather(xp: Any, x: Array, index: np.ndarray, axis: int) -> Array:
    flat = xp.asarray(index.reshape(-1).astype(np.int64), device=B.device(x))
    taken = xp.take(x, flat, axis=axis)
    shape = tuple(x.shape)
    axis = axis % len(shape)
    return xp.reshape(taken, (*shape[:axis], *index.shape, *shape[axis + 1 :]))


def stp(a: Array, b: Array) -> Array:
    """Left semi-tensor product ``A ⋉ B = (A ⊗ I_{t/n}) (B ⊗ I_{t/p})``, ``t = lcm(n, p)``.

    Parameters
    ----------
    a : array, shape (..., m, n)
    b : array, shape (..., p, q)
        Leading axes broadcast (batched product).

    Returns
    -------
    array, shape (..., m t/n, q t/p)
        Of the operands' array type and promoted dtype; equals ``a @ b`` when ``n == p``.

    Raises
    ------
    TypeError
        If an operand is not a numeric array.
    ValueError
        If an operand has fewer than 2 dimensions or an empty dimension.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.arange(6.0).reshape(1, 6), np.arange(6.0).reshape(2, 3)
    >>> bool(np.allclose(stp(a, b), a @ np.kron(b, np.eye(3))))
    True
    """
    a, b, xp = _check_pair(a, b)
    m, n = int(a.shape[-2]), int(a.shape[-1])
    p, q = int(b.shape[-2]), int(b.shape[-1])
    if n == p:
        return a @ b
    if n % p == 0:  # A (B ⊗ I_k): A's columns (r, s) -> one (m k, p) @ (p, q) product
        k = n // p
        lead = tuple(a.shape[:-2])
        a3 = xp.reshape(xp.matrix_transpose(xp.reshape(a, (*lead, m, p, k))), (*lead, m * k, p))
        out = xp.reshape(a3 @ b, (*tuple(xp.broadcast_shapes(lead, tuple(b.shape[:-2]))), m, k, q))
        return xp.reshape(xp.matrix_transpose(out), (*out.shape[:-2], q * k))
    if p % n == 0:  # (A ⊗ I_k) B: B's rows (j, s) -> one (m, n) @ (n, k q) product, no copy
        k = p // n
        lead = tuple(b.shape[:-2])
        out = a @ xp.reshape(b, (*lead, n, k * q))
        return xp.reshape(out, (*out.shape[:-2], m * k, q))
    alpha, beta, cols, rows = _links(n, p)
    a_g = _gather(xp, a, cols, axis=-1)  # (..., m, alpha, beta, u)
    b_g = _gather(xp, b, rows, axis=-2)  # (..., alpha, beta, u, q)
    out = contract("...iabu,...abuk->...iakb", a_g, b_g)
    return xp.reshape(out, (*out.shape[:-4], m * alpha, q * beta))


def stp_right(a: Array, b: Array) -> Array:
    """Right semi-tensor product ``A ⋊ B = (I_{t/n} ⊗ A) (I_{t/p} ⊗ B)``, ``t = lcm(n, p)``.

    Same shapes, batching and errors as :func:`stp`. ``I_alpha ⊗ A`` is block-diagonal,
    so output block ``(a, b)`` (each ``m x q``) is ``A[:, J] @ B[R, :]`` over the overlap
    of inner index ranges ``[a n, (a + 1) n)`` and ``[b p, (b + 1) p)``; at most
    ``alpha + beta - 1`` blocks are non-zero (a staircase), the rest are zeros.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.arange(6.0).reshape(1, 6), np.arange(6.0).reshape(2, 3)
    >>> bool(np.allclose(stp_right(a, b), a @ np.kron(np.eye(3), b)))
    True
    """
    a, b, xp = _check_pair(a, b)
    m, n = int(a.shape[-2]), int(a.shape[-1])
    p, q = int(b.shape[-2]), int(b.shape[-1])
    if n == p:
        return a @ b
    t = math.lcm(n, p)
    alpha, beta = t // n, t // p
    lead = tuple(xp.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2])))
    zeros = xp.zeros((*lead, m, q), dtype=a.dtype, device=B.device(a))
    rows = []
    for i in range(alpha):
        blocks = []
        for j in range(beta):
            lo, hi = max(i * n, j * p), min((i + 1) * n, (j + 1) * p)
            if lo >= hi:
                blocks.append(zeros)
                continue
            piece = a[..., :, lo - i * n : hi - i * n] @ b[..., lo - j * p : hi - j * p, :]
            blocks.append(xp.broadcast_to(piece, (*lead, m, q)))
        rows.append(xp.concat(blocks, axis=-1))
    return xp.concat(rows, axis=-2)


def stp_mode_product(x: Array, u: Array, mode: int, *, k: int | None = None) -> Array:
    """Semi-tensor mode product: ``Y_(mode) = (U ⊗ I_k) X_(mode)``.

    ``U`` has shape ``(J, I_mode / k)``; the result has size ``J * k`` on ``mode``.
    With ``k = 1`` this is the ordinary mode product. The unfolding is C order with
    ``mode`` moved to the front.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
    u : array, shape (J, n_mode / k)
    mode : int
    k : int, optional
        Size of the identity factor; None infers ``n_mode / u.shape[1]``.

    Returns
    -------
    array
        ``x`` with mode ``mode`` of size ``J * k``.

    Raises
    ------
    ValueError
        If ``u.shape[1] * k != n_mode`` (or ``u``'s columns do not divide ``n_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((4, 3))
    >>> stp_mode_product(x, np.ones((5, 2)), 0).shape  # k = 2
    (10, 3)
    """
    x = check_array(x, "x")
    u = check_array(u, "u", min_ndim=2)
    if u.ndim != 2:
        raise ValueError(f"u must be a matrix, got shape {tuple(u.shape)}")
    mode = check_mode(mode, x.ndim)
    size, cols = int(x.shape[mode]), int(u.shape[1])
    if k is None:
        if size % cols:
            raise ValueError(
                f"u must have a number of columns dividing n_mode = {size} (mode {mode}), "
                f"got {cols}"
            )
        k = size // cols
    k = check_int(k, "k", minimum=1)
    if cols * k != size:
        raise ValueError(
            f"k must satisfy u.shape[1] * k == n_mode: {cols} * {k} != {size} (mode {mode})"
        )
    xp = B.namespace(x, u)
    moved = xp.moveaxis(x, mode, 0)
    rest = tuple(moved.shape[1:])
    y = stp(u, xp.reshape(moved, (size, -1)))
    return xp.moveaxis(xp.reshape(y, (int(y.shape[0]), *rest)), 0, mode)
