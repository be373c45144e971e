"""The hub's side of one secure aggregation round, as a sans-IO state machine.

Theory of operation
-------------------
The hub only routes and decides who is still in: shares travel sealed end
to end between peers, and the hub learns nothing but the sum of the inputs
of the peers that finished stage 2 (U3), and only if at least
`min_survivors` of them did.

Each stage waits for the peers still in the round (the stage's "pending"
set) and closes when all have answered, or when the caller reports the
stage deadline has passed (`on_timeout(now)`), or when the last pending
peer is reported gone (`drop`). Closing a stage decides its survivors and
returns the messages that open the next stage:

    stage              closes into   sends
    ADVERTISE_KEYS     U1            Roster to each v in U1 (keys of N(v) in U1;
                                     active: all of U1, signed)
    SEED_REVEAL        nonces        (active SecAgg+) SeedNonces to each v in U1,
                                     or SeedRecovery for the nonces that did not come
    SEED_RECOVERY      nonces        (if needed) SeedNonces, the missing rebuilt
    SHARE_KEYS         U2            ForwardedShares to each v in U2
    MASKED_INPUT       U3            UnmaskRequest to each v in U3
                                     (active: ConsistencyRequest with all of U3)
    CONSISTENCY        U4            (active only) UnmaskRequest with U3 and the
                                     signatures of U4 over it
    UNMASK             result        nothing: the sum is ready, or the round aborted

In active rounds the hub relays signatures it does not itself check: the
peers verify them against their own trusted keys and refuse to unmask
unless at least min_survivors of them vouch for the same U3. With a sparse
graph the peers draw its seed after stage 0 (`crypto.secagg.seed`); until
then the hub knows no graph. An advertisement of a low-order key is
refused (`crypto.secagg.vouching.check_advert`), so the caller excludes
its sender before anyone computes with the key.

A peer whose secrets could no longer be reconstructed (fewer than t-1 of
its neighbours left with it) is pruned from U1 and U2 before anyone masks
against it (`crypto.secagg.unmasking`). Whenever a survivor set falls below
`min_survivors`, or a needed secret cannot be reconstructed, the session
ends ABORTED and `result()` raises RoundAborted with the reason. Who is
still in, and the RoundAbort each peer that leaves gets, is
`crypto.secagg.attendance`.

A message that fails a check raises RemoteProtocolError (or
CryptoCheckFailed) and changes nothing; the caller decides what to do with
its sender (the daemons `drop` it, which excludes it like a dropout). A peer
reported gone after answering a stage is left out of that stage's survivors
where that is still possible (stages 0 and 1); once its masked input is in
the sum it stays in U3 and its neighbours reveal its self-mask seed. No
sockets, clocks or global RNG in here: time is the `now` argument.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedd.crypto.errors import (
    CryptoCheckFailed,
    LocalProtocolError,
    RemoteProtocolError,
    RoundAborted,
)
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.attendance import Attendance
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages import Message, Send
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert, PeerKeys, Roster
from fedd.crypto.secagg.messages.consistency import (
    ConsistencySignature,
    SignedBy,
)
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.seed import Nonce, SeedNonces, SeedRecovery, SeedReveal, SeedShares
from fedd.crypto.secagg.messages.share_keys import EncryptedShares, ForwardedShares, SealedShare
from fedd.crypto.secagg.messages.unmask import UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import RoundParams
from fedd.crypto.secagg.seed import SeedDraw, graph_seed
from fedd.crypto.secagg.unmasking import (
    RevealedShares,
    check_recoverable,
    check_revealed,
    prune,
    unmask_requests,
)
from fedd.crypto.secagg.vouching import check_advert
from fedd.topology.graph import PeerGraph

__all__ = ["TRANSITIONS", "AggregateResult", "HubSession", "HubStage"]


class HubStage(enum.Enum):
    ADVERTISE_KEYS = "advertise-keys"
    SEED_REVEAL = "seed-reveal"
    SEED_RECOVERY = "seed-recovery"
    SHARE_KEYS = "share-keys"
    MASKED_INPUT = "masked-input"
    CONSISTENCY = "consistency-check"
    UNMASK = "unmask"
    DONE = "done"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """What a completed round yields: the exact sum of the survivors' inputs mod R."""

    total: bytes
    survivors: tuple[PeerId, ...]
    stage_seconds: dict[str, float]


