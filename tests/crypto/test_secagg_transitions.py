"""Every (stage, message type) pair of both state machines has one exact expected outcome.

A seeded round is recorded once; sessions are then rebuilt in any stage by
replaying the recorded messages, and each message type is fed to each stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from crypto.errors import LocalProtocolError, RemoteProtocolError
from crypto.secagg import hub as hub_mod
from crypto.secagg import peer as peer_mod
from crypto.secagg.hub import HubSession, HubStage
from crypto.secagg.messages import (
    MESSAGE_TYPES,
    EncryptedShares,
    ForwardedShares,
    KeyAdvert,
    MaskedInput,
    Roster,
    RoundAbort,
    UnmaskRequest,
    UnmaskShares,
)
from crypto.secagg.peer import PeerSession, PeerStage
from tests.crypto.secagg_helpers import make_params, random_inputs, seeded

PARAMS = make_params(n=4, t=3)
INPUTS = random_inputs(PARAMS)
ME = PARAMS.participants[0]


@dataclass
class Recording:
    """What the hub sent ME at each stage, and what every peer sent the hub."""

    to_me: dict[type, object] = field(default_factory=dict)
    from_peers: list[list[tuple[str, object]]] = field(default_factory=list)


def new_peer(p=ME) -> PeerSession:
    i = PARAMS.participants.index(p)
    return PeerSession(PARAMS, p, INPUTS[p], seeded(100 + i))


def record() -> Recording:
    rec = Recording()
    hub = HubSession(PARAMS, now=0.0, stage_timeout=10.0)
    peers = {p: new_peer(p) for p in PARAMS.participants}
    outbox = [(p, m) for p in peers for m in peers[p].start()]
    while outbox:
        rec.from_peers.append(outbox)
        sends = [s for sender, m in outbox for s in hub.receive(sender, m, 0.0)]
        for s in sends:
            if s.to == ME:
                rec.to_me[type(s.msg)] = s.msg
        outbox = [(s.to, m) for s in sends for m in peers[s.to].receive(s.msg)]
    assert hub.stage is HubStage.DONE
    rec.to_me[RoundAbort] = RoundAbort(PARAMS.run, PARAMS.round, "test")
    return rec


REC = record()
FROM_ME = {type(m): m for batch in REC.from_peers for sender, m in batch if sender == ME}
ANY_MESSAGE = {**FROM_ME, **REC.to_me}
assert set(ANY_MESSAGE) == set(MESSAGE_TYPES)

PEER_ORDER = [Roster, ForwardedShares, UnmaskRequest]


def peer_in(stage: PeerStage) -> PeerSession:
    session = new_peer()
    if stage is PeerStage.NEW:
        return session
    session.start()
    steps = {
        PeerStage.AWAIT_ROSTER: 0,
        PeerStage.AWAIT_SHARES: 1,
        PeerStage.AWAIT_UNMASK: 2,
        PeerStage.DONE: 3,
    }
    if stage is PeerStage.ABORTED:
        session.receive(REC.to_me[RoundAbort])
        return session
    for kind in PEER_ORDER[: steps[stage]]:
        session.receive(REC.to_me[kind])
    assert session.stage is stage
    return session


NEXT_PEER_STAGE = {
    (PeerStage.AWAIT_ROSTER, Roster): PeerStage.AWAIT_SHARES,
    (PeerStage.AWAIT_SHARES, ForwardedShares): PeerStage.AWAIT_UNMASK,
    (PeerStage.AWAIT_UNMASK, UnmaskRequest): PeerStage.DONE,
    **{
        (s, RoundAbort): PeerStage.ABORTED
        for s in (PeerStage.AWAIT_ROSTER, PeerStage.AWAIT_SHARES, PeerStage.AWAIT_UNMASK)
    },
}


def test_the_peer_table_is_exactly_the_documented_one():
    assert set(peer_mod.TRANSITIONS) == set(NEXT_PEER_STAGE)


@pytest.mark.parametrize("stage", list(PeerStage), ids=lambda s: s.name)
@pytest.mark.parametrize("kind", MESSAGE_TYPES, ids=lambda k: k.__name__)
def test_peer_stage_by_message(stage, kind):
    session = peer_in(stage)
    msg = ANY_MESSAGE[kind]
    expected = NEXT_PEER_STAGE.get((stage, kind))
    if stage in (PeerStage.DONE, PeerStage.ABORTED):
        with pytest.raises(LocalProtocolError):
            session.receive(msg)
        assert session.stage is stage
    elif expected is None:
        with pytest.raises(RemoteProtocolError, match="not allowed"):
            session.receive(msg)
        assert session.stage is PeerStage.ABORTED
    else:
        out = session.receive(msg)
        assert session.stage is expected
        expected_reply = {
            Roster: EncryptedShares,
            ForwardedShares: MaskedInput,
            UnmaskRequest: UnmaskShares,
        }.get(kind)
        assert [type(m) for m in out] == ([expected_reply] if expected_reply else [])


def test_start_twice_is_a_local_error():
    session = peer_in(PeerStage.AWAIT_ROSTER)
    with pytest.raises(LocalProtocolError):
        session.start()


# -- hub ---------------------------------------------------------------------

HUB_STAGES = [HubStage.ADVERTISE_KEYS, HubStage.SHARE_KEYS, HubStage.MASKED_INPUT, HubStage.UNMASK]
ACCEPTS = {
    HubStage.ADVERTISE_KEYS: KeyAdvert,
    HubStage.SHARE_KEYS: EncryptedShares,
    HubStage.MASKED_INPUT: MaskedInput,
    HubStage.UNMASK: UnmaskShares,
}


def hub_in(stage: HubStage) -> HubSession:
    """A hub in `stage` that still waits for ME (and only ME) in that stage."""
    hub = HubSession(PARAMS, now=0.0, stage_timeout=10.0)
    if stage is HubStage.ABORTED:
        hub.abort("test", 0.0)
        return hub
    target = len(HUB_STAGES) if stage is HubStage.DONE else HUB_STAGES.index(stage)
    for i, batch in enumerate(REC.from_peers):
        for sender, m in batch:
            if i == target and sender == ME:
                continue
            hub.receive(sender, m, 0.0)
        if i == target:
            break
    assert hub.stage is stage
    return hub


def test_the_hub_table_is_exactly_the_documented_one():
    assert set(hub_mod.TRANSITIONS) == {(s, k) for s, k in ACCEPTS.items()}


@pytest.mark.parametrize("stage", list(HubStage), ids=lambda s: s.name)
@pytest.mark.parametrize("kind", MESSAGE_TYPES, ids=lambda k: k.__name__)
def test_hub_stage_by_message(stage, kind):
    hub = hub_in(stage)
    msg = ANY_MESSAGE[kind]
    if ACCEPTS.get(stage) is kind:
        hub.receive(ME, msg, 0.0)
        order = [*HUB_STAGES, HubStage.DONE]
        assert hub.stage is order[order.index(stage) + 1]
    else:
        with pytest.raises(RemoteProtocolError):
            hub.receive(ME, msg, 0.0)
        assert hub.stage is stage
        if stage in ACCEPTS:
            assert ME in hub.pending  # a rejected message changes nothing


def test_hub_rejects_messages_from_outsiders():
    hub = hub_in(HubStage.ADVERTISE_KEYS)
    with pytest.raises(RemoteProtocolError, match="not in this round"):
        hub.receive("intruder", ANY_MESSAGE[KeyAdvert], 0.0)  # type: ignore[arg-type]
