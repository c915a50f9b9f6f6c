"""torch.distributed helpers: identical replicas, structure checks, rank-0 decisions.

Data-parallel training (``DistributedDataParallel``) keeps one replica of the model per
process and needs them identical: same modules, same parameter shapes, same values. The
functions here check and enforce that, with errors that name the first layer that differs:

- :func:`check_world_size`: the job has as many processes as the script expects;
- :func:`check_structure`: every rank holds the same modules (names, classes, ranks of the
  factorized layers, parameter and buffer shapes and dtypes);
- :func:`broadcast_module`: the parameters and buffers of one rank copied to every rank;
- :func:`check_replicas`: the parameters and buffers are bitwise identical on every rank.

:func:`~tensornet_torch.compress` and :class:`~tensornet_torch.ADMM` use the private
:func:`_from_rank0` under an initialized process group: rank 0 makes every data-dependent
choice (ranks, decompositions, ADMM projections) and the other ranks receive it.

Every function is a collective: all ranks of the group call it, in the same order. With
``torch.distributed`` unavailable, not initialized, or a group of one process they do
nothing (one process is trivially consistent), except :func:`check_world_size`, which then
compares ``expected`` with 1.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "broadcast_module",
    "check_replicas",
    "check_structure",
    "check_world_size",
    "is_distributed",
    "unwrap",
]

T = TypeVar("T")

Group = Any
"""A ``torch.distributed`` process group, or None for the default (world) group."""

_Entry = tuple[str, str, str, tuple[tuple[str, tuple[int, ...], str], ...]]
"""One module of a structure summary: name, class, ranks, (tensor name, shape, dtype)."""


def is_distributed(group: Group = None) -> bool:
    """Whether ``torch.distributed`` is initialized with more than one process in ``group``.

    Examples
    --------
    >>> is_distributed()  # a plain process: no process group
    False
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group=group) > 1


