"""Every (stage, message type) pair of both state machines has one exact expected outcome.

A seeded round is recorded once per variant (passive; active with its
consistency check; active SecAgg+, whose peers also draw the graph seed);
sessions are then rebuilt in any stage by replaying the recorded messages,
and each message type is fed to each stage. The seed's recovery, reached
only when a nonce is missing, is recorded from a second round and has its
own tests in test_secagg_seed.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from fedd.crypto.errors import LocalProtocolError, RemoteProtocolError
from fedd.crypto.secagg import hub as hub_mod
from fedd.crypto.secagg import peer as peer_mod
from fedd.crypto.secagg.hub import HubSession, HubStage
from fedd.crypto.secagg.messages import MESSAGE_TYPES
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert, Roster
from fedd.crypto.secagg.messages.common import RoundAbort
from fedd.crypto.secagg.messages.consistency import ConsistencyRequest, ConsistencySignature
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.seed import SeedNonces, SeedRecovery, SeedReveal, SeedShares
from fedd.crypto.secagg.messages.share_keys import EncryptedShares, ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession, PeerStage
from fedd.crypto.signing import SigningKey
from tests.crypto.secagg_helpers import make_params, random_inputs, seeded

PEER_REPLY = {
    Roster: EncryptedShares,
    SeedNonces: EncryptedShares,
    SeedRecovery: SeedShares,
    ForwardedShares: MaskedInput,
    ConsistencyRequest: ConsistencySignature,
    UnmaskRequest: UnmaskShares,
}


@dataclass
class Recording:
    """One seeded round: what the hub sent ME, and what every peer sent the hub, by stage."""

    params: RoundParams
    inputs: dict
    keys: dict
    to_me: dict[type, object] = field(default_factory=dict)
    from_peers: list[list[tuple[str, object]]] = field(default_factory=list)

    @property
    def me(self):
        return self.params.participants[0]

    def new_peer(self, p=None) -> PeerSession:
        p = self.me if p is None else p
        i = self.params.participants.index(p)
        trusted = {q: k.public for q, k in self.keys.items()}
        return PeerSession(
            self.params,
            p,
            self.inputs[p],
            seeded(100 + i),
            signing_key=self.keys[p],
            trusted=trusted,
        )

    @property
    def any_message(self) -> dict[type, object]:
        mine = {type(m): m for batch in self.from_peers for sender, m in batch if sender == self.me}
        return {**mine, **self.to_me}


def record(active: bool, *, sparse: bool = False, silent: str | None = None) -> Recording:
    """A seeded round; `silent` never reveals its nonce, so that the others rebuild it."""
    if sparse:
        params = make_params(n=12, mode=Mode.PLUS, k=6, t=5, min_survivors=7, active=active)
    else:
        params = make_params(n=4, t=3, active=active)
    keys = {p: SigningKey.generate(seeded(7 + i)) for i, p in enumerate(params.participants)}
    rec = Recording(params, random_inputs(params), keys)
    hub = HubSession(params, now=0.0, stage_timeout=10.0)
    peers = {p: rec.new_peer(p) for p in params.participants}
    outbox = [(p, m) for p in peers for m in peers[p].start()]
    while outbox:
        rec.from_peers.append(outbox)
        sends = [
            s for sender, m in outbox if type(m) is not SeedReveal or sender != silent
            for s in hub.receive(sender, m, 0.0)
        ]  # fmt: skip
        if not sends:
            sends = hub.on_timeout(hub.deadline)
        for s in sends:
            if s.to == rec.me:
                rec.to_me[type(s.msg)] = s.msg
        outbox = [
            (s.to, m)
            for s in sends
            if peers[s.to].stage not in (PeerStage.DONE, PeerStage.ABORTED)
            for m in peers[s.to].receive(s.msg)
        ]
    assert hub.stage is HubStage.DONE
    rec.to_me[RoundAbort] = RoundAbort(params.run, params.round, "test")
    return rec


PASSIVE, ACTIVE, DRAWN = record(False), record(True), record(True, sparse=True)
# The seed's recovery happens only when a nonce is missing: its two messages
# come from a round in which one peer never reveals.
RECOVERED = record(True, sparse=True, silent="p012")
DRAWN_MESSAGES = {**RECOVERED.any_message, **DRAWN.any_message}
# Messages of the consistency check and of the seed exist only in active
# rounds; borrow them for the other tables, where every one must be refused.
PASSIVE_MESSAGES = {**DRAWN_MESSAGES, **ACTIVE.any_message, **PASSIVE.any_message}
ACTIVE_MESSAGES = {**DRAWN_MESSAGES, **ACTIVE.any_message}
assert set(DRAWN_MESSAGES) == set(MESSAGE_TYPES)

VARIANTS = [
    pytest.param(PASSIVE, PASSIVE_MESSAGES, id="passive"),
    pytest.param(ACTIVE, ACTIVE_MESSAGES, id="active"),
    pytest.param(DRAWN, DRAWN_MESSAGES, id="active-plus"),
]


def drawn(rec: Recording) -> bool:
    return rec.params.active and rec.params.sparse


def peer_order(rec: Recording) -> list[type]:
    order = [Roster, *([SeedNonces] if drawn(rec) else []), ForwardedShares]
    if rec.params.active:
        order.append(ConsistencyRequest)
    return [*order, UnmaskRequest]


def peer_stages(rec: Recording) -> list[PeerStage]:
    """The waiting stages in order, then DONE."""
    order = [PeerStage.AWAIT_ROSTER, *([PeerStage.AWAIT_SEED] if drawn(rec) else [])]
    order.append(PeerStage.AWAIT_SHARES)
    if rec.params.active:
        order.append(PeerStage.AWAIT_CONSISTENCY)
    return [*order, PeerStage.AWAIT_UNMASK, PeerStage.DONE]


def peer_in(rec: Recording, stage: PeerStage) -> PeerSession | None:
    """A peer session in `stage`, or None if this variant never reaches it."""
    session = rec.new_peer()
    if stage is PeerStage.NEW:
        return session
    session.start()
    if stage is PeerStage.ABORTED:
        session.receive(rec.to_me[RoundAbort])
        return session
    stages = peer_stages(rec)
    if stage not in stages:
        return None
    for kind in peer_order(rec)[: stages.index(stage)]:
        session.receive(rec.to_me[kind])
    assert session.stage is stage
    return session


def next_peer_stage(rec: Recording, stage: PeerStage, kind: type) -> PeerStage | None:
    stages = peer_stages(rec)
    if kind is RoundAbort and stage in stages[:-1]:
        return PeerStage.ABORTED
    if (stage, kind) == (PeerStage.AWAIT_SEED, SeedRecovery):
        return stage  # shares of the missing nonces; still waiting for all of them
    if stage in stages[:-1] and peer_order(rec)[stages.index(stage)] is kind:
        return stages[stages.index(stage) + 1]
    return None


def test_the_peer_table_is_exactly_the_documented_one():
    documented = {
        (stage, kind)
        for rec in (PASSIVE, ACTIVE, DRAWN)
        for stage in PeerStage
        for kind in MESSAGE_TYPES
        if next_peer_stage(rec, stage, kind) is not None
    }
    assert set(peer_mod.TRANSITIONS) == documented


def cases(stages_of, all_stages):
    """(variant, stage, message type) for every stage the variant can be in."""
    return [
        pytest.param(rec, messages, stage, kind, id=f"{variant.id}-{stage.name}-{kind.__name__}")
        for variant in VARIANTS
        for rec, messages in [variant.values]
        for stage in all_stages
        if stage in stages_of(rec)
        for kind in MESSAGE_TYPES
    ]


def reachable_peer_stages(rec: Recording) -> list[PeerStage]:
    return [PeerStage.NEW, *peer_stages(rec), PeerStage.ABORTED]


@pytest.mark.parametrize(
    ("rec", "messages", "stage", "kind"), cases(reachable_peer_stages, list(PeerStage))
)
def test_peer_stage_by_message(rec, messages, stage, kind):
    session = peer_in(rec, stage)
    assert session is not None
    msg = messages[kind]
    expected = next_peer_stage(rec, stage, kind)
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
        reply = SeedReveal if kind is Roster and drawn(rec) else PEER_REPLY.get(kind)
        assert [type(m) for m in out] == ([reply] if reply else [])


def test_start_twice_is_a_local_error():
    session = peer_in(PASSIVE, PeerStage.AWAIT_ROSTER)
    assert session is not None
    with pytest.raises(LocalProtocolError):
        session.start()


# -- hub ---------------------------------------------------------------------


def hub_stages(rec: Recording) -> list[HubStage]:
    order = [HubStage.ADVERTISE_KEYS, *([HubStage.SEED_REVEAL] if drawn(rec) else [])]
    order += [HubStage.SHARE_KEYS, HubStage.MASKED_INPUT]
    if rec.params.active:
        order.append(HubStage.CONSISTENCY)
    return [*order, HubStage.UNMASK]


ACCEPTS = {
    HubStage.ADVERTISE_KEYS: KeyAdvert,
    HubStage.SEED_REVEAL: SeedReveal,
    HubStage.SEED_RECOVERY: SeedShares,
    HubStage.SHARE_KEYS: EncryptedShares,
    HubStage.MASKED_INPUT: MaskedInput,
    HubStage.CONSISTENCY: ConsistencySignature,
    HubStage.UNMASK: UnmaskShares,
}


def hub_in(rec: Recording, stage: HubStage) -> HubSession | None:
    """A hub in `stage` that still waits for ME (and only ME) in that stage."""
    hub = HubSession(rec.params, now=0.0, stage_timeout=10.0)
    if stage is HubStage.ABORTED:
        hub.abort("test", 0.0)
        return hub
    stages = hub_stages(rec)
    if stage is not HubStage.DONE and stage not in stages:
        return None
    target = len(stages) if stage is HubStage.DONE else stages.index(stage)
    for i, batch in enumerate(rec.from_peers):
        for sender, m in batch:
            if i == target and sender == rec.me:
                continue
            hub.receive(sender, m, 0.0)
        if i == target:
            break
    assert hub.stage is stage
    return hub


def test_the_hub_table_is_exactly_the_documented_one():
    assert set(hub_mod.TRANSITIONS) == set(ACCEPTS.items())


def reachable_hub_stages(rec: Recording) -> list[HubStage]:
    return [*hub_stages(rec), HubStage.DONE, HubStage.ABORTED]


@pytest.mark.parametrize(
    ("rec", "messages", "stage", "kind"), cases(reachable_hub_stages, list(HubStage))
)
def test_hub_stage_by_message(rec, messages, stage, kind):
    hub = hub_in(rec, stage)
    assert hub is not None
    msg = messages[kind]
    stages = [*hub_stages(rec), HubStage.DONE]
    if ACCEPTS.get(stage) is kind:
        hub.receive(rec.me, msg, 0.0)
        assert hub.stage is stages[stages.index(stage) + 1]
    else:
        with pytest.raises(RemoteProtocolError):
            hub.receive(rec.me, msg, 0.0)
        assert hub.stage is stage
        if stage in ACCEPTS:
            assert rec.me in hub.pending  # a rejected message changes nothing


def test_hub_rejects_messages_from_outsiders():
    hub = hub_in(PASSIVE, HubStage.ADVERTISE_KEYS)
    assert hub is not None
    with pytest.raises(RemoteProtocolError, match="not in this round"):
        hub.receive("intruder", PASSIVE.any_message[KeyAdvert], 0.0)  # type: ignore[arg-type]


# What other test modules borrow: one valid instance of every message type.
PARAMS = DRAWN.params
ANY_MESSAGE = DRAWN_MESSAGES
