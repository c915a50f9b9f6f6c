"""Tensor-ring convolutions: the RSDTR four-sublayer pipeline (TR) and its STR variant.

The kernel ``W`` of shape ``(T, S, kh, kw)`` (per group) is a tensor ring over its modes in
the kernel's own order ``(T, S, kh, kw)`` (ALGORITHMS.md §6):

    W[t, s, h, w] = sum_{a, b, c, d} G_T[a, t, b] G_S[b, s, c] G_H[c, h, d] G_W[d, w, a]

with ``G_T (Ra, T, Rb)``, ``G_S (Rb, S, Rc)``, ``G_H (Rc, kh, Rd)``, ``G_W (Rd, kw, Ra)``,
i.e. ``TRTensor.ranks == (Ra, Rb, Rc, Rd, Ra)``: bond 0 (``Ra``) closes the ring between
``G_W`` and ``G_T``. The forward pass never builds ``W``:

1. a 1x1 convolution with ``G_S``: ``(N, S, H, W) -> (N, Rb*Rc, H, W)`` (channels ``(b, c)``);
2. ``Rb`` folded into the batch, a ``(kh x 1)`` convolution ``Rc -> Rd`` with the height
   stride, padding and dilation: ``(N*Rb, Rd, H', W)``;
3. a ``(1 x kw)`` convolution ``Rd -> Ra`` with the width stride, padding and dilation:
   ``(N*Rb, Ra, H', W')``;
4. ``Rb`` unfolded back into the channels and a 1x1 convolution over ``(b, a)`` with
   ``G_T``: ``(N, T, H', W')``, plus the bias.

All four sublayers are linear and bias-free until the last, so zero padding commutes with
them and each spatial sublayer pads only its own axis. Per sample the pipeline costs
``Hi*Wi*S*Rb*Rc + Rb*H'*Wi*Rc*Rd*kh + Rb*H'*W'*Rd*Ra*kw + H'*W'*Ra*Rb*T`` multiply-accumulates
(``Hi x Wi`` the input size as the pipeline sees it: padded up front only for non-zero or
asymmetric padding).

With ``groups > 1`` every group has its own ring (its cores stacked along their first axis)
and the sublayers are grouped convolutions: the channel contractions use ``groups`` and the
spatial ones ``groups * Rb`` (one copy of the group's small spatial weight per ``b``)
instead of the batch fold, which keeps every intermediate in a layout the next sublayer
reads without a permutation (with one group the fold is a free reshape). Same MACs.

:class:`STRConv2d` is the semi-tensor-ring variant: ``G_T`` is stored full, ``(R0, T, R1)``,
and the other cores reduced by ``k``, entering the ring as ``G ⊗ I_k``. Since
``trace(G_T (P ⊗ I_k)) = trace(ptr_k(G_T) P)`` (docs/conventions.md, STP section), the STR
is exactly the ring of ranks ``R / k`` with first core ``ptr_k(G_T)``, and that compact
ring is what both forward paths run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet as tn
from tensornet.decompose.stp_fit import STPInit
from tensornet.formats.stp_formats import check_k
from tensornet_torch.layers._base import FactorizedConv2d, init_product_

__all__ = ["STRConv2d", "TRConv2d", "check_ring_ranks"]

Ranks4 = tuple[int, int, int, int]


# -- validation --------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_ring_ranks(ranks: object, name: str = "ranks") -> Ranks4:
    """``(Ra, Rb, Rc, Rd)`` from one int, the four bonds, or ``TRTensor.ranks`` (length 5).

    Bond ``j`` is the left bond of kernel mode ``j`` in the order ``(T, S, kh, kw)``: ``Ra``
    closes the ring between ``G_W`` and ``G_T``.

    Raises
    ------
    TypeError
        If ``ranks`` is not an int or a sequence of ints.
    ValueError
        If it has the wrong length, a non-positive entry, or a length-5 form that does not
        close (first != last).

    Examples
    --------
    >>> check_ring_ranks(3)
    (3, 3, 3, 3)
    >>> check_ring_ranks((2, 8, 3, 3, 2))
    (2, 8, 3, 3)
    """
    if _is_int(ranks):
        values: tuple[Any, ...] = (ranks,) * 4
    elif isinstance(ranks, Sequence) and not isinstance(ranks, (str, bytes)):
        values = tuple(ranks)
        if len(values) not in (4, 5):
            raise ValueError(
                f"{name} must be one int, the 4 bonds (Ra, Rb, Rc, Rd) or the 5 ring ranks "
                f"(Ra, Rb, Rc, Rd, Ra), got {len(values)} values: {ranks!r}"
            )
    else:
        raise TypeError(
            f"{name} must be an int or a sequence of 4 ints (Ra, Rb, Rc, Rd), got "
            f"{type(ranks).__name__} {ranks!r}"
        )
    for v in values:
        if not _is_int(v):
            raise TypeError(f"{name} must contain ints, got {ranks!r}")
        if v < 1:
            raise ValueError(f"{name} must contain positive ints, got {ranks!r}")
    if len(values) == 5 and values[0] != values[4]:
        raise ValueError(f"{name} of length 5 must close the ring (first == last), got {ranks!r}")
    return int(values[0]), int(values[1]), int(values[2]), int(values[3])


def _check_str_ranks(ranks: object, k: int) -> Ranks4:
    full = check_ring_ranks(ranks)
    if any(r % k for r in full):
        raise ValueError(
            f"k must divide every bond of ranks (STRConv2d stores the cores of S, kh and kw "
            f"reduced by k), got ranks={full} and k={k}"
        )
    return full


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


# -- the ring as convolutions ------------------------------------------------------------------
def _split(cores: Sequence[Tensor], g: int, ranks: Ranks4, kernel: tuple[int, int]) -> list[Tensor]:
    """Stacked cores ``(g*r, n, r')`` as ``(g, r, n, r')``."""
    ra, rb, rc, rd = ranks
    kh, kw = kernel
    ct, cs, ch, cw = cores
    return [
        ct.reshape(g, ra, -1, rb),
        cs.reshape(g, rb, -1, rc),
        ch.reshape(g, rc, kh, rd),
        cw.reshape(g, rd, kw, ra),
    ]


def _pairings(t: int, s: int, ranks: Ranks4, kernel: tuple[int, int]) -> tuple[int, int]:
    """MACs per group of the two ways to rebuild a ring kernel (see :func:`_ring_kernel`)."""
    ra, rb, rc, rd = ranks
    kh, kw = kernel
    closing_ac = ra * t * rb * s * rc + rc * kh * rd * kw * ra + t * s * kh * kw * ra * rc
    closing_bd = rd * kw * ra * t * rb + rb * s * rc * kh * rd + t * s * kh * kw * rb * rd
    return closing_ac, closing_bd


def _ring_kernel(cores: Sequence[Tensor], g: int, ranks: Ranks4, kernel: tuple[int, int]) -> Tensor:
    """The kernel ``(g*T, S, kh, kw)`` of stacked ring cores, by the cheaper of two pairings.

    Either ``(G_T G_S)`` and ``(G_H G_W)`` are formed and closed over ``(a, c)``, or
    ``(G_W G_T)`` and ``(G_S G_H)`` closed over ``(b, d)``.
    """
    gt, gs, gh, gw = _split(cores, g, ranks, kernel)
    t, s = int(gt.shape[2]), int(gs.shape[2])
    ac, bd = _pairings(t, s, ranks, kernel)
    if ac <= bd:
        ts = torch.einsum("gatb,gbsc->gatsc", gt, gs)
        hw = torch.einsum("gchd,gdwa->gchwa", gh, gw)
        w = torch.einsum("gatsc,gchwa->gtshw", ts, hw)
    else:
        wt = torch.einsum("gdwa,gatb->gdwtb", gw, gt)
        sh = torch.einsum("gbsc,gchd->gbshd", gs, gh)
        w = torch.einsum("gdwtb,gbshd->gtshw", wt, sh)
    return w.reshape(g * t, s, *kernel)


def _ring_weights(
    layer: FactorizedConv2d, cores: Sequence[Tensor], ranks: Ranks4, fused: bool
) -> tuple[Tensor, ...]:
    """Weight-only part of the pipeline: the sublayers' weights (module docstring).

    ``(w1, w2, w3, w4)``, or with ``fused`` ``(w1, w23, w4)`` where ``w23`` is the
    ``kh x kw`` kernel ``Rc -> Ra`` of ``G_H`` and ``G_W`` contracted over ``Rd``. With
    groups the spatial weights are repeated for every ``b`` (grouped convolutions).
    """
    g = layer.groups
    ra, rb, rc, rd = ranks
    kh, kw = layer.kernel_size
    gt, gs, gh, gw = _split(cores, g, ranks, layer.kernel_size)
    s_g, t_g = int(gs.shape[2]), int(gt.shape[2])
    w1 = gs.permute(0, 1, 3, 2).reshape(g, rb * rc, s_g)  # (g, (b, c), s)
    w4 = gt.permute(0, 2, 3, 1).reshape(g, t_g, rb * ra)  # (g, t, (b, a))
    if fused:
        w23 = torch.einsum("gchd,gdwa->gachw", gh, gw)  # (g, Ra, Rc, kh, kw)
        if g == 1:
            return w1, w23.reshape(ra, rc, kh, kw), w4
        w23 = w23.unsqueeze(1).expand(g, rb, ra, rc, kh, kw).reshape(g * rb * ra, rc, kh, kw)
        return w1, w23, w4
    w2 = gh.permute(0, 3, 1, 2)  # (g, Rd, Rc, kh): weight[d, c, h] = G_H[c, h, d]
    w3 = gw.permute(0, 3, 1, 2)  # (g, Ra, Rd, kw): weight[a, d, w] = G_W[d, w, a]
    if g == 1:
        return w1, w2.reshape(rd, rc, kh, 1), w3.reshape(ra, rd, 1, kw), w4
    w2 = w2.unsqueeze(1).expand(g, rb, rd, rc, kh).reshape(g * rb * rd, rc, kh, 1)
    w3 = w3.unsqueeze(1).expand(g, rb, ra, rd, kw).reshape(g * rb * ra, rd, 1, kw)
    return w1, w2, w3, w4


def _ring_apply(
    layer: FactorizedConv2d,
    x: Tensor,
    padding: tuple[int, int],
    weights: Sequence[Tensor],
    ranks: Ranks4,
) -> Tensor:
    """The sublayers (module docstring) on ``x`` (N, C, H, W), bias included.

    ``weights`` from :func:`_ring_weights`: four (two spatial convolutions) or three (one
    fused ``kh x kw`` convolution). The two channel contractions are batched matrix
    products (a 1x1 convolution is one, and ``matmul`` runs it faster than ``conv2d`` on
    CPU).
    """
    g = layer.groups
    ra, rb, rc, _ = ranks
    (sh, sw), (dh, dw), (ph, pw) = layer.stride, layer.dilation, padding
    n, _, height, width = (int(m) for m in x.shape)
    w1, w4 = weights[0], weights[-1]
    s_g, t_g = int(w1.shape[2]), int(w4.shape[1])
    # (1) (N, g, (b, c), H W) = G_S^T (g, (b, c), s) @ x (N, g, s, H W)
    y = torch.matmul(w1, x.reshape(n, g, s_g, height * width))
    # one group: Rb folded into the batch, (N, (b, c), H, W) is (N*Rb, Rc, H, W); else
    # grouped convolutions with g*Rb groups, the group's weight repeated for every b
    groups = 1 if g == 1 else g * rb
    batch, channels = (n * rb, rc) if g == 1 else (n, g * rb * rc)
    y = y.reshape(batch, channels, height, width)
    if len(weights) == 3:
        y = F.conv2d(y, weights[1], None, layer.stride, (ph, pw), layer.dilation, groups)
    else:
        y = F.conv2d(y, weights[1], None, (sh, 1), (ph, 0), (dh, 1), groups)
        y = F.conv2d(y, weights[2], None, (1, sw), (0, pw), (1, dw), groups)
    ho, wo = int(y.shape[2]), int(y.shape[3])
    # (4) (N, g, t, H' W') = G_T (g, t, (b, a)) @ y (N, g, (b, a), H' W'), channels (g, b, a)
    out = torch.matmul(w4, y.reshape(n, g, rb * ra, ho * wo))
    if layer.bias is not None:
        out.add_(layer.bias.reshape(g, t_g, 1))  # matmul saves its inputs, not out
    return out.reshape(n, g * t_g, ho, wo)


def _ring_forward(
    layer: FactorizedConv2d,
    x: Tensor,
    padding: tuple[int, int],
    cores: Sequence[Tensor],
    ranks: Ranks4,
) -> Tensor:
    """The four sublayers (module docstring) on ``x`` (N, C, H, W), bias included."""
    return _ring_apply(layer, x, padding, _ring_weights(layer, cores, ranks, False), ranks)


def _pad_core(core: Tensor, left: int, right: int) -> Tensor:
    """Zero-pad a core ``(r, n, r')`` to ``(left, n, right)``."""
    r, n, r2 = (int(m) for m in core.shape)
    out = core.new_zeros(left, n, right)
    out[:r, :, :r2] = core
    return out


def _stack_rings(rings: Sequence[Sequence[Tensor]]) -> tuple[Ranks4, list[Tensor]]:
    """Common ranks (bond-wise maxima) and the zero-padded cores of all groups, stacked.

    A padded bond index has zero entries in both cores it joins, so it adds nothing to the
    trace: every group's kernel is unchanged.
    """
    ra, rb, rc, rd = (max(int(ring[j].shape[0]) for ring in rings) for j in range(4))
    ranks = (ra, rb, rc, rd)
    stacked = []
    for j in range(4):
        left, right = ranks[j], ranks[(j + 1) % 4]
        stacked.append(torch.cat([_pad_core(ring[j], left, right) for ring in rings], 0))
    return ranks, stacked


def _relative_error(x: Tensor, t: tn.TRTensor) -> float:
    total = float(torch.linalg.vector_norm(x))
    if total == 0.0:
        return 0.0
    return float(torch.linalg.vector_norm(x - t.to_dense())) / total


def _factor_pairs(r: int, cap_a: int, cap_b: int) -> list[tuple[int, int]]:
    """``(a, b)`` with ``a * b == r``, ``a <= cap_a``, ``b <= cap_b``."""
    return [(a, r // a) for a in range(1, min(r, cap_a) + 1) if r % a == 0 and r // a <= cap_b]


def _capped_ring(x: Tensor, rtol: float | None, caps: Ranks4, starts: Sequence[int]) -> tn.TRTensor:
    """TR-SVD candidates whose four bonds respect ``caps``, over ``starts`` and all splits.

    From start ``c`` the first SVD keeps ``r <= caps[c] * caps[c+1]`` (and ``rtol``), split
    as ``r0 * r1`` with ``r0 <= caps[c]`` and ``r1 <= caps[c+1]``; if ``r`` has no such
    split, the largest ``r' < r`` that has one is kept instead. The middle SVDs are capped by
    ``caps[c+2]`` and ``caps[c+3]``. Among the candidates within ``rtol`` (round-off when
    ``rtol`` is None) the one with the fewest parameters wins; when the caps keep all of them
    above it, the most accurate one.
    """
    eps = float(torch.finfo(x.dtype).eps)
    target = (0.0 if rtol is None else rtol) + 1e3 * eps
    best: tuple[tuple[Any, ...], tn.TRTensor] | None = None
    for c in starts:
        rc = [caps[(c + j) % 4] for j in range(4)]
        first_cap = rc[0] * rc[1]
        probe = tn.tr_svd(
            x, rtol=rtol, max_rank=[first_cap, rc[2], rc[3]], start=c, r0=1, method="exact"
        )
        r = probe.ranks[(c + 1) % 4]
        pairs = _factor_pairs(r, rc[0], rc[1])
        if not pairs:
            first_cap = max(
                a * b for a in range(1, rc[0] + 1) for b in range(1, rc[1] + 1) if a * b <= r
            )
            pairs = _factor_pairs(first_cap, rc[0], rc[1])
        for r0, _ in pairs:
            t = tn.tr_svd(
                x, rtol=rtol, max_rank=[first_cap, rc[2], rc[3]], start=c, r0=r0, method="exact"
            )
            err = _relative_error(x, t)
            key = (0, t.num_params, err, c, r0) if err <= target else (1, err, t.num_params, c, r0)
            if best is None or key < best[0]:
                best = (key, t)
    assert best is not None  # every start has at least one split
    return best[1]


class _RingConv2d(FactorizedConv2d):
    """Shared pipeline of :class:`TRConv2d` and :class:`STRConv2d` (a ring of 4 cores).

    Paths: ``"factorized"`` (the four sublayers), ``"fused-spatial"`` (``G_H`` and ``G_W``
    contracted into one ``kh x kw`` convolution ``Rc -> Ra``: three sublayers, one
    intermediate fewer, ``Rb H' W' Ra Rc kh kw`` MACs for the spatial part) and
    ``"dense"``.
    """

    PATHS = ("factorized", "fused-spatial", "dense")

    core_t: nn.Parameter
    core_s: nn.Parameter
    core_h: nn.Parameter
    core_w: nn.Parameter

    def _compact(self) -> tuple[list[Tensor], Ranks4]:
        """The ring the forward paths run: stacked cores and their ranks."""
        raise NotImplementedError

    @property
    def cores(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The stored cores in mode order ``(T, S, kh, kw)`` (stacked over groups)."""
        return self.core_t, self.core_s, self.core_h, self.core_w

    def reconstruct(self) -> Tensor:
        cores, ranks = self._compact()
        return _ring_kernel(cores, self.groups, ranks, self.kernel_size)

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        cores, ranks = self._compact()
        return _ring_forward(self, x, padding, cores, ranks)

    def _factorized_weights(self, path: str) -> tuple[Tensor, ...]:
        cores, ranks = self._compact()
        return _ring_weights(self, cores, ranks, path == "fused-spatial")

    def _factorized_apply(
        self, path: str, x: Tensor, padding: tuple[int, int], weights: Sequence[Tensor]
    ) -> Tensor:
        return _ring_apply(self, x, padding, weights, self._compact_ranks())

    def _ring_macs(self, height: int, width: int, ranks: Ranks4) -> int:
        ra, rb, rc, rd = ranks
        kh, kw = self.kernel_size
        g = self.groups
        hi, wi = self.pipeline_input_size(height, width)
        ho, wo = self.output_size(height, width)
        return (
            hi * wi * self.in_channels * rb * rc
            + g * rb * ho * wi * rd * rc * kh
            + g * rb * ho * wo * ra * rd * kw
            + ho * wo * self.out_channels * rb * ra
        )

    def _fused_macs(self, height: int, width: int, ranks: Ranks4) -> int:
        """Per sample on ``"fused-spatial"``.

        ``Hi Wi S Rb Rc + Rb H' W' Ra Rc kh kw + H' W' Ra Rb T`` (as :meth:`factorized_macs`).
        """
        ra, rb, rc, _ = ranks
        kh, kw = self.kernel_size
        hi, wi = self.pipeline_input_size(height, width)
        ho, wo = self.output_size(height, width)
        return (
            hi * wi * self.in_channels * rb * rc
            + self.groups * rb * ho * wo * ra * rc * kh * kw
            + ho * wo * self.out_channels * rb * ra
        )

    def path_macs(self, batch: int, height: int, width: int) -> dict[str, int]:
        """MACs of one forward call on each path (``PATHS``).

        ``"fused-spatial"`` builds its ``kh x kw`` kernel once per call
        (``g Ra Rc Rd kh kw`` MACs) and then runs :meth:`_fused_macs` per sample.
        """
        ranks = self._compact_ranks()
        ra, _, rc, rd = ranks
        kh, kw = self.kernel_size
        macs = super().path_macs(batch, height, width)
        build = self.groups * ra * rc * rd * kh * kw
        fused = batch * self._fused_macs(height, width, ranks) + build
        return {"factorized": macs["factorized"], "fused-spatial": fused, "dense": macs["dense"]}

    def _ring_reconstruct_macs(self, ranks: Ranks4) -> int:
        g = self.groups
        t, s = self.out_channels // g, self.in_channels // g
        return g * min(_pairings(t, s, ranks, self.kernel_size))

    def factorized_macs(self, height: int, width: int) -> int:
        """Per sample: ``Hi Wi S Rb Rc + Rb H' Wi Rc Rd kh + Rb H' W' Rd Ra kw + H' W' Ra Rb T``.

        ``Hi x Wi`` is the input size, plus the padding where it is applied up front
        (non-zero ``padding_mode`` or asymmetric padding); ``H' x W'`` the output size. With
        groups, ``S`` and ``T`` are the layer's channels and the middle terms count every
        group (the ranks are per group).
        """
        return self._ring_macs(height, width, self._compact_ranks())

    def _compact_ranks(self) -> Ranks4:
        raise NotImplementedError

    def _group_cores(self, group: int, cores: Sequence[Tensor]) -> list[Tensor]:
        """Group ``group``'s block of each stacked core, detached."""
        if not _is_int(group) or not 0 <= group < self.groups:
            raise ValueError(f"group must be an int in [0, {self.groups}), got {group!r}")
        return [c.detach().chunk(self.groups, 0)[int(group)] for c in cores]


class TRConv2d(_RingConv2d):
    """Convolution whose kernel is a tensor ring over ``(T, S, kh, kw)``: the RSDTR layer.

    ``W[t, s, h, w] = trace(G_T[:, t, :] G_S[:, s, :] G_H[:, h, :] G_W[:, w, :])`` per group,
    computed as four small sublayers (a 1x1 convolution ``S -> Rb*Rc``, a ``kh x 1`` one
    ``Rc -> Rd`` on ``Rb`` folded into the batch, a ``1 x kw`` one ``Rd -> Ra``, and a 1x1
    contraction of ``(Rb, Ra)`` to ``T``; see :mod:`tensornet_torch.layers.tr_conv`).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int or sequence of int
        ``(Ra, Rb, Rc, Rd)`` per group (one int: all four; ``TRTensor.ranks`` of length 5 is
        accepted too). ``Ra`` closes the ring between ``G_W`` and ``G_T``.
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    core_t : Parameter, shape (groups * Ra, out_channels / groups, Rb)
    core_s : Parameter, shape (groups * Rb, in_channels / groups, Rc)
    core_h : Parameter, shape (groups * Rc, kh, Rd)
    core_w : Parameter, shape (groups * Rd, kw, Ra)
        Each group's core stacked along the first axis (with one group: exactly the
        ``TRTensor`` layout ``(r_k, n_k, r_{k+1})``; :meth:`to_tr` returns the ring).
    ranks : tuple of int
        ``(Ra, Rb, Rc, Rd)``.

    Raises
    ------
    TypeError, ValueError
        For invalid ``ranks`` (and whatever ``nn.Conv2d`` rejects).

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    >>> layer = TRConv2d.from_conv(conv, ranks=(2, 4, 3, 3))
    >>> all(r <= cap for r, cap in zip(layer.ranks, (2, 4, 3, 3)))  # caps on (Ra, Rb, Rc, Rd)
    True
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
        ranks: int | Sequence[int],
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
        self.ranks = check_ring_ranks(ranks)
        ra, rb, rc, rd = self.ranks
        g = self.groups
        kh, kw = self.kernel_size
        factory = {"device": device, "dtype": dtype}
        self.core_t = nn.Parameter(torch.empty(g * ra, out_channels // g, rb, **factory))
        self.core_s = nn.Parameter(torch.empty(g * rb, in_channels // g, rc, **factory))
        self.core_h = nn.Parameter(torch.empty(g * rc, kh, rd, **factory))
        self.core_w = nn.Parameter(torch.empty(g * rd, kw, ra, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian cores whose ring has ``nn.Conv2d``'s kernel variance; its bias init.

        A kernel entry sums ``Ra Rb Rc Rd`` products of four independent entries.
        """
        init_product_(list(self.cores), self.kernel_variance(), math.prod(self.ranks))
        self.reset_bias()

    def _compact(self) -> tuple[list[Tensor], Ranks4]:
        return list(self.cores), self.ranks

    def _compact_ranks(self) -> Ranks4:
        return self.ranks

    def reconstruct_macs(self) -> int:
        """MACs of :meth:`reconstruct`: per group the cheaper of the two pairings.

        ``Ra T Rb S Rc + Rc kh Rd kw Ra + T S kh kw Ra Rc`` (close over ``(a, c)``) or
        ``Rd kw Ra T Rb + Rb S Rc kh Rd + T S kh kw Rb Rd`` (close over ``(b, d)``), with
        ``T, S`` the channels per group.
        """
        return self._ring_reconstruct_macs(self.ranks)

    def ranks_repr(self) -> str:
        return f"ranks={self.ranks}"

    def to_tr(self, group: int = 0) -> tn.TRTensor:
        """The kernel of ``group`` as a ``TRTensor`` over ``(T, S, kh, kw)`` (detached)."""
        return tn.TRTensor(self._group_cores(group, self.cores))

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        rtol: float | None = None,
        ranks: int | Sequence[int] | None = None,
        search: bool = True,
        forward_mode: str = "auto",
    ) -> TRConv2d:
        """Tensor ring of a pretrained kernel: the RSDTR search (``tensornet.tr_search``).

        Each group's kernel ``(T, S, kh, kw)`` is decomposed in that mode order, so the
        cores map onto the sublayers directly (``TRTensor.ranks == (Ra, Rb, Rc, Rd, Ra)``).
        Groups get their own rings, zero-padded to common (bond-wise largest) ranks; every
        group within ``rtol`` puts the whole kernel within ``rtol``.

        Parameters
        ----------
        conv : nn.Conv2d
        rtol : float, optional
            Relative Frobenius error: ``||W - W_hat|| <= rtol ||W||`` (when no cap binds).
        ranks : int or sequence of int, optional
            Caps on the bonds ``(Ra, Rb, Rc, Rd)`` (one int: every bond); with ``rtol`` the
            smaller rank wins. Without caps the search is ``tensornet.tr_search``. With
            caps (whose cap is one int for every SVD of a sweep, including the product of
            the first split) the same search runs through ``tensornet.tr_svd`` with each
            start's own caps: the first SVD is capped by the product of the two bonds it
            splits into and only splits within both caps are tried. Among the candidates
            within ``rtol`` the one with the fewest parameters wins; if the caps keep all
            of them above ``rtol`` (or ``rtol`` is None), the most accurate one.
        search : bool
            True (default): every cyclic start and every split of the first rank (RSDTR).
            False: one sweep from mode 0, ``tensornet.tr_svd(start=0)`` (balanced split,
            or the most accurate split within the caps).
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d`` or an option has the wrong type.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given, or either is invalid.

        Examples
        --------
        >>> import torch
        >>> conv = torch.nn.Conv2d(8, 16, 3, bias=False).double()
        >>> layer = TRConv2d.from_conv(conv, rtol=0.3)
        >>> w = conv.weight
        >>> err = torch.linalg.norm(layer.reconstruct() - w) / torch.linalg.norm(w)
        >>> bool(err <= 0.3)
        True
        """
        geometry = cls.conv_geometry(conv)
        if rtol is None and ranks is None:
            raise ValueError(
                "TRConv2d.from_conv needs rtol (target relative kernel error), ranks (caps on "
                "(Ra, Rb, Rc, Rd)) or both; got neither"
            )
        caps = None if ranks is None else check_ring_ranks(ranks)
        search = _check_flag(search, "search")
        weight = conv.weight.detach()
        found, cores = _rings_of_groups(weight, conv.groups, rtol, caps, search)
        layer = cls(
            **geometry,
            ranks=found,
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            for p, c in zip(layer.cores, cores):
                p.copy_(c)
        layer.copy_bias_(conv)
        return layer


def _rings_of_groups(
    weight: Tensor, groups: int, rtol: float | None, caps: Ranks4 | None, search: bool
) -> tuple[Ranks4, list[Tensor]]:
    """Each group's ring (original mode order), zero-padded to common ranks and stacked."""
    rings = []
    for block in weight.chunk(groups, dim=0):
        if caps is None:
            t = tn.tr_search(block, rtol=rtol) if search else tn.tr_svd(block, rtol=rtol, start=0)
        else:
            t = _capped_ring(block, rtol, caps, range(4) if search else (0,))
        rings.append(list(t.cores))
    return _stack_rings(rings)


class STRConv2d(_RingConv2d):
    """Convolution whose kernel is a semi-tensor ring (STR) over ``(T, S, kh, kw)``.

    ``W[t, s, h, w] = trace(G_T(t) ⋉ G_S(s) ⋉ G_H(h) ⋉ G_W(w))`` per group: the mode order is
    the kernel's, ``T`` first, as :class:`TRConv2d`, so the full core is ``G_T`` of shape
    ``(R0, T, R1)`` and ``G_S (R1/k, S, R2/k)``, ``G_H (R2/k, kh, R3/k)``,
    ``G_W (R3/k, kw, R0/k)`` are reduced (``tensornet.STRTensor`` with ``k``): the TR with
    cores ``G_T, G_S ⊗ I_k, G_H ⊗ I_k, G_W ⊗ I_k`` of ranks ``(R0, R1, R2, R3)``.

    Both forward paths run the *compact ring* the STR equals exactly
    (``tensornet.str_to_tr(compact=True)``): ranks ``R / k`` and first core
    ``ptr_k(G_T)``, the sum of its ``k`` diagonal blocks, through the four sublayers of
    :class:`TRConv2d`; only the partial trace is formed per call (no ``⊗ I_k`` ever). The
    stored parameters are the STR's, so :attr:`num_params` counts ``R0 T R1`` for ``G_T``
    although only its partial trace (``k**2`` times fewer values) reaches the kernel; the
    entries off the ``k`` diagonal blocks never get a gradient. At equal parameter counts
    an STR cannot beat the TR it equals (docs/conventions.md); the mode order puts the full
    core on ``T`` so that the kernel is fitted as it is laid out (no permutation) and the
    layer reads like :class:`TRConv2d`.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int or sequence of int
        ``(R0, R1, R2, R3)`` of the equivalent TR per group (``STRTensor.ranks``); ``k`` must
        divide each.
    k : int
        Size of the identity factor (>= 1; ``k = 1`` is a :class:`TRConv2d`).
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    core_t : Parameter, shape (groups * R0, out_channels / groups, R1)
    core_s : Parameter, shape (groups * R1/k, in_channels / groups, R2/k)
    core_h : Parameter, shape (groups * R2/k, kh, R3/k)
    core_w : Parameter, shape (groups * R3/k, kw, R0/k)
    ranks : tuple of int
        ``(R0, R1, R2, R3)``.
    k : int
    compact_ranks : tuple of int
        ``ranks / k``, the ranks of the ring the forward pass runs.

    Raises
    ------
    TypeError, ValueError
        For invalid ``ranks`` or ``k``, or a ``k`` that does not divide every rank.

    Examples
    --------
    >>> import torch
    >>> layer = STRConv2d(16, 32, 3, padding=1, ranks=4, k=2)
    >>> layer.core_t.shape, layer.core_s.shape
    (torch.Size([4, 32, 4]), torch.Size([2, 16, 2]))
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
        ranks: int | Sequence[int],
        k: int,
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
        self.k = check_k(k)
        self.ranks = _check_str_ranks(ranks, self.k)
        r0, r1, r2, r3 = self.ranks
        k = self.k
        g = self.groups
        kh, kw = self.kernel_size
        factory = {"device": device, "dtype": dtype}
        self.core_t = nn.Parameter(torch.empty(g * r0, out_channels // g, r1, **factory))
        self.core_s = nn.Parameter(torch.empty(g * r1 // k, in_channels // g, r2 // k, **factory))
        self.core_h = nn.Parameter(torch.empty(g * r2 // k, kh, r3 // k, **factory))
        self.core_w = nn.Parameter(torch.empty(g * r3 // k, kw, r0 // k, **factory))
        self.reset_parameters()

    @property
    def compact_ranks(self) -> Ranks4:
        """``ranks / k``: the ranks of the TR this STR equals (and the forward pass runs)."""
        r0, r1, r2, r3 = self.ranks
        return r0 // self.k, r1 // self.k, r2 // self.k, r3 // self.k

    def reset_parameters(self) -> None:
        """Gaussian cores whose kernel has ``nn.Conv2d``'s variance; its bias init.

        A kernel entry sums ``prod(R / k)`` products of four entries, the first of which
        (of ``ptr_k(G_T)``) sums ``k`` entries: ``prod(R) / k**3`` products in all.
        """
        terms = math.prod(self.compact_ranks) * self.k
        init_product_(list(self.cores), self.kernel_variance(), terms)
        self.reset_bias()

    def _compact(self) -> tuple[list[Tensor], Ranks4]:
        # tn.partial_trace in plain torch ops (no host index array; traceable): the sum of
        # the k diagonal blocks, blockwise, so per group too
        r, t, q = (int(m) for m in self.core_t.shape)
        k = self.k
        first = self.core_t.reshape(r // k, k, t, q // k, k).diagonal(dim1=1, dim2=4).sum(-1)
        return [first, self.core_s, self.core_h, self.core_w], self.compact_ranks

    def _compact_ranks(self) -> Ranks4:
        return self.compact_ranks

    def factorized_macs(self, height: int, width: int) -> int:
        """Per sample, the :class:`TRConv2d` count at the compact ranks ``R / k``.

        The partial trace of ``G_T`` (``R0 T R1 / k`` additions) is done once per call,
        not per sample, and is not counted here; :meth:`reconstruct_macs` counts it.
        """
        return self._ring_macs(height, width, self.compact_ranks)

    def reconstruct_macs(self) -> int:
        """The :class:`TRConv2d` count at the compact ranks plus the partial trace."""
        return self._ring_reconstruct_macs(self.compact_ranks) + self.core_t.numel() // self.k

    def ranks_repr(self) -> str:
        return f"ranks={self.ranks}, k={self.k}"

    def to_str(self, group: int = 0) -> tn.STRTensor:
        """The kernel of ``group`` as an ``STRTensor`` over ``(T, S, kh, kw)`` (detached)."""
        return tn.STRTensor(self._group_cores(group, self.cores), k=self.k)

    def to_tr(self, group: int = 0) -> tn.TRTensor:
        """The compact ring (ranks ``R / k``) of ``group`` that the STR equals (detached)."""
        cores, _ = self._compact()
        return tn.TRTensor(self._group_cores(group, cores))

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        rtol: float | None = None,
        ranks: int | Sequence[int] | None = None,
        k: int,
        search: bool = True,
        n_iter_max: int = 100,
        tol: float = 1e-8,
        rng: np.random.Generator | int | None = None,
        init: STPInit = "svd",
        forward_mode: str = "auto",
    ) -> STRConv2d:
        """Semi-tensor ring of a pretrained kernel (``T`` first; groups each their own).

        - ``ranks`` only: ``tensornet.str_fit`` (ALS) at exactly these ranks, per group;
          the error is whatever ALS reaches (non-increasing from its ``init``).
        - ``rtol`` (with or without ``ranks``): the compact ring is found as in
          :meth:`TRConv2d.from_conv` (RSDTR search; ``ranks / k`` as caps) and lifted
          exactly into an STR of ranks ``k`` times larger (first core ``G ⊗ I_k / k``,
          whose partial trace is ``G``), so ``||W - W_hat|| <= rtol ||W||`` holds (when no
          cap binds). Groups are zero-padded to common ranks.

        Parameters
        ----------
        conv : nn.Conv2d
        rtol : float, optional
            Relative Frobenius error of the whole kernel.
        ranks : int or sequence of int, optional
            ``(R0, R1, R2, R3)`` of the equivalent TR; ``k`` must divide each. Exact ranks
            without ``rtol``, caps with it.
        k : int
            Size of the identity factor (>= 1).
        search : bool
            With ``rtol``: RSDTR search (True) or one TR-SVD from mode 0 (False).
        n_iter_max, tol, rng, init
            Of ``tensornet.str_fit`` (``ranks`` without ``rtol``).
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d`` or an option has the wrong type.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given, or ``ranks``/``k`` are invalid.

        Warns
        -----
        tensornet.ConvergenceWarning
            If ALS used ``n_iter_max`` sweeps without settling within ``tol``.

        Examples
        --------
        >>> import torch
        >>> conv = torch.nn.Conv2d(8, 16, 3, bias=False).double()
        >>> layer = STRConv2d.from_conv(conv, rtol=0.3, k=2)
        >>> w = conv.weight
        >>> err = torch.linalg.norm(layer.reconstruct() - w) / torch.linalg.norm(w)
        >>> bool(err <= 0.3), all(r % 2 == 0 for r in layer.ranks)
        (True, True)
        """
        geometry = cls.conv_geometry(conv)
        k = check_k(k)
        if rtol is None and ranks is None:
            raise ValueError(
                "STRConv2d.from_conv needs rtol (target relative kernel error), ranks (the "
                "ranks (R0, R1, R2, R3) of the equivalent TR) or both; got neither"
            )
        full = None if ranks is None else _check_str_ranks(ranks, k)
        search = _check_flag(search, "search")
        weight = conv.weight.detach()
        g = conv.groups
        if rtol is None:
            assert full is not None
            gen = np.random.default_rng(rng)
            fits = [
                tn.str_fit(block, full, k=k, n_iter_max=n_iter_max, tol=tol, rng=gen, init=init)
                for block in weight.chunk(g, dim=0)
            ]
            cores = [torch.cat([f.cores[j] for f in fits], 0) for j in range(4)]
        else:
            caps = (
                None if full is None else (full[0] // k, full[1] // k, full[2] // k, full[3] // k)
            )
            compact, stacked = _rings_of_groups(weight, g, rtol, caps, search)
            full = (compact[0] * k, compact[1] * k, compact[2] * k, compact[3] * k)
            # G ⊗ I_k / k: a full first core whose partial trace is the fitted one
            cores = [tn.kron_identity(stacked[0], k) / k, *stacked[1:]]
        layer = cls(
            **geometry,
            ranks=full,
            k=k,
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            for p, c in zip(layer.cores, cores):
                p.copy_(c)
        layer.copy_bias_(conv)
        return layer
