"""Out-of-core decompositions of chunked (dask) arrays larger than memory.

A dask array is read block by block; only small matrices come back to memory: the
``m x m`` Gram matrix of an unfolding with ``m`` rows, the ``m x m`` triangular factor of
its TSQR, and the cores or factors. Every pass over the data is one ``dask.compute``,
so the same code runs on the threaded scheduler and on a ``dask.distributed`` cluster
(whatever client is active).

Truncation of one unfolding ``A`` (``m x N``, ``m`` small, ``N`` huge):

- **Gram path** (one pass, BLAS-3): ``G = A A^H`` as a chunked reduction over the column
  blocks, then ``G = U diag(s^2) U^H`` on the host. The tail ``||A||^2 - sum(kept s^2)``
  comes from ``trace(G)`` and the eigenvalues. The Gram matrix squares the condition
  number: its eigenvalues carry an absolute error of about ``m eps s_0^2``, so singular
  values below ``sqrt(m eps) s_0`` are not resolved, and singular vectors of values below
  ``1e3 sqrt(eps) s_0`` are inaccurate. The reductions run in float64 (complex128) even
  for float32 data.
- **TSQR path** (one pass, exact): when the rank needs values the Gram path cannot
  resolve (a target ``rtol`` below about ``sqrt(m eps)``, or ``rtol=None`` which keeps the
  numerical rank), every column block ``A_b`` gives the ``R`` factor of ``A_b^H``, the
  factors are stacked and reduced by further QRs, and ``A = R^H Q^H`` leaves the singular
  values and left singular vectors of ``A`` to the SVD of the small ``R^H`` (backward
  stable: no squaring).

The kept part is an orthogonal projection ``U^H A`` on both paths, so the error budget is
that of the in-memory algorithms (e.g. TT-SVD's ``rtol ||x|| / sqrt(d - 1)`` per bond).
The projections stay lazy; once the projected tensor is no larger than one dask chunk
(dask's ``array.chunk-size`` setting, 128 MiB by default: the memory scale the user
already gave dask) it is computed and the rest of the sweep runs in memory.

The TT and TR sweeps need the mode they start from in a single chunk: the column blocks
of the first unfolding are then whole blocks of the array. Other modes may be chunked in
any way (the rows of a later unfolding are merged into whole chunks for its pass), and
Tucker and the RSDTR search accept any chunking.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tensornet import _backend as B
from tensornet._validation import check_array
from tensornet.linalg import _choose_rank

__all__ = [
    "check_chunked",
    "check_finite",
    "compute",
    "gram",
    "is_chunked",
    "mode_project",
    "project",
    "small_enough",
    "truncate",
    "tsqr_r",
]


_TREE_FAN_IN = 8
"""R factors combined per QR in the TSQR reduction tree."""


def is_chunked(x: object) -> bool:
    """Whether ``x`` is a dask array (decomposed out of core)."""
    return B.is_dask(x)


def check_chunked(x: Any, name: str, *, min_ndim: int = 1, whole_mode: int | None = 0) -> Any:
    """Validate a dask array for the out-of-core path (no pass over the data).

    Returns ``x`` with integer and boolean dtypes promoted to float64 (lazily). Finite
    values are checked during the first pass (a non-finite Gram matrix raises).
    ``whole_mode``: the mode that must be one chunk (where a TT / TR sweep starts);
    None: any chunking.
    """
    if any(math.isnan(n) for n in x.shape):
        raise ValueError(f"{name} must have known chunk sizes; call {name}.compute_chunk_sizes()")
    x = check_array(x, name, min_ndim=min_ndim, finite=False)  # lazy: dtype, ndim, empty
    k = whole_mode
    if k is not None and 0 <= k < x.ndim and len(x.chunks[k]) > 1:
        raise ValueError(
            f"{name} is a dask array chunked along mode {k} (chunks {x.chunks[k]}); the "
            f"out-of-core sweep reads whole column blocks of the mode-{k} unfolding, so "
            f"mode {k} must be one chunk. Chunk the other modes instead, e.g. "
            f"{name}.rechunk({{{k}: -1}}) (and store the data that way to avoid rereading it)"
        )
    return x


def _work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float64 / complex128: the precision of the reductions."""
    return np.dtype(np.complex128) if dtype.kind == "c" else np.dtype(np.float64)


