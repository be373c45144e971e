"""The run's rounds at the hub: what each aggregates, when it starts, how it is committed.

`RoundLifecycle` owns the global model, the run's federated statistics, the
queue of models waiting for their scores, and the running round; the hub's
loop owns the socket and the clock, so every method takes `now` and returns
the messages to send, as (peer, message) pairs. A round:

1. wait until `min_peers` are alive and no peer has registered for
   `join_window` seconds (so peers starting together join the same round);
   the participants are every alive peer;
2. choose what it aggregates: the run's feature statistics first (once, see
   `learner.moments`), then `rounds` training rounds, then evaluation rounds
   until every trained model is scored (`daemon.hub.evaluation`); training
   rounds also carry the scoring of earlier models;
3. send RoundStart: the global model, the scaling, the training config, the
   models to score, SCAFFOLD's control variate, and for secure rounds the
   protocol parameters;
4. the loop routes the round's messages into the runner until it finishes;
5. decode the survivors' sum (`daemon.transport.contribution`): store the
   statistics, apply the run's strategy (`learner.strategy`) to the weighted
   mean update, turn scores into metrics rows;
   score on the test CSV if configured; commit the CSV state atomically, tell
   the peers how the round ended, and log one line.
"""

from __future__ import annotations

import logging
import secrets
import time

from fedd.crypto.errors import ParameterError, ProtocolError, RemoteProtocolError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages import Send
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.shape import choose_shape
from fedd.daemon.hub.commit import Committer
from fedd.daemon.hub.config import HubConfig, choose_encoding
from fedd.daemon.hub.evaluation import Evaluations
from fedd.daemon.hub.rounds import (
    PlainRound,
    RoundOutcome,
    RoundRunner,
    RunningRound,
    SecureRound,
)
from fedd.daemon.state.store import HubStore
from fedd.daemon.transport.contribution import Layout
from fedd.daemon.transport.loglimit import LogLimit, log_limited
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.rounds import (
    Decline,
    RoundEnd,
    RoundStart,
    Scaling,
    TrainConfig,
)
from fedd.daemon.transport.messages.uploads import PeerStats
from fedd.daemon.transport.wire import WireMessage
from fedd.learner.dataset import Dataset
from fedd.learner.model import zeros

__all__ = ["Outgoing", "RoundLifecycle"]

log = logging.getLogger("fedd.hub")

Outgoing = list[tuple[PeerId, WireMessage]]

_FIRST_PAUSE = 1.0  # seconds before the round after an aborted one
_LONGEST_PAUSE = 30.0
_WAITING_LOG_S = 30.0  # a hub that keeps waiting says so again this often


