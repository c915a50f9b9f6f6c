"""The ``tensornet`` command line: ``demo``, ``showcase`` and ``decompose``.

``tensornet demo`` needs the torch and demo extras; ``showcase`` (tensor trains on the
scikit-learn digits) needs the demo extra; ``decompose`` needs only the core.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

_FORMATS = ("tt", "tr", "tr-search", "tucker", "cp", "stt", "str", "sttucker")
_FIXED_RANK = frozenset({"cp", "stt", "str", "sttucker"})
"""Formats fitted by ALS at given ranks (``--rank``), without an error-driven rank choice."""


def _positive_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tensornet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="train a ResNet on bundled digits, compress it with every method"
    )
    demo.add_argument("--quick", action="store_true", help="ResNet-8, fewer epochs (~1 min)")
    demo.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    demo.add_argument("--device", default="cpu", help="cpu or cuda")
    demo.add_argument(
        "--methods", default=None, help="comma-separated subset (default: all of them)"
    )
    demo.add_argument("--ratios", default="2", help="comma-separated parameter compression targets")
    demo.add_argument(
        "-o", "--output", type=Path, default=None, help="folder for demo.md, .csv and .png"
    )
    demo.add_argument(
        "--ddp",
        type=int,
        default=None,
        metavar="N",
        help="train, compress one method (default tucker) and fine-tune under "
        "DistributedDataParallel on N processes (torchrun; gloo on cpu, nccl on cuda)",
    )

    show = sub.add_parser("showcase", help="tensor trains on bundled data (no torch needed)")
    show.add_argument("--quick", action="store_true", help="smaller problems, a few seconds")
    show.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    show.add_argument("-o", "--output", type=Path, default=None, help="also write the report")

    dec = sub.add_parser("decompose", help="decompose a .npy array file")
    dec.add_argument("file", type=Path, help="input array (.npy)")
    dec.add_argument("--format", choices=_FORMATS, default="tt", help="target format")
    dec.add_argument("--rtol", type=_positive_float, default=None, help="relative error target")
    dec.add_argument("--max-rank", type=int, default=None, help="cap on every rank")
    dec.add_argument(
        "--rank",
        type=int,
        default=None,
        help="ranks of the ALS fits (cp, stt, str, sttucker: required) or Tucker ranks",
    )
    dec.add_argument("--k", type=int, default=2, help="k of the STP formats (default 2)")
    dec.add_argument("--n-iter-max", type=int, default=100, help="sweeps of the ALS fits")
    dec.add_argument("--seed", type=int, default=0, help="seed of the randomized parts")
    dec.add_argument("-o", "--output", type=Path, default=None, help="output .npz file")
    return parser


def _run(x: np.ndarray, args: argparse.Namespace) -> Any:
    """The decomposition ``args.format`` asks for (ValueError for a bad combination)."""
    import tensornet as tn

    fmt, rtol, rank = args.format, args.rtol, args.rank
    if fmt in _FIXED_RANK:
        if rank is None:
            raise ValueError(f"--format {fmt} fits at fixed ranks: give --rank")
        if rtol is not None or args.max_rank is not None:
            raise ValueError(
                f"--format {fmt} has no error-driven rank choice: give --rank, not --rtol or "
                "--max-rank"
            )
    fits = {"n_iter_max": args.n_iter_max, "rng": args.seed}
    if fmt == "tt":
        return tn.tt_svd(x, rtol=rtol, max_rank=args.max_rank, rng=args.seed)
    if fmt == "tr":
        return tn.tr_svd(x, rtol=rtol, max_rank=args.max_rank, rng=args.seed)
    if fmt == "tr-search":
        return tn.tr_search(x, rtol=rtol, max_rank=args.max_rank, rng=args.seed)
    if fmt == "tucker":
        if args.max_rank is not None:
            raise ValueError("--format tucker takes --rank (Tucker ranks), not --max-rank")
        return tn.st_hosvd(x, rtol=rtol, ranks=rank, rng=args.seed)
    if fmt == "cp":
        return tn.cp_als(x, rank, **fits)
    if fmt == "stt":
        return tn.stt_fit(x, rank, k=args.k, **fits)
    if fmt == "str":
        return tn.str_fit(x, rank, k=args.k, **fits)
    return tn.sttucker_fit(x, rank, k=args.k, **fits)


def _decompose(args: argparse.Namespace) -> int:
    from tensornet.io import save

    try:
        x = np.load(args.file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        print(f"tensornet decompose: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        result = _run(x, args)
    except (TypeError, ValueError) as exc:
        print(f"tensornet decompose: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    x = np.asarray(x, dtype=result.dtype)
    norm = float(np.linalg.norm(x))
    error = float(np.linalg.norm(result.to_dense() - x)) / norm if norm > 0 else 0.0
    print(f"format:      {args.format}")
    print(f"shape:       {result.shape}")
    print(f"ranks:       {result.ranks}")
    print(f"params:      {result.num_params} (dense {x.size}, {x.size / result.num_params:.2f}x)")
    print(f"rel. error:  {error:.3e}")
    print(f"time:        {seconds:.3f} s")
    if args.output is not None:
        print(f"saved:       {save(args.output, result)}")
    return 0


def _demo_ddp(args: argparse.Namespace) -> int:
    """``tensornet demo --ddp N``: :mod:`tensornet_torch.ddp_demo` on N processes."""
    if args.ddp < 1:
        print(f"tensornet demo: --ddp must be at least 1, got {args.ddp}", file=sys.stderr)
        return 2
    methods = [] if args.methods is None else args.methods.split(",")
    ratios = args.ratios.split(",")
    if len(methods) > 1 or len(ratios) > 1:
        print(
            "tensornet demo --ddp runs one method at one ratio: give --methods and --ratios "
            f"one value each, got --methods {args.methods} --ratios {args.ratios}",
            file=sys.stderr,
        )
        return 2
    job = ["--world-size", str(args.ddp), "--seed", str(args.seed)]
    job += ["--backend", "nccl" if str(args.device).startswith("cuda") else "gloo"]
    if methods == ["admm-tt"]:
        job.append("--admm")
    elif methods:
        job += ["--method", methods[0]]
    job += ["--ratio", ratios[0]]
    if args.quick:
        job += ["--pretrain-epochs", "3", "--epochs", "1"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", str(args.ddp), "-m", "tensornet_torch.ddp_demo", *job]
    return subprocess.run(command, check=False).returncode


def _demo(args: argparse.Namespace) -> int:
    if args.ddp is not None:
        return _demo_ddp(args)
    try:
        from tensornet_torch.demo import DEMO_METHODS, run_demo
    except ImportError as exc:
        print(
            f"tensornet demo needs torch and scikit-learn (pip install -e '.[torch,demo]'): {exc}",
            file=sys.stderr,
        )
        return 2
    methods = DEMO_METHODS if args.methods is None else tuple(args.methods.split(","))
    try:
        ratios = tuple(float(r) for r in args.ratios.split(","))
        report, _ = run_demo(
            quick=args.quick,
            seed=args.seed,
            device=args.device,
            methods=methods,
            ratios=ratios,
            output=args.output,
        )
    except ValueError as exc:
        print(f"tensornet demo: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tensornet`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "showcase":
        from tensornet.showcase import run_showcase

        report = run_showcase(quick=args.quick, seed=args.seed)
        print(report)
        if args.output is not None:
            args.output.write_text(report)
        return 0
    if args.command == "demo":
        return _demo(args)
    return _decompose(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
