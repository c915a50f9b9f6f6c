"""Speed of the factorized layers on ResNet-shaped convolutions, and of compressed demo models.

Run ``python benchmarks/bench_speed.py`` from the repository root (CPU; 190-280 s on two
cores, measured, longer on a busy machine; ``--quick`` is a smoke
run of under a minute whose speed-ups mean little). ``--device cuda`` runs on a GPU. The
settings are those of issue 7:

- **Layers.** The 3x3, padding 1 convolutions of ResNet-20 on CIFAR (32x32 input):
  16 -> 16 at 32x32, 32 -> 32 at 16x16, 64 -> 64 at 8x8 and the strided transitions
  16 -> 32 (stride 2) at 32x32 and 32 -> 64 (stride 2) at 16x16; and of ResNet-18 on
  ImageNet (224 input): 64 -> 64 at 56x56, 128 -> 128 at 28x28, 256 -> 256 at 14x14 and
  512 -> 512 at 7x7 (``--shapes``). Every layer class (``TuckerConv2d``, ``CPConv2d``,
  ``TTConv2d``, ``TRConv2d``; ``--st`` adds ``STTConv2d``, ``STRConv2d`` and
  ``STTuckerConv2d`` with ``k=2``) at 5x, 10x and 20x fewer kernel parameters
  (``--targets``), on batches of 1, 32 and 128 images (``--batches``).
- **Whole model.** The demo network ``tensornet_torch.demo.ResNet()`` (ResNet-20 on 1 x 16 x
  16 images) with random weights (it is not trained: the forward cost does not depend on
  the values), compressed by ``tensornet_torch.compress(model, method=m, ratio=r)`` for
  ``m`` in rsdtr, tt, tucker, cp and ``r`` in 5, 10, against the dense model at batch 1 and
  128 (``--model-methods``, ``--model-ratios``, ``--model-batches``). On random weights the
  rank allocation differs from that of a trained model; the achieved parameter ratio of the
  report is printed. A ratio a method cannot reach is reported as "not reachable".

Rank choice (as in ``benchmarks/bench_layers.py``): every layer class has a one-parameter
rank ladder (uniform ranks: ``(r, r)`` for Tucker-2 and STTucker, ``R`` for CP, every bond
``r`` for TT, TR and STR; TT and STT bonds clipped to their largest useful size; ST ranks
step by ``k``); the rung whose compression (dense kernel entries / factor entries, bias
left out) is closest to the target on a log scale is taken, and the achieved compression is
printed. Candidates are built on the ``meta`` device to count parameters; the timed layers
are built by their constructors with their random init (no ``from_conv``: the forward cost
does not depend on the values). Every timed layer is checked once against ``F.conv2d``
with its reconstructed kernel (max abs difference over max abs output at most ``1e-3``, or
``10 eps`` for half precision and TF32; asserted).

Timing follows ``benchmarks/bench_layers.py``, whose helpers it imports: ``torch.no_grad``,
modules in eval mode, the contestants of a row (``nn.Conv2d``, and copies of the layer with
``forward_mode`` set to every path of its class: ``"factorized"``, ``"dense"`` (the
reconstructed kernel, then one ``F.conv2d``) and the class's other ``PATHS`` where the
installed version has them (e.g. ``TRConv2d``'s ``"fused-spatial"``); then ``"auto"`` and,
feature-detected, ``"tuned"``) are run ``--repeat`` times interleaved after warm-up runs.
The layers' ``precontract`` (weight-only work cached while no gradient is needed) is left
on, as in a model in eval mode; ``--no-precontract`` turns it off. One timed run calls a
contestant ``loops`` times in a row, ``loops`` chosen so that a run of ``nn.Conv2d`` lasts
at least a few milliseconds (the timer and the scheduler then matter less for batch-1
calls); on CUDA a run ends with ``torch.cuda.synchronize()``, and
``torch.backends.cudnn.benchmark`` is on. A time is the best run divided by ``loops``; a
speed-up is the median over the runs of ``time(nn.Conv2d) / time(contestant)`` measured
back to back. ``MAC ratio`` is ``dense_macs / factorized_macs`` of the layer (per sample),
the theoretical speed-up; ``efficiency`` is the factorized path's speed-up / MAC ratio, the
share of it realized. ``auto`` and ``tuned`` show the path they ran (``choose_path`` for
auto, the measured choice for tuned) and the measured speed-up; a row is flagged when
auto's is below 0.95 (slower than the dense layer by more than noise); ``fastest path``
is the path with the best measured speed-up. For the models, MACs are counted by
``torch.utils.flop_counter.FlopCounterMode`` on the forward pass that is timed (the paths
``auto`` takes), and ``auto paths`` counts the layers on each path.

The summaries check the issue's goals: speed-up >= 60% of the MAC ratio on CPU at 10x
compression (median and per layer class), >= 50% on a GPU at batch 128, and never slower
than dense when the cost model chose the path (count of flagged rows). On CPU
``--max-gmacs`` (default 5) skips (shape, batch) pairs whose dense convolution alone
exceeds that many GMACs per call (ResNet-18 shapes at batch 128: 14.8 GMACs, about a second
per call on two cores), with a note. The torch thread count is left at its default and
printed; ``--threads N`` sets it (on a machine busy with other work, ``--threads 1`` avoids
the stalls of threads waiting for each other). ``--csv PATH`` writes every row (layer and
model rows, one column set) for later reading.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import importlib
import math
import os
import platform
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

import tensornet
import tensornet_torch
from tensornet._validation import ConvergenceWarning
from tensornet_torch.demo import ResNet
from tensornet_torch.layers import (
    FORWARD_MODES,
    CPConv2d,
    FactorizedConv2d,
    STRConv2d,
    STTConv2d,
    STTuckerConv2d,
    TRConv2d,
    TTConv2d,
    TuckerConv2d,
)

try:  # run as a script: benchmarks/ is on sys.path
    from bench_layers import closest_rung, kernel_params, measure, ranks_text, ratio, table
except ImportError:  # imported as benchmarks.bench_speed from the repository root
    from benchmarks.bench_layers import (  # type: ignore[no-redef]
        closest_rung,
        kernel_params,
        measure,
        ranks_text,
        ratio,
        table,
    )

UnreachableRatioError: type[Exception] = importlib.import_module(
    "tensornet_torch.compress"
).UnreachableRatioError

SEED = 20240607
KERNEL = 3
CPU_GOAL = 0.6
"""Share of the MAC ratio the factorized path should realize on CPU at 10x compression."""
GPU_GOAL = 0.5
"""Share of the MAC ratio the factorized path should realize on a GPU at batch 128."""
GOAL_TARGET = 10.0
GOAL_BATCH = 128
SLOWER = 0.95
"""An ``auto`` speed-up below this is flagged as slower than the dense layer."""
MIN_RUN = {"cpu": 5e-3, "cuda": 2e-3}
"""Shortest timed run (s): ``loops`` calls per run reach it for ``nn.Conv2d``."""
MAX_LOOPS = 200
HAS_TUNED = "tuned" in FORWARD_MODES
"""Whether this version of the layers has ``forward_mode="tuned"`` (feature-detected)."""
CHOOSERS = ("auto", *(("tuned",) if HAS_TUNED else ()))
"""Forward modes that choose a path, timed besides every path of the layer class."""


def paths_of(layer: FactorizedConv2d) -> tuple[str, ...]:
    """The forward paths of the layer's class (``PATHS`` where the version has it)."""
    paths: tuple[str, ...] = getattr(type(layer), "PATHS", ("factorized", "dense"))
    return paths


