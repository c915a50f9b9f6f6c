"""TRConv2d (RSDTR four-sublayer pipeline) and STRConv2d (semi-tensor ring)."""

from __future__ import annotations

import io
import math
import types
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import tensornet as tn
from tensornet_torch.layers import tr_conv
from tensornet_torch.layers.tr_conv import STRConv2d, TRConv2d, check_ring_ranks

LAYERS = ("tr", "str")


def make(kind: str, *args: Any, **kwargs: Any) -> TRConv2d | STRConv2d:
    """A layer with random cores (float64 unless told): TR ranks (2, 3, 2, 2), STR (4, 2, 4, 2)."""
    kwargs.setdefault("dtype", torch.float64)
    if kind == "tr":
        kwargs.setdefault("ranks", (2, 3, 2, 2))
        return TRConv2d(*args, **kwargs)
    kwargs.setdefault("ranks", (4, 2, 4, 2))
    kwargs.setdefault("k", 2)
    return STRConv2d(*args, **kwargs)


def reference(layer: TRConv2d | STRConv2d, x: torch.Tensor) -> torch.Tensor:
    """nn.Conv2d with the reconstructed kernel: the definition of the layer's output."""
    conv = nn.Conv2d(**layer.geometry_kwargs(), dtype=layer.core_t.dtype)
    with torch.no_grad():
        conv.weight.copy_(layer.reconstruct())
        if layer.bias is not None:
            assert conv.bias is not None
            conv.bias.copy_(layer.bias)
    return conv(x)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def exact_ring_kernel() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(64, 32, 3, 3) kernel that is exactly a ring of ranks (2, 8, 3, 3) (USERS.md 12)."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(2, 64, 8), (8, 32, 3), (3, 3, 3), (3, 3, 2)]
    cores = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    return torch.einsum("atb,bsc,chd,dwa->tshw", *cores), cores


