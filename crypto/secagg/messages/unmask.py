"""Stage 3, Unmasking (Bonawitz et al. 2017): the shares that let the hub remove the masks.

    hub -> peer   UnmaskRequest: who sent masked input (active rounds: all of U3,
                  with the consistency signatures over it)
    peer -> hub   UnmaskShares: shares of b_u for survivors, of s_sk_u for dropped peers

No owner's shares of both secrets are ever revealed: with b_u and s_sk_u
the hub could unmask u's input alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto import shamir
from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import PeerId, check_bytes, check_int, check_peer_id, get_int
from fedd.crypto.secagg.messages.common import Header, check_signature, get_survivors, pairs, unique
from fedd.crypto.secagg.messages.consistency import SignedBy
from fedd.crypto.secagg.params import MAX_PEERS

__all__ = ["RevealedShare", "UnmaskRequest", "UnmaskShares", "get_revealed"]


@dataclass(frozen=True, slots=True)
class UnmaskRequest(Header):
    """End of stage 2 (or of the consistency check), hub -> survivor: who sent masked input.

    Passive rounds: `survivors` lists the recipient's neighbours in U3 and the
    recipient itself; the recipient treats every other neighbour whose shares
    it holds as dropped. Active rounds: `survivors` is all of U3, exactly as
    the recipient signed it, and `signatures` carries the consistency
    signatures the hub collected over it. `n_survivors` is |U3|.
    """

    TYPE: ClassVar[str] = "unmask_request"
    survivors: tuple[PeerId, ...]
    n_survivors: int
    signatures: tuple[SignedBy, ...] = ()

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.survivors) is not tuple:
            raise LocalProtocolError("survivors must be a tuple")
        unique(self.survivors, "survivor")
        check_int(self.n_survivors, "n_survivors", len(self.survivors), MAX_PEERS)
        if type(self.signatures) is not tuple or any(
            type(s) is not SignedBy for s in self.signatures
        ):
            raise LocalProtocolError("signatures must be a tuple of SignedBy")
        unique((s.peer for s in self.signatures), "signer")

    def to_body(self) -> dict[str, object]:
        return {
            "survivors": list(self.survivors),
            "n_survivors": self.n_survivors,
            "sigs": [[s.peer, s.signature] for s in self.signatures],
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        signatures = tuple(
            SignedBy(check_peer_id(peer, "signer"), check_signature(sig))
            for peer, sig in pairs(body, "sigs", MAX_PEERS)
        )
        return cls(
            run,
            round,
            get_survivors(body),
            get_int(body, "n_survivors", 0, MAX_PEERS),
            signatures,
        )


@dataclass(frozen=True, slots=True)
class RevealedShare:
    """The revealing peer's Shamir share of one owner's secret (b_u or s_sk_u)."""

    owner: PeerId
    value: bytes

    def __post_init__(self) -> None:
        check_peer_id(self.owner, "share owner")
        check_bytes(self.value, "share", size=shamir.VALUE_SIZE, max_size=shamir.VALUE_SIZE)

    def __repr__(self) -> str:
        return f"RevealedShare(owner={self.owner!r}, value=<{len(self.value)} bytes>)"


def get_revealed(body: Mapping[str, object], name: str) -> tuple[RevealedShare, ...]:
    """The body's `name`: [[owner, share value], ...]; each RevealedShare checks its fields."""
    return tuple(RevealedShare(o, v) for o, v in pairs(body, name, MAX_PEERS + 1))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class UnmaskShares(Header):
    """Stage 3, peer -> hub: shares of b_u for survivors, of s_sk_u for dropped peers.

    No owner appears in both lists: revealing both would unmask that owner's input.
    """

    TYPE: ClassVar[str] = "unmask_shares"
    b_shares: tuple[RevealedShare, ...]
    s_shares: tuple[RevealedShare, ...]

    def __post_init__(self) -> None:
        self._check_header()
        for shares in (self.b_shares, self.s_shares):
            if type(shares) is not tuple or any(type(s) is not RevealedShare for s in shares):
                raise LocalProtocolError("shares must be a tuple of RevealedShare")
        unique((s.owner for s in (*self.b_shares, *self.s_shares)), "share owner")

    def to_body(self) -> dict[str, object]:
        return {
            "b": [[s.owner, s.value] for s in self.b_shares],
            "s": [[s.owner, s.value] for s in self.s_shares],
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_revealed(body, "b"), get_revealed(body, "s"))
