"""A peer's rounds: take part or decline, compute, contribute, run the protocol, log.

`PeerRounds` holds the running round and its job; the agent's loop owns the
socket, hands in each round message and gives it a `send` function. A round:

1. RoundStart: decline (with the reason) if this peer's requirements do not
   hold, or if it is a statistics round of a run this peer already gave its
   statistics to (once per run: `PeerState.statistics_given`); otherwise
   start the job (`peer.work`): statistics, training, or scoring. A model is
   scored only if it is the model of a training round this peer took part in
   and that ended ok, exactly as the first RoundStart after that round
   presented it; for any other the peer contributes zeros and is not counted;
2. plain rounds: send the vector (PlainContribution); secure rounds: run the
   protocol (`crypto.secagg`) with it as the input, which sends only masked
   vectors and sealed shares. Training rounds also report the training cost
   (PeerStats);
3. RoundEnd: append the round to the local log (`rounds.csv`); in a SCAFFOLD
   round that committed with this peer's vector in its sum (`included`),
   adopt the new control variate (`control.csv`): a round this peer dropped
   out of, or one that aborted, leaves it unchanged.
"""

from __future__ import annotations

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
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.crypto.secagg.peer import PeerSession
from fedd.daemon.transport.messages.rounds import Decline, RoundEnd, RoundStart
from fedd.daemon.transport.messages.uploads import PeerStats, PlainContribution
from fedd.daemon.transport.wire import WireMessage
from fedd.learner.holdout import Split
from fedd.peer.config import PeerConfig, refusal
from fedd.peer.state import PeerRoundRow, PeerState
from fedd.peer.work import Job, LocalWork

__all__ = ["PeerRound", "PeerRounds"]

log = logging.getLogger("fedd.peer")

_FAULT_TRIGGERS = {Roster: "share-keys", ForwardedShares: "masked-input", UnmaskRequest: "unmask"}
_FAULT_EXIT = 3
_MODELS_KEPT = 8  # models of recent rounds this peer took part in, for scoring requests


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
    control: tuple[float, ...] | None = None  # SCAFFOLD: adopted if the round includes it
    parameters: tuple[str, ...] = ()  # the model's: bias, then the features
    status: str = "running"
    reason: str = ""


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

    def shutdown(self, *, wait: bool = False) -> None:
        self._work.shutdown(wait=wait)

    def on_round_start(self, msg: RoundStart, peer_id: PeerId, data: Split | None) -> None:
        if self.current is not None and self.current.status == "running":
            log.info("round %d superseded by round %d", self.current.number, msg.round)
        self.rounds_seen += 1
        self._fault("training", peer_id)
        for number, model in list(self._models.items()):
            if model is None:  # the first model presented after round `number`
                self._models[number] = msg.model
        self.current = PeerRound(msg.round, msg)
        reason = refusal(msg, self.config.require, self.config.signing, peer_id)
        if reason is None and msg.kind == "statistics" and self.state.statistics_given(msg.run):
            reason = (
                f"this peer already gave its feature statistics to run {msg.run}; "
                "it gives them once per run"
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
            if self.current is not None and self.current.number == msg.round:
                self.current.status, self.current.reason = "failed", "no data loaded"
            return
        eligible = [self._models.get(e.model_round) == e.params for e in msg.evals]
        try:
            control = self.state.control(msg.run, len(msg.model)) if msg.control else ()
        except ValueError as exc:  # not of this run's model: sit the round out, say why
            log.error("round %d: %s", msg.round, exc)
            if self.current is not None and self.current.number == msg.round:
                self.current.status, self.current.reason = "failed", str(exc)[:200]
            return
        self.job = self._work.submit(msg, data, eligible, self._wake, control)

    def on_done(self, peer_id: PeerId, data: Split | None) -> None:
        """The job finished: contribute its vector, or start the newer round's job."""
        job, self.job = self.job, None
        assert job is not None
        if self._next_start is not None:  # superseded while working
            self._start_next(data)
            return
        current = self.current
        if current is None or current.number != job.number:
            return  # superseded while working
        try:
            result = job.future.result()
        except Exception as exc:  # the job failed: say so, sit the round out
            log.error("round %d: local %s failed: %s", job.number, current.start.kind, exc)
            current.status, current.reason = "failed", str(exc)[:200]
            return
        msg = job.start
        current.n_samples = result.n_samples
        current.train_s, current.cpu_s, current.train_loss = (
            result.train_s,
            result.cpu_s,
            result.loss,
        )
        current.local_roc_auc = result.local_roc_auc
        current.control = result.control
        if data is not None:
            current.parameters = ("bias", *data.train.features)
        if msg.kind == "training":
            # The round's own run id: the agent's is "" until a Welcome arrives.
            n = 0 if msg.secagg is not None else result.n_samples
            self._send(PeerStats(msg.run, job.number, n, result.train_s, result.cpu_s))
        if msg.secagg is None:
            self._record_statistics(msg, result.n_samples)
            self._send(PlainContribution(msg.run, job.number, result.vector))
            return
        current.n_rows = result.n_samples
        self._fault("advertise-keys", peer_id)
        try:
            signing = self.config.signing if msg.secagg.active else None
            current.session = PeerSession(
                msg.secagg,
                peer_id,
                result.vector,
                signing_key=signing.key if signing else None,
                trusted=signing.trusted if signing else None,
            )
        except ProtocolError as exc:
            log.error("round %d: cannot take part: %s", job.number, exc)
            current.status, current.reason = "failed", str(exc)[:200]
            return
        for out in current.session.start():
            self._send(out)

    def on_protocol(self, msg: object, peer_id: PeerId) -> None:
        current = self.current
        number = getattr(msg, "round", None)
        if current is None or current.session is None or current.number != number:
            log.info("dropped %s for round %s (no such round here)", type(msg).__name__, number)
            return
        stage = _FAULT_TRIGGERS.get(type(msg))
        if stage is not None:
            self._fault(stage, peer_id)
        try:
            replies = current.session.receive(msg)  # type: ignore[arg-type]
        except (ProtocolError, CryptoCheckFailed) as exc:
            log.warning("round %d: left the protocol: %s", current.number, exc)
            return
        if any(type(out) is MaskedInput for out in replies):
            self._record_statistics(current.start, current.n_rows)
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

    def on_round_end(self, msg: RoundEnd) -> None:
        current = self.current
        if current is None or current.number != msg.round:
            return
        status = msg.status if current.status == "running" else current.status
        if current.start.kind == "training" and status == "ok":
            self._models[current.number] = None
            for old in sorted(self._models)[:-_MODELS_KEPT]:
                del self._models[old]
        if msg.included and current.control is not None:
            self.state.adopt_control(msg.run, msg.round, current.parameters, current.control)
        self.state.log_round(
            PeerRoundRow(
                round=current.number,
                kind=current.start.kind,
                mode=current.start.mode,
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
            "round %d %s %s (local roc_auc before training %.4f, %.2fs training)",
            current.number,
            current.start.kind,
            status,
            current.local_roc_auc,
            current.train_s,
        )
        self.current = None

    def _fault(self, stage: str, peer_id: PeerId) -> None:
        """Testing aid: die abruptly at `stage` of the first round, as if killed."""
        if self.config.fault_stage == stage and self.rounds_seen == 1:
            print(
                f"fedd: fault injection: peer {peer_id} exits at {stage}",
                file=sys.stderr,
                flush=True,
            )
            os._exit(_FAULT_EXIT)
