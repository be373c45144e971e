"""Active rounds, after stage 2, ConsistencyCheck (Bonawitz et al. 2017): U3, signed.

    hub -> peer   ConsistencyRequest: all of U3, the peers whose inputs are summed
    peer -> hub   ConsistencySignature: Ed25519 over U3 (`crypto.secagg.signed.survivors_statement`)

The hub relays the signatures it collected, one `SignedBy` each, in the
UnmaskRequest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import PeerId, check_peer_id, get_bytes
from fedd.crypto.secagg.messages.common import Header, check_signature, get_survivors, unique
from fedd.crypto.signing import SIGNATURE_SIZE

__all__ = ["ConsistencyRequest", "ConsistencySignature", "SignedBy"]


@dataclass(frozen=True, slots=True)
class ConsistencyRequest(Header):
    """Active rounds, after stage 2, hub -> survivor: U3, the peers whose inputs are summed.

    The recipient signs exactly this set (Bonawitz et al. 2017, ConsistencyCheck).
    """

    TYPE: ClassVar[str] = "consistency_request"
    survivors: tuple[PeerId, ...]

    def __post_init__(self) -> None:
        self._check_header()
        if type(self.survivors) is not tuple:
            raise LocalProtocolError("survivors must be a tuple")
        unique(self.survivors, "survivor")

    def to_body(self) -> dict[str, object]:
        return {"survivors": list(self.survivors)}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_survivors(body))


@dataclass(frozen=True, slots=True)
class ConsistencySignature(Header):
    """Active rounds, peer -> hub: the sender's Ed25519 signature over U3."""

    TYPE: ClassVar[str] = "consistency_signature"
    signature: bytes

    def __post_init__(self) -> None:
        self._check_header()
        check_signature(self.signature)

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
        check_signature(self.signature)
