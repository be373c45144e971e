"""What peers sign in active rounds, encoded so that no two statements collide.

    advertisement  (label, "key-advert", run, round, peer, c_pk, s_pk)
    survivors      (label, "survivors", run, round, U3 in sorted order)

Binding the run and round stops a hub from replaying a signature from an
earlier round; binding the peer id stops it from passing one peer's
advertisement off as another's.
"""

from __future__ import annotations

from collections.abc import Iterable

from fedd.crypto._framing import PROTOCOL_LABEL, frame, text, uint64
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import RoundParams

__all__ = ["advert_statement", "survivors_statement"]


def advert_statement(params: RoundParams, peer: PeerId, c_pk: bytes, s_pk: bytes) -> bytes:
    """The bytes a peer signs when it advertises its round keys."""
    return frame(
        PROTOCOL_LABEL,
        b"key-advert",
        text(params.run),
        uint64(params.round),
        text(peer),
        c_pk,
        s_pk,
    )


def survivors_statement(params: RoundParams, survivors: Iterable[PeerId]) -> bytes:
    """The bytes a peer signs in the consistency check: U3, sorted."""
    return frame(
        PROTOCOL_LABEL,
        b"survivors",
        text(params.run),
        uint64(params.round),
        *(text(peer) for peer in sorted(survivors)),
    )
