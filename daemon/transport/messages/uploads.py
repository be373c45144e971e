"""What a peer sends the hub in a round besides the protocol's own messages.

peer -> hub      PlainContribution (plain rounds), PeerStats
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import check_bytes, check_int, get_bytes, get_int
from fedd.crypto.secagg.messages.masked_input import MAX_VECTOR_BYTES
from fedd.daemon.transport.messages.common import Header, get_float

__all__ = ["PeerStats", "PlainContribution", "coarse_seconds"]

_FINEST = 2.0**-6


@dataclass(frozen=True, slots=True)
class PlainContribution(Header):
    """Peer -> hub, plain rounds: the peer's vector for the round, unmasked
    (its shape is the RoundStart's `layout`)."""

    TYPE: ClassVar[str] = "plain_contribution"
    vector: bytes

    def __post_init__(self) -> None:
        self._check_header()
        check_bytes(self.vector, "vector", max_size=MAX_VECTOR_BYTES)
        if not self.vector:
            raise LocalProtocolError("a contribution is never empty")

    def to_body(self) -> dict[str, object]:
        return {"vector": self.vector}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_bytes(body, "vector", max_size=MAX_VECTOR_BYTES))


@dataclass(frozen=True, slots=True)
class PeerStats(Header):
    """Peer -> hub, right after local training: what training cost (client_perf.csv).

    In secure rounds `n_samples` is 0: the weight travels only inside the
    masked sum; and the seconds are `coarse_seconds`, since they grow with
    the sample count. Upload bytes are counted by the hub itself.
    """

    TYPE: ClassVar[str] = "peer_stats"
    n_samples: int
    train_s: float
    cpu_s: float

    def __post_init__(self) -> None:
        self._check_header()
        check_int(self.n_samples, "n_samples", 0, 2**62)
        for name in ("train_s", "cpu_s"):
            value = getattr(self, name)
            if type(value) is not float or not 0 <= value < 1e9:
                raise LocalProtocolError(f"{name} must be a non-negative float")

    def to_body(self) -> dict[str, object]:
        return {"n_samples": self.n_samples, "train_s": self.train_s, "cpu_s": self.cpu_s}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_int(body, "n_samples", 0, 2**62),
            get_float(body, "train_s", 0.0, 1e9),
            get_float(body, "cpu_s", 0.0, 1e9),
        )


def coarse_seconds(seconds: float) -> float:
    """`seconds` rounded up to a power of two (at least 2^-6): what a peer reports of its
    training time in secure rounds, where the exact figure would track its sample count."""
    if not math.isfinite(seconds) or seconds <= _FINEST:
        return _FINEST
    return float(2.0 ** math.ceil(math.log2(seconds)))
