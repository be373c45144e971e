"""Mask expansion: a 32-byte seed into `count` uniform values of `width` bytes.

The values are the keystream bytes themselves, read as little-endian
integers, so every value in [0, 2**(8*width)) is reachable and equally likely
with no modulo bias (the counter-example is folding a seed into 32 bits for
a non-cryptographic generator and drawing with an exclusive upper bound).

A seed must be used for one mask only: each stream starts from a zero nonce,
which is safe because every seed comes out of `crypto.kdf.derive_key` bound
to its purpose, run, round and pair. Since the stream does not depend on
`width`, expand(seed, 2, 4) is the first 8 bytes of expand(seed, 4, 2).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterator

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from fedd.crypto import _framing
from fedd.crypto._args import require_bytes, require_int

__all__ = ["MAX_COUNT", "SEED_SIZE", "WIDTHS", "PrgKind", "expand", "expand_chunks"]

SEED_SIZE = 32
WIDTHS = frozenset({2, 4, 8})
# 2**32 values is far beyond any model fedd trains; it bounds allocations.
MAX_COUNT = 2**32

_HMAC_LABEL = _framing.frame(_framing.PROTOCOL_LABEL, b"prg/hmac-sha256")
_HMAC_BLOCK = 32

# A keystream is the encryption of zeros. Writing a fresh zero buffer costs
# several times the encryption itself (3.6 ms against 0.56 ms for 4 MB on the
# benchmark machine: the memory is new to the process), so one zero buffer is
# kept and grown on demand, up to this size; longer requests get their own.
_MAX_CACHED_ZEROS = 16 << 20
_zero_cache = b""


class PrgKind(enum.Enum):
    """Which keystream expands a seed."""

    AES_CTR = "aes-ctr"  # default: AES-256-CTR keystream, keyed with the full 32-byte seed
    CHACHA20 = "chacha20"
    HMAC_SHA256 = "hmac-sha256"  # HMAC-SHA256 in counter mode: selectable, slow, never default


def expand(seed: bytes, count: int, width: int = 4, kind: PrgKind = PrgKind.AES_CTR) -> bytes:
    """`count` values of `width` bytes each, packed little-endian, from `seed`.

    Deterministic in (seed, count * width, kind). Returns count * width bytes.
    Raises TypeError for wrong types, ValueError unless `seed` is 32 bytes,
    0 <= count <= 2**32 and width is 2, 4 or 8.
    """
    nbytes = _check(seed, count, width, kind)
    if kind is PrgKind.HMAC_SHA256:
        return b"".join(_hmac_blocks(seed, 0, nbytes))[:nbytes]
    return _cipher(seed, kind).update(_zeros(nbytes))


def expand_chunks(
    seed: bytes,
    count: int,
    width: int = 4,
    kind: PrgKind = PrgKind.AES_CTR,
    *,
    chunk_bytes: int,
) -> Iterator[bytes]:
    """The bytes of `expand(seed, count, width, kind)` in pieces of `chunk_bytes`.

    Every piece but the last has exactly `chunk_bytes` bytes; their
    concatenation equals `expand(...)`. Streaming keeps each piece in cache
    and avoids one large allocation per mask (see `crypto.lanes`). Arguments
    are checked when the iterator is created, with the errors of `expand`;
    `chunk_bytes` must be a positive multiple of 64.
    """
    nbytes = _check(seed, count, width, kind)
    require_int("chunk_bytes", chunk_bytes, lo=1)
    if chunk_bytes % 64:
        raise ValueError(f"chunk_bytes must be a multiple of 64, got {chunk_bytes}")
    return _chunks(seed, nbytes, kind, chunk_bytes)


def _chunks(seed: bytes, nbytes: int, kind: PrgKind, chunk_bytes: int) -> Iterator[bytes]:
    if kind is PrgKind.HMAC_SHA256:
        per_chunk = chunk_bytes // _HMAC_BLOCK
        for start in range(0, nbytes, chunk_bytes):
            size = min(chunk_bytes, nbytes - start)
            blocks = _hmac_blocks(seed, (start // chunk_bytes) * per_chunk, size)
            yield b"".join(blocks)[:size]
        return
    encryptor = _cipher(seed, kind)
    zeros = _zeros(chunk_bytes)
    for _ in range(nbytes // chunk_bytes):
        yield encryptor.update(zeros)
    tail = nbytes % chunk_bytes
    if tail:
        yield encryptor.update(zeros[:tail])


def _zeros(nbytes: int) -> memoryview:
    """A read-only view of `nbytes` zero bytes, shared between calls when small."""
    global _zero_cache  # noqa: PLW0603 - a process-wide, immutable scratch buffer
    if nbytes > _MAX_CACHED_ZEROS:
        return memoryview(bytes(nbytes))
    if len(_zero_cache) < nbytes:
        _zero_cache = bytes(nbytes)
    return memoryview(_zero_cache)[:nbytes]


def _check(seed: bytes, count: int, width: int, kind: PrgKind) -> int:
    require_bytes("seed", seed, size=SEED_SIZE)
    require_int("count", count, lo=0, hi=MAX_COUNT)
    require_int("width", width, lo=0)
    if width not in WIDTHS:
        raise ValueError(f"width must be 2, 4 or 8 bytes, got {width}")
    if not isinstance(kind, PrgKind):
        raise TypeError(f"kind must be a PrgKind, not {type(kind).__name__}")
    return count * width


def _cipher(seed: bytes, kind: PrgKind) -> CipherContext:
    # A zero nonce/IV is fine: each seed keys exactly one stream (module docstring).
    if kind is PrgKind.AES_CTR:
        return Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    return Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()


def _hmac_blocks(seed: bytes, first: int, nbytes: int) -> Iterator[bytes]:
    # Block i is HMAC(seed, label || i); a 64-bit counter never wraps here.
    last = first + -(-nbytes // _HMAC_BLOCK)
    for index in range(first, last):
        yield hmac.digest(seed, _HMAC_LABEL + index.to_bytes(8, "big"), "sha256")