def modes_of(layer: FactorizedConv2d) -> tuple[str, ...]:
    """Every ``forward_mode`` timed for ``layer``: its paths, then the choosers."""
    return (*paths_of(layer), *CHOOSERS)


# -- settings --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    """A 3x3, padding 1 convolution of a ResNet: channels, input size, stride."""

    family: str
    c_in: int
    c_out: int
    size: int
    stride: int = 1

    @property
    def name(self) -> str:
        s = f" s{self.stride}" if self.stride != 1 else ""
        return f"{self.c_in}->{self.c_out}{s} @{self.size}"

    @property
    def dense_kernel(self) -> int:
        return self.c_out * self.c_in * KERNEL * KERNEL

    def macs(self) -> int:
        """MACs per sample of the dense convolution."""
        out = (self.size - 1) // self.stride + 1
        return out * out * self.dense_kernel


SHAPES: dict[str, tuple[Shape, ...]] = {
    "resnet20": (
        Shape("resnet20", 16, 16, 32),
        Shape("resnet20", 32, 32, 16),
        Shape("resnet20", 64, 64, 8),
        Shape("resnet20", 16, 32, 32, 2),
        Shape("resnet20", 32, 64, 16, 2),
    ),
    "resnet18": (
        Shape("resnet18", 64, 64, 56),
        Shape("resnet18", 128, 128, 28),
        Shape("resnet18", 256, 256, 14),
        Shape("resnet18", 512, 512, 7),
    ),
}
QUICK_SHAPES = {"resnet20": SHAPES["resnet20"][1], "resnet18": SHAPES["resnet18"][2]}
"""``--quick``: one shape per family."""

ST_K = 2
"""``k`` of the STP layers."""


@dataclass(frozen=True)
class Family:
    """A layer class and its one-parameter rank ladder for a shape."""

    key: str
    name: str
    cls: type[FactorizedConv2d]
    rungs: Callable[[Shape], Sequence[int]]
    kwargs: Callable[[Shape, int], dict[str, Any]]


