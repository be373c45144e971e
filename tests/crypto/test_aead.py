"""crypto.aead: round trip, tampering of every part, context binding, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.crypto.aead import KEY_SIZE, NONCE_SIZE, OVERHEAD, TAG_SIZE, seal, unseal
from fedd.crypto.errors import CryptoCheckFailed
from tests.crypto._support import FAST, seeded_random_bytes

KEY = bytes(range(32))
CONTEXT: dict[str, object] = {"sender": "alice", "recipient": "bob", "run": "run-1", "round": 4}
PLAINTEXT = b"shares of b_u and s_sk for bob" * 3


def _seal(plaintext: bytes = PLAINTEXT, key: bytes = KEY, **changes: object) -> bytes:
    return seal(key, plaintext, **{**CONTEXT, **changes})  # type: ignore[arg-type]


def _unseal(blob: bytes, key: bytes = KEY, **changes: object) -> bytes:
    return unseal(key, blob, **{**CONTEXT, **changes})  # type: ignore[arg-type]


def test_overhead_is_nonce_plus_tag() -> None:
    assert OVERHEAD == NONCE_SIZE + TAG_SIZE == 28
    assert len(_seal()) == len(PLAINTEXT) + OVERHEAD
    assert len(_seal(b"")) == OVERHEAD


@FAST
@given(plaintext=st.binary(max_size=300), key=st.binary(min_size=32, max_size=32))
def test_round_trip(plaintext: bytes, key: bytes) -> None:
    assert _unseal(_seal(plaintext, key), key) == plaintext


def test_nonce_comes_from_random_bytes_and_is_prepended() -> None:
    calls: list[int] = []
    source = seeded_random_bytes(b"aead")

    def recording(n: int) -> bytes:
        calls.append(n)
        return source(n)

    blob = _seal(random_bytes=recording)
    assert calls == [NONCE_SIZE]
    assert blob[:NONCE_SIZE] == seeded_random_bytes(b"aead")(NONCE_SIZE)
    assert blob == _seal(random_bytes=seeded_random_bytes(b"aead"))
    assert _seal() != _seal()  # fresh nonces by default
    assert PLAINTEXT not in blob


def test_every_flipped_bit_is_caught() -> None:
    blob = _seal(b"short share")
    for i in range(len(blob)):  # nonce, ciphertext and tag alike
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= bit
            with pytest.raises(CryptoCheckFailed, match="authentication"):
                _unseal(bytes(tampered))


@pytest.mark.parametrize("keep", [0, 1, NONCE_SIZE, OVERHEAD - 1])
def test_short_blobs_are_caught(keep: int) -> None:
    with pytest.raises(CryptoCheckFailed, match="too short"):
        _unseal(_seal()[:keep])


@pytest.mark.parametrize("drop", [1, TAG_SIZE, len(PLAINTEXT)])
def test_truncation_is_caught(drop: int) -> None:
    with pytest.raises(CryptoCheckFailed, match="authentication"):
        _unseal(_seal()[:-drop])


def test_extension_is_caught() -> None:
    with pytest.raises(CryptoCheckFailed):
        _unseal(_seal() + b"\x00")


@pytest.mark.parametrize(
    "changes",
    [
        {"sender": "carol"},
        {"recipient": "carol"},
        {"sender": "bob", "recipient": "alice"},  # the reverse direction
        {"run": "run-2"},
        {"round": 5},
        {"round": 4 + 2**32},
        {"sender": "alic", "recipient": "ebob"},  # same concatenation
        {"sender": "alice", "recipient": "bobr", "run": "un-1"},
    ],
)
def test_context_mismatch_is_caught(changes: dict[str, object]) -> None:
    with pytest.raises(CryptoCheckFailed):
        _unseal(_seal(), **changes)


def test_wrong_key_is_caught() -> None:
    with pytest.raises(CryptoCheckFailed):
        _unseal(_seal(), key=bytes(32))


def test_errors_do_not_echo_secrets() -> None:
    blob = _seal(b"top-secret-share")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(CryptoCheckFailed) as info:
        _unseal(tampered)
    text = str(info.value)
    assert "top-secret" not in text
    assert KEY.hex()[:8] not in text


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"key": bytes(31)}, ValueError, "key"),
        ({"key": bytes(33)}, ValueError, "key"),
        ({"key": bytearray(32)}, TypeError, "key"),
        ({"sender": ""}, ValueError, "sender"),
        ({"recipient": b"bob"}, TypeError, "recipient"),
        ({"run": None}, TypeError, "run"),
        ({"round": -1}, ValueError, "round"),
        ({"round": 2**64}, ValueError, "round"),
        ({"round": False}, TypeError, "round"),
    ],
)
def test_bad_arguments(changes: dict[str, object], error: type[Exception], match: str) -> None:
    key = changes.pop("key", KEY)
    with pytest.raises(error, match=match):
        _seal(key=key, **changes)  # type: ignore[arg-type]
    blob = _seal()
    with pytest.raises(error, match=match):
        _unseal(blob, key=key, **changes)  # type: ignore[arg-type]


def test_bad_plaintext_blob_and_nonce_source() -> None:
    with pytest.raises(TypeError, match="plaintext"):
        _seal(bytearray(b"x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="blob"):
        _unseal(bytearray(_seal()))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="random_bytes"):
        _seal(random_bytes=lambda n: bytes(n + 1))
    assert KEY_SIZE == 32
