"""Cached contraction and its cost model."""

from __future__ import annotations

import numpy as np
import pytest

from tensornet import contract, contract_cost, contraction_plan
from tensornet.contract import _expression, clear_cache


def test_contract_matches_einsum_and_reuses_expression() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((5, 2))
    clear_cache()
    out = contract("ab,bc,cd->ad", a, b, c)
    np.testing.assert_allclose(out, a @ b @ c)
    contract("ab,bc,cd->ad", a + 1, b, c)
    info = _expression.cache_info()
    assert info.misses == 1
    assert info.hits == 1


def test_plan_is_reusable_and_cached() -> None:
    plan = contraction_plan("ij,jk->ik", (2, 3), (3, 4))
    assert plan is contraction_plan("ij,jk->ik", [2, 3], [3, 4])
    np.testing.assert_allclose(plan(np.ones((2, 3)), np.ones((3, 4))), np.full((2, 4), 3.0))


def test_contract_cost_counts_flops_and_intermediate() -> None:
    cost = contract_cost("ab,bc,cd->ad", (10, 100), (100, 10), (10, 100))
    # the best order contracts (ab,bc) first: 10*100*10 MACs, then 10*10*100
    assert cost.largest_intermediate == 1000
    assert cost.flops == 2 * 10 * 100 * 10 + 2 * 10 * 10 * 100
    assert len(cost.path) == 2


def test_contract_promotes_mixed_dtypes_in_every_library() -> None:
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    expected = a.astype(np.float64) @ b
    got = contract("ij,jk->ik", a, b)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected)
    torch = pytest.importorskip("torch")
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = contract("ij,jk->ik", ta, tb)  # torch's einsum alone raises on mixed dtypes
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected)
    tc = torch.from_numpy(b.astype(np.complex64))
    assert contract("ij,jk->ik", ta, tc).dtype == torch.complex64


def test_contract_torch_keeps_type_and_dtype() -> None:
    torch = pytest.importorskip("torch")
    a = torch.ones((2, 3), dtype=torch.float32)
    out = contract("ij,jk->ik", a, a.T.contiguous())
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32


def test_contract_rejects_non_string_equation() -> None:
    with pytest.raises(TypeError, match="equation must be an einsum string"):
        contract(3, np.ones(2))  # type: ignore[arg-type]


def test_contract_rejects_operands_of_two_libraries() -> None:
    torch = pytest.importorskip("torch")
    a = np.ones((2, 3))
    for pair in ((a, torch.ones(3, 4)), (torch.ones(2, 3), np.ones((3, 4)))):
        with pytest.raises(TypeError, match="one library"):
            contract("ij,jk->ik", *pair)
    weight = torch.nn.Parameter(torch.ones(3, 4))  # a Tensor subclass is the same library
    assert contract("ij,jk->ik", torch.ones(2, 3), weight).shape == (2, 4)


def test_plan_with_constants_matches_einsum_and_precontracts_them() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((5, 6)), rng.standard_normal((6, 7)), rng.standard_normal((7, 3))
    plan = contraction_plan("ij,jk,kl->il", a.shape, b, c, constants=(1, 2))
    x = rng.standard_normal((5, 6))
    expected = x @ b @ c
    np.testing.assert_allclose(plan(x), expected, rtol=1e-12)
    b[...] = 0.0  # b @ c was formed on the first call and kept: later calls do not read b
    np.testing.assert_allclose(plan(x), expected, rtol=1e-12)


def test_plan_with_constants_on_torch() -> None:
    torch = pytest.importorskip("torch")
    w = torch.randn(4, 3, dtype=torch.float64)
    plan = contraction_plan("bi,ij->bj", (2, 4), w, constants=[1])
    x = torch.randn(2, 4, dtype=torch.float64)
    out = plan(x)
    assert isinstance(out, torch.Tensor) and torch.allclose(out, x @ w)


def test_plan_rejects_bad_constants() -> None:
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match="constants"):
        contraction_plan("ij,jk->ik", (2, 3), a, constants=(2,))
    with pytest.raises(ValueError, match="repeat"):
        contraction_plan("ij,jk->ik", (2, 3), a, constants=(1, 1))
    with pytest.raises(TypeError, match="shapes\\[0\\]"):
        contraction_plan("ij,jk->ik", (2, 3), a, constants=(0,))
    with pytest.raises(TypeError, match="constants"):
        contraction_plan("ij,jk->ik", (2, 3), a, constants=("1",))  # type: ignore[arg-type]
