"""torch.distributed: replicas stay identical under DDP; compress/ADMM decide on rank 0.

The module is also the worker script: the tests launch it twice (ranks 0 and 1, gloo on
CPU; nccl on two GPUs when there are two) with ``python tests/test_distributed.py``. One
launch runs every scenario and each rank writes what it found to a JSON file; the tests
read those files. Collectives time out after 60 s and the launch after 180 s, so a hang
fails instead of blocking.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import traceback
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

import tensornet_torch as tnt  # noqa: E402
from tensornet_torch.distributed import is_distributed, unwrap  # noqa: E402

HERE = Path(__file__).resolve()
LAUNCH_TIMEOUT_S = 180


# -- the worker (runs in the launched processes) -------------------------------------------------
def _every_layer_model(device: str) -> nn.Sequential:
    """A tiny network with one layer of every factorized form."""
    geometry: dict[str, Any] = {"padding": 1, "device": device}
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, **geometry),
        tnt.TuckerConv2d(8, 8, 3, ranks=(2, 3), **geometry),
        nn.ReLU(),
        tnt.CPConv2d(8, 8, 3, ranks=4, **geometry),
        tnt.TTConv2d(8, 8, 3, ranks=2, **geometry),
        nn.ReLU(),
        tnt.TRConv2d(8, 8, 3, ranks=(2, 2, 2, 2), **geometry),
        tnt.STTConv2d(8, 8, 3, ranks=2, k=2, **geometry),
        nn.ReLU(),
        tnt.STRConv2d(8, 8, 3, ranks=(2, 2, 2, 2), k=2, **geometry),
        tnt.STTuckerConv2d(8, 8, 3, ranks=(2, 2), k=2, **geometry),
        nn.Flatten(),
        tnt.TTLinear(8 * 4 * 4, 10, ranks=2, device=device),
    )


def _dense_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(12, 12, 3, padding=1),
        nn.Flatten(),
        nn.Linear(12 * 4 * 4, 10),
    )


def _same_everywhere(tensors: list[Any]) -> bool:
    """Whether the concatenation of ``tensors`` is bitwise equal on every rank."""
    flat = torch.cat([t.detach().reshape(-1).double() for t in tensors])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered)


def _errors(call: Callable[[], Any]) -> str:
    """``type: message`` of the exception ``call`` raises ('' if none)."""
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def _train(model: nn.Module, rank: int, device: str, steps: int, extra: Any = None) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batches
    for _ in range(steps):
        x = torch.randn(4, 3, 4, 4, generator=gen).to(device)
        y = torch.randint(0, 10, (4,), generator=gen).to(device)
        loss = nn.functional.cross_entropy(model(x), y)
        if extra is not None:
            loss = loss + extra()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _scenario_every_layer(rank: int, device: str) -> dict[str, Any]:
    torch.manual_seed(rank)  # different initial values on each rank
    model = _every_layer_model(device)
    before = _errors(lambda: tnt.check_replicas(model))
    tnt.broadcast_module(model)
    after_broadcast = _errors(lambda: tnt.check_replicas(model))
    # the ranks take different forward paths: same parameters, same synchronized gradients
    for m in model.modules():
        if isinstance(m, tnt.FactorizedConv2d):
            m.forward_mode = "dense" if rank == 0 else "factorized"
    ddp = nn.parallel.DistributedDataParallel(model)
    start = [p.detach().clone() for p in model.parameters()]
    _train(ddp, rank, device, steps=3)
    moved = all(not torch.equal(a, p) for a, p in zip(start, model.parameters()))
    return {
        "detected_before_broadcast": before,
        "after_broadcast": after_broadcast,
        "every_parameter_moved": moved,
        "identical_after_training": _same_everywhere(list(model.parameters())),
        "check_replicas_after_training": _errors(lambda: tnt.check_replicas(ddp)),
        "layer_forms": sorted({type(m).__name__ for m in model.modules()}),
    }


def _scenario_compress(rank: int) -> dict[str, Any]:
    net = _dense_model(0)
    # unseeded STT fits (random init): local compression differs between the ranks ...
    options = {"ranks": 2, "n_iter_max": 3}
    local, _ = tnt.compress(net, method="stt", options=options, progress=False, distributed=False)
    # ... the collective one takes rank 0's everywhere
    synced, report = tnt.compress(net, method="stt", options=options, progress=False)
    # ratio allocation on weights that differ between the ranks: rank 0 decides
    other = _dense_model(rank)
    small, ratio_report = tnt.compress(other, method="tucker", ratio=1.5, progress=False)
    names = [r.name for r in ratio_report.layers]
    reports = [None] * dist.get_world_size()
    dist.all_gather_object(reports, (report.to_dict(), ratio_report.to_dict()))
    return {
        "local_differs": _errors(lambda: tnt.check_replicas(local)),
        "synced": _errors(lambda: tnt.check_replicas(synced)),
        "ratio_layers": names,
        "ratio_layers_identical": [
            _errors(lambda n=n: tnt.check_replicas(small.get_submodule(n))) for n in names
        ],
        "reports_identical": all(r == reports[0] for r in reports),
    }


def _scenario_admm(rank: int) -> dict[str, Any]:
    model = _dense_model(rank)  # different weights: the projections must come from rank 0
    ddp = nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights
    admm = tnt.ADMM(ddp, method="tucker", ratio=1.5, rho=1.0)
    z0 = _same_everywhere(list(admm.Z.values()))
    for _ in range(2):
        _train(ddp, rank, "cpu", steps=2, extra=admm.penalty)
        admm.update()
    zu = [*admm.Z.values(), *admm.U.values()]
    final = admm.finalize()
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, admm.ranks)
    return {
        "model_is_inner": admm.model is model,
        "z_identical_at_start": z0,
        "zu_identical_after_updates": _same_everywhere(zu),
        "u_nonzero": bool(any(float(u.abs().max()) > 0 for u in admm.U.values())),
        "weights_identical": _same_everywhere(list(model.parameters())),
        "finalized_identical": _errors(lambda: tnt.check_replicas(final)),
        "finalized_types": sorted({type(m).__name__ for m in final.modules()}),
        "ranks_identical": all(g == gathered[0] for g in gathered),
    }


def _scenario_bad_input(rank: int, world: int) -> dict[str, Any]:
    net = _dense_model(0)
    if rank == 1:
        net[4] = nn.Identity()  # another layer on rank 1
    layers = {"stem": nn.Conv2d(3, 8, 3), "body": nn.Conv2d(8, 8, 3), "head": nn.Flatten()}
    if rank == 1:
        del layers["body"]  # a layer missing on rank 1
    missing = nn.Sequential(OrderedDict(layers))
    ranks = (2, 2) if rank == 0 else (3, 2)
    tucker = nn.Sequential(nn.Conv2d(3, 8, 3), tnt.TuckerConv2d(8, 8, 3, ranks=ranks))
    return {
        "replaced_layer": _errors(lambda: tnt.check_structure(net)),
        "missing_layer": _errors(lambda: tnt.check_structure(missing)),
        "different_ranks": _errors(lambda: tnt.check_structure(tucker)),
        "compress_mismatch": _errors(
            lambda: tnt.compress(net, method="tucker", rtol=0.5, progress=False)
        ),
        "admm_mismatch": _errors(lambda: tnt.ADMM(net, method="tucker", ranks=(2, 2))),
        "broadcast_mismatch": _errors(lambda: tnt.broadcast_module(tucker)),
        "world_size_wrong": _errors(lambda: tnt.check_world_size(world + 1)),
        "world_size_right": tnt.check_world_size(world),
        # an error on rank 0 inside the collective compress reaches every rank
        "unreachable_ratio": _errors(
            lambda: tnt.compress(_dense_model(0), method="tucker", ratio=1000.0, progress=False)
        ),
        "still_usable": _same_everywhere([torch.ones(3)]),
    }


def _worker(rank: int, world: int, port: int, backend: str, out: Path) -> None:
    device = f"cuda:{rank}" if backend == "nccl" else "cpu"
    if backend == "nccl":
        torch.cuda.set_device(rank)
    torch.set_num_threads(1)
    dist.init_process_group(
        backend,
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    scenarios: dict[str, Callable[[], dict[str, Any]]] = {
        "every_layer": lambda: _scenario_every_layer(rank, device),
    }
    if backend == "gloo":
        scenarios["compress"] = lambda: _scenario_compress(rank)
        scenarios["admm"] = lambda: _scenario_admm(rank)
        scenarios["bad_input"] = lambda: _scenario_bad_input(rank, world)
    results: dict[str, Any] = {}
    try:
        for name, scenario in scenarios.items():
            try:
                results[name] = scenario()
            except Exception:
                results[name] = {"crashed": traceback.format_exc()}
                break  # the other rank may be waiting in a collective: stop here
    finally:
        out.write_text(json.dumps(results, indent=1))
        if not any("crashed" in r for r in results.values() if isinstance(r, dict)):
            # leave together: a rank whose peer already closed its gloo connections can
            # abort in teardown ("terminate called without an active exception")
            dist.barrier()
        dist.destroy_process_group()


# -- the launcher and the tests ---------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(tmp: Path, backend: str, world: int = 2) -> list[dict[str, Any]]:
    """Run the worker on ``world`` processes; each rank's findings."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = []
    for rank in range(world):
        args = [sys.executable, str(HERE), str(rank), str(world), str(port), backend]
        log = (tmp / f"rank{rank}.log").open("w")
        procs.append(
            subprocess.Popen(
                [*args, str(tmp / f"rank{rank}.json")], env=env, stdout=log, stderr=log
            )
        )
    try:
        for proc in procs:
            proc.wait(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
        logs = "\n".join((tmp / f"rank{r}.log").read_text()[-2000:] for r in range(world))
        pytest.fail(f"the {world} processes did not finish in {LAUNCH_TIMEOUT_S} s:\n{logs}")
    found = []
    for rank, proc in enumerate(procs):
        path = tmp / f"rank{rank}.json"
        log = (tmp / f"rank{rank}.log").read_text()[-3000:]
        assert proc.returncode == 0 and path.exists(), f"rank {rank} failed:\n{log}"
        found.append(json.loads(path.read_text()))
    for rank, results in enumerate(found):
        for name, result in results.items():
            assert "crashed" not in result, f"rank {rank}, {name}:\n{result['crashed']}"
    return found


def _gloo_missing() -> str:
    if not dist.is_available():
        return "torch.distributed is not available in this torch build"
    if not dist.is_gloo_available():
        return "torch.distributed has no gloo backend in this torch build"
    return ""


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    reason = _gloo_missing()
    if reason:
        pytest.skip(reason)
    return _launch(tmp_path_factory.mktemp("gloo"), "gloo")


def test_every_layer_form_keeps_identical_replicas_under_ddp(
    gloo_run: list[dict[str, Any]],
) -> None:
    for found in gloo_run:
        result = found["every_layer"]
        assert set(result["layer_forms"]) >= {
            "TuckerConv2d",
            "CPConv2d",
            "TTConv2d",
            "TRConv2d",
            "STTConv2d",
            "STRConv2d",
            "STTuckerConv2d",
            "TTLinear",
        }
        # different seeds per rank: check_replicas sees it, broadcast_module repairs it
        assert result["detected_before_broadcast"].startswith("ValueError: the replicas differ")
        assert result["after_broadcast"] == ""
        # three steps on different batches, different forward paths per rank
        assert result["every_parameter_moved"]
        assert result["identical_after_training"]
        assert result["check_replicas_after_training"] == ""


def test_compress_gives_every_rank_rank0s_ranks_and_factors(
    gloo_run: list[dict[str, Any]],
) -> None:
    for found in gloo_run:
        result = found["compress"]
        # unseeded STT fits differ between processes when each compresses on its own
        assert result["local_differs"].startswith("ValueError: the replicas differ")
        assert result["synced"] == ""
        assert result["ratio_layers"]
        assert result["ratio_layers_identical"] == [""] * len(result["ratio_layers"])
        assert result["reports_identical"]
    assert gloo_run[0]["compress"]["ratio_layers"] == gloo_run[1]["compress"]["ratio_layers"]


def test_admm_keeps_z_and_u_identical_across_ranks(gloo_run: list[dict[str, Any]]) -> None:
    for found in gloo_run:
        result = found["admm"]
        assert result["model_is_inner"]  # ADMM(ddp_model) constrains the module inside
        assert result["z_identical_at_start"]
        assert result["zu_identical_after_updates"]
        assert result["u_nonzero"]
        assert result["weights_identical"]
        assert result["finalized_identical"] == ""
        assert "TuckerConv2d" in result["finalized_types"]
        assert result["ranks_identical"]


def test_bad_input_gets_the_same_clear_error_on_every_rank(
    gloo_run: list[dict[str, Any]],
) -> None:
    for found in gloo_run:
        result = found["bad_input"]
        replaced = result["replaced_layer"]
        assert replaced.startswith("ValueError: the model differs between ranks: layer '4' ")
        assert "Conv2d (weight (12, 12, 3, 3), bias (12,)) on rank 0" in replaced
        assert "Identity (no parameters) on rank 1" in replaced
        missing = result["missing_layer"]
        assert missing == (
            "ValueError: the model differs between ranks: layer 'body', a Conv2d (weight "
            "(8, 8, 3, 3), bias (8,)), is on rank 0 but missing on rank 1"
        )
        ranks = result["different_ranks"]
        assert "TuckerConv2d" in ranks and "ranks=(2, 2)" in ranks and "ranks=(3, 2)" in ranks
        assert result["compress_mismatch"] == replaced
        assert result["admm_mismatch"] == replaced
        assert result["broadcast_mismatch"] == ranks
        assert result["world_size_wrong"].startswith("ValueError: world size mismatch")
        assert "expected 3 processes" in result["world_size_wrong"]
        assert result["world_size_right"] == 2
        assert result["unreachable_ratio"].startswith("UnreachableRatioError: ratio is not")
        assert result["still_usable"]
    assert gloo_run[0]["bad_input"] == gloo_run[1]["bad_input"]


@pytest.mark.cuda
def test_every_layer_form_keeps_identical_replicas_with_nccl(tmp_path: Path) -> None:
    if torch.cuda.device_count() < 2 or not dist.is_nccl_available():
        pytest.skip("needs two CUDA devices and the nccl backend")
    (found0, found1) = _launch(tmp_path, "nccl")
    for found in (found0, found1):
        assert found["every_layer"]["identical_after_training"]
        assert found["every_layer"]["check_replicas_after_training"] == ""


# -- in one process: the helpers without a process group --------------------------------------
def test_helpers_without_a_process_group_are_no_ops() -> None:
    net = _dense_model(0)
    before = [p.detach().clone() for p in net.parameters()]
    assert not is_distributed()
    tnt.check_structure(net)
    tnt.check_replicas(net)
    tnt.broadcast_module(net)
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert tnt.check_world_size(1) == 1
    assert unwrap(nn.DataParallel(net)) is net


def test_world_size_and_distributed_flag_errors_without_a_process_group() -> None:
    with pytest.raises(ValueError, match=r"expected 2 processes.*not initialized"):
        tnt.check_world_size(2)
    with pytest.raises(ValueError, match="expected must be >= 1"):
        tnt.check_world_size(0)
    with pytest.raises(TypeError, match="expected must be an int"):
        tnt.check_world_size(2.0)  # type: ignore[arg-type]
    net = _dense_model(0)
    with pytest.raises(RuntimeError, match="distributed=True needs an initialized"):
        tnt.compress(net, method="tucker", rtol=0.5, progress=False, distributed=True)
    with pytest.raises(RuntimeError, match="distributed=True needs an initialized"):
        tnt.ADMM(net, method="tucker", ranks=(2, 2), distributed=True)
    with pytest.raises(TypeError, match="distributed must be a bool or None"):
        tnt.compress(net, method="tucker", rtol=0.5, progress=False, distributed=1)  # type: ignore[arg-type]


def test_admm_and_compress_look_through_a_data_parallel_wrapper() -> None:
    net = _dense_model(0)
    wrapped = nn.DataParallel(net)
    admm = tnt.ADMM(wrapped, method="tucker", ranks=(2, 2))
    assert admm.model is net and sorted(admm.Z) == ["2", "4"]
    small, report = tnt.compress(wrapped, method="tucker", rtol=0.5, progress=False)
    assert [r.name for r in report.layers] == ["2", "4"]
    assert isinstance(small[2], tnt.TuckerConv2d)


if __name__ == "__main__":
    _rank, _world, _port, _backend, _out = sys.argv[1:6]
    _worker(int(_rank), int(_world), int(_port), _backend, Path(_out))
