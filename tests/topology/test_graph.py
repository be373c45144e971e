"""Peer graphs: structure, determinism, uniform placement and argument errors."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.topology import (
    SEED_BYTES,
    PeerGraph,
    check_seed,
    complete_graph,
    harary_graph,
    harary_neighbours,
    ring_order,
)
from tests.topology._stats import chi2_sf, chi_square

SEED = bytes(range(32))
P_MIN = 1e-6  # a correct implementation fails a statistical test this rarely


def seed_of(i: int) -> bytes:
    return hashlib.sha256(b"test seed %d" % i).digest()


def ids(n: int) -> list[str]:
    return [f"peer-{i:03d}" for i in range(n)]


peer_ids = st.lists(st.text(min_size=1, max_size=6), min_size=3, max_size=40, unique=True)
seeds = st.binary(min_size=32, max_size=32)


def check_well_formed(graph: PeerGraph, roster: list[str], k: int) -> None:
    # The builders skip the constructor's checks; the checks must accept them.
    assert PeerGraph(graph.nodes, graph.adjacency) == graph
    assert graph.nodes == tuple(sorted(roster))
    for node in graph.nodes:
        around = graph.neighbours(node)
        assert node not in around
        assert len(around) == k
        for other in around:
            assert node in graph.neighbours(other)
    assert graph.is_regular()
    assert graph.degree == k
    assert graph.is_connected()


def induced_connected(graph: PeerGraph, keep: set[str]) -> bool:
    if not keep:
        return True
    start = next(iter(keep))
    seen, stack = {start}, [start]
    while stack:
        for other in graph.neighbours(stack.pop()) & keep:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen == keep


def draw_k(data: st.DataObject, n: int) -> int:
    """An even degree k in [2, n-1] for n peers."""
    return 2 * data.draw(st.integers(1, (n - 1) // 2), label="k/2")


def hmac_order(roster: list[str], seed: bytes) -> tuple[str, ...]:
    """The ring as its specification gives it: the ids sorted by
    HMAC-SHA256(seed, label || utf8(id)), ties by id."""
    label = b"fedd/topology/harary-ring/v1\x00"
    tags = {p: hmac.new(seed, label + p.encode("utf-8"), hashlib.sha256).digest() for p in roster}
    return tuple(sorted(roster, key=lambda p: (tags[p], p)))


# --- structure ---------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(roster=peer_ids, seed=seeds, data=st.data())
def test_harary_is_regular_symmetric_loop_free_connected(
    roster: list[str], seed: bytes, data: st.DataObject
) -> None:
    k = draw_k(data, len(roster))
    graph = harary_graph(roster, k, seed)
    check_well_formed(graph, roster, k)


@settings(max_examples=40, deadline=None)
@given(roster=peer_ids, seed=seeds, data=st.data())
def test_harary_joins_each_peer_to_its_nearest_on_the_ring(
    roster: list[str], seed: bytes, data: st.DataObject
) -> None:
    n = len(roster)
    k = draw_k(data, n)
    order = ring_order(roster, seed)
    assert sorted(order) == sorted(roster)
    graph = harary_graph(roster, k, seed)
    for i, node in enumerate(order):
        expected = {order[(i + d) % n] for d in range(-(k // 2), k // 2 + 1) if d}
        assert graph.neighbours(node) == expected


def test_harary_is_k_connected() -> None:
    # Harary graphs with even k survive the loss of any k-1 vertices.
    roster = ids(11)
    graph = harary_graph(roster, 4, SEED)
    for removed in itertools.combinations(roster, 3):
        assert induced_connected(graph, set(roster) - set(removed)), removed
    # ... and some set of k vertices does cut it: two opposite pairs on the ring.
    order = ring_order(roster, SEED)
    cut = {order[0], order[1], order[5], order[6]}
    assert not induced_connected(graph, set(roster) - cut)


def test_harary_with_k_n_minus_1_is_the_complete_graph() -> None:
    roster = ids(9)
    assert harary_graph(roster, 8, SEED) == complete_graph(roster)


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_complete_graph(n: int) -> None:
    roster = ids(n)
    graph = complete_graph(reversed(roster))
    check_well_formed(graph, roster, n - 1)
    for node in roster:
        assert graph.neighbours(node) == set(roster) - {node}


def test_ring_order_follows_its_specification() -> None:
    # Every party, in any language, must get this order: sort by
    # HMAC-SHA256(seed, label || utf8(id)), ties by id.
    roster = ["b", "a", "zoë", "日本", "peer 7"]
    assert ring_order(roster, SEED) == hmac_order(roster, SEED)


@settings(max_examples=60, deadline=None)
@given(roster=peer_ids, seed=seeds)
def test_ring_order_is_the_hmac_order_for_any_seed(roster: list[str], seed: bytes) -> None:
    # The ring hashes the key's HMAC pads once: the tags must stay those of hmac.
    assert ring_order(roster, seed) == hmac_order(roster, seed)


# --- determinism ---------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(roster=peer_ids, seed=seeds, data=st.data())
def test_input_order_does_not_matter(roster: list[str], seed: bytes, data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(roster), label="shuffled")
    k = draw_k(data, len(roster))
    assert ring_order(shuffled, seed) == ring_order(roster, seed)
    assert harary_graph(iter(shuffled), k, seed) == harary_graph(roster, k, seed)
    assert complete_graph(shuffled) == complete_graph(roster)


@settings(max_examples=40, deadline=None)
@given(roster=peer_ids, seed=seeds, data=st.data())
def test_one_neighbourhood_is_the_graphs(
    roster: list[str], seed: bytes, data: st.DataObject
) -> None:
    k = draw_k(data, len(roster))
    graph = harary_graph(roster, k, seed)
    for node in roster:
        assert harary_neighbours(reversed(roster), k, seed, node) == graph.neighbours(node)


def test_one_neighbourhood_of_a_stranger_or_a_bad_k_is_refused() -> None:
    with pytest.raises(ValueError, match="'p99' is not a peer"):
        harary_neighbours(ids(10), 4, SEED, "p99")
    with pytest.raises(ValueError, match="k must be even"):
        harary_neighbours(ids(10), 3, SEED, ids(10)[0])


def test_same_inputs_same_graph_and_hash() -> None:
    a = harary_graph(ids(30), 6, SEED)
    b = harary_graph(tuple(ids(30)), 6, bytes(SEED))
    assert a == b
    assert hash(a) == hash(b)


def test_different_seeds_give_different_graphs() -> None:
    # 30 peers on a ring with k = 4: 29!/2 arrangements, so a repeat among
    # 20 seeds would mean the seed is ignored or barely used.
    graphs = [harary_graph(ids(30), 4, seed_of(i)) for i in range(20)]
    assert len({g.adjacency for g in graphs}) == 20
    # One flipped seed bit is enough to change the graph.
    flipped = bytes([SEED[0] ^ 1]) + SEED[1:]
    assert harary_graph(ids(30), 4, flipped) != harary_graph(ids(30), 4, SEED)


# --- uniform placement ---------------------------------------------------------


@pytest.mark.parametrize("which", [0, 8])
def test_position_of_one_id_is_uniform(which: int) -> None:
    # The first and the last id in sorted order: a sort-order bias shows here.
    roster = ids(9)
    trials = 4500
    counts = Counter(ring_order(roster, seed_of(i)).index(roster[which]) for i in range(trials))
    stat, dof = chi_square([counts[p] for p in range(9)], [trials / 9] * 9)
    assert chi2_sf(stat, dof) > P_MIN, (stat, counts)


def test_cyclic_arrangement_of_four_ids_is_uniform() -> None:
    # Beyond the marginals: the cyclic order of four ids among nine takes its
    # 3! = 6 values equally often under a uniform permutation.
    roster = ids(9)
    watched = roster[:2] + roster[-2:]
    trials = 3000
    counts: Counter[tuple[str, ...]] = Counter()
    for i in range(trials):
        order = [p for p in ring_order(roster, seed_of(i)) if p in watched]
        start = order.index(watched[0])
        counts[tuple(order[start:] + order[:start])] += 1
    assert len(counts) == 6
    stat, dof = chi_square(list(counts.values()), [trials / 6] * 6)
    assert chi2_sf(stat, dof) > P_MIN, (stat, counts)


def test_chi2_sf_matches_closed_forms() -> None:
    # The helper above must itself be right for the tests to mean anything.
    for x in (0.5, 3.0, 10.0, 40.0):
        assert math.isclose(chi2_sf(x, 2), math.exp(-x / 2), rel_tol=1e-9)
        assert math.isclose(chi2_sf(x, 4), math.exp(-x / 2) * (1 + x / 2), rel_tol=1e-9)
    assert chi2_sf(0.0, 5) == 1.0


def test_a_biased_order_fails_the_uniformity_test() -> None:
    # The test above can fail: positions drawn with modulo bias (a 4-bit
    # value reduced mod 9 favours 0..6) are rejected.
    trials = 4500
    counts = Counter(seed_of(i)[0] % 16 % 9 for i in range(trials))
    stat, dof = chi_square([counts[p] for p in range(9)], [trials / 9] * 9)
    assert chi2_sf(stat, dof) < P_MIN


# --- the PeerGraph record ------------------------------------------------------------


def path_graph(n: int) -> PeerGraph:
    roster = tuple(ids(n))
    adjacency = tuple(frozenset(roster[j] for j in (i - 1, i + 1) if 0 <= j < n) for i in range(n))
    return PeerGraph(roster, adjacency)


def test_irregular_graph_has_no_degree() -> None:
    graph = path_graph(5)
    assert not graph.is_regular()
    assert graph.is_connected()
    with pytest.raises(ValueError, match="not regular"):
        _ = graph.degree
    assert "irregular" in repr(graph)


def test_disconnected_graph_is_reported() -> None:
    roster = tuple(ids(4))
    a, b, c, d = roster
    graph = PeerGraph(roster, (frozenset({b}), frozenset({a}), frozenset({d}), frozenset({c})))
    assert graph.is_regular()
    assert graph.degree == 1
    assert not graph.is_connected()


def test_graph_is_frozen_and_repr_is_short() -> None:
    graph = harary_graph(ids(500), 10, SEED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph.nodes = ()  # type: ignore[misc]
    assert repr(graph) == "PeerGraph(n=500, degree=10)"


@pytest.mark.parametrize(
    ("nodes", "adjacency", "match"),
    [
        (["a", "b"], (frozenset("b"), frozenset("a")), "tuples"),
        (("a", "b"), [frozenset("b"), frozenset("a")], "tuples"),
        (("b", "a"), (frozenset("a"), frozenset("b")), "sorted"),
        (("a", "a"), (frozenset(), frozenset()), "sorted"),
        (("a",), (frozenset(),), "at least 2"),
        (("a", ""), (frozenset(), frozenset()), "non-empty"),
        (("a", 1), (frozenset(), frozenset()), "must be str"),
        (("a", "b"), (frozenset("b"),), "entries"),
        (("a", "b"), ({"b"}, frozenset("a")), "frozenset"),
        (("a", "b"), (frozenset("ab"), frozenset("a")), "self loop"),
        (("a", "b"), (frozenset("c"), frozenset("a")), "unknown neighbour"),
        (("a", "b"), (frozenset([1]), frozenset("a")), "unknown neighbour"),
        (("a", "b", "c"), (frozenset("b"), frozenset(), frozenset()), "not symmetric"),
    ],
)
def test_peer_graph_rejects_malformed_records(nodes: object, adjacency: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PeerGraph(nodes, adjacency)  # type: ignore[arg-type]


@pytest.mark.parametrize("node", ["nobody", "", 7, None, ("peer-000",), ["peer-000"]])
def test_neighbours_of_unknown_node(node: object) -> None:
    graph = harary_graph(ids(10), 4, SEED)
    with pytest.raises(ValueError, match="not a peer of this graph"):
        graph.neighbours(node)  # type: ignore[arg-type]


# --- argument errors -----------------------------------------------------------------


class StrSub(str):
    __slots__ = ()


@pytest.mark.parametrize(
    ("peers", "match"),
    [
        ("abc", "single string"),
        (b"abc", "single string"),
        (5, "iterable"),
        (None, "iterable"),
        ([], "at least 2"),
        (["solo"], "at least 2"),
        (["a", "b", "a"], "duplicate peer id 'a'"),
        (["a", ""], "non-empty"),
        (["a", 2], "must be str"),
        (["a", b"b"], "must be str"),
        (["a", None], "must be str"),
        (["a", StrSub("b")], "must be str"),
        (["a", "\ud800"], "not valid Unicode"),
    ],
)
def test_bad_peers(peers: object, match: str) -> None:
    for build in (
        lambda: complete_graph(peers),  # type: ignore[arg-type]
        lambda: harary_graph(peers, 2, SEED),  # type: ignore[arg-type]
        lambda: ring_order(peers, SEED),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match=match):
            build()


def test_duplicate_message_is_short_for_long_ids() -> None:
    long_id = "x" * 10_000
    with pytest.raises(ValueError, match="duplicate") as info:
        complete_graph([long_id, "a", long_id])
    assert len(str(info.value)) < 100


@pytest.mark.parametrize(
    ("n", "k"),
    [(5, 0), (5, -2), (5, 1), (5, 3), (5, 6), (6, 5), (6, 6), (2, 2), (2, 1), (10, 100)],
)
def test_bad_degree(n: int, k: int) -> None:
    with pytest.raises(ValueError, match=r"k must be even and in \[2,"):
        harary_graph(ids(n), k, SEED)


@pytest.mark.parametrize("k", [True, 2.0, "2", None])
def test_degree_must_be_an_int(k: object) -> None:
    with pytest.raises(ValueError, match="k must be an int"):
        harary_graph(ids(5), k, SEED)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seed", "match"),
    [
        (bytes(31), "exactly 32 bytes, got 31"),
        (bytes(33), "exactly 32 bytes, got 33"),
        (b"", "exactly 32 bytes, got 0"),
        (bytearray(32), "must be bytes"),
        (memoryview(bytes(32)), "must be bytes"),
        ("0" * 32, "must be bytes"),
        (None, "must be bytes"),
    ],
)
def test_bad_seed(seed: object, match: str) -> None:
    assert SEED_BYTES == 32
    with pytest.raises(ValueError, match=match):
        harary_graph(ids(5), 2, seed)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        ring_order(ids(5), seed)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        check_seed(seed)  # type: ignore[arg-type]
