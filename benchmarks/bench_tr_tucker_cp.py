"""Tensor-ring, Tucker and CP benchmarks: tensornet against plain NumPy and TensorLy.

Run ``python benchmarks/bench_tr_tucker_cp.py`` (add ``--quick`` for a smoke run without the
(512, 512, 3, 3) kernels). Timing follows ``benchmarks/bench_tt.py``: each contestant is timed
with ``time.perf_counter`` over ``--repeat`` runs interleaved with its baseline, after one
warm-up run; times are the best run and a ratio is the median over the runs of the two times
measured back to back. Sections (issue 3, "Performance"):

* (i) ``tr_svd`` against TensorLy ``tensor_ring`` at the ranks tensornet chose and against a
  plain-LAPACK TR-SVD sweep written here (``np.linalg.svd(full_matrices=False)`` over the
  unfoldings, same ranks, same split of the first rank);
* (ii) ``tr_search`` (the RSDTR search) on conv kernels ``(T, T, 3, 3)``, Gaussian and
  low-TR-rank (a random ring plus noise of relative norm 1e-3): parameters against
  ``tr_svd(start=0)`` and TensorLy ``tensor_ring`` at the ``tr_svd(start=0)`` ranks, and time
  as a multiple of one ``tr_svd`` (goal <= 3x). The exhaustive search (``tr_search_candidates``,
  which reports every candidate and so runs every sweep to the end) is timed alongside as the
  cost of the search without pruning;
* (iii) ``hooi`` against TensorLy ``tucker`` and ``cp_als`` against TensorLy ``parafac`` at equal
  ranks and an equal number of sweeps (``tol=0``; SVD initialization for both).

Errors are relative Frobenius errors ``||x - approx|| / ||x||`` computed with plain NumPy from
each contestant's dense reconstruction.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tensornet
from tensornet import cp_als, hooi, tr_search, tr_search_candidates, tr_svd

try:
    import tensorly
    from tensorly.decomposition import parafac as tl_parafac
    from tensorly.decomposition import tensor_ring as tl_tensor_ring
    from tensorly.decomposition import tucker as tl_tucker

    tensorly.set_backend("numpy")
except ImportError:  # the TensorLy columns are optional
    tensorly = None
    tl_parafac = tl_tensor_ring = tl_tucker = None

SEED = 20240607
Cores = list[np.ndarray]


# -- timing ----------------------------------------------------------------------------------------
def measure(funcs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """Wall times (s) of ``repeat`` interleaved runs of each function, after one warm-up run."""
    for f in funcs.values():
        f()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for i in range(repeat):
        order = list(funcs.items())
        for name, f in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over the runs of ``time(a) / time(b)``, each pair measured back to back."""
    return statistics.median(ta / tb for ta, tb in zip(times[a], times[b]))


# -- plain NumPy baselines and helpers -------------------------------------------------------------
def plain_tr_svd(x: np.ndarray, ranks: Sequence[int]) -> Cores:
    """TR-SVD from mode 0 with np.linalg.svd(full_matrices=False), keeping the given ranks.

    ``ranks`` are the d + 1 ring ranks (``ranks[0] == ranks[-1] = r0``); the first rank
    ``r0 * r1`` is split with the ``r0`` index major, as tensornet and TensorLy do.
    """
    d = x.ndim
    r0, r1 = ranks[0], ranks[1]
    u, s, vh = np.linalg.svd(x.reshape(x.shape[0], -1), full_matrices=False)
    cores = [u[:, : r0 * r1].reshape(x.shape[0], r0, r1).transpose(1, 0, 2)]
    carry = (s[: r0 * r1, None] * vh[: r0 * r1]).reshape(r0, r1, -1).transpose(1, 2, 0)
    for k in range(1, d - 1):
        mat = carry.reshape(ranks[k] * x.shape[k], -1)
        u, s, vh = np.linalg.svd(mat, full_matrices=False)
        r = ranks[k + 1]
        cores.append(u[:, :r].reshape(ranks[k], x.shape[k], r))
        carry = s[:r, None] * vh[:r]
    cores.append(carry.reshape(ranks[d - 1], x.shape[d - 1], r0))
    return cores


