"""Tail bounds behind `topology.params`, in natural logarithms.

`Tail` bounds the upper tail of a hypergeometric distribution (how many of a
peer's k neighbours are corrupt, or drop out); `log_p_disconnect` is the
union bound on a random Harary graph being cut by the removed peers
(condition (b) of `topology.params`). Computed from log-gamma in floating
point; `topology.params` keeps a margin on the safe side of every comparison.
"""

from __future__ import annotations

import math

__all__ = ["LN2", "Tail", "log2_sum", "log_p_disconnect"]

LN2 = math.log(2)
_SKIP = 50.0  # nats below the budget at which the far tail is bounded, not summed


def _log_comb(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


class Tail:
    """Upper bounds on ln P[X >= x] for X ~ Hypergeometric(population, marked, draws).

    `safe` is the smallest x whose bound is <= `budget` (a negative ln
    probability); `at(x)` gives the bound for any x >= safe. Above the mode
    the mass function decreases, so the far upper tail is bounded by
    (terms left) * (first term) instead of being summed: that bound is kept
    `_SKIP` nats below the budget, where it cannot move `safe`, and it only
    ever overestimates (the safe direction).
    """

    __slots__ = ("_base", "_draws", "_high", "_marked", "_population", "_sums", "safe")

    def __init__(self, population: int, marked: int, draws: int, budget: float) -> None:
        self._population, self._marked, self._draws = population, marked, draws
        low = max(0, draws - (population - marked))
        self._high = high = min(draws, marked)
        self._base = (
            math.lgamma(marked + 1)
            + math.lgamma(population - marked + 1)
            - _log_comb(population, draws)
        )
        # Find where to start summing: the first x past the mode whose
        # unimodality bound is negligible; step sizes double to stay O(log).
        start, acc = high + 1, -math.inf
        x = max(low, (draws + 1) * (marked + 1) // (population + 2))
        step = 1
        while x <= high:
            bound = math.log(high - x + 1) + self._log_pmf(x)
            if bound <= budget - _SKIP:
                start, acc = x, bound
                break
            x, step = x + step, step * 2
        self._sums: dict[int, float] = {start: acc}
        x = start - 1
        while x >= low:
            acc = _log_add(acc, self._log_pmf(x))
            if acc > budget:
                break
            self._sums[x] = acc
            x -= 1
        self.safe = x + 1

    def at(self, x: int) -> float:
        """An upper bound on ln P[X >= x]; x must be >= `safe`."""
        if x < self.safe:
            raise ValueError(f"tail bound asked below the safe point {self.safe}")
        if x > self._high:
            return -math.inf
        cached = self._sums.get(x)
        if cached is not None:
            return cached
        # Beyond the summed range: the unimodality bound, as for `start`.
        return math.log(self._high - x + 1) + self._log_pmf(x)

    def _log_pmf(self, x: int) -> float:
        n, m, k = self._population, self._marked, self._draws
        return self._base - (
            math.lgamma(x + 1)
            + math.lgamma(m - x + 1)
            + math.lgamma(k - x + 1)
            + math.lgamma(n - m - k + x + 1)
        )


def log_p_disconnect(n: int, k: int, removed: int) -> float:
    """ln of the union bound (b) in the module docstring; -inf if impossible."""
    if removed < k:
        return -math.inf
    pairs = math.log(n) + math.log(n - k - 1) - LN2
    all_removed = (
        math.lgamma(removed + 1)
        - math.lgamma(removed - k + 1)
        + math.lgamma(n - k + 1)
        - math.lgamma(n + 1)
    )
    return pairs + all_removed


def _log_add(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def log2_sum(a: float, b: float) -> float:
    return _log_add(a * LN2, b * LN2) / LN2
