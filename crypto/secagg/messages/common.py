"""What every SecAgg message shares: the header, the checks several stages use, RoundAbort.

`Header` carries the envelope's run id and round into each message and
checks them. The helpers check lists of peers (no one twice), the
`[peer, value]` pairs msgpack delivers, Ed25519 signatures and survivor
lists. `RoundAbort` may end any stage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import (
    MAX_ROUND,
    PeerId,
    check_bytes,
    check_int,
    check_peer_ids,
    check_run_id,
    get_list,
    get_str,
)
from fedd.crypto.secagg.params import MAX_PEERS
from fedd.crypto.signing import SIGNATURE_SIZE

__all__ = [
    "MAX_REASON",
    "Header",
    "RoundAbort",
    "check_signature",
    "get_survivors",
    "pairs",
    "unique",
]

MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Header:
    """The run id and round from the envelope, checked by each message's __post_init__."""

    run: str
    round: int

    def _check_header(self) -> None:
        check_run_id(self.run)
        check_int(self.round, "round", 0, MAX_ROUND)


def unique(peers: Iterable[PeerId], what: str) -> None:
    """Each of `peers` a valid peer id, none listed twice; `what` names them in the error."""
    ids = check_peer_ids(peers, what)
    if len(frozenset(ids)) != len(ids):
        twice = next(peer for peer, times in Counter(ids).items() if times > 1)
        raise LocalProtocolError(f"{what} {twice!r} listed twice")


def pairs(body: Mapping[str, object], name: str, max_length: int) -> list[tuple[object, object]]:
    """A list of two-element lists, as msgpack delivers `[[id, bytes], ...]`."""
    out = []
    for item in get_list(body, name, max_length=max_length):
        if type(item) is not list or len(item) != 2:
            raise LocalProtocolError(f"{name!r} entries must be [peer, value] pairs")
        out.append((item[0], item[1]))
    return out


def check_signature(signature: object, *, optional: bool = False) -> bytes:
    """An Ed25519 signature: 64 bytes (or empty where `optional`, in passive rounds)."""
    if optional and signature == b"" and type(signature) is bytes:
        return signature
    return check_bytes(signature, "signature", size=SIGNATURE_SIZE, max_size=SIGNATURE_SIZE)


def get_survivors(body: Mapping[str, object]) -> tuple[PeerId, ...]:
    """The body's `survivors`: a list of peer ids."""
    return check_peer_ids(get_list(body, "survivors", max_length=MAX_PEERS), "survivor")


@dataclass(frozen=True, slots=True)
class RoundAbort(Header):
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
