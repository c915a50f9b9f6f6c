"""Out-of-core decompositions on dask: throughput against the in-memory path, and workers.

Run ``python benchmarks/bench_dask.py`` (needs ``tensornet[dask]``; ``--quick`` for a
smoke run). Every figure is measured in this run:

1. **In memory against out of core** on a tensor that fits: a TT of rank ``--rank`` with
   1e-3 relative noise, ``--shape`` (default 32^5 float64, 268 MB), written to a ``.npy``
   file in a temporary directory. Contestants, at the same ``rtol``:

   - ``tt_svd`` on the NumPy array (the in-memory path);
   - ``tt_svd`` on ``da.from_array`` of that array (the out-of-core code, data in memory);
   - ``tt_svd`` on ``open_npy`` of the file (out of core, read from the page cache);
   - the LAPACK floor: one ``np.linalg.svd(full_matrices=False)`` of the first unfolding.

   Each is timed ``--repeat`` times, interleaved; a time is the best run, a ratio the
   median over runs of the two times measured back to back. Peak resident memory of each
   out-of-core run is taken in a fresh process (``VmHWM``), against the file's size.
2. **Workers**: ``tt_svd`` of ``open_npy(file)`` on a ``dask.distributed.LocalCluster`` of 1
   and of 2 worker processes (one thread each), timed the same way; the speed-up of 2 over
   1. The same code runs on a real cluster: only the ``Client`` changes.

The chunking is ``--chunks`` (default: mode 0 and 1 whole, mode 2 split in 8).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tensornet as tn


def write_tensor(path: str, shape: tuple[int, ...], rank: int, seed: int) -> None:
    """A rank-``rank`` TT plus 1e-3 relative noise, written slab by slab."""
    rng = np.random.default_rng(seed)
    t = tn.random_tt(shape, rank, rng=rng)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
    for i in range(shape[0]):
        slab = np.asarray(t[i : i + 1].to_dense())[0]
        out[i] = slab + 1e-3 * np.sqrt(np.mean(slab**2)) * rng.standard_normal(slab.shape)
    out.flush()
    del out


def best_and_ratios(
    contestants: dict[str, Callable[[], Any]], baseline: str, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Best time per contestant and median ratio ``time(contestant) / time(baseline)``."""
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(repeat):
        for name, run in contestants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    best = {name: min(ts) for name, ts in times.items()}
    ratios = {
        name: statistics.median(a / b for a, b in zip(ts, times[baseline], strict=True))
        for name, ts in times.items()
    }
    return best, ratios


_PEAK = """
import json, sys, time, dask
import tensornet as tn
path, rtol, chunks = sys.argv[1], float(sys.argv[2]), tuple(json.loads(sys.argv[3]))
dask.config.set({"scheduler": "threads"})
def hwm():
    with open("/proc/self/status") as status:
        return int(next(l for l in status if l.startswith("VmHWM:")).split()[1]) * 1024
x = tn.open_npy(path, chunks=chunks)
before = hwm()
start = time.perf_counter()
t = tn.tt_svd(x, rtol=rtol)
print(json.dumps({"grown": hwm() - before, "seconds": time.perf_counter() - start,
                  "ranks": list(t.ranks)}))
"""


