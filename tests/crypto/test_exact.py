"""crypto.exact: integers of any size summed exactly through 64-bit lanes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.crypto.errors import ParameterError
from fedd.crypto.exact import MAX_SUMMANDS, IntLanes
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.params import MAX_PEERS


def lane_sum(parts: list[bytes], lanes: int) -> bytes:
    total = VectorSum(lanes, 8)
    for part in parts:
        total.add(part)
    return total.to_bytes()


@settings(max_examples=80, deadline=None)
@given(bits=st.integers(2, 400), data=st.data())
def test_sums_of_any_size_come_back_exactly(bits: int, data: st.DataObject) -> None:
    bound = (1 << (bits - 1)) - 1
    peers = data.draw(
        st.lists(
            st.lists(st.integers(-bound, bound), min_size=3, max_size=3), min_size=1, max_size=6
        )
    )
    codec = IntLanes(3, bits)
    total = lane_sum([codec.encode(v) for v in peers], codec.lanes)
    assert codec.decode(total) == [sum(column) for column in zip(*peers, strict=True)]


def test_the_largest_sum_of_the_most_peers_still_lifts() -> None:
    codec = IntLanes(2, 300)
    top = (1 << 299) - 1
    part = codec.encode([top, -top])
    # MAX_SUMMANDS copies, summed lane by lane mod 2^64 as the masks leave them.
    lanes = [int.from_bytes(part[i : i + 8], "little") for i in range(0, len(part), 8)]
    total = b"".join(((v * MAX_SUMMANDS) % 2**64).to_bytes(8, "little") for v in lanes)
    assert codec.decode(total) == [top * MAX_SUMMANDS, -top * MAX_SUMMANDS]
    assert MAX_PEERS <= MAX_SUMMANDS  # every round fedd can run stays within it


@pytest.mark.parametrize("bits", [49, 50])
def test_the_largest_counts_of_the_most_peers_still_lift(bits: int) -> None:
    # 49 bits: the widest value one lane holds whole; 50: the narrowest in limbs.
    codec = IntLanes(2, bits)
    top = (1 << (bits - 1)) - 1
    part = codec.encode([top, -top])
    lanes = [int.from_bytes(part[i : i + 8], "little") for i in range(0, len(part), 8)]
    total = b"".join(((v * MAX_SUMMANDS) % 2**64).to_bytes(8, "little") for v in lanes)
    assert codec.decode(total) == [top * MAX_SUMMANDS, -top * MAX_SUMMANDS]


def test_masks_cancel_through_the_limbs() -> None:
    codec = IntLanes(1, 200)
    rng = random.Random(1)
    values = [rng.randrange(-(2**199) + 1, 2**199) for _ in range(4)]
    mask = [rng.randrange(2**64) for _ in range(codec.lanes)]
    packed = [codec.encode([v]) for v in values]
    masked = []
    for i, part in enumerate(packed):
        sign = 1 if i % 2 == 0 else -1  # two peers add the mask, two take it away
        lanes = [int.from_bytes(part[j : j + 8], "little") for j in range(0, len(part), 8)]
        masked.append(
            b"".join(
                ((v + sign * m) % 2**64).to_bytes(8, "little")
                for v, m in zip(lanes, mask, strict=True)
            )
        )
    assert codec.decode(lane_sum(masked, codec.lanes)) == [sum(values)]


def test_values_and_shapes_are_checked() -> None:
    codec = IntLanes(2, 10)
    assert codec.limbs == 1 and codec.lanes == 2 and codec.nbytes == 16
    # A whole lane while the sum over MAX_SUMMANDS peers stays below 2^63.
    assert IntLanes(1, 49).limbs == 1 and IntLanes(1, 50).limbs == 2
    with pytest.raises(ValueError, match="over 2"):
        codec.encode([512, 0])
    with pytest.raises(ValueError, match="expected 2 integers"):
        codec.encode([1])
    with pytest.raises(TypeError):
        codec.encode([True, 0])
    with pytest.raises(ValueError, match="expected 16 bytes"):
        codec.decode(b"\0" * 8)
    for bad in ({"count": -1, "bits": 8}, {"count": 1, "bits": 1}):
        with pytest.raises(ParameterError):
            IntLanes(**bad)
