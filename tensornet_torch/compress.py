"""Whole-model compression: replace convolutions by factorized layers, with a report.

:func:`compress` walks a model, picks the convolutions to factorize (by default those a
residual network's blocks are made of: every ``nn.Conv2d`` with a kernel larger than 1x1
except the first one, the stem; 1x1 shortcuts and linear classifiers are left alone, as in
the RSDTR practice), converts each with the layer class of ``method`` and returns the new
model and a :class:`CompressionReport`. With ``method="tt"``, ``nn.Linear`` layers named or
matched by ``include`` become :class:`~tensornet_torch.layers.TTLinear` (TT-matrix).

Rank choice:

- ``rtol=eps``: every layer gets its kernel within relative error ``eps`` (every method but
  ``"stt"``, which has no error-driven rank choice).
- ``ratio=c``: the whole model gets ``c`` times fewer parameters. Each layer is decomposed
  on a ladder of candidate settings (relative errors ``0.01 .. 0.98`` and rank caps ``1 ..
  8``, or ranks for ``"cp"`` and ``"stt"``, whose fits are iterative); the candidates are
  chosen to minimize the sum over layers of the squared relative kernel errors subject to
  the parameter budget, by a Lagrangian sweep (``err_l^2 + lam * params_l`` minimized per
  layer, ``lam`` bisected). Layers whose spectra decay fast therefore get small ranks and
  the others keep more, instead of one uniform rank.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

import tensornet_torch.layers as layers
from tensornet_torch.distributed import _from_rank0, _resolve, check_structure, unwrap

__all__ = ["METHODS", "CompressionReport", "LayerReport", "compress", "default_selection"]

METHODS = ("rsdtr", "tr", "tt", "tucker", "cp", "stt", "str", "sttucker")
"""Values of ``method``."""

RTOL_LADDER = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
"""Relative errors tried per layer when ``ratio`` is given (error-bounded methods)."""

RANK_CAPS = (1, 2, 4, 8)
"""Rank caps tried per layer as well when ``ratio`` is given (error-bounded methods).

