"""The peer daemon: register with the hub, train each round, upload the update.

One DEALER socket, one loop. Local training runs in a worker thread so the
loop keeps answering heartbeats while it trains; everything else happens on
the loop's thread. The loop keeps the connection (registration, heartbeats,
reconnection, the shard the hub assigns); the rounds themselves are
`peer.rounds.PeerRounds`.

Data: a CSV file (`data`), or with `shard` a shard the hub assigns at
registration (`peer.shard`), loaded when the Welcome names it.

Transport: with `curve` the DEALER is a CURVE client; its peer id defaults
to its key's name, which is what the hub's allow-list knows it as. A socket
monitor tells the operator when the hub refuses the key. Without CURVE the
peer warns at start that traffic is neither authenticated nor encrypted.

The peer's rows never leave it. When the hub goes silent or forgets the
peer (it restarted), the peer registers again, with backoff; ZeroMQ
reconnects the socket by itself. Done from the hub ends the process with 0.
From start to exit the peer holds its state directory's lock
(`daemon.state.statedir`): a second daemon on it stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import zmq

from fedd.crypto.secagg.fields import check_peer_id
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.daemon.errors import ConfigError
from fedd.daemon.state.statedir import lock_state_dir
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Bye, Done, Heartbeat, Hello, Welcome
from fedd.daemon.transport.messages.rounds import RoundEnd, RoundStart
from fedd.daemon.transport.sockets import auth_failures, peer_socket
from fedd.learner.dataset import Dataset, read_dataset
from fedd.learner.errors import DataError
from fedd.learner.holdout import Split, split_holdout
from fedd.peer.config import PeerConfig
from fedd.peer.rounds import PeerRounds
from fedd.peer.shard import ShardSource
from fedd.peer.state import PeerState

__all__ = ["PeerAgent"]

log = logging.getLogger("fedd.peer")

_WAITING_NOTE_S = 5.0  # a peer waiting for its hub says so this often


class PeerAgent:
    """The peer daemon. `run()` returns the process exit code."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        # The data first: a peer that cannot train must not leave state behind.
        self.data: Split | None = None
        self.shard = 0
        if config.data is not None:
            self.data = self._split(
                read_dataset(
                    config.data,
                    config.label,
                    ignore=config.ignore_columns,
                    encoding=config.encoding,
                    fill_missing=config.fill_missing,
                )
            )
            self.features = self.data.train.features
        else:
            assert config.shard is not None  # checked by PeerConfig
            self.features = config.shard.features()
        peer_id = config.peer_id
        if peer_id is None and config.curve is not None:
            peer_id = config.curve.keys.name  # the name the hub's allow-list gives the key
        # Held until run() ends: a second daemon on this directory stops here.
        self.lock = lock_state_dir(config.state_dir)
        try:
            self.state = PeerState.open(config.state_dir, peer_id=peer_id)
        except BaseException:
            self.lock.release()
            raise
        for note in self.state.notes:
            log.info("state: %s", note)
        self.peer_id = check_peer_id(self.state.peer_id)
        self.run_id = ""
        self.registered = False
        self.heartbeat_s = 1.0
        self.rounds = PeerRounds(config, self.state, self._send, self._wake)
        self._stop = False
        self._last_heard = 0.0
        self._next_hello = 0.0
        self._hello_backoff = 0.5
        self._waiting_since: float | None = None  # not registered since
        self._next_waiting_note = 0.0
        self._next_heartbeat = 0.0
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
            self.lock.release()
            raise
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        if self.data is not None:
            source = _describe(self.data)
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
            self.rounds.shutdown()
            if self._monitor is not None:
                self._sock.disable_monitor()
                self._monitor.close(0)
            self._sock.close(0)
            ctx.term()
            self.lock.release()
        return code

    def _wake(self, _: object) -> None:
        """Training thread: wake the loop (the pipe is gone if the peer is stopping)."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b".")

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
                job = self.rounds.job
                if job is not None and job.future.done():
                    self.on_job_done()
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
        if not self.registered:
            self._note_waiting(now)
        if not self.registered and now >= self._next_hello:
            shard = "auto" if self.config.shard is not None else ""
            hello = Hello(
                self.run_id,
                0,
                self.peer_id,
                self.features,
                shard=shard,
                holdout=self.config.holdout > 0.0,
                unsettled=self.state.unsettled,
            )
            self._send(hello)
            self._next_hello = now + self._hello_backoff
            self._hello_backoff = min(self._hello_backoff * 2, 10.0)
        if self.registered and now >= self._next_heartbeat:
            self._send(
                Heartbeat(self.run_id, self.rounds.current.number if self.rounds.current else 0)
            )
            self._next_heartbeat = now + self.heartbeat_s

    def _note_waiting(self, now: float) -> None:
        """Every few seconds without a registration, say so: a peer whose hub is
        down, elsewhere or refusing it must not look like one that is training."""
        if self._waiting_since is None:
            self._waiting_since, self._next_waiting_note = now, now + _WAITING_NOTE_S
            return
        if now < self._next_waiting_note:
            return
        self._next_waiting_note = now + _WAITING_NOTE_S
        heard = (
            "it answered, see above"
            if self._last_heard >= self._waiting_since
            else "no answer; is it running, at that address?"
        )
        log.info(
            "waiting for the hub at %s: not registered after %.0fs (%s)",
            self.config.connect,
            now - self._waiting_since,
            heard,
        )

    # -- messages ----------------------------------------------------------------

    def _send(self, msg: wire.WireMessage) -> None:
        assert self._sock is not None
        frame = wire.encode(msg)
        try:
            self._sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            log.debug("hub not connected; %s not sent", type(msg).__name__)
            return
        if self.rounds.current is not None:
            self.rounds.current.bytes_up += len(frame)

    def _on_frame(self, frame: bytes, now: float) -> int | None:
        """Handle one frame; returns an exit code when the peer should stop."""
        try:
            msg = wire.decode(frame)
        except wire.MalformedMessage as exc:
            log.warning("dropped malformed message from the hub: %s", exc)
            return None
        self._last_heard = now
        log.debug("received %s (round %s)", type(msg).__name__, getattr(msg, "round", None))
        if self.rounds.current is not None:
            self.rounds.current.bytes_down += len(frame)
        if type(msg) is Welcome:
            return self._on_welcome(msg, now)
        elif type(msg) is Error:
            return self._on_error(msg, now)
        elif type(msg) is Done:
            log.info("the hub says training is done")
            self._stop = True
            return 0
        elif type(msg) is RoundStart:
            self._in_round(self.rounds.on_round_start, msg, self.peer_id, self.data)
        elif type(msg) is RoundEnd:
            self._in_round(self.rounds.on_round_end, msg)
        elif isinstance(msg, MESSAGE_TYPES):
            self._in_round(self.rounds.on_protocol, msg, self.peer_id)
        elif type(msg) is not Heartbeat:
            log.warning("dropped unexpected %s from the hub", type(msg).__name__)
        return None

    def on_job_done(self) -> None:
        """The round's job finished (the loop saw its future done): hand it to the rounds."""
        self._in_round(self.rounds.on_done, self.peer_id, self.data)

    def _in_round(self, step: Callable[..., None], *args: Any) -> None:
        """Run one step of the rounds. Whatever it raises (a state file that cannot
        be written, a value it cannot hold, a bug) takes this peer out of the
        running round with one line, rather than ending the daemon mid-run."""
        try:
            step(*args)
        except Exception as exc:
            log.debug("round step failed", exc_info=True)
            self.rounds.leave(f"{type(exc).__name__}: {exc}")

    def _on_welcome(self, msg: Welcome, now: float) -> int | None:
        self.registered, self.run_id = True, msg.run
        self._waiting_since = None
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
        self.data, self.shard = self._split(data), shard
        log.info("loaded shard %d from %s: %s", shard, source.describe(shard), _describe(self.data))
        return None

    def _split(self, data: Dataset) -> Split:
        return split_holdout(data, self.config.holdout, self.config.holdout_seed)

    def _on_error(self, msg: Error, now: float) -> int | None:
        log.warning("hub: %s", msg.reason)
        if not msg.retry:
            print(f"fedd: error: the hub refused this peer: {msg.reason}", file=sys.stderr)
            return 1
        if msg.reason.startswith("not registered"):
            self.registered = False
            self._next_hello = now
        return None


def _describe(data: Split) -> str:
    held = data.holdout.n_rows if data.holdout is not None else 0
    return f"{data.train.n_rows} training rows, {held} held out"
