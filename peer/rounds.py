"""A peer's rounds: take part or decline, compute, contribute, run the protocol, log.

`PeerRounds` holds the running round and its job; the agent's loop owns the
socket, hands in each round message and gives it a `send` function. A round:

1. RoundStart: decline (with the reason) if this peer's requirements do not
   hold (`peer.config.refusal`: among them, secure parameters weaker than
   its floor), if it is a statistics round of a run this peer already gave its
   statistics to (once per run: `PeerState.statistics_given`), or if it is an
   active SecAgg+ round after too many such rounds in a row aborted once their
   graph seed was known (`crypto.secagg.seed.MAX_SEED_RETRIES`); otherwise
   start the job (`peer.work`): statistics, training, or scoring. A model is
   scored only if it is the model of a training round this peer took part in
   and that ended ok (or whose end never came after its vector left), exactly
   as the first RoundStart after that round presented it; for any other the
   peer contributes zeros and is not counted;
2. plain rounds: send the vector (PlainContribution); secure rounds: run the
   protocol (`crypto.secagg`) with it as the input, which sends only masked
   vectors and sealed shares, every signature bound to a digest of the
   RoundStart. Training rounds also report the training cost (PeerStats),
   in secure rounds without the sample count and with the seconds coarse;
3. RoundEnd: append the round to the local log (`rounds.csv`); in a SCAFFOLD
   round that committed with this peer's vector in its sum (`included`),
   adopt the new control variate (`control.csv`): a round this peer dropped
   out of, or one that aborted, leaves it unchanged. The new control variate
   waits on disk (`control_pending.csv`) from before the vector leaves until
   the RoundEnd: a peer restarted in between, or that the hub's restart
   re-registers, names that round in its Hello, and the hub answers with the
   round's RoundEnd, so that the peers' control variates and the hub's stay
   in step across crashes of either.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from fedd.crypto.errors import CryptoCheckFailed, ProtocolError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.advertise_keys import Roster
from fedd.crypto.secagg.messages.common import RoundAbort
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.crypto.secagg.peer import PeerSession, PeerStage
from fedd.crypto.secagg.seed import MAX_SEED_RETRIES
from fedd.daemon.errors import ConfigError
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.rounds import Decline, RoundEnd, RoundStart
from fedd.daemon.transport.messages.uploads import PeerStats, PlainContribution, coarse_seconds
from fedd.daemon.transport.wire import WireMessage
from fedd.learner.holdout import Split
from fedd.peer.config import PeerConfig, refusal
from fedd.peer.state import ROUNDS, PeerRoundRow, PeerState
from fedd.peer.work import Job, LocalWork

__all__ = ["MODELS_KEPT", "PeerRound", "PeerRounds"]

log = logging.getLogger("fedd.peer")

_FAULT_TRIGGERS = {Roster: "share-keys", ForwardedShares: "masked-input", UnmaskRequest: "unmask"}
_FAULT_EXIT = 3
MODELS_KEPT = 8  # models of recent rounds this peer took part in, for scoring requests


@dataclass
class PeerRound:
    """The running round, for its row in rounds.csv."""

    number: int
    start: RoundStart
    n_samples: int = 0
    train_s: float = 0.0
    cpu_s: float = 0.0
    train_loss: float = math.nan
    local_roc_auc: float = math.nan
    bytes_up: int = 0
    bytes_down: int = 0
    session: PeerSession | None = None
    n_rows: int = 0  # the rows behind this peer's vector
    status: str = "running"
    reason: str = ""
    cpu_started: float = 0.0  # the process's CPU time when the round started
    sent: bool = False  # this peer's vector (plain or masked) has left it


class PeerRounds:
    """The peer's side of the rounds, one at a time."""

    def __init__(
        self,
        config: PeerConfig,
        state: PeerState,
        send: Callable[[WireMessage], None],
        wake: Callable[[object], None],
    ) -> None:
        self.config = config
        self.state = state
        self._send = send
        self.current: PeerRound | None = None
        self.job: Job | None = None
        self._next_start: RoundStart | None = None  # waits for the running job
        self.rounds_seen = 0
        self._wake = wake  # runs in the worker thread when a job finishes
        self._work = LocalWork()
        # Training rounds this peer took part in that ended ok, and the model
        # the next RoundStart presented as their outcome (None until it came).
        self._models: dict[int, tuple[float, ...] | None] = {}
        # Active SecAgg+ rounds in a row that ended after this peer revealed its
        # graph-seed nonce and before it unmasked: the seeds a hub got to see.
        self.seeds_spent = 0

    def shutdown(self, *, wait: bool = False) -> None:
        self._work.shutdown(wait=wait)

    def on_round_start(self, msg: RoundStart, peer_id: PeerId, data: Split | None) -> None:
        previous = self.current
        if previous is not None and previous.status == "running":
            log.info("round %d superseded by round %d", previous.number, msg.round)
            self._count_seed(previous)
            # A training round whose vector left but whose end never came (a hub
            # restarted between committing it and saying so) ended for this peer
            # as if ok: the model presented now is its outcome, as after a
            # RoundEnd. No more than the hub has anyway: it decides what commits.
            if previous.sent and previous.start.kind == "training" and msg.round > previous.number:
                self._models[previous.number] = None
        self.rounds_seen += 1
        self._fault("training", peer_id)
        for number, model in list(self._models.items()):
            if model is None:  # the first model presented after round `number`
                self._models[number] = msg.model
        self.current = PeerRound(msg.round, msg, cpu_started=time.process_time())
        reason = refusal(msg, self.config, peer_id)
        if reason is None and msg.kind == "statistics" and self.state.statistics_given(msg.run):
            reason = (
                f"this peer already gave its feature statistics to run {msg.run}; "
                "it gives them once per run"
            )
        drawn = msg.secagg is not None and msg.secagg.active and msg.secagg.sparse
        if reason is None and drawn and self.seeds_spent > MAX_SEED_RETRIES:
            reason = (
                f"{self.seeds_spent} active SecAgg+ rounds in a row ended after their graph "
                "seed was drawn: this peer draws no more (restart it to reset the count)"
            )
        if reason is not None:
            log.warning("round %d: declined: %s", msg.round, reason)
            self.current.status, self.current.reason = "declined", reason[:200]
            self._send(Decline(msg.run, msg.round, reason[:400]))
            return
        # One job at a time, and only the newest round's waits for it: a burst
        # of RoundStarts must not queue a job (and a model) each.
        self._next_start = msg
        if self.job is None:
            self._start_next(data)

    def _start_next(self, data: Split | None) -> None:
        msg, self._next_start = self._next_start, None
        assert msg is not None  # set by the caller
        if data is None:  # registered, but the shard never loaded
            self._sit_out(msg, "no data loaded")
            return
        eligible = [self._models.get(e.model_round) == e.params for e in msg.evals]
        try:
            control = self.state.control(msg.run, len(msg.model)) if msg.control else ()
        except ValueError as exc:  # not of this run's model
            self._sit_out(msg, str(exc))
            return
        self.job = self._work.submit(msg, data, eligible, self._wake, control)

    def _sit_out(self, msg: RoundStart, reason: str) -> None:
        """`msg`'s job cannot run: if it is the running round's, leave that round."""
        if self.current is not None and self.current.number == msg.round:
            self.leave(reason)

    def on_done(self, peer_id: PeerId, data: Split | None) -> None:
        """The job finished: contribute its vector, or start the newer round's job."""
        job, self.job = self.job, None
        assert job is not None
        if self._next_start is not None:  # superseded while working
            self._start_next(data)
            return
        current = self.current
        if current is None or current.number != job.number or current.status != "running":
            return  # superseded while working, or the hub took this peer out of the round
        try:
            result = job.future.result()
        except Exception as exc:
            self.leave(f"local {current.start.kind} failed: {exc}")
            return
        msg = job.start
        current.n_samples = result.n_samples
        current.train_s, current.cpu_s, current.train_loss = (
            result.train_s,
            result.cpu_s,
            result.loss,
        )
        current.local_roc_auc = result.local_roc_auc
        if result.control is not None and data is not None:
            parameters = ("bias", *data.train.features)
            self.state.hold_control(msg.run, job.number, parameters, result.control)
        if msg.kind == "training":
            # The round's own run id: the agent's is "" until a Welcome arrives. A
            # secure round's sample count travels only inside the masked sum, and
            # the seconds that track it only coarsely.
            if msg.secagg is None:
                stats = PeerStats(
                    msg.run, job.number, result.n_samples, result.train_s, result.cpu_s
                )
            else:
                train_s, cpu_s = coarse_seconds(result.train_s), coarse_seconds(result.cpu_s)
                stats = PeerStats(msg.run, job.number, 0, train_s, cpu_s)
            self._send(stats)
        if msg.secagg is None:
            self._record_statistics(msg, result.n_samples)
            current.sent = True
            self._send(PlainContribution(msg.run, job.number, result.vector))
            return
        current.n_rows = result.n_samples
        self._fault("advertise-keys", peer_id)
        try:
            active = msg.secagg.active
            signing = self.config.signing if active else None
            current.session = PeerSession(
                msg.secagg,
                peer_id,
                result.vector,
                signing_key=signing.key if signing else None,
                trusted=signing.trusted if signing else None,
                floor=self.config.floor,
                # What the signatures of an active round bind: the whole RoundStart.
                context=hashlib.sha256(wire.encode(msg)).digest() if active else b"",
            )
        except ProtocolError as exc:
            self.leave(f"cannot take part: {exc}")
            return
        for out in current.session.start():
            self._send(out)

    def on_protocol(self, msg: object, peer_id: PeerId) -> None:
        current = self.current
        number = getattr(msg, "round", None)
        if current is None or current.session is None or current.number != number:
            if type(msg) is RoundAbort and current is not None and current.number == number:
                # Out of the round before its protocol began (declined, failed, or still
                # computing): the round's line says so when RoundEnd comes.
                if current.status == "running":
                    current.status, current.reason = "aborted", msg.reason[:200]
                return
            log.info("dropped %s for round %s (no such round here)", type(msg).__name__, number)
            return
        stage = _FAULT_TRIGGERS.get(type(msg))
        if stage is not None:
            self._fault(stage, peer_id)
        try:
            replies = current.session.receive(msg)  # type: ignore[arg-type]
        except (ProtocolError, CryptoCheckFailed) as exc:  # the session is over: say so
            self.leave(f"left the protocol: {exc}")
            return
        if any(type(out) is MaskedInput for out in replies):
            self._record_statistics(current.start, current.n_rows)
            current.sent = True
        for out in replies:
            self._send(out)

    def _record_statistics(self, msg: RoundStart, rows: int) -> None:
        """Before a statistics round's vector leaves: it does so once per run.

        Recorded (and fsynced) first, so that not even a crash right after
        sending lets this peer give its statistics to the run again. In a
        secure round the vector leaves with the masked input; a round that
        aborts before then has not spent them.
        """
        if msg.kind == "statistics":
            self.state.record_statistics(msg.run, msg.round, rows)

    def _count_seed(self, current: PeerRound) -> None:
        """A round ends: did a hub see its seed without the round reaching the unmask stage?"""
        session = current.session
        if session is None or not session.revealed_nonce:
            return
        self.seeds_spent = 0 if session.stage is PeerStage.DONE else self.seeds_spent + 1

    def leave(self, reason: str) -> None:
        """A step of the running round failed here: say so in one line, sit the
        round out, and tell the hub (Decline), so it goes on without this peer."""
        current = self.current
        if current is None:  # between rounds: nothing to leave
            log.error("%s", reason)
            return
        log.error("round %d: %s; this peer sits the round out", current.number, reason)
        if current.status == "running":
            current.status, current.reason = "failed", reason[:200]
            self._count_seed(current)
            current.session = None
            self._send(Decline(current.start.run, current.number, reason[:400]))

    def on_round_end(self, msg: RoundEnd) -> None:
        current = self.current
        try:
            adopted = self.state.settle_control(msg.run, msg.round, included=msg.included)
            if adopted and (current is None or current.number != msg.round):
                log.info(
                    "round %d: its sum held this peer's vector: control variate adopted", msg.round
                )
        except (ValueError, ConfigError) as exc:  # kept: the old one stays in force
            log.error("round %d: control variate not adopted: %s", msg.round, exc)
        if current is None or current.number != msg.round:
            return
        self._count_seed(current)
        self.current = None  # ended, even if logging it fails
        status = msg.status if current.status == "running" else current.status
        row_reason = msg.reason or current.reason
        if current.start.kind == "training" and status == "ok":
            self._models[current.number] = None
            for old in sorted(self._models)[:-MODELS_KEPT]:
                del self._models[old]
        try:
            self.state.log_round(
                PeerRoundRow(
                    round=current.number,
                    kind=current.start.kind,
                    mode=current.start.mode,
                    status=status,
                    reason=row_reason,
                    n_samples=current.n_samples,
                    train_s=current.train_s,
                    cpu_s=current.cpu_s,
                    train_loss=current.train_loss,
                    local_roc_auc=current.local_roc_auc,
                    bytes_up=current.bytes_up,
                    bytes_down=current.bytes_down,
                    finished_at=time.time(),
                    protocol_cpu_s=max(
                        0.0, time.process_time() - current.cpu_started - current.cpu_s
                    ),
                )
            )
        except (ValueError, ConfigError) as exc:  # a value the file cannot hold; a full disk
            log.error("round %d: not logged in %s: %s", current.number, ROUNDS.name, exc)
        log.info("round %d %s", current.number, _round_line(current, status, row_reason))

    def _fault(self, stage: str, peer_id: PeerId) -> None:
        """Testing aid: die abruptly at `stage` of the first round, as if killed."""
        if self.config.fault_stage == stage and self.rounds_seen == 1:
            print(
                f"fedd: fault injection: peer {peer_id} exits at {stage}",
                file=sys.stderr,
                flush=True,
            )
            os._exit(_FAULT_EXIT)


def _round_line(current: PeerRound, status: str, reason: str) -> str:
    """How a round went here, for the log: kind, status, why it did not end ok,
    and what training measured (nothing undefined)."""
    line = f"{current.start.kind} {status}"
    if status != "ok" and reason:
        line += f": {reason}"
    if current.train_s > 0.0:
        auc = current.local_roc_auc
        before = (
            f"local ROC-AUC before training {auc:.4f}"
            if math.isfinite(auc)
            else "no local ROC-AUC: the training rows hold one class"
        )
        line += f" ({before}; {current.train_s:.2f}s training)"
    return line
