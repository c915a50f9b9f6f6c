"""The ResNet-on-digits compression demo (quick mode, a few methods)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from tensornet_torch.demo import DEMO_METHODS, load_digits_data, run_demo  # noqa: E402


def test_digits_are_split_and_scaled_deterministically() -> None:
    x, y, xt, _ = load_digits_data(0)
    assert x.shape == (1347, 1, 16, 16) and xt.shape == (450, 1, 16, 16)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std()) - 1) < 1e-3
    assert sorted(set(y.tolist())) == list(range(10))
    again = load_digits_data(0)
    assert torch.equal(again[1], y) and not torch.equal(load_digits_data(1)[1], y)


def test_quick_demo_measures_and_saves_the_table(tmp_path: Path) -> None:
    report, rows = run_demo(
        quick=True, seed=0, methods=["tucker", "admm-tt"], progress=False, output=tmp_path
    )
    assert [r.method for r in rows] == ["tucker", "admm-tt"]
    for r in rows:
        assert r.params_x >= 2.0  # the ratio target is reached
        assert r.macs_x > 1.0
        assert r.acc_dense > 0.9  # the digits are easy for a ResNet-8
        assert 0.0 <= r.acc_compressed <= 1.0 and r.acc_finetuned > 0.5
        assert f"| {r.method} | 2 |" in report
    assert (tmp_path / "demo.md").read_text().strip() == report
    with (tmp_path / "demo.csv").open() as handle:
        saved = list(csv.DictReader(handle))
    assert [s["method"] for s in saved] == ["tucker", "admm-tt"]
    assert (tmp_path / "demo.png").stat().st_size > 0


def test_unreachable_target_is_a_row_not_an_error() -> None:
    report, rows = run_demo(
        quick=True, seed=0, methods=["tucker", "admm-tt"], ratios=[1000], progress=False
    )
    assert [r.method for r in rows] == ["tucker", "admm-tt"]
    for r in rows:
        assert r.params_x != r.params_x and r.acc_finetuned != r.acc_finetuned  # NaN
        assert r.acc_dense > 0.9
        assert f"| {r.method} | 1000 | not reachable |" in report


def test_demo_rejects_unknown_methods() -> None:
    with pytest.raises(ValueError, match="methods"):
        run_demo(quick=True, methods=["svd"], progress=False)
    assert "admm-tt" in DEMO_METHODS
