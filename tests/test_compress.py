"""compress(): layer selection, rtol and ratio policies, the report, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import tensornet_torch.layers as layers  # noqa: E402
from tensornet_torch.compress import CompressionReport, compress, default_selection  # noqa: E402
from tensornet_torch.demo import ResNet  # noqa: E402


def _resnet(dtype: Any = torch.float32, width: int = 16) -> ResNet:
    """CIFAR-style ResNet-20: stem, 3 stages of 3 blocks, 1x1 projection shortcuts, classifier."""
    torch.manual_seed(0)
    return ResNet(blocks=3, width=width, in_channels=3).to(dtype).eval()


def test_default_selection_skips_stem_shortcuts_and_classifier() -> None:
    names = default_selection(_resnet())
    assert len(names) == 18
    assert "conv1" not in names
    assert all(n.endswith(("conv1", "conv2")) and n.startswith("layers.") for n in names)


def test_rtol_policy_bounds_every_layer_and_keeps_the_model_working() -> None:
    model = _resnet(torch.float64)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    small, report = compress(model, method="tucker", rtol=0.4, progress=False, example_input=x)
    assert isinstance(report, CompressionReport)
    assert len(report.layers) == 18
    assert all(r.error <= 0.4 * (1 + 1e-9) for r in report.layers)
    assert all(isinstance(small.get_submodule(r.name), layers.TuckerConv2d) for r in report.layers)
    assert isinstance(model.layers[0].conv1, nn.Conv2d)  # the original is untouched
    assert small(x).shape == (2, 10)
    assert report.model_params_after == sum(p.numel() for p in small.parameters())
    assert report.model_params_before == sum(p.numel() for p in model.parameters())
    first = report.layers[0]
    assert first.flops_before == 16 * 16 * 16 * 16 * 9
    sizes: dict[str, int] = {}
    for r in report.layers:
        small.get_submodule(r.name).register_forward_pre_hook(
            lambda _m, args, name=r.name: sizes.__setitem__(name, args[0].shape[-1])
        )
    small(x)
    for r in report.layers:  # MACs after: the path forward takes at batch 2, per sample
        layer, h = small.get_submodule(r.name), sizes[r.name]
        paths = layer.path_macs(2, h, h)
        assert r.flops_after == -(-paths[layer.choose_path(2, h, h)] // 2)


def test_ratio_policy_reaches_the_target_and_allocates_unevenly() -> None:
    model = _resnet(width=8)
    small, report = compress(model, method="tucker", ratio=2.0, progress=False)
    assert report.ratio >= 2.0
    assert report.ratio <= 2.2  # close to the target, not far beyond it
    assert len({r.ranks for r in report.layers}) > 1
    assert small(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_ratio_allocation_favours_layers_whose_spectra_decay() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 32, 3), nn.Conv2d(32, 32, 3), nn.Conv2d(32, 32, 3))
    with torch.no_grad():  # make layer 1 exactly rank 2 on its channel modes
        a, b, c = torch.randn(32, 2), torch.randn(2, 2, 3, 3), torch.randn(32, 2)
        net[1].weight.copy_(torch.einsum("ta,abhw,sb->tshw", a, b, c))
    _, report = compress(net, method="tucker", ratio=1.5, progress=False)
    by_name = {r.name: r for r in report.layers}
    assert by_name["1"].error < 1e-5
    assert by_name["1"].params_after < 32 * 32 * 9 / 10  # the exact rank-2 layer is tiny
    layer2 = by_name["2"].params_after if "2" in by_name else 32 * 32 * 9 + 32
    assert by_name["1"].params_after < layer2


@pytest.mark.parametrize("method", ["tt", "tucker", "tr"])
def test_high_ratio_is_reachable_on_flat_spectra(method: str) -> None:
    # random kernels: even rtol=0.98 keeps large ranks (each of the m truncations of a sweep
    # may drop only rtol/sqrt(m) of the norm), so the rank caps carry the low end
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Conv2d(64, 64, 3), nn.Conv2d(64, 64, 3))
    small, report = compress(net, method=method, ratio=20, progress=False)
    assert report.ratio >= 20
    assert small(torch.randn(1, 3, 12, 12)).shape == (1, 64, 6, 6)


@pytest.mark.parametrize("method", ["tt", "tucker", "tr", "rsdtr", "str"])
def test_ratio_policy_is_deterministic(method: str) -> None:
    # the capped candidates must not go through an unseeded randomized SVD
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 32, 3), nn.Conv2d(32, 32, 3), nn.Conv2d(32, 32, 3))
    first, _ = compress(net, method=method, ratio=12, progress=False)
    second, _ = compress(net, method=method, ratio=12, progress=False)
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_layers_that_would_grow_stay_dense() -> None:
    model = _resnet(width=8)
    for method in ("rsdtr", "tr"):
        small, report = compress(model, method=method, rtol=0.2, progress=False)
        assert report.ratio >= 1.0
        assert report.kept  # random kernels at 20% error do not compress as rings
        assert all(isinstance(small.get_submodule(n), nn.Conv2d) for n in report.kept)
        assert all(r.params_after < r.params_before for r in report.layers)
        assert "Left dense" in report.to_markdown()


def test_ratio_policy_with_rings() -> None:
    _, report = compress(_resnet(width=8), method="tr", ratio=1.5, progress=False)
    assert report.ratio >= 1.5


def test_include_exclude_inplace_and_dtype() -> None:
    model = _resnet(torch.float64)
    _, report = compress(model, method="tucker", rtol=0.5, include="layers.0.*", progress=False)
    assert [r.name for r in report.layers] == ["layers.0.conv1", "layers.0.conv2"]
    _, report = compress(
        model, method="tucker", rtol=0.5, exclude=["layers.8.*", "layers.7.conv2"], progress=False
    )
    assert len(report.layers) == 15
    _, report = compress(model, method="tucker", rtol=0.5, include=nn.Conv2d, progress=False)
    # everything is selected; the stem and the 1x1 shortcuts do not shrink and stay dense
    assert len(report.layers) + len(report.kept) == 21
    assert "conv1" in report.kept
    same, _ = compress(model, method="tucker", options={"ranks": 4}, inplace=True, progress=False)
    assert same is model
    assert isinstance(model.layers[0].conv1, layers.TuckerConv2d)
    assert model.layers[0].conv1.first.dtype == torch.float64


def test_report_outputs() -> None:
    _, report = compress(
        _resnet(), method="tucker", rtol=0.5, progress=False, example_input=torch.randn(1, 3, 8, 8)
    )
    text = report.to_markdown()
    assert text.count("\n") == len(report.layers) + 3
    assert "whole model" in text and str(report) == text
    data = report.to_dict()
    json.dumps(data)
    assert data["ratio"] == report.ratio and len(data["layers"]) == 18
    assert report.flops_after is not None and report.flops_before is not None
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    fig = report.plot()
    assert fig.axes


def test_bad_input_gets_clear_errors() -> None:
    model = _resnet(width=4)
    with pytest.raises(ValueError, match="method"):
        compress(model, method="svd", rtol=0.1)
    with pytest.raises(ValueError, match="not both"):
        compress(model, method="tucker", rtol=0.1, ratio=2)
    with pytest.raises(ValueError, match="ratio must be"):
        compress(model, method="tucker", ratio=1.0)
    with pytest.raises(ValueError, match="give rtol"):
        compress(model, method="tucker")
    with pytest.raises(ValueError, match="nothing to compress"):
        compress(nn.Sequential(nn.Linear(3, 4)), method="tucker", rtol=0.1)
    with pytest.raises(ValueError, match="nothing to compress"):
        compress(model, method="tucker", rtol=0.1, exclude="*")
    with pytest.raises(ValueError, match=r"nn\.Conv2d layers only"):
        compress(model, method="tucker", rtol=0.1, include="fc")
    with pytest.raises(ValueError, match="not reachable"):
        compress(model, method="tucker", ratio=1000, progress=False)
    with pytest.raises(TypeError, match="model"):
        compress("resnet", method="tucker", rtol=0.1)  # type: ignore[arg-type]


@pytest.mark.cuda
def test_compress_on_cuda() -> None:
    model = _resnet().cuda()
    small, report = compress(model, method="tucker", rtol=0.3, progress=False)
    x = torch.randn(2, 3, 16, 16, device="cuda")
    assert small(x).device.type == "cuda"
    assert report.ratio > 1


@pytest.mark.parametrize("method", ["rsdtr", "tr", "tt", "tucker", "cp", "stt", "str", "sttucker"])
def test_every_method_compresses_a_resnet_to_a_ratio(method: str) -> None:
    torch.manual_seed(0)
    model = _resnet(width=4)
    small, report = compress(model, method=method, ratio=1.5, progress=False)
    assert report.ratio >= 1.5
    assert report.layers, "some layer must be factorized"
    assert all(r.method == method for r in report.layers)
    x = torch.randn(2, 3, 8, 8)
    assert small(x).shape == (2, 10)
    for r in report.layers:
        layer = small.get_submodule(r.name)
        conv = model.get_submodule(r.name)
        with torch.no_grad():
            err = torch.linalg.vector_norm(layer.reconstruct() - conv.weight)
            rel = float(err / torch.linalg.vector_norm(conv.weight))
        assert abs(rel - r.error) <= 1e-5


@pytest.mark.parametrize("method", ["rsdtr", "tt", "cp", "str", "sttucker"])
def test_rtol_policy_for_more_methods(method: str) -> None:
    _, report = compress(_resnet(width=4), method=method, rtol=0.6, progress=False)
    assert all(r.error <= 0.6 * (1 + 1e-6) for r in report.layers)


def test_stt_has_no_rtol_policy() -> None:
    with pytest.raises(ValueError, match="no error-bounded"):
        compress(_resnet(width=4), method="stt", rtol=0.3)


class SmallCNN(nn.Module):
    """A torchvision-free VGG-style CNN with a two-layer classifier (8x8 inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Linear(32 * 16, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: Any) -> Any:
        return self.classifier(self.features(x).flatten(1))


def test_tt_compresses_linear_layers_when_included() -> None:
    torch.manual_seed(0)
    model = SmallCNN().double().eval()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    small, report = compress(
        model,
        method="tt",
        rtol=0.3,
        include=["features.*", nn.Linear],
        progress=False,
        example_input=x,
    )
    names = [r.name for r in report.layers]
    selected = {"features.0", "features.2", "features.5", "classifier.0", "classifier.2"}
    assert set(names) | set(report.kept) == selected  # random init: some stay dense
    assert "classifier.0" in names
    for name in names:
        expected = layers.TTLinear if name.startswith("classifier") else layers.TTConv2d
        assert isinstance(small.get_submodule(name), expected)
    assert all(r.error <= 0.3 + 1e-9 for r in report.layers)
    h = torch.randn(3, 32 * 16, dtype=torch.float64)
    fc_layer = small.classifier[0]
    reference = torch.nn.functional.linear(h, fc_layer.reconstruct(), fc_layer.bias)
    torch.testing.assert_close(fc_layer(h), reference)
    assert small(x).shape == (4, 10)
    fc = next(r for r in report.layers if r.name == "classifier.0")
    assert fc.flops_before == 32 * 16 * 64
    # along the path forward takes at the example's batch (here: rebuild W, one F.linear)
    assert fc.flops_after == -(-small.classifier[0].macs(4) // 4)
    assert "in_modes" in fc.ranks
    assert fc.params_after < fc.params_before
    # at round-off the TT-matrix has more parameters than the weight: kept dense
    _, exact = compress(model, method="tt", rtol=1e-12, include="classifier.0", progress=False)
    assert exact.kept == ["classifier.0"] and not exact.layers
    # the default selection of a plain CNN: every 3x3 conv but the stem
    assert default_selection(model) == ["features.2", "features.5"]


def test_linear_layers_need_method_tt() -> None:
    model = SmallCNN()
    with pytest.raises(ValueError, match=r"'classifier.0'.*method='tt'"):
        compress(model, method="tucker", rtol=0.5, include="classifier.0", progress=False)
    with pytest.raises(ValueError, match="method='tt'"):
        compress(model, method="cp", rtol=0.5, include=nn.Linear, progress=False)
    with pytest.raises(ValueError, match="ReLU"):
        compress(model, method="tt", rtol=0.5, include="features.1", progress=False)
    # a pattern that also matches linear layers compresses only the convolutions
    _, report = compress(model, method="tucker", rtol=0.5, include="*", progress=False)
    assert all(r.name.startswith("features.") for r in report.layers)


def test_ratio_policy_counts_linear_layers() -> None:
    torch.manual_seed(0)
    model = SmallCNN().eval()
    small, report = compress(
        model, method="tt", ratio=2.0, include=[nn.Conv2d, nn.Linear], progress=False
    )
    assert report.ratio >= 2.0
    assert report.model_params_after == sum(p.numel() for p in small.parameters())
    assert small(torch.randn(2, 1, 8, 8)).shape == (2, 10)
