"""A lying hub against honest peers in active rounds (Bonawitz et al. 2017, section 6.3).

The honest hub session drives stages 0-2; then a malicious hub takes over:
it shows different survivor sets to different peers, asks for both shares
of one peer, replays messages and signatures of an earlier round, drops
signatures, invents peers and swaps keys. Each time the honest peers end
ABORTED with a clear reason, and what they release never lets the hub
unmask one peer's input: it never holds t shares of both b_u and s_sk_u.
"""

from __future__ import annotations

from collections import Counter

import pytest

from fedd.crypto.errors import CryptoCheckFailed, LocalProtocolError, RemoteProtocolError
from fedd.crypto.secagg.hub import HubSession, HubStage
from fedd.crypto.secagg.messages.advertise_keys import KeyAdvert, PeerKeys, Roster
from fedd.crypto.secagg.messages.consistency import (
    ConsistencyRequest,
    ConsistencySignature,
    SignedBy,
)
from fedd.crypto.secagg.messages.unmask import UnmaskRequest, UnmaskShares
from fedd.crypto.secagg.params import Mode, RoundParams
from fedd.crypto.secagg.peer import PeerSession, PeerStage
from fedd.crypto.signing import SigningKey
from fedd.simulate import run_secure_round
from tests.crypto.secagg_helpers import make_params, random_inputs, seeded

# n = 7, one corrupt: t = min_survivors = 5 > (7 + 1)/2, so two disjoint sets
# of honest signers, each with the corrupt one, cannot both reach it.
N, T = 7, 5


class Round:
    """Seven honest peers and the honest hub, run up to the consistency check."""

    def __init__(self, params: RoundParams | None = None, *, seed: int = 3) -> None:
        self.params = params or make_params(n=N, t=T, active=True)
        self.keys = {
            p: SigningKey.generate(seeded(seed + i)) for i, p in enumerate(self.params.participants)
        }
        self.trusted = {p: k.public for p, k in self.keys.items()}
        inputs = random_inputs(self.params)
        self.peers = {
            p: PeerSession(
                self.params,
                p,
                inputs[p],
                seeded(50 + i),
                signing_key=self.keys[p],
                trusted=self.trusted,
            )
            for i, p in enumerate(self.params.participants)
        }
        self.hub = HubSession(self.params, now=0.0, stage_timeout=10.0)
        self.released: list[UnmaskShares] = []

    def run_to_consistency(self) -> None:
        outbox = [(p, m) for p in self.peers for m in self.peers[p].start()]
        while outbox and self.hub.stage is not HubStage.CONSISTENCY:
            sends = [s for sender, m in outbox for s in self.hub.receive(sender, m, 0.0)]
            outbox = [
                (s.to, m)
                for s in sends
                if not isinstance(s.msg, ConsistencyRequest)
                for m in self.peers[s.to].receive(s.msg)
            ]
        assert self.hub.stage is HubStage.CONSISTENCY

    def sign(self, peer: str, survivors: tuple[str, ...]) -> SignedBy:
        p = self.params
        [reply] = self.peers[peer].receive(ConsistencyRequest(p.run, p.round, survivors))
        assert isinstance(reply, ConsistencySignature)
        return SignedBy(peer, reply.signature)

    def ask(self, peer: str, survivors: tuple[str, ...], signatures) -> UnmaskShares | Exception:
        """Send an UnmaskRequest; returns the shares released, or the refusal."""
        p = self.params
        request = UnmaskRequest(p.run, p.round, survivors, len(survivors), tuple(signatures))
        try:
            [reply] = self.peers[peer].receive(request)
        except (RemoteProtocolError, CryptoCheckFailed) as exc:
            assert self.peers[peer].stage is PeerStage.ABORTED
            return exc
        assert isinstance(reply, UnmaskShares)
        self.released.append(reply)
        return reply

    def can_unmask_someone(self) -> list[str]:
        """Owners with at least t released shares of b AND of s_sk."""
        b = Counter(s.owner for r in self.released for s in r.b_shares)
        s = Counter(s.owner for r in self.released for s in r.s_shares)
        return [o for o in b if b[o] >= self.params.t and s[o] >= self.params.t]