class HubSession:
    """The hub, one round. Feed receive(), drop() and on_timeout(); deliver what they return.

    Ends DONE (then `result()` returns the sum) or ABORTED (then `result()`
    raises RoundAborted). See the module docstring for the rules.
    """

    def __init__(
        self,
        params: RoundParams,
        *,
        now: float,
        stage_timeout: float,
        first_stage_timeout: float | None = None,
    ) -> None:
        """`first_stage_timeout` (default: `stage_timeout`) bounds stage 0, which
        may include the peers' local training."""
        first = stage_timeout if first_stage_timeout is None else first_stage_timeout
        if not (stage_timeout > 0 and first > 0):
            raise ValueError("stage timeouts must be positive")
        self.params = params
        self.stage = HubStage.ADVERTISE_KEYS
        self.stage_timeout = stage_timeout
        self.deadline = now + first
        self.abort_reason: str | None = None
        self._who = Attendance(params)
        self.departed = self._who.departed  # why each peer left, for the caller's logs
        # An active SecAgg+ round's graph is known once the peers drew its seed.
        self._drawn = params.active and params.sparse
        self._graph: PeerGraph[PeerId] = params.graph()
        self._seed = SeedDraw(params)
        self._stage_started = now
        self._stage_seconds: dict[str, float] = {}
        self._keys: dict[PeerId, PeerKeys] = {}
        self._advertised: set[bytes] = set()
        self._sealed: dict[PeerId, dict[PeerId, bytes]] = {}
        self._listed: frozenset[PeerId] = frozenset()  # the U1 the roster told the peers
        self._u1: frozenset[PeerId] = frozenset()
        self._u2: frozenset[PeerId] = frozenset()
        self._u3: frozenset[PeerId] = frozenset()
        self._signatures: dict[PeerId, bytes] = {}
        self._sum = VectorSum(params.dim, params.width)
        self._revealed = RevealedShares()
        self._result: AggregateResult | None = None

    def __repr__(self) -> str:
        return (
            f"HubSession(round={self.params.round}, stage={self.stage.name}, "
            f"pending={len(self._who.pending)}, in_round={len(self._who.in_round)})"
        )

    @property
    def pending(self) -> frozenset[PeerId]:
        """Peers the current stage is still waiting for."""
        return frozenset(self._who.pending)

    @property
    def finished(self) -> bool:
        return self.stage in (HubStage.DONE, HubStage.ABORTED)

    @property
    def stage_seconds(self) -> dict[str, float]:
        """Seconds each closed stage took, by stage name."""
        return dict(self._stage_seconds)

    def result(self) -> AggregateResult:
        """The aggregate. Raises RoundAborted if the round aborted, LocalProtocolError
        while it runs."""
        if self.stage is HubStage.ABORTED:
            raise RoundAborted(self.abort_reason or "aborted")
        if self._result is None:
            raise LocalProtocolError(f"round still in {self.stage.name}")
        return self._result

    def receive(self, sender: PeerId, msg: Message, now: float) -> list[Send]:
        """Handle one message from `sender` (as authenticated by the caller); what to send.

        Raises RemoteProtocolError when the message is rejected (out of stage,
        from a peer not expected now, for another round, or failing a check);
        the session is then unchanged and the caller decides whether to `drop`
        the sender."""
        if self.finished:
            raise RemoteProtocolError(f"{type(msg).__name__} after the round ended", peer=sender)
        if sender not in self._who.pending:
            why = "not in this round" if sender not in self._who.in_round else "not expected now"
            raise RemoteProtocolError(f"{type(msg).__name__} from {sender!r}: {why}", peer=sender)
        if msg.run != self.params.run or msg.round != self.params.round:
            raise RemoteProtocolError(
                f"{type(msg).__name__} from {sender!r} is for round {msg.round} of run {msg.run!r}",
                peer=sender,
            )
        handler = TRANSITIONS.get((self.stage, type(msg)))
        if handler is None:
            raise RemoteProtocolError(
                f"{type(msg).__name__} not allowed in {self.stage.name}", peer=sender
            )
        handler(self, sender, msg)
        self._who.answer(sender)
        return self._close(now) if not self._who.pending else []

    def drop(self, peer: PeerId, now: float, reason: str = "gone") -> list[Send]:
        """`peer` is out of the round (lost heartbeats, disconnected, misbehaved).

        Returns its RoundAbort and, if it was the last one the stage waited
        for, the messages that open the next stage. A no-op for peers already out."""
        if self.finished or peer not in self._who.in_round:
            return []
        sends = self._who.leave(peer, self.stage.value, reason)
        return sends + (self._close(now) if not self._who.pending else [])

    def on_timeout(self, now: float) -> list[Send]:
        """Close the current stage if its deadline has passed; returns what to send."""
        if self.finished or now < self.deadline:
            return []
        sends: list[Send] = []
        for peer in sorted(self._who.pending):
            sends += self._who.leave(peer, self.stage.value, f"timed out in {self.stage.value}")
        return sends + self._close(now)

    def abort(self, reason: str, now: float) -> list[Send]:
        """End the round now (the caller is shutting down); tells the peers still in it."""
        if self.finished:
            return []
        return self._abort(reason)

    def _abort(self, reason: str) -> list[Send]:
        self.stage = HubStage.ABORTED
        self.abort_reason = reason
        sends = self._who.end(reason)
        self._sealed.clear()
        self._revealed.clear()
        return sends

    def _close(self, now: float) -> list[Send]:
        self._stage_seconds[self.stage.value] = now - self._stage_started
        self._stage_started = now
        self.deadline = now + self.stage_timeout
        return _CLOSERS[self.stage](self)

    def _settle(self, survivors: frozenset[PeerId]) -> list[Send]:
        """The closing stage's survivors go on, the rest leave; too few abort the round."""
        sends = self._who.settle(survivors, self.stage.value)
        if len(survivors) < self.params.min_survivors:
            sends += self._abort(
                f"only {len(survivors)} peers completed {self.stage.value}, "
                f"the round needs {self.params.min_survivors}"
            )
        return sends

    # -- handlers: one per (stage, message type); they check, then record --

    # Bonawitz et al. 2017, AdvertiseKeys, server side: collect (c_pk, s_pk).
    def _on_advert(self, sender: PeerId, msg: KeyAdvert) -> None:
        entry = check_advert(self.params, sender, msg, self._advertised)
        if self._drawn:
            self._seed.advertised(sender, msg.commitment, msg.seed_shares)
        self._advertised |= {msg.c_pk, msg.s_pk}
        self._keys[sender] = entry

    # The graph seed (crypto.secagg.seed): each listed peer's nonce, or shares of it.
    def _on_seed_reveal(self, sender: PeerId, msg: SeedReveal) -> None:
        self._seed.revealed(sender, msg.nonce)

    def _on_seed_shares(self, sender: PeerId, msg: SeedShares) -> None:
        self._seed.shares_from(sender, [(s.owner, s.value) for s in msg.shares])

    # ShareKeys, server side: one sealed share pair per neighbour in U1.
    def _on_shares(self, sender: PeerId, msg: EncryptedShares) -> None:
        expected = self._graph.neighbours(sender) & self._listed
        if {s.peer for s in msg.shares} != expected:
            raise RemoteProtocolError(
                f"sealed shares for {len(msg.shares)} peers, expected one for each of its "
                f"{len(expected)} neighbours in the roster",
                peer=sender,
            )
        self._sealed[sender] = {s.peer: s.ciphertext for s in msg.shares}

    # MaskedInputCollection, server side: add y_u into the running sum.
    def _on_input(self, sender: PeerId, msg: MaskedInput) -> None:
        if len(msg.y) != self.params.vector_size:
            raise RemoteProtocolError(
                f"masked input of {len(msg.y)} bytes, expected {self.params.vector_size}",
                peer=sender,
            )
        self._sum.add(msg.y)

    # ConsistencyCheck, server side: collect each survivor's signature over U3.
    def _on_consistency(self, sender: PeerId, msg: ConsistencySignature) -> None:
        self._signatures[sender] = msg.signature

    # Unmasking, server side: b shares of survivors, s_sk shares of the dropped.
    def _on_unmask(self, sender: PeerId, msg: UnmaskShares) -> None:
        check_revealed(self._graph, self._u2, self._u3, sender, msg)
        self._revealed.add(sender, self.params.x_of(sender), msg)

    # -- closers: one per stage ----------------------------------------------

    def _close_advertise(self) -> list[Send]:
        advertised = set(self._keys) & self._who.in_round
        p = self.params
        self._u1 = frozenset(advertised) if self._drawn else prune(self._graph, p.t, advertised)
        self._listed = self._u1
        sends = self._settle(self._u1)
        if self.finished:
            return sends
        everyone = tuple(self._keys[u] for u in sorted(self._u1))
        for v in sorted(self._u1):
            if p.active:  # all of U1, so that every peer signs one transcript
                sealed = self._seed.sealed_for(v, self._u1) if self._drawn else ()
                sends.append(Send(v, Roster(p.run, p.round, everyone, sealed)))
            else:
                keys = tuple(self._keys[u] for u in sorted(self._graph.neighbours(v) & self._u1))
                sends.append(Send(v, Roster(p.run, p.round, keys)))
        self._who.expect(self._u1)
        self.stage = HubStage.SEED_REVEAL if self._drawn else HubStage.SHARE_KEYS
        return sends

    def _close_seed(self) -> list[Send]:
        """The nonces are in (those missing rebuilt first): the seed, the graph, who goes on."""
        p = self.params
        sends: list[Send] = []
        if self.stage is HubStage.SEED_REVEAL:
            sends = self._settle(frozenset(self._who.answered))
            missing = self._seed.missing(self._listed)
            if missing and not self.finished:
                self._who.expect(self._who.in_round)
                self.stage = HubStage.SEED_RECOVERY
                recovery = SeedRecovery(p.run, p.round, missing)
                return sends + [Send(v, recovery) for v in sorted(self._who.in_round)]
        try:
            nonces = {} if self.finished else self._seed.nonces(self._listed)
        except RoundAborted as exc:
            return sends + self._abort(str(exc))
        if self.finished:
            return sends
        self._seed.clear()
        self._graph = p.graph(graph_seed(p, nonces))
        self._u1 = prune(self._graph, p.t, set(self._who.in_round))
        sends += self._settle(self._u1)
        if not self.finished:
            message = SeedNonces(p.run, p.round, tuple(Nonce(u, n) for u, n in nonces.items()))
            sends += [Send(v, message) for v in sorted(self._u1)]
            self._who.expect(self._u1)
            self.stage = HubStage.SHARE_KEYS
        return sends

    def _close_share(self) -> list[Send]:
        self._u2 = prune(self._graph, self.params.t, set(self._sealed) & self._who.in_round)
        sends = self._settle(self._u2)
        if self.finished:
            return sends
        p = self.params
        for v in sorted(self._u2):
            shares = tuple(
                SealedShare(u, self._sealed[u][v])
                for u in sorted(self._graph.neighbours(v) & self._u2)
            )
            sends.append(Send(v, ForwardedShares(p.run, p.round, shares)))
        self._sealed.clear()
        self._who.expect(self._u2)
        self.stage = HubStage.MASKED_INPUT
        return sends

    def _close_input(self) -> list[Send]:
        # A peer whose input is in the sum stays in U3 even if it is gone now.
        self._u3 = frozenset(self._who.answered)
        sends = self._settle(self._u3)
        if self.finished:
            return sends
        try:
            check_recoverable(self._graph, self.params.t, self._u2, self._u3)
        except RoundAborted as exc:
            return sends + self._abort(str(exc))
        p = self.params
        alive = sorted(self._u3 & self._who.in_round)
        sends += [Send(v, m) for v, m in unmask_requests(p, self._graph, self._u3, alive)]
        self.stage = HubStage.CONSISTENCY if p.active else HubStage.UNMASK
        self._who.expect(alive)
        return sends

    def _close_consistency(self) -> list[Send]:
        signers = frozenset(self._who.answered)
        sends = self._settle(signers)
        if self.finished:
            return sends
        p = self.params
        everyone = tuple(sorted(self._u3))
        signatures = tuple(SignedBy(v, self._signatures[v]) for v in sorted(signers))
        alive = sorted(signers & self._who.in_round)
        sends += [
            Send(v, UnmaskRequest(p.run, p.round, everyone, len(everyone), signatures))
            for v in alive
        ]
        self._who.expect(alive)
        self.stage = HubStage.UNMASK
        return sends

    def _close_unmask(self) -> list[Send]:
        p = self.params
        try:
            seeds = self._revealed.mask_seeds(p, self._graph, self._keys, self._u2, self._u3)
        except (RoundAborted, CryptoCheckFailed) as exc:
            # Everyone still in the round has answered; nobody waits for a RoundAbort.
            self._who.in_round.clear()
            return self._abort(str(exc))
        seeds.apply(self._sum, p)
        self._result = AggregateResult(
            total=self._sum.to_bytes(),
            survivors=tuple(sorted(self._u3)),
            stage_seconds=dict(self._stage_seconds),
        )
        self.stage = HubStage.DONE
        self._revealed.clear()
        return []


