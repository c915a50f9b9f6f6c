"""Shared machinery of the factorized layers: nn.Conv2d geometry, padding, path choice, init.

Every factorized convolution stores its kernel as a few small ``nn.Parameter`` factors and
can run along several paths with identical results (to round-off), listed in the class's
``PATHS``:

- ``"factorized"``: a pipeline of small convolutions / contractions, one per factor;
- ``"dense"``: rebuild the kernel (:meth:`FactorizedConv2d.reconstruct`) and call
  ``F.conv2d`` once;
- layer-specific variants (e.g. :class:`~tensornet_torch.TRConv2d`'s ``"fused-spatial"``).

A path is split into a weight-only part (:meth:`FactorizedConv2d.path_weights`: the kernel,
merged cores, reshaped factors) and the part that touches the input. When no gradient is
needed (``torch.no_grad``, or parameters that do not require grad) the weight-only part is
computed once and cached until a parameter changes (``precontract``, on by default).

``forward_mode="auto"`` (the default) picks the path with the smallest estimated time for
the incoming batch, spatial size, device and dtype (:meth:`FactorizedConv2d.path_costs`,
:mod:`tensornet_torch.cost`); ``"tuned"`` times every path once per input shape and keeps the
fastest. Geometry (stride, padding including ``"same"``/``"valid"``, dilation, groups,
padding modes) is validated and interpreted by ``nn.Conv2d`` itself, instantiated on the
``meta`` device, so arguments mean exactly what they mean there.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tensornet_torch import cost
from tensornet_torch.cost import PathCost, traced_device_type

__all__ = [
    "FORWARD_MODES",
    "FactorizedConv2d",
    "balance_",
    "fast_channels_last",
    "init_product_",
    "is_channels_last",
    "one_thread_on_cpu",
    "pointwise",
]

_MKLDNN = torch.backends.mkldnn.is_available()  # read once: torch.compile cannot trace it

FORWARD_MODES = ("auto", "tuned", "factorized", "dense")
"""Values of ``forward_mode`` every layer accepts (besides the names in its ``PATHS``)."""


def is_channels_last(x: Tensor) -> bool:
    """Whether ``x`` (N, C, H, W) is stored channels-last (and not also plain contiguous)."""
    return (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )


def fast_channels_last(x: Tensor) -> bool:
    """Whether a pipeline on ``x`` should keep its narrow intermediates channels-last.

    True on CPU for the dtypes oneDNN convolves (float32, bfloat16, float16): there its
    depthwise convolutions run about 10x and its small dense ones up to 1.7x faster on
    channels-last tensors than on NCHW ones (docs/benchmarks.md). Not for float64, which
    oneDNN does not cover and whose channels-last convolutions are slower.
    """
    return (
        traced_device_type(x) == "cpu"
        and x.dtype in (torch.float32, torch.bfloat16, torch.float16)
        and _MKLDNN
    )


def pointwise(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    groups: int = 1,
    *,
    channels_last: bool = False,
) -> Tensor:
    """A 1x1 convolution of ``x`` (N, C, H, W) with ``weight`` (T, C / groups).

    Matrix products instead of ``F.conv2d`` with a 1x1 kernel, which CPU BLAS runs about
    twice as fast:

    - channels-last ``x`` to a channels-last output (one group): one GEMM
      ``(N H W, C) @ W^T``, which reads and writes that layout in place;
    - otherwise one batched product per group that writes the NCHW layout (a
      channels-last ``x`` is read as transposed matrices).

    The output is channels-last if ``channels_last``, else NCHW; an NCHW product asked
    for channels-last is copied (for narrow outputs that is cheaper than a product that
    writes that layout, which would copy the wider input instead).

    Examples
    --------
    >>> x, w = torch.randn(2, 4, 3, 3), torch.randn(6, 2)
    >>> ref = F.conv2d(x, w[:, :, None, None], groups=2)
    >>> bool(torch.allclose(pointwise(x, w, groups=2), ref, atol=1e-6))
    True
    >>> out = pointwise(x, w, groups=2, channels_last=True)
    >>> bool(torch.allclose(out, ref, atol=1e-6)), is_channels_last(out)
    (True, True)
    """
    n, c, h, w = (int(m) for m in x.shape)
    t = int(weight.shape[0])
    if groups == 1 and channels_last and is_channels_last(x):
        rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # a view
        flat = rows @ weight.t()
        if bias is not None:
            flat.add_(bias)
        return flat.reshape(n, h, w, t).permute(0, 3, 1, 2)
    out = torch.matmul(
        weight.reshape(groups, t // groups, c // groups), x.reshape(n, groups, c // groups, h * w)
    )
    if bias is not None:
        out.add_(bias.reshape(groups, t // groups, 1))  # matmul saves its inputs, not out
    out = out.reshape(n, t, h, w)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def balance_(cores: Sequence[Tensor]) -> None:
    """Rescale a chain's cores, stacked over groups on dim 0, to equal norms per group.

    Core ``j`` of group ``g`` is multiplied by ``G_g / ||core_j[g]||`` with ``G_g`` the
    geometric mean of the group's core norms, so every product of one entry per core (and
    so the kernel) is unchanged. A decomposition that leaves the norm in one core (TT-SVD's
    orthonormal cores, an ALS fit's drifting gauge) otherwise makes gradient steps wildly
    different in relative size across cores: fine-tuning an STT layer fitted with cores of
    norms 0.003 and 12 lost 20 points of accuracy in one epoch at any learning rate.
    Groups with a zero core are left alone.
    """
    with torch.no_grad():
        norms = torch.stack([torch.linalg.vector_norm(c.flatten(1), dim=1) for c in cores])
        usable = (norms > 0).all(dim=0)
        if not bool(usable.any()):
            return
        safe = torch.where(usable, norms, torch.ones_like(norms))
        target = safe.log().mean(dim=0).exp()
        for core, norm in zip(cores, safe, strict=True):
            scale = torch.where(usable, target / norm, torch.ones_like(norm))
            core.mul_(scale.reshape(-1, *([1] * (core.dim() - 1))))


def init_product_(factors: Sequence[Tensor], variance: float, terms: int) -> None:
    """Fill ``factors`` so that a sum of ``terms`` products of one entry each has ``variance``.

    A reconstructed kernel entry that sums ``terms`` products of ``len(factors)``
    independent zero-mean entries has variance ``terms * prod(var_i)``; each factor gets
    ``var_i = (variance / terms) ** (1 / len(factors))`` (Gaussian entries).
    """
    std = (variance / max(terms, 1)) ** (0.5 / len(factors))
    with torch.no_grad():
        for f in factors:
            f.normal_(0.0, std)


@contextlib.contextmanager
def one_thread_on_cpu(tensor: Tensor) -> Iterator[None]:
    """Run a kernel decomposition on one intra-op torch thread when ``tensor`` is on the CPU.

    Conv kernels are small: ALS fits issue thousands of tiny tensor products, which torch
    runs much slower on several threads than on one (measured 10-80x on 2 cores).
    ``from_conv`` of every layer runs inside this context.
    """
    if tensor.device.type != "cpu" or torch.get_num_threads() == 1:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_TRACES: dict[tuple[Any, ...], dict[str, tuple[PathCost, PathCost]]] = {}
_TRACE_CACHE_SIZE = 4096


def _tracing() -> bool:
    """Whether torch.compile / torch.export (dynamo) or torch.jit tracing is tracing us.

    Both ONNX exporters go through one of them (``dynamo=True``: torch.export; the legacy
    one: jit tracing).
    """
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing())


class FactorizedConv2d(nn.Module):
    """Base class: the geometry and path choice of a factorized ``nn.Conv2d``.

    Subclasses implement :meth:`reconstruct`, :meth:`_forward_factorized`,
    :meth:`factorized_macs`, :meth:`reset_parameters` and ``from_conv``; the base class
    provides ``forward``, bias, padding, :meth:`to_conv`, cost figures and ``extra_repr``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d`` (validated by it).
    padding_mode
        As ``nn.Conv2d``.
    device, dtype
        Of the parameters.
    forward_mode : {"auto", "tuned", "factorized", "dense"} or a name in ``PATHS``
        Path of ``forward``: ``"auto"`` picks the one with the smallest estimated time per
        input size (:meth:`path_costs`), ``"tuned"`` the one measured fastest (once per
        input shape, device, dtype and gradient mode; cached process-wide), any other
        value forces that path.

    Attributes
    ----------
    precontract : bool
        Cache the weight-only part of the path (:meth:`path_weights`) while no gradient is
        needed; on by default. The dense path then keeps one reconstructed kernel per
        layer (the size of the ``nn.Conv2d`` weight) until a parameter changes.
    """

    PATHS: tuple[str, ...] = ("factorized", "dense")
    """The forward paths of this class (``forward_mode`` may name any of them)."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap a subclass's ``from_conv`` in :func:`one_thread_on_cpu`."""
        super().__init_subclass__(**kwargs)
        method = cls.__dict__.get("from_conv")
        if isinstance(method, classmethod):
            inner = method.__func__

            @functools.wraps(inner)
            def from_conv(klass: type, conv: nn.Conv2d, *args: Any, **kw: Any) -> Any:
                weight = getattr(conv, "weight", None)
                if not isinstance(weight, Tensor):
                    return inner(klass, conv, *args, **kw)
                with one_thread_on_cpu(weight):
                    return inner(klass, conv, *args, **kw)

            cls.from_conv = classmethod(from_conv)  # type: ignore[attr-defined]

    stride: tuple[int, int]
    padding: str | tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    padding_mode: str

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        forward_mode: str = "auto",
    ) -> None:
        super().__init__()
        geometry = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=False,
            padding_mode=padding_mode,  # type: ignore[arg-type]
            device="meta",
        )
        self.in_channels = geometry.in_channels
        self.out_channels = geometry.out_channels
        self.kernel_size = tuple(geometry.kernel_size)  # type: ignore[assignment]
        self.stride = tuple(geometry.stride)  # type: ignore[assignment]
        self.padding = geometry.padding  # type: ignore[assignment]
        self.dilation = tuple(geometry.dilation)  # type: ignore[assignment]
        self.groups = geometry.groups
        self.padding_mode = geometry.padding_mode
        # (left, right, top, bottom) as F.pad takes it
        self._pad4 = tuple(int(p) for p in geometry._reversed_padding_repeated_twice)
        self.forward_mode = forward_mode
        self.precontract = True
        self._weight_cache: dict[str, tuple[list[tuple[int, int]], tuple[Tensor, ...]]] = {}
        self._choices: dict[tuple[Any, ...], str] = {}  # choose_path memo
        factory = {"device": device, "dtype": dtype}
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)

    # -- configuration ------------------------------------------------------------------------
    @property
    def forward_mode(self) -> str:
        """``"auto"``, ``"tuned"`` or a path name (``PATHS``)."""
        return self._forward_mode

    @forward_mode.setter
    def forward_mode(self, value: str) -> None:
        allowed = tuple(dict.fromkeys((*FORWARD_MODES, *type(self).PATHS)))
        if value not in allowed:
            raise ValueError(f"forward_mode must be one of {allowed}, got {value!r}")
        self._forward_mode = value

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        """``nn.Module._apply`` (``.to``, ``.cuda``, ``.half`` ...), dropping cached weights."""
        self._weight_cache.clear()
        self.__dict__.pop("_param_list", None)
        return super()._apply(fn, recurse)

    def geometry_kwargs(self) -> dict[str, Any]:
        """The ``nn.Conv2d`` constructor arguments of this layer's geometry."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "bias": self.bias is not None,
            "padding_mode": self.padding_mode,
        }

    @staticmethod
    def conv_geometry(conv: nn.Conv2d) -> dict[str, Any]:
        """Geometry arguments of ``conv``, for ``from_conv`` (checks that it is an nn.Conv2d)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
        return {
            "in_channels": conv.in_channels,
            "out_channels": conv.out_channels,
            "kernel_size": tuple(conv.kernel_size),
            "stride": tuple(conv.stride),
            "padding": conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
            "dilation": tuple(conv.dilation),
            "groups": conv.groups,
            "bias": conv.bias is not None,
            "padding_mode": conv.padding_mode,
        }

    @property
    def _factory(self) -> dict[str, Any]:
        p = next(self.parameters())
        return {"device": p.device, "dtype": p.dtype}

    # -- the two paths ------------------------------------------------------------------------
    def reconstruct(self) -> Tensor:
        """The full kernel ``(out_channels, in_channels / groups, kh, kw)``, differentiable."""
        raise NotImplementedError

    @property
    def weight(self) -> Tensor:
        """The reconstructed kernel (as ``nn.Conv2d.weight``; rebuilt on every access)."""
        return self.reconstruct()

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        """The factorized pipeline on an already padded-where-needed batch ``x`` (N, C, H, W).

        The spatial sublayers use zero ``padding`` ``(ph, pw)`` and the layer's stride and
        dilation; the result includes the bias.
        """
        raise NotImplementedError

    def _prepare(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Apply non-zero or asymmetric padding up front; the rest is symmetric zero padding."""
        left, right, top, bottom = self._pad4
        if self.padding_mode != "zeros":
            return F.pad(x, (left, right, top, bottom), mode=self.padding_mode), (0, 0)
        if left == right and top == bottom:
            return x, (top, left)
        return F.pad(x, (left, right, top, bottom)), (0, 0)

    def path_weights(self, path: str) -> tuple[Tensor, ...]:
        """The weight-only part of ``path``: what it computes from the parameters alone.

        ``"dense"``: the kernel. Other paths: whatever their pipeline contracts before it
        touches the input (merged cores, reshaped factors; subclasses). Cached while no
        gradient is needed (``precontract``).
        """
        if path == "dense":
            # contiguous like nn.Conv2d's weight: a transposed kernel (Tucker's, say) makes
            # oneDNN reorder it on every call (measured: 17.6 vs 20.9 us at 16 channels,
            # 1.25 vs 2.2 ms at 512), and a channels-last one changes the output's layout
            return (self.reconstruct().contiguous(),)
        return self._factorized_weights(path)

    def _factorized_weights(self, path: str) -> tuple[Tensor, ...]:
        """Weight-only part of a factorized path (default: none)."""
        return ()

    def _factorized_apply(
        self, path: str, x: Tensor, padding: tuple[int, int], weights: Sequence[Tensor]
    ) -> Tensor:
        """A factorized path on a prepared batch, given :meth:`path_weights` (subclasses)."""
        return self._forward_factorized(x, padding)

    def _path_apply(
        self, path: str, x: Tensor, padding: tuple[int, int], weights: Sequence[Tensor]
    ) -> Tensor:
        if path == "dense":
            bias = self._parameters["bias"]  # not through nn.Module.__getattr__ (0.5 us)
            return F.conv2d(x, weights[0], bias, self.stride, padding, self.dilation, self.groups)
        return self._factorized_apply(path, x, padding, weights)

    def _run_path(self, path: str, x: Tensor, cached: bool | None = None) -> Tensor:
        """``path`` on a raw batch ``x`` (N, C, H, W): padding, weights, pipeline.

        ``cached``: whether the weights may come from the cache (default: work it out).
        """
        prepared, padding = self._prepare(x)
        weights = self._weights(path) if cached is None else self._path_weights(path, cached)
        return self._path_apply(path, prepared, padding, weights)

    def _own_parameters(self) -> list[Tensor]:
        """All parameters (``nn.ParameterList`` of cores included), listed once.

        The list is rebuilt after ``_apply`` (``.to`` ...) and after an attribute is set
        (a parameter or a module replaced); in-place updates keep the same objects.
        """
        cached = self.__dict__.get("_param_list")
        if cached is None:
            cached = list(self.parameters())
            self.__dict__["_param_list"] = cached
        return cached

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__.pop("_param_list", None)
        super().__setattr__(name, value)

    def _gradient_free(self) -> bool:
        return not torch.is_grad_enabled() or not any(
            p.requires_grad for p in self._own_parameters()
        )

    def _weights(self, path: str) -> tuple[Tensor, ...]:
        """:meth:`path_weights`, from the cache when allowed and still valid."""
        cached = self.precontract and self._gradient_free() and not _tracing()
        return self._path_weights(path, cached)

    def _path_weights(self, path: str, cached: bool) -> tuple[Tensor, ...]:
        """:meth:`path_weights`; with ``cached``, from the cache while it is still valid."""
        if not cached:
            return self.path_weights(path)
        key = [(p.data_ptr(), p._version) for p in self._own_parameters()]
        hit = self._weight_cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        weights = tuple(w.detach().contiguous() for w in self.path_weights(path))
        self._weight_cache[path] = (key, weights)
        return weights

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` of shape (N, C, H, W) or (C, H, W), like ``nn.Conv2d``."""
        # kept lean: at batch 1 a small layer's call lasts 20-100 us, so every microsecond
        # of Python here is a percent against nn.Conv2d
        shape = x.shape
        unbatched = len(shape) == 3
        if unbatched:
            x = x.unsqueeze(0)
            shape = x.shape
        if len(shape) != 4 or shape[1] != self.in_channels:
            self._check_input(x, unbatched)
        tracing = _tracing()
        grad_free = self._gradient_free()
        mode = self._forward_mode
        if mode == "tuned" and not tracing:
            path = self._tuned_path(x)
        elif mode == "auto" or mode == "tuned":
            path = self._auto_path(shape[0], shape[2], shape[3], grad_free, tracing)
        else:
            path = mode
        out = self._run_path(path, x, self.precontract and grad_free and not tracing)
        return out.squeeze(0) if unbatched else out

    def _check_input(self, x: Tensor, unbatched: bool) -> None:
        name = type(self).__name__
        if x.dim() != 4:
            raise ValueError(
                f"{name} expects input of shape (N, C, H, W) or (C, H, W), got shape "
                f"{tuple(x.shape)}"
            )
        if int(x.shape[1]) != self.in_channels:
            shape = tuple(x.shape[1:]) if unbatched else tuple(x.shape)
            raise ValueError(
                f"{name} expects {self.in_channels} input channels, got input of shape {shape}"
            )

    def _structure(self) -> tuple[Any, ...]:
        """What the cost of a path depends on besides the input: class, geometry, shapes."""
        return (
            type(self).__qualname__,
            tuple(sorted(self.geometry_kwargs().items())),
            self.ranks_repr(),
            tuple((name, tuple(p.shape)) for name, p in self.named_parameters()),
        )

    def _tuned_path(self, x: Tensor) -> str:
        """The path measured fastest on inputs like ``x`` (timed on ``x`` the first time)."""
        key = (
            self._structure(),
            tuple(x.shape),
            is_channels_last(x),
            str(x.device),
            x.dtype,
            self._gradient_free(),
            self.precontract,
        )
        path = cost.tuned_path(key)
        if path is None:
            times = {
                p: cost.measure(functools.partial(self._run_path, p, x), x.device)
                for p in type(self).PATHS
            }
            path = min(times, key=times.__getitem__)
            cost.remember_path(key, path)
        return path

    # -- cost model ---------------------------------------------------------------------------
    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial output size for an input of ``height x width``."""
        left, right, top, bottom = self._pad4
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        ho = (height + top + bottom - dh * (kh - 1) - 1) // sh + 1
        wo = (width + left + right - dw * (kw - 1) - 1) // sw + 1
        return ho, wo

    def pipeline_input_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the tensor the factorized pipeline starts from.

        Non-zero padding modes and asymmetric padding (``"same"`` with an even kernel) are
        applied to the input up front (:meth:`_prepare`); symmetric zero padding is left to
        the spatial sublayers.
        """
        left, right, top, bottom = self._pad4
        if self.padding_mode != "zeros" or left != right or top != bottom:
            return height + top + bottom, width + left + right
        return height, width

    def dense_macs(self, height: int, width: int) -> int:
        """Multiply-accumulates of ``nn.Conv2d`` with this geometry, per sample."""
        ho, wo = self.output_size(height, width)
        kh, kw = self.kernel_size
        return ho * wo * self.out_channels * (self.in_channels // self.groups) * kh * kw

    def factorized_macs(self, height: int, width: int) -> int:
        """Multiply-accumulates of the factorized pipeline, per sample."""
        raise NotImplementedError

    def reconstruct_macs(self) -> int:
        """Multiply-accumulates of one :meth:`reconstruct` call (default: kernel entries)."""
        kh, kw = self.kernel_size
        return self.out_channels * (self.in_channels // self.groups) * kh * kw

    def precontract_macs(self) -> int:
        """MACs the factorized path spends once per call, whatever the batch (default 0)."""
        return 0

    def path_macs(self, batch: int, height: int, width: int) -> dict[str, int]:
        """MACs of one forward call on each path: the dense one rebuilds the kernel once."""
        return {
            "factorized": batch * self.factorized_macs(height, width) + self.precontract_macs(),
            "dense": batch * self.dense_macs(height, width) + self.reconstruct_macs(),
        }

    def path_costs(
        self,
        batch: int,
        height: int,
        width: int,
        *,
        device: Any = None,
        dtype: torch.dtype | None = None,
        precontracted: bool | None = None,
    ) -> dict[str, PathCost]:
        """Kernels, MACs and bytes of one forward call on each path (``PATHS``).

        Traced once on ``meta`` tensors (:func:`tensornet_torch.cost.trace_cost`) and cached
        per layer structure and arguments.

        Parameters
        ----------
        batch, height, width : int
            Input size.
        device, dtype
            What the input would be on; default: the parameters'.
        precontracted : bool, optional
            Leave out the weight-only part (:meth:`path_weights`), as when it is cached.
            Default: whether ``forward`` would use the cache right now (``precontract``
            and no gradient needed).
        """
        factory = self._factory
        dev = torch.device(factory["device"] if device is None else device)
        dt = factory["dtype"] if dtype is None else dtype
        if precontracted is None:
            precontracted = self.precontract and self._gradient_free()
        key = (self._structure(), int(batch), int(height), int(width), dev.type, dt)
        traced = _TRACES.get(key)
        if traced is None:
            traced = {p: self._trace_path(p, key[1:4], dev.type, dt) for p in type(self).PATHS}
            if len(_TRACES) >= _TRACE_CACHE_SIZE:
                _TRACES.pop(next(iter(_TRACES)))
            _TRACES[key] = traced
        return {p: apply if precontracted else prep + apply for p, (prep, apply) in traced.items()}

    def _trace_path(
        self, path: str, size: tuple[int, int, int], device_type: str, dtype: torch.dtype
    ) -> tuple[PathCost, PathCost]:
        """(weight-only cost, input-dependent cost) of ``path``, traced on meta tensors."""
        modules = list(self.modules())  # the layer and its ParameterLists of cores
        saved = [dict(m._parameters) for m in modules]
        try:
            for module, params in zip(modules, saved, strict=True):
                for name, p in params.items():
                    if p is not None:
                        module._parameters[name] = torch.empty(  # type: ignore[assignment]
                            p.shape, device="meta", dtype=dtype
                        )
            prep, weights = cost.trace_cost(
                functools.partial(self.path_weights, path), device=device_type
            )
            x = torch.empty(size[0], self.in_channels, *size[1:], device="meta", dtype=dtype)

            def apply() -> Tensor:
                prepared, padding = self._prepare(x)
                return self._path_apply(path, prepared, padding, weights)

            run, _ = cost.trace_cost(apply, device=device_type)
        finally:
            for module, params in zip(modules, saved, strict=True):
                module._parameters.update(params)
        return prep, run

    def estimated_seconds(
        self, batch: int, height: int, width: int, *, device: Any = None, dtype: Any = None
    ) -> dict[str, float]:
        """Estimated time of one forward call on each path (:meth:`path_costs` + profile)."""
        factory = self._factory
        dev = factory["device"] if device is None else device
        dt = factory["dtype"] if dtype is None else dtype
        profile = cost.get_profile(dev, dt)
        costs = self.path_costs(batch, height, width, device=dev, dtype=dt)
        return {p: c.seconds(profile) for p, c in costs.items()}

    def choose_path(self, batch: int, height: int, width: int) -> str:
        """The path ``forward`` takes for this input size on the parameters' device/dtype.

        ``forward_mode`` if it names a path; for ``"auto"`` the smallest
        :meth:`estimated_seconds` (the first of ``PATHS`` on ties). For ``"tuned"`` this is
        the estimate too: ``forward`` times the paths on the real input instead. While
        ``torch.compile``, ``torch.export`` or ONNX export trace the layer, ``"auto"`` and
        ``"tuned"`` compare MAC counts (:meth:`path_macs`) instead.
        """
        if self.forward_mode not in ("auto", "tuned"):
            return self.forward_mode
        return self._auto_path(batch, height, width, self._gradient_free(), _tracing())

    def _auto_path(
        self, batch: int, height: int, width: int, grad_free: bool, tracing: bool
    ) -> str:
        """:meth:`choose_path` for ``"auto"`` (memoized per size, device, dtype, cache use)."""
        if tracing:
            macs = self.path_macs(batch, height, width)
            return "factorized" if macs["factorized"] <= macs["dense"] else "dense"
        first = self._own_parameters()[0]
        key = (
            batch,
            height,
            width,
            first.device,
            first.dtype,
            self.precontract and grad_free,
            cost._PROFILES_VERSION[0],
        )
        path = self._choices.get(key)
        if path is None:
            seconds = self.estimated_seconds(batch, height, width)
            path = min(type(self).PATHS, key=seconds.__getitem__)
            if len(self._choices) >= 256:
                self._choices.clear()
            self._choices[key] = path
        return path

    @property
    def num_params(self) -> int:
        """Entries of all parameters (factors and bias)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def dense_num_params(self) -> int:
        """Parameters of the equivalent ``nn.Conv2d`` (kernel and bias)."""
        kh, kw = self.kernel_size
        kernel = self.out_channels * (self.in_channels // self.groups) * kh * kw
        return kernel + (self.out_channels if self.bias is not None else 0)

    # -- conversion and init ------------------------------------------------------------------
    def to_conv(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with the reconstructed kernel and the bias (same device/dtype)."""
        conv = nn.Conv2d(**self.geometry_kwargs(), **self._factory)
        with torch.no_grad():
            conv.weight.copy_(self.reconstruct())
            if self.bias is not None:
                assert conv.bias is not None
                conv.bias.copy_(self.bias)
        return conv

    def kernel_variance(self) -> float:
        """Variance of ``nn.Conv2d``'s default kernel init: ``1 / (3 fan_in)``."""
        kh, kw = self.kernel_size
        return 1.0 / (3.0 * (self.in_channels // self.groups) * kh * kw)

    def reset_bias(self) -> None:
        """``nn.Conv2d``'s bias init: uniform in ``±1/sqrt(fan_in)``."""
        if self.bias is not None:
            kh, kw = self.kernel_size
            bound = 1.0 / math.sqrt((self.in_channels // self.groups) * kh * kw)
            with torch.no_grad():
                self.bias.uniform_(-bound, bound)

    def copy_bias_(self, conv: nn.Conv2d) -> None:
        """Take ``conv``'s bias (``from_conv``)."""
        if self.bias is not None and conv.bias is not None:
            with torch.no_grad():
                self.bias.copy_(conv.bias.detach())

    def ranks_repr(self) -> str:
        """The format-specific part of ``extra_repr`` (subclasses)."""
        return ""

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        extra = self.ranks_repr()
        if extra:
            s += f", {extra}"
        if self.forward_mode != "auto":
            s += f", forward_mode={self.forward_mode!r}"
        return s