def clipped_chain(shape: Shape, r: int, k: int) -> dict[str, Any]:
    """STT ranks: every bond ``r``, clipped to the largest useful size rounded down to ``k``."""
    probe = STTConv2d(shape.c_in, shape.c_out, KERNEL, device="meta", ranks=k, k=k)
    modes = probe.modes
    bounds = [
        max(k, min(math.prod(modes[:j]), math.prod(modes[j:])) // k * k)
        for j in range(1, len(modes))
    ]
    return {"ranks": tuple(min(r, b) for b in bounds), "k": k}


def _wide(shape: Shape) -> int:
    return max(shape.c_in, shape.c_out)


def _narrow(shape: Shape) -> int:
    return min(shape.c_in, shape.c_out)


FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family(
            "tucker",
            "TuckerConv2d",
            TuckerConv2d,
            lambda s: range(1, _narrow(s) + 1),
            lambda s, r: {"ranks": (r, r)},
        ),
        Family(
            "cp",
            "CPConv2d",
            CPConv2d,
            lambda s: range(1, s.dense_kernel // (s.c_in + s.c_out + 2 * KERNEL) + 2),
            lambda s, r: {"ranks": r},
        ),
        Family(
            "tt", "TTConv2d", TTConv2d, lambda s: range(1, _wide(s) + 1), lambda s, r: {"ranks": r}
        ),
        Family(
            "tr", "TRConv2d", TRConv2d, lambda s: range(1, _wide(s) + 1), lambda s, r: {"ranks": r}
        ),
        Family(
            "stt",
            f"STTConv2d k={ST_K}",
            STTConv2d,
            lambda s: range(ST_K, 2 * _wide(s) + 1, ST_K),
            lambda s, r: clipped_chain(s, r, ST_K),
        ),
        Family(
            "str",
            f"STRConv2d k={ST_K}",
            STRConv2d,
            lambda s: range(ST_K, _wide(s) + 1, ST_K),
            lambda s, r: {"ranks": r, "k": ST_K},
        ),
        Family(
            "sttucker",
            f"STTuckerConv2d k={ST_K}",
            STTuckerConv2d,
            lambda s: range(ST_K, _narrow(s) + 1, ST_K),
            lambda s, r: {"ranks": (r, r), "k": ST_K},
        ),
    )
}
BASE_FAMILIES = ("tucker", "cp", "tt", "tr")
ST_FAMILIES = ("stt", "str", "sttucker")


# -- rank choice -----------------------------------------------------------------------------------
def build(family: Family, shape: Shape, rung: int, **factory: Any) -> FactorizedConv2d:
    """The layer of ``family`` at ``rung`` for ``shape`` (random init unless on meta)."""
    return family.cls(
        shape.c_in,
        shape.c_out,
        KERNEL,
        stride=shape.stride,
        padding=1,
        **family.kwargs(shape, rung),
        **factory,
    )


def choose_rung(family: Family, shape: Shape, target: float) -> tuple[int, bool]:
    """The rung closest to ``target`` and whether it is an end of the ladder."""
    cache: dict[int, int] = {}

    def params(r: int) -> int:
        if r not in cache:
            cache[r] = kernel_params(build(family, shape, r, device="meta"))
        return cache[r]

    rungs = list(family.rungs(shape))
    rung = closest_rung(rungs, params, shape.dense_kernel, target)
    return rung, rung in (rungs[0], rungs[-1])


# -- timing and checks -----------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    funcs: dict[str, Callable[[], Any]], repeat: int, device: torch.device, warmup: int
) -> tuple[dict[str, list[float]], int]:
    """Per-call times (s) of ``repeat`` interleaved runs of each function, and ``loops``.

    The first function calibrates ``loops``: the calls per timed run that make one run of
    it last at least ``MIN_RUN`` (from the best of three calls after an untimed one).
    """
    first = next(iter(funcs.values()))
    first()
    synchronize(device)
    once = math.inf
    for _ in range(3):
        start = time.perf_counter()
        first()
        synchronize(device)
        once = min(once, time.perf_counter() - start)
    loops = max(1, min(MAX_LOOPS, math.ceil(MIN_RUN[device.type] / max(once, 1e-7))))

    def looped(f: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(loops):
                f()
            synchronize(device)

        return run

    times = measure({name: looped(f) for name, f in funcs.items()}, repeat, warmup=warmup)
    return {name: [t / loops for t in ts] for name, ts in times.items()}, loops


def tolerance(dtype: torch.dtype, device: torch.device) -> float:
    """Allowed max abs difference over max abs output of a path against ``F.conv2d``."""
    eps = torch.finfo(dtype).eps
    if dtype == torch.float32 and device.type == "cuda" and tf32_enabled():
        eps = 2.0**-10  # TF32 keeps 10 mantissa bits
    return max(1e-3, 10 * eps)


def tf32_enabled() -> bool:
    return bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)


def check(layer: FactorizedConv2d, shape: Shape, dtype: torch.dtype, device: torch.device) -> float:
    """Worst error of the layer's modes against ``F.conv2d`` (float64 reference).

    Every mode but ``"dense"`` (which is ``F.conv2d`` with the reconstructed kernel) is
    checked: every path of the class, ``"auto"`` and ``"tuned"``.

    The error is the max abs difference over the max abs output; above :func:`tolerance`
    an ``AssertionError`` is raised.
    """
    x = torch.randn(2, shape.c_in, shape.size, shape.size, device=device, dtype=dtype)
    bias = None if layer.bias is None else layer.bias.double()
    ref = F.conv2d(x.double(), layer.reconstruct().double(), bias, layer.stride, layer.padding)
    worst = 0.0
    for mode in (m for m in modes_of(layer) if m != "dense"):
        out = with_mode(layer, mode)(x).double()
        err = float((out - ref).abs().max() / ref.abs().max())
        if not err <= tolerance(dtype, device):
            raise AssertionError(
                f"{type(layer).__name__} {shape.name} forward_mode={mode!r}: output differs "
                f"from F.conv2d by {err:.2e} of its max, more than {tolerance(dtype, device):.1e}"
            )
        worst = max(worst, err)
    return worst


