"""The daemons' own messages: registration, liveness, rounds, status.

Like the protocol messages of `crypto.secagg.messages`, each is a frozen,
slotted dataclass that validates itself and raises `LocalProtocolError`;
`daemon.transport.wire` encodes them and re-raises failures as `MalformedMessage`.

    peer -> hub      Hello, Heartbeat, PlainUpdate, PeerStats, Decline, Bye
    hub -> peer      Welcome, Heartbeat, RoundStart, RoundEnd, Done, Error
    client -> hub    StatusRequest            hub -> client   StatusReply, Error

Before a peer is welcomed it does not know the run id: Hello and
StatusRequest carry an empty `run`.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import LocalProtocolError, ParameterError
from fedd.crypto.secagg.fields import (
    MAX_ROUND,
    PeerId,
    check_int,
    check_peer_id,
    check_run_id,
    get_bytes,
    get_int,
    get_list,
    get_peer_id,
    get_str,
)
from fedd.crypto.secagg.params import RoundParams

__all__ = [
    "DAEMON_MESSAGE_TYPES",
    "MAX_FEATURES",
    "MODES",
    "WIRE_PROTOCOL",
    "Bye",
    "Decline",
    "Done",
    "Error",
    "Heartbeat",
    "Hello",
    "PeerStats",
    "PlainUpdate",
    "RoundEnd",
    "RoundStart",
    "StatusReply",
    "StatusRequest",
    "TrainConfig",
    "Welcome",
    "pack_floats",
    "unpack_floats",
]

MAX_FEATURES = 4096
MAX_NAME = 128
MAX_REASON = 400
MODES = ("off", "full", "plus")
CLASS_WEIGHTS = ("none", "balanced")
STATUS_TOPICS = ("summary", "peers", "rounds")
WIRE_PROTOCOL = 1


def pack_floats(values: list[float]) -> bytes:
    """Little-endian float64, the wire form of models and plain updates."""
    return struct.pack(f"<{len(values)}d", *values)


def unpack_floats(data: bytes, what: str) -> list[float]:
    """The inverse of pack_floats; raises LocalProtocolError on a bad size or a non-finite value."""
    if len(data) % 8:
        raise LocalProtocolError(f"{what} is not a whole number of float64 values")
    values = list(struct.unpack(f"<{len(data) // 8}d", data))
    if not all(map(math.isfinite, values)):
        raise LocalProtocolError(f"{what} contains NaN or infinity")
    return values


@dataclass(frozen=True, slots=True)
class _Header:
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


def _check_reason(value: object) -> None:
    """A reason is one line of text: peers log it, print it and write it to rounds.csv."""
    if type(value) is not str or len(value) > MAX_REASON or _CONTROL.search(value):
        raise LocalProtocolError(
            f"reason must be one line of at most {MAX_REASON} characters, "
            "without control characters"
        )


def _float(body: Mapping[str, object], name: str, lo: float, hi: float) -> float:
    value = body.get(name)
    if type(value) is not float or not math.isfinite(value) or not lo <= value <= hi:
        raise LocalProtocolError(f"{name!r} must be a float in [{lo}, {hi}]")
    return value


def _choice(body: Mapping[str, object], name: str, options: tuple[str, ...]) -> str:
    value = get_str(body, name, max_length=32)
    if value not in options:
        raise LocalProtocolError(f"{name!r} must be one of {', '.join(options)}")
    return value


def _map(body: Mapping[str, object], name: str) -> Mapping[str, object]:
    value = body.get(name)
    if type(value) is not dict:
        raise LocalProtocolError(f"{name!r} must be a map")
    return value


@dataclass(frozen=True, slots=True)
class Hello(_Header):
    """Peer -> hub: register (or re-register after a restart of either side)."""

    TYPE: ClassVar[str] = "hello"
    peer: PeerId
    features: tuple[str, ...]
    protocol: int = WIRE_PROTOCOL
    shard: str = ""  # "auto": ask the hub for a shard index

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)
        check_peer_id(self.peer)
        if type(self.features) is not tuple or not 1 <= len(self.features) <= MAX_FEATURES:
            raise LocalProtocolError(f"features must list 1 to {MAX_FEATURES} column names")
        for name in self.features:
            if type(name) is not str or not 1 <= len(name) <= MAX_NAME:
                raise LocalProtocolError(f"feature names must be 1-{MAX_NAME} characters")
        check_int(self.protocol, "protocol", 1, 1000)
        if self.shard not in ("", "auto"):
            raise LocalProtocolError("shard must be '' or 'auto'")

    def to_body(self) -> dict[str, object]:
        return {
            "peer": self.peer,
            "features": list(self.features),
            "protocol": self.protocol,
            "shard": self.shard,
        }

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        features = tuple(get_list(body, "features", max_length=MAX_FEATURES))
        return cls(
            run,
            round,
            get_peer_id(body, "peer"),
            features,  # type: ignore[arg-type]
            get_int(body, "protocol", 1, 1000),
            get_str(body, "shard", max_length=8),
        )


@dataclass(frozen=True, slots=True)
class Welcome(_Header):
    """Hub -> peer: registered under `peer`; the header carries the run id and current round."""

    TYPE: ClassVar[str] = "welcome"
    peer: PeerId
    heartbeat_s: float
    shard: int = 0  # 1-based shard index for --shard auto, 0 when not asked

    def __post_init__(self) -> None:
        self._check_header()
        check_peer_id(self.peer)
        if type(self.heartbeat_s) is not float or not 0.01 <= self.heartbeat_s <= 3600:
            raise LocalProtocolError("heartbeat_s must be a float in [0.01, 3600]")
        check_int(self.shard, "shard", 0, 100_000)

    def to_body(self) -> dict[str, object]:
        return {"peer": self.peer, "heartbeat_s": self.heartbeat_s, "shard": self.shard}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_peer_id(body, "peer"),
            _float(body, "heartbeat_s", 0.01, 3600),
            get_int(body, "shard", 0, 100_000),
        )


@dataclass(frozen=True, slots=True)
class _Signal(_Header):
    """A message that is all header: its type is all it says."""

    def __post_init__(self) -> None:
        self._check_header()

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round)


@dataclass(frozen=True, slots=True)
class Heartbeat(_Signal):
    """Either way: I am alive. Any message counts as a sign of life; this one says only that."""

    TYPE: ClassVar[str] = "heartbeat"


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How peers train locally in a round (FedAvg: E epochs from the global model).

    `seed` is the run's training seed: it fixes how a peer cuts its rows into
    minibatches, once for the whole run, and with the round number it orders
    the minibatches of each round's epochs.
    """

    epochs: int
    lr: float
    batch_size: int
    l2: float
    class_weight: str
    seed: int

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", 1, 1000)
        check_int(self.batch_size, "batch_size", 1, 1 << 24)
        check_int(self.seed, "seed", 0, 2**63 - 1)
        for name, value in (("lr", self.lr), ("l2", self.l2)):
            if type(value) is not float or not math.isfinite(value) or value < 0:
                raise LocalProtocolError(f"{name} must be a finite, non-negative float")
        if self.lr == 0:
            raise LocalProtocolError("lr must be positive")
        if self.class_weight not in CLASS_WEIGHTS:
            raise LocalProtocolError(f"class_weight must be one of {', '.join(CLASS_WEIGHTS)}")

    def to_body(self) -> dict[str, object]:
        return {
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "l2": self.l2,
            "class_weight": self.class_weight,
            "seed": self.seed,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> TrainConfig:
        return cls(
            get_int(body, "epochs", 1, 1000),
            _float(body, "lr", 0.0, 1e6),
            get_int(body, "batch_size", 1, 1 << 24),
            _float(body, "l2", 0.0, 1e6),
            _choice(body, "class_weight", CLASS_WEIGHTS),
            get_int(body, "seed", 0, 2**63 - 1),
        )


def _encoding_body(fp: FixedPoint) -> dict[str, object]:
    return {
        "mod_bits": fp.mod_bits,
        "scale": fp.scale,
        "clip": fp.clip,
        "max_weight": fp.max_weight,
        "l2_clip": fp.l2_clip if fp.l2_clip is not None else 0.0,
    }


def _encoding_from(body: Mapping[str, object]) -> FixedPoint:
    l2 = _float(body, "l2_clip", 0.0, 1e300)
    try:
        return FixedPoint(
            mod_bits=get_int(body, "mod_bits", 1, 64),
            scale=_float(body, "scale", 0.0, 1e300),
            clip=_float(body, "clip", 0.0, 1e300),
            max_weight=get_int(body, "max_weight", 1, 2**62),
            l2_clip=l2 if l2 > 0 else None,
        )
    except ParameterError as exc:
        raise LocalProtocolError(f"encoding: {exc}") from None


@dataclass(frozen=True, slots=True)
class RoundStart(_Header):
    """Hub -> peer: train from `model` with `train`, then upload (plainly, or by `secagg`)."""

    TYPE: ClassVar[str] = "round_start"
    mode: str
    model: tuple[float, ...]
    train: TrainConfig
    secagg: RoundParams | None = None
    encoding: FixedPoint | None = None

    def __post_init__(self) -> None:
        self._check_header()
        if self.mode not in MODES:
            raise LocalProtocolError(f"mode must be one of {', '.join(MODES)}")
        if type(self.model) is not tuple or not 2 <= len(self.model) <= MAX_FEATURES + 1:
            raise LocalProtocolError("model must hold a bias and at least one weight")
        if type(self.train) is not TrainConfig:
            raise LocalProtocolError("train must be a TrainConfig")
        secure = self.mode != "off"
        if secure != (self.secagg is not None) or secure != (self.encoding is not None):
            raise LocalProtocolError(
                "secure rounds carry secagg and encoding; plain rounds neither"
            )
        if self.secagg is not None:
            if self.secagg.run != self.run or self.secagg.round != self.round:
                raise LocalProtocolError("secagg parameters are for another round")
            if self.secagg.mode.value != self.mode:
                raise LocalProtocolError("secagg mode differs from the round's mode")
            if self.secagg.dim != len(self.model) + 1:
                raise LocalProtocolError("secagg dim must be the model size plus the weight")
            if self.encoding is None or self.encoding.mod_bits != self.secagg.mod_bits:
                raise LocalProtocolError("encoding and secagg disagree on the modulus")

    def to_body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "mode": self.mode,
            "model": pack_floats(list(self.model)),
            "train": self.train.to_body(),
        }
        if self.secagg is not None and self.encoding is not None:
            body["secagg"] = self.secagg.to_body()
            body["encoding"] = _encoding_body(self.encoding)
        return body

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        mode = _choice(body, "mode", MODES)
        model = unpack_floats(get_bytes(body, "model", max_size=8 * (MAX_FEATURES + 1)), "model")
        secagg = encoding = None
        if mode != "off":
            secagg = RoundParams.from_body(_map(body, "secagg"))
            encoding = _encoding_from(_map(body, "encoding"))
        return cls(
            run,
            round,
            mode,
            tuple(model),
            TrainConfig.from_body(_map(body, "train")),
            secagg,
            encoding,
        )


