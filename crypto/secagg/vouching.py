"""What a peer checks before it trusts what the hub relays in an active round.

The hub routes every key and every signature, and may lie about any of
them. These checks are the peer's (Bonawitz et al. 2017, section 6.3), each
raising on the first thing that is wrong, and one is the hub's own:

- `check_advert` (the hub): an advertisement is signed in active rounds,
  commits to a nonce exactly when the peers draw the graph seed, and
  brings two fresh keys of large order: a peer that advertises a
  low-order key would make every honest neighbour fail, so it is the one
  refused.
- `check_listed`: the roster of an active round lists every advertisement
  of U1, each signed by its peer's trusted identity over this session, the
  recipient's own exactly as it sent it, and no key twice (a key of small
  order fails where the peer agrees a key with it).
- `check_survivors`: the survivor set the hub asks a peer to sign must be
  possible from where the peer stands.
- `count_signatures`: how many distinct participants vouch for a survivor
  set in this transcript, up to the number needed; a forged, foreign or
  repeated signature counts for nothing.
- `masking_is_safe`: whether a peer may send its masked input against the
  neighbours whose shares reached it (the masking rule of
  `topology.params`, condition (d)).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fedd.crypto.errors import CryptoCheckFailed, RemoteProtocolError
from fedd.crypto.keys import check_public_key
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert, PeerKeys
from fedd.crypto.secagg.messages.consistency import SignedBy
from fedd.crypto.secagg.params import RoundParams
from fedd.crypto.secagg.signed import advert_statement, survivors_statement
from fedd.crypto.signing import verify

__all__ = [
    "check_advert",
    "check_keys",
    "check_listed",
    "check_survivors",
    "count_signatures",
    "masking_is_safe",
]


def check_advert(
    params: RoundParams, sender: PeerId, msg: KeyAdvert, taken: set[bytes]
) -> PeerKeys:
    """`sender`'s roster entry, if its advertisement may stand; `taken` are the keys
    others advertised. Raises RemoteProtocolError naming the sender otherwise."""
    if params.active and not msg.signature:
        raise RemoteProtocolError("an active round needs signed advertisements", peer=sender)
    if bool(msg.commitment) != (params.active and params.sparse):
        raise RemoteProtocolError("a commitment only where the peers draw the seed", peer=sender)
    try:
        check_public_key(msg.c_pk)
        check_public_key(msg.s_pk)
    except CryptoCheckFailed:
        raise RemoteProtocolError("advertised a low-order public key", peer=sender) from None
    if {msg.c_pk, msg.s_pk} & taken:
        raise RemoteProtocolError("advertised a public key another peer uses", peer=sender)
    return PeerKeys(sender, msg.c_pk, msg.s_pk, msg.signature, msg.commitment)


def check_keys(entries: Iterable[PeerKeys]) -> None:
    """No public key twice. Raises RemoteProtocolError.

    (A key of small order is refused where it is used: the agreement with it
    raises CryptoCheckFailed, `crypto.keys.AgreementKey.exchange`.)
    """
    seen: set[bytes] = set()
    for entry in entries:
        for key in (entry.c_pk, entry.s_pk):
            if key in seen:
                raise RemoteProtocolError("the roster repeats a public key")
            seen.add(key)


def check_listed(
    params: RoundParams,
    session: bytes,
    listed: tuple[PeerKeys, ...],
    own: PeerKeys,
    trusted: Mapping[PeerId, bytes],
) -> None:
    """An active roster: every advertisement of U1, vouched for by its peer.

    Raises RemoteProtocolError (a stranger, a non-participant, the
    recipient's own entry missing or altered, a repeated key, a commitment
    where none belongs or none where one does) or CryptoCheckFailed (a
    signature that does not verify).
    """
    committing = params.sparse
    for entry in listed:
        if entry.peer not in params.participants:
            raise RemoteProtocolError(f"the roster lists {entry.peer!r}, not a participant")
        if bool(entry.commitment) != committing:
            what = "lacks a commitment" if committing else "carries a commitment"
            raise RemoteProtocolError(f"the roster's entry of {entry.peer!r} {what}")
        key = trusted.get(entry.peer)
        if key is None:
            raise RemoteProtocolError(f"{entry.peer!r} is not among this peer's trusted keys")
        statement = advert_statement(session, entry.peer, entry.c_pk, entry.s_pk, entry.commitment)
        verify(key, statement, entry.signature)
    if own not in listed:
        raise RemoteProtocolError("the roster does not list this peer's advertisement as sent")
    check_keys(listed)


def check_survivors(
    params: RoundParams,
    survivors: frozenset[PeerId],
    me: PeerId,
    neighbours: Iterable[PeerId],
    held: Mapping[PeerId, object],
) -> None:
    """U3 includes `me`, only participants, at least min_survivors, and none of
    this peer's `neighbours` whose shares never reached it.

    Raises RemoteProtocolError.
    """
    if me not in survivors:
        raise RemoteProtocolError("the survivor set does not include me")
    outsiders = [peer for peer in survivors if peer not in params.participants]
    if outsiders:
        raise RemoteProtocolError(f"the survivor set names non-participant {outsiders[0]!r}")
    if len(survivors) < params.min_survivors:
        raise RemoteProtocolError(
            f"only {len(survivors)} survivors, the round needs {params.min_survivors}"
        )
    unknown = (survivors & set(neighbours)) - held.keys()
    if unknown:
        raise RemoteProtocolError(
            f"the survivor set names {len(unknown)} neighbours that never shared keys with me"
        )


def count_signatures(
    transcript: bytes,
    survivors: frozenset[PeerId],
    signatures: Iterable[SignedBy],
    trusted: Mapping[PeerId, bytes],
    enough: int,
) -> int:
    """How many survivors' trusted identities signed `survivors` in `transcript`,
    counted up to `enough`: the signatures past those need no verifying."""
    statement = survivors_statement(transcript, survivors)
    valid: set[PeerId] = set()
    for signed in signatures:
        if len(valid) >= enough:
            break
        key = trusted.get(signed.peer)
        if key is None or signed.peer not in survivors or signed.peer in valid:
            continue
        try:
            verify(key, statement, signed.signature)
        except CryptoCheckFailed:
            continue
        valid.add(signed.peer)
    return len(valid)


def masking_is_safe(dealt: int, partners: int, t: int, corrupt_neighbours: int) -> bool:
    """Whether a peer that dealt its shares to `dealt` neighbours may mask against `partners`.

    The holders of its shares that it does not mask against (itself, and
    the dealt - partners neighbours whose shares never reached it),
    together with up to `corrupt_neighbours` corrupt ones, must be fewer
    than t: otherwise a hub that declares every partner dropped gathers t
    shares of b_u and every pair mask, and unmasks this one input. An honest
    partner that survives keeps its pair mask with the peer hidden: the
    hub learns the two inputs' sum at best, never one.
    """
    return (dealt + 1 - partners) + corrupt_neighbours < t
