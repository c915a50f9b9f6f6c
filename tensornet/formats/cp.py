"""CP (canonical polyadic / CANDECOMP-PARAFAC) format and its native algebra.

Layout: ``weights.shape == (R,)`` and ``factors[k].shape == (n_k, R)``, so that::

    X[i_0, ..., i_{d-1}] = sum_r weights[r] * F_0[i_0, r] * ... * F_{d-1}[i_{d-1}, r]

``R`` is :attr:`CPTensor.rank`; :attr:`CPTensor.ranks` is the one-element tuple ``(R,)``
(every format has a ``ranks`` tuple). Nothing here densifies the tensor unless its
name says so (``to_dense``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import _describe, check_same_namespace
from tensornet.contract import contract
from tensornet.formats._base import TensorFormat, check_scalar, common_dtype, dtype_name
from tensornet.formats.tr import TRTensor
from tensornet.formats.tt import TTTensor, tt_norm
from tensornet.formats.tucker import einsum_symbols

__all__ = [
    "CPTensor",
    "cp_add",
    "cp_norm",
    "cp_scale",
    "cp_to_dense",
    "cp_to_tr",
    "cp_to_tt",
]

_CANCELLATION_RATIO = 1.0 / 16.0
"""cp_norm leaves the Gram formula when ``||x||^2`` is below this fraction of its scale."""


def _check_weights_and_factors(weights: Any, factors: Any) -> tuple[Array, tuple[Array, ...]]:
    if not B.is_array(weights):
        raise TypeError(f"weights must be an array, got {_describe(weights)}")
    xp = B.namespace(weights)
    if not xp.isdtype(weights.dtype, ("real floating", "complex floating")):
        raise TypeError(f"weights must have a floating dtype, got {weights.dtype}")
    if weights.ndim != 1 or int(weights.shape[0]) == 0:
        raise ValueError(f"weights must have shape (R,) with R >= 1, got {tuple(weights.shape)}")
    rank = int(weights.shape[0])
    if (
        B.is_array(factors)
        or not isinstance(factors, Sequence)
        or isinstance(factors, (str, bytes))
    ):
        raise TypeError(f"factors must be a sequence of arrays, got {type(factors).__name__}")
    if len(factors) == 0:
        raise ValueError("factors must contain at least one factor, got an empty sequence")
    for k, f in enumerate(factors):
        if not B.is_array(f):
            raise TypeError(f"factors[{k}] must be an array, got {type(f).__name__}")
        if f.ndim != 2 or int(f.shape[1]) != rank or int(f.shape[0]) == 0:
            raise ValueError(
                f"factors[{k}] must have shape (n_{k}, {rank}) (R == weights.shape[0] == "
                f"{rank}), got shape {tuple(f.shape)}"
            )
    checked = tuple(factors)
    check_same_namespace([weights, *checked], "weights and factors")
    return weights, checked


@dataclass(frozen=True, eq=False, repr=False)
class CPTensor(TensorFormat):
    """A tensor in CP (canonical polyadic) format: a weighted sum of ``R`` rank-one terms.

    Parameters
    ----------
    weights : array, shape (R,)
        Weight of each rank-one term.
    factors : sequence of arrays
        ``factors[k]`` of shape ``(n_k, R)``; column ``r`` is the mode-``k`` vector of term
        ``r``. Weights and factors share one array library, dtype and device.

    Attributes
    ----------
    weights : array
    factors : tuple of arrays
    shape : tuple of int
        ``(n_0, ..., n_{d-1})``.
    rank : int
        ``R``, the number of rank-one terms.
    ranks : tuple of int
        ``(R,)``.

    Raises
    ------
    TypeError
        If weights or a factor is not a floating array, or they mix libraries or dtypes.
    ValueError
        If ``weights`` is not 1-d, ``factors`` is empty, or a factor does not have ``R``
        columns.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.cp import CPTensor
    >>> t = CPTensor(np.array([2.0, 1.0]), [np.ones((3, 2)), np.ones((4, 2))])
    >>> t
    CPTensor(shape=(3, 4), rank=2, dtype=float64, num_params=16)
    >>> float(t.to_dense()[0, 0])
    3.0
    """

    weights: Array
    factors: Sequence[Array]  # stored as a tuple

    def __post_init__(self) -> None:
        _, factors = _check_weights_and_factors(self.weights, self.factors)
        object.__setattr__(self, "factors", factors)

    # -- summary properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(int(f.shape[0]) for f in self.factors)

    @property
    def rank(self) -> int:
        """Number of rank-one terms ``R``."""
        return int(self.weights.shape[0])

    @property
    def ranks(self) -> tuple[int, ...]:
        """``(R,)``: the CP rank as a tuple, like every format's ``ranks``."""
        return (self.rank,)

    @property
    def num_params(self) -> int:
        """``R * (1 + sum(shape))``: weights plus factor entries."""
        return self.rank * (1 + sum(self.shape))

    @property
    def dtype(self) -> Any:
        """Dtype of the weights and factors."""
        return self.weights.dtype

    @property
    def device(self) -> Any:
        """Device of the weights and factors."""
        return B.device(self.weights)

    def __repr__(self) -> str:
        return (
            f"CPTensor(shape={self.shape}, rank={self.rank}, dtype={dtype_name(self.dtype)}, "
            f"num_params={self.num_params})"
        )

    # -- delegating methods -------------------------------------------------------------
    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries)."""
        return cp_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying."""
        return cp_norm(self)

    def _add(self, other: Any) -> CPTensor:
        return cp_add(self, other)

    def _scale(self, alpha: Any) -> CPTensor:
        return cp_scale(self, alpha)


