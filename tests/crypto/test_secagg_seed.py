"""The graph seed of active SecAgg+ rounds: committed, revealed, rebuilt when a reveal is lost.

Rounds run through the real sessions (`fedd.simulate.run_secure_round`, and
`tests.crypto.lying_hub.LyingHub` where a party misbehaves).
"""

from __future__ import annotations

import pytest

from fedd.crypto import shamir
from fedd.crypto.errors import RemoteProtocolError, RoundAborted
from fedd.crypto.secagg.hub import HubSession, HubStage
from fedd.crypto.secagg.messages import MESSAGE_TYPES, Message
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert
from fedd.crypto.secagg.messages.seed import SeedNonces, SeedRecovery, SeedReveal, SeedShares
from fedd.crypto.secagg.messages.share_keys import SealedShare
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerStage
from fedd.crypto.secagg.seed import commitment, graph_seed, recover_nonce
from fedd.simulate import run_secure_round
from tests.crypto.lying_hub import Cohort, LyingHub
from tests.crypto.secagg_helpers import make_params, random_inputs
from tests.crypto.test_secagg_transitions import ANY_MESSAGE


def drawn(**change: int) -> RoundParams:
    """An active SecAgg+ round of 12 peers on a sparse graph (k = 6)."""
    shape = {"n": 12, "k": 6, "t": 5, "min_survivors": 7, **change}
    return make_params(mode=Mode.PLUS, active=True, dim=16, **shape)


def test_a_nonce_is_rebuilt_from_max_corrupt_plus_one_shares_and_checked():
    params = drawn()
    nonce = bytes(range(32))
    committed = commitment(params, params.participants[0], nonce)
    xs = [params.x_of(p) for p in params.participants[1:]]
    shares = shamir.split(nonce, t=params.max_corrupt + 1, xs=xs)
    assert recover_nonce(params, params.participants[0], committed, shares[3:5]) == nonce
    with pytest.raises(RoundAborted, match="only 1 shares"):
        recover_nonce(params, params.participants[0], committed, shares[:1])
    with pytest.raises(RoundAborted, match="not the one committed"):
        recover_nonce(params, params.participants[1], committed, shares[:2])


@pytest.mark.parametrize("silent", [1, 2])
def test_nonces_that_never_come_are_rebuilt_and_the_sum_is_exact(silent):
    params = drawn()
    inputs = random_inputs(params)
    dropped = {p: "seed-reveal" for p in params.participants[-silent:]}
    report = run_secure_round(params, inputs, dropped)
    assert report.status == "ok", report.reason
    assert report.exact is True
    assert set(report.survivor_ids) == set(params.participants) - set(dropped)


def test_every_dropout_stage_of_an_active_plus_round_gives_the_exact_sum():
    params = drawn(n=16, min_survivors=9)
    stages = ["advertise-keys", "seed-reveal", "share-keys", "masked-input"]
    stages += ["consistency-check", "unmask"]
    for i, stage in enumerate(stages):
        dropped = {params.participants[i]: stage, params.participants[-1 - i]: stage}
        report = run_secure_round(params, random_inputs(params, seed=i), dropped)
        assert (report.status, report.exact) == ("ok", True), (stage, report.reason)


def test_a_reveal_that_is_not_the_committed_nonce_excludes_its_sender():
    params = drawn()
    liar = params.participants[3]
    attack = LyingHub(params, random_inputs(params), Cohort(params.participants), seed=1)

    def other_nonce(sender, msg: Message) -> Message:
        if sender == liar and isinstance(msg, SeedReveal):
            return SeedReveal(msg.run, msg.round, bytes(32))
        return msg

    attack.rewrite_from = other_nonce
    attack.run()
    assert set(attack.refused) == {liar}
    assert "did not commit to" in attack.refused[liar]
    assert attack.hub.result().survivors == tuple(p for p in params.participants if p != liar)