@dataclass(frozen=True, slots=True)
class PlainUpdate(_Header):
    """Peer -> hub, plain rounds: the local model's change and the sample count behind it."""

    TYPE: ClassVar[str] = "plain_update"
    n_samples: int
    delta: tuple[float, ...]

    def __post_init__(self) -> None:
        self._check_header()
        check_int(self.n_samples, "n_samples", 1, 2**62)
        if type(self.delta) is not tuple or not 2 <= len(self.delta) <= MAX_FEATURES + 1:
            raise LocalProtocolError("delta must hold a bias and at least one weight")

    def to_body(self) -> dict[str, object]:
        return {"n_samples": self.n_samples, "delta": pack_floats(list(self.delta))}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        delta = unpack_floats(get_bytes(body, "delta", max_size=8 * (MAX_FEATURES + 1)), "delta")
        return cls(run, round, get_int(body, "n_samples", 1, 2**62), tuple(delta))


@dataclass(frozen=True, slots=True)
class PeerStats(_Header):
    """Peer -> hub, right after local training: what training cost (client_perf.csv).

    In secure rounds `n_samples` is 0: the weight travels only inside the
    masked sum. Upload bytes are counted by the hub itself.
    """

    TYPE: ClassVar[str] = "peer_stats"
    n_samples: int
    train_s: float
    cpu_s: float

    def __post_init__(self) -> None:
        self._check_header()
        check_int(self.n_samples, "n_samples", 0, 2**62)
        for name in ("train_s", "cpu_s"):
            value = getattr(self, name)
            if type(value) is not float or not 0 <= value < 1e9:
                raise LocalProtocolError(f"{name} must be a non-negative float")

    def to_body(self) -> dict[str, object]:
        return {"n_samples": self.n_samples, "train_s": self.train_s, "cpu_s": self.cpu_s}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_int(body, "n_samples", 0, 2**62),
            _float(body, "train_s", 0.0, 1e9),
            _float(body, "cpu_s", 0.0, 1e9),
        )


