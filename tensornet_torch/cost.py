"""Cost model of the factorized layers: work, memory traffic and kernel launches per path.

A factorized layer can compute its output along several paths (``"dense"``: rebuild the
kernel and run one convolution; ``"factorized"``: a pipeline of small convolutions and
matrix products; some layers have more, see ``PATHS`` of each layer class). Which one is
fastest depends on the input size, the batch, the device and the dtype, not only on the
multiply-accumulate count: a pipeline of thin products moves every intermediate through
memory and launches one kernel per stage.

This module gives the pieces the layers use to choose:

- :func:`trace_cost` runs a path once on ``meta`` tensors (no data, no arithmetic; about
  10 ms) and records, for every ATen kernel it launches, the multiply-accumulates (from
  torch's FLOP formulas) and the bytes it reads and writes. Views cost nothing. The
  result is a :class:`PathCost`, exact for the code that actually runs.
- :class:`DeviceProfile` turns a :class:`PathCost` into seconds with a per-kernel
  roofline: ``max(macs / macs_per_s, bytes / bytes_per_s) + launch_s`` summed over the
  kernels. :func:`get_profile` returns the profile of a device and dtype: fixed defaults
  (so that the choice is reproducible), or what :func:`calibrate` measured on this
  machine and :func:`set_profile` installed.
- :func:`measure` times a callable (best of a few runs, synchronized on CUDA); the layers'
  ``forward_mode="tuned"`` uses it to time every path once per input shape, device, dtype
  and gradient mode, and caches the winner process-wide (:func:`clear_tuning_cache`).

Examples
--------
>>> import torch
>>> from tensornet_torch.layers import TuckerConv2d
>>> layer = TuckerConv2d(64, 64, 3, padding=1, ranks=(16, 16))
>>> costs = layer.path_costs(8, 32, 32)
>>> sorted(costs)
['dense', 'factorized']
>>> costs["factorized"].macs < costs["dense"].macs
True
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    "DEFAULT_PROFILES",
    "DeviceProfile",
    "Kernel",
    "PathCost",
    "calibrate",
    "clear_tuning_cache",
    "get_profile",
    "measure",
    "set_profile",
    "trace_cost",
    "traced_device_type",
]


class Kernel(NamedTuple):
    """One launched kernel of a path."""

    kind: str
    """``"conv"`` (a convolution), ``"gemm"`` (a matrix product) or ``"memory"`` (the rest:
    copies, elementwise, reductions)."""
    macs: int
    """Multiply-accumulates."""
    bytes: int
    """Bytes read plus written."""
    allocated: int = 0
    """Bytes of the largest output the kernel allocates (0 for in-place kernels)."""
    channels: int = 0
    """Output channels per group of a convolution (0: not a convolution, or a depthwise
    one, which is vectorized across its groups)."""


@dataclass(frozen=True)
class PathCost:
    """Work of one forward path: the kernels it launches, in order.

    Attributes
    ----------
    kernels : tuple of Kernel
        Kind, multiply-accumulates and bytes read plus written of each kernel.
    """

    kernels: tuple[Kernel, ...]

    @property
    def macs(self) -> int:
        """Multiply-accumulates of all kernels."""
        return sum(k.macs for k in self.kernels)

    @property
    def bytes(self) -> int:
        """Bytes read and written by all kernels (an upper bound on memory traffic)."""
        return sum(k.bytes for k in self.kernels)

    @property
    def launches(self) -> int:
        """Number of kernels."""
        return len(self.kernels)

    def __add__(self, other: PathCost) -> PathCost:
        return PathCost(self.kernels + other.kernels)

    def seconds(self, profile: DeviceProfile) -> float:
        """Estimated time on ``profile``'s device (:meth:`DeviceProfile.seconds`)."""
        return profile.seconds(self)