def test_a_dealer_of_bad_shares_that_withholds_its_nonce_aborts_the_round():
    params = drawn()
    cheat = params.participants[0]
    attack = LyingHub(params, random_inputs(params), Cohort(params.participants), seed=2)

    def spoil(sender, msg: Message) -> Message:
        if sender == cheat and isinstance(msg, KeyAdvert):
            garbage = tuple(SealedShare(s.peer, bytes(len(s.ciphertext))) for s in msg.seed_shares)
            return KeyAdvert(
                msg.run, msg.round, msg.c_pk, msg.s_pk, msg.signature, msg.commitment, garbage
            )
        return msg

    attack.rewrite_from = spoil
    attack.drop_from = lambda sender, msg: sender == cheat and isinstance(msg, SeedReveal)
    attack.run()
    assert attack.hub.stage is HubStage.ABORTED
    assert f"nonce of {cheat!r}" in (attack.hub.abort_reason or "")
    # The honest peers ignored the unreadable shares; none of them was blamed.
    assert set(attack.hub.departed) == {cheat}
    assert all(s.stage is not PeerStage.DONE for s in attack.peers.values())


def test_peers_refuse_nonces_that_are_not_the_committed_ones():
    params = drawn()
    attack = LyingHub(params, random_inputs(params), Cohort(params.participants), seed=3)
    attack.run(stop_at=SeedNonces)
    [first, *_] = attack.stopped
    assert isinstance(first.msg, SeedNonces)
    forged = tuple(
        type(n)(n.peer, bytes(32)) if i == 0 else n for i, n in enumerate(first.msg.nonces)
    )
    me = first.to
    with pytest.raises(RemoteProtocolError, match="not the one it committed to"):
        attack.peers[me].receive(SeedNonces(params.run, params.round, forged))
    other = attack.stopped[1]
    partial = SeedNonces(params.run, params.round, other.msg.nonces[1:])  # type: ignore[union-attr]
    with pytest.raises(RemoteProtocolError, match="not those of the roster"):
        attack.peers[other.to].receive(partial)


def test_a_peer_reveals_shares_only_of_listed_nonces_and_the_seed_is_shared():
    params = drawn()
    attack = LyingHub(params, random_inputs(params), Cohort(params.participants), seed=4)
    attack.run(stop_at=SeedNonces)
    nonces = {n.peer: n.value for n in attack.stopped[0].msg.nonces}  # type: ignore[union-attr]
    assert set(nonces) == set(params.participants)
    assert len({graph_seed(params, nonces)}) == 1
    me = attack.stopped[0].to
    [reply] = attack.peers[me].receive(
        SeedRecovery(params.run, params.round, (params.participants[-1],))
    )
    assert isinstance(reply, SeedShares) and [s.owner for s in reply.shares] == ["p012"]
    with pytest.raises(RemoteProtocolError, match="outside the roster"):
        attack.peers[me].receive(SeedRecovery(params.run, params.round, ("p999",)))  # type: ignore[arg-type]


def hub_in_recovery(params: RoundParams) -> tuple[HubSession, str]:
    """A hub whose seed stage misses one nonce; returns it and a peer it waits for."""
    silent = params.participants[-1]
    attack = LyingHub(params, random_inputs(params), Cohort(params.participants), seed=5)
    attack.drop_from = lambda sender, msg: sender == silent and isinstance(msg, SeedReveal)
    attack.run(stop_at=SeedRecovery)
    assert attack.hub.stage is HubStage.SEED_RECOVERY
    return attack.hub, attack.stopped[0].to


@pytest.mark.parametrize("kind", MESSAGE_TYPES, ids=lambda k: k.__name__)
def test_the_hub_in_seed_recovery_takes_only_seed_shares(kind):
    params = drawn()
    hub, helper = hub_in_recovery(params)
    msg = ANY_MESSAGE[kind]
    if kind is SeedShares:
        hub.receive(helper, SeedShares(params.run, params.round, ()), 0.0)
        assert helper not in hub.pending
    else:
        with pytest.raises(RemoteProtocolError):
            hub.receive(helper, msg, 0.0)
        assert hub.stage is HubStage.SEED_RECOVERY and helper in hub.pending