def picked(layer: FactorizedConv2d, mode: str, x: torch.Tensor) -> str:
    """The path ``mode`` runs on ``x``: the measured one for ``"tuned"`` (timed already in
    the warm-up, so this reads the cache), ``choose_path`` for ``"auto"``."""
    if mode == "tuned":
        with torch.no_grad():
            return layer._tuned_path(x)
    return layer.choose_path(int(x.shape[0]), int(x.shape[2]), int(x.shape[3]))


def with_mode(layer: FactorizedConv2d, mode: str) -> FactorizedConv2d:
    """A copy of ``layer`` (same parameters, same ``precontract``) with ``forward_mode=mode``."""
    twin = copy.deepcopy(layer)
    twin.forward_mode = mode
    return twin


def set_precontract(module: nn.Module, on: bool) -> None:
    """Set ``precontract`` of every factorized layer in ``module`` (versions that have it)."""
    for m in module.modules():
        if isinstance(m, FactorizedConv2d) and hasattr(m, "precontract"):
            m.precontract = on


# -- layer rows ------------------------------------------------------------------------------------
@dataclass
class LayerRow:
    shape: str
    family: str
    layer: str
    target: float
    ranks: str
    compression: float
    batch: int
    mac_ratio: float
    loops: int
    conv_ms: float
    speedup: dict[str, float] = field(default_factory=dict)
    """Median paired ``time(nn.Conv2d) / time(mode)`` per forward mode."""
    mode_ms: dict[str, float] = field(default_factory=dict)
    """Best time (ms per call) per forward mode."""
    paths: tuple[str, ...] = ()
    """The paths of the layer class (the other keys of ``speedup`` are choosers)."""
    chosen: dict[str, str] = field(default_factory=dict)
    """The path each chooser (``auto``, ``tuned``) took."""
    check_err: float = math.nan

    @property
    def efficiency(self) -> float:
        """Factorized-path speed-up over the MAC ratio."""
        return self.speedup["factorized"] / self.mac_ratio

    @property
    def auto_slower(self) -> bool:
        return self.speedup["auto"] < SLOWER

    @property
    def fastest(self) -> str:
        """The path with the largest measured speed-up."""
        return max(self.paths, key=self.speedup.__getitem__)

    def cells(self) -> list[str]:
        def time_of(mode: str) -> str:
            return f"{self.mode_ms[mode]:.3g} ({self.speedup[mode]:.2f}x)"

        others = [p for p in self.paths if p not in ("factorized", "dense")]
        cells = [
            self.shape,
            self.layer,
            f"{self.target:g}x",
            self.ranks,
            f"{self.compression:.1f}",
            str(self.batch),
            f"{self.mac_ratio:.2f}",
            f"{self.conv_ms:.3g}",
            time_of("factorized"),
            pct(self.efficiency),
            time_of("dense"),
            ", ".join(f"{p}: {time_of(p)}" for p in others) or "-",
            *(f"{self.chosen[m]}: {time_of(m)}" for m in CHOOSERS),
            self.fastest,
            "SLOWER" if self.auto_slower else "",
            f"{self.check_err:.0e}",
        ]
        return cells

    def record(self) -> dict[str, Any]:
        skip = ("speedup", "mode_ms", "paths", "chosen")
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        for mode, value in self.mode_ms.items():
            out[f"{mode}_ms"] = value
            out[f"{mode}_speedup"] = self.speedup[mode]
        for mode, path in self.chosen.items():
            out[f"{mode}_path"] = path
        out["fastest_path"] = self.fastest
        out["efficiency"] = self.efficiency
        out["auto_slower"] = self.auto_slower
        return {"kind": "layer", **out}


LAYER_HEADER = [
    "shape",
    "layer",
    "target",
    "ranks",
    "compression",
    "batch",
    "MAC ratio",
    "Conv2d ms",
    "factorized ms (speed-up)",
    "efficiency",
    "dense path ms (speed-up)",
    "other paths",
    *(f"{m}: path ms (speed-up)" for m in CHOOSERS),
    "fastest path",
    f"auto < {SLOWER}x",
    "check err",
]


