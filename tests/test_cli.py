"""The command line: the demo and the decompose command."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import tensornet as tn
from tensornet.cli import main


def test_demo_quick_prints_measured_tables(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    assert main(["demo", "--quick", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "scikit-learn digits" in out
    assert "Quantized TT" in out
    assert "Randomized TT-SVD" in out
    # achieved errors in the digits table respect their rtol targets
    rows = re.findall(r"^\| (0\.\d+)\s+\| \(.*?\)\s+\| \d+\s+\| [\d.]+x\s+\| ([\d.]+)", out, re.M)
    assert len(rows) == 2  # --quick runs two error targets
    for rtol, err in rows:
        assert float(err) <= float(rtol)


def test_decompose_writes_a_loadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    x = tn.random_tt((4, 5, 6), 2, rng=rng).to_dense()
    src = tmp_path / "x.npy"
    np.save(src, x)
    out_path = tmp_path / "t"
    assert main(["decompose", str(src), "--rtol", "1e-8", "-o", str(out_path)]) == 0
    printed = capsys.readouterr().out
    assert "ranks:       (1, 2, 2, 1)" in printed
    assert str(out_path) + ".npz" in printed
    t = tn.load(out_path.with_suffix(".npz"))
    np.testing.assert_allclose(t.to_dense(), x, atol=1e-10)


def test_decompose_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.npy"
    np.save(src, np.array([1.0, np.nan]))
    assert main(["decompose", str(src)]) == 2
    assert "x must contain only finite values" in capsys.readouterr().err
    assert main(["decompose", str(tmp_path / "missing.npy")]) == 2


def test_decompose_rejects_negative_rtol() -> None:
    with pytest.raises(SystemExit):
        main(["decompose", "x.npy", "--rtol", "-1"])
