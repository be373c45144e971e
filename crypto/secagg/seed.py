"""The graph seed of an active SecAgg+ round, drawn by the peers: commit, then reveal.

Theory of operation
-------------------
Whoever picks a SecAgg+ round's graph seed picks who neighbours whom, and a
hub that could try seeds would look for one that surrounds a victim with
its colluders. So in active rounds the peers draw it, and nobody chooses it:

1. With its signed KeyAdvert each peer u commits to a fresh 32-byte nonce
   r_u, commit(r_u) = H(label, run, round, u, r_u), and deals Shamir shares
   of r_u (threshold max_corrupt + 1) to every other participant, each
   sealed under a key from the two peers' long-term identities
   (`crypto.signing`): no round key of the holder is known yet.
2. The hub lists U1 and hands every listed peer all the listed adverts and
   the shares sealed for it. From then on no contribution can change: each
   is committed, and each is held in shares by the other listed peers.
3. Each listed peer reveals r_u. For one whose reveal does not come, the
   others reveal their shares of it; any max_corrupt + 1 of them rebuild
   r_u, which must match the commitment, else the round aborts.
4. seed = H(label, run, round, every listed peer's nonce, in peer order).

The corrupt peers fix their nonces before any honest one is revealed (the
commitments hide them, and max_corrupt holders cannot open a share), and
the hub cannot choose which nonces count: all listed ones do, revealed or
rebuilt, the same value either way. What a hub (or a corrupt dealer of bad
shares) can still do is abort a round once it knows the seed and try
again. Each peer bounds that: it takes part in no round of this kind after
MAX_SEED_RETRIES rounds in a row in which it revealed its nonce and then
did not reach the unmask stage (`peer.rounds`). So the hub sees at most
MAX_SEED_RETRIES + 1 graphs for each round it completes: the 2^-40 failure
bound of the graph's parameters becomes at most 2^-37 per round.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping

from fedd.crypto import aead, kdf, shamir
from fedd.crypto._framing import PROTOCOL_LABEL, frame, text, uint64
from fedd.crypto.errors import CryptoCheckFailed, RemoteProtocolError, RoundAborted
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.seed import NONCE_SIZE
from fedd.crypto.secagg.messages.share_keys import SealedShare
from fedd.crypto.secagg.params import RoundParams
from fedd.crypto.signing import SigningKey

__all__ = [
    "MAX_SEED_RETRIES",
    "SeedDealer",
    "SeedDraw",
    "commitment",
    "graph_seed",
    "recover_nonce",
]

MAX_SEED_RETRIES = 7


def commitment(params: RoundParams, peer: PeerId, nonce: bytes) -> bytes:
    """The commitment to `peer`'s nonce in this round."""
    return _hash(b"seed-commit", text(params.run), uint64(params.round), text(peer), nonce)


def graph_seed(params: RoundParams, nonces: Mapping[PeerId, bytes]) -> bytes:
    """The round's graph seed from every listed peer's nonce."""
    return _hash(
        b"graph-seed",
        text(params.run),
        uint64(params.round),
        *(frame(text(p), nonces[p]) for p in sorted(nonces)),
    )


def recover_nonce(
    params: RoundParams, owner: PeerId, committed: bytes, shares: Iterable[shamir.Share]
) -> bytes:
    """`owner`'s nonce rebuilt from max_corrupt + 1 of its holders' shares.

    Raises RoundAborted when too few shares came or the result does not
    match `owner`'s commitment.
    """
    need = params.max_corrupt + 1
    chosen = sorted(shares, key=lambda s: s.x)[:need]
    if len(chosen) < need:
        raise RoundAborted(f"only {len(chosen)} shares of the nonce of {owner!r}, need {need}")
    try:
        nonce = shamir.combine(chosen, t=need)
    except (CryptoCheckFailed, ValueError):
        nonce = b""
    if not hmac.compare_digest(commitment(params, owner, nonce), committed):
        raise RoundAborted(f"the nonce of {owner!r} rebuilt from shares is not the one committed")
    return nonce


