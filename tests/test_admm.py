"""ADMM rank-constrained training: the Z/U steps, the penalty, finalize, state, errors."""

from __future__ import annotations

import io
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import tensornet_torch.layers as layers  # noqa: E402
from tensornet_torch import ADMM  # noqa: E402

F64 = torch.float64


def _net(dtype: Any = F64) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(12, 12, 3, padding=1),
        nn.Flatten(),
        nn.Linear(12 * 16, 10),
    ).to(dtype)


def _rel(a: Any, b: Any) -> float:
    return float(torch.linalg.vector_norm(a - b).detach() / torch.linalg.vector_norm(b).detach())


def test_z_starts_at_the_projection_and_u_at_zero() -> None:
    net = _net()
    admm = ADMM(net, method="tucker", ranks=(3, 2))
    assert sorted(admm.Z) == ["2", "4"]  # the default selection: not the stem, not Linear
    for name, z in admm.Z.items():
        torch.testing.assert_close(admm.project(name, z), z)  # already of those ranks
        assert float(admm.U[name].abs().max()) == 0.0
        w = net.get_submodule(name).weight.detach()
        assert 0 < _rel(z, w) < 1
        # the projection is the rank-(3, 2) Tucker-2 of the kernel
        layer = layers.TuckerConv2d.from_conv(net.get_submodule(name), ranks=(3, 2))
        torch.testing.assert_close(z, layer.reconstruct().detach())


def test_penalty_value_and_gradient() -> None:
    net = _net()
    admm = ADMM(net, method="tt", ranks=2, rho=0.3)
    for name in admm.U:
        admm.U[name] = torch.randn_like(admm.U[name])
    value = admm.penalty()
    expected = sum(
        0.15 * float((net.get_submodule(n).weight.detach() - admm.Z[n] + admm.U[n]).square().sum())
        for n in admm.Z
    )
    assert abs(float(value.detach()) - expected) <= 1e-10 * expected
    value.backward()
    for name in admm.Z:
        weight = net.get_submodule(name).weight
        grad = 0.3 * (weight.detach() - admm.Z[name] + admm.U[name])
        torch.testing.assert_close(weight.grad, grad)


def test_update_is_the_scaled_admm_step() -> None:
    net = _net()
    admm = ADMM(net, method="rsdtr", ranks=(2, 2, 2, 2), rho=0.1, rho_growth=2.0, rho_max=0.3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    before = {n: u.clone() for n, u in admm.U.items()}
    admm.update()
    for name in admm.Z:
        w = net.get_submodule(name).weight.detach()
        torch.testing.assert_close(admm.Z[name], admm.project(name, w + before[name]))
        torch.testing.assert_close(admm.U[name], before[name] + w - admm.Z[name])
    assert admm.rho == pytest.approx(0.2) and admm.steps == 1
    admm.update()
    assert admm.rho == pytest.approx(0.3)  # capped by rho_max


def test_training_with_the_penalty_drives_kernels_to_the_ranks() -> None:
    net = _net()
    x = torch.randn(16, 3, 4, 4, dtype=F64)
    y = torch.randn(16, 10, dtype=F64)
    admm = ADMM(net, method="tucker", ranks=(2, 2), rho=0.05, rho_growth=1.5, rho_max=5.0)
    start = max(admm.distance().values())
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _epoch in range(25):
        for _batch in range(4):
            loss = (net(x) - y).square().mean() + admm.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
        admm.update()
    end = max(admm.distance().values())
    assert end < 0.1 * start
    small = admm.finalize()
    # the factorized model computes what the nearly-low-rank dense one does
    assert _rel(small(x), net(x)) < 0.1
    for name in admm.Z:
        assert isinstance(small.get_submodule(name), layers.TuckerConv2d)
        assert small.get_submodule(name).ranks == (2, 2)
        assert isinstance(net.get_submodule(name), nn.Conv2d)  # finalize copies by default


def test_ratio_allocates_ranks_like_compress_and_finalize_reaches_it() -> None:
    net = _net(torch.float32)
    admm = ADMM(net, method="tucker", ratio=1.15)
    small = admm.finalize()
    before = sum(p.numel() for p in net.parameters())
    after = sum(p.numel() for p in small.parameters())
    assert before / after >= 1.15
    assert set(admm.ranks) <= {"2", "4"}


def test_linear_layers_with_tt_and_inplace_finalize() -> None:
    net = _net()
    admm = ADMM(net, method="tt", ranks=3, include=nn.Linear)
    assert list(admm.Z) == ["6"] and admm.Z["6"].shape == (10, 12 * 16)
    out = admm.finalize(inplace=True)
    assert out is net and isinstance(net[6], layers.TTLinear)
    assert "in_modes" in admm.ranks["6"]


@pytest.mark.parametrize(
    ("method", "ranks"),
    [
        ("tucker", (2, 2)),
        ("cp", 2),
        ("tt", 2),
        ("tr", (2, 2, 2, 2)),
        ("rsdtr", (2, 2, 2, 2)),
        ("stt", 2),
        ("str", (2, 2, 2, 2)),
        ("sttucker", (2, 2)),
    ],
)
def test_every_method_projects_and_finalizes(method: str, ranks: Any) -> None:
    net = _net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ALS fits of random kernels at tiny ranks
        admm = ADMM(net, method=method, ranks=ranks, options={"rng": 0} if method == "cp" else {})
        admm.update()
        small = admm.finalize()
    assert all(d < 1 for d in admm.distance().values())
    assert small(torch.randn(2, 3, 4, 4, dtype=F64)).shape == (2, 10)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in net.parameters())


