"""crypto.prg: determinism, shapes, known keystreams, uniformity, errors."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.crypto.prg import MAX_COUNT, PrgKind, expand, expand_chunks
from tests.crypto._support import FAST

KINDS = list(PrgKind)
SEED = bytes(range(32))
OTHER = bytes(range(1, 33))
_CODES = {2: "H", 4: "I", 8: "Q"}


def _values(data: bytes, width: int) -> tuple[int, ...]:
    return struct.unpack(f"<{len(data) // width}{_CODES[width]}", data)


def test_default_kind_is_aes_ctr() -> None:
    assert expand(SEED, 100) == expand(SEED, 100, 4, PrgKind.AES_CTR)


def test_aes_ctr_is_aes_256_keyed_with_the_whole_seed() -> None:
    # AES-256 of the zero block under the zero key (counter 0). AES-128 under
    # the first 16 bytes would give 66e94bd4ef8a2c3b884cfa59ca342b2e instead.
    assert expand(bytes(32), 4, 4, PrgKind.AES_CTR) == bytes.fromhex(
        "dc95c078a2408989ad48a21492842087"
    )


def test_chacha20_zero_key_keystream() -> None:
    # RFC 8439 appendix A.1, test vector 1: zero key, zero nonce, counter 0.
    assert expand(bytes(32), 16, 4, PrgKind.CHACHA20) == bytes.fromhex(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("width", [2, 4, 8])
@pytest.mark.parametrize("count", [0, 1, 3, 8, 1000])
def test_length_and_determinism(kind: PrgKind, width: int, count: int) -> None:
    out = expand(SEED, count, width, kind)
    assert len(out) == count * width
    assert out == expand(SEED, count, width, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_one_stream_whatever_the_width(kind: PrgKind) -> None:
    assert expand(SEED, 6, 4, kind) == expand(SEED, 12, 2, kind) == expand(SEED, 3, 8, kind)
    assert expand(SEED, 10, 4, kind)[:20] == expand(SEED, 5, 4, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_distinct_seeds_differ(kind: PrgKind) -> None:
    assert expand(SEED, 64, 4, kind) != expand(OTHER, 64, 4, kind)


def test_kinds_differ() -> None:
    streams = {expand(SEED, 64, 4, kind) for kind in KINDS}
    assert len(streams) == len(KINDS)


@FAST
@given(
    seed=st.binary(min_size=32, max_size=32),
    count=st.integers(0, 3000),
    width=st.sampled_from([2, 4, 8]),
    kind=st.sampled_from(KINDS),
    chunk=st.sampled_from([64, 128, 1024, 4096]),
)
def test_chunks_concatenate_to_expand(
    seed: bytes, count: int, width: int, kind: PrgKind, chunk: int
) -> None:
    pieces = list(expand_chunks(seed, count, width, kind, chunk_bytes=chunk))
    assert b"".join(pieces) == expand(seed, count, width, kind)
    assert all(len(p) == chunk for p in pieces[:-1])
    assert all(0 < len(p) <= chunk for p in pieces)


def _chi_square(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


def _chi_square_bounds(df: int, z: float = 4.75) -> tuple[float, float]:
    """Two-sided critical values at about 1e-6 per tail (Wilson-Hilferty)."""
    k = 2 / (9 * df)
    return df * (1 - k - z * math.sqrt(k)) ** 3, df * (1 - k + z * math.sqrt(k)) ** 3


def _uniform_enough(values: tuple[int, ...] | list[int], width: int) -> bool:
    """Both the top byte and the bottom byte of the values spread evenly."""
    low, high = _chi_square_bounds(255)
    top = [0] * 256
    bottom = [0] * 256
    shift = 8 * width - 8
    for v in values:
        top[v >> shift] += 1
        bottom[v & 0xFF] += 1
    return all(low < _chi_square(c) < high for c in (top, bottom))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("width", [2, 4, 8])
def test_chi_square_on_fixed_seeds(kind: PrgKind, width: int) -> None:
    for seed in (SEED, OTHER, bytes(32)):
        assert _uniform_enough(_values(expand(seed, 1 << 15, width, kind), width), width)


def test_chi_square_detects_modulo_bias_and_counters() -> None:
    # The same test rejects what this module avoids: reducing 16-bit values
    # mod 40000 (as a range-limited draw would) and a non-random sequence.
    raw = _values(expand(SEED, 1 << 15, 2), 2)
    biased = [v % 40000 * 65536 // 40000 for v in raw]
    assert not _uniform_enough(biased, 2)
    assert not _uniform_enough(list(range(1 << 15)), 2)


def test_every_16_bit_value_is_reachable() -> None:
    # 2**20 draws miss a given value with probability e**-16: with these fixed
    # seeds all 65536 appear, including 0 and 2**16 - 1.
    seen = set(_values(expand(SEED, 1 << 20, 2), 2))
    assert len(seen) == 1 << 16


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_seed_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        expand(bytes(size), 4)


@pytest.mark.parametrize("seed", [bytearray(32), "s" * 32, None])
def test_seed_must_be_bytes(seed: object) -> None:
    with pytest.raises(TypeError):
        expand(seed, 4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("count", "error"),
    [(-1, ValueError), (MAX_COUNT + 1, ValueError), (True, TypeError), (2.0, TypeError)],
)
def test_bad_count(count: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        expand(SEED, count)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("width", "error"),
    [(0, ValueError), (1, ValueError), (3, ValueError), (16, ValueError), (True, TypeError)],
)
def test_bad_width(width: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        expand(SEED, 4, width)  # type: ignore[arg-type]


def test_bad_kind() -> None:
    with pytest.raises(TypeError, match="PrgKind"):
        expand(SEED, 4, 4, "aes-ctr")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunk", "error"), [(0, ValueError), (100, ValueError), (64.0, TypeError)]
)
def test_bad_chunk_size(chunk: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        expand_chunks(SEED, 4, chunk_bytes=chunk)  # type: ignore[arg-type]


def test_expand_chunks_checks_arguments_eagerly() -> None:
    # The error comes from the call itself, not from the first next().
    with pytest.raises(ValueError, match="32 bytes"):
        expand_chunks(bytes(3), 4, chunk_bytes=64)


def test_long_streams_beyond_the_shared_zero_buffer() -> None:
    # Above 16 MiB expand encrypts its own zero buffer; the stream must not change.
    count = (16 << 20) // 4 + 17
    long = expand(SEED, count)
    assert len(long) == 4 * count
    assert long[:4096] == expand(SEED, 1024)
    tail = b"".join(expand_chunks(SEED, count, chunk_bytes=1 << 16))[-4096:]
    assert long[-4096:] == tail
