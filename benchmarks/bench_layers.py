"""Factorized convolution layers: CPU forward time against nn.Conv2d and the MAC ratio.

Run ``python benchmarks/bench_layers.py`` from the repository root (about 1.5 minutes on a
quiet two-core machine, 3 under load; ``--quick`` runs a smoke test in under a minute on a
smaller batch and image, whose speed-ups mean little). The setting is the issue's: a
256 -> 256, 3x3, padding 1 ``nn.Conv2d`` on a batch of 32 float32 images of 32 x 32, and
each factorized layer of ``tensornet_torch.layers`` at about 10x fewer kernel parameters
(589,824 / 10).

Rank choice: every layer class has a one-parameter rank ladder (uniform ranks: ``(r, r)`` for
Tucker-2 and STTucker, ``R`` for CP, every bond ``r`` for TT, TR and STR; TT and STT bonds are
clipped to the largest useful size, as ``TTConv2d`` does for an int rank; ST ranks step by
``k``); the rung whose compression (dense kernel entries / factor entries, bias left out) is
closest to 10x on a log scale is taken. Candidates are built on the ``meta`` device to count
parameters; the timed layers are built by the constructors with their random init (no
``from_conv``: decomposing a kernel costs more than the whole benchmark and does not change
the forward cost). Every timed layer is checked once against ``F.conv2d`` with its
reconstructed kernel (float32, max abs difference <= 1e-3 of the max abs output; asserted).

Timing follows ``benchmarks/bench_tt.py``: ``torch.no_grad``, modules in eval mode, the
contestants of a layer (``nn.Conv2d``, the layer with ``forward_mode="factorized"`` and with
``forward_mode="dense"``, i.e. rebuild the kernel then one ``F.conv2d``) are run ``--repeat``
times interleaved after warm-up runs; a time is the best run and a speed-up is the median
over the runs of ``time(nn.Conv2d) / time(layer)`` measured back to back. ``MAC ratio`` is
``dense_macs / factorized_macs`` of the layer (per sample); ``efficiency`` is speed-up / MAC
ratio, the share of the theoretical speed-up that is realized (goal >= 60%). ``auto picks``
is ``choose_path`` for the input, i.e. what ``forward_mode="auto"`` runs. The torch thread
count is left at its default and printed.

TensorLy-Torch (``tltorch``, optional): ``FactorizedConv`` with ``factorization`` ``cp``,
``tucker`` (spatial modes not factorized, i.e. Tucker-2) and ``tt`` (tltorch's TT runs over
the kernel modes ``(S, kh, kw, T)``, not over tensorized channels like ``TTConv2d``) and
``implementation="factorized"``, built by its constructor at the same ~10x, timed the same
way against the same ``nn.Conv2d``; skipped with the reason when ``import tltorch`` fails.
A last table times every tensornet layer at batch 1 (latency) on both paths.

Options beyond the issue's setting: ``--channels-last`` runs the input and every module in
``torch.channels_last`` (the dense convolution is faster there); ``--mmap-threshold BYTES``
raises glibc's mmap threshold in the process, as ``MALLOC_MMAP_THRESHOLD_`` would, so that
large buffers are reused instead of page-faulted in again on every call (by default glibc
maps blocks above at most 32 MiB afresh, which costs the pipelines, whose intermediates
are as large as the input, more than the one dense convolution).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet
from tensornet_torch.layers import (
    CPConv2d,
    FactorizedConv2d,
    STRConv2d,
    STTConv2d,
    STTuckerConv2d,
    TRConv2d,
    TTConv2d,
    TuckerConv2d,
)

SEED = 20240607
CHANNELS = 256
KERNEL = 3
TARGET = 10.0
"""Compression aimed at: dense kernel entries / factor entries."""
GOAL = 0.6
"""Share of the MAC ratio the measured speed-up should reach."""
DENSE_KERNEL = CHANNELS * CHANNELS * KERNEL * KERNEL


# -- timing ----------------------------------------------------------------------------------------
def measure(
    funcs: dict[str, Callable[[], Any]], repeat: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Wall times (s) of ``repeat`` interleaved runs of each function, after warm-up runs."""
    for _ in range(warmup):
        for f in funcs.values():
            f()
    gc.collect()
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


def ms(t: float) -> str:
    return f"{1e3 * t:.1f}" if t >= 0.01 else f"{1e3 * t:.2f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- rank choice -----------------------------------------------------------------------------------