def test_an_honest_active_round_gives_the_exact_sum():
    for mode, n, k in ((Mode.FULL, 7, None), (Mode.PLUS, 12, 6)):
        params = make_params(
            n=n, mode=mode, k=k, t=5, min_survivors=7 if n == 12 else 5, active=True
        )
        inputs = random_inputs(params)
        report = run_secure_round(params, inputs, {params.participants[-1]: "unmask"})
        assert report.status == "ok" and report.exact is True


def test_different_survivor_sets_for_different_peers_are_refused():
    r = Round()
    r.run_to_consistency()
    everyone = r.params.participants
    victim = everyone[-1]
    without = tuple(p for p in everyone if p != victim)
    group_a, group_b = everyone[:2], everyone[2:]
    sigs_a = [r.sign(p, without) for p in group_a]  # told: the victim dropped
    sigs_b = [r.sign(p, everyone) for p in group_b]  # told: the victim survived
    for p in group_a:
        # Two signatures over "victim dropped" are not enough (min 5), and B's
        # signatures are over another set.
        refused = r.ask(p, without, sigs_a + sigs_b)
        assert isinstance(refused, CryptoCheckFailed)
        assert "valid consistency signatures" in str(refused)
    for p in group_b:
        released = r.ask(p, everyone, sigs_b)
        assert isinstance(released, UnmaskShares)
        assert victim not in {s.owner for s in released.s_shares}
    assert r.can_unmask_someone() == []


def test_a_request_for_another_set_than_the_one_signed_is_refused():
    r = Round()
    r.run_to_consistency()
    everyone = r.params.participants
    sigs = [r.sign(p, everyone) for p in everyone]
    # The hub now claims the last peer dropped, to get its s_sk shares as well.
    without = everyone[:-1]
    refused = r.ask(everyone[0], without, sigs)
    assert isinstance(refused, RemoteProtocolError)
    assert "another survivor set" in str(refused)
    assert r.released == []


def test_a_dropped_signature_below_min_survivors_is_refused():
    r = Round()
    r.run_to_consistency()
    everyone = r.params.participants
    sigs = [r.sign(p, everyone) for p in everyone]
    refused = r.ask(everyone[0], everyone, sigs[: r.params.min_survivors - 1])
    assert isinstance(refused, CryptoCheckFailed)
    released = r.ask(everyone[1], everyone, sigs[: r.params.min_survivors])
    assert isinstance(released, UnmaskShares)


def test_forged_or_repeated_signatures_do_not_count():
    r = Round()
    r.run_to_consistency()
    everyone = r.params.participants
    sigs = [r.sign(p, everyone[:]) for p in everyone[:2]]
    forged = [SignedBy(p, bytes(64)) for p in everyone[2:5]]
    refused = r.ask(everyone[0], everyone, sigs + forged)
    assert isinstance(refused, CryptoCheckFailed)


def test_signatures_replayed_from_an_earlier_round_do_not_count():
    old = Round(make_params(n=N, t=T, active=True, round=4))
    old.run_to_consistency()
    everyone = old.params.participants
    old_sigs = [old.sign(p, everyone) for p in everyone]
    new = Round(make_params(n=N, t=T, active=True, round=5))
    new.keys, new.trusted = old.keys, old.trusted  # same long-term keys
    new.peers = {
        p: PeerSession(
            new.params,
            p,
            random_inputs(new.params)[p],
            seeded(90 + i),
            signing_key=old.keys[p],
            trusted=old.trusted,
        )
        for i, p in enumerate(everyone)
    }
    new.hub = HubSession(new.params, now=0.0, stage_timeout=10.0)
    new.run_to_consistency()
    new.sign(everyone[0], everyone)
    refused = new.ask(everyone[0], everyone, old_sigs)
    assert isinstance(refused, CryptoCheckFailed)
    assert new.released == []


