"""The status exchange: a client asks the hub for a view and gets JSON-like data.

    client -> hub    StatusRequest            hub -> client   StatusReply, Error

A status client does not know the run id: StatusRequest carries an empty `run`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import check_int, get_int
from fedd.daemon.transport.messages.common import Header, get_choice, get_map

__all__ = ["STATUS_TOPICS", "StatusReply", "StatusRequest"]

STATUS_TOPICS = ("summary", "peers", "rounds")


@dataclass(frozen=True, slots=True)
class StatusRequest(Header):
    """Client -> hub: `summary`, `peers` or the `last` rounds."""

    TYPE: ClassVar[str] = "status_request"
    topic: str
    last: int = 10

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)
        if self.topic not in STATUS_TOPICS:
            raise LocalProtocolError(f"topic must be one of {', '.join(STATUS_TOPICS)}")
        check_int(self.last, "last", 1, 10_000)

    def to_body(self) -> dict[str, object]:
        return {"topic": self.topic, "last": self.last}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run, round, get_choice(body, "topic", STATUS_TOPICS), get_int(body, "last", 1, 10_000)
        )


_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value: object, depth: int = 0) -> None:
    """JSON-like data only: maps with string keys, lists, and scalars, not too deep."""
    if depth > 6:
        raise LocalProtocolError("status data nested too deeply")
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise LocalProtocolError("status data keys must be strings")
            _check_plain(item, depth + 1)
    elif type(value) is list:
        for item in value:
            _check_plain(item, depth + 1)
    elif type(value) not in _SCALARS or (type(value) is float and not math.isfinite(value)):
        raise LocalProtocolError("status data must be JSON-like")


@dataclass(frozen=True, slots=True)
class StatusReply(Header):
    """Hub -> client: the requested view, as JSON-like data (see daemon.hub.status)."""

    TYPE: ClassVar[str] = "status_reply"
    topic: str
    data: dict[str, object]

    def __post_init__(self) -> None:
        self._check_header()
        if self.topic not in STATUS_TOPICS:
            raise LocalProtocolError(f"topic must be one of {', '.join(STATUS_TOPICS)}")
        _check_plain(self.data)

    def to_body(self) -> dict[str, object]:
        return {"topic": self.topic, "data": self.data}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        data = get_map(body, "data")
        return cls(run, round, get_choice(body, "topic", STATUS_TOPICS), dict(data))
