"""Stage 0, AdvertiseKeys (Bonawitz et al. 2017): each peer's fresh X25519 public keys.

    peer -> hub   KeyAdvert: c_pk for sealing shares, s_pk for pair masks
    hub -> peer   Roster: the keys of the recipient's neighbours that advertised (U1)

In active rounds each advertisement carries the peer's Ed25519 signature
(`crypto.secagg.signed.advert_statement`) and the roster relays it, so that
a peer can check every key against the key it trusts for that peer id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.keys import KEY_SIZE
from fedd.crypto.secagg.fields import PeerId, check_bytes, check_peer_id, get_bytes, get_list
from fedd.crypto.secagg.messages.common import Header, check_signature, unique
from fedd.crypto.secagg.params import MAX_PEERS
from fedd.crypto.signing import SIGNATURE_SIZE

__all__ = ["KeyAdvert", "PeerKeys", "Roster"]


@dataclass(frozen=True, slots=True)
class PeerKeys:
    """One peer's advertised X25519 public keys, as listed in a Roster."""

    peer: PeerId
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        check_peer_id(self.peer)
        _check_keys(self.c_pk, self.s_pk)
        check_signature(self.signature, optional=True)


def _check_keys(c_pk: bytes, s_pk: bytes) -> None:
    check_bytes(c_pk, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE)
    check_bytes(s_pk, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE)
    if c_pk == s_pk:
        raise LocalProtocolError("c_pk and s_pk must differ")


@dataclass(frozen=True, slots=True)
class KeyAdvert(Header):
    """Stage 0, peer -> hub: fresh X25519 public keys (c_pk for AEAD, s_pk for masks)."""

    TYPE: ClassVar[str] = "key_advert"
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""  # active rounds: Ed25519 over the advertisement

    def __post_init__(self) -> None:
        self._check_header()
        _check_keys(self.c_pk, self.s_pk)
        check_signature(self.signature, optional=True)

    def to_body(self) -> dict[str, object]:
        return {"c_pk": self.c_pk, "s_pk": self.s_pk, "sig": self.signature}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_bytes(body, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE),
            get_bytes(body, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE),
            get_bytes(body, "sig", max_size=SIGNATURE_SIZE),
        )


@dataclass(frozen=True, slots=True)
class Roster(Header):
    """End of stage 0, hub -> peer: the keys of the recipient's neighbours that advertised."""

    TYPE: ClassVar[str] = "roster"
    keys: tuple[PeerKeys, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.keys) is not tuple or any(type(e) is not PeerKeys for e in self.keys):
            raise LocalProtocolError("roster keys must be a tuple of PeerKeys")
        unique((e.peer for e in self.keys), "roster peer")

    def to_body(self) -> dict[str, object]:
        return {"keys": [[e.peer, e.c_pk, e.s_pk, e.signature] for e in self.keys]}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        keys = []
        for item in get_list(body, "keys", max_length=MAX_PEERS):
            if type(item) is not list or len(item) != 4:
                raise LocalProtocolError("roster entries must be [peer, c_pk, s_pk, signature]")
            keys.append(
                PeerKeys(
                    check_peer_id(item[0]),
                    *_key_pair(item[1], item[2]),
                    check_signature(item[3], optional=True),
                )
            )
        return cls(run, round, tuple(keys))


def _key_pair(c_pk: object, s_pk: object) -> tuple[bytes, bytes]:
    return (
        check_bytes(c_pk, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE),
        check_bytes(s_pk, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE),
    )