def test_replayed_messages_of_an_earlier_round_abort_the_peer():
    old = make_params(n=N, t=T, active=True, round=4)
    r = Round(make_params(n=N, t=T, active=True, round=5))
    r.run_to_consistency()
    peer = r.params.participants[0]
    stale = ConsistencyRequest(old.run, old.round, r.params.participants)
    with pytest.raises(RemoteProtocolError, match="round 4"):
        r.peers[peer].receive(stale)
    assert r.peers[peer].stage is PeerStage.ABORTED


def advert_of(r: Round, peer: str) -> KeyAdvert:
    seed = 1000 + r.params.participants.index(peer)
    session = PeerSession(
        r.params,
        peer,
        bytes(r.params.vector_size),
        seeded(seed),
        signing_key=r.keys[peer],
        trusted=r.trusted,
    )
    [advert] = session.start()
    assert isinstance(advert, KeyAdvert)
    return advert


def roster_for(r: Round, entries: list[PeerKeys]) -> Roster:
    return Roster(r.params.run, r.params.round, tuple(entries))


def test_an_invented_peer_is_refused():
    r = Round()
    me, other = r.params.participants[:2]
    r.peers[me].start()
    stranger = SigningKey.generate(seeded(999))
    advert = advert_of(r, other)
    from fedd.crypto.secagg.signed import advert_statement, session_digest

    session = session_digest(r.params, b"")
    forged = stranger.sign(advert_statement(session, other, advert.c_pk, advert.s_pk, b""))
    with pytest.raises(CryptoCheckFailed):
        r.peers[me].receive(roster_for(r, [PeerKeys(other, advert.c_pk, advert.s_pk, forged)]))
    assert r.peers[me].stage is PeerStage.ABORTED


def test_swapped_keys_under_a_genuine_signature_are_refused():
    r = Round()
    me, a, b = r.params.participants[:3]
    r.peers[me].start()
    adv_a, adv_b = advert_of(r, a), advert_of(r, b)
    # The hub substitutes b's keys into a's entry (a man in the middle).
    entries = [PeerKeys(a, adv_b.c_pk, adv_b.s_pk, adv_a.signature)]
    with pytest.raises(CryptoCheckFailed):
        r.peers[me].receive(roster_for(r, entries))


def test_an_unsigned_roster_entry_is_refused():
    r = Round()
    me, other = r.params.participants[:2]
    r.peers[me].start()
    advert = advert_of(r, other)
    with pytest.raises(CryptoCheckFailed):
        r.peers[me].receive(roster_for(r, [PeerKeys(other, advert.c_pk, advert.s_pk)]))


def test_a_participant_outside_the_trusted_keys_is_refused():
    r = Round()
    me, other = r.params.participants[:2]
    r.trusted.pop(other)
    with pytest.raises(LocalProtocolError, match="without a trusted signing key: p002"):
        PeerSession(
            r.params,
            me,
            bytes(r.params.vector_size),
            seeded(4),
            signing_key=r.keys[me],
            trusted=r.trusted,
        )


def test_a_roster_naming_a_non_participant_is_refused():
    r = Round()
    me, other = r.params.participants[:2]
    r.peers[me].start()
    advert = advert_of(r, other)
    entry = PeerKeys("p999", advert.c_pk, advert.s_pk, advert.signature)  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError, match="not a participant"):
        r.peers[me].receive(roster_for(r, [entry]))


def test_the_hub_refuses_unsigned_advertisements_in_active_rounds():
    r = Round()
    advert = advert_of(r, r.params.participants[0])
    unsigned = KeyAdvert(advert.run, advert.round, advert.c_pk, advert.s_pk)
    with pytest.raises(RemoteProtocolError, match="signed"):
        r.hub.receive(r.params.participants[0], unsigned, 0.0)


def test_active_rounds_need_keys_and_a_majority_threshold():
    params = make_params(n=N, t=T, active=True)
    with pytest.raises(LocalProtocolError, match="signing key"):
        PeerSession(params, params.participants[0], bytes(params.vector_size))
    with pytest.raises(LocalProtocolError, match="above"):
        make_params(n=N, t=3, active=True)  # 3 is not above 7/2
    with pytest.raises(LocalProtocolError, match="above"):
        make_params(n=N, t=4, active=True, max_corrupt=2)  # 4 is not above 9/2
