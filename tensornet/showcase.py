"""Tensor-train showcase on bundled data: what ``tensornet showcase`` runs.

Three short experiments, each measured in the run:

1. the scikit-learn digits images (1797 x 8 x 8, shipped with scikit-learn) in TT
   format at several error targets: ranks, compression, achieved error, time;
2. a smooth signal of ``2**L`` samples in quantized-TT form ((2,) * L): tiny ranks,
   and TT arithmetic (sum, product, inner product) without densifying, checked
   against the dense result;
3. the randomized TT-SVD path against the exact one on a (12,)^6 tensor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from tensornet.decompose.tt_svd import tt_svd
from tensornet.formats.tt import TTTensor, tt_hadamard, tt_inner, tt_round

__all__ = ["run_showcase"]


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _rel(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def _digits_section(quick: bool) -> str:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - the demo extra installs it
        raise SystemExit(
            "tensornet showcase needs scikit-learn for its bundled data: pip install -e '.[demo]'"
        ) from exc
    images = load_digits().images  # (1797, 8, 8), values 0..16
    x = images.reshape(images.shape[0], 4, 2, 4, 2).transpose(0, 1, 3, 2, 4)
    x = np.ascontiguousarray(x.reshape(images.shape[0], 4, 4, 4))  # coarse and fine pixel modes
    rows = []
    for rtol in (0.1, 0.3) if quick else (0.05, 0.1, 0.2, 0.3):
        t, seconds = _timed(partial(tt_svd, x, rtol=rtol))
        rows.append(
            [
                rtol,
                t.ranks,
                t.num_params,
                f"{x.size / t.num_params:.1f}x",
                f"{_rel(t.to_dense(), x):.4f}",
                f"{seconds * 1e3:.1f} ms",
            ]
        )
    return "### 1. scikit-learn digits, tensor (1797, 4, 4, 4)\n\n" + _table(
        ["rtol", "TT ranks", "params", "compression", "achieved error", "time"], rows
    )


def _qtt_section(quick: bool) -> str:
    levels = 16 if quick else 20
    grid = np.linspace(0.0, 1.0, 2**levels)
    f = np.sin(40 * np.pi * grid) * np.exp(-3 * grid)
    g = 1.0 / (1.0 + grid**2)
    shape = (2,) * levels
    tf, seconds = _timed(lambda: tt_svd(f.reshape(shape), rtol=1e-10))
    tg = tt_svd(g.reshape(shape), rtol=1e-10)
    total = tt_round(tf + tg, rtol=1e-10)
    product = tt_round(tt_hadamard(tf, tg), rtol=1e-10)
    rows = [
        [
            "f = sin(40 pi x) exp(-3x)",
            max(tf.ranks),
            tf.num_params,
            f"{f.size / tf.num_params:.0f}x",
            f"{_rel(tf.to_dense().ravel(), f):.1e}",
        ],
        [
            "g = 1 / (1 + x^2)",
            max(tg.ranks),
            tg.num_params,
            f"{g.size / tg.num_params:.0f}x",
            f"{_rel(tg.to_dense().ravel(), g):.1e}",
        ],
        [
            "round(f + g)",
            max(total.ranks),
            total.num_params,
            f"{f.size / total.num_params:.0f}x",
            f"{_rel(total.to_dense().ravel(), f + g):.1e}",
        ],
        [
            "round(f * g)",
            max(product.ranks),
            product.num_params,
            f"{f.size / product.num_params:.0f}x",
            f"{_rel(product.to_dense().ravel(), f * g):.1e}",
        ],
    ]
    inner = float(tt_inner(tf, tg))
    dense_inner = float(f @ g)
    entry = 12345 % f.size
    index = np.unravel_index(entry, shape)
    text = (
        f"### 2. Quantized TT of 2^{levels} = {f.size:,} samples, shape (2,)^{levels}\n\n"
        + _table(["signal", "max rank", "params", "compression", "error"], rows)
        + f"\n\nTT-SVD of f took {seconds * 1e3:.1f} ms. <f, g> in TT form: {inner:.10f} "
        f"(dense: {dense_inner:.10f}); f[{entry}] from the TT: {float(tf[index]):.10f} "
        f"(dense: {f[entry]:.10f})."
    )
    return text


def _randomized_section(quick: bool, rng: np.random.Generator) -> str:
    n, rank = (10, 8) if quick else (12, 10)
    shape = (n,) * 6
    # A tensor with a decaying spectrum: a rank-`rank` TT plus 1% noise.
    cores = [
        rng.standard_normal((1 if k == 0 else rank, n, 1 if k == 5 else rank)) for k in range(6)
    ]
    base = TTTensor(cores).to_dense()
    x = base / np.linalg.norm(base) + 0.01 * rng.standard_normal(shape) / np.sqrt(base.size)
    rows = []
    exact_seconds = 0.0
    for method in ("exact", "randomized", "auto"):
        t, seconds = _timed(partial(tt_svd, x, max_rank=rank, method=method, rng=rng))
        if method == "exact":
            exact_seconds = seconds
        rows.append(
            [
                method,
                max(t.ranks),
                f"{_rel(t.to_dense(), x):.5f}",
                f"{seconds * 1e3:.1f} ms",
                f"{exact_seconds / seconds:.1f}x",
            ]
        )
    return f"### 3. Randomized TT-SVD, shape ({n},)^6, max_rank={rank}\n\n" + _table(
        ["method", "max rank", "error", "time", "speed-up vs exact"], rows
    )


def run_showcase(*, quick: bool = False, seed: int = 0) -> str:
    """Run the TT showcase and return its report as markdown text.

    Parameters
    ----------
    quick : bool
        Smaller problems (a few seconds in all).
    seed : int
        Seed of every random draw.

    Returns
    -------
    str
        The report; every figure in it was measured in this call.
    """
    rng = np.random.default_rng(seed)
    sections = [
        "## tensornet TT showcase",
        _digits_section(quick),
        _qtt_section(quick),
        _randomized_section(quick, rng),
    ]
    return "\n\n".join(sections) + "\n"
