"""What every daemon message shares: the header, field checks, and Error.

`Header` carries the envelope's run id and round into each message and
checks them; `Signal` is a message that is all header. The getters add the
checks the daemon's messages need beyond `crypto.secagg.fields`. `Error` is
the hub's answer to any message it refuses, from a peer or a status client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.errors import LocalProtocolError
from fedd.crypto.secagg.fields import MAX_ROUND, check_int, check_run_id, get_str

__all__ = [
    "MAX_FEATURES",
    "MAX_REASON",
    "Error",
    "Header",
    "Signal",
    "check_reason",
    "get_choice",
    "get_float",
    "get_map",
]

MAX_FEATURES = 4096
MAX_REASON = 400


@dataclass(frozen=True, slots=True)
class Header:
    """The run id and round from the envelope, checked by each message's __post_init__."""

    run: str
    round: int

    def _check_header(self, *, run_may_be_empty: bool = False) -> None:
        if not (run_may_be_empty and self.run == ""):
            check_run_id(self.run)
        check_int(self.round, "round", 0, MAX_ROUND)

    def to_body(self) -> dict[str, object]:
        return {}


# C0, DEL and C1 control characters, as daemon.state.csvfile refuses them in text cells.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_reason(value: object) -> None:
    """A reason is one line of text: peers log it, print it and write it to rounds.csv."""
    if type(value) is not str or len(value) > MAX_REASON or _CONTROL.search(value):
        raise LocalProtocolError(
            f"reason must be one line of at most {MAX_REASON} characters, "
            "without control characters"
        )


def get_float(body: Mapping[str, object], name: str, lo: float, hi: float) -> float:
    value = body.get(name)
    if type(value) is not float or not math.isfinite(value) or not lo <= value <= hi:
        raise LocalProtocolError(f"{name!r} must be a float in [{lo}, {hi}]")
    return value


def get_choice(body: Mapping[str, object], name: str, options: tuple[str, ...]) -> str:
    value = get_str(body, name, max_length=32)
    if value not in options:
        raise LocalProtocolError(f"{name!r} must be one of {', '.join(options)}")
    return value


def get_map(body: Mapping[str, object], name: str) -> Mapping[str, object]:
    value = body.get(name)
    if type(value) is not dict:
        raise LocalProtocolError(f"{name!r} must be a map")
    return value


@dataclass(frozen=True, slots=True)
class Signal(Header):
    """A message that is all header: its type is all it says."""

    def __post_init__(self) -> None:
        self._check_header()

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round)


@dataclass(frozen=True, slots=True)
class Error(Header):
    """Hub -> peer or client: your last message was refused, and why.

    `retry` is False when trying again cannot help (for example a peer whose
    data has other columns than the hub's model): the peer should stop.
    """

    TYPE: ClassVar[str] = "error"
    reason: str
    retry: bool = True

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)
        check_reason(self.reason)
        if type(self.retry) is not bool:
            raise LocalProtocolError("retry must be a boolean")

    def to_body(self) -> dict[str, object]:
        return {"reason": self.reason, "retry": self.retry}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        retry = body.get("retry")
        if type(retry) is not bool:
            raise LocalProtocolError("'retry' must be a boolean")
        return cls(run, round, get_str(body, "reason", max_length=MAX_REASON), retry)
