"""Semi-tensor-product benchmarks: the STP primitives and the STP formats' error per parameter.

Run ``python benchmarks/bench_stp.py`` from the repository root (about 6-7 minutes on two
cores; ``--quick`` shrinks every size for a smoke run of about 10 seconds). Every figure is
measured in the same run. Two sections:

* (a) ``stp`` and ``stp_right`` against the explicit Kronecker formulas
  ``(A ⊗ I_{t/n}) @ (B ⊗ I_{t/p})`` and ``(I_{t/n} ⊗ A) @ (I_{t/p} ⊗ B)`` (``np.kron`` with
  ``np.eye``; a factor ``I_1`` is left out, so the baseline never copies an operand for
  nothing), ``t = lcm(n, p)``, on A (m, n), B (p, q) with ``n = k p``, ``p = k n`` and
  general ``lcm`` cases. Times follow ``benchmarks/bench_tt.py``: best of ``--repeat`` runs
  interleaved with the baseline after one warm-up, and the ratio is the median over the runs
  of the two times measured back to back. Peak memory is the ``tracemalloc`` peak above the
  level before the call, in a separate untimed call (NumPy reports its array allocations to
  ``tracemalloc``; BLAS work buffers are not seen), output included. Results are checked with
  ``np.allclose`` (asserted); when the Kronecker operands and product would take more than
  2 GiB the baseline is skipped and sampled entries of the result are checked against the
  index formula of the Kronecker products instead.
* (b) error against the number of stored parameters: ``stt_fit`` / ``str_fit`` /
  ``sttucker_fit`` at ``k`` in {1, 2, 4} and several ranks against ``tt_svd``, ``tr_svd``,
  ``tr_als`` and ``hooi`` on the same tensors: an STT-generated and a TT-generated tensor
  (plus 1% Gaussian noise each), scikit-learn's digits and one of its sample images. For
  every fit: parameters, compression (dense size / parameters), relative error
  ``||x - approx|| / ||x||`` (plain NumPy, from the dense reconstruction), time of one fit,
  and sweeps. Then, per dataset, the best error of each family within a few parameter budgets.

An STR of ranks ``R`` and ``k`` is exactly the TR of ranks ``R / k`` whose first core is the
partial trace of ``G_0`` (``str_to_tr(compact=True)``): its first core stores ``k**2`` times
more entries than that TR needs, so at matched parameters STR is expected to be dominated by
TR. An STT of ranks ``R`` and ``k`` is exactly a TR of ring ranks ``(k, R/k, ..., R/k)`` with
the same number of stored entries (checked in the script): a TR with a non-uniform ring.
The tables report what is measured; nothing is tuned per format.

Options: ``--quick``, ``--repeat N`` (timed runs in (a)), ``--skip-stp`` / ``--skip-fits`` (run
one section). Fit progress goes to stderr; the tables go to stdout.
"""

from __future__ import annotations

import argparse
import functools
import gc
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import tensornet
from tensornet import (
    hooi,
    random_stt,
    random_tt,
    str_fit,
    str_to_tr,
    stt_fit,
    sttucker_fit,
    tr_als,
    tr_svd,
    tt_svd,
)
from tensornet.stp import stp, stp_right

SEED = 20240607
GIB = 2.0**30
KRON_LIMIT = 2 * GIB


# -- timing and memory -----------------------------------------------------------------------------
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


def peak_bytes(f: Callable[[], Any]) -> int:
    """Peak traced allocation (bytes) during ``f()`` above the level before it, output included."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = f()
        peak = tracemalloc.get_traced_memory()[1] - before
        del out
    finally:
        tracemalloc.stop()
    return peak


def ms(t: float) -> str:
    return f"{1e3 * t:.3g}"


def mib(b: float) -> str:
    return f"{b / 2**20:.3g}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- (a) stp / stp_right against the Kronecker formulas --------------------------------------------
def kron_left(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A ⊗ I_{t/n}) @ (B ⊗ I_{t/p})`` with ``np.kron``; a factor ``I_1`` is left out."""
    t = math.lcm(a.shape[1], b.shape[0])
    alpha, beta = t // a.shape[1], t // b.shape[0]
    ka = a if alpha == 1 else np.kron(a, np.eye(alpha))
    kb = b if beta == 1 else np.kron(b, np.eye(beta))
    return ka @ kb


