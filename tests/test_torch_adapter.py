"""The adapter package imports with torch and core algorithms accept module weights."""

from __future__ import annotations

import pytest

import tensornet as tn

torch = pytest.importorskip("torch")


def test_adapter_imports_and_shares_version() -> None:
    import tensornet_torch

    assert tensornet_torch.__version__ == tn.__version__


def test_conv_weight_decomposes_in_place_on_its_device_and_dtype() -> None:
    conv = torch.nn.Conv2d(16, 32, 3, dtype=torch.float32)
    w = conv.weight.detach()
    t = tn.tt_svd(w, rtol=0.5)
    assert all(c.dtype == torch.float32 and c.device == w.device for c in t.cores)
    err = torch.linalg.vector_norm(t.to_dense() - w) / torch.linalg.vector_norm(w)
    assert float(err) <= 0.5 + 1e-5
