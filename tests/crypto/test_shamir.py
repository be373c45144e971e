"""crypto.shamir: reconstruction, secrecy of t-1 shares, consistency checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedd.crypto.errors import CryptoCheckFailed
from fedd.crypto.shamir import MAX_X, PRIME, VALUE_SIZE, Share, combine, split
from tests.crypto._support import FAST, THOROUGH, seeded_random_bytes

SECRET = bytes(range(100, 132))
SMALL_PRIMES = [p for p in range(2, 400) if all(p % d for d in range(2, int(p**0.5) + 1))]


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first 78 primes as bases: error below 4**-78."""
    if n < 2:
        return False
    for p in SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in SMALL_PRIMES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def test_prime_is_the_smallest_prime_above_2_256() -> None:
    assert PRIME > 2**256
    assert _is_probable_prime(PRIME)
    assert not any(_is_probable_prime(n) for n in range(2**256 + 1, PRIME))
    assert PRIME < 1 << (8 * VALUE_SIZE)


def test_primality_check_works() -> None:
    # The check above would be worthless if it called everything prime.
    assert _is_probable_prime(2**127 - 1)
    assert not _is_probable_prime(2**256 + 1)
    assert not _is_probable_prime((2**61 - 1) * (2**89 - 1))


def _interpolate(points: list[tuple[int, int]], x: int) -> int:
    """Reference Lagrange evaluation mod PRIME, one inversion per term."""
    total = 0
    for j, (xj, yj) in enumerate(points):
        num, den = 1, 1
        for m, (xm, _) in enumerate(points):
            if m != j:
                num = num * (x - xm) % PRIME
                den = den * (xj - xm) % PRIME
        total += yj * num * pow(den, -1, PRIME)
    return total % PRIME


@st.composite
def _setups(
    draw: st.DrawFn, min_t: int = 1, spare: int = 0, max_n: int = 12
) -> tuple[bytes, int, list[int]]:
    """(secret, t, xs) with t >= min_t and at least `spare` holders beyond t."""
    secret = draw(st.binary(min_size=32, max_size=32))
    xs = draw(st.lists(st.integers(1, MAX_X), min_size=min_t + spare, max_size=max_n, unique=True))
    t = draw(st.integers(min_t, len(xs) - spare))
    return secret, t, xs


@THOROUGH
@given(setup=_setups(), data=st.data())
def test_any_t_shares_reconstruct(setup: tuple[bytes, int, list[int]], data: st.DataObject) -> None:
    secret, t, xs = setup
    shares = split(secret, t=t, xs=xs)
    assert [s.x for s in shares] == xs
    subset = data.draw(st.permutations(shares), label="order")[:t]
    assert combine(subset, t=t) == secret


@FAST
@given(setup=_setups(), data=st.data())
def test_more_than_t_consistent_shares_reconstruct(
    setup: tuple[bytes, int, list[int]], data: st.DataObject
) -> None:
    secret, t, xs = setup
    shares = data.draw(st.permutations(split(secret, t=t, xs=xs)), label="order")
    k = data.draw(st.integers(t, len(shares)), label="k")
    assert combine(shares[:k], t=t) == secret


@FAST
@given(setup=_setups())
def test_combine_matches_reference_interpolation(setup: tuple[bytes, int, list[int]]) -> None:
    secret, t, xs = setup
    shares = split(secret, t=t, xs=xs)
    points = [(s.x, s.y) for s in shares[:t]]
    assert _interpolate(points, 0) == int.from_bytes(secret, "big")
    # and every share lies on that polynomial
    assert all(_interpolate(points, s.x) == s.y for s in shares)


@FAST
@given(setup=_setups(min_t=2), other=st.binary(min_size=32, max_size=32))
def test_t_minus_1_shares_are_consistent_with_any_secret(
    setup: tuple[bytes, int, list[int]], other: bytes
) -> None:
    # For any other secret there is a degree t-1 polynomial through (0, other)
    # and the same t-1 points: the t-1 shares cannot tell the two apart.
    secret, t, xs = setup
    shares = split(secret, t=t, xs=xs)[: t - 1]
    points = [(0, int.from_bytes(other, "big")), *((s.x, s.y) for s in shares)]
    fresh = next(x for x in range(1, MAX_X + 1) if x not in {s.x for s in shares})
    completed = Share(fresh, _interpolate(points, fresh))
    assert combine([*shares, completed], t=t) == other


def test_threshold_one_shares_are_the_secret() -> None:
    shares = split(SECRET, t=1, xs=[5, 9])
    assert {s.y for s in shares} == {int.from_bytes(SECRET, "big")}
    assert combine(shares[1:], t=1) == SECRET


@FAST
@given(setup=_setups(spare=1), data=st.data())
def test_a_tampered_share_is_caught_when_extra_shares_exist(
    setup: tuple[bytes, int, list[int]], data: st.DataObject
) -> None:
    secret, t, xs = setup
    shares = split(secret, t=t, xs=xs)
    victim = data.draw(st.integers(0, len(shares) - 1), label="victim")
    delta = data.draw(st.integers(1, PRIME - 1), label="delta")
    bad = Share(shares[victim].x, (shares[victim].y + delta) % PRIME)
    shares[victim] = bad
    with pytest.raises(CryptoCheckFailed, match="not on the polynomial"):
        combine(shares, t=t)


