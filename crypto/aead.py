"""Authenticated encryption of the Shamir shares one peer sends another.

The hub forwards these blobs, so it must neither read nor alter them, nor
replay one into another pair, run or round: the associated data binds
(label, sender, recipient, run, round), and any change to the blob or to
those values fails authentication. ChaCha20-Poly1305 with a random 96-bit
nonce; each key is derived per ordered pair, run and round
(`crypto.kdf.Purpose.SHARE_KEY`) and seals a handful of messages, far below
the bound where random nonces could collide.

Blob layout: nonce (12 bytes) || ciphertext || tag (16 bytes).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from fedd.crypto import _framing
from fedd.crypto._args import require_bytes, require_int, require_str
from fedd.crypto.errors import CryptoCheckFailed

__all__ = ["KEY_SIZE", "NONCE_SIZE", "OVERHEAD", "TAG_SIZE", "seal", "unseal"]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE

_LABEL = b"fedd/v1 share transport"


def seal(
    key: bytes,
    plaintext: bytes,
    *,
    sender: str,
    recipient: str,
    run: str,
    round: int,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt `plaintext` from `sender` to `recipient` for (`run`, `round`).

    Returns len(plaintext) + OVERHEAD bytes. Raises TypeError for wrong
    types; ValueError unless `key` is 32 bytes, the ids and run are non-empty,
    0 <= round < 2**64, and `random_bytes(12)` returns 12 bytes.
    """
    cipher = ChaCha20Poly1305(require_bytes("key", key, size=KEY_SIZE))
    require_bytes("plaintext", plaintext)
    associated = _associated_data(sender, recipient, run, round)
    nonce = require_bytes("random_bytes(12)", random_bytes(NONCE_SIZE), size=NONCE_SIZE)
    return nonce + cipher.encrypt(nonce, plaintext, associated)


def unseal(key: bytes, blob: bytes, *, sender: str, recipient: str, run: str, round: int) -> bytes:
    """The plaintext of a `seal` output, checking who sent it, to whom and when.

    Raises TypeError/ValueError for bad arguments (as `seal`), and
    CryptoCheckFailed if the blob is too short or fails authentication: it
    was altered or truncated, or sealed under another key, sender,
    recipient, run or round. The message never says which.
    """
    cipher = ChaCha20Poly1305(require_bytes("key", key, size=KEY_SIZE))
    require_bytes("blob", blob)
    associated = _associated_data(sender, recipient, run, round)
    if len(blob) < OVERHEAD:
        raise CryptoCheckFailed(f"sealed blob too short: {len(blob)} < {OVERHEAD} bytes")
    try:
        return cipher.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], associated)
    except InvalidTag:
        raise CryptoCheckFailed(
            "sealed blob failed authentication (tampered, or wrong key, "
            "sender, recipient, run or round)"
        ) from None


def _associated_data(sender: str, recipient: str, run: str, round: int) -> bytes:
    require_str("sender", sender)
    require_str("recipient", recipient)
    require_str("run", run)
    require_int("round", round, lo=0, hi=2**64 - 1)
    return _framing.frame(
        _framing.PROTOCOL_LABEL,
        _LABEL,
        _framing.text(sender),
        _framing.text(recipient),
        _framing.text(run),
        _framing.uint64(round),
    )
