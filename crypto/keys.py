"""X25519 key agreement (RFC 7748) for the pairwise secrets of SecAgg.

Each peer holds two agreement keys per round: `c` (its shared key with a
neighbour encrypts the Shamir shares it sends) and `s` (its shared key seeds
the pairwise mask). The private half of `s` is itself Shamir-shared, which is
why `private_bytes()` exists.

The raw X25519 output is never used directly as a key: callers pass it
through `crypto.kdf.derive_key`, which binds it to a purpose, run, round and
ordered pair.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from fedd.crypto._args import require_bytes
from fedd.crypto.errors import CryptoCheckFailed

__all__ = ["KEY_SIZE", "AgreementKey", "check_public_key"]

KEY_SIZE = 32

_ALL_ZERO = bytes(KEY_SIZE)
_P = 2**255 - 19
# The u-coordinates of the points of order 1, 2, 4 and 8 on Curve25519 and on
# its twist: the points X25519 maps to zero under every (clamped, so a
# multiple of 8) scalar. The same list libsodium refuses. Looking a key up
# here costs a microsecond; the hub checks every advertised key of a round,
# two per peer, where an exchange with a probe scalar costs thirty.
_SMALL_ORDER = frozenset(
    {
        0,
        1,
        _P - 1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
    }
)


def check_public_key(public: bytes) -> None:
    """Refuse an X25519 public key of small order (RFC 7748 section 6.1).

    With such a key every "shared" secret is the all-zero string, known to
    anyone. Raises TypeError unless `public` is bytes, ValueError unless it
    is 32 bytes, CryptoCheckFailed when it is a low-order point.
    """
    require_bytes("public key", public, size=KEY_SIZE)
    # Decoded as RFC 7748 section 5 decodes it: the top bit dropped, the
    # rest read mod p (so the non-canonical p and p + 1 are 0 and 1).
    u = (int.from_bytes(public, "little") & ((1 << 255) - 1)) % _P
    if u in _SMALL_ORDER:
        raise CryptoCheckFailed("a low-order X25519 public key")


class AgreementKey:
    """An X25519 private key. Build it with `generate()` or `from_private_bytes()`.

    Its repr shows only a prefix of the public key; the private scalar is
    reachable only through `private_bytes()`.
    """

    __slots__ = ("_key", "_public", "_shared")

    def __init__(self, key: X25519PrivateKey) -> None:
        """Wrap a pyca key. Prefer `generate()` and `from_private_bytes()`."""
        if not isinstance(key, X25519PrivateKey):
            raise TypeError(f"key must be an X25519PrivateKey, not {type(key).__name__}")
        self._key = key
        self._public = key.public_key().public_bytes_raw()
        # Outputs by peer public key: a round agrees with each neighbour's key
        # twice (sealing shares to it, opening its shares), and X25519 is what
        # a peer's round spends most on.
        self._shared: dict[bytes, bytes] = {}

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes] = os.urandom) -> AgreementKey:
        """A fresh key from `random_bytes(32)`.

        Raises TypeError/ValueError if `random_bytes` does not return 32 bytes.
        """
        data = random_bytes(KEY_SIZE)
        return cls.from_private_bytes(require_bytes("random_bytes(32)", data, size=KEY_SIZE))

    @classmethod
    def from_private_bytes(cls, data: bytes) -> AgreementKey:
        """The key whose raw private scalar is `data` (clamped by X25519 when used).

        Raises TypeError unless `data` is `bytes`, ValueError unless it is 32 bytes.
        """
        require_bytes("private key", data, size=KEY_SIZE)
        return cls(X25519PrivateKey.from_private_bytes(data))

    def private_bytes(self) -> bytes:
        """The raw 32-byte private scalar, exactly as given or generated."""
        return self._key.private_bytes_raw()

    @property
    def public(self) -> bytes:
        """The raw 32-byte public key (u-coordinate, little-endian)."""
        return self._public

    def exchange(self, peer_public: bytes) -> bytes:
        """The raw 32-byte X25519 output with `peer_public`.

        Raises TypeError unless `peer_public` is `bytes`, ValueError unless it
        is 32 bytes, and CryptoCheckFailed when the output is all zero (the
        peer sent a low-order point, which would make the "shared" secret
        public; RFC 7748 §6.1 says to abort).
        """
        require_bytes("peer public key", peer_public, size=KEY_SIZE)
        known = self._shared.get(peer_public)
        if known is not None:
            return known
        public = X25519PublicKey.from_public_bytes(peer_public)
        try:
            shared = self._key.exchange(public)
        except ValueError:
            # OpenSSL refuses the all-zero output itself; same outcome either way.
            raise CryptoCheckFailed(
                "X25519 output is all zero: the peer public key is a low-order point"
            ) from None
        if hmac.compare_digest(shared, _ALL_ZERO):
            raise CryptoCheckFailed(
                "X25519 output is all zero: the peer public key is a low-order point"
            )
        self._shared[peer_public] = shared
        return shared

    def __repr__(self) -> str:
        return f"AgreementKey(public={self._public[:4].hex()}...)"