@dataclass(frozen=True)
class DeviceProfile:
    """Throughput figures of a device and dtype for the roofline estimate.

    Attributes
    ----------
    macs_per_s : float
        Multiply-accumulates per second of matrix products (``"gemm"`` kernels).
    bytes_per_s : float
        Memory bandwidth seen by a large elementwise kernel writing a fresh buffer (on
        CPU this includes the page faults of newly mapped memory).
    launch_s : float
        Fixed cost of one kernel (dispatch, launch, threading).
    conv_macs_per_s : float, optional
        Multiply-accumulates per second of convolutions; default ``macs_per_s``.
    conv_launch_s : float, optional
        Fixed cost of one convolution (algorithm selection, layout reorders of small
        inputs); default ``launch_s``.
    fresh_threshold : int, optional
        Outputs of at least this many bytes come from freshly mapped memory (glibc maps
        blocks above its mmap threshold, at most 32 MiB, anew on every allocation) and
        are written at ``fresh_bytes_per_s`` instead (page faults); None: never.
    fresh_bytes_per_s : float, optional
        Write rate into freshly mapped memory.
    conv_lanes : int, optional
        A convolution with ``c < conv_lanes`` output channels per group (``Kernel.channels``)
        runs at ``c / conv_lanes`` of ``conv_macs_per_s`` and moves ``conv_lanes / c`` times
        its bytes: its SIMD lanes are partly idle and its blocked layout is padded (measured
        on CPU, float32: 16 -> 16 channels 64 GMAC/s, 8 -> 8 33, 4 -> 4 15 at batch 128 and
        5 at batch 512, where the padded buffers pass the mmap threshold; 64 -> 4 18).
        None: no such slowdown.
    """

    macs_per_s: float
    bytes_per_s: float
    launch_s: float
    conv_macs_per_s: float | None = None
    conv_launch_s: float | None = None
    fresh_threshold: int | None = None
    fresh_bytes_per_s: float | None = None
    conv_lanes: int | None = None

    def __post_init__(self) -> None:
        for name in ("macs_per_s", "bytes_per_s", "conv_macs_per_s", "fresh_bytes_per_s"):
            value = getattr(self, name)
            if value is None and name != "macs_per_s" and name != "bytes_per_s":
                continue
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("launch_s", "conv_launch_s"):
            value = getattr(self, name)
            if value is None and name == "conv_launch_s":
                continue
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        lanes = self.conv_lanes
        if lanes is not None and (
            isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1
        ):
            raise ValueError(f"conv_lanes must be a positive int or None, got {lanes!r}")
        if (self.fresh_threshold is None) != (self.fresh_bytes_per_s is None):
            raise ValueError("fresh_threshold and fresh_bytes_per_s go together (both or neither)")

    def kernel_seconds(self, kernel: Kernel) -> float:
        """``max(macs / rate, bytes / bytes_per_s) + launch + fresh`` (rate, launch by kind).

        A narrow convolution's rate is scaled by ``channels / conv_lanes``, its bytes and
        allocation by the inverse (the blocked layout pads channels to a vector). ``fresh`` is
        ``allocated / fresh_bytes_per_s`` when the kernel's output is at least
        ``fresh_threshold`` bytes, else 0.
        """
        moved, allocated = kernel.bytes, kernel.allocated
        if kernel.kind == "conv":
            rate = self.conv_macs_per_s or self.macs_per_s
            if self.conv_lanes is not None and 0 < kernel.channels < self.conv_lanes:
                # idle lanes, and the blocked layout pads the channels to a full vector
                padding = self.conv_lanes / kernel.channels
                rate /= padding
                moved, allocated = int(moved * padding), int(allocated * padding)
            launch = self.launch_s if self.conv_launch_s is None else self.conv_launch_s
        else:
            rate, launch = self.macs_per_s, self.launch_s
        seconds = max(kernel.macs / rate, moved / self.bytes_per_s) + launch
        if (
            self.fresh_threshold is not None
            and self.fresh_bytes_per_s is not None
            and allocated >= self.fresh_threshold
        ):
            seconds += allocated / self.fresh_bytes_per_s
        return seconds

    def seconds(self, cost: PathCost) -> float:
        """The sum of :meth:`kernel_seconds` over the kernels of ``cost``."""
        return sum(self.kernel_seconds(k) for k in cost.kernels)


