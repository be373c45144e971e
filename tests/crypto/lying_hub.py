"""A hub that lies, driving real peer sessions through one round (tests only).

`LyingHub` runs a round with an honest `HubSession` doing the routing and
the attacker standing between it and the peers, as a hub can: it drops what
a peer sends (as if the peer had gone), rewrites or withholds what the hub
sends, stops the honest routing at a stage of its choice to talk to the
peers itself, and reads everything that passes. Corrupt peers are sessions
whose secrets the attacker holds: their keys and every share they hold.

`guess(u)` is the attacker's best reconstruction of peer u's input from
all it has seen: u's masked input minus every mask it can compute (the self
mask from t revealed shares of b_u, each pair mask from a revealed or
corrupt s_sk). `assert_not_recovered` checks that this guess is neither
the input nor close to it, lane by lane.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence

from fedd.crypto import shamir
from fedd.crypto.errors import CryptoCheckFailed, ParameterError, ProtocolError
from fedd.crypto.keys import AgreementKey
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import HubSession
from fedd.crypto.secagg.masks import MaskSeeds, pair_mask_seed, self_mask_seed
from fedd.crypto.secagg.messages import Message, Send
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert
from fedd.crypto.secagg.messages.consistency import (
    ConsistencyRequest,
    ConsistencySignature,
    SignedBy,
)
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import RoundParams
from fedd.crypto.secagg.peer import PeerSession, PeerStage
from fedd.crypto.signing import SigningKey
from tests.crypto.secagg_helpers import seeded

__all__ = ["Cohort", "LyingHub", "assert_not_recovered"]

# What a peer raises when it refuses a message or a round; it then stays silent.
_REFUSALS = (ProtocolError, CryptoCheckFailed, ParameterError)


class Cohort:
    """The long-term signing keys of a round's participants, each trusting all the others."""

    def __init__(self, participants: Sequence[PeerId], *, seed: int = 0) -> None:
        self.keys = {
            p: SigningKey.generate(seeded(10_000 + seed * 1000 + i))
            for i, p in enumerate(participants)
        }
        self.trusted = {p: key.public for p, key in self.keys.items()}


