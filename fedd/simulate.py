"""`fedd simulate`: one hub session and N peer sessions in one process.

Drives the sans-IO protocol cores through whole rounds on random inputs,
with every message passed through the real wire encoding (so byte counts
are what a socket would carry), dropping a chosen fraction of peers at a
chosen stage, and checks the hub's result against the plain sum of the
survivors' inputs computed independently. No sockets, no sleeping: a stage
that waits for a dropped peer is closed by jumping the simulated clock to
its deadline.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fedd.crypto.errors import ParameterError, RoundAborted
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import HubSession
from fedd.crypto.secagg.messages import Send
from fedd.crypto.secagg.messages.advertise_keys import Roster
from fedd.crypto.secagg.messages.consistency import ConsistencyRequest
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.seed import SeedNonces
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession
from fedd.crypto.secagg.shape import Floor, RoundShape, choose_shape
from fedd.crypto.signing import SigningKey
from fedd.daemon.transport import wire

__all__ = ["DROPOUT_STAGES", "RoundReport", "SimConfig", "run_secure_round", "run_simulation"]

# Where a dropping peer vanishes: it never handles the message that opens
# that stage (or, for advertise-keys, never starts). seed-reveal is a stage
# of active SecAgg+ rounds only: the peer commits to its graph-seed nonce,
# then never reveals it, so the others rebuild it.
DROPOUT_STAGES = (
    "advertise-keys",
    "seed-reveal",
    "share-keys",
    "masked-input",
    "consistency-check",
    "unmask",
    "mixed",
)
_TRIGGER: dict[str, type | None] = {
    "advertise-keys": None,
    "seed-reveal": Roster,
    "share-keys": Roster,
    "masked-input": ForwardedShares,
    "consistency-check": ConsistencyRequest,
    "unmask": UnmaskRequest,
}
_STAGE_TIMEOUT = 30.0
RUN_ID = "simulation"
_BEFORE_INPUT = ("advertise-keys", "seed-reveal", "share-keys", "masked-input")
T = TypeVar("T")


@dataclass(frozen=True)
class SimConfig:
    peers: int
    mode: str  # "off", "full" or "plus"
    dim: int = 1000
    dropout: float = 0.0
    dropout_stage: str = "mixed"
    threshold: int | None = None
    degree: int | None = None
    dropout_budget: float | None = None  # dropout fraction (k, t) must tolerate
    corrupt: float = 0.05  # colluding fraction (k, t) must tolerate
    rounds: int = 1
    seed: int = 42
    mod_bits: int = 32
    dump: Path | None = None
    active: bool = False  # signed adverts and the consistency check

    def __post_init__(self) -> None:
        if self.mode not in ("off", "full", "plus"):
            raise ParameterError(f"--secagg must be off, full or plus, not {self.mode!r}")
        if self.peers < 2:
            raise ParameterError("--peers must be at least 2")
        if not 0 <= self.dropout < 1:
            raise ParameterError("--dropout must be in [0, 1)")
        if self.dropout_stage not in DROPOUT_STAGES:
            raise ParameterError(f"--dropout-stage must be one of {', '.join(DROPOUT_STAGES)}")
        if self.dropout_stage == "consistency-check" and not self.active:
            raise ParameterError("--dropout-stage consistency-check needs --active")
        if self.dropout_stage == "seed-reveal" and not (self.active and self.mode == "plus"):
            raise ParameterError("--dropout-stage seed-reveal needs --active and --secagg plus")
        if self.active and self.mode == "off":
            raise ParameterError("--active needs --secagg full or plus")


@dataclass
class RoundReport:
    """One simulated round, as printed by `fedd simulate --json`."""

    round: int
    status: str
    n: int
    survivors: int
    k: int
    t: int
    modulus: int
    hub_seconds: float
    hub_cpu_seconds: float
    peer_seconds_median: float
    peer_cpu_seconds_median: float
    round_seconds: float
    peer_bytes_up_median: int
    peer_bytes_down_median: int
    hub_bytes_in: int
    hub_bytes_out: int
    exact: bool | None
    dropped: int
    reason: str = ""
    correct: bool = True
    # For --dump and tests; not part of the printed report.
    survivor_ids: tuple[PeerId, ...] = field(default=(), repr=False)
    aggregate: bytes | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The printed fields (JSON-ready)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("survivor_ids", "aggregate")}


class _Meter:
    """Wall and CPU seconds, and bytes up and down, for one party."""

    __slots__ = ("cpu", "down", "up", "wall")

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.up = self.down = 0

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def run_simulation(config: SimConfig) -> Iterator[RoundReport]:
    """Run `config.rounds` rounds; yields one report per round as it finishes.

    Raises ParameterError at once, before any round, when no (k, t) suits
    the configuration.
    """
    mode = Mode.PLUS if config.mode == "plus" else Mode.FULL
    shape = RoundShape(0, 0, 0, 0)
    budget = config.dropout_budget
    floor = Floor(config.corrupt, max(0.05, config.dropout) if budget is None else budget)
    if config.mode != "off":
        shape = choose_shape(
            config.peers,
            mode,
            dropout=floor.dropout,
            corrupt=floor.corrupt,
            threshold=config.threshold,
            degree=config.degree,
            active=config.active,
        )
    return _run_rounds(config, mode, shape, floor)


def _run_rounds(
    config: SimConfig, mode: Mode, shape: RoundShape, floor: Floor
) -> Iterator[RoundReport]:
    rng = random.Random(config.seed)
    width = config.mod_bits // 8
    peers = tuple(PeerId(f"peer-{i:05d}") for i in range(1, config.peers + 1))
    identities = {p: SigningKey.generate() for p in peers} if config.active else {}
    for r in range(config.rounds):
        inputs = {p: rng.randbytes(config.dim * width) for p in peers}
        drop_at = _dropouts(rng, peers, config)
        if config.mode == "off":
            report = _plain_round(r, config, inputs, drop_at)
        else:
            params = RoundParams(
                run=RUN_ID,
                round=r,
                mode=mode,
                participants=peers,
                **shape._asdict(),
                active=config.active,
                graph_seed=rng.randbytes(32),
                dim=config.dim,
                mod_bits=config.mod_bits,
            )
            report = run_secure_round(params, inputs, drop_at, floor, identities)
        if config.dump is not None:
            _dump(config.dump / f"round_{r}", inputs, report, width)
        yield report


def _dropouts(
    rng: random.Random, peers: tuple[PeerId, ...], config: SimConfig
) -> dict[PeerId, str]:
    count = round(config.dropout * len(peers))
    chosen = rng.sample(peers, count)
    # consistency-check is a stage of active rounds, seed-reveal of active SecAgg+ ones.
    absent = {"consistency-check", "seed-reveal"} if not config.active else set()
    absent |= {"seed-reveal"} if config.mode != "plus" else set()
    stages = [s for s in DROPOUT_STAGES[:-1] if s not in absent]
    return {
        p: rng.choice(stages) if config.dropout_stage == "mixed" else config.dropout_stage
        for p in chosen
    }


def _plain_round(
    r: int, config: SimConfig, inputs: dict[PeerId, bytes], drop_at: dict[PeerId, str]
) -> RoundReport:
    """--secagg off: each peer uploads its encoded input in the clear."""
    started = time.perf_counter()
    hub, meters = _Meter(), {p: _Meter() for p in inputs}
    total = VectorSum(config.dim, config.mod_bits // 8)
    survivors = [p for p in inputs if p not in drop_at]
    for p in survivors:
        frame = meters[p].run(wire.encode, MaskedInput(RUN_ID, r, inputs[p]))
        meters[p].up += len(frame)
        hub.down += len(frame)
        msg = hub.run(wire.decode, frame)
        hub.run(total.add, msg.y)
    aggregate = hub.run(total.to_bytes)
    exact = aggregate == _plain_sum([inputs[p] for p in survivors], config.mod_bits // 8)
    return _report(
        round=r,
        status="ok",
        shape=(config.peers, 0, 0, config.mod_bits),
        survivors=survivors,
        hub=hub,
        meters=meters,
        started=started,
        exact=exact,
        dropped=len(drop_at),
        aggregate=aggregate,
    )


def run_secure_round(
    params: RoundParams,
    inputs: dict[PeerId, bytes],
    drop_at: dict[PeerId, str],
    floor: Floor | None = None,
    identities: Mapping[PeerId, SigningKey] | None = None,
) -> RoundReport:
    """Drive one hub and `params.n` peers (with `floor`, default `Floor()`) through a
    round; `drop_at` maps a peer to the stage where it vanishes; active rounds sign
    with the peers' long-term `identities` (default: fresh ones)."""
    # Where the peers draw the graph seed, its nonces open share-keys.
    drawn = params.active and params.sparse
    trigger = {**_TRIGGER, "share-keys": SeedNonces} if drawn else _TRIGGER
    started, clock = time.perf_counter(), 0.0
    hub_meter, meters = _Meter(), {p: _Meter() for p in params.participants}
    hub = HubSession(params, now=clock, stage_timeout=_STAGE_TIMEOUT)
    signing = identities or {p: SigningKey.generate() for p in params.participants if params.active}
    trusted = {p: key.public for p, key in signing.items()} if params.active else None
    sessions = {
        p: meters[p].run(
            PeerSession,
            params,
            p,
            inputs[p],
            os.urandom,
            signing_key=signing.get(p),
            trusted=trusted,
            floor=floor,
        )
        for p in params.participants
    }
    alive = set(params.participants)
    to_hub: list[tuple[PeerId, bytes]] = []

    def peer_sends(p: PeerId, msgs: list[Any]) -> None:
        for m in msgs:
            frame = meters[p].run(wire.encode, m)
            meters[p].up += len(frame)
            to_hub.append((p, frame))

    for p in params.participants:
        if drop_at.get(p) == "advertise-keys":
            alive.discard(p)
            continue
        peer_sends(p, meters[p].run(sessions[p].start))

    while not hub.finished:
        sends: list[Send] = []
        for sender, frame in to_hub:
            hub_meter.down += len(frame)
            msg = hub_meter.run(wire.decode, frame)
            sends += hub_meter.run(hub.receive, sender, msg, clock)
        to_hub.clear()
        if not sends and not hub.finished:
            clock = hub.deadline
            sends = hub_meter.run(hub.on_timeout, clock)
        for send in sends:
            frame = hub_meter.run(wire.encode, send.msg)
            if send.to not in alive:
                continue
            if trigger.get(drop_at.get(send.to, "")) is type(send.msg):
                alive.discard(send.to)
                continue
            hub_meter.up += len(frame)
            meters[send.to].down += len(frame)
            session = sessions[send.to]
            if session.stage.value in ("done", "aborted"):
                continue
            msg = meters[send.to].run(wire.decode, frame)
            peer_sends(send.to, meters[send.to].run(session.receive, msg))

    shape = (params.n, params.k, params.t, params.mod_bits)
    try:
        result = hub.result()
    except RoundAborted as exc:
        return _report(
            round=params.round,
            status="aborted",
            shape=shape,
            survivors=[],
            hub=hub_meter,
            meters=meters,
            started=started,
            exact=None,
            dropped=len(drop_at),
            reason=str(exc),
        )
    survivors = list(result.survivors)
    return _report(
        round=params.round,
        status="ok",
        shape=shape,
        survivors=survivors,
        hub=hub_meter,
        meters=meters,
        started=started,
        dropped=len(drop_at),
        aggregate=result.total,
        exact=result.total == _plain_sum([inputs[p] for p in survivors], params.width),
        dropped_before_input={p for p, s in drop_at.items() if s in _BEFORE_INPUT},
    )


