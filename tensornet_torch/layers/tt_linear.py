"""TT-matrix linear layer: a drop-in ``nn.Linear`` whose weight is a TT-matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import tensornet as tn
from tensornet_torch.layers._base import FORWARD_MODES, init_product_
from tensornet_torch.layers._modes import (
    balanced_factors,
    check_chain_ranks,
    check_modes_product,
    prime_count,
)

__all__ = ["TTLinear", "linear_modes"]

_DEFAULT_ORDER = 3
"""Most cores of the default factorization (as t3f's ``auto_shape``)."""


def linear_modes(
    in_features: int,
    out_features: int,
    in_modes: Sequence[int] | None = None,
    out_modes: Sequence[int] | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(in_modes, out_modes)`` of a TT-matrix weight, checked or chosen.

    Given modes must multiply to the feature counts and have the same length (use 1 for
    a core without rows or columns). A missing side is the balanced factorization of its
    count into as many modes as the other side; both missing: into
    ``d = min(3, max(prime factors of in_features, prime factors of out_features))`` modes
    (at least 1).

    Raises
    ------
    TypeError, ValueError
        If a side is not a sequence of positive ints, does not multiply to its feature
        count, or the two sides differ in length.

    Examples
    --------
    >>> linear_modes(64, 10)
    ((4, 4, 4), (5, 2, 1))
    >>> linear_modes(784, 100, in_modes=(28, 28))
    ((28, 28), (10, 10))
    """
    ins = (
        None
        if in_modes is None
        else check_modes_product(in_modes, in_features, "in_modes", "in_features")
    )
    outs = (
        None
        if out_modes is None
        else check_modes_product(out_modes, out_features, "out_modes", "out_features")
    )
    if ins is not None and outs is not None:
        if len(ins) != len(outs):
            raise ValueError(
                "in_modes and out_modes must have the same length (one pair per core; use 1 "
                f"for a core without rows or columns), got in_modes={ins} and out_modes={outs}"
            )
        return ins, outs
    if ins is not None:
        return ins, balanced_factors(out_features, len(ins))
    if outs is not None:
        return balanced_factors(in_features, len(outs)), outs
    d = max(1, min(_DEFAULT_ORDER, max(prime_count(in_features), prime_count(out_features))))
    return balanced_factors(in_features, d), balanced_factors(out_features, d)


class TTLinear(nn.Module):
    """``nn.Linear`` whose weight is a TT-matrix (matrix product operator).

    ``W[(i_0..i_{d-1}), (j_0..j_{d-1})] = G_0[:, i_0, j_0, :] ... G_{d-1}[:, i_{d-1}, j_{d-1}, :]``
    with cores ``(r_k, m_k, n_k, r_{k+1})``: row (output) modes ``m_k = out_modes[k]``,
    column (input) modes ``n_k = in_modes[k]``, multi-indices in C order (as
    :class:`tensornet.TTMatrix`). ``y = x Wᵀ + b`` for inputs of shape
    ``(..., in_features)``.

    Two paths with identical results (to round-off), chosen per call by MACs when
    ``forward_mode="auto"`` (:meth:`path_macs`):

    - ``"factorized"``: the TT-matrix-by-vector product core by core, all leading
      dimensions batched, sweeping from the end that costs fewer MACs
      (``sum_k (m_0..m_k) (n_k..n_{d-1}) r_k r_{k+1}`` per sample left to right, the mirror
      image right to left; :meth:`sweep_macs`);
    - ``"dense"``: rebuild ``W`` (:meth:`reconstruct`) and call ``F.linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    device, dtype
        Of the parameters.
    in_modes, out_modes : sequence of int, optional
        Factorizations of the feature counts, same length ``d``; see :func:`linear_modes`.
    ranks : int or sequence of int
        One int for every bond, the ``d - 1`` bonds, or ``(1, r_1, ..., r_{d-1}, 1)``.
    forward_mode : {"auto", "factorized", "dense"}

    Attributes
    ----------
    cores : ParameterList
        ``cores[k]`` of shape ``(r_k, out_modes[k], in_modes[k], r_{k+1})``.
    bias : Parameter or None, shape (out_features,)
    ranks : tuple of int
        ``(1, r_1, ..., r_{d-1}, 1)``.

    Raises
    ------
    TypeError, ValueError
        If the feature counts are not positive ints, the modes do not multiply to them or
        differ in length, ``ranks`` is malformed, or ``forward_mode`` is unknown.

    Examples
    --------
    >>> import torch
    >>> layer = TTLinear(64, 32, ranks=4)
    >>> layer.in_modes, layer.out_modes, layer.num_params  # 352 core entries + 32 bias
    ((4, 4, 4), (4, 4, 2), 384)
    >>> layer(torch.randn(5, 7, 64)).shape
    torch.Size([5, 7, 32])
    """

    in_features: int
    out_features: int

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
        ranks: int | Sequence[int],
        forward_mode: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.in_features = in_features
        self.out_features = out_features
        self.in_modes, self.out_modes = linear_modes(in_features, out_features, in_modes, out_modes)
        self.ranks = check_chain_ranks(ranks, len(self.in_modes))
        self.forward_mode = forward_mode
        factory = {"device": device, "dtype": dtype}
        self.cores = nn.ParameterList(
            [
                nn.Parameter(torch.empty(self.ranks[j], m, n, self.ranks[j + 1], **factory))
                for j, (m, n) in enumerate(zip(self.out_modes, self.in_modes))
            ]
        )
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    # -- configuration ------------------------------------------------------------------------
    @property
    def forward_mode(self) -> str:
        """``"auto"``, ``"factorized"`` or ``"dense"``."""
        return self._forward_mode

    @forward_mode.setter
    def forward_mode(self, value: str) -> None:
        if value not in FORWARD_MODES:
            raise ValueError(f"forward_mode must be one of {FORWARD_MODES}, got {value!r}")
        self._forward_mode = value

    def reset_parameters(self) -> None:
        """Gaussian cores whose product has ``nn.Linear``'s weight variance; its bias init.

        ``nn.Linear`` draws ``W`` uniform in ``±1/sqrt(in_features)`` (kaiming uniform with
        ``a = sqrt(5)``): variance ``1 / (3 in_features)``. A weight entry sums
        ``r_1 ... r_{d-1}`` products of one entry per core.
        """
        terms = math.prod(self.ranks[1:-1])
        init_product_(list(self.cores), 1.0 / (3.0 * self.in_features), terms)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            with torch.no_grad():
                self.bias.uniform_(-bound, bound)

    # -- the two paths ------------------------------------------------------------------------
    def reconstruct(self) -> Tensor:
        """The dense weight ``(out_features, in_features)``, differentiable."""
        cores = list(self.cores)
        result = cores[0][0]  # (m_0, n_0, r_1): rows and columns grow in C order
        for core in cores[1:]:
            p, q = int(result.shape[0]), int(result.shape[1])
            _, m, n, _ = (int(s) for s in core.shape)
            result = torch.einsum("pqr,rmns->pmqns", result, core).reshape(p * m, q * n, -1)
        return result.reshape(self.out_features, self.in_features)

    @property
    def weight(self) -> Tensor:
        """The reconstructed weight (as ``nn.Linear.weight``; rebuilt on every access)."""
        return self.reconstruct()

    def _forward_factorized(self, x: Tensor) -> Tensor:
        """``x`` of shape (B, in_features) → (B, out_features), core by core.

        The sweep runs in the cheaper direction (:meth:`sweep_macs`); each step is one
        (batched) matrix product on a contiguous layout, with no transposes of ``x``.
        """
        if self._left_to_right():
            return self._sweep_left_to_right(x)
        return self._sweep_right_to_left(x)

    def _sweep_left_to_right(self, x: Tensor) -> Tensor:
        # z[b, (output modes so far), (bond, remaining input modes)]
        batch, done, rest = int(x.shape[0]), 1, self.in_features
        z = x
        for core in self.cores:
            r, m, n, r2 = (int(s) for s in core.shape)
            rest //= n
            w = core.permute(1, 3, 0, 2).reshape(m * r2, r * n)
            if rest == 1:
                z = z.reshape(batch * done, r * n) @ w.T
            else:
                z = torch.matmul(w, z.reshape(batch * done, r * n, rest))
            done *= m
            z = z.reshape(batch, done, r2 * rest)
        return z.reshape(batch, self.out_features)

    def _sweep_right_to_left(self, x: Tensor) -> Tensor:
        # z[b, (remaining input modes), (bond, output modes so far)]
        batch, done, rest = int(x.shape[0]), 1, self.in_features
        z = x
        for core in reversed(self.cores):
            r, m, n, r2 = (int(s) for s in core.shape)
            rest //= n
            w = core.reshape(r * m, n * r2)
            if done == 1:
                z = z.reshape(batch * rest, n * r2) @ w.T
            else:
                z = torch.matmul(w, z.reshape(batch * rest, n * r2, done))
            done *= m
            z = z.reshape(batch, rest, r * done)
        return z.reshape(batch, self.out_features)

    def forward(self, x: Tensor) -> Tensor:
        """``x Wᵀ + b`` for ``x`` of shape ``(..., in_features)``."""
        if x.dim() == 0 or int(x.shape[-1]) != self.in_features:
            raise ValueError(
                f"TTLinear expects input of shape (..., {self.in_features}), got shape "
                f"{tuple(x.shape)}"
            )
        lead = tuple(int(s) for s in x.shape[:-1])
        batch = math.prod(lead)
        if self.choose_path(batch) == "dense":
            return F.linear(x, self.reconstruct(), self.bias)
        out = self._forward_factorized(x.reshape(batch, self.in_features))
        if self.bias is not None:
            out.add_(self.bias)  # the last product saves its inputs, not out
        return out.reshape(*lead, self.out_features)

    # -- cost model ---------------------------------------------------------------------------
    def sweep_macs(self) -> dict[str, int]:
        """MACs per sample of the core-by-core product in each direction.

        Left to right, core ``k`` maps the output modes produced so far and the remaining
        input modes: ``sum_k (m_0 ... m_k) (n_k ... n_{d-1}) r_k r_{k+1}``; right to left,
        ``sum_k (n_0 ... n_k) (m_k ... m_{d-1}) r_k r_{k+1}``.
        """
        ms, ns, rs = self.out_modes, self.in_modes, self.ranks
        d = len(ms)
        return {
            "left_to_right": sum(
                math.prod(ms[: j + 1]) * math.prod(ns[j:]) * rs[j] * rs[j + 1] for j in range(d)
            ),
            "right_to_left": sum(
                math.prod(ns[: j + 1]) * math.prod(ms[j:]) * rs[j] * rs[j + 1] for j in range(d)
            ),
        }

    def _left_to_right(self) -> bool:
        macs = self.sweep_macs()
        return macs["left_to_right"] <= macs["right_to_left"]

    def factorized_macs(self) -> int:
        """MACs per sample of the factorized path: the cheaper sweep of :meth:`sweep_macs`."""
        return min(self.sweep_macs().values())

    def dense_macs(self) -> int:
        """MACs of ``nn.Linear`` per sample: ``in_features * out_features``."""
        return self.in_features * self.out_features

    def reconstruct_macs(self) -> int:
        """MACs of :meth:`reconstruct`.

        ``sum_{k>=1} (m_0 n_0 ... m_{k-1} n_{k-1}) r_k m_k n_k r_{k+1}`` (left to right).
        """
        ms, ns, rs = self.out_modes, self.in_modes, self.ranks
        return sum(
            math.prod(ms[:j]) * math.prod(ns[:j]) * rs[j] * ms[j] * ns[j] * rs[j + 1]
            for j in range(1, len(ms))
        )

    def path_macs(self, batch: int) -> dict[str, int]:
        """MACs of one forward call on ``batch`` samples on each path (dense rebuilds ``W``)."""
        return {
            "factorized": batch * self.factorized_macs(),
            "dense": batch * self.dense_macs() + self.reconstruct_macs(),
        }

    def choose_path(self, batch: int) -> str:
        """The path ``forward`` takes for ``batch`` samples (``forward_mode`` unless auto)."""
        if self.forward_mode != "auto":
            return self.forward_mode
        macs = self.path_macs(batch)
        return "factorized" if macs["factorized"] <= macs["dense"] else "dense"

    def macs(self, batch: int = 1) -> int:
        """MACs of one forward call on ``batch`` samples along the path it takes."""
        return self.path_macs(batch)[self.choose_path(batch)]

    @property
    def num_params(self) -> int:
        """Entries of all parameters (cores and bias)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def dense_num_params(self) -> int:
        """Parameters of the equivalent ``nn.Linear`` (weight and bias)."""
        return self.dense_macs() + (self.out_features if self.bias is not None else 0)

    # -- conversion ---------------------------------------------------------------------------
    def to_ttm(self) -> tn.TTMatrix:
        """The weight as a detached :class:`tensornet.TTMatrix`."""
        return tn.TTMatrix([c.detach() for c in self.cores])

    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the reconstructed weight and the bias (same device/dtype)."""
        p = self.cores[0]
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=p.device,
            dtype=p.dtype,
        )
        with torch.no_grad():
            linear.weight.copy_(self.reconstruct())
            if self.bias is not None:
                assert linear.bias is not None
                linear.bias.copy_(self.bias)
        return linear

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        *,
        rtol: float | None = None,
        ranks: int | Sequence[int] | None = None,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
        forward_mode: str = "auto",
        rng: np.random.Generator | int | None = None,
    ) -> TTLinear:
        """TT-matrix of a pretrained weight by :func:`tensornet.ttm_from_dense` (TT-SVD).

        Parameters
        ----------
        linear : nn.Linear
        rtol : float, optional
            Relative Frobenius error of the weight: ``||W - W_hat|| <= rtol ||W||`` unless a
            ``ranks`` cap binds.
        ranks : int or sequence of int, optional
            Caps on the bonds (int or the ``d - 1`` bonds); with ``rtol`` the smaller rank
            wins. At least one of ``rtol``, ``ranks`` is required. The ranks obtained are
            in :attr:`ranks` (never above the rank of the unfolding they come from).
        in_modes, out_modes : sequence of int, optional
            As the class.
        forward_mode : {"auto", "factorized", "dense"}
        rng : numpy.random.Generator, int or None
            Randomness of the randomized SVD path (large weights, small caps).

        Raises
        ------
        TypeError
            If ``linear`` is not an ``nn.Linear`` or an option has the wrong type.
        ValueError
            If neither ``rtol`` nor ``ranks`` is given, or the modes do not fit.

        Examples
        --------
        >>> import torch
        >>> linear = torch.nn.Linear(64, 32)
        >>> layer = TTLinear.from_linear(linear, rtol=1e-6)
        >>> bool(torch.allclose(layer.weight, linear.weight, atol=1e-5))
        True
        """
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        if rtol is None and ranks is None:
            raise ValueError("give rtol, ranks or both")
        ins, outs = linear_modes(linear.in_features, linear.out_features, in_modes, out_modes)
        caps: int | tuple[int, ...] | None = None
        if ranks is not None:
            full = check_chain_ranks(ranks, len(ins))
            caps = full[1:-1] if len(ins) > 1 else None
        weight = linear.weight.detach()
        ttm = tn.ttm_from_dense(weight, outs, ins, rtol=rtol, max_rank=caps, rng=rng)
        layer = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
            in_modes=ins,
            out_modes=outs,
            ranks=ttm.ranks,
            forward_mode=forward_mode,
        )
        with torch.no_grad():
            for param, core in zip(layer.cores, ttm.cores):
                param.copy_(core)
            if layer.bias is not None and linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    def ranks_repr(self) -> str:
        """The ranks and modes, as :meth:`extra_repr` prints them."""
        return f"ranks={self.ranks}, in_modes={self.in_modes}, out_modes={self.out_modes}"

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            s += ", bias=False"
        s += f", in_modes={self.in_modes}, out_modes={self.out_modes}, ranks={self.ranks}"
        if self.forward_mode != "auto":
            s += f", forward_mode={self.forward_mode!r}"
        return s
