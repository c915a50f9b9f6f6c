"""TT convolution with tensorized channels: s-cores (1x1) -> spatial core (kh x kw) -> t-cores.

The kernel of each group, ``(T', S', kh, kw)`` with ``T' = prod(out_modes)`` and
``S' = prod(in_modes)``, is permuted to ``(T', kh, kw, S')`` and reshaped (C order) to the
modes ``[t_1, ..., t_a, kh * kw, s_1, ..., s_b]``: the spatial kernel is one middle mode
(the "special" tensorization of the ADMM-TT work, Yin et al. CVPR 2021). That tensor is
stored as a tensor train with cores ``(r_k, n_k, r_{k+1})``.

Forward (factorized path), per group:

1. the input channels, viewed as the modes ``(s_1, ..., s_b)``, absorb the s-cores from
   the outer end (``s_b``, whose right bond is 1) inwards, so only one bond is ever open:
   after absorbing ``s_j .. s_b`` the intermediate has ``s_1 ... s_{j-1} * r_j`` channels;
2. the spatial core, a ``kh x kw`` convolution from ``r_{a+1}`` to ``r_a`` channels with
   the layer's stride, padding and dilation (the only sublayer that sees them);
3. the t-cores expand the ``r_a`` channels from the inside (``t_a``) outwards to
   ``t_1 ... t_a = T'`` channels, and the bias is added.

On each side, consecutive cores may be merged (contracted among themselves, a cost that
does not depend on the input) and absorbed in one step. The partition of each side into
such blocks is the one with the fewest multiply-accumulates per pixel (ties: fewer
blocks); it depends only on the modes and ranks, so it is fixed at construction
(``in_plan``, ``out_plan``). For instance, with ``in_modes=(8, 8)`` and full bonds
``r_{d-1} = 8`` absorbing ``s_2`` alone does not shrink anything, and both s-cores are
merged into one ``S' -> r_{a+1}`` 1x1 step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet as tn
from tensornet._validation import check_rtol
from tensornet_torch.layers._base import (
    FactorizedConv2d,
    balance_,
    fast_channels_last,
    init_product_,
)
from tensornet_torch.layers._modes import (
    check_chain_ranks,
    check_modes_product,
    default_channel_modes,
)
from tensornet_torch.layers.tucker_conv import pad_factor

__all__ = ["TTConv2d", "check_tt_ranks"]

Block = tuple[int, int]
"""Cores ``lo..hi`` (inclusive) contracted together and absorbed in one step."""


def check_tt_ranks(ranks: object, modes: Sequence[int], name: str = "ranks") -> tuple[int, ...]:
    """The TT ranks ``(1, r_1, ..., r_{d-1}, 1)`` of a train with ``modes``.

    ``ranks`` is an int (every bond, clipped to the largest useful size
    ``min(n_0 ... n_{k-1}, n_k ... n_{d-1})``), the ``d - 1`` bond sizes, or the ``d + 1``
    TT ranks with ones at both ends (sequences are taken as given).
    """
    full = check_chain_ranks(ranks, len(modes), name)
    if not isinstance(ranks, numbers.Integral):
        return full
    d = len(modes)
    bounds = [min(math.prod(modes[:k]), math.prod(modes[k:])) for k in range(1, d)]
    return (1, *(min(r, b) for r, b in zip(full[1:-1], bounds, strict=True)), 1)


def _cheapest_partition(m: int, cost: Callable[[int, int], int]) -> tuple[Block, ...]:
    """Contiguous blocks of ``0..m-1`` minimizing ``sum(cost(lo, hi))``, then their count."""
    best: list[tuple[int, int, tuple[Block, ...]]] = [(0, 0, ())]
    for end in range(1, m + 1):
        best.append(
            min(
                (best[lo][0] + cost(lo, end - 1), best[lo][1] + 1, (*best[lo][2], (lo, end - 1)))
                for lo in range(end)
            )
        )
    return best[m][2]


class TTConv2d(FactorizedConv2d):
    """Convolution whose kernel is a tensor train over tensorized channel modes (per group).

    Each group's kernel ``(T', S', kh, kw)`` is the TT of modes
    ``[*out_modes, kh * kw, *in_modes]`` (see the module docstring for the layout and the
    forward pipeline). With ``groups > 1`` every group has its own cores (grouped
    sublayers); ``T' = out_channels / groups`` and ``S' = in_channels / groups``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int or sequence of int
        An int (every bond, clipped to the largest useful size), the ``d - 1`` bond ranks,
        or the ``d + 1`` TT ranks ``(1, ..., 1)``; ``d = len(out_modes) + 1 + len(in_modes)``.
    in_modes : sequence of int, optional
        Factorization of ``in_channels / groups`` (``s_1, ..., s_b``). Default: the balanced
        pair ``(n / p, p)``, ``p`` the largest divisor up to ``sqrt(n)`` (one mode if ``p``
        is 1), so the smaller factor sits at the outer end of the train.
    out_modes : sequence of int, optional
        Factorization of ``out_channels / groups`` (``t_1, ..., t_a``). Default: the
        balanced pair ``(p, n / p)``, smaller factor first (outer end).
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    cores : ParameterList
        ``cores[k]`` of shape ``(groups, r_k, n_k, r_{k+1})``: core ``k`` of every group.
    modes : tuple of int
        ``(*out_modes, kh * kw, *in_modes)``.
    ranks : tuple of int
        ``(1, r_1, ..., r_{d-1}, 1)``.
    in_plan, out_plan : tuple of (int, int)
        The blocks of cores absorbed per step, in execution order (see the module docstring).

    Raises
    ------
    TypeError, ValueError
        For bad ``ranks``, ``in_modes`` or ``out_modes`` (and as ``nn.Conv2d``).

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    >>> layer = TTConv2d.from_conv(conv, ranks=4)
    >>> layer.modes, layer.ranks
    ((4, 8, 9, 4, 4), (1, 4, 4, 4, 4, 1))
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
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
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
        self.in_modes, self.out_modes = self._resolve_modes(
            self.in_channels // self.groups, self.out_channels // self.groups, in_modes, out_modes
        )
        kh, kw = self.kernel_size
        self.modes = (*self.out_modes, kh * kw, *self.in_modes)
        self.ranks = check_tt_ranks(ranks, self.modes)
        rho, g = self.ranks, self.groups
        factory = {"device": device, "dtype": dtype}
        self.cores = nn.ParameterList(
            nn.Parameter(torch.empty(g, rho[k], n, rho[k + 1], **factory))
            for k, n in enumerate(self.modes)
        )
        a = len(self.out_modes)
        in_part = _cheapest_partition(len(self.in_modes), self._in_block_cost)
        self.in_plan = tuple((a + 1 + lo, a + 1 + hi) for lo, hi in reversed(in_part))
        self.out_plan = tuple(reversed(_cheapest_partition(a, self._out_block_cost)))
        self.reset_parameters()

    @staticmethod
    def _resolve_modes(
        s: int, t: int, in_modes: Sequence[int] | None, out_modes: Sequence[int] | None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        ins = (
            default_channel_modes(s)
            if in_modes is None
            else check_modes_product(in_modes, s, "in_modes", "in_channels / groups")
        )
        outs = (
            tuple(reversed(default_channel_modes(t)))
            if out_modes is None
            else check_modes_product(out_modes, t, "out_modes", "out_channels / groups")
        )
        return ins, outs

    # -- cost of the steps (per group and pixel) ----------------------------------------------
    @property
    def _spatial(self) -> int:
        return len(self.out_modes)

    def _in_block_cost(self, lo: int, hi: int) -> int:
        """s-cores ``lo..hi`` (0-based among the s-cores) absorbed into the input channels."""
        off = self._spatial + 1
        return math.prod(self.in_modes[: hi + 1]) * self.ranks[off + hi + 1] * self.ranks[off + lo]

    def _out_block_cost(self, lo: int, hi: int) -> int:
        """t-cores ``lo..hi`` expanding the channels (the t-modes right of ``hi`` are out)."""
        return self.ranks[lo] * self.ranks[hi + 1] * math.prod(self.out_modes[lo:])

    def _merge_cost(self, lo: int, hi: int) -> int:
        """Contracting cores ``lo..hi`` left to right, per group."""
        rho, n = self.ranks, self.modes
        return sum(
            rho[lo] * math.prod(n[lo:k]) * rho[k] * n[k] * rho[k + 1] for k in range(lo + 1, hi + 1)
        )

    # -- parameters ---------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Gaussian cores whose product has ``nn.Conv2d``'s kernel variance; its bias init."""
        terms = math.prod(self.ranks[1:-1])
        init_product_(list(self.cores), self.kernel_variance(), terms)
        self.reset_bias()

    def _merge(self, lo: int, hi: int) -> Tensor:
        """Cores ``lo..hi`` contracted left to right: ``(g, r_lo * n_lo ... n_hi, r_{hi+1})``."""
        g = self.groups
        m = self.cores[lo].reshape(g, -1, self.ranks[lo + 1])
        for k in range(lo + 1, hi + 1):
            core = self.cores[k].reshape(g, self.ranks[k], -1)
            m = (m @ core).reshape(g, -1, self.ranks[k + 1])
        return m

    def reconstruct(self) -> Tensor:
        """The kernel: all cores contracted left to right, then permuted to torch layout."""
        g = self.groups
        kh, kw = self.kernel_size
        t, s = self.out_channels // g, self.in_channels // g
        full = self._merge(0, len(self.modes) - 1).reshape(g, t, kh, kw, s)
        return full.permute(0, 1, 4, 2, 3).reshape(self.out_channels, s, kh, kw)

    def to_tt(self, group: int = 0) -> tn.TTTensor:
        """The (tensorized) kernel of ``group`` as a ``tensornet.TTTensor``, detached."""
        if isinstance(group, bool) or not isinstance(group, numbers.Integral):
            raise TypeError(f"group must be an int, got {group!r}")
        if not 0 <= group < self.groups:
            raise ValueError(f"group must be in [0, {self.groups}), got {group}")
        return tn.TTTensor([c[group].detach().clone() for c in self.cores])

    # -- factorized path ----------------------------------------------------------------------
    def _factorized_weights(self, path: str) -> tuple[Tensor, ...]:
        """Merged s-blocks (``in_plan`` order), the spatial kernel, merged t-blocks."""
        g, rho, a = self.groups, self.ranks, self._spatial
        kh, kw = self.kernel_size
        ins = tuple(self._merge(lo, hi).reshape(g, rho[lo], -1) for lo, hi in self.in_plan)
        spatial = self.cores[a].permute(0, 1, 3, 2).reshape(g * rho[a], rho[a + 1], kh, kw)
        outs = tuple(self._merge(lo, hi) for lo, hi in self.out_plan)
        return (*ins, spatial, *outs)

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        weights = self._factorized_weights("factorized")
        return self._factorized_apply("factorized", x, padding, weights)

    def _factorized_apply(
        self, path: str, x: Tensor, padding: tuple[int, int], weights: Sequence[Tensor]
    ) -> Tensor:
        g, rho, a = self.groups, self.ranks, self._spatial
        n, _, hp, wp = x.shape
        pixels = hp * wp
        n_in = len(self.in_plan)
        y = x.reshape(n, g, -1, pixels)  # (N, g, s_1 ... s_b, P)
        for block in weights[:n_in]:  # outer s-blocks first: (N, g, L, K, P) -> (N, g, L, r_lo, P)
            y = block[None, :, None] @ y.reshape(n, g, -1, block.shape[-1], pixels)
        y = y.reshape(n, g * rho[a + 1], hp, wp)
        if fast_channels_last(x):
            y = y.contiguous(memory_format=torch.channels_last)
        y = F.conv2d(y, weights[n_in], None, self.stride, padding, self.dilation, g)
        ho, wo = y.shape[-2:]
        for (_, hi), block in zip(self.out_plan, weights[n_in + 1 :], strict=True):
            # inner t-blocks first: (N, g, r_{hi+1}, Q*P) -> (N, g, r_lo * t-modes, Q*P)
            y = block[None] @ y.reshape(n, g, rho[hi + 1], -1)
        y = y.reshape(n, self.out_channels, ho, wo)
        # in place (the products save their inputs, not y): no second full-size output
        return y if self.bias is None else y.add_(self.bias[:, None, None])

    # -- cost model ---------------------------------------------------------------------------
    def factorized_macs(self, height: int, width: int) -> int:
        """Per sample: s-blocks at the pipeline input size, spatial conv and t-blocks at the output.

        Excludes the merging of multi-core blocks, which does not depend on the input and
        is counted once per call by :meth:`path_macs` (:meth:`precontract_macs`).
        """
        g, rho, a = self.groups, self.ranks, self._spatial
        kh, kw = self.kernel_size
        hp, wp = self.pipeline_input_size(height, width)
        ho, wo = self.output_size(height, width)
        off = a + 1
        in_cost = sum(self._in_block_cost(lo - off, hi - off) for lo, hi in self.in_plan)
        out_cost = sum(self._out_block_cost(lo, hi) for lo, hi in self.out_plan)
        spatial = rho[a] * rho[a + 1] * kh * kw
        return g * (hp * wp * in_cost + ho * wo * (spatial + out_cost))

    def precontract_macs(self) -> int:
        """MACs of merging the multi-core blocks of ``in_plan`` and ``out_plan`` (once per call)."""
        blocks = (*self.in_plan, *self.out_plan)
        return self.groups * sum(self._merge_cost(lo, hi) for lo, hi in blocks)

    def reconstruct_macs(self) -> int:
        """``g * sum_k n_0 ... n_{k-1} r_k n_k r_{k+1}`` (left-to-right chain, k = 1..d-1)."""
        return self.groups * self._merge_cost(0, len(self.modes) - 1)

    def ranks_repr(self) -> str:
        return f"ranks={self.ranks}, in_modes={self.in_modes}, out_modes={self.out_modes}"

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        rtol: float | None = None,
        ranks: int | Sequence[int] | None = None,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
        forward_mode: str = "auto",
    ) -> TTConv2d:
        """TT-SVD of a pretrained kernel, tensorized as ``[*out_modes, kh * kw, *in_modes]``.

        ``tensornet.tt_svd`` (exact SVDs, so the result is deterministic) runs on every
        group's kernel; the groups are padded to the largest rank of every bond with zeros.

        Parameters
        ----------
        conv : nn.Conv2d
        rtol : float, optional
            Relative Frobenius error of the whole kernel (each group within ``rtol``).
        ranks : int or sequence of int, optional
            Caps of the bonds (as in the constructor); with ``rtol`` the smaller rank
            wins. At least one of ``rtol``, ``ranks`` is required. Ranks never exceed the
            rank of the unfolding they come from.
        in_modes, out_modes : sequence of int, optional
            As in the constructor.
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d`` or an option has the wrong type.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given, or an option is invalid.
        """
        geometry = cls.conv_geometry(conv)
        rtol = check_rtol(rtol)
        if rtol is None and ranks is None:
            raise ValueError("give rtol, ranks or both (TTConv2d.from_conv)")
        g = conv.groups
        kh, kw = geometry["kernel_size"]
        s, t = conv.in_channels // g, conv.out_channels // g
        ins, outs = cls._resolve_modes(s, t, in_modes, out_modes)
        modes = (*outs, kh * kw, *ins)
        caps = None if ranks is None else check_tt_ranks(ranks, modes)[1:-1]
        weight = conv.weight.detach()
        trains = [
            tn.tt_svd(
                block.permute(0, 2, 3, 1).reshape(modes), rtol=rtol, max_rank=caps, method="exact"
            )
            for block in weight.chunk(g, dim=0)
        ]
        bonds = tuple(max(tt.ranks[k] for tt in trains) for k in range(len(modes) + 1))
        layer = cls(
            **geometry,
            ranks=bonds,
            in_modes=ins,
            out_modes=outs,
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            for k, param in enumerate(layer.cores):
                padded = [
                    pad_factor(pad_factor(tt.cores[k], bonds[k], 0), bonds[k + 1], 2)
                    for tt in trains
                ]
                param.copy_(torch.stack(padded))
        balance_(list(layer.cores))
        layer.copy_bias_(conv)
        return layer
