"""Stage 1, ShareKeys (Bonawitz et al. 2017): shares of s_sk_u and b_u, sealed per neighbour.

    peer -> hub   EncryptedShares: one sealed pair for each neighbour in the roster
    hub -> peer   ForwardedShares: the pairs sealed for the recipient by its neighbours in U2

The hub only routes the ciphertexts: each is sealed under a key that only
its sender and recipient can derive (`crypto.secagg.masks.share_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto import aead, shamir
from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import PeerId, check_bytes, check_peer_id
from fedd.crypto.secagg.messages.common import Header, pairs, unique
from fedd.crypto.secagg.params import MAX_PEERS

__all__ = [
    "SEALED_SIZE",
    "SEED_SEALED_SIZE",
    "EncryptedShares",
    "ForwardedShares",
    "SealedShare",
    "check_sealed",
    "get_sealed",
]

# A sealed pair of shares: Shamir shares of s_sk and of b_u, AEAD-sealed.
SEALED_SIZE = aead.OVERHEAD + 2 * shamir.VALUE_SIZE
# A sealed share of a graph-seed nonce, with the dealer's commitment (crypto.secagg.seed).
SEED_SEALED_SIZE = aead.OVERHEAD + 32 + shamir.VALUE_SIZE


@dataclass(frozen=True, slots=True)
class SealedShare:
    """Shares of one peer's secrets, sealed for one other peer.

    In EncryptedShares (and KeyAdvert) `peer` is the recipient; in
    ForwardedShares (and Roster), the sender. The message that carries it
    checks the ciphertext's exact size.
    """

    peer: PeerId
    ciphertext: bytes

    def __post_init__(self) -> None:
        check_peer_id(self.peer)
        check_bytes(self.ciphertext, "sealed share", max_size=SEALED_SIZE)


def get_sealed(body: Mapping[str, object], name: str) -> tuple[SealedShare, ...]:
    """The body's `name`: [[peer, ciphertext], ...].

    Each SealedShare checks its fields; the message that holds them checks
    their exact size and that no peer is listed twice (`check_sealed`).
    """
    return tuple(SealedShare(p, ct) for p, ct in pairs(body, name, MAX_PEERS))  # type: ignore[arg-type]


def check_sealed(shares: object, what: str, size: int) -> None:
    """A tuple of SealedShare of `size` bytes each, no peer twice; `what` names the peers."""
    if type(shares) is not tuple or any(type(s) is not SealedShare for s in shares):
        raise LocalProtocolError("shares must be a tuple of SealedShare")
    if any(len(s.ciphertext) != size for s in shares):
        raise LocalProtocolError(f"sealed shares here are {size} bytes")
    unique((s.peer for s in shares), what)


@dataclass(frozen=True, slots=True)
class _SealedShares(Header):
    """Sealed share pairs, each with one peer id; the subclass says whose."""

    ROLE: ClassVar[str]
    shares: tuple[SealedShare, ...]

    def __post_init__(self) -> None:
        self._check_header()
        check_sealed(self.shares, self.ROLE, SEALED_SIZE)

    def to_body(self) -> dict[str, object]:
        return {"shares": [[s.peer, s.ciphertext] for s in self.shares]}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_sealed(body, "shares"))


@dataclass(frozen=True, slots=True)
class EncryptedShares(_SealedShares):
    """Stage 1, peer -> hub: one sealed share pair per neighbour in the roster."""

    TYPE: ClassVar[str] = "encrypted_shares"
    ROLE: ClassVar[str] = "recipient"


@dataclass(frozen=True, slots=True)
class ForwardedShares(_SealedShares):
    """End of stage 1, hub -> peer: the share pairs sealed for the recipient.

    The senders listed are the recipient's neighbours that completed stage 1
    (its part of U2); it masks against exactly these.
    """

    TYPE: ClassVar[str] = "forwarded_shares"
    ROLE: ClassVar[str] = "sender"
