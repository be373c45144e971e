"""Shamir t-of-n secret sharing of 32-byte secrets over GF(PRIME).

A secret s (32 bytes, read big-endian, so s < 2**256 < PRIME) becomes the
constant term of a random polynomial f of degree t-1; the holder with public
index x gets the share (x, f(x)). Any t shares determine f, hence s = f(0);
any t-1 shares are consistent with every possible secret, so they reveal
nothing about it.

In SecAgg each peer shares two secrets per round, its mask seed b_u and its
mask key s_sk, among its neighbours; the hub later collects t shares of one
of the two for each peer and reconstructs it.

Costs: `split` evaluates the polynomial by Horner's rule, n*(t-1)
multiplications of a 257-bit number by an index below 2**16. `combine` uses
Lagrange interpolation at 0 with a single modular inversion for all t
weights (Montgomery's batch trick); with more than t shares it also checks
every extra share against the polynomial, O(t**2 + (n-t)*t) small products.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from fedd.crypto._args import require_bytes, require_int
from fedd.crypto.errors import CryptoCheckFailed

__all__ = ["MAX_X", "PRIME", "SECRET_SIZE", "VALUE_SIZE", "Share", "combine", "split"]

# The smallest prime above 2**256 (tests/crypto/test_shamir.py checks both
# that it is prime and that no smaller number above 2**256 is): every 32-byte
# secret is a field element, and a share value fits in 33 bytes.
PRIME = 2**256 + 297
SECRET_SIZE = 32
VALUE_SIZE = 33
MAX_X = 65535

# Each random coefficient is drawn as 64 bytes and reduced mod PRIME: the
# distance from uniform is below PRIME / 2**512 < 2**-254.
_COEFF_BYTES = 64


@dataclass(frozen=True, slots=True)
class Share:
    """One holder's share: public index `x`, secret value `y` = f(x) mod PRIME.

    The repr shows only `x`. Raises TypeError/ValueError unless x is an int
    in [1, 65535] and y an int in [0, PRIME).
    """

    x: int
    y: int = field(repr=False)

    def __post_init__(self) -> None:
        require_int("share index x", self.x, lo=1, hi=MAX_X)
        if type(self.y) is not int:
            raise TypeError(f"share value must be int, not {type(self.y).__name__}")
        if not 0 <= self.y < PRIME:
            raise ValueError("share value is not a field element (0 <= y < PRIME)")

    def value_bytes(self) -> bytes:
        """`y` as VALUE_SIZE (33) bytes, big-endian."""
        return self.y.to_bytes(VALUE_SIZE, "big")

    @classmethod
    def from_value_bytes(cls, x: int, data: bytes) -> Share:
        """The share (x, y) with y read big-endian from `data`.

        Raises TypeError unless `data` is bytes, ValueError unless it is 33
        bytes encoding a value below PRIME (and for a bad `x`, as the class).
        """
        require_bytes("share value", data, size=VALUE_SIZE)
        return cls(x, int.from_bytes(data, "big"))


def split(
    secret: bytes,
    *,
    t: int,
    xs: Sequence[int],
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> list[Share]:
    """Shares of `secret`, one per index in `xs`, in the same order.

    Any `t` of them reconstruct the secret; fewer reveal nothing. Raises
    TypeError/ValueError unless `secret` is 32 bytes, every x is an int in
    [1, 65535], the xs are distinct, 1 <= t <= len(xs), and `random_bytes`
    returns the requested number of bytes.
    """
    require_bytes("secret", secret, size=SECRET_SIZE)
    xs = list(xs)
    for x in xs:
        require_int("share index x", x, lo=1, hi=MAX_X)
    if not xs:
        raise ValueError("xs must name at least one holder")
    if len(set(xs)) != len(xs):
        raise ValueError("share indexes xs must be distinct")
    require_int("t", t, lo=1, hi=len(xs))
    randomness = require_bytes(
        "random_bytes output", random_bytes(_COEFF_BYTES * (t - 1)), size=_COEFF_BYTES * (t - 1)
    )
    # Highest degree first, for Horner; the constant term is the secret.
    coefficients = [
        int.from_bytes(randomness[i : i + _COEFF_BYTES], "big") % PRIME
        for i in range(0, len(randomness), _COEFF_BYTES)
    ]
    coefficients.append(int.from_bytes(secret, "big"))
    return [Share(x, _horner(coefficients, x)) for x in xs]


def combine(shares: Iterable[Share], *, t: int) -> bytes:
    """The 32-byte secret behind `shares`, given the threshold `t`.

    Interpolates the first `t` shares at 0. With more than `t` shares, every
    further share must lie on the polynomial through the first `t`.

    Raises TypeError unless every item is a Share and t an int; ValueError if
    t < 1, fewer than t shares are given or two share the same x;
    CryptoCheckFailed if an extra share is off the polynomial (some share is
    corrupt or belongs to another secret) or the result is not a 32-byte
    value (the shares do not come from one `split`).
    """
    shares = list(shares)
    require_int("t", t, lo=1)
    for share in shares:
        if not isinstance(share, Share):
            raise TypeError(f"shares must be Share, not {type(share).__name__}")
    if len({share.x for share in shares}) != len(shares):
        raise ValueError("two shares have the same index x")
    if len(shares) < t:
        raise ValueError(f"need at least t={t} shares, got {len(shares)}")
    basis, extra = shares[:t], shares[t:]
    weights, at_zero = _basis(tuple(share.x for share in basis))
    secret = sum(share.y * c for share, c in zip(basis, at_zero, strict=True)) % PRIME
    if extra:
        coefficients = _coefficients(basis, weights)
        for share in extra:
            expected = _horner(coefficients, share.x).to_bytes(VALUE_SIZE, "big")
            if not hmac.compare_digest(expected, share.value_bytes()):
                raise CryptoCheckFailed(
                    f"share x={share.x} is not on the polynomial through the first {t} shares"
                )
    if secret >= 1 << (8 * SECRET_SIZE):
        raise CryptoCheckFailed("reconstructed value is not a 32-byte secret: inconsistent shares")
    return secret.to_bytes(SECRET_SIZE, "big")


def _horner(coefficients: Sequence[int], x: int) -> int:
    """f(x) mod PRIME for f given highest degree first."""
    acc = 0
    for c in coefficients:
        acc = (acc * x + c) % PRIME
    return acc


def _barycentric_weights(xs: Sequence[int]) -> list[int]:
    """w_j = 1 / prod_{m != j} (x_j - x_m) mod PRIME, with one inversion."""
    denominators = []
    for j, xj in enumerate(xs):
        product = 1
        for m, xm in enumerate(xs):
            if m != j:
                product *= xj - xm  # small factors: reduce once at the end
        denominators.append(product % PRIME)
    return _batch_inverse(denominators)


def _batch_inverse(values: Sequence[int]) -> list[int]:
    """Inverses mod PRIME of non-zero `values` with one `pow(., -1, PRIME)`."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inverse = pow(prefix[-1], -1, PRIME)
    result = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        result[i] = inverse * prefix[i] % PRIME
        inverse = inverse * values[i] % PRIME
    return result


