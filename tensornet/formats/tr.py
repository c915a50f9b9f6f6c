"""Tensor ring (TR) format and its native algebra.

Layout: ``cores[k].shape == (r_k, n_k, r_{k+1})`` with ``r_d == r_0`` (the ring
closes), and ``X[i_0, ..., i_{d-1}] = trace(G_0[:, i_0, :] @ ... @ G_{d-1}[:, i_{d-1}, :])``.
A TT is the ring with ``r_0 = 1``. Bond ``k`` (size ``r_k``) joins core ``k - 1`` to core
``k``; bond 0, between the last core and the first, is the *closing* bond.

The *open chain* of a ring is ``Y[a, i_0, ..., i_{d-1}, b] = (G_0[:, i_0, :] @ ... @
G_{d-1}[:, i_{d-1}, :])[a, b]``, so that ``X`` is its trace over ``a == b``. It is a TT
whose first and last modes carry the closing indices; the rounding below works on it.
No operation here densifies the tensor unless its name says so (``to_dense``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_int, check_max_rank, check_rtol
from tensornet.contract import contract
from tensornet.formats._base import (
    CoreSequenceFormat,
    check_same_shape,
    check_scalar,
    common_dtype,
    dtype_name,
)
from tensornet.formats.tt import (
    TTTensor,
    _check_cores,
    _normalize_index,
    chain_noise_floor,
    check_bonds,
    tt_round,
)
from tensornet.linalg import TruncatedSVD, _truncated_svd, qr

__all__ = [
    "TRTensor",
    "tr_add",
    "tr_hadamard",
    "tr_inner",
    "tr_norm",
    "tr_round",
    "tr_scale",
    "tr_shift",
    "tr_to_dense",
    "tr_to_tt",
    "tt_to_tr",
]


@dataclass(frozen=True, eq=False, repr=False)
class TRTensor(CoreSequenceFormat):
    """A tensor in tensor-ring format.

    Parameters
    ----------
    cores : sequence of arrays
        ``cores[k]`` has shape ``(r_k, n_k, r_{k+1})`` and the last right rank equals
        the first left rank; all cores share one array library, dtype and device.

    Attributes
    ----------
    cores : tuple of arrays
    shape : tuple of int
        ``(n_0, ..., n_{d-1})``.
    ranks : tuple of int
        ``(r_0, r_1, ..., r_{d-1}, r_0)`` (length d + 1, first == last).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import TRTensor
    >>> t = TRTensor([np.ones((2, 3, 4)), np.ones((4, 5, 2))])
    >>> t
    TRTensor(shape=(3, 5), ranks=(2, 4, 2), dtype=float64, num_params=64)
    >>> float(t.to_dense()[0, 0])  # trace of a (2 x 2) matrix of 4s
    8.0
    >>> float(t[0, 0])  # the same entry, without densifying
    8.0
    """

    cores: Sequence[Array]  # stored as a tuple

    def __post_init__(self) -> None:
        cores = _check_cores(self.cores, 3, "cores")
        check_bonds(cores, "cores", ring=True)
        object.__setattr__(self, "cores", cores)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Bond sizes ``(r_0, r_1, ..., r_{d-1}, r_0)``."""
        return (int(self.cores[0].shape[0]), *(int(c.shape[2]) for c in self.cores))

    def __repr__(self) -> str:
        return (
            f"TRTensor(shape={self.shape}, ranks={self.ranks}, dtype={dtype_name(self.dtype)}, "
            f"num_params={self.num_params})"
        )

    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries)."""
        return tr_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying; see :func:`tr_norm`."""
        return tr_norm(self)

    def round(
        self, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
    ) -> TRTensor:
        """Recompress; see :func:`tr_round`."""
        return tr_round(self, rtol=rtol, max_rank=max_rank)

    def _add(self, other: Any) -> TRTensor:
        return tr_add(self, other)

    def _scale(self, alpha: Any) -> TRTensor:
        return tr_scale(self, alpha)

    def __getitem__(self, index: object) -> Any:
        """Entries or a sub-ring as a ``TRTensor``.

        Integers fix a mode, slices keep it; nothing is densified. ``t[i, j, k]`` gives a
        scalar: a NumPy scalar for NumPy cores, a 0-d tensor for torch cores.
        """
        return _getitem(self, index)


def _check_tr(t: object, name: str) -> TRTensor:
    if not isinstance(t, TRTensor):
        raise TypeError(f"{name} must be a TRTensor, got {type(t).__name__}")
    return t


