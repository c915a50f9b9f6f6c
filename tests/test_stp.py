"""Semi-tensor product: identities against the Kronecker definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensornet.stp import stp, stp_mode_product, stp_right

SIZES = st.integers(1, 8)


def _kron_left(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = math.lcm(a.shape[1], b.shape[0])
    ia, ib = np.eye(t // a.shape[1]), np.eye(t // b.shape[0])
    return np.kron(a, ia) @ np.kron(b, ib)


def _kron_right(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    t = math.lcm(a.shape[1], b.shape[0])
    ia, ib = np.eye(t // a.shape[1]), np.eye(t // b.shape[0])
    return np.kron(ia, a) @ np.kron(ib, b)


def _pair(m: int, n: int, p: int, q: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal((p, q))


@given(m=SIZES, n=SIZES, p=SIZES, q=SIZES, seed=st.integers(0, 2**16))
def test_stp_equals_kronecker_definition(m: int, n: int, p: int, q: int, seed: int) -> None:
    a, b = _pair(m, n, p, q, seed)
    np.testing.assert_allclose(stp(a, b), _kron_left(a, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stp_right(a, b), _kron_right(a, b), rtol=1e-12, atol=1e-12)


@given(m=SIZES, n=SIZES, q=SIZES, seed=st.integers(0, 2**16))
def test_stp_reduces_to_matmul_when_sizes_match(m: int, n: int, q: int, seed: int) -> None:
    a, b = _pair(m, n, n, q, seed)
    np.testing.assert_allclose(stp(a, b), a @ b)
    np.testing.assert_allclose(stp_right(a, b), a @ b)


@given(dims=st.lists(SIZES, min_size=6, max_size=6), seed=st.integers(0, 2**16))
def test_stp_is_associative(dims: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b, c = (rng.standard_normal((dims[2 * i], dims[2 * i + 1])) for i in range(3))
    np.testing.assert_allclose(stp(stp(a, b), c), stp(a, stp(b, c)), rtol=1e-10, atol=1e-10)


@given(m=SIZES, n=SIZES, p=SIZES, q=SIZES, seed=st.integers(0, 2**16))
def test_stp_transpose_identity(m: int, n: int, p: int, q: int, seed: int) -> None:
    a, b = _pair(m, n, p, q, seed)
    np.testing.assert_allclose(stp(a, b).T, stp(b.T, a.T), rtol=1e-12, atol=1e-12)


def test_stp_is_batched_over_leading_axes() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 2, 6)), rng.standard_normal((5, 4, 3))
    out = stp(a, b)
    assert out.shape == (5, 2 * 2, 3 * 3)
    for i in range(5):
        np.testing.assert_allclose(out[i], _kron_left(a[i], b[i]), atol=1e-12)
        np.testing.assert_allclose(stp_right(a, b)[i], _kron_right(a[i], b[i]), atol=1e-12)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_stp_mode_product_equals_kronecker_factor(mode: int) -> None:
    rng = np.random.default_rng(mode)
    x = rng.standard_normal((6, 4, 8))
    k = 2
    u = rng.standard_normal((3, x.shape[mode] // k))
    full = np.kron(u, np.eye(k))
    expected = np.moveaxis(np.tensordot(full, x, axes=(1, mode)), 0, mode)
    np.testing.assert_allclose(stp_mode_product(x, u, mode), expected, atol=1e-12)
    np.testing.assert_allclose(stp_mode_product(x, u, mode, k=k), expected, atol=1e-12)


def test_stp_mode_product_with_k_one_is_the_mode_product() -> None:
    rng = np.random.default_rng(1)
    x, u = rng.standard_normal((3, 4, 5)), rng.standard_normal((2, 4))
    expected = np.moveaxis(np.tensordot(u, x, axes=(1, 1)), 0, 1)
    np.testing.assert_allclose(stp_mode_product(x, u, 1, k=1), expected, atol=1e-12)


def test_stp_bad_input() -> None:
    with pytest.raises(ValueError, match="a must have at least 2 dimension"):
        stp(np.ones(3), np.ones((3, 3)))
    with pytest.raises(TypeError, match="b must be a numeric array"):
        stp(np.ones((2, 3)), "b")
    with pytest.raises(ValueError, match=r"k must satisfy u.shape\[1\] \* k == n_mode"):
        stp_mode_product(np.ones((6, 2)), np.ones((2, 2)), 0, k=2)
    with pytest.raises(ValueError, match="number of columns dividing n_mode = 6"):
        stp_mode_product(np.ones((6, 2)), np.ones((2, 4)), 0)


def test_stp_torch_keeps_type_and_dtype() -> None:
    torch = pytest.importorskip("torch")
    a = torch.randn(3, 4, dtype=torch.float32)
    b = torch.randn(6, 2, dtype=torch.float32)
    out = stp(a, b)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(
        out.numpy(), _kron_left(a.double().numpy(), b.double().numpy()), rtol=1e-5, atol=1e-5
    )
