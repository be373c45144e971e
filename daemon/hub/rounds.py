"""One FedAvg round at the hub, plain or secure, as a sans-IO runner.

Both runners take the participants' messages (`receive`), losses (`drop`)
and the clock (`on_timeout`), return what to send, and end with a
`RoundOutcome`: the sample-weighted mean of the participants' model deltas,
or the reason the round aborted (then the global model stays as it was).

- `PlainRound`: each peer uploads (n_samples, delta) in the clear.
- `SecureRound`: each peer uploads [w, w*delta] fixed-point encoded and
  masked (crypto.secagg); the hub learns only the sums, from which the
  weighted mean follows. The weight w is the peer's sample count, capped at
  the encoding's max_weight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import CryptoCheckFailed, RemoteProtocolError, RoundAborted
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import HubSession, Send
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.crypto.secagg.params import RoundParams
from fedd.daemon.transport.messages.rounds import PlainUpdate

__all__ = ["PlainRound", "RoundOutcome", "RoundRunner", "SecureRound"]


@dataclass
class RoundOutcome:
    """How a round ended. `mean_delta` is None exactly when it aborted."""

    status: str
    reason: str
    participants: tuple[PeerId, ...]
    survivors: tuple[PeerId, ...]
    mean_delta: list[float] | None
    weight_sum: int
    stage_seconds: dict[str, float] = field(default_factory=dict)


class RoundRunner(Protocol):
    """What the hub daemon needs from a round, whatever its mode."""

    @property
    def deadline(self) -> float: ...

    @property
    def finished(self) -> bool: ...

    @property
    def stage(self) -> str: ...

    def receive(self, sender: PeerId, msg: object, now: float) -> list[Send]: ...

    def drop(self, peer: PeerId, now: float, reason: str) -> list[Send]: ...

    def on_timeout(self, now: float) -> list[Send]: ...

    def abort(self, reason: str, now: float) -> list[Send]: ...

    def outcome(self) -> RoundOutcome: ...


class PlainRound:
    """Plain FedAvg: collect every participant's PlainUpdate until all answered or the deadline."""

    def __init__(
        self,
        run: str,
        round: int,
        participants: tuple[PeerId, ...],
        n_params: int,
        *,
        now: float,
        timeout: float,
        min_updates: int,
    ) -> None:
        self.run, self.round = run, round
        self.participants = participants
        self.n_params = n_params
        self.min_updates = min_updates
        self._deadline = now + timeout
        self._started = now
        self._pending = set(participants)
        self._updates: dict[PeerId, PlainUpdate] = {}
        self._outcome: RoundOutcome | None = None

    @property
    def deadline(self) -> float:
        return self._deadline

    @property
    def finished(self) -> bool:
        return self._outcome is not None

    @property
    def stage(self) -> str:
        return "done" if self.finished else "train_upload"

    def receive(self, sender: PeerId, msg: object, now: float) -> list[Send]:
        """Accept one PlainUpdate. Raises RemoteProtocolError for anything else."""
        if self.finished or sender not in self._pending:
            raise RemoteProtocolError(f"{type(msg).__name__} from {sender!r} not expected now")
        if type(msg) is not PlainUpdate:
            raise RemoteProtocolError(f"{type(msg).__name__} not allowed in a plain round")
        if msg.run != self.run or msg.round != self.round:
            raise RemoteProtocolError(f"update for round {msg.round}, this is {self.round}")
        if len(msg.delta) != self.n_params:
            raise RemoteProtocolError(
                f"update has {len(msg.delta)} parameters, the model has {self.n_params}"
            )
        self._updates[sender] = msg
        self._pending.discard(sender)
        if not self._pending:
            self._finish(now)
        return []

    def drop(self, peer: PeerId, now: float, reason: str) -> list[Send]:
        if not self.finished and peer in self._pending:
            self._pending.discard(peer)
            if not self._pending:
                self._finish(now)
        return []

    def on_timeout(self, now: float) -> list[Send]:
        if not self.finished and now >= self._deadline:
            self._pending.clear()
            self._finish(now)
        return []

    def abort(self, reason: str, now: float) -> list[Send]:
        if not self.finished:
            self._outcome = self._aborted(reason, now)
        return []

    def outcome(self) -> RoundOutcome:
        if self._outcome is None:
            raise RuntimeError("round still running")
        return self._outcome

    def _aborted(self, reason: str, now: float) -> RoundOutcome:
        return RoundOutcome(
            "aborted",
            reason,
            self.participants,
            tuple(sorted(self._updates)),
            None,
            0,
            {"train_upload": now - self._started},
        )

    def _finish(self, now: float) -> None:
        if len(self._updates) < self.min_updates:
            self._outcome = self._aborted(
                f"only {len(self._updates)} updates arrived, the round needs {self.min_updates}",
                now,
            )
            return
        total = sum(u.n_samples for u in self._updates.values())
        mean = [0.0] * self.n_params
        for update in self._updates.values():
            share = update.n_samples / total
            mean = [m + share * d for m, d in zip(mean, update.delta, strict=True)]
        self._outcome = RoundOutcome(
            "ok",
            "",
            self.participants,
            tuple(sorted(self._updates)),
            mean,
            total,
            {"train_upload": now - self._started},
        )


