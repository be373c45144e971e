"""Who is connected to the hub, and whether they are alive. Sans-IO.

A peer registers with Hello from a ZeroMQ connection (its routing id). Any
later message from that connection counts as a sign of life; a peer silent
for longer than `liveness_s` is marked gone. A peer id stays bound to its
connection while it is alive: a second Hello under the same id from another
connection is refused (an impostor, or a restarted peer whose old connection
has not timed out yet; the latter simply retries). Once the old registration
is gone, the id may register again from anywhere. A connection, in turn,
stays bound to the first id it registered, also after that id left: it can
come back as itself, never as someone new.

Time is an argument everywhere; nothing here touches sockets or clocks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.errors import StateError
from fedd.daemon.state.hubfiles import PeerRow
from fedd.daemon.transport.messages.membership import WIRE_PROTOCOL, Hello

__all__ = [
    "PeerRecord",
    "PeerStatus",
    "Refused",
    "Registry",
    "record_from_row",
    "row_from_record",
]


class PeerStatus(enum.Enum):
    ALIVE = "alive"
    GONE = "gone"  # stopped answering
    LEFT = "left"  # said Bye, or its connection failed


class Refused(Exception):
    """A Hello the hub will not accept; the message goes back to the peer.

    `retry` says whether the same peer may succeed later (an id still in use)
    or never will (its data does not fit the model).
    """

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


@dataclass
class PeerRecord:
    """What the hub knows about one peer (peers.csv holds these)."""

    peer: PeerId
    routing: bytes
    first_seen: float
    last_seen: float
    status: PeerStatus
    shard: int = 0
    public_key: str = ""
    holdout: bool = False  # it holds rows out to score models on


class Registry:
    """The hub's peer table. Features are fixed by the first peer, the test CSV or the model."""

    def __init__(
        self,
        *,
        liveness_s: float,
        features: tuple[str, ...] | None = None,
        max_shards: int = 0,
    ) -> None:
        if not liveness_s > 0:
            raise ValueError("liveness_s must be positive")
        if max_shards < 0:
            raise ValueError("max_shards must be >= 0 (0: no limit)")
        self.liveness_s = liveness_s
        self.features = features
        self.max_shards = max_shards
        self._by_peer: dict[PeerId, PeerRecord] = {}
        self._by_routing: dict[bytes, PeerId] = {}

    def __iter__(self) -> Iterator[PeerRecord]:
        return iter(sorted(self._by_peer.values(), key=lambda r: r.peer))

    def __len__(self) -> int:
        return len(self._by_peer)

    def hello(
        self,
        routing: bytes,
        msg: Hello,
        now: float,
        *,
        authenticated: PeerId | None = None,
        public_key: str = "",
    ) -> PeerRecord:
        """Register (or re-register) `msg.peer` on `routing`. Raises Refused with the reason.

        `authenticated` is the name the connection's CURVE key is allowed
        under (None without CURVE) and `public_key` that key's Z85 text, kept
        in the record. A refusal leaves the registry unchanged.
        """
        if msg.protocol != WIRE_PROTOCOL:
            raise Refused(
                f"the peer speaks protocol {msg.protocol}, this hub speaks protocol "
                f"{WIRE_PROTOCOL}: run the same fedd version on both",
                retry=False,
            )
        if authenticated is not None and msg.peer != authenticated:
            raise Refused(
                f"this CURVE key is allowed as {authenticated!r}, not as {msg.peer!r}; "
                f"start the peer with --peer-id {authenticated}",
                retry=False,
            )
        if self.features is not None and msg.features != self.features:
            raise Refused(_feature_mismatch(self.features, msg.features), retry=False)
        record = self._by_peer.get(msg.peer)
        if record is not None and record.status is PeerStatus.ALIVE and record.routing != routing:
            raise Refused(
                f"peer id {msg.peer!r} is already connected from elsewhere; if this peer "
                f"restarted, it can register again after {self.liveness_s:g}s of silence",
                retry=True,
            )
        previous = self._by_routing.get(routing)
        if previous is not None and previous != msg.peer:
            raise Refused(f"this connection is registered as {previous!r}", retry=False)
        shard = self._shard_for(msg.peer, record) if msg.shard == "auto" else 0
        if self.features is None:
            self.features = msg.features
        if record is None:
            record = PeerRecord(msg.peer, routing, now, now, PeerStatus.ALIVE)
            self._by_peer[msg.peer] = record
        else:
            self._by_routing.pop(record.routing, None)
            record.routing, record.last_seen, record.status = routing, now, PeerStatus.ALIVE
        record.shard = shard
        record.holdout = msg.holdout
        if public_key:
            record.public_key = public_key
        self._by_routing[routing] = msg.peer
        return record

    def _shard_for(self, peer: PeerId, record: PeerRecord | None) -> int:
        """The shard `peer` gets: its own if still free, else the lowest free. Raises Refused."""
        held = {
            r.shard
            for r in self._by_peer.values()
            if r.status is PeerStatus.ALIVE and r.peer != peer and r.shard
        }
        limit = self.max_shards
        mine = record.shard if record is not None else 0
        if mine and mine not in held and (not limit or mine <= limit):
            return mine
        shard = next(k for k in range(1, len(held) + 2) if k not in held)
        if limit and shard > limit:
            raise Refused(
                f"all {limit} shards are held by alive peers; "
                "one frees up when its peer leaves or goes silent",
                retry=True,
            )
        return shard

    def peer_at(self, routing: bytes) -> PeerId | None:
        """The alive peer registered on `routing`, if any."""
        peer = self._by_routing.get(routing)
        if peer is None or self._by_peer[peer].status is not PeerStatus.ALIVE:
            return None
        return peer

    def seen(self, peer: PeerId, now: float) -> None:
        self._by_peer[peer].last_seen = now

    def record(self, peer: PeerId) -> PeerRecord:
        return self._by_peer[peer]

    def alive(self) -> list[PeerId]:
        """Alive peers, sorted by id."""
        return sorted(p for p, r in self._by_peer.items() if r.status is PeerStatus.ALIVE)

    def absent(self) -> list[PeerId]:
        """Peers seen before (also by an earlier hub on this state) that are not alive, sorted."""
        return sorted(p for p, r in self._by_peer.items() if r.status is not PeerStatus.ALIVE)

    def scorers(self) -> list[PeerId]:
        """Alive peers that hold rows out to score models on, sorted by id."""
        return [p for p in self.alive() if self._by_peer[p].holdout]

    def leave(self, peer: PeerId, status: PeerStatus = PeerStatus.LEFT) -> bool:
        """Mark `peer` out; returns whether it was alive until now."""
        record = self._by_peer.get(peer)
        if record is None or record.status is not PeerStatus.ALIVE:
            return False
        # The connection stays bound to this id (peer_at checks the status): one
        # that could register a new id after each Bye would grow the table forever.
        record.status = status
        return True

    def expire(self, now: float) -> list[PeerId]:
        """Mark peers silent for longer than liveness_s as gone; returns them."""
        gone = [
            p
            for p, r in self._by_peer.items()
            if r.status is PeerStatus.ALIVE and now - r.last_seen > self.liveness_s
        ]
        for peer in gone:
            self.leave(peer, PeerStatus.GONE)
        return sorted(gone)

    def restore(self, record: PeerRecord) -> None:
        """Reload a record from peers.csv after a restart: known, but not alive until it says so."""
        if record.status is PeerStatus.ALIVE:
            record.status = PeerStatus.GONE
        record.routing = b""
        self._by_peer[record.peer] = record


