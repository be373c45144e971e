"""The wire format: one msgpack map per ZeroMQ message, validated at the edge.

    {"v": 1, "type": str, "run": str, "round": int, "body": {...}}

Vectors travel as packed little-endian bytes inside the body, never as lists
of integers. `decode` unpacks with explicit limits (frame size, bin, str,
array and map lengths; no ext types; string keys only) and turns the map
into one of the typed, frozen message classes, or raises `MalformedMessage`.
Nothing else escapes it. `encode` is its inverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final, Protocol, Self

import msgpack

from fedd.crypto.errors import LocalProtocolError, RemoteProtocolError
from fedd.crypto.secagg.fields import MAX_ROUND
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.crypto.secagg.messages.masked_input import MAX_VECTOR_BYTES
from fedd.crypto.secagg.params import MAX_PEERS
from fedd.daemon.transport.messages import DAEMON_MESSAGE_TYPES

__all__ = ["MAX_FRAME", "WIRE_VERSION", "MalformedMessage", "WireMessage", "decode", "encode"]

WIRE_VERSION: Final = 1
# The largest vector plus room for the envelope and the other fields.
MAX_FRAME: Final = MAX_VECTOR_BYTES + (1 << 20)

_LIMITS: Final = {
    "max_bin_len": MAX_VECTOR_BYTES,
    "max_str_len": 4096,
    "max_array_len": 2 * MAX_PEERS + 2,
    "max_map_len": 64,
    "max_ext_len": 0,
}


class MalformedMessage(RemoteProtocolError):
    """Bytes that are not a valid message of this wire version."""


class WireMessage(Protocol):
    """What every message class provides (protocol messages and the daemon's own)."""

    TYPE: ClassVar[str]

    @property
    def run(self) -> str: ...

    @property
    def round(self) -> int: ...

    def to_body(self) -> dict[str, object]: ...

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self: ...


_BY_TYPE: dict[str, type[Any]] = {cls.TYPE: cls for cls in (*MESSAGE_TYPES, *DAEMON_MESSAGE_TYPES)}


def encode(msg: WireMessage) -> bytes:
    """The frame for `msg`. Raises LocalProtocolError for a type the wire does not know."""
    if _BY_TYPE.get(getattr(msg, "TYPE", "")) is not type(msg):
        raise LocalProtocolError(f"{type(msg).__name__} is not a wire message")
    doc = {
        "v": WIRE_VERSION,
        "type": msg.TYPE,
        "run": msg.run,
        "round": msg.round,
        "body": msg.to_body(),
    }
    frame: bytes = msgpack.packb(doc, use_bin_type=True)
    return frame


def decode(frame: bytes) -> Any:
    """Parse one frame into its message object; raises MalformedMessage, nothing else."""
    if type(frame) is not bytes:
        raise MalformedMessage("frame must be bytes")
    if len(frame) > MAX_FRAME:
        raise MalformedMessage(f"frame of {len(frame)} bytes exceeds {MAX_FRAME}")
    try:
        doc = msgpack.unpackb(frame, raw=False, strict_map_key=True, **_LIMITS)
    except (ValueError, msgpack.UnpackException) as exc:
        raise MalformedMessage(f"undecodable frame: {type(exc).__name__}") from None
    if type(doc) is not dict:
        raise MalformedMessage("frame is not a map")
    if doc.get("v") != WIRE_VERSION or type(doc.get("v")) is not int:
        raise MalformedMessage(f"not a version {WIRE_VERSION} message")
    extra = doc.keys() - {"v", "type", "run", "round", "body"}
    if extra:
        # Keys may be str or bytes (strict_map_key admits both): sort by repr.
        names = ", ".join(sorted(map(repr, extra))[:3])
        raise MalformedMessage(f"unexpected envelope fields: {names}")
    kind, run, round_, body = doc.get("type"), doc.get("run"), doc.get("round"), doc.get("body")
    if type(kind) is not str:
        raise MalformedMessage("'type' must be a string")
    cls = _BY_TYPE.get(kind)
    if cls is None:
        raise MalformedMessage(f"unknown message type {kind[:40]!r}")
    if type(run) is not str or type(round_) is not int or type(body) is not dict:
        raise MalformedMessage("'run' must be a string, 'round' an integer, 'body' a map")
    if not 0 <= round_ <= MAX_ROUND:
        raise MalformedMessage("'round' out of range")
    try:
        return cls.from_body(run, round_, body)
    except LocalProtocolError as exc:
        raise MalformedMessage(f"{kind}: {exc}") from None
