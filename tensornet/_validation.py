"""Input checks for every public entry point, with one message style.

Messages name the argument, what was expected and what was received:
``ValueError`` for bad values or shapes, ``TypeError`` for bad types.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensornet._backend import Array, is_array, namespace

__all__ = [
    "ConvergenceWarning",
    "check_array",
    "check_choice",
    "check_index",
    "check_int",
    "check_max_rank",
    "check_mode",
    "check_rng",
    "check_rtol",
    "check_same_namespace",
    "check_shape",
]


class ConvergenceWarning(UserWarning):
    """An iterative algorithm stopped at ``n_iter_max`` before meeting ``tol``."""


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} of type {type(value).__name__}"


def check_array(x: Any, name: str, *, min_ndim: int = 1, finite: bool = True) -> Array:
    """Validate a data tensor and return it as an array.

    Lists and other array-likes become NumPy arrays; integer and boolean arrays
    are promoted to the namespace's default floating dtype (float64 for NumPy);
    real and complex floating arrays pass through unchanged (never copied,
    never moved between devices).

    Parameters
    ----------
    x : array_like
        The candidate tensor.
    name : str
        Argument name used in error messages.
    min_ndim : int
        Smallest accepted number of dimensions.
    finite : bool
        Whether NaN and Inf entries are rejected.

    Returns
    -------
    array
        ``x`` as an array of a supported library.

    Raises
    ------
    TypeError
        If ``x`` is not numeric.
    ValueError
        If ``x`` has too few dimensions, an empty dimension, or non-finite entries.
    """
    if not is_array(x):
        if isinstance(x, (str, bytes)) or x is None:
            raise TypeError(f"{name} must be a numeric array, got {_describe(x)}")
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numeric array, got {_describe(x)}") from exc
    xp = namespace(x)
    dtype = x.dtype
    if xp.isdtype(dtype, ("bool", "integral")):
        x = xp.astype(x, xp.float64 if _has_float64(xp, x) else xp.float32)
    elif not xp.isdtype(dtype, ("real floating", "complex floating")):
        raise TypeError(f"{name} must have a numeric dtype, got an array of dtype {dtype}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got an array of shape "
            f"{tuple(x.shape)}"
        )
    if any(int(n) == 0 for n in x.shape):
        raise ValueError(f"{name} must not have empty dimensions, got shape {tuple(x.shape)}")
    if finite and not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} must contain only finite values, got NaN or Inf entries")
    return x


def _has_float64(xp: Any, x: Array) -> bool:
    try:
        xp.asarray(0.0, dtype=xp.float64, device=getattr(x, "device", None))
    except (TypeError, RuntimeError):  # e.g. devices without float64
        return False
    return True


def check_rtol(rtol: object, name: str = "rtol") -> float | None:
    """Validate a relative tolerance: None or a finite real number >= 0."""
    if rtol is None:
        return None
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 0 or None, got {_describe(rtol)}")
    value = float(rtol)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite real number >= 0, got {value!r}")
    return value


def check_int(value: object, name: str, *, minimum: int | None = None) -> int:
    """Validate an integer argument (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    result = int(value)
    if minimum is not None and result < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {result}")
    return result


def check_max_rank(
    max_rank: object, n_bonds: int, name: str = "max_rank"
) -> tuple[int, ...] | None:
    """Validate a rank cap: None, an int >= 1, or one int >= 1 per bond.

    Returns
    -------
    tuple of int or None
        The cap of each of the ``n_bonds`` bonds.
    """
    if max_rank is None:
        return None
    if isinstance(max_rank, Sequence) and not isinstance(max_rank, (str, bytes)):
        caps = tuple(check_int(r, f"{name}[{i}]", minimum=1) for i, r in enumerate(max_rank))
        if len(caps) != n_bonds:
            raise ValueError(
                f"{name} must be an int or a sequence of {n_bonds} ints (one per bond), "
                f"got a sequence of length {len(caps)}"
            )
        return caps
    if is_array(max_rank):
        return check_max_rank([int(r) for r in np.asarray(max_rank).ravel()], n_bonds, name)
    return (check_int(max_rank, name, minimum=1),) * n_bonds


def check_tt_caps(max_rank: object, order: int, name: str = "max_rank") -> tuple[int, ...] | None:
    """:func:`check_max_rank` for the ``order - 1`` bonds of a tensor train.

    Also accepts a ``TTTensor.ranks`` tuple (``order + 1`` ints with 1 at both ends), so
    that ``tt_svd(x, max_rank=t.ranks)`` caps every bond at ``t``'s.
    """
    if (
        isinstance(max_rank, Sequence)
        and not isinstance(max_rank, (str, bytes))
        and len(max_rank) == order + 1
        and order >= 1
    ):
        if not (max_rank[0] == 1 and max_rank[-1] == 1):
            raise ValueError(
                f"{name} with {order + 1} entries is read as TTTensor.ranks and must start "
                f"and end with 1, got {tuple(max_rank)}; or give the {order - 1} bond caps"
            )
        max_rank = tuple(max_rank)[1:-1]
    return check_max_rank(max_rank, order - 1, name)


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Validate a string option against its allowed values."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def check_mode(mode: object, order: int, name: str = "mode") -> int:
    """Validate a mode index in ``[-order, order)`` and return it non-negative."""
    value = check_int(mode, name)
    if not -order <= value < order:
        raise ValueError(f"{name} must be in [{-order}, {order}) for order {order}, got {value}")
    return value % order


def check_index(index: object, size: int, name: str) -> int:
    """Validate an integer index into a dimension of ``size`` (negative allowed)."""
    value = check_int(index, name)
    if not -size <= value < size:
        raise IndexError(f"{name} {value} is out of bounds for a dimension of size {size}")
    return value % size


def check_shape(shape: object, name: str = "shape") -> tuple[int, ...]:
    """Validate a tensor shape: a non-empty sequence of ints >= 1."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, Sequence) or isinstance(shape, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of positive ints, got {_describe(shape)}")
    dims = tuple(check_int(n, f"{name}[{i}]", minimum=1) for i, n in enumerate(shape))
    if not dims:
        raise ValueError(f"{name} must have at least one dimension, got ()")
    return dims


def check_rng(rng: object, name: str = "rng") -> np.random.Generator:
    """Turn ``rng`` (Generator, int seed or None) into a NumPy Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)  # type: ignore[arg-type]
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {_describe(rng)}")


def check_same_namespace(arrays: Sequence[Array], name: str, *, same_dtype: bool = True) -> Any:
    """Check that ``arrays`` come from one array library and device (and dtype)."""
    try:
        xp = namespace(*arrays)
    except TypeError as exc:
        raise TypeError(f"{name} must all come from one array library: {exc}") from exc
    dtypes = {a.dtype for a in arrays}
    if same_dtype and len(dtypes) > 1:
        raise TypeError(f"{name} must share one dtype, got {sorted(str(d) for d in dtypes)}")
    devices = {str(getattr(a, "device", "cpu")) for a in arrays}
    if len(devices) > 1:
        raise ValueError(f"{name} must live on one device, got {sorted(devices)}")
    return xp
