"""A lying hub tries to recover one honest peer's input in active rounds, and fails.

Each test is an attack that once worked, run against the real peer sessions
by `tests.crypto.lying_hub.LyingHub`: the hub withholds forwarded shares
and declares the victim's mask partners dropped; it replays consistency
signatures collected in earlier runs of the same round; it announces
weaker parameters and recruits a corrupt peer; a peer advertises a
low-order key. Success is measured on what the attacker can reconstruct,
not on counts of released shares.
"""

from __future__ import annotations

import pytest

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages import Message
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert
from fedd.crypto.secagg.messages.consistency import ConsistencyRequest
from fedd.crypto.secagg.messages.masked_input import MaskedInput
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.params import Mode
from fedd.crypto.secagg.peer import PeerStage
from tests.crypto.lying_hub import Cohort, LyingHub, assert_not_recovered
from tests.crypto.secagg_helpers import make_params, random_inputs, shaped_params

# -- 1. forwarded shares withheld, the victim's mask partners declared dropped ----


def withhold(params, inputs, cohort, victim, kept: int) -> LyingHub:
    """Forward the victim only `kept` of its neighbours' shares, then let exactly those
    neighbours "drop" before their masked input arrives."""
    attack = LyingHub(params, inputs, cohort, seed=kept)
    partners: set[PeerId] = set()

    def forward(to: PeerId, msg: Message) -> Message:
        if to == victim and isinstance(msg, ForwardedShares):
            partners.update(s.peer for s in msg.shares[:kept])
            return ForwardedShares(msg.run, msg.round, msg.shares[:kept])
        return msg

    attack.rewrite_to = forward
    attack.drop_from = lambda sender, msg: type(msg) is MaskedInput and sender in partners
    attack.run()
    return attack


@pytest.mark.parametrize("n", [20, 30])
def test_withheld_shares_and_dropped_partners_expose_no_input(n):
    params = shaped_params(n, Mode.PLUS, active=True, dim=16, dropout=0.1, corrupt=0.05)
    cohort = Cohort(params.participants)
    inputs = random_inputs(params)
    victim = params.participants[0]
    for kept in range(1, params.k + 1):
        attack = withhold(params, inputs, cohort, victim, kept)
        assert_not_recovered(attack.guess(victim), inputs[victim], params.width)


def test_a_peer_does_not_mask_against_too_few_even_with_t_holders():
    # At 50 peers the rule's 2t > k + 1 + a holds with one to spare, so t - 1
    # partners leave t holders, yet the partners plus a corrupt neighbours are
    # not enough: the victim declines rather than mask.
    params = shaped_params(50, Mode.PLUS, active=True, dim=16, dropout=0.1, corrupt=0.05)
    assert (params.k, params.t) == (14, 9)
    cohort = Cohort(params.participants)
    inputs = random_inputs(params)
    victim = params.participants[0]
    attack = withhold(params, inputs, cohort, victim, params.t - 1)
    assert attack.guess(victim) is None
    assert "masking against so few" in (attack.peers[victim].abort_reason or "")
    attack = withhold(params, inputs, cohort, victim, params.t)
    assert attack.guess(victim) is not None
    assert_not_recovered(attack.guess(victim), inputs[victim], params.width)


# -- 2. consistency signatures replayed across re-runs of one round ---------------


def collect_signatures(params, inputs, cohort, survivors, *, seed):
    """One run of the round up to the consistency check, every peer asked to sign `survivors`."""
    run = LyingHub(params, inputs, cohort, seed=seed)
    run.run(stop_at=ConsistencyRequest)
    return [sig for p in survivors if (sig := run.sign(p, survivors)) is not None]


def test_signatures_replayed_from_reruns_of_a_round_expose_no_input():
    params = make_params(n=12, mode=Mode.PLUS, k=6, t=3, min_survivors=7, dim=16, active=True)
    cohort = Cohort(params.participants)
    inputs = random_inputs(params)
    everyone = params.participants
    victim, without = everyone[0], everyone[1:]
    # Runs 1 and 2 of the round: everyone signs a set with the victim, then one without.
    with_victim = collect_signatures(params, inputs, cohort, everyone, seed=1)
    without_victim = collect_signatures(params, inputs, cohort, without, seed=2)
    # Run 3: half the victim's share holders are told it survived, half that it dropped,
    # each half shown the signatures of the matching earlier run.
    attack = LyingHub(params, inputs, cohort, seed=3)
    attack.run(stop_at=ConsistencyRequest)
    holders = [victim, *attack.partners(victim)]
    t = params.t
    for p in holders[:t]:
        if attack.sign(p, everyone) is not None:
            attack.unmask(p, everyone, with_victim)
    for p in holders[t : 2 * t]:
        if attack.sign(p, without) is not None:
            attack.unmask(p, without, without_victim)
    assert_not_recovered(attack.guess(victim), inputs[victim], params.width)


