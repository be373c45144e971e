"""One peer's side of one secure aggregation round, as a sans-IO state machine.

Theory of operation
-------------------
A `PeerSession` is built per round with the round's public parameters, the
peer's id, its encoded input x_u (packed, `params.vector_size` bytes) and
its `Floor`: parameters weaker than the floor are refused at construction
(`crypto.secagg.shape`), whatever the hub says. The caller sends what
`start()` returns to the hub, then feeds every message from the hub to
`receive()` and sends what it returns, in order. The session never touches
sockets, files, clocks or the global RNG; its randomness comes from the
`random_bytes` callable (default `os.urandom`).

    NEW --start()--> AWAIT_ROSTER --Roster--> AWAIT_SHARES --ForwardedShares-->
    AWAIT_UNMASK --UnmaskRequest--> DONE

Active rounds (Bonawitz et al. 2017, section 6.3: the hub may lie) differ in
four places. The advertisement is signed with the peer's long-term Ed25519
key over the session (`crypto.secagg.signed`), and the roster lists every
advertisement of U1, each of which must verify under the key trusted for
its peer id, so the hub can neither invent peers nor swap keys, and every
peer holds the same transcript. With a sparse graph the peers then draw its
seed (`crypto.secagg.seed`): AWAIT_SEED, between the roster and the shares.
The peer masks only if the neighbours whose shares reached it are enough
that no t holders of its shares can unmask it alone
(`crypto.secagg.vouching.masking_is_safe`). And after masking it waits in
AWAIT_CONSISTENCY for the hub's U3, signs it within the transcript, and
unmasks only if the UnmaskRequest names exactly the U3 it signed and
carries at least min_survivors valid signatures of participants over that
same set and transcript; with min_survivors > (n + corrupt)/2 no second set
can gather as many, so no honest peer reveals b_u while another reveals
s_sk_u, and signatures from any other run, even of this same round, never
count.

A `RoundAbort` from the hub in any waiting stage ends the session in ABORTED
without error. Any message not allowed in the current stage, and any
message that fails a check, raises and leaves the session ABORTED: the
peer then discards its secrets and takes no further part in the round.

Glossary (Bonawitz et al. 2017, section 4):
    c_sk, c_pk   X25519 pair for sealing shares (per round)
    s_sk, s_pk   X25519 pair whose agreements seed the pair masks (per round)
    b_u          32 random bytes seeding u's self mask
    N(u)         u's neighbours in the round's graph; u's shares are held by
                 N(u) and u itself, any t of them reconstruct
    U1, U2, U3   peers that completed stages 0, 1 and 2
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from typing import Any

from fedd.crypto import aead, shamir
from fedd.crypto.errors import CryptoCheckFailed, LocalProtocolError, RemoteProtocolError
from fedd.crypto.keys import AgreementKey
from fedd.crypto.lanes import VectorSum
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.masks import MaskSeeds, self_mask_seed, share_key
from fedd.crypto.secagg.messages import Message
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert, PeerKeys, Roster
from fedd.crypto.secagg.messages.common import RoundAbort
from fedd.crypto.secagg.messages.consistency import ConsistencyRequest, ConsistencySignature
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.seed import SeedNonces, SeedRecovery, SeedReveal, SeedShares
from fedd.crypto.secagg.messages.share_keys import EncryptedShares, ForwardedShares, SealedShare
from fedd.crypto.secagg.messages.unmask import RevealedShare, UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import RoundParams
from fedd.crypto.secagg.seed import SeedDealer, commitment, graph_seed
from fedd.crypto.secagg.shape import Floor
from fedd.crypto.secagg.signed import (
    advert_statement,
    advertised_digest,
    session_digest,
    survivors_statement,
    transcript_digest,
)
from fedd.crypto.secagg.vouching import (
    check_keys,
    check_listed,
    check_survivors,
    count_signatures,
    masking_is_safe,
)
from fedd.crypto.signing import SigningKey

__all__ = ["TRANSITIONS", "PeerSession", "PeerStage"]


class PeerStage(enum.Enum):
    NEW = "new"
    AWAIT_ROSTER = "await-roster"
    AWAIT_SEED = "await-seed"
    AWAIT_SHARES = "await-shares"
    AWAIT_CONSISTENCY = "await-consistency"
    AWAIT_UNMASK = "await-unmask"
    DONE = "done"
    ABORTED = "aborted"


class PeerSession:
    """One peer, one round. Call start(), then feed receive(); send what they return.

    Any exception leaves the session ABORTED. No sockets, clocks or global RNG.
    """

    def __init__(
        self,
        params: RoundParams,
        me: PeerId,
        x: bytes,
        random_bytes: Callable[[int], bytes] = os.urandom,
        *,
        signing_key: SigningKey | None = None,
        trusted: Mapping[PeerId, bytes] | None = None,
        floor: Floor | None = None,
        context: bytes = b"",
    ) -> None:
        """`signing_key` and `trusted` (peer id -> Ed25519 public key) are needed for
        active rounds; `floor` (default `Floor()`) is the weakest round this peer
        takes part in; `context` is what else the round's start said, bound into
        every signature. Raises ParameterError if the parameters are weaker than
        the floor, LocalProtocolError if `me` is not a participant, `x` has the
        wrong size, or an active round lacks the keys."""
        params.x_of(me)
        if type(x) is not bytes or len(x) != params.vector_size:
            raise LocalProtocolError(f"input must be {params.vector_size} packed bytes")
        if params.active and (signing_key is None or trusted is None):
            raise LocalProtocolError(
                "an active round needs this peer's signing key and its peers' trusted keys"
            )
        strangers = sorted(set(params.participants) - set(trusted or {}) - {me})
        if params.active and strangers:
            raise LocalProtocolError(
                f"participants without a trusted signing key: {', '.join(strangers[:5])}"
            )
        strength = (floor or Floor()).check(params)
        self._corrupt_neighbours = strength.corrupt_neighbours
        self._signing_key = signing_key
        self._trusted = dict(trusted or {})
        # Only signatures bind the session; a round without them skips hashing
        # every participant's id.
        self._session = session_digest(params, context) if params.active else b""
        self._transcript = b""
        self._signed: frozenset[PeerId] | None = None
        self.params = params
        self.me = me
        self.stage = PeerStage.NEW
        self.abort_reason: str | None = None
        self.revealed_nonce = False
        self._x = x
        self._random = random_bytes
        self._seed: SeedDealer | None = None
        # The graph of an active SecAgg+ round is known once the peers drew its seed.
        drawn = params.active and params.sparse
        self._neighbours = frozenset() if drawn else params.neighbours(me)
        self._c_key: AgreementKey | None = None
        self._s_key: AgreementKey | None = None
        self._b: bytes | None = None
        self._own: PeerKeys | None = None
        self._listed: dict[PeerId, PeerKeys] = {}
        self._roster: dict[PeerId, PeerKeys] = {}
        # Shares this peer holds: owner -> (share of s_sk_owner, share of b_owner).
        self._held: dict[PeerId, tuple[shamir.Share, shamir.Share]] = {}

    def __repr__(self) -> str:
        return f"PeerSession(me={self.me!r}, round={self.params.round}, stage={self.stage.name})"

    def start(self) -> list[Message]:
        """Stage 0 (Bonawitz: AdvertiseKeys): fresh key pairs and b_u; returns the KeyAdvert.

        In an active SecAgg+ round the advert also commits to this peer's
        graph-seed nonce and deals its shares. Raises LocalProtocolError
        unless the session is NEW.
        """
        if self.stage is not PeerStage.NEW:
            raise LocalProtocolError(f"start() called in {self.stage.name}")
        p = self.params
        try:
            self._c_key = AgreementKey.generate(self._random)
            self._s_key = AgreementKey.generate(self._random)
            self._b = self._random(32)
            signature, committed = b"", b""
            dealt: tuple[SealedShare, ...] = ()
            if p.active and self._signing_key is not None:
                if p.sparse:
                    self._seed = SeedDealer(
                        p, self.me, self._signing_key, self._trusted, self._random
                    )
                    committed, dealt = self._seed.commitment, self._seed.deal(self._random)
                statement = advert_statement(
                    self._session, self.me, self._c_key.public, self._s_key.public, committed
                )
                signature = self._signing_key.sign(statement)
        except BaseException:
            self.stage = PeerStage.ABORTED
            raise
        self.stage = PeerStage.AWAIT_ROSTER
        c_pk, s_pk = self._c_key.public, self._s_key.public
        self._own = PeerKeys(self.me, c_pk, s_pk, signature, committed)
        return [KeyAdvert(p.run, p.round, c_pk, s_pk, signature, committed, dealt)]

    def receive(self, msg: Message) -> list[Message]:
        """Handle one message from the hub; returns the messages to send back.

        Raises LocalProtocolError if the session has ended; RemoteProtocolError
        or CryptoCheckFailed if the message is not acceptable now. Either way an
        exception leaves the session ABORTED.
        """
        if self.stage in (PeerStage.DONE, PeerStage.ABORTED):
            raise LocalProtocolError(f"session is {self.stage.name}")
        handler = TRANSITIONS.get((self.stage, type(msg)))
        try:
            if handler is None:
                raise RemoteProtocolError(f"{type(msg).__name__} not allowed in {self.stage.name}")
            if msg.run != self.params.run or msg.round != self.params.round:
                raise RemoteProtocolError(
                    f"{type(msg).__name__} is for run {msg.run!r} round {msg.round}, "
                    f"not this round ({self.params.round})"
                )
            out: list[Message] = handler(self, msg)
            return out
        except BaseException as exc:
            self.stage = PeerStage.ABORTED
            self.abort_reason = str(exc)
            self._forget()
            raise

    def _forget(self) -> None:
        self._c_key = self._s_key = self._b = None
        self._seed = None
        self._held.clear()

    def _keys(self) -> tuple[AgreementKey, AgreementKey, bytes]:
        if self._c_key is None or self._s_key is None or self._b is None:
            raise LocalProtocolError("keys are gone")
        return self._c_key, self._s_key, self._b

    # Bonawitz et al. 2017, end of AdvertiseKeys: the keys of U1, as the hub relays them.
    def _on_roster(self, msg: Roster) -> list[Message]:
        p = self.params
        if not p.active:
            for entry in msg.keys:
                if entry.peer not in self._neighbours:
                    raise RemoteProtocolError(f"roster lists {entry.peer!r}, not a neighbour")
            check_keys(msg.keys)
            return self._share(msg.keys)
        if self._own is None:
            raise LocalProtocolError("no advertisement of my own")
        check_listed(p, self._session, msg.keys, self._own, self._trusted)
        self._listed = {e.peer: e for e in msg.keys}
        advertised = advertised_digest(self._session, msg.keys)
        if self._seed is None:
            self._transcript = transcript_digest(advertised, None)
            return self._share(tuple(e for e in msg.keys if e.peer in self._neighbours))
        self._transcript = advertised  # until the seed is drawn
        for sealed in msg.seed_shares:
            dealer = self._listed.get(sealed.peer)
            if dealer is not None and dealer.peer != self.me:
                self._seed.hold(dealer.peer, dealer.commitment, sealed.ciphertext)
        self.stage = PeerStage.AWAIT_SEED
        self.revealed_nonce = True
        return [SeedReveal(p.run, p.round, self._seed.nonce)]

    # The graph seed (crypto.secagg.seed): shares of the nonces that did not come.
    def _on_seed_recovery(self, msg: SeedRecovery) -> list[Message]:
        if self._seed is None:
            raise LocalProtocolError("no seed being drawn")
        if any(m not in self._listed for m in msg.missing):
            raise RemoteProtocolError("asked for shares of a nonce outside the roster")
        held = self._seed.shares_of(msg.missing)
        revealed = tuple(RevealedShare(o, s.value_bytes()) for o, s in sorted(held.items()))
        return [SeedShares(self.params.run, self.params.round, revealed)]

    # The graph seed: every listed nonce, then the graph, then ShareKeys.
    def _on_seed_nonces(self, msg: SeedNonces) -> list[Message]:
        p = self.params
        nonces = {n.peer: n.value for n in msg.nonces}
        if nonces.keys() != self._listed.keys():
            raise RemoteProtocolError("the nonces are not those of the roster's peers")
        for peer, nonce in nonces.items():
            if commitment(p, peer, nonce) != self._listed[peer].commitment:
                raise RemoteProtocolError(f"the nonce of {peer!r} is not the one it committed to")
        seed = graph_seed(p, nonces)
        self._transcript = transcript_digest(self._transcript, seed)
        self._neighbours = p.neighbours(self.me, seed)
        return self._share(tuple(e for e in self._listed.values() if e.peer in self._neighbours))

    # Bonawitz et al. 2017, ShareKeys (round 1), peer side.
    def _share(self, roster: tuple[PeerKeys, ...]) -> list[Message]:
        c_key, s_key, b = self._keys()
        p = self.params
        self._roster = {e.peer: e for e in roster}
        holders = sorted([*self._roster, self.me])
        if len(holders) < p.t:
            raise RemoteProtocolError(f"only {len(holders)} share holders, threshold is {p.t}")
        xs = [p.x_of(h) for h in holders]
        s_shares = shamir.split(s_key.private_bytes(), t=p.t, xs=xs, random_bytes=self._random)
        b_shares = shamir.split(b, t=p.t, xs=xs, random_bytes=self._random)
        sealed = []
        for holder, s_share, b_share in zip(holders, s_shares, b_shares, strict=True):
            if holder == self.me:
                self._held[self.me] = (s_share, b_share)
                continue
            key = share_key(p, c_key, self._roster[holder].c_pk, self.me, holder)
            plaintext = s_share.value_bytes() + b_share.value_bytes()
            ciphertext = aead.seal(
                key,
                plaintext,
                sender=self.me,
                recipient=holder,
                run=p.run,
                round=p.round,
                random_bytes=self._random,
            )
            sealed.append(SealedShare(holder, ciphertext))
        self.stage = PeerStage.AWAIT_SHARES
        return [EncryptedShares(p.run, p.round, tuple(sealed))]

    # Bonawitz et al. 2017, MaskedInputCollection (round 2), peer side.
    def _on_forwarded(self, msg: ForwardedShares) -> list[Message]:
        c_key, s_key, b = self._keys()
        p = self.params
        x_me = p.x_of(self.me)
        for sealed in msg.shares:
            sender = sealed.peer
            entry = self._roster.get(sender)
            if entry is None or sender == self.me:
                raise RemoteProtocolError(f"forwarded shares from {sender!r}, not in my roster")
            key = share_key(p, c_key, entry.c_pk, sender, self.me)
            plaintext = aead.unseal(
                key, sealed.ciphertext, sender=sender, recipient=self.me, run=p.run, round=p.round
            )
            size = shamir.VALUE_SIZE
            if len(plaintext) != 2 * size:
                raise RemoteProtocolError(f"share pair from {sender!r} has the wrong size")
            self._held[sender] = (
                shamir.Share.from_value_bytes(x_me, plaintext[:size]),
                shamir.Share.from_value_bytes(x_me, plaintext[size:]),
            )
        if len(self._held) < p.t:
            raise RemoteProtocolError(
                f"only {len(self._held)} holders of my shares remain, threshold is {p.t}"
            )
        partners, dealt = len(self._held) - 1, len(self._roster)
        if p.active and not masking_is_safe(dealt, partners, p.t, self._corrupt_neighbours):
            raise RemoteProtocolError(
                f"the shares of only {partners} of the {dealt} neighbours I shared with "
                f"reached me: masking against so few could expose my input (t={p.t}, up to "
                f"{self._corrupt_neighbours} corrupt neighbours)"
            )
        seeds = MaskSeeds()
        seeds.plus.append(self_mask_seed(p, b, self.me))
        for other in self._held:
            if other != self.me:
                seeds.add_pair(p, s_key, self.me, other, self._roster[other].s_pk)
        acc = VectorSum(p.dim, p.width)
        acc.add(self._x)
        seeds.apply(acc, p)
        self.stage = PeerStage.AWAIT_CONSISTENCY if p.active else PeerStage.AWAIT_UNMASK
        return [MaskedInput(p.run, p.round, acc.to_bytes())]

    # Bonawitz et al. 2017, ConsistencyCheck (round 3), peer side: sign U3.
    def _on_consistency(self, msg: ConsistencyRequest) -> list[Message]:
        p = self.params
        survivors = frozenset(msg.survivors)
        check_survivors(p, survivors, self.me, self._neighbours, self._held)
        if self._signing_key is None:
            raise LocalProtocolError("no signing key")
        self._signed = survivors
        self.stage = PeerStage.AWAIT_UNMASK
        signature = self._signing_key.sign(survivors_statement(self._transcript, survivors))
        return [ConsistencySignature(p.run, p.round, signature)]

    # Bonawitz et al. 2017, Unmasking (round 4), peer side. (Round 3, the
    # consistency check, belongs to the active-adversary variant.)
    def _on_unmask(self, msg: UnmaskRequest) -> list[Message]:
        p = self.params
        survivors = frozenset(msg.survivors)
        if p.active:
            self._check_signatures(msg, survivors)
        else:
            if self.me not in survivors:
                raise RemoteProtocolError("unmask request does not list me as a survivor")
            unknown = survivors - self._held.keys()
            if unknown:
                raise RemoteProtocolError(
                    f"unmask request names {len(unknown)} peers I hold no shares of"
                )
            if msg.n_survivors < p.min_survivors:
                raise RemoteProtocolError(
                    f"only {msg.n_survivors} survivors, the round needs {p.min_survivors}"
                )
        # Survivors get their b share revealed, the dropped their s_sk share;
        # the two sets partition what this peer holds, so no owner gets both.
        b_shares = tuple(
            RevealedShare(owner, shares[1].value_bytes())
            for owner, shares in sorted(self._held.items())
            if owner in survivors
        )
        s_shares = tuple(
            RevealedShare(owner, shares[0].value_bytes())
            for owner, shares in sorted(self._held.items())
            if owner not in survivors
        )
        self.stage = PeerStage.DONE
        self._forget()
        return [UnmaskShares(p.run, p.round, b_shares, s_shares)]

    def _check_signatures(self, msg: UnmaskRequest, survivors: frozenset[PeerId]) -> None:
        """Active rounds: unmask only the U3 this peer signed, vouched for by enough peers."""
        p = self.params
        if survivors != self._signed or msg.n_survivors != len(survivors):
            raise RemoteProtocolError("the unmask request names another survivor set than I signed")
        valid = count_signatures(
            self._transcript, survivors, msg.signatures, self._trusted, p.min_survivors
        )
        if valid < p.min_survivors:
            raise CryptoCheckFailed(
                f"only {valid} valid consistency signatures over the survivor set, "
                f"{p.min_survivors} needed"
            )

    def _on_abort(self, msg: RoundAbort) -> list[Message]:
        self.stage = PeerStage.ABORTED
        self.abort_reason = f"hub aborted the round: {msg.reason}"
        self._forget()
        return []


_WAITING = (
    PeerStage.AWAIT_ROSTER,
    PeerStage.AWAIT_SEED,
    PeerStage.AWAIT_SHARES,
    PeerStage.AWAIT_CONSISTENCY,
    PeerStage.AWAIT_UNMASK,
)

TRANSITIONS: dict[tuple[PeerStage, type], Callable[[PeerSession, Any], list[Message]]] = {
    (PeerStage.AWAIT_ROSTER, Roster): PeerSession._on_roster,
    (PeerStage.AWAIT_SEED, SeedRecovery): PeerSession._on_seed_recovery,
    (PeerStage.AWAIT_SEED, SeedNonces): PeerSession._on_seed_nonces,
    (PeerStage.AWAIT_SHARES, ForwardedShares): PeerSession._on_forwarded,
    (PeerStage.AWAIT_CONSISTENCY, ConsistencyRequest): PeerSession._on_consistency,
    (PeerStage.AWAIT_UNMASK, UnmaskRequest): PeerSession._on_unmask,
    **{(stage, RoundAbort): PeerSession._on_abort for stage in _WAITING},
}