def _getitem(t: TRTensor, index: object) -> Any:
    items = _normalize_index(index, t.shape)
    kept: list[Array] = []
    lead: Array | None = None  # product of the fixed modes before the first kept one
    pending: Array | None = None  # product of the fixed modes not yet absorbed
    for core, item in zip(t.cores, items):
        if isinstance(item, slice):
            piece = core[:, item, :]
            if pending is not None:
                if kept:
                    piece = contract("ab,bnc->anc", pending, piece)
                else:
                    lead = pending
                pending = None
            kept.append(piece)
        else:
            matrix = core[:, item, :]
            pending = matrix if pending is None else pending @ matrix
    if not kept:
        assert pending is not None
        return contract("aa->", pending)
    # trace(lead K_1 ... K_m trail) == trace(K_1 ... K_m (trail @ lead)): close the ring there
    tail = lead if pending is None else (pending if lead is None else pending @ lead)
    if tail is not None:
        kept[-1] = contract("anb,bc->anc", kept[-1], tail)
    return TRTensor(kept)


# -- dense conversion, shifts and conversions ----------------------------------------------
def tr_to_dense(t: TRTensor) -> Array:
    """Contract a TR into the full tensor of shape ``t.shape``.

    The ring is cut at its smallest bond ``r_c`` (the chain starts at core ``c``) and
    contracted left to right with that bond open; the trace is fused into the last
    contraction, so the largest intermediate holds ``r_c * prod(shape) / n * r`` entries
    (never ``r_c**2 * prod(shape)``). Modes are put back in their original order.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import TRTensor, tr_to_dense
    >>> tr_to_dense(TRTensor([np.ones((2, 2, 2)), np.ones((2, 3, 2))])).shape
    (2, 3)
    """
    t = _check_tr(t, "t")
    xp = B.namespace(t.cores[0])
    d = t.order
    ranks = t.ranks[:d]
    c = min(range(d), key=lambda k: ranks[k])
    chain = [*t.cores[c:], *t.cores[:c]]
    if d == 1:
        return contract("ana->n", chain[0])
    rc = ranks[c]
    result = chain[0]
    for core in chain[1:-1]:
        left = xp.reshape(result, (rc, -1, int(result.shape[-1])))
        result = contract("amb,bnc->amnc", left, core)
    left = xp.reshape(result, (rc, -1, int(result.shape[-1])))
    rotated = xp.reshape(contract("amb,bna->mn", left, chain[-1]), (*t.shape[c:], *t.shape[:c]))
    if c == 0:
        return rotated
    return xp.permute_dims(rotated, tuple((m - c) % d for m in range(d)))


def tr_shift(t: TRTensor, k: int) -> TRTensor:
    """Rotate the ring so that mode ``k`` of ``t`` becomes mode 0 of the result.

    The cores are rotated, ``(G_k, ..., G_{d-1}, G_0, ..., G_{k-1})``, which by the
    cyclic invariance of the trace gives, for ``d = t.order``::

        tr_shift(t, k).to_dense() == np.transpose(t.to_dense(), [(m + k) % d for m in range(d)])

    i.e. ``result[j_0, ..., j_{d-1}] == t[i]`` with ``i_{(m + k) % d} = j_m``. Any integer
    ``k`` is accepted and taken modulo ``d``, so ``tr_shift(t, -k)`` undoes
    ``tr_shift(t, k)`` and ``d`` shifts by 1 are the identity. Ranks rotate the same way:
    ``result.ranks == (r_k, ..., r_{d-1}, r_0, ..., r_k)``. TR-SVD from start mode
    ``s`` decomposes ``np.transpose(x, [(m + s) % d ...])`` and returns
    ``tr_shift(result, -s)``. No arithmetic is done; the cores are shared, not copied.

    Parameters
    ----------
    t : TRTensor
    k : int
        Number of positions to rotate (any integer; taken modulo ``t.order``).

    Returns
    -------
    TRTensor

    Raises
    ------
    TypeError
        If ``t`` is not a TRTensor or ``k`` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_shift
    >>> from tensornet.random import random_tr
    >>> t = random_tr((2, 3, 4), (1, 2, 3), rng=0)
    >>> s = tr_shift(t, 1)
    >>> s.shape, s.ranks
    ((3, 4, 2), (2, 3, 1, 2))
    >>> bool(np.allclose(s.to_dense(), np.transpose(t.to_dense(), (1, 2, 0))))
    True
    """
    t = _check_tr(t, "t")
    shift = check_int(k, "k") % t.order
    return TRTensor((*t.cores[shift:], *t.cores[:shift]))