DEFAULT_PROFILES: dict[tuple[str, torch.dtype], DeviceProfile] = {
    # calibrate() on the 2-core AVX-512 VM of the benchmarks, 2 threads, rounded: float32
    # products 6.5e10 MAC/s, 3x3 convolutions 5.5e10 (float64: 3e10 and 1e10, no oneDNN),
    # ~20 GB/s through reused buffers, 3 GB/s into freshly mapped ones (page faults; glibc
    # maps blocks of 32 MiB and more anew); per call 15 us and per convolution 40 us, the
    # cost of small matrix products and convolutions measured inside the layers' pipelines;
    # half precisions untested here, given the float32 figures
    # convolutions narrower than 16 output channels (float64: 32) slow down in proportion
    ("cpu", torch.float32): DeviceProfile(
        6.5e10, 2.0e10, 1.5e-5, 5.5e10, 4.0e-5, 32 << 20, 3.0e9, conv_lanes=16
    ),
    ("cpu", torch.float64): DeviceProfile(
        3.0e10, 2.0e10, 1.5e-5, 1.0e10, 4.0e-5, 32 << 20, 3.0e9, conv_lanes=32
    ),
    ("cpu", torch.bfloat16): DeviceProfile(
        6.5e10, 2.0e10, 1.5e-5, 5.5e10, 4.0e-5, 32 << 20, 3.0e9, conv_lanes=16
    ),
    ("cpu", torch.float16): DeviceProfile(
        6.5e10, 2.0e10, 1.5e-5, 5.5e10, 4.0e-5, 32 << 20, 3.0e9, conv_lanes=16
    ),
    # H100 SXM data-sheet figures, discounted (not measured: no GPU in the sessions so far):
    # FP32 67 TFLOP/s, FP64 34 (non-tensor-core), BF16/FP16 tensor cores ~990 TFLOP/s dense;
    # HBM3 3.35 TB/s; ~5 us per launch
    ("cuda", torch.float32): DeviceProfile(2.5e13, 2.5e12, 5.0e-6),
    ("cuda", torch.float64): DeviceProfile(1.5e13, 2.5e12, 5.0e-6),
    ("cuda", torch.bfloat16): DeviceProfile(2.0e14, 2.5e12, 5.0e-6),
    ("cuda", torch.float16): DeviceProfile(2.0e14, 2.5e12, 5.0e-6),
}
"""Default profiles by ``(device type, dtype)``; see :func:`get_profile` for the fallback."""

_PROFILES: dict[tuple[str, torch.dtype], DeviceProfile] = {}
_PROFILES_VERSION = [0]


def profiles_version() -> int:
    """A counter bumped by every :func:`set_profile` (layers memoize their choice on it)."""
    return _PROFILES_VERSION[0]


def _key(device: Any, dtype: torch.dtype) -> tuple[str, torch.dtype]:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
    return torch.device(device).type, dtype


def get_profile(device: Any, dtype: torch.dtype) -> DeviceProfile:
    """The profile used for ``device`` and ``dtype``.

    The one installed by :func:`set_profile` (or :func:`calibrate`) if any, else
    :data:`DEFAULT_PROFILES`; unknown device types fall back to the CUDA figures, unknown
    dtypes to the device's float32 figures.

    Examples
    --------
    >>> get_profile("cpu", torch.float32).launch_s > 0
    True
    """
    key = _key(device, dtype)
    if key in _PROFILES:
        return _PROFILES[key]
    if key in DEFAULT_PROFILES:
        return DEFAULT_PROFILES[key]
    kind = key[0] if (key[0], torch.float32) in DEFAULT_PROFILES else "cuda"
    return DEFAULT_PROFILES.get((kind, dtype), DEFAULT_PROFILES[(kind, torch.float32)])


