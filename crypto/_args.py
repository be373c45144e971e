"""Argument checks shared by the primitives (private).

Every check raises `TypeError` for a wrong type and `ValueError` for a wrong
length or range, naming the argument and never echoing its value: the values
checked here are often keys or secrets.
"""

from __future__ import annotations

__all__ = ["require_bytes", "require_int", "require_str"]


def require_bytes(name: str, value: object, *, size: int | None = None, min_size: int = 0) -> bytes:
    """Return `value` if it is `bytes` of the required length.

    Raises TypeError if it is not exactly `bytes` (bytearray and memoryview are
    refused so that a mutable buffer cannot change under us), ValueError if its
    length is not `size` (when given) or is below `min_size`.
    """
    if type(value) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    if size is not None and len(value) != size:
        raise ValueError(f"{name} must be exactly {size} bytes, got {len(value)}")
    if len(value) < min_size:
        raise ValueError(f"{name} must be at least {min_size} bytes, got {len(value)}")
    return value


def require_int(name: str, value: object, *, lo: int, hi: int | None = None) -> int:
    """Return `value` if it is an `int` (not a bool) with lo <= value <= hi.

    Raises TypeError for any other type, ValueError when out of range.
    """
    if type(value) is not int:
        raise TypeError(f"{name} must be int, not {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        bound = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return value


def require_str(name: str, value: object) -> str:
    """Return `value` if it is a non-empty `str` that encodes as UTF-8.

    Raises TypeError for any other type, ValueError if empty or not encodable
    (lone surrogates).
    """
    if type(value) is not str:
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not encodable as UTF-8") from None
    return value