def tt_to_tr(t: TTTensor) -> TRTensor:
    """The TT ``t`` as a tensor ring with ``r_0 = 1`` (exact; the cores are shared).

    Raises
    ------
    TypeError
        If ``t`` is not a TTTensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import tt_svd
    >>> from tensornet.formats.tr import tt_to_tr
    >>> tt_to_tr(tt_svd(np.arange(24.0).reshape(2, 3, 4))).ranks
    (1, 2, 2, 1)
    """
    if not isinstance(t, TTTensor):
        raise TypeError(f"t must be a TTTensor, got {type(t).__name__}")
    return TRTensor(t.cores)


def tr_to_tt(
    t: TRTensor, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
) -> TTTensor:
    """Convert a tensor ring to a tensor train.

    Fixing the closing index writes the ring as a sum of ``r_0`` TTs; they are
    assembled directly as one TT with ranks ``(1, r_0 r_1, ..., r_0 r_{d-1}, 1)``
    (core ``k`` is ``I_{r_0} (x) G_k``, the first and last cores carry the closing
    index), then recompressed with :func:`~tensornet.tt_round`. With ``rtol=None``
    the result equals ``t`` up to round-off and has the numerical TT ranks of the
    tensor; with ``rtol`` it satisfies ``||t - result|| <= rtol * ||t||`` (when no cap
    binds). Cost O(d n r_0^3 r^3); nothing is densified.

    Parameters
    ----------
    t : TRTensor
    rtol : float, optional
        Target relative Frobenius error, as in :func:`~tensornet.tt_round`.
    max_rank : int or sequence of int, optional
        Cap per TT bond (one int, or ``d - 1`` ints).

    Returns
    -------
    TTTensor

    Raises
    ------
    TypeError, ValueError
        On a non-TR input or invalid ``rtol`` / ``max_rank``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_to_tt
    >>> from tensornet.random import random_tr
    >>> t = random_tr((4, 5, 6), 2, rng=0)
    >>> tt = tr_to_tt(t)
    >>> tt.ranks, bool(np.allclose(tt.to_dense(), t.to_dense()))
    ((1, 4, 4, 1), True)
    """
    t = _check_tr(t, "t")
    rtol = check_rtol(rtol)
    caps = check_max_rank(max_rank, t.order - 1)
    xp = B.namespace(t.cores[0])
    if t.order == 1:
        return TTTensor([contract("ana->n", t.cores[0])[None, :, None]])
    r0 = t.ranks[0]
    first, *middle, last = t.cores
    n0, r1 = int(first.shape[1]), int(first.shape[2])
    cores = [xp.reshape(xp.permute_dims(first, (1, 0, 2)), (1, n0, r0 * r1))]
    eye = xp.eye(r0, dtype=t.dtype, device=t.device)
    for core in middle:
        r, n, s = (int(m) for m in core.shape)
        cores.append(xp.reshape(contract("xy,anb->xanyb", eye, core), (r0 * r, n, r0 * s)))
    r, n, _ = (int(m) for m in last.shape)
    cores.append(xp.reshape(xp.permute_dims(last, (2, 0, 1)), (r0 * r, n, 1)))
    return tt_round(TTTensor(cores), rtol=rtol, max_rank=caps)


# -- algebra ---------------------------------------------------------------------------------
def tr_scale(t: TRTensor, alpha: Any) -> TRTensor:
    """Multiply ``t`` by the scalar ``alpha`` (scales the first core).

    Raises
    ------
    TypeError, ValueError
        If ``t`` is not a TRTensor or ``alpha`` is not a finite number / 0-d array.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_scale
    >>> from tensornet.random import random_tr
    >>> t = random_tr((3, 4), 2, rng=0)
    >>> bool(np.allclose(tr_scale(t, -2.0).to_dense(), -2.0 * t.to_dense()))
    True
    """
    t = _check_tr(t, "t")
    alpha = check_scalar(alpha)
    xp = B.namespace(t.cores[0])
    first = t.cores[0] * alpha  # may promote (complex alpha, float64 scalar on float32)
    return TRTensor([first, *(xp.astype(c, first.dtype) for c in t.cores[1:])])


def _block_diag(blocks: Sequence[Array]) -> Array:
    """Cores ``(r_j, n, s_j)`` placed block-diagonally into one ``(sum r_j, n, sum s_j)`` core."""
    xp = B.namespace(blocks[0])
    dtype, dev = blocks[0].dtype, B.device(blocks[0])
    total = sum(int(b.shape[2]) for b in blocks)
    rows, start = [], 0
    for block in blocks:
        r, n, s = (int(m) for m in block.shape)
        parts = [xp.zeros((r, n, start), dtype=dtype, device=dev)] if start else []
        parts.append(block)
        if total - start - s:
            parts.append(xp.zeros((r, n, total - start - s), dtype=dtype, device=dev))
        rows.append(xp.concat(parts, axis=2) if len(parts) > 1 else block)
        start += s
    return xp.concat(rows, axis=0) if len(rows) > 1 else rows[0]