GEOMETRIES = [
    pytest.param({"padding": 1}, id="stride1-pad1"),
    pytest.param({"stride": 2, "padding": 1}, id="stride2-pad1"),
    pytest.param({"stride": (2, 1), "padding": (1, 2)}, id="stride-tuple-pad-tuple"),
    pytest.param({"padding": "same"}, id="same"),
    pytest.param({"padding": "same", "dilation": 2}, id="same-dilation2"),
    pytest.param({"padding": "valid"}, id="valid"),
    pytest.param({"dilation": (2, 1), "padding": (2, 0), "stride": 2}, id="dilation-tuple"),
    pytest.param({"groups": 2, "padding": 1}, id="groups2"),
    pytest.param({"groups": 2, "stride": 2, "dilation": 2}, id="groups2-stride2-dil2"),
    pytest.param({"padding": 1, "padding_mode": "reflect"}, id="reflect"),
    pytest.param({"padding": (1, 2), "padding_mode": "circular", "stride": 2}, id="circular"),
    pytest.param({"padding": 2, "padding_mode": "replicate", "bias": False}, id="replicate"),
    pytest.param({"kernel_size": (3, 5), "padding": (1, 2), "stride": (1, 2)}, id="kernel3x5"),
    pytest.param({"kernel_size": (2, 4), "padding": "same"}, id="even-kernel-same"),
    pytest.param({"kernel_size": 1}, id="kernel1x1"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_factorized_forward_equals_conv2d_with_reconstructed_kernel(
    kind: str, geometry: dict[str, Any]
) -> None:
    torch.manual_seed(0)
    geometry = {"kernel_size": 3, **geometry}
    layer = make(kind, 4, 6, forward_mode="factorized", **geometry)
    x = torch.randn(3, 4, 9, 11, dtype=torch.float64)
    expected = reference(layer, x)
    assert layer(x).shape == expected.shape
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    layer.forward_mode = "dense"
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)
    for path in ("factorized", "dense"):  # batch 1 and unbatched (C, H, W)
        layer.forward_mode = path
        torch.testing.assert_close(layer(x[:1]), expected[:1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(layer(x[0]), expected[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("groups", [1, 2])
def test_channels_last_and_strided_inputs_give_the_same_output(kind: str, groups: int) -> None:
    torch.manual_seed(12)
    layer = make(kind, 4, 6, 3, padding=1, groups=groups, forward_mode="factorized")
    x = torch.randn(2, 4, 8, 10, dtype=torch.float64)
    expected = layer(x)
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(layer(cl), expected, rtol=1e-12, atol=1e-12)
    wide = torch.randn(2, 4, 8, 20, dtype=torch.float64)
    wide[..., ::2] = x
    torch.testing.assert_close(layer(wide[..., ::2]), expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(LAYERS),
    groups=st.sampled_from([1, 2, 3]),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    ranks=st.tuples(*[st.integers(1, 3)] * 4),
    seed=st.integers(0, 2**16),
)
def test_ring_pipeline_is_conv2d_of_ring_kernel_for_any_geometry(
    kind: str,
    groups: int,
    kh: int,
    kw: int,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ranks: tuple[int, int, int, int],
    seed: int,
) -> None:
    torch.manual_seed(seed)
    geometry = {
        "kernel_size": (kh, kw),
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
    }
    r = ranks if kind == "tr" else tuple(2 * q for q in ranks)
    layer = make(kind, 2 * groups, 3 * groups, ranks=r, forward_mode="factorized", **geometry)
    x = torch.randn(2, 2 * groups, 10, 9, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(layer, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", [1, 3])
def test_tr_kernel_is_the_ring_of_each_groups_cores(groups: int) -> None:
    torch.manual_seed(1)
    layer = make("tr", 3 * groups, 2 * groups, (3, 2), groups=groups, ranks=(2, 3, 4, 5))
    kernel = layer.reconstruct().detach()
    for g, block in enumerate(kernel.chunk(groups, 0)):
        ring = layer.to_tr(g)
        assert ring.ranks == (2, 3, 4, 5, 2)
        torch.testing.assert_close(ring.to_dense(), block, rtol=1e-12, atol=1e-12)
    if groups == 1:  # the parameters are the TRTensor cores themselves
        for p, c in zip(layer.cores, layer.to_tr().cores):
            assert torch.equal(p.detach(), c)


@pytest.mark.parametrize("groups", [1, 2])
def test_str_kernel_is_the_semi_tensor_ring_of_each_groups_cores(groups: int) -> None:
    torch.manual_seed(2)
    layer = make("str", 2 * groups, 4 * groups, 3, groups=groups, ranks=(4, 6, 2, 4), k=2)
    assert isinstance(layer, STRConv2d)
    assert layer.compact_ranks == (2, 3, 1, 2)
    kernel = layer.reconstruct().detach()
    for g, block in enumerate(kernel.chunk(groups, 0)):
        s = layer.to_str(g)
        assert s.ranks == (4, 6, 2, 4, 4) and s.k == 2
        torch.testing.assert_close(s.to_dense(), block, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(
            tn.str_to_tr(s, compact=False).to_dense(), block, rtol=1e-12, atol=1e-12
        )
        compact = layer.to_tr(g)
        assert compact.ranks == (2, 3, 1, 2, 2)
        torch.testing.assert_close(compact.to_dense(), block, rtol=1e-12, atol=1e-12)


def test_str_with_k1_is_the_tr_layer_with_the_same_cores() -> None:
    torch.manual_seed(3)
    tr = make("tr", 4, 6, 3, padding=1, ranks=(2, 3, 2, 2))
    s = make("str", 4, 6, 3, padding=1, ranks=(2, 3, 2, 2), k=1)
    s.load_state_dict(tr.state_dict())
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    for path in ("factorized", "dense"):
        tr.forward_mode = s.forward_mode = path
        torch.testing.assert_close(s(x), tr(x), rtol=0, atol=0)


# -- cost figures ----------------------------------------------------------------------------
def test_tr_factorized_and_reconstruct_macs_hand_count() -> None:
    # S=8, T=6, kernel 3x5, stride (2, 1), padding (1, 2), ranks (Ra, Rb, Rc, Rd) = (2, 3, 4, 5)
    layer = TRConv2d(8, 6, (3, 5), stride=(2, 1), padding=(1, 2), ranks=(2, 3, 4, 5))
    assert layer.output_size(10, 12) == (5, 12)
    # H W S Rb Rc + Rb H' W Rc Rd kh + Rb H' W' Rd Ra kw + H' W' Ra Rb T
    hand = (
        10 * 12 * 8 * 3 * 4 + 3 * 5 * 12 * 4 * 5 * 3 + 3 * 5 * 12 * 5 * 2 * 5 + 5 * 12 * 2 * 3 * 6
    )
    assert hand == 11520 + 10800 + 9000 + 2160
    assert layer.factorized_macs(10, 12) == hand
    # close over (a, c): Ra T Rb S Rc + Rc kh Rd kw Ra + T S kh kw Ra Rc = 1152 + 600 + 5760
    # close over (b, d): Rd kw Ra T Rb + Rb S Rc kh Rd + T S kh kw Rb Rd = 900 + 1440 + 10800
    assert layer.reconstruct_macs() == 7512
    assert layer.num_params == 2 * 6 * 3 + 3 * 8 * 4 + 4 * 3 * 5 + 5 * 5 * 2 + 6


def test_str_macs_are_the_compact_rings_plus_the_partial_trace() -> None:
    layer = STRConv2d(8, 6, (3, 5), stride=(2, 1), padding=(1, 2), ranks=(4, 6, 8, 10), k=2)
    tr = TRConv2d(8, 6, (3, 5), stride=(2, 1), padding=(1, 2), ranks=(2, 3, 4, 5))
    assert layer.factorized_macs(10, 12) == tr.factorized_macs(10, 12) == 33480
    assert layer.reconstruct_macs() == 7512 + 4 * 6 * 6 // 2
    stored = tn.str_num_params((6, 8, 3, 5), (4, 6, 8, 10), 2)
    assert layer.num_params == stored + 6
    assert stored == 4 * 6 * 6 + 3 * 8 * 4 + 4 * 3 * 5 + 5 * 5 * 2


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_factorized_macs_count_the_pipelines_products(
    kind: str, geometry: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    geometry = {"kernel_size": 3, **geometry}
    layer = make(kind, 4, 6, forward_mode="factorized", **geometry)
    counted = []
    conv2d, matmul = F.conv2d, torch.matmul

    def counting_conv2d(x: torch.Tensor, w: torch.Tensor, *args: Any) -> torch.Tensor:
        out = conv2d(x, w, *args)  # every output entry sums (C_in / groups) kh kw products
        counted.append(out.numel() * int(w.shape[1]) * int(w.shape[2]) * int(w.shape[3]))
        return out

    def counting_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = matmul(a, b)
        counted.append(out.numel() * int(a.shape[-1]))
        return out

    monkeypatch.setattr(tr_conv, "F", types.SimpleNamespace(conv2d=counting_conv2d))
    monkeypatch.setattr(torch, "matmul", counting_matmul)
    layer(torch.randn(2, 4, 9, 11, dtype=torch.float64))
    assert len(counted) == 4
    assert sum(counted) == 2 * layer.factorized_macs(9, 11)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize(
    ("shape", "ranks"),
    [((6, 8, 3, 5), (2, 3, 4, 5)), ((64, 8, 3, 3), (4, 2, 2, 4)), ((4, 32, 1, 7), (2, 6, 2, 2))],
)
def test_reconstruct_macs_count_the_einsums(
    kind: str, shape: tuple[int, ...], ranks: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    t, s, kh, kw = shape
    r = ranks if kind == "tr" else tuple(2 * q for q in ranks)
    layer = make(kind, 2 * s, 2 * t, (kh, kw), groups=2, ranks=r)
    counted = []
    einsum = torch.einsum

    def counting(eq: str, *ops: torch.Tensor) -> torch.Tensor:
        sizes: dict[str, int] = {}
        for term, op in zip(eq.split("->")[0].split(","), ops):
            sizes.update(zip(term, (int(n) for n in op.shape)))
        counted.append(math.prod(sizes.values()))
        return einsum(eq, *ops)

    monkeypatch.setattr(torch, "einsum", counting)
    layer.reconstruct()
    extra = 0 if kind == "tr" else layer.core_t.numel() // 2  # partial-trace additions
    assert len(counted) == 3
    assert sum(counted) + extra == layer.reconstruct_macs()


# -- conversion, persistence, init, gradients ---------------------------------------------------
@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("bias", [True, False])
def test_to_conv_is_exact(kind: str, bias: bool) -> None:
    torch.manual_seed(4)
    layer = make(kind, 4, 6, 3, stride=2, padding=1, groups=2, bias=bias)
    conv = layer.to_conv()
    assert isinstance(conv, nn.Conv2d) and conv.weight.dtype == torch.float64
    assert torch.equal(conv.weight.detach(), layer.reconstruct().detach())
    assert (conv.bias is None) == (not bias)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(conv(x), layer(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", LAYERS)
def test_state_dict_round_trip_with_weights_only_load(kind: str, tmp_path: Any) -> None:
    torch.manual_seed(5)
    layer = make(kind, 4, 6, 3, padding=1)
    path = tmp_path / "layer.pt"
    torch.save(layer.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert set(state) == {"bias", "core_t", "core_s", "core_h", "core_w"}
    other = make(kind, 4, 6, 3, padding=1)
    other.load_state_dict(state)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    assert torch.equal(other(x), layer(x))
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    wrong = make(kind, 4, 6, 3, padding=1, ranks=(4, 4, 4, 4) if kind == "str" else 1)
    with pytest.raises(RuntimeError, match="size mismatch"):
        wrong.load_state_dict(torch.load(buffer, weights_only=True))


@pytest.mark.parametrize(
    ("kind", "args", "kwargs"),
    [
        ("tr", (32, 48, 3), {"ranks": (4, 6, 3, 3)}),
        ("tr", (16, 32, (1, 5)), {"ranks": 2, "groups": 4}),
        ("str", (32, 48, 3), {"ranks": (8, 6, 6, 4), "k": 2}),
        ("str", (16, 24, 3), {"ranks": 6, "k": 3, "groups": 2}),
    ],
)
def test_reset_parameters_matches_conv2d_default_kernel_variance(
    kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    torch.manual_seed(6)
    layer = make(kind, *args, **kwargs)
    conv = nn.Conv2d(args[0], args[1], args[2], groups=kwargs.get("groups", 1))
    target = float(conv.weight.detach().var())  # uniform(+-1/sqrt(fan_in)): 1 / (3 fan_in)
    assert math.isclose(target, layer.kernel_variance(), rel_tol=0.1)
    variances = []  # low-rank kernels share factors: average many inits
    for _ in range(200):
        layer.reset_parameters()
        variances.append(float(layer.reconstruct().detach().pow(2).mean()))
    assert abs(np.mean(variances) / layer.kernel_variance() - 1) < 0.2
    assert layer.bias is not None
    bound = 1 / math.sqrt(conv.weight[0].numel())
    assert float(layer.bias.detach().abs().max()) <= bound


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("path", ["factorized", "dense"])
def test_gradients_reach_every_core(kind: str, path: str) -> None:
    torch.manual_seed(7)
    layer = make(kind, 4, 6, 3, padding=1, groups=2, forward_mode=path)
    layer(torch.randn(2, 4, 6, 6, dtype=torch.float64)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


@pytest.mark.parametrize("kind", LAYERS)
def test_gradients_of_both_paths_agree(kind: str) -> None:
    torch.manual_seed(8)
    layer = make(kind, 4, 6, 3, stride=2, padding=1)
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    grads = []
    for path in ("factorized", "dense"):
        layer.zero_grad()
        layer.forward_mode = path
        layer(x).square().sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters() if p.grad is not None])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_are_honoured(kind: str, dtype: torch.dtype) -> None:
    torch.manual_seed(9)
    layer = make(kind, 4, 6, 3, padding=1, dtype=dtype, device="cpu")
    assert all(p.dtype == dtype and p.device.type == "cpu" for p in layer.parameters())
    x = torch.randn(2, 4, 6, 6, dtype=dtype)
    out = layer(x)
    assert out.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, reference(layer, x), rtol=tol, atol=tol)
    meta = make(kind, 4, 6, 3, dtype=dtype, device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert meta(torch.empty(2, 4, 6, 6, dtype=dtype, device="meta")).shape == (2, 6, 4, 4)


@pytest.mark.parametrize("kind", LAYERS)
def test_extra_repr_shows_geometry_ranks_and_k(kind: str) -> None:
    text = repr(make(kind, 4, 6, 3, stride=2, groups=2, forward_mode="dense"))
    assert "4, 6, kernel_size=(3, 3), stride=(2, 2), groups=2" in text
    if kind == "tr":
        assert "ranks=(2, 3, 2, 2)" in text
    else:
        assert "ranks=(4, 2, 4, 2), k=2" in text
    assert "forward_mode='dense'" in text


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ranks", "error", "match"),
    [
        (0, ValueError, "positive"),
        ((2, 3, 0, 1), ValueError, "positive"),
        ((2, 3, 4), ValueError, "got 3 values"),
        ((2, 3, 4, 5, 3), ValueError, "close the ring"),
        ("2222", TypeError, "must be an int or a sequence"),
        (2.0, TypeError, "must be an int or a sequence"),
        (True, TypeError, "must be an int or a sequence"),
        ((2, 3.0, 1, 1), TypeError, "must contain ints"),
        (None, TypeError, "must be an int or a sequence"),
    ],
)
def test_bad_ranks_are_rejected_with_a_clear_message(
    ranks: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TRConv2d(4, 6, 3, ranks=ranks)
    with pytest.raises(error, match=match):
        STRConv2d(4, 6, 3, ranks=ranks, k=1)


def test_check_ring_ranks_accepts_int_bonds_and_trtensor_ranks() -> None:
    assert check_ring_ranks(3) == (3, 3, 3, 3)
    assert check_ring_ranks([2, 8, 3, 3]) == (2, 8, 3, 3)
    assert check_ring_ranks(np.array([2, 8, 3, 3, 2]).tolist()) == (2, 8, 3, 3)
    assert check_ring_ranks((np.int64(2), 8, 3, 3)) == (2, 8, 3, 3)


@pytest.mark.parametrize(
    ("k", "ranks", "error", "match"),
    [
        (0, 4, ValueError, "k must be >= 1"),
        (2.0, 4, TypeError, "k must be an integer"),
        (None, 4, TypeError, "k must be an integer"),
        (2, (4, 3, 4, 4), ValueError, "k must divide every bond"),
        (3, 4, ValueError, "k must divide every bond"),
    ],
)
def test_bad_k_is_rejected_with_a_clear_message(
    k: Any, ranks: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        STRConv2d(4, 6, 3, ranks=ranks, k=k)
    conv = nn.Conv2d(4, 6, 3)
    with pytest.raises(error, match=match):
        STRConv2d.from_conv(conv, ranks=ranks, k=k)


def test_from_conv_rejects_missing_targets_and_non_convs() -> None:
    conv = nn.Conv2d(4, 6, 3)
    with pytest.raises(ValueError, match=r"rtol.*ranks.*got neither"):
        TRConv2d.from_conv(conv)
    with pytest.raises(ValueError, match=r"rtol.*ranks.*got neither"):
        STRConv2d.from_conv(conv, k=2)
    with pytest.raises(TypeError, match=r"torch\.nn\.Conv2d"):
        TRConv2d.from_conv(nn.Linear(4, 6), rtol=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"torch\.nn\.Conv2d"):
        STRConv2d.from_conv(nn.Linear(4, 6), rtol=0.1, k=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="search must be a bool"):
        TRConv2d.from_conv(conv, rtol=0.1, search="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rtol"):
        TRConv2d.from_conv(conv, rtol=-0.1)
    with pytest.raises(ValueError, match="forward_mode"):
        TRConv2d.from_conv(conv, rtol=0.1, forward_mode="fast")
    with pytest.raises(ValueError, match="group must be an int"):
        TRConv2d.from_conv(conv, rtol=0.1).to_tr(1)


# -- from_conv -------------------------------------------------------------------------------
def random_conv(*args: Any, seed: int = 0, **kwargs: Any) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(*args, **{"dtype": torch.float64, **kwargs})


@pytest.mark.parametrize("search", [True, False])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("rtol", [0.05, 0.3, 0.6])
def test_tr_from_conv_honours_rtol_on_the_whole_kernel(
    search: bool, groups: int, rtol: float
) -> None:
    conv = random_conv(8, 12, 3, padding=1, groups=groups, seed=int(rtol * 100))
    layer = TRConv2d.from_conv(conv, rtol=rtol, search=search)
    assert rel(layer.reconstruct().detach(), conv.weight.detach()) <= rtol
    assert layer.dense_num_params == conv.weight.numel() + 12
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(layer, x), rtol=1e-12, atol=1e-12)
    assert torch.equal(layer.bias, conv.bias)  # type: ignore[arg-type]


def test_tr_from_conv_search_and_sweep_are_tensornets() -> None:
    conv = random_conv(6, 10, (3, 2), seed=11)
    w = conv.weight.detach()
    layer = TRConv2d.from_conv(conv, rtol=0.2)
    ring = tn.tr_search(w, rtol=0.2)
    assert layer.ranks == ring.ranks[:4]
    torch.testing.assert_close(layer.reconstruct().detach(), ring.to_dense())
    sweep = TRConv2d.from_conv(conv, rtol=0.2, search=False)
    assert sweep.ranks == tn.tr_svd(w, rtol=0.2, start=0).ranks[:4]
    assert layer.num_params <= sweep.num_params


def test_exact_ring_kernel_is_found_with_fewer_params_than_tr_svd() -> None:
    kernel, _ = exact_ring_kernel()
    conv = nn.Conv2d(32, 64, 3, padding=1, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(kernel)
    layer = TRConv2d.from_conv(conv, rtol=1e-6)
    cores = layer.num_params - 64
    sweep = tn.tr_svd(kernel, rtol=1e-6)
    assert cores == tn.tr_search(kernel, rtol=1e-6).num_params == 4159
    assert sweep.num_params == 5104
    assert cores <= 0.85 * sweep.num_params
    assert cores < TRConv2d.from_conv(conv, rtol=1e-6, search=False).num_params - 64
    assert rel(layer.reconstruct().detach(), kernel) <= 1e-6
    x = torch.randn(2, 32, 10, 10, dtype=torch.float64)
    expected = F.conv2d(x, kernel, conv.bias, padding=1)
    for path in ("factorized", "dense"):
        layer.forward_mode = path
        torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("search", [True, False])
@pytest.mark.parametrize(
    ("caps", "rtol"), [(3, None), ((2, 4, 3, 2), None), ((2, 8, 3, 3), 0.5), ((1, 9, 9, 9), 0.3)]
)
def test_tr_from_conv_ranks_cap_every_bond(search: bool, caps: Any, rtol: float | None) -> None:
    conv = random_conv(8, 12, 3, groups=2, seed=3)
    layer = TRConv2d.from_conv(conv, ranks=caps, rtol=rtol, search=search)
    assert all(r <= c for r, c in zip(layer.ranks, check_ring_ranks(caps)))
    x = torch.randn(1, 8, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(layer, x), rtol=1e-12, atol=1e-12)


def test_tr_from_conv_loose_caps_keep_the_rtol_choice() -> None:
    conv = random_conv(8, 12, 3, seed=4)
    free = TRConv2d.from_conv(conv, rtol=0.3)
    capped = TRConv2d.from_conv(conv, rtol=0.3, ranks=64)
    assert rel(capped.reconstruct().detach(), conv.weight.detach()) <= 0.3
    assert capped.num_params == free.num_params


def test_tr_from_conv_zero_pads_groups_to_common_ranks() -> None:
    conv = random_conv(4, 4, 3, groups=2, bias=False, seed=5)
    with torch.no_grad():  # group 0 rank-1 (a ring of ones), group 1 random
        conv.weight[:2] = torch.ones(2, 2, 3, 3, dtype=torch.float64)
    layer = TRConv2d.from_conv(conv, rtol=1e-10)
    assert layer.to_tr(0).ranks == layer.to_tr(1).ranks == (*layer.ranks, layer.ranks[0])
    torch.testing.assert_close(layer.reconstruct().detach(), conv.weight.detach())
    per_group = tn.tr_search(conv.weight.detach()[2:], rtol=1e-10)
    assert layer.ranks == per_group.ranks[:4]


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_str_from_conv_with_rtol_lifts_the_rsdtr_ring_exactly(groups: int, k: int) -> None:
    conv = random_conv(8, 12, 3, padding=1, groups=groups, seed=6)
    layer = STRConv2d.from_conv(conv, rtol=0.3, k=k)
    tr = TRConv2d.from_conv(conv, rtol=0.3)
    assert layer.compact_ranks == tr.ranks and layer.k == k
    assert all(r % k == 0 for r in layer.ranks)
    torch.testing.assert_close(layer.reconstruct(), tr.reconstruct(), rtol=1e-12, atol=1e-12)
    assert rel(layer.reconstruct().detach(), conv.weight.detach()) <= 0.3
    ra, rb = tr.ranks[:2]
    assert layer.num_params == tr.num_params + groups * (k * k - 1) * ra * (12 // groups) * rb


def test_str_from_conv_with_ranks_is_str_fit_per_group() -> None:
    conv = random_conv(4, 8, 3, groups=2, seed=7)
    with pytest.warns(tn.ConvergenceWarning):
        layer = STRConv2d.from_conv(conv, ranks=(4, 2, 2, 2), k=2, n_iter_max=3, rng=0)
    assert layer.ranks == (4, 2, 2, 2) and layer.compact_ranks == (2, 1, 1, 1)
    gen = np.random.default_rng(0)
    for g, block in enumerate(conv.weight.detach().chunk(2, 0)):
        with pytest.warns(tn.ConvergenceWarning):
            fit = tn.str_fit(block, (4, 2, 2, 2), k=2, n_iter_max=3, rng=gen)
        for a, b in zip(layer.to_str(g).cores, fit.cores):
            assert torch.equal(a, b)
    stored = tn.str_num_params((4, 2, 3, 3), (4, 2, 2, 2), 2)
    assert layer.num_params == 2 * stored + 8


def test_str_from_conv_recovers_a_generated_str_kernel() -> None:
    kernel = tn.random_str((6, 4, 3, 3), (4, 2, 2, 2), k=2, rng=1).to_dense()
    conv = nn.Conv2d(4, 6, 3, bias=False, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(kernel))
    layer = STRConv2d.from_conv(conv, ranks=(4, 2, 2, 2), k=2, tol=1e-14, init="random", rng=0)
    assert rel(layer.reconstruct().detach(), conv.weight.detach()) <= 1e-6


def test_str_from_conv_caps_with_rtol() -> None:
    conv = random_conv(8, 12, 3, seed=8)
    layer = STRConv2d.from_conv(conv, rtol=0.3, ranks=(4, 4, 4, 4), k=2)
    assert all(r <= 4 and r % 2 == 0 for r in layer.ranks)


# -- CUDA --------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_forward_and_from_conv_stay_on_the_gpu(kind: str, dtype: torch.dtype) -> None:
    torch.manual_seed(10)
    conv = nn.Conv2d(8, 12, 3, padding=1, groups=2, device="cuda", dtype=dtype)
    if kind == "tr":
        layer: TRConv2d | STRConv2d = TRConv2d.from_conv(conv, rtol=0.3)
    else:
        layer = STRConv2d.from_conv(conv, rtol=0.3, k=2)
    assert all(p.device.type == "cuda" and p.dtype == dtype for p in layer.parameters())
    x = torch.randn(2, 8, 9, 9, device="cuda", dtype=dtype)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for path in ("factorized", "dense"):
        layer.forward_mode = path
        out = layer(x)
        assert out.device.type == "cuda"
        torch.testing.assert_close(out, layer.to_conv()(x), rtol=tol, atol=tol)
    assert rel(layer.reconstruct().detach(), conv.weight.detach()) <= 0.3 + 1e-5
    layer(x).sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in layer.parameters())
