"""Peer graphs: who shares secrets with and masks against whom in one round.

Theory of operation
-------------------
SecAgg (Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving
Machine Learning", CCS 2017) has every peer Shamir-share its secrets (`s_sk_u`,
`b_u`) with, and agree a pairwise mask with, every other peer: the complete
graph, built by `complete_graph`.

SecAgg+ (Bell, Bonawitz, Gascón, Lepoint, Raykova, "Secure Single-Server
Aggregation with (Poly)Logarithmic Overhead", CCS 2020) replaces it with a
random k-regular graph, k = O(log n): a Harary graph whose vertices are placed
on a cycle in a uniformly random order, each joined to the k/2 nearest on
either side. Its security argument needs the placement to be uniform and
independent of which peers are corrupt or drop out, and every party must
derive the very same graph from the round's public inputs. `harary_graph` does
this as follows:

1. The peer ids are sorted by Unicode code point (equal to UTF-8 byte order),
   so the input order of `peers` cannot matter.
2. Each id gets the key HMAC-SHA256(seed, LABEL || utf8(id)) with the 32-byte
   round seed as the HMAC key and a fixed domain-separation LABEL. With
   HMAC-SHA256 modelled as a pseudo-random function, the keys are independent
   uniform 256-bit strings, so sorting the ids by key (ties, which occur with
   probability below n^2 / 2^257, broken by the id) is a uniformly random
   permutation. No modular reduction is involved, hence no modulo bias, and
   no state beyond the seed: the `random` module is never used.
3. The ids are placed on a cycle in that order (`ring_order`) and each is
   joined to the k/2 ids before and the k/2 ids after it.

The seed must be unpredictable to, and not choosable by, whoever could pick
the corrupt peers: a party that can try seeds could place its colluders around
a victim. Deriving it is the protocol layer's job (for example from all key
advertisements once they are fixed); this module only consumes it.

Rules for arguments
-------------------
Peer ids are distinct, non-empty `str` (exactly `str`: the protocol layer's
`PeerId` NewType is `str` at run time) that encode as UTF-8; at least two.
`k` is an even `int` with 2 <= k <= n-1. When k = n-1 is even (n odd) the
Harary graph is the complete graph; an odd k is always refused, so callers use
`complete_graph` whenever their k would be n-1 (as `GraphParams.graph_for`
does). Every bad argument, including one of the wrong type, raises
`ValueError`, so callers map a single exception class to a user-facing error.

Cost: building is O(n log n + n*k) time and keeps one frozenset of k ids per
peer (O(n*k) memory; O(n^2) for the complete graph), so `neighbours()` is a
dictionary look-up. A peer, which needs only its own neighbourhood, gets it
from `harary_neighbours` in O(n log n + k): the ring, and one window of it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "SEED_BYTES",
    "PeerGraph",
    "check_seed",
    "complete_graph",
    "harary_graph",
    "harary_neighbours",
    "ring_order",
]

SEED_BYTES = 32
"""Length of the round seed that drives the Harary placement."""

# Domain separation from any other use of the round seed as an HMAC key by
# the protocol layer; the NUL keeps this label from being a prefix of another.
_RING_LABEL = b"fedd/topology/harary-ring/v1\x00"

_SHOW_MAX = 40

# HMAC's block size for SHA-256 and its pads, as byte translations.
_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))

# Peer ids: `str`, or a NewType of it (the protocol's PeerId); graphs hand
# back the type they were given.
N = TypeVar("N", bound=str)


def _show(node: object) -> str:
    """A short printable form of an id for error messages (ids may be long)."""
    text = repr(node)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


@dataclass(frozen=True, slots=True, repr=False)
class PeerGraph(Generic[N]):
    """An undirected simple graph on peer ids, immutable once built.

    `nodes` is sorted and unique; `adjacency[i]` is the neighbourhood of
    `nodes[i]`. The constructor checks both (at least two nodes, no self
    loops, no unknown ids, symmetric) and raises `ValueError` otherwise, so a
    `PeerGraph` in hand is always well formed. It need not be regular: use
    `is_regular()` before relying on `degree`. Usually built by
    `complete_graph` or `harary_graph`. Two graphs are equal when they have
    the same nodes and edges.
    """

    nodes: tuple[N, ...]
    adjacency: tuple[frozenset[N], ...]
    _index: dict[N, int] = field(init=False, compare=False, hash=False)
    _degree: int = field(init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        nodes, adjacency = self.nodes, self.adjacency
        if type(nodes) is not tuple or type(adjacency) is not tuple:
            raise ValueError("nodes and adjacency must be tuples")
        _check_ids(nodes)
        if any(a >= b for a, b in itertools.pairwise(nodes)):
            raise ValueError("nodes must be sorted and unique")
        if len(adjacency) != len(nodes):
            raise ValueError(f"adjacency has {len(adjacency)} entries for {len(nodes)} nodes")
        known = frozenset(nodes)
        by_name = dict(zip(nodes, adjacency, strict=True))
        for node, around in by_name.items():
            if type(around) is not frozenset:
                raise ValueError(f"neighbours of {_show(node)} must be a frozenset")
            if node in around:
                raise ValueError(f"self loop at {_show(node)}")
            if not around <= known:
                other = next(iter(around - known))
                raise ValueError(f"{_show(node)} has unknown neighbour {_show(other)}")
            for other in around:
                if node not in by_name[other]:
                    raise ValueError(f"edge {_show(node)} - {_show(other)} is not symmetric")
        self._finish()

    @classmethod
    def _well_formed(
        cls, nodes: tuple[N, ...], adjacency: tuple[frozenset[N], ...]
    ) -> PeerGraph[N]:
        """Skip the O(n*k) checks for this module's builders, whose output is
        well formed by construction (the tests pass it through the checks)."""
        graph = object.__new__(cls)
        object.__setattr__(graph, "nodes", nodes)
        object.__setattr__(graph, "adjacency", adjacency)
        graph._finish()
        return graph

    def _finish(self) -> None:
        object.__setattr__(self, "_index", {node: i for i, node in enumerate(self.nodes)})
        degrees = {len(around) for around in self.adjacency}
        # -1 marks an irregular graph; `degree` refuses to answer for it.
        object.__setattr__(self, "_degree", degrees.pop() if len(degrees) == 1 else -1)

    def __repr__(self) -> str:
        shape = f"degree={self._degree}" if self._degree >= 0 else "irregular"
        return f"PeerGraph(n={len(self.nodes)}, {shape})"

    def neighbours(self, node: N) -> frozenset[N]:
        """The peers `node` shares with and masks against; never `node` itself.

        O(1). Raises `ValueError` if `node` is not a node of this graph.
        """
        i = self._index.get(node) if type(node) is str else None
        if i is None:
            raise ValueError(f"{_show(node)} is not a peer of this graph")
        return self.adjacency[i]

    @property
    def degree(self) -> int:
        """The common degree. Raises `ValueError` if the graph is not regular."""
        if self._degree < 0:
            raise ValueError("graph is not regular: it has no common degree")
        return self._degree

    def is_regular(self) -> bool:
        """Whether every node has the same number of neighbours."""
        return self._degree >= 0

    def is_connected(self) -> bool:
        """Whether every node is reachable from every other (O(n*k) search)."""
        seen = {self.nodes[0]}
        stack = [self.nodes[0]]
        while stack:
            for other in self.adjacency[self._index[stack.pop()]]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        return len(seen) == len(self.nodes)


def complete_graph(peers: Iterable[N]) -> PeerGraph[N]:
    """The SecAgg graph: every peer is a neighbour of every other.

    Raises `ValueError` for bad `peers` (see the module docstring).
    """
    nodes = _sorted_peers(peers)
    everyone = frozenset(nodes)
    return PeerGraph._well_formed(nodes, tuple(everyone - {node} for node in nodes))


def ring_order(peers: Iterable[N], seed: bytes) -> tuple[N, ...]:
    """The cyclic order of the Harary placement: a permutation of `peers`.

    Uniformly random over the choice of `seed` (HMAC-SHA256 as a PRF; see the
    module docstring), identical for every party given the same ids and seed,
    whatever order `peers` comes in. Raises `ValueError` for bad `peers` or a
    `seed` that is not exactly 32 bytes.
    """
    nodes = _sorted_peers(peers)
    check_seed(seed)
    return _ring(nodes, seed)


def harary_graph(peers: Iterable[N], k: int, seed: bytes) -> PeerGraph[N]:
    """The SecAgg+ graph: a k-regular Harary graph on a seeded random cycle.

    Each peer is joined to the k/2 peers before and after it in
    `ring_order(peers, seed)`. The result is k-regular and k-connected.
    Raises `ValueError` for bad `peers`, a `seed` that is not exactly 32
    bytes, or a `k` that is not an even `int` in [2, n-1] (use
    `complete_graph` when k would be n-1 and n-1 is odd).
    """
    nodes, padded, half = _padded_ring(peers, k, seed)
    around = {padded[i + half]: _window(padded, i, half) for i in range(len(nodes))}
    return PeerGraph._well_formed(nodes, tuple(around[node] for node in nodes))


def harary_neighbours(peers: Iterable[N], k: int, seed: bytes, node: N) -> frozenset[N]:
    """`harary_graph(peers, k, seed).neighbours(node)`, without the other peers'
    neighbourhoods: all that a peer needs of its round's graph.

    Raises `ValueError` as `harary_graph` does, and if `node` is not one of `peers`.
    """
    nodes, padded, half = _padded_ring(peers, k, seed)
    try:
        i = padded.index(node, half, half + len(nodes))
    except ValueError:
        raise ValueError(f"{_show(node)} is not a peer of this graph") from None
    return _window(padded, i - half, half)


def _padded_ring(
    peers: Iterable[N], k: int, seed: bytes
) -> tuple[tuple[N, ...], tuple[N, ...], int]:
    """The sorted peers, the ring order padded by k/2 on both sides (so that each
    window is a plain slice), and k/2; raises as `harary_graph`."""
    nodes = _sorted_peers(peers)
    check_seed(seed)
    n = len(nodes)
    if type(k) is not int:
        raise ValueError(f"k must be an int, not {type(k).__name__}")
    if k % 2 or not 2 <= k <= n - 1:
        raise ValueError(
            f"k must be even and in [2, {n - 1}] for {n} peers, got {k}"
            " (use complete_graph for k = n-1)"
        )
    order = _ring(nodes, seed)
    half = k // 2
    return nodes, order[-half:] + order + order[:half], half


def _window(padded: tuple[N, ...], i: int, half: int) -> frozenset[N]:
    """The neighbours of the i-th peer of the ring: `half` on each side."""
    return frozenset(padded[i : i + half] + padded[i + half + 1 : i + 2 * half + 1])


def check_seed(seed: bytes) -> None:
    """Raise `ValueError` unless `seed` is `bytes` of exactly `SEED_BYTES`."""
    if type(seed) is not bytes:
        raise ValueError(f"seed must be bytes, not {type(seed).__name__}")
    if len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be exactly {SEED_BYTES} bytes, got {len(seed)}")


def _ring(nodes: tuple[N, ...], seed: bytes) -> tuple[N, ...]:
    # HMAC-SHA256(seed, LABEL || id) (RFC 2104), the key's inner and outer
    # states hashed once for all ids: the very bytes of hmac.digest, at a
    # third of its cost per id. Every peer orders the whole ring each round.
    key = seed.ljust(_BLOCK, b"\0")  # check_seed: 32 bytes, within one block
    inner = hashlib.sha256(key.translate(_IPAD))
    inner.update(_RING_LABEL)
    outer = hashlib.sha256(key.translate(_OPAD))

    def place(node: N) -> tuple[bytes, str]:
        mac = inner.copy()
        mac.update(node.encode("utf-8"))
        done = outer.copy()
        done.update(mac.digest())
        return done.digest(), node

    return tuple(sorted(nodes, key=place))


def _sorted_peers(peers: Iterable[N]) -> tuple[N, ...]:
    """Validate the peer ids and return them sorted by code point."""
    if isinstance(peers, str | bytes | bytearray):
        # A lone string is iterable too; its characters are not a roster.
        raise ValueError("peers must be a collection of ids, not a single string")
    try:
        items = list(peers)
    except TypeError:
        raise ValueError(f"peers must be iterable, not {type(peers).__name__}") from None
    _check_ids(items)
    nodes = tuple(sorted(items))
    for a, b in itertools.pairwise(nodes):
        if a == b:
            raise ValueError(f"duplicate peer id {_show(a)}")
    return nodes


def _check_ids(items: Iterable[object]) -> None:
    count = 0
    for item in items:
        if type(item) is not str:
            raise ValueError(f"peer ids must be str, not {type(item).__name__}")
        if not item:
            raise ValueError("peer ids must be non-empty")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"peer id {_show(item)} is not valid Unicode text") from None
        count += 1
    if count < 2:
        raise ValueError(f"a peer graph needs at least 2 peers, got {count}")
