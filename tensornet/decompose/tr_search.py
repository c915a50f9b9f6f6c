"""RSDTR (Gabor & Zdunek 2024): the TR-SVD with the fewest parameters over shifts and splits.

TR-SVD (:func:`tensornet.decompose.tr_svd.tr_svd`) depends on two choices: the start mode
(equivalently a cyclic shift of the modes) and the split ``r = r0 * r1`` of the first rank.
The search runs TR-SVD for every start ``c = 0, ..., d - 1`` and every divisor ``r0`` of the
first rank ``r`` of that start and keeps the result with the fewest parameters. The first
truncated SVD of each start (the expensive one: an SVD of the whole tensor) is computed once
and shared by all the splits of that start. ``r0 = 1`` is a tensor train, so the search is
never worse than TT-SVD at the same ``rtol`` and never worse than ``tr_svd(x, start=0)``.

:func:`tr_search` does not run every sweep to the end: a branch-and-bound search (best-first
over lower bounds of the parameter count, see the comment block above ``_pruned_search``)
abandons candidates that cannot win and returns exactly the exhaustive choice, bit for bit.
:func:`tr_search_candidates` reports every candidate and so still runs every sweep.

The cheap variant (``heuristic=True``) fixes the start by the rule of Mickelin & Karaman
(2020, reference code ``choose_starting_index.m``): the start is the mode ``k`` with the
smallest *interaction rank*, the rank of the unfolding that groups modes ``k`` and ``k + 1``
(cyclically) against the rest. We measure that rank as a delta-rank (the same truncation
rule and ``delta`` as the sweep; singular values only, no singular vectors). Unlike their
code, which also picks one ``r0`` from the interaction ranks, we then try every divisor
split of that one start: the splits share its first SVD and cost far less than it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Generator
from typing import Any, NamedTuple, cast

import numpy as np

from tensornet import _backend as B
from tensornet import _chunked
from tensornet._backend import Array
from tensornet._chunked import is_chunked
from tensornet._validation import (
    _describe,
    check_array,
    check_choice,
    check_int,
    check_rng,
    check_rtol,
)
from tensornet.decompose.tr_svd import (
    Sweep,
    _chunked_first,
    _chunked_ring_rest,
    _divisors,
    _first_svd,
    _floor,
    _ring_sweep,
    _rotate,
    _rotation,
    _sweep_steps,
    _zero_ring,
)
from tensornet.decompose.tt_svd import _ROUNDOFF_GROWTH
from tensornet.formats.tr import TRTensor
from tensornet.linalg import SVDMethod, TruncatedSVD, _choose_rank, _mh

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


# -- branch and bound (tr_search only) ---------------------------------------------------------
# A candidate's parameter count sum_k n_k * rho_k * rho_{k+1} (rotated bonds rho, rho_0 = r0,
# rho_1 = r1) grows with every bond, so bonds not yet computed can be replaced by lower bounds.
# Two valid bounds, both from singular values the sweep has (or cheaply can have):
#
# * The bond an SVD is about to keep. Its rank is min(numerical rank, tail rank, cap) (see
#   linalg._choose_rank). The eigenvalues of the Gram matrix M M^H (a GEMM and a symmetric
#   eigensolve, 5-30x cheaper than the SVD with vectors) give the squared singular values up to
#   an absolute round-off delta = _SLACK * (m + n) * eps * ||M||_F^2; lowering them by delta
#   gives lower bounds on every tail sum and on the count above the numerical-rank threshold
#   (raised by delta), hence on the rank.
# * The bond after it. The next matrix M' is a reshape of C = diag(s) V^H (singular values s,
#   the kept ones) that groups the rows (a, i) of M' (i: the next mode, f values; f = r0 * n_1
#   for the first step, whose split also moves r0) into rows a of C. If M' is truncated to rank
#   r' with error e, the same reshape of the truncation has rank <= f * r' and is within e of
#   C, so the tail of s after index f * r' is <= e: r' >= ceil(k / f) with k the first index
#   whose tail of kept values is <= e. Without a cap, e <= max(tol, sqrt(min dim) * threshold)
#   (the tail tolerance, or the values below the numerical-rank threshold).
#
# Candidates are tried in increasing order of their bound, and one is abandoned (before an SVD)
# once its bound exceeds the fewest parameters found so far. Pruning is strict (>), so ties
# are still decided by error, start and r0, and the result is that of the exhaustive search.
# It is used only when the SVD path is deterministic (no randomized sketch draws from rng).
_SLACK = 64.0
_GRAM_MIN = 32  # below this size an SVD is cheap: no Gram pre-check


def _params(ranks: list[int], sizes: list[int]) -> int:
    d = len(sizes)
    return sum(sizes[k] * ranks[k] * ranks[(k + 1) % d] for k in range(d))


def _next_bound(
    x: Array,
    lo: np.ndarray,
    factor: int,
    frob: float,
    next_rows: int,
    next_cols: int,
    tol: float | None,
    total: float,
) -> int:
    """Lower bound on the rank of the next SVD (second bullet above; no cap)."""
    big = max(next_rows, next_cols)
    thr = max(frob * big * B.eps(x), _floor(x, (big, 1), total))
    e = math.sqrt(min(next_rows, next_cols)) * thr
    if tol is not None:
        e = max(e, tol)
    tails = np.concatenate((np.cumsum(lo[::-1])[::-1], [0.0]))
    k = int(np.flatnonzero(tails <= e * e)[0])
    return max(1, -(-k // factor))


def _gram_bounds(
    x: Array,
    mat: Array,
    tol: float | None,
    cap: int | None,
    total: float,
    factor: int,
    next_cols: int | None,
) -> tuple[int, int]:
    """Lower bounds on the rank kept from ``mat`` and on the next rank (1 if none)."""
    xp = B.namespace(mat)
    m, n = int(mat.shape[0]), int(mat.shape[1])
    gram = mat @ _mh(mat) if m <= n else _mh(mat) @ mat
    lam = np.sort(np.asarray(B.to_numpy(xp.linalg.eigvalsh(gram)), dtype=np.float64))[::-1]
    frob = float(B.norm(mat))
    eps = B.eps(x)
    delta = _SLACK * (m + n) * eps * frob * frob
    lo = np.maximum(lam - delta, 0.0)
    thr = max(math.sqrt(max(lam[0], 0.0) + delta) * max(m, n) * eps, _floor(x, (m, n), total))
    rank = int(np.count_nonzero(lo > thr * thr))
    if tol is not None:
        tails = np.concatenate((np.cumsum(lo[::-1])[::-1], [0.0]))
        rank = min(rank, int(np.flatnonzero(tails <= tol * tol)[0]))
    if cap is not None:
        rank = min(rank, cap)
    rank = max(rank, 1)
    nxt = 1
    if next_cols is not None and cap is None:
        rows = min(m, n) * factor
        nxt = _next_bound(x, lo[:rank], factor, frob, rows, next_cols, tol, total)
    return rank, nxt


class _Partial:
    """A candidate of the best-first search: its paused sweep and bonds' lower bounds."""

    def __init__(self, first: TruncatedSVD, ranks: list[int]) -> None:
        self.first = first
        self.ranks = ranks  # rotated bonds: exact where computed, lower bounds elsewhere
        self.steps: Generator[tuple[int, Array, int], None, Sweep] | None = None
        self.step: tuple[int, Array, int] | None = None  # the SVD the sweep waits on
        self.checked = False  # whether that SVD's Gram pre-check was done

    def __lt__(self, other: _Partial) -> bool:  # never reached: (bound, start, r0) is unique
        return False


