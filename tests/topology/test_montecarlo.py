"""Monte-Carlo check of choose_parameters on real Harary graphs.

Threat model of `topology.params`: the corrupt and the dropped peers are fixed
before the round seed is known; only the seed varies. For each seed we build
the graph and count the three failures the parameters are chosen against:
  - leak: some peer has t or more corrupt neighbours;
  - cut: the honest survivors do not form a connected graph;
  - loss: some peer has fewer than t surviving neighbours.
At 40/20 bits no failure would ever be seen, so the parameters are chosen at
10 security and 6 correctness bits, where the bounds are 2^-11 and 2^-6.9
per round and the observed rates can exceed them if the rule is wrong.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from fedd.topology import PeerGraph, choose_parameters, harary_graph
from tests.topology._stats import chi2_sf, chi_square

N = 150
CORRUPT = DROPOUT = 0.1
SECURITY_BITS, CORRECTNESS_BITS = 10, 6
TRIALS = 1000
P_MIN = 1e-6


@dataclass
class Tally:
    leak: int = 0
    cut: int = 0
    loss: int = 0


@dataclass(frozen=True)
class World:
    peers: list[str]
    corrupt: frozenset[str]
    dropped: frozenset[str]
    watched: str  # an honest survivor whose neighbourhood we histogram


def make_world(corrupt_count: int, dropout_count: int) -> World:
    peers = [f"peer-{i:03d}" for i in range(N)]
    rng = random.Random(20240611)
    chosen = rng.sample(peers[1:], corrupt_count + dropout_count)
    return World(
        peers=peers,
        corrupt=frozenset(chosen[:corrupt_count]),
        dropped=frozenset(chosen[corrupt_count:]),
        watched=peers[0],
    )


def seed_of(i: int) -> bytes:
    return hashlib.sha256(b"monte carlo %d" % i).digest()


def connected(graph: PeerGraph, keep: frozenset[str]) -> bool:
    start = next(iter(keep))
    seen, stack = {start}, [start]
    while stack:
        for other in graph.neighbours(stack.pop()) & keep:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return len(seen) == len(keep)


def run(world: World, k: int, t: int, trials: int) -> tuple[Tally, Counter[int], Counter[int]]:
    tally = Tally()
    corrupt_seen: Counter[int] = Counter()
    dropped_seen: Counter[int] = Counter()
    honest_survivors = frozenset(world.peers) - world.corrupt - world.dropped
    for i in range(trials):
        graph = harary_graph(world.peers, k, seed_of(i))
        corrupt_counts = [len(graph.neighbours(p) & world.corrupt) for p in world.peers]
        dropped_counts = [len(graph.neighbours(p) & world.dropped) for p in world.peers]
        tally.leak += max(corrupt_counts) >= t
        tally.loss += k - max(dropped_counts) < t
        tally.cut += not connected(graph, honest_survivors)
        around = graph.neighbours(world.watched)
        corrupt_seen[len(around & world.corrupt)] += 1
        dropped_seen[len(around & world.dropped)] += 1
    return tally, corrupt_seen, dropped_seen


def hypergeometric_pmf(population: int, marked: int, draws: int) -> list[float]:
    total = math.comb(population, draws)
    return [
        math.comb(marked, x) * math.comb(population - marked, draws - x) / total
        for x in range(draws + 1)
    ]


def fit(observed: Counter[int], pmf: list[float], trials: int) -> float:
    """Chi-square p-value, pooling the upper tail until each cell expects >= 5."""
    cells_o: list[int] = []
    cells_e: list[float] = []
    acc_o, acc_e = 0, 0.0
    for x, p in enumerate(pmf):
        acc_o += observed[x]
        acc_e += p * trials
        if acc_e >= 5 and sum(pmf[x + 1 :]) * trials >= 5:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o, acc_e = 0, 0.0
    cells_o.append(acc_o)
    cells_e.append(acc_e)
    stat, dof = chi_square(cells_o, cells_e)
    return chi2_sf(stat, dof)


def allowed(log2_bound: float, trials: int) -> int:
    """Failures tolerated: the count a Poisson law with the mean allowed by the
    bound exceeds with probability below 1e-3."""
    mean = 2.0**log2_bound * trials
    term = cdf = math.exp(-mean)
    count = 0
    while 1 - cdf > 1e-3:
        count += 1
        term *= mean / count
        cdf += term
    return count


@pytest.fixture(scope="module")
def chosen() -> tuple[World, int, int, float, float]:
    params = choose_parameters(
        N,
        corrupt=CORRUPT,
        dropout=DROPOUT,
        security_bits=SECURITY_BITS,
        correctness_bits=CORRECTNESS_BITS,
    )
    assert not params.complete
    world = make_world(params.max_corrupt, params.max_dropouts)
    return world, params.k, params.t, params.log2_p_insecure, params.log2_p_incorrect


def test_chosen_parameters_meet_their_bounds_on_real_graphs(
    chosen: tuple[World, int, int, float, float],
) -> None:
    world, k, t, log2_insecure, log2_incorrect = chosen
    tally, corrupt_seen, dropped_seen = run(world, k, t, TRIALS)
    assert log2_insecure <= -SECURITY_BITS
    assert log2_incorrect <= -CORRECTNESS_BITS
    assert tally.leak + tally.cut <= allowed(log2_insecure, TRIALS), tally
    assert tally.loss <= allowed(log2_incorrect, TRIALS), tally
    # The bounds rest on each neighbourhood being a uniform k-subset of the
    # other peers: check that on the graphs actually built.
    pop = N - 1
    assert fit(corrupt_seen, hypergeometric_pmf(pop, len(world.corrupt), k), TRIALS) > P_MIN
    assert fit(dropped_seen, hypergeometric_pmf(pop, len(world.dropped), k), TRIALS) > P_MIN


def test_the_failure_counters_do_detect_failures(
    chosen: tuple[World, int, int, float, float],
) -> None:
    # The counters above can fail: parameters that are plainly too weak show
    # each kind of failure in most rounds.
    world, k, t, _, _ = chosen
    trials = 100
    too_low, _, _ = run(world, k, 3, trials)  # 3 of k corrupt neighbours is common
    assert too_low.leak > trials // 2, too_low
    too_high, _, _ = run(world, k, k, trials)  # every neighbour must survive
    assert too_high.loss > trials // 2, too_high
    # One above the chosen t already breaks the correctness budget.
    one_more, _, _ = run(world, k, t + 1, TRIALS)
    assert one_more.loss > allowed(-CORRECTNESS_BITS, TRIALS), one_more
    ring, _, _ = run(world, 2, 1, trials)  # two removed peers cut a ring
    assert ring.cut > trials // 2, ring


def test_a_skewed_neighbourhood_fails_the_fit() -> None:
    # The distribution check can fail: counts from the wrong population
    # (a third of peers corrupt instead of a tenth) are rejected.
    rng = random.Random(7)
    pop, k = N - 1, 14
    peers = list(range(pop))
    observed = Counter(sum(1 for p in rng.sample(peers, k) if p < pop // 3) for _ in range(TRIALS))
    assert fit(observed, hypergeometric_pmf(pop, 15, k), TRIALS) < P_MIN