def test_state_dict_round_trip() -> None:
    net = _net()
    admm = ADMM(net, method="tucker", ranks=(2, 2), rho=0.01, rho_growth=3.0)
    with torch.no_grad():
        net[2].weight.add_(1.0)
    admm.update()
    buffer = io.BytesIO()
    torch.save(admm.state_dict(), buffer)
    buffer.seek(0)
    other = ADMM(net, method="tucker", ranks=(2, 2))
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert other.rho == pytest.approx(0.03) and other.steps == 1
    for name in admm.Z:
        torch.testing.assert_close(other.Z[name], admm.Z[name])
        torch.testing.assert_close(other.U[name], admm.U[name])
    narrow = ADMM(net, method="tucker", ranks=(2, 2), include="2")
    with pytest.raises(ValueError, match="constrains layers"):
        narrow.load_state_dict(admm.state_dict())


def test_bad_input_gets_clear_errors() -> None:
    net = _net()
    with pytest.raises(ValueError, match="method"):
        ADMM(net, method="svd", ranks=2)
    with pytest.raises(ValueError, match="exactly one of ranks and ratio"):
        ADMM(net, method="tt", ranks=2, ratio=2.0)
    with pytest.raises(ValueError, match="exactly one of ranks and ratio"):
        ADMM(net, method="tt")
    with pytest.raises(ValueError, match="ratio"):
        ADMM(net, method="tt", ratio=1.0)
    with pytest.raises(ValueError, match="rho"):
        ADMM(net, method="tt", ranks=2, rho=0.0)
    with pytest.raises(TypeError, match="rho_growth"):
        ADMM(net, method="tt", ranks=2, rho_growth="fast")
    with pytest.raises(ValueError, match="nothing to constrain"):
        ADMM(net, method="tt", ranks=2, exclude="*")
    with pytest.raises(TypeError, match="model"):
        ADMM("net", method="tt", ranks=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ranks"):
        ADMM(net, method="tucker", ranks=0)


@pytest.mark.cuda
def test_admm_on_cuda() -> None:
    net = _net(torch.float32).cuda()
    admm = ADMM(net, method="tt", ranks=2)
    loss = net(torch.randn(2, 3, 4, 4, device="cuda")).sum() + admm.penalty()
    loss.backward()
    admm.update()
    assert all(z.is_cuda for z in admm.Z.values())
    assert next(admm.finalize().parameters()).is_cuda
