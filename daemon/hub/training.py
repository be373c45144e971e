"""The run's training rounds at the hub: when one starts, what its peers are
sent, and how it ends and is committed.

`TrainingRounds` owns the global model, the round counter and the running
round's bookkeeping; the hub's loop owns the socket and the clock, so every
method takes `now` and returns the messages to send, as (peer, message)
pairs. Each round:

1. wait until `min_peers` are alive and no peer has registered for
   `join_window` seconds (so peers starting together join the same round);
   the participants are every alive peer;
2. send RoundStart (the global model, the training config, and for secure
   rounds the protocol parameters and the fixed-point encoding);
3. the loop routes the round's messages into the runner until it finishes
   (all answered, stage time-outs, dropouts);
4. apply the weighted mean delta (unless the round aborted), evaluate on the
   test CSV if configured, commit the CSV state atomically, tell the peers
   how the round ended, and log one line.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import ParameterError, ProtocolError, RemoteProtocolError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import Send
from fedd.crypto.secagg.params import Mode, RoundParams, choose_shape
from fedd.daemon.hub.config import HubConfig, choose_encoding
from fedd.daemon.hub.rounds import PlainRound, RoundOutcome, RoundRunner, SecureRound
from fedd.daemon.state.hubfiles import ClientPerfRow, Commit, MetricsRow, PerfRow, RoundRow
from fedd.daemon.state.store import HubStore
from fedd.daemon.transport.loglimit import LogLimit, log_limited
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.rounds import (
    Decline,
    PeerStats,
    RoundEnd,
    RoundStart,
    TrainConfig,
)
from fedd.daemon.transport.wire import WireMessage
from fedd.learner.dataset import Dataset
from fedd.learner.metrics import evaluate
from fedd.learner.model import predict_proba, zeros

__all__ = ["Outgoing", "RunningRound", "TrainingRounds"]

log = logging.getLogger("fedd.hub")

Outgoing = list[tuple[PeerId, WireMessage]]


@dataclass
class RunningRound:
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


class TrainingRounds:
    """The global model and the rounds that change it, one at a time."""

    def __init__(
        self,
        config: HubConfig,
        store: HubStore,
        run_id: str,
        test: Dataset | None,
        drop_log: LogLimit,
    ) -> None:
        self.config = config
        self.drop_log = drop_log  # shared with the loop: one limit for all dropped messages
        self.store = store
        self.run_id = run_id
        self.test = test
        self.model: list[float] | None = store.model
        features = store.features or (test.features if test else None)
        if self.model is None and features is not None:
            self.model = zeros(len(features))
        self.next_round = max(store.committed_round, 0) + 1
        self.current: RunningRound | None = None
        self.last_outcome: tuple[int, RoundOutcome, float] | None = None
        self.waiting_note = ""

    @property
    def done(self) -> bool:
        return self.config.rounds > 0 and self.next_round > self.config.rounds

    def start_run(self, features: tuple[str, ...]) -> None:
        """Record the run in the state directory, once its features are known."""
        if self.model is None:
            self.model = zeros(len(features))
        if self.store.run_id is not None:
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

    def maybe_start(
        self, alive: tuple[PeerId, ...], now: float, last_registration: float
    ) -> Outgoing:
        """Start the next round if its conditions hold; the RoundStart messages."""
        if len(alive) < self.config.min_peers or self.model is None:
            self._note_waiting(f"waiting for peers: {len(alive)}/{self.config.min_peers} alive")
            return []
        if now - last_registration < self.config.join_window:
            return []  # more peers may be joining right now
        try:
            runner, extra = self._make_runner(alive, now)
        except ParameterError as exc:
            self._note_waiting(
                f"cannot start round {self.next_round} with {len(alive)} peers: {exc}"
            )
            return []
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
        self.current = RunningRound(
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
        start = RoundStart(
            self.run_id,
            self.next_round,
            c.secagg,
            tuple(self.model),
            train,
            secagg,
            encoding,
        )
        return [(peer, start) for peer in alive]

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

    def finish(self, now: float) -> Outgoing:
        """Apply and commit the finished round; the RoundEnd messages."""
        current = self.current
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
        self.current = None
        self.next_round += 1
        end = RoundEnd(self.run_id, current.number, outcome.status, outcome.reason[:400])
        return [(peer, end) for peer in outcome.participants]

    def _evaluate(self, number: int) -> MetricsRow | None:
        if self.test is None or self.model is None:
            return None
        m = evaluate(list(self.test.y), predict_proba(self.model, self.test))
        return MetricsRow(number, m.roc_auc, m.pr_auc, m.precision, m.recall, m.f1, m.logloss)

    # -- the running round's messages -------------------------------------------

    def receive(self, peer: PeerId, msg: object, now: float) -> Outgoing:
        """Route a peer's round message into the running round."""
        current = self.current
        round_of = getattr(msg, "round", None)
        if current is None or round_of != current.number:
            log_limited(
                log,
                self.drop_log,
                now,
                logging.INFO,
                "dropped stale %s from %s (round %s, current %s)",
                type(msg).__name__,
                peer,
                round_of,
                current.number if current else None,
            )
            return []
        if type(msg) is PeerStats:
            if peer in current.participants:
                current.stats[peer] = msg
            return []
        if type(msg) is Decline:
            log.warning("round %d: peer %s declined: %s", current.number, peer, msg.reason)
            return _pairs(current.runner.drop(peer, now, f"declined: {msg.reason}"))
        try:
            sends = current.runner.receive(peer, msg, now)
        except ProtocolError as exc:
            log_limited(
                log,
                self.drop_log,
                now,
                logging.WARNING,
                "round %d: rejected %s from %s: %s",
                current.number,
                type(msg).__name__,
                peer,
                exc,
            )
            refusal: Outgoing = [(peer, Error(self.run_id, current.number, str(exc)[:400]))]
            if isinstance(exc, RemoteProtocolError):
                refusal += _pairs(current.runner.drop(peer, now, f"excluded: {exc}"))
            return refusal
        return _pairs(sends)

    def on_timeout(self, now: float) -> Outgoing:
        """Let the running round's stage time-outs fire."""
        return _pairs(self.current.runner.on_timeout(now)) if self.current is not None else []

    def drop(self, peer: PeerId, now: float, reason: str) -> Outgoing:
        """`peer` is gone: it drops out of the running round, if there is one."""
        return _pairs(self.current.runner.drop(peer, now, reason)) if self.current else []

    def abandon(self, alive: tuple[PeerId, ...], now: float) -> Outgoing:
        """The hub is stopping: end the running round unapplied (it runs again after a restart)."""
        current = self.current
        if current is None:
            return []
        log.info("abandoning round %d; it will run again after a restart", current.number)
        outgoing = _pairs(current.runner.abort("hub shutting down", now))
        end = RoundEnd(self.run_id, current.number, "aborted", "hub shutting down")
        self.current = None
        return outgoing + [(peer, end) for peer in alive]


def _pairs(sends: list[Send]) -> Outgoing:
    return [(send.to, send.msg) for send in sends]