def tr_add(a: TRTensor, b: TRTensor) -> TRTensor:
    """Sum of two TRs of the same shape, sharing the closing bond.

    ``trace(A) + trace(B) = sum_a (A[a, a] + B[a, a])``, so the two rings can share
    the closing index: the first cores sit side by side, the last ones are stacked,
    the interior cores are block-diagonal. Interior ranks add; the closing rank is
    ``max(r_0(a), r_0(b))`` (the smaller ring padded with zeros). The open chain of
    the result is the sum of the two chains, so :func:`tr_round` can compress it:
    ``tr_round(t + t)`` has the ranks of ``t``.

    Raises
    ------
    TypeError, ValueError
        If an input is not a TRTensor, the shapes differ, or the cores come from
        different array libraries or devices.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_add
    >>> from tensornet.random import random_tr
    >>> t = random_tr((3, 4, 5), 2, rng=0)
    >>> s = tr_add(t, t)
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * t.to_dense()))
    ((2, 4, 4, 2), True)
    """
    a = _check_tr(a, "a")
    b = _check_tr(b, "b")
    check_same_shape(a, b)
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    return TRTensor(
        _chain_sum([[xp.astype(c, dtype) for c in a.cores], [xp.astype(c, dtype) for c in b.cores]])
    )


def tr_hadamard(a: TRTensor, b: TRTensor) -> TRTensor:
    """Elementwise product; ranks multiply (slices are Kronecker products).

    ``trace(A) * trace(B) == trace(A (x) B)``, so core ``k`` of the result has slices
    ``A_k[:, i, :] (x) B_k[:, i, :]`` and shape ``(ra_k rb_k, n_k, ra_{k+1} rb_{k+1})``.

    Raises
    ------
    TypeError, ValueError
        If an input is not a TRTensor or the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_hadamard
    >>> from tensornet.random import random_tr
    >>> a, b = random_tr((3, 4), 2, rng=0), random_tr((3, 4), (1, 3), rng=1)
    >>> p = tr_hadamard(a, b)
    >>> p.ranks, bool(np.allclose(p.to_dense(), a.to_dense() * b.to_dense()))
    ((2, 6, 2), True)
    """
    a = _check_tr(a, "a")
    b = _check_tr(b, "b")
    check_same_shape(a, b)
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    cores = []
    for x, y in zip(a.cores, b.cores):
        (ra, n, sa), (rb, _, sb) = x.shape, y.shape
        prod = contract("anb,cnd->acnbd", xp.astype(x, dtype), xp.astype(y, dtype))
        cores.append(xp.reshape(prod, (ra * rb, n, sa * sb)))
    return TRTensor(cores)


def _transfer_inner(a_cores: Sequence[Array], b_cores: Sequence[Array]) -> Array:
    """``sum(conj(A) * B)`` of two rings by the transfer-matrix sweep around the ring.

    The environment ``E[x, y, c, e]`` holds the partial sums over the modes already
    passed, with the two closing indices ``x`` (of ``a``) and ``y`` (of ``b``) kept
    open; the last core closes both rings. Cost O(d n ra_0 rb_0 r^3), memory
    O(ra_0 rb_0 r^2).
    """
    if len(a_cores) == 1:
        return contract("ana,bnb->", B.conj(a_cores[0]), b_cores[0])
    env = contract("xnc,yne->xyce", B.conj(a_cores[0]), b_cores[0])
    for ca, cb in zip(a_cores[1:-1], b_cores[1:-1]):
        env = contract("xyab,anc,bnd->xycd", env, B.conj(ca), cb)
    return contract("xyab,anx,bny->", env, B.conj(a_cores[-1]), b_cores[-1])


def tr_inner(a: TRTensor, b: TRTensor) -> Array:
    """Inner product ``<a, b> = sum(conj(a) * b)`` without densifying.

    A transfer-matrix contraction around the ring carrying an environment of shape
    ``(ra_0 rb_0, ra_k rb_k)``: cost O(d n ra_0 rb_0 r^3) for bond sizes up to ``r``.
    Mixed dtypes are promoted.

    Returns
    -------
    array
        0-d array of the cores' namespace (complex for complex inputs).

    Raises
    ------
    TypeError, ValueError
        If an input is not a TRTensor or the shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_inner
    >>> from tensornet.random import random_tr
    >>> a, b = random_tr((3, 4, 5), 2, rng=0), random_tr((3, 4, 5), 3, rng=1)
    >>> bool(np.isclose(tr_inner(a, b), np.vdot(a.to_dense(), b.to_dense())))
    True
    """
    a = _check_tr(a, "a")
    b = _check_tr(b, "b")
    check_same_shape(a, b)
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    return _transfer_inner(
        [xp.astype(c, dtype) for c in a.cores], [xp.astype(c, dtype) for c in b.cores]
    )


