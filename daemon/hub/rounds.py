"""One round at the hub, plain or secure, as a sans-IO runner.

Both runners take the participants' messages (`receive`), losses (`drop`)
and the clock (`on_timeout`), return what to send, and end with a
`RoundOutcome`: the lane-wise sum of the survivors' vectors (whose shape,
the round's `daemon.transport.contribution.Layout`, says what it holds), or
the reason the round aborted.

- `PlainRound`: each peer sends its vector in the clear (PlainContribution).
- `SecureRound`: each peer's vector is masked (crypto.secagg); the hub learns
  only the sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fedd.crypto.errors import RemoteProtocolError, RoundAborted
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import HubSession
from fedd.crypto.secagg.messages import MESSAGE_TYPES, Send
from fedd.crypto.secagg.params import RoundParams
from fedd.daemon.transport.contribution import Layout
from fedd.daemon.transport.messages.rounds import RoundStart
from fedd.daemon.transport.messages.uploads import PeerStats, PlainContribution

__all__ = ["PlainRound", "RoundOutcome", "RoundRunner", "RunningRound", "SecureRound"]


@dataclass
class RoundOutcome:
    """How a round ended. `total` (the survivors' sum) is None exactly when it aborted."""

    status: str
    reason: str
    participants: tuple[PeerId, ...]
    survivors: tuple[PeerId, ...]
    total: bytes | None
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


@dataclass
class RunningRound:
    """The running round at the hub: what was asked, its runner, and its bookkeeping."""

    number: int
    start: RoundStart
    runner: RoundRunner
    participants: frozenset[PeerId]
    started_at: float
    started: float
    cpu_started: float
    bytes_in: int = 0
    bytes_out: int = 0
    upload: dict[PeerId, int] = field(default_factory=dict)
    stats: dict[PeerId, PeerStats] = field(default_factory=dict)


class PlainRound:
    """Collect every participant's PlainContribution until all answered or the deadline."""

    def __init__(
        self,
        run: str,
        round: int,
        participants: tuple[PeerId, ...],
        layout: Layout,
        *,
        now: float,
        timeout: float,
        min_updates: int,
    ) -> None:
        self.run, self.round = run, round
        self.participants = participants
        self.layout = layout
        self.min_updates = min_updates
        self._deadline = now + timeout
        self._started = now
        self._pending = set(participants)
        self._sum = VectorSum(layout.lanes, layout.mod_bits // 8)
        self._senders: list[PeerId] = []
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
        """Accept one PlainContribution. Raises RemoteProtocolError for anything else."""
        if self.finished or sender not in self._pending:
            raise RemoteProtocolError(f"{type(msg).__name__} from {sender!r} not expected now")
        if type(msg) is not PlainContribution:
            raise RemoteProtocolError(f"{type(msg).__name__} not allowed in a plain round")
        if msg.run != self.run or msg.round != self.round:
            raise RemoteProtocolError(f"contribution for round {msg.round}, this is {self.round}")
        if len(msg.vector) != self.layout.nbytes:
            raise RemoteProtocolError(
                f"contribution has {len(msg.vector)} bytes, the round's layout {self.layout.nbytes}"
            )
        self._sum.add(msg.vector)
        self._senders.append(sender)
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
            tuple(sorted(self._senders)),
            None,
            {"train_upload": now - self._started},
        )

    def _finish(self, now: float) -> None:
        if len(self._senders) < self.min_updates:
            self._outcome = self._aborted(
                f"only {len(self._senders)} contributions arrived, the round needs "
                f"{self.min_updates}",
                now,
            )
            return
        self._outcome = RoundOutcome(
            "ok",
            "",
            self.participants,
            tuple(sorted(self._senders)),
            self._sum.to_bytes(),
            {"train_upload": now - self._started},
        )


class SecureRound:
    """A SecAgg/SecAgg+ round: a HubSession over the peers' masked vectors."""

    def __init__(
        self,
        params: RoundParams,
        *,
        now: float,
        first_stage_timeout: float,
        stage_timeout: float,
    ) -> None:
        self.params = params
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
        """The survivors' sum (cached); aborted rounds carry the reason."""
        if self._outcome is not None:
            return self._outcome
        participants = self.params.participants
        seconds = _stage_seconds(self.session.stage_seconds)
        try:
            result = self.session.result()
        except RoundAborted as exc:
            self._outcome = RoundOutcome("aborted", str(exc), participants, (), None, seconds)
            return self._outcome
        self._outcome = RoundOutcome(
            "ok", "", participants, result.survivors, result.total, seconds
        )
        return self._outcome


def _stage_seconds(seconds: dict[str, float]) -> dict[str, float]:
    """A session's seconds by stage as perf_log.csv keeps them: the peers drawing the
    graph seed (seed-reveal, seed-recovery) count as part of advertise-keys."""
    out: dict[str, float] = {}
    for stage, s in seconds.items():
        key = "advertise-keys" if stage.startswith("seed-") else stage
        out[key] = out.get(key, 0.0) + s
    return out
