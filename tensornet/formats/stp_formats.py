"""Semi-tensor-product (STP) formats: STTucker, STT and STR.

Each replaces some factors of an ordinary format by Kronecker products with the
identity ``I_k`` (see :mod:`tensornet.stp`), so a factor of size ``(p k, q k)`` is
stored as ``(p, q)``: ``k**2`` fewer entries. ``A ⊗ I_k`` has entry ``[a k + s, b k + t]
= A[a, b] delta(s, t)`` (NumPy's ``kron``), so a bond of size ``R`` whose index is
``(a, s)`` in C order carries a *reduced* index ``a < R / k`` and a *copy* index
``s < k``. In every case below ``R`` denotes a size of the equivalent ordinary format
and ``R / k`` a stored size.

- **STTucker** (:class:`STTuckerTensor`): ``X = G x_0 (U_0 ⊗ I_k) ... x_{d-1} (U_{d-1} ⊗ I_k)``
  with ``core G`` of shape ``(R_0, ..., R_{d-1})`` and ``U_n`` of shape ``(n_n / k, R_n / k)``
  (or ``None``: mode not factored). Equals the Tucker tensor with factors ``U_n ⊗ I_k``.
- **STT** (:class:`STTTensor`): ``X(i) = G_0(i_0) ⋉ G_1(i_1) ⋉ ... ⋉ G_{d-1}(i_{d-1})`` with
  first and last cores full, ``(1, n_0, R_1)`` and ``(R_{d-1}, n_{d-1}, 1)``, and middle
  cores reduced, ``(R_j / k, n_j, R_{j+1} / k)``. The STP chain is the ordinary product
  ``G_0(i_0) (G_1(i_1) ⊗ I_k) ... (G_{d-2}(i_{d-2}) ⊗ I_k) G_{d-1}(i_{d-1})``: the TT
  with middle cores ``G_j ⊗ I_k`` (slice-wise).
- **STR** (:class:`STRTensor`): ``X(i) = trace(G_0(i_0) ⋉ ... ⋉ G_{d-1}(i_{d-1}))`` with
  ``G_0`` full, ``(R_0, n_0, R_1)``, and the others reduced, ``(R_j / k, n_j, R_{j+1} / k)``
  (``R_d = R_0``): the TR with cores ``G_0, G_1 ⊗ I_k, ..., G_{d-1} ⊗ I_k``.

Identities (tested in ``tests/test_stp_formats.py``, derived in docs/conventions.md):

- With ``k = 1`` each format *is* its ordinary format with the same arrays.
- STR: ``trace(G_0 (P ⊗ I_k)) = trace(ptr_k(G_0) P)`` where ``ptr_k`` sums the ``k``
  diagonal ``(s, s)`` blocks. An STR is therefore exactly the TR of ranks ``R / k`` with
  first core ``ptr_k(G_0)`` (:func:`str_to_tr` with ``compact=True``); only ``1 / k**2``
  of ``G_0``'s entries matter.
- STT: ``X(i) = sum_s F(i_0)[s, :] M L(i_{d-1})[:, s]`` with ``F[s, i, a] = G_0[0, i, a k + s]``,
  ``L[c, l, s] = G_{d-1}[c k + s, l, 0]`` and ``M`` the product of the middle cores: the TR
  of ranks ``(k, R_1/k, ..., R_{d-1}/k, k)`` with the same stored entries (:func:`stt_to_tr`).

Nothing here densifies the tensor unless its name says so (``to_dense``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_int, check_same_namespace, check_shape
from tensornet.contract import contract
from tensornet.formats._base import (
    CoreSequenceFormat,
    TensorFormat,
    check_same_shape,
    check_scalar,
    common_dtype,
    dtype_name,
)
from tensornet.formats.tr import TRTensor, _block_diag, _chain_sum, tr_norm
from tensornet.formats.tt import TTTensor, _check_cores, tt_norm
from tensornet.formats.tucker import (
    TuckerTensor,
    _check_core_and_factors,
    check_modes,
    check_tucker_ranks,
    tucker_to_dense,
)
from tensornet.linalg import qr
from tensornet.stp import stp_mode_product

__all__ = [
    "STRTensor",
    "STTTensor",
    "STTuckerTensor",
    "kron_identity",
    "partial_trace",
    "str_add",
    "str_core_shapes",
    "str_num_params",
    "str_scale",
    "str_to_tr",
    "stt_add",
    "stt_core_shapes",
    "stt_num_params",
    "stt_scale",
    "stt_to_dense",
    "stt_to_tr",
    "stt_to_tt",
    "sttucker_add",
    "sttucker_norm",
    "sttucker_num_params",
    "sttucker_scale",
    "sttucker_to_dense",
    "sttucker_to_tucker",
]


# -- Kronecker structure helpers -------------------------------------------------------------------
def check_k(k: object, name: str = "k") -> int:
    """Validate the identity size ``k`` (an int >= 1)."""
    return check_int(k, name, minimum=1)


def kron_identity(core: Array, k: int) -> Array:
    """Slice-wise ``G[:, i, :] ⊗ I_k``: a core ``(r, n, s)`` becomes ``(r k, n, s k)``.

    Entry ``[a k + u, i, b k + v]`` is ``G[a, i, b]`` if ``u == v`` and 0 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(6.0).reshape(2, 1, 3)
    >>> bool(np.array_equal(kron_identity(g, 2)[:, 0, :], np.kron(g[:, 0, :], np.eye(2))))
    True
    """
    k = check_k(k)
    if k == 1:
        return core
    xp = B.namespace(core)
    r, n, s = (int(m) for m in core.shape)
    eye = xp.eye(k, dtype=core.dtype, device=B.device(core))
    return xp.reshape(contract("aib,uv->auibv", core, eye), (r * k, n, s * k))


def partial_trace(core: Array, k: int) -> Array:
    """Sum of the ``k`` diagonal blocks: ``(R, n, S)`` to ``(R / k, n, S / k)``.

    ``out[a, i, b] = sum_s core[a k + s, i, b k + s]``; the adjoint of
    :func:`kron_identity` (``<kron_identity(G, k), C> = <G, partial_trace(C, k)>``).

    Raises
    ------
    ValueError
        If ``k`` does not divide both bond sizes.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.arange(6.0).reshape(2, 1, 3)
    >>> bool(np.array_equal(partial_trace(kron_identity(g, 2), 2), 2 * g))
    True
    """
    k = check_k(k)
    if k == 1:
        return core
    r, n, s = (int(m) for m in core.shape)
    if r % k or s % k:
        raise ValueError(f"k = {k} must divide both bond sizes of the core, got shape {(r, n, s)}")
    xp = B.namespace(core)
    blocks = xp.permute_dims(xp.reshape(core, (r // k, k, n, s // k, k)), (0, 2, 3, 1, 4))
    flat = xp.reshape(blocks, (r // k, n, s // k, k * k))
    diagonal = xp.asarray(np.arange(k) * (k + 1), device=B.device(core))
    return xp.sum(xp.take(flat, diagonal, axis=3), axis=3)


# -- shared parsing of ranks (sizes of the equivalent ordinary format) ----------------------------
def _check_divides(k: int, size: int, what: str) -> None:
    if size % k:
        raise ValueError(f"k = {k} must divide {what} = {size}")


def _parse_chain_ranks(ranks: object, d: int, *, ring: bool, name: str) -> tuple[int, ...]:
    """``ranks`` as the full tuple of the equivalent TT (``ring=False``) or TR."""
    from tensornet.random import _requested_ranks, _requested_tr_ranks

    return (_requested_tr_ranks if ring else _requested_ranks)(ranks, d, name)


def stt_core_shapes(shape: Sequence[int], ranks: object, k: int) -> list[tuple[int, int, int]]:
    """Stored core shapes of an STT of the given shape, ranks and ``k``.

    ``ranks`` are those of the equivalent TT: one int, the ``d - 1`` bond sizes, or the
    full tuple ``(1, R_1, ..., R_{d-1}, 1)``. ``k`` must divide every bond that touches a
    middle core (all interior bonds when ``d >= 3``).

    Examples
    --------
    >>> stt_core_shapes((4, 5, 6, 7), 6, 2)
    [(1, 4, 6), (3, 5, 3), (3, 6, 3), (6, 7, 1)]
    """
    sizes = check_shape(shape, "shape")
    k = check_k(k)
    d = len(sizes)
    full = _parse_chain_ranks(ranks, d, ring=False, name="ranks")
    out = []
    for j, n in enumerate(sizes):
        if 0 < j < d - 1:
            _check_divides(k, full[j], f"ranks[{j}] (left bond of middle core {j})")
            _check_divides(k, full[j + 1], f"ranks[{j + 1}] (right bond of middle core {j})")
            out.append((full[j] // k, n, full[j + 1] // k))
        else:
            out.append((full[j], n, full[j + 1]))
    return out


def str_core_shapes(shape: Sequence[int], ranks: object, k: int) -> list[tuple[int, int, int]]:
    """Stored core shapes of an STR of the given shape, ranks and ``k``.

    ``ranks`` are those of the equivalent TR: one int, the ``d`` bond sizes
    ``(R_0, ..., R_{d-1})``, or ``(R_0, ..., R_{d-1}, R_0)``. ``k`` must divide every bond
    that touches a reduced core (all bonds when ``d >= 2``).

    Examples
    --------
    >>> str_core_shapes((4, 5, 6), 6, 3)
    [(6, 4, 6), (2, 5, 2), (2, 6, 2)]
    """
    sizes = check_shape(shape, "shape")
    k = check_k(k)
    d = len(sizes)
    full = _parse_chain_ranks(ranks, d, ring=True, name="ranks")
    out = [(full[0], sizes[0], full[1])]
    for j in range(1, d):
        _check_divides(k, full[j], f"ranks[{j}] (left bond of reduced core {j})")
        _check_divides(k, full[j + 1], f"ranks[{j + 1}] (right bond of reduced core {j})")
        out.append((full[j] // k, sizes[j], full[j + 1] // k))
    return out


def stt_num_params(shape: Sequence[int], ranks: object, k: int) -> int:
    """Number of stored entries of an STT (before fitting one); see :func:`stt_core_shapes`.

    ``n_0 R_1 + sum_{0<j<d-1} n_j R_j R_{j+1} / k**2 + R_{d-1} n_{d-1}`` for ``d >= 2``
    (``n_0`` for ``d = 1``).

    Examples
    --------
    >>> stt_num_params((4, 5, 6, 7), 6, 2), stt_num_params((4, 5, 6, 7), 6, 1)
    (165, 462)
    """
    return sum(math.prod(s) for s in stt_core_shapes(shape, ranks, k))


def str_num_params(shape: Sequence[int], ranks: object, k: int) -> int:
    """Number of stored entries of an STR (before fitting one); see :func:`str_core_shapes`.

    ``R_0 n_0 R_1 + sum_{j>0} n_j R_j R_{j+1} / k**2`` with ``R_d = R_0``.

    Examples
    --------
    >>> str_num_params((4, 5, 6), 6, 3), str_num_params((4, 5, 6), 6, 1)
    (188, 540)
    """
    return sum(math.prod(s) for s in str_core_shapes(shape, ranks, k))


def _sttucker_plan(
    shape: Sequence[int], ranks: object, k: int, modes: object
) -> tuple[tuple[int, ...], dict[int, int]]:
    """Parsed sizes and ``{factored mode: R_n}`` with ``k | n_n`` and ``k | R_n`` checked."""
    sizes = check_shape(shape, "shape")
    k = check_k(k)
    factored = check_modes(modes, len(sizes))
    full = check_tucker_ranks(ranks, factored, sizes)
    for m in factored:
        _check_divides(k, sizes[m], f"shape[{m}] (size of factored mode {m})")
        _check_divides(k, full[m], f"ranks of mode {m}")
        if full[m] > sizes[m]:
            raise ValueError(f"the rank of mode {m} must be <= its size {sizes[m]}, got {full[m]}")
    return sizes, full


def sttucker_num_params(
    shape: Sequence[int], ranks: object, k: int, *, modes: int | Sequence[int] | None = None
) -> int:
    """Number of stored entries of an STTucker tensor (before fitting one).

    ``prod(R) + sum_n n_n R_n / k**2`` over the factored ``modes`` (unfactored modes keep
    their size in the core). ``ranks`` as in :func:`tensornet.hosvd`; ``k`` must divide the
    size and the rank of every factored mode.

    Examples
    --------
    >>> sttucker_num_params((8, 8, 8), 4, 2), sttucker_num_params((8, 8, 8), 4, 1)
    (88, 160)
    """
    sizes, full = _sttucker_plan(shape, ranks, k, modes)
    core = math.prod(full.get(m, n) for m, n in enumerate(sizes))
    return core + sum(sizes[m] * full[m] // (k * k) for m in full)


# -- chains of full and reduced cores --------------------------------------------------------------
def _reduced(d: int, ring: bool) -> tuple[bool, ...]:
    """Which cores are stored reduced: STT all but the ends, STR all but the first."""
    return tuple(j > 0 and (ring or j < d - 1) for j in range(d))


def _check_chain(cores: object, k: object, *, ring: bool) -> tuple[tuple[Array, ...], int]:
    checked = _check_cores(cores, 3, "cores")
    k = check_k(k)
    reduced = _reduced(len(checked), ring)
    scales = [k if r else 1 for r in reduced]
    lefts = [int(c.shape[0]) * s for c, s in zip(checked, scales)]
    rights = [int(c.shape[2]) * s for c, s in zip(checked, scales)]
    for j in range(len(checked) - 1):
        if rights[j] != lefts[j + 1]:
            raise ValueError(
                f"cores[{j}] and cores[{j + 1}] do not share a bond with k = {k}: the right "
                f"bond of cores[{j}] is {rights[j]} and the left bond of cores[{j + 1}] is "
                f"{lefts[j + 1]} in the equivalent ordinary format (a reduced core's stored "
                "bond sizes are multiplied by k; a full core next to a reduced one must have a "
                "multiple of k there)"
            )
    if ring and rights[-1] != lefts[0]:
        raise ValueError(
            f"cores must close the ring with k = {k}: the last core's right bond is "
            f"{rights[-1]} but cores[0]'s left bond is {lefts[0]} (the last core is reduced, "
            "so its stored size is multiplied by k)"
        )
    if not ring and (lefts[0] != 1 or rights[-1] != 1):
        raise ValueError(
            f"cores must have boundary ranks 1: cores[0].shape[0] == cores[-1].shape[2] == 1, "
            f"got {lefts[0]} and {rights[-1]}"
        )
    return checked, k


def _equivalent_cores(cores: Sequence[Array], k: int, ring: bool) -> list[Array]:
    reduced = _reduced(len(cores), ring)
    return [kron_identity(c, k) if r else c for c, r in zip(cores, reduced)]


class _STChain(CoreSequenceFormat):
    """Shared properties of STT and STR: cores plus the identity size ``k``."""

    cores: Sequence[Array]
    k: int
    _ring = False

    def __post_init__(self) -> None:
        cores, k = _check_chain(self.cores, self.k, ring=self._ring)
        object.__setattr__(self, "cores", cores)
        object.__setattr__(self, "k", k)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def reduced(self) -> tuple[bool, ...]:
        """For each core, whether it is stored reduced (enters the chain as ``G ⊗ I_k``)."""
        return _reduced(len(self.cores), self._ring)

    @property
    def ranks(self) -> tuple[int, ...]:
        """Bond sizes of the equivalent ordinary format, length d + 1 (see the module)."""
        first = self.cores[0]
        scales = [self.k if r else 1 for r in self.reduced]
        return (int(first.shape[0]), *(int(c.shape[2]) * s for c, s in zip(self.cores, scales)))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(shape={self.shape}, ranks={self.ranks}, k={self.k}, "
            f"dtype={dtype_name(self.dtype)}, num_params={self.num_params})"
        )


@dataclass(frozen=True, eq=False, repr=False)
class STTTensor(_STChain):
    """A tensor in semi-tensor-train (STT) format.

    ``X(i) = G_0(i_0) ⋉ G_1(i_1) ⋉ ... ⋉ G_{d-1}(i_{d-1})``: the TT whose middle cores are
    ``G_j ⊗ I_k`` slice-wise (see :mod:`tensornet.formats.stp_formats`).

    Parameters
    ----------
    cores : sequence of arrays
        ``cores[0]`` of shape ``(1, n_0, R_1)``, middle cores ``(R_j / k, n_j, R_{j+1} / k)``,
        ``cores[-1]`` of shape ``(R_{d-1}, n_{d-1}, 1)``; one array library, dtype and device.
    k : int
        Size of the identity factor (>= 1); ``k = 1`` is an ordinary TT.

    Attributes
    ----------
    cores : tuple of arrays
    k : int
    shape : tuple of int
    ranks : tuple of int
        ``(1, R_1, ..., R_{d-1}, 1)``, the ranks of the equivalent TT (:meth:`to_tt`).
    num_params : int
        Stored entries, :func:`stt_num_params`.

    Raises
    ------
    TypeError
        If a core is not a floating array, or the cores mix libraries or dtypes.
    ValueError
        If the bonds do not match with this ``k`` (``k`` must divide the bonds of middle
        cores) or the boundary ranks are not 1.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import STTTensor
    >>> t = STTTensor([np.ones((1, 2, 4)), np.ones((2, 3, 2)), np.ones((4, 2, 1))], k=2)
    >>> t
    STTTensor(shape=(2, 3, 2), ranks=(1, 4, 4, 1), k=2, dtype=float64, num_params=28)
    >>> float(t.to_dense()[0, 0, 0])
    8.0
    """

    cores: Sequence[Array]
    k: int = 1

    def to_tt(self) -> TTTensor:
        """The TT it equals exactly (middle cores ``G_j ⊗ I_k``); see :func:`stt_to_tt`."""
        return stt_to_tt(self)

    def to_tr(self) -> TRTensor:
        """The TR of ranks ``(k, R_1/k, ..., k)`` it equals exactly; see :func:`stt_to_tr`."""
        return stt_to_tr(self)

    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries); see :func:`stt_to_dense`."""
        return stt_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying (on the equivalent TT)."""
        return tt_norm(self.to_tt())

    def _add(self, other: Any) -> STTTensor:
        return stt_add(self, other)

    def _scale(self, alpha: Any) -> STTTensor:
        return stt_scale(self, alpha)


@dataclass(frozen=True, eq=False, repr=False)
class STRTensor(_STChain):
    """A tensor in semi-tensor-ring (STR) format.

    ``X(i) = trace(G_0(i_0) ⋉ G_1(i_1) ⋉ ... ⋉ G_{d-1}(i_{d-1}))``: the TR with cores
    ``G_0, G_1 ⊗ I_k, ..., G_{d-1} ⊗ I_k`` (see :mod:`tensornet.formats.stp_formats`; it also
    equals the TR of ranks ``R / k`` given by ``str_to_tr(t, compact=True)``).

    Parameters
    ----------
    cores : sequence of arrays
        ``cores[0]`` of shape ``(R_0, n_0, R_1)``, the others ``(R_j / k, n_j, R_{j+1} / k)``
        with ``R_d = R_0``; one array library, dtype and device.
    k : int
        Size of the identity factor (>= 1); ``k = 1`` is an ordinary TR.

    Attributes
    ----------
    cores : tuple of arrays
    k : int
    shape : tuple of int
    ranks : tuple of int
        ``(R_0, R_1, ..., R_{d-1}, R_0)``, the ranks of the equivalent TR (:meth:`to_tr`).
    num_params : int
        Stored entries, :func:`str_num_params`.

    Raises
    ------
    TypeError
        If a core is not a floating array, or the cores mix libraries or dtypes.
    ValueError
        If the bonds do not match with this ``k`` or the ring does not close.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import STRTensor
    >>> t = STRTensor([np.ones((4, 2, 4)), np.ones((2, 3, 2))], k=2)
    >>> t
    STRTensor(shape=(2, 3), ranks=(4, 4, 4), k=2, dtype=float64, num_params=44)
    >>> float(t.to_dense()[0, 0])  # trace of (ones(4, 4) @ (ones(2, 2) kron I_2))
    8.0
    """

    cores: Sequence[Array]
    k: int = 1
    _ring = True

    def to_tr(self, *, compact: bool = False) -> TRTensor:
        """The TR it equals exactly; see :func:`str_to_tr`."""
        return str_to_tr(self, compact=compact)

    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries), through the compact TR."""
        return self.to_tr(compact=True).to_dense()

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying (on the compact TR)."""
        return tr_norm(self.to_tr(compact=True))

    def _add(self, other: Any) -> STRTensor:
        return str_add(self, other)

    def _scale(self, alpha: Any) -> STRTensor:
        return str_scale(self, alpha)


def _check_type(t: object, cls: type, name: str) -> Any:
    if not isinstance(t, cls):
        raise TypeError(f"{name} must be an {cls.__name__}, got {type(t).__name__}")
    return t


def stt_to_tt(t: STTTensor) -> TTTensor:
    """The TT that ``t`` equals exactly: middle cores become ``G_j ⊗ I_k`` (slice-wise).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_stt
    >>> t = random_stt((4, 5, 6, 7), 4, k=2, rng=0)
    >>> tt = stt_to_tt(t)
    >>> tt.ranks, tt.num_params, t.num_params
    ((1, 4, 4, 4, 1), 220, 88)
    >>> bool(np.allclose(tt.to_dense(), t.to_dense()))
    True
    """
    t = _check_type(t, STTTensor, "t")
    return TTTensor(_equivalent_cores(t.cores, t.k, ring=False))


def stt_to_tr(t: STTTensor) -> TRTensor:
    """The TR of ranks ``(k, R_1/k, ..., R_{d-1}/k, k)`` that ``t`` equals, same entry count.

    ``X(i) = G_0(i_0) (M ⊗ I_k) G_{d-1}(i_{d-1}) = sum_s F(i_0)[s, :] M L(i_{d-1})[:, s]`` with
    ``M`` the product of the middle cores, ``F[s, i, a] = G_0[0, i, a k + s]`` and
    ``L[c, l, s] = G_{d-1}[c k + s, l, 0]``: the copy index ``s`` becomes the closing bond of
    a ring whose interior bonds are the stored sizes. With ``d <= 2`` (no middle core) the
    result is the TT itself as a ring (closing rank 1).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_stt
    >>> t = random_stt((4, 5, 6, 7), 6, k=3, rng=0)
    >>> r = stt_to_tr(t)
    >>> r.ranks, r.num_params == t.num_params
    ((3, 2, 2, 2, 3), True)
    >>> bool(np.allclose(r.to_dense(), t.to_dense()))
    True
    """
    t = _check_type(t, STTTensor, "t")
    if len(t.cores) <= 2:
        return TRTensor(t.cores)
    xp = B.namespace(t.cores[0])
    k = t.k
    first, last = t.cores[0], t.cores[-1]
    n0, r1 = int(first.shape[1]), int(first.shape[2])
    rl, nl = int(last.shape[0]), int(last.shape[1])
    f = xp.permute_dims(xp.reshape(first, (n0, r1 // k, k)), (2, 0, 1))
    tail = xp.permute_dims(xp.reshape(last, (rl // k, k, nl)), (0, 2, 1))
    return TRTensor([f, *t.cores[1:-1], tail])


def str_to_tr(t: STRTensor, *, compact: bool = False) -> TRTensor:
    """The TR that ``t`` equals exactly.

    Parameters
    ----------
    t : STRTensor
    compact : bool
        False (default): ranks ``t.ranks``, cores ``G_0, G_j ⊗ I_k``. True: ranks
        ``t.ranks / k`` (exact as well), cores ``partial_trace(G_0, k), G_1, ..., G_{d-1}``,
        because ``trace(G_0 (P ⊗ I_k)) = trace(partial_trace(G_0) P)``. An order-1 STR has
        no reduced core and is returned as the TR of its one core either way.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_str
    >>> t = random_str((4, 5, 6), 6, k=2, rng=0)
    >>> str_to_tr(t).ranks, str_to_tr(t, compact=True).ranks
    ((6, 6, 6, 6), (3, 3, 3, 3))
    >>> bool(np.allclose(str_to_tr(t, compact=True).to_dense(), str_to_tr(t).to_dense()))
    True
    """
    t = _check_type(t, STRTensor, "t")
    if not compact:
        return TRTensor(_equivalent_cores(t.cores, t.k, ring=True))
    if len(t.cores) == 1:  # no reduced core: the ring of G_0 alone
        return TRTensor(t.cores)
    return TRTensor([partial_trace(t.cores[0], t.k), *t.cores[1:]])


def stt_to_dense(t: STTTensor) -> Array:
    """Contract an STT into the full tensor, using its Kronecker structure.

    The running product ``(prod n_<j, R_j)`` is viewed as ``(prod n_<j, R_j / k, k)`` and
    contracted with the stored middle core: ``k`` times fewer operations than on the
    equivalent TT.

    Examples
    --------
    >>> import numpy as np
    >>> t = STTTensor([np.ones((1, 2, 2)), np.ones((1, 3, 1)), np.ones((2, 2, 1))], k=2)
    >>> stt_to_dense(t).shape
    (2, 3, 2)
    """
    t = _check_type(t, STTTensor, "t")
    xp = B.namespace(t.cores[0])
    k = t.k
    result = xp.reshape(t.cores[0], (-1, int(t.cores[0].shape[2])))
    for core, reduced in zip(t.cores[1:], t.reduced[1:]):
        if reduced:
            left = xp.reshape(result, (int(result.shape[0]), -1, k))  # (N, R/k, k)
            step = contract("msu,snr->mnru", left, core)  # (N, n, R'/k, k)
        else:
            step = contract("ms,snr->mnr", result, core)
        result = xp.reshape(step, (-1, int(core.shape[2]) * (k if reduced else 1)))
    return xp.reshape(result, t.shape)


def _scale_chain(t: Any, alpha: Any, cls: type) -> Any:
    t = _check_type(t, cls, "t")
    alpha = check_scalar(alpha)
    first = t.cores[0] * alpha  # may promote (complex alpha, float64 scalar on float32)
    xp = B.namespace(first)
    return cls([first, *(xp.astype(c, first.dtype) for c in t.cores[1:])], k=t.k)


def stt_scale(t: STTTensor, alpha: Any) -> STTTensor:
    """``alpha * t`` (scales the first core)."""
    return _scale_chain(t, alpha, STTTensor)


def str_scale(t: STRTensor, alpha: Any) -> STRTensor:
    """``alpha * t`` (scales the first core)."""
    return _scale_chain(t, alpha, STRTensor)


def _check_pair(a: Any, b: Any, cls: type) -> tuple[Any, Any, int]:
    a = _check_type(a, cls, "a")
    b = _check_type(b, cls, "b")
    check_same_shape(a, b)
    if a.k != b.k:
        raise ValueError(f"a and b must have the same k, got {a.k} and {b.k}")
    xp, dtype = common_dtype([a.cores[0], b.cores[0]], "cores of a and b")
    return [xp.astype(c, dtype) for c in a.cores], [xp.astype(c, dtype) for c in b.cores], a.k


def stt_add(a: STTTensor, b: STTTensor) -> STTTensor:
    """Sum of two STTs of the same shape and ``k``: ranks add, structure is kept.

    First cores side by side, middle cores block-diagonal, last cores stacked. Block
    ``A`` then block ``B`` of a bond of the equivalent TT is ``(A, B) ⊗ I_k`` in the
    ``(a, s)`` index order, so the sum is again an STT.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_stt
    >>> t = random_stt((3, 4, 5), 2, k=2, rng=0)
    >>> s = stt_add(t, t)
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * t.to_dense()))
    ((1, 4, 4, 1), True)
    """
    ca, cb, k = _check_pair(a, b, STTTensor)
    return STTTensor(_chain_sum([ca, cb]), k=k)


def str_add(a: STRTensor, b: STRTensor) -> STRTensor:
    """Sum of two STRs of the same shape and ``k``, sharing the closing bond.

    As :func:`tensornet.tr_add`: the closing bond has size ``max(R_0(a), R_0(b))``
    (the smaller padded with zeros), first cores side by side, reduced interior cores
    block-diagonal, last cores stacked.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_str
    >>> t = random_str((3, 4, 5), 2, k=2, rng=0)
    >>> s = str_add(t, t)
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * t.to_dense()))
    ((2, 4, 4, 2), True)
    """
    ca, cb, k = _check_pair(a, b, STRTensor)
    xp = B.namespace(ca[0])
    p = max(int(ca[0].shape[0]), int(cb[0].shape[0]))

    def pad(core: Array, axis: int, size: int) -> Array:
        missing = size - int(core.shape[axis])
        if missing == 0:
            return core
        shape = list(core.shape)
        shape[axis] = missing
        zeros = xp.zeros(tuple(shape), dtype=core.dtype, device=B.device(core))
        return xp.concat([core, zeros], axis=axis)

    if len(ca) == 1:
        return STRTensor([pad(pad(ca[0], 0, p), 2, p) + pad(pad(cb[0], 0, p), 2, p)], k=k)
    first = xp.concat([pad(ca[0], 0, p), pad(cb[0], 0, p)], axis=2)
    middle = [_block_diag([x, y]) for x, y in zip(ca[1:-1], cb[1:-1])]
    last = xp.concat([pad(ca[-1], 2, p // k), pad(cb[-1], 2, p // k)], axis=0)
    return STRTensor([first, *middle, last], k=k)


# -- STTucker -------------------------------------------------------------------------------------
def _check_sttucker(
    core: Any, factors: Any, k: object
) -> tuple[Array, tuple[Array | None, ...], int]:
    k = check_k(k)
    if (
        B.is_array(factors)
        or not isinstance(factors, Sequence)
        or isinstance(factors, (str, bytes))
    ):
        raise TypeError(
            f"factors must be a sequence of arrays or None (one per mode), got "
            f"{type(factors).__name__}"
        )
    core, _ = _check_core_and_factors(core, [None] * len(factors))  # checks the core
    checked: list[Array | None] = []
    for m, f in enumerate(factors):
        if f is None:
            checked.append(None)
            continue
        if not B.is_array(f):
            raise TypeError(f"factors[{m}] must be an array or None, got {type(f).__name__}")
        rank = int(core.shape[m])
        if rank % k:
            raise ValueError(
                f"k = {k} must divide core.shape[{m}] == {rank} (mode {m} is factored)"
            )
        if f.ndim != 2 or int(f.shape[1]) * k != rank or int(f.shape[0]) == 0:
            raise ValueError(
                f"factors[{m}] must have shape (n_{m} / k, {rank // k}) (core.shape[{m}] / k "
                f"with k = {k}), got shape {tuple(f.shape)}"
            )
        checked.append(f)
    check_same_namespace([core, *(f for f in checked if f is not None)], "core and factors")
    return core, tuple(checked), k


@dataclass(frozen=True, eq=False, repr=False)
class STTuckerTensor(TensorFormat):
    """A tensor in semi-tensor Tucker (STTucker) format.

    ``X = core x_0 (U_0 ⊗ I_k) x_1 ... x_{d-1} (U_{d-1} ⊗ I_k)``: the Tucker tensor whose
    factors are ``U_n ⊗ I_k`` (see :mod:`tensornet.formats.stp_formats`). A ``None`` factor
    leaves its mode unfactored, as in :class:`~tensornet.TuckerTensor` (Tucker-2 of a conv
    kernel factors modes 0 and 1 only).

    Parameters
    ----------
    core : array, shape (R_0, ..., R_{d-1})
    factors : sequence of arrays or None
        ``factors[n]`` of shape ``(n_n / k, R_n / k)``, or ``None``.
    k : int
        Size of the identity factor (>= 1); ``k = 1`` is an ordinary Tucker tensor.

    Attributes
    ----------
    core : array
    factors : tuple of (array or None)
    k : int
    shape : tuple of int
        ``(n_0, ..., n_{d-1})`` with ``n_n = k * factors[n].shape[0]``.
    ranks : tuple of int
        ``core.shape``, the multilinear ranks of the equivalent Tucker tensor.
    modes : tuple of int
        The factored modes.
    num_params : int
        Stored entries, :func:`sttucker_num_params`.

    Raises
    ------
    TypeError
        If the core or a factor is not a floating array, or they mix libraries or dtypes.
    ValueError
        If ``factors`` does not have one entry per mode, ``k`` does not divide the rank of
        a factored mode, or a factor's shape does not match the core.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import STTuckerTensor
    >>> t = STTuckerTensor(np.ones((4, 4, 3)), [np.ones((3, 2)), np.ones((5, 2)), None], k=2)
    >>> t.shape, t.ranks, t.modes, t.num_params
    ((6, 10, 3), (4, 4, 3), (0, 1), 64)
    >>> t.to_tucker().factors[0].shape
    (6, 4)
    """

    core: Array
    factors: Sequence[Array | None]
    k: int = 1

    def __post_init__(self) -> None:
        _, factors, k = _check_sttucker(self.core, self.factors, self.k)
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "k", k)

    @property
    def shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Mode sizes ``(n_0, ..., n_{d-1})``."""
        return tuple(
            int(r) if f is None else int(f.shape[0]) * self.k
            for r, f in zip(self.core.shape, self.factors)
        )

    @property
    def ranks(self) -> tuple[int, ...]:
        """``core.shape`` (``n_n`` for an unfactored mode)."""
        return tuple(int(r) for r in self.core.shape)

    @property
    def modes(self) -> tuple[int, ...]:
        """The factored modes, ascending."""
        return tuple(m for m, f in enumerate(self.factors) if f is not None)

    @property
    def num_params(self) -> int:
        """Entries of the core plus the stored (reduced) factors."""
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
            f"STTuckerTensor(shape={self.shape}, ranks={self.ranks}, k={self.k}, "
            f"modes={self.modes}, dtype={dtype_name(self.dtype)}, num_params={self.num_params})"
        )

    def to_tucker(self) -> TuckerTensor:
        """The Tucker tensor it equals exactly; see :func:`sttucker_to_tucker`."""
        return sttucker_to_tucker(self)

    def to_dense(self) -> Array:
        """The full tensor (allocates ``prod(shape)`` entries); see :func:`sttucker_to_dense`."""
        return sttucker_to_dense(self)

    def norm(self) -> Array:
        """Frobenius norm, computed without densifying; see :func:`sttucker_norm`."""
        return sttucker_norm(self)

    def _add(self, other: Any) -> STTuckerTensor:
        return sttucker_add(self, other)

    def _scale(self, alpha: Any) -> STTuckerTensor:
        return sttucker_scale(self, alpha)


