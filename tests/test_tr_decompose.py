"""Tensor-ring decompositions: TR-SVD bounds and splits, the RSDTR search, TR-ALS."""

from __future__ import annotations

import itertools
import math
import string
import warnings
from typing import Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import DTypeLike

from tensornet import ConvergenceWarning, TRTensor, tt_svd
from tensornet.decompose.tr_als import tr_als
from tensornet.decompose.tr_search import TRCandidate, tr_search, tr_search_candidates
from tensornet.decompose.tr_svd import tr_svd
from tensornet.testing import assert_relative_error, assert_tensors_close, shapes


def _slack(dtype: DTypeLike) -> float:
    """Round-off allowance for a bound checked in ``dtype``."""
    return 100 * float(np.finfo(np.dtype(dtype)).eps)


def _divisors(r: int) -> list[int]:
    return [q for q in range(1, r + 1) if r % q == 0]


def _ring_cores(
    shape: tuple[int, ...], bonds: tuple[int, ...], rng: np.random.Generator
) -> list[np.ndarray]:
    """Gaussian ring cores ``(r_k, n_k, r_{k+1})`` with ``r_d = r_0``."""
    d = len(shape)
    return [rng.standard_normal((bonds[k], n, bonds[(k + 1) % d])) for k, n in enumerate(shape)]


def _ring_dense(cores: list[np.ndarray]) -> np.ndarray:
    """Dense tensor of a ring, by one einsum (independent of tensornet's contraction)."""
    d = len(cores)
    bonds, modes = string.ascii_letters[:d], string.ascii_letters[26 : 26 + d]
    terms = [bonds[k] + modes[k] + bonds[(k + 1) % d] for k in range(d)]
    return np.einsum(",".join(terms) + "->" + modes, *cores)


def _rel_error(t: TRTensor, x: np.ndarray) -> float:
    diff = np.asarray(t.to_dense(), dtype=np.complex128) - x
    return float(np.linalg.norm(diff) / np.linalg.norm(x))


