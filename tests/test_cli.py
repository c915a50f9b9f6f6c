"""The command line: the demo and the decompose command."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import tensornet as tn
from tensornet.cli import main


def test_demo_quick_prints_measured_tables(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn")
    assert main(["showcase", "--quick", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "scikit-learn digits" in out
    assert "Quantized TT" in out
    assert "Randomized TT-SVD" in out
    # achieved errors in the digits table respect their rtol targets
    rows = re.findall(r"^\| (0\.\d+)\s+\| \(.*?\)\s+\| \d+\s+\| [\d.]+x\s+\| ([\d.]+)", out, re.M)
    assert len(rows) == 2  # --quick runs two error targets
    for rtol, err in rows:
        assert float(err) <= float(rtol)


def test_demo_runs_the_compression_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    args = ["demo", "--quick", "--methods", "tucker", "--ratios", "2,3", "-o", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| tucker | 2 |" in out and "| tucker | 3 |" in out
    assert (tmp_path / "demo.csv").exists()
    assert main(["demo", "--quick", "--methods", "svd"]) == 2
    assert "methods must be among" in capsys.readouterr().err


def test_demo_ddp_fine_tunes_on_two_processes(capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    assert main(["demo", "--ddp", "2", "--quick", "--methods", "tucker", "--ratios", "3"]) == 0
    out = capfd.readouterr().out
    assert "processes            2" in out
    assert "replicas identical   yes (check_replicas on 2 processes)" in out
    params = next(line for line in out.splitlines() if line.startswith("params"))
    assert float(params.rsplit("(", 1)[1].rstrip("x)")) >= 3.0  # the ratio was passed on


def test_demo_ddp_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--ddp", "0"]) == 2
    assert "--ddp must be at least 1" in capsys.readouterr().err
    assert main(["demo", "--ddp", "2", "--methods", "tt,cp"]) == 2
    assert "one method at one ratio" in capsys.readouterr().err


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


@pytest.mark.parametrize(
    ("fmt", "options", "kind"),
    [
        ("tt", ["--rtol", "1e-8"], tn.TTTensor),
        ("tr", ["--rtol", "1e-8"], tn.TRTensor),
        ("tr-search", ["--rtol", "1e-8"], tn.TRTensor),
        ("tucker", ["--rtol", "1e-8"], tn.TuckerTensor),
        ("cp", ["--rank", "24"], tn.CPTensor),
        ("stt", ["--rank", "4", "--k", "2"], tn.STTTensor),
        ("str", ["--rank", "4", "--k", "2"], tn.STRTensor),
        ("sttucker", ["--rank", "4", "--k", "2"], tn.STTuckerTensor),
    ],
)
def test_decompose_every_format(
    fmt: str, options: list[str], kind: type, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = tn.random_tt((4, 4, 4), 2, rng=0).to_dense()
    src = tmp_path / "x.npy"
    np.save(src, x)
    out_path = tmp_path / f"{fmt}.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ALS fits may stop at n_iter_max
        code = main(["decompose", str(src), "--format", fmt, *options, "-o", str(out_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"format:      {fmt}" in printed
    error = float(re.search(r"rel\. error:\s+(\S+)", printed).group(1))  # type: ignore[union-attr]
    result = tn.load(out_path)
    assert isinstance(result, kind)
    dense = result.to_dense()
    assert abs(error - np.linalg.norm(dense - x) / np.linalg.norm(x)) < 1e-6
    if fmt in ("tt", "tr", "tr-search", "tucker"):
        assert error <= 1e-8  # the rtol bound
    else:
        assert error < 0.5  # a fit at generous ranks (ALS: no bound)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--format", "cp"], "give --rank"),
        (["--format", "stt", "--rank", "4", "--rtol", "0.1"], "no error-driven rank choice"),
        (["--format", "tucker", "--max-rank", "2"], "not --max-rank"),
        (["--format", "stt", "--rank", "3", "--k", "2"], "k"),
    ],
)
def test_decompose_rejects_bad_combinations(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "x.npy"
    np.save(src, np.ones((4, 4, 4)))
    assert main(["decompose", str(src), *options]) == 2
    assert message in capsys.readouterr().err