class SecureRound:
    """A SecAgg/SecAgg+ round: a HubSession over encoded [w, w*delta], then the weighted mean."""

    def __init__(
        self,
        params: RoundParams,
        encoding: FixedPoint,
        *,
        now: float,
        first_stage_timeout: float,
        stage_timeout: float,
    ) -> None:
        self.params = params
        self.encoding = encoding
        self.session = HubSession(
            params, now=now, stage_timeout=stage_timeout, first_stage_timeout=first_stage_timeout
        )
        self._outcome: RoundOutcome | None = None

    @property
    def deadline(self) -> float:
        return self.session.deadline

    @property
    def finished(self) -> bool:
        return self.session.finished

    @property
    def stage(self) -> str:
        return self.session.stage.value

    def receive(self, sender: PeerId, msg: object, now: float) -> list[Send]:
        """Route a protocol message into the session. Raises RemoteProtocolError if rejected."""
        if not isinstance(msg, MESSAGE_TYPES):
            raise RemoteProtocolError(f"{type(msg).__name__} not allowed in a secure round")
        return self.session.receive(sender, msg, now)

    def drop(self, peer: PeerId, now: float, reason: str) -> list[Send]:
        return self.session.drop(peer, now, reason)

    def on_timeout(self, now: float) -> list[Send]:
        return self.session.on_timeout(now)

    def abort(self, reason: str, now: float) -> list[Send]:
        return self.session.abort(reason, now)

    def outcome(self) -> RoundOutcome:
        """Decode the aggregate into the weighted mean (cached); aborted rounds carry the reason."""
        if self._outcome is not None:
            return self._outcome
        participants = self.params.participants
        try:
            result = self.session.result()
        except RoundAborted as exc:
            self._outcome = RoundOutcome(
                "aborted", str(exc), participants, (), None, 0, self.session.stage_seconds
            )
            return self._outcome
        started = time.perf_counter()
        try:
            weight_sum, mean = self.encoding.decode_mean(result.total)
        except CryptoCheckFailed as exc:
            self._outcome = RoundOutcome(
                "aborted",
                f"cannot decode the aggregate: {exc}",
                participants,
                result.survivors,
                None,
                0,
                self.session.stage_seconds,
            )
            return self._outcome
        seconds = self.session.stage_seconds
        seconds["decode"] = time.perf_counter() - started
        self._outcome = RoundOutcome(
            "ok", "", participants, result.survivors, mean, weight_sum, seconds
        )
        return self._outcome