def bench_layers(
    shapes: Sequence[Shape],
    families: Sequence[Family],
    targets: Sequence[float],
    batches: Sequence[int],
    repeat: int,
    device: torch.device,
    dtype: torch.dtype,
    max_macs: float,
    precontract: bool,
) -> list[LayerRow]:
    rows: list[LayerRow] = []
    for shape in shapes:
        usable = [b for b in batches if b * shape.macs() <= max_macs]
        skipped = [b for b in batches if b not in usable]
        print(f"\n#### {shape.family} {shape.name} (dense kernel {shape.dense_kernel:,})\n")
        if skipped:
            print(
                f"note: batch {', '.join(map(str, skipped))} skipped: the dense convolution "
                f"needs {max(skipped) * shape.macs() / 1e9:.1f} GMACs a call, more than "
                f"--max-gmacs {max_macs / 1e9:g}\n"
            )
        if not usable:
            continue
        torch.manual_seed(SEED)
        conv = nn.Conv2d(
            shape.c_in, shape.c_out, KERNEL, shape.stride, 1, device=device, dtype=dtype
        ).eval()
        inputs = {
            b: torch.randn(b, shape.c_in, shape.size, shape.size, device=device, dtype=dtype)
            for b in usable
        }
        print(table(LAYER_HEADER, []), flush=True)
        notes = []
        for family in families:
            for target in targets:
                rung, end = choose_rung(family, shape, target)
                torch.manual_seed(SEED)
                layer = build(family, shape, rung, device=device, dtype=dtype).eval()
                set_precontract(layer, precontract)
                compression = shape.dense_kernel / kernel_params(layer)
                if end:
                    notes.append(
                        f"{family.name} at {target:g}x: end of the rank ladder "
                        f"(compression {compression:.1f})"
                    )
                err = check(layer, shape, dtype, device)
                twins = {mode: with_mode(layer, mode) for mode in modes_of(layer)}
                for batch in usable:
                    x = inputs[batch]
                    funcs: dict[str, Callable[[], Any]] = {"conv": functools.partial(conv, x)}
                    for mode, twin in twins.items():
                        funcs[mode] = functools.partial(twin, x)
                    warmup = 3 if device.type == "cuda" else 1 if batch * shape.macs() > 2e9 else 2
                    times, loops = timed(funcs, repeat, device, warmup)
                    hw = (shape.size, shape.size)
                    row = LayerRow(
                        shape=shape.name,
                        family=shape.family,
                        layer=family.name,
                        target=target,
                        ranks=ranks_text(layer),
                        compression=compression,
                        batch=batch,
                        mac_ratio=layer.dense_macs(*hw) / layer.factorized_macs(*hw),
                        loops=loops,
                        conv_ms=1e3 * min(times["conv"]),
                        speedup={m: ratio(times, "conv", m) for m in twins},
                        mode_ms={m: 1e3 * min(times[m]) for m in twins},
                        paths=paths_of(layer),
                        chosen={m: picked(twins[m], m, x) for m in CHOOSERS},
                        check_err=err,
                    )
                    print("| " + " | ".join(row.cells()) + " |", flush=True)
                    rows.append(row)
        for note in notes:
            print(f"\nnote: {note}")
    return rows


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.0f}%"


def efficiency_table(
    rows: Sequence[LayerRow], column: Callable[[LayerRow], float], label: str
) -> str:
    """Median efficiency per layer class (rows) and value of ``column`` (columns)."""
    layers = list(dict.fromkeys(r.layer for r in rows))
    values = sorted({column(r) for r in rows})
    body = []
    for name in [*layers, "all layers"]:
        mine = [r for r in rows if name in (r.layer, "all layers")]
        cells = [pct(median(r.efficiency for r in mine if column(r) == v)) for v in values]
        body.append([name, *cells, pct(median(r.efficiency for r in mine))])
    return table(["layer", *(label.format(v) for v in values), "all"], body)


def goal_line(rows: Sequence[LayerRow], goal: float, what: str) -> str:
    overall = median(r.efficiency for r in rows)
    layers = list(dict.fromkeys(r.layer for r in rows))
    per_layer = ", ".join(
        f"{n} {pct(median(r.efficiency for r in rows if r.layer == n))}" for n in layers
    )
    return (
        f"{what} (factorized speed-up >= {100 * goal:.0f}% of the MAC ratio): median "
        f"{pct(overall)}, {'met' if overall >= goal else 'missed'}; rows meeting it "
        f"{sum(r.efficiency >= goal for r in rows)}/{len(rows)}; per layer (median): {per_layer}"
    )