def tr_norm(t: TRTensor) -> Array:
    """Frobenius norm without densifying.

    Three steps: (1) a ring that is a direct sum of disconnected rings (block-diagonal
    on every bond) is re-joined through a shared closing bond,
    exactly; (2) a left-to-right QR sweep writes the ring as ``trace(Z R)`` with ``Z``
    an orthonormal open chain and ``R`` the closing-bond factor; (3) ``||t||^2`` is
    the transfer-matrix inner product of that form, clipped at 0.

    Accuracy: the result is exact up to round-off of order ``eps * ||Y||`` where
    ``||Y||`` is the Frobenius norm of the (re-joined) open chain, ``||t|| <=
    sqrt(r_0) ||Y||``. Differences of rings that share their closing gauge, such as
    ``u - t`` with ``u = t + small``, have a small chain and are resolved to that
    level (``tr_norm(u - t)`` is accurate even when ``||u - t|| << ||t||``). A ring
    whose trace itself cancels (``||t|| << ||Y||``, e.g. ``t - t'`` with ``t'`` the
    same tensor in another gauge) loses precision as any inner-product method does:
    the result is then only accurate to about ``sqrt(eps) * ||Y||``.

    Returns
    -------
    array
        0-d real array of the cores' namespace.

    Raises
    ------
    TypeError
        If ``t`` is not a TRTensor.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_norm
    >>> from tensornet.random import random_tr
    >>> t = random_tr((3, 4, 5), 2, rng=0)
    >>> bool(np.isclose(tr_norm(t), np.linalg.norm(t.to_dense())))
    True
    >>> float(tr_norm(t - t))
    0.0
    """
    t = _check_tr(t, "t")
    cores = _fold(t.cores)
    if cores is None:
        xp = B.namespace(t.cores[0])
        return xp.zeros((), dtype=B.real_dtype(t.cores[0]), device=t.device)
    return _ring_norm(cores)


