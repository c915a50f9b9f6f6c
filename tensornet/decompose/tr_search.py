"""RSDTR (Gabor & Zdunek 2024): the TR-SVD with the fewest parameters over shifts and splits.

TR-SVD (:func:`tensornet.decompose.tr_svd.tr_svd`) depends on two choices: the start mode
(equivalently a cyclic shift of the modes) and the split ``r = r0 * r1`` of the first rank.
The search runs TR-SVD for every start ``c = 0, ..., d - 1`` and every divisor ``r0`` of the
first rank ``r`` of that start and keeps the result with the fewest parameters. The first
truncated SVD of each start (the expensive one: an SVD of the whole tensor) is computed once
and shared by all the splits of that start. ``r0 = 1`` is a tensor train, so the search is
never worse than TT-SVD at the same ``rtol`` and never worse than ``tr_svd(x, start=0)``.

The cheap variant (``heuristic=True``) fixes the start by the rule of Mickelin & Karaman
(2020, reference code ``choose_starting_index.m``): the start is the mode ``k`` with the
smallest *interaction rank*, the rank of the unfolding that groups modes ``k`` and ``k + 1``
(cyclically) against the rest. We measure that rank as a delta-rank (the same truncation
rule and ``delta`` as the sweep; singular values only, no singular vectors). Unlike their
code, which also picks one ``r0`` from the interaction ranks, we then try every divisor
split of that one start: the splits share its first SVD and cost far less than it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tensornet import _backend as B
from tensornet._backend import Array
from tensornet._validation import (
    _describe,
    check_array,
    check_choice,
    check_int,
    check_rng,
    check_rtol,
)
from tensornet.decompose.tr_svd import (
    _divisors,
    _first_svd,
    _floor,
    _ring_sweep,
    _rotate,
    _zero_ring,
)
from tensornet.formats.tr import TRTensor
from tensornet.linalg import SVDMethod, _choose_rank

__all__ = ["TRCandidate", "tr_search", "tr_search_candidates"]

_METHODS = ("auto", "exact", "randomized")


class TRCandidate(NamedTuple):
    """One TR-SVD tried by the RSDTR search.

    ``tr_svd(x, rtol=rtol, max_rank=max_rank, start=c.start, r0=c.r0)`` rebuilds the
    candidate ``c`` (with ``method="exact"``; the randomized path draws other numbers).

    Attributes
    ----------
    start : int
        Start mode of the sweep (the cyclic shift).
    r0 : int
        The split of the first rank: ``ranks[start] == r0``.
    ranks : tuple of int
        The ranks of the result in the original mode order (as :attr:`TRTensor.ranks`).
    num_params : int
        Number of entries of the cores.
    error : float
        Relative Frobenius error ``||x - x_hat|| / ||x||`` (0 for a zero tensor),
        computed from the dropped singular values: the sweep's residuals are mutually
        orthogonal, so their squares add up (exact up to round-off).
    """

    start: int
    r0: int
    ranks: tuple[int, ...]
    num_params: int
    error: float


def _sort_key(c: TRCandidate) -> tuple[int, float, int, int]:
    """Fewest parameters first; ties go to the smaller error, then start, then r0."""
    return (c.num_params, c.error, c.start, c.r0)


def _check_cap(max_rank: object) -> int | None:
    if max_rank is None:
        return None
    if isinstance(max_rank, (list, tuple)) or B.is_array(max_rank):
        raise TypeError(
            "max_rank must be an int or None for the search (one cap for every SVD of every "
            "sweep; per-SVD caps depend on the start mode, see tr_svd), got "
            f"{_describe(max_rank)}"
        )
    return check_int(max_rank, "max_rank", minimum=1)


def _interaction_ranks(x: Array, tol: float | None, total: float) -> list[int]:
    """Delta-rank of the unfolding grouping modes ``(k, k+1)`` (cyclic) against the rest."""
    xp = B.namespace(x)
    d = x.ndim
    eps = B.eps(x)
    result = []
    for k in range(d):
        rows = int(x.shape[k]) * int(x.shape[(k + 1) % d])
        mat = xp.reshape(_rotate(x, k), (rows, -1))
        shape = (int(mat.shape[0]), int(mat.shape[1]))
        s = xp.linalg.svdvals(mat)
        rank, _ = _choose_rank(s, 0.0, shape, eps, tol, None, _floor(x, shape, total))
        result.append(rank)
    return result


def _search(
    x: Array,
    rtol: float | None,
    cap: int | None,
    heuristic: bool,
    method: str,
    rng: np.random.Generator,
) -> tuple[list[TRCandidate], TRTensor]:
    """All candidates (sorted, best first) and the cores of the best one."""
    d = x.ndim
    total = float(B.norm(x))
    if d == 1 or total == 0.0:
        t = _zero_ring(x) if total == 0.0 else TRTensor([B.namespace(x).reshape(x, (1, -1, 1))])
        return [TRCandidate(0, 1, t.ranks, t.num_params, 0.0)], t
    tol = None if rtol is None else rtol * total / math.sqrt(d - 1)
    starts: list[int] = list(range(d))
    if heuristic:
        ranks = _interaction_ranks(x, tol, total)
        starts = [ranks.index(min(ranks))]
    candidates: list[TRCandidate] = []
    best: tuple[tuple[int, float, int, int], TRTensor] | None = None
    for start in starts:
        first = _first_svd(x, start, tol=tol, cap=cap, method=method, rng=rng, total=total)
        for r0 in _divisors(int(first.s.shape[0])):
            cores, tails = _ring_sweep(
                x,
                start,
                first,
                r0,
                tol=tol,
                caps=None if cap is None else (cap,) * (d - 2),
                method=method,
                rng=rng,
                total=total,
            )
            t = TRTensor(cores)
            error = math.sqrt(sum(e * e for e in tails)) / total
            candidate = TRCandidate(start, r0, t.ranks, t.num_params, error)
            if best is None or _sort_key(candidate) < best[0]:
                best = (_sort_key(candidate), t)
            candidates.append(candidate)
    assert best is not None  # every start has the divisor r0 = 1
    return sorted(candidates, key=_sort_key), best[1]


def _validate(
    x: object, rtol: object, max_rank: object, heuristic: object, method: object, rng: object
) -> tuple[Array, float | None, int | None, bool, str, np.random.Generator]:
    arr = check_array(x, "x")
    if not isinstance(heuristic, (bool, np.bool_)):
        raise TypeError(f"heuristic must be a bool, got {_describe(heuristic)}")
    return (
        arr,
        check_rtol(rtol),
        _check_cap(max_rank),
        bool(heuristic),
        check_choice(method, "method", _METHODS),
        check_rng(rng),
    )


def tr_search(
    x: Array,
    *,
    rtol: float | None,
    max_rank: int | None = None,
    heuristic: bool = False,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> TRTensor:
    """Tensor ring with the fewest parameters over all TR-SVD shifts and splits (RSDTR).

    Runs :func:`~tensornet.decompose.tr_svd.tr_svd` from every start mode ``c`` with
    every divisor ``r0`` of that start's first rank ``r`` and returns the result with the
    fewest parameters (ties: smaller error, then smaller ``c``, then smaller ``r0``). Every
    candidate satisfies ``||x - result||_F <= rtol * ||x||_F`` (when no cap binds), and
    ``r0 = 1`` is a TT, so the result never has more parameters than
    ``tt_svd(x, rtol=rtol)`` or ``tr_svd(x, rtol=rtol)``. The first SVD of each start is
    computed once and shared by its splits. :func:`tr_search_candidates` runs the same
    search and reports every candidate (start, ``r0``, ranks, parameters, error); its first
    record is the choice made here.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor (NumPy or torch; real or complex). The result has ``x``'s array
        type, dtype and device.
    rtol : float or None
        Target relative Frobenius error (required keyword; None: exact up to round-off).
    max_rank : int, optional
        Cap on the rank of every SVD of every sweep: on the product ``r0 * r1`` of the
        first one and on every later bond. With ``rtol``, the smaller rank wins.
    heuristic : bool
        If True, only the start mode with the smallest interaction rank (Mickelin &
        Karaman; see the module docstring) is tried, with all its splits: one first SVD
        instead of ``d``, plus ``d`` singular-value-only factorizations to pick the start.
    method : {"auto", "exact", "randomized"}
        SVD path of each unfolding (see :func:`tensornet.linalg.truncated_svd`).
    rng : numpy.random.Generator, int or None
        Randomness of the randomized path.

    Returns
    -------
    TRTensor
        Cores in the original mode order (``cores[k]`` belongs to mode ``k``).

    Raises
    ------
    TypeError
        If ``x`` is not numeric or an option has the wrong type (``max_rank`` must be an
        int here).
    ValueError
        If ``x`` is 0-d, empty or non-finite, or an option is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tr_search import tr_search
    >>> from tensornet.decompose.tt_svd import tt_svd
    >>> rng = np.random.default_rng(0)
    >>> cores = [rng.standard_normal(s) for s in [(2, 8, 3), (3, 9, 2), (2, 10, 2)]]
    >>> x = np.einsum("aib,bjc,cka->ijk", *cores)
    >>> t = tr_search(x, rtol=1e-10)
    >>> t.num_params <= tt_svd(x, rtol=1e-10).num_params
    True
    >>> bool(np.linalg.norm(t.to_dense() - x) <= 1e-10 * np.linalg.norm(x))
    True
    """
    arr, tol, cap, heur, meth, gen = _validate(x, rtol, max_rank, heuristic, method, rng)
    return _search(arr, tol, cap, heur, meth, gen)[1]


def tr_search_candidates(
    x: Array,
    *,
    rtol: float | None,
    max_rank: int | None = None,
    heuristic: bool = False,
    method: SVDMethod = "auto",
    rng: np.random.Generator | int | None = None,
) -> list[TRCandidate]:
    """Every TR-SVD candidate of the RSDTR search, fewest parameters first.

    Runs the search of :func:`tr_search` (same arguments, same cost) and returns one
    small record per (start, ``r0``) pair tried, sorted by parameters (then error, start,
    ``r0``); the first record is the one :func:`tr_search` returns. Rebuild any candidate
    with ``tr_svd(x, rtol=rtol, max_rank=max_rank, start=c.start, r0=c.r0)``.

    Parameters
    ----------
    x : array, shape (n_0, ..., n_{d-1})
        Dense tensor.
    rtol : float or None
        Target relative Frobenius error (required keyword).
    max_rank : int, optional
        Cap on the rank of every SVD of every sweep (see :func:`tr_search`).
    heuristic : bool
        Only the start with the smallest interaction rank (see :func:`tr_search`).
    method : {"auto", "exact", "randomized"}
        SVD path of each unfolding.
    rng : numpy.random.Generator, int or None
        Randomness of the randomized path.

    Returns
    -------
    list of TRCandidate
        ``(start, r0, ranks, num_params, error)`` records, best first.

    Raises
    ------
    TypeError, ValueError
        As :func:`tr_search`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensornet.decompose.tr_search import tr_search_candidates
    >>> x = np.random.default_rng(0).standard_normal((4, 6, 5))
    >>> best = tr_search_candidates(x, rtol=0.2)[0]
    >>> best.num_params == min(c.num_params for c in tr_search_candidates(x, rtol=0.2))
    True
    >>> best.error <= 0.2
    True
    """
    arr, tol, cap, heur, meth, gen = _validate(x, rtol, max_rank, heuristic, method, rng)
    return _search(arr, tol, cap, heur, meth, gen)[0]