TRANSITIONS: dict[tuple[HubStage, type], Callable[[HubSession, PeerId, Any], None]] = {
    (HubStage.ADVERTISE_KEYS, KeyAdvert): HubSession._on_advert,
    (HubStage.SEED_REVEAL, SeedReveal): HubSession._on_seed_reveal,
    (HubStage.SEED_RECOVERY, SeedShares): HubSession._on_seed_shares,
    (HubStage.SHARE_KEYS, EncryptedShares): HubSession._on_shares,
    (HubStage.MASKED_INPUT, MaskedInput): HubSession._on_input,
    (HubStage.CONSISTENCY, ConsistencySignature): HubSession._on_consistency,
    (HubStage.UNMASK, UnmaskShares): HubSession._on_unmask,
}

_CLOSERS: dict[HubStage, Callable[[HubSession], list[Send]]] = {
    HubStage.ADVERTISE_KEYS: HubSession._close_advertise,
    HubStage.SEED_REVEAL: HubSession._close_seed,
    HubStage.SEED_RECOVERY: HubSession._close_seed,
    HubStage.SHARE_KEYS: HubSession._close_share,
    HubStage.MASKED_INPUT: HubSession._close_input,
    HubStage.CONSISTENCY: HubSession._close_consistency,
    HubStage.UNMASK: HubSession._close_unmask,
}
