"""Round runners without sockets: plain FedAvg and a secure round decoded to the weighted mean."""

from __future__ import annotations

import random

import pytest

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import RemoteProtocolError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession
from fedd.daemon.hub.rounds import PlainRound, SecureRound
from fedd.daemon.transport.messages.rounds import PlainUpdate

PEERS = tuple(PeerId(p) for p in ("a", "b", "c"))


def update(round_: int, n: int, delta: list[float]) -> PlainUpdate:
    return PlainUpdate("run", round_, n, tuple(delta))


def test_plain_round_takes_the_sample_weighted_mean():
    r = PlainRound("run", 4, PEERS, 2, now=0.0, timeout=10.0, min_updates=1)
    r.receive(PeerId("a"), update(4, 100, [1.0, 2.0]), 1.0)
    r.receive(PeerId("b"), update(4, 300, [5.0, -2.0]), 1.0)
    assert not r.finished
    r.receive(PeerId("c"), update(4, 600, [0.0, 0.0]), 2.0)
    outcome = r.outcome()
    assert outcome.status == "ok" and outcome.weight_sum == 1000
    assert outcome.mean_delta == pytest.approx([0.1 + 1.5, 0.2 - 0.6])
    assert outcome.stage_seconds["train_upload"] == 2.0


def test_plain_round_closes_at_the_deadline_with_who_answered():
    r = PlainRound("run", 1, PEERS, 2, now=0.0, timeout=10.0, min_updates=2)
    r.receive(PeerId("a"), update(1, 1, [1.0, 1.0]), 1.0)
    r.on_timeout(9.9)
    assert not r.finished
    r.on_timeout(10.0)
    outcome = r.outcome()
    assert outcome.status == "aborted" and "needs 2" in outcome.reason
    assert outcome.mean_delta is None


def test_plain_round_rejects_wrong_rounds_sizes_and_repeats():
    r = PlainRound("run", 1, PEERS, 2, now=0.0, timeout=10.0, min_updates=1)
    with pytest.raises(RemoteProtocolError, match="round"):
        r.receive(PeerId("a"), update(2, 1, [1.0, 1.0]), 0.0)
    with pytest.raises(RemoteProtocolError, match="parameters"):
        r.receive(PeerId("a"), update(1, 1, [1.0, 1.0, 1.0]), 0.0)
    r.receive(PeerId("a"), update(1, 1, [1.0, 1.0]), 0.0)
    with pytest.raises(RemoteProtocolError, match="not expected"):
        r.receive(PeerId("a"), update(1, 1, [1.0, 1.0]), 0.0)
    with pytest.raises(RemoteProtocolError, match="not expected"):
        r.receive(PeerId("zed"), update(1, 1, [1.0, 1.0]), 0.0)


def test_plain_round_finishes_when_the_last_pending_peer_drops():
    r = PlainRound("run", 1, PEERS[:2], 2, now=0.0, timeout=10.0, min_updates=1)
    r.receive(PeerId("a"), update(1, 5, [2.0, 2.0]), 0.0)
    r.drop(PeerId("b"), 0.5, "gone")
    assert r.outcome().mean_delta == [2.0, 2.0]


def test_secure_round_decodes_the_weighted_mean_of_the_deltas():
    rng = random.Random(1)
    fp = FixedPoint.fit(max_peers=3, max_weight=1000, clip=4.0)
    params = RoundParams(
        run="run",
        round=2,
        mode=Mode.FULL,
        participants=PEERS,
        k=2,
        t=2,
        min_survivors=2,
        graph_seed=rng.randbytes(32),
        dim=3,
    )
    runner = SecureRound(params, fp, now=0.0, first_stage_timeout=5.0, stage_timeout=1.0)
    deltas = {p: [rng.uniform(-1, 1), rng.uniform(-1, 1)] for p in PEERS}
    weights = {PeerId("a"): 10, PeerId("b"): 30, PeerId("c"): 60}
    sessions = {p: PeerSession(params, p, fp.encode(deltas[p], weights[p])) for p in PEERS}
    outbox = [(p, m) for p in PEERS for m in sessions[p].start()]
    while outbox:
        sends = [s for sender, m in outbox for s in runner.receive(sender, m, 0.1)]
        outbox = [(s.to, m) for s in sends for m in sessions[s.to].receive(s.msg)]
    outcome = runner.outcome()
    assert outcome.status == "ok" and outcome.weight_sum == 100
    assert outcome.mean_delta is not None
    for i in range(2):
        exact = sum(weights[p] * deltas[p][i] for p in PEERS) / 100
        assert abs(outcome.mean_delta[i] - exact) <= fp.error_bound(3)
    assert set(outcome.stage_seconds) >= {"advertise-keys", "unmask", "decode"}


def test_secure_round_refuses_plain_updates():
    params = RoundParams(
        run="run",
        round=2,
        mode=Mode.FULL,
        participants=PEERS,
        k=2,
        t=2,
        min_survivors=2,
        graph_seed=bytes(32),
        dim=3,
    )
    runner = SecureRound(
        params,
        FixedPoint.fit(max_peers=3, max_weight=10, clip=1.0),
        now=0.0,
        first_stage_timeout=5.0,
        stage_timeout=1.0,
    )
    with pytest.raises(RemoteProtocolError, match="not allowed"):
        runner.receive(PeerId("a"), update(2, 1, [1.0, 1.0]), 0.0)
    assert runner.stage == "advertise-keys"
