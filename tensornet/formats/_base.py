"""Shared behaviour of the format containers: operators and summaries."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import check_same_namespace

__all__ = [
    "CoreSequenceFormat",
    "TensorFormat",
    "check_same_shape",
    "check_scalar",
    "common_dtype",
    "dtype_name",
]


def check_scalar(alpha: object, name: str = "alpha") -> Any:
    """Validate a scalar factor: a real/complex number or a 0-d array."""
    if isinstance(alpha, bool):
        raise TypeError(f"{name} must be a number, got a bool")
    if isinstance(alpha, numbers.Number):
        if not math.isfinite(abs(complex(alpha))):  # type: ignore[call-overload]
            raise ValueError(f"{name} must be finite, got {alpha!r}")
        return alpha
    if B.is_array(alpha) and getattr(alpha, "ndim", None) == 0:
        return alpha
    raise TypeError(f"{name} must be a number or a 0-d array, got {type(alpha).__name__}")


def check_same_shape(a: Any, b: Any) -> None:
    """Binary format operations need operands of one shape."""
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")


def common_dtype(arrays: Sequence[Array], name: str) -> tuple[Any, Any]:
    """Namespace and promoted dtype of arrays that must come from one library and device."""
    xp = check_same_namespace(arrays, name, same_dtype=False)
    return xp, xp.result_type(*(a.dtype for a in arrays))


class TensorFormat:
    """Mixin for the immutable format containers.

    Subclasses provide ``shape``, ``ranks``, ``num_params``, ``dtype``,
    ``to_dense`` and the private hooks ``_add``, ``_scale`` used by the operators.
    Operators never densify.
    """

    shape: tuple[int, ...]

    def _add(self, other: Any) -> Any:
        raise NotImplementedError

    def _scale(self, alpha: Any) -> Any:
        raise NotImplementedError

    @property
    def order(self) -> int:
        """Number of modes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of entries of the dense tensor (never materialized)."""
        return math.prod(self.shape)

    def __add__(self, other: object) -> Any:
        if type(other) is not type(self):
            return NotImplemented
        return self._add(other)

    def __sub__(self, other: Any) -> Any:
        if type(other) is not type(self):
            return NotImplemented
        return self._add(other._scale(-1))

    def __mul__(self, alpha: object) -> Any:
        if isinstance(alpha, TensorFormat):
            return NotImplemented
        return self._scale(check_scalar(alpha))

    __rmul__ = __mul__

    def __truediv__(self, alpha: object) -> Any:
        if isinstance(alpha, TensorFormat):
            return NotImplemented
        value = check_scalar(alpha)
        if value == 0:
            raise ZeroDivisionError("cannot divide a tensor format by zero")
        return self._scale(1 / value)

    def __neg__(self) -> Any:
        return self._scale(-1)

    def __pos__(self) -> Any:
        return self

    def __array__(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(
            f"{type(self).__name__} is never densified implicitly; call .to_dense() explicitly"
        )


def dtype_name(dtype: Any) -> str:
    """Short dtype name for summaries (``float32`` for NumPy and torch alike)."""
    return str(dtype).replace("torch.", "")


class CoreSequenceFormat(TensorFormat):
    """Mixin for formats whose data is a tuple ``cores`` of arrays (TT, TT-matrix, TR)."""

    cores: Sequence[Array]

    @property
    def num_params(self) -> int:
        """Total number of entries of the cores."""
        return sum(math.prod(int(n) for n in c.shape) for c in self.cores)

    @property
    def dtype(self) -> Any:
        """Dtype of the cores."""
        return self.cores[0].dtype

    @property
    def device(self) -> Any:
        """Device of the cores."""
        return B.device(self.cores[0])
