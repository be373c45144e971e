"""`HubConfig`: everything `fedd start hub` can set, checked before any state exists.

It also picks a round's fixed-point encoding, because whether a configuration
can ever run a secure round depends on it: the sum of `--min-peers` clipped,
weighted updates must fit the modulus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import ParameterError
from fedd.crypto.secagg.shape import DEFAULT_CORRUPT, DEFAULT_DROPOUT
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport.sockets import check_endpoint
from fedd.learner.strategy import Strategy

__all__ = ["HubConfig", "choose_encoding"]


@dataclass(frozen=True)
class HubConfig:
    """Everything `fedd start hub` can set."""

    bind: str = "tcp://*:5555"
    state_dir: Path = Path("state/hub")
    min_peers: int = 3
    rounds: int = 10
    secagg: str = "full"
    active: bool = False  # signed advertisements and the consistency check
    secagg_threshold: int | None = None  # Shamir's t; None: chosen per round
    decision_threshold: float = 0.5  # the probability at which precision, recall and F1 count
    eval_test: Path | None = None
    label: str = "Class"
    ignore_columns: tuple[str, ...] = ()  # columns of `eval_test` that are not features
    encoding: str = "utf-8"  # of `eval_test`
    fill_missing: float | None = None  # what a missing cell of `eval_test` reads as
    local_epochs: int = 1
    lr: float = 0.1
    batch_size: int = 512
    l2: float = 0.0
    class_weight: str = "none"
    seed: int = 42
    strategy: Strategy = field(
        default_factory=Strategy
    )  # what the hub makes of each round's mean update
    proximal_mu: float = 0.0  # FedProx's proximal term in the peers' local objective
    stage_timeout: float = 30.0
    train_timeout: float = 300.0
    exit_when_done: bool = False
    join_window: float = 1.0
    heartbeat_s: float = 1.0
    liveness_s: float = 10.0
    clip: float = 16.0
    max_weight: int = 1 << 20
    mod_bits: int = 0  # 0: 32 when the encoding keeps a fine scale, else 64
    dropout_budget: float = DEFAULT_DROPOUT
    corrupt: float = DEFAULT_CORRUPT
    shards: int = 0
    curve_secret: Path | None = None
    allow_dir: Path | None = None

    def _check_eval_test_reading(self) -> None:
        """The options about reading --eval-test come only with it."""
        if self.eval_test is not None:
            return
        if self.ignore_columns:
            raise ConfigError("--ignore-columns names columns of --eval-test, which is not given")
        if self.encoding != "utf-8":
            raise ConfigError("--encoding is that of --eval-test, which is not given")
        if self.fill_missing is not None:
            raise ConfigError("--fill-missing fills in cells of --eval-test, which is not given")

    def __post_init__(self) -> None:
        check_endpoint(self.bind, bind=True)  # before any state is created
        self._check_eval_test_reading()
        if (self.curve_secret is None) != (self.allow_dir is None):
            raise ConfigError("CURVE needs both --curve-secret and --allow-dir")
        if self.secagg not in ("off", "full", "plus"):
            raise ConfigError("--secagg must be off, full or plus")
        if self.min_peers < 1 or (self.secagg != "off" and self.min_peers < 2):
            raise ConfigError("--min-peers must be at least 1 (2 for secure aggregation)")
        if (
            self.secagg_threshold is not None
            and self.secagg_threshold > self.min_peers
            and self.secagg != "off"
        ):
            raise ConfigError(
                f"--secagg-threshold {self.secagg_threshold} exceeds --min-peers "
                f"{self.min_peers}: rounds could start that can never reach the threshold"
            )
        if not 0.0 < self.decision_threshold < 1.0:
            raise ConfigError("--decision-threshold must be a probability strictly between 0 and 1")
        if not self.liveness_s > self.heartbeat_s > 0:
            raise ConfigError("liveness must be longer than the heartbeat interval")
        if self.active and self.secagg == "off":
            raise ConfigError("--active needs --secagg full or plus")
        if not (math.isfinite(self.proximal_mu) and self.proximal_mu >= 0.0):
            raise ConfigError("--proximal-mu must be a finite number >= 0")
        if self.secagg != "off":
            try:  # rounds have at least --min-peers peers: if they cannot fit, none ever starts
                choose_encoding(self.min_peers, self)
            except ParameterError:
                bits = self.mod_bits or 64
                raise ConfigError(
                    f"the sum of {self.min_peers} peers' updates (--clip {self.clip:g}, "
                    f"--max-weight {self.max_weight}) can wrap mod 2^{bits}, so no round "
                    "could start: lower --clip or --max-weight"
                    + (", or use --mod-bits 64" if bits == 32 else "")
                ) from None

    @property
    def training_settings(self) -> dict[str, str]:
        """What a run records of how it trains (run.csv): the strategy, its settings
        and the proximal term; a restart must keep them (`check_resumable`)."""
        return {**self.strategy.settings, "proximal_mu": repr(float(self.proximal_mu))}

    def check_resumable(self, settings: Mapping[str, str], run_id: str) -> None:
        """ConfigError unless the run that recorded `settings` (run.csv's) trains as
        this configuration does: its model and the strategy's state were made so."""
        try:
            strategy = Strategy.from_settings(settings)
            mu = float(settings.get("proximal_mu", "0"))
        except ValueError as exc:
            raise ConfigError(f"{self.state_dir}: run.csv: {exc}") from None
        if strategy != self.strategy or mu != self.proximal_mu:
            recorded = {**strategy.settings, "proximal_mu": repr(mu)}
            flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in recorded.items())
            raise ConfigError(
                f"{self.state_dir} holds run {run_id}, which trains with other settings: "
                f"start the hub with {flags} to resume it, or start a new run in another "
                "state directory"
            )


# Below this many steps per unit the quantization could start to show in the
# mean of a few peers with few samples; 64-bit vectors cost little for a
# linear model.
_FINE_SCALE = 256.0


def choose_encoding(n: int, c: HubConfig, *, wide: bool = False) -> FixedPoint:
    """The fixed-point encoding for n peers: 32-bit when it stays fine, else 64-bit.

    `wide` rounds (a training round that also carries scores) need 64 bits
    whatever `--mod-bits` says: their counts travel in the same lanes.
    Raises ParameterError when even the configured modulus cannot hold the sum.
    """
    if wide:
        return FixedPoint.fit(max_peers=n, max_weight=c.max_weight, clip=c.clip, mod_bits=64)
    if c.mod_bits:
        return FixedPoint.fit(
            max_peers=n, max_weight=c.max_weight, clip=c.clip, mod_bits=c.mod_bits
        )
    try:
        narrow = FixedPoint.fit(max_peers=n, max_weight=c.max_weight, clip=c.clip, mod_bits=32)
    except ParameterError:
        narrow = None
    if narrow is not None and narrow.scale >= _FINE_SCALE:
        return narrow
    return FixedPoint.fit(max_peers=n, max_weight=c.max_weight, clip=c.clip, mod_bits=64)