class LyingHub:
    """One round: peer sessions, the honest hub's routing, and the attacker in between."""

    def __init__(
        self,
        params: RoundParams,
        inputs: dict[PeerId, bytes],
        cohort: Cohort,
        *,
        seed: int,
        corrupt: Iterable[PeerId] = (),
    ) -> None:
        self.params = params
        self.corrupt = frozenset(corrupt)
        self.cohort = cohort
        self.hub = HubSession(params, now=0.0, stage_timeout=10.0)
        self.clock = 0.0
        self.peers: dict[PeerId, PeerSession] = {}
        self.declined: dict[PeerId, str] = {}
        for i, p in enumerate(params.participants):
            try:
                self.peers[p] = PeerSession(
                    params,
                    p,
                    inputs[p],
                    seeded(seed * 1000 + i),
                    signing_key=cohort.keys[p] if params.active else None,
                    trusted=cohort.trusted if params.active else None,
                )
            except _REFUSALS as exc:
                self.declined[p] = str(exc)
        # Everything the peers sent (the hub sees it all), and what reached each peer.
        self.sent: list[tuple[PeerId, Message]] = []
        self.delivered: list[tuple[PeerId, Message]] = []
        self.refused: dict[PeerId, str] = {}
        # The corrupt peers' secrets, as the attacker learns them.
        self._corrupt_s_key: dict[PeerId, AgreementKey] = {}
        self._corrupt_held: dict[PeerId, dict[PeerId, tuple[shamir.Share, shamir.Share]]] = {}
        # The attacker's hands on the wires.
        self.drop_from: Callable[[PeerId, Message], bool] = lambda sender, msg: False
        self.rewrite_from: Callable[[PeerId, Message], Message] = lambda sender, msg: msg
        self.rewrite_to: Callable[[PeerId, Message], Message | None] = lambda to, msg: msg
        self.stopped: list[Send] = []

    # -- the honest routing, tampered with ------------------------------------

    def run(self, *, stop_at: type | None = None) -> None:
        """Route until the hub finishes, or until it first sends a `stop_at` message
        (kept in `stopped`, undelivered: the attacker takes over from there)."""
        outbox = [(p, m) for p, session in self.peers.items() for m in self._start(p, session)]
        while not self.hub.finished:
            sends: list[Send] = []
            for sender, original in outbox:
                msg = self.rewrite_from(sender, original)
                self.sent.append((sender, msg))
                if self.drop_from(sender, msg):
                    continue
                try:
                    sends += self.hub.receive(sender, msg, self.clock)
                except _REFUSALS as exc:
                    self.refused[sender] = str(exc)
                    sends += self.hub.drop(sender, self.clock, f"excluded: {exc}")
            outbox = []
            if not sends:
                self.clock = self.hub.deadline
                sends = self.hub.on_timeout(self.clock)
            if stop_at is not None and any(type(s.msg) is stop_at for s in sends):
                self.stopped = [s for s in sends if type(s.msg) is stop_at]
                sends = [s for s in sends if type(s.msg) is not stop_at]
                for send in sends:
                    outbox += self.deliver(send.to, send.msg)
                return
            for send in sends:
                outbox += self.deliver(send.to, send.msg)

    def deliver(self, to: PeerId, msg: Message) -> list[tuple[PeerId, Message]]:
        """Hand `msg` (rewritten by the attacker) to peer `to`; returns what it answers."""
        rewritten = self.rewrite_to(to, msg)
        session = self.peers.get(to)
        if rewritten is None or session is None:
            return []
        if session.stage in (PeerStage.DONE, PeerStage.ABORTED):
            return []
        self.delivered.append((to, rewritten))
        try:
            replies = session.receive(rewritten)
        except _REFUSALS:
            return []
        finally:
            self._learn(to, session)
        return [(to, m) for m in replies]

    def _start(self, p: PeerId, session: PeerSession) -> list[Message]:
        out = session.start()
        self._learn(p, session)
        return out

    def _learn(self, p: PeerId, session: PeerSession) -> None:
        """A corrupt peer tells the attacker its secrets as soon as it has them."""
        if p not in self.corrupt:
            return
        if session._s_key is not None:
            self._corrupt_s_key[p] = session._s_key
        self._corrupt_held.setdefault(p, {}).update(session._held)

    # -- the attacker talking to peers itself ----------------------------------

    def sign(self, peer: PeerId, survivors: Sequence[PeerId]) -> SignedBy | None:
        """Show `peer` this survivor set; its consistency signature, if it gives one.

        A corrupt peer signs as many sets as the attacker likes.
        """
        p = self.params
        session = self.peers.get(peer)
        if peer in self.corrupt and session is not None and session.stage is PeerStage.AWAIT_UNMASK:
            session.stage = PeerStage.AWAIT_CONSISTENCY
        replies = self.deliver(peer, ConsistencyRequest(p.run, p.round, tuple(survivors)))
        for _, reply in replies:
            if isinstance(reply, ConsistencySignature):
                self.sent.append((peer, reply))
                return SignedBy(peer, reply.signature)
        return None

    def unmask(
        self, peer: PeerId, survivors: Sequence[PeerId], signatures: Sequence[SignedBy]
    ) -> UnmaskShares | None:
        """Ask `peer` to unmask `survivors`; the shares it releases, if any."""
        p = self.params
        request = UnmaskRequest(p.run, p.round, tuple(survivors), len(survivors), tuple(signatures))
        for sender, reply in self.deliver(peer, request):
            if isinstance(reply, UnmaskShares):
                self.sent.append((sender, reply))
                return reply
        return None

    def signatures_from(self, signers: Iterable[PeerId]) -> list[SignedBy]:
        """Every consistency signature the given peers sent so far."""
        chosen = set(signers)
        return [
            SignedBy(sender, msg.signature)
            for sender, msg in self.sent
            if isinstance(msg, ConsistencySignature) and sender in chosen
        ]

    def partners(self, u: PeerId) -> list[PeerId]:
        """The peers whose shares reached u: those it masks against."""
        return sorted(
            {
                s.peer
                for to, msg in self.delivered
                if to == u and isinstance(msg, ForwardedShares)
                for s in msg.shares
            }
        )

    # -- what it all reveals ---------------------------------------------------

    def guess(self, u: PeerId) -> bytes | None:
        """The attacker's best reconstruction of u's input; None if u sent no masked input."""
        p = self.params
        masked = [m.y for sender, m in self.sent if sender == u and isinstance(m, MaskedInput)]
        if not masked:
            return None
        adverts = {s: m for s, m in self.sent if isinstance(m, KeyAdvert)}
        seeds = MaskSeeds()
        b_u = self._secret(u, which=1)
        if b_u is not None:
            seeds.minus.append(self_mask_seed(p, b_u, u))
        s_key_u = self._s_key(u)
        for v in self.partners(u):
            if v == u:
                continue
            s_key_v = self._s_key(v)
            if s_key_v is not None:
                seed = pair_mask_seed(p, s_key_v, v, u, adverts[u].s_pk)
            elif s_key_u is not None:
                seed = pair_mask_seed(p, s_key_u, u, v, adverts[v].s_pk)
            else:
                continue
            # u added its pair mask with v when u < v and subtracted it otherwise.
            (seeds.minus if u < v else seeds.plus).append(seed)
        acc = VectorSum(p.dim, p.width)
        acc.add(masked[0])
        seeds.apply(acc, p)
        return acc.to_bytes()

    def _s_key(self, owner: PeerId) -> AgreementKey | None:
        if owner in self._corrupt_s_key:
            return self._corrupt_s_key[owner]
        secret = self._secret(owner, which=0)
        return AgreementKey.from_private_bytes(secret) if secret is not None else None

    def _secret(self, owner: PeerId, *, which: int) -> bytes | None:
        """s_sk (which=0) or b (which=1) of `owner`, if t shares of it were seen."""
        p = self.params
        shares: dict[int, shamir.Share] = {}
        for sender, msg in self.sent:
            if not isinstance(msg, UnmaskShares):
                continue
            for revealed in msg.s_shares if which == 0 else msg.b_shares:
                if revealed.owner == owner:
                    x = p.x_of(sender)
                    shares[x] = shamir.Share.from_value_bytes(x, revealed.value)
        for held in self._corrupt_held.values():
            if owner in held:
                share = held[owner][which]
                shares[share.x] = share
        if len(shares) < p.t:
            return None
        try:
            return shamir.combine(sorted(shares.values(), key=lambda s: s.x)[: p.t], t=p.t)
        except (CryptoCheckFailed, ValueError):
            return None


def assert_not_recovered(guess: bytes | None, x: bytes, width: int) -> None:
    """The attacker's guess is not u's input, not even approximately.

    A lane counts as recovered when the guess is within 2^(bits-8) of the
    input, a 256th of the lane's range; a guess that still carries one
    unknown mask is uniformly random and lands that close once in 128 lanes,
    so a quarter of the lanes that close happens by chance about once in
    10^5 tries of 16 lanes, and an exact or close reconstruction gets all.
    """
    if guess is None:
        return
    bits = 8 * width
    code = {4: "I", 8: "Q"}[width]
    count = len(x) // width
    half, modulus, near = 1 << (bits - 1), 1 << bits, 1 << (bits - 8)
    pairs = zip(
        struct.unpack(f"<{count}{code}", guess), struct.unpack(f"<{count}{code}", x), strict=True
    )
    recovered = sum(abs((g - v + half) % modulus - half) < near for g, v in pairs)
    assert recovered <= count // 4, (
        f"the attacker reconstructed {recovered} of {count} lanes of the victim's input"
    )
