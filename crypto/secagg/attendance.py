"""Who is still in a hub's round, whom the current stage waits for, and why each peer left.

The hub's session (`crypto.secagg.hub`) keeps one `Attendance` per round. A
peer answers the current stage (`answer`), or leaves the round (`leave`:
gone, timed out, excluded, or not among the survivors a stage closed into,
`settle`), or the whole round ends (`end`). Every departure comes with the
RoundAbort that tells the peer it is out: a slow peer learns it, a dead
one never reads it.
"""

from __future__ import annotations

from collections.abc import Iterable

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages import Send
from fedd.crypto.secagg.messages.common import MAX_REASON, RoundAbort
from fedd.crypto.secagg.params import RoundParams

__all__ = ["Attendance"]


class Attendance:
    """The peers of one round at the hub: still in it, awaited now, answered now, gone."""

    __slots__ = ("_params", "answered", "departed", "in_round", "pending")

    def __init__(self, params: RoundParams) -> None:
        self._params = params
        self.in_round: set[PeerId] = set(params.participants)
        self.pending: set[PeerId] = set(params.participants)
        self.answered: set[PeerId] = set()
        # Why each peer left the round, for the caller's logs.
        self.departed: dict[PeerId, str] = {}

    def answer(self, peer: PeerId) -> None:
        """`peer` answered the current stage."""
        self.pending.discard(peer)
        self.answered.add(peer)

    def expect(self, peers: Iterable[PeerId]) -> None:
        """The next stage waits for `peers`; nobody has answered it yet."""
        self.pending = set(peers)
        self.answered = set()

    def leave(self, peer: PeerId, stage: str, reason: str) -> list[Send]:
        """`peer` is out of the round, in `stage`, for `reason`; the RoundAbort for it."""
        self.pending.discard(peer)
        self.in_round.discard(peer)
        self.departed.setdefault(peer, f"{stage}: {reason}")
        return [self._abort(peer, reason)]

    def settle(self, survivors: frozenset[PeerId], stage: str) -> list[Send]:
        """Everyone still in but not among the closing `stage`'s survivors leaves."""
        sends = []
        for peer in sorted(self.in_round - survivors):
            sends += self.leave(peer, stage, f"did not complete {stage}")
        return sends

    def end(self, reason: str) -> list[Send]:
        """The round is over for everyone still in it: their RoundAborts."""
        sends = [self._abort(peer, reason) for peer in sorted(self.in_round)]
        self.in_round.clear()
        self.pending.clear()
        return sends

    def _abort(self, peer: PeerId, reason: str) -> Send:
        p = self._params
        return Send(peer, RoundAbort(p.run, p.round, reason[:MAX_REASON]))