@st.composite
def dense_tensors(draw: st.DrawFn, dtype: str = "float64") -> np.ndarray:
    """Random tensors, or low-rank rings plus a little noise (decaying spectra)."""
    shape = draw(shapes(min_order=1, max_order=4, max_size=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        bonds = tuple(draw(st.lists(st.integers(1, 3), min_size=len(shape), max_size=len(shape))))
        x = _ring_dense(_ring_cores(shape, bonds, rng))
        x = x + 1e-3 * np.linalg.norm(x) / math.sqrt(x.size) * rng.standard_normal(shape)
    else:
        x = rng.standard_normal(shape)
    return np.asarray(x, dtype=dtype)


@st.composite
def rings(draw: st.DrawFn) -> tuple[np.ndarray, tuple[int, ...]]:
    """Dense tensors built exactly as rings, with their bond sizes."""
    shape = draw(shapes(min_order=1, max_order=4, min_size=2, max_size=5))
    bonds = tuple(draw(st.lists(st.integers(1, 3), min_size=len(shape), max_size=len(shape))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _ring_dense(_ring_cores(shape, bonds, rng)), bonds


# -- TR-SVD ----------------------------------------------------------------------------------------
@given(x=dense_tensors(), rtol=st.floats(1e-8, 0.9), data=st.data())
def test_tr_svd_honours_rtol_bound_for_every_start_and_split(
    x: np.ndarray, rtol: float, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, x.ndim - 1))
    first_rank = tr_svd(x, rtol=rtol, start=start, r0=1).ranks[(start + 1) % x.ndim]
    r0 = data.draw(st.sampled_from(_divisors(first_rank)))
    t = tr_svd(x, rtol=rtol, start=start, r0=r0)
    assert t.ranks[start] == r0
    assert t.ranks[(start + 1) % x.ndim] * r0 == first_rank or x.ndim == 1
    assert np.linalg.norm(t.to_dense() - x) <= (rtol + _slack(x.dtype)) * np.linalg.norm(x)


@given(x=dense_tensors(dtype="float32"), rtol=st.floats(1e-3, 0.9), data=st.data())
def test_tr_svd_float32_honours_rtol_bound_and_stays_float32(
    x: np.ndarray, rtol: float, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, x.ndim - 1))
    t = tr_svd(x, rtol=rtol, start=start)
    assert t.dtype == np.float32
    err = np.linalg.norm((t.to_dense() - x).astype(np.float64))
    assert err <= (rtol + _slack(np.float32)) * np.linalg.norm(x.astype(np.float64))


@given(ring=rings(), data=st.data())
def test_tr_svd_recovers_rings_exactly(
    ring: tuple[np.ndarray, tuple[int, ...]], data: st.DataObject
) -> None:
    x, _ = ring
    start = data.draw(st.integers(0, x.ndim - 1))
    t = tr_svd(x, start=start)
    assert_tensors_close(t, x)
    assert t.shape == x.shape  # cores[k] belongs to mode k of x, whatever the start


def test_tr_svd_cores_are_in_the_original_mode_order() -> None:
    rng = np.random.default_rng(1)
    x = _ring_dense(_ring_cores((4, 5, 6, 7), (2, 2, 3, 1), rng))
    for start in range(4):
        t = tr_svd(x, rtol=1e-12, start=start, r0=1)
        assert [int(c.shape[1]) for c in t.cores] == [4, 5, 6, 7]
        assert t.ranks[start] == 1  # the ring is cut (r0 = 1) at the start mode's left bond
        assert_relative_error(t.to_dense(), x, 1e-12)
    assert tr_svd(x, start=-1).ranks == tr_svd(x, start=3).ranks


def test_tr_svd_balanced_split_is_the_largest_divisor_below_sqrt() -> None:
    x = np.random.default_rng(2).standard_normal((12, 4, 5))  # first rank 12 = 3 * 4
    assert tr_svd(x).ranks[:2] == (3, 4)
    y = np.random.default_rng(2).standard_normal((7, 3, 5))  # first rank 7 is prime
    assert tr_svd(y).ranks[:2] == (1, 7)


def test_tr_svd_r0_not_dividing_the_first_rank_is_rejected() -> None:
    x = np.random.default_rng(3).standard_normal((6, 7, 8))  # first rank 6
    assert tr_svd(x, r0=3).ranks[:2] == (3, 2)
    with pytest.raises(ValueError, match=r"r0 must divide the first rank r = r0 \* r1 = 6"):
        tr_svd(x, r0=4)
    with pytest.raises(ValueError, match="r0 must divide"):
        tr_svd(np.arange(1.0, 5.0), r0=2)  # order 1: first rank 1


@given(x=dense_tensors(), cap=st.integers(1, 6), data=st.data())
def test_tr_svd_max_rank_caps_the_first_product_and_every_later_bond(
    x: np.ndarray, cap: int, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, x.ndim - 1))
    t = tr_svd(x, max_rank=cap, start=start, r0=1)
    d = x.ndim
    assert t.ranks[(start + 1) % d] <= cap  # r0 * r1 with r0 = 1
    assert all(t.ranks[(start + j) % d] <= cap for j in range(2, d))


def test_tr_svd_per_svd_max_rank_in_sweep_order() -> None:
    x = np.random.default_rng(4).standard_normal((6, 8, 6, 7))
    t = tr_svd(x, max_rank=[6, 4, 3], start=1, r0=2)
    # start 1: the first SVD keeps r_1 * r_2 = 6 = 2 * 3, then r_3 <= 4 and r_0 <= 3.
    assert t.ranks == (3, 2, 3, 4, 3)
    with pytest.raises(ValueError, match="max_rank must be an int or a sequence of 3"):
        tr_svd(x, max_rank=[2, 2])


def test_tr_svd_zero_tensor_and_order_one() -> None:
    t = tr_svd(np.zeros((3, 4, 5)), rtol=0.1, start=1)
    assert t.ranks == (1, 1, 1, 1)
    assert float(np.linalg.norm(t.to_dense())) == 0.0
    v = tr_svd(np.arange(1.0, 5.0))
    assert v.ranks == (1, 1)
    np.testing.assert_array_equal(v.to_dense(), np.arange(1.0, 5.0))


@given(x=dense_tensors(), rtol=st.one_of(st.none(), st.floats(0.0, 0.5)), data=st.data())
def test_tr_svd_first_rank_never_exceeds_the_unfolding_rank(
    x: np.ndarray, rtol: float | None, data: st.DataObject
) -> None:
    start = data.draw(st.integers(0, x.ndim - 1))
    t = tr_svd(x, rtol=rtol, start=start, r0=1)
    unfolding = np.moveaxis(x, start, 0).reshape(x.shape[start], -1)
    assert t.ranks[(start + 1) % x.ndim] <= max(int(np.linalg.matrix_rank(unfolding)), 1)


# -- RSDTR search ----------------------------------------------------------------------------------
@given(x=dense_tensors(), rtol=st.floats(1e-6, 0.7))
def test_tr_search_never_has_more_params_than_tt_svd_or_tr_svd(x: np.ndarray, rtol: float) -> None:
    t = tr_search(x, rtol=rtol, method="exact")
    assert t.num_params <= tt_svd(x, rtol=rtol, method="exact").num_params
    assert t.num_params <= tr_svd(x, rtol=rtol, method="exact").num_params
    assert t.shape == x.shape  # original mode order
    assert np.linalg.norm(t.to_dense() - x) <= (rtol + _slack(x.dtype)) * np.linalg.norm(x)


@given(x=dense_tensors(), rtol=st.floats(1e-6, 0.7))
def test_tr_search_candidates_are_sorted_and_rebuild_with_tr_svd(
    x: np.ndarray, rtol: float
) -> None:
    candidates = tr_search_candidates(x, rtol=rtol, method="exact")
    assert all(isinstance(c, TRCandidate) for c in candidates)
    params = [c.num_params for c in candidates]
    assert params == sorted(params)
    assert {c.start for c in candidates} == set(range(x.ndim if x.ndim > 1 else 1))
    best = tr_search(x, rtol=rtol, method="exact")
    assert (best.ranks, best.num_params) == (candidates[0].ranks, candidates[0].num_params)
    for c in candidates[:3]:
        t = tr_svd(x, rtol=rtol, start=c.start, r0=c.r0, method="exact")
        assert t.ranks == c.ranks and t.ranks[c.start] == c.r0
        assert c.error <= rtol + _slack(x.dtype)
        assert abs(_rel_error(t, x) - c.error) <= 1e-6 * max(c.error, 1e-6)


def _assert_same_as_exhaustive(x: np.ndarray, **kwargs: object) -> None:
    """tr_search (pruned) returns exactly the exhaustive search's choice, cores bit for bit."""
    best = tr_search_candidates(x, method="exact", **kwargs)[0]  # type: ignore[arg-type]
    t = tr_search(x, method="exact", **kwargs)  # type: ignore[arg-type]
    rtol, cap = kwargs.get("rtol"), kwargs.get("max_rank")
    rebuilt = tr_svd(x, rtol=rtol, max_rank=cap, start=best.start, r0=best.r0, method="exact")  # type: ignore[arg-type]
    assert (t.ranks, t.num_params) == (best.ranks, best.num_params)
    assert all(np.array_equal(a, b) for a, b in zip(t.cores, rebuilt.cores))


@given(x=dense_tensors(), rtol=st.floats(1e-8, 0.9), cap=st.sampled_from([None, 1, 2, 4]))
def test_tr_search_pruning_returns_the_exhaustive_choice(
    x: np.ndarray, rtol: float, cap: int | None
) -> None:
    _assert_same_as_exhaustive(x, rtol=rtol, max_rank=cap)


@pytest.mark.parametrize("rtol", [None, 1e-8, 1e-2, 0.3, 0.6])
@pytest.mark.parametrize("kind", ["gaussian", "ring"])
def test_tr_search_pruning_returns_the_exhaustive_choice_on_kernels(kind: str, rtol: float) -> None:
    """Conv-kernel layouts (T, T, 3, 3), where branch and bound prunes most sweeps."""
    rng = np.random.default_rng(31)
    shape = (24, 20, 3, 3)
    if kind == "gaussian":
        x = rng.standard_normal(shape)
    else:
        x = _ring_dense(_ring_cores(shape, (3, 6, 3, 2), rng))
        x = x + 1e-4 * np.linalg.norm(x) / math.sqrt(x.size) * rng.standard_normal(shape)
    _assert_same_as_exhaustive(x, rtol=rtol)
    _assert_same_as_exhaustive(x, rtol=rtol, heuristic=True)


def test_tr_search_searches_every_start_and_divisor() -> None:
    x = np.random.default_rng(5).standard_normal((4, 6, 3))
    candidates = tr_search_candidates(x, rtol=1e-12)
    firsts = {0: 4, 1: 6, 2: 3}  # full first ranks of the three starts
    expected = {(s, r0) for s, r in firsts.items() for r0 in _divisors(r)}
    assert {(c.start, c.r0) for c in candidates} == expected


@given(x=dense_tensors(), rtol=st.floats(1e-6, 0.7))
def test_tr_search_heuristic_tries_one_start_and_honours_rtol(x: np.ndarray, rtol: float) -> None:
    candidates = tr_search_candidates(x, rtol=rtol, heuristic=True, method="exact")
    assert len({c.start for c in candidates}) == 1
    t = tr_search(x, rtol=rtol, heuristic=True, method="exact")
    assert t.num_params >= tr_search(x, rtol=rtol, method="exact").num_params
    assert np.linalg.norm(t.to_dense() - x) <= (rtol + _slack(x.dtype)) * np.linalg.norm(x)


def test_tr_search_heuristic_starts_at_the_smallest_interaction_rank() -> None:
    # A ring with bonds (4, 1, 4, 4): grouping modes (0, 1) leaves rank r_0 * r_2 = 16 at
    # most, modes (1, 2) rank r_1 * r_3 = 4 -- the smallest, so the sweep starts at mode 1.
    rng = np.random.default_rng(6)
    x = _ring_dense(_ring_cores((5, 5, 5, 5), (4, 1, 4, 4), rng))
    assert {c.start for c in tr_search_candidates(x, rtol=1e-10, heuristic=True)} == {1}


def test_tr_search_max_rank_caps_every_svd_and_rejects_sequences() -> None:
    x = np.random.default_rng(7).standard_normal((5, 6, 7))
    for c in tr_search_candidates(x, rtol=1e-12, max_rank=4):
        s = c.start
        assert c.ranks[s] * c.ranks[(s + 1) % 3] <= 4
        assert c.ranks[(s + 2) % 3] <= 4
    with pytest.raises(TypeError, match="max_rank must be an int or None for the search"):
        tr_search(x, rtol=0.1, max_rank=[2, 2])  # type: ignore[arg-type]


def test_tr_search_zero_tensor_and_order_one() -> None:
    z = tr_search(np.zeros((2, 3, 4)), rtol=0.1)
    assert z.ranks == (1, 1, 1, 1)
    assert float(np.linalg.norm(z.to_dense())) == 0.0
    v = tr_search_candidates(np.arange(1.0, 4.0), rtol=0.1)
    assert v == [TRCandidate(0, 1, (1, 1), 3, 0.0)]


def test_users_item_12_kernel_built_as_a_ring() -> None:
    """USERS.md item 12: a (64, 32, 3, 3) kernel built exactly as a ring with ranks (2, 8, 3, 3)."""
    rng = np.random.default_rng(12)
    cores = _ring_cores((64, 32, 3, 3), (2, 8, 3, 3), rng)
    x = _ring_dense(cores)
    assert TRTensor(cores).num_params == 1837
    balanced = tr_svd(x, rtol=1e-10)
    assert (balanced.ranks, balanced.num_params) == ((4, 4, 24, 12, 4), 5104)
    best = tr_search(x, rtol=1e-10)
    assert best.num_params == 4159  # the TT (r0 = 1) from mode 0 wins the search
    assert _rel_error(best, x) <= 1e-10
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fitted = tr_als(x, (2, 8, 3, 3), n_iter_max=200, tol=1e-12, rng=0, init="random")
    assert fitted.num_params == 1837
    assert _rel_error(fitted, x) <= 1e-8


# -- TR-ALS ----------------------------------------------------------------------------------------
def test_tr_als_recovers_an_exact_low_rank_ring() -> None:
    # ALS only promises a stationary point: from random starts it recovers exact rings of
    # these shapes most of the time (7 of 8 tensors for the first, 5 of 8 for the second in a
    # probe), and stalls in swamps otherwise; restarts are the documented remedy.
    for case, (shape, bonds) in enumerate(
        [((6, 6, 6, 6), (3, 3, 3, 3)), ((5, 4, 6, 5), (2, 2, 3, 2))]
    ):
        rng = np.random.default_rng(100 + case)
        x = _ring_dense(_ring_cores(shape, bonds, rng))
        errors = []
        for seed in range(5):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                t = tr_als(x, bonds, n_iter_max=300, tol=1e-14, rng=seed, init="random")
            assert t.ranks == (*bonds, bonds[0])
            errors.append(_rel_error(t, x))
            if errors[-1] <= 1e-8:
                break
        assert min(errors) <= 1e-8, errors


def test_tr_als_error_never_increases_over_sweeps() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 6, 4, 5))  # no exact ring: ALS keeps improving slowly
    t: TRTensor | Literal["random"] = "random"
    errors = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # tol=0: a fixed number of sweeps
        for _ in range(15):
            t = tr_als(x, 3, n_iter_max=1, tol=0, rng=0, init=t)
            errors.append(_rel_error(t, x))
    assert errors[-1] < errors[0]
    assert all(b <= a * (1 + 1e-10) for a, b in itertools.pairwise(errors)), errors