def ring_dense(cores: Sequence[np.ndarray]) -> np.ndarray:
    """Contract ring cores ``(r_k, n_k, r_{k+1})`` into the full tensor.

    The ring is cut at its smallest bond, so the intermediate holds ``min(r)^2 * numel``
    entries (cutting at a large bond can take gigabytes on the kernels below).
    """
    d = len(cores)
    cut = min(range(d), key=lambda k: int(cores[k].shape[0]))
    out = cores[cut]
    for k in range(1, d):
        out = np.tensordot(out, cores[(cut + k) % d], axes=(-1, 0))
    return np.moveaxis(
        np.trace(out, axis1=0, axis2=-1), list(range(d)), [(cut + k) % d for k in range(d)]
    )


def rel_err(x: np.ndarray, approx: np.ndarray) -> float:
    return float(np.linalg.norm(x - approx) / np.linalg.norm(x))


def random_ring(rng: np.random.Generator, shape: Sequence[int], ranks: Sequence[int]) -> Cores:
    d = len(shape)
    return [rng.standard_normal((ranks[k], n, ranks[(k + 1) % d])) for k, n in enumerate(shape)]


def plus_noise(rng: np.random.Generator, x: np.ndarray, noise: float) -> np.ndarray:
    e = rng.standard_normal(x.shape)
    return x + noise * np.linalg.norm(x) / np.linalg.norm(e) * e


def low_tucker(rng: np.random.Generator, shape: Sequence[int], ranks: Sequence[int]) -> np.ndarray:
    x = rng.standard_normal(tuple(ranks))
    for k, (n, r) in enumerate(zip(shape, ranks)):
        q = np.linalg.qr(rng.standard_normal((n, r)))[0]
        x = np.moveaxis(np.tensordot(q, x, axes=(1, k)), 0, k)
    return x


def low_cp(rng: np.random.Generator, shape: Sequence[int], rank: int) -> np.ndarray:
    factors = [rng.standard_normal((n, rank)) for n in shape]
    out = factors[0]
    for f in factors[1:]:
        out = np.einsum("...r,nr->...nr", out, f)
    return out.sum(axis=-1)


def ms(t: float) -> str:
    return f"{1e3 * t:.1f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ranks(ranks: Sequence[int]) -> str:
    return ",".join(str(r) for r in ranks[:-1])


# -- (i) tr_svd vs TensorLy tensor_ring and the plain LAPACK sweep ---------------------------------
def bench_tr_svd(cases: list[tuple[str, np.ndarray, dict[str, Any]]], repeat: int) -> list[str]:
    rows = []
    for name, x, kwargs in cases:
        t = tr_svd(x, **kwargs)
        ranks = list(t.ranks)
        funcs: dict[str, Callable[[], Any]] = {
            "tr_svd": lambda: tr_svd(x, **kwargs),  # noqa: B023 (measured before x changes)
            "plain": lambda: plain_tr_svd(x, ranks),  # noqa: B023
        }
        if tl_tensor_ring is not None:
            funcs["tensorly"] = lambda: tl_tensor_ring(x, rank=list(ranks))  # noqa: B023
        times = measure(funcs, repeat)
        err = rel_err(x, ring_dense(t.cores))
        err_plain = rel_err(x, ring_dense(plain_tr_svd(x, ranks)))
        row = [
            name,
            ", ".join(f"{k}={v}" for k, v in kwargs.items()),
            fmt_ranks(ranks),
            ms(min(times["tr_svd"])),
            ms(min(times["plain"])),
            f"{ratio(times, 'tr_svd', 'plain'):.2f}",
        ]
        if tl_tensor_ring is not None:
            tl_t = tl_tensor_ring(x, rank=list(ranks))
            err_tl = f"{rel_err(x, ring_dense(list(tl_t.factors))):.3e}"
            row += [ms(min(times["tensorly"])), f"{ratio(times, 'tr_svd', 'tensorly'):.2f}"]
        else:
            err_tl = "-"
            row += ["-", "-"]
        rows.append([*row, f"{err:.3e}", f"{err_plain:.3e}", err_tl])
    header = [
        "tensor",
        "options",
        "ranks r0..r_{d-1}",
        "tr_svd ms",
        "LAPACK sweep ms",
        "tr_svd / LAPACK",
        "TensorLy ms",
        "tr_svd / TensorLy",
        "err tr_svd",
        "err LAPACK",
        "err TensorLy",
    ]
    return [
        "### (i) tr_svd vs the plain LAPACK sweep and TensorLy `tensor_ring` (equal ranks)",
        "",
        table(header, rows),
    ]