class SeedDealer:
    """One peer's part in drawing the seed: its nonce, its shares out, the shares it holds."""

    __slots__ = ("_held", "_identity", "_trusted", "commitment", "me", "nonce", "params")

    def __init__(
        self,
        params: RoundParams,
        me: PeerId,
        identity: SigningKey,
        trusted: Mapping[PeerId, bytes],
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self.params, self.me = params, me
        self._identity, self._trusted = identity, trusted
        self.nonce = random_bytes(NONCE_SIZE)
        self.commitment = commitment(params, me, self.nonce)
        self._held: dict[PeerId, shamir.Share] = {}

    def deal(self, random_bytes: Callable[[int], bytes]) -> tuple[SealedShare, ...]:
        """A share of the nonce for every other participant, sealed for it, with the commitment.

        Raises CryptoCheckFailed when a participant's trusted key is unusable.
        """
        p = self.params
        others = [v for v in p.participants if v != self.me]
        xs = [p.x_of(v) for v in others]
        shares = shamir.split(self.nonce, t=p.max_corrupt + 1, xs=xs, random_bytes=random_bytes)
        return tuple(
            SealedShare(
                v,
                aead.seal(
                    self._key(v, self.me, v),
                    self.commitment + share.value_bytes(),
                    sender=self.me,
                    recipient=v,
                    run=p.run,
                    round=p.round,
                    random_bytes=random_bytes,
                ),
            )
            for v, share in zip(others, shares, strict=True)
        )

    def hold(self, dealer: PeerId, committed: bytes, sealed: bytes) -> None:
        """Keep `dealer`'s share sealed for this peer, if it opens and carries `committed`.

        A share that does not is ignored: this peer then cannot help rebuild
        that nonce, and either the dealer or the hub is to blame.
        """
        p = self.params
        try:
            plain = aead.unseal(
                self._key(dealer, dealer, self.me),
                sealed,
                sender=dealer,
                recipient=self.me,
                run=p.run,
                round=p.round,
            )
        except CryptoCheckFailed:
            return
        size = len(committed)
        if len(plain) != size + shamir.VALUE_SIZE or not hmac.compare_digest(
            plain[:size], committed
        ):
            return
        try:
            self._held[dealer] = shamir.Share.from_value_bytes(p.x_of(self.me), plain[size:])
        except ValueError:
            return

    def shares_of(self, owners: Iterable[PeerId]) -> dict[PeerId, shamir.Share]:
        """The shares this peer holds of the given owners' nonces."""
        return {o: self._held[o] for o in owners if o in self._held}

    def _key(self, other: PeerId, sender: PeerId, recipient: PeerId) -> bytes:
        p = self.params
        return kdf.derive_key(
            self._identity.agree(self._trusted[other]),
            purpose=kdf.Purpose.SEED_SHARE,
            run=p.run,
            round=p.round,
            parties=(sender, recipient),
        )


def _hash(label: bytes, *fields: bytes) -> bytes:
    return hashlib.sha256(frame(PROTOCOL_LABEL, label, *fields)).digest()


class SeedDraw:
    """The hub's side of drawing the seed: commitments and sealed shares in, nonces out.

    It relays and checks, and learns the seed only once every listed nonce
    is in: too late to choose anything.
    """

    __slots__ = ("_committed", "_nonces", "_recovered", "_sealed", "params")

    def __init__(self, params: RoundParams) -> None:
        self.params = params
        self._committed: dict[PeerId, bytes] = {}
        self._sealed: dict[PeerId, dict[PeerId, bytes]] = {}  # dealer -> holder -> share
        self._nonces: dict[PeerId, bytes] = {}
        self._recovered: dict[PeerId, dict[int, shamir.Share]] = {}

    def advertised(self, sender: PeerId, committed: bytes, dealt: Iterable[SealedShare]) -> None:
        """Record `sender`'s commitment and dealt shares; RemoteProtocolError unless it
        committed and dealt one share to every other participant."""
        sealed = {s.peer: s.ciphertext for s in dealt}
        others = set(self.params.participants) - {sender}
        if not committed or sealed.keys() != others:
            raise RemoteProtocolError(
                "an active SecAgg+ advertisement commits to a nonce and deals one share "
                f"to each of the {len(others)} other participants",
                peer=sender,
            )
        self._committed[sender] = committed
        self._sealed[sender] = sealed

    def sealed_for(self, holder: PeerId, listed: Iterable[PeerId]) -> tuple[SealedShare, ...]:
        """The shares the listed dealers sealed for `holder`, by dealer."""
        return tuple(
            SealedShare(dealer, self._sealed[dealer][holder])
            for dealer in sorted(listed)
            if dealer != holder
        )

    def revealed(self, sender: PeerId, nonce: bytes) -> None:
        """Record `sender`'s nonce; RemoteProtocolError unless it is the one committed."""
        if not hmac.compare_digest(commitment(self.params, sender, nonce), self._committed[sender]):
            raise RemoteProtocolError("revealed a nonce it did not commit to", peer=sender)
        self._nonces[sender] = nonce

    def missing(self, listed: Iterable[PeerId]) -> tuple[PeerId, ...]:
        """The listed peers whose nonce has not come."""
        return tuple(sorted(set(listed) - self._nonces.keys()))

    def shares_from(self, sender: PeerId, shares: Iterable[tuple[PeerId, bytes]]) -> None:
        """Record the shares `sender` revealed of missing nonces, as (owner, value).

        Raises RemoteProtocolError, recording none, for a share of a nonce
        that is not missing or a value that is no share.
        """
        x = self.params.x_of(sender)
        try:
            parsed = [(o, shamir.Share.from_value_bytes(x, v)) for o, v in shares]
        except ValueError as exc:
            raise RemoteProtocolError(f"invalid nonce share: {exc}", peer=sender) from None
        if any(o in self._nonces or o not in self._committed for o, _ in parsed):
            raise RemoteProtocolError("a share of a nonce that is not missing", peer=sender)
        for owner, share in parsed:
            self._recovered.setdefault(owner, {})[x] = share

    def nonces(self, listed: Iterable[PeerId]) -> dict[PeerId, bytes]:
        """Every listed peer's nonce, the missing ones rebuilt from shares.

        Raises RoundAborted when one cannot be rebuilt.
        """
        for owner in self.missing(listed):
            shares = self._recovered.get(owner, {}).values()
            self._nonces[owner] = recover_nonce(self.params, owner, self._committed[owner], shares)
        return {p: self._nonces[p] for p in sorted(listed)}

    def clear(self) -> None:
        """Forget everything: the seed is drawn, or the round is over."""
        self._sealed.clear()
        self._recovered.clear()
