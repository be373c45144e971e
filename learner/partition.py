"""Stratified train/test split and the three ways of cutting shards for peers.

All functions work on row indices and labels only, draw from the `random.Random`
they are given, and return lists of indices: together the outputs hold every
input index exactly once.

Schemes (`partition`):
- `iid`: per class, a seeded shuffle dealt round-robin over the peers (the
  deal continues from class to class, so shard sizes differ by at most one).
- `dirichlet`: label skew. Per class, proportions over peers drawn from
  Dirichlet(alpha); small alpha gives peers very different fraud rates.
- `quantity`: size skew. One Dirichlet(alpha) draw sets the peers' shares of
  the rows; each class is cut by those shares, so labels stay stratified.

Proportions become counts by the largest-remainder rule (ties to the lower
peer), so counts always add up exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "PARTITIONS",
    "PartitionScheme",
    "apportion",
    "by_class",
    "dirichlet",
    "holdout_count",
    "partition",
    "stratified_split",
]

PartitionScheme = Literal["iid", "dirichlet", "quantity"]
PARTITIONS: tuple[PartitionScheme, ...] = ("iid", "dirichlet", "quantity")


def by_class(labels: Sequence[int], indices: Sequence[int]) -> tuple[list[int], list[int]]:
    """Split `indices` into those whose label is 0 and those whose label is 1."""
    negatives = [i for i in indices if not labels[i]]
    positives = [i for i in indices if labels[i]]
    return negatives, positives


def holdout_count(n: int, test_size: float) -> int:
    """How many of `n` rows of one class go to the test set.

    `round(n * test_size)`, kept within [1, n - 1] so that both sides get at
    least one row of the class; requires `n >= 2`.
    """
    if n < 2:
        raise ValueError("a class needs at least 2 rows to appear on both sides of a split")
    return min(max(round(n * test_size), 1), n - 1)


def stratified_split(
    labels: Sequence[int], test_size: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """Return `(train, test)` index lists, each sorted, split per class.

    Each class contributes `holdout_count(n_class, test_size)` rows to the test
    set, chosen by a shuffle. Raises `ValueError` if a class has fewer than
    2 rows or `test_size` is not in (0, 1).
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError("test_size must be in (0, 1)")
    train: list[int] = []
    test: list[int] = []
    for members in by_class(labels, range(len(labels))):
        k = holdout_count(len(members), test_size)
        rng.shuffle(members)
        test.extend(members[:k])
        train.extend(members[k:])
    train.sort()
    test.sort()
    return train, test


def dirichlet(k: int, alpha: float, rng: random.Random) -> list[float]:
    """One draw from the symmetric Dirichlet(alpha) distribution over `k` parts."""
    if k < 1 or not (math.isfinite(alpha) and alpha > 0.0):
        raise ValueError("need k >= 1 and a finite alpha > 0")
    draws = [rng.gammavariate(alpha, 1.0) for _ in range(k)]
    total = sum(draws)
    if total == 0.0:  # every draw underflowed (alpha tiny): all mass on one part
        draws[rng.randrange(k)] = total = 1.0
    return [d / total for d in draws]


def apportion(n: int, shares: Sequence[float]) -> list[int]:
    """Split `n` into integer counts proportional to `shares` (largest remainder)."""
    total = math.fsum(shares)
    if n < 0 or not shares or total <= 0.0:
        raise ValueError("need n >= 0 and positive shares")
    quotas = [n * s / total for s in shares]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - quotas[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def partition(
    labels: Sequence[int],
    indices: Sequence[int],
    peers: int,
    scheme: PartitionScheme,
    rng: random.Random,
    *,
    alpha: float = 0.5,
) -> list[list[int]]:
    """Cut `indices` into `peers` shards (each sorted) by `scheme`.

    Every index lands in exactly one shard. A shard may miss a class (the
    caller decides whether that is acceptable). Raises `ValueError` for an
    unknown scheme, `peers` < 1, or a non-positive `alpha`.
    """
    if peers < 1:
        raise ValueError("peers must be >= 1")
    if scheme not in PARTITIONS:
        raise ValueError(f"scheme must be one of {PARTITIONS}")
    if not (math.isfinite(alpha) and alpha > 0.0):
        raise ValueError("alpha must be a finite number > 0")
    shards: list[list[int]] = [[] for _ in range(peers)]
    classes = by_class(labels, indices)
    if scheme == "iid":
        dealt = 0
        for members in reversed(classes):  # the rare class first
            rng.shuffle(members)
            for offset, i in enumerate(members, dealt):
                shards[offset % peers].append(i)
            dealt += len(members)
    else:
        sizes = dirichlet(peers, alpha, rng) if scheme == "quantity" else None
        for members in classes:
            shares = sizes if sizes is not None else dirichlet(peers, alpha, rng)
            rng.shuffle(members)
            start = 0
            for shard, count in zip(shards, apportion(len(members), shares), strict=True):
                shard.extend(members[start : start + count])
                start += count
    for shard in shards:
        shard.sort()
    return shards