@functools.lru_cache(maxsize=64)
def _basis(xs: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The barycentric weights of `xs` and the Lagrange coefficients at 0:
    f(0) = sum_j y_j c_j with c_j = w_j prod_{m != j} (0 - x_m) mod PRIME.

    They depend on the holders' points alone, so the many secrets one set of
    survivors reconstructs in a round share them.
    """
    weights = _barycentric_weights(xs)
    # prod_{m != j} (-x_m) from prefix and suffix products: no division.
    suffix = [1] * (len(xs) + 1)
    for i in range(len(xs) - 1, -1, -1):
        suffix[i] = suffix[i + 1] * -xs[i] % PRIME
    at_zero, prefix = [], 1
    for j, x in enumerate(xs):
        at_zero.append(weights[j] * (prefix * suffix[j + 1] % PRIME) % PRIME)
        prefix = prefix * -x % PRIME
    return tuple(weights), tuple(at_zero)


def _coefficients(shares: Sequence[Share], weights: Sequence[int]) -> list[int]:
    """Coefficients (highest degree first) of the polynomial through `shares`.

    f(X) = sum_j y_j w_j N(X) / (X - x_j) with N(X) = prod_m (X - x_m); each
    quotient comes from N by synthetic division, so no inversion is needed.
    """
    node = [1]  # N(X), highest degree first
    for share in shares:
        shifted = [*node, 0]
        for i, c in enumerate(node):
            shifted[i + 1] -= c * share.x
        node = [c % PRIME for c in shifted]
    result = [0] * len(shares)
    for share, weight in zip(shares, weights, strict=True):
        scale = share.y * weight % PRIME
        quotient = 0
        for i in range(len(shares)):
            quotient = (quotient * share.x + node[i]) % PRIME
            result[i] += scale * quotient
    return [c % PRIME for c in result]
