"""crypto.keys: RFC 7748 known answers, argument checks, low-order points."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from fedd.crypto.errors import CryptoCheckFailed
from fedd.crypto.keys import KEY_SIZE, AgreementKey, check_public_key
from tests.crypto._support import FAST, load_vectors, seeded_random_bytes

VECTORS = load_vectors("rfc7748_x25519.json")

# u-coordinates whose X25519 output is zero for every scalar: 0, 1, the two
# points of order 8, and p - 1, p, p + 1 for p = 2**255 - 19 (non-canonical
# encodings of -1, 0 and 1).
P = 2**255 - 19
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    (P - 1).to_bytes(32, "little"),
    P.to_bytes(32, "little"),
    (P + 1).to_bytes(32, "little"),
]


@pytest.mark.parametrize("vector", VECTORS["scalar_mult"], ids=lambda v: v["section"][:18])
def test_rfc7748_scalar_mult(vector: dict[str, str]) -> None:
    key = AgreementKey.from_private_bytes(bytes.fromhex(vector["scalar"]))
    assert key.exchange(bytes.fromhex(vector["u"])) == bytes.fromhex(vector["output"])


def test_rfc7748_iterated() -> None:
    iterated = VECTORS["iterated"]
    k = u = bytes.fromhex(iterated["start"])
    expected = {item["iterations"]: bytes.fromhex(item["k"]) for item in iterated["after"]}
    for i in range(1, max(expected) + 1):
        k, u = AgreementKey.from_private_bytes(k).exchange(u), k
        if i in expected:
            assert k == expected[i], f"after {i} iterations"


def test_rfc7748_diffie_hellman() -> None:
    dh = {
        name: bytes.fromhex(value)
        for name, value in VECTORS["diffie_hellman"].items()
        if name != "section"
    }
    alice = AgreementKey.from_private_bytes(dh["alice_private"])
    bob = AgreementKey.from_private_bytes(dh["bob_private"])
    assert alice.public == dh["alice_public"]
    assert bob.public == dh["bob_public"]
    assert alice.exchange(bob.public) == dh["shared"]
    assert bob.exchange(alice.public) == dh["shared"]


def test_private_bytes_round_trip_unclamped() -> None:
    # Shamir shares the raw scalar, so it must come back exactly as given.
    raw = bytes(range(256 - 32, 256))
    key = AgreementKey.from_private_bytes(raw)
    assert key.private_bytes() == raw
    again = AgreementKey.from_private_bytes(key.private_bytes())
    assert again.public == key.public


def test_generate_draws_32_bytes_from_the_given_source() -> None:
    calls: list[int] = []
    source = seeded_random_bytes(b"keys")

    def recording(n: int) -> bytes:
        calls.append(n)
        return source(n)

    key = AgreementKey.generate(recording)
    assert calls == [KEY_SIZE]
    assert key.private_bytes() == seeded_random_bytes(b"keys")(KEY_SIZE)
    assert AgreementKey.generate(seeded_random_bytes(b"keys")).public == key.public
    assert AgreementKey.generate().public != AgreementKey.generate().public


@pytest.mark.parametrize(
    ("source", "error"),
    [(lambda n: bytes(n - 1), ValueError), (bytearray, TypeError), (lambda n: "x" * n, TypeError)],
)
def test_generate_rejects_a_bad_source(source: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        AgreementKey.generate(source)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64])
def test_from_private_bytes_wrong_length(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AgreementKey.from_private_bytes(bytes(size))


@pytest.mark.parametrize(
    "value", [bytearray(32), memoryview(bytes(32)), "a" * 32, None, 7, [0] * 32]
)
def test_from_private_bytes_wrong_type(value: object) -> None:
    with pytest.raises(TypeError):
        AgreementKey.from_private_bytes(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 31, 33])
def test_exchange_wrong_length(size: int) -> None:
    key = AgreementKey.generate()
    with pytest.raises(ValueError, match="32 bytes"):
        key.exchange(bytes(size))


@pytest.mark.parametrize("value", [bytearray(32), "a" * 32, None, 9])
def test_exchange_wrong_type(value: object) -> None:
    with pytest.raises(TypeError):
        AgreementKey.generate().exchange(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda p: p.hex()[:8] + p.hex()[-4:])
def test_low_order_points_are_refused(point: bytes) -> None:
    key = AgreementKey.from_private_bytes(bytes.fromhex(VECTORS["scalar_mult"][0]["scalar"]))
    for _ in range(2):  # a refusal is not remembered as an output
        with pytest.raises(CryptoCheckFailed, match="low-order"):
            key.exchange(point)


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda p: p.hex()[:8] + p.hex()[-4:])
def test_check_public_key_refuses_low_order_points(point: bytes) -> None:
    with pytest.raises(CryptoCheckFailed, match="low-order"):
        check_public_key(point)


def _zero_under_a_clamped_scalar(point: bytes) -> bool:
    """What X25519 itself says: a point of small order gives the all-zero output."""
    probe = X25519PrivateKey.from_private_bytes(b"any scalar; X25519 clamps it....")
    try:
        return probe.exchange(X25519PublicKey.from_public_bytes(point)) == bytes(32)
    except ValueError:  # OpenSSL refuses the all-zero output
        return True


def test_check_public_key_refuses_exactly_what_x25519_maps_to_zero() -> None:
    """Every encoding near 0 and near p (canonical or not, top bit set or not),
    the known points and random ones: refused exactly when the exchange is zero."""
    rng = random.Random(5)
    values = [
        *range(600),
        *range(P - 600, 2**255),
        *(int.from_bytes(p, "little") for p in LOW_ORDER),
    ]
    values += [rng.getrandbits(255) for _ in range(600)]
    refused = set()
    for value in values:
        for top in (0, 1 << 255):
            point = ((value % 2**255) | top).to_bytes(32, "little")
            zero = _zero_under_a_clamped_scalar(point)
            try:
                check_public_key(point)
            except CryptoCheckFailed:
                refused.add(point)
                assert zero, point.hex()
            else:
                assert not zero, point.hex()
    # 0, 1, p - 1 and the two points of order 8, and p and p + 1 (non-canonical
    # 0 and 1), each with the top bit clear and set.
    assert len(refused) == 14


@FAST
@given(seed=st.binary(min_size=32, max_size=32))
def test_check_public_key_accepts_every_generated_key(seed: bytes) -> None:
    check_public_key(AgreementKey.from_private_bytes(seed).public)


def test_constructor_wants_a_pyca_key() -> None:
    with pytest.raises(TypeError):
        AgreementKey(bytes(32))  # type: ignore[arg-type]


def test_repr_shows_only_a_public_prefix() -> None:
    raw = bytes.fromhex(VECTORS["diffie_hellman"]["alice_private"])
    key = AgreementKey.from_private_bytes(raw)
    text = repr(key)
    assert key.public[:4].hex() in text
    assert key.public.hex() not in text
    for window in range(0, 32 - 3):
        assert raw[window : window + 4].hex() not in text


@FAST
@given(a=st.binary(min_size=32, max_size=32), b=st.binary(min_size=32, max_size=32))
def test_exchange_is_symmetric(a: bytes, b: bytes) -> None:
    alice, bob = AgreementKey.from_private_bytes(a), AgreementKey.from_private_bytes(b)
    shared = alice.exchange(bob.public)
    assert shared == bob.exchange(alice.public) == alice.exchange(bob.public)
    assert len(shared) == KEY_SIZE
