"""The hub's arithmetic of Unmasking (Bonawitz et al. 2017): whose secrets can
still be recovered, the shares the survivors reveal, and the masks that turn
the sum of the masked inputs into the sum of the inputs.

Theory of operation
-------------------
Each peer u in U2 split b_u and s_sk_u into shares held by N(u) and u
itself; any t of them reconstruct the secret. In the sum of U3's masked
inputs the pair masks between two survivors cancel. What is left is each
survivor's self mask PRG(b_u) and, for each neighbour v in U3 of a peer u
that dropped after stage 1, v's copy of their pair mask, which u's missing
input no longer cancels. So the survivors reveal shares of b_u for u in U3
and of s_sk_u for u dropped, never both for one u; the hub reconstructs
them, subtracts the self masks and adds the pair masks u would have added.

A secret with too few holders cannot be recovered. So the hub prunes from
U1 and U2 every peer left with fewer than t-1 neighbours (`prune`) before
anyone masks against it, aborts after stage 2 when a secret it will need has
fewer than t holders in U3 (`check_recoverable`), and aborts in stage 3 when
fewer than t shares of one arrive (`RevealedShares.mask_seeds`). Nothing in
here touches sockets, clocks or randomness.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from fedd.crypto import shamir
from fedd.crypto.errors import CryptoCheckFailed, RemoteProtocolError, RoundAborted
from fedd.crypto.keys import AgreementKey
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.masks import MaskSeeds, self_mask_seed
from fedd.crypto.secagg.messages.advertise_keys import PeerKeys
from fedd.crypto.secagg.messages.consistency import ConsistencyRequest
from fedd.crypto.secagg.messages.unmask import UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import RoundParams
from fedd.topology.graph import PeerGraph

__all__ = [
    "RevealedShares",
    "check_recoverable",
    "check_revealed",
    "prune",
    "unmask_requests",
]


def prune(graph: PeerGraph[PeerId], t: int, alive: set[PeerId]) -> frozenset[PeerId]:
    """Drop peers with fewer than t-1 neighbours left: nobody could recover their secrets."""
    need = t - 1
    while True:
        weak = {u for u in alive if len(graph.neighbours(u) & alive) < need}
        if not weak:
            return frozenset(alive)
        alive -= weak


def check_recoverable(
    graph: PeerGraph[PeerId], t: int, u2: frozenset[PeerId], u3: frozenset[PeerId]
) -> None:
    """Raise RoundAborted unless every secret stage 3 needs has t holders in U3."""
    for u in sorted(u2):
        helpers = graph.neighbours(u) & u3
        if u in u3 and len(helpers) + 1 < t:
            raise RoundAborted(f"too few neighbours of {u!r} survived to unmask it")
        if u not in u3 and helpers and len(helpers) < t:
            raise RoundAborted(f"too few neighbours of dropped {u!r} survived to remove its masks")


def unmask_requests(
    params: RoundParams, graph: PeerGraph[PeerId], u3: frozenset[PeerId], alive: list[PeerId]
) -> list[tuple[PeerId, ConsistencyRequest | UnmaskRequest]]:
    """What each of `alive` gets once U3 is known: all of U3 to sign (active rounds),
    or its neighbours in U3 and itself to unmask."""
    if params.active:
        everyone = tuple(sorted(u3))
        return [(v, ConsistencyRequest(params.run, params.round, everyone)) for v in alive]
    return [
        (
            v,
            UnmaskRequest(
                params.run, params.round, tuple(sorted((graph.neighbours(v) & u3) | {v})), len(u3)
            ),
        )
        for v in alive
    ]


def check_revealed(
    graph: PeerGraph[PeerId],
    u2: frozenset[PeerId],
    u3: frozenset[PeerId],
    sender: PeerId,
    msg: UnmaskShares,
) -> None:
    """`sender` revealed exactly what it holds: b shares of U3, s_sk shares of the rest.

    Raises RemoteProtocolError otherwise.
    """
    held = (graph.neighbours(sender) & u2) | {sender}
    b_owners = {s.owner for s in msg.b_shares}
    if b_owners != held & u3 or {s.owner for s in msg.s_shares} != held - u3:
        raise RemoteProtocolError("revealed shares do not match the unmask request", peer=sender)


class RevealedShares:
    """The Shamir shares the survivors reveal in stage 3, by owner: of b_u and of s_sk_u."""

    __slots__ = ("_b", "_s_sk")

    def __init__(self) -> None:
        self._b: dict[PeerId, list[shamir.Share]] = {}
        self._s_sk: dict[PeerId, list[shamir.Share]] = {}

    def add(self, sender: PeerId, x: int, msg: UnmaskShares) -> None:
        """Record the shares `sender`, the holder of point `x`, revealed in `msg`.

        Raises RemoteProtocolError, and records none of them, if one is not a share.
        """
        try:
            b = [(s.owner, shamir.Share.from_value_bytes(x, s.value)) for s in msg.b_shares]
            s_sk = [(s.owner, shamir.Share.from_value_bytes(x, s.value)) for s in msg.s_shares]
        except ValueError as exc:
            raise RemoteProtocolError(f"invalid share: {exc}", peer=sender) from None
        for owner, share in b:
            self._b.setdefault(owner, []).append(share)
        for owner, share in s_sk:
            self._s_sk.setdefault(owner, []).append(share)

    def clear(self) -> None:
        """Forget every share: the round is over."""
        self._b.clear()
        self._s_sk.clear()

    def mask_seeds(
        self,
        params: RoundParams,
        graph: PeerGraph[PeerId],
        keys: Mapping[PeerId, PeerKeys],
        u2: frozenset[PeerId],
        u3: frozenset[PeerId],
    ) -> MaskSeeds:
        """The masks to apply to the sum of U3's masked inputs to leave the sum of their inputs.

        Raises RoundAborted when fewer than t shares of a needed secret arrived,
        and CryptoCheckFailed when a reconstructed s_sk_u does not belong to
        the s_pk_u that u advertised.
        """
        # Remove the survivors' self masks; add the dropped peers' pair masks,
        # which cancels the mirrored copies in their neighbours' inputs.
        seeds = MaskSeeds()
        for u in sorted(u3):
            b = _reconstruct(self._b.get(u, []), params.t, f"b of {u!r}")
            seeds.minus.append(self_mask_seed(params, b, u))
        for u in sorted(u2 - u3):
            survivors = graph.neighbours(u) & u3
            if not survivors:
                continue
            s_key = AgreementKey.from_private_bytes(
                _reconstruct(self._s_sk.get(u, []), params.t, f"s_sk of {u!r}")
            )
            if not hmac.compare_digest(s_key.public, keys[u].s_pk):
                raise CryptoCheckFailed(f"reconstructed s_sk of {u!r} does not match its s_pk")
            for v in sorted(survivors):
                seeds.add_pair(params, s_key, u, v, keys[v].s_pk)
        return seeds


def _reconstruct(shares: list[shamir.Share], t: int, what: str) -> bytes:
    if len(shares) < t:
        raise RoundAborted(f"only {len(shares)} shares of {what}, need {t}")
    return shamir.combine(shares, t=t)
