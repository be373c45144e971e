"""One round: what the hub asks for, how it ended, and a peer's refusal.

    hub -> peer      RoundStart (with its TrainConfig, Scaling, EvalRequests), RoundEnd
    peer -> hub      Decline

What peers upload is in `messages.uploads`; secure rounds carry the
protocol's parameters in RoundStart, and its own messages live in
`crypto.secagg.messages`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import LocalProtocolError, ParameterError
from fedd.crypto.secagg.fields import MAX_ROUND, check_int, get_bytes, get_int, get_list, get_str
from fedd.crypto.secagg.params import RoundParams
from fedd.daemon.transport.contribution import KINDS, Layout
from fedd.daemon.transport.messages.common import (
    MAX_FEATURES,
    MAX_REASON,
    Header,
    check_reason,
    get_choice,
    get_float,
    get_map,
)
from fedd.learner.binned import MAX_BINS, check_edges

__all__ = [
    "MAX_EVALS",
    "MODES",
    "Decline",
    "EvalRequest",
    "RoundEnd",
    "RoundStart",
    "Scaling",
    "TrainConfig",
    "pack_floats",
    "unpack_floats",
]

MODES = ("off", "full", "plus")
MAX_EVALS = 2  # models a round scores: the newest, and one whose bounds need finer bins
_MODEL_BYTES = 8 * (MAX_FEATURES + 1)
CLASS_WEIGHTS = ("none", "balanced")


def pack_floats(values: list[float]) -> bytes:
    """Little-endian float64, the wire form of models, scalings and bin edges."""
    return struct.pack(f"<{len(values)}d", *values)


_FLOAT = frozenset({float})


def _finite_floats(values: tuple[float, ...]) -> bool:
    """Whether every value is a finite float (exactly: no int, bool or subclass).

    Models and bin edges hold up to thousands of values and every RoundStart
    carries several; the checks run as C loops (`map` over builtins), not as a
    Python-level generator.
    """
    return _FLOAT.issuperset(map(type, values)) and all(map(math.isfinite, values))


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
    the minibatches of each round's epochs. `proximal_mu` is FedProx's
    weight of the proximal term `mu/2 |w - w_global|^2` (0: none).
    """

    epochs: int
    lr: float
    batch_size: int
    l2: float
    class_weight: str
    seed: int
    proximal_mu: float = 0.0

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", 1, 1000)
        check_int(self.batch_size, "batch_size", 1, 1 << 24)
        check_int(self.seed, "seed", 0, 2**63 - 1)
        for name, value in (("lr", self.lr), ("l2", self.l2), ("proximal_mu", self.proximal_mu)):
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
            "proximal_mu": self.proximal_mu,
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
            get_float(body, "proximal_mu", 0.0, 1e6),
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
class Scaling:
    """The run's federated feature statistics: each peer z-scores its rows with them."""

    means: tuple[float, ...]
    stds: tuple[float, ...]

    def __post_init__(self) -> None:
        if type(self.means) is not tuple or type(self.stds) is not tuple:
            raise LocalProtocolError("scaling holds tuples of floats")
        if len(self.means) != len(self.stds) or not 1 <= len(self.means) <= MAX_FEATURES:
            raise LocalProtocolError("scaling needs one mean and one std per feature")
        if not (_finite_floats(self.means) and _finite_floats(self.stds)):
            raise LocalProtocolError("scaling values must be finite floats")
        if min(self.stds) <= 0.0:
            raise LocalProtocolError("a standard deviation must be positive")

    def to_body(self) -> dict[str, object]:
        return {"means": pack_floats(list(self.means)), "stds": pack_floats(list(self.stds))}

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Scaling:
        size = 8 * MAX_FEATURES
        return cls(
            tuple(unpack_floats(get_bytes(body, "means", max_size=size), "means")),
            tuple(unpack_floats(get_bytes(body, "stds", max_size=size), "stds")),
        )