def peak_memory(path: str, rtol: float, chunks: Sequence[int]) -> dict[str, Any]:
    """Peak RSS growth of one out-of-core ``tt_svd`` in a fresh process (Linux only)."""
    if not os.path.exists("/proc/self/status"):
        return {}
    run = subprocess.run(
        [sys.executable, "-c", _PEAK, path, str(rtol), json.dumps(list(chunks))],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def relative_error(t: tn.TTTensor, x: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(t.to_dense()) - x) / np.linalg.norm(x))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="32,32,32,32,32")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--rtol", type=float, default=1e-2)
    parser.add_argument("--chunks", default=None, help="comma-separated; default 0,1 whole")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    import dask
    import dask.array as da

    shape = tuple(int(n) for n in args.shape.split(","))
    if args.quick:
        shape, args.repeat, args.workers = (16, 16, 16, 16), 1, "1"
    chunks = (
        tuple(int(c) for c in args.chunks.split(","))
        if args.chunks
        else (shape[0], shape[1], max(1, shape[2] // 8), *shape[3:])
    )
    size_mb = math.prod(shape) * 8 / 1e6
    print("## Out-of-core tt_svd on dask\n")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; numpy {np.__version__}, dask {dask.__version__}, "
        f"tensornet {tn.__version__}"
    )
    print(
        f"tensor: shape {shape} float64 ({size_mb:.0f} MB), TT rank {args.rank} + 1e-3 noise; "
        f"rtol {args.rtol}; chunks {chunks}; best of {args.repeat}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        write_tensor(path, shape, args.rank, 0)
        x = np.load(path)
        in_memory = da.from_array(x, chunks=chunks)
        on_disk = tn.open_npy(path, chunks=chunks)
        first = x.reshape(shape[0], -1)
        results: dict[str, Any] = {}

        def record(name: str, fn: Callable[[], tn.TTTensor]) -> Callable[[], None]:
            def run() -> None:
                results[name] = fn()

            return run

        with dask.config.set(scheduler="threads"):
            best, ratios = best_and_ratios(
                {
                    "LAPACK floor (one SVD of the first unfolding)": lambda: np.linalg.svd(
                        first, full_matrices=False
                    ),
                    "tt_svd, NumPy array (in memory)": record(
                        "memory", lambda: tn.tt_svd(x, rtol=args.rtol)
                    ),
                    "tt_svd, dask array of that array": record(
                        "dask", lambda: tn.tt_svd(in_memory, rtol=args.rtol)
                    ),
                    "tt_svd, dask array read from the file": record(
                        "file", lambda: tn.tt_svd(on_disk, rtol=args.rtol)
                    ),
                },
                "tt_svd, NumPy array (in memory)",
                args.repeat,
            )
        print("| contestant | time s | time / in-memory tt_svd | ranks | rel. error |")
        print("|---|---|---|---|---|")
        keys = [None, "memory", "dask", "file"]
        for (name, seconds), key in zip(best.items(), keys, strict=True):
            t = results.get(key) if key else None
            ranks = "" if t is None else str(t.ranks)
            err = "" if t is None else f"{relative_error(t, x):.2e}"
            print(f"| {name} | {seconds:.2f} | {ratios[name]:.2f} | {ranks} | {err} |")
        peak = peak_memory(path, args.rtol, chunks)
        if peak:
            print(
                f"\nout of core from the file, fresh process: peak memory growth "
                f"{peak['grown'] / 1e6:.0f} MB for a {size_mb:.0f} MB file "
                f"({size_mb * 1e6 / max(peak['grown'], 1):.1f}x smaller), {peak['seconds']:.2f} s"
            )
        counts = [int(w) for w in args.workers.split(",")]
        if counts:
            from dask.distributed import Client, LocalCluster

            print("\n| LocalCluster workers | time s | speed-up over 1 worker |")
            print("|---|---|---|")
            timings: dict[int, list[float]] = {}
            for n in counts:
                with (
                    LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                    ) as cluster,
                    Client(cluster),
                ):
                    tn.tt_svd(on_disk, rtol=args.rtol)  # warm-up: workers import tensornet
                    runs = []
                    for _ in range(args.repeat):
                        start = time.perf_counter()
                        tn.tt_svd(on_disk, rtol=args.rtol)
                        runs.append(time.perf_counter() - start)
                    timings[n] = runs
            base = min(timings[counts[0]])
            for n in counts:
                print(f"| {n} | {min(timings[n]):.2f} | {base / min(timings[n]):.2f} |")


if __name__ == "__main__":
    main()