def closest_rung(
    rungs: Sequence[int],
    params: Callable[[int], int],
    dense: int = DENSE_KERNEL,
    target: float = TARGET,
) -> int:
    """The rung whose compression ``dense / params`` is closest to ``target`` (log scale).

    ``params`` is non-decreasing along ``rungs``: a bisection finds the first rung at or
    below ``target``, and it is compared with the rung before it.
    """
    budget = dense / target
    lo, hi = 0, len(rungs) - 1
    if params(rungs[hi]) < budget:
        return rungs[hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if params(rungs[mid]) >= budget:
            hi = mid
        else:
            lo = mid + 1
    candidates = [rungs[i] for i in (lo - 1, lo) if i >= 0]
    return min(candidates, key=lambda r: abs(math.log(dense / params(r) / target)))


def kernel_params(module: nn.Module) -> int:
    """Entries of every parameter but the bias."""
    return sum(p.numel() for name, p in module.named_parameters() if name != "bias")


Family = tuple[str, type[FactorizedConv2d], Sequence[int], Callable[[int], dict[str, Any]]]


def clipped_chain(r: int, k: int) -> dict[str, Any]:
    """STT ranks: every bond ``r``, clipped to the largest useful size rounded down to ``k``."""
    modes = STTConv2d(CHANNELS, CHANNELS, KERNEL, device="meta", ranks=k, k=k).modes
    d = len(modes)
    bounds = [min(math.prod(modes[:j]), math.prod(modes[j:])) // k * k for j in range(1, d)]
    return {"ranks": tuple(min(r, b) for b in bounds), "k": k}


def families(ks: Sequence[int]) -> list[Family]:
    out: list[Family] = [
        ("TuckerConv2d", TuckerConv2d, range(1, 257), lambda r: {"ranks": (r, r)}),
        ("CPConv2d", CPConv2d, range(1, 2305), lambda r: {"ranks": r}),
        ("TTConv2d", TTConv2d, range(1, 257), lambda r: {"ranks": r}),
        ("TRConv2d", TRConv2d, range(1, 65), lambda r: {"ranks": r}),
    ]
    for k in ks:
        out.append(
            (
                f"STTuckerConv2d k={k}",
                STTuckerConv2d,
                range(k, 257, k),
                lambda r, k=k: {"ranks": (r, r), "k": k},
            )
        )
    for k in ks:
        out.append(
            (f"STTConv2d k={k}", STTConv2d, range(k, 513, k), lambda r, k=k: clipped_chain(r, k))
        )
    for k in ks:
        out.append(
            (f"STRConv2d k={k}", STRConv2d, range(k, 129, k), lambda r, k=k: {"ranks": r, "k": k})
        )
    return out


def choose(family: Family) -> tuple[dict[str, Any], bool]:
    """Constructor keywords of the rung closest to TARGET (candidates on the meta device).

    The flag is True when that is the top rung (the ladder cannot come closer to TARGET).
    """
    _, cls, rungs, kwargs = family

    def params(r: int) -> int:
        return kernel_params(cls(CHANNELS, CHANNELS, KERNEL, padding=1, device="meta", **kwargs(r)))

    rung = closest_rung(list(rungs), params)
    return kwargs(rung), rung == rungs[-1]


def ranks_text(layer: nn.Module) -> str:
    ranks = getattr(layer, "ranks", None)
    text = ",".join(str(r) for r in ranks) if isinstance(ranks, Sequence) else str(ranks)
    modes = getattr(layer, "modes", None)
    return f"{text} (modes {'x'.join(str(m) for m in modes)})" if modes else text


# -- TensorLy-Torch --------------------------------------------------------------------------------
def load_tltorch() -> tuple[Any, str]:
    """``(tltorch, version)`` or ``(None, why it did not import)``."""
    try:
        import tltorch  # sets the TensorLy backend to pytorch (this script does not use it)
    except Exception as exc:  # ImportError, or an incompatibility with this torch
        return None, f"{type(exc).__name__}: {exc}"
    return tltorch, str(getattr(tltorch, "__version__", "?"))


def tl_macs(form: str, r: int, height: int, width: int) -> int:
    """MACs per sample of tltorch's factorized forward (padding 1: output size = input size).

    cp: 1x1 S -> R, depthwise kh, depthwise kw, scaling by the R weights, 1x1 R -> T;
    tucker (Tucker-2): 1x1 S -> r, r -> r kh x kw, 1x1 r -> T; tt over (S, kh, kw, T) with
    ranks (1, r, r, r, 1): 1x1 S -> r, (kh x 1) r -> r, (1 x kw) r -> r, 1x1 r -> T.
    """
    s = t = CHANNELS
    per_pixel = {
        "cp": s * r + r * KERNEL + r * KERNEL + r + r * t,
        "tucker": s * r + r * r * KERNEL * KERNEL + t * r,
        "tt": s * r + r * r * KERNEL + r * r * KERNEL + r * t,
    }[form]
    return height * width * per_pixel


def tl_build(tltorch: Any, form: str, r: int, device: Any = None) -> nn.Module:
    extra: dict[str, Any] = {}
    if form == "tucker":
        rank: Any = (r, r, KERNEL, KERNEL)
        extra["fixed_rank_modes"] = "spatial"
    elif form == "tt":
        rank = (1, r, r, r, 1)
    else:
        rank = r
    return tltorch.FactorizedConv(
        CHANNELS,
        CHANNELS,
        (KERNEL, KERNEL),
        padding=1,
        bias=True,
        factorization=form,
        rank=rank,
        implementation="factorized",
        device=device,
        **extra,
    )


def tl_kernel(layer: Any, form: str) -> Tensor:
    w = layer.weight.to_tensor()
    return w.movedim(-1, 0) if form == "tt" else w  # tltorch's TT is over (S, kh, kw, T)


# -- checks ----------------------------------------------------------------------------------------
def check(module: nn.Module, kernel: Callable[[], Tensor], bias: Tensor | None, size: int) -> float:
    """Max abs difference to ``F.conv2d`` with the reconstructed kernel, over max abs output."""
    x = torch.randn(2, CHANNELS, size, size)
    with torch.no_grad():
        out = module(x)
        ref = F.conv2d(x, kernel(), bias, padding=1)
    err = float((out - ref).abs().max() / ref.abs().max())
    if not err <= 1e-3:
        raise AssertionError(f"{module}: factorized forward differs from F.conv2d by {err:.2e}")
    return err


# -- the benchmark ---------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    batch_macs: int
    """MACs of the Conv2d on the whole batch (for the GMAC/s column)."""
    ranks: str
    params: int
    mac_ratio: float
    conv_s: float
    layer_s: float
    speedup: float
    dense_path_s: float | None = None
    dense_path_speedup: float | None = None
    auto: str = "-"
    err: float = math.nan

    @property
    def efficiency(self) -> float:
        return self.speedup / self.mac_ratio

    def cells(self) -> list[str]:
        dense_path = "-"
        if self.dense_path_s is not None:
            dense_path = f"{ms(self.dense_path_s)} ({self.dense_path_speedup:.2f}x)"
        return [
            self.name,
            self.ranks,
            f"{self.params:,}",
            f"{DENSE_KERNEL / self.params:.2f}",
            f"{self.mac_ratio:.2f}",
            ms(self.conv_s),
            ms(self.layer_s),
            f"{self.speedup:.2f}",
            f"{100 * self.efficiency:.0f}%",
            "met" if self.efficiency >= GOAL else "missed",
            f"{self.batch_macs / self.conv_s / 1e9:.1f}, "
            f"{self.batch_macs / self.mac_ratio / self.layer_s / 1e9:.1f}",
            dense_path,
            self.auto,
            f"{self.err:.1e}",
        ]


HEADER = [
    "layer",
    "ranks",
    "params",
    "compression",
    "MAC ratio",
    "Conv2d ms",
    "factorized ms",
    "speed-up",
    "speed-up / MAC ratio",
    "goal >= 60%",
    "GMAC/s Conv2d, layer",
    "dense path ms (speed-up)",
    "auto picks",
    "check err",
]


def set_mode(layer: FactorizedConv2d, mode: str) -> FactorizedConv2d:
    layer.forward_mode = mode
    return layer


def bench_ours(
    layers: dict[str, FactorizedConv2d], conv: nn.Conv2d, x: Tensor, repeat: int
) -> list[Row]:
    n, _, h, w = x.shape
    rows = []
    for name, layer in layers.items():
        times = measure(
            {
                "conv": lambda: conv(x),
                "factorized": lambda layer=layer: set_mode(layer, "factorized")(x),
                "dense": lambda layer=layer: set_mode(layer, "dense")(x),
            },
            repeat,
        )
        auto = set_mode(layer, "auto").choose_path(n, h, w)
        row = Row(
            name=name,
            batch_macs=n * layer.dense_macs(h, w),
            ranks=ranks_text(layer),
            params=kernel_params(layer),
            mac_ratio=layer.dense_macs(h, w) / layer.factorized_macs(h, w),
            conv_s=min(times["conv"]),
            layer_s=min(times["factorized"]),
            speedup=ratio(times, "conv", "factorized"),
            dense_path_s=min(times["dense"]),
            dense_path_speedup=ratio(times, "conv", "dense"),
            auto=auto,
            err=check(set_mode(layer, "factorized"), layer.reconstruct, layer.bias, h),
        )
        print("| " + " | ".join(row.cells()) + " |", flush=True)
        rows.append(row)
    return rows


def bench_tltorch(
    tltorch: Any, conv: nn.Conv2d, x: Tensor, repeat: int, ours: dict[str, Row]
) -> None:
    n, _, h, w = x.shape
    counterpart = {"cp": "CPConv2d", "tucker": "TuckerConv2d", "tt": "TTConv2d"}
    rungs = {"cp": range(1, 2305), "tucker": range(1, 257), "tt": range(1, 257)}
    header = [*HEADER[:11], "check err", "tensornet counterpart: speed-up (speed-up / MAC ratio)"]
    print(table(header, []))
    for form in ("cp", "tucker", "tt"):
        r = closest_rung(
            list(rungs[form]), lambda r, f=form: kernel_params(tl_build(tltorch, f, r, "meta"))
        )
        torch.manual_seed(SEED)
        layer = tl_build(tltorch, form, r).eval()
        layer.reset_parameters()  # N(0, 0.02) factors, zero bias
        with torch.no_grad():
            layer.bias.uniform_(-0.02, 0.02)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            layer = to_format(layer, torch.channels_last)
        times = measure({"conv": lambda: conv(x), "tl": lambda layer=layer: layer(x)}, repeat)
        row = Row(
            name=f"tltorch {form}",
            batch_macs=n * DENSE_KERNEL * h * w,
            ranks=str(layer.rank),
            params=kernel_params(layer),
            mac_ratio=DENSE_KERNEL * h * w / tl_macs(form, r, h, w),
            conv_s=min(times["conv"]),
            layer_s=min(times["tl"]),
            speedup=ratio(times, "conv", "tl"),
            err=check(layer, lambda layer=layer, f=form: tl_kernel(layer, f), layer.bias, h),
        )
        mine = ours.get(counterpart[form])
        ref = "-" if mine is None else f"{mine.speedup:.2f} ({100 * mine.efficiency:.0f}%)"
        cells = row.cells()
        print("| " + " | ".join([*cells[:11], cells[-1], f"{counterpart[form]}: {ref}"]) + " |")


def bench_latency(
    layers: dict[str, FactorizedConv2d], conv: nn.Conv2d, x: Tensor, repeat: int
) -> None:
    n, _, h, w = x.shape
    header = [
        "layer",
        "Conv2d ms",
        "factorized ms (speed-up)",
        "dense path ms (speed-up)",
        "MAC model dense path / factorized",
        "auto picks",
        "faster measured",
        "auto right",
    ]
    print(table(header, []))
    for name, layer in layers.items():
        times = measure(
            {
                "conv": lambda: conv(x),
                "factorized": lambda layer=layer: set_mode(layer, "factorized")(x),
                "dense": lambda layer=layer: set_mode(layer, "dense")(x),
            },
            repeat,
        )
        auto = set_mode(layer, "auto").choose_path(n, h, w)
        macs = layer.path_macs(n, h, w)
        faster = "factorized" if ratio(times, "factorized", "dense") <= 1 else "dense"
        cells = [
            name,
            ms(min(times["conv"])),
            f"{ms(min(times['factorized']))} ({ratio(times, 'conv', 'factorized'):.2f}x)",
            f"{ms(min(times['dense']))} ({ratio(times, 'conv', 'dense'):.2f}x)",
            f"{macs['dense'] / macs['factorized']:.1f}",
            auto,
            faster,
            "yes" if auto == faster else "no",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)


def machine(tl_version: str | None) -> str:
    versions = [
        f"torch {torch.__version__}",
        f"tensornet {tensornet.__version__}",
        f"tltorch {tl_version}" if tl_version else "tltorch: not importable",
    ]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {', '.join(versions)}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


M = TypeVar("M", bound=nn.Module)


def to_format(module: M, memory_format: torch.memory_format) -> M:
    """``module`` with its 4-d parameters in ``memory_format`` (``nn.Module.to``)."""
    return module.to(memory_format=memory_format)  # type: ignore[call-overload]


def set_mmap_threshold(size: int) -> str:
    """Raise glibc's mmap threshold (and trim threshold) to ``size`` bytes in this process.

    By default glibc serves blocks above a dynamic threshold (at most 32 MiB) with fresh
    ``mmap`` pages and returns them on free, so every large intermediate is page-faulted
    in again on every call; this is what ``MALLOC_MMAP_THRESHOLD_`` does at start-up.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or name is None:
        return "allocator: --mmap-threshold ignored (not glibc)"
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = libc.mallopt(m_mmap_threshold, size) and libc.mallopt(m_trim_threshold, 2 * size)
    state = "set" if ok else "NOT set (mallopt failed)"
    return f"allocator: glibc mallopt M_MMAP_THRESHOLD={size:,} bytes {state}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 4 of 16x16, few repeats")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per contestant")
    parser.add_argument("--no-tltorch", action="store_true", help="skip the TensorLy-Torch rows")
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        default=None,
        metavar="BYTES",
        help="raise glibc's mmap threshold (e.g. 1000000000): large buffers are reused",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="input and every module in torch.channels_last memory format",
    )
    args = parser.parse_args(argv)
    allocator = (
        "allocator: glibc default (blocks above at most 32 MiB are mmapped per call)"
        if args.mmap_threshold is None
        else set_mmap_threshold(args.mmap_threshold)
    )
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    batch, size = (4, 16) if args.quick else (32, 32)
    repeat = args.repeat or (2 if args.quick else 7)
    repeat_latency = 3 if args.quick else 15
    ks = (2,) if args.quick else (2, 4)

    tltorch, tl_note = (None, "skipped (--no-tltorch)") if args.no_tltorch else load_tltorch()
    print("## Factorized convolution layers: CPU forward time against nn.Conv2d\n")
    print(f"machine: {machine(tl_note if tltorch is not None else None)}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy (load average above half the cores); timings suffer")
    print(
        f"torch threads: {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} "
        "inter-op (defaults, not set by the script)"
    )
    print(f"{allocator}; memory format: {'channels_last' if args.channels_last else 'NCHW'}")
    quick = (
        " (--quick: not the issue's setting, speed-ups not representative)" if args.quick else ""
    )
    print(
        f"setting: nn.Conv2d({CHANNELS}, {CHANNELS}, {KERNEL}, padding=1), {DENSE_KERNEL:,} kernel "
        f"entries; input ({batch}, {CHANNELS}, {size}, {size}) float32; eval, torch.no_grad; "
        f"target compression {TARGET:g}x; seed {SEED}; times: best of {repeat} runs, "
        f"speed-ups: median of paired runs{quick}\n"
    )

    torch.manual_seed(SEED)
    conv = to_format(nn.Conv2d(CHANNELS, CHANNELS, KERNEL, padding=1).eval(), memory_format)
    x = torch.randn(batch, CHANNELS, size, size).contiguous(memory_format=memory_format)
    layers: dict[str, FactorizedConv2d] = {}
    capped = []
    for family in families(ks):
        name, cls = family[0], family[1]
        kwargs, top = choose(family)
        torch.manual_seed(SEED)
        layer = cls(CHANNELS, CHANNELS, KERNEL, padding=1, **kwargs).eval()
        layers[name] = to_format(layer, memory_format)
        if top:
            capped.append(name)

    with torch.no_grad():
        print(f"### (a) batch {batch}: factorized layers at ~{TARGET:g}x against nn.Conv2d\n")
        print(table(HEADER, []))
        rows = bench_ours(layers, conv, x, repeat)
        for name in capped:
            print(
                f"\nnote: {name} is at the top of its rank ladder (every bond at its largest "
                f"useful size) and stays above {TARGET:g}x compression"
            )
        met = [r.name for r in rows if r.efficiency >= GOAL]
        missed = [r.name for r in rows if r.efficiency < GOAL]
        print(
            f"\ngoal (speed-up >= {100 * GOAL:.0f}% of the MAC ratio) met: {', '.join(met) or '-'}"
        )
        print(f"missed: {', '.join(missed) or '-'}\n")

        print(
            f"### (b) batch {batch}: TensorLy-Torch FactorizedConv (implementation='factorized')\n"
        )
        if tltorch is None:
            print(f"note: TensorLy-Torch rows skipped: {tl_note}\n")
        else:
            bench_tltorch(tltorch, conv, x, repeat, {r.name: r for r in rows})
            print()

        print("### (c) batch 1 (latency): both paths and the choice of forward_mode='auto'\n")
        bench_latency(layers, conv, x[:1], repeat_latency)
    print(f"\nload average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
