"""Cached tensor contraction over opt_einsum.

:func:`contract` builds one ``opt_einsum.ContractExpression`` per equation and
operand shapes and reuses it, so repeated contractions (sweeps, layer forwards)
pay for path optimization once. Works on any array library opt_einsum knows
(NumPy, torch on CPU or GPU); the result has the operands' type and device.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import opt_einsum

from tensornet import _backend as B
from tensornet._backend import Array, is_array
from tensornet._validation import check_int, check_shape

__all__ = ["ContractionCost", "clear_cache", "contract", "contract_cost", "contraction_plan"]

_CACHE_SIZE = 4096


class ContractionCost(NamedTuple):
    """Cost of a contraction under the optimized path.

    Attributes
    ----------
    flops : int
        Floating-point operations (opt_einsum's count: multiply-adds counted as 2
        where an index is summed).
    largest_intermediate : int
        Number of elements of the largest intermediate tensor.
    path : tuple of tuple of int
        The pairwise contraction order.
    """

    flops: int
    largest_intermediate: int
    path: tuple[tuple[int, ...], ...]


def _check_equation(equation: object) -> str:
    if not isinstance(equation, str):
        raise TypeError(f"equation must be an einsum string, got {type(equation).__name__}")
    return equation.replace(" ", "")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _expression(
    equation: str, shapes: tuple[tuple[int, ...], ...], optimize: str
) -> opt_einsum.contract.ContractExpression:
    return opt_einsum.contract_expression(equation, *shapes, optimize=optimize)


def contraction_plan(
    equation: str,
    *shapes: Sequence[int] | Array,
    optimize: str = "auto",
    constants: Sequence[int] = (),
) -> Any:
    """Return a reusable ``opt_einsum`` expression for ``equation`` and ``shapes``.

    Calling the returned object with operands of those shapes performs the
    contraction with the precomputed path. Without ``constants`` the expression is the
    cached one :func:`contract` uses for these shapes.

    Parameters
    ----------
    equation : str
        Einsum subscripts with an explicit output, e.g. ``"ij,jk->ik"``.
    *shapes : sequence of int or array
        One entry per operand: its shape, or, at the positions listed in ``constants``,
        the operand itself.
    optimize : str
        opt_einsum path strategy (``"auto"``, ``"optimal"``, ``"greedy"``, ...).
    constants : sequence of int
        Positions of operands that never change. Every part of the contraction that
        involves only constants is computed once, on the first call, and kept; the
        expression is then called with the remaining operands only, in order. Such an
        expression holds arrays, so it is built anew (not cached).

    Returns
    -------
    opt_einsum.contract.ContractExpression
        Call it with the non-constant operands.

    Raises
    ------
    TypeError
        If ``equation`` is not a string, or a constant position does not hold an array.
    ValueError
        If a position in ``constants`` is out of range or repeated.

    Examples
    --------
    >>> import numpy as np
    >>> plan = contraction_plan("ij,jk->ik", (2, 3), (3, 4))
    >>> plan(np.ones((2, 3)), np.ones((3, 4))).shape
    (2, 4)
    >>> a, b = np.ones((3, 4)), np.ones((4, 5))  # fixed factors: a @ b is formed once
    >>> plan = contraction_plan("ij,jk,kl->il", (2, 3), a, b, constants=(1, 2))
    >>> plan(np.ones((2, 3)))[0, 0]
    np.float64(12.0)
    """
    eq = _check_equation(equation)
    given = tuple(check_int(c, "constants") for c in constants)
    fixed = sorted(set(given))
    if len(fixed) != len(given):
        raise ValueError(f"constants must not repeat positions, got {given}")
    for c in fixed:
        if not 0 <= c < len(shapes):
            raise ValueError(f"constants must be positions 0..{len(shapes) - 1}, got {c}")
        if not is_array(shapes[c]):
            raise TypeError(
                f"shapes[{c}] must be the constant operand (an array), got "
                f"{type(shapes[c]).__name__}"
            )
    args = [s if i in fixed else tuple(int(n) for n in s) for i, s in enumerate(shapes)]
    if not fixed:
        return _expression(eq, tuple(args), optimize)
    return opt_einsum.contract_expression(eq, *args, constants=fixed, optimize=optimize)


def contract(equation: str, *operands: Array, optimize: str = "auto") -> Array:
    """Evaluate an einsum ``equation`` with a cached contraction path.

    Parameters
    ----------
    equation : str
        Einsum subscripts with an explicit output, e.g. ``"ab,bc->ac"``.
    *operands : array
        Arrays of one library (NumPy or torch).
    optimize : str
        opt_einsum path strategy (``"auto"``, ``"optimal"``, ``"greedy"``, ...).

    Returns
    -------
    array
        The contraction, with the operands' array type, dtype and device.

    Raises
    ------
    TypeError
        If the operands come from more than one array library, or ``equation`` is not a
        string. Operands of different dtypes are promoted to their common dtype first
        (``result_type``), in every library.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> contract("ij,ij->", a, a)
    array(55.)
    """
    libraries = {type(op).__module__.partition(".")[0] for op in operands}
    if len(libraries) > 1:  # NumPy then torch would silently come back as NumPy
        raise TypeError(f"operands must be arrays of one library, got {sorted(libraries)}")
    if len({op.dtype for op in operands}) > 1:  # NumPy promotes; torch's einsum would raise
        xp = B.namespace(*operands)
        common = xp.result_type(*operands)
        operands = tuple(xp.astype(op, common) for op in operands)
    shapes = tuple(tuple(int(n) for n in op.shape) for op in operands)
    expr = _expression(_check_equation(equation), shapes, optimize)
    return expr(*operands)


def contract_cost(equation: str, *shapes: Sequence[int], optimize: str = "auto") -> ContractionCost:
    """FLOPs and largest intermediate of contracting operands of ``shapes``.

    Nothing is allocated: only the path is computed.

    Examples
    --------
    >>> cost = contract_cost("ij,jk->ik", (10, 20), (20, 30))
    >>> cost.flops, cost.largest_intermediate
    (12000, 300)
    """
    eq = _check_equation(equation)
    dims = [check_shape(s, f"shapes[{i}]") for i, s in enumerate(shapes)]
    path, info = opt_einsum.contract_path(eq, *dims, shapes=True, optimize=optimize)
    return ContractionCost(
        int(info.opt_cost), int(info.largest_intermediate), tuple(tuple(p) for p in path)
    )


def clear_cache() -> None:
    """Forget all cached contraction expressions."""
    _expression.cache_clear()
