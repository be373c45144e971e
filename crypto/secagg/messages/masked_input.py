"""Stage 2, MaskedInputCollection (Bonawitz et al. 2017): each peer's masked input.

    peer -> hub   MaskedInput: y_u, packed

`MAX_VECTOR_BYTES` bounds every packed vector; the wire sizes its frames by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.secagg.fields import check_bytes, get_bytes
from fedd.crypto.secagg.messages.common import Header
from fedd.crypto.secagg.params import MAX_DIM

__all__ = ["MAX_VECTOR_BYTES", "MaskedInput"]

MAX_VECTOR_BYTES = MAX_DIM * 8


@dataclass(frozen=True, slots=True)
class MaskedInput(Header):
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
