"""Membership and liveness: a peer registers, stays alive, leaves, hears that training is done.

    peer -> hub      Hello, Heartbeat, Bye
    hub -> peer      Welcome, Heartbeat, Done

Before a peer is welcomed it does not know the run id: Hello carries an
empty `run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import (
    MAX_ROUND,
    PeerId,
    check_int,
    check_peer_id,
    get_int,
    get_list,
    get_peer_id,
    get_str,
)
from fedd.daemon.transport.messages.common import MAX_FEATURES, Header, Signal, get_float

__all__ = ["WIRE_PROTOCOL", "Bye", "Done", "Heartbeat", "Hello", "Welcome"]

MAX_NAME = 128
# 3: active rounds bound to their transcript, the peers draw the graph seed;
# 4: Hello names the round whose end a SCAFFOLD peer has not heard (`unsettled`)
WIRE_PROTOCOL = 4


@dataclass(frozen=True, slots=True)
class Hello(Header):
    """Peer -> hub: register (or re-register after a restart of either side).

    `unsettled` names the round whose new SCAFFOLD control variate this peer
    holds without having heard the round's end (0: none); the hub answers
    with that round's RoundEnd once it knows it.
    """

    TYPE: ClassVar[str] = "hello"
    peer: PeerId
    features: tuple[str, ...]
    protocol: int = WIRE_PROTOCOL
    shard: str = ""  # "auto": ask the hub for a shard index
    holdout: bool = False  # whether it holds rows out to score models on
    unsettled: int = 0

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)
        check_peer_id(self.peer)
        if type(self.features) is not tuple or not 1 <= len(self.features) <= MAX_FEATURES:
            raise LocalProtocolError(f"features must list 1 to {MAX_FEATURES} column names")
        for name in self.features:
            if type(name) is not str or not 1 <= len(name) <= MAX_NAME:
                raise LocalProtocolError(f"feature names must be 1-{MAX_NAME} characters")
        check_int(self.protocol, "protocol", 1, 1000)
        if self.shard not in ("", "auto"):
            raise LocalProtocolError("shard must be '' or 'auto'")
        if type(self.holdout) is not bool:
            raise LocalProtocolError("holdout must be a bool")
        check_int(self.unsettled, "unsettled", 0, MAX_ROUND)

    def to_body(self) -> dict[str, object]:
        return {
            "peer": self.peer,
            "features": list(self.features),
            "protocol": self.protocol,
            "shard": self.shard,
            "holdout": self.holdout,
            "unsettled": self.unsettled,
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        features = tuple(get_list(body, "features", max_length=MAX_FEATURES))
        return cls(
            run,
            round,
            get_peer_id(body, "peer"),
            features,  # type: ignore[arg-type]
            get_int(body, "protocol", 1, 1000),
            get_str(body, "shard", max_length=8),
            body.get("holdout"),  # type: ignore[arg-type]  # checked in __post_init__
            # Absent from an older peer's Hello, which the protocol check then refuses.
            body.get("unsettled", 0),  # type: ignore[arg-type]  # checked in __post_init__
        )


@dataclass(frozen=True, slots=True)
class Welcome(Header):
    """Hub -> peer: registered under `peer`; the header carries the run id and current round."""

    TYPE: ClassVar[str] = "welcome"
    peer: PeerId
    heartbeat_s: float
    shard: int = 0  # 1-based shard index for --shard auto, 0 when not asked

    def __post_init__(self) -> None:
        self._check_header()
        check_peer_id(self.peer)
        if type(self.heartbeat_s) is not float or not 0.01 <= self.heartbeat_s <= 3600:
            raise LocalProtocolError("heartbeat_s must be a float in [0.01, 3600]")
        check_int(self.shard, "shard", 0, 100_000)

    def to_body(self) -> dict[str, object]:
        return {"peer": self.peer, "heartbeat_s": self.heartbeat_s, "shard": self.shard}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_peer_id(body, "peer"),
            get_float(body, "heartbeat_s", 0.01, 3600),
            get_int(body, "shard", 0, 100_000),
        )


@dataclass(frozen=True, slots=True)
class Heartbeat(Signal):
    """Either way: I am alive. Any message counts as a sign of life; this one says only that."""

    TYPE: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, slots=True)
class Done(Signal):
    """Hub -> peer: training is finished; the peer may exit."""

    TYPE: ClassVar[str] = "done"


@dataclass(frozen=True, slots=True)
class Bye(Signal):
    """Peer -> hub: leaving now (shutdown); count me out without waiting for a time-out."""

    TYPE: ClassVar[str] = "bye"

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)