def _resolve(distributed: bool | None, group: Group = None) -> bool:
    """Whether a call with ``distributed=`` should act as a collective.

    Parameters
    ----------
    distributed : bool or None
        ``None``: whenever :func:`is_distributed`. ``True``: the same, but an uninitialized
        ``torch.distributed`` is an error. ``False``: never (the call is local).

    Raises
    ------
    TypeError
        If ``distributed`` is not a bool or None.
    RuntimeError
        If ``distributed=True`` and no process group is initialized.

    Examples
    --------
    >>> _resolve(None), _resolve(False)
    (False, False)
    """
    if distributed is not None and not isinstance(distributed, bool):
        raise TypeError(f"distributed must be a bool or None, got {type(distributed).__name__}")
    if distributed is False:
        return False
    if distributed is True and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "distributed=True needs an initialized torch.distributed process group "
            "(torch.distributed.init_process_group, e.g. under torchrun)"
        )
    return is_distributed(group)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper, else ``model``.

    Examples
    --------
    >>> net = nn.Linear(2, 2)
    >>> unwrap(nn.DataParallel(net)) is net, unwrap(net) is net
    (True, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    wrappers = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def check_world_size(expected: int, *, group: Group = None) -> int:
    """Check that the job runs ``expected`` processes; return the world size.

    Without an initialized process group the world size is 1.

    Parameters
    ----------
    expected : int
        The number of processes the script was written or configured for (>= 1).
    group : ProcessGroup, optional
        Default: the world group.

    Returns
    -------
    int
        The world size (``expected``).

    Raises
    ------
    TypeError
        If ``expected`` is not an int.
    ValueError
        If ``expected < 1`` or the world size differs.

    Examples
    --------
    >>> check_world_size(1)
    1
    """
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise TypeError(f"expected must be an int, got {type(expected).__name__}")
    if expected < 1:
        raise ValueError(f"expected must be >= 1, got {expected}")
    initialized = dist.is_available() and dist.is_initialized()
    actual = dist.get_world_size(group=group) if initialized else 1
    if actual != expected:
        how = (
            f"torch.distributed runs {actual} processes"
            if initialized
            else "torch.distributed is not initialized (1 process)"
        )
        raise ValueError(
            f"world size mismatch: expected {expected} processes, but {how}; launch with "
            f"torchrun --nproc_per_node {expected} (or change the expected world size)"
        )
    return actual


# -- structure ---------------------------------------------------------------------------------
def _ranks_of(module: nn.Module) -> str:
    ranks_repr = getattr(module, "ranks_repr", None)
    return str(ranks_repr()) if callable(ranks_repr) else ""


def _structure(model: nn.Module) -> list[_Entry]:
    """One entry per module: name, class, ranks, own parameters and buffers (shape, dtype)."""
    out = []
    for name, module in unwrap(model).named_modules():
        tensors = [
            *module.named_parameters(recurse=False),
            *module.named_buffers(recurse=False),
        ]
        own = tuple((n, tuple(int(m) for m in t.shape), str(t.dtype)) for n, t in tensors)
        out.append((name, type(module).__qualname__, _ranks_of(module), own))
    return out


def _describe(entry: _Entry) -> str:
    """``Conv2d (weight (8, 3, 3, 3), bias (8,))``; ranks of factorized layers first."""
    _, cls, ranks, own = entry
    shown = ", ".join(f"{n} {tuple(shape)}" for n, shape, _ in own) or "no parameters"
    return f"{cls} ({ranks + '; ' if ranks else ''}{shown})"


def _first_difference(reference: Sequence[_Entry], other: Sequence[_Entry], rank: int) -> str:
    """How ``other`` (rank ``rank``) first differs from ``reference`` (rank 0), or ''."""
    if list(reference) == list(other):
        return ""
    mine = {e[0]: e for e in reference}
    theirs = {e[0]: e for e in other}
    for name in dict.fromkeys([*mine, *theirs]):
        a, b = mine.get(name), theirs.get(name)
        if a == b:
            continue
        label = repr(name) if name else "the root module"
        if a is None or b is None:
            here, there = (0, rank) if b is None else (rank, 0)
            entry = a if b is None else b
            assert entry is not None
            return (
                f"layer {label}, a {_describe(entry)}, is on rank {here} but missing on "
                f"rank {there}"
            )
        shapes = [(n, shape) for n, shape, _ in a[3]] == [(n, shape) for n, shape, _ in b[3]]
        if a[1:3] == b[1:3] and shapes:
            a_dt = ", ".join(f"{n} {d}" for n, _, d in a[3])
            b_dt = ", ".join(f"{n} {d}" for n, _, d in b[3])
            return f"layer {label} has dtypes {a_dt} on rank 0 but {b_dt} on rank {rank}"
        return f"layer {label} is a {_describe(a)} on rank 0 but a {_describe(b)} on rank {rank}"
    return f"the modules are registered in a different order on rank {rank} than on rank 0"


def _gather(value: Any, group: Group) -> list[Any]:
    gathered: list[Any] = [None] * dist.get_world_size(group=group)
    dist.all_gather_object(gathered, value, group=group)
    return gathered


def check_structure(model: nn.Module, *, group: Group = None) -> None:
    """Check that every rank holds the same model structure (a collective).

    Compares, module by module, the names, classes, ranks of the factorized layers and the
    names, shapes and dtypes of parameters and buffers (a ``DistributedDataParallel``
    wrapper is looked through). Values are not compared (:func:`check_replicas`); neither is
    ``forward_mode``, which may differ between ranks.

    Parameters
    ----------
    model : nn.Module
    group : ProcessGroup, optional
        Default: the world group.

    Raises
    ------
    ValueError
        On every rank, naming the first module that differs (its name, class, ranks and
        shapes on rank 0 and on the first rank that differs).

    Examples
    --------
    >>> check_structure(nn.Linear(2, 2))  # one process: nothing to compare
    """
    if not is_distributed(group):
        return
    gathered = _gather(_structure(model), group)
    for rank, other in enumerate(gathered[1:], start=1):
        problem = _first_difference(gathered[0], other, rank)
        if problem:
            raise ValueError(f"the model differs between ranks: {problem}")


# -- values ------------------------------------------------------------------------------------
def _state(model: nn.Module) -> list[tuple[str, Tensor]]:
    inner = unwrap(model)
    return [*inner.named_parameters(), *inner.named_buffers()]


def _transport(tensors: Sequence[Tensor]) -> list[tuple[list[int], Tensor]]:
    """Flat buffers, one per (device, dtype), and the indices of the tensors each holds."""
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    out = []
    for indices in groups.values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in indices])
        if flat.dtype == torch.bool:
            flat = flat.to(torch.uint8)  # not every backend reduces bools
        out.append((indices, flat))
    return out


def _broadcast_flat(flat: Tensor, src: int, group: Group) -> Tensor:
    dist.broadcast(flat, src=src, group=group)
    return flat