def _report(
    *,
    round: int,
    status: str,
    shape: tuple[int, int, int, int],
    survivors: list[PeerId],
    hub: _Meter,
    meters: dict[PeerId, _Meter],
    started: float,
    exact: bool | None,
    dropped: int,
    reason: str = "",
    aggregate: bytes | None = None,
    dropped_before_input: set[PeerId] | None = None,
) -> RoundReport:
    """Summarise a round; `shape` is (n, k, t, mod_bits)."""
    n, k, t, mod_bits = shape
    active = [m for m in meters.values() if m.up or m.down] or list(meters.values())
    correct = exact is not False
    if status == "aborted" and dropped == 0:
        correct = False  # nothing went wrong, so nothing justified an abort
    if dropped_before_input and set(survivors) & dropped_before_input:
        correct = False  # a peer that never sent its input cannot be a survivor
    return RoundReport(
        round=round,
        status=status,
        n=n,
        survivors=len(survivors),
        k=k,
        t=t,
        modulus=2**mod_bits,
        hub_seconds=hub.wall,
        hub_cpu_seconds=hub.cpu,
        peer_seconds_median=statistics.median(m.wall for m in active),
        peer_cpu_seconds_median=statistics.median(m.cpu for m in active),
        round_seconds=time.perf_counter() - started,
        peer_bytes_up_median=int(statistics.median(m.up for m in active)),
        peer_bytes_down_median=int(statistics.median(m.down for m in active)),
        hub_bytes_in=hub.down,
        hub_bytes_out=hub.up,
        exact=exact,
        dropped=dropped,
        reason=reason,
        correct=correct,
        survivor_ids=tuple(survivors),
        aggregate=aggregate,
    )