def _pruned_search(
    x: Array,
    starts: list[int],
    tol: float | None,
    cap: int | None,
    method: str,
    rng: np.random.Generator,
    total: float,
) -> tuple[list[TRCandidate], TRTensor]:
    """Branch-and-bound search (deterministic SVD path only): the exhaustive search's choice."""
    d = x.ndim
    eps = B.eps(x)
    plan: list[tuple[int, int, int, list[int], TruncatedSVD]] = []
    for start in starts:
        first = _first_svd(x, start, tol=tol, cap=cap, method=method, rng=rng, total=total)
        sizes = [int(x.shape[m]) for m in _rotation(d, start)]
        r = int(first.s.shape[0])
        s_sq = np.asarray(B.to_numpy(first.s), dtype=np.float64) ** 2
        frob = math.sqrt(float(np.sum(s_sq)))
        lo = np.maximum(s_sq - _SLACK * eps * frob * frob, 0.0)
        for r0 in _divisors(r):
            ranks = [r0, r // r0] + [1] * (d - 2)
            if d >= 3 and cap is None:
                cols = math.prod(sizes[2:]) * r0
                ranks[2] = _next_bound(
                    x, lo, r0 * sizes[1], frob, (r // r0) * sizes[1], cols, tol, total
                )
            plan.append((_params(ranks, sizes), start, r0, ranks, first))
    # Best-first: always work on the partial candidate with the smallest bound, one step at a
    # time (a Gram pre-check of its next big matrix, or the SVD itself), until that bound
    # exceeds the best count found: every candidate left can then only have more parameters.
    heap: list[tuple[int, int, int, _Partial]] = [
        (bound, start, r0, _Partial(first, ranks)) for bound, start, r0, ranks, first in plan
    ]
    heapq.heapify(heap)
    caps = None if cap is None else (cap,) * (d - 2)
    candidates: list[TRCandidate] = []
    best: tuple[tuple[int, float, int, int], TRTensor] | None = None
    while heap and (best is None or heap[0][0] <= best[0][0]):
        _, start, r0, part = heapq.heappop(heap)
        sizes = [int(x.shape[m]) for m in _rotation(d, start)]
        ranks = part.ranks
        step = part.step
        if step is not None and not part.checked and min(step[1].shape) >= _GRAM_MIN:
            j, mat, _ = step
            nxt_cols = int(mat.shape[1]) // sizes[j + 1] if j + 2 <= d - 1 else None
            low, nxt = _gram_bounds(x, mat, tol, cap, total, sizes[j + 1], nxt_cols)
            ranks[j + 1] = max(ranks[j + 1], low)
            if nxt_cols is not None:
                ranks[j + 2] = max(ranks[j + 2], nxt)
            part.checked = True
            heapq.heappush(heap, (_params(ranks, sizes), start, r0, part))
            continue
        if part.steps is None:
            part.steps = _sweep_steps(
                x,
                start,
                part.first,
                r0,
                tol=tol,
                caps=caps,
                method=method,
                rng=rng,
                total=total,
            )
        try:
            part.step = next(part.steps)  # runs the pending SVD, if any
        except StopIteration as done:
            cores, tails = done.value
            t = TRTensor(cores)
            error = math.sqrt(sum(e * e for e in tails)) / total
            candidate = TRCandidate(start, r0, t.ranks, t.num_params, error)
            if best is None or _sort_key(candidate) < best[0]:
                best = (_sort_key(candidate), t)
            candidates.append(candidate)
            continue
        j, _, rank = part.step
        ranks[j] = max(ranks[j], rank)
        part.checked = False
        heapq.heappush(heap, (_params(ranks, sizes), start, r0, part))
    assert best is not None  # the first bound is never above a found count
    return sorted(candidates, key=_sort_key), best[1]


def _search(
    x: Array,
    rtol: float | None,
    cap: int | None,
    heuristic: bool,
    method: str,
    rng: np.random.Generator,
    prune: bool = False,
) -> tuple[list[TRCandidate], TRTensor]:
    """All candidates (sorted, best first) and the cores of the best one.

    With ``prune`` (and a deterministic SVD path) candidates that cannot win are abandoned
    early and left out of the list; the best one is the same.
    """
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
    if prune and (method == "exact" or (method == "auto" and cap is None)):
        return _pruned_search(x, starts, tol, cap, method, rng, total)
    candidates: list[TRCandidate] = []
    best: tuple[tuple[int, float, int, int], TRTensor] | None = None
    for start in starts:
        first = _first_svd(x, start, tol=tol, cap=cap, method=method, rng=rng, total=total)
        for r0 in _divisors(int(first.s.shape[0])):
            swept = _ring_sweep(
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
            assert swept is not None  # no stop rule: the sweep always finishes
            t = TRTensor(swept[0])
            error = math.sqrt(sum(e * e for e in swept[1])) / total
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
    computed once and shared by its splits, and sweeps that cannot beat the best count
    found are abandoned early (exactly: the result is the exhaustive search's; on conv
    kernels it costs 4-13 ``tr_svd`` times, docs/benchmarks.md).
    :func:`tr_search_candidates` runs the same search without pruning and reports every
    candidate (start, ``r0``, ranks, parameters, error); its first record is the choice
    made here.

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
    if is_chunked(x):
        return _search_chunked(x, rtol, max_rank, heuristic, method, rng)[1]
    arr, tol, cap, heur, meth, gen = _validate(x, rtol, max_rank, heuristic, method, rng)
    return _search(arr, tol, cap, heur, meth, gen, prune=True)[1]


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

    Runs the search of :func:`tr_search` (same arguments; every sweep to the end, so
    it costs more than :func:`tr_search`, which prunes) and returns one
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
    if is_chunked(x):
        return _search_chunked(x, rtol, max_rank, heuristic, method, rng)[0]
    arr, tol, cap, heur, meth, gen = _validate(x, rtol, max_rank, heuristic, method, rng)
    return _search(arr, tol, cap, heur, meth, gen)[0]


def _search_chunked(
    x: Any, rtol: object, max_rank: object, heuristic: object, method: object, rng: object
) -> tuple[list[TRCandidate], TRTensor]:
    """The exhaustive search on a dask array, out of core (:mod:`tensornet._chunked`).

    One pass gives the Gram matrices of every start's first unfolding (and, with
    ``heuristic``, of every pair of neighbouring modes). Per start, the first truncation
    and its lazy carry are shared by all splits; a carry that fits one dask chunk is
    computed once and its sweeps run in memory, otherwise every split sweeps out of core.
    Any chunking is accepted: each start's mode is merged into whole chunks for its pass
    (blocks grow by that mode's number of chunks), so chunk the largest modes.
    """
    x = _chunked.check_chunked(x, "x", whole_mode=None)
    if not isinstance(heuristic, (bool, np.bool_)):
        raise TypeError(f"heuristic must be a bool, got {_describe(heuristic)}")
    rtol_ = check_rtol(rtol)
    cap = _check_cap(max_rank)
    meth = check_choice(method, "method", _METHODS)
    gen = check_rng(rng)
    d = x.ndim
    shape = tuple(int(n) for n in x.shape)
    dtype = np.dtype(x.dtype)
    eps = float(np.finfo(dtype).eps)

    def finish(cores: list[np.ndarray]) -> TRTensor:
        return TRTensor([np.asarray(c).astype(dtype, copy=False) for c in cores])

    if d == 1:
        (vector,) = _chunked.compute(x)
        _chunked.check_finite(vector, "x")
        t = finish([vector.reshape(1, shape[0], 1)])
        return [TRCandidate(0, 1, t.ranks, t.num_params, 0.0)], t
    starts = list(range(d))
    pairs = [(k, (k + 1) % d) for k in range(d)] if heuristic else []
    grams = _chunked.compute(
        *(_chunked.gram(x, (k,)) for k in starts), *(_chunked.gram(x, p) for p in pairs)
    )
    for g in grams:
        _chunked.check_finite(g, "x")
    total = math.sqrt(max(float(np.real(np.trace(grams[0]))), 0.0))
    if total == 0.0:
        t = finish([np.zeros((1, n, 1), dtype=dtype) for n in shape])
        return [TRCandidate(0, 1, t.ranks, t.num_params, 0.0)], t
    tol = None if rtol_ is None else rtol_ * total / math.sqrt(d - 1)
    if heuristic:  # the delta-rank of each pair unfolding, from its Gram eigenvalues
        interaction = []
        for (k, k2), g in zip(pairs, grams[d:], strict=True):
            w = np.linalg.eigvalsh(g)[::-1].clip(min=0.0)
            rows = shape[k] * shape[k2]
            floor = _ROUNDOFF_GROWTH * eps * max(rows, math.prod(shape) // rows) * total
            rank, _ = _choose_rank(
                np.sqrt(w), 0.0, (rows, math.prod(shape) // rows), eps, tol, None, floor
            )
            interaction.append(rank)
        starts = [interaction.index(min(interaction))]
    candidates: list[TRCandidate] = []
    best: tuple[tuple[int, float, int, int], TRTensor] | None = None
    for start in starts:
        y = x.transpose(_rotation(d, start))
        u, carry, first_error = _chunked_first(
            y, grams[start], tol=tol, cap=cap, eps=eps, total=total
        )
        if _chunked.small_enough(carry):
            (carry,) = _chunked.compute(carry)
        sizes = [int(n) for n in y.shape]
        for r0 in _divisors(int(u.shape[1])):
            rotated, tails = _chunked_ring_rest(
                u,
                carry,
                sizes,
                r0,
                tol=tol,
                caps=None if cap is None else (cap,) * (d - 2),
                method=cast(SVDMethod, meth),
                rng=gen,
                eps=eps,
                total=total,
            )
            t = finish([rotated[(k - start) % d] for k in range(d)])
            error = math.sqrt(first_error**2 + sum(e * e for e in tails)) / total
            candidate = TRCandidate(start, r0, t.ranks, t.num_params, error)
            if best is None or _sort_key(candidate) < best[0]:
                best = (_sort_key(candidate), t)
            candidates.append(candidate)
    assert best is not None  # every start has the divisor r0 = 1
    return sorted(candidates, key=_sort_key), best[1]
