"""Stage 0, AdvertiseKeys (Bonawitz et al. 2017): each peer's fresh X25519 public keys.

    peer -> hub   KeyAdvert: c_pk for sealing shares, s_pk for pair masks
    hub -> peer   Roster: the keys of the recipient's neighbours that advertised (U1)

In active rounds each advertisement carries the peer's Ed25519 signature
(`crypto.secagg.signed.advert_statement`), and the roster lists every
advertisement of U1 with its signature, the recipient's own included, so
that a peer checks every key against the key it trusts for that peer id
and all peers sign the same transcript. When the peers draw the graph seed
(`crypto.secagg.seed`), an advertisement also carries the commitment to
the peer's nonce and a share of that nonce sealed for every other
participant; the roster hands each peer the shares sealed for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.keys import KEY_SIZE
from fedd.crypto.secagg.fields import PeerId, check_bytes, check_peer_id, get_bytes, get_list
from fedd.crypto.secagg.messages.common import Header, check_signature, unique
from fedd.crypto.secagg.messages.share_keys import (
    SEED_SEALED_SIZE,
    SealedShare,
    check_sealed,
    get_sealed,
)
from fedd.crypto.secagg.params import MAX_PEERS
from fedd.crypto.signing import SIGNATURE_SIZE

__all__ = ["COMMITMENT_SIZE", "KeyAdvert", "PeerKeys", "Roster"]

COMMITMENT_SIZE = 32


@dataclass(frozen=True, slots=True)
class PeerKeys:
    """One peer's advertised X25519 public keys, as listed in a Roster."""

    peer: PeerId
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""
    commitment: bytes = b""

    def __post_init__(self) -> None:
        check_peer_id(self.peer)
        _check_keys(self.c_pk, self.s_pk)
        check_signature(self.signature, optional=True)
        _check_commitment(self.commitment)


def _check_keys(c_pk: bytes, s_pk: bytes) -> None:
    check_bytes(c_pk, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE)
    check_bytes(s_pk, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE)
    if c_pk == s_pk:
        raise LocalProtocolError("c_pk and s_pk must differ")


def _check_commitment(commitment: object) -> bytes:
    """A commitment to a graph-seed nonce, or empty where the round draws none."""
    value = check_bytes(commitment, "commitment", max_size=COMMITMENT_SIZE)
    if len(value) not in (0, COMMITMENT_SIZE):
        raise LocalProtocolError(f"a commitment is {COMMITMENT_SIZE} bytes (or none)")
    return value


@dataclass(frozen=True, slots=True)
class KeyAdvert(Header):
    """Stage 0, peer -> hub: fresh X25519 public keys (c_pk for AEAD, s_pk for masks)."""

    TYPE: ClassVar[str] = "key_advert"
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""  # active rounds: Ed25519 over the advertisement
    commitment: bytes = b""  # peers draw the graph seed: the commitment to this peer's nonce
    seed_shares: tuple[SealedShare, ...] = ()  # ... and its shares, one per other participant

    def __post_init__(self) -> None:
        self._check_header()
        _check_keys(self.c_pk, self.s_pk)
        check_signature(self.signature, optional=True)
        _check_commitment(self.commitment)
        check_sealed(self.seed_shares, "seed share recipient", SEED_SEALED_SIZE)
        if bool(self.commitment) != bool(self.seed_shares):
            raise LocalProtocolError("a commitment comes with the shares of its nonce")

    def to_body(self) -> dict[str, object]:
        return {
            "c_pk": self.c_pk,
            "s_pk": self.s_pk,
            "sig": self.signature,
            "commitment": self.commitment,
            "seed_shares": [[s.peer, s.ciphertext] for s in self.seed_shares],
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_bytes(body, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE),
            get_bytes(body, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE),
            get_bytes(body, "sig", max_size=SIGNATURE_SIZE),
            get_bytes(body, "commitment", max_size=COMMITMENT_SIZE),
            get_sealed(body, "seed_shares"),
        )


@dataclass(frozen=True, slots=True)
class Roster(Header):
    """End of stage 0, hub -> peer: the advertised keys the recipient needs.

    Passive rounds: those of its neighbours in U1. Active rounds: all of U1,
    signed, and the shares of graph-seed nonces sealed for the recipient.
    """

    TYPE: ClassVar[str] = "roster"
    keys: tuple[PeerKeys, ...]
    seed_shares: tuple[SealedShare, ...] = ()

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.keys) is not tuple or any(type(e) is not PeerKeys for e in self.keys):
            raise LocalProtocolError("roster keys must be a tuple of PeerKeys")
        unique((e.peer for e in self.keys), "roster peer")
        check_sealed(self.seed_shares, "seed share dealer", SEED_SEALED_SIZE)

    def to_body(self) -> dict[str, object]:
        return {
            "keys": [[e.peer, e.c_pk, e.s_pk, e.signature, e.commitment] for e in self.keys],
            "seed_shares": [[s.peer, s.ciphertext] for s in self.seed_shares],
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        keys = []
        for item in get_list(body, "keys", max_length=MAX_PEERS):
            if type(item) is not list or len(item) != 5:
                raise LocalProtocolError(
                    "roster entries must be [peer, c_pk, s_pk, signature, commitment]"
                )
            keys.append(
                PeerKeys(
                    check_peer_id(item[0]),
                    *_key_pair(item[1], item[2]),
                    check_signature(item[3], optional=True),
                    _check_commitment(item[4]),
                )
            )
        return cls(run, round, tuple(keys), get_sealed(body, "seed_shares"))


def _key_pair(c_pk: object, s_pk: object) -> tuple[bytes, bytes]:
    return (
        check_bytes(c_pk, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE),
        check_bytes(s_pk, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE),
    )