# -- (ii) tr_search on conv kernels ----------------------------------------------------------------
def bench_search(cases: list[tuple[str, np.ndarray, float]], repeat: int) -> list[str]:
    """Prints its table row by row and returns nothing more to print."""
    header = [
        "kernel",
        "rtol",
        "tr_search params (err)",
        "chosen",
        "tr_svd(start=0) params (err)",
        "TensorLy at tr_svd ranks params (err)",
        "tr_svd / tr_search params",
        "heuristic params",
        "tr_svd ms",
        "tr_search / tr_svd time",
        "heuristic / tr_svd time",
        "exhaustive / tr_svd time",
    ]
    print("### (ii) tr_search (RSDTR) on conv kernels: parameters and time in units of one tr_svd")
    print()
    print(table(header, []))  # rows follow as they are measured (a long run keeps its output)
    for name, x, rtol in cases:
        funcs: dict[str, Callable[[], Any]] = {
            "tr_svd": lambda: tr_svd(x, rtol=rtol),  # noqa: B023 (measured before x changes)
            "search": lambda: tr_search(x, rtol=rtol),  # noqa: B023
            "heuristic": lambda: tr_search(x, rtol=rtol, heuristic=True),  # noqa: B023
            "exhaustive": lambda: tr_search_candidates(x, rtol=rtol),  # noqa: B023
        }
        times = measure(funcs, repeat)
        base = tr_svd(x, rtol=rtol)
        best = tr_search(x, rtol=rtol)
        heur = tr_search(x, rtol=rtol, heuristic=True)
        chosen = tr_search_candidates(x, rtol=rtol)[0]
        assert best.ranks == chosen.ranks and best.num_params == chosen.num_params
        if tl_tensor_ring is not None:
            tl_t = tl_tensor_ring(x, rank=list(base.ranks))
            tl_params = sum(int(f.size) for f in tl_t.factors)
            tl_cell = f"{tl_params} ({rel_err(x, ring_dense(list(tl_t.factors))):.3f})"
        else:
            tl_cell = "-"
        row = [
            name,
            f"{rtol:g}",
            f"{best.num_params} ({rel_err(x, ring_dense(best.cores)):.3f})",
            f"start {chosen.start}, r0 {chosen.r0}: {fmt_ranks(best.ranks)}",
            f"{base.num_params} ({rel_err(x, ring_dense(base.cores)):.3f})",
            tl_cell,
            f"{base.num_params / best.num_params:.2f}",
            f"{heur.num_params}",
            ms(min(times["tr_svd"])),
            f"{ratio(times, 'search', 'tr_svd'):.2f}",
            f"{ratio(times, 'heuristic', 'tr_svd'):.2f}",
            f"{ratio(times, 'exhaustive', 'tr_svd'):.2f}",
        ]
        print("| " + " | ".join(row) + " |", flush=True)
    return []


# -- (iii) hooi vs TensorLy tucker, cp_als vs TensorLy parafac -------------------------------------
def bench_tucker_cp(
    tucker_cases: list[tuple[str, np.ndarray, tuple[int, ...], int]],
    cp_cases: list[tuple[str, np.ndarray, int, int]],
    repeat: int,
) -> list[str]:
    if tensorly is None:
        return [
            "### (iii) hooi / cp_als vs TensorLy",
            "",
            "note: tensorly is not importable; skipped",
        ]
    rows = []
    for name, x, ranks, n_iter in tucker_cases:

        def ours(x: np.ndarray = x, ranks: tuple[int, ...] = ranks, n: int = n_iter) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", tensornet.ConvergenceWarning)
                return hooi(x, ranks, n_iter_max=n, tol=0.0)

        def theirs(x: np.ndarray = x, ranks: tuple[int, ...] = ranks, n: int = n_iter) -> Any:
            return tl_tucker(x, rank=list(ranks), n_iter_max=n, init="svd", tol=0.0)

        times = measure({"ours": ours, "theirs": theirs}, repeat)
        err = rel_err(x, ours().to_dense())
        err_tl = rel_err(x, tensorly.tucker_to_tensor(theirs()))
        rows.append(
            [
                f"hooi vs tucker: {name}",
                f"ranks {ranks}, {n_iter} sweeps",
                ms(min(times["ours"])),
                ms(min(times["theirs"])),
                f"{ratio(times, 'ours', 'theirs'):.2f}",
                f"{err:.4e}",
                f"{err_tl:.4e}",
            ]
        )
    for name, x, rank, n_iter in cp_cases:

        def ours_cp(x: np.ndarray = x, rank: int = rank, n: int = n_iter) -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", tensornet.ConvergenceWarning)
                return cp_als(x, rank, n_iter_max=n, tol=0.0, init="svd")

        def theirs_cp(x: np.ndarray = x, rank: int = rank, n: int = n_iter) -> Any:
            return tl_parafac(x, rank, n_iter_max=n, init="svd", tol=0.0)

        times = measure({"ours": ours_cp, "theirs": theirs_cp}, repeat)
        err = rel_err(x, ours_cp().to_dense())
        err_tl = rel_err(x, tensorly.cp_to_tensor(theirs_cp()))
        rows.append(
            [
                f"cp_als vs parafac: {name}",
                f"rank {rank}, {n_iter} sweeps",
                ms(min(times["ours"])),
                ms(min(times["theirs"])),
                f"{ratio(times, 'ours', 'theirs'):.2f}",
                f"{err:.4e}",
                f"{err_tl:.4e}",
            ]
        )
    header = [
        "case",
        "setting",
        "tensornet ms",
        "TensorLy ms",
        "tensornet / TensorLy",
        "err tensornet",
        "err TensorLy",
    ]
    return [
        "### (iii) hooi vs TensorLy `tucker`, cp_als vs TensorLy `parafac` (equal rank and sweeps)",
        "",
        table(header, rows),
    ]


