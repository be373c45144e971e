"""Ed25519 signatures: long-term identity keys for the active-adversary protocol.

A peer signs its per-round key advertisement and, in the consistency check,
the set of peers that sent masked input. Other peers verify against an
allow-list of signing public keys configured out of band, so a hub can
neither invent peers nor show different survivor sets to different peers
without being caught.

The same identity also agrees keys (`SigningKey.agree`, from
`SigningKey.agreement_key` and `agreement_public`): the X25519 twin of an
Ed25519 key, as libsodium's crypto_sign_ed25519_*_to_curve25519 derive it
(the clamped first half of SHA-512 of the seed; the Montgomery
u = (1 + y) / (1 - y) of the Edwards point). Peers use it to seal shares
of their graph-seed nonce to each other before any round key is known
(`crypto.secagg.seed`); using one key for EdDSA and for X25519 in this way
is analysed by Thormarker (2021).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedd.crypto._args import require_bytes
from fedd.crypto.errors import CryptoCheckFailed
from fedd.crypto.keys import AgreementKey, check_public_key

__all__ = ["PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "SigningKey", "agreement_public", "verify"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_SEED_SIZE = 32
_P = 2**255 - 19  # the field of Curve25519 and Ed25519


class SigningKey:
    """An Ed25519 private key. Its repr shows only a prefix of the public key."""

    __slots__ = ("_agreed", "_key", "_public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public = key.public_key().public_bytes_raw()
        self._agreed: dict[bytes, bytes] = {}

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes] = os.urandom) -> SigningKey:
        """A new key from 32 bytes of `random_bytes` (injectable for tests)."""
        return cls.from_private_bytes(random_bytes(_SEED_SIZE))

    @classmethod
    def from_private_bytes(cls, data: bytes) -> SigningKey:
        """The key with this 32-byte seed. Raises TypeError/ValueError for anything else."""
        seed = require_bytes("Ed25519 private key", data, size=_SEED_SIZE)
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def private_bytes(self) -> bytes:
        """The 32-byte seed (for key files written with mode 0600)."""
        return self._key.private_bytes_raw()

    @property
    def public(self) -> bytes:
        """The 32-byte public key."""
        return self._public

    def agreement_key(self) -> AgreementKey:
        """The X25519 key of this identity: the Ed25519 secret scalar, clamped alike."""
        return AgreementKey.from_private_bytes(hashlib.sha512(self.private_bytes()).digest()[:32])

    def agree(self, public: bytes) -> bytes:
        """The X25519 secret this identity shares with the one whose Ed25519 public
        key is `public`. Both keys are long-term, so each is computed once and
        kept for the rounds after. Raises as `agreement_public` does."""
        shared = self._agreed.get(public)
        if shared is None:
            shared = self.agreement_key().exchange(agreement_public(public))
            self._agreed[public] = shared
        return shared

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._key.sign(require_bytes("message", message))

    def __repr__(self) -> str:
        return f"SigningKey(public={self._public[:4].hex()}...)"


def agreement_public(public: bytes) -> bytes:
    """The X25519 public key of the identity whose Ed25519 public key is `public`.

    Raises TypeError/ValueError unless `public` is 32 bytes, CryptoCheckFailed
    when it is no usable key (a y-coordinate outside the field, the neutral
    point, or a result of small order).
    """
    require_bytes("Ed25519 public key", public, size=PUBLIC_KEY_SIZE)
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)  # the top bit is x's sign
    if y >= _P or y == 1:
        raise CryptoCheckFailed("not a usable Ed25519 public key")
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    x25519 = u.to_bytes(32, "little")
    check_public_key(x25519)
    return x25519


def verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Check `signature` on `message` under `public`.

    Raises CryptoCheckFailed when it does not verify (including a malformed
    public key or a signature of the wrong length), ValueError/TypeError for
    arguments of the wrong type.
    """
    require_bytes("public key", public)
    require_bytes("message", message)
    require_bytes("signature", signature)
    if len(public) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise CryptoCheckFailed("signature or public key of the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise CryptoCheckFailed("signature does not verify") from None