def _check_cp(t: object, name: str) -> CPTensor:
    if not isinstance(t, CPTensor):
        raise TypeError(f"{name} must be a CPTensor, got {type(t).__name__}")
    return t


# -- dense conversion, norm, algebra ---------------------------------------------------------------
def cp_to_dense(t: CPTensor) -> Array:
    """Sum the rank-one terms: the full tensor of shape ``t.shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.cp import CPTensor, cp_to_dense
    >>> cp_to_dense(CPTensor(np.ones(2), [np.ones((3, 2)), np.ones((4, 2))])).shape
    (3, 4)
    """
    t = _check_cp(t, "t")
    modes = einsum_symbols(t.order)
    r = einsum_symbols(1, start=t.order)
    equation = ",".join([r, *(m + r for m in modes)]) + "->" + modes
    return contract(equation, t.weights, *t.factors)


def _gram_product(factors: Sequence[Array]) -> Array:
    """Hadamard product of the Gram matrices ``F_k^H F_k`` (R x R)."""
    xp = B.namespace(factors[0])
    result = None
    for f in factors:
        gram = B.conj(xp.matrix_transpose(f)) @ f
        result = gram if result is None else result * gram
    return result


def cp_norm(t: CPTensor) -> Array:
    """Frobenius norm without densifying.

    ``||t||^2 = w^H (G_0 * ... * G_{d-1}) w`` with the Gram matrices ``G_k = F_k^H F_k``
    (``*`` elementwise), cost ``O(sum_k n_k R^2)``. That formula cancels when the
    terms nearly cancel each other (e.g. ``t - t``, or the degenerate, nearly collinear
    terms CP-ALS can produce): when the result is below 1/16 of
    ``|w|^T (|G_0| * ... * |G_{d-1}|) |w|``, the norm is recomputed from the
    orthogonalized TT form of ``t`` (:func:`cp_to_tt`, :func:`tensornet.tt_norm`, cost
    ``O(sum_k n_k R^3)``), which has no cancellation.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.cp import CPTensor, cp_norm
    >>> t = CPTensor(np.array([1.0, 2.0]), [np.eye(3, 2), np.ones((4, 2))])
    >>> bool(np.isclose(cp_norm(t), np.linalg.norm(t.to_dense())))
    True
    """
    t = _check_cp(t, "t")
    xp = B.namespace(t.weights)
    w = t.weights
    value = xp.real(B.conj(w) @ (_gram_product(t.factors) @ w))
    scale = xp.abs(w) @ (_gram_product([xp.abs(f) for f in t.factors]) @ xp.abs(w))
    if float(value) >= _CANCELLATION_RATIO * float(scale):
        return xp.sqrt(value)
    return tt_norm(cp_to_tt(t))


