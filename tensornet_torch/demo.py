"""The compression demo on real bundled data: a small ResNet on scikit-learn's digits.

Trains a CIFAR-style ResNet on the 1,797 digit images that ship with scikit-learn
(8x8, upsampled to 16x16; no download), then for every method compresses the trained
model to a whole-model parameter ratio with :func:`~tensornet_torch.compress`, fine-tunes
briefly and measures test accuracy before, right after compression and after fine-tuning.
``admm-tt`` instead trains under the TT rank constraint with :class:`~tensornet_torch.ADMM`
before finalizing and fine-tuning. Every figure printed is measured in the run.
"""

from __future__ import annotations

import csv
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from tensornet._validation import ConvergenceWarning, check_int
from tensornet_torch.admm import ADMM
from tensornet_torch.compress import UnreachableRatioError, compress
from tensornet_torch.layers import FactorizedConv2d

__all__ = ["DEMO_METHODS", "DemoRow", "ResNet", "load_digits_data", "run_demo"]

DEMO_METHODS = ("rsdtr", "tr", "tt", "tucker", "cp", "stt", "str", "admm-tt")
"""Methods the demo runs, in table order."""


class _Block(nn.Module):
    def __init__(self, c_in: int, c: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or c_in != c:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c, 1, stride, bias=False), nn.BatchNorm2d(c)
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: stem, 3 stages of ``blocks`` basic blocks, global pool, linear.

    ``blocks=3`` is ResNet-20, ``blocks=1`` ResNet-8.
    """

    def __init__(
        self, blocks: int = 3, width: int = 16, classes: int = 10, in_channels: int = 1
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, c_in = [], width
        for c, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            for i in range(blocks):
                stages.append(_Block(c_in, c, stride if i == 0 else 1))
                c_in = c
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


def load_digits_data(seed: int, device: Any = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's digits as 16x16 float32 images: ``(x_train, y_train, x_test, y_test)``.

    A seeded 75/25 split; pixels scaled to mean 0 and standard deviation 1 (train statistics).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None]
    images = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target, dtype=torch.long)
    order = torch.tensor(np.random.default_rng(seed).permutation(len(labels)))
    cut = int(0.75 * len(labels))
    train, test = order[:cut], order[cut:]
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    return (
        images[train].to(device),
        labels[train].to(device),
        images[test].to(device),
        labels[test].to(device),
    )


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _train(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    epochs: int,
    lr: float,
    gen: torch.Generator,
    admm: ADMM | None = None,
) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    batches = max(1, len(y) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(1, epochs * batches))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen).to(y.device)
        for b in range(batches):
            idx = order[b * 64 : (b + 1) * 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if admm is not None:
                loss = loss + admm.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if admm is not None:
            admm.update()


def _macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates of one sample's forward pass, weight-only work included.

    Every factorized layer is counted on the path with the fewest MACs
    (:meth:`~tensornet_torch.layers.FactorizedConv2d.path_macs` at batch 1): the compute
    the factorization needs. ``forward_mode="auto"`` picks by estimated time instead, and
    at batch 1 on these small images that is often the dense kernel (per-call overhead),
    which would make the count say nothing about the compression.
    """
    model.eval()
    convs = [m for m in model.modules() if isinstance(m, FactorizedConv2d)]
    sizes: dict[FactorizedConv2d, tuple[int, int]] = {}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        sizes[module] = (int(args[0].shape[-2]), int(args[0].shape[-1]))  # type: ignore[index]

    hooks = [m.register_forward_pre_hook(record) for m in convs]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    saved = [(m, m.forward_mode, m.precontract) for m in convs]
    try:
        for m in convs:
            macs = m.path_macs(1, *sizes[m])
            m.forward_mode = min(type(m).PATHS, key=macs.__getitem__)
            m.precontract = False  # count the weight-only part of every call
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x[:1])
    finally:
        for m, mode, precontract in saved:
            m.forward_mode, m.precontract = mode, precontract
    return counter.get_total_flops() // 2


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class DemoRow:
    """One line of the demo table.

    ``params_x``, ``macs_x``, ``acc_compressed`` and ``acc_finetuned`` are NaN when the
    method cannot reach ``target`` (its smallest per-layer candidates are too big).
    """

    method: str
    target: float
    params_x: float
    macs_x: float
    acc_dense: float
    acc_compressed: float
    acc_finetuned: float
    seconds: float