A sweep of ``m`` truncations may drop only ``rtol / sqrt(m)`` of the norm at each, so on
kernels with flat spectra even ``rtol`` near 1 keeps large ranks; the caps give every layer
candidates down to rank 1 (each with ``rtol=RTOL_LADDER[-1]`` too, the smaller rank wins;
caps a layer rejects, e.g. not a multiple of ``k``, are skipped).
"""

_CLASSES = {
    "rsdtr": ("TRConv2d", {"search": True}),
    "tr": ("TRConv2d", {"search": False}),
    "tt": ("TTConv2d", {}),
    "tucker": ("TuckerConv2d", {}),
    "cp": ("CPConv2d", {}),
    "stt": ("STTConv2d", {}),
    "str": ("STRConv2d", {}),
    "sttucker": ("STTuckerConv2d", {}),
}
_RTOL_METHODS = frozenset({"rsdtr", "tr", "tt", "tucker", "cp", "str", "sttucker"})
_STP_METHODS = frozenset({"stt", "str", "sttucker"})
_LINEAR_METHODS = frozenset({"tt"})
"""Methods that also compress ``nn.Linear`` (when ``include`` selects them)."""
_RTOL_LADDER_METHODS = frozenset({"rsdtr", "tr", "tt", "tucker", "str", "sttucker"})
"""Methods whose ``ratio`` candidates come from the rtol ladder (one SVD-based fit each);
CP and STT candidates come from a rank ladder (one ALS fit each, no rank search)."""
DEFAULT_K = 2
"""``k`` of the STP methods when ``options`` does not give one."""


@dataclass(frozen=True)
class LayerReport:
    """One compressed layer: what was done and what it cost."""

    name: str
    method: str
    ranks: str
    params_before: int
    params_after: int
    error: float
    """Relative Frobenius error of the kernel, ``||W - W_hat|| / ||W||``."""
    flops_before: int | None = None
    """Multiply-accumulates per sample (None without ``example_input``)."""
    flops_after: int | None = None
    """The same for the new layer, along the path its ``forward`` takes at the example's
    batch size (``forward_mode="auto"`` runs the kernel rebuild and one convolution when
    that is cheaper than the factorized pipeline)."""

    @property
    def compression(self) -> float:
        """``params_before / params_after``."""
        return self.params_before / max(self.params_after, 1)


@dataclass
class CompressionReport:
    """Per-layer and total figures of a :func:`compress` call.

    Attributes
    ----------
    layers : list of LayerReport
        The layers that were replaced.
    kept : list of str
        Selected layers left as ``nn.Conv2d`` because no factorization within the policy
        had fewer parameters.
    model_params_before, model_params_after : int
        Parameters of the whole model before and after.
    method : str
    """

    method: str
    layers: list[LayerReport] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    """Selected convolutions left dense: factorizing them would not save parameters."""
    model_params_before: int = 0
    model_params_after: int = 0

    @property
    def ratio(self) -> float:
        """Whole-model parameter compression ``before / after``."""
        return self.model_params_before / max(self.model_params_after, 1)

    @property
    def flops_before(self) -> int | None:
        """Total MACs per sample of the compressed layers before (None if unknown)."""
        values = [r.flops_before for r in self.layers]
        return None if any(v is None for v in values) else sum(v for v in values if v)

    @property
    def flops_after(self) -> int | None:
        """Total MACs per sample of the compressed layers after (None if unknown)."""
        values = [r.flops_after for r in self.layers]
        return None if any(v is None for v in values) else sum(v for v in values if v)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serializable): method, totals and one dict per layer."""
        return {
            "method": self.method,
            "model_params_before": self.model_params_before,
            "model_params_after": self.model_params_after,
            "ratio": self.ratio,
            "flops_before": self.flops_before,
            "flops_after": self.flops_after,
            "layers": [asdict(r) for r in self.layers],
            "kept": list(self.kept),
        }

    def to_markdown(self) -> str:
        """A Markdown table, one row per layer, then the totals."""
        lines = [
            "| layer | method | ranks | params before | params after | x | MACs before | "
            "MACs after | kernel error |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.layers:
            lines.append(
                f"| {r.name} | {r.method} | {r.ranks} | {r.params_before:,} | "
                f"{r.params_after:,} | {r.compression:.1f} | {_fmt(r.flops_before)} | "
                f"{_fmt(r.flops_after)} | {r.error:.3f} |"
            )
        before = sum(r.params_before for r in self.layers)
        after = sum(r.params_after for r in self.layers)
        lines.append(
            f"| **compressed layers** | | | {before:,} | {after:,} | "
            f"{before / max(after, 1):.1f} | {_fmt(self.flops_before)} | "
            f"{_fmt(self.flops_after)} | |"
        )
        lines.append(
            f"| **whole model** | | | {self.model_params_before:,} | "
            f"{self.model_params_after:,} | {self.ratio:.2f} | | | |"
        )
        if self.kept:
            lines.append("")
            lines.append(f"Left dense (no fewer parameters): {', '.join(self.kept)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of per-layer compression with the kernel error on a second axis.

        Needs matplotlib; returns the figure.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - matplotlib is in the demo extra
            raise ImportError(
                "CompressionReport.plot needs matplotlib (pip install matplotlib)"
            ) from exc
        if ax is None:
            fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(self.layers)), 4.0))
        else:
            fig = ax.figure
        names = [r.name for r in self.layers]
        positions = list(range(len(names)))
        ax.bar(positions, [r.compression for r in self.layers], color="tab:blue")
        ax.set_ylabel("parameter compression (x)", color="tab:blue")
        ax.set_xticks(positions, names, rotation=60, ha="right", fontsize=7)
        twin = ax.twinx()
        twin.plot(positions, [r.error for r in self.layers], "o-", color="tab:red")
        twin.set_ylabel("relative kernel error", color="tab:red")
        ax.set_title(f"{self.method}: model {self.ratio:.2f}x fewer parameters")
        fig.tight_layout()
        return fig


