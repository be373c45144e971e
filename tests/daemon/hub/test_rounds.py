"""Round runners without sockets: plain and secure sums of the peers' vectors.

A round's vector has the shape of its `Layout`; here a training round of one
feature, so each vector holds [w, w * bias_delta, w * weight_delta].
"""

from __future__ import annotations

import random

import pytest

from fedd.crypto.encoding import FixedPoint
from fedd.crypto.errors import RemoteProtocolError
from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession
from fedd.daemon.hub.rounds import PlainRound, SecureRound
from fedd.daemon.transport.contribution import Layout
from fedd.daemon.transport.messages.uploads import PlainContribution

PEERS = tuple(PeerId(p) for p in ("a", "b", "c"))
ENCODING = FixedPoint.fit(max_peers=3, max_weight=1000, clip=8.0, mod_bits=64)
LAYOUT = Layout("training", 1, ENCODING)


def contribution(round_: int, n: int, delta: list[float]) -> PlainContribution:
    return PlainContribution("run", round_, LAYOUT.encode(update=(n, delta)))


def plain(round_: int, peers: tuple[PeerId, ...] = PEERS, min_updates: int = 1) -> PlainRound:
    return PlainRound("run", round_, peers, LAYOUT, now=0.0, timeout=10.0, min_updates=min_updates)


def test_plain_round_sums_the_vectors_to_the_sample_weighted_mean():
    r = plain(4)
    r.receive(PeerId("a"), contribution(4, 100, [1.0, 2.0]), 1.0)
    r.receive(PeerId("b"), contribution(4, 300, [5.0, -2.0]), 1.0)
    assert not r.finished
    r.receive(PeerId("c"), contribution(4, 600, [0.0, 0.0]), 2.0)
    outcome = r.outcome()
    assert outcome.status == "ok" and outcome.total is not None
    decoded = LAYOUT.decode(outcome.total, len(outcome.survivors))
    assert decoded.weight_sum == 1000
    bound = ENCODING.error_bound(3)
    assert decoded.mean == pytest.approx([0.1 + 1.5, 0.2 - 0.6], abs=bound)
    assert outcome.survivors == PEERS
    assert outcome.stage_seconds["train_upload"] == 2.0


def test_plain_round_closes_at_the_deadline_with_who_answered():
    r = plain(1, min_updates=2)
    r.receive(PeerId("a"), contribution(1, 1, [1.0, 1.0]), 1.0)
    r.on_timeout(9.9)
    assert not r.finished
    r.on_timeout(10.0)
    outcome = r.outcome()
    assert outcome.status == "aborted" and "needs 2" in outcome.reason
    assert outcome.total is None and outcome.survivors == (PeerId("a"),)


def test_plain_round_rejects_wrong_rounds_sizes_and_repeats():
    r = plain(1)
    with pytest.raises(RemoteProtocolError, match="round"):
        r.receive(PeerId("a"), contribution(2, 1, [1.0, 1.0]), 0.0)
    with pytest.raises(RemoteProtocolError, match="bytes"):
        r.receive(PeerId("a"), PlainContribution("run", 1, b"\0" * 8), 0.0)
    r.receive(PeerId("a"), contribution(1, 1, [1.0, 1.0]), 0.0)
    with pytest.raises(RemoteProtocolError, match="not expected"):
        r.receive(PeerId("a"), contribution(1, 1, [1.0, 1.0]), 0.0)
    with pytest.raises(RemoteProtocolError, match="not expected"):
        r.receive(PeerId("zed"), contribution(1, 1, [1.0, 1.0]), 0.0)


def test_plain_round_finishes_when_the_last_pending_peer_drops():
    r = plain(1, PEERS[:2])
    r.receive(PeerId("a"), contribution(1, 5, [2.0, 2.0]), 0.0)
    r.drop(PeerId("b"), 0.5, "gone")
    outcome = r.outcome()
    assert outcome.total is not None
    assert LAYOUT.decode(outcome.total, len(outcome.survivors)).mean == pytest.approx(
        [2.0, 2.0], abs=1e-9
    )


def _params(seed: bytes) -> RoundParams:
    return RoundParams(
        run="run",
        round=2,
        mode=Mode.FULL,
        participants=PEERS,
        k=2,
        t=2,
        min_survivors=2,
        graph_seed=seed,
        dim=LAYOUT.lanes,
        mod_bits=LAYOUT.mod_bits,
    )


def test_secure_round_sums_the_masked_vectors():
    rng = random.Random(1)
    params = _params(rng.randbytes(32))
    runner = SecureRound(params, now=0.0, first_stage_timeout=5.0, stage_timeout=1.0)
    deltas = {p: [rng.uniform(-1, 1), rng.uniform(-1, 1)] for p in PEERS}
    weights = {PeerId("a"): 10, PeerId("b"): 30, PeerId("c"): 60}
    sessions = {
        p: PeerSession(params, p, LAYOUT.encode(update=(weights[p], deltas[p]))) for p in PEERS
    }
    outbox = [(p, m) for p in PEERS for m in sessions[p].start()]
    while outbox:
        sends = [s for sender, m in outbox for s in runner.receive(sender, m, 0.1)]
        outbox = [(s.to, m) for s in sends for m in sessions[s.to].receive(s.msg)]
    outcome = runner.outcome()
    assert outcome.status == "ok" and outcome.total is not None
    decoded = LAYOUT.decode(outcome.total, len(outcome.survivors))
    assert decoded.weight_sum == 100 and decoded.mean is not None
    for i in range(2):
        exact = sum(weights[p] * deltas[p][i] for p in PEERS) / 100
        assert abs(decoded.mean[i] - exact) <= ENCODING.error_bound(3)
    assert set(outcome.stage_seconds) >= {"advertise-keys", "unmask"}


def test_secure_round_refuses_plain_contributions():
    runner = SecureRound(_params(bytes(32)), now=0.0, first_stage_timeout=5.0, stage_timeout=1.0)
    with pytest.raises(RemoteProtocolError, match="not allowed"):
        runner.receive(PeerId("a"), contribution(2, 1, [1.0, 1.0]), 0.0)
    assert runner.stage == "advertise-keys"