def _kron_factor(f: Array, k: int) -> Array:
    xp = B.namespace(f)
    if k == 1:
        return f
    eye = xp.eye(k, dtype=f.dtype, device=B.device(f))
    m, r = (int(n) for n in f.shape)
    return xp.reshape(contract("ab,uv->aubv", f, eye), (m * k, r * k))


def sttucker_to_tucker(t: STTuckerTensor) -> TuckerTensor:
    """The Tucker tensor ``t`` equals exactly: factors ``U_n ⊗ I_k``, same core.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_sttucker
    >>> t = random_sttucker((6, 8, 10), 4, k=2, rng=0)
    >>> tucker = sttucker_to_tucker(t)
    >>> tucker.num_params, t.num_params
    (160, 88)
    >>> bool(np.allclose(tucker.to_dense(), t.to_dense()))
    True
    """
    t = _check_type(t, STTuckerTensor, "t")
    return TuckerTensor(t.core, [None if f is None else _kron_factor(f, t.k) for f in t.factors])


def _apply_factors(core: Array, factors: Sequence[Array | None], k: int) -> Array:
    """``core x_n (F_n ⊗ I_k)`` for every non-None ``F_n``, without forming the Kronecker."""
    for m, f in enumerate(factors):
        if f is not None:
            core = stp_mode_product(core, f, m, k=k)
    return core