def _fmt(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


# -- selection ---------------------------------------------------------------------------------
Selector = str | type | Iterable[str | type] | None
_FACTORIZED = (layers.FactorizedConv2d, layers.TTLinear)


def _matches(name: str, module: nn.Module, selector: Selector) -> bool:
    if selector is None:
        return False
    items = [selector] if isinstance(selector, (str, type)) else list(selector)
    for item in items:
        if isinstance(item, type):
            if isinstance(module, item):
                return True
        elif isinstance(item, str):
            if name == item or fnmatch.fnmatchcase(name, item):
                return True
        else:
            raise TypeError(f"include/exclude entries must be names or types, got {item!r}")
    return False


def _named_exactly(name: str, module: nn.Module, selector: Selector) -> bool:
    """Whether ``selector`` names ``name`` exactly or lists the very type of ``module``."""
    items = [selector] if isinstance(selector, (str, type)) else list(selector or ())
    return name in items or type(module) in items


def default_selection(model: nn.Module) -> list[str]:
    """Names of the convolutions :func:`compress` factorizes by default.

    Every ``nn.Conv2d`` with a kernel larger than 1x1, except the first convolution of the
    model (the stem); 1x1 convolutions (shortcuts) and linear layers are left out.
    """
    convs = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not isinstance(m, _FACTORIZED)
    ]
    return [name for i, (name, m) in enumerate(convs) if i > 0 and tuple(m.kernel_size) != (1, 1)]


def _select(model: nn.Module, include: Selector, exclude: Selector, method: str) -> list[str]:
    chosen = [] if include is not None else default_selection(model)
    kinds: tuple[type, ...] = (nn.Conv2d, nn.Linear) if method in _LINEAR_METHODS else (nn.Conv2d,)
    for name, m in model.named_modules():
        if not name or include is None or not _matches(name, m, include):
            continue
        if isinstance(m, kinds) and not isinstance(m, _FACTORIZED):
            chosen.append(name)
        elif _named_exactly(name, m, include):
            what = "nn.Conv2d or nn.Linear" if len(kinds) == 2 else "nn.Conv2d"
            hint = (
                ""
                if len(kinds) == 2 or not isinstance(m, nn.Linear)
                else ("; nn.Linear layers are compressed by method='tt' (TTLinear)")
            )
            raise ValueError(
                f"include selects {name!r}, a {type(m).__name__}: method {method!r} compresses "
                f"{what} layers only{hint}"
            )
    modules = dict(model.named_modules())
    return [n for n in chosen if not _matches(n, modules[n], exclude)]


# -- candidates and allocation ---------------------------------------------------------------
@dataclass
class _Candidate:
    layer: nn.Module | None
    """None: keep the original convolution (no candidate saves parameters)."""
    params: int
    error: float


def _layer_class(method: str) -> tuple[type, dict[str, Any]]:
    cls_name, fixed = _CLASSES[method]
    cls = getattr(layers, cls_name, None)
    if cls is None:
        raise ValueError(f"method {method!r} needs tensornet_torch.layers.{cls_name}")
    return cls, dict(fixed)


def _relative_error(conv: nn.Conv2d | nn.Linear, layer: nn.Module) -> float:
    with torch.no_grad():
        w = conv.weight.detach()
        diff = layer.reconstruct() - w  # type: ignore[operator]
        return float(torch.linalg.vector_norm(diff) / torch.linalg.vector_norm(w).clamp_min(1e-300))


def _convert(
    conv: nn.Conv2d | nn.Linear, method: str, options: dict[str, Any], rtol: float | None
) -> _Candidate:
    cls, fixed = _layer_class(method)
    kwargs = {**fixed, **options}
    if rtol is not None:
        kwargs["rtol"] = rtol
    if isinstance(conv, nn.Linear):
        layer = layers.TTLinear.from_linear(conv, **kwargs)
    else:
        layer = cls.from_conv(conv, **kwargs)  # type: ignore[attr-defined]
    return _Candidate(layer, _kernel_params(layer), _relative_error(conv, layer))


def _kernel_params(layer: nn.Module) -> int:
    return sum(p.numel() for name, p in layer.named_parameters() if name != "bias")