def summarize_layers(rows: Sequence[LayerRow], device: torch.device) -> None:
    at_target = [r for r in rows if r.target == GOAL_TARGET]
    print(f"\n### Efficiency (factorized speed-up / MAC ratio) at {GOAL_TARGET:g}x, by batch\n")
    if not at_target:
        print(f"(no rows at {GOAL_TARGET:g}x: add it to --targets)")
    else:
        print(efficiency_table(at_target, lambda r: r.batch, "batch {}"))
        print("\n(medians over the shapes)")
        if device.type == "cpu":
            print(f"\n{goal_line(at_target, CPU_GOAL, f'CPU goal at {GOAL_TARGET:g}x')}")

    at_batch = [r for r in rows if r.batch == GOAL_BATCH]
    print(f"\n### Efficiency at batch {GOAL_BATCH}, by target compression\n")
    if not at_batch:
        print(f"(no rows at batch {GOAL_BATCH}: add it to --batches)")
    else:
        print(efficiency_table(at_batch, lambda r: r.target, "{:g}x"))
        print("\n(medians over the shapes)")
        if device.type == "cuda":
            print(f"\n{goal_line(at_batch, GPU_GOAL, f'GPU goal at batch {GOAL_BATCH}')}")

    print("\n### Path choice against nn.Conv2d and against the fastest path\n")
    for mode in CHOOSERS:
        picks = Counter(r.chosen[mode] for r in rows)
        right = sum(r.chosen[mode] == r.fastest for r in rows)
        regret = median(r.speedup[mode] / r.speedup[r.fastest] for r in rows)
        print(
            f"- {mode}: picked {', '.join(f'{p} in {n}' for p, n in picks.most_common())} of "
            f"{len(rows)} rows, the measured fastest path in {right}; median of its speed-up "
            f"over the fastest path's: {pct(regret)}; slower than nn.Conv2d: "
            f"{sum(r.speedup[mode] < 1 for r in rows)} rows below 1.00x, "
            f"{sum(r.speedup[mode] < SLOWER for r in rows)} below {SLOWER}x"
        )
    slower = [r for r in rows if r.auto_slower]
    print(
        f"\nGoal never slower than dense when the cost model chose the path: "
        f"{len(slower)} of {len(rows)} rows have auto below {SLOWER}x "
        f"({'met' if not slower else 'missed'})"
    )
    if slower:
        print()
        header = ["shape", "layer", "target", "batch", "auto: path (speed-up)", "fastest path"]
        body = [
            [
                r.shape,
                r.layer,
                f"{r.target:g}x",
                str(r.batch),
                f"{r.chosen['auto']} ({r.speedup['auto']:.2f}x)",
                f"{r.fastest} ({r.speedup[r.fastest]:.2f}x)",
            ]
            for r in slower
        ]
        print(table(header, body))


# -- whole model -----------------------------------------------------------------------------------
@dataclass
class ModelRow:
    method: str
    ratio_asked: float
    ratio: float = math.nan
    batch: int = 0
    params_before: int = 0
    params_after: int = 0
    mac_ratio: float = math.nan
    dense_ms: float = math.nan
    compressed_ms: float = math.nan
    speedup: float = math.nan
    paths: str = "-"
    compress_s: float = math.nan
    note: str = ""

    @property
    def efficiency(self) -> float:
        return self.speedup / self.mac_ratio

    def cells(self) -> list[str]:
        if self.note:
            return [self.method, f"{self.ratio_asked:g}", self.note, *["-"] * 8]
        return [
            self.method,
            f"{self.ratio_asked:g}",
            f"{self.ratio:.2f} ({self.params_before:,} -> {self.params_after:,})",
            str(self.batch),
            f"{self.mac_ratio:.2f}",
            f"{self.dense_ms:.3g}",
            f"{self.compressed_ms:.3g}",
            f"{self.speedup:.2f}",
            pct(self.efficiency),
            self.paths,
            "SLOWER" if self.speedup < SLOWER else "",
        ]

    def record(self) -> dict[str, Any]:
        return {"kind": "model", **asdict(self), "efficiency": self.efficiency}


MODEL_HEADER = [
    "method",
    "ratio asked",
    "achieved ratio (params)",
    "batch",
    "MAC ratio",
    "dense ms",
    "compressed ms",
    "speed-up",
    "speed-up / MAC ratio",
    "auto paths (layers)",
    f"< {SLOWER}x",
]


