"""Semi-tensor-product convolutions: STTucker (Tucker-2 with ``U ⊗ I_k`` factors) and STT.

Both store a kernel ``W`` of shape ``(T, S / groups, kh, kw)`` in one of the STP formats of
:mod:`tensornet.formats.stp_formats` (per group), where a factor or a core enters as its
Kronecker product with the identity ``I_k``: ``(A ⊗ I_k)[a k + s, b k + t] = A[a, b]
δ(s, t)``, so a channel or bond index of size ``n`` is read as ``(a, s)`` in C order, a
*reduced* index ``a < n / k`` and a *copy* index ``s < k``.

- :class:`STTuckerConv2d`: ``W = core ×_0 (U_out ⊗ I_k) ×_1 (U_in ⊗ I_k)`` (Tucker-2 on the
  channel modes). Forward: 1x1 ``(U_in ⊗ I_k)ᵀ`` → ``kh x kw`` core → 1x1 ``U_out ⊗ I_k``. A
  1x1 convolution by ``U ⊗ I_k`` is one matrix product by ``U`` with the input viewed as
  ``(N, C / k, k H W)`` (the copy index joins the pixels; a view, no data movement), so it
  costs ``C R / k`` MACs per pixel: ``k`` times fewer than a dense 1x1 of the same ranks
  (``C R``; ``U ⊗ I_k`` has ``C R / k`` non-zeros, so ``k`` is the most there is to gain),
  with ``k**2`` fewer parameters (``C R / k**2``).
- :class:`STTConv2d`: the kernel tensorized as in ADMM-TT's layout, modes
  ``[t_1..t_a, kh*kw, s_1..s_b]`` (``W[t, s, h, w]`` at ``(t_1..t_a), h kw + w, (s_1..s_b)``,
  C order), stored as an :class:`tensornet.STTTensor`. Forward through the equivalent tensor
  ring of ranks ``(k, R_1/k, ..., R_{d-1}/k, k)`` (:func:`tensornet.stt_to_tr`): the copy index
  travels with the pixels (a batch index of size ``k`` for the spatial convolution) and is
  contracted by the first core, the ring closure; every reduced core costs ``k`` times fewer
  MACs than in the equivalent TT (:meth:`STTConv2d.factorized_macs`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet as tn
from tensornet.formats.stp_formats import _check_divides, check_k
from tensornet_torch.layers._base import FactorizedConv2d, balance_, init_product_
from tensornet_torch.layers._modes import (
    check_chain_ranks,
    check_modes_product,
    default_channel_modes,
)
from tensornet_torch.layers.tucker_conv import check_pair_ranks, pad_factor

__all__ = ["STTConv2d", "STTuckerConv2d", "kernel_modes", "tensorize_kernel"]


def _generator(rng: object) -> np.random.Generator:
    """One generator for all groups (so that they draw different streams)."""
    return np.random.default_rng(rng)  # type: ignore[arg-type]


# -- STTucker -------------------------------------------------------------------------------------
class STTuckerConv2d(FactorizedConv2d):
    """Convolution whose kernel is a semi-tensor Tucker-2 tensor over its channel modes.

    Per group, ``W = core ×_0 (U_out ⊗ I_k) ×_1 (U_in ⊗ I_k)`` with ``U_out`` of shape
    ``(T_g / k, r_out / k)``, ``U_in`` of shape ``(S_g / k, r_in / k)`` and ``core`` of shape
    ``(r_out, r_in, kh, kw)`` (``T_g``, ``S_g``: channels per group); as a Tucker-2 kernel it
    has ranks ``(r_out, r_in)`` but ``k**2`` fewer factor entries. The forward pass is the
    :class:`~tensornet_torch.layers.TuckerConv2d` pipeline (1x1 → ``kh x kw`` core → 1x1)
    whose 1x1 stages use the Kronecker structure: ``U_inᵀ @ x`` with ``x`` viewed as
    ``(N, S / k, k H W)`` (per group) is ``(U_in ⊗ I_k)ᵀ x`` viewed as ``(N, r_in, H, W)``.
    MACs per sample (:meth:`factorized_macs`)::

        H W S r_in / k  +  H' W' groups r_out r_in kh kw  +  H' W' T r_out / k

    i.e. the 1x1 stages cost ``k`` times less than TuckerConv2d's at the same ranks.
    With ``k = 1`` the layer *is* a TuckerConv2d with the same parameters.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int or (int, int)
        ``(r_out, r_in)`` per group, the Tucker ranks of the equivalent Tucker-2 kernel;
        both multiples of ``k``.
    k : int
        Size of the identity factor; must divide ``out_channels / groups``,
        ``in_channels / groups`` and both ranks.
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    first : Parameter, shape (groups * r_in / k, in_channels / groups / k)
        ``U_inᵀ`` of every group, stacked.
    core : Parameter, shape (groups * r_out, r_in, kh, kw)
    last : Parameter, shape (out_channels / k, r_out / k)
        ``U_out`` of every group, stacked.

    Raises
    ------
    TypeError
        If ``ranks`` or ``k`` has the wrong type.
    ValueError
        If a rank or ``k`` is not positive, or ``k`` does not divide the channels per
        group or the ranks (and the ``nn.Conv2d`` geometry errors).

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv2d(16, 32, 3, padding=1)
    >>> layer = STTuckerConv2d.from_conv(conv, ranks=(8, 4), k=2, rng=0)
    >>> layer.num_params, layer.last.shape  # 368 kernel entries (Tucker-2: 608) + 32 bias
    (400, torch.Size([16, 4]))
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
        self.ranks = check_pair_ranks(ranks)
        self.k = check_k(k)
        r_out, r_in = self.ranks
        g, k = self.groups, self.k
        _check_divides(k, out_channels // g, "out_channels / groups")
        _check_divides(k, in_channels // g, "in_channels / groups")
        _check_divides(k, r_out, "ranks[0] (r_out)")
        _check_divides(k, r_in, "ranks[1] (r_in)")
        kh, kw = self.kernel_size
        factory = {"device": device, "dtype": dtype}
        self.first = nn.Parameter(torch.empty(g * r_in // k, in_channels // g // k, **factory))
        self.core = nn.Parameter(torch.empty(g * r_out, r_in, kh, kw, **factory))
        self.last = nn.Parameter(torch.empty(out_channels // k, r_out // k, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian factors whose product has ``nn.Conv2d``'s kernel variance; its bias init.

        A kernel entry sums ``(r_out / k) (r_in / k)`` products (the other terms of the
        equivalent Tucker sum are zeros of ``I_k``).
        """
        r_out, r_in = self.ranks
        terms = (r_out // self.k) * (r_in // self.k)
        init_product_([self.first, self.core, self.last], self.kernel_variance(), terms)
        self.reset_bias()

    # -- the two paths ------------------------------------------------------------------------
    def _reconstruct_out_first(self) -> bool:
        """Whether contracting ``U_out ⊗ I_k`` into the core first is the cheaper order."""
        r_out, r_in = self.ranks
        t_g = self.out_channels // self.groups
        s_g = self.in_channels // self.groups
        return t_g * r_out * r_in + t_g * s_g * r_in <= r_out * s_g * r_in + t_g * s_g * r_out

    def reconstruct(self) -> Tensor:
        g, k = self.groups, self.k
        r_out, r_in = self.ranks
        kh, kw = self.kernel_size
        t_g, s_g = self.out_channels // g, self.in_channels // g
        first = self.first.reshape(g, r_in // k, s_g // k)
        last = self.last.reshape(g, t_g // k, r_out // k)
        if self._reconstruct_out_first():
            core = self.core.reshape(g, r_out // k, k, r_in, kh, kw)
            half = torch.einsum("gpq,gqvbhw->gpvbhw", last, core)  # (g, T_g/k, k, r_in, ...)
            half = half.reshape(g, t_g, r_in // k, k, kh, kw)
            kernel = torch.einsum("gtqvhw,gqs->gtsvhw", half, first)
        else:
            core = self.core.reshape(g, r_out, r_in // k, k, kh, kw)
            half = torch.einsum("gaqvhw,gqs->gasvhw", core, first)  # (g, r_out, S_g/k, k, ...)
            half = half.reshape(g, r_out // k, k, s_g, kh, kw)
            kernel = torch.einsum("gpq,gqvshw->gpvshw", last, half)
        return kernel.reshape(self.out_channels, s_g, kh, kw)

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        g, k = self.groups, self.k
        r_out, r_in = self.ranks
        n, _, height, width = (int(m) for m in x.shape)
        s_g, t_g = self.in_channels // g, self.out_channels // g
        # (U_in ⊗ I_k)ᵀ x: channel (p, v) of a group is row p of a (S_g / k, k H W) matrix
        first = self.first.reshape(g, r_in // k, s_g // k)
        y = torch.matmul(first, x.reshape(n, g, s_g // k, k * height * width))
        y = y.reshape(n, g * r_in, height, width)
        y = F.conv2d(y, self.core, None, self.stride, padding, self.dilation, g)
        ho, wo = int(y.shape[2]), int(y.shape[3])
        last = self.last.reshape(g, t_g // k, r_out // k)
        y = torch.matmul(last, y.reshape(n, g, r_out // k, k * ho * wo))
        y = y.reshape(n, self.out_channels, ho, wo)
        # in place: a second full-size output would cost another allocation
        return y if self.bias is None else y.add_(self.bias[:, None, None])

    # -- cost model ---------------------------------------------------------------------------
    def factorized_macs(self, height: int, width: int) -> int:
        """MACs of the pipeline per sample: ``k`` times fewer in the 1x1 stages than Tucker's.

        ``H W S r_in / k + H' W' groups r_out r_in kh kw + H' W' T r_out / k``, with
        ``H x W`` the size the first stage runs at (the input, padded up front when the
        padding is not symmetric zeros) and ``H' x W'`` the output size.
        """
        r_out, r_in = self.ranks
        kh, kw = self.kernel_size
        h, w = self.pipeline_input_size(height, width)
        ho, wo = self.output_size(height, width)
        return (
            h * w * self.in_channels * r_in // self.k
            + ho * wo * self.groups * r_out * r_in * kh * kw
            + ho * wo * self.out_channels * r_out // self.k
        )

    def reconstruct_macs(self) -> int:
        """MACs of :meth:`reconstruct` (the cheaper of the two contraction orders)."""
        r_out, r_in = self.ranks
        kh, kw = self.kernel_size
        g, k = self.groups, self.k
        t_g, s_g = self.out_channels // g, self.in_channels // g
        if self._reconstruct_out_first():
            per_group = t_g * r_out * r_in + t_g * s_g * r_in
        else:
            per_group = r_out * s_g * r_in + t_g * s_g * r_out
        return g * per_group * kh * kw // k

    def ranks_repr(self) -> str:
        return f"ranks={self.ranks}, k={self.k}"

    def decomposition(self, group: int = 0) -> tn.STTuckerTensor:
        """The kernel of ``group`` (``(T_g, S_g, kh, kw)``) as a detached STTuckerTensor."""
        g, k = self.groups, self.k
        if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < g:
            raise ValueError(f"group must be an int in [0, {g}), got {group!r}")
        r_out, r_in = self.ranks
        u_out = self.last.detach().reshape(g, -1, r_out // k)[group]
        u_in = self.first.detach().reshape(g, r_in // k, -1)[group].T
        core = self.core.detach().reshape(g, r_out, r_in, *self.kernel_size)[group]
        return tn.STTuckerTensor(core, [u_out, u_in, None, None], k=k)

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        ranks: int | tuple[int, int] | None = None,
        k: int,
        rtol: float | None = None,
        n_iter_max: int = 100,
        tol: float = 1e-6,
        rng: np.random.Generator | int | None = None,
        forward_mode: str = "auto",
    ) -> STTuckerConv2d:
        """STTucker-2 of a pretrained kernel (:func:`tensornet.sttucker_fit`, modes 0, 1).

        Per group, the factors are orthonormal and fitted by ALS (HOOI on k-folded
        unfoldings) from the k-folded ST-HOSVD start.

        Parameters
        ----------
        conv : nn.Conv2d
        ranks : int or (int, int), optional
            ``(r_out, r_in)``, multiples of ``k``. Alone: the exact ranks (capped at the
            channels per group). With ``rtol``: caps (the smaller rank wins).
        k : int
            Size of the identity factor; must divide the channels per group and the ranks.
        rtol : float, optional
            Relative Frobenius error of the kernel (each group within ``rtol``): the
            smallest ranks (multiples of ``k``) whose k-folded ST-HOSVD drops at most
            ``rtol ||W|| / sqrt(2)`` per mode; ALS only lowers that error, so
            ``||W - W_hat|| <= rtol ||W||`` holds unless a ``ranks`` cap binds. Groups are
            zero-padded to common ranks.
        n_iter_max, tol, rng
            As :func:`tensornet.sttucker_fit` (``tol`` on the change of the relative error;
            a :class:`tensornet.ConvergenceWarning` reports a fit that did not settle).
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d`` or an option has the wrong type.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given, or ``k`` does not divide the
            channels per group or the ranks.

        Examples
        --------
        >>> import torch
        >>> conv = torch.nn.Conv2d(8, 8, 3)
        >>> layer = STTuckerConv2d.from_conv(conv, rtol=1e-6, k=2, rng=0)
        >>> w = conv.weight
        >>> bool(torch.linalg.vector_norm(layer.weight - w) <= 1e-6 * torch.linalg.vector_norm(w))
        True
        """
        geometry = cls.conv_geometry(conv)
        k = check_k(k)
        if rtol is None and ranks is None:
            raise ValueError("give rtol, ranks or both")
        g = conv.groups
        t_g, s_g = conv.out_channels // g, conv.in_channels // g
        _check_divides(k, t_g, "out_channels / groups")
        _check_divides(k, s_g, "in_channels / groups")
        caps = (t_g, s_g)
        if ranks is not None:
            r_out, r_in = check_pair_ranks(ranks)
            _check_divides(k, r_out, "ranks[0] (r_out)")
            _check_divides(k, r_in, "ranks[1] (r_in)")
            caps = (min(r_out, t_g), min(r_in, s_g))
        if rtol is not None and (
            isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not rtol >= 0
        ):
            raise ValueError(f"rtol must be a real number >= 0, got {rtol!r}")
        gen = _generator(rng)
        weight = conv.weight.detach()
        parts = []
        for block in weight.chunk(g, dim=0):
            block_ranks = caps if rtol is None else _folded_ranks(block, k, float(rtol), caps)
            parts.append(
                tn.sttucker_fit(
                    block, block_ranks, k=k, modes=(0, 1), n_iter_max=n_iter_max, tol=tol, rng=gen
                )
            )
        r_out = max(t.ranks[0] for t in parts)
        r_in = max(t.ranks[1] for t in parts)
        layer = cls(
            **geometry,
            ranks=(r_out, r_in),
            k=k,
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            first, core, last = [], [], []
            for t in parts:
                u_out, u_in = t.factors[0], t.factors[1]
                assert u_out is not None and u_in is not None
                first.append(pad_factor(u_in.T, r_in // k, 0))
                core.append(pad_factor(pad_factor(t.core, r_out, 0), r_in, 1))
                last.append(pad_factor(u_out, r_out // k, 1))
            layer.first.copy_(torch.cat(first, 0))
            layer.core.copy_(torch.cat(core, 0))
            layer.last.copy_(torch.cat(last, 0))
        layer.copy_bias_(conv)
        return layer


def _folded_ranks(block: Tensor, k: int, rtol: float, caps: tuple[int, int]) -> tuple[int, int]:
    """Ranks ``(r_out, r_in)`` of the k-folded ST-HOSVD of ``block`` at ``rtol`` (capped).

    Mode by mode, the smallest reduced rank whose folded unfolding drops a tail of at most
    ``rtol ||block|| / sqrt(2)``, projecting as it goes: the start that
    :func:`tensornet.sttucker_fit` uses, so its error bound carries over.
    """
    total = float(torch.linalg.vector_norm(block))
    if total == 0.0:
        return (k, k)
    delta = rtol * total / math.sqrt(2.0)
    y = block
    ranks = []
    for mode in (0, 1):
        folded = y.movedim(mode, 0).reshape(int(y.shape[mode]) // k, -1)
        size = float(torch.linalg.vector_norm(folded))
        relative = 0.0 if size == 0.0 else min(delta / size, 1.0)
        svd = tn.truncated_svd(folded, rtol=relative, max_rank=caps[mode] // k, method="exact")
        u = svd.U  # at least one column
        ranks.append(int(u.shape[1]) * k)
        y = tn.stp_mode_product(y, u.conj().T, mode, k=k)
    return ranks[0], ranks[1]


# -- STT ------------------------------------------------------------------------------------------
def kernel_modes(
    out_channels: int,
    in_channels: int,
    kernel_size: tuple[int, int],
    out_modes: Sequence[int] | None = None,
    in_modes: Sequence[int] | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(out_modes, in_modes, modes)`` of the layout ``[t_1..t_a, kh*kw, s_1..s_b]``.

    ``out_modes`` must multiply to ``out_channels`` and ``in_modes`` to ``in_channels``
    (the channels of one group). None: two balanced modes ``(p, n / p)`` with ``p`` the
    largest divisor of ``n`` up to ``sqrt(n)`` (one mode ``(n,)`` when ``p = 1``), the
    smaller mode at the outer end of the train (``t_1`` and ``s_b``, next to the full end
    cores); the same default as :class:`~tensornet_torch.layers.TTConv2d`.

    Examples
    --------
    >>> kernel_modes(64, 32, (3, 3))
    ((8, 8), (8, 4), (8, 8, 9, 8, 4))
    >>> kernel_modes(48, 7, (1, 1))
    ((6, 8), (7,), (6, 8, 1, 7))
    """
    outs = (
        tuple(reversed(default_channel_modes(out_channels)))
        if out_modes is None
        else check_modes_product(out_modes, out_channels, "out_modes", "out_channels / groups")
    )
    ins = (
        default_channel_modes(in_channels)
        if in_modes is None
        else check_modes_product(in_modes, in_channels, "in_modes", "in_channels / groups")
    )
    return outs, ins, (*outs, kernel_size[0] * kernel_size[1], *ins)


def tensorize_kernel(kernel: Tensor, modes: Sequence[int]) -> Tensor:
    """``(T, S, kh, kw)`` → modes ``[t_1..t_a, kh*kw, s_1..s_b]`` (``W[t, s, h, w]`` at
    ``(t, h kw + w, s)``, each multi-index in C order)."""
    return kernel.permute(0, 2, 3, 1).reshape(tuple(modes))


def _untensorize(x: Tensor, groups: int, kernel_size: tuple[int, int], in_g: int) -> Tensor:
    """``(groups, prod(modes))`` → kernel ``(groups T_g, S_g, kh, kw)``."""
    kh, kw = kernel_size
    x = x.reshape(groups, -1, kh, kw, in_g)
    return x.permute(0, 1, 4, 2, 3).reshape(-1, in_g, kh, kw)


class STTConv2d(FactorizedConv2d):
    """Convolution whose tensorized kernel is a semi-tensor train (STT).

    Per group the kernel ``(T_g, S_g, kh, kw)`` is read as the tensor of modes
    ``[t_1..t_a, kh*kw, s_1..s_b]`` (``prod t = T_g``, ``prod s = S_g``; ADMM-TT's layout)
    and stored as an :class:`tensornet.STTTensor`: first core ``(1, t_1, R_1)`` and last core
    ``(R_{d-1}, s_b, 1)`` full, the middle cores (the other channel modes and the spatial
    mode) reduced, ``(R_j / k, n_j, R_{j+1} / k)``; it equals the TT of ranks ``R`` with
    middle cores ``G_j ⊗ I_k``, and exactly the TR of ranks ``(k, R_1/k, ..., R_{d-1}/k, k)``.

    Forward (``"factorized"``), through that TR: the input channels are contracted core by
    core from ``s_b`` to ``s_1`` (the full last core yields the bond ``(c, v)``; the copy
    index ``v`` then travels with the pixels, so every step is one batched matrix product
    on reduced bonds), the spatial core is one ``kh x kw`` convolution ``R_{a+1}/k →
    R_a/k`` on the ``N k`` copies (stride, padding and dilation apply there only), the
    output modes are produced core by core from ``t_a`` to ``t_2``, and the full first core
    contracts both the bond and ``v`` (the ring closure). Every reduced core costs ``k``
    times fewer MACs than the same core of the equivalent TT (:meth:`factorized_macs`);
    the end cores cost what they cost in a TT.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    padding_mode, device, dtype
        As ``nn.Conv2d``.
    ranks : int or sequence of int
        Ranks of the equivalent TT: one int for every bond, the ``d - 1`` bonds, or
        ``(1, R_1, ..., R_{d-1}, 1)``; ``k`` must divide every bond (all bonds touch a
        middle core).
    k : int
        Size of the identity factor (>= 1); ``k = 1`` is a TT convolution.
    out_modes, in_modes : sequence of int, optional
        Factorizations of ``out_channels / groups`` and ``in_channels / groups``; None: two
        balanced modes, smaller one outermost (see :func:`kernel_modes`).
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    cores : ParameterList
        ``cores[j]`` of shape ``(groups, *stored core shape)`` (see
        :func:`tensornet.stt_core_shapes` with :attr:`modes`).
    modes : tuple of int
        ``(*out_modes, kh*kw, *in_modes)``.
    ranks : tuple of int
        ``(1, R_1, ..., R_{d-1}, 1)``, the ranks of the equivalent TT.

    Raises
    ------
    TypeError, ValueError
        If the modes do not multiply to the channels per group, ``ranks`` is malformed,
        or ``k`` does not divide the bonds (and the ``nn.Conv2d`` geometry errors).

    Examples
    --------
    >>> layer = STTConv2d(16, 32, 3, padding=1, ranks=4, k=2)
    >>> layer.modes, [tuple(c.shape) for c in layer.cores]
    ((4, 8, 9, 4, 4), [(1, 1, 4, 4), (1, 2, 8, 2), (1, 2, 9, 2), (1, 2, 4, 2), (1, 4, 4, 1)])
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
        out_modes: Sequence[int] | None = None,
        in_modes: Sequence[int] | None = None,
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
        g = self.groups
        self.out_modes, self.in_modes, self.modes = kernel_modes(
            out_channels // g, in_channels // g, self.kernel_size, out_modes, in_modes
        )
        self.ranks = check_chain_ranks(ranks, len(self.modes))
        shapes = tn.stt_core_shapes(self.modes, self.ranks, self.k)
        factory = {"device": device, "dtype": dtype}
        self.cores = nn.ParameterList(
            [nn.Parameter(torch.empty(g, *shape, **factory)) for shape in shapes]
        )
        self.reset_parameters()

    @property
    def _spatial(self) -> int:
        """Index of the spatial core (``a``, the number of output modes)."""
        return len(self.out_modes)

    def reset_parameters(self) -> None:
        """Gaussian cores whose chain has ``nn.Conv2d``'s kernel variance; its bias init.

        A kernel entry sums ``k prod_j (R_j / k)`` products of one entry per core (the
        copy index is shared by all bonds).
        """
        terms = self.k * math.prod(r // self.k for r in self.ranks[1:-1])
        init_product_(list(self.cores), self.kernel_variance(), terms)
        self.reset_bias()

    # -- the two paths ------------------------------------------------------------------------
    def reconstruct(self) -> Tensor:
        """The kernel, contracted left to right with the Kronecker structure (no ``⊗ I_k``)."""
        g, k = self.groups, self.k
        cores = list(self.cores)
        result = cores[0].reshape(g, int(cores[0].shape[2]), -1)  # (g, n_0, R_1)
        for core in cores[1:-1]:
            m = int(result.shape[1])
            left = result.reshape(g, m, int(core.shape[1]), k)
            step = torch.einsum("gmsu,gsnr->gmnru", left, core)
            result = step.reshape(g, m * int(core.shape[2]), -1)
        last = cores[-1][..., 0]  # (g, R_{d-1}, s_b)
        result = torch.einsum("gmr,grn->gmn", result, last)
        return _untensorize(result, g, self.kernel_size, self.in_channels // g)

    def _forward_factorized(self, x: Tensor, padding: tuple[int, int]) -> Tensor:
        g, k, a = self.groups, self.k, self._spatial
        cores = list(self.cores)
        n, _, height, width = (int(m) for m in x.shape)
        pixels = height * width
        ins = self.modes[a + 1 :]
        # Input side. Every step is one (batched) matrix product on a contiguous layout
        # (n, g, remaining s-modes, bond, k P): the full last core yields the bond (c, v),
        # and the copy index v then stays next to the pixels, like the pixels themselves.
        last = cores[-1][..., 0]  # (g, R_{d-1}, s_b)
        rest = math.prod(ins[:-1])
        z = torch.matmul(last[:, None], x.reshape(n, g, rest, ins[-1], pixels))
        bond = int(last.shape[1]) // k
        for core in reversed(cores[a + 1 : -1]):  # reduced (g, R_j/k, s_j, R_{j+1}/k)
            size, left = int(core.shape[2]), int(core.shape[1])
            rest //= size
            z = z.reshape(n, g, rest, size * bond, k * pixels)
            z = torch.matmul(core.reshape(g, 1, left, size * bond), z)
            bond = left
        # spatial core: one kh x kw convolution R_{a+1}/k -> R_a/k on the n k copies
        spatial = cores[a]  # (g, R_a/k, kh*kw, R_{a+1}/k)
        left = int(spatial.shape[1])
        weight = spatial.permute(0, 1, 3, 2).reshape(g * left, bond, *self.kernel_size)
        z = (
            z.reshape(n, g * bond, k, pixels)
            .transpose(1, 2)
            .reshape(n * k, g * bond, height, width)
        )
        z = F.conv2d(z, weight, None, self.stride, padding, self.dilation, g)
        ho, wo = int(z.shape[2]), int(z.shape[3])
        out_pixels = ho * wo
        # output side: layout (n, g, bond, produced t-modes, k P'), t_a first
        u = (
            z.reshape(n, k, g * left, out_pixels)
            .transpose(1, 2)
            .reshape(n, g, left, k * out_pixels)
        )
        produced = 1
        for core in reversed(cores[1:a]):  # reduced (g, R_j/k, t_j, R_{j+1}/k)
            left, size = int(core.shape[1]), int(core.shape[2])
            u = torch.matmul(core.reshape(g, left * size, int(core.shape[3])), u)
            produced *= size
            u = u.reshape(n, g, left, produced * k * out_pixels)
        # the full first core contracts the bond and closes the copy index
        first = cores[0][:, 0]  # (g, t_1, R_1)
        first = first.reshape(g, int(first.shape[1]), left, k)  # (g, t_1, c, v)
        u = u.reshape(n, g, left, produced, k, out_pixels)
        out = torch.einsum("gjcv,ngcmvp->ngjmp", first, u)
        out = out.reshape(n, self.out_channels, ho, wo)
        return out if self.bias is None else out.add_(self.bias[:, None, None])

    # -- cost model ---------------------------------------------------------------------------
    def factorized_macs(self, height: int, width: int) -> int:
        """MACs of the factorized pipeline per sample (hand count of every contraction).

        With ``P = H W`` (the size the input stages run at), ``P' = H' W'``, ``g`` groups,
        bonds ``R_j`` of the equivalent TT, ``a`` output modes and ``b`` input modes:

        - last core (full): ``P S R_{d-1}``;
        - input core of ``s_j`` (reduced, ``j = b-1..1``):
          ``P g (s_1 ... s_j) R_left R_right / k``;
        - spatial core: ``P' g R_a R_{a+1} kh kw / k``;
        - output core of ``t_j`` (reduced, ``j = a..2``):
          ``P' g (t_j ... t_a) R_left R_right / k``;
        - first core (full; also sums the copy index): ``P' T R_1``.

        The equivalent TT would cost ``k`` times more in every reduced core.
        """
        g, k, a = self.groups, self.k, self._spatial
        kh, kw = self.kernel_size
        h, w = self.pipeline_input_size(height, width)
        ho, wo = self.output_size(height, width)
        p, po = h * w, ho * wo
        ranks, modes = self.ranks, self.modes
        d = len(modes)
        macs = p * self.in_channels * ranks[d - 1]
        for j in range(a + 1, d - 1):  # input cores, reduced
            macs += p * g * math.prod(modes[a + 1 : j + 1]) * ranks[j] * ranks[j + 1] // k
        macs += po * g * ranks[a] * ranks[a + 1] * kh * kw // k
        for j in range(1, a):  # output cores, reduced
            macs += po * g * math.prod(modes[j:a]) * ranks[j] * ranks[j + 1] // k
        return macs + po * self.out_channels * ranks[1]

    def reconstruct_macs(self) -> int:
        """MACs of :meth:`reconstruct`: ``g (sum_middle M_j n_j R_j R_{j+1} / k + M R_{d-1} n)``.

        ``M_j = n_0 ... n_{j-1}`` rows of the running product.
        """
        modes, ranks, k = self.modes, self.ranks, self.k
        d = len(modes)
        macs = sum(
            math.prod(modes[:j]) * modes[j] * ranks[j] * ranks[j + 1] // k for j in range(1, d - 1)
        )
        macs += math.prod(modes[: d - 1]) * ranks[d - 1] * modes[d - 1]
        return self.groups * macs

    def ranks_repr(self) -> str:
        return (
            f"out_modes={self.out_modes}, in_modes={self.in_modes}, ranks={self.ranks}, k={self.k}"
        )

    def decomposition(self, group: int = 0) -> tn.STTTensor:
        """The tensorized kernel of ``group`` (shape :attr:`modes`) as a detached STTTensor."""
        g = self.groups
        if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < g:
            raise ValueError(f"group must be an int in [0, {g}), got {group!r}")
        return tn.STTTensor([c.detach()[group] for c in self.cores], k=self.k)

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        *,
        ranks: int | Sequence[int] | None = None,
        k: int,
        rtol: float | None = None,
        out_modes: Sequence[int] | None = None,
        in_modes: Sequence[int] | None = None,
        n_iter_max: int = 100,
        tol: float = 1e-6,
        rng: np.random.Generator | int | None = None,
        init: Literal["svd", "random"] | None = None,
        forward_mode: str = "auto",
    ) -> STTConv2d:
        """STT of a pretrained kernel, per group, by :func:`tensornet.stt_fit` (ALS).

        Parameters
        ----------
        conv : nn.Conv2d
        ranks : int or sequence of int
            Ranks of the equivalent TT (exact; see the class). Required.
        k : int
            Size of the identity factor; must divide every bond.
        rtol : None
            Not supported: an STT fit has exact ranks and there is no error-driven rank
            choice for STT (an STT of ranks ``R`` is a TR of ranks ``(k, R/k, ..., k)``);
            pick ``ranks`` from a parameter budget with :func:`tensornet.stt_num_params`.
            Passing a value raises ``ValueError``.
        out_modes, in_modes : sequence of int, optional
            As the class.
        n_iter_max, tol, rng, init
            As :func:`tensornet.stt_fit` (``rng`` seeds one generator shared by the groups).
        forward_mode : {"auto", "factorized", "dense"}

        Raises
        ------
        TypeError
            If ``conv`` is not an ``nn.Conv2d`` or an option has the wrong type.
        ValueError
            If ``ranks`` is missing or malformed, ``rtol`` is given, the modes do not
            multiply to the channels per group, or ``k`` does not divide the bonds.

        Examples
        --------
        >>> import torch
        >>> conv = torch.nn.Conv2d(8, 8, 3)
        >>> layer = STTConv2d.from_conv(conv, ranks=4, k=2, rng=0, tol=1e-2)
        >>> layer.modes, layer.ranks, layer.num_params, conv.weight.numel()
        ((2, 4, 9, 4, 2), (1, 4, 4, 4, 4, 1), 92, 576)
        """
        geometry = cls.conv_geometry(conv)
        if rtol is not None:
            raise ValueError(
                "STTConv2d.from_conv does not take rtol: an STT fit has exact ranks; choose "
                "ranks (for instance from a parameter budget with tensornet.stt_num_params)"
            )
        if ranks is None:
            raise ValueError("STTConv2d.from_conv needs ranks (the ranks of the equivalent TT)")
        weight = conv.weight.detach()
        layer = cls(
            **geometry,
            ranks=ranks,
            k=k,
            out_modes=out_modes,
            in_modes=in_modes,
            forward_mode=forward_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        gen = _generator(rng)
        fits = [
            tn.stt_fit(
                tensorize_kernel(block, layer.modes),
                layer.ranks,
                k=layer.k,
                n_iter_max=n_iter_max,
                tol=tol,
                rng=gen,
                init=init,
            )
            for block in weight.chunk(conv.groups, dim=0)
        ]
        with torch.no_grad():
            for j, param in enumerate(layer.cores):
                param.copy_(torch.stack([t.cores[j] for t in fits]))
        balance_(list(layer.cores))
        layer.copy_bias_(conv)
        return layer
