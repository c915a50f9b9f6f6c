"""The seeds' claims, measured on the demo's data (the numbers behind ``docs/results.md``).

Run ``PYTHONPATH=. python benchmarks/bench_claims.py`` from the repository root (about 35
minutes on two cores with the defaults; ``--quick`` runs ResNet-8 on one seed and two
targets in a few minutes). For every seed it calls :func:`tensornet_torch.demo.run_demo`
over the ratio ladder for every method: the dense ResNet-20 is trained on scikit-learn's
digits, each method compresses it to each whole-model parameter target with
``compress(ratio=...)`` (ADMM-TT trains under the constraint first, then finalizes), and
every compressed model is fine-tuned for the demo's 3 epochs. Then it runs ``tt`` once
more with as many fine-tuning epochs as ADMM-TT spends in all (ADMM epochs + fine-tuning),
the equal-budget baseline (``tt-long``). The dense model is the same in every call (same
seed, deterministic CPU training).

Three questions, three tables, every figure from this run:

1. Does RSDTR reach a higher compression than TR-SVD / TT at equal accuracy; do STT / STR
   reach more than TT / TR? Per method, the largest measured parameter compression whose
   fine-tuned accuracy (mean over seeds) stays within ``--tolerance`` of the dense
   accuracy, and the fine-tuned accuracy at each target.
2. Does ADMM beat one-shot decomposition + fine-tuning at equal compression? ADMM-TT
   against TT (same fine-tuning) and against TT with ADMM's whole epoch budget.
3. The raw rows (mean and min..max over seeds), also written as CSV with ``--csv``.

The test split has 450 images, so one image is 0.22 points of accuracy; differences of a
few tenths of a point between methods are within the spread over seeds printed here.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tensornet_torch.demo import DEMO_METHODS, DemoRow, run_demo


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, min and max over the seeds where the target was reachable (NaN: none)."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return math.nan, math.nan, math.nan
    return sum(kept) / len(kept), min(kept), max(kept)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-8, one seed, two targets")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--ratios", type=float, nargs="+", default=None)
    parser.add_argument("--methods", nargs="+", default=list(DEMO_METHODS))
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--csv", type=Path, default=None, help="write every row here")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    ratios = args.ratios or ([2.0, 8.0] if args.quick else [2.0, 4.0, 8.0, 16.0])
    tune, admm_epochs = (1, 2) if args.quick else (3, 5)

    rows: dict[tuple[str, float], list[DemoRow]] = defaultdict(list)
    dense: list[float] = []
    start = time.perf_counter()
    for seed in seeds:
        for methods, label, tune_epochs in (
            (args.methods, None, None),
            (["tt"], "tt-long", tune + admm_epochs),
        ):
            if label is not None and "admm-tt" not in args.methods:
                continue
            _, got = run_demo(
                quick=args.quick,
                seed=seed,
                methods=methods,
                ratios=ratios,
                progress=False,
                tune_epochs=tune_epochs,
            )
            for row in got:
                rows[(label or row.method, row.target)].append(row)
            if label is None:
                dense.append(got[0].acc_dense)
            print(
                f"seed {seed} {label or 'all methods'}: {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )

    dense_mean = sum(dense) / len(dense)
    labels = list(dict.fromkeys(label for label, _ in rows))
    print(
        f"# Claims on digits, {'ResNet-8' if args.quick else 'ResNet-20'}, seeds {seeds}, "
        f"dense accuracy {dense_mean:.4f} (mean; {min(dense):.4f}..{max(dense):.4f})\n"
    )

    print(f"## 1. Fine-tuned accuracy per target, and the reach within {args.tolerance:g}\n")
    head = " | ".join(f"{r:g}x" for r in ratios)
    print(f"| method | {head} | best params x within tolerance |")
    print("|---|" + "---|" * len(ratios) + "---|")
    for label in labels:
        cells, reach = [], 0.0
        for r in ratios:
            got = rows.get((label, r))
            if not got:
                cells.append("-")
                continue
            acc = _stats([g.acc_finetuned for g in got])[0]
            px = _stats([g.params_x for g in got])[0]
            if math.isnan(acc):
                cells.append("not reachable")
                continue
            cells.append(f"{acc:.4f} ({px:.1f}x)")
            if acc >= dense_mean - args.tolerance:
                reach = max(reach, px)
        print(f"| {label} | " + " | ".join(cells) + f" | {reach:.1f}x |")
    print(
        "\nEach cell: mean fine-tuned accuracy over seeds (mean achieved parameter compression).\n"
    )

    if "admm-tt" in labels:
        print("## 2. ADMM-TT against one-shot TT at equal compression\n")
        print(
            "| target | method | params x | acc compressed | acc fine-tuned | seconds |\n"
            "|---|---|---|---|---|---|"
        )
        for r in ratios:
            for label in ("tt", "tt-long", "admm-tt"):
                got = rows.get((label, r))
                if not got:
                    continue
                px = _stats([g.params_x for g in got])[0]
                comp = _stats([g.acc_compressed for g in got])
                tuned = _stats([g.acc_finetuned for g in got])
                sec = _stats([g.seconds for g in got])[0]
                print(
                    f"| {r:g}x | {label} | {px:.2f} | {comp[0]:.4f} ({comp[1]:.3f}..{comp[2]:.3f}) "
                    f"| {tuned[0]:.4f} ({tuned[1]:.3f}..{tuned[2]:.3f}) | {sec:.0f} |"
                )
        print(
            f"\ntt: {tune} fine-tuning epochs; tt-long: {tune + admm_epochs} "
            f"(ADMM-TT's {admm_epochs} ADMM epochs + {tune} fine-tuning).\n"
        )

    print("## 3. Every row (mean, min..max over seeds)\n")
    print(
        "| method | target | params x | MACs x | acc compressed | acc fine-tuned | seconds |\n"
        "|---|---|---|---|---|---|---|"
    )
    for (label, r), got in rows.items():
        if all(math.isnan(g.params_x) for g in got):
            print(f"| {label} | {r:g}x | not reachable | | | | |")
            continue
        comp = _stats([g.acc_compressed for g in got])
        tuned = _stats([g.acc_finetuned for g in got])
        print(
            f"| {label} | {r:g}x | {_stats([g.params_x for g in got])[0]:.2f} | "
            f"{_stats([g.macs_x for g in got])[0]:.2f} | "
            f"{comp[0]:.4f} ({comp[1]:.3f}..{comp[2]:.3f}) | "
            f"{tuned[0]:.4f} ({tuned[1]:.3f}..{tuned[2]:.3f}) | "
            f"{_stats([g.seconds for g in got])[0]:.0f} |"
        )
    print(f"\nTotal {time.perf_counter() - start:.0f} s.")
    if args.csv is not None:
        with args.csv.open("w", newline="") as handle:
            writer = csv.writer(handle)
            fields = list(DemoRow.__dataclass_fields__)
            writer.writerow(["label", "seed_index", *fields])
            for (label, _), got in rows.items():
                for i, g in enumerate(got):
                    writer.writerow([label, i, *(getattr(g, f) for f in fields)])


if __name__ == "__main__":
    main()