def model_macs(model: nn.Module, x: Tensor) -> int:
    """MACs of one forward pass of ``model`` on ``x`` (flop counter / 2)."""
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def auto_paths(model: nn.Module, x: Tensor) -> str:
    """How many factorized layers take each path on ``x`` (``"factorized 12, dense 6"``)."""
    picks: list[str] = []
    handles = []
    for m in model.modules():
        if isinstance(m, FactorizedConv2d):

            def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
                n, _, h, w = args[0].shape
                assert isinstance(module, FactorizedConv2d)
                picks.append(module.choose_path(int(n), int(h), int(w)))

            handles.append(m.register_forward_pre_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return ", ".join(f"{p} {n}" for p, n in Counter(picks).most_common()) or "-"


def densified(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every factorized layer replaced by its ``to_conv()``."""
    out = copy.deepcopy(model)
    for name, m in list(out.named_modules()):
        if isinstance(m, FactorizedConv2d):
            parent_name, _, child = name.rpartition(".")
            parent = out.get_submodule(parent_name) if parent_name else out
            setattr(parent, child, m.to_conv())
    return out


def bench_models(
    methods: Sequence[str],
    ratios: Sequence[float],
    batches: Sequence[int],
    repeat: int,
    device: torch.device,
    dtype: torch.dtype,
    precontract: bool,
) -> list[ModelRow]:
    torch.manual_seed(SEED)
    source = ResNet().eval()  # compressed on the CPU in float32, then moved
    dense = copy.deepcopy(source).to(device=device, dtype=dtype)
    inputs = {b: torch.randn(b, 1, 16, 16, device=device, dtype=dtype) for b in batches}
    dense_macs = {b: model_macs(dense, x) for b, x in inputs.items()}
    rows: list[ModelRow] = []
    print(table(MODEL_HEADER, []), flush=True)
    for method in methods:
        for target in ratios:
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    small, report = tensornet_torch.compress(
                        source, method=method, ratio=target, progress=False
                    )
            except UnreachableRatioError:
                row = ModelRow(method, target, note="not reachable")
                print("| " + " | ".join(row.cells()) + " |", flush=True)
                rows.append(row)
                continue
            seconds = time.perf_counter() - start
            small = small.to(device=device, dtype=dtype).eval()
            set_precontract(small, precontract)
            x = inputs[min(inputs)]
            ref = densified(small)(x)
            err = float((small(x) - ref).abs().max() / ref.abs().max())
            if not err <= tolerance(dtype, device):
                raise AssertionError(f"{method} {target:g}x: compressed model vs to_conv {err:.1e}")
            for batch, x in inputs.items():
                times, _ = timed(
                    {"dense": functools.partial(dense, x), "small": functools.partial(small, x)},
                    repeat,
                    device,
                    warmup=3 if device.type == "cuda" else 2,
                )
                row = ModelRow(
                    method=method,
                    ratio_asked=target,
                    ratio=report.ratio,
                    batch=batch,
                    params_before=report.model_params_before,
                    params_after=report.model_params_after,
                    mac_ratio=dense_macs[batch] / model_macs(small, x),
                    dense_ms=1e3 * min(times["dense"]),
                    compressed_ms=1e3 * min(times["small"]),
                    speedup=ratio(times, "dense", "small"),
                    paths=auto_paths(small, x),
                    compress_s=seconds,
                )
                print("| " + " | ".join(row.cells()) + " |", flush=True)
                rows.append(row)
    return rows


# -- driver ----------------------------------------------------------------------------------------
def machine(device: torch.device) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    name = platform.processor() or platform.machine()
    if device.type == "cuda":
        name = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}); host {name}"
    return (
        f"{name}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"torch {torch.__version__}, tensornet {tensornet.__version__}; torch threads "
        f"{torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op "
        f"(defaults); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def estimate(
    shapes: Sequence[Shape],
    n_families: int,
    n_targets: int,
    batches: Sequence[int],
    max_macs: float,
    repeat: int,
    device: torch.device,
    dtype: torch.dtype,
    methods: Sequence[str],
    ratios: Sequence[float],
) -> float:
    """Rough seconds of the run, from one timed ``nn.Conv2d`` call (throughput) and a small one.

    A row runs ``nn.Conv2d``, two paths and the choosers ``warm-up + repeat`` times, each
    run lasting ``max(MIN_RUN, conv time)``; the dense path costs about a convolution and
    the others about half of one. ``compress`` takes (two cores, measured) about 20 s
    per rsdtr fit, 40 s per cp fit and 4 s otherwise.
    """
    conv = nn.Conv2d(64, 64, KERNEL, padding=1, device=device, dtype=dtype).eval()
    x = torch.randn(8, 64, 28, 28, device=device, dtype=dtype)
    conv(x)
    best = math.inf
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        conv(x)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    per_mac = best / (8 * 64 * 64 * 9 * 28 * 28)
    total = 0.0
    contestants = 2 + 0.5 * (1 + len(CHOOSERS))
    for shape in shapes:
        for b in batches:
            if b * shape.macs() <= max_macs:
                call = per_mac * b * shape.macs()
                run = max(MIN_RUN[device.type], call)
                total += n_families * n_targets * (repeat + 2) * contestants * run
    fit = {"rsdtr": 20.0, "cp": 40.0}
    for m in methods:
        total += len(ratios) * fit.get(m, 4.0)
    return total


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def float_list(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip() and v.strip() != "none"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--dtype", choices=("float32", "float64", "float16", "bfloat16"), default="float32"
    )
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per contestant (5)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one shape per family, 10x, batch 1 and 8, tucker model at 5x",
    )
    parser.add_argument("--csv", type=Path, default=None, metavar="PATH", help="save every row")
    parser.add_argument(
        "--shapes", default="resnet20,resnet18", help="shape families (resnet20,resnet18)"
    )
    parser.add_argument("--batches", default="1,32,128", help="layer batches (1,32,128)")
    parser.add_argument(
        "--targets", default=None, help="kernel compression targets (5,10,20; --quick: 10)"
    )
    parser.add_argument(
        "--layers",
        default=",".join(BASE_FAMILIES),
        help=f"layer classes, of {','.join(FAMILIES)}",
    )
    parser.add_argument("--st", action="store_true", help="add the STP layers (k=2)")
    parser.add_argument(
        "--max-gmacs",
        type=float,
        default=None,
        help="skip (shape, batch) pairs above this many GMACs per dense call "
        "(default 5 on CPU, none on CUDA)",
    )
    parser.add_argument(
        "--model-methods",
        default="rsdtr,tt,tucker,cp",
        help="compress methods for the demo model (rsdtr,tt,tucker,cp; 'none' skips it)",
    )
    parser.add_argument("--model-ratios", default="5,10", help="model parameter ratios (5,10)")
    parser.add_argument("--model-batches", default="1,128", help="model batches (1,128)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument(
        "--no-precontract",
        action="store_true",
        help="layers recompute their weight-only part (e.g. the dense kernel) on every call",
    )
    parser.add_argument(
        "--tf32",
        choices=("default", "on", "off"),
        default="default",
        help="CUDA float32: TF32 in cuDNN convolutions and matmuls (default: torch's)",
    )
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda: torch.cuda.is_available() is False")
        torch.backends.cudnn.benchmark = True
        if args.tf32 != "default":
            torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
            torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
    dtype = getattr(torch, args.dtype)
    families = name_list(args.layers) + (list(ST_FAMILIES) if args.st else [])
    unknown = [f for f in families + name_list(args.shapes) if f not in {*FAMILIES, *SHAPES}]
    if unknown:
        parser.error(
            f"unknown layer or shape names {unknown}: layers {list(FAMILIES)}, "
            f"shapes {list(SHAPES)}"
        )
    shape_families = name_list(args.shapes)
    if args.quick:
        shapes = [QUICK_SHAPES[f] for f in shape_families]
        batches, model_batches = [1, 8], [1, 8]
        methods = ["tucker"] if name_list(args.model_methods) else []
        model_ratios = [5.0]
        repeat = args.repeat or 2
    else:
        shapes = [s for f in shape_families for s in SHAPES[f]]
        batches, model_batches = int_list(args.batches), int_list(args.model_batches)
        methods, model_ratios = name_list(args.model_methods), float_list(args.model_ratios)
        repeat = args.repeat or 5
    targets = float_list(args.targets or ("10" if args.quick else "5,10,20"))
    max_gmacs = (
        args.max_gmacs if args.max_gmacs is not None else 5.0 if device.type == "cpu" else math.inf
    )
    max_macs = max_gmacs * 1e9
    chosen = [FAMILIES[f] for f in dict.fromkeys(families)]

    print("## Factorized layers and compressed models: forward time against the dense ones\n")
    print(f"machine: {machine(device)}")
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy (load average above half the cores); timings suffer")
    extra = ""
    if device.type == "cuda":
        extra = (
            f"; cudnn.benchmark on; TF32 cudnn {torch.backends.cudnn.allow_tf32}, "
            f"matmul {torch.backends.cuda.matmul.allow_tf32}"
        )
    quick = " (--quick: smoke run, speed-ups not representative)" if args.quick else ""
    precontract = not args.no_precontract
    has_precontract = hasattr(TuckerConv2d(1, 1, 1, ranks=1, device="meta"), "precontract")
    print(
        f"setting: {args.dtype} on {device}{extra}; eval, torch.no_grad; seed {SEED}; "
        f"times: best of {repeat} runs per call, speed-ups: median of paired runs; forward "
        f"modes: every path of the class (PATHS), {', '.join(CHOOSERS)}"
        f"{'' if HAS_TUNED else ' (no tuned mode in this version)'}; precontract "
        f"{precontract if has_precontract else 'n/a (not in this version)'}{quick}"
    )
    seconds = estimate(
        shapes,
        len(chosen),
        len(targets),
        batches,
        max_macs,
        repeat,
        device,
        dtype,
        methods,
        model_ratios,
    )
    about = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
    print(f"estimated time: about {about} (rough; more on a busy machine)\n", flush=True)

    wall = time.perf_counter()
    records: list[dict[str, Any]] = []
    with torch.no_grad():
        if shapes and chosen and targets and batches:
            print("### Layers against nn.Conv2d (times in ms per call)")
            layer_rows = bench_layers(
                shapes, chosen, targets, batches, repeat, device, dtype, max_macs, precontract
            )
            records += [r.record() for r in layer_rows]
            if layer_rows:
                summarize_layers(layer_rows, device)
        if methods and model_ratios and model_batches:
            print(
                "\n### Whole model: tensornet_torch.demo.ResNet() (ResNet-20, input (N, 1, 16, "
                "16), random weights, not trained), compressed with forward_mode='auto'\n"
            )
            model_rows = bench_models(
                methods, model_ratios, model_batches, repeat, device, dtype, precontract
            )
            records += [r.record() for r in model_rows]
            slow = [r for r in model_rows if not r.note and r.speedup < SLOWER]
            print(f"\ncompressed models slower than the dense one (< {SLOWER}x): {len(slow)}")
    elapsed = time.perf_counter() - wall
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    print(f"\ntook {elapsed / 60:.1f} min ({elapsed:.0f} s); load average at the end: {load}")
    if args.csv is not None:
        names = list(dict.fromkeys(k for rec in records for k in rec))
        with args.csv.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=names, restval="")
            writer.writeheader()
            writer.writerows(records)
        print(f"rows written to {args.csv}")


if __name__ == "__main__":
    main()
