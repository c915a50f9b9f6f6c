"""Tensor ring (TR) format.

Layout: ``cores[k].shape == (r_k, n_k, r_{k+1})`` with ``r_d == r_0`` (the ring
closes), and ``X[i_0, ..., i_{d-1}] = trace(G_0[:, i_0, :] @ ... @ G_{d-1}[:, i_{d-1}, :])``.
A TT is the ring with ``r_0 = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet.contract import contract
from tensornet.formats._base import CoreSequenceFormat, dtype_name
from tensornet.formats.tt import _check_cores, check_bonds

__all__ = ["TRTensor", "tr_to_dense"]


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
        """Frobenius norm, computed without densifying."""
        return tr_norm(self)

    def _add(self, other: Any) -> TRTensor:
        return tr_add(self, other)

    def _scale(self, alpha: Any) -> TRTensor:
        return tr_scale(self, alpha)

    def __getitem__(self, index: object) -> Any:
        """Entries (``t[i, j, k]`` gives a 0-d array) or a sub-ring as a ``TRTensor``."""
        return _getitem(self, index)


def _check_tr(t: object, name: str) -> TRTensor:
    if not isinstance(t, TRTensor):
        raise TypeError(f"{name} must be a TRTensor, got {type(t).__name__}")
    return t


def tr_to_dense(t: TRTensor) -> Array:
    """Contract a TR into the full tensor of shape ``t.shape``.

    The chain is contracted left to right with the closing bond kept open, then
    traced: cost O(r_0 * prod(shape) * r) and memory O(r_0 * prod(shape) * r).

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet import TRTensor, tr_to_dense
    >>> tr_to_dense(TRTensor([np.ones((2, 2, 2)), np.ones((2, 3, 2))])).shape
    (2, 3)
    """
    t = _check_tr(t, "t")
    xp = B.namespace(t.cores[0])
    r0 = int(t.cores[0].shape[0])
    result = t.cores[0]  # (r0, n_0, r_1)
    for core in t.cores[1:]:
        left = xp.reshape(result, (r0, -1, int(result.shape[-1])))
        result = contract("amb,bnc->amnc", left, core)
    chain = xp.reshape(result, (r0, -1, r0))
    return xp.reshape(contract("ama->m", chain), t.shape)
