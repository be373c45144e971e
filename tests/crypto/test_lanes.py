"""crypto.lanes: VectorSum against a naive per-element reference."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.crypto.lanes import CHUNK_BYTES, VectorSum, add_packed, negate_packed, sub_packed
from fedd.crypto.prg import PrgKind, expand
from tests.crypto._support import FAST, THOROUGH

WIDTHS = [2, 4, 8]


def _unpack(packed: bytes, width: int) -> list[int]:
    return [int.from_bytes(packed[i : i + width], "little") for i in range(0, len(packed), width)]


def _pack(values: list[int], width: int) -> bytes:
    return b"".join(v.to_bytes(width, "little") for v in values)


def _naive(count: int, width: int, terms: list[tuple[int, bytes]]) -> bytes:
    modulus = 1 << (8 * width)
    acc = [0] * count
    for sign, packed in terms:
        for i, v in enumerate(_unpack(packed, width)):
            acc[i] = (acc[i] + sign * v) % modulus
    return _pack(acc, width)


def _apply(total: VectorSum, terms: list[tuple[int, bytes]]) -> None:
    for sign, packed in terms:
        (total.add if sign > 0 else total.subtract)(packed)


@st.composite
def _terms(
    draw: st.DrawFn, max_count: int = 40, max_terms: int = 25
) -> tuple[int, int, list[tuple[int, bytes]]]:
    width = draw(st.sampled_from(WIDTHS))
    count = draw(st.integers(0, max_count))
    top = (1 << (8 * width)) - 1
    # Lanes of 0 and 2**k - 1 are where carries and borrows go wrong.
    lane = st.one_of(st.just(0), st.just(top), st.just(1), st.just(top - 1), st.integers(0, top))
    vector = st.lists(lane, min_size=count, max_size=count).map(lambda v: _pack(v, width))
    terms = draw(st.lists(st.tuples(st.sampled_from([1, -1]), vector), max_size=max_terms))
    return count, width, terms


@THOROUGH
@given(_terms())
def test_matches_naive_reference(case: tuple[int, int, list[tuple[int, bytes]]]) -> None:
    count, width, terms = case
    total = VectorSum(count, width)
    _apply(total, terms)
    assert total.to_bytes() == _naive(count, width, terms)


@FAST
@given(_terms(), st.data())
def test_to_bytes_midway_does_not_disturb_the_sum(
    case: tuple[int, int, list[tuple[int, bytes]]], data: st.DataObject
) -> None:
    count, width, terms = case
    cut = data.draw(st.integers(0, len(terms)), label="cut")
    total = VectorSum(count, width)
    _apply(total, terms[:cut])
    assert total.to_bytes() == _naive(count, width, terms[:cut])
    assert total.to_bytes() == _naive(count, width, terms[:cut])
    _apply(total, terms[cut:])
    assert total.to_bytes() == _naive(count, width, terms)


@pytest.mark.parametrize("width", WIDTHS)
def test_all_ones_lanes_many_times(width: int) -> None:
    # Every lane at 2**k - 1 added many times: the largest carries there are.
    count, n = 37, 1000
    ones = b"\xff" * (count * width)
    total = VectorSum(count, width)
    for _ in range(n):
        total.add(ones)
    modulus = 1 << (8 * width)
    assert total.to_bytes() == _pack([(-n) % modulus] * count, width)
    for _ in range(n + 3):
        total.subtract(ones)
    assert total.to_bytes() == _pack([3] * count, width)


def test_lazy_reduction_folds_before_slots_overflow() -> None:
    # With 16-bit lanes a 32-bit slot holds fewer than 2**16 unreduced terms;
    # go well past that on both the adding and the subtracting side.
    width, count = 2, 5
    vectors = [os.urandom(count * width) for _ in range(7)]
    terms = [(1 if k % 3 else -1, vectors[k % 7]) for k in range(2 * 65536 + 1234)]
    total = VectorSum(count, width)
    _apply(total, terms)
    expected = [0] * count
    for sign, packed in terms[:21]:  # one period of both cycles: 3 * 7 terms
        for i, v in enumerate(_unpack(packed, width)):
            expected[i] += sign * v
    periods, rest = divmod(len(terms), 21)
    expected = [e * periods for e in expected]
    for sign, packed in terms[:rest]:
        for i, v in enumerate(_unpack(packed, width)):
            expected[i] += sign * v
    assert total.to_bytes() == _pack([e % 65536 for e in expected], width)


@pytest.mark.parametrize("width", WIDTHS)
def test_multi_chunk_vectors(width: int) -> None:
    # Several chunks with a ragged last one, so chunk seams are exercised.
    count = (2 * CHUNK_BYTES + 40) // width + 1
    terms = [(1, os.urandom(count * width)) for _ in range(3)]
    terms += [(-1, os.urandom(count * width)), (1, b"\xff" * (count * width))]
    total = VectorSum(count, width)
    _apply(total, terms)
    assert total.to_bytes() == _naive(count, width, terms)


@pytest.mark.parametrize("kind", list(PrgKind))
@pytest.mark.parametrize("width", WIDTHS)
def test_masks_match_expand(kind: PrgKind, width: int) -> None:
    count = CHUNK_BYTES // width + 3
    seed_a, seed_b = bytes(range(32)), bytes(range(5, 37))
    streamed = VectorSum(count, width)
    streamed.add_mask(seed_a, kind)
    streamed.subtract_mask(seed_b, kind)
    reference = VectorSum(count, width)
    reference.add(expand(seed_a, count, width, kind))
    reference.subtract(expand(seed_b, count, width, kind))
    assert streamed.to_bytes() == reference.to_bytes()


@pytest.mark.parametrize("width", WIDTHS)
def test_add_masks_equals_one_mask_at_a_time(width: int) -> None:
    count = CHUNK_BYTES // width + 5
    seeds = [bytes([i]) * 32 for i in range(5)]
    batched = VectorSum(count, width)
    batched.add_masks(seeds[:3])
    batched.subtract_masks(seeds[3:])
    batched.add_masks([])
    single = VectorSum(count, width)
    for seed in seeds[:3]:
        single.add(expand(seed, count, width))
    for seed in seeds[3:]:
        single.subtract(expand(seed, count, width))
    assert batched.to_bytes() == single.to_bytes()


def test_add_masks_beyond_slot_capacity() -> None:
    # 16-bit lanes: one call with more masks than a 32-bit slot may hold
    # unreduced must be split into batches with folds in between.
    seed, count, n = bytes(range(32)), 3, 66_000
    total = VectorSum(count, 2)
    total.add_masks([seed] * n)
    total.subtract_masks([seed] * 7)
    mask = _unpack(expand(seed, count, 2), 2)
    assert total.to_bytes() == _pack([v * (n - 7) % 65536 for v in mask], 2)


@FAST
@given(_terms(max_count=6, max_terms=30), st.integers(2, 6))
def test_batching_and_folding_logic(
    case: tuple[int, int, list[tuple[int, bytes]]], limit: int
) -> None:
    # Lower the fold threshold so that batches and folds happen constantly;
    # the sum must not notice.
    count, width, terms = case
    total = VectorSum(count, width)
    total._limit = limit
    seeds = [bytes([i % 251]) * 32 for i in range(len(terms))]
    _apply(total, terms)
    total.add_masks(seeds[::2])
    total.subtract_masks(seeds[1::2])
    masks = [(1, expand(s, count, width)) for s in seeds[::2]]
    masks += [(-1, expand(s, count, width)) for s in seeds[1::2]]
    assert total.to_bytes() == _naive(count, width, terms + masks)


def test_masks_cancel_across_peers() -> None:
    # The SecAgg identity: u adds PRG(s_uv), v subtracts it; the hub's sum of
    # masked inputs is the sum of the inputs.
    count, peers = 1000, ["a", "b", "c", "d"]
    inputs = {p: os.urandom(4 * count) for p in peers}
    seeds = {(u, v): os.urandom(32) for u in peers for v in peers if u < v}
    hub = VectorSum(count)
    for u in peers:
        masked = VectorSum(count)
        masked.add(inputs[u])
        for (a, b), seed in seeds.items():
            if u == a:
                masked.add_mask(seed)
            elif u == b:
                masked.subtract_mask(seed)
        hub.add(masked.to_bytes())
    plain = VectorSum(count)
    for p in peers:
        plain.add(inputs[p])
    assert hub.to_bytes() == plain.to_bytes()


def test_mask_errors_leave_the_sum_untouched() -> None:
    total = VectorSum(3)
    total.add(_pack([1, 2, 3], 4))
    with pytest.raises(ValueError, match="32 bytes"):
        total.add_mask(bytes(16))
    with pytest.raises(ValueError, match="32 bytes"):
        total.add_masks([bytes(32), bytes(32), bytes(31)])
    with pytest.raises(TypeError):
        total.subtract_masks([bytes(32), "seed"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="PrgKind"):
        total.subtract_mask(bytes(32), "aes-ctr")  # type: ignore[arg-type]
    assert total.to_bytes() == _pack([1, 2, 3], 4)


@FAST
@given(_terms(max_terms=2))
def test_helpers(case: tuple[int, int, list[tuple[int, bytes]]]) -> None:
    count, width, terms = case
    a = terms[0][1] if terms else _pack([0] * count, width)
    b = terms[-1][1] if terms else a
    assert add_packed(a, b, width) == _naive(count, width, [(1, a), (1, b)])
    assert sub_packed(a, b, width) == _naive(count, width, [(1, a), (-1, b)])
    assert negate_packed(a, width) == _naive(count, width, [(-1, a)])
    assert add_packed(a, negate_packed(a, width), width) == bytes(count * width)


def test_bytearray_is_accepted() -> None:
    total = VectorSum(2, 2)
    total.add(bytearray(b"\x01\x00\x02\x00"))
    assert total.to_bytes() == b"\x01\x00\x02\x00"


def test_empty_vector() -> None:
    total = VectorSum(0)
    total.add(b"")
    total.subtract(b"")
    total.add_mask(bytes(32))
    assert total.to_bytes() == b""


def test_errors() -> None:
    total = VectorSum(4)
    with pytest.raises(ValueError, match="16 bytes"):
        total.add(bytes(15))
    with pytest.raises(ValueError, match="16 bytes"):
        total.subtract(bytes(17))
    with pytest.raises(TypeError):
        total.add("x" * 16)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        total.add([0] * 16)  # type: ignore[arg-type]
    assert total.to_bytes() == bytes(16)
    with pytest.raises(ValueError, match="width"):
        VectorSum(4, 3)
    with pytest.raises(ValueError, match="count"):
        VectorSum(-1)
    with pytest.raises(TypeError):
        VectorSum(4.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        VectorSum(4, True)
    with pytest.raises(ValueError, match="differ in length"):
        add_packed(bytes(8), bytes(4))
    with pytest.raises(ValueError, match="multiple of width"):
        negate_packed(bytes(6), 4)
    with pytest.raises(ValueError, match="width"):
        sub_packed(bytes(6), bytes(6), 3)
    with pytest.raises(TypeError):
        add_packed("ab", "cd", 2)  # type: ignore[arg-type]


def test_repr_shows_no_content() -> None:
    total = VectorSum(2, 2)
    total.add(b"\xab\xcd\xef\x12")
    assert repr(total) == "VectorSum(count=2, width=2)"
