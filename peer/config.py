"""What `fedd start peer` configures, and what a peer insists on before it
takes part in a round (`refusal`): the protocol it requires, the keys an
active round needs, and a secure round's parameters at least as strong as
its own floor (`crypto.secagg.shape.Floor`), whatever the hub says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fedd.crypto.errors import ParameterError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import RoundParams
from fedd.crypto.secagg.shape import Floor
from fedd.crypto.signing import SigningKey
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.messages.rounds import RoundStart
from fedd.daemon.transport.sockets import ClientCurve, check_endpoint
from fedd.peer.shard import ShardSource

__all__ = ["FAULT_STAGES", "REQUIREMENTS", "PeerConfig", "Signing", "refusal"]

# Where `--fault exit-at:STAGE` kills the peer in its first round. For testing.
FAULT_STAGES = ("training", "advertise-keys", "share-keys", "masked-input", "unmask")


# What a peer insists on, weakest first: any protocol; secure aggregation
# (full or plus); or secure aggregation that also resists a lying hub.
REQUIREMENTS = ("any", "secure", "active")


@dataclass(frozen=True)
class Signing:
    """A peer's long-term signing key and the signing keys it trusts, by peer id."""

    key: SigningKey
    trusted: Mapping[PeerId, bytes]


def refusal(msg: RoundStart, config: PeerConfig, me: PeerId) -> str | None:
    """Why this peer must sit the round out, or None if it may take part."""
    params = msg.secagg
    if params is None:
        if config.require == "any":
            return None
        require = config.require
        return f"this peer requires secure aggregation (--require {require}); the round is plain"
    reason = _protocol_refusal(params, config, me)
    if reason is None:
        try:
            config.floor.check(params)
        except ParameterError as exc:
            reason = str(exc)
    return reason


def _protocol_refusal(params: RoundParams, config: PeerConfig, me: PeerId) -> str | None:
    """Why this peer cannot or will not run the protocol a secure round asks for."""
    if config.require == "active" and not params.active:
        return "this peer requires the active-adversary protocol (--require active)"
    if not params.active:
        return None
    if config.signing is None:
        return "an active round needs this peer's --signing-key and --trusted-dir"
    strangers = sorted(set(params.participants) - set(config.signing.trusted) - {me})
    if strangers:
        return f"participants without a trusted signing key: {', '.join(strangers[:5])}"
    return None


@dataclass(frozen=True)
class PeerConfig:
    """Everything `fedd start peer` can set."""

    connect: str
    data: Path | None = None
    state_dir: Path = Path("state/peer")
    label: str = "Class"
    ignore_columns: tuple[str, ...] = ()  # columns of `data` that are not features
    encoding: str = "utf-8"  # of `data`
    fill_missing: float | None = None  # what a missing cell of `data` reads as
    peer_id: str | None = None
    fault_stage: str | None = None
    shard: ShardSource | None = None
    curve: ClientCurve | None = None
    signing: Signing | None = None
    require: str = "any"
    floor: Floor = field(default_factory=Floor)  # the weakest secure round it takes part in
    holdout: float = 0.2  # the share of each class held out to score models on; 0: none
    holdout_seed: int = 42

    def __post_init__(self) -> None:
        check_endpoint(self.connect, bind=False)  # before any state is created
        if self.require not in REQUIREMENTS:
            raise ConfigError(f"--require takes one of {', '.join(REQUIREMENTS)}")
        if (self.data is None) == (self.shard is None):
            raise ConfigError("give the peer --data PATH or --shard auto (one of them)")
        if self.ignore_columns and self.data is None:
            raise ConfigError("--ignore-columns names columns of --data; shards have none to leave")
        if self.encoding != "utf-8" and self.data is None:
            raise ConfigError("--encoding is that of --data; shards are fedd's own UTF-8 files")
        if self.fill_missing is not None and self.data is None:
            raise ConfigError("--fill-missing fills in cells of --data; shards miss none")
        if not 0.0 <= self.holdout < 1.0:
            raise ConfigError("--holdout takes a fraction in [0, 1): 0.2 holds out a fifth")
        if self.fault_stage is not None and self.fault_stage not in FAULT_STAGES:
            raise ConfigError(f"--fault exit-at:STAGE takes one of {', '.join(FAULT_STAGES)}")