def _rank_ladder(conv: nn.Conv2d, k: int) -> list[dict[str, Any]]:
    """Candidate ranks (multiples of ``k``) for a method without an error-bounded fit."""
    out, inp = conv.out_channels // conv.groups, conv.in_channels // conv.groups
    top = max(1, min(out, inp))
    fractions = (1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 3 / 4)
    ranks = sorted({k * max(1, round(top * f / k)) for f in fractions})
    return [{"ranks": r} for r in ranks]


def _candidates(conv: Any, method: str, options: dict[str, Any]) -> list[_Candidate]:
    found = []
    if method in _RTOL_LADDER_METHODS:
        for eps in RTOL_LADDER:
            found.append(_convert(conv, method, options, eps))
        for cap in () if "ranks" in options else RANK_CAPS:
            try:
                capped = {**options, "ranks": cap}  # with rtol: the smaller rank wins
                found.append(_convert(conv, method, capped, RTOL_LADDER[-1]))
            except ValueError:
                continue
    else:
        for setting in _rank_ladder(conv, int(options.get("k", 1))):
            merged = {**setting, **options}
            try:
                found.append(_convert(conv, method, merged, None))
            except ValueError:
                continue  # e.g. k does not divide this rank
    if not found:
        raise ValueError(f"no {method} decomposition of this layer could be built ({conv})")
    # keeping the dense convolution is always a candidate: exact, at its own size
    return [*found, _Candidate(None, _kernel_params(conv), 0.0)]


class UnreachableRatioError(ValueError):
    """``ratio`` asks for fewer parameters than the method's smallest candidates have."""


def _allocate(options: list[list[_Candidate]], budget: int) -> list[_Candidate]:
    """Per layer one candidate, total params <= budget, least sum of squared errors."""

    def pick(lam: float) -> list[_Candidate]:
        return [min(c, key=lambda x: x.error**2 + lam * x.params) for c in options]

    smallest = [min(c, key=lambda x: x.params) for c in options]
    if sum(c.params for c in smallest) > budget:
        raise UnreachableRatioError(
            f"ratio is not reachable with this method: even the smallest candidates need "
            f"{sum(c.params for c in smallest):,} parameters in the compressed layers, more "
            f"than the {budget:,} the ratio leaves them"
        )
    lo, hi = 0.0, 1.0
    while sum(c.params for c in pick(hi)) > budget:
        hi *= 4.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if sum(c.params for c in pick(mid)) > budget:
            lo = mid
        else:
            hi = mid
    return pick(hi)