@dataclass(frozen=True, slots=True)
class RoundEnd(_Header):
    """Hub -> peer: how the round ended for everyone ("ok" or "aborted", with the reason)."""

    TYPE: ClassVar[str] = "round_end"
    status: str
    reason: str = ""

    def __post_init__(self) -> None:
        self._check_header()
        if self.status not in ("ok", "aborted"):
            raise LocalProtocolError("status must be 'ok' or 'aborted'")
        _check_reason(self.reason)

    def to_body(self) -> dict[str, object]:
        return {"status": self.status, "reason": self.reason}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            _choice(body, "status", ("ok", "aborted")),
            get_str(body, "reason", max_length=MAX_REASON),
        )


@dataclass(frozen=True, slots=True)
class Done(_Signal):
    """Hub -> peer: training is finished; the peer may exit."""

    TYPE: ClassVar[str] = "done"


@dataclass(frozen=True, slots=True)
class Bye(_Signal):
    """Peer -> hub: leaving now (shutdown); count me out without waiting for a time-out."""

    TYPE: ClassVar[str] = "bye"

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)


@dataclass(frozen=True, slots=True)
class Decline(_Header):
    """Peer -> hub: this peer sits the round out, and why (its configuration forbids
    the protocol the hub asked for, or it lacks the keys for it)."""

    TYPE: ClassVar[str] = "decline"
    reason: str

    def __post_init__(self) -> None:
        self._check_header()
        _check_reason(self.reason)

    def to_body(self) -> dict[str, object]:
        return {"reason": self.reason}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_str(body, "reason", max_length=MAX_REASON))


@dataclass(frozen=True, slots=True)
class Error(_Header):
    """Hub -> peer or client: your last message was refused, and why.

    `retry` is False when trying again cannot help (for example a peer whose
    data has other columns than the hub's model): the peer should stop.
    """

    TYPE: ClassVar[str] = "error"
    reason: str
    retry: bool = True

    def __post_init__(self) -> None:
        self._check_header(run_may_be_empty=True)
        _check_reason(self.reason)
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


@dataclass(frozen=True, slots=True)
class StatusRequest(_Header):
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
            run, round, _choice(body, "topic", STATUS_TOPICS), get_int(body, "last", 1, 10_000)
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
class StatusReply(_Header):
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
        data = _map(body, "data")
        return cls(run, round, _choice(body, "topic", STATUS_TOPICS), dict(data))


DAEMON_MESSAGE_TYPES = (
    Hello,
    Welcome,
    Heartbeat,
    RoundStart,
    PlainUpdate,
    PeerStats,
    RoundEnd,
    Done,
    Bye,
    Decline,
    Error,
    StatusRequest,
    StatusReply,
)
