"""A peer's rounds: take part or decline, train, upload, run the protocol, log.

`PeerRounds` holds the running round and its local training job; the
agent's loop owns the socket, hands in each round message and gives it a
`send` function. A round:

1. RoundStart: decline (with the reason) if this peer's requirements do not
   hold; otherwise compute the global model's ROC-AUC on the local rows,
   train `epochs` epochs from the global model, and report the training cost;
2. plain rounds: upload (n_samples, delta); secure rounds: encode
   [w, w*delta] in fixed point and run the protocol (`crypto.secagg`), which
   sends only masked vectors and sealed shares;
3. RoundEnd: append the round to the local log (`rounds.csv`).
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
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.crypto.secagg.peer import PeerSession
from fedd.daemon.transport.messages.rounds import (
    Decline,
    PeerStats,
    PlainUpdate,
    RoundEnd,
    RoundStart,
)
from fedd.daemon.transport.wire import WireMessage
from fedd.learner.dataset import Dataset
from fedd.peer.config import PeerConfig, refusal
from fedd.peer.state import PeerRoundRow, PeerState
from fedd.peer.training import LocalTrainer, TrainingJob

__all__ = ["PeerRound", "PeerRounds"]

log = logging.getLogger("fedd.peer")

_FAULT_TRIGGERS = {Roster: "share-keys", ForwardedShares: "masked-input", UnmaskRequest: "unmask"}
_FAULT_EXIT = 3


@dataclass
class PeerRound:
    """The running round, for its row in rounds.csv."""

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
        self.training: TrainingJob | None = None
        self._next_start: RoundStart | None = None  # waits for the running training
        self.rounds_seen = 0
        self._wake = wake  # runs in the training thread when a job finishes
        self._trainer = LocalTrainer()

    def shutdown(self, *, wait: bool = False) -> None:
        self._trainer.shutdown(wait=wait)

    def on_round_start(self, msg: RoundStart, peer_id: PeerId, data: Dataset | None) -> None:
        if self.current is not None and self.current.status == "running":
            log.info("round %d superseded by round %d", self.current.number, msg.round)
        self.rounds_seen += 1
        self._fault("training", peer_id)
        self.current = PeerRound(msg.round, msg.mode)
        reason = refusal(msg, self.config.require, self.config.signing, peer_id)
        if reason is not None:
            log.warning("round %d: declined: %s", msg.round, reason)
            self.current.status, self.current.reason = "declined", reason[:200]
            self._send(Decline(msg.run, msg.round, reason[:400]))
            return
        # One training at a time, and only the newest round's waits for it: a
        # burst of RoundStarts must not queue a training run (and a model) each.
        self._next_start = msg
        if self.training is None:
            self._train_next(data)

    def _train_next(self, data: Dataset | None) -> None:
        msg, self._next_start = self._next_start, None
        assert msg is not None  # set by the caller
        if data is None:  # registered, but the shard never loaded
            if self.current is not None and self.current.number == msg.round:
                self.current.status, self.current.reason = "failed", "no data loaded"
            return
        self.training = self._trainer.submit(msg, data, self._wake)

    def on_trained(self, peer_id: PeerId, data: Dataset | None) -> None:
        """The training job finished: upload its update, or start the newer round's."""
        job, self.training = self.training, None
        assert job is not None
        if self._next_start is not None:  # superseded while training
            self._train_next(data)
            return
        current = self.current
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
        # The round's own run id: the agent's is "" until a Welcome arrives.
        self._send(
            PeerStats(msg.run, job.number, 0 if secure else current.n_samples, train_s, cpu_s)
        )
        if not secure:
            self._send(PlainUpdate(msg.run, job.number, current.n_samples, tuple(delta)))
            return
        assert msg.secagg is not None and msg.encoding is not None
        self._fault("advertise-keys", peer_id)
        x = msg.encoding.encode(delta, min(current.n_samples, msg.encoding.max_weight))
        try:
            signing = self.config.signing if msg.secagg.active else None
            current.session = PeerSession(
                msg.secagg,
                peer_id,
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
        for out in replies:
            self._send(out)

    def on_round_end(self, msg: RoundEnd) -> None:
        current = self.current
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