@dataclass(frozen=True, slots=True)
class EvalRequest:
    """Score the held-out rows with the model of training round `model_round`.

    `params` is that model, `edges` the bins' edges on the logit scale
    (`learner.binned`); true and false positives are counted at probability
    `threshold`.
    """

    model_round: int
    params: tuple[float, ...]
    edges: tuple[float, ...]
    threshold: float

    def __post_init__(self) -> None:
        check_int(self.model_round, "model_round", 1, MAX_ROUND)
        if type(self.params) is not tuple or not 2 <= len(self.params) <= MAX_FEATURES + 1:
            raise LocalProtocolError("an evaluated model holds a bias and at least one weight")
        if not _finite_floats(self.params):
            raise LocalProtocolError("an evaluated model's parameters must be finite floats")
        if type(self.edges) is not tuple or not _FLOAT.issuperset(map(type, self.edges)):
            raise LocalProtocolError("bin edges must be a tuple of floats")
        try:
            check_edges(self.edges)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from None
        if type(self.threshold) is not float or not 0.0 < self.threshold < 1.0:
            raise LocalProtocolError("the decision threshold must be a float in (0, 1)")

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def to_body(self) -> dict[str, object]:
        return {
            "model_round": self.model_round,
            "params": pack_floats(list(self.params)),
            "edges": pack_floats(list(self.edges)),
            "threshold": self.threshold,
        }

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> EvalRequest:
        return cls(
            get_int(body, "model_round", 1, MAX_ROUND),
            tuple(
                unpack_floats(get_bytes(body, "params", max_size=8 * (MAX_FEATURES + 1)), "params")
            ),
            tuple(unpack_floats(get_bytes(body, "edges", max_size=8 * MAX_BINS), "edges")),
            get_float(body, "threshold", 0.0, 1.0),
        )