def _pieces(
    indices: Sequence[int], flat: Tensor, tensors: Sequence[Tensor]
) -> Iterable[tuple[int, Tensor]]:
    offset = 0
    for i in indices:
        n = tensors[i].numel()
        yield i, flat[offset : offset + n].reshape(tensors[i].shape).to(tensors[i].dtype)
        offset += n


def broadcast_module(model: nn.Module, *, src: int = 0, group: Group = None) -> None:
    """Copy the parameters and buffers of rank ``src`` into ``model`` on every rank.

    Checks the structure first (:func:`check_structure`), then broadcasts one flat buffer
    per device and dtype and copies it in place (``torch.no_grad``; the version counters
    move, so the factorized layers' weight caches are rebuilt). Use it after building or
    loading a model on every rank, before training starts.

    Parameters
    ----------
    model : nn.Module
        Possibly wrapped in ``DistributedDataParallel``.
    src : int
        Global rank whose values every rank receives.
    group : ProcessGroup, optional

    Raises
    ------
    ValueError
        If the model's structure differs between ranks (nothing is copied then).

    Examples
    --------
    >>> broadcast_module(nn.Linear(2, 2))  # one process: nothing to do
    """
    if not is_distributed(group):
        return
    check_structure(model, group=group)
    tensors = [t for _, t in _state(model)]
    with torch.no_grad():
        for indices, flat in _transport(tensors):
            received = _broadcast_flat(flat, src, group)
            for i, piece in _pieces(indices, received, tensors):
                tensors[i].copy_(piece)


def check_replicas(model: nn.Module, *, group: Group = None) -> None:
    """Check that every parameter and buffer is bitwise identical on every rank.

    A collective: checks the structure (:func:`check_structure`), broadcasts the values of
    group rank 0 and compares each tensor bit for bit; the findings of all ranks are
    gathered, so every rank raises the same error.

    Parameters
    ----------
    model : nn.Module
        Possibly wrapped in ``DistributedDataParallel``.
    group : ProcessGroup, optional

    Raises
    ------
    ValueError
        If the structure differs, or naming the first tensor whose values differ on the
        first rank where one does (with the largest absolute difference).

    Examples
    --------
    >>> check_replicas(nn.Linear(2, 2))  # one process: nothing to compare
    """
    if not is_distributed(group):
        return
    check_structure(model, group=group)
    named = _state(model)
    tensors = [t for _, t in named]
    src = _group_rank0(group)
    finding = ""
    with torch.no_grad():
        for indices, flat in _transport(tensors):
            received = _broadcast_flat(flat.clone(), src, group)
            for i, piece in _pieces(indices, received, tensors):
                mine = tensors[i].detach().contiguous()
                if not finding and not torch.equal(_bits(mine), _bits(piece.contiguous())):
                    gap = (mine.double() - piece.double()).abs().max()
                    finding = (
                        f"{named[i][0]!r} {tuple(mine.shape)} differs from rank 0 "
                        f"(largest absolute difference {float(gap):.3g})"
                    )
    findings = _gather(finding, group)
    for rank, text in enumerate(findings):
        if text:
            raise ValueError(f"the replicas differ: on rank {rank}, {text}")


def _bits(t: Tensor) -> Tensor:
    """``t``'s bytes (NaNs compare equal to themselves; -0.0 differs from 0.0)."""
    return t.reshape(-1).view(torch.uint8)


def _group_rank0(group: Group) -> int:
    """Global rank of the group's rank 0."""
    return 0 if group is None else int(dist.get_global_rank(group, 0))


# -- rank-0 decisions --------------------------------------------------------------------------
def _from_rank0(compute: Callable[[], T], *, group: Group = None) -> T:
    """``compute()`` run on group rank 0 only; its result (pickled) on every rank.

    An exception raised by ``compute`` is raised on every rank (the original one on rank
    0), so no rank is left waiting. The result must pickle; keep tensors in it on the CPU
    (a CUDA tensor would be unpickled on rank 0's device everywhere).
    """
    box: list[Any] = [None]
    error: BaseException | None = None
    if dist.get_rank(group=group) == 0:
        try:
            box[0] = ("ok", compute())
        except Exception as exc:
            error = exc
            try:
                pickle.dumps(exc)
                box[0] = ("error", exc)
            except Exception:
                box[0] = ("error", RuntimeError(f"on rank 0: {type(exc).__name__}: {exc}"))
    dist.broadcast_object_list(box, src=_group_rank0(group), group=group)
    status, value = box[0]
    if status == "error":
        if error is not None:
            raise error
        raise value
    return value
