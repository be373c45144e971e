"""The typed messages of one secure aggregation round.

Every message is a frozen, slotted dataclass that validates itself on
construction (exact types, sizes, duplicate ids) and raises
`LocalProtocolError` otherwise. `daemon.transport.wire` turns them into msgpack frames
(`to_body`) and back (`from_body`), re-raising validation failures as
`MalformedMessage`. Nothing here knows about sockets or msgpack.

Flow (DESIGN.md section 3), peer -> hub unless marked:
    stage 0  KeyAdvert                 -> Roster (hub -> each peer: its neighbours' keys)
    stage 1  EncryptedShares           -> ForwardedShares (hub -> each peer)
    stage 2  MaskedInput               -> UnmaskRequest (hub -> each survivor)
    stage 3  UnmaskShares
    any      RoundAbort (hub -> peer): the round is over for the recipient

Active rounds sign the advertisements (KeyAdvert.signature, PeerKeys.signature)
and insert a consistency check after stage 2:
    MaskedInput -> ConsistencyRequest (hub -> each survivor: all of U3)
    ConsistencySignature -> UnmaskRequest carrying U3 and the signatures over it
Active SecAgg+ rounds also draw the graph seed between stages 0 and 1:
    Roster -> SeedReveal -> [SeedRecovery -> SeedShares] -> SeedNonces -> stage 1

One module per stage:
    advertise_keys   stage 0: PeerKeys, KeyAdvert, Roster
    share_keys       stage 1: SealedShare, EncryptedShares, ForwardedShares
    seed             active SecAgg+: SeedReveal, SeedRecovery, SeedShares, SeedNonces
    masked_input     stage 2: MaskedInput
    consistency      active rounds: ConsistencyRequest, ConsistencySignature, SignedBy
    unmask           stage 3: UnmaskRequest, RevealedShare, UnmaskShares
    common           the header, the checks several stages share, and RoundAbort

`Message` is the union of them all, and `MESSAGE_TYPES` the one table of
them that the wire and the daemons read. `Send` is one of them addressed to
a peer, as the hub's session hands it to its caller to deliver.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages import (
    advertise_keys,
    common,
    consistency,
    masked_input,
    seed,
    share_keys,
    unmask,
)

__all__ = ["MESSAGE_TYPES", "Message", "Send"]

Message = (
    advertise_keys.KeyAdvert
    | advertise_keys.Roster
    | seed.SeedReveal
    | seed.SeedRecovery
    | seed.SeedShares
    | seed.SeedNonces
    | share_keys.EncryptedShares
    | share_keys.ForwardedShares
    | masked_input.MaskedInput
    | consistency.ConsistencyRequest
    | consistency.ConsistencySignature
    | unmask.UnmaskRequest
    | unmask.UnmaskShares
    | common.RoundAbort
)

MESSAGE_TYPES: tuple[type[Message], ...] = (
    advertise_keys.KeyAdvert,
    advertise_keys.Roster,
    seed.SeedReveal,
    seed.SeedRecovery,
    seed.SeedShares,
    seed.SeedNonces,
    share_keys.EncryptedShares,
    share_keys.ForwardedShares,
    masked_input.MaskedInput,
    consistency.ConsistencyRequest,
    consistency.ConsistencySignature,
    unmask.UnmaskRequest,
    unmask.UnmaskShares,
    common.RoundAbort,
)


@dataclass(frozen=True, slots=True)
class Send:
    """A message for the caller to deliver to one peer."""

    to: PeerId
    msg: Message
