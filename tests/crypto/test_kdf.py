"""crypto.kdf: RFC 5869 known answers and the domain separation of derive_key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.crypto import _framing
from fedd.crypto.kdf import Purpose, derive_key, hkdf_sha256
from tests.crypto._support import FAST, load_vectors

CASES = load_vectors("rfc5869_hkdf.json")["cases"]
SECRET = bytes(range(32))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["case"][:3])
def test_rfc5869(case: dict[str, object]) -> None:
    okm = hkdf_sha256(
        bytes.fromhex(str(case["ikm"])),
        salt=bytes.fromhex(str(case["salt"])),
        info=bytes.fromhex(str(case["info"])),
        length=int(str(case["length"])),
    )
    assert okm == bytes.fromhex(str(case["okm"]))


@pytest.mark.parametrize("length", [0, -1, 255 * 32 + 1])
def test_hkdf_length_out_of_range(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        hkdf_sha256(SECRET, salt=b"", info=b"", length=length)


def test_hkdf_extremes_of_length() -> None:
    assert len(hkdf_sha256(SECRET, salt=b"", info=b"", length=1)) == 1
    assert len(hkdf_sha256(SECRET, salt=b"", info=b"", length=255 * 32)) == 255 * 32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ikm": "secret"},
        {"ikm": bytearray(32)},
        {"salt": None},
        {"info": "x"},
        {"length": 32.0},
        {"length": True},
    ],
)
def test_hkdf_wrong_types(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"ikm": SECRET, "salt": b"", "info": b"", "length": 32}
    args.update(kwargs)
    with pytest.raises(TypeError):
        hkdf_sha256(args.pop("ikm"), **args)  # type: ignore[arg-type]


BASE: dict[str, object] = {
    "purpose": Purpose.SHARE_KEY,
    "run": "run-1",
    "round": 3,
    "parties": ("alice", "bob"),
}


def _key(secret: bytes = SECRET, **changes: object) -> bytes:
    args = {**BASE, **changes}
    return derive_key(secret, **args)  # type: ignore[arg-type]


def test_derive_key_is_deterministic_and_sized() -> None:
    assert _key() == _key()
    assert len(_key()) == 32
    assert len(_key(length=64)) == 64
    assert _key(length=64)[:32] == _key()  # HKDF-Expand output is a prefix stream


@pytest.mark.parametrize(
    "changes",
    [
        {"purpose": Purpose.PAIR_MASK},
        {"purpose": Purpose.SELF_MASK, "parties": ("alice",)},
        {"run": "run-2"},
        {"run": "run-10"},
        {"round": 4},
        {"round": 0},
        {"round": 3 + 2**32},
        {"parties": ("bob", "alice")},  # the order of a SHARE_KEY pair is its direction
        {"parties": ("alice", "carol")},
        {"parties": ("alicebob", "x")},
        {"parties": ("alic", "ebob")},
    ],
)
def test_any_change_of_context_changes_the_key(changes: dict[str, object]) -> None:
    assert _key(**changes) != _key()


def test_secret_changes_the_key() -> None:
    assert _key(bytes(32)) != _key()
    assert _key(SECRET + b"\x00") != _key()


def test_ambiguous_splits_differ() -> None:
    assert _key(parties=("ab", "c")) != _key(parties=("a", "bc"))
    # run and party boundaries: the same concatenated text in different fields
    assert _key(run="r", parties=("1alice", "bob")) != _key(run="r1", parties=("alice", "bob"))


def test_purposes_with_same_parties_differ() -> None:
    pair = ("alice", "bob")
    share = derive_key(SECRET, purpose=Purpose.SHARE_KEY, run="r", round=1, parties=pair)
    mask = derive_key(SECRET, purpose=Purpose.PAIR_MASK, run="r", round=1, parties=pair)
    assert share != mask


def test_known_info_encoding() -> None:
    # Pins the wire-visible derivation: a change here breaks interoperability.
    info = (
        b"\x00\x00\x00\x07fedd/v1"
        b"\x00\x00\x00\x09pair-mask"
        b"\x00\x00\x00\x01r"
        b"\x00\x00\x00\x08"
        + (7).to_bytes(8, "big")
        + b"\x00\x00\x00\x08"
        + (2).to_bytes(8, "big")
        + b"\x00\x00\x00\x01a"
        b"\x00\x00\x00\x01b"
    )
    expected = hkdf_sha256(SECRET, salt=b"", info=info)
    got = derive_key(SECRET, purpose=Purpose.PAIR_MASK, run="r", round=7, parties=("a", "b"))
    assert got == expected


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"secret": bytes(31)}, ValueError, "at least 32"),
        ({"secret": "k" * 32}, TypeError, "secret"),
        ({"purpose": "share-key"}, TypeError, "purpose"),
        ({"run": ""}, ValueError, "run"),
        ({"run": b"run"}, TypeError, "run"),
        ({"run": "\ud800"}, ValueError, "UTF-8"),
        ({"round": -1}, ValueError, "round"),
        ({"round": 2**64}, ValueError, "round"),
        ({"round": True}, TypeError, "round"),
        ({"round": 1.0}, TypeError, "round"),
        ({"parties": ["alice", "bob"]}, TypeError, "tuple"),
        ({"parties": ("alice", "")}, ValueError, "party"),
        ({"parties": ("alice", 2)}, TypeError, "party"),
        ({"parties": ("alice",)}, ValueError, "2 parties"),
        ({"parties": ("a", "b", "c")}, ValueError, "2 parties"),
        ({"purpose": Purpose.SELF_MASK}, ValueError, "1 parties"),
        ({"purpose": Purpose.PAIR_MASK, "parties": ("bob", "alice")}, ValueError, "sorted"),
        ({"purpose": Purpose.PAIR_MASK, "parties": ("bob", "bob")}, ValueError, "sorted"),
        ({"length": 0}, ValueError, "length"),
    ],
)
def test_derive_key_rejects_bad_arguments(
    changes: dict[str, object], error: type[Exception], match: str
) -> None:
    secret = changes.pop("secret", SECRET)
    with pytest.raises(error, match=match):
        _key(secret, **changes)  # type: ignore[arg-type]


def test_errors_do_not_echo_the_secret() -> None:
    secret = bytes.fromhex("deadbeef" * 7)  # 28 bytes: too short
    with pytest.raises(ValueError) as info:
        _key(secret)
    assert "deadbeef" not in str(info.value)
    assert "\\xde" not in str(info.value)


def _unframe(data: bytes) -> list[bytes]:
    """Reference parser: the inverse of _framing.frame."""
    fields, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        fields.append(data[i + 4 : i + 4 + size])
        i += 4 + size
    assert i == len(data)
    return fields


@FAST
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_framing_is_invertible(fields: list[bytes]) -> None:
    # Invertible means injective: no two tuples share an encoding.
    assert _unframe(_framing.frame(*fields)) == fields


@FAST
@given(
    a=st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
    b=st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
)
def test_distinct_parties_give_distinct_keys(a: tuple[str, str], b: tuple[str, str]) -> None:
    # st.text() draws no lone surrogates, so every id here is valid UTF-8.
    same = _key(parties=a) == _key(parties=b)
    assert same == (a == b)
