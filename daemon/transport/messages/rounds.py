"""One training round: what the hub asks for and what the peers send back.

    hub -> peer      RoundStart (with its TrainConfig), RoundEnd
    peer -> hub      PlainUpdate, PeerStats, Decline

Secure rounds carry the protocol's parameters in RoundStart; their own
messages live in `crypto.secagg.messages`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import LocalProtocolError, ParameterError
from fedd.crypto.secagg.fields import check_int, get_bytes, get_int, get_str
from fedd.crypto.secagg.params import RoundParams
from fedd.daemon.transport.messages.common import (
    MAX_FEATURES,
    MAX_REASON,
    Header,
    check_reason,
    get_choice,
    get_float,
    get_map,
)

__all__ = [
    "MODES",
    "Decline",
    "PeerStats",
    "PlainUpdate",
    "RoundEnd",
    "RoundStart",
    "TrainConfig",
    "pack_floats",
    "unpack_floats",
]

MODES = ("off", "full", "plus")
CLASS_WEIGHTS = ("none", "balanced")


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
            get_float(body, "lr", 0.0, 1e6),
            get_int(body, "batch_size", 1, 1 << 24),
            get_float(body, "l2", 0.0, 1e6),
            get_choice(body, "class_weight", CLASS_WEIGHTS),
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
    l2 = get_float(body, "l2_clip", 0.0, 1e300)
    try:
        return FixedPoint(
            mod_bits=get_int(body, "mod_bits", 1, 64),
            scale=get_float(body, "scale", 0.0, 1e300),
            clip=get_float(body, "clip", 0.0, 1e300),
            max_weight=get_int(body, "max_weight", 1, 2**62),
            l2_clip=l2 if l2 > 0 else None,
        )
    except ParameterError as exc:
        raise LocalProtocolError(f"encoding: {exc}") from None


@dataclass(frozen=True, slots=True)
class RoundStart(Header):
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
        mode = get_choice(body, "mode", MODES)
        model = unpack_floats(get_bytes(body, "model", max_size=8 * (MAX_FEATURES + 1)), "model")
        secagg = encoding = None
        if mode != "off":
            secagg = RoundParams.from_body(get_map(body, "secagg"))
            encoding = _encoding_from(get_map(body, "encoding"))
        return cls(
            run,
            round,
            mode,
            tuple(model),
            TrainConfig.from_body(get_map(body, "train")),
            secagg,
            encoding,
        )


@dataclass(frozen=True, slots=True)
class PlainUpdate(Header):
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
class PeerStats(Header):
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
            get_float(body, "train_s", 0.0, 1e9),
            get_float(body, "cpu_s", 0.0, 1e9),
        )


@dataclass(frozen=True, slots=True)
class RoundEnd(Header):
    """Hub -> peer: how the round ended for everyone ("ok" or "aborted", with the reason)."""

    TYPE: ClassVar[str] = "round_end"
    status: str
    reason: str = ""

    def __post_init__(self) -> None:
        self._check_header()
        if self.status not in ("ok", "aborted"):
            raise LocalProtocolError("status must be 'ok' or 'aborted'")
        check_reason(self.reason)

    def to_body(self) -> dict[str, object]:
        return {"status": self.status, "reason": self.reason}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(
            run,
            round,
            get_choice(body, "status", ("ok", "aborted")),
            get_str(body, "reason", max_length=MAX_REASON),
        )


@dataclass(frozen=True, slots=True)
class Decline(Header):
    """Peer -> hub: this peer sits the round out, and why (its configuration forbids
    the protocol the hub asked for, or it lacks the keys for it)."""

    TYPE: ClassVar[str] = "decline"
    reason: str

    def __post_init__(self) -> None:
        self._check_header()
        check_reason(self.reason)

    def to_body(self) -> dict[str, object]:
        return {"reason": self.reason}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        return cls(run, round, get_str(body, "reason", max_length=MAX_REASON))
