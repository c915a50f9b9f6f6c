"""Tensor ring: format-native algebra, shifts, conversions and rounding against dense."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensornet.formats.tr as tr_module
from tensornet import TTTensor, tt_svd
from tensornet.formats.tr import (
    TRTensor,
    tr_add,
    tr_hadamard,
    tr_inner,
    tr_norm,
    tr_round,
    tr_scale,
    tr_shift,
    tr_to_dense,
    tr_to_tt,
    tt_to_tr,
)
from tensornet.random import random_tr, random_tt
from tensornet.testing import (
    assert_relative_error,
    assert_tensors_close,
    rtols,
    shapes,
    tr_tensors,
)

DTYPES = ["float32", "float64", "complex128"]

# scale factors whose products stay normal numbers in float32
SCALARS = st.floats(-3, 3).filter(lambda a: a == 0 or abs(a) > 1e-6)


def _tol(dtype: Any) -> float:
    """Relative tolerance of a scalar (inner product, norm) computed in ``dtype``."""
    return 1e-4 if np.finfo(np.dtype(dtype)).eps > 1e-10 else 1e-10


def _rotation(d: int, k: int) -> list[int]:
    return [(m + k) % d for m in range(d)]


@st.composite
def tr_pairs(draw: st.DrawFn) -> tuple[TRTensor, TRTensor]:
    """Two random rings of one shape and dtype with independently drawn ranks."""
    shape = draw(shapes(min_order=1, max_order=4, max_size=4))
    seed = draw(st.integers(0, 2**32 - 2))
    dtype = draw(st.sampled_from(DTYPES))
    a = random_tr(
        shape,
        draw(st.lists(st.integers(1, 3), min_size=len(shape), max_size=len(shape))),
        rng=seed,
        dtype=dtype,
    )
    b = random_tr(shape, draw(st.integers(1, 3)), rng=seed + 1, dtype=dtype)
    return a, b


def _gauged(t: TRTensor, rng: np.random.Generator) -> TRTensor:
    """The same tensor with a random invertible gauge on every bond (no block structure)."""
    d = t.order
    gauges = [rng.standard_normal((r, r)) + 3 * np.eye(r) for r in t.ranks[:-1]]
    cores = [
        np.einsum("xa,anb,by->xny", np.linalg.inv(gauges[k]), c, gauges[(k + 1) % d])
        for k, c in enumerate(t.cores)
    ]
    return TRTensor(cores)


# -- the format's definition -----------------------------------------------------------------
def test_tr_to_dense_is_the_trace_of_slice_products() -> None:
    t = random_tr((2, 3, 4), (2, 3, 2), rng=0)
    dense = tr_to_dense(t)
    for index in itertools.product(*(range(n) for n in t.shape)):
        slices = [c[:, i, :] for c, i in zip(t.cores, index, strict=True)]
        assert np.isclose(dense[index], np.trace(np.linalg.multi_dot(slices)))


def test_repr_is_a_summary() -> None:
    t = random_tr((3, 4, 5), 2, rng=0)
    assert repr(t) == "TRTensor(shape=(3, 4, 5), ranks=(2, 2, 2, 2), dtype=float64, num_params=48)"


def test_formats_never_densify_implicitly() -> None:
    with pytest.raises(TypeError, match="never densified implicitly"):
        np.asarray(random_tr((3, 4), 2, rng=0))


# -- format-native algebra against dense ---------------------------------------------------------
@given(pair=tr_pairs())
def test_tr_add_and_sub_equal_dense_sharing_the_closing_bond(
    pair: tuple[TRTensor, TRTensor],
) -> None:
    a, b = pair
    assert_tensors_close(a + b, a.to_dense() + b.to_dense())
    assert_tensors_close(a - b, a.to_dense() - b.to_dense())
    closing = max(a.ranks[0], b.ranks[0])
    interior = tuple(x + y for x, y in zip(a.ranks[1:-1], b.ranks[1:-1], strict=True))
    assert tr_add(a, b).ranks == (closing, *interior, closing)


@given(pair=tr_pairs())
def test_tr_hadamard_equals_dense_product_with_ranks_multiplied(
    pair: tuple[TRTensor, TRTensor],
) -> None:
    a, b = pair
    p = tr_hadamard(a, b)
    assert_tensors_close(p, a.to_dense() * b.to_dense())
    assert p.ranks == tuple(x * y for x, y in zip(a.ranks, b.ranks, strict=True))


@given(pair=tr_pairs())
def test_tr_inner_equals_dense_vdot(pair: tuple[TRTensor, TRTensor]) -> None:
    a, b = pair
    expected = np.vdot(a.to_dense(), b.to_dense())
    scale = float(np.linalg.norm(a.to_dense()) * np.linalg.norm(b.to_dense()))
    assert abs(complex(tr_inner(a, b)) - expected) <= _tol(a.dtype) * scale


@given(pair=tr_pairs())
def test_tr_norm_equals_dense_norm(pair: tuple[TRTensor, TRTensor]) -> None:
    a, b = pair
    for t in (a, a + b, a - b):
        expected = np.linalg.norm(t.to_dense().astype(np.complex128))
        scale = np.linalg.norm(a.to_dense()) + np.linalg.norm(b.to_dense())
        assert abs(float(tr_norm(t)) - expected) <= _tol(a.dtype) * scale
        assert float(t.norm()) == float(tr_norm(t))


def test_tr_norm_of_difference_has_no_cancellation() -> None:
    t = random_tr((5, 5, 5, 5), 3, rng=1)
    u = t + tr_scale(t, 1e-9)
    np.testing.assert_allclose(float(tr_norm(u - t)), 1e-9 * float(t.norm()), rtol=1e-5)
    assert float(tr_norm(t - t)) <= 1e-13 * float(t.norm())


@given(pair=tr_pairs(), alpha=SCALARS)
def test_tr_scale_and_operators_equal_dense(pair: tuple[TRTensor, TRTensor], alpha: float) -> None:
    a, _ = pair
    dense = a.to_dense()
    assert_tensors_close(tr_scale(a, alpha), alpha * dense)
    assert_tensors_close(alpha * a, alpha * dense)
    assert_tensors_close(-a, -dense)
    assert tr_scale(a, alpha).ranks == a.ranks
    assume(abs(alpha) > 1e-3)
    assert_tensors_close(a / alpha, dense / alpha)


def test_tr_scale_by_complex_promotes_and_mixed_add_promotes() -> None:
    a = random_tr((3, 4), 2, rng=0, dtype="float32")
    assert tr_scale(a, 1j).dtype == np.complex64
    assert all(c.dtype == np.complex64 for c in tr_scale(a, 1j).cores)
    assert (a + random_tr((3, 4), 2, rng=1)).dtype == np.float64


# -- shifts and conversions --------------------------------------------------------------------
@given(t=tr_tensors(max_order=5, max_size=4, max_rank=3), data=st.data())
def test_tr_shift_rotates_the_dense_modes(t: TRTensor, data: st.DataObject) -> None:
    d = t.order
    k = data.draw(st.integers(-2 * d, 2 * d))
    s = tr_shift(t, k)
    assert_tensors_close(s, np.transpose(t.to_dense(), _rotation(d, k)))
    shift = k % d
    assert s.ranks[:-1] == (*t.ranks[shift:-1], *t.ranks[:shift])
    assert_tensors_close(tr_shift(s, -k), t.to_dense())


def test_tr_shift_d_times_by_one_is_the_identity() -> None:
    t = random_tr((2, 3, 4, 5), (1, 2, 3, 4), rng=0)
    s = t
    for _ in range(t.order):
        s = tr_shift(s, 1)
    assert all(x is y for x, y in zip(s.cores, t.cores, strict=True))
    assert tr_shift(t, 4).cores == t.cores and tr_shift(t, -1).cores == tr_shift(t, 3).cores


def test_tt_to_tr_is_exact_and_shares_the_cores() -> None:
    tt = random_tt((3, 4, 5), 2, rng=0)
    ring = tt_to_tr(tt)
    assert ring.ranks == tt.ranks and ring.cores == tt.cores
    assert_tensors_close(ring, tt.to_dense())


@given(t=tr_tensors(max_order=4, max_size=4, max_rank=3))
def test_tr_to_tt_is_exact_with_ranks_at_most_r0_times_rk(t: TRTensor) -> None:
    tt = tr_to_tt(t)
    assert isinstance(tt, TTTensor)
    assert_tensors_close(tt, t.to_dense())
    r0 = t.ranks[0]
    assert all(a <= r0 * b for a, b in zip(tt.ranks[1:-1], t.ranks[1:-1], strict=True))
    assert tt.ranks == tt_svd(t.to_dense()).ranks  # the numerical TT ranks of the tensor


@given(t=tr_tensors(min_order=2, max_order=4, max_size=4, max_rank=3), rtol=rtols(1e-6, 0.9))
def test_tr_to_tt_honours_rtol_bound(t: TRTensor, rtol: float) -> None:
    assert_relative_error(tr_to_tt(t, rtol=rtol), t.to_dense(), rtol)


def test_tr_to_tt_of_a_tt_ring_keeps_the_tt() -> None:
    tt = random_tt((3, 4, 5), (2, 3), rng=0)
    back = tr_to_tt(tt_to_tr(tt))
    assert back.ranks == tt.ranks
    assert_tensors_close(back, tt.to_dense())
    assert max(tr_to_tt(random_tr((4, 4, 4, 4), 3, rng=0), max_rank=2).ranks) == 2


# -- rounding ------------------------------------------------------------------------------
@given(t=tr_tensors(min_order=2, max_order=5, max_size=4, max_rank=3))
def test_tr_round_without_rtol_is_exact_and_keeps_minimal_ranks(t: TRTensor) -> None:
    r = tr_round(t)
    assert r.ranks == t.ranks
    assert_tensors_close(r, t.to_dense())


@given(t=tr_tensors(min_order=2, max_order=5, max_size=4, max_rank=3))
def test_tr_round_of_sum_restores_ranks(t: TRTensor) -> None:
    doubled = tr_round(t + t)
    assert doubled.ranks == t.ranks
    assert_tensors_close(doubled, 2 * t.to_dense())


@given(pair=tr_pairs())
def test_tr_round_of_a_sum_shares_the_closing_bond(pair: tuple[TRTensor, TRTensor]) -> None:
    a, b = pair
    assume(a.order >= 2)
    s = tr_round(a + b)
    assert s.ranks[0] <= max(a.ranks[0], b.ranks[0])
    assert all(x <= y + z for x, y, z in zip(s.ranks, a.ranks, b.ranks, strict=True))
    assert_tensors_close(s, a.to_dense() + b.to_dense())


@st.composite
def noisy_rings(draw: st.DrawFn) -> tuple[TRTensor, str]:
    """A random ring plus a smaller random ring: spectra with a gap at the noise level."""
    shape = draw(shapes(min_order=2, max_order=4, min_size=2, max_size=4))
    seed = draw(st.integers(0, 2**32 - 2))
    dtype = draw(st.sampled_from(DTYPES))
    a = random_tr(shape, draw(st.integers(1, 3)), rng=seed, dtype=dtype)
    b = random_tr(shape, draw(st.integers(1, 2)), rng=seed + 1, dtype=dtype)
    return a + tr_scale(b, draw(st.sampled_from([1e-1, 1e-3, 1e-5]))), dtype


@given(noisy=noisy_rings(), rtol=rtols(1e-4, 0.9))
def test_tr_round_honours_rtol_bound(noisy: tuple[TRTensor, str], rtol: float) -> None:
    t, dtype = noisy
    r = tr_round(t, rtol=rtol)
    assert r.dtype == np.dtype(dtype)
    assert_relative_error(r.to_dense(), t.to_dense(), rtol)
    assert r.ranks[0] <= t.ranks[0]
    assert all(x <= y for x, y in zip(r.ranks[1:-1], t.ranks[1:-1], strict=True))


@given(t=tr_tensors(min_order=2, max_order=4, max_size=4, max_rank=4), rtol=rtols(1e-3, 0.9))
def test_tr_round_honours_rtol_bound_on_gauged_rings(t: TRTensor, rtol: float) -> None:
    g = _gauged(t, np.random.default_rng(0))
    assert_relative_error(tr_round(g, rtol=rtol).to_dense(), t.to_dense(), rtol)


def test_tr_round_bound_holds_when_the_trace_amplifies_the_closing_error() -> None:
    # Four identical rank-1 rings hidden by a gauge: the chain is f(i) * I_4 in disguise,
    # its closing factor has four similar singular values, and dropping three of them
    # costs 3/4 of the tensor although the dropped chain part is only sqrt(3)/2 of it.
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(n) for n in (5, 6, 7)]
    diagonal = TRTensor([np.einsum("ab,n->anb", np.eye(4), v) for v in vectors])
    t = _gauged(diagonal, rng)
    x = t.to_dense()
    for rtol in (0.6, 0.7, 0.8, 0.9):
        r = tr_round(t, rtol=rtol)
        assert_relative_error(r.to_dense(), x, rtol)
    assert tr_round(t, rtol=0.8).ranks == (1, 1, 1, 1)


def test_tr_round_measures_the_error_when_the_a_priori_bound_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(n) for n in (5, 6, 7)]
    t = _gauged(TRTensor([np.einsum("ab,n->anb", np.eye(4), v) for v in vectors]), rng)
    measured: list[float] = []
    original = tr_module._measured_error

    def spy(*args: Any) -> float:
        measured.append(original(*args))
        return measured[-1]

    monkeypatch.setattr(tr_module, "_measured_error", spy)
    r = tr_round(t, rtol=0.7)
    x = t.to_dense()
    # The even split would drop three of four parts (error 0.75 > 0.7): measured, refused.
    assert len(measured) == 1
    np.testing.assert_allclose(measured[0] / np.linalg.norm(x), 0.75, rtol=1e-8)
    assert np.linalg.norm(r.to_dense() - x) <= 0.7 * np.linalg.norm(x)


def test_tr_round_removes_redundant_interior_and_closing_bonds() -> None:
    rng = np.random.default_rng(3)
    t = random_tr((3, 4, 5, 6), (2, 3, 3, 2), rng=4)
    cores = list(t.cores)
    # Widen bond 2 (3 -> 5) and the closing bond (2 -> 4) through P @ P_pinv = I.
    p = rng.standard_normal((3, 5))
    cores[1] = np.einsum("anb,bc->anc", cores[1], p)
    cores[2] = np.einsum("cb,bnd->cnd", np.linalg.pinv(p), cores[2])
    q = rng.standard_normal((2, 4))
    cores[3] = np.einsum("anb,bc->anc", cores[3], q)
    cores[0] = np.einsum("cb,bnd->cnd", np.linalg.pinv(q), cores[0])
    wide = TRTensor(cores)
    assert wide.ranks == (4, 3, 5, 2, 4)
    r = tr_round(wide)
    assert r.ranks == t.ranks
    assert_tensors_close(r, t.to_dense())


def test_tr_round_shrinks_a_closing_bond_larger_than_the_first_core() -> None:
    t = random_tr((2, 5, 6), (2, 3, 4), rng=0)
    cores = list(t.cores)
    p = np.random.default_rng(1).standard_normal((2, 9))  # closing bond 9 > n_0 r_1 = 6
    cores[0] = np.einsum("cb,bnd->cnd", np.linalg.pinv(p), cores[0])
    cores[2] = np.einsum("anb,bc->anc", cores[2], p)
    r = tr_round(TRTensor(cores))
    assert r.ranks[0] <= 2
    assert_tensors_close(r, t.to_dense())


def test_tr_round_of_difference_is_the_zero_ring() -> None:
    t = random_tr((4, 4, 4, 4), 3, rng=0)
    for rtol in (None, 0.1):
        zero = tr_round(t - t, rtol=rtol)
        assert zero.ranks == (1, 1, 1, 1, 1)
        assert float(zero.norm()) == 0.0
    zeros = TRTensor([np.zeros((2, 3, 2)), np.zeros((2, 4, 2))])
    assert tr_round(zeros).ranks == (1, 1, 1)
    assert float(tr_norm(zeros)) == 0.0


def test_tr_round_keeps_small_but_resolvable_content() -> None:
    t = random_tr((4, 5, 6, 7), 3, rng=2)
    u = random_tr((4, 5, 6, 7), 2, rng=3)
    small = tr_round(t + tr_scale(u, 1e-6) - t)
    assert max(small.ranks) <= 2
    assert_relative_error(small.to_dense(), 1e-6 * u.to_dense(), 1e-6)


def test_tr_round_max_rank_caps_every_bond_and_the_smaller_rank_wins() -> None:
    t = random_tr((4, 4, 4, 4), 3, rng=0)
    assert max(tr_round(t, max_rank=2).ranks) == 2
    assert tr_round(t, max_rank=[1, 2, 3, 2]).ranks == (1, 2, 3, 2, 1)
    assert tr_round(t + t, max_rank=5).ranks == t.ranks  # the cap does not bind
    assert tr_round(t + t, rtol=0.99, max_rank=3).ranks[0] <= 3


def test_tr_round_of_order_one_is_the_vector_of_traces() -> None:
    t = random_tr((5,), 3, rng=0)
    r = tr_round(t, rtol=0.1)
    assert r.ranks == (1, 1)
    assert_tensors_close(r, t.to_dense())


def test_tr_round_method_delegates() -> None:
    t = random_tr((3, 4, 5), 2, rng=0)
    assert (t + t).round().ranks == tr_round(t + t).ranks
    assert (t + t).round(rtol=0.5, max_rank=1).ranks == (1, 1, 1, 1)


# -- element access ---------------------------------------------------------------------------
@given(t=tr_tensors(max_order=4, max_size=5, max_rank=3), data=st.data())
def test_tr_getitem_matches_dense_indexing(t: TRTensor, data: st.DataObject) -> None:
    dense = t.to_dense()
    index: list[Any] = []
    for n in t.shape:
        if data.draw(st.booleans()):
            index.append(data.draw(st.integers(-n, n - 1)))
        else:
            start = data.draw(st.integers(0, n - 1))
            stop = data.draw(st.integers(start + 1, n))
            index.append(slice(start, stop, data.draw(st.sampled_from([1, 2]))))
    result = t[tuple(index)]
    expected = dense[tuple(index)]
    if isinstance(result, TRTensor):
        assert_tensors_close(result, expected)
    else:
        assert np.ndim(result) == 0
        np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_tr_getitem_ellipsis_and_errors() -> None:
    t = random_tr((3, 4, 5), 2, rng=0)
    np.testing.assert_allclose(t[..., 2].to_dense(), t.to_dense()[..., 2])
    np.testing.assert_allclose(t[1, ...].to_dense(), t.to_dense()[1])
    np.testing.assert_allclose(t[1, :, 2].to_dense(), t.to_dense()[1, :, 2])
    with pytest.raises(IndexError, match="out of bounds"):
        t[3, 0, 0]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0, 0]
    with pytest.raises(IndexError, match="selects no entries"):
        t[2:1]
    with pytest.raises(TypeError, match="must be an integer"):
        t[0.5]


# -- bad input -------------------------------------------------------------------------------
def test_tr_ops_reject_bad_input_naming_the_argument() -> None:
    a = random_tr((3, 4), 2, rng=0)
    b = random_tr((3, 5), 2, rng=0)
    tt = random_tt((3, 4), 2, rng=0)
    with pytest.raises(ValueError, match="same shape"):
        tr_add(a, b)
    with pytest.raises(ValueError, match="same shape"):
        tr_inner(a, b)
    with pytest.raises(ValueError, match="same shape"):
        tr_hadamard(a, b)
    with pytest.raises(TypeError, match="a must be a TRTensor"):
        tr_add(a.to_dense(), a)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="b must be a TRTensor"):
        tr_inner(a, tt)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="t must be a TRTensor"):
        tr_norm(tt)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="t must be a TTTensor"):
        tt_to_tr(a)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="k must be an integer"):
        tr_shift(a, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rtol must be a finite real number >= 0"):
        tr_round(a, rtol=-0.1)
    with pytest.raises(TypeError, match="rtol must be a real number"):
        tr_to_tt(a, rtol="small")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rank must be an int or a sequence of 2 ints"):
        tr_round(a, max_rank=[2, 2, 2])
    with pytest.raises(ValueError, match=r"max_rank\[1\] must be >= 1"):
        tr_round(a, max_rank=[2, 0])
    with pytest.raises(ValueError, match="max_rank must be an int or a sequence of 1 ints"):
        tr_to_tt(a, max_rank=[2, 2])
    with pytest.raises(TypeError, match="alpha must be a number"):
        tr_scale(a, "2")
    with pytest.raises(ValueError, match="alpha must be finite"):
        tr_scale(a, math.inf)
    with pytest.raises(ZeroDivisionError):
        a / 0


def test_tr_tensor_rejects_open_rings_and_bad_cores() -> None:
    with pytest.raises(ValueError, match="must close the ring"):
        TRTensor([np.ones((2, 3, 4)), np.ones((4, 5, 3))])
    with pytest.raises(ValueError, match=r"cores\[1\] has left rank 3"):
        TRTensor([np.ones((2, 3, 4)), np.ones((3, 5, 2))])
    with pytest.raises(TypeError, match=r"cores\[0\] must have a floating dtype"):
        TRTensor([np.ones((1, 3, 1), dtype=int)])


# -- torch tensors through the same code ------------------------------------------------------
def _to_torch(t: TRTensor, torch: Any, dtype: Any, device: str = "cpu") -> TRTensor:
    return TRTensor(
        [torch.from_numpy(np.asarray(c)).to(device=device, dtype=dtype) for c in t.cores]
    )


@pytest.mark.parametrize("dtype_name", ["float32", "float64", "complex64"])
def test_torch_tensors_keep_type_and_dtype_through_tr_ops(dtype_name: str) -> None:
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    np_dtype = "complex64" if dtype_name == "complex64" else dtype_name
    a = _to_torch(random_tr((3, 4, 5), (2, 3, 2), rng=0, dtype=np_dtype), torch, dtype)
    b = _to_torch(random_tr((3, 4, 5), 2, rng=1, dtype=np_dtype), torch, dtype)
    results = [
        a + b,
        a - b,
        tr_hadamard(a, b),
        2 * a,
        tr_shift(a, 1),
        a[1:3, :, 2],
        tr_round(a + a),
        tr_round(a + b, rtol=0.3),
        tr_round(a - a),
        tr_to_tt(a, rtol=1e-3),
    ]
    for r in results:
        assert all(isinstance(c, torch.Tensor) and c.dtype == dtype for c in r.cores)
    assert tr_round(a + a).ranks == a.ranks
    assert isinstance(tr_inner(a, b), torch.Tensor) and isinstance(tr_norm(a), torch.Tensor)
    assert isinstance(a[0, 1, 2], torch.Tensor) and a[0, 1, 2].ndim == 0
    x = a.to_dense()
    err = torch.linalg.vector_norm(tr_round(a + a).to_dense() - 2 * x)
    assert float(err) <= 1e-4 * float(torch.linalg.vector_norm(x))
    expected = np.linalg.norm(x.numpy())
    assert abs(float(tr_norm(a)) - expected) <= 1e-4 * expected


@pytest.mark.cuda
def test_cuda_tensors_stay_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    a = _to_torch(random_tr((4, 5, 6, 7), 3, rng=0, dtype="float32"), torch, torch.float32, "cuda")
    b = _to_torch(random_tr((4, 5, 6, 7), 2, rng=1, dtype="float32"), torch, torch.float32, "cuda")
    results = [a + b, tr_hadamard(a, b), tr_round(a + a), tr_round(a + b, rtol=0.2), a[1, 2:]]
    results.append(tr_round(a - a))
    for r in results:
        assert all(c.is_cuda and c.dtype == torch.float32 for c in r.cores)
    assert tr_round(a + a).ranks == a.ranks
    assert tr_norm(a).is_cuda and tr_inner(a, b).is_cuda
    assert all(c.is_cuda for c in tr_to_tt(a, rtol=1e-3).cores)


@pytest.mark.parametrize("ranks", [(4, 2, 6, 3), (6, 5, 4, 1), (1, 3, 3, 3), (3, 3, 3, 3)])
def test_tr_to_dense_cut_at_any_smallest_bond_equals_einsum(ranks: tuple[int, ...]) -> None:
    t = random_tr((3, 4, 5, 2), ranks, rng=3)
    expected = np.einsum("aib,bjc,ckd,dla->ijkl", *t.cores)
    np.testing.assert_allclose(t.to_dense(), expected, rtol=1e-12, atol=1e-12)
