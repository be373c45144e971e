"""The peer daemon: register with the hub, train each round, upload the update.

One DEALER socket, one loop. Local training runs in a worker thread so the
loop keeps answering heartbeats while it trains; everything else happens on
the loop's thread. A round:

1. RoundStart: compute the global model's ROC-AUC on the local shard, train
   `epochs` epochs from the global model, and report the training cost;
2. plain rounds: upload (n_samples, delta); secure rounds: encode
   [w, w*delta] in fixed point and run the protocol (`crypto.secagg`), which
   sends only masked vectors and sealed shares;
3. RoundEnd: append the round to the local log (`rounds.csv`).

Data: a CSV file (`data`), or with `shard` a shard the hub assigns at
registration (`peer.shard`), loaded when the Welcome names it.

Transport: with `curve` the DEALER is a CURVE client; its peer id defaults
to its key's name, which is what the hub's allow-list knows it as. A socket
monitor tells the operator when the hub refuses the key. Without CURVE the
peer warns at start that traffic is neither authenticated nor encrypted.

The peer's rows never leave it. When the hub goes silent or forgets the
peer (it restarted), the peer registers again, with backoff; ZeroMQ
reconnects the socket by itself. Done from the hub ends the process with 0.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import zmq

from fedd.crypto.errors import CryptoCheckFailed, ProtocolError
from fedd.crypto.secagg.fields import PeerId, check_peer_id
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.crypto.secagg.messages.advertise_keys import Roster
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.crypto.secagg.peer import PeerSession
from fedd.crypto.signing import SigningKey
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Bye, Done, Heartbeat, Hello, Welcome
from fedd.daemon.transport.messages.rounds import (
    Decline,
    PeerStats,
    PlainUpdate,
    RoundEnd,
    RoundStart,
)
from fedd.daemon.transport.sockets import ClientCurve, auth_failures, check_endpoint, peer_socket
from fedd.learner.dataset import Dataset, read_dataset
from fedd.learner.errors import DataError
from fedd.learner.metrics import roc_auc
from fedd.learner.model import ClassWeight, TrainingSet, make_training_set, predict_proba, train
from fedd.peer.shard import ShardSource
from fedd.peer.state import PeerRoundRow, PeerState

__all__ = ["FAULT_STAGES", "PeerAgent", "PeerConfig"]

log = logging.getLogger("fedd.peer")

# Where `--fault exit-at:STAGE` kills the peer in its first round. For testing.
FAULT_STAGES = ("training", "advertise-keys", "share-keys", "masked-input", "unmask")
_FAULT_TRIGGERS = {Roster: "share-keys", ForwardedShares: "masked-input", UnmaskRequest: "unmask"}
_FAULT_EXIT = 3


# What a peer insists on, weakest first: any protocol; secure aggregation
# (full or plus); or secure aggregation that also resists a lying hub.
REQUIREMENTS = ("any", "secure", "active")


@dataclass(frozen=True)
class Signing:
    """A peer's long-term signing key and the signing keys it trusts, by peer id."""

    key: SigningKey
    trusted: Mapping[PeerId, bytes]


def refusal(msg: RoundStart, require: str, signing: Signing | None, me: PeerId) -> str | None:
    """Why this peer must sit the round out, or None if it may take part."""
    params = msg.secagg
    if params is None:
        if require != "any":
            return (
                f"this peer requires secure aggregation (--require {require}); the round is plain"
            )
        return None
    if require == "active" and not params.active:
        return "this peer requires the active-adversary protocol (--require active)"
    if params.active:
        if signing is None:
            return "an active round needs this peer's --signing-key and --trusted-dir"
        strangers = sorted(set(params.participants) - set(signing.trusted) - {me})
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
    peer_id: str | None = None
    fault_stage: str | None = None
    shard: ShardSource | None = None
    curve: ClientCurve | None = None
    signing: Signing | None = None
    require: str = "any"

    def __post_init__(self) -> None:
        check_endpoint(self.connect, bind=False)  # before any state is created
        if self.require not in REQUIREMENTS:
            raise ConfigError(f"--require takes one of {', '.join(REQUIREMENTS)}")
        if (self.data is None) == (self.shard is None):
            raise ConfigError("give the peer --data PATH or --shard auto (one of them)")
        if self.fault_stage is not None and self.fault_stage not in FAULT_STAGES:
            raise ConfigError(f"--fault exit-at:STAGE takes one of {', '.join(FAULT_STAGES)}")