def tr_round(
    t: TRTensor, *, rtol: float | None = None, max_rank: int | Sequence[int] | None = None
) -> TRTensor:
    """Recompress a tensor ring to lower ranks (TR rounding, after Mickelin & Karaman).

    Steps, none of which densifies (cost O(d n r^3) for the sweeps plus
    O(d n r_0^2 r^3) for the norms):

    0. A ring that is a direct sum of disconnected rings (block-diagonal cores on
       every bond, as built by hand or by other libraries) is re-joined through one shared closing
       bond, exactly (the closing bond shrinks from ``sum`` to ``max`` of the parts'
       closing sizes). The open chain of the ring is then the *sum* of the parts'
       chains, so redundancy between them becomes visible to the SVDs below:
       ``tr_round(t + t)`` is ``2 t`` with ``t``'s ranks whenever ``t``'s own ranks are
       minimal for its open chain (e.g. any ring of :func:`~tensornet.random.random_tr`).
    1. The closing bond is cut to ``n_0 r_1`` if it is larger (LQ of the first core),
       then a left-to-right QR sweep over all ``d`` cores writes the ring as
       ``trace(Z R)``, ``Z`` an orthonormal open chain and ``R`` the closing-bond factor;
       the closing bond is truncated with a truncated SVD of ``R``.
    2. A second left-to-right QR sweep, then a right-to-left sweep of truncated SVDs
       over the interior bonds ``d - 1, ..., 1`` (TT rounding of the open chain).

    Guarantee. With ``rtol`` given and no ``max_rank`` cap binding, the result
    satisfies ``||t - result||_F <= rtol * ||t||_F`` (``||t||`` as computed by
    :func:`tr_norm`; up to floating-point round-off). Orthogonality alone does not
    give this for a ring, because the trace can amplify a dropped chain component:
    ``|trace(A)| <= sqrt(rank A) ||A||_F``. With ``T = rtol ||t||`` the bound is
    therefore ensured in three tiers:

    - the tolerance is first split evenly over the ``d`` bonds (each truncated SVD
      drops a tail ``<= T / sqrt(d)``, the rule of a sum of orthogonal errors), and
      the a-posteriori bound ``sqrt(k) e_0 + sqrt(s) sqrt(sum_k e_k^2)`` is checked
      (``e_0`` the closing-bond tail of ``k`` dropped values, ``e_k`` the interior tails,
      ``s`` the new closing size): it is rigorous (Cauchy-Schwarz on the trace and
      orthogonality of the chain errors);
    - if that bound exceeds ``T``, the actual error is measured format-natively (the
      error ring is assembled from the dropped parts in the shared closing gauge, so
      its norm is resolved to about ``eps`` times the norm of the open chain) and the
      result is kept if it is ``<= T``;
    - otherwise the rounding is redone with the tolerances under which the
      a-posteriori bound holds by construction: ``T / d`` for the closing bond (tail
      ``<= T / (d sqrt(m))``, ``m <= r_0`` the size of ``R``) and ``T (d - 1) / d`` for
      the interior bonds (tail ``<= T sqrt(d - 1) / (d sqrt(s))`` each).

    With ``rtol=None`` (or 0) only numerically zero singular values are dropped (relative
    to the largest, and below the absolute round-off level ``d * eps * prod_k
    ||G_k||_F`` of the chain), so the result equals ``t`` up to round-off. Content
    below that level counts as zero: ``tr_round(t - t)`` is the zero ring with all
    ranks 1. Ranks never increase.

    TR ranks have no SVD-computable minimum in general (the ring has no canonical
    form; Batselier 2018, "The trouble with tensor ring decompositions"): rounding
    removes redundancy that the open chain exposes (bonds larger than their
    unfoldings, repeated or cancelling summands of a direct sum, parts below
    ``rtol``), but a direct sum hidden by a change of gauge is not re-joined.

    Parameters
    ----------
    t : TRTensor
    rtol : float, optional
        Target relative Frobenius error of the whole result. None: exact up to
        round-off.
    max_rank : int or sequence of int, optional
        Cap on every bond (one int) or per bond (``d`` ints for ``r_0, ..., r_{d-1}``,
        ``r_0`` the closing bond). With ``rtol`` too, the smaller rank wins; the
        bound is then promised only if no cap binds.

    Returns
    -------
    TRTensor
        Same array library, dtype and device as ``t``. An order-1 ring is returned
        as its vector of traces with ranks ``(1, 1)``.

    Raises
    ------
    TypeError, ValueError
        On a non-TR input or invalid ``rtol`` / ``max_rank``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.tr import tr_round
    >>> from tensornet.random import random_tr
    >>> t = random_tr((3, 4, 5, 6), (2, 3, 3, 2), rng=0)
    >>> s = t + t
    >>> s.ranks, tr_round(s).ranks
    ((2, 6, 6, 4, 2), (2, 3, 3, 2, 2))
    >>> bool(np.allclose(tr_round(s).to_dense(), 2 * t.to_dense()))
    True
    >>> tr_round(t - t).ranks
    (1, 1, 1, 1, 1)
    """
    t = _check_tr(t, "t")
    rtol = check_rtol(rtol)
    caps = check_max_rank(max_rank, t.order)
    if t.order == 1:
        return TRTensor([contract("ana->n", t.cores[0])[None, :, None]])
    folded = _fold(t.cores)
    if folded is None:
        return _zeros_like_tr(t)
    floor = chain_noise_floor(folded)
    cores = _shrink_closing_from_left(folded)
    factor = _qr_sweep(cores, t.order)
    assert factor is not None
    if float(B.norm(factor)) <= floor:  # zero, or round-off of a cancelled sum such as t - t
        return _zeros_like_tr(t)
    if not rtol:  # None or 0: numerical ranks only
        return TRTensor(_truncate(cores, factor, None, 0.0, caps, floor).cores)
    closed = _close(cores, factor)
    norm = float(_sqrt_clipped(_transfer_inner(closed, closed)))
    if norm <= floor:
        return _zeros_like_tr(t)
    target = rtol * norm
    first = _truncate(cores, factor, "split", target, caps, floor)
    if first.bound <= target or _measured_error(first, cores, factor) <= target:
        return TRTensor(first.cores)
    return TRTensor(_truncate(cores, factor, "safe", target, caps, floor).cores)


class _Rounded(NamedTuple):
    cores: list[Array]  # the rounded ring
    bound: float  # rigorous a-posteriori bound on ||t - result||
    joined: list[Array]  # the ring after the closing-bond truncation, before the sweep
    closing: TruncatedSVD  # the SVD of the closing-bond factor