def set_profile(device: Any, dtype: torch.dtype, profile: DeviceProfile | None) -> None:
    """Install ``profile`` for ``device``'s type and ``dtype`` (``None`` restores the default).

    Raises
    ------
    TypeError
        If ``profile`` is neither a :class:`DeviceProfile` nor None.
    """
    key = _key(device, dtype)
    _PROFILES_VERSION[0] += 1
    if profile is None:
        _PROFILES.pop(key, None)
        return
    if not isinstance(profile, DeviceProfile):
        raise TypeError(f"profile must be a DeviceProfile or None, got {type(profile).__name__}")
    _PROFILES[key] = profile


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: Any, *, repeat: int = 3, warmup: int = 1) -> float:
    """Best wall-clock time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs.

    CUDA work is synchronized before and after each run.

    Raises
    ------
    ValueError
        If ``repeat < 1`` or ``warmup < 0``.
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"repeat must be >= 1 and warmup >= 0, got {repeat} and {warmup}")
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        _synchronize(dev)
        start = time.perf_counter()
        fn()
        _synchronize(dev)
        best = min(best, time.perf_counter() - start)
    return best


def calibrate(
    device: Any = "cpu", dtype: torch.dtype = torch.float32, *, install: bool = True
) -> DeviceProfile:
    """Measure a :class:`DeviceProfile` on this machine (about a second).

    ``macs_per_s`` from a 1024 x 1024 x 1024 matrix product, ``bytes_per_s`` from adding
    two 32 MiB tensors into a third, ``launch_s`` from adding one-element tensors; on CPU
    ``fresh_bytes_per_s`` from the extra time of the same addition into a new tensor;
    ``conv_macs_per_s`` from a 3x3 convolution 64 -> 64 on a batch of 8 images of 32 x 32
    and ``conv_launch_s`` from a 3x3 convolution 4 -> 4 on one 4 x 4 image;
    ``conv_lanes`` is the default profile's (not measured). With
    ``install`` (the default) the layers use it from then on (:func:`set_profile`).

    Examples
    --------
    >>> profile = calibrate("cpu", install=False)
    >>> profile.macs_per_s > 0 and profile.bytes_per_s > 0
    True
    """
    dev = torch.device(device)
    _key(dev, dtype)
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device=dev, dtype=dtype)

    n = 1024
    a, b = rand(n, n), rand(n, n)
    gemm = measure(lambda: a @ b, dev, repeat=3)
    elems = (32 << 20) // torch.empty((), dtype=dtype).element_size()
    u, v, w = rand(elems), rand(elems), rand(elems)
    stream = measure(lambda: torch.add(u, v, out=w), dev, repeat=3)
    fresh = measure(lambda: u + v, dev, repeat=3)
    one = rand(1)
    launch = measure(lambda: [one + one for _ in range(100)], dev, repeat=5) / 100
    x, w = rand(8, 64, 32, 32), rand(64, 64, 3, 3)
    conv = measure(lambda: F.conv2d(x, w, padding=1), dev, repeat=3)
    tiny_x, tiny_w = rand(1, 4, 4, 4), rand(4, 4, 3, 3)
    conv_launch = measure(
        lambda: [F.conv2d(tiny_x, tiny_w, padding=1) for _ in range(100)], dev, repeat=5
    )
    profile = DeviceProfile(
        macs_per_s=n**3 / max(gemm - launch, 1e-9),
        bytes_per_s=3 * elems * u.element_size() / max(stream - launch, 1e-9),
        launch_s=launch,
        conv_macs_per_s=8 * 32 * 32 * 64 * 64 * 9 / max(conv - conv_launch / 100, 1e-9),
        conv_launch_s=conv_launch / 100,
        conv_lanes=_default_lanes(dev.type, dtype),
    )
    if dev.type == "cpu":  # freshly mapped outputs: the extra time of the fresh-output add
        extra = max(fresh - stream, 1e-9)
        profile = replace(
            profile, fresh_threshold=32 << 20, fresh_bytes_per_s=elems * u.element_size() / extra
        )
    if install:
        set_profile(dev, dtype, profile)
    return profile


def _default_lanes(device_type: str, dtype: torch.dtype) -> int | None:
    default = DEFAULT_PROFILES.get((device_type, dtype))
    return None if default is None else default.conv_lanes


# -- tracing on meta tensors ---------------------------------------------------------------------
_TRACED_DEVICE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tensornet_traced_device", default=None
)


def traced_device_type(tensor: torch.Tensor) -> str:
    """The device type ``tensor`` stands for: its own, or the traced one for meta tensors."""
    kind = tensor.device.type
    if kind == "meta":
        return _TRACED_DEVICE.get() or kind
    return kind


def _macs_of(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> int:
    try:
        from torch.utils.flop_counter import flop_registry
    except ImportError:  # pragma: no cover - torch without the registry
        return 0
    formula = flop_registry.get(func.overloadpacket)
    if formula is None:
        return 0
    return int(formula(*args, **kwargs, out_val=out)) // 2


_FREE = {
    # no data movement: reinterpretations of a buffer and allocations
    torch.ops.aten._unsafe_view,
    torch.ops.aten._reshape_alias,
    torch.ops.aten.lift_fresh,
    torch.ops.aten.empty,
    torch.ops.aten.empty_strided,
    torch.ops.aten.empty_like,
}


_CONV = {
    torch.ops.aten.convolution,
    torch.ops.aten._convolution,
    torch.ops.aten.cudnn_convolution,
    torch.ops.aten.mkldnn_convolution,
}
_GEMM = {torch.ops.aten.mm, torch.ops.aten.bmm, torch.ops.aten.addmm, torch.ops.aten.baddbmm}


def _is_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor)


def _conv_channels(args: tuple[Any, ...]) -> int:
    """Output channels per group of a convolution call (0: depthwise or unknown)."""
    weight = args[1] if len(args) > 1 else None
    last = args[-1] if args else None
    groups = last if isinstance(last, int) and not isinstance(last, bool) else 1
    if not isinstance(weight, torch.Tensor) or weight.dim() < 3 or groups < 1:
        return 0
    per_group = int(weight.shape[0]) // groups
    if groups > 1 and int(weight.shape[1]) == 1 and per_group == 1:
        return 0  # depthwise: vectorized across the groups
    return per_group


class _KernelRecorder(TorchDispatchMode):
    """Records ``(macs, bytes)`` of every non-view ATen kernel run under it."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[Kernel] = []

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.namespace != "aten" or func.is_view or func.overloadpacket in _FREE:
            return out
        inputs = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if _is_tensor(t)]
        outputs = [t for t in torch.utils._pytree.tree_leaves(out) if _is_tensor(t)]
        moved = sum(t.numel() * t.element_size() for t in (*inputs, *outputs))
        fresh = [t for t in outputs if not any(t is i for i in inputs)]
        allocated = max((t.numel() * t.element_size() for t in fresh), default=0)
        packet = func.overloadpacket
        kind = "conv" if packet in _CONV else "gemm" if packet in _GEMM else "memory"
        channels = _conv_channels(args) if kind == "conv" else 0
        macs = _macs_of(func, args, kwargs, out)
        self.kernels.append(Kernel(kind, macs, moved, allocated, channels))
        return out


