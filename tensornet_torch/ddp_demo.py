"""Compress a ResNet and fine-tune it with DistributedDataParallel, launched by torchrun.

``tensornet demo --ddp 2`` runs it on two processes (gloo on CPU, nccl with
``--device cuda``); the same by hand, or with more options::

    torchrun --standalone --nproc_per_node 2 -m tensornet_torch.ddp_demo --backend gloo
    torchrun --standalone --nproc_per_node 2 -m tensornet_torch.ddp_demo --backend nccl

Every process loads the same digits split (scikit-learn's bundled digits, no download),
builds the demo ResNet and trains it densely under DDP (a ``DistributedSampler`` gives
each process its share of every epoch). Then ``compress`` (or, with ``--admm``, ADMM-TT
training followed by ``finalize``) factorizes it: rank 0 chooses the ranks and decomposes,
every rank receives the same layers. The compressed model is wrapped in a new DDP and
fine-tuned; at the end ``check_replicas`` verifies that the parameters and buffers are
bitwise identical on every process, and rank 0 prints the figures measured in the run.
Run without torchrun, the script trains in one process.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from tensornet._validation import ConvergenceWarning
from tensornet_torch import ADMM, METHODS, broadcast_module, check_replicas, compress
from tensornet_torch.demo import ResNet, load_digits_data
from tensornet_torch.distributed import check_world_size, unwrap


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    parser.add_argument("--method", choices=METHODS, default="tucker")
    parser.add_argument("--ratio", type=float, default=4.0, help="whole-model compression")
    parser.add_argument("--admm", action="store_true", help="ADMM-TT training, then finalize")
    parser.add_argument("--blocks", type=int, default=1, help="1: ResNet-8, 3: ResNet-20")
    parser.add_argument("--pretrain-epochs", type=int, default=6, help="dense training")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning after compression")
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--world-size", type=int, default=None, help="expected number of processes (checked)"
    )
    return parser.parse_args(argv)


def _init(backend: str) -> torch.device:
    """Join the process group torchrun describes (or a group of one); this rank's device."""
    if "RANK" not in os.environ:  # plain `python -m tensornet_torch.ddp_demo`
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.update(
            {"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        )
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise SystemExit("--backend nccl needs CUDA devices; use --backend gloo on CPU")
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group(backend)
    return device


def _wrap(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _train(
    ddp: nn.Module,
    data: TensorDataset,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    admm: ADMM | None = None,
) -> None:
    sampler: DistributedSampler[tuple[Tensor, ...]] = DistributedSampler(data, seed=seed)
    loader = DataLoader(data, batch_size=batch_size, sampler=sampler)
    opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    steps = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)  # a new shuffle every epoch, the same on every rank
        ddp.train()
        for x, y in loader:
            loss = F.cross_entropy(ddp(x), y)
            if admm is not None:
                loss = loss + admm.penalty()
            opt.zero_grad()
            loss.backward()  # DDP averages the gradients of the factors across ranks
            opt.step()
            sched.step()
        if admm is not None:
            admm.update()  # rank 0 projects, every rank receives Z and U
    # DDP broadcasts the buffers at the start of every forward, so after the last step each
    # rank's BatchNorm running statistics include its own last batch: take rank 0's
    broadcast_module(ddp)


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    # on the module inside DDP, so no rank waits for another's buffer broadcast
    inner = unwrap(model)
    inner.eval()
    with torch.no_grad():
        return float((inner(x).argmax(1) == y).float().mean())


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in unwrap(model).parameters())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the job (every process of the group calls it; see the module docstring)."""
    # DDP's reducer warns (once) when a gradient's strides differ from its bucket's only
    # along a dimension of size 1 (some cores of TRConv2d/STRConv2d, e.g. (2, 3, 1)): the
    # memory layout is the same and nothing is wrong; the gradient is copied
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    args = _parse(argv)
    device = _init(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.world_size is not None:
        check_world_size(args.world_size)
    torch.manual_seed(args.seed)
    x, y, xt, yt = load_digits_data(args.seed, device)
    data = TensorDataset(x, y)
    times: dict[str, float] = {}

    model = ResNet(blocks=args.blocks).to(device)
    broadcast_module(model)  # identical start, whatever each process's random state
    ddp: nn.Module = _wrap(model, device)
    start = time.perf_counter()
    _train(ddp, data, args.pretrain_epochs, 0.1, args.batch_size, args.seed)
    times["dense training"] = time.perf_counter() - start
    acc_dense = _accuracy(ddp, xt, yt)

    start = time.perf_counter()
    if args.admm:
        admm = ADMM(ddp, method="tt", ratio=args.ratio, rho=1.0, rho_growth=1.3, rho_max=10.0)
        epochs = max(2, args.pretrain_epochs // 2)
        _train(ddp, data, epochs, 0.02, args.batch_size, args.seed + 1, admm)
        small = admm.finalize()
        label = "admm-tt"
    else:
        # the ALS fits of cp and stt: seeded and loose, as in `tensornet demo`
        options: dict[str, Any] = {}
        if args.method == "cp":
            options = {"rng": args.seed, "tol": 1e-4}
        elif args.method == "stt":
            options = {"rng": args.seed, "n_iter_max": 20, "tol": 1e-3}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            small, _ = compress(
                model, method=args.method, ratio=args.ratio, options=options, progress=rank == 0
            )
        label = args.method
    times["compression"] = time.perf_counter() - start
    acc_compressed = _accuracy(small, xt, yt)

    ddp_small = _wrap(small, device)  # a new wrapper: the parameters are new
    start = time.perf_counter()
    _train(ddp_small, data, args.epochs, 0.01, args.batch_size, args.seed + 2)
    times["fine-tuning"] = time.perf_counter() - start
    acc_tuned = _accuracy(ddp_small, xt, yt)
    check_replicas(ddp_small)  # raises ValueError naming the first tensor that differs

    if rank == 0:
        report: dict[str, Any] = {
            "backend": args.backend,
            "processes": world,
            "method": label,
            "params": f"{_params(model):,} -> {_params(small):,} "
            f"({_params(model) / _params(small):.2f}x)",
            "accuracy dense": f"{acc_dense:.3f}",
            "accuracy compressed": f"{acc_compressed:.3f}",
            "accuracy fine-tuned": f"{acc_tuned:.3f}",
            **{f"{k} s": f"{v:.1f}" for k, v in times.items()},
            "replicas identical": f"yes (check_replicas on {world} processes)",
        }
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
    # every rank leaves together: a rank whose peer already closed its gloo connections
    # can abort in teardown ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