def _plain_sum(vectors: list[bytes], width: int) -> bytes:
    """The lane-wise sum mod 2**(8*width), computed independently of crypto.lanes.

    Every value is moved into a lane twice its width (zero upper half) by
    strided byte copies, so plain integer addition of up to 2**(8*width)
    vectors never carries from one lane into the next; then the low half of
    every lane is copied back out.
    """
    if not vectors:
        return b""
    wide = 2 * width
    count = len(vectors[0]) // width
    total = 0
    for v in vectors:
        spread = bytearray(count * wide)
        for i in range(width):
            spread[i::wide] = v[i::width]
        total += int.from_bytes(spread, "little")
    raw = total.to_bytes(count * wide, "little")
    out = bytearray(count * width)
    for i in range(width):
        out[i::width] = raw[i::wide]
    return bytes(out)


def _dump(directory: Path, inputs: dict[PeerId, bytes], report: RoundReport, width: int) -> None:
    """inputs.csv, survivors.csv and aggregate.csv: enough to check a round without fedd."""
    directory.mkdir(parents=True, exist_ok=True)
    code = "I" if width == 4 else "Q"
    dim = len(next(iter(inputs.values()))) // width
    header = [f"x{i}" for i in range(dim)]
    with open(directory / "inputs.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["peer", *header])
        for peer, x in inputs.items():
            out.writerow([peer, *array(code, x)])
    with open(directory / "survivors.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["peer"])
        out.writerows([p] for p in report.survivor_ids)
    with open(directory / "aggregate.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        if report.aggregate is not None:
            out.writerow(array(code, report.aggregate))
