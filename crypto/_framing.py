"""Unambiguous byte encodings of labelled tuples (private).

HKDF `info` strings and AEAD associated data are built here, so that two
different tuples can never encode to the same bytes: every field carries a
4-byte big-endian length prefix, and the number of fields is fixed by each
caller's label. Without the prefixes ("ab", "c") and ("a", "bc") would collide.
"""

from __future__ import annotations

__all__ = ["PROTOCOL_LABEL", "frame", "text", "uint64"]

# Versioned so that a future wire version derives unrelated keys.
PROTOCOL_LABEL = b"fedd/v1"

_MAX_FIELD = 2**32 - 1


def frame(*fields: bytes) -> bytes:
    """Concatenate `fields`, each preceded by its length as 4 big-endian bytes.

    Raises ValueError if a field is longer than 2**32 - 1 bytes.
    """
    parts: list[bytes] = []
    for field in fields:
        if len(field) > _MAX_FIELD:
            raise ValueError("a framed field is longer than 2**32 - 1 bytes")
        parts.append(len(field).to_bytes(4, "big"))
        parts.append(field)
    return b"".join(parts)


def text(value: str) -> bytes:
    """UTF-8 bytes of an already validated string (see `_args.require_str`)."""
    return value.encode("utf-8")


def uint64(value: int) -> bytes:
    """8 big-endian bytes of an already validated 0 <= value < 2**64."""
    return value.to_bytes(8, "big")
