"""The public parameters of one secure aggregation round.

Every party of a round holds the same `RoundParams`: the hub chooses them
and announces them with the round; peers validate them like any other
message. From them each party derives, without talking to anyone, the peer
graph (who shares with and masks against whom) and each peer's Shamir
x-coordinate (its 1-based position in the sorted participant list).

Glossary (Bonawitz et al. 2017; Bell et al. 2020):
    n   number of participants chosen for the round
    k   graph degree: n-1 for SecAgg (complete graph), O(log n) for SecAgg+
    t   Shamir threshold: shares are held by a peer's k neighbours and the
        peer itself; any t of them reconstruct, t-1 learn nothing
    R   the modulus 2**mod_bits of the masked vectors
"""

from __future__ import annotations

import enum
import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.prg import PrgKind
from fedd.crypto.secagg.fields import (
    MAX_ROUND,
    PeerId,
    check_peer_ids,
    check_run_id,
    get_bytes,
    get_int,
    get_list,
    get_str,
)
from fedd.topology.graph import PeerGraph, complete_graph, harary_graph, harary_neighbours

__all__ = ["MAX_DIM", "MAX_PEERS", "SEED_SIZE", "Mode", "RoundParams"]

MAX_PEERS = 10_000
MAX_DIM = 2**22
SEED_SIZE = 32
MOD_BITS = (32, 64)


class Mode(enum.Enum):
    """Which graph a round uses: SecAgg's complete graph or SecAgg+'s sparse one."""

    FULL = "full"
    PLUS = "plus"