def compute(*arrays: Any) -> tuple[np.ndarray, ...]:
    """Compute lazy arrays in one pass (shared reads) as NumPy arrays."""
    import dask

    return tuple(np.asarray(a) for a in dask.compute(*arrays))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence dask's PerformanceWarning about tensordot's per-block partial products.

    A chunked contraction makes one small partial product per block and sums them; that
    is the intended reduction, not a chunking mistake.
    """
    from dask.array.core import PerformanceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerformanceWarning)
        yield


def gram(x: Any, row_axes: Sequence[int]) -> Any:
    """Lazy ``A A^H`` of the unfolding with ``row_axes`` as rows, shape ``(rows, rows)``."""
    import dask.array as da

    cols = [a for a in range(x.ndim) if a not in row_axes]
    # rows whole: a block then gives its own partial product; with the rows split into c
    # chunks, tensordot pairs every block with c others and holds them meanwhile
    y = x.rechunk({a: -1 for a in row_axes}).astype(_work_dtype(np.dtype(x.dtype)))
    with _quiet():
        g = da.tensordot(y, da.conj(y), axes=(cols, cols))
    m = math.prod(int(x.shape[a]) for a in row_axes)
    return g.reshape(m, m)


def _block_r(block: np.ndarray, row_axes: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
    rows = math.prod(block.shape[a] for a in row_axes)
    mat = np.moveaxis(block, row_axes, tuple(range(len(row_axes)))).reshape(rows, -1)
    return np.asarray(np.linalg.qr(mat.astype(dtype).conj().T, mode="r"))


def _stacked_r(*factors: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.qr(np.concatenate(factors, axis=0), mode="r"))


def tsqr_r(x: Any, row_axes: Sequence[int]) -> np.ndarray:
    """``R`` of ``A^H = Q R`` for the unfolding ``A`` with ``row_axes`` as rows (one pass)."""
    import dask

    axes = tuple(row_axes)
    whole = x.rechunk({a: -1 for a in axes})
    dtype = _work_dtype(np.dtype(x.dtype))
    level = [dask.delayed(_block_r)(block, axes, dtype) for block in whole.to_delayed().ravel()]
    while len(level) > 1:
        level = [
            dask.delayed(_stacked_r)(*level[i : i + _TREE_FAN_IN])
            for i in range(0, len(level), _TREE_FAN_IN)
        ]
    (r,) = dask.compute(level[0])
    return np.asarray(r)


def check_finite(g: np.ndarray, name: str) -> None:
    """Raise if a Gram matrix of ``name`` is not finite (NaN / Inf in the data)."""
    if not np.all(np.isfinite(g)):
        raise ValueError(
            f"{name} must contain only finite values, got NaN or Inf entries (or entries "
            "so large that their squares overflow)"
        )


def truncate(
    x: Any,
    row_axes: Sequence[int],
    g: np.ndarray,
    *,
    tol: float | None,
    cap: int | None,
    eps: float,
    floor: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Kept left singular vectors, values and tail of the unfolding whose Gram matrix is ``g``.

    The Gram path when it resolves what the rank needs, else one TSQR pass over ``x``
    (module docstring). ``eps`` is that of the data's dtype, ``floor`` the absolute
    round-off level under which singular values count as zero.
    """
    m = int(g.shape[0])
    n = math.prod(int(s) for s in x.shape) // m
    trace = float(np.real(np.trace(g)))
    w, vecs = np.linalg.eigh(g)
    w, vecs = w[::-1].clip(min=0.0), vecs[:, ::-1]
    s = np.sqrt(w)
    rank, error = _choose_rank(s, max(trace - float(w.sum()), 0.0), (m, n), eps, tol, cap, floor)
    work_eps = float(np.finfo(np.float64).eps)
    resolution_sq = 10 * m * work_eps * float(w[0])  # absolute error of the eigenvalues
    resolved = (tol is None or tol * tol > resolution_sq) and s[rank - 1] > 1e3 * math.sqrt(
        work_eps
    ) * s[0]
    if resolved:
        return vecs[:, :rank], s[:rank], error
    r = tsqr_r(x, row_axes)
    u, s_exact, _ = np.linalg.svd(r.conj().T, full_matrices=False)
    rank, error = _choose_rank(s_exact, 0.0, (m, n), eps, tol, cap, floor)
    return u[:, :rank], s_exact[:rank], error


def project(x: Any, basis: np.ndarray, row_axes: int) -> Any:
    """Lazy ``U^H A``: the leading ``row_axes`` axes of ``x`` contracted with ``basis``.

    ``basis`` is ``(prod of those axes, r)``; the result has shape ``(r, *rest)``.
    """
    import dask.array as da

    lead = tuple(int(s) for s in x.shape[:row_axes])
    rank = int(basis.shape[1])
    left = basis.conj().T.reshape(rank, *lead)
    y = x.astype(_work_dtype(np.dtype(x.dtype)))
    with _quiet():
        return da.tensordot(left, y, axes=(list(range(1, row_axes + 1)), list(range(row_axes))))


def mode_project(x: Any, basis: np.ndarray, mode: int) -> Any:
    """Lazy ``x x_mode U^H`` for ``basis`` ``U`` of shape ``(n_mode, r)`` (mode stays put)."""
    import dask.array as da

    y = x.astype(_work_dtype(np.dtype(x.dtype)))
    with _quiet():
        out = da.tensordot(basis.conj().T, y, axes=([1], [mode]))
    return da.moveaxis(out, 0, mode)


def small_enough(x: Any) -> bool:
    """Whether a lazy array fits one dask chunk (``array.chunk-size``) and may be computed."""
    import dask
    from dask.utils import parse_bytes

    limit = parse_bytes(dask.config.get("array.chunk-size"))
    return math.prod(int(s) for s in x.shape) * np.dtype(x.dtype).itemsize <= limit