def test_tr_als_warns_when_n_iter_max_is_reached() -> None:
    x = np.random.default_rng(9).standard_normal((4, 5, 6))
    with pytest.warns(ConvergenceWarning, match="n_iter_max=1"):
        tr_als(x, 2, n_iter_max=1, tol=1e-300, rng=0, init="random")


def test_tr_als_svd_init_is_tr_svd_padded_to_the_ranks() -> None:
    rng = np.random.default_rng(10)
    x = _ring_dense(_ring_cores((6, 7, 8), (1, 2, 2), rng))  # a TT: tr_svd finds r0 = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        t = tr_als(x, (2, 2, 3), rng=0)  # larger ranks than needed: padded, still exact
    assert t.ranks == (2, 2, 3, 2)
    assert _rel_error(t, x) <= 1e-6
    exact = tr_als(x, (1, 2, 2), n_iter_max=2, rng=0)  # the TR-SVD start is already exact
    assert _rel_error(exact, x) <= 1e-10


def test_tr_als_rank_deficient_subchains_give_finite_cores() -> None:
    x = np.random.default_rng(11).standard_normal((2, 3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = tr_als(x, 4, n_iter_max=20, rng=0, init="random")  # far more bond than data
    assert all(np.all(np.isfinite(c)) for c in t.cores)
    assert _rel_error(t, x) <= 1e-6


def test_tr_als_accepts_the_three_ranks_forms() -> None:
    x = np.random.default_rng(12).standard_normal((3, 4, 5))
    kwargs = {"n_iter_max": 2, "tol": 0.0, "rng": 0, "init": "random"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = tr_als(x, (2, 3, 2), **kwargs)  # type: ignore[arg-type]
        b = tr_als(x, (2, 3, 2, 2), **kwargs)  # type: ignore[arg-type]
        c = tr_als(x, 2, **kwargs)  # type: ignore[arg-type]
        restarted = tr_als(x, a.ranks, n_iter_max=1, init=a)
    assert a.ranks == b.ranks == (2, 3, 2, 2)
    assert c.ranks == (2, 2, 2, 2)
    assert restarted.ranks == a.ranks
    np.testing.assert_allclose(a.to_dense(), b.to_dense())


def test_tr_als_zero_tensor_and_order_one() -> None:
    z = tr_als(np.zeros((3, 4)), (2, 3))
    assert z.ranks == (2, 3, 2)
    assert float(np.linalg.norm(z.to_dense())) == 0.0
    v = tr_als(np.arange(1.0, 5.0), 2, rng=0)
    assert v.ranks == (2, 2)
    assert_relative_error(v.to_dense(), np.arange(1.0, 5.0), 1e-10)


# -- bad input -------------------------------------------------------------------------------------
def test_tr_svd_rejects_bad_input_naming_the_argument() -> None:
    x = np.random.default_rng(13).standard_normal((3, 4, 5))
    with pytest.raises(ValueError, match="rtol must be a finite real number >= 0"):
        tr_svd(x, rtol=-0.1)
    with pytest.raises(TypeError, match="rtol must be a real number"):
        tr_svd(x, rtol="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start must be in"):
        tr_svd(x, start=3)
    with pytest.raises(ValueError, match="r0 must be >= 1"):
        tr_svd(x, r0=0)
    with pytest.raises(TypeError, match="r0 must be an integer"):
        tr_svd(x, r0=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of"):
        tr_svd(x, method="qr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x must contain only finite"):
        tr_svd(x * np.nan)


def test_tr_search_rejects_bad_input_naming_the_argument() -> None:
    x = np.random.default_rng(13).standard_normal((3, 4, 5))
    with pytest.raises(TypeError, match="x must be a numeric array"):
        tr_search(None, rtol=0.1)
    with pytest.raises(ValueError, match="rtol must be a finite real number >= 0"):
        tr_search(x, rtol=-1)
    with pytest.raises(TypeError, match="heuristic must be a bool"):
        tr_search_candidates(x, rtol=0.1, heuristic=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        tr_search(x, rtol=0.1, max_rank=0)


def test_tr_als_rejects_bad_input_naming_the_argument() -> None:
    x = np.random.default_rng(13).standard_normal((3, 4, 5))
    with pytest.raises(ValueError, match="ranks must be an int, the 3 bond sizes"):
        tr_als(x, (2, 2))
    with pytest.raises(ValueError, match="must end with its first entry"):
        tr_als(x, (2, 3, 3, 1))
    with pytest.raises(ValueError, match=r"ranks\[1\] must be >= 1"):
        tr_als(x, (2, 0, 2))
    with pytest.raises(TypeError, match="ranks must be an int or a sequence"):
        tr_als(x, "2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_iter_max must be >= 1"):
        tr_als(x, 2, n_iter_max=0)
    with pytest.raises(ValueError, match="tol must be a finite real number >= 0"):
        tr_als(x, 2, tol=-1.0)
    with pytest.raises(ValueError, match="init must be one of 'svd', 'random'"):
        tr_als(x, 2, init="ones")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="init must be 'svd', 'random' or a TRTensor"):
        tr_als(x, 2, init=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init must have the requested ranks"):
        tr_als(x, 3, init=tr_svd(x))
    with pytest.raises(ValueError, match="init must have the shape of x"):
        tr_als(x.T, 2, init=tr_svd(x))
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        tr_als(x, 2, rng="seed")  # type: ignore[arg-type]


@given(x=dense_tensors(dtype="complex128"), rtol=st.floats(1e-8, 0.9), data=st.data())
def test_complex_tensors_honour_rtol_and_keep_dtype(
    x: np.ndarray, rtol: float, data: st.DataObject
) -> None:
    x = x + 1j * np.roll(x, 1)
    start = data.draw(st.integers(0, x.ndim - 1))
    for t in (tr_svd(x, rtol=rtol, start=start), tr_search(x, rtol=rtol, method="exact")):
        assert t.dtype == np.complex128
        assert np.linalg.norm(t.to_dense() - x) <= (rtol + _slack(x.dtype)) * np.linalg.norm(x)


def test_tr_als_fits_a_complex_ring() -> None:
    rng = np.random.default_rng(17)
    real = _ring_cores((6, 7, 8), (2, 3, 2), rng)
    imag = _ring_cores((6, 7, 8), (2, 3, 2), rng)
    cores = [a + 1j * b for a, b in zip(real, imag, strict=True)]
    x = _ring_dense(cores)
    t = tr_als(x, (2, 3, 2), n_iter_max=300, tol=1e-13, rng=0, init="random")
    assert t.dtype == np.complex128
    assert _rel_error(t, x) <= 1e-8


# -- torch tensors through the same code -----------------------------------------------------------
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_tensors_keep_type_and_dtype(dtype_name: str) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    cores = _ring_cores((5, 6, 4), (2, 3, 2), np.random.default_rng(14))
    x = torch.asarray(_ring_dense(cores), dtype=dtype)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = [
            tr_svd(x, rtol=1e-3, start=1),
            tr_search(x, rtol=1e-3),
            tr_search(x, rtol=1e-3, heuristic=True),
            tr_als(x, (2, 3, 2), n_iter_max=300, tol=1e-12, rng=0, init="random"),
        ]
    for t in results:
        assert all(isinstance(c, torch.Tensor) and c.dtype == dtype for c in t.cores)
        err = torch.linalg.vector_norm(t.to_dense() - x) / torch.linalg.vector_norm(x)
        assert float(err) <= 1e-3 + tol
    assert tr_als(x, 2, n_iter_max=1, init="svd", tol=1.0).cores[0].dtype == dtype


def test_numpy_float32_kept_by_tr_als() -> None:
    x = _ring_dense(_ring_cores((4, 5, 6), (2, 2, 2), np.random.default_rng(15)))
    t = tr_als(x.astype(np.float32), 2, n_iter_max=50, tol=1e-4, rng=0)
    assert t.dtype == np.float32
    assert _rel_error(t, x) <= 1e-3


@pytest.mark.cuda
def test_cuda_tensors_stay_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    cores = _ring_cores((6, 7, 5, 4), (2, 3, 2, 2), np.random.default_rng(16))
    x = torch.asarray(_ring_dense(cores), dtype=torch.float32, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = [
            tr_svd(x, rtol=1e-3, start=2),
            tr_svd(x, max_rank=4, method="randomized", rng=0),
            tr_search(x, rtol=1e-3),
            tr_search(x, rtol=1e-3, heuristic=True),
            tr_als(x, (2, 3, 2, 2), n_iter_max=100, rng=0, init="random"),
            tr_als(x, (2, 3, 2, 2), n_iter_max=5, rng=0),
        ]
    for t in results:
        assert all(c.is_cuda and c.dtype == torch.float32 for c in t.cores)
    err = torch.linalg.vector_norm(results[0].to_dense() - x) / torch.linalg.vector_norm(x)
    assert float(err) <= 1e-3 + 1e-4


@pytest.mark.parametrize(("shape", "ranks"), [((3, 3), 2), ((4, 6, 5), 3), ((2, 5, 5, 2), 3)])
def test_tr_als_svd_start_when_the_first_unfolding_rank_is_below_the_bond_product(
    shape: tuple[int, ...], ranks: int
) -> None:
    # The start must split the first SVD's rank r into r0 * r1 <= r (it once ranked the
    # splits by q * p and could ask for more columns than the SVD has).
    x = np.random.default_rng(0).standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = tr_als(x, ranks, n_iter_max=3, rng=0)
    assert t.ranks == (ranks,) * (len(shape) + 1)
    assert np.isfinite(float(t.norm()))
