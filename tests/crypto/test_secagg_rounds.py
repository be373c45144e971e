"""Whole rounds through the sans-IO hub and peers, with dropouts at every stage."""

from __future__ import annotations

import random

import pytest

from fedd.crypto import lanes
from fedd.crypto.errors import (
    CryptoCheckFailed,
    LocalProtocolError,
    RemoteProtocolError,
    RoundAborted,
)
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.hub import HubSession, HubStage
from fedd.crypto.secagg.messages.advertise_keys import Roster
from fedd.crypto.secagg.messages.common import RoundAbort
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.share_keys import ForwardedShares, SealedShare
from fedd.crypto.secagg.messages.unmask import UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession, PeerStage
from fedd.simulate import run_secure_round
from tests.crypto.secagg_helpers import make_params, random_inputs, seeded

STAGES = ("advertise-keys", "share-keys", "masked-input", "unmask")


def plain_sum(params: RoundParams, inputs: dict, survivors) -> bytes:
    acc = lanes.VectorSum(params.dim, params.width)
    for p in survivors:
        acc.add(inputs[p])
    return acc.to_bytes()


SHAPES = [
    pytest.param(dict(n=7, mode=Mode.FULL, t=4), id="full-7"),
    pytest.param(dict(n=16, mode=Mode.PLUS, k=6, t=4), id="plus-16-k6"),
    pytest.param(dict(n=9, mode=Mode.FULL, t=5, mod_bits=64), id="full-9-64bit"),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_round_without_dropouts_yields_the_exact_sum(shape):
    params = make_params(**shape)
    inputs = random_inputs(params)
    report = run_secure_round(params, inputs, {})
    assert report.status == "ok", report.reason
    assert report.survivor_ids == params.participants
    assert report.aggregate == plain_sum(params, inputs, params.participants)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("stage", STAGES)
def test_two_dropouts_at_each_stage_still_give_the_survivors_sum(shape, stage):
    params = make_params(**shape)
    inputs = random_inputs(params, seed=STAGES.index(stage))
    dropped = random.Random(3).sample(params.participants, 2)
    report = run_secure_round(params, inputs, {p: stage for p in dropped})
    assert report.status == "ok", report.reason
    survivors = set(report.survivor_ids)
    if stage == "unmask":
        # Their inputs are in the sum already; their neighbours reveal their b_u.
        assert survivors == set(params.participants)
    else:
        assert survivors == set(params.participants) - set(dropped)
    assert report.aggregate == plain_sum(params, inputs, report.survivor_ids)


@pytest.mark.parametrize("shape", SHAPES)
def test_mixed_dropouts_give_the_survivors_sum(shape):
    params = make_params(**shape)
    inputs = random_inputs(params, seed=11)
    rng = random.Random(5)
    dropped = rng.sample(params.participants, 3 if params.n > 8 else 2)
    report = run_secure_round(params, inputs, {p: rng.choice(STAGES) for p in dropped})
    assert report.status == "ok", report.reason
    assert report.aggregate == plain_sum(params, inputs, report.survivor_ids)


@pytest.mark.parametrize("stage", STAGES)
def test_round_below_threshold_aborts_cleanly_at_every_stage(stage):
    params = make_params(n=6, t=4)  # min_survivors = 4: three dropouts leave too few
    inputs = random_inputs(params)
    dropped = params.participants[:3]
    report = run_secure_round(params, inputs, {p: stage for p in dropped})
    assert report.status == "aborted"
    assert report.aggregate is None
    assert report.reason


def drive_to_unmask(params: RoundParams, inputs, *, seed: int = 9):
    """Run stages 0-2 by hand; returns (hub, peers, unmask requests by peer)."""
    hub = HubSession(params, now=0.0, stage_timeout=10.0)
    peers = {
        p: PeerSession(params, p, inputs[p], seeded(seed + i))
        for i, p in enumerate(params.participants)
    }
    outbox = [(p, m) for p in peers for m in peers[p].start()]
    requests = {}
    while outbox and not hub.finished:
        sends = []
        for sender, msg in outbox:
            sends += hub.receive(sender, msg, 0.0)
        outbox = []
        for send in sends:
            if isinstance(send.msg, UnmaskRequest):
                requests[send.to] = send.msg
                continue
            outbox += [(send.to, m) for m in peers[send.to].receive(send.msg)]
    assert hub.stage is HubStage.UNMASK
    return hub, peers, requests


def test_peer_refuses_a_second_unmask_request():
    params = make_params(n=5, t=3)
    _, peers, requests = drive_to_unmask(params, random_inputs(params))
    p1 = params.participants[0]
    peers[p1].receive(requests[p1])
    assert peers[p1].stage is PeerStage.DONE
    # Now the hub asks again, claiming a neighbour dropped: that would reveal its s_sk
    # next to the b share already given. The session is over and says so.
    other = params.participants[1]
    survivors = tuple(p for p in requests[p1].survivors if p != other)
    again = UnmaskRequest(params.run, params.round, survivors, len(survivors))
    with pytest.raises(LocalProtocolError):
        peers[p1].receive(again)


def test_unmask_reveals_b_for_survivors_and_s_for_dropped_never_both():
    params = make_params(n=6, t=3)
    _, peers, requests = drive_to_unmask(params, random_inputs(params))
    p1, gone = params.participants[0], params.participants[1]
    survivors = tuple(p for p in requests[p1].survivors if p != gone)
    reply = peers[p1].receive(UnmaskRequest(params.run, params.round, survivors, 5))[0]
    assert isinstance(reply, UnmaskShares)
    b_owners = {s.owner for s in reply.b_shares}
    s_owners = {s.owner for s in reply.s_shares}
    assert b_owners == set(survivors)
    assert s_owners == {gone}
    assert not b_owners & s_owners


def test_peer_refuses_unmask_request_naming_peers_it_holds_nothing_of():
    params = make_params(n=12, mode=Mode.PLUS, k=4, t=3)
    _, peers, requests = drive_to_unmask(params, random_inputs(params))
    p1 = params.participants[0]
    strangers = [
        p for p in params.participants if p != p1 and p not in params.graph().neighbours(p1)
    ]
    bad = UnmaskRequest(params.run, params.round, (*requests[p1].survivors, strangers[0]), 12)
    with pytest.raises(RemoteProtocolError):
        peers[p1].receive(bad)
    assert peers[p1].stage is PeerStage.ABORTED


def test_peer_refuses_unmask_below_min_survivors():
    params = make_params(n=5, t=3)
    _, peers, requests = drive_to_unmask(params, random_inputs(params))
    p1 = params.participants[0]
    req = requests[p1]
    with pytest.raises(RemoteProtocolError, match="survivors"):
        peers[p1].receive(UnmaskRequest(params.run, params.round, req.survivors[:2], 2))


def test_hub_rejects_shares_that_do_not_match_its_request_and_keeps_running():
    params = make_params(n=5, t=3)
    hub, peers, requests = drive_to_unmask(params, random_inputs(params))
    p1 = params.participants[0]
    reply = peers[p1].receive(requests[p1])[0]
    lying = UnmaskShares(params.run, params.round, reply.b_shares[1:], reply.s_shares)
    with pytest.raises(RemoteProtocolError, match="do not match"):
        hub.receive(p1, lying, 0.0)
    assert hub.stage is HubStage.UNMASK
    assert hub.receive(p1, reply, 0.0) == []  # the honest reply is still accepted


def test_tampered_share_value_aborts_the_round_instead_of_a_wrong_sum():
    params = make_params(n=5, t=3)
    hub, peers, requests = drive_to_unmask(params, random_inputs(params))
    for i, p in enumerate(params.participants):
        reply = peers[p].receive(requests[p])[0]
        if i == 0:
            first = reply.b_shares[0]
            bad = bytearray(first.value)
            bad[-1] ^= 1
            reply = UnmaskShares(
                params.run,
                params.round,
                (type(first)(first.owner, bytes(bad)), *reply.b_shares[1:]),
                reply.s_shares,
            )
        hub.receive(p, reply, 0.0)
    assert hub.stage is HubStage.ABORTED
    with pytest.raises(RoundAborted):
        hub.result()


def test_tampered_ciphertext_aborts_the_recipient():
    params = make_params(n=4, t=3)
    inputs = random_inputs(params)
    hub = HubSession(params, now=0.0, stage_timeout=10.0)
    peers = {
        p: PeerSession(params, p, inputs[p], seeded(i)) for i, p in enumerate(params.participants)
    }
    sends = []
    for p, session in peers.items():
        for m in session.start():
            sends += hub.receive(p, m, 0.0)
    forwarded = []
    for s in sends:
        for m in peers[s.to].receive(s.msg):
            forwarded += hub.receive(s.to, m, 0.0)
    target = forwarded[0]
    assert isinstance(target.msg, ForwardedShares)
    first = target.msg.shares[0]
    flipped = bytearray(first.ciphertext)
    flipped[20] ^= 0x80
    tampered = ForwardedShares(
        params.run, params.round, (SealedShare(first.peer, bytes(flipped)), *target.msg.shares[1:])
    )
    with pytest.raises(CryptoCheckFailed):
        peers[target.to].receive(tampered)
    assert peers[target.to].stage is PeerStage.ABORTED


def test_forwarded_share_relabelled_to_another_sender_fails_authentication():
    params = make_params(n=4, t=3)
    inputs = random_inputs(params)
    hub = HubSession(params, now=0.0, stage_timeout=10.0)
    peers = {
        p: PeerSession(params, p, inputs[p], seeded(i)) for i, p in enumerate(params.participants)
    }
    sends = [s for p in peers for m in peers[p].start() for s in hub.receive(p, m, 0.0)]
    forwarded = [
        s for x in sends for m in peers[x.to].receive(x.msg) for s in hub.receive(x.to, m, 0.0)
    ]
    target = forwarded[0]
    a, b = target.msg.shares[0], target.msg.shares[1]
    swapped = ForwardedShares(
        params.run,
        params.round,
        (
            SealedShare(a.peer, b.ciphertext),
            SealedShare(b.peer, a.ciphertext),
            *target.msg.shares[2:],
        ),
    )
    with pytest.raises(CryptoCheckFailed):
        peers[target.to].receive(swapped)


def test_a_single_masked_input_looks_uniform():
    """Chi-square over the top 4 bits of every lane of one masked all-zero input."""
    params = make_params(n=3, t=2, dim=16_000)
    zeros = {p: bytes(params.vector_size) for p in params.participants}
    y = first_masked_input(params, zeros)
    values = memoryview(y).cast("I")
    buckets = [0] * 16
    for v in values:
        buckets[v >> 28] += 1
    expected = len(values) / 16
    chi2 = sum((b - expected) ** 2 / expected for b in buckets)
    # 15 degrees of freedom: P(chi2 > 37.7) = 0.001. An unmasked zero vector scores 240,000.
    assert chi2 < 37.7


def first_masked_input(params, inputs) -> bytes:
    hub = HubSession(params, now=0.0, stage_timeout=10.0)
    peers = {
        p: PeerSession(params, p, inputs[p], seeded(i)) for i, p in enumerate(params.participants)
    }
    outbox = [(p, m) for p in peers for m in peers[p].start()]
    while outbox:
        sends = []
        for sender, msg in outbox:
            if isinstance(msg, MaskedInput):
                return msg.y
            sends += hub.receive(sender, msg, 0.0)
        outbox = [(s.to, m) for s in sends for m in peers[s.to].receive(s.msg)]
    raise AssertionError("no masked input was produced")


def test_every_party_derives_the_same_graph():
    params = make_params(n=30, mode=Mode.PLUS, k=6, t=4)
    again = RoundParams.from_body(params.to_body())
    assert again == params
    a, b = params.graph(), again.graph()
    for p in params.participants:
        assert a.neighbours(p) == b.neighbours(p)
        assert len(a.neighbours(p)) == 6


@pytest.mark.parametrize(
    ("n", "mode", "k"), [(30, Mode.PLUS, 6), (9, Mode.PLUS, 8), (7, Mode.FULL, 6)]
)
def test_a_peer_derives_its_neighbours_as_the_hub_derives_the_graph(n, mode, k):
    params = make_params(n=n, mode=mode, k=k, t=4)
    other_seed = random.Random(99).randbytes(32)
    for p in params.participants:
        assert params.neighbours(p) == params.graph().neighbours(p)
        assert params.neighbours(p, other_seed) == params.graph(other_seed).neighbours(p)
    with pytest.raises(LocalProtocolError, match="not a participant"):
        params.neighbours(PeerId("p999"))


def test_a_roster_naming_a_non_neighbour_aborts_the_peer():
    params = make_params(n=12, mode=Mode.PLUS, k=4, t=3)
    inputs = random_inputs(params)
    me = params.participants[0]
    session = PeerSession(params, me, inputs[me], seeded(1))
    session.start()
    stranger = next(
        p for p in params.participants if p != me and p not in params.graph().neighbours(me)
    )
    from fedd.crypto.secagg.messages.advertise_keys import PeerKeys

    keys = (PeerKeys(stranger, b"\x01" * 32, b"\x02" * 32),)
    with pytest.raises(RemoteProtocolError, match="not a neighbour"):
        session.receive(Roster(params.run, params.round, keys))
    assert session.stage is PeerStage.ABORTED


def test_round_abort_ends_a_waiting_peer_without_error():
    params = make_params(n=3, t=2)
    me = params.participants[0]
    session = PeerSession(params, me, bytes(params.vector_size), seeded(1))
    session.start()
    assert session.receive(RoundAbort(params.run, params.round, "too few")) == []
    assert session.stage is PeerStage.ABORTED
    assert "too few" in (session.abort_reason or "")


def test_messages_for_another_round_abort_the_peer():
    params = make_params(n=3, t=2)
    me = params.participants[0]
    session = PeerSession(params, me, bytes(params.vector_size), seeded(1))
    session.start()
    with pytest.raises(RemoteProtocolError, match="round"):
        session.receive(RoundAbort(params.run, params.round + 1, "replayed"))
    assert session.stage is PeerStage.ABORTED


def test_hub_times_out_silent_peers_and_continues():
    params = make_params(n=5, t=3)
    hub = HubSession(params, now=100.0, stage_timeout=5.0)
    inputs = random_inputs(params)
    peers = {
        p: PeerSession(params, p, inputs[p], seeded(i)) for i, p in enumerate(params.participants)
    }
    silent = params.participants[-1]
    for p in params.participants:
        if p != silent:
            for m in peers[p].start():
                assert hub.receive(p, m, 101.0) == []
    assert hub.on_timeout(104.9) == []
    sends = hub.on_timeout(105.0)
    assert hub.stage is HubStage.SHARE_KEYS
    assert {s.to for s in sends if isinstance(s.msg, Roster)} == set(params.participants) - {silent}
    assert any(s.to == silent and isinstance(s.msg, RoundAbort) for s in sends)
    assert "timed out" in hub.departed[silent]


def test_hub_drop_of_the_last_pending_peer_closes_the_stage():
    params = make_params(n=4, t=3)
    hub = HubSession(params, now=0.0, stage_timeout=5.0)
    inputs = random_inputs(params)
    for i, p in enumerate(params.participants[:-1]):
        for m in PeerSession(params, p, inputs[p], seeded(i)).start():
            hub.receive(p, m, 1.0)
    sends = hub.drop(params.participants[-1], 1.5, "lost heartbeats")
    assert hub.stage is HubStage.SHARE_KEYS
    assert sum(isinstance(s.msg, Roster) for s in sends) == 3


def test_duplicate_public_keys_are_rejected_and_leave_the_hub_unchanged():
    params = make_params(n=4, t=3)
    hub = HubSession(params, now=0.0, stage_timeout=5.0)
    a, b = params.participants[:2]
    advert = PeerSession(params, a, bytes(params.vector_size), seeded(1)).start()[0]
    hub.receive(a, advert, 0.0)
    copy = type(advert)(params.run, params.round, advert.c_pk, b"\x07" * 32)
    with pytest.raises(RemoteProtocolError, match="another peer"):
        hub.receive(b, copy, 0.0)
    assert b in hub.pending


def test_result_before_the_end_is_a_local_error():
    params = make_params(n=3, t=2)
    hub = HubSession(params, now=0.0, stage_timeout=5.0)
    with pytest.raises(LocalProtocolError):
        hub.result()