def machine() -> str:
    versions = [f"numpy {np.__version__}", f"tensornet {tensornet.__version__}"]
    versions.append(f"tensorly {tensorly.__version__}" if tensorly else "tensorly: not installed")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {', '.join(versions)}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="no 512 kernels, few repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per contestant")
    parser.add_argument("--max-kernel", type=int, default=512, help="largest T of (T, T, 3, 3)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 5)
    rng = np.random.default_rng(SEED)

    print("## Tensor ring, Tucker and CP benchmarks\n")
    print(f"machine: {machine()}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy (load average above half the cores); timings suffer")
    quick = " (--quick)" if args.quick else ""
    print(f"seed {SEED}, times: best of {repeat} runs, ratios: median of paired runs{quick}\n")
    if tensorly is None:
        print("note: tensorly is not importable; the TensorLy columns are skipped\n")

    ring5 = plus_noise(rng, ring_dense(random_ring(rng, (16,) * 5, (3, 4, 5, 4, 3))), 1e-3)
    svd_cases: list[tuple[str, np.ndarray, dict[str, Any]]] = [
        ("ring(3,4,5,4,3)+1e-3 noise (16,)^5", ring5, {"rtol": 1e-2}),
        ("gaussian (12,)^5", rng.standard_normal((12,) * 5), {"max_rank": 16}),
        ("gaussian kernel (256, 256, 3, 3)", rng.standard_normal((256, 256, 3, 3)), {"rtol": 0.3}),
    ]
    print("\n".join(bench_tr_svd(svd_cases, repeat)), "\n")

    sizes = [n for n in (64, 128, 256, 512) if n <= (256 if args.quick else args.max_kernel)]
    search_cases = []
    for n in sizes:
        search_cases.append((f"gaussian ({n}, {n}, 3, 3)", rng.standard_normal((n, n, 3, 3)), 0.3))
        ring = ring_dense(random_ring(rng, (n, n, 3, 3), (4, 8, 3, 3)))
        search_cases.append(
            (f"ring(4,8,3,3)+1e-3 noise ({n}, {n}, 3, 3)", plus_noise(rng, ring, 1e-3), 1e-2)
        )
    bench_search(search_cases, max(2, repeat - 2))
    print()

    n3 = 40 if args.quick else 80
    tucker_cases = [
        (
            f"multilinear rank 10 + 1e-2 noise ({n3},)^3",
            plus_noise(rng, low_tucker(rng, (n3,) * 3, (10,) * 3), 1e-2),
            (10, 10, 10),
            10,
        ),
        ("gaussian (128, 128, 3, 3)", rng.standard_normal((128, 128, 3, 3)), (32, 32, 3, 3), 10),
    ]
    cp_cases = [
        (
            f"CP rank 8 + 1e-2 noise ({n3},)^3",
            plus_noise(rng, low_cp(rng, (n3,) * 3, 8), 1e-2),
            8,
            25,
        ),
        (
            "CP rank 5 + 1e-2 noise (20,)^4",
            plus_noise(rng, low_cp(rng, (20,) * 4, 5), 1e-2),
            5,
            25,
        ),
    ]
    print("\n".join(bench_tucker_cp(tucker_cases, cp_cases, repeat)))
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