@dataclass(frozen=True, slots=True)
class RoundParams:
    """Everything public about one round. Validated on construction.

    Raises LocalProtocolError on any inconsistency; `from_body` callers turn
    that into MalformedMessage.
    """

    run: str
    round: int
    mode: Mode
    participants: tuple[PeerId, ...]
    k: int
    t: int
    min_survivors: int
    graph_seed: bytes
    dim: int
    mod_bits: int = 32
    prg: PrgKind = PrgKind.AES_CTR
    # Active-adversary variant (Bonawitz et al. 2017, section 6.3): signed
    # advertisements and a consistency check, sound while at most max_corrupt
    # participants collude with the hub.
    active: bool = False
    max_corrupt: int = 0

    def __post_init__(self) -> None:
        check_run_id(self.run)
        if type(self.round) is not int or not 0 <= self.round <= MAX_ROUND:
            raise LocalProtocolError(f"round must be an integer in [0, {MAX_ROUND}]")
        if type(self.mode) is not Mode or type(self.prg) is not PrgKind:
            raise LocalProtocolError("mode and prg must be enum members")
        if type(self.participants) is not tuple:
            raise LocalProtocolError("participants must be a tuple")
        n = _check_participants(self.participants)
        for name in ("k", "t", "min_survivors", "dim", "mod_bits"):
            if type(getattr(self, name)) is not int:
                raise LocalProtocolError(f"{name} must be an integer")
        if self.mode is Mode.FULL and self.k != n - 1:
            raise LocalProtocolError(f"SecAgg uses the complete graph: k must be n-1 = {n - 1}")
        if self.mode is Mode.PLUS and not (
            self.k == n - 1 or (2 <= self.k < n - 1 and self.k % 2 == 0)
        ):
            raise LocalProtocolError(
                f"SecAgg+ needs k = n-1 or an even degree k in [2, n-1), got k={self.k}, n={n}"
            )
        if not 2 <= self.t <= self.k + 1:
            raise LocalProtocolError(
                f"threshold t must be in [2, k+1] = [2, {self.k + 1}], got {self.t}"
            )
        if not self.t <= self.min_survivors <= n:
            raise LocalProtocolError(
                f"min_survivors must be in [t, n] = [{self.t}, {n}], got {self.min_survivors}"
            )
        self._check_active(n)
        if type(self.graph_seed) is not bytes or len(self.graph_seed) != SEED_SIZE:
            raise LocalProtocolError(f"graph_seed must be {SEED_SIZE} bytes")
        if not 1 <= self.dim <= MAX_DIM:
            raise LocalProtocolError(f"dim must be in [1, {MAX_DIM}], got {self.dim}")
        if self.mod_bits not in MOD_BITS:
            raise LocalProtocolError(f"mod_bits must be one of {MOD_BITS}, got {self.mod_bits}")

    def _check_active(self, n: int) -> None:
        """With an active hub, t > (n + max_corrupt)/2 (Bonawitz et al. 2017, Theorem 6.5):
        two survivor sets that each gather min_survivors signatures would need more
        honest signers than there are. Applied to min_survivors, and to t for SecAgg."""
        if type(self.active) is not bool or type(self.max_corrupt) is not int:
            raise LocalProtocolError("active must be a boolean and max_corrupt an integer")
        if not 0 <= self.max_corrupt < n:
            raise LocalProtocolError(
                f"max_corrupt must be in [0, n) = [0, {n}), got {self.max_corrupt}"
            )
        if not self.active:
            return
        bound = (n + self.max_corrupt) / 2
        if not self.min_survivors > bound or (self.mode is Mode.FULL and not self.t > bound):
            raise LocalProtocolError(
                f"an active round of {n} peers with {self.max_corrupt} corrupt needs "
                f"t and min_survivors above {bound:g}, got t={self.t}, "
                f"min_survivors={self.min_survivors}"
            )

    @property
    def n(self) -> int:
        return len(self.participants)

    @property
    def sparse(self) -> bool:
        """Whether the graph is SecAgg+'s sparse one, which depends on the graph seed."""
        return self.k < self.n - 1

    @property
    def width(self) -> int:
        """Bytes per vector value on the wire."""
        return self.mod_bits // 8

    @property
    def vector_size(self) -> int:
        """Bytes of one packed vector of `dim` values."""
        return self.dim * self.width

    def graph(self, seed: bytes | None = None) -> PeerGraph[PeerId]:
        """The round's peer graph, identical at every party (cached per params).

        `seed` replaces `graph_seed`: in active rounds the peers draw it
        (`crypto.secagg.seed`)."""
        return _graph(self._complete, self.participants, self.k, seed or self.graph_seed)

    def neighbours(self, peer: PeerId, seed: bytes | None = None) -> frozenset[PeerId]:
        """`graph(seed).neighbours(peer)`, without the other peers' neighbourhoods:
        a peer needs only its own, and the ring alone costs it less than the graph.

        Raises LocalProtocolError if `peer` is not a participant."""
        self.x_of(peer)
        if self._complete:
            return frozenset(self.participants) - {peer}
        return harary_neighbours(self.participants, self.k, seed or self.graph_seed, peer)

    @property
    def _complete(self) -> bool:
        """Whether the round's graph is the complete one: SecAgg's, or SecAgg+'s when
        k reaches every other peer."""
        return self.mode is Mode.FULL or not self.sparse

    def x_of(self, peer: PeerId) -> int:
        """The Shamir x-coordinate of `peer`: its 1-based index among the participants."""
        try:
            return _index(self.participants)[peer]
        except KeyError:
            raise LocalProtocolError(f"{peer!r} is not a participant of this round") from None

    def to_body(self) -> dict[str, object]:
        return {
            "run": self.run,
            "round": self.round,
            "mode": self.mode.value,
            "participants": list(self.participants),
            "k": self.k,
            "t": self.t,
            "min_survivors": self.min_survivors,
            "graph_seed": self.graph_seed,
            "dim": self.dim,
            "mod_bits": self.mod_bits,
            "prg": self.prg.value,
            "active": self.active,
            "max_corrupt": self.max_corrupt,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> RoundParams:
        """Parse and validate; raises LocalProtocolError with the reason."""
        mode_name = get_str(body, "mode", max_length=16)
        prg_name = get_str(body, "prg", max_length=32)
        try:
            mode, prg = Mode(mode_name), PrgKind(prg_name)
        except ValueError:
            raise LocalProtocolError(f"unknown mode {mode_name!r} or prg {prg_name!r}") from None
        participants = check_peer_ids(
            get_list(body, "participants", max_length=MAX_PEERS), "participant"
        )
        return cls(
            run=get_str(body, "run", max_length=64),
            round=get_int(body, "round", 0, MAX_ROUND),
            mode=mode,
            participants=participants,
            k=get_int(body, "k", 1, MAX_PEERS),
            t=get_int(body, "t", 1, MAX_PEERS + 1),
            min_survivors=get_int(body, "min_survivors", 1, MAX_PEERS),
            graph_seed=get_bytes(body, "graph_seed", size=SEED_SIZE, max_size=SEED_SIZE),
            dim=get_int(body, "dim", 1, MAX_DIM),
            mod_bits=get_int(body, "mod_bits", 1, 64),
            prg=prg,
            active=_bool(body, "active"),
            max_corrupt=get_int(body, "max_corrupt", 0, MAX_PEERS),
        )


def _bool(body: Mapping[str, object], name: str) -> bool:
    value = body.get(name)
    if type(value) is not bool:
        raise LocalProtocolError(f"{name!r} must be a boolean")
    return value


def _check_participants(participants: tuple[PeerId, ...]) -> int:
    """Valid, sorted, unique ids, 2 to MAX_PEERS of them; returns how many."""
    check_peer_ids(participants, "participant")
    n = len(participants)
    if not 2 <= n <= MAX_PEERS:
        raise LocalProtocolError(f"a round needs 2 to {MAX_PEERS} participants, got {n}")
    if any(a >= b for a, b in itertools.pairwise(participants)):
        raise LocalProtocolError("participants must be sorted and unique")
    return n


@functools.lru_cache(maxsize=8)
def _graph(
    complete: bool, participants: tuple[PeerId, ...], k: int, seed: bytes
) -> PeerGraph[PeerId]:
    if complete:
        return complete_graph(participants)
    return harary_graph(participants, k, seed)


@functools.lru_cache(maxsize=8)
def _index(participants: tuple[PeerId, ...]) -> dict[PeerId, int]:
    return {peer: i for i, peer in enumerate(participants, start=1)}