def _truncate(
    qs: Sequence[Array],
    factor: Array,
    rule: str | None,
    target: float,
    caps: tuple[int, ...] | None,
    floor: float,
) -> _Rounded:
    """Truncate the ring ``trace(Q_0 ... Q_{d-1} factor)`` (orthonormal ``Q``s).

    ``rule``: None (numerical ranks only), ``"split"`` (tail ``target / sqrt(d)`` per
    bond) or ``"safe"`` (tolerances under which the a-posteriori bound is <= target).
    """
    xp = B.namespace(factor)
    d = len(qs)
    s_in, r_in = (int(m) for m in factor.shape)
    tol: float | None = None
    if rule == "split":
        tol = target / math.sqrt(d)
    elif rule == "safe":
        tol = target / (d * math.sqrt(min(s_in, r_in)))
    res = _truncated_svd(factor, tol=tol, cap=None if caps is None else caps[0], floor=floor)
    rank = int(res.s.shape[0])
    dropped = max(min(s_in, r_in) - rank, 1)
    bound = math.sqrt(dropped) * res.error
    us = xp.astype(res.U * res.s[None, :], factor.dtype)
    joined = [
        contract("sa,anb->snb", res.Vh, qs[0]),
        *qs[1:-1],
        contract("anb,bs->ans", qs[-1], us),
    ]
    cores = list(joined)
    _qr_sweep(cores, d - 1)
    if rule == "split":
        tol = target / math.sqrt(d)
    elif rule == "safe":
        tol = target * math.sqrt(d - 1) / (d * math.sqrt(rank))
    tails_sq = 0.0
    for k in range(d - 1, 0, -1):
        r, n, s = (int(m) for m in cores[k].shape)
        bond = _truncated_svd(
            xp.reshape(cores[k], (r, n * s)),
            tol=tol,
            cap=None if caps is None else caps[k],
            floor=floor,
        )
        cores[k] = xp.reshape(bond.Vh, (-1, n, s))
        carry = xp.astype(bond.U * bond.s[None, :], cores[k - 1].dtype)
        cores[k - 1] = contract("anb,bc->anc", cores[k - 1], carry)
        tails_sq += bond.error**2
    bound += math.sqrt(rank) * math.sqrt(tails_sq)
    return _Rounded(cores, bound, joined, res)


def _measured_error(rounded: _Rounded, qs: Sequence[Array], factor: Array) -> float:
    """``||t - result||`` from the dropped parts, all in the input's closing gauge.

    ``t - result = trace(Z M) + (trace(Y_joined) - trace(Y_result))`` with ``M`` the
    dropped part of the closing factor: ``Z M`` is small, and the joined and rounded
    rings share their closing indices, so their chain difference is small too. The
    three rings are summed through a shared closing bond (:func:`_chain_sum`) and the
    norm taken by :func:`_ring_norm`: no large chains cancel inside the trace.
    """
    res = rounded.closing
    kept = (res.U * res.s[None, :]) @ res.Vh
    rest = factor - B.namespace(factor).astype(kept, factor.dtype)
    negated = [-rounded.cores[0], *rounded.cores[1:]]
    rings = [rounded.joined, negated]
    if float(B.norm(rest)) > 0.0:
        rings.insert(0, _close(qs, rest))
    return float(_ring_norm(_chain_sum(rings)))


def _shrink_closing_from_left(cores: Sequence[Array]) -> list[Array]:
    """Cut the closing bond to ``n_0 r_1`` when it is larger (LQ of the first core; exact)."""
    result = list(cores)
    r0, n0, r1 = (int(m) for m in result[0].shape)
    if r0 <= n0 * r1:
        return result
    xp = B.namespace(result[0])
    q, rmat = qr(B.conj(xp.matrix_transpose(xp.reshape(result[0], (r0, n0 * r1)))))
    result[0] = xp.reshape(B.conj(xp.matrix_transpose(q)), (-1, n0, r1))
    result[-1] = contract("anb,cb->anc", result[-1], B.conj(rmat))
    return result