@contextlib.contextmanager
def _tracing(device_type: str) -> Iterator[_KernelRecorder]:
    token = _TRACED_DEVICE.set(device_type)
    try:
        with torch.no_grad(), _KernelRecorder() as recorder:
            yield recorder
    finally:
        _TRACED_DEVICE.reset(token)


def trace_cost(fn: Callable[..., Any], *args: Any, device: Any = "cpu") -> tuple[PathCost, Any]:
    """Run ``fn(*args)`` on meta tensors and record the cost of every kernel it launches.

    ``args`` should be ``meta`` tensors (build them with ``torch.empty(..., device="meta")``);
    ``device`` is the device type they stand for, which layers consult through
    :func:`traced_device_type` where they pick device-specific layouts.

    Returns
    -------
    (PathCost, result)
        The kernels' costs and what ``fn`` returned (meta tensors).

    Examples
    --------
    >>> a = torch.empty(64, 32, device="meta")
    >>> b = torch.empty(32, 16, device="meta")
    >>> cost, out = trace_cost(torch.matmul, a, b)
    >>> cost.macs, cost.launches, tuple(out.shape)
    (32768, 1, (64, 16))
    """
    with _tracing(torch.device(device).type) as recorder:
        result = fn(*args)
    return PathCost(tuple(recorder.kernels)), result


# -- tuning cache ------------------------------------------------------------------------------
_TUNED: dict[tuple[Any, ...], str] = {}


def clear_tuning_cache() -> None:
    """Forget every path chosen by ``forward_mode="tuned"`` (they are re-measured)."""
    _TUNED.clear()


def tuned_path(key: tuple[Any, ...]) -> str | None:
    """The path measured fastest for ``key``, if measured (used by the layers)."""
    return _TUNED.get(key)


def remember_path(key: tuple[Any, ...], path: str) -> None:
    """Record ``path`` as the fastest for ``key`` (used by the layers)."""
    _TUNED[key] = path
