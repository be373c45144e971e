"""Exact integers in 64-bit lanes: counts, and signed integers of any size.

Masks cancel mod 2^64, lane by lane. An integer that fits one lane with room
for the sum over every peer (below 2^48 in magnitude, as every count is) travels
as is, in two's complement: the lane of the total is the sum mod 2^64, and
lifting it to [-2^63, 2^63) gives the exact sum. A larger one (a sum of
squares of fixed-point values runs to hundreds of bits) is split into limbs of
LIMB_BITS bits, one per lane. Each lane then sums at most MAX_SUMMANDS limbs
of LIMB_BITS bits, which stays below 2^63, so the lanes of the unmasked total
are the exact sums of the limbs, and recombining them gives the exact sum of
the integers:

    v  ->  (v mod 2^(L*LIMB_BITS)) in base 2^LIMB_BITS: L lanes
    sum of lanes  ->  sum_j lane_j * 2^(j*LIMB_BITS), lifted to a signed integer

Counts are most of what an evaluation sends (two per bin, thousands of bins),
so one lane each instead of two halves those vectors, and with them the
masking, the hub's sum and the bytes on the wire.

`IntLanes(count, bits)` holds `count` signed integers of which each peer's
is below 2^(bits-1) in magnitude; it picks L so that the sum over
MAX_SUMMANDS peers still lifts correctly, and checks every value it encodes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from fedd.crypto._args import require_bytes
from fedd.crypto.errors import ParameterError

__all__ = ["LANE_BITS", "LIMB_BITS", "MAX_SUMMANDS", "IntLanes"]

LANE_BITS = 64
LIMB_BITS = 48
# Peers whose limbs one lane can sum without reaching 2^63.
MAX_SUMMANDS = 1 << (LANE_BITS - 1 - LIMB_BITS)
_SUM_GROWTH = MAX_SUMMANDS.bit_length() - 1  # bits a sum over MAX_SUMMANDS peers adds
_INT = frozenset({int})


@dataclass(frozen=True, slots=True)
class IntLanes:
    """`count` signed integers, each peer's below 2^(bits-1) in magnitude."""

    count: int
    bits: int

    def __post_init__(self) -> None:
        if type(self.count) is not int or self.count < 0:
            raise ParameterError(f"count must be an int >= 0, got {self.count!r}")
        if type(self.bits) is not int or not 2 <= self.bits <= 4096:
            raise ParameterError(f"bits must be an int in [2, 4096], got {self.bits!r}")

    @property
    def limbs(self) -> int:
        """Lanes per integer: room for the sum over MAX_SUMMANDS peers, and its sign."""
        if self._whole_lane:
            return 1
        return -(-(self.bits + _SUM_GROWTH) // LIMB_BITS)

    @property
    def _whole_lane(self) -> bool:
        """Whether the sum over MAX_SUMMANDS peers stays within [-2^63, 2^63)."""
        return self.bits + _SUM_GROWTH <= LANE_BITS

    @property
    def lanes(self) -> int:
        return self.count * self.limbs

    @property
    def nbytes(self) -> int:
        return self.lanes * LANE_BITS // 8

    def encode(self, values: Sequence[int]) -> bytes:
        """Pack `values` (exactly `count` ints) into lanes, little-endian.

        Raises TypeError unless every value is an int (not a bool),
        ValueError for the wrong count or a value out of range.
        """
        if len(values) != self.count:
            raise ValueError(f"expected {self.count} integers, got {len(values)}")
        if not _INT.issuperset(map(type, values)):
            wrong = next(v for v in values if type(v) is not int)
            raise TypeError(f"values must be ints, not {type(wrong).__name__}")
        bound = 1 << (self.bits - 1)
        if values and not -bound < min(values) <= max(values) < bound:
            wrong = next(v for v in values if not -bound < v < bound)
            raise ValueError(f"an integer of {wrong.bit_length()} bits is over 2^{self.bits - 1}")
        if self._whole_lane:
            return struct.pack(f"<{self.count}q", *values)
        span = 1 << (self.limbs * LIMB_BITS)
        mask = (1 << LIMB_BITS) - 1
        lanes: list[int] = []
        for value in values:
            word = value % span
            lanes.extend((word >> (LIMB_BITS * j)) & mask for j in range(self.limbs))
        return struct.pack(f"<{len(lanes)}Q", *lanes)

    def decode(self, total: bytes) -> list[int]:
        """The exact sums, from the lane-wise sum of at most MAX_SUMMANDS encodings.

        Raises TypeError unless `total` is bytes, ValueError for the wrong size.
        """
        require_bytes("total", total)
        if len(total) != self.nbytes:
            raise ValueError(f"expected {self.nbytes} bytes, got {len(total)}")
        if self._whole_lane:  # the sum mod 2^64, read as signed: lifted
            return list(struct.unpack(f"<{self.count}q", total))
        lanes = struct.unpack(f"<{self.lanes}Q", total)
        span = 1 << (self.limbs * LIMB_BITS)
        out = []
        for i in range(0, len(lanes), self.limbs):
            word = sum(lane << (LIMB_BITS * j) for j, lane in enumerate(lanes[i : i + self.limbs]))
            word %= span
            out.append(word - span if 2 * word >= span else word)
        return out
