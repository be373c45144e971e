"""Split and partitions: every row exactly once, stratification, skew."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.learner.partition import (
    apportion,
    by_class,
    dirichlet,
    holdout_count,
    partition,
    stratified_split,
)

FAST = settings(max_examples=60, deadline=None)

labels_strategy = st.lists(st.integers(0, 1), min_size=4, max_size=300).filter(
    lambda ys: min(ys.count(0), ys.count(1)) >= 2
)


@FAST
@given(labels_strategy, st.floats(0.01, 0.99), st.integers(0, 10**6))
def test_split_keeps_every_row_once_and_stratifies(
    labels: list[int], test_size: float, seed: int
) -> None:
    train, test = stratified_split(labels, test_size, random.Random(seed))
    assert sorted(train + test) == list(range(len(labels)))
    assert train == sorted(train)
    assert test == sorted(test)
    for cls in (0, 1):
        n = labels.count(cls)
        in_test = sum(1 for i in test if labels[i] == cls)
        assert in_test == holdout_count(n, test_size)
        assert 1 <= in_test <= n - 1


@FAST
@given(
    labels_strategy,
    st.integers(1, 6),
    st.sampled_from(["iid", "dirichlet", "quantity"]),
    st.floats(0.05, 50.0),
    st.integers(0, 10**6),
)
def test_partition_keeps_every_row_exactly_once(
    labels: list[int], peers: int, scheme: str, alpha: float, seed: int
) -> None:
    indices = list(range(0, len(labels), 2))  # any subset of rows
    shards = partition(labels, indices, peers, scheme, random.Random(seed), alpha=alpha)  # type: ignore[arg-type]
    assert len(shards) == peers
    assert sorted(i for shard in shards for i in shard) == indices
    assert all(shard == sorted(shard) for shard in shards)


def test_iid_deals_each_class_evenly() -> None:
    labels = [1] * 10 + [0] * 90
    shards = partition(labels, range(100), 3, "iid", random.Random(1))
    sizes = sorted(len(s) for s in shards)
    positives = sorted(sum(labels[i] for i in s) for s in shards)
    assert sizes == [33, 33, 34]
    assert positives == [3, 3, 4]


def test_dirichlet_skews_labels_and_quantity_skews_sizes() -> None:
    labels = [1] * 1000 + [0] * 1000
    label_skew = partition(labels, range(2000), 4, "dirichlet", random.Random(3), alpha=0.1)
    rates = [sum(labels[i] for i in s) / len(s) for s in label_skew if s]
    assert max(rates) - min(rates) > 0.3
    size_skew = partition(labels, range(2000), 4, "quantity", random.Random(3), alpha=0.3)
    sizes = [len(s) for s in size_skew]
    assert max(sizes) > 3 * min(sizes) + 1
    for shard in size_skew:  # labels stay stratified: about half positives each
        if len(shard) >= 50:
            assert sum(labels[i] for i in shard) / len(shard) == pytest.approx(0.5, abs=0.05)
    large_alpha = partition(labels, range(2000), 4, "dirichlet", random.Random(3), alpha=1000.0)
    assert all(abs(len(s) - 500) < 60 for s in large_alpha)


def test_same_seed_same_partition() -> None:
    labels = [i % 3 == 0 for i in range(300)]
    ys = [int(v) for v in labels]
    for scheme in ("iid", "dirichlet", "quantity"):
        a = partition(ys, range(300), 3, scheme, random.Random(5))  # type: ignore[arg-type]
        b = partition(ys, range(300), 3, scheme, random.Random(5))  # type: ignore[arg-type]
        assert a == b


@FAST
@given(st.integers(0, 10_000), st.lists(st.floats(0.001, 100.0), min_size=1, max_size=10))
def test_apportion_adds_up_and_stays_within_one_of_the_quota(n: int, shares: list[float]) -> None:
    counts = apportion(n, shares)
    assert sum(counts) == n
    total = sum(shares)
    assert all(abs(c - n * s / total) < 1.0 + 1e-9 for c, s in zip(counts, shares, strict=True))


def test_dirichlet_is_a_distribution_even_when_alpha_underflows() -> None:
    for alpha in (0.5, 1e-300):
        draw = dirichlet(5, alpha, random.Random(1))
        assert len(draw) == 5
        assert sum(draw) == pytest.approx(1.0)
        assert all(p >= 0.0 for p in draw)


def test_helpers_and_bad_arguments() -> None:
    assert by_class([0, 1, 1, 0], [0, 1, 2, 3]) == ([0, 3], [1, 2])
    assert holdout_count(10, 0.2) == 2
    assert holdout_count(2, 0.01) == 1
    assert holdout_count(2, 0.99) == 1
    with pytest.raises(ValueError, match="at least 2"):
        holdout_count(1, 0.5)
    with pytest.raises(ValueError, match="test_size"):
        stratified_split([0, 0, 1, 1], 1.0, random.Random(0))
    with pytest.raises(ValueError, match="peers"):
        partition([0, 1], [0, 1], 0, "iid", random.Random(0))
    with pytest.raises(ValueError, match="scheme"):
        partition([0, 1], [0, 1], 1, "random", random.Random(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        partition([0, 1], [0, 1], 1, "dirichlet", random.Random(0), alpha=0.0)
    with pytest.raises(ValueError, match="shares"):
        apportion(3, [0.0, 0.0])
