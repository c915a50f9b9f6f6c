"""Mode factorizations and chain-rank parsing shared by the tensorized layers.

A tensorized layer reshapes a feature or channel count ``n`` into modes ``(n_1, ..., n_c)``
with ``prod(n_i) == n`` (C order). :func:`balanced_factors` gives the most balanced such
factorization into a given number of factors; :func:`default_modes` is the default used
when the user does not pass modes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from tensornet._validation import check_int
from tensornet.random import _requested_ranks

__all__ = [
    "balanced_factors",
    "check_chain_ranks",
    "check_modes_product",
    "default_channel_modes",
    "prime_count",
]


def prime_count(n: int) -> int:
    """Number of prime factors of ``n`` counted with multiplicity (0 for ``n = 1``).

    Examples
    --------
    >>> prime_count(1), prime_count(12), prime_count(13)
    (0, 3, 1)
    """
    n = check_int(n, "n", minimum=1)
    count, p = 0, 2
    while p * p <= n:
        while n % p == 0:
            n //= p
            count += 1
        p += 1
    return count + (1 if n > 1 else 0)


def _divisors(n: int) -> list[int]:
    small = [f for f in range(1, math.isqrt(n) + 1) if n % f == 0]
    return sorted({*small, *(n // f for f in small)}, reverse=True)


def _non_increasing(n: int, count: int, largest: int) -> Iterator[tuple[int, ...]]:
    """Every non-increasing tuple of ``count`` ints ``<= largest`` whose product is ``n``."""
    if count == 1:
        if n <= largest:
            yield (n,)
        return
    for f in _divisors(n):
        if f > largest:
            continue
        if f**count < n:  # the largest factor must be at least the count-th root
            break
        for rest in _non_increasing(n // f, count - 1, f):
            yield (f, *rest)


def balanced_factors(n: int, count: int) -> tuple[int, ...]:
    """The most balanced factorization of ``n`` into ``count`` factors, largest first.

    Among the tuples of ``count`` ints with product ``n``, the one with the smallest
    largest factor, then the smallest sum of squares (``1`` appears only when ``n`` has
    fewer than ``count`` prime factors).

    Raises
    ------
    TypeError, ValueError
        If ``n`` or ``count`` is not an int ``>= 1``.

    Examples
    --------
    >>> balanced_factors(64, 3), balanced_factors(16, 3), balanced_factors(10, 3)
    ((4, 4, 4), (4, 2, 2), (5, 2, 1))
    >>> balanced_factors(512, 2), balanced_factors(7, 2)
    ((32, 16), (7, 1))
    """
    n = check_int(n, "n", minimum=1)
    count = check_int(count, "count", minimum=1)
    return min(_non_increasing(n, count, n), key=lambda f: (f[0], sum(v * v for v in f)))


def default_channel_modes(n: int) -> tuple[int, ...]:
    """Default modes of a channel count: ``(n / p, p)`` with ``p`` the largest divisor up to
    ``sqrt(n)``, or ``(n,)`` when ``n`` is 1 or prime.

    Examples
    --------
    >>> default_channel_modes(64), default_channel_modes(48), default_channel_modes(3)
    ((8, 8), (8, 6), (3,))
    """
    return balanced_factors(n, max(1, min(2, prime_count(n))))


def check_modes_product(modes: object, total: int, name: str, what: str) -> tuple[int, ...]:
    """``modes`` as a non-empty tuple of positive ints whose product is ``total``."""
    if isinstance(modes, (str, bytes)) or not isinstance(modes, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {type(modes).__name__}")
    if len(modes) == 0:
        raise ValueError(f"{name} must contain at least one mode, got {tuple(modes)!r}")
    values = tuple(check_int(m, f"{name}[{i}]", minimum=1) for i, m in enumerate(modes))
    if math.prod(values) != total:
        raise ValueError(
            f"{name} must multiply to {what} = {total}, got {values} with product "
            f"{math.prod(values)}"
        )
    return values


def check_chain_ranks(ranks: object, n_modes: int, name: str = "ranks") -> tuple[int, ...]:
    """``ranks`` (int, the ``d - 1`` bonds, or ``(1, r_1, ..., r_{d-1}, 1)``) as the full tuple.

    The core's rule (:func:`tensornet.random_tt` reads ranks the same way).
    """
    return _requested_ranks(ranks, n_modes, name)
