"""Truncated SVD: the rtol/max_rank rule on every path, zero and rank-deficient input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensornet import truncated_svd
from tensornet.linalg import qr, randomized_range_finder


def _low_rank(rng: np.random.Generator, m: int, n: int, r: int, noise: float = 0.0) -> np.ndarray:
    a = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    return a + noise * rng.standard_normal((m, n))


@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    rtol=st.floats(1e-6, 0.95),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(["exact", "randomized", "auto"]),
)
def test_truncated_svd_honours_rtol_bound(
    m: int, n: int, rtol: float, seed: int, method: str
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n)) * np.logspace(0, -3, n)
    res = truncated_svd(a, rtol=rtol, method=method, rng=seed)  # type: ignore[arg-type]
    approx = (res.U * res.s) @ res.Vh
    err = np.linalg.norm(a - approx)
    assert err <= rtol * np.linalg.norm(a) * (1 + 1e-10) + 1e-13
    # a sketch measures its error as ||a||^2 - sum(s^2): resolution sqrt(eps) ||a||
    np.testing.assert_allclose(res.error, err, rtol=1e-6, atol=1e-7 * np.linalg.norm(a))
    # minimality: one rank fewer would break the bound (exact spectrum)
    r = res.s.shape[0]
    if r > 1:
        s = np.linalg.svd(a, compute_uv=False)
        assert np.sqrt(np.sum(s[r - 1 :] ** 2)) > rtol * np.linalg.norm(a)


@given(m=st.integers(30, 60), n=st.integers(30, 60), cap=st.integers(1, 5), seed=st.integers(0, 99))
def test_randomized_path_is_close_to_exact_at_a_cap(m: int, n: int, cap: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = _low_rank(rng, m, n, 8, noise=1e-3) * 1.0
    exact = truncated_svd(a, max_rank=cap, method="exact")
    rand = truncated_svd(a, max_rank=cap, method="randomized", rng=seed)
    assert rand.s.shape == exact.s.shape == (cap,)
    assert rand.error <= 1.1 * exact.error + 1e-12
    np.testing.assert_allclose(rand.U.T @ rand.U, np.eye(cap), atol=1e-10)


def test_rank_never_exceeds_numerical_rank() -> None:
    rng = np.random.default_rng(1)
    a = _low_rank(rng, 50, 40, 3)
    for method in ("exact", "randomized"):
        assert truncated_svd(a, method=method).s.shape == (3,)  # type: ignore[arg-type]
        assert truncated_svd(a, rtol=0.0, method=method).s.shape == (3,)  # type: ignore[arg-type]
        assert truncated_svd(a, max_rank=10, method=method).s.shape == (3,)  # type: ignore[arg-type]


def test_smaller_rank_wins_when_both_given() -> None:
    a = np.diag([4.0, 3.0, 2.0, 1.0])
    assert truncated_svd(a, rtol=0.1, max_rank=2).s.shape == (2,)
    assert truncated_svd(a, rtol=0.5, max_rank=4).s.shape == (2,)  # sqrt(2^2+1) <= 0.5*sqrt(30)


@pytest.mark.parametrize("method", ["exact", "randomized", "auto"])
def test_zero_matrix_gives_rank_one_zero(method: str) -> None:
    res = truncated_svd(np.zeros((5, 7)), rtol=0.1, method=method)  # type: ignore[arg-type]
    assert res.U.shape == (5, 1) and res.Vh.shape == (1, 7)
    assert res.error == 0.0
    assert not np.any(np.isnan(res.U))


def test_float32_stays_float32() -> None:
    a = np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32)
    res = truncated_svd(a, rtol=0.2)
    assert res.U.dtype == np.float32 and res.Vh.dtype == np.float32
    assert np.linalg.norm(a - (res.U * res.s) @ res.Vh) <= 0.2 * np.linalg.norm(a) * 1.0001


def test_complex_matrix() -> None:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20, 10)) + 1j * rng.standard_normal((20, 10))
    res = truncated_svd(a, rtol=0.3, method="randomized", rng=0)
    assert np.linalg.norm(a - (res.U * res.s) @ res.Vh) <= 0.3 * np.linalg.norm(a) * (1 + 1e-10)


def test_range_finder_is_orthonormal_and_captures_range() -> None:
    rng = np.random.default_rng(3)
    a = _low_rank(rng, 80, 60, 4)
    q = randomized_range_finder(a, 6, rng=0)
    assert q.shape == (80, 6)
    np.testing.assert_allclose(q.T @ q, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(q @ (q.T @ a), a, atol=1e-9)


def test_qr_reduced_shapes() -> None:
    q, r = qr(np.ones((5, 3)))
    assert q.shape == (5, 3) and r.shape == (3, 3)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="a must be a matrix"):
        truncated_svd(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        truncated_svd(np.ones((2, 2)), max_rank=0)
    with pytest.raises(ValueError, match="a must contain only finite values"):
        truncated_svd(np.array([[np.nan, 1.0]]))


def test_torch_input_stays_torch() -> None:
    torch = pytest.importorskip("torch")
    a = torch.randn(30, 20, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    for method in ("exact", "randomized"):
        res = truncated_svd(a, max_rank=3, method=method)  # type: ignore[arg-type]
        assert isinstance(res.U, torch.Tensor) and res.U.dtype == torch.float32
        assert res.U.shape == (30, 3)


@pytest.mark.parametrize("shape", [(6, 400), (400, 6), (9, 300)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_gram_path_of_very_wide_or_tall_matrices_matches_exact(
    shape: tuple[int, int], dtype: type
) -> None:
    rng = np.random.default_rng(7)
    a = (_low_rank(rng, *shape, 4) + 1e-2 * rng.standard_normal(shape)).astype(dtype)
    exact = truncated_svd(a, max_rank=3, method="exact")
    fast = truncated_svd(a, max_rank=3, method="randomized")
    assert fast.U.dtype == a.dtype and fast.U.shape == (shape[0], 3)
    approx = (fast.U * fast.s) @ fast.Vh
    err = np.linalg.norm((a - approx).astype(np.complex128))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(fast.s, exact.s, rtol=tol)
    np.testing.assert_allclose(err, exact.error, rtol=max(tol, 1e-6))
    np.testing.assert_allclose(fast.U.conj().T @ fast.U, np.eye(3), atol=10 * tol)


def test_auto_with_only_rtol_takes_the_gram_path_of_a_wide_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    linalg = importlib.import_module("tensornet.linalg")
    calls: list[tuple[int, int]] = []
    original = linalg._gram_svd

    def counting(a: Any, *args: Any) -> Any:
        calls.append(tuple(a.shape))
        return original(a, *args)

    monkeypatch.setattr(linalg, "_gram_svd", counting)
    rng = np.random.default_rng(9)
    a = _low_rank(rng, 8, 3000, 4) + 1e-4 * rng.standard_normal((8, 3000))
    for rtol in (1e-1, 1e-3):
        res = truncated_svd(a, rtol=rtol)
        exact = truncated_svd(a, rtol=rtol, method="exact")
        assert res.s.shape == exact.s.shape
        assert np.linalg.norm(a - (res.U * res.s) @ res.Vh) <= rtol * np.linalg.norm(a)
    assert calls == [(8, 3000), (8, 3000)]
    truncated_svd(a, rtol=1e-12)  # below what a Gram matrix resolves: exact, no Gram
    truncated_svd(a[:, :40], rtol=1e-3)  # not wide enough to pay
    truncated_svd(a)  # numerical rank: exact
    assert len(calls) == 2


def test_gram_path_honours_rtol_and_defers_unresolvable_targets_to_exact() -> None:
    rng = np.random.default_rng(8)
    a = _low_rank(rng, 5, 2000, 5) * np.array([1.0, 1e-3, 1e-6, 1e-9, 1e-12])[:, None]
    for rtol in (1e-2, 1e-5, 1e-8, 1e-11):
        res = truncated_svd(a, rtol=rtol, method="randomized")
        err = np.linalg.norm(a - (res.U * res.s) @ res.Vh)
        assert err <= rtol * np.linalg.norm(a) * (1 + 1e-8)
