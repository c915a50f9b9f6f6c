"""CP convolution: 1x1 (in -> R) -> depthwise (kh x 1) -> depthwise (1 x kw) -> 1x1 (R -> out).

The kernel of each group is a CP tensor of rank ``R``,
``W[t, s, h, w] = sum_r A[t, r] B[s, r] H[h, r] V[w, r]`` (the CP weights are folded into
the four factors), which is exactly the composition of four small convolutions: ``B^T``
as a 1x1 convolution to ``R`` channels, ``H`` and ``V`` as depthwise convolutions along
the height and the width, and ``A`` as a 1x1 convolution back to ``out_channels``
(Lebedev et al. 2015, "Speeding-up convolutional neural networks using fine-tuned
CP-decomposition").
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet as tn
from tensornet._validation import ConvergenceWarning, check_int, check_rng, check_rtol
from tensornet_torch.layers._base import (
    FactorizedConv2d,
    fast_channels_last,
    init_product_,
    is_channels_last,
    pointwise,
)
from tensornet_torch.layers.tucker_conv import pad_factor

__all__ = ["CPConv2d", "check_cp_rank", "cp_rank_bound"]

_ROUNDOFF = 16.0
"""A fit meets ``rtol`` when its relative error is ``<= rtol + _ROUNDOFF * eps * sqrt(n_max)``."""


def check_cp_rank(ranks: object, name: str = "ranks") -> int:
    """The CP rank ``R`` from a positive int."""
    if isinstance(ranks, bool) or not isinstance(ranks, numbers.Integral):
        raise TypeError(f"{name} must be a positive int (the CP rank R), got {ranks!r}")
    if ranks < 1:
        raise ValueError(f"{name} must be a positive int (the CP rank R), got {ranks!r}")
    return int(ranks)


def cp_rank_bound(shape: tuple[int, ...]) -> int:
    """A rank at which every tensor of ``shape`` has an exact CP: ``prod(shape) / max(shape)``.

    (Write the tensor as the sum of its fibres along its longest mode, one rank-one term
    per index of the other modes.)
    """
    return math.prod(shape) // max(shape)


def _relative_error(cp: tn.CPTensor, block: Tensor) -> float:
    norm = float(torch.linalg.vector_norm(block))
    if norm == 0.0:
        return 0.0
    return float(torch.linalg.vector_norm(cp.to_dense() - block)) / norm


def _widen(cp: tn.CPTensor, rank: int, gen: np.random.Generator) -> tn.CPTensor:
    """``cp`` with random unit columns appended up to ``rank`` (a warm start for cp_als).

    cp_als solves mode 0 first, by least squares against the other factors: it can zero
    the new columns, so a warm-started fit is never worse than ``cp``.
    """
    ref = cp.weights
    factors = []
    for f in cp.factors:
        extra = torch.as_tensor(
            gen.standard_normal((int(f.shape[0]), rank - cp.rank)), dtype=ref.dtype
        ).to(ref.device)
        extra = extra / torch.linalg.vector_norm(extra, dim=0, keepdim=True)
        factors.append(torch.cat([f, extra], dim=1))
    return tn.CPTensor(torch.cat([ref, ref.new_zeros(rank - cp.rank)]), factors)


def _fit(
    block: Tensor,
    rank: int,
    init: tn.CPTensor | None,
    n_iter_max: int,
    tol: float,
    gen: np.random.Generator,
) -> tuple[tn.CPTensor, float]:
    start = None if init is None else _widen(init, rank, gen)
    kwargs: dict[str, Any] = {} if start is None else {"init": start}
    cp = tn.cp_als(block, rank, n_iter_max=n_iter_max, tol=tol, rng=gen, **kwargs)
    return cp, _relative_error(cp, block)


def _search_rank(
    block: Tensor,
    rtol: float,
    cap: int,
    n_iter_max: int,
    tol: float,
    gen: np.random.Generator,
) -> tuple[tn.CPTensor, float, bool]:
    """Smallest rank ``<= cap`` whose CP-ALS fit meets ``rtol``: doubling, then bisection.

    Every fit is warm-started from the fit of the largest smaller rank tried so far, so
    the error never increases along the doubling sweep. Returns the fit, its relative
    error and whether it meets ``rtol`` (if not, the fit at ``cap``).
    """
    # round-off of an exact fit, so that rtol=0 is reachable
    slack = _ROUNDOFF * float(torch.finfo(block.dtype).eps) * math.sqrt(max(block.shape))
    fits: dict[int, tuple[tn.CPTensor, float]] = {}

    def fit(rank: int) -> tuple[tn.CPTensor, float]:
        below = [r for r in fits if r < rank]
        init = fits[max(below)][0] if below else None
        fits[rank] = _fit(block, rank, init, n_iter_max, tol, gen)
        return fits[rank]

    with warnings.catch_warnings():
        # the rank search checks the error itself; unconverged sweeps are not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        low, rank = 0, 1
        while True:
            cp, err = fit(rank)
            if err <= rtol + slack:
                break
            if rank >= cap:
                return cp, err, False
            low, rank = rank, min(2 * rank, cap)
        high = rank
        while high - low > 1:
            mid = (low + high) // 2
            if fit(mid)[1] <= rtol + slack:
                high = mid
            else:
                low = mid
    cp, err = fits[high]
    return cp, err, True


class CPConv2d(FactorizedConv2d):
    """Convolution whose kernel is a rank-``R`` CP tensor (per group).

    ``W[t, s, h, w] = sum_r A[t, r] B[s, r] H[h, r] V[w, r]``: a 1x1 convolution to ``R``
    channels, a depthwise ``(kh x 1)`` convolution with the height stride, padding and
    dilation, a depthwise ``(1 x kw)`` convolution with the width ones, and a 1x1
    convolution to ``out_channels`` (plus the bias). With ``groups > 1`` every group has
    its own factors (grouped sublayers, ``groups * R`` middle channels).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int
        The CP rank ``R`` of each group's kernel.
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    first : Parameter, shape (groups * R, in_channels / groups)
        ``B^T`` of every group, stacked.
    vertical : Parameter, shape (groups * R, kh)
        ``H^T`` of every group, stacked.
    horizontal : Parameter, shape (groups * R, kw)
        ``V^T`` of every group, stacked.
    last : Parameter, shape (out_channels, R)
        ``A`` of every group, stacked.
    rank : int
        ``R``; ``ranks`` is ``(R,)`` like ``tensornet.CPTensor.ranks``.

    Examples
    --------
    >>> import torch
    >>> layer = CPConv2d(16, 32, 3, padding=1, ranks=8)
    >>> layer.num_params, layer.dense_num_params
    (464, 4640)
    >>> layer(torch.randn(2, 16, 8, 8)).shape
    torch.Size([2, 32, 8, 8])

    From a trained layer, with the smallest rank that meets a relative kernel error:

    >>> conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    >>> layer = CPConv2d.from_conv(conv, rtol=0.5, n_iter_max=20, rng=0)
    >>> error = torch.linalg.vector_norm(layer.weight - conv.weight) / torch.linalg.vector_norm(
    ...     conv.weight
    ... )
    >>> bool(error <= 0.5), layer.num_params < layer.dense_num_params
    (True, True)
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
        ranks: int,
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
        self.rank = check_cp_rank(ranks)
        self.ranks = (self.rank,)
        g, r = self.groups, self.rank
        kh, kw = self.kernel_size
        factory = {"device": device, "dtype": dtype}
        self.first = nn.Parameter(torch.empty(g * r, in_channels // g, **factory))
        self.vertical = nn.Parameter(torch.empty(g * r, kh, **factory))
        self.horizontal = nn.Parameter(torch.empty(g * r, kw, **factory))
        self.last = nn.Parameter(torch.empty(out_channels, r, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian factors whose product has ``nn.Conv2d``'s kernel variance; its bias init."""
        factors = [self.first, self.vertical, self.horizontal, self.last]
        init_product_(factors, self.kernel_variance(), self.rank)
        self.reset_bias()

    def reconstruct(self) -> Tensor:
        """The kernel, contracted as ``(H * V) -> (B * HV) -> A @ BHV`` per group."""
        g, r = self.groups, self.rank
        kh, kw = self.kernel_size
        s = self.in_channels // g
        hv = self.vertical.reshape(g, r, kh, 1) * self.horizontal.reshape(g, r, 1, kw)
        shv = self.first.reshape(g, r, s, 1, 1) * hv.reshape(g, r, 1, kh, kw)
        kernel = self.last.reshape(g, -1, r) @ shv.reshape(g, r, s * kh * kw)
        return kernel.reshape(self.out_channels, s, kh, kw)

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        g, r = self.groups, self.rank
        (sh, sw), (dh, dw), (ph, pw) = self.stride, self.dilation, padding
        kh, kw = self.kernel_size
        # the narrow intermediates channels-last where oneDNN's depthwise convolutions run
        # ~10x faster on them; the output in the input's layout, as nn.Conv2d
        y = pointwise(x, self.first, None, g, channels_last=fast_channels_last(x))
        y = F.conv2d(
            y, self.vertical.reshape(g * r, 1, kh, 1), None, (sh, 1), (ph, 0), (dh, 1), g * r
        )
        y = F.conv2d(
            y, self.horizontal.reshape(g * r, 1, 1, kw), None, (1, sw), (0, pw), (1, dw), g * r
        )
        return pointwise(y, self.last, self.bias, g, channels_last=is_channels_last(x))

    def factorized_macs(self, height: int, width: int) -> int:
        """``Hp Wp S R + H' Wp g R kh + H' W' g R kw + H' W' T R`` (``Hp, Wp``: pipeline input)."""
        g, r = self.groups, self.rank
        kh, kw = self.kernel_size
        hp, wp = self.pipeline_input_size(height, width)
        ho, wo = self.output_size(height, width)
        return (
            hp * wp * self.in_channels * r
            + ho * wp * g * r * kh
            + ho * wo * g * r * kw
            + ho * wo * self.out_channels * r
        )

    def reconstruct_macs(self) -> int:
        """``g R (kh kw + S' kh kw + T' S' kh kw)`` with ``S', T'`` the channels per group."""
        g, r = self.groups, self.rank
        kh, kw = self.kernel_size
        s, t = self.in_channels // g, self.out_channels // g
        return g * r * (kh * kw + s * kh * kw + t * s * kh * kw)

    def to_cp(self, group: int = 0) -> tn.CPTensor:
        """The kernel of ``group`` as a ``tensornet.CPTensor`` (unit weights), detached."""
        g, r = self.groups, self.rank
        if isinstance(group, bool) or not isinstance(group, numbers.Integral):
            raise TypeError(f"group must be an int, got {group!r}")
        if not 0 <= group < g:
            raise ValueError(f"group must be in [0, {g}), got {group}")
        rows = slice(group * r, (group + 1) * r)
        t = self.out_channels // g
        factors = [
            self.last[group * t : (group + 1) * t],
            self.first[rows].T,
            self.vertical[rows].T,
            self.horizontal[rows].T,
        ]
        factors = [f.detach().clone() for f in factors]
        return tn.CPTensor(factors[0].new_ones(r), factors)

    def ranks_repr(self) -> str:
        return f"ranks={self.rank}"

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        rtol: float | None = None,
        ranks: int | None = None,
        n_iter_max: int = 100,
        tol: float = 1e-8,
        rng: np.random.Generator | int | None = None,
        forward_mode: str = "auto",
    ) -> CPConv2d:
        """CP decomposition of a pretrained kernel (``tensornet.cp_als`` per group).

        CP has no SVD-style truncation rule, so ``rtol`` is met by a rank search per
        group: ranks 1, 2, 4, ... until a fit has relative error ``<= rtol`` (up to the
        round-off ``16 eps sqrt(max(shape))``, so that ``rtol=0`` is reachable), then a
        bisection between the last failing and the first passing rank (each fit
        warm-started from the best smaller one, so the error never grows along the
        doubling sweep). The search stops at the cap: ``ranks`` if given, otherwise
        ``prod(shape) / max(shape)`` of the group's kernel, a rank at which an exact CP
        always exists. Groups are padded to the largest rank with zero columns. The
        factors are scaled so that the four factors of every term have equal norms.

        Parameters
        ----------
        conv : nn.Conv2d
        rtol : float, optional
            Relative Frobenius error of the whole kernel (each group within ``rtol``).
        ranks : int, optional
            Alone: the fixed rank ``R``. With ``rtol``: the cap of the rank search; if the
            fit at the cap misses ``rtol``, it is returned anyway (the cap wins, as in
            every tensornet decomposition). At least one of ``rtol``, ``ranks`` is required.
        n_iter_max : int
            Sweeps of each CP-ALS fit.
        tol : float
            Convergence tolerance of each CP-ALS fit (:func:`tensornet.cp_als`).
        rng : numpy.random.Generator, int or None
            Randomness of the CP-ALS starts.
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d`` or an option has the wrong type.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given or either is invalid, or if ``rtol``
            is given without ``ranks`` and no rank up to ``prod(shape) / max(shape)``
            reaches it (CP-ALS did not converge far enough: raise ``n_iter_max``).

        Warns
        -----
        tensornet.ConvergenceWarning
            With ``ranks`` alone, if a CP-ALS fit did not converge in ``n_iter_max``
            sweeps (the rank search of ``rtol`` checks the error itself and is silent).
        """
        geometry = cls.conv_geometry(conv)
        rtol = check_rtol(rtol)
        cap = None if ranks is None else check_cp_rank(ranks)
        if rtol is None and cap is None:
            raise ValueError("give rtol, ranks or both (CPConv2d.from_conv)")
        n_iter_max = check_int(n_iter_max, "n_iter_max", minimum=1)
        gen = check_rng(rng)
        weight = conv.weight.detach()
        parts: list[tn.CPTensor] = []
        for index, block in enumerate(weight.chunk(conv.groups, dim=0)):
            if rtol is None:
                assert cap is not None
                parts.append(_fit(block, cap, None, n_iter_max, tol, gen)[0])
                continue
            bound = cp_rank_bound(tuple(block.shape))
            limit = bound if cap is None else cap
            cp, err, met = _search_rank(block, rtol, limit, n_iter_max, tol, gen)
            if not met and cap is None:
                group = f" in group {index}" if conv.groups > 1 else ""
                raise ValueError(
                    f"CPConv2d.from_conv could not reach rtol={rtol:g}{group}: the best "
                    f"relative kernel error is {err:.3e} at rank {bound} (the rank at which "
                    f"an exact CP of a {tuple(block.shape)} kernel exists); CP-ALS did not "
                    f"converge far enough in n_iter_max={n_iter_max} sweeps. Raise n_iter_max, "
                    "loosen rtol, or pass ranks= to accept the fit at that rank"
                )
            parts.append(cp)
        rank = max(cp.rank for cp in parts)
        layer = cls(
            **geometry,
            ranks=rank,
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            folded = [_fold_weights(cp) for cp in parts]
            last, first, vertical, horizontal = (
                torch.cat([pad_factor(f[k], rank, 1) for f in folded], 0 if k == 0 else 1)
                for k in range(4)
            )
            layer.last.copy_(last)
            layer.first.copy_(first.T)
            layer.vertical.copy_(vertical.T)
            layer.horizontal.copy_(horizontal.T)
        layer.copy_bias_(conv)
        return layer


def _fold_weights(cp: tn.CPTensor) -> list[Tensor]:
    """The four factors of ``cp`` with ``|w|^(1/4)`` in each column (the sign in the first)."""
    w = cp.weights
    scale = w.abs() ** 0.25
    sign = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))
    factors = [f * scale for f in cp.factors]
    factors[0] = factors[0] * sign
    return factors
