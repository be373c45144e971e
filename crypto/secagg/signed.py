"""What peers sign in active rounds: statements bound to the whole session transcript.

    session      T0 = H("session", context, every field of the RoundParams)
    advertised   T1 = H("advertised", T0, each listed peer's c_pk, s_pk, commitment)
    transcript   T  = T1, or H("transcript", T1, graph seed) when the peers drew one

    advertisement  (label, "key-advert", T0, peer, c_pk, s_pk, commitment)
    survivors      (label, "survivors", T, U3 in sorted order)

`context` is whatever else the round's start said (the daemons pass a
digest of their RoundStart: the round's kind, model and evaluations), so a
hub that tells peers different things cannot have them sign one statement.
T1 covers every peer's fresh round keys, so no two runs of a round share a
transcript: a signature from another run, even of the same round with the
same parameters, never verifies in this one. Peer ids bind each statement
to its signer's claims; the statements are framed so that none collides
with another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from fedd.crypto._framing import PROTOCOL_LABEL, frame, text, uint64
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.advertise_keys import PeerKeys
from fedd.crypto.secagg.params import RoundParams

__all__ = [
    "advert_statement",
    "advertised_digest",
    "session_digest",
    "survivors_statement",
    "transcript_digest",
]


def session_digest(params: RoundParams, context: bytes) -> bytes:
    """T0: the round's parameters, all of them, and the daemon's `context`."""
    return _digest(
        b"session",
        context,
        text(params.run),
        uint64(params.round),
        text(params.mode.value),
        frame(*(text(p) for p in params.participants)),
        uint64(params.k),
        uint64(params.t),
        uint64(params.min_survivors),
        params.graph_seed,
        uint64(params.dim),
        uint64(params.mod_bits),
        text(params.prg.value),
        uint64(int(params.active)),
        uint64(params.max_corrupt),
    )


def advertised_digest(session: bytes, listed: Iterable[PeerKeys]) -> bytes:
    """T1: the session and every advertisement the hub listed, in peer order."""
    return _digest(
        b"advertised",
        session,
        *(
            frame(text(e.peer), e.c_pk, e.s_pk, e.commitment)
            for e in sorted(listed, key=lambda e: e.peer)
        ),
    )


def transcript_digest(advertised: bytes, graph_seed: bytes | None) -> bytes:
    """T: the advertisements, and the graph seed the peers drew if they drew one."""
    if graph_seed is None:
        return advertised
    return _digest(b"transcript", advertised, graph_seed)


def advert_statement(
    session: bytes, peer: PeerId, c_pk: bytes, s_pk: bytes, commitment: bytes
) -> bytes:
    """The bytes a peer signs when it advertises its round keys."""
    return frame(PROTOCOL_LABEL, b"key-advert", session, text(peer), c_pk, s_pk, commitment)


def survivors_statement(transcript: bytes, survivors: Iterable[PeerId]) -> bytes:
    """The bytes a peer signs in the consistency check: U3, sorted, in this transcript."""
    return frame(
        PROTOCOL_LABEL,
        b"survivors",
        transcript,
        *(text(peer) for peer in sorted(survivors)),
    )


def _digest(label: bytes, *fields: bytes) -> bytes:
    return hashlib.sha256(frame(PROTOCOL_LABEL, label, *fields)).digest()
