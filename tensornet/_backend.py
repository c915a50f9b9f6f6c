"""The one module that knows about array libraries.

Every algorithm in tensornet takes its array namespace from its inputs through
`array-api-compat`, so the same code runs on NumPy arrays and on torch tensors
(CPU or CUDA) and returns arrays of the input's type, dtype and device. There is
no global backend switch.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

Array = Any
"""Type alias for an array of any array-API library (NumPy, torch, ...)."""

__all__ = [
    "Array",
    "device",
    "eps",
    "is_array",
    "is_complex",
    "is_dask",
    "namespace",
    "to_numpy",
]


def namespace(*arrays: Array) -> ModuleType:
    """Return the array-API namespace shared by ``arrays``.

    Parameters
    ----------
    *arrays : array
        Arrays from one library (mixing NumPy and torch raises).

    Returns
    -------
    module
        The array-api-compat namespace (e.g. ``array_api_compat.numpy``).
    """
    return array_api_compat.array_namespace(*arrays)


def is_array(obj: object) -> bool:
    """Return True if ``obj`` is an array of a supported array library."""
    if isinstance(obj, (type, int, float, complex)):  # classes (np.float32) and Python scalars
        return False
    return bool(array_api_compat.is_array_api_obj(obj))


def is_dask(x: object) -> bool:
    """Return True if ``x`` is a dask array (decomposed out of core, see ``tensornet._chunked``)."""
    return bool(array_api_compat.is_dask_array(x))


def device(x: Array) -> Any:
    """Return the device ``x`` lives on (``"cpu"`` for NumPy)."""
    return array_api_compat.device(x)


def is_complex(x: Array) -> bool:
    """Return True if ``x`` has a complex floating dtype."""
    xp = namespace(x)
    return bool(xp.isdtype(x.dtype, "complex floating"))


def eps(x: Array) -> float:
    """Machine epsilon of the (real part of the) dtype of ``x``."""
    xp = namespace(x)
    return float(xp.finfo(x.dtype).eps)


def to_numpy(x: Array) -> np.ndarray:
    """Copy ``x`` to a NumPy array on the host (used only by ``tensornet.io``)."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().resolve_conj().resolve_neg().numpy()
    return np.asarray(x)


def norm(x: Array) -> Array:
    """Frobenius norm of ``x`` as a 0-d real array of ``x``'s namespace."""
    xp = namespace(x)
    return xp.linalg.vector_norm(xp.reshape(x, (-1,)))


def conj(x: Array) -> Array:
    """Complex conjugate of ``x`` (a no-op for real dtypes)."""
    if is_complex(x):
        return namespace(x).conj(x)
    return x


def real_dtype(x: Array) -> Any:
    """The real floating dtype matching the dtype of ``x`` (in ``x``'s own library)."""
    return namespace(x).real(x).dtype if is_complex(x) else x.dtype


def standard_normal(like: Array, shape: tuple[int, ...], rng: np.random.Generator) -> Array:
    """Gaussian array of ``shape`` with ``like``'s namespace, dtype and device.

    The numbers come from the NumPy generator ``rng`` so that results are
    reproducible across array libraries; only the (small) random matrix is sent
    to the device, never the data.
    """
    xp = namespace(like)
    values = rng.standard_normal(shape)
    if is_complex(like):
        values = values + 1j * rng.standard_normal(shape)
    out = xp.asarray(values, device=device(like))
    return xp.astype(out, like.dtype)