def test_shares_of_two_secrets_do_not_mix() -> None:
    xs = list(range(1, 8))
    a = split(SECRET, t=4, xs=xs)
    b = split(bytes(32), t=4, xs=xs)
    with pytest.raises(CryptoCheckFailed):
        combine([*a[:4], *b[4:]], t=4)
    with pytest.raises(CryptoCheckFailed):
        combine([*a[:3], *b[3:]], t=4)


def test_same_secret_resplit_does_not_mix() -> None:
    # Fresh coefficients each time: shares of two splits are not interchangeable.
    xs = list(range(1, 6))
    a = split(SECRET, t=3, xs=xs)
    b = split(SECRET, t=3, xs=xs)
    with pytest.raises(CryptoCheckFailed):
        combine([a[0], a[1], b[2], b[3]], t=3)


def test_reconstructed_value_beyond_32_bytes_is_refused() -> None:
    # A polynomial whose constant term is a field element >= 2**256.
    points = [(0, 2**256 + 5), (1, 12345)]
    shares = [Share(x, _interpolate(points, x)) for x in (2, 3)]
    with pytest.raises(CryptoCheckFailed, match="32-byte"):
        combine(shares, t=2)


def test_split_is_deterministic_given_randomness() -> None:
    calls: list[int] = []
    source = seeded_random_bytes(b"shamir")

    def recording(n: int) -> bytes:
        calls.append(n)
        return source(n)

    first = split(SECRET, t=5, xs=range(1, 10), random_bytes=recording)
    again = split(SECRET, t=5, xs=range(1, 10), random_bytes=seeded_random_bytes(b"shamir"))
    assert first == again
    assert calls == [64 * 4]


def test_extreme_randomness_still_gives_field_elements() -> None:
    shares = split(SECRET, t=3, xs=[1, 2, 3], random_bytes=lambda n: b"\xff" * n)
    assert all(0 <= s.y < PRIME for s in shares)
    assert combine(shares, t=3) == SECRET


def test_large_instance() -> None:
    # The sizes the protocol meets: t around 40, n around 1000.
    xs = list(range(1, 1001))
    shares = split(SECRET, t=40, xs=xs, random_bytes=seeded_random_bytes(b"large"))
    assert combine(shares[::-1], t=40) == SECRET
    shares[500] = Share(shares[500].x, (shares[500].y + 1) % PRIME)
    with pytest.raises(CryptoCheckFailed):
        combine(shares, t=40)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"secret": bytes(31)}, ValueError, "32 bytes"),
        ({"secret": "s" * 32}, TypeError, "secret"),
        ({"t": 0}, ValueError, "t"),
        ({"t": 4}, ValueError, "t"),
        ({"t": True}, TypeError, "t"),
        ({"xs": []}, ValueError, "at least one"),
        ({"xs": [1, 2, 2]}, ValueError, "distinct"),
        ({"xs": [0, 1, 2]}, ValueError, "index"),
        ({"xs": [1, 2, MAX_X + 1]}, ValueError, "index"),
        ({"xs": [1, 2, True]}, TypeError, "index"),
        ({"xs": [1, 2, 3.0]}, TypeError, "index"),
        ({"random_bytes": lambda n: bytes(n - 1)}, ValueError, "random_bytes"),
        ({"random_bytes": bytearray}, TypeError, "random_bytes"),
    ],
)
def test_split_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {"secret": SECRET, "t": 2, "xs": [1, 2, 3]}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        split(args.pop("secret"), **args)  # type: ignore[arg-type]


def test_combine_rejects_bad_arguments() -> None:
    shares = split(SECRET, t=3, xs=[1, 2, 3, 4])
    with pytest.raises(ValueError, match="at least t=3"):
        combine(shares[:2], t=3)
    with pytest.raises(ValueError, match="same index"):
        combine([shares[0], shares[0], shares[1]], t=3)
    with pytest.raises(ValueError, match="t"):
        combine(shares, t=0)
    with pytest.raises(TypeError, match="t"):
        combine(shares, t=3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Share"):
        combine([(1, 2), *shares], t=3)  # type: ignore[list-item]


def test_share_validation_and_bytes() -> None:
    share = Share(7, PRIME - 1)
    data = share.value_bytes()
    assert len(data) == VALUE_SIZE
    assert Share.from_value_bytes(7, data) == share
    assert Share(1, 0).value_bytes() == bytes(VALUE_SIZE)
    for bad_x in (0, MAX_X + 1, -1):
        with pytest.raises(ValueError):
            Share(bad_x, 1)
    with pytest.raises(TypeError):
        Share(True, 1)
    with pytest.raises(ValueError):
        Share(1, PRIME)
    with pytest.raises(ValueError):
        Share(1, -1)
    with pytest.raises(TypeError):
        Share(1, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="33 bytes"):
        Share.from_value_bytes(1, bytes(32))
    with pytest.raises(ValueError):
        Share.from_value_bytes(1, PRIME.to_bytes(VALUE_SIZE, "big"))
    with pytest.raises(TypeError):
        Share.from_value_bytes(1, bytearray(VALUE_SIZE))  # type: ignore[arg-type]


def test_share_repr_hides_the_value() -> None:
    y = 0xC0FFEE_1234_5678_9ABC_DEF0
    text = repr(Share(3, y))
    assert "x=3" in text
    assert str(y) not in text
    assert hex(y)[2:] not in text
    with pytest.raises(ValueError) as info:
        Share(3, PRIME + y)
    assert str(PRIME + y) not in str(info.value)