# -- internals of norms and rounding ------------------------------------------------------------
def _fold(cores: Sequence[Array]) -> list[Array] | None:
    """Re-join a direct sum of rings through one shared closing bond (exact); None if zero.

    Index ``j`` of bond ``k`` is a node; core ``k`` links ``(k, a)`` to ``(k + 1, b)``
    when ``G_k[a, :, b]`` is not identically zero. Every term of the trace is a closed
    walk around the ring, so it lies inside one connected component, and a component
    that misses a bond contributes nothing: such components and their indices are
    dropped. The remaining components are independent rings whose traces add, so
    they may share the closing index (see :func:`_chain_sum`): the closing bond
    shrinks from ``sum_c p_c`` to ``max_c p_c`` and the open chain becomes the sum of
    the components' chains, which the SVD sweeps can then compress.
    """
    d = len(cores)
    xp = B.namespace(cores[0])
    patterns = [np.asarray(B.to_numpy(xp.any(c != 0, axis=1)), dtype=bool) for c in cores]
    if all(p.all() for p in patterns):
        return list(cores)  # one component holding every index (the usual case)
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    sizes = [int(c.shape[0]) for c in cores]
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    rows, cols = [], []
    for k, pattern in enumerate(patterns):
        a, b = np.nonzero(pattern)
        rows.append(offsets[k] + a)
        cols.append(offsets[(k + 1) % d] + b)
    n_nodes = int(offsets[-1])
    edges = np.concatenate(rows), np.concatenate(cols)
    graph = scipy.sparse.coo_matrix((np.ones(edges[0].size), edges), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    bond_labels = [labels[offsets[k] : offsets[k + 1]] for k in range(d)]
    rings = []
    for label in np.unique(bond_labels[0]):
        index = [np.flatnonzero(bl == label) for bl in bond_labels]
        if any(ix.size == 0 for ix in index):
            continue  # no closed walk passes through this component
        rings.append(
            [
                xp.take(
                    xp.take(c, _as_index(xp, index[k], c), axis=0),
                    _as_index(xp, index[(k + 1) % d], c),
                    axis=2,
                )
                for k, c in enumerate(cores)
            ]
        )
    if not rings:
        return None
    return _chain_sum(rings)


def _as_index(xp: Any, index: np.ndarray, like: Array) -> Array:
    return xp.asarray(index.astype(np.int64), device=B.device(like))


def _chain_sum(rings: Sequence[Sequence[Array]]) -> list[Array]:
    """One ring whose open chain is the sum of the rings' chains (closing bond shared).

    Ring ``j`` has closing size ``p_j``; the result has closing size ``max_j p_j``
    (smaller rings padded with zero rows / columns), the first cores side by side,
    the last cores stacked, and the interior cores block-diagonal. Its trace is the
    sum of the traces: a walk that enters ring ``j``'s block stays in it.
    """
    if len(rings) == 1:
        return list(rings[0])
    xp = B.namespace(rings[0][0])
    dtype, dev = rings[0][0].dtype, B.device(rings[0][0])
    p = max(int(r[0].shape[0]) for r in rings)

    def pad(core: Array, axis: int) -> Array:
        missing = p - int(core.shape[axis])
        if missing == 0:
            return core
        shape = list(core.shape)
        shape[axis] = missing
        return xp.concat([core, xp.zeros(tuple(shape), dtype=dtype, device=dev)], axis=axis)

    if len(rings[0]) == 1:
        total = pad(pad(rings[0][0], 0), 2)
        for r in rings[1:]:
            total = total + pad(pad(r[0], 0), 2)
        return [total]
    first = xp.concat([pad(r[0], 0) for r in rings], axis=2)
    middle = [_block_diag([r[k] for r in rings]) for k in range(1, len(rings[0]) - 1)]
    last = xp.concat([pad(r[-1], 2) for r in rings], axis=0)
    return [first, *middle, last]


def _qr_sweep(cores: list[Array], stop: int) -> Array | None:
    """Left-orthonormalize ``cores[:stop]`` in place, pushing each R factor to the right.

    With ``stop == d`` the last R (closing-bond factor, shape ``(s, r_0)``) is returned and
    the ring equals ``trace(Q_0 ... Q_{d-1} R)``; otherwise it is absorbed into
    ``cores[stop]`` and None is returned.
    """
    xp = B.namespace(cores[0])
    carry = None
    for k in range(stop):
        r, n, _ = (int(m) for m in cores[k].shape)
        q, carry = qr(xp.reshape(cores[k], (r * n, -1)))
        cores[k] = xp.reshape(q, (r, n, -1))
        if k + 1 < len(cores):
            cores[k + 1] = contract("ab,bnc->anc", carry, cores[k + 1])
            carry = None
    return carry


def _close(cores: Sequence[Array], factor: Array) -> list[Array]:
    """The ring ``trace(G_0 ... G_{d-1} factor)`` as cores (factor absorbed on the right)."""
    return [*cores[:-1], contract("anb,bc->anc", cores[-1], factor)]


def _sqrt_clipped(value: Array) -> Array:
    xp = B.namespace(value)
    real = xp.real(value) if B.is_complex(value) else value
    return xp.sqrt(xp.where(real > 0, real, xp.zeros_like(real)))


def _ring_norm(cores: Sequence[Array]) -> Array:
    """Norm of a ring through its orthonormal form ``trace(Z R)`` (see :func:`tr_norm`)."""
    if len(cores) == 1:
        return B.norm(contract("ana->n", cores[0]))
    work = list(cores)
    factor = _qr_sweep(work, len(work))
    assert factor is not None
    closed = _close(work, factor)
    return _sqrt_clipped(_transfer_inner(closed, closed))


def _zeros_like_tr(t: TRTensor) -> TRTensor:
    xp = B.namespace(t.cores[0])
    return TRTensor([xp.zeros((1, n, 1), dtype=t.dtype, device=t.device) for n in t.shape])
