"""ADMM rank-constrained training (ADMM-TT, generalized to every ``compress`` method).

The problem ``min loss(W)`` subject to "the kernel ``W_l`` of every selected layer has a
factorization of the given ranks" is split with scaled ADMM (docs/design ALGORITHMS §7):

- every batch, SGD on ``loss(W) + sum_l rho / 2 ||W_l - Z_l + U_l||^2`` (:meth:`ADMM.penalty`);
- once per epoch (:meth:`ADMM.update`), ``Z_l <- Proj(W_l + U_l)``, the kernel rebuilt from
  the fixed-rank decomposition the layer class of ``method`` computes (``from_conv`` with
  the layer's ranks, then ``reconstruct``), and ``U_l <- U_l + W_l - Z_l``;
- :meth:`ADMM.finalize` decomposes the trained kernels at those ranks and returns the
  factorized model, ready to fine-tune without the penalty.

The ranks are fixed when the ADMM object is built: given (``ranks=``, every layer) or
allocated for a whole-model parameter ``ratio=`` exactly as :func:`compress` allocates them
on the current weights. Layers the allocation keeps dense are not constrained.

Under ``torch.distributed`` (``DistributedDataParallel`` training) the construction,
:meth:`ADMM.update` and :meth:`ADMM.finalize` are collectives: rank 0 allocates the ranks
and computes the projections and decompositions, and every rank receives them, so ``Z``,
``U`` and the finalized layers are bitwise identical across the replicas.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

import tensornet_torch.layers as layers
from tensornet_torch.compress import (
    DEFAULT_K,
    METHODS,
    Selector,
    _choose,
    _convert,
    _device,
    _select,
    _set_module,
)
from tensornet_torch.distributed import (
    _broadcast_flat,
    _from_rank0,
    _pieces,
    _resolve,
    _transport,
    check_structure,
    unwrap,
)

__all__ = ["ADMM"]


def _rank_options(layer: nn.Module) -> dict[str, Any]:
    """The ``from_conv`` / ``from_linear`` keywords that rebuild ``layer``'s ranks and modes."""
    if isinstance(layer, layers.CPConv2d):
        return {"ranks": layer.rank}
    options: dict[str, Any] = {"ranks": tuple(layer.ranks)}  # type: ignore[arg-type]
    for name in ("in_modes", "out_modes"):
        if hasattr(layer, name):
            options[name] = tuple(getattr(layer, name))
    return options