def sttucker_to_dense(t: STTuckerTensor) -> Array:
    """Multiply the core by every ``U_n ⊗ I_k`` (semi-tensor mode products, no Kronecker).

    Examples
    --------
    >>> import numpy as np
    >>> t = STTuckerTensor(np.ones((2, 2)), [np.ones((3, 1)), None], k=2)
    >>> sttucker_to_dense(t).shape
    (6, 2)
    """
    t = _check_type(t, STTuckerTensor, "t")
    if t.k == 1:
        return tucker_to_dense(TuckerTensor(t.core, t.factors))
    return _apply_factors(t.core, t.factors, t.k)


def sttucker_norm(t: STTuckerTensor) -> Array:
    """Frobenius norm without densifying.

    ``U_n = Q_n T_n`` (QR); ``Q_n ⊗ I_k`` has orthonormal columns, so
    ``||t|| = ||core x_n (T_n ⊗ I_k)||``, as :func:`tensornet.tucker_norm` does for Tucker.

    Examples
    --------
    >>> import numpy as np
    >>> t = STTuckerTensor(np.ones((2, 2)), [np.ones((3, 1)), None], k=2)
    >>> bool(np.isclose(sttucker_norm(t), np.linalg.norm(t.to_dense())))
    True
    """
    t = _check_type(t, STTuckerTensor, "t")
    triangles = [None if f is None else qr(f)[1] for f in t.factors]
    return B.norm(_apply_factors(t.core, triangles, t.k))


