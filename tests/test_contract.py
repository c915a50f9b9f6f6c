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


def test_contract_torch_keeps_type_and_dtype() -> None:
    torch = pytest.importorskip("torch")
    a = torch.ones((2, 3), dtype=torch.float32)
    out = contract("ij,jk->ik", a, a.T.contiguous())
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32


def test_contract_rejects_non_string_equation() -> None:
    with pytest.raises(TypeError, match="equation must be an einsum string"):
        contract(3, np.ones(2))  # type: ignore[arg-type]
