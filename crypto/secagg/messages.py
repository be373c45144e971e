"""The typed messages of one secure aggregation round.

Every message is a frozen, slotted dataclass that validates itself on
construction (exact types, sizes, duplicate ids) and raises
`LocalProtocolError` otherwise. `daemon.transport.wire` turns them into msgpack frames
(`to_body`) and back (`from_body`), re-raising validation failures as
`MalformedMessage`. Nothing here knows about sockets or msgpack.

Flow (DESIGN.md section 3), peer -> hub unless marked:
    stage 0  KeyAdvert                 -> Roster (hub -> each peer: its neighbours' keys)
    stage 1  EncryptedShares           -> ForwardedShares (hub -> each peer)
    stage 2  MaskedInput               -> UnmaskRequest (hub -> each survivor)
    stage 3  UnmaskShares
    any      RoundAbort (hub -> peer): the round is over for the recipient

Active rounds sign the advertisements (KeyAdvert.signature, PeerKeys.signature)
and insert a consistency check after stage 2:
    MaskedInput -> ConsistencyRequest (hub -> each survivor: all of U3)
    ConsistencySignature -> UnmaskRequest carrying U3 and the signatures over it
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto import aead, shamir
from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.keys import KEY_SIZE
from fedd.crypto.secagg.fields import (
    MAX_ROUND,
    PeerId,
    check_bytes,
    check_int,
    check_peer_id,
    check_run_id,
    get_bytes,
    get_int,
    get_list,
    get_str,
)
from fedd.crypto.secagg.params import MAX_DIM, MAX_PEERS
from fedd.crypto.signing import SIGNATURE_SIZE

__all__ = [
    "MESSAGE_TYPES",
    "SEALED_SIZE",
    "EncryptedShares",
    "ForwardedShares",
    "KeyAdvert",
    "MaskedInput",
    "Message",
    "PeerKeys",
    "RevealedShare",
    "Roster",
    "RoundAbort",
    "SealedShare",
    "UnmaskRequest",
    "UnmaskShares",
]

# A sealed pair of shares: Shamir shares of s_sk and of b_u, AEAD-sealed.
SEALED_SIZE = aead.OVERHEAD + 2 * shamir.VALUE_SIZE
MAX_VECTOR_BYTES = MAX_DIM * 8
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class _Header:
    run: str
    round: int

    def _check_header(self) -> None:
        check_run_id(self.run)
        check_int(self.round, "round", 0, MAX_ROUND)


def _unique(peers: Iterable[PeerId], what: str) -> None:
    seen: set[PeerId] = set()
    for peer in peers:
        check_peer_id(peer, what)
        if peer in seen:
            raise LocalProtocolError(f"{what} {peer!r} listed twice")
        seen.add(peer)


def _pairs(body: Mapping[str, object], name: str, max_length: int) -> list[tuple[object, object]]:
    """A list of two-element lists, as msgpack delivers `[[id, bytes], ...]`."""
    out = []
    for item in get_list(body, name, max_length=max_length):
        if type(item) is not list or len(item) != 2:
            raise LocalProtocolError(f"{name!r} entries must be [peer, value] pairs")
        out.append((item[0], item[1]))
    return out


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
        _check_signature(self.signature, optional=True)


def _check_signature(signature: object, *, optional: bool = False) -> bytes:
    """An Ed25519 signature: 64 bytes (or empty where `optional`, in passive rounds)."""
    if optional and signature == b"" and type(signature) is bytes:
        return signature
    return check_bytes(signature, "signature", size=SIGNATURE_SIZE, max_size=SIGNATURE_SIZE)


def _check_keys(c_pk: bytes, s_pk: bytes) -> None:
    check_bytes(c_pk, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE)
    check_bytes(s_pk, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE)
    if c_pk == s_pk:
        raise LocalProtocolError("c_pk and s_pk must differ")


@dataclass(frozen=True, slots=True)
class KeyAdvert(_Header):
    """Stage 0, peer -> hub: fresh X25519 public keys (c_pk for AEAD, s_pk for masks)."""

    TYPE: ClassVar[str] = "key_advert"
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""  # active rounds: Ed25519 over the advertisement

    def __post_init__(self) -> None:
        self._check_header()
        _check_keys(self.c_pk, self.s_pk)
        _check_signature(self.signature, optional=True)

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
class Roster(_Header):
    """End of stage 0, hub -> peer: the keys of the recipient's neighbours that advertised."""

    TYPE: ClassVar[str] = "roster"
    keys: tuple[PeerKeys, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.keys) is not tuple or any(type(e) is not PeerKeys for e in self.keys):
            raise LocalProtocolError("roster keys must be a tuple of PeerKeys")
        _unique((e.peer for e in self.keys), "roster peer")

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
                    _check_signature(item[3], optional=True),
                )
            )
        return cls(run, round, tuple(keys))