def _feature_mismatch(expected: tuple[str, ...], got: tuple[str, ...]) -> str:
    if len(expected) != len(got):
        detail = []
        extra = [f for f in got if f not in expected]
        missing = [f for f in expected if f not in got]
        if extra:  # an export's id or category column, most often
            detail.append(f"not on the hub: {_names(extra)} (--ignore-columns leaves them out)")
        if missing:
            detail.append(f"missing: {_names(missing)}")
        return (
            f"feature mismatch: this hub trains on {len(expected)} features, "
            f"your data has {len(got)}" + "".join(f"; {d}" for d in detail)
        )
    diff = next(i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b)
    return (
        f"feature mismatch: column {diff + 1} is {got[diff]!r} in your data "
        f"but {expected[diff]!r} on the hub (same columns, same order needed)"
    )


def _names(columns: list[str]) -> str:
    shown = ", ".join(map(repr, columns[:5]))
    return shown + (f" and {len(columns) - 5} more" if len(columns) > 5 else "")


def record_from_row(row: PeerRow, state_dir: Path) -> PeerRecord:
    """A registry record from its peers.csv row (no connection yet)."""
    # The store checks a status's shape only; which words exist is the registry's business.
    try:
        status = PeerStatus(row.status)
    except ValueError:
        known = ", ".join(s.value for s in PeerStatus)
        raise StateError(
            f"{state_dir / 'peers.csv'}: peer {row.peer!r} has status {row.status!r}, "
            f"not one of {known}"
        ) from None
    return PeerRecord(
        PeerId(row.peer),
        b"",
        row.first_seen,
        row.last_seen,
        status,
        row.shard,
        row.public_key,
    )


def row_from_record(record: PeerRecord) -> PeerRow:
    """The peers.csv row of a registry record."""
    return PeerRow(
        record.peer,
        record.public_key,
        record.first_seen,
        record.last_seen,
        record.shard,
        record.status.value,
    )
