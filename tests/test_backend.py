"""The array-namespace layer: no torch import, namespaces and devices preserved."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tensornet import _backend as B


def test_import_tensornet_never_imports_torch() -> None:
    code = (
        "import sys, tensornet, tensornet.io, tensornet.random, tensornet.cli, "
        "tensornet.showcase\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_tensornet_never_imports_dask() -> None:
    # dask is an optional extra: the core imports it only when it is given a dask array
    code = (
        "import sys, numpy as np, tensornet as tn\n"
        "tn.tt_svd(np.ones((3, 4, 5)), rtol=1e-3); tn.hosvd(np.ones((3, 4)))\n"
        "bad = sorted(m for m in sys.modules if m == 'dask' or m.startswith('dask.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_namespace_and_eps() -> None:
    x = np.zeros((2, 3), dtype=np.float32)
    assert B.namespace(x).__name__.endswith("numpy")
    assert B.eps(x) == np.finfo(np.float32).eps
    assert B.device(x) == "cpu"
    assert not B.is_complex(x)
    assert B.is_complex(x.astype(np.complex64))


def test_standard_normal_matches_like_array() -> None:
    like = np.zeros(3, dtype=np.complex64)
    out = B.standard_normal(like, (4, 5), np.random.default_rng(0))
    assert out.shape == (4, 5)
    assert out.dtype == np.complex64
    assert np.all(out.imag != 0)


def test_torch_namespace_and_to_numpy() -> None:
    torch = pytest.importorskip("torch")
    x = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    assert B.namespace(x).__name__.endswith("torch")
    assert B.eps(x) == torch.finfo(torch.float64).eps
    np.testing.assert_array_equal(B.to_numpy(x), np.arange(6.0).reshape(2, 3))


def test_is_array_rejects_python_scalars_and_lists() -> None:
    assert not B.is_array(3.0)
    assert not B.is_array([1.0, 2.0])
    assert B.is_array(np.ones(2))


def test_real_dtype_stays_in_the_array_library() -> None:
    torch = pytest.importorskip("torch")
    assert B.real_dtype(torch.zeros(2, dtype=torch.complex64)) == torch.float32
    assert B.real_dtype(torch.zeros(2, dtype=torch.float64)) == torch.float64
    assert B.real_dtype(np.zeros(2, dtype=np.complex128)) == np.float64


def test_norm_of_an_all_zero_torch_ring_is_a_real_zero() -> None:
    torch = pytest.importorskip("torch")
    import tensornet as tn

    zero = tn.TRTensor([torch.zeros((2, 3, 2), dtype=torch.complex128)] * 2)
    norm = tn.tr_norm(zero)
    assert isinstance(norm, torch.Tensor) and norm.dtype == torch.float64
    assert float(norm) == 0.0