@dataclass(frozen=True, slots=True)
class RoundStart(Header):
    """Hub -> peer: contribute to the round (plainly, or by `secagg`).

    `kind` says what to contribute: `statistics` (the exact moments of the
    training rows, once per run), `training` (train from `model` with
    `train`, and score `evals`), or `evaluation` (score `evals` only). Rows
    are z-scored with `scaling` first, in every round after the statistics.
    `encoding` is the fixed-point encoding of a training round's update.
    `control` is SCAFFOLD's global control variate (training rounds of a
    SCAFFOLD run only): peers then send their control variate change too.
    The vector each peer sends has the shape `layout` gives.
    """

    TYPE: ClassVar[str] = "round_start"
    kind: str
    mode: str
    model: tuple[float, ...]
    train: TrainConfig | None = None
    scaling: Scaling | None = None
    evals: tuple[EvalRequest, ...] = ()
    secagg: RoundParams | None = None
    encoding: FixedPoint | None = None
    control: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self._check_header()
        self._check_contents()
        if self.control is not None and (
            type(self.control) is not tuple
            or len(self.control) != len(self.model)
            or not _finite_floats(self.control)
        ):
            raise LocalProtocolError("the control variate holds one finite float per parameter")
        if type(self.evals) is not tuple or len(self.evals) > MAX_EVALS:
            raise LocalProtocolError(f"a round carries at most {MAX_EVALS} evaluations")
        for request in self.evals:
            if type(request) is not EvalRequest or len(request.params) != len(self.model):
                raise LocalProtocolError("an evaluation must be of a model of this run's shape")
        if (self.secagg is not None) != (self.mode != "off"):
            raise LocalProtocolError("secure rounds carry secagg parameters; plain rounds none")
        layout = self.layout  # checks kind, encoding and evaluations together
        if self.secagg is not None:
            if self.secagg.run != self.run or self.secagg.round != self.round:
                raise LocalProtocolError("secagg parameters are for another round")
            if self.secagg.mode.value != self.mode:
                raise LocalProtocolError("secagg mode differs from the round's mode")
            if self.secagg.dim != layout.lanes or self.secagg.mod_bits != layout.mod_bits:
                raise LocalProtocolError("secagg dim and modulus must match the round's layout")

    def _check_contents(self) -> None:
        if self.kind not in KINDS:
            raise LocalProtocolError(f"kind must be one of {', '.join(KINDS)}")
        if self.mode not in MODES:
            raise LocalProtocolError(f"mode must be one of {', '.join(MODES)}")
        if type(self.model) is not tuple or not 2 <= len(self.model) <= MAX_FEATURES + 1:
            raise LocalProtocolError("model must hold a bias and at least one weight")
        if (self.kind == "training") != (type(self.train) is TrainConfig):
            raise LocalProtocolError("training rounds, and only they, carry a TrainConfig")
        if (self.kind == "statistics") == (type(self.scaling) is Scaling):
            raise LocalProtocolError("every round after the statistics carries the scaling")
        if self.scaling is not None and len(self.scaling.means) != len(self.model) - 1:
            raise LocalProtocolError("the scaling must cover the model's features")

    @property
    def layout(self) -> Layout:
        """The shape of the vector each peer contributes to this round."""
        return Layout(
            self.kind,
            len(self.model) - 1,
            self.encoding,
            tuple(e.bins for e in self.evals),
            self.control is not None,
        )

    def to_body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "kind": self.kind,
            "mode": self.mode,
            "model": pack_floats(list(self.model)),
            "evals": [e.to_body() for e in self.evals],
        }
        if self.train is not None:
            body["train"] = self.train.to_body()
        if self.scaling is not None:
            body["scaling"] = self.scaling.to_body()
        if self.secagg is not None:
            body["secagg"] = self.secagg.to_body()
        if self.encoding is not None:
            body["encoding"] = _encoding_body(self.encoding)
        # Always there, empty without SCAFFOLD: a missing field is a malformed message.
        body["control"] = pack_floats(list(self.control or ()))
        return body

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        kind = get_choice(body, "kind", KINDS)
        mode = get_choice(body, "mode", MODES)
        model = unpack_floats(get_bytes(body, "model", max_size=_MODEL_BYTES), "model")
        evals = get_list(body, "evals", max_length=MAX_EVALS)
        control = unpack_floats(get_bytes(body, "control", max_size=_MODEL_BYTES), "control")
        return cls(
            run,
            round,
            kind,
            mode,
            tuple(model),
            TrainConfig.from_body(get_map(body, "train")) if kind == "training" else None,
            Scaling.from_body(get_map(body, "scaling")) if kind != "statistics" else None,
            tuple(EvalRequest.from_body(_as_map(e)) for e in evals),
            RoundParams.from_body(get_map(body, "secagg")) if mode != "off" else None,
            _encoding_from(get_map(body, "encoding")) if kind == "training" else None,
            tuple(control) if control else None,
        )


def _as_map(value: object) -> Mapping[str, object]:
    if type(value) is not dict:
        raise LocalProtocolError("an evaluation must be a map")
    return value


@dataclass(frozen=True, slots=True)
class RoundEnd(Header):
    """Hub -> peer: how the round ended for everyone ("ok" or "aborted", with the
    reason), and whether this peer's vector is in the committed sum (`included`:
    only then does a SCAFFOLD peer adopt its new control variate)."""

    TYPE: ClassVar[str] = "round_end"
    status: str
    reason: str = ""
    included: bool = False

    def __post_init__(self) -> None:
        self._check_header()
        if self.status not in ("ok", "aborted"):
            raise LocalProtocolError("status must be 'ok' or 'aborted'")
        check_reason(self.reason)
        if type(self.included) is not bool:
            raise LocalProtocolError("included must be a boolean")
        if self.included and self.status != "ok":
            raise LocalProtocolError("an aborted round's sum includes no one")

    def to_body(self) -> dict[str, object]:
        return {"status": self.status, "reason": self.reason, "included": self.included}

    @classmethod
    def from_body(cls, run: str, round: int, body: Mapping[str, object]) -> Self:
        included = body.get("included")
        if type(included) is not bool:
            raise LocalProtocolError("'included' must be a boolean")
        return cls(
            run,
            round,
            get_choice(body, "status", ("ok", "aborted")),
            get_str(body, "reason", max_length=MAX_REASON),
            included,
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