# -- the entry point -------------------------------------------------------------------------
def _input_shapes(
    model: nn.Module, names: Sequence[str], example_input: Tensor | None
) -> dict[str, tuple[int, ...]]:
    """Input shape of every selected layer, from one forward pass of ``example_input``."""
    if example_input is None:
        return {}
    shapes: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())
    hooks = []
    for name in names:

        def hook(_m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            shapes[name] = tuple(int(m) for m in args[0].shape)

        hooks.append(modules[name].register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def _macs(layer: nn.Module, shape: tuple[int, ...] | None, batch: int) -> tuple[int, int] | None:
    """Per-sample MACs of the dense layer and of ``layer`` (None: unknown).

    The layer's count is that of the path its ``forward`` takes on a batch of ``batch``
    such inputs, the dense path's kernel rebuild spread over the batch.
    """
    if shape is None:
        return None
    batch = max(batch, 1)
    if isinstance(layer, layers.TTLinear):
        rows = max(math.prod(shape[:-1]) // batch, 1)  # e.g. tokens per sample
        total = layer.macs(rows * batch)
        return rows * layer.dense_macs(), math.ceil(total / batch)
    conv: layers.FactorizedConv2d = layer  # type: ignore[assignment]
    h, w = shape[-2:]
    paths = conv.path_macs(batch, h, w)
    return conv.dense_macs(h, w), math.ceil(paths[conv.choose_path(batch, h, w)] / batch)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _choose(
    modules: dict[str, nn.Module],
    names: Sequence[str],
    iterator: Iterable[str],
    method: str,
    opts: dict[str, Any],
    rtol: float | None,
    ratio: float | None,
    before_total: int,
) -> dict[str, _Candidate]:
    """One candidate per selected layer: by ``rtol`` (or fixed options) or for ``ratio``."""
    convs: dict[str, Any] = {n: modules[n] for n in names}
    if ratio is None:
        chosen = {}
        for name in iterator:
            cand = _convert(convs[name], method, opts, rtol)
            if cand.params >= _kernel_params(convs[name]):
                cand = _Candidate(None, _kernel_params(convs[name]), 0.0)
            chosen[name] = cand
        return chosen
    ladders = [_candidates(convs[n], method, opts) for n in iterator]
    untouched = before_total - sum(_kernel_params(convs[n]) for n in names)
    budget = math.floor(before_total / ratio) - untouched
    return dict(zip(names, _allocate(ladders, budget)))


def _choose_on_rank0(
    modules: dict[str, nn.Module],
    names: Sequence[str],
    iterator: Iterable[str],
    method: str,
    opts: dict[str, Any],
    rtol: float | None,
    ratio: float | None,
    before_total: int,
) -> dict[str, _Candidate]:
    """:func:`_choose` run on rank 0; its layers (sent through the CPU) on every rank."""

    def choose() -> dict[str, _Candidate]:
        chosen = _choose(modules, names, iterator, method, opts, rtol, ratio, before_total)
        for cand in chosen.values():
            if cand.layer is not None:
                cand.layer.to("cpu")  # pickled CUDA tensors would land on rank 0's GPU
        return chosen

    chosen = _from_rank0(choose)
    for name, cand in chosen.items():
        if cand.layer is not None:
            cand.layer.to(_device(modules[name]))
    return chosen


def _device(module: nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return torch.device("cpu") if first is None else first.device


def compress(
    model: nn.Module,
    *,
    method: str,
    rtol: float | None = None,
    ratio: float | None = None,
    include: Selector = None,
    exclude: Selector = None,
    progress: bool = True,
    options: dict[str, Any] | None = None,
    example_input: Tensor | None = None,
    inplace: bool = False,
    distributed: bool | None = None,
) -> tuple[nn.Module, CompressionReport]:
    """Replace convolutions of ``model`` by factorized layers.

    Parameters
    ----------
    model : nn.Module
        Any model with ``nn.Conv2d`` layers (CPU or CUDA, float32 or float64).
    method : str
        One of :data:`METHODS`: ``"rsdtr"`` (TR with the RSDTR search), ``"tr"``,
        ``"tt"``, ``"tucker"`` (Tucker-2), ``"cp"``, ``"stt"``, ``"str"``, ``"sttucker"``.
    rtol : float, optional
        Relative kernel error of every compressed layer (error-bounded methods).
    ratio : float, optional
        Target whole-model parameter compression (> 1); ranks are allocated across layers
        (module docstring). Exactly one of ``rtol`` and ``ratio``.
    include, exclude : name, type, or a sequence of them, optional
        Layers to compress instead of the default selection (:func:`default_selection`),
        and layers to leave out. Names match exactly or as ``fnmatch`` patterns
        (``"layer1.*"``, which selects the convolutions among the matches); types match by
        ``isinstance``. With ``method="tt"`` selected ``nn.Linear`` layers become
        :class:`~tensornet_torch.layers.TTLinear` (``include=nn.Linear`` or by name);
        naming a module the method cannot compress is an error.
    progress : bool
        Show a tqdm progress bar (when tqdm is installed).
    options : dict, optional
        Extra keyword arguments of the layer class's ``from_conv`` (``TTLinear.from_linear``
        for linear layers), applied to every selected layer (e.g. ``{"k": 4}`` for
        the STP methods, whose default is :data:`DEFAULT_K`; ``{"ranks": 8}`` for a fixed
        rank).
    example_input : Tensor, optional
        One input batch; with it the report gives per-sample MACs before and after.
    inplace : bool
        Modify ``model`` itself instead of a deep copy.
    distributed : bool, optional
        Under an initialized ``torch.distributed`` process group of several processes
        (``None``, the default, detects it; ``True`` requires it), ``compress`` is a
        collective that every rank must call: the structures of the models are checked
        to agree (:func:`~tensornet_torch.check_structure`), rank 0 alone chooses and
        decomposes, and every rank receives its layers and report, so the replicas get
        identical ranks and factors (the ALS fits of ``"cp"``/``"stt"``/``"sttucker"``
        draw from an unseeded generator unless ``options`` gives ``rng``). ``False``:
        compress locally (e.g. on one rank only). A ``DistributedDataParallel`` model is
        looked through, but wrap the result in a new one: its parameters are new.

    Returns
    -------
    (nn.Module, CompressionReport)

    Raises
    ------
    ValueError
        For an unknown method, both or neither of ``rtol``/``ratio`` (unless ``options``
        fixes the ranks), ``ratio <= 1``, an unreachable ratio, or nothing to compress;
        under ``torch.distributed``, for models whose structures differ between ranks.
    RuntimeError
        With ``distributed=True`` and no initialized process group.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU())
    >>> small, report = compress(net, method="tucker", rtol=0.5, progress=False)
    >>> [r.name for r in report.layers]
    ['2']
    >>> type(small[2]).__name__
    'TuckerConv2d'
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    opts = dict(options or {})
    if method in _STP_METHODS:
        opts.setdefault("k", DEFAULT_K)
    if rtol is not None and ratio is not None:
        raise ValueError("give rtol or ratio, not both")
    if rtol is None and ratio is None and "ranks" not in opts:
        raise ValueError("give rtol, ratio, or fixed ranks in options={'ranks': ...}")
    if ratio is not None and (
        isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 1
    ):
        raise ValueError(f"ratio must be a number > 1, got {ratio!r}")
    if rtol is not None and method not in _RTOL_METHODS:
        raise ValueError(
            f"method {method!r} has no error-bounded decomposition: use ratio= or "
            f"options={{'ranks': ...}} (rtol works with {sorted(_RTOL_METHODS)})"
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    sync = _resolve(distributed)
    if sync:
        check_structure(model)
    model = unwrap(model)
    target = model if inplace else copy.deepcopy(model)
    names = _select(target, include, exclude, method)
    if not names:
        raise ValueError(
            "nothing to compress: no nn.Conv2d matches (the default skips the first "
            "convolution, 1x1 convolutions and linear layers; use include=)"
        )
    modules = dict(target.named_modules())
    shapes = _input_shapes(target, names, example_input)
    batch = 1 if example_input is None or example_input.dim() == 0 else int(example_input.shape[0])
    before_total = sum(p.numel() for p in target.parameters())
    iterator: Iterable[str] = names
    if progress and (not sync or dist.get_rank() == 0):
        try:
            from tqdm.auto import tqdm

            iterator = tqdm(names, desc=f"compress ({method})", unit="layer")
        except ImportError:  # pragma: no cover - tqdm is in the demo extra
            pass
    probe = next((p for p in target.parameters()), torch.empty(0))
    with layers.one_thread_on_cpu(probe):
        if sync:
            chosen = _choose_on_rank0(
                modules, names, iterator, method, opts, rtol, ratio, before_total
            )
        else:
            chosen = _choose(modules, names, iterator, method, opts, rtol, ratio, before_total)
    report = CompressionReport(method=method, model_params_before=before_total)
    for name in names:
        cand = chosen[name]
        if cand.layer is None:
            report.kept.append(name)
            continue
        layer: Any = cand.layer
        macs = _macs(layer, shapes.get(name), batch)
        report.layers.append(
            LayerReport(
                name=name,
                method=method,
                ranks=layer.ranks_repr().removeprefix("ranks="),
                params_before=sum(p.numel() for p in modules[name].parameters()),
                params_after=layer.num_params,
                error=cand.error,
                flops_before=None if macs is None else macs[0],
                flops_after=None if macs is None else macs[1],
            )
        )
        _set_module(target, name, layer)
    report.model_params_after = sum(p.numel() for p in target.parameters())
    return target, report