def _key_pair(c_pk: object, s_pk: object) -> tuple[bytes, bytes]:
    return (
        check_bytes(c_pk, "c_pk", size=KEY_SIZE, max_size=KEY_SIZE),
        check_bytes(s_pk, "s_pk", size=KEY_SIZE, max_size=KEY_SIZE),
    )


@dataclass(frozen=True, slots=True)
class SealedShare:
    """Shares of one peer's s_sk and b_u, sealed for one other peer.

    In EncryptedShares `peer` is the recipient; in ForwardedShares, the sender.
    """

    peer: PeerId
    ciphertext: bytes

    def __post_init__(self) -> None:
        check_peer_id(self.peer)
        check_bytes(self.ciphertext, "sealed share", size=SEALED_SIZE, max_size=SEALED_SIZE)


def _sealed(body: Mapping[str, object]) -> tuple[SealedShare, ...]:
    return tuple(
        SealedShare(
            check_peer_id(peer),
            check_bytes(ct, "sealed share", size=SEALED_SIZE, max_size=SEALED_SIZE),
        )
        for peer, ct in _pairs(body, "shares", MAX_PEERS)
    )


def _check_sealed(shares: object, what: str) -> None:
    if type(shares) is not tuple or any(type(s) is not SealedShare for s in shares):
        raise LocalProtocolError("shares must be a tuple of SealedShare")
    _unique((s.peer for s in shares), what)


@dataclass(frozen=True, slots=True)
class _SealedShares(_Header):
    """Sealed share pairs, each with one peer id; the subclass says whose."""

    ROLE: ClassVar[str]
    shares: tuple[SealedShare, ...]

    def __post_init__(self) -> None:
        self._check_header()
        _check_sealed(self.shares, self.ROLE)

    def to_body(self) -> dict[str, object]:
        return {"shares": [[s.peer, s.ciphertext] for s in self.shares]}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, _sealed(body))


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


@dataclass(frozen=True, slots=True)
class MaskedInput(_Header):
    """Stage 2, peer -> hub: y_u = x_u + PRG(b_u) + sum of signed PRG(s_uv), mod R."""

    TYPE: ClassVar[str] = "masked_input"
    y: bytes

    def __post_init__(self) -> None:
        self._check_header()
        check_bytes(self.y, "masked input", max_size=MAX_VECTOR_BYTES)

    def to_body(self) -> dict[str, object]:
        return {"y": self.y}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_bytes(body, "y", max_size=MAX_VECTOR_BYTES))


def _survivor_list(body: Mapping[str, object]) -> tuple[PeerId, ...]:
    return tuple(
        check_peer_id(p, "survivor") for p in get_list(body, "survivors", max_length=MAX_PEERS)
    )


