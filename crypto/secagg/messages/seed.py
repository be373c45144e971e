"""Active SecAgg+ rounds, after stage 0: the peers draw the graph seed (`crypto.secagg.seed`).

peer -> hub   SeedReveal: the nonce the sender committed to in its KeyAdvert
hub -> peer   SeedRecovery: whose nonces did not come; reveal your shares of them
peer -> hub   SeedShares: the sender's shares of those nonces
hub -> peer   SeedNonces: every listed peer's nonce, revealed or recovered
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import (
    PeerId,
    check_bytes,
    check_peer_id,
    check_peer_ids,
    get_bytes,
    get_list,
)
from fedd.crypto.secagg.messages.common import Header, pairs, unique
from fedd.crypto.secagg.messages.unmask import RevealedShare, get_revealed
from fedd.crypto.secagg.params import MAX_PEERS

__all__ = ["NONCE_SIZE", "Nonce", "SeedNonces", "SeedRecovery", "SeedReveal", "SeedShares"]

NONCE_SIZE = 32


@dataclass(frozen=True, slots=True)
class Nonce:
    """One peer's graph-seed nonce."""

    peer: PeerId
    value: bytes

    def __post_init__(self) -> None:
        check_peer_id(self.peer)
        check_bytes(self.value, "nonce", size=NONCE_SIZE, max_size=NONCE_SIZE)


@dataclass(frozen=True, slots=True)
class SeedReveal(Header):
    """Peer -> hub: the nonce behind the sender's commitment."""

    TYPE: ClassVar[str] = "seed_reveal"
    nonce: bytes

    def __post_init__(self) -> None:
        self._check_header()
        check_bytes(self.nonce, "nonce", size=NONCE_SIZE, max_size=NONCE_SIZE)

    def to_body(self) -> dict[str, object]:
        return {"nonce": self.nonce}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_bytes(body, "nonce", size=NONCE_SIZE, max_size=NONCE_SIZE))


@dataclass(frozen=True, slots=True)
class SeedRecovery(Header):
    """Hub -> peer: these listed peers' nonces did not come; reveal your shares of them."""

    TYPE: ClassVar[str] = "seed_recovery"
    missing: tuple[PeerId, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.missing) is not tuple or not self.missing:
            raise LocalProtocolError("missing must be a non-empty tuple of peer ids")
        unique(self.missing, "missing peer")

    def to_body(self) -> dict[str, object]:
        return {"missing": list(self.missing)}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        missing = get_list(body, "missing", max_length=MAX_PEERS)
        return cls(run, round, check_peer_ids(missing, "missing peer"))


@dataclass(frozen=True, slots=True)
class SeedShares(Header):
    """Peer -> hub: the sender's shares of the missing nonces, by owner."""

    TYPE: ClassVar[str] = "seed_shares"
    shares: tuple[RevealedShare, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.shares) is not tuple or any(type(s) is not RevealedShare for s in self.shares):
            raise LocalProtocolError("shares must be a tuple of RevealedShare")
        unique((s.owner for s in self.shares), "share owner")

    def to_body(self) -> dict[str, object]:
        return {"shares": [[s.owner, s.value] for s in self.shares]}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_revealed(body, "shares"))


@dataclass(frozen=True, slots=True)
class SeedNonces(Header):
    """Hub -> peer: the nonce of every peer in the roster; the graph seed follows from them."""

    TYPE: ClassVar[str] = "seed_nonces"
    nonces: tuple[Nonce, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.nonces) is not tuple or any(type(n) is not Nonce for n in self.nonces):
            raise LocalProtocolError("nonces must be a tuple of Nonce")
        unique((n.peer for n in self.nonces), "nonce owner")

    def to_body(self) -> dict[str, object]:
        return {"nonces": [[n.peer, n.value] for n in self.nonces]}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            tuple(
                Nonce(check_peer_id(peer, "nonce owner"), check_bytes(v, "nonce", max_size=32))
                for peer, v in pairs(body, "nonces", MAX_PEERS)
            ),
        )
