"""The ``tensornet`` command line: ``tensornet demo`` and ``tensornet decompose``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main"]

_FORMATS = ("tt",)


def _positive_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tensornet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the showcase on bundled data (no download)")
    demo.add_argument("--quick", action="store_true", help="smaller problems, a few seconds")
    demo.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    demo.add_argument("-o", "--output", type=Path, default=None, help="also write the report here")

    dec = sub.add_parser("decompose", help="decompose a .npy array file")
    dec.add_argument("file", type=Path, help="input array (.npy)")
    dec.add_argument("--format", choices=_FORMATS, default="tt", help="target format")
    dec.add_argument("--rtol", type=_positive_float, default=None, help="relative error target")
    dec.add_argument("--max-rank", type=int, default=None, help="cap on every rank")
    dec.add_argument("-o", "--output", type=Path, default=None, help="output .npz file")
    return parser


def _decompose(args: argparse.Namespace) -> int:
    from tensornet.decompose.tt_svd import tt_svd
    from tensornet.io import save

    try:
        x = np.load(args.file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        print(f"tensornet decompose: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        result = tt_svd(x, rtol=args.rtol, max_rank=args.max_rank)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tensornet`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from tensornet.showcase import run_showcase

        report = run_showcase(quick=args.quick, seed=args.seed)
        print(report)
        if args.output is not None:
            args.output.write_text(report)
        return 0
    return _decompose(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
