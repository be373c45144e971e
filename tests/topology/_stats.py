"""Chi-square goodness of fit for the statistical tests (no scipy in fedd)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["chi2_sf", "chi_square"]


def chi_square(observed: Sequence[int], expected: Sequence[float]) -> tuple[float, int]:
    """Pearson's statistic and its degrees of freedom (cells - 1)."""
    if len(observed) != len(expected) or len(observed) < 2:
        raise ValueError("need two or more matching cells")
    stat = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return stat, len(observed) - 1


def chi2_sf(stat: float, dof: int) -> float:
    """P[chi-square(dof) >= stat]: the upper regularized gamma Q(dof/2, stat/2)."""
    s, x = dof / 2, stat / 2
    if x <= 0:
        return 1.0
    log_front = s * math.log(x) - x - math.lgamma(s)
    if x < s + 1:
        # Series for the lower function P(s, x); Q = 1 - P.
        term = total = 1 / s
        a = s
        while term > total * 1e-16:
            a += 1
            term *= x / a
            total += term
        return max(0.0, 1.0 - math.exp(log_front) * total)
    # Continued fraction for Q(s, x) (modified Lentz).
    tiny = 1e-300
    b = x + 1 - s
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_front) * h
