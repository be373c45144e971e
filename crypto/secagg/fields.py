"""Field checks shared by every message type: exact types, sizes and ranges.

Message bodies arrive as plain maps decoded from msgpack. These helpers turn
one field into a checked Python value or raise `LocalProtocolError`, which
`daemon.transport.wire.decode` re-raises as `MalformedMessage`. Types are checked
exactly (`type(v) is int`), so `True` is never a count and a float is never
an index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NewType, TypeVar, cast

from fedd.crypto.errors import LocalProtocolError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_ROUND",
    "PeerId",
    "check_bytes",
    "check_int",
    "check_peer_id",
    "check_peer_ids",
    "check_run_id",
    "get_bytes",
    "get_int",
    "get_list",
    "get_peer_id",
    "get_str",
]

PeerId = NewType("PeerId", str)

MAX_ID_LENGTH = 64
MAX_ROUND = 2**31 - 1

# Printable ASCII without whitespace, quotes, commas or backslashes: ids go
# into CSV cells and log lines unescaped. The Z85 alphabet of CURVE public
# keys fits, so an authenticated key can serve as a peer id.
_ID = re.compile(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#_]{1,64}")

_STR = frozenset({str})

T = TypeVar("T")


def check_peer_id(value: object, what: str = "peer id") -> PeerId:
    """Return `value` as a PeerId, or raise LocalProtocolError saying why not."""
    if type(value) is not str or _ID.fullmatch(value) is None:
        raise LocalProtocolError(
            f"{what} must be 1-{MAX_ID_LENGTH} printable ASCII characters "
            "without spaces, quotes, commas or backslashes"
        )
    return PeerId(value)


def check_peer_ids(values: Iterable[object], what: str = "peer id") -> tuple[PeerId, ...]:
    """`values` as PeerIds, each checked as `check_peer_id` checks one.

    Rosters, survivor lists and participant lists hold up to MAX_PEERS ids
    and cross the wire several times a round, at the hub once per peer: the
    checks run as C loops (`map` over the type and the pattern), and only a
    list that fails is walked in Python, to name its first bad id.
    """
    ids: tuple[Any, ...] = tuple(values)
    if not (_STR.issuperset(map(type, ids)) and all(map(_ID.fullmatch, ids))):
        for value in ids:
            check_peer_id(value, what)
    return cast("tuple[PeerId, ...]", ids)


def check_run_id(value: object) -> str:
    """Run ids follow the peer id alphabet; they appear in key derivation labels."""
    return str(check_peer_id(value, "run id"))


def check_int(value: object, what: str, lo: int, hi: int) -> int:
    """An exact int in [lo, hi]."""
    if type(value) is not int:
        raise LocalProtocolError(f"{what} must be an integer")
    if not lo <= value <= hi:
        raise LocalProtocolError(f"{what} must be in [{lo}, {hi}], got {value}")
    return value


def check_bytes(value: object, what: str, *, size: int | None = None, max_size: int) -> bytes:
    """Exact bytes, of `size` bytes when given, never longer than `max_size`."""
    if type(value) is not bytes:
        raise LocalProtocolError(f"{what} must be bytes")
    if size is not None and len(value) != size:
        raise LocalProtocolError(f"{what} must be {size} bytes, got {len(value)}")
    if len(value) > max_size:
        raise LocalProtocolError(f"{what} longer than {max_size} bytes")
    return value


def _get(body: Mapping[str, object], name: str) -> object:
    if name not in body:
        raise LocalProtocolError(f"missing field {name!r}")
    return body[name]


def get_int(body: Mapping[str, object], name: str, lo: int, hi: int) -> int:
    return check_int(_get(body, name), repr(name), lo, hi)


def get_str(body: Mapping[str, object], name: str, *, max_length: int) -> str:
    value = _get(body, name)
    if type(value) is not str:
        raise LocalProtocolError(f"{name!r} must be a string")
    if len(value) > max_length:
        raise LocalProtocolError(f"{name!r} longer than {max_length} characters")
    return value


def get_bytes(
    body: Mapping[str, object], name: str, *, size: int | None = None, max_size: int
) -> bytes:
    return check_bytes(_get(body, name), repr(name), size=size, max_size=max_size)


def get_peer_id(body: Mapping[str, object], name: str) -> PeerId:
    return check_peer_id(_get(body, name), repr(name))


def get_list(body: Mapping[str, object], name: str, *, max_length: int) -> list[object]:
    value = _get(body, name)
    if type(value) is not list:
        raise LocalProtocolError(f"{name!r} must be a list")
    if len(value) > max_length:
        raise LocalProtocolError(f"{name!r} has more than {max_length} entries")
    return value
