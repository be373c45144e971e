"""The hub daemon: one ROUTER socket, a peer registry, and FedAvg rounds.

The loop owns the socket and the clock; everything it decides goes through
sans-IO pieces: `Registry` (who is alive), `PlainRound`/`SecureRound`
(one round), `HubStore` (CSV state). Each round:

1. wait until `min_peers` are alive and no peer has registered for
   `join_window` seconds (so peers starting together join the same round);
   the participants are every alive peer;
2. send RoundStart (the global model, the training config, and for secure
   rounds the protocol parameters and the fixed-point encoding);
3. route the round's messages into the runner until it finishes (all
   answered, stage time-outs, dropouts);
4. apply the weighted mean delta (unless the round aborted), evaluate on the
   test CSV if configured, commit the CSV state atomically, tell the peers
   how the round ended, and log one line.

Transport: with `curve_secret` and `allow_dir` the ROUTER is a CURVE
server and `daemon.transport.zap` vets every connection against the allow-list (its
ZAP socket is polled here, beside the ROUTER). The key a connection was
authenticated with, looked up again for every message, names the peer; the
Hello's self-declared id must match it. Without CURVE the hub warns at start
that traffic is neither authenticated nor encrypted.

Bad input never stops the hub: an undecodable or illegal message is dropped
and logged, and its sender gets an Error where one can be sent; a peer that
breaks the protocol mid-round is excluded from that round. SIGTERM/SIGINT
abandon the running round (it is redone after a restart), save the peer
table and exit 0.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import zmq

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import ParameterError, ProtocolError, RemoteProtocolError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import Send
from fedd.crypto.secagg.params import Mode, RoundParams, choose_shape
from fedd.daemon.errors import ConfigError, StateError
from fedd.daemon.hub.config import HubConfig, choose_encoding
from fedd.daemon.hub.registry import PeerRecord, PeerStatus, Refused, Registry
from fedd.daemon.hub.rounds import PlainRound, RoundOutcome, RoundRunner, SecureRound
from fedd.daemon.hub.status import HubView, build_status
from fedd.daemon.state.store import (
    ClientPerfRow,
    Commit,
    HubStore,
    MetricsRow,
    PeerRow,
    PerfRow,
    RoundRow,
    check_features,
)
from fedd.daemon.transport import wire
from fedd.daemon.transport.curve import HUB_NAME, KeyPair, load_allow_dir, load_secret
from fedd.daemon.transport.loglimit import LogLimit
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Bye, Done, Heartbeat, Hello, Welcome
from fedd.daemon.transport.messages.rounds import (
    Decline,
    PeerStats,
    RoundEnd,
    RoundStart,
    TrainConfig,
)
from fedd.daemon.transport.messages.status import StatusReply, StatusRequest
from fedd.daemon.transport.sockets import hub_socket
from fedd.daemon.transport.zap import ZapHandler
from fedd.learner.dataset import Dataset, read_dataset
from fedd.learner.metrics import evaluate
from fedd.learner.model import predict_proba, zeros

__all__ = ["Hub"]

log = logging.getLogger("fedd.hub")


@dataclass
class _Round:
    """Bookkeeping of the running round, for its CSV rows."""

    number: int
    mode: str
    runner: RoundRunner
    participants: frozenset[PeerId]
    started_at: float
    started: float
    cpu_started: float
    bytes_in: int = 0
    bytes_out: int = 0
    upload: dict[PeerId, int] = field(default_factory=dict)
    stats: dict[PeerId, PeerStats] = field(default_factory=dict)


class Hub:
    """The hub daemon. `run()` serves until done (with exit_when_done) or a signal."""

    def __init__(self, config: HubConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        # Keys and the test set first: a hub that cannot start must not touch its state.
        self.keys: KeyPair | None = None
        if config.curve_secret is not None and config.allow_dir is not None:
            self.keys = load_secret(config.curve_secret)
            self._allow = load_allow_dir(config.allow_dir)
        self.zap: ZapHandler | None = None
        self._poller = zmq.Poller()
        self.test: Dataset | None = None
        if config.eval_test is not None:
            self.test = read_dataset(config.eval_test, config.label)
            try:
                check_features(self.test.features)
            except ValueError as exc:
                raise ConfigError(f"{config.eval_test}: unusable columns: {exc}") from None
        self.store = HubStore.open(config.state_dir)
        for note in self.store.reconciled:
            log.warning("state: %s", note)
        features = self.store.features or (self.test.features if self.test else None)
        if self.store.features and self.test and self.store.features != self.test.features:
            raise ConfigError(
                f"{config.eval_test} has other feature columns than the model in {config.state_dir}"
            )
        self.run_id = self.store.run_id or _new_run_id()
        self.model: list[float] | None = self.store.model
        if self.model is None and features is not None:
            self.model = zeros(len(features))
        self.next_round = max(self.store.committed_round, 0) + 1
        self.registry = Registry(
            liveness_s=config.liveness_s, features=features, max_shards=config.shards
        )
        for row in self.store.load_peers():
            self.registry.restore(_record_from_row(row, config.state_dir))
        self.round: _Round | None = None
        self.last_outcome: tuple[int, RoundOutcome, float] | None = None
        self._stop = False
        # Lines that anyone who can connect can cause, as fast as the network
        # allows: dropped, refused or rejected messages, and (with Hello/Bye
        # cycles) registrations and departures. Separate limits, so that a
        # flood of garbage does not hide who joins.
        self._drop_log = LogLimit()
        self._membership_log = LogLimit()
        self._next_heartbeat = 0.0
        self._last_registration = -float("inf")
        self._done_since: float | None = None
        self.waiting_note = ""
        self._sock: zmq.Socket[bytes] | None = None

    @property
    def done(self) -> bool:
        return self.config.rounds > 0 and self.next_round > self.config.rounds

    # -- the loop ------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped; returns the process exit code (0 on a clean stop)."""
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            if self.keys is not None:  # the ZAP handler must exist before the socket binds
                self.zap = ZapHandler(ctx, self._allow, self.keys.public_text)
                self._poller.register(self.zap.socket, zmq.POLLIN)
            self._sock = hub_socket(ctx, self.config.bind, self.keys)
        except ConfigError:
            if self.zap is not None:
                self.zap.close()
            ctx.term()
            raise
        self._poller.register(self._sock, zmq.POLLIN)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        if self.store.run_id is None and self.registry.features is not None:
            self._start_run()
        log.info(
            "hub %s listening on %s (run %s, %s, rounds %s, next round %d)",
            os.getpid(),
            self.config.bind,
            self.run_id,
            self.config.secagg,
            self.config.rounds or "unlimited",
            self.next_round,
        )
        if self.zap is None:
            log.warning(
                "transport is not authenticated or encrypted (no CURVE): anyone who can reach "
                "%s can join; use --curve-secret and --allow-dir outside trusted networks",
                self.config.bind,
            )
        else:
            log.info(
                "CURVE on: %d peer key(s) allowed from %s (reloaded when it changes)",
                len(self.zap.allow),
                self.zap.allow.source,
            )
        try:
            while not self._stop:
                self._poll()
                now = self.clock()
                self._tick(now)
                if self._finished_serving(now):
                    break
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._sock.close(linger=1000)
            if self.zap is not None:
                self.zap.close()
            ctx.term()
        return 0

    def _finished_serving(self, now: float) -> bool:
        """With exit_when_done: done, and every peer has left (or had `liveness_s` to).

        Waiting for the peers' Bye, rather than exiting right after sending
        Done, means no peer misses its Done in the hub's last moments.
        """
        if not (self.done and self.config.exit_when_done and self.round is None):
            return False
        if self._done_since is None:
            self._done_since = now
        return not self.registry.alive() or now - self._done_since > self.config.liveness_s

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._stop = True

    def _poll(self) -> None:
        assert self._sock is not None  # set in run()
        now = self.clock()
        wake = self._next_heartbeat
        if self.round is not None:
            wake = min(wake, self.round.runner.deadline)
        timeout_ms = max(0, min(int((wake - now) * 1000) + 1, 200))
        events = dict(self._poller.poll(timeout_ms))
        if self.zap is not None and self.zap.socket in events:
            self.zap.serve()
        if self._sock not in events:
            return
        for _ in range(10_000):  # bounded, so timers still run under a flood
            try:
                routing, *rest = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(rest) != 1:
                self._log_limited(
                    self._drop_log,
                    logging.WARNING,
                    "dropped a message of %d frames (one expected)",
                    len(rest),
                )
                continue
            # With CURVE, libzmq stamps each message with the User-Id the ZAP
            # handler gave its connection: the Z85 text of the sender's key.
            user_id = str(rest[0].get("User-Id")) if self.zap is not None else None
            self._on_frame(routing.bytes, rest[0].bytes, self.clock(), user_id)

    def _tick(self, now: float) -> None:
        for limit, what in (
            (self._drop_log, "dropped or refused messages"),
            (self._membership_log, "registrations and departures"),
        ):
            skipped = limit.flush(now)
            if skipped:
                log.warning("%d more %s were not logged one by one", skipped, what)
        if self.zap is not None:
            for peer in sorted(self.zap.maybe_reload() or ()):
                if self.registry.leave(peer):
                    log.warning("peer %s: its key left the allow-list; dropped", peer)
                    self._drop(peer, now, "key revoked")
        for peer in self.registry.expire(time.time()):
            log.info("peer %s is gone (silent for %.1fs)", peer, self.config.liveness_s)
            self._drop(peer, now, "lost heartbeats")
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_s
            for peer in self.registry.alive():
                self._send(peer, Heartbeat(self.run_id, self.next_round))
        if self.round is not None:
            self._deliver(self.round.runner.on_timeout(now))
            if self.round.runner.finished:
                self._finish_round(now)
        if self.round is None and not self.done:
            self._maybe_start_round(now)

    # -- messages in -----------------------------------------------------------

    def _on_frame(self, routing: bytes, frame: bytes, now: float, user_id: str | None) -> None:
        if self.round is not None:
            self.round.bytes_in += len(frame)
        name: PeerId | None = None
        if user_id is not None and self.zap is not None:
            name = self.zap.name_of(user_id)
            if name is None:  # allowed when it connected, removed from the list since
                self._log_limited(
                    self._drop_log, logging.INFO, "dropped a message from revoked key %s", user_id
                )
                self._reply(routing, Error(self.run_id, 0, "this key is no longer allowed", False))
                return
        try:
            msg = wire.decode(frame)
        except wire.MalformedMessage as exc:
            self._log_limited(
                self._drop_log,
                logging.WARNING,
                "dropped malformed message (%d bytes): %s",
                len(frame),
                exc,
            )
            self._reply(routing, Error(self.run_id, 0, f"malformed message: {exc}"[:400]))
            return
        if type(msg) is StatusRequest:
            self._reply(routing, self._status(msg))
            return
        if type(msg) is Hello:
            self._on_hello(routing, msg, name, user_id or "")
            return
        peer = self.registry.peer_at(routing)
        if peer is None:
            self._log_limited(
                self._drop_log,
                logging.INFO,
                "dropped %s from an unregistered connection",
                type(msg).__name__,
            )
            self._reply(routing, Error(self.run_id, 0, "not registered: send hello first"))
            return
        self.registry.seen(peer, time.time())
        if self.round is not None:
            self.round.upload[peer] = self.round.upload.get(peer, 0) + len(frame)
        self._on_peer_message(peer, msg, now)

    def _on_peer_message(self, peer: PeerId, msg: object, now: float) -> None:
        if type(msg) is Bye:
            self._log_limited(self._membership_log, logging.INFO, "peer %s left", peer)
            self.registry.leave(peer)
            self._drop(peer, now, "left")
        elif self.done:  # it may have missed its Done
            self._send(peer, Done(self.run_id, self.next_round))
        elif type(msg) is not Heartbeat:
            self._on_round_message(peer, msg, now)

    def _on_hello(self, routing: bytes, msg: Hello, name: PeerId | None, key: str) -> None:
        try:
            if name == HUB_NAME:
                raise Refused("the hub's own key cannot register as a peer", retry=False)
            if self.registry.features is None:  # this peer's columns would fix the model's
                _check_features(msg.features)
            record = self.registry.hello(
                routing, msg, time.time(), authenticated=name, public_key=key
            )
        except Refused as exc:
            self._log_limited(self._drop_log, logging.WARNING, "refused peer %s: %s", msg.peer, exc)
            self._reply(routing, Error(self.run_id, 0, str(exc)[:400], retry=exc.retry))
            return
        if self.model is None:  # the first peer fixed the features
            self.model = zeros(len(msg.features))
            self._start_run()
        self._last_registration = self.clock()
        self._log_limited(
            self._membership_log,
            logging.INFO,
            "peer %s registered%s (%d alive)",
            record.peer,
            f" with shard {record.shard}" if record.shard else "",
            len(self.registry.alive()),
        )
        welcome = Welcome(
            self.run_id, self.next_round, record.peer, float(self.config.heartbeat_s), record.shard
        )
        self._send(record.peer, welcome)
        if self.done:
            self._send(record.peer, Done(self.run_id, self.next_round))

    def _on_round_message(self, peer: PeerId, msg: object, now: float) -> None:
        current = self.round
        round_of = getattr(msg, "round", None)
        if current is None or round_of != current.number:
            self._log_limited(
                self._drop_log,
                logging.INFO,
                "dropped stale %s from %s (round %s, current %s)",
                type(msg).__name__,
                peer,
                round_of,
                current.number if current else None,
            )
            return
        if type(msg) is PeerStats:
            if peer in current.participants:
                current.stats[peer] = msg
            return
        if type(msg) is Decline:
            log.warning("round %d: peer %s declined: %s", current.number, peer, msg.reason)
            self._deliver(current.runner.drop(peer, now, f"declined: {msg.reason}"))
            return
        try:
            sends = current.runner.receive(peer, msg, now)
        except ProtocolError as exc:
            self._log_limited(
                self._drop_log,
                logging.WARNING,
                "round %d: rejected %s from %s: %s",
                current.number,
                type(msg).__name__,
                peer,
                exc,
            )
            self._send(peer, Error(self.run_id, current.number, str(exc)[:400]))
            if isinstance(exc, RemoteProtocolError):
                self._deliver(current.runner.drop(peer, now, f"excluded: {exc}"))
            return
        self._deliver(sends)

    def _log_limited(self, limit: LogLimit, level: int, fmt: str, *args: object) -> None:
        """Log a line within `limit`; past it the line is counted, and the next says how many."""
        skipped = limit.allow(self.clock())
        if skipped is None:
            return
        if skipped:
            fmt += " (and %d more not logged one by one)"
            args = (*args, skipped)
        log.log(level, fmt, *args)

    # -- messages out ----------------------------------------------------------

    def _send(self, peer: PeerId, msg: wire.WireMessage) -> None:
        record = self.registry.record(peer)
        if record.status is not PeerStatus.ALIVE:
            return
        if not self._send_to(record.routing, msg):
            log.info("peer %s is unreachable; marking it gone", peer)
            self.registry.leave(peer, PeerStatus.GONE)
            self._drop(peer, self.clock(), "unreachable")

    def _reply(self, routing: bytes, msg: wire.WireMessage) -> None:
        self._send_to(routing, msg)

    def _send_to(self, routing: bytes, msg: wire.WireMessage) -> bool:
        assert self._sock is not None  # set in run()
        frame = wire.encode(msg)
        try:
            self._sock.send_multipart([routing, frame], zmq.NOBLOCK)
        except zmq.ZMQError:  # EHOSTUNREACH (router-mandatory) or a full queue
            return False
        if self.round is not None:
            self.round.bytes_out += len(frame)
        return True

    def _deliver(self, sends: list[Send]) -> None:
        for send in sends:
            self._send(send.to, send.msg)

    def _drop(self, peer: PeerId, now: float, reason: str) -> None:
        if self.round is not None:
            self._deliver(self.round.runner.drop(peer, now, reason))

    def _broadcast_done(self) -> None:
        for peer in self.registry.alive():
            self._send(peer, Done(self.run_id, self.next_round))

    # -- rounds ------------------------------------------------------------------

    def _start_run(self) -> None:
        features = self.registry.features
        if features is None or self.store.run_id is not None:
            return
        self.store.start(
            self.run_id,
            features,
            {
                "mode": self.config.secagg,
                "label": self.config.label,
                "created_by": "fedd start hub",
            },
        )

    def _maybe_start_round(self, now: float) -> None:
        alive = tuple(self.registry.alive())
        if len(alive) < self.config.min_peers or self.model is None:
            self._note_waiting(f"waiting for peers: {len(alive)}/{self.config.min_peers} alive")
            return
        if now - self._last_registration < self.config.join_window:
            return  # more peers may be joining right now
        try:
            runner, extra = self._make_runner(alive, now)
        except ParameterError as exc:
            self._note_waiting(
                f"cannot start round {self.next_round} with {len(alive)} peers: {exc}"
            )
            return
        self.waiting_note = ""
        c = self.config
        train = TrainConfig(
            c.local_epochs,
            float(c.lr),
            c.batch_size,
            float(c.l2),
            c.class_weight,
            c.seed,
        )
        self.round = _Round(
            self.next_round,
            c.secagg,
            runner,
            frozenset(alive),
            time.time(),
            now,
            time.process_time(),
        )
        log.info("round %d: %s with %d peers", self.next_round, c.secagg, len(alive))
        secagg, encoding = extra
        for peer in alive:
            self._send(
                peer,
                RoundStart(
                    self.run_id,
                    self.next_round,
                    c.secagg,
                    tuple(self.model),
                    train,
                    secagg,
                    encoding,
                ),
            )

    def _make_runner(
        self, alive: tuple[PeerId, ...], now: float
    ) -> tuple[RoundRunner, tuple[RoundParams | None, FixedPoint | None]]:
        c = self.config
        assert self.model is not None  # checked by the caller
        runner: RoundRunner
        if c.secagg == "off":
            runner = PlainRound(
                self.run_id,
                self.next_round,
                alive,
                len(self.model),
                now=now,
                timeout=c.train_timeout,
                min_updates=c.threshold or 1,
            )
            return runner, (None, None)
        mode = Mode(c.secagg)
        shape = choose_shape(
            len(alive),
            mode,
            dropout=c.dropout_budget,
            corrupt=c.corrupt,
            threshold=c.threshold,
            active=c.active,
        )
        encoding = choose_encoding(len(alive), c)
        params = RoundParams(
            run=self.run_id,
            round=self.next_round,
            mode=mode,
            participants=alive,
            k=shape.k,
            t=shape.t,
            min_survivors=shape.min_survivors,
            max_corrupt=shape.max_corrupt,
            active=c.active,
            graph_seed=secrets.token_bytes(32),
            dim=len(self.model) + 1,
            mod_bits=encoding.mod_bits,
        )
        runner = SecureRound(
            params,
            encoding,
            now=now,
            first_stage_timeout=c.train_timeout,
            stage_timeout=c.stage_timeout,
        )
        return runner, (params, encoding)

    def _note_waiting(self, note: str) -> None:
        if note != self.waiting_note:
            log.info("%s", note)
            self.waiting_note = note

    def _finish_round(self, now: float) -> None:
        current = self.round
        assert current is not None and self.model is not None
        outcome = current.runner.outcome()
        if outcome.mean_delta is not None:
            self.model = [m + d for m, d in zip(self.model, outcome.mean_delta, strict=True)]
        eval_started = time.perf_counter()
        metrics = self._evaluate(current.number) if outcome.status == "ok" else None
        evaluate_s = time.perf_counter() - eval_started
        duration = now - current.started
        participants = len(outcome.participants)
        self.store.commit(
            Commit(
                round=RoundRow(
                    current.number,
                    current.mode,
                    current.started_at,
                    duration,
                    participants,
                    len(outcome.survivors),
                    participants - len(outcome.survivors),
                    outcome.status,
                    outcome.reason[:400],
                ),
                model=self.model,
                metrics=metrics,
                perf=PerfRow(
                    current.number,
                    duration,
                    time.process_time() - current.cpu_started,
                    outcome.stage_seconds,
                    evaluate_s,
                    current.bytes_in,
                    current.bytes_out,
                ),
                clients=[
                    ClientPerfRow(
                        current.number,
                        peer,
                        stats.n_samples,
                        stats.train_s,
                        stats.cpu_s,
                        current.upload.get(peer, 0),
                    )
                    for peer, stats in sorted(current.stats.items())
                ],
                delta=outcome.mean_delta,
            )
        )
        self.last_outcome = (current.number, outcome, duration)
        summary = (
            f"round {current.number} {outcome.status}: {len(outcome.survivors)}/"
            f"{participants} peers in {duration:.2f}s"
        )
        if metrics is not None:
            summary += (
                f", roc_auc {metrics.roc_auc:.4f} pr_auc {metrics.pr_auc:.4f} f1 {metrics.f1:.4f}"
            )
        if outcome.reason:
            summary += f" ({outcome.reason})"
        log.info("%s", summary)
        self.round = None
        self.next_round += 1
        for peer in outcome.participants:
            self._send(
                peer, RoundEnd(self.run_id, current.number, outcome.status, outcome.reason[:400])
            )
        self._save_peers()
        if self.done:
            log.info("training done after %d rounds", self.config.rounds)
            self._broadcast_done()

    def _evaluate(self, number: int) -> MetricsRow | None:
        if self.test is None or self.model is None:
            return None
        m = evaluate(list(self.test.y), predict_proba(self.model, self.test))
        return MetricsRow(number, m.roc_auc, m.pr_auc, m.precision, m.recall, m.f1, m.logloss)

    def _save_peers(self) -> None:
        self.store.save_peers(_row_from_record(r) for r in self.registry)

    def _shutdown(self) -> None:
        if self.round is not None:
            log.info("abandoning round %d; it will run again after a restart", self.round.number)
            self._deliver(self.round.runner.abort("hub shutting down", self.clock()))
            for peer in self.registry.alive():
                self._send(
                    peer, RoundEnd(self.run_id, self.round.number, "aborted", "hub shutting down")
                )
            self.round = None
        self._save_peers()

    # -- status ------------------------------------------------------------------

    def _status(self, request: StatusRequest) -> StatusReply:
        running = self.round
        view = HubView(
            self.run_id,
            self.config,
            self.registry,
            self.store,
            (running.number, running.runner.stage) if running is not None else None,
            self.done,
            self.waiting_note,
            self.next_round,
            self.last_outcome,
            self.zap,
        )
        return StatusReply(
            self.run_id,
            self.next_round,
            request.topic,
            build_status(view, request.topic, request.last),
        )


def _check_features(features: tuple[str, ...]) -> None:
    """Refuse (for good) features the state cannot name a model with."""
    try:
        check_features(features)
    except ValueError as exc:
        raise Refused(f"unusable columns: {exc}", retry=False) from None


def _new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{secrets.token_hex(3)}"


def _record_from_row(row: PeerRow, state_dir: Path) -> PeerRecord:
    # The store checks a status's shape only; which words exist is the registry's business.
    try:
        status = PeerStatus(row.status)
    except ValueError:
        known = ", ".join(s.value for s in PeerStatus)
        raise StateError(
            f"{state_dir / 'peers.csv'}: peer {row.peer!r} has status {row.status!r}, "
            f"not one of {known}"
        ) from None
    return PeerRecord(
        PeerId(row.peer),
        b"",
        row.first_seen,
        row.last_seen,
        status,
        row.shard,
        row.public_key,
    )


def _row_from_record(record: PeerRecord) -> PeerRow:
    return PeerRow(
        record.peer,
        record.public_key,
        record.first_seen,
        record.last_seen,
        record.shard,
        record.status.value,
    )