class ADMM:
    """Scaled ADMM that pulls the selected kernels of ``model`` towards fixed-rank ones.

    Parameters
    ----------
    model : nn.Module
        The dense model being trained (it is modified only by :meth:`finalize`). A
        ``DistributedDataParallel`` (or ``DataParallel``) wrapper is looked through:
        :attr:`model` is the module inside, whose parameters the wrapper trains.
    method : str
        One of :data:`tensornet_torch.compress.METHODS`: the format of the constraint.
    ranks : int or sequence of int, optional
        Ranks of every selected layer, as ``from_conv(ranks=...)`` of the method's layer
        class takes them. Exactly one of ``ranks`` and ``ratio``.
    ratio : float, optional
        Whole-model parameter compression (> 1); per-layer ranks are allocated on the
        current weights as :func:`compress` does (layers it keeps dense are left free).
    rho : float
        Penalty weight (default ``1e-3``, for long epochs). Each :meth:`update` adds the
        remaining gap ``W - Z`` to ``U``; unless the penalty moves ``W`` about as far within
        an epoch (roughly ``lr * rho * steps_per_epoch >= 1``) ``U`` keeps growing and
        :meth:`distance` rises (docs/torch.md).
    rho_growth : float
        ``rho`` is multiplied by this after every :meth:`update` (1: constant), up to
        ``rho_max``.
    rho_max : float
    include, exclude
        Layer selection, as :func:`compress`.
    options : dict, optional
        Extra ``from_conv`` keywords (e.g. ``{"k": 4}``; the STP methods default to
        ``k = 2``).
    distributed : bool, optional
        Under an initialized ``torch.distributed`` process group of several processes
        (``None``, the default, detects it; ``True`` requires it), the constructor,
        :meth:`update` and :meth:`finalize` are collectives that every rank calls: the
        model structures are checked to agree, rank 0 allocates the ranks and computes
        the projections and decompositions, and every rank receives ``Z``, ``U`` and the
        layers, so the replicas cannot drift apart. ``False``: everything is local.

    Raises
    ------
    ValueError
        For an unknown method, both or neither of ``ranks`` and ``ratio``, a bad
        ``ratio`` or ``rho``, no layer to constrain, or (distributed) models whose
        structures differ between ranks.
    TypeError
        For a model that is not an ``nn.Module`` or a non-numeric ``rho``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))
    >>> admm = ADMM(net, method="tucker", ranks=(2, 2))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> for epoch in range(3):
    ...     loss = net(torch.randn(4, 3, 8, 8)).square().mean() + admm.penalty()
    ...     opt.zero_grad(); loss.backward(); opt.step()
    ...     admm.update()
    >>> small = admm.finalize()
    >>> type(small[2]).__name__, small[2].ranks
    ('TuckerConv2d', (2, 2))
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        method: str,
        ranks: int | Iterable[int] | None = None,
        ratio: float | None = None,
        rho: float = 1e-3,
        rho_growth: float = 1.0,
        rho_max: float = math.inf,
        include: Selector = None,
        exclude: Selector = None,
        options: dict[str, Any] | None = None,
        distributed: bool | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if (ranks is None) == (ratio is None):
            raise ValueError("give exactly one of ranks and ratio")
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not ratio > 1
        ):
            raise ValueError(f"ratio must be a number > 1, got {ratio!r}")
        self.rho = _check_positive(rho, "rho")
        self.rho_growth = _check_positive(rho_growth, "rho_growth")
        self.rho_max = _check_positive(rho_max, "rho_max")
        self.distributed = distributed
        sync = _resolve(distributed)  # checks the value
        if sync:
            check_structure(model)
        model = unwrap(model)
        self.model = model
        """The module whose kernels are constrained (inside a DDP wrapper, if one was given)."""
        self.method = method
        self.options = dict(options or {})
        if method in ("stt", "str", "sttucker"):
            self.options.setdefault("k", DEFAULT_K)
        names = _select(model, include, exclude, method)
        if not names:
            raise ValueError("nothing to constrain: no layer matches (see compress's include=)")
        modules = dict(model.named_modules())

        def allocate() -> dict[str, tuple[dict[str, Any], Tensor]]:
            """Per constrained layer, its rank options and its projected kernel."""
            with torch.no_grad(), layers.one_thread_on_cpu(next(model.parameters())):
                if ranks is not None:
                    opts = {**self.options, "ranks": ranks}
                    built = {n: _convert(modules[n], method, opts, None).layer for n in names}
                else:
                    total = sum(p.numel() for p in model.parameters())
                    picked = _choose(
                        modules, names, names, method, self.options, None, ratio, total
                    )
                    built = {n: c.layer for n, c in picked.items()}
                out = {}
                for n, layer in built.items():
                    if layer is not None:
                        kernel = layer.reconstruct()  # type: ignore[operator]
                        kernel = kernel.detach().reshape(self._weight(n).shape)
                        out[n] = ({**self.options, **_rank_options(layer)}, kernel)
                return out

        if sync:
            # on rank 0 only; the kernels travel through the CPU (pickled)
            found = _from_rank0(lambda: {n: (o, z.cpu()) for n, (o, z) in allocate().items()})
        else:
            found = allocate()
        self.ranks: dict[str, dict[str, Any]] = {n: opts for n, (opts, _) in found.items()}
        """Per constrained layer, the ``from_conv`` keywords of its fixed-rank projection."""
        self.Z: dict[str, Tensor] = {}
        self.U: dict[str, Tensor] = {}
        self.steps = 0
        for name, (_, kernel) in found.items():
            self.Z[name] = kernel.to(self._weight(name).device)
            self.U[name] = torch.zeros_like(self.Z[name])

    def _weight(self, name: str) -> Tensor:
        weight = self.model.get_submodule(name).weight
        assert isinstance(weight, Tensor)
        return weight

    def project(self, name: str, kernel: Tensor) -> Tensor:
        """``kernel`` replaced by its fixed-rank approximation in the format of ``method``."""
        module: Any = copy.deepcopy(self.model.get_submodule(name))
        with torch.no_grad():
            module.weight.copy_(kernel)
            layer = _convert(module, self.method, self.ranks[name], None).layer
            assert layer is not None
            return layer.reconstruct().detach().reshape(kernel.shape)  # type: ignore[operator]

    def penalty(self) -> Tensor:
        """``sum_l rho / 2 ||W_l - Z_l + U_l||^2``, differentiable in the weights."""
        terms = [
            (self._weight(n) - self.Z[n].to(self._weight(n)) + self.U[n].to(self._weight(n)))
            .square()
            .sum()
            for n in self.Z
        ]
        return 0.5 * self.rho * torch.stack(terms).sum()

    def update(self) -> None:
        """One Z- and U-step (call once per epoch), then the ``rho`` schedule.

        Distributed (see ``distributed``): rank 0 computes the step and broadcasts ``Z``
        and ``U``; an error on rank 0 is raised on every rank.
        """
        if _resolve(self.distributed):
            _from_rank0(self._local_update)
            self._broadcast_zu()
        else:
            self._local_update()
        self.steps += 1
        self.rho = min(self.rho * self.rho_growth, self.rho_max)

    def _local_update(self) -> None:
        with torch.no_grad(), layers.one_thread_on_cpu(next(self.model.parameters())):
            for name in self.Z:
                w = self._weight(name).detach()
                u = self.U[name].to(w)
                z = self.project(name, w + u)
                self.Z[name], self.U[name] = z, u + w - z

    def _broadcast_zu(self) -> None:
        """``Z`` and ``U`` of rank 0 on every rank (flat buffers per device and dtype)."""
        names = sorted(self.Z)
        rank0 = dist.get_rank() == 0
        tensors = []
        for store in (self.Z, self.U):
            for name in names:
                w = self._weight(name)
                tensors.append(store[name].to(w) if rank0 else torch.empty_like(w))
        with torch.no_grad():
            for indices, flat in _transport(tensors):
                received = _broadcast_flat(flat, 0, None)
                for i, piece in _pieces(indices, received, tensors):
                    store = self.Z if i < len(names) else self.U
                    store[names[i % len(names)]] = piece

    def distance(self) -> dict[str, float]:
        """Per constrained layer, ``||W - Z|| / ||W||`` (0 once ``W`` has the ranks)."""
        out = {}
        with torch.no_grad():
            for name, z in self.Z.items():
                w = self._weight(name).detach()
                norm = float(torch.linalg.vector_norm(w))
                diff = float(torch.linalg.vector_norm(w - z.to(w)))
                out[name] = diff / norm if norm > 0 else diff
        return out

    def finalize(self, *, inplace: bool = False) -> nn.Module:
        """The model with every constrained layer replaced by its factorized layer.

        Each kernel is decomposed at its fixed ranks (the layers :func:`compress` builds);
        fine-tune the result without the penalty. Distributed: rank 0 decomposes and every
        rank receives the layers; wrap the result in a new ``DistributedDataParallel``
        (its parameters are new).
        """
        target = self.model if inplace else copy.deepcopy(self.model)

        def build(device: Any) -> dict[str, nn.Module]:
            built = {}
            with torch.no_grad(), layers.one_thread_on_cpu(next(target.parameters())):
                for name, opts in self.ranks.items():
                    module: Any = target.get_submodule(name)
                    layer = _convert(module, self.method, opts, None).layer
                    assert layer is not None
                    built[name] = layer.to(device) if device is not None else layer
            return built

        if _resolve(self.distributed):
            # decomposed on rank 0 only; the layers travel through the CPU (pickled)
            built = _from_rank0(lambda: build("cpu"))
            for name, layer in built.items():
                layer.to(_device(target.get_submodule(name)))
        else:
            built = build(None)
        for name, layer in built.items():
            _set_module(target, name, layer)
        return target

    def state_dict(self) -> dict[str, Any]:
        """The ADMM state (``Z``, ``U``, ``rho``, step count), for ``torch.save``."""
        return {
            "rho": self.rho,
            "steps": self.steps,
            "Z": {n: z.clone() for n, z in self.Z.items()},
            "U": {n: u.clone() for n, u in self.U.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of an ADMM over the same layers."""
        if set(state["Z"]) != set(self.Z) or set(state["U"]) != set(self.U):
            raise ValueError(
                f"the state constrains layers {sorted(state['Z'])}, this ADMM {sorted(self.Z)}"
            )
        for name in self.Z:
            w = self._weight(name)
            self.Z[name] = state["Z"][name].to(w.device, w.dtype)
            self.U[name] = state["U"][name].to(w.device, w.dtype)
        self.rho = float(state["rho"])
        self.steps = int(state["steps"])


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not number > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number
