"""Semi-tensor-product formats (STT, STR, STTucker) against the explicit STP definition."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensornet as tn
from tensornet import (
    STRTensor,
    STTTensor,
    STTuckerTensor,
    TRTensor,
    TTTensor,
    TuckerTensor,
    kron_identity,
    partial_trace,
    str_core_shapes,
    str_num_params,
    str_to_tr,
    stt_core_shapes,
    stt_num_params,
    stt_to_dense,
    stt_to_tt,
    sttucker_num_params,
    sttucker_to_dense,
    sttucker_to_tucker,
)
from tensornet.random import random_str, random_stt, random_sttucker
from tensornet.stp import stp, stp_right
from tensornet.testing import assert_tensors_close

DTYPES = ["float64", "complex128"]
KS = st.integers(1, 3)
SEEDS = st.integers(0, 2**32 - 1)
# scale factors whose products stay normal numbers in float32
SCALARS = st.one_of(st.just(0.0), st.floats(1e-3, 3), st.floats(-3, -1e-3))

Format = STTTensor | STRTensor | STTuckerTensor


# -- data: cores built here from the geometry, not from the library's shape helpers ---------------
def _gaussian(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    values = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return values.astype(dtype)


def _stt_shapes(sizes: list[int], bonds: list[int], k: int) -> list[tuple[int, int, int]]:
    """STT cores: ends full, middle cores ``(R_j / k, n_j, R_{j+1} / k)``."""
    d = len(sizes)
    out = []
    for j, n in enumerate(sizes):
        s = k if 0 < j < d - 1 else 1
        out.append((bonds[j] // s, n, bonds[j + 1] // s))
    return out


def _str_shapes(sizes: list[int], bonds: list[int], k: int) -> list[tuple[int, int, int]]:
    """STR cores: the first full ``(R_0, n_0, R_1)``, the others reduced (``R_d = R_0``)."""
    ring = [*bonds, bonds[0]]
    return [
        (ring[j] // (k if j else 1), n, ring[j + 1] // (k if j else 1)) for j, n in enumerate(sizes)
    ]


@st.composite
def stt_tensors(
    draw: st.DrawFn,
    *,
    k: int | None = None,
    min_order: int = 1,
    dtype: str | None = None,
    shape: tuple[int, ...] | None = None,
) -> STTTensor:
    """Random STTs: orders 1..4, sizes 1..3, interior ranks k or 2k."""
    k = draw(KS) if k is None else k
    if shape is None:
        d = draw(st.integers(min_order, 4))
        sizes = draw(st.lists(st.integers(1, 3), min_size=d, max_size=d))
    else:
        sizes, d = list(shape), len(shape)
    bonds = [1, *(k * draw(st.integers(1, 2)) for _ in range(d - 1)), 1]
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    rng = np.random.default_rng(draw(SEEDS))
    cores = [_gaussian(rng, s, dtype) for s in _stt_shapes(sizes, bonds, k)]
    return STTTensor(cores, k=k)


@st.composite
def str_tensors(
    draw: st.DrawFn,
    *,
    k: int | None = None,
    min_order: int = 1,
    dtype: str | None = None,
    shape: tuple[int, ...] | None = None,
) -> STRTensor:
    """Random STRs: orders 1..4, sizes 1..3, every bond (the closing one too) k or 2k."""
    k = draw(KS) if k is None else k
    if shape is None:
        d = draw(st.integers(min_order, 4))
        sizes = draw(st.lists(st.integers(1, 3), min_size=d, max_size=d))
    else:
        sizes, d = list(shape), len(shape)
    bonds = [k * draw(st.integers(1, 2)) for _ in range(d)]
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    rng = np.random.default_rng(draw(SEEDS))
    cores = [_gaussian(rng, s, dtype) for s in _str_shapes(sizes, bonds, k)]
    return STRTensor(cores, k=k)


@st.composite
def sttucker_tensors(
    draw: st.DrawFn,
    *,
    k: int | None = None,
    dtype: str | None = None,
    shape: tuple[int, ...] | None = None,
) -> STTuckerTensor:
    """Random STTuckers: orders 1..4; a factored mode has size k p and rank k q (q <= p).

    Unfactored modes have any size 1..3. With ``shape`` given, a mode can be factored
    only when ``k`` divides its size.
    """
    k = draw(KS) if k is None else k
    if shape is None:
        d = draw(st.integers(1, 4))
        factored = draw(st.lists(st.booleans(), min_size=d, max_size=d))
        sizes = [k * draw(st.integers(1, 2)) if f else draw(st.integers(1, 3)) for f in factored]
    else:
        sizes = list(shape)
        factored = [n % k == 0 and draw(st.booleans()) for n in sizes]
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    rng = np.random.default_rng(draw(SEEDS))
    core_shape: list[int] = []
    factor_shapes: list[tuple[int, int] | None] = []
    for n, f in zip(sizes, factored):
        if f:
            q = draw(st.integers(1, n // k))
            core_shape.append(k * q)
            factor_shapes.append((n // k, q))
        else:
            core_shape.append(n)
            factor_shapes.append(None)
    core = _gaussian(rng, tuple(core_shape), dtype)
    factors = [None if s is None else _gaussian(rng, s, dtype) for s in factor_shapes]
    return STTuckerTensor(core, factors, k=k)


ANY_FORMAT = st.one_of(stt_tensors(), str_tensors(), sttucker_tensors())


# -- explicit references --------------------------------------------------------------------------
def _slices(t: STTTensor | STRTensor, index: tuple[int, ...]) -> list[np.ndarray]:
    return [c[:, i, :] for c, i in zip(t.cores, index, strict=True)]


def _left_stp_chain(mats: list[np.ndarray], product: Callable[..., Any] = stp) -> np.ndarray:
    chain = mats[0]
    for m in mats[1:]:
        chain = product(chain, m)
    return np.asarray(chain)


def _stt_reference(t: STTTensor, product: Callable[..., Any] = stp) -> np.ndarray:
    """``X[i] = G_0[:, i_0, :] ⋉ G_1[:, i_1, :] ⋉ ... ⋉ G_{d-1}[:, i_{d-1}, :]``, entry by entry."""
    out = np.empty(t.shape, dtype=t.dtype)
    for index in itertools.product(*(range(n) for n in t.shape)):
        chain = _left_stp_chain(_slices(t, index), product)
        assert chain.shape == (1, 1)
        out[index] = chain[0, 0]
    return out


def _str_reference(t: STRTensor) -> np.ndarray:
    """``X[i] = trace(G_0[:, i_0, :] ⋉ ... ⋉ G_{d-1}[:, i_{d-1}, :])``, entry by entry."""
    out = np.empty(t.shape, dtype=t.dtype)
    for index in itertools.product(*(range(n) for n in t.shape)):
        chain = _left_stp_chain(_slices(t, index))
        assert chain.shape[0] == chain.shape[1]
        out[index] = np.trace(chain)
    return out


def _sttucker_reference(t: STTuckerTensor) -> np.ndarray:
    """``core x_n (U_n ⊗ I_k)`` with the Kronecker product formed by ``np.kron``."""
    x = np.asarray(t.core)
    for m, f in enumerate(t.factors):
        if f is not None:
            big = np.kron(f, np.eye(t.k))
            x = np.moveaxis(np.tensordot(big, x, axes=(1, m)), 0, m)
    return x


def _reference(t: Format) -> np.ndarray:
    if isinstance(t, STTTensor):
        return _stt_reference(t)
    if isinstance(t, STRTensor):
        return _str_reference(t)
    return _sttucker_reference(t)


def _with_cores(t: Format, convert: Callable[[Any], Any]) -> Format:
    """The same format with every array passed through ``convert``."""
    if isinstance(t, STTuckerTensor):
        factors = [None if f is None else convert(f) for f in t.factors]
        return STTuckerTensor(convert(t.core), factors, k=t.k)
    return type(t)([convert(c) for c in t.cores], k=t.k)


def _arrays(t: Any) -> list[Any]:
    """The stored arrays (and None factors) of a format, STP or ordinary."""
    if isinstance(t, (STTuckerTensor, TuckerTensor)):
        return [t.core, *t.factors]
    return list(t.cores)


# -- 1. the formats equal their STP definitions ---------------------------------------------------
@given(t=stt_tensors())
def test_stt_entries_are_left_stp_chains_of_core_slices(t: STTTensor) -> None:
    reference = _stt_reference(t)
    assert_tensors_close(t.to_dense(), reference)
    assert_tensors_close(stt_to_dense(t), reference)
    assert_tensors_close(t.to_tt().to_dense(), reference)


@given(t=str_tensors())
def test_str_entries_are_traces_of_left_stp_chains(t: STRTensor) -> None:
    reference = _str_reference(t)
    assert_tensors_close(t.to_dense(), reference)
    assert_tensors_close(t.to_tr().to_dense(), reference)
    assert_tensors_close(t.to_tr(compact=True).to_dense(), reference)


@given(t=sttucker_tensors())
def test_sttucker_is_core_times_factors_kron_identity(t: STTuckerTensor) -> None:
    reference = _sttucker_reference(t)
    assert_tensors_close(t.to_dense(), reference)
    assert_tensors_close(sttucker_to_dense(t), reference)
    assert_tensors_close(t.to_tucker().to_dense(), reference)


@given(t=st.one_of(stt_tensors(min_order=3), str_tensors(min_order=2)))
def test_equivalent_ordinary_cores_are_slicewise_kron_with_identity(
    t: STTTensor | STRTensor,
) -> None:
    ordinary = t.to_tt() if isinstance(t, STTTensor) else t.to_tr()
    assert ordinary.ranks == t.ranks
    for stored, big, reduced in zip(t.cores, ordinary.cores, t.reduced, strict=True):
        if not reduced:
            assert big is stored
            continue
        for i in range(int(stored.shape[1])):
            np.testing.assert_array_equal(big[:, i, :], np.kron(stored[:, i, :], np.eye(t.k)))


@given(t=stt_tensors(min_order=1))
def test_stt_is_the_tr_of_closing_rank_k_with_the_same_entries(t: STTTensor) -> None:
    ring = t.to_tr()
    assert isinstance(ring, TRTensor)
    assert ring.num_params == t.num_params
    if t.order >= 3:
        assert ring.ranks == (t.k, *(r // t.k for r in t.ranks[1:-1]), t.k)
        # the end cores are G_0 and G_{d-1} with the copy index moved to the closing bond
        n0 = t.shape[0]
        first = np.transpose(ring.cores[0], (1, 2, 0)).reshape(1, n0, t.ranks[1])
        np.testing.assert_array_equal(first, t.cores[0])
    else:
        assert ring.ranks == t.ranks
    assert_tensors_close(ring, t.to_dense())


@given(
    r=st.integers(1, 3),
    n=st.integers(1, 3),
    s=st.integers(1, 3),
    k=KS,
    seed=SEEDS,
    dtype=st.sampled_from(DTYPES),
)
def test_kron_identity_is_slicewise_numpy_kron(
    r: int, n: int, s: int, k: int, seed: int, dtype: str
) -> None:
    g = _gaussian(np.random.default_rng(seed), (r, n, s), dtype)
    big = kron_identity(g, k)
    assert big.shape == (r * k, n, s * k) and big.dtype == g.dtype
    for i in range(n):
        np.testing.assert_array_equal(big[:, i, :], np.kron(g[:, i, :], np.eye(k)))


def test_definition_tells_left_from_right_stp() -> None:
    # The reference is sensitive to the (reduced, copy) index order: a right STP
    # (I_k ⊗ G instead of G ⊗ I_k) gives a different tensor.
    t = random_stt((2, 3, 2), (4, 4), k=2, rng=0)
    assert_tensors_close(t.to_dense(), _stt_reference(t))
    with pytest.raises(AssertionError, match="relative Frobenius error"):
        assert_tensors_close(t.to_dense(), _stt_reference(t, stp_right))


def test_stt_of_order_2_has_no_reduced_core_and_any_bond() -> None:
    rng = np.random.default_rng(0)
    cores = [rng.standard_normal((1, 3, 5)), rng.standard_normal((5, 4, 1))]
    t = STTTensor(cores, k=2)  # k need not divide R_1: both cores are full
    assert t.reduced == (False, False) and t.ranks == (1, 5, 1)
    assert_tensors_close(t.to_dense(), TTTensor(cores).to_dense())
    assert_tensors_close(t.to_dense(), _stt_reference(t))


# -- 2. identities --------------------------------------------------------------------------------
@given(t=stt_tensors(k=1))
def test_stt_with_k_1_is_the_tt_of_the_same_arrays(t: STTTensor) -> None:
    tt = t.to_tt()
    assert all(a is b for a, b in zip(tt.cores, t.cores, strict=True))
    ordinary = TTTensor(t.cores)
    assert t.ranks == ordinary.ranks and t.num_params == ordinary.num_params
    assert_tensors_close(t.to_dense(), ordinary.to_dense())


@given(t=str_tensors(k=1))
def test_str_with_k_1_is_the_tr_of_the_same_arrays(t: STRTensor) -> None:
    for tr in (t.to_tr(), t.to_tr(compact=True)):
        assert all(a is b for a, b in zip(tr.cores, t.cores, strict=True))
    ordinary = TRTensor(t.cores)
    assert t.ranks == ordinary.ranks and t.num_params == ordinary.num_params
    assert_tensors_close(t.to_dense(), ordinary.to_dense())


@given(t=sttucker_tensors(k=1))
def test_sttucker_with_k_1_is_the_tucker_of_the_same_arrays(t: STTuckerTensor) -> None:
    tucker = t.to_tucker()
    assert tucker.core is t.core
    assert all(a is b for a, b in zip(tucker.factors, t.factors, strict=True))
    ordinary = TuckerTensor(t.core, t.factors)
    assert t.ranks == ordinary.ranks and t.num_params == ordinary.num_params
    assert_tensors_close(t.to_dense(), ordinary.to_dense())


@given(t=str_tensors(min_order=2))
def test_compact_str_is_a_tr_of_ranks_divided_by_k(t: STRTensor) -> None:
    compact = str_to_tr(t, compact=True)
    assert compact.ranks == tuple(r // t.k for r in t.ranks)
    np.testing.assert_array_equal(compact.cores[0], partial_trace(t.cores[0], t.k))
    assert all(a is b for a, b in zip(compact.cores[1:], t.cores[1:], strict=True))
    assert_tensors_close(compact, t.to_dense())
    assert_tensors_close(compact, str_to_tr(t).to_dense())


def test_compact_str_of_order_1_keeps_its_single_full_core() -> None:
    g = np.random.default_rng(0).standard_normal((3, 4, 3))
    t = STRTensor([g], k=2)  # no reduced core: k need not divide R_0
    compact = str_to_tr(t, compact=True)
    assert compact.cores[0] is g and compact.ranks == (3, 3)
    np.testing.assert_allclose(t.to_dense(), np.einsum("aia->i", g), rtol=1e-13)


@given(t=str_tensors(min_order=2, k=2) | str_tensors(min_order=2, k=3), seed=SEEDS)
def test_str_ignores_off_diagonal_copy_blocks_of_its_first_core(t: STRTensor, seed: int) -> None:
    # trace(G_0 (P ⊗ I_k)) only sees the entries G_0[(a, s), i, (b, s)].
    g = t.cores[0]
    copy_left = np.arange(g.shape[0])[:, None, None] % t.k
    copy_right = np.arange(g.shape[2])[None, None, :] % t.k
    noise = _gaussian(np.random.default_rng(seed), g.shape, str(g.dtype))
    perturbed = STRTensor([g + (copy_left != copy_right) * noise, *t.cores[1:]], k=t.k)
    assert_tensors_close(perturbed, t.to_dense())
    diagonal = STRTensor([g + (copy_left == copy_right) * noise, *t.cores[1:]], k=t.k)
    assert not np.allclose(diagonal.to_dense(), t.to_dense())


@given(t=stt_tensors(min_order=2))
def test_stt_is_a_tr_with_a_merged_rank_k_end_core(t: STTTensor) -> None:
    k, d = t.k, t.order
    first = t.cores[0][0]  # (n_0, R_1)
    last = t.cores[-1][:, :, 0]  # (R_{d-1}, n_{d-1})
    n0, r1 = first.shape
    rl, nl = last.shape
    # H[c, (l, i), a] = sum_s G_{d-1}[(c, s), l, 0] G_0[0, i, (a, s)]
    h4 = np.einsum("csl,ias->clia", last.reshape(rl // k, k, nl), first.reshape(n0, r1 // k, k))
    assert np.linalg.matrix_rank(h4.reshape(rl // k * nl, n0 * r1 // k)) <= k
    ring = TRTensor([h4.reshape(rl // k, nl * n0, r1 // k), *t.cores[1:-1]])
    assert ring.ranks == (rl // k, *(r // k for r in t.ranks[1:-1]))
    merged = np.moveaxis(t.to_dense(), d - 1, 0).reshape(nl * n0, *t.shape[1:-1])
    assert_tensors_close(ring, merged)


@given(
    r=st.integers(1, 3),
    n=st.integers(1, 3),
    s=st.integers(1, 3),
    k=KS,
    seed=SEEDS,
    dtype=st.sampled_from(DTYPES),
)
def test_partial_trace_is_the_adjoint_of_kron_identity(
    r: int, n: int, s: int, k: int, seed: int, dtype: str
) -> None:
    rng = np.random.default_rng(seed)
    g = _gaussian(rng, (r, n, s), dtype)
    c = _gaussian(rng, (r * k, n, s * k), dtype)
    left = np.vdot(kron_identity(g, k), c)
    right = np.vdot(g, partial_trace(c, k))
    assert abs(left - right) <= 1e-12 * np.linalg.norm(g) * np.linalg.norm(c)
    np.testing.assert_allclose(partial_trace(kron_identity(g, k), k), k * g, rtol=1e-14)


# -- 3. parameter counts --------------------------------------------------------------------------
def _stored_entries(t: Format) -> int:
    return sum(int(np.asarray(a).size) for a in _arrays(t) if a is not None)


@given(t=stt_tensors())
def test_stt_num_params_is_stored_entries_and_the_closed_formula(t: STTTensor) -> None:
    n, r, k, d = t.shape, t.ranks, t.k, t.order
    if d == 1:
        formula = n[0]
    else:
        middle = sum(n[j] * r[j] * r[j + 1] // k**2 for j in range(1, d - 1))
        formula = n[0] * r[1] + middle + r[d - 1] * n[d - 1]
    assert t.num_params == _stored_entries(t) == formula
    for ranks in (r, r[1:-1]):  # full tuple or the d - 1 bonds
        assert stt_num_params(n, ranks, k) == formula
        assert stt_core_shapes(n, ranks, k) == [tuple(c.shape) for c in t.cores]


@given(t=str_tensors())
def test_str_num_params_is_stored_entries_and_the_closed_formula(t: STRTensor) -> None:
    n, r, k, d = t.shape, t.ranks, t.k, t.order
    formula = r[0] * n[0] * r[1] + sum(n[j] * r[j] * r[j + 1] // k**2 for j in range(1, d))
    assert t.num_params == _stored_entries(t) == formula
    for ranks in (r, r[:-1]):  # full tuple or the d bonds
        assert str_num_params(n, ranks, k) == formula
        assert str_core_shapes(n, ranks, k) == [tuple(c.shape) for c in t.cores]


@given(t=sttucker_tensors())
def test_sttucker_num_params_is_stored_entries_and_the_closed_formula(t: STTuckerTensor) -> None:
    formula = math.prod(t.ranks) + sum(t.shape[m] * t.ranks[m] // t.k**2 for m in t.modes)
    assert t.num_params == _stored_entries(t) == formula
    if t.modes:
        assert sttucker_num_params(t.shape, t.ranks, t.k, modes=t.modes) == formula
        factored = [t.ranks[m] for m in t.modes]
        assert sttucker_num_params(t.shape, factored, t.k, modes=t.modes) == formula


def test_num_params_of_documented_examples() -> None:
    # n_0 R_1 + n_1 R^2 / k^2 + n_2 R^2 / k^2 + R n_3 = 24 + 45 + 54 + 42
    assert stt_num_params((4, 5, 6, 7), 6, 2) == 165
    assert stt_num_params((4, 5, 6, 7), 6, 1) == 462
    # R n_0 R + n_1 R^2 / k^2 + n_2 R^2 / k^2 = 144 + 20 + 24
    assert str_num_params((4, 5, 6), 6, 3) == 188
    assert str_num_params((4, 5, 6), 6, 1) == 540
    # 4^3 + 3 * 8 * 4 / 4
    assert sttucker_num_params((8, 8, 8), 4, 2) == 88
    assert sttucker_num_params((8, 8, 8), 4, 1) == 160
    assert sttucker_num_params((4, 6, 3), (2, 4), 2, modes=(0, 1)) == 2 * 4 * 3 + 2 + 6


# -- 4. norm, algebra and summaries ---------------------------------------------------------------
@given(t=ANY_FORMAT)
def test_norm_equals_norm_of_dense(t: Format) -> None:
    norm = t.norm()
    expected = np.linalg.norm(_reference(t))
    assert abs(float(norm) - expected) <= 1e-12 * expected
    assert np.asarray(norm).dtype == np.float64


@given(t=ANY_FORMAT)
def test_norm_in_float32_stays_float32_and_matches_float64(t: Format) -> None:
    single = _with_cores(t, lambda a: a.astype(np.complex64 if a.dtype.kind == "c" else np.float32))
    norm = single.norm()
    assert np.asarray(norm).dtype == np.float32
    assert single.to_dense().dtype == single.dtype
    expected = np.linalg.norm(_reference(t))
    assert abs(float(norm) - expected) <= 1e-4 * expected


@st.composite
def same_geometry_pairs(draw: st.DrawFn) -> tuple[Format, Format]:
    """Two tensors of one format, shape, k and dtype with independently drawn ranks."""
    kind = draw(st.sampled_from(["stt", "str", "sttucker"]))
    k, dtype = draw(KS), draw(st.sampled_from(DTYPES))
    d = draw(st.integers(1, 4))
    if kind == "sttucker":
        shape = tuple(k * draw(st.integers(1, 2)) for _ in range(d))
        make: Any = sttucker_tensors
    else:
        shape = tuple(draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
        make = stt_tensors if kind == "stt" else str_tensors
    a = draw(make(k=k, dtype=dtype, shape=shape))
    b = draw(make(k=k, dtype=dtype, shape=shape))
    return a, b


def _expected_sum_ranks(a: Any, b: Any) -> tuple[int, ...]:
    if isinstance(a, STTuckerTensor):
        return tuple(
            ra + rb if m in a.modes or m in b.modes else ra
            for m, (ra, rb) in enumerate(zip(a.ranks, b.ranks, strict=True))
        )
    interior = tuple(x + y for x, y in zip(a.ranks[1:-1], b.ranks[1:-1], strict=True))
    if a.order == 1:
        interior = ()
    closing = max(a.ranks[0], b.ranks[0])
    return (closing, *interior, closing)


@given(pair=same_geometry_pairs())
def test_sum_and_difference_equal_dense_arithmetic(pair: tuple[Format, Format]) -> None:
    a, b = pair
    x, y = _reference(a), _reference(b)
    total, difference = a + b, a - b
    assert type(total) is type(a) and total.k == a.k and total.shape == a.shape
    assert total.ranks == _expected_sum_ranks(a, b)
    scale = 1e-12 * float(np.linalg.norm(x) + np.linalg.norm(y))  # a and b may coincide
    assert_tensors_close(total, x + y)
    assert_tensors_close(difference, x - y, atol=scale)
    assert float((a - a).norm()) <= 1e-12 * max(float(a.norm()), 1.0)


def test_str_sum_with_different_closing_ranks() -> None:
    a = random_str((2, 3, 2), (2, 4, 2), k=2, rng=0)
    b = random_str((2, 3, 2), (6, 2, 4), k=2, rng=1)
    assert a.ranks[0] != b.ranks[0]
    total = a + b
    assert total.ranks == (6, 6, 6, 6)
    assert_tensors_close(total, _str_reference(a) + _str_reference(b))
    assert_tensors_close(b - a, _str_reference(b) - _str_reference(a))


def test_sttucker_sum_with_a_mode_factored_in_one_operand_only() -> None:
    a = random_sttucker((4, 6, 4), (2, 4), k=2, modes=(0, 1), rng=0)
    b = random_sttucker((4, 6, 4), (2, 2), k=2, modes=(1, 2), rng=1)
    total = a + b
    # mode 0: factored in a only (b counts with I_4), mode 2: in b only
    assert total.modes == (0, 1, 2) and total.ranks == (2 + 4, 4 + 2, 4 + 2)
    assert_tensors_close(total, _sttucker_reference(a) + _sttucker_reference(b))
    assert_tensors_close(a - b, _sttucker_reference(a) - _sttucker_reference(b))


@given(t=ANY_FORMAT, alpha=SCALARS)
def test_scalar_multiplication_equals_dense(t: Format, alpha: float) -> None:
    x = _reference(t)
    for scaled in (alpha * t, t * alpha):
        assert type(scaled) is type(t) and scaled.k == t.k and scaled.ranks == t.ranks
        assert_tensors_close(scaled, alpha * x, atol=1e-300)
    assert_tensors_close(-t, -x)
    assert_tensors_close(t / 4, x / 4)
    assert_tensors_close(t * np.float64(alpha), alpha * x, atol=1e-300)


def test_complex_scalar_promotes_a_real_format() -> None:
    t = random_stt((2, 3, 4), 2, k=2, rng=0)
    scaled = 2j * t
    assert scaled.dtype == np.complex128
    assert_tensors_close(scaled, 2j * t.to_dense())


def test_summaries_of_stt_str_and_sttucker() -> None:
    stt = random_stt((4, 5, 6, 7), 4, k=2, rng=0)
    assert stt.shape == (4, 5, 6, 7) and stt.ranks == (1, 4, 4, 4, 1) and stt.k == 2
    assert stt.order == 4 and stt.size == 840 and stt.dtype == np.float64
    assert stt.reduced == (False, True, True, False)
    assert repr(stt) == (
        "STTTensor(shape=(4, 5, 6, 7), ranks=(1, 4, 4, 4, 1), k=2, dtype=float64, num_params=88)"
    )
    ring = random_str((4, 5, 6), (6, 3, 9), k=3, rng=0, dtype="float32")
    assert ring.num_params == 6 * 4 * 3 + 1 * 5 * 3 + 3 * 6 * 2
    assert ring.ranks == (6, 3, 9, 6) and ring.reduced == (False, True, True)
    assert ring.dtype == np.float32
    assert repr(ring) == (
        "STRTensor(shape=(4, 5, 6), ranks=(6, 3, 9, 6), k=3, dtype=float32, num_params=123)"
    )
    tucker = random_sttucker((4, 6, 3), (2, 4), k=2, modes=(0, 1), rng=0, dtype="complex128")
    assert tucker.shape == (4, 6, 3) and tucker.ranks == (2, 4, 3) and tucker.modes == (0, 1)
    assert tucker.dtype == np.complex128 and tucker.factors[2] is None
    assert repr(tucker) == (
        "STTuckerTensor(shape=(4, 6, 3), ranks=(2, 4, 3), k=2, modes=(0, 1), dtype=complex128, "
        "num_params=32)"
    )


def test_formats_are_never_densified_implicitly() -> None:
    for t in (
        random_stt((2, 3), 2, k=2, rng=0),
        random_str((2, 4), 2, k=2, rng=0),
        random_sttucker((2, 4), 2, k=2, rng=0),
    ):
        with pytest.raises(TypeError, match="never densified implicitly"):
            np.asarray(t)


# -- 5. validation --------------------------------------------------------------------------------
def _ones(*shape: int) -> np.ndarray:
    return np.ones(shape)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_1_is_rejected(k: int) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        STTTensor([_ones(1, 2, 2), _ones(2, 3, 1)], k=k)
    with pytest.raises(ValueError, match="k must be >= 1"):
        STRTensor([_ones(2, 2, 2)], k=k)
    with pytest.raises(ValueError, match="k must be >= 1"):
        STTuckerTensor(_ones(2, 2), [_ones(2, 2), None], k=k)
    with pytest.raises(ValueError, match="k must be >= 1"):
        kron_identity(_ones(1, 2, 1), k)


@pytest.mark.parametrize("k", [True, 2.0, "2", None])
def test_k_must_be_an_int(k: Any) -> None:
    with pytest.raises(TypeError, match="k must be an integer"):
        STTTensor([_ones(1, 2, 2), _ones(2, 3, 1)], k=k)
    with pytest.raises(TypeError, match="k must be an integer"):
        STRTensor([_ones(2, 2, 2)], k=k)
    with pytest.raises(TypeError, match="k must be an integer"):
        STTuckerTensor(_ones(2, 2), [_ones(2, 2), None], k=k)
    with pytest.raises(TypeError, match="k must be an integer"):
        stt_num_params((2, 3), 2, k)


def test_numpy_integer_k_is_accepted() -> None:
    t = STTTensor([_ones(1, 2, 4), _ones(2, 3, 2), _ones(4, 2, 1)], k=np.int64(2))  # type: ignore[arg-type]
    assert t.k == 2 and type(t.k) is int


def test_stt_bonds_must_match_with_k() -> None:
    # middle core left bond 3 * 2 = 6 against cores[0]'s right bond 4
    with pytest.raises(ValueError, match=r"right bond of cores\[0\] is 4 and the left bond of"):
        STTTensor([_ones(1, 2, 4), _ones(3, 3, 2), _ones(4, 2, 1)], k=2)
    # k = 2 does not divide the full core's bond 3 next to a reduced core
    with pytest.raises(ValueError, match=r"cores\[0\] and cores\[1\] do not share a bond with k"):
        STTTensor([_ones(1, 2, 3), _ones(1, 3, 1), _ones(2, 2, 1)], k=2)
    with pytest.raises(ValueError, match=r"cores\[1\] and cores\[2\] do not share a bond with k"):
        STTTensor([_ones(1, 2, 4), _ones(2, 3, 2), _ones(3, 2, 1)], k=2)
    # the same cores are a valid STT with k = 1 only if the bonds match literally
    with pytest.raises(ValueError, match="do not share a bond with k = 1"):
        STTTensor([_ones(1, 2, 4), _ones(2, 3, 2), _ones(4, 2, 1)], k=1)


def test_stt_boundary_ranks_must_be_1() -> None:
    with pytest.raises(ValueError, match="boundary ranks 1"):
        STTTensor([_ones(2, 2, 4), _ones(2, 3, 2), _ones(4, 2, 1)], k=2)
    with pytest.raises(ValueError, match="boundary ranks 1"):
        STTTensor([_ones(1, 2, 4), _ones(2, 3, 2), _ones(4, 2, 2)], k=2)
    with pytest.raises(ValueError, match="boundary ranks 1"):
        STTTensor([_ones(2, 3, 2)], k=2)


def test_str_ring_must_close_and_bonds_match() -> None:
    with pytest.raises(ValueError, match="must close the ring with k = 2"):
        STRTensor([_ones(4, 2, 4), _ones(2, 3, 3)], k=2)
    with pytest.raises(ValueError, match="must close the ring with k = 2"):
        STRTensor([_ones(3, 2, 4), _ones(2, 3, 1)], k=2)  # k does not divide R_0 = 3
    with pytest.raises(ValueError, match="must close the ring with k = 1"):
        STRTensor([_ones(2, 3, 3)], k=1)
    with pytest.raises(ValueError, match=r"cores\[0\] and cores\[1\] do not share a bond"):
        STRTensor([_ones(4, 2, 3), _ones(2, 3, 2)], k=2)  # k does not divide R_1 = 3
    STRTensor([_ones(6, 2, 3), _ones(1, 3, 2)], k=3)  # ring closes: 2 * 3 == 6


def test_sttucker_factors_must_fit_the_core_with_k() -> None:
    with pytest.raises(ValueError, match=r"factors\[1\] must have shape \(n_1 / k, 2\)"):
        STTuckerTensor(_ones(4, 4, 3), [_ones(3, 2), _ones(5, 3), None], k=2)
    with pytest.raises(ValueError, match=r"factors\[0\] must have shape"):
        STTuckerTensor(_ones(4, 3), [_ones(3, 2, 1), None], k=2)
    with pytest.raises(ValueError, match=r"k = 2 must divide core.shape\[1\] == 3"):
        STTuckerTensor(_ones(4, 3, 3), [_ones(3, 2), _ones(5, 3), None], k=2)
    with pytest.raises(ValueError, match="one entry per mode"):
        STTuckerTensor(_ones(4, 4, 3), [_ones(3, 2), _ones(5, 2)], k=2)
    with pytest.raises(TypeError, match="factors must be a sequence"):
        STTuckerTensor(_ones(4, 4), _ones(2, 2), k=2)  # type: ignore[arg-type]


def test_non_array_cores_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"cores\[1\] must be an array, got list"):
        STTTensor([_ones(1, 2, 4), [[1.0]], _ones(4, 2, 1)], k=2)
    with pytest.raises(TypeError, match="cores must be a sequence of arrays"):
        STRTensor(_ones(2, 2, 2), k=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"cores\[0\] must have a floating dtype"):
        STTTensor([np.ones((1, 2, 1), dtype=np.int64)], k=1)
    with pytest.raises(TypeError, match="core must be an array"):
        STTuckerTensor([[1.0]], [None, None], k=1)
    with pytest.raises(TypeError, match=r"factors\[1\] must be an array or None, got list"):
        STTuckerTensor(_ones(4, 4), [_ones(3, 2), [[1.0, 2.0]]], k=2)


def test_mixing_numpy_and_torch_is_rejected() -> None:
    torch = pytest.importorskip("torch")
    mixed = [_ones(1, 2, 4), torch.ones(2, 3, 2, dtype=torch.float64), _ones(4, 2, 1)]
    with pytest.raises(TypeError, match="cores must all come from one array library"):
        STTTensor(mixed, k=2)
    with pytest.raises(TypeError, match="cores must all come from one array library"):
        STRTensor([_ones(4, 2, 4), torch.ones(2, 3, 2, dtype=torch.float64)], k=2)
    factors = [_ones(3, 2), torch.ones(5, 2, dtype=torch.float64), None]
    with pytest.raises(TypeError, match="core and factors must all come from one array library"):
        STTuckerTensor(_ones(4, 4, 3), factors, k=2)


def test_helpers_reject_k_that_does_not_divide() -> None:
    with pytest.raises(ValueError, match=r"k = 2 must divide ranks\[1\]"):
        stt_num_params((4, 5, 6), 5, 2)
    with pytest.raises(ValueError, match=r"k = 2 must divide ranks\[2\] \(right bond of middle"):
        stt_core_shapes((4, 5, 6), (4, 5), 2)
    with pytest.raises(ValueError, match=r"k = 2 must divide ranks\[1\]"):
        str_num_params((4, 5, 6), 5, 2)
    with pytest.raises(ValueError, match=r"k = 3 must divide ranks\[2\] \(right bond of reduced"):
        str_core_shapes((4, 5), (4, 3), 3)  # the closing bond R_2 = R_0 = 4
    with pytest.raises(ValueError, match="k = 2 must divide ranks of mode 0"):
        sttucker_num_params((4, 6, 6), 3, 2)
    with pytest.raises(ValueError, match=r"k = 2 must divide shape\[0\]"):
        sttucker_num_params((5, 6, 6), 2, 2)
    with pytest.raises(ValueError, match="must be <= its size"):
        sttucker_num_params((4, 6, 6), 6, 2)
    with pytest.raises(ValueError, match="k = 2 must divide both bond sizes"):
        partial_trace(_ones(3, 2, 4), 2)
    # bonds that touch no reduced core need no divisibility
    assert stt_num_params((4, 5), 5, 2) == 45


def test_sums_need_the_same_k_and_shape() -> None:
    t = random_stt((2, 3, 4), 2, k=2, rng=0)
    with pytest.raises(ValueError, match="same k"):
        t + random_stt((2, 3, 4), 2, k=1, rng=0)
    with pytest.raises(ValueError, match="same shape"):
        t + random_stt((2, 3, 5), 2, k=2, rng=0)
    r = random_str((2, 4), 2, k=2, rng=0)
    with pytest.raises(ValueError, match="same k"):
        r + random_str((2, 4), 2, k=1, rng=0)
    u = random_sttucker((2, 4), 2, k=2, rng=0)
    with pytest.raises(ValueError, match="same k"):
        u + random_sttucker((2, 4), 2, k=1, rng=0)


# -- 6. save / load -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
@pytest.mark.parametrize(
    "make",
    [
        lambda dtype: random_stt((3, 4, 5, 2), (4, 2, 6), k=2, rng=0, dtype=dtype),
        lambda dtype: random_str((3, 4, 5), (6, 3, 9), k=3, rng=0, dtype=dtype),
        lambda dtype: random_sttucker((4, 6, 3), (2, 4), k=2, modes=(0, 1), rng=0, dtype=dtype),
    ],
    ids=["stt", "str", "sttucker"],
)
def test_save_load_round_trip_keeps_class_k_and_arrays(
    make: Callable[[str], Format], dtype: str, tmp_path: Path
) -> None:
    t = make(dtype)
    path = tn.save(tmp_path / "t.npz", t)
    loaded = tn.load(path)
    assert type(loaded) is type(t)
    assert loaded.k == t.k and loaded.shape == t.shape and loaded.ranks == t.ranks
    assert loaded.dtype == np.dtype(dtype)
    for a, b in zip(_arrays(loaded), _arrays(t), strict=True):
        if b is None:
            assert a is None
        else:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert repr(loaded) == repr(t)


# -- 7. torch -------------------------------------------------------------------------------------
FIXED = [
    lambda dtype: random_stt((3, 4, 5, 2), (4, 2, 6), k=2, rng=0, dtype=dtype),
    lambda dtype: random_str((3, 4, 5), (6, 3, 9), k=3, rng=0, dtype=dtype),
    lambda dtype: random_sttucker((4, 6, 3), (2, 4), k=2, modes=(0, 1), rng=0, dtype=dtype),
]


def _check_torch(t: Format, device: str) -> None:
    torch = pytest.importorskip("torch")
    moved = _with_cores(t, lambda a: torch.from_numpy(a).to(device))
    assert moved.device.type == device and moved.dtype == getattr(torch, str(t.dtype))
    dense, norm = moved.to_dense(), moved.norm()
    for result in (dense, norm):
        assert isinstance(result, torch.Tensor) and result.device.type == device
    assert dense.dtype == moved.dtype and norm.dtype == moved.dtype
    assert_tensors_close(dense, t.to_dense())
    assert abs(float(norm) - float(t.norm())) <= 1e-4 * float(t.norm())
    if isinstance(moved, STTTensor):
        ordinary: Any = stt_to_tt(moved)
    elif isinstance(moved, STRTensor):
        ordinary = str_to_tr(moved, compact=True)
    else:
        ordinary = sttucker_to_tucker(moved)
    assert all(isinstance(a, torch.Tensor) for a in _arrays(ordinary) if a is not None)
    combined = 2 * moved - moved
    assert all(a.device.type == device for a in _arrays(combined) if a is not None)
    assert_tensors_close(combined, t.to_dense())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", FIXED, ids=["stt", "str", "sttucker"])
def test_torch_formats_give_torch_results_matching_numpy(
    make: Callable[[str], Format], dtype: str
) -> None:
    _check_torch(make(dtype), "cpu")


@pytest.mark.cuda
@pytest.mark.parametrize("make", FIXED, ids=["stt", "str", "sttucker"])
def test_cuda_formats_stay_on_cuda(make: Callable[[str], Format]) -> None:
    _check_torch(make("float32"), "cuda")


# -- 8. random generators -------------------------------------------------------------------------
RANDOM: dict[str, Callable[[Any, Any], Any]] = {
    "stt": lambda rng, dtype: random_stt((4, 4, 4), 8, k=2, rng=rng, dtype=dtype),
    "stt_k3": lambda rng, dtype: random_stt((3, 4, 3), 6, k=3, rng=rng, dtype=dtype),
    "str": lambda rng, dtype: random_str((4, 4, 4), 8, k=2, rng=rng, dtype=dtype),
    "str_k3": lambda rng, dtype: random_str((4, 3, 4), 6, k=3, rng=rng, dtype=dtype),
    "sttucker": lambda rng, dtype: random_sttucker(
        (8, 8, 3), (4, 4), k=2, modes=(0, 1), rng=rng, dtype=dtype
    ),
    "sttucker_k3": lambda rng, dtype: random_sttucker(
        (9, 9, 4), 6, k=3, modes=(0, 1), rng=rng, dtype=dtype
    ),
}


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_generators_are_reproducible_by_seed(name: str) -> None:
    make = RANDOM[name]
    a, b, c = make(7, "float64"), make(7, "float64"), make(8, "float64")
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)
    assert not np.allclose(a.to_dense(), c.to_dense())
    from_generator = make(np.random.default_rng(7), "float64")
    np.testing.assert_array_equal(from_generator.to_dense(), a.to_dense())


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_generators_respect_dtype(name: str) -> None:
    make = RANDOM[name]
    double, single, complex_ = make(3, "float64"), make(3, "float32"), make(3, np.complex128)
    assert single.dtype == np.float32 and double.dtype == np.float64
    assert complex_.dtype == np.complex128
    for x, y, z in zip(_arrays(single), _arrays(double), _arrays(complex_), strict=True):
        if x is None:
            continue
        assert x.dtype == np.float32 and z.dtype == np.complex128
        np.testing.assert_array_equal(x, y.astype(np.float32))  # same draws, rounded
        assert np.abs(z.imag).max() > 0
    assert single.to_dense().dtype == np.float32 and single.norm().dtype == np.float32


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_generators_have_unit_variance_entries(name: str, dtype: str) -> None:
    make = RANDOM[name]
    mean_square = np.mean(
        [np.mean(np.abs(make(seed, dtype).to_dense()) ** 2) for seed in range(200)]
    )
    assert 0.8 <= mean_square <= 1.25


def test_random_generators_reject_bad_k() -> None:
    makers: list[Any] = [random_stt, random_str, random_sttucker]
    for make in makers:
        with pytest.raises(ValueError, match="k must be >= 1"):
            make((4, 4, 4), 2, k=0, rng=0)
        with pytest.raises(TypeError, match="k must be an integer"):
            make((4, 4, 4), 2, k=1.5, rng=0)
        with pytest.raises(TypeError, match="k must be an integer"):
            make((4, 4, 4), 2, k=True, rng=0)
        with pytest.raises(ValueError, match="k = 2 must divide"):
            make((4, 4, 4), 3, k=2, rng=0)
        with pytest.raises(TypeError):
            make((4, 4, 4), 2, 2)  # k is keyword-only