@dataclass(frozen=True, slots=True)
class ConsistencyRequest(_Header):
    """Active rounds, after stage 2, hub -> survivor: U3, the peers whose inputs are summed.

    The recipient signs exactly this set (Bonawitz et al. 2017, ConsistencyCheck).
    """

    TYPE: ClassVar[str] = "consistency_request"
    survivors: tuple[PeerId, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.survivors) is not tuple:
            raise LocalProtocolError("survivors must be a tuple")
        _unique(self.survivors, "survivor")

    def to_body(self) -> dict[str, object]:
        return {"survivors": list(self.survivors)}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, _survivor_list(body))


@dataclass(frozen=True, slots=True)
class ConsistencySignature(_Header):
    """Active rounds, peer -> hub: the sender's Ed25519 signature over U3."""

    TYPE: ClassVar[str] = "consistency_signature"
    signature: bytes

    def __post_init__(self) -> None:
        self._check_header()
        _check_signature(self.signature)

    def to_body(self) -> dict[str, object]:
        return {"sig": self.signature}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_bytes(body, "sig", max_size=SIGNATURE_SIZE))


@dataclass(frozen=True, slots=True)
class SignedBy:
    """One peer's consistency signature, as relayed by the hub."""

    peer: PeerId
    signature: bytes

    def __post_init__(self) -> None:
        check_peer_id(self.peer)
        _check_signature(self.signature)


@dataclass(frozen=True, slots=True)
class UnmaskRequest(_Header):
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
        _unique(self.survivors, "survivor")
        check_int(self.n_survivors, "n_survivors", len(self.survivors), MAX_PEERS)
        if type(self.signatures) is not tuple or any(
            type(s) is not SignedBy for s in self.signatures
        ):
            raise LocalProtocolError("signatures must be a tuple of SignedBy")
        _unique((s.peer for s in self.signatures), "signer")

    def to_body(self) -> dict[str, object]:
        return {
            "survivors": list(self.survivors),
            "n_survivors": self.n_survivors,
            "sigs": [[s.peer, s.signature] for s in self.signatures],
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        signatures = tuple(
            SignedBy(check_peer_id(peer, "signer"), _check_signature(sig))
            for peer, sig in _pairs(body, "sigs", MAX_PEERS)
        )
        return cls(
            run,
            round,
            _survivor_list(body),
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


def _revealed(body: Mapping[str, object], name: str) -> tuple[RevealedShare, ...]:
    return tuple(
        RevealedShare(
            check_peer_id(owner, "share owner"),
            check_bytes(value, "share", size=shamir.VALUE_SIZE, max_size=shamir.VALUE_SIZE),
        )
        for owner, value in _pairs(body, name, MAX_PEERS + 1)
    )


@dataclass(frozen=True, slots=True)
class UnmaskShares(_Header):
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
        _unique((s.owner for s in (*self.b_shares, *self.s_shares)), "share owner")

    def to_body(self) -> dict[str, object]:
        return {
            "b": [[s.owner, s.value] for s in self.b_shares],
            "s": [[s.owner, s.value] for s in self.s_shares],
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, _revealed(body, "b"), _revealed(body, "s"))


@dataclass(frozen=True, slots=True)
class RoundAbort(_Header):
    """Hub -> peer: the round is over for the recipient; it must discard its secrets."""

    TYPE: ClassVar[str] = "round_abort"
    reason: str

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.reason) is not str or len(self.reason) > MAX_REASON:
            raise LocalProtocolError(f"reason must be a string of at most {MAX_REASON} characters")

    def to_body(self) -> dict[str, object]:
        return {"reason": self.reason}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_str(body, "reason", max_length=MAX_REASON))


Message = (
    KeyAdvert
    | Roster
    | EncryptedShares
    | ForwardedShares
    | MaskedInput
    | ConsistencyRequest
    | ConsistencySignature
    | UnmaskRequest
    | UnmaskShares
    | RoundAbort
)

MESSAGE_TYPES: tuple[type[Message], ...] = (
    KeyAdvert,
    Roster,
    EncryptedShares,
    ForwardedShares,
    MaskedInput,
    ConsistencyRequest,
    ConsistencySignature,
    UnmaskRequest,
    UnmaskShares,
    RoundAbort,
)