def sttucker_scale(t: STTuckerTensor, alpha: Any) -> STTuckerTensor:
    """``alpha * t`` (scales the core)."""
    t = _check_type(t, STTuckerTensor, "t")
    alpha = check_scalar(alpha)
    core = t.core * alpha
    xp = B.namespace(core)
    factors = [None if f is None else xp.astype(f, core.dtype) for f in t.factors]
    return STTuckerTensor(core, factors, k=t.k)


def sttucker_add(a: STTuckerTensor, b: STTuckerTensor) -> STTuckerTensor:
    """Sum of two STTucker tensors of the same shape and ``k``, without densifying.

    As :func:`tensornet.tucker_add`: factors side by side (``[U_a, U_b] ⊗ I_k`` is
    ``[U_a ⊗ I_k, U_b ⊗ I_k]`` in the ``(a, s)`` column order), block-diagonal core; a
    mode factored in only one operand uses ``I_{n/k}`` for the other.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.random import random_sttucker
    >>> t = random_sttucker((4, 6, 3), (2, 2), k=2, modes=(0, 1), rng=0)
    >>> s = sttucker_add(t, t)
    >>> s.ranks, bool(np.allclose(s.to_dense(), 2 * t.to_dense()))
    ((4, 4, 3), True)
    """
    a = _check_type(a, STTuckerTensor, "a")
    b = _check_type(b, STTuckerTensor, "b")
    check_same_shape(a, b)
    if a.k != b.k:
        raise ValueError(f"a and b must have the same k, got {a.k} and {b.k}")
    k = a.k
    xp, dtype = common_dtype([a.core, b.core], "cores of a and b")
    dev = B.device(a.core)
    modes = [m for m in range(a.order) if a.factors[m] is not None or b.factors[m] is not None]

    def factor(t: STTuckerTensor, m: int) -> Array:
        f = t.factors[m]
        if f is None:
            return xp.eye(t.shape[m] // k, dtype=dtype, device=dev)
        return xp.astype(f, dtype)

    blocks = []
    for t, before in ((a, True), (b, False)):
        core = xp.astype(t.core, dtype)
        for m in modes:
            other = b if before else a
            pad_shape = list(core.shape)
            pad_shape[m] = other.ranks[m]
            zeros = xp.zeros(tuple(pad_shape), dtype=dtype, device=dev)
            core = xp.concat([core, zeros] if before else [zeros, core], axis=m)
        blocks.append(core)
    factors: list[Array | None] = [None] * a.order
    for m in modes:
        factors[m] = xp.concat([factor(a, m), factor(b, m)], axis=1)
    return STTuckerTensor(blocks[0] + blocks[1], factors, k=k)