class RoundLifecycle:
    """The global model and the rounds that build and score it, one at a time."""

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
        if store.run_id is not None:
            config.check_resumable(store.settings, store.run_id)
        self.model: list[float] | None = store.model
        features = store.features or (test.features if test else None)
        if self.model is None and features is not None:
            self.model = zeros(len(features))
        self.next_round = max(store.committed_round, 0) + 1
        self.current: RunningRound | None = None
        self.last_outcome: tuple[int, RoundOutcome, float] | None = None
        self.waiting_note = ""
        self._waiting_logged = -float("inf")
        # Peers that declined a statistics round: they will not give statistics to this run
        # (a peer gives them once per run), so later statistics rounds go on without them.
        self.no_statistics: set[PeerId] = set()
        # After an aborted round the next one waits, longer after each abort in a row, so
        # that a federation that keeps failing does not start rounds back to back.
        self._aborts_in_a_row = 0
        self._not_before = -float("inf")
        self.evaluations = Evaluations(threshold=config.decision_threshold)
        self.committer = Committer(config, store, self.evaluations, test)
        self._unscored_note = False
        for number, model in self.committer.unscored_models():
            self.evaluations.add(number, model)

    @property
    def scaling(self) -> Scaling | None:
        stats = self.store.statistics
        if stats is None:
            return None
        return Scaling(
            tuple(float(c.mean) for c in stats.columns), tuple(float(c.std) for c in stats.columns)
        )

    @property
    def done(self) -> bool:
        return self._next_kind() is None

    def _next_kind(self) -> str | None:
        if self.store.statistics is None:
            return "statistics"
        rounds = self.config.rounds
        if rounds == 0 or self.store.training_rounds < rounds:
            return "training"
        return "evaluation" if self.evaluations.pending else None

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
                # What a report needs to tell how much training the run gave its model.
                "local_epochs": str(self.config.local_epochs),
                "batch_size": str(self.config.batch_size),
                "created_by": "fedd start hub",
                **self.config.training_settings,
            },
        )

    def maybe_start(
        self,
        alive: tuple[PeerId, ...],
        scorers: tuple[PeerId, ...],
        now: float,
        last_registration: float,
        absent: tuple[PeerId, ...],
    ) -> Outgoing:
        """Start the next round if its conditions hold; the RoundStart messages.

        `scorers` are the alive peers that hold rows out to score models on;
        `absent` the peers seen before that are not alive now, named while the
        hub waits for peers.
        """
        kind = self._next_kind()
        if kind is None or now < self._not_before:
            return []
        if kind == "statistics":
            alive = self._statistics_givers(alive, now)
        if len(alive) < self.config.min_peers or self.model is None:
            if not (kind == "statistics" and self.no_statistics):  # that note is said above
                note = f"waiting for peers: {len(alive)}/{self.config.min_peers} alive"
                self._note_waiting(note + _missing(absent), now)
            return []
        if now - last_registration < self.config.join_window:
            return []  # more peers may be joining right now
        if not scorers and self.evaluations.pending:
            self._note_unscored()
            self.evaluations.clear()
            if kind == "evaluation":
                return []
        try:
            start, runner = self._prepare(kind, alive, bool(scorers), now)
        except ParameterError as exc:
            self._note_waiting(
                f"cannot start round {self.next_round} with {len(alive)} peers: {exc}", now
            )
            return []
        self.waiting_note, self._waiting_logged = "", -float("inf")
        self.current = RunningRound(
            self.next_round, start, runner, frozenset(alive), time.time(), now, time.process_time()
        )
        scored = ", ".join(f"scoring round {e.model_round}" for e in start.evals)
        log.info(
            "round %d: %s, %s with %d peers%s",
            self.next_round,
            kind,
            self.config.secagg,
            len(alive),
            f" ({scored})" if scored else "",
        )
        return [(peer, start) for peer in alive]

    def _statistics_givers(self, alive: tuple[PeerId, ...], now: float) -> tuple[PeerId, ...]:
        """The alive peers that may give statistics; says who declined when too few are left."""
        spent = [p for p in alive if p in self.no_statistics]
        givers = tuple(p for p in alive if p not in self.no_statistics)
        if spent and len(givers) < self.config.min_peers:
            self._note_waiting(
                f"waiting for peers that can give statistics: {len(givers)}/"
                f"{self.config.min_peers}; {', '.join(spent)} declined (a peer gives its "
                "statistics once per run): start a new run in a fresh state directory, "
                "or bring other peers",
                now,
            )
        return givers

    def _prepare(
        self, kind: str, alive: tuple[PeerId, ...], scoring: bool, now: float
    ) -> tuple[RoundStart, RoundRunner]:
        c = self.config
        assert self.model is not None  # checked by the caller
        evals = self.evaluations.requests() if scoring and kind != "statistics" else ()
        encoding = train = control = None
        if kind == "training":
            encoding = choose_encoding(len(alive), c, wide=bool(evals))
            train = TrainConfig(
                c.local_epochs,
                float(c.lr),
                c.batch_size,
                float(c.l2),
                c.class_weight,
                c.seed,
                float(c.proximal_mu),
            )
            if self.store.strategy.controls and self.store.optimizer is not None:
                control = self.store.optimizer.control
        layout = Layout(
            kind, len(self.model) - 1, encoding, tuple(e.bins for e in evals), control is not None
        )
        secagg = None
        runner: RoundRunner
        if c.secagg == "off":
            runner = PlainRound(
                self.run_id,
                self.next_round,
                alive,
                layout,
                now=now,
                timeout=c.train_timeout,
                min_updates=c.secagg_threshold or 1,
            )
        else:
            mode = Mode(c.secagg)
            shape = choose_shape(
                len(alive),
                mode,
                dropout=c.dropout_budget,
                corrupt=c.corrupt,
                threshold=c.secagg_threshold,
                active=c.active,
            )
            secagg = RoundParams(
                run=self.run_id,
                round=self.next_round,
                mode=mode,
                participants=alive,
                **shape._asdict(),
                active=c.active,
                graph_seed=secrets.token_bytes(32),
                dim=layout.lanes,
                mod_bits=layout.mod_bits,
            )
            runner = SecureRound(
                secagg,
                now=now,
                first_stage_timeout=c.train_timeout,
                stage_timeout=c.stage_timeout,
            )
        start = RoundStart(
            self.run_id,
            self.next_round,
            kind,
            c.secagg,
            tuple(self.model),
            train,
            self.scaling if kind != "statistics" else None,
            evals,
            secagg,
            encoding,
            control,
        )
        return start, runner

    def _note_waiting(self, note: str, now: float) -> None:
        """Log why no round starts: when the reason changes, and again every
        `_WAITING_LOG_S` while it stays."""
        if note != self.waiting_note or now - self._waiting_logged >= _WAITING_LOG_S:
            log.info("%s", note)
            self.waiting_note, self._waiting_logged = note, now

    def _note_unscored(self) -> None:
        if not self._unscored_note:
            self._unscored_note = True
            log.warning(
                "no peer holds rows out to score models on (all started with --holdout 0)"
                + ("" if self.committer.has_test else " and there is no --eval-test")
                + ": the federated metrics stay empty"
            )

    def finish(self, now: float) -> Outgoing:
        """Decode, apply and commit the finished round; the RoundEnd messages."""
        current = self.current
        assert current is not None and self.model is not None
        outcome, self.model, summary = self.committer.commit(current, self.model, now)
        duration = now - current.started
        self.last_outcome = (current.number, outcome, duration)
        if outcome.status == "ok":
            self._aborts_in_a_row = 0
        else:
            self._aborts_in_a_row += 1
            pause = min(_FIRST_PAUSE * 2 ** (self._aborts_in_a_row - 1), _LONGEST_PAUSE)
            self._not_before = now + pause
            summary += f"; the next round in {pause:g}s"
        log.info("%s", summary)
        self.current = None
        self.next_round += 1
        ended = (self.run_id, current.number, outcome.status, outcome.reason[:400])
        ok = outcome.status == "ok"
        return [
            (peer, RoundEnd(*ended, included=ok and peer in outcome.survivors))
            for peer in outcome.participants
        ]

    def settlement(self, peer: PeerId, number: int, now: float) -> RoundEnd | None:
        """Round `number`'s RoundEnd for `peer`, which registers holding the control
        variate it computed in that round without having heard how it ended (a
        restart of either side): None for round 0 (none), while the round runs
        here (its own RoundEnd comes), and when the store does not know whom its
        sum held."""
        current = self.current
        if number == 0 or (current is not None and current.number == number):
            return None
        if number > self.store.committed_round:  # a restarted hub runs it again
            return RoundEnd(self.run_id, number, "aborted", "the round never committed")
        row = self.store.round_row(number)
        included = self.store.included(number, peer)
        if row is None or included is None:
            log_limited(
                log,
                self.drop_log,
                now,
                logging.WARNING,
                "peer %s asks how round %d ended: no longer known here",
                peer,
                number,
            )
            return None
        return RoundEnd(self.run_id, number, row.status, row.reason[:400], included=included)

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
            if current.start.kind == "statistics" and peer in current.participants:
                self.no_statistics.add(peer)
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


def _missing(absent: tuple[PeerId, ...]) -> str:
    """Who the hub waits for, as the end of its waiting note."""
    if not absent:
        return "; none has gone silent or left: the others have not registered yet"
    more = f" and {len(absent) - 5} more" if len(absent) > 5 else ""
    return f"; gone silent or left: {', '.join(absent[:5])}{more}"


def _pairs(sends: list[Send]) -> Outgoing:
    return [(send.to, send.msg) for send in sends]