@dataclass
class _Training:
    """A local training job and what it produced."""

    number: int
    start: RoundStart
    data: Dataset
    future: concurrent.futures.Future[tuple[list[float], float, float, float, float]]


@dataclass
class _Round:
    number: int
    mode: str
    n_samples: int = 0
    train_s: float = 0.0
    cpu_s: float = 0.0
    train_loss: float = math.nan
    local_roc_auc: float = math.nan
    bytes_up: int = 0
    bytes_down: int = 0
    session: PeerSession | None = None
    status: str = "running"
    reason: str = ""


class PeerAgent:
    """The peer daemon. `run()` returns the process exit code."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        # The data first: a peer that cannot train must not leave state behind.
        self.data: Dataset | None = None
        self.shard = 0
        if config.data is not None:
            self.data = read_dataset(config.data, config.label)
            self.features = self.data.features
        else:
            assert config.shard is not None  # checked by PeerConfig
            self.features = config.shard.features()
        peer_id = config.peer_id
        if peer_id is None and config.curve is not None:
            peer_id = config.curve.keys.name  # the name the hub's allow-list gives the key
        self.state = PeerState.open(config.state_dir, peer_id=peer_id)
        for note in self.state.notes:
            log.info("state: %s", note)
        self.peer_id = check_peer_id(self.state.peer_id)
        self.run_id = ""
        self.registered = False
        self.heartbeat_s = 1.0
        self.round: _Round | None = None
        self.training: _Training | None = None
        self._next_start: RoundStart | None = None  # waits for the running training
        self.rounds_seen = 0
        self._stop = False
        self._last_heard = 0.0
        self._next_hello = 0.0
        self._hello_backoff = 0.5
        self._next_heartbeat = 0.0
        # Keyed by the dataset object too, so a shard swapped mid-training never
        # sees a training set of the old shard.
        self._sets: dict[tuple[Dataset, int, str, int], TrainingSet] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="train")
        self._sock: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._next_auth_note = 0.0
        self._reconnect_at: float | None = None
        self._reconnect_backoff = 2.0
        self._wake_w = -1

    def run(self) -> int:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        curve = self.config.curve
        try:
            self._sock, self._monitor = peer_socket(ctx, self.config.connect, curve)
        except ConfigError:
            ctx.term()
            raise
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        if self.data is not None:
            source = f"{self.data.n_rows} rows"
        else:
            assert self.config.shard is not None
            source = f"shard from the hub: {self.config.shard.describe()}"
        log.info(
            "peer %s (%s, %d features) connecting to %s",
            self.peer_id,
            source,
            len(self.features),
            self.config.connect,
        )
        if curve is None:
            log.warning(
                "transport is not authenticated or encrypted (no CURVE): use --curve-secret "
                "and --hub-public outside trusted networks"
            )
        else:
            log.info(
                "CURVE on: key %s, hub key %s",
                curve.keys.public_text,
                curve.server_public.decode("ascii"),
            )
        code = 0
        try:
            code = self._loop()
        finally:
            if self.registered:
                self._send(Bye(self.run_id, 0))
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._pool.shutdown(wait=False, cancel_futures=True)
            if self._monitor is not None:
                self._sock.disable_monitor()
                self._monitor.close(0)
            self._sock.close(0)
            ctx.term()
        return code

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s, leaving", signal.Signals(signum).name)
        self._stop = True

    def _loop(self) -> int:
        assert self._sock is not None  # set in run()
        # The training thread writes a byte here when it finishes, so the loop
        # wakes at once instead of polling for the result.
        wake_r, self._wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(wake_r, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        try:
            while not self._stop:
                now = time.monotonic()
                self._timers(now)
                events = dict(poller.poll(self._timeout_ms(now)))
                if wake_r in events:
                    os.read(wake_r, 64)
                if self._monitor is not None and self._monitor in events:
                    self._note_auth_failures(now)
                if self._sock in events:
                    code = self._drain()
                    if code is not None:
                        return code
                if self.training is not None and self.training.future.done():
                    self._on_trained()
            return 0
        finally:
            os.close(wake_r)
            os.close(self._wake_w)

    def _note_auth_failures(self, now: float) -> None:
        assert self._monitor is not None
        failures = auth_failures(self._monitor)
        if not failures:
            return
        # libzmq gives up on a connection whose handshake failed; the key may
        # be allowed later (the hub rereads its allow-list), so try again, with
        # backoff, and say why once a minute.
        if self._reconnect_at is None:
            self._reconnect_at = now + self._reconnect_backoff
            self._reconnect_backoff = min(self._reconnect_backoff * 2, 30.0)
        if now >= self._next_auth_note:
            self._next_auth_note = now + 60.0
            log.warning("%s (retrying in %.0fs)", failures[-1], max(0.0, self._reconnect_at - now))

    def _reconnect(self) -> None:
        assert self._sock is not None
        self._reconnect_at = None
        with contextlib.suppress(zmq.ZMQError):  # already gone after the failed handshake
            self._sock.disconnect(self.config.connect)
        self._sock.connect(self.config.connect)

    def _drain(self) -> int | None:
        assert self._sock is not None  # set in run()
        while True:
            try:
                frame = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return None
            code = self._on_frame(frame, time.monotonic())
            if code is not None:
                return code

    def _timeout_ms(self, now: float) -> int:
        wake = self._next_heartbeat if self.registered else self._next_hello
        if self._reconnect_at is not None:
            wake = min(wake, self._reconnect_at)
        return max(0, min(int((wake - now) * 1000) + 1, 500))

    def _timers(self, now: float) -> None:
        if self._reconnect_at is not None and now >= self._reconnect_at:
            self._reconnect()
        if self.registered and now - self._last_heard > 10 * self.heartbeat_s:
            log.warning(
                "the hub has been silent for %.0fs; registering again", now - self._last_heard
            )
            self.registered = False
            self._next_hello = now
        if not self.registered and now >= self._next_hello:
            shard = "auto" if self.config.shard is not None else ""
            self._send(Hello(self.run_id, 0, self.peer_id, self.features, shard=shard))
            self._next_hello = now + self._hello_backoff
            self._hello_backoff = min(self._hello_backoff * 2, 10.0)
        if self.registered and now >= self._next_heartbeat:
            self._send(Heartbeat(self.run_id, self.round.number if self.round else 0))
            self._next_heartbeat = now + self.heartbeat_s

    # -- messages ----------------------------------------------------------------

    def _send(self, msg: wire.WireMessage) -> None:
        assert self._sock is not None
        frame = wire.encode(msg)
        try:
            self._sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            log.debug("hub not connected; %s not sent", type(msg).__name__)
            return
        if self.round is not None:
            self.round.bytes_up += len(frame)

    def _on_frame(self, frame: bytes, now: float) -> int | None:
        """Handle one frame; returns an exit code when the peer should stop."""
        try:
            msg = wire.decode(frame)
        except wire.MalformedMessage as exc:
            log.warning("dropped malformed message from the hub: %s", exc)
            return None
        self._last_heard = now
        log.debug("received %s (round %s)", type(msg).__name__, getattr(msg, "round", None))
        if self.round is not None:
            self.round.bytes_down += len(frame)
        if type(msg) is Welcome:
            return self._on_welcome(msg, now)
        elif type(msg) is Error:
            return self._on_error(msg, now)
        elif type(msg) is Done:
            log.info("the hub says training is done")
            self._stop = True
            return 0
        elif type(msg) is RoundStart:
            self._on_round_start(msg)
        elif type(msg) is RoundEnd:
            self._on_round_end(msg)
        elif isinstance(msg, MESSAGE_TYPES):
            self._on_protocol(msg)
        elif type(msg) is not Heartbeat:
            log.warning("dropped unexpected %s from the hub", type(msg).__name__)
        return None

    def _on_welcome(self, msg: Welcome, now: float) -> int | None:
        self.registered, self.run_id = True, msg.run
        self.peer_id, self.heartbeat_s = msg.peer, msg.heartbeat_s
        self._hello_backoff = 0.5
        self._reconnect_backoff = 2.0
        self._next_heartbeat = now
        log.info(
            "registered with the hub as %s (run %s, round %d%s)",
            msg.peer,
            msg.run,
            msg.round,
            f", shard {msg.shard}" if msg.shard else "",
        )
        if self.config.shard is not None and msg.shard != self.shard:
            return self._load_shard(self.config.shard, msg.shard)
        return None

    def _load_shard(self, source: ShardSource, shard: int) -> int | None:
        """Load the shard the hub assigned; an exit code if the peer cannot use it."""
        problem = ""
        if shard == 0:
            problem = "the hub assigned no shard (does it support --shard auto?)"
        else:
            try:
                data = source.load(shard)
            except DataError as exc:
                problem = str(exc)
            else:
                if data.features != self.features:
                    problem = (
                        f"{source.describe(shard)} has other columns than the shard header "
                        "this peer announced; every shard needs the same header"
                    )
        if problem:
            print(f"fedd: error: {problem}", file=sys.stderr, flush=True)
            return 1
        if self.shard:
            log.info("the hub moved this peer from shard %d to shard %d", self.shard, shard)
        self.data, self.shard = data, shard
        log.info("loaded shard %d: %d rows from %s", shard, data.n_rows, source.describe(shard))
        return None

    def _on_error(self, msg: Error, now: float) -> int | None:
        log.warning("hub: %s", msg.reason)
        if not msg.retry:
            print(f"fedd: error: the hub refused this peer: {msg.reason}", file=sys.stderr)
            return 1
        if msg.reason.startswith("not registered"):
            self.registered = False
            self._next_hello = now
        return None

    def _on_round_start(self, msg: RoundStart) -> None:
        if self.round is not None and self.round.status == "running":
            log.info("round %d superseded by round %d", self.round.number, msg.round)
        self.rounds_seen += 1
        self._fault("training")
        self.round = _Round(msg.round, msg.mode)
        reason = refusal(msg, self.config.require, self.config.signing, self.peer_id)
        if reason is not None:
            log.warning("round %d: declined: %s", msg.round, reason)
            self.round.status, self.round.reason = "declined", reason[:200]
            self._send(Decline(msg.run, msg.round, reason[:400]))
            return
        # One training at a time, and only the newest round's waits for it: a
        # burst of RoundStarts must not queue a training run (and a model) each.
        self._next_start = msg
        if self.training is None:
            self._train_next()

    def _train_next(self) -> None:
        msg, self._next_start = self._next_start, None
        assert msg is not None  # set by the caller
        data = self.data
        if data is None:  # registered, but the shard never loaded
            if self.round is not None and self.round.number == msg.round:
                self.round.status, self.round.reason = "failed", "no data loaded"
            return
        future = self._pool.submit(self._train, msg, data)
        future.add_done_callback(self._wake)
        self.training = _Training(msg.round, msg, data, future)

    def _wake(self, _: object) -> None:
        """Training thread: wake the loop (the pipe is gone if the peer is stopping)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b".")

    def _train(
        self, msg: RoundStart, data: Dataset
    ) -> tuple[list[float], float, float, float, float]:
        """Worker thread: (new params, train seconds, cpu seconds, loss, local ROC-AUC)."""
        started, cpu = time.perf_counter(), time.thread_time()
        model = list(msg.model)
        local_auc = _auc(list(data.y), predict_proba(model, data))
        cfg = msg.train
        # The minibatch layout depends on the run's seed only, so it is built
        # once and reused every round; the round reorders the minibatches.
        key = (data, cfg.batch_size, cfg.class_weight, cfg.seed)
        if key not in self._sets:
            weighting: ClassWeight = "balanced" if cfg.class_weight == "balanced" else "none"
            self._sets = {
                key: make_training_set(
                    data, batch_size=cfg.batch_size, class_weight=weighting, seed=cfg.seed
                )
            }
        params, stats = train(
            model,
            self._sets[key],
            epochs=cfg.epochs,
            lr=cfg.lr,
            l2=cfg.l2,
            seed=cfg.seed + msg.round,
        )
        return (
            params,
            time.perf_counter() - started,
            time.thread_time() - cpu,
            stats.final_loss,
            local_auc,
        )

    def _on_trained(self) -> None:
        job, self.training = self.training, None
        assert job is not None
        if self._next_start is not None:  # superseded while training
            self._train_next()
            return
        current = self.round
        if current is None or current.number != job.number:
            return  # superseded while training
        try:
            params, train_s, cpu_s, loss, local_auc = job.future.result()
        except Exception as exc:  # training failed: say so, sit the round out
            log.error("round %d: local training failed: %s", job.number, exc)
            current.status, current.reason = "failed", str(exc)[:200]
            return
        current.train_s, current.cpu_s, current.train_loss = train_s, cpu_s, loss
        current.local_roc_auc = local_auc
        current.n_samples = job.data.n_rows
        msg = job.start
        delta = [p - g for p, g in zip(params, msg.model, strict=True)]
        secure = msg.secagg is not None and msg.encoding is not None
        # The round's own run id: self.run_id is "" until a Welcome arrives.
        self._send(
            PeerStats(msg.run, job.number, 0 if secure else current.n_samples, train_s, cpu_s)
        )
        if not secure:
            self._send(PlainUpdate(msg.run, job.number, current.n_samples, tuple(delta)))
            return
        assert msg.secagg is not None and msg.encoding is not None
        self._fault("advertise-keys")
        x = msg.encoding.encode(delta, min(current.n_samples, msg.encoding.max_weight))
        try:
            signing = self.config.signing if msg.secagg.active else None
            current.session = PeerSession(
                msg.secagg,
                self.peer_id,
                x,
                signing_key=signing.key if signing else None,
                trusted=signing.trusted if signing else None,
            )
        except ProtocolError as exc:
            log.error("round %d: cannot take part: %s", job.number, exc)
            current.status, current.reason = "failed", str(exc)[:200]
            return
        for out in current.session.start():
            self._send(out)

    def _on_protocol(self, msg: object) -> None:
        current = self.round
        number = getattr(msg, "round", None)
        if current is None or current.session is None or current.number != number:
            log.info("dropped %s for round %s (no such round here)", type(msg).__name__, number)
            return
        stage = _FAULT_TRIGGERS.get(type(msg))
        if stage is not None:
            self._fault(stage)
        try:
            replies = current.session.receive(msg)  # type: ignore[arg-type]
        except (ProtocolError, CryptoCheckFailed) as exc:
            log.warning("round %d: left the protocol: %s", current.number, exc)
            return
        for out in replies:
            self._send(out)

    def _on_round_end(self, msg: RoundEnd) -> None:
        current = self.round
        if current is None or current.number != msg.round:
            return
        status = msg.status if current.status == "running" else current.status
        self.state.log_round(
            PeerRoundRow(
                round=current.number,
                mode=current.mode,
                status=status,
                reason=msg.reason or current.reason,
                n_samples=current.n_samples,
                train_s=current.train_s,
                cpu_s=current.cpu_s,
                train_loss=current.train_loss,
                local_roc_auc=current.local_roc_auc,
                bytes_up=current.bytes_up,
                bytes_down=current.bytes_down,
                finished_at=time.time(),
            )
        )
        log.info(
            "round %d %s (local roc_auc before training %.4f, %.2fs training)",
            current.number,
            status,
            current.local_roc_auc,
            current.train_s,
        )
        self.round = None

    def _fault(self, stage: str) -> None:
        """Testing aid: die abruptly at `stage` of the first round, as if killed."""
        if self.config.fault_stage == stage and self.rounds_seen == 1:
            print(
                f"fedd: fault injection: peer {self.peer_id} exits at {stage}",
                file=sys.stderr,
                flush=True,
            )
            os._exit(_FAULT_EXIT)


def _auc(labels: list[int], scores: list[float]) -> float:
    """ROC-AUC, or nan when the shard holds one class only."""
    try:
        return roc_auc(labels, scores)
    except ValueError:
        return math.nan
