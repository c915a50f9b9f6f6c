"""The adapter package imports with torch and core algorithms accept module weights."""

from __future__ import annotations

from typing import Any

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


def _layers(dtype: torch.dtype) -> list[torch.nn.Module]:
    from tensornet_torch import (
        CPConv2d,
        STRConv2d,
        STTConv2d,
        STTuckerConv2d,
        TRConv2d,
        TTConv2d,
        TuckerConv2d,
    )

    kw = {"dtype": dtype, "padding": 1, "groups": 2, "forward_mode": "factorized"}
    torch.manual_seed(0)
    return [
        TuckerConv2d(8, 12, 3, ranks=(4, 2), **kw),
        CPConv2d(8, 12, 3, ranks=3, **kw),
        TTConv2d(8, 12, 3, ranks=2, **kw),
        TRConv2d(8, 12, 3, ranks=(2, 2, 2, 2), **kw),
        STRConv2d(8, 12, 3, ranks=(2, 2, 2, 2), k=2, **kw),
        STTConv2d(8, 12, 3, ranks=2, k=2, **kw),
        STTuckerConv2d(8, 12, 3, ranks=(2, 2), k=2, **kw),
    ]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("index", range(7))
def test_factorized_path_takes_any_memory_layout(index: int, dtype: torch.dtype) -> None:
    """Channels-last and strided inputs give conv2d's result (float32 runs the channels-last
    intermediates of Tucker-2 and CP on CPU); Tucker-2 and CP keep a channels-last input's
    layout, as nn.Conv2d does."""
    layer = _layers(dtype)[index]
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    x = torch.randn(2, 8, 7, 6, dtype=dtype)
    reference = layer.to_conv()(x)
    last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(layer(x), reference, **tol)
    torch.testing.assert_close(layer(last), reference, **tol)
    strided = torch.randn(2, 8, 6, 7, dtype=dtype).transpose(2, 3)
    torch.testing.assert_close(layer(strided), layer.to_conv()(strided.contiguous()), **tol)
    if type(layer).__name__ in ("TuckerConv2d", "CPConv2d"):
        assert layer(last).is_contiguous(memory_format=torch.channels_last)
        assert layer(x).is_contiguous()


@pytest.mark.parametrize("index", range(7))
def test_float32_factorized_gradients_match_the_dense_path(index: int) -> None:
    layer = _layers(torch.float32)[index]
    x = torch.randn(2, 8, 7, 6, requires_grad=True)
    weight = torch.randn(2, 12, 7, 6)
    grads = []
    for mode in ("factorized", "dense"):
        layer.forward_mode = mode
        layer.zero_grad()
        x.grad = None
        (layer(x) * weight).sum().backward()
        grads.append([x.grad.clone(), *(p.grad.clone() for p in layer.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", ["TTConv2d", "STTConv2d"])
def test_from_conv_balances_core_norms_per_group(cls: str) -> None:
    import warnings

    import tensornet_torch as tt

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 12, 3, groups=2, dtype=torch.float64)
    kwargs: dict[str, Any] = {"ranks": 2}
    if cls == "STTConv2d":
        kwargs.update(k=2, rng=0, n_iter_max=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = getattr(tt, cls).from_conv(conv, **kwargs)
    norms = torch.stack([torch.linalg.vector_norm(c.flatten(1), dim=1) for c in layer.cores])
    torch.testing.assert_close(norms, norms[:1].expand_as(norms))  # equal within each group
    assert not torch.allclose(norms[0, 0], norms[0, 1])  # and per group, not global


def test_balance_keeps_the_product_and_skips_zero_groups() -> None:
    from tensornet_torch.layers import balance_

    torch.manual_seed(0)
    cores = [torch.randn(3, 2, 4, 2, dtype=torch.float64) for _ in range(3)]
    cores[0][1] *= 1e-4
    cores[2][2] = 0.0
    product = torch.einsum("gaib,gbjc,gckd->gijk", *cores)
    balance_(cores)
    torch.testing.assert_close(torch.einsum("gaib,gbjc,gckd->gijk", *cores), product)
    norms = torch.stack([torch.linalg.vector_norm(c.flatten(1), dim=1) for c in cores])
    torch.testing.assert_close(norms[:, :2], norms[:1, :2].expand(3, 2))
    assert float(norms[2, 2]) == 0.0  # the zero group is untouched