def kron_right(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(I_{t/n} ⊗ A) @ (I_{t/p} ⊗ B)`` with ``np.kron``; a factor ``I_1`` is left out."""
    t = math.lcm(a.shape[1], b.shape[0])
    alpha, beta = t // a.shape[1], t // b.shape[0]
    ka = a if alpha == 1 else np.kron(np.eye(alpha), a)
    kb = b if beta == 1 else np.kron(np.eye(beta), b)
    return ka @ kb


def kron_bytes(a: np.ndarray, b: np.ndarray) -> int:
    """Bytes of the two Kronecker operands and the product (np.kron's temporaries not counted)."""
    (m, n), (p, q) = a.shape, b.shape
    t = math.lcm(n, p)
    alpha, beta = t // n, t // p
    entries = (m * alpha * t if alpha > 1 else 0) + (t * q * beta if beta > 1 else 0)
    return 8 * (entries + m * alpha * q * beta)


def sampled_check(
    a: np.ndarray, b: np.ndarray, out: np.ndarray, right: bool, rng: np.random.Generator
) -> int:
    """Check 64 random entries of ``out`` against the Kronecker formula entry by entry.

    ``(A ⊗ I_alpha)[i alpha + u, s] = A[i, s // alpha] [s % alpha == u]`` and
    ``(I_alpha ⊗ A)[u m + i, s] = A[i, s % n] [s // n == u]`` (same for B), summed over
    ``s < t`` without forming either product.
    """
    (m, n), (p, q) = a.shape, b.shape
    t = math.lcm(n, p)
    alpha, beta = t // n, t // p
    s = np.arange(t)
    for _ in range(64):
        row, col = int(rng.integers(m * alpha)), int(rng.integers(q * beta))
        if right:
            (u, i), (v, kk) = divmod(row, m), divmod(col, q)
            left = a[i, s % n] * (s // n == u)
            rgt = b[s % p, kk] * (s // p == v)
        else:
            (i, u), (kk, v) = divmod(row, alpha), divmod(col, beta)
            left = a[i, s // alpha] * (s % alpha == u)
            rgt = b[s // beta, kk] * (s % beta == v)
        want = float(left @ rgt)
        assert np.isclose(out[row, col], want, rtol=1e-9, atol=1e-9 * (1 + abs(want))), (
            row,
            col,
        )
    return 64


def bench_stp(quick: bool, repeat: int, rng: np.random.Generator) -> None:
    s = 4 if quick else 1  # --quick divides the large sides by 4
    cases = [
        ("n = 2p (k=2)", (1024 // s, 1024 // s), (512 // s, 512 // s)),
        ("n = 4p (k=4)", (1024 // s, 1024 // s), (256 // s, 256 // s)),
        ("n = 8p (k=8)", (64 // s, 1024 // s), (128 // s, 64 // s)),
        ("p = 2n (k=2)", (512 // s, 512 // s), (1024 // s, 1024 // s)),
        ("p = 4n (k=4)", (256 // s, 256 // s), (1024 // s, 1024 // s)),
        ("p = 8n (k=8)", (1024 // s, 128 // s), (1024 // s, 64 // s)),
        ("lcm: n=6, p=4", (4, 6), (4, 5)),
        (f"lcm: n={768 // s}, p={1024 // s}", (256 // s, 768 // s), (1024 // s, 256 // s)),
        ("lcm: n=1000, p=1024", (16, 1000), (1024, 16)),
    ]
    header = [
        "product",
        "case",
        "A",
        "B",
        "t/n, t/p",
        "output",
        "stp / stp_right ms",
        "kron ms",
        "kron / stp time",
        "stp peak MiB",
        "kron peak MiB",
        "kron / stp memory",
        "check",
    ]
    print("### (a) stp / stp_right vs the explicit Kronecker formula")
    print()
    print(
        "left: `stp(A, B)` vs `(A ⊗ I_{t/n}) @ (B ⊗ I_{t/p})`; right: `stp_right(A, B)` vs "
        "`(I_{t/n} ⊗ A) @ (I_{t/p} ⊗ B)`; t = lcm(n, p); float64. Times: best of "
        f"{repeat} runs; time ratio: median of paired runs; peak: tracemalloc peak of one call "
        "above the level before it (output included). Ratios above 1 favour stp / stp_right."
    )
    print()
    print(table(header, []), flush=True)
    for name, (m, n), (p, q) in cases:
        a = rng.standard_normal((m, n))
        b = rng.standard_normal((p, q))
        t = math.lcm(n, p)
        alpha, beta = t // n, t // p
        need = kron_bytes(a, b)
        for label, ours, theirs, right in (
            ("left", stp, kron_left, False),
            ("right", stp_right, kron_right, True),
        ):
            out = ours(a, b)
            row = [
                label,
                name,
                f"{m}x{n}",
                f"{p}x{q}",
                f"{alpha}, {beta}",
                "x".join(map(str, out.shape)),
            ]
            funcs: dict[str, Callable[[], Any]] = {"stp": functools.partial(ours, a, b)}
            if need <= KRON_LIMIT:
                funcs["kron"] = functools.partial(theirs, a, b)
                want = theirs(a, b)
                assert out.shape == want.shape and np.allclose(out, want), (label, name)
                check = "allclose"
                del want
            else:
                check = f"{sampled_check(a, b, out, right, rng)} entries"
            del out
            times = measure(funcs, repeat)
            stp_peak = peak_bytes(funcs["stp"])
            row += [ms(min(times["stp"]))]
            if "kron" in funcs:
                kron_peak = peak_bytes(funcs["kron"])
                row += [
                    ms(min(times["kron"])),
                    f"{ratio(times, 'kron', 'stp'):.2f}",
                    mib(stp_peak),
                    mib(kron_peak),
                    f"{kron_peak / stp_peak:.2f}" if stp_peak else "-",
                ]
            else:
                row += [
                    f"skipped (kron would allocate {need / GIB:.1f} GiB)",
                    "-",
                    mib(stp_peak),
                    "-",
                    "-",
                ]
            print("| " + " | ".join([*row, check]) + " |", flush=True)
    print()


# -- (b) error against parameters ------------------------------------------------------------------
@dataclass
class Fit:
    family: str
    setting: str
    params: int
    err: float
    seconds: float
    sweeps: str
    note: str = ""


def rel_err(x: np.ndarray, approx: np.ndarray) -> float:
    return float(np.linalg.norm(x - approx) / np.linalg.norm(x))


def plus_noise(rng: np.random.Generator, x: np.ndarray, noise: float) -> np.ndarray:
    e = rng.standard_normal(x.shape)
    return x + noise * np.linalg.norm(x) / np.linalg.norm(e) * e


def run_fit(
    x: np.ndarray,
    family: str,
    setting: str,
    fit: Callable[[Callable[[int, float], None] | None], Any],
    iterative: bool,
    has_callback: bool,
    n_iter_max: int,
) -> tuple[Fit, Any]:
    """Time one fit, count its sweeps, measure its error from the dense reconstruction."""
    sweeps: list[int] = []

    def callback(sweep: int, _err: float) -> None:
        sweeps.append(sweep)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", tensornet.ConvergenceWarning)
        start = time.perf_counter()
        t = fit(callback if has_callback else None)
        seconds = time.perf_counter() - start
    hit_max = any(issubclass(w.category, tensornet.ConvergenceWarning) for w in caught)
    if not iterative:
        done = "-"
    elif sweeps:
        done = f"{sweeps[-1]}{' (max)' if hit_max else ''}"
    else:
        done = f"max {n_iter_max}" if hit_max else f"< {n_iter_max}"
    return Fit(family, setting, int(t.num_params), rel_err(x, t.to_dense()), seconds, done), t


FAMILY_PAIRS = [
    ("TT-SVD", "TT-ALS (STT k=1)", "STT k=2", "STT k=4"),
    ("TR-SVD", "TR-ALS", "STR k=2", "STR k=4"),
    ("Tucker (HOOI)", "STTucker k=1", "STTucker k=2", "STTucker k=4"),
]


@dataclass
class Grid:
    tt_svd: Sequence[int]  # max_rank of tt_svd
    stt: dict[int, Sequence[int]]  # k -> ranks R of stt_fit (k must divide them)
    tr_svd: Sequence[int]  # max_rank of tr_svd
    tr_als: Sequence[int]  # ranks of tr_als
    str_: Sequence[int]  # ranks R of str_fit
    tucker: Sequence[int]  # uniform multilinear ranks, capped at the mode sizes


def stt_as_tr(t: Any) -> Any:
    """The TR that an STT equals, with the same stored entries: ring ranks ``(k, R/k, ..., R/k)``.

    ``G_0`` is ``(1, n_0, R_1)`` with bond index ``(a, s)``, ``a < R_1 / k``, ``s < k`` (C order)
    and ``G_{d-1}`` is ``(R_{d-1}, n_{d-1}, 1)`` with ``(c, s)``; the chain
    ``G_0 (G_1 ⊗ I_k) ... (G_{d-2} ⊗ I_k) G_{d-1}`` carries ``s`` unchanged from end to end,
    so it is the trace of the ring ``G_0'[s, i, a] G_1 ... G_{d-2} G_{d-1}'[c, l, s]``.
    """
    k, g = t.k, [np.asarray(c) for c in t.cores]
    n0, r1 = g[0].shape[1], g[0].shape[2]
    rl, nl = g[-1].shape[0], g[-1].shape[1]
    first = g[0][0].reshape(n0, r1 // k, k).transpose(2, 0, 1)
    last = g[-1][:, :, 0].reshape(rl // k, k, nl).transpose(0, 2, 1)
    return tensornet.TRTensor([first, *g[1:-1], last])


def fits_for(
    x: np.ndarray, grid: Grid, n_iter_max: int, tol: float, tucker_modes: tuple[int, ...]
) -> list[Fit]:
    shape = x.shape
    out: list[Fit] = []

    def add(
        family: str,
        setting: str,
        func: Callable[..., Any],
        *args: Any,
        iterative: bool = True,
        has_callback: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Fit ``func(x, *args, **kwargs)`` (plus ``callback=`` when it takes one), record it."""

        def fit(cb: Callable[[int, float], None] | None) -> Any:
            extra = {} if cb is None else {"callback": cb}
            return func(x, *args, **kwargs, **extra)

        has_callback = has_callback and iterative
        try:
            f, t = run_fit(x, family, setting, fit, iterative, has_callback, n_iter_max)
        except Exception as exc:  # reported, not hidden: the row says the fit failed
            print(f"  {family:18s} {setting:22s} FAILED: {type(exc).__name__}: {exc}")
            out.append(Fit(family, setting, 0, math.nan, math.nan, "-", f"failed: {exc}"))
            return None
        out.append(f)
        print(
            f"  {family:18s} {setting:22s} params {f.params:7d}  err {f.err:.4f}  "
            f"{f.seconds:6.2f} s  sweeps {f.sweeps}",
            file=sys.stderr,
            flush=True,
        )
        return t

    als: dict[str, Any] = {"n_iter_max": n_iter_max, "tol": tol}
    for r in grid.tt_svd:
        add("TT-SVD", f"max_rank={r}", tt_svd, max_rank=r, rng=SEED, iterative=False)
    for k in (1, 2, 4):
        family = "TT-ALS (STT k=1)" if k == 1 else f"STT k={k}"
        for r in grid.stt[k]:
            if r % k == 0:
                add(family, f"R={r}, k={k}", stt_fit, r, k=k, rng=SEED, **als)
    for r in grid.tr_svd:
        add("TR-SVD", f"max_rank={r}", tr_svd, max_rank=r, rng=SEED, iterative=False)
    tr_fits: dict[int, Fit] = {}
    for r in grid.tr_als:
        if add("TR-ALS", f"R={r}", tr_als, r, rng=SEED, has_callback=False, **als) is not None:
            tr_fits[r] = out[-1]
    for k in (2, 4):
        for r in grid.str_:
            if r % k:
                continue
            t = add(f"STR k={k}", f"R={r}, k={k}", str_fit, r, k=k, rng=SEED, **als)
            if t is None:
                continue
            compact = str_to_tr(t, compact=True)
            same = tr_fits.get(r // k)
            out[-1].note = f"= TR ranks {r // k}: {compact.num_params} params" + (
                f" (TR-ALS R={r // k}: err {same.err:.4f})" if same is not None else ""
            )
    seen: set[tuple[int, ...]] = set()
    for r in grid.tucker:
        ranks = tuple(min(r, shape[m]) for m in tucker_modes)
        if ranks in seen:
            continue
        seen.add(ranks)
        text = ",".join(map(str, ranks))
        add(
            "Tucker (HOOI)",
            f"ranks {text}",
            hooi,
            ranks,
            modes=tucker_modes,
            rng=SEED,
            has_callback=False,
            **als,
        )
        for k in (1, 2, 4):
            if any(rr % k or shape[m] % k for rr, m in zip(ranks, tucker_modes)):
                continue
            add(
                f"STTucker k={k}",
                f"ranks {text}, k={k}",
                sttucker_fit,
                ranks,
                k=k,
                modes=tucker_modes,
                rng=SEED,
                **als,
            )
    return out


def report(name: str, x: np.ndarray, fits: list[Fit], budgets: Sequence[int]) -> None:
    size = x.size
    rows = [
        [
            f.family,
            f.setting,
            str(f.params) if f.params else "-",
            f"{size / f.params:.1f}" if f.params else "-",
            f"{f.err:.4f}",
            f"{f.seconds:.2f}",
            f.sweeps,
            f.note,
        ]
        for f in fits
    ]
    header = ["format", "setting", "params", "compression", "rel. error", "fit s", "sweeps", "note"]
    print()
    print(f"#### {name}: all fits (dense size {size})")
    print()
    print(table(header, rows))
    print()
    print(f"#### {name}: best error at <= P parameters (error, parameters of that fit)")
    print()
    families = [fam for group in FAMILY_PAIRS for fam in group]
    bud_rows = []
    previous = 0
    for budget in budgets:
        if not any(0 < f.params <= budget for f in fits):
            previous = budget
            continue
        row = [f"{budget} (x{size / budget:.0f})"]
        for fam in families:
            ok = [f for f in fits if f.family == fam and 0 < f.params <= budget]
            best = min(ok, key=lambda f: f.err) if ok else None
            # '*': this family has no fit in (previous budget, P]; the entry is a smaller one
            star = "" if any(f.params > previous for f in ok) else "*"
            row.append(f"{best.err:.3f} ({best.params}){star}" if best else "-")
        bud_rows.append(row)
        previous = budget
    print(table(["P (compression)", *families], bud_rows))
    print()
    print(
        "`*`: the family has no fit with more than the previous budget's parameters and at "
        "most P (its rank grid stops below P), so the entry repeats a smaller fit."
    )
    print(flush=True)


def load_datasets(quick: bool, rng: np.random.Generator) -> list[tuple[str, np.ndarray, tuple]]:
    """(name, tensor, modes factored by Tucker / STTucker)."""
    data: list[tuple[str, np.ndarray, tuple]] = []
    shape = (4,) * 5 if quick else (8,) * 5
    stt = random_stt(shape, 4 if quick else 8, k=2, rng=SEED).to_dense()
    data.append(
        (
            f"STT-generated {shape}, ranks {4 if quick else 8}, k=2, + 1% noise",
            plus_noise(rng, stt, 1e-2),
            tuple(range(len(shape))),
        )
    )
    tt = random_tt(shape, 4 if quick else 8, rng=SEED).to_dense()
    data.append(
        (
            f"TT-generated {shape}, ranks {4 if quick else 8}, + 1% noise",
            plus_noise(rng, tt, 1e-2),
            tuple(range(len(shape))),
        )
    )
    try:
        from sklearn.datasets import load_digits, load_sample_images
    except ImportError as exc:
        print(f"note: scikit-learn is not importable ({exc}); real-data rows skipped")
        return data
    # Digits: 1797 grey 8x8 images (values 0..16). The first 1024 (256 with --quick) form a
    # (1024, 8, 8) array; the image index is split into three base-8/16 digits i = 64 a + 8 b + c
    # (C order), giving a 5-way (16, 8, 8, 8, 8) tensor (image block a, b, c, pixel row, pixel
    # column). Its dense size is 1024 * 64 = 65536 (= 4**8; a (4,)*10 reshape would need 4**10).
    n_img = 256 if quick else 1024
    digits = load_digits().images[:n_img].astype(np.float64)
    dshape = (n_img // 64, 8, 8, 8, 8)
    data.append((f"digits {n_img}x8x8 as {dshape}", digits.reshape(dshape), tuple(range(5))))
    # Sample image china.jpg, 427x640x3 uint8: a centred 256x256x3 crop (64x64x3 with --quick)
    # scaled to [0, 1]. Row i = 16 r1 + r0 and column j = 16 c1 + c0 are split into digits and
    # ordered (r1, c1, r0, c0, channel): coarse position first, then position inside a 16x16
    # block, then colour ("quantized" order, so neighbouring pixels share the leading indices).
    # Tucker / STTucker factor the four spatial modes; the 3 channels stay in the core.
    try:
        img = load_sample_images().images[0]
    except Exception as exc:  # pillow missing, or the files cannot be read
        print(f"note: load_sample_images failed ({type(exc).__name__}: {exc}); image skipped")
        return data
    side, b = (64, 8) if quick else (256, 16)
    r0, c0 = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    crop = img[r0 : r0 + side, c0 : c0 + side].astype(np.float64) / 255.0
    x = crop.reshape(side // b, b, side // b, b, 3).transpose(0, 2, 1, 3, 4)
    data.append(
        (f"china.jpg {side}x{side}x3 crop as {x.shape}", np.ascontiguousarray(x), (0, 1, 2, 3))
    )
    return data


def bench_fits(quick: bool, rng: np.random.Generator) -> None:
    n_iter_max, tol = (10, 1e-6) if quick else (50, 1e-6)
    if quick:
        grid = Grid(
            tt_svd=(2, 4, 8),
            stt={1: (4, 8), 2: (4, 8), 4: (4, 8)},
            tr_svd=(2, 4),
            tr_als=(1, 2, 4),
            str_=(4, 8),
            tucker=(2, 4),
        )
    else:
        grid = Grid(
            tt_svd=(2, 3, 4, 6, 8, 12, 16, 24, 32),
            stt={1: (4, 8, 16), 2: (4, 8, 16, 24), 4: (4, 8, 16, 32)},
            tr_svd=(2, 4, 6, 8, 12, 16),
            tr_als=(1, 2, 4, 6, 8, 12),
            str_=(4, 8, 16),
            tucker=(2, 4, 6, 8, 12),
        )
    print("### (b) relative error against stored parameters")
    print()
    print(
        f"ALS fits: n_iter_max={n_iter_max}, tol={tol:g}, rng={SEED}; default starts (stt_fit: "
        "TT-SVD for k=1, random for k>1; str_fit / tr_als: TR-SVD; sttucker_fit: its ST-HOSVD; "
        "hooi: HOSVD). `fit s` is one run. STT/STR ranks R are those of the equivalent TT/TR; "
        "stt_fit keeps exactly R on every bond, tt_svd caps at max_rank and the unfolding sizes. "
        "`sweeps`: sweeps run (from the callback), `(max)` = stopped at n_iter_max without the "
        "error settling within tol; tr_als and hooi have no callback: `< N` converged, `max N` "
        "did not. `-`: not iterative. Note on STR rows: the exactly equal TR of ranks R/k "
        "(str_to_tr(compact=True)) and its parameter count."
    )
    t = random_stt((4, 5, 6, 7), 6, k=3, rng=SEED)
    tr = stt_as_tr(t)
    assert tr.num_params == t.num_params and np.allclose(tr.to_dense(), t.to_dense())
    print(
        f"\ncheck: an STT of ranks R and k is exactly a TR of ring ranks (k, R/k, ..., R/k) with "
        f"the same stored entries (random STT (4, 5, 6, 7), R=6, k=3: TR ranks {tr.ranks}, "
        f"{tr.num_params} = {t.num_params} parameters, allclose). An STR of ranks R and k is "
        "exactly the TR of ranks R/k (str_to_tr(compact=True)), whose first core is k^2 "
        "times smaller than the STR's."
    )
    for name, x, modes in load_datasets(quick, rng):
        print(f"\n{name}: fitting (progress on stderr)", file=sys.stderr, flush=True)
        fits = fits_for(x, grid, n_iter_max, tol, modes)
        budgets = [b for b in (x.size // c for c in (300, 100, 30, 10, 3)) if b > 0]
        report(name, x, fits, budgets)


def machine() -> str:
    versions = [f"numpy {np.__version__}", f"tensornet {tensornet.__version__}"]
    try:
        import sklearn

        versions.append(f"scikit-learn {sklearn.__version__}")
    except ImportError:
        versions.append("scikit-learn: not installed")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {', '.join(versions)}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats and sweeps")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per contestant in (a)")
    parser.add_argument("--skip-stp", action="store_true", help="only section (b)")
    parser.add_argument("--skip-fits", action="store_true", help="only section (a)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)
    rng = np.random.default_rng(SEED)
    start = time.perf_counter()

    print("## Semi-tensor product: primitives and formats\n")
    print(f"machine: {machine()}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy (load average above half the cores); timings suffer")
    print(f"seed {SEED}{' (--quick)' if args.quick else ''}\n")
    if not args.skip_stp:
        bench_stp(args.quick, repeat, rng)
    if not args.skip_fits:
        bench_fits(args.quick, rng)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    print(f"\ntotal {time.perf_counter() - start:.0f} s; load average at the end: {load}")


if __name__ == "__main__":
    main()