def test_a_signature_from_an_earlier_run_of_the_same_round_does_not_count():
    params = make_params(n=7, t=5, min_survivors=5, max_corrupt=1, dim=16, active=True)
    cohort = Cohort(params.participants)
    inputs = random_inputs(params)
    everyone = params.participants
    earlier = collect_signatures(params, inputs, cohort, everyone, seed=1)
    assert len(earlier) == len(everyone)
    rerun = LyingHub(params, inputs, cohort, seed=2)
    rerun.run(stop_at=ConsistencyRequest)
    me = everyone[0]
    mine = rerun.sign(me, everyone)
    assert mine is not None
    others = [s for s in earlier if s.peer != me]
    assert rerun.unmask(me, everyone, [mine, *others]) is None
    assert rerun.peers[me].stage is PeerStage.ABORTED
    assert "valid consistency signatures" in (rerun.peers[me].abort_reason or "")


# -- 4. weaker parameters announced by the hub, with one corrupt peer --------------


@pytest.mark.parametrize(
    ("t", "min_survivors", "max_corrupt"),
    [
        pytest.param(6, 6, 0, id="hub-claims-nobody-is-corrupt"),
        pytest.param(7, 7, 1, id="as-the-peers-require"),
    ],
)
def test_announced_parameters_and_a_corrupt_peer_expose_no_input(t, min_survivors, max_corrupt):
    params = make_params(
        n=11, t=t, min_survivors=min_survivors, max_corrupt=max_corrupt, dim=16, active=True
    )
    cohort = Cohort(params.participants)
    inputs = random_inputs(params)
    everyone = params.participants
    victim, corrupt = everyone[0], everyone[-1]
    honest = [p for p in everyone if p != corrupt]
    attack = LyingHub(params, inputs, cohort, seed=4, corrupt={corrupt})
    attack.run(stop_at=ConsistencyRequest)
    without = tuple(p for p in everyone if p != victim)
    # Two disjoint halves of the honest peers; the corrupt one signs both stories.
    half = len(honest) // 2
    told_alive, told_dropped = honest[:half], honest[half:]
    for group, survivors in ((told_alive, everyone), (told_dropped, without)):
        signatures = [s for p in (*group, corrupt) if (s := attack.sign(p, survivors)) is not None]
        for p in group:
            attack.unmask(p, survivors, signatures)
    assert_not_recovered(attack.guess(victim), inputs[victim], params.width)


# -- 5. a low-order key at advertisement ---------------------------------------------

# X25519 public keys of small order (RFC 7748 section 6.1; the list libsodium refuses).
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


@pytest.mark.parametrize("active", [False, True], ids=["passive", "active"])
@pytest.mark.parametrize("which", ["c_pk", "s_pk"])
def test_a_low_order_key_excludes_its_sender_and_not_its_neighbours(active, which):
    params = make_params(n=6, t=4, min_survivors=4, max_corrupt=1, dim=16, active=active)
    cohort = Cohort(params.participants)
    inputs = random_inputs(params)
    culprit = params.participants[-1]
    attack = LyingHub(params, inputs, cohort, seed=5)

    def low_order(sender: PeerId, msg: Message) -> Message:
        if sender == culprit and isinstance(msg, KeyAdvert):
            point = LOW_ORDER[2] if which == "s_pk" else LOW_ORDER[3]
            keys = {"c_pk": msg.c_pk, "s_pk": msg.s_pk, which: point}
            return KeyAdvert(msg.run, msg.round, keys["c_pk"], keys["s_pk"], msg.signature)
        return msg

    attack.rewrite_from = low_order
    attack.run()
    honest = tuple(p for p in params.participants if p != culprit)
    assert set(attack.refused) == {culprit}
    assert "low-order" in attack.refused[culprit]
    assert set(attack.hub.departed) == {culprit}
    result = attack.hub.result()
    assert result.survivors == honest


def test_every_low_order_point_is_refused_at_advertisement():
    params = make_params(n=5, t=3, dim=4)
    culprit = params.participants[0]
    for point in LOW_ORDER:
        attack = LyingHub(params, random_inputs(params), Cohort(params.participants), seed=6)
        attack.rewrite_from = lambda sender, msg, point=point: (
            KeyAdvert(msg.run, msg.round, msg.c_pk, point, msg.signature)
            if sender == culprit and isinstance(msg, KeyAdvert)
            else msg
        )
        attack.run()
        assert set(attack.refused) == {culprit}, point.hex()
