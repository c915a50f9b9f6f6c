"""Tucker-2 convolution: 1x1 (channels in) -> kh x kw core -> 1x1 (channels out)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet as tn
from tensornet_torch.layers._base import (
    FactorizedConv2d,
    fast_channels_last,
    init_product_,
    is_channels_last,
    pointwise,
)

__all__ = ["TuckerConv2d", "check_pair_ranks", "pad_factor"]


def check_pair_ranks(ranks: object, name: str = "ranks") -> tuple[int, int]:
    """``(r_out, r_in)`` from one int or a pair of positive ints."""
    if isinstance(ranks, numbers.Integral) and not isinstance(ranks, bool):
        values: tuple[Any, ...] = (ranks, ranks)
    elif isinstance(ranks, Sequence) and not isinstance(ranks, (str, bytes)) and len(ranks) == 2:
        values = tuple(ranks)
    else:
        raise TypeError(f"{name} must be an int or a pair (r_out, r_in), got {ranks!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must contain positive ints, got {ranks!r}")
    return int(values[0]), int(values[1])


def pad_factor(t: Tensor, size: int, dim: int) -> Tensor:
    """Zero-pad ``t`` along ``dim`` to ``size``."""
    missing = size - int(t.shape[dim])
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t, t.new_zeros(shape)], dim=dim)


class TuckerConv2d(FactorizedConv2d):
    """Convolution whose kernel is a Tucker-2 tensor over its channel modes.

    ``W[t, s, :, :] = sum_{a, b} U_out[t, a] core[a, b, :, :] U_in[s, b]`` per group: a 1x1
    convolution to ``r_in`` channels, the ``kh x kw`` core convolution to ``r_out`` channels
    (stride, padding and dilation apply here), and a 1x1 convolution to ``out_channels``.
    With ``groups > 1`` every group has its own factors (grouped sublayers).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int or (int, int)
        ``(r_out, r_in)`` per group.
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    first : Parameter, shape (groups * r_in, in_channels / groups)
        ``U_in^T`` of every group, stacked.
    core : Parameter, shape (groups * r_out, r_in, kh, kw)
    last : Parameter, shape (out_channels, r_out)
        ``U_out`` of every group, stacked.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    >>> layer = TuckerConv2d.from_conv(conv, ranks=(8, 4))
    >>> layer.num_params < conv.weight.numel()
    True
    >>> layer(torch.randn(2, 16, 8, 8)).shape
    torch.Size([2, 32, 8, 8])
    """

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
        ranks: int | tuple[int, int],
        forward_mode: str = "auto",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device,
            dtype,
            forward_mode=forward_mode,
        )
        self.ranks = check_pair_ranks(ranks)
        r_out, r_in = self.ranks
        g = self.groups
        kh, kw = self.kernel_size
        factory = {"device": device, "dtype": dtype}
        self.first = nn.Parameter(torch.empty(g * r_in, in_channels // g, **factory))
        self.core = nn.Parameter(torch.empty(g * r_out, r_in, kh, kw, **factory))
        self.last = nn.Parameter(torch.empty(out_channels, r_out, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian factors whose product has ``nn.Conv2d``'s kernel variance; its bias init."""
        r_out, r_in = self.ranks
        init_product_([self.first, self.core, self.last], self.kernel_variance(), r_out * r_in)
        self.reset_bias()

    def reconstruct(self) -> Tensor:
        g = self.groups
        r_out, r_in = self.ranks
        kh, kw = self.kernel_size
        first = self.first.reshape(g, r_in, -1)
        core = self.core.reshape(g, r_out, r_in, kh, kw)
        last = self.last.reshape(g, -1, r_out)
        kernel = torch.einsum("gta,gabhw,gbs->gtshw", last, core, first)
        return kernel.reshape(self.out_channels, self.in_channels // g, kh, kw)

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        # the narrow intermediates channels-last where oneDNN convolves those faster; the
        # output in the input's layout, as nn.Conv2d
        inner = fast_channels_last(x)
        y = pointwise(x, self.first, None, self.groups, channels_last=inner)
        y = F.conv2d(y, self.core, None, self.stride, padding, self.dilation, self.groups)
        return pointwise(y, self.last, self.bias, self.groups, channels_last=is_channels_last(x))

    def factorized_macs(self, height: int, width: int) -> int:
        r_out, r_in = self.ranks
        kh, kw = self.kernel_size
        ho, wo = self.output_size(height, width)
        hp, wp = self.pipeline_input_size(height, width)
        return (
            hp * wp * self.in_channels * r_in
            + ho * wo * self.groups * r_out * r_in * kh * kw
            + ho * wo * self.out_channels * r_out
        )

    def reconstruct_macs(self) -> int:
        r_out, r_in = self.ranks
        kh, kw = self.kernel_size
        g = self.groups
        per_group = (self.out_channels // g) * r_out * r_in * kh * kw
        return g * (per_group + (self.out_channels // g) * r_in * kh * kw * self.in_channels // g)

    def ranks_repr(self) -> str:
        return f"ranks={self.ranks}"

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        rtol: float | None = None,
        ranks: int | tuple[int, int] | None = None,
        forward_mode: str = "auto",
    ) -> TuckerConv2d:
        """Tucker-2 of a pretrained kernel (``tensornet.hosvd`` on modes 0, 1 per group).

        Parameters
        ----------
        conv : nn.Conv2d
        rtol : float, optional
            Relative Frobenius error of the whole kernel (each group within ``rtol``).
        ranks : int or (int, int), optional
            Caps ``(r_out, r_in)``; with ``rtol`` the smaller rank wins. At least one of
            ``rtol``, ``ranks`` is required. Groups are padded to common ranks with zeros.
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d``.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given, or either is invalid.
        """
        geometry = cls.conv_geometry(conv)
        if rtol is None and ranks is None:
            raise ValueError("give rtol, ranks or both")
        caps = None if ranks is None else check_pair_ranks(ranks)
        weight = conv.weight.detach()
        g = conv.groups
        parts = []
        for block in weight.chunk(g, dim=0):
            t = tn.hosvd(
                block,
                rtol=rtol,
                ranks=None if caps is None else list(caps),
                modes=(0, 1),
                method="exact",  # small unfoldings; a sketch would need a seed
            )
            parts.append(t)
        r_out = max(t.ranks[0] for t in parts)
        r_in = max(t.ranks[1] for t in parts)
        layer = cls(
            **geometry,
            ranks=(r_out, r_in),
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            assert all(t.factors[0] is not None and t.factors[1] is not None for t in parts)
            first = [pad_factor(t.factors[1].T, r_in, 0) for t in parts]  # type: ignore[union-attr]
            core = [pad_factor(pad_factor(t.core, r_out, 0), r_in, 1) for t in parts]
            last = [pad_factor(t.factors[0], r_out, 1) for t in parts]  # type: ignore[arg-type]
            layer.first.copy_(torch.cat(first, 0))
            layer.core.copy_(torch.cat(core, 0))
            layer.last.copy_(torch.cat(last, 0))
        layer.copy_bias_(conv)
        return layer
