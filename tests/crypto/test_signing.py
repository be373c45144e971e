"""Ed25519 signing keys: RFC 8032 known answers, and every way a check must fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedd.crypto.errors import CryptoCheckFailed
from fedd.crypto.signing import SigningKey, agreement_public, verify

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "rfc8032_ed25519.json").read_text()
)["vectors"]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["public"][:8])
def test_rfc8032_known_answers(v):
    key = SigningKey.from_private_bytes(bytes.fromhex(v["secret"]))
    message = bytes.fromhex(v["message"])
    assert key.public == bytes.fromhex(v["public"])
    assert key.sign(message) == bytes.fromhex(v["signature"])
    verify(key.public, message, bytes.fromhex(v["signature"]))


def test_tampered_message_signature_or_key_fails():
    key, other = SigningKey.generate(), SigningKey.generate()
    signature = key.sign(b"survivors")
    for public, message, sig in [
        (key.public, b"survivorS", signature),
        (key.public, b"survivors", signature[:-1] + bytes([signature[-1] ^ 1])),
        (other.public, b"survivors", signature),
        (key.public, b"survivors", signature[:63]),
        (key.public[:31], b"survivors", signature),
        (bytes(32), b"survivors", signature),
    ]:
        with pytest.raises(CryptoCheckFailed):
            verify(public, message, sig)


def test_keys_round_trip_and_reprs_hide_the_secret():
    key = SigningKey.generate()
    again = SigningKey.from_private_bytes(key.private_bytes())
    assert again.public == key.public
    assert key.private_bytes().hex() not in repr(key)
    assert key.public[:4].hex() in repr(key)


@pytest.mark.parametrize("bad", [b"\x00" * 31, b"\x00" * 33, "x" * 32, bytearray(32), None])
def test_wrong_private_keys_are_argument_errors(bad):
    with pytest.raises((TypeError, ValueError)):
        SigningKey.from_private_bytes(bad)  # type: ignore[arg-type]


def test_wrong_argument_types_are_type_errors():
    key = SigningKey.generate()
    with pytest.raises(TypeError):
        key.sign("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify(key.public, "text", key.sign(b"x"))  # type: ignore[arg-type]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["public"][:8])
def test_the_agreement_twin_of_an_identity_matches_its_public_key(v):
    key = SigningKey.from_private_bytes(bytes.fromhex(v["secret"]))
    assert key.agreement_key().public == agreement_public(key.public)


def test_two_identities_agree_on_one_secret():
    a, b = SigningKey.generate(), SigningKey.generate()
    ab = a.agreement_key().exchange(agreement_public(b.public))
    assert ab == b.agreement_key().exchange(agreement_public(a.public))
    assert a.agree(b.public) == ab == b.agree(a.public)
    assert a.agree(b.public) == ab  # kept, and still the same


def test_no_agreement_with_an_unusable_identity_is_kept():
    key = SigningKey.generate()
    for _ in range(2):
        with pytest.raises(CryptoCheckFailed):
            key.agree((1).to_bytes(32, "little"))


@pytest.mark.parametrize(
    "public",
    [(1).to_bytes(32, "little"), (2**255 - 19).to_bytes(32, "little"), bytes.fromhex("ff" * 32)],
    ids=["neutral", "y=p", "y>p"],
)
def test_an_unusable_identity_has_no_agreement_twin(public):
    with pytest.raises(CryptoCheckFailed):
        agreement_public(public)
