"""The hub daemon: one ROUTER socket, a peer registry, and FedAvg rounds.

The loop owns the socket and the clock; everything it decides goes through
sans-IO pieces: `Registry` (who is alive), `RoundLifecycle` (what a round
aggregates, when it starts, and how it is committed; `daemon.hub.lifecycle`
describes one round), the round runners (`PlainRound`/`SecureRound`) and
`HubStore` (CSV state).

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
table and exit 0. From start to exit the hub holds its state directory's
lock (`daemon.state.statedir`): a second daemon on it stops at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

import zmq

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.errors import ConfigError
from fedd.daemon.hub.config import HubConfig
from fedd.daemon.hub.lifecycle import Outgoing, RoundLifecycle
from fedd.daemon.hub.registry import (
    PeerStatus,
    Refused,
    Registry,
    record_from_row,
    row_from_record,
)
from fedd.daemon.hub.status import HubView, build_status
from fedd.daemon.state.runfile import check_features
from fedd.daemon.state.statedir import lock_state_dir
from fedd.daemon.state.store import HubStore
from fedd.daemon.transport import wire
from fedd.daemon.transport.curve import HUB_NAME, KeyPair, load_allow_dir, load_secret
from fedd.daemon.transport.loglimit import LogLimit, log_limited
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Bye, Done, Heartbeat, Hello, Welcome
from fedd.daemon.transport.messages.status import StatusReply, StatusRequest
from fedd.daemon.transport.sockets import hub_socket
from fedd.daemon.transport.zap import ZapHandler
from fedd.learner.dataset import Dataset, read_dataset

__all__ = ["Hub"]

log = logging.getLogger("fedd.hub")


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
            self.test = read_dataset(
                config.eval_test,
                config.label,
                ignore=config.ignore_columns,
                encoding=config.encoding,
                fill_missing=config.fill_missing,
            )
            try:
                check_features(self.test.features)
            except ValueError as exc:
                raise ConfigError(f"{config.eval_test}: unusable columns: {exc}") from None
        # Held until run() ends: a second daemon on this directory stops here.
        self.lock = lock_state_dir(config.state_dir)
        try:
            self._open_state()
        except BaseException:
            self.lock.release()
            raise
        self._stop = False
        self._next_heartbeat = 0.0
        self._last_registration = -float("inf")
        self._done_since: float | None = None
        self._sock: zmq.Socket[bytes] | None = None

    def _open_state(self) -> None:
        config = self.config
        self.store = HubStore.open(config.state_dir)
        for note in self.store.reconciled:
            log.warning("state: %s", note)
        features = self.store.features or (self.test.features if self.test else None)
        if self.store.features and self.test and self.store.features != self.test.features:
            raise ConfigError(
                f"{config.eval_test} has other feature columns than the model in {config.state_dir}"
            )
        # Lines that anyone who can connect can cause, as fast as the network
        # allows: dropped, refused or rejected messages, and (with Hello/Bye
        # cycles) registrations and departures. Separate limits, so that a
        # flood of garbage does not hide who joins.
        self._drop_log = LogLimit()
        self._membership_log = LogLimit()
        run_id = self.store.run_id or _new_run_id()
        self.rounds = RoundLifecycle(config, self.store, run_id, self.test, self._drop_log)
        self.registry = Registry(
            liveness_s=config.liveness_s, features=features, max_shards=config.shards
        )
        for row in self.store.load_peers():
            self.registry.restore(record_from_row(row, config.state_dir))

    @property
    def run_id(self) -> str:
        return self.rounds.run_id

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
            self.lock.release()
            raise
        self._poller.register(self._sock, zmq.POLLIN)
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        if self.store.run_id is None and self.registry.features is not None:
            self.rounds.start_run(self.registry.features)
        log.info(
            "hub %s listening on %s (run %s, %s, rounds %s, next round %d)",
            os.getpid(),
            self.config.bind,
            self.run_id,
            self.config.secagg,
            self.config.rounds or "unlimited",
            self.rounds.next_round,
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
            self.lock.release()
        return 0

    def _finished_serving(self, now: float) -> bool:
        """With exit_when_done: done, and every peer has left (or had `liveness_s` to).

        Waiting for the peers' Bye, rather than exiting right after sending
        Done, means no peer misses its Done in the hub's last moments.
        """
        if not (self.rounds.done and self.config.exit_when_done and self.rounds.current is None):
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
        if self.rounds.current is not None:
            wake = min(wake, self.rounds.current.runner.deadline)
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
                self._send(peer, Heartbeat(self.run_id, self.rounds.next_round))
        if self.rounds.current is not None:
            self._send_all(self.rounds.on_timeout(now))
            if self.rounds.current.runner.finished:
                self._send_all(self.rounds.finish(now))
                self._save_peers()
                if self.rounds.done:
                    log.info("done: %d training rounds, every model scored", self.config.rounds)
                    self._broadcast_done()
        if self.rounds.current is None and not self.rounds.done:
            alive = tuple(self.registry.alive())
            scorers = tuple(self.registry.scorers())
            absent = tuple(self.registry.absent())
            self._send_all(
                self.rounds.maybe_start(alive, scorers, now, self._last_registration, absent)
            )

    # -- messages in -----------------------------------------------------------

    def _on_frame(self, routing: bytes, frame: bytes, now: float, user_id: str | None) -> None:
        if self.rounds.current is not None:
            self.rounds.current.bytes_in += len(frame)
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
        if self.rounds.current is not None:
            self.rounds.current.upload[peer] = self.rounds.current.upload.get(peer, 0) + len(frame)
        self._on_peer_message(peer, msg, now)

    def _on_peer_message(self, peer: PeerId, msg: object, now: float) -> None:
        if type(msg) is Bye:
            self._log_limited(self._membership_log, logging.INFO, "peer %s left", peer)
            self.registry.leave(peer)
            self._drop(peer, now, "left")
        elif self.rounds.done:  # it may have missed its Done
            self._send(peer, Done(self.run_id, self.rounds.next_round))
        elif type(msg) is not Heartbeat:
            self._send_all(self.rounds.receive(peer, msg, now))

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
        if self.rounds.model is None:  # the first peer fixed the features
            self.rounds.start_run(msg.features)
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
            self.run_id,
            self.rounds.next_round,
            record.peer,
            float(self.config.heartbeat_s),
            record.shard,
        )
        self._send(record.peer, welcome)
        settled = self.rounds.settlement(record.peer, msg.unsettled, self.clock())
        if settled is not None:
            self._send(record.peer, settled)
        if self.rounds.done:
            self._send(record.peer, Done(self.run_id, self.rounds.next_round))

    def _log_limited(self, limit: LogLimit, level: int, fmt: str, *args: object) -> None:
        log_limited(log, limit, self.clock(), level, fmt, *args)

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
        if self.rounds.current is not None:
            self.rounds.current.bytes_out += len(frame)
        return True

    def _send_all(self, outgoing: Outgoing) -> None:
        for peer, msg in outgoing:
            self._send(peer, msg)

    def _drop(self, peer: PeerId, now: float, reason: str) -> None:
        self._send_all(self.rounds.drop(peer, now, reason))

    def _broadcast_done(self) -> None:
        for peer in self.registry.alive():
            self._send(peer, Done(self.run_id, self.rounds.next_round))

    def _save_peers(self, *, stopping: bool = False) -> None:
        self.store.save_peers((row_from_record(r) for r in self.registry), stopping=stopping)

    def _shutdown(self) -> None:
        self._send_all(self.rounds.abandon(tuple(self.registry.alive()), self.clock()))
        self._save_peers(stopping=True)

    # -- status ------------------------------------------------------------------

    def _status(self, request: StatusRequest) -> StatusReply:
        running = self.rounds.current
        view = HubView(
            self.run_id,
            self.config,
            self.registry,
            self.store,
            (running.number, f"{running.start.kind}, {running.runner.stage}") if running else None,
            self.rounds.done,
            self.rounds.waiting_note,
            self.rounds.next_round,
            self.rounds.last_outcome,
            self.zap,
        )
        return StatusReply(
            self.run_id,
            self.rounds.next_round,
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