def cp_scale(t: CPTensor, alpha: Any) -> CPTensor:
    """Multiply ``t`` by the scalar ``alpha`` (scales the weights)."""
    t = _check_cp(t, "t")
    alpha = check_scalar(alpha)
    xp = B.namespace(t.weights)
    weights = t.weights * alpha  # may promote (complex alpha, float64 scalar on float32)
    return CPTensor(weights, [xp.astype(f, weights.dtype) for f in t.factors])


def cp_add(a: CPTensor, b: CPTensor) -> CPTensor:
    """Sum of two CP tensors of the same shape: the terms are concatenated (rank ``R_a + R_b``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.cp import CPTensor, cp_add
    >>> t = CPTensor(np.ones(1), [np.ones((3, 1)), np.ones((2, 1))])
    >>> s = cp_add(t, t)
    >>> s.rank, bool(np.allclose(s.to_dense(), 2 * t.to_dense()))
    (2, True)
    """
    a = _check_cp(a, "a")
    b = _check_cp(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    xp, dtype = common_dtype([a.weights, b.weights], "weights of a and b")
    weights = xp.concat([xp.astype(a.weights, dtype), xp.astype(b.weights, dtype)])
    factors = [
        xp.concat([xp.astype(fa, dtype), xp.astype(fb, dtype)], axis=1)
        for fa, fb in zip(a.factors, b.factors)
    ]
    return CPTensor(weights, factors)


def _diagonal_cores(t: CPTensor) -> list[Array]:
    """``D_k[r, i, s] = delta_rs F_k[i, r]`` of shape (R, n_k, R), weights in the first."""
    xp = B.namespace(t.weights)
    eye = xp.eye(t.rank, dtype=t.dtype, device=t.device)
    cores = [contract("ir,rs->ris", f, eye) for f in t.factors]
    cores[0] = contract("ris,r->ris", cores[0], t.weights)
    return cores


def cp_to_tt(t: CPTensor) -> TTTensor:
    """Exact tensor-train form of a CP tensor (ranks ``(1, R, ..., R, 1)``).

    First core ``F_0 diag(w)`` as ``(1, n_0, R)``, middle cores diagonal
    (``G_k[r, i, s] = delta_rs F_k[i, r]``), last core ``F_{d-1}^T`` as ``(R, n_{d-1}, 1)``.
    Round with :func:`tensornet.tt_round` to compress further.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.cp import CPTensor, cp_to_tt
    >>> t = CPTensor(np.ones(2), [np.ones((3, 2)), np.ones((4, 2)), np.ones((5, 2))])
    >>> tt = cp_to_tt(t)
    >>> tt.ranks, bool(np.allclose(tt.to_dense(), t.to_dense()))
    ((1, 2, 2, 1), True)
    """
    t = _check_cp(t, "t")
    xp = B.namespace(t.weights)
    if t.order == 1:
        return TTTensor([xp.reshape(t.factors[0] @ t.weights, (1, t.shape[0], 1))])
    first = xp.reshape(t.factors[0] * t.weights, (1, t.shape[0], t.rank))
    last = xp.reshape(xp.matrix_transpose(t.factors[-1]), (t.rank, t.shape[-1], 1))
    return TTTensor([first, *_diagonal_cores(t)[1:-1], last])


def cp_to_tr(t: CPTensor) -> TRTensor:
    """Exact tensor-ring form of a CP tensor: the diagonal ring, ranks ``(R, ..., R)``.

    Every core is diagonal in its bonds, ``G_k[r, i, s] = delta_rs F_k[i, r]``, with the
    weights in the first core, so ``trace(G_0[:, i_0, :] ... G_{d-1}[:, i_{d-1}, :])``
    is the CP sum. This is the ring CP is a special case of (Zhao et al. 2016): every
    cyclic shift of it is again diagonal. For the cheaper ring with ``r_0 = 1``
    (``2 n R + (d - 2) n R^2`` entries instead of ``d n R^2``), take :func:`cp_to_tt`
    and view the train as a ring (``TRTensor(cp_to_tt(t).cores)``).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.formats.cp import CPTensor, cp_to_tr
    >>> t = CPTensor(np.ones(2), [np.ones((3, 2)), np.ones((4, 2))])
    >>> tr = cp_to_tr(t)
    >>> tr.ranks, bool(np.allclose(tr.to_dense(), t.to_dense()))
    ((2, 2, 2), True)
    """
    t = _check_cp(t, "t")
    return TRTensor(_diagonal_cores(t))