def run_demo(
    *,
    quick: bool = False,
    seed: int = 0,
    device: str = "cpu",
    methods: Sequence[str] = DEMO_METHODS,
    ratios: Sequence[float] | None = None,
    output: Path | None = None,
    progress: bool = True,
    tune_epochs: int | None = None,
) -> tuple[str, list[DemoRow]]:
    """Train, compress with every method, fine-tune; return the report and its rows.

    Parameters
    ----------
    quick : bool
        ResNet-8 and fewer epochs (under a minute on two cores) instead of ResNet-20.
    seed : int
        Seeds the split, the initialization, the batches and every decomposition.
    device : str
        ``"cpu"`` or ``"cuda"``.
    methods : sequence of str
        Subset of :data:`DEMO_METHODS`.
    ratios : sequence of float, optional
        Whole-model parameter compression targets (default ``(2.0,)``).
    output : Path, optional
        A folder: the table is written there as ``demo.md`` and ``demo.csv``, and the
        accuracy-against-compression plot as ``demo.png`` (when matplotlib imports).
    progress : bool
        tqdm bars for the methods (when tqdm imports).
    tune_epochs : int, optional
        Fine-tuning epochs after compression (default 3, or 1 with ``quick``). ADMM
        training itself takes a third of the dense epochs (at least 2) before that.
    """
    unknown = [m for m in methods if m not in DEMO_METHODS]
    if unknown:
        raise ValueError(f"methods must be among {DEMO_METHODS}, got {unknown}")
    targets = tuple(ratios or (2.0,))
    blocks, epochs, tune = (1, 4, 1) if quick else (3, 15, 3)
    if tune_epochs is not None:
        tune = check_int(tune_epochs, "tune_epochs", minimum=0)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y, xt, yt = load_digits_data(seed, device)
    model = ResNet(blocks=blocks).to(device)
    start = time.perf_counter()
    _train(model, x, y, epochs, 0.1, gen)
    train_seconds = time.perf_counter() - start
    dense_acc = _accuracy(model, xt, yt)
    dense_params, dense_macs = _params(model), _macs(model, xt)
    jobs = [(m, r) for m in methods for r in targets]
    iterator: Any = jobs
    if progress:
        try:
            from tqdm.auto import tqdm

            iterator = tqdm(jobs, desc="demo", unit="run")
        except ImportError:  # pragma: no cover - tqdm is in the demo extra
            pass
    rows = []
    for method, ratio in iterator:
        # every job starts from the same random state: a row does not depend on the others
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        try:
            small = _compress(model, method, ratio, seed, x, y, max(2, epochs // 3), gen)
        except UnreachableRatioError:
            # the method's smallest candidates are too big for this target: a row of NaN
            nan = float("nan")
            seconds = time.perf_counter() - t0
            rows.append(DemoRow(method, ratio, nan, nan, dense_acc, nan, nan, seconds))
            continue
        compressed_acc = _accuracy(small, xt, yt)
        _train(small, x, y, tune, 0.01, gen)
        rows.append(
            DemoRow(
                method=method,
                target=ratio,
                params_x=dense_params / _params(small),
                macs_x=dense_macs / max(_macs(small, xt), 1),
                acc_dense=dense_acc,
                acc_compressed=compressed_acc,
                acc_finetuned=_accuracy(small, xt, yt),
                seconds=time.perf_counter() - t0,
            )
        )
    report = _report(
        rows, quick, blocks, dense_params, dense_macs, dense_acc, train_seconds, len(y)
    )
    if output is not None:
        _save(output, report, rows)
    return report, rows


def _compress(
    model: nn.Module,
    method: str,
    ratio: float,
    seed: int,
    x: Tensor,
    y: Tensor,
    admm_epochs: int,
    gen: torch.Generator,
) -> nn.Module:
    """The compressed copy of ``model``: ADMM training then finalize, or one-shot."""
    if method == "admm-tt":
        trained = _copy(model)
        admm = ADMM(trained, method="tt", ratio=ratio, rho=1.0, rho_growth=1.3, rho_max=10.0)
        _train(trained, x, y, admm_epochs, 0.02, gen, admm)
        return admm.finalize()
    # the ALS fits of the rank ladders: seeded, and loose (one fit per rung and layer; the
    # fine-tuning that follows matters more than the last digits of the fit)
    options: dict[str, Any] = {}
    if method == "cp":
        options = {"rng": seed, "tol": 1e-4}
    elif method == "stt":
        options = {"rng": seed, "n_iter_max": 20, "tol": 1e-3}
    with warnings.catch_warnings():
        # loose by design: a fit that stops at n_iter_max is still a fine start for tuning
        warnings.simplefilter("ignore", ConvergenceWarning)
        small, _ = compress(model, method=method, ratio=ratio, progress=False, options=options)
    return small


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def _report(
    rows: Sequence[DemoRow],
    quick: bool,
    blocks: int,
    params: int,
    macs: int,
    acc: float,
    seconds: float,
    n_train: int,
) -> str:
    lines = [
        "## tensornet demo: compressing a ResNet trained on scikit-learn digits",
        "",
        f"ResNet-{6 * blocks + 2} on {n_train} training images (16x16, upsampled digits): "
        f"{params:,} parameters, {macs:,} MACs per image, test accuracy {acc:.3f}, trained in "
        f"{seconds:.1f} s{' (--quick)' if quick else ''}.",
        "",
        "| method | target | params x | MACs x | acc dense | acc compressed | acc fine-tuned "
        "| time s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if np.isnan(r.params_x):
            lines.append(
                f"| {r.method} | {r.target:g} | not reachable | | {r.acc_dense:.3f} | | | "
                f"{r.seconds:.1f} |"
            )
            continue
        lines.append(
            f"| {r.method} | {r.target:g} | {r.params_x:.2f} | {r.macs_x:.2f} | "
            f"{r.acc_dense:.3f} | {r.acc_compressed:.3f} | {r.acc_finetuned:.3f} | "
            f"{r.seconds:.1f} |"
        )
    lines += [
        "",
        "params x / MACs x: whole-model compression (MACs per sample, every factorized layer on "
        "its path with fewer MACs, kernel rebuilds included);",
        "acc compressed: right after compression (admm-tt: after ADMM training), before "
        "fine-tuning; not reachable: even the method's smallest per-layer candidates exceed "
        "the target.",
    ]
    return "\n".join(lines)


def _save(folder: Path, report: str, rows: Sequence[DemoRow]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "demo.md").write_text(report + "\n")
    with (folder / "demo.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(rows[0])) if rows else ["method"])
        writer.writeheader()
        for r in rows:
            writer.writerow(asdict(r))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the demo extra
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        ax.plot([r.params_x for r in mine], [r.acc_finetuned for r in mine], "o-", label=method)
    ax.set_xlabel("parameter compression (x)")
    ax.set_ylabel("test accuracy after fine-tuning")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "demo.png", dpi=120)
    plt.close(fig)
