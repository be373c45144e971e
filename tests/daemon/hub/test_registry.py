"""The hub's peer table: registration, liveness, duplicate ids, feature checks."""

from __future__ import annotations

import pytest

from fedd.crypto.secagg.fields import PeerId
from fedd.daemon.hub.registry import PeerRecord, PeerStatus, Refused, Registry
from fedd.daemon.transport.messages.membership import WIRE_PROTOCOL, Hello

FEATURES = ("V1", "V2", "Amount")


def hello(peer: str, features: tuple[str, ...] = FEATURES, shard: str = "") -> Hello:
    return Hello("", 0, PeerId(peer), features, shard=shard)


def test_first_peer_fixes_the_features_and_later_peers_must_match():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    assert reg.features == FEATURES
    with pytest.raises(Refused, match=r"3 features, your data has 2; missing: 'Amount'$") as info:
        reg.hello(b"r2", hello("b", ("V1", "V2")), 0.0)
    assert info.value.retry is False
    wider = ("id", "V1", "V2", "Amount", *(f"x{i}" for i in range(6)))
    with pytest.raises(Refused) as info:
        reg.hello(b"r4", hello("d", wider), 0.0)
    assert str(info.value) == (
        "feature mismatch: this hub trains on 3 features, your data has 10; not on the hub: "
        "'id', 'x0', 'x1', 'x2', 'x3' and 2 more (--ignore-columns leaves them out)"
    )
    with pytest.raises(
        Refused, match=r"has 2; not on the hub: 'x' \(.*\); missing: 'V2', 'Amount'$"
    ):
        reg.hello(b"r5", hello("e", ("V1", "x")), 0.0)
    with pytest.raises(Refused, match="column 2 is 'V9'"):
        reg.hello(b"r3", hello("c", ("V1", "V9", "Amount")), 0.0)
    assert reg.alive() == ["a"]


def test_a_live_id_cannot_be_taken_from_another_connection():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    with pytest.raises(Refused, match="already connected") as info:
        reg.hello(b"r2", hello("a"), 1.0)
    assert info.value.retry is True
    assert reg.peer_at(b"r1") == "a" and reg.peer_at(b"r2") is None


def test_after_silence_the_id_may_register_again_from_a_new_connection():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    assert reg.expire(4.0) == []
    assert reg.expire(5.5) == ["a"]
    assert reg.record(PeerId("a")).status is PeerStatus.GONE
    assert reg.peer_at(b"r1") is None
    record = reg.hello(b"r2", hello("a"), 6.0)
    assert record.status is PeerStatus.ALIVE and record.first_seen == 0.0
    assert reg.peer_at(b"r2") == "a"


def test_seen_keeps_a_peer_alive_and_leave_marks_it_left():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    reg.seen(PeerId("a"), 4.0)
    assert reg.expire(8.0) == []
    assert reg.leave(PeerId("a")) is True
    assert reg.leave(PeerId("a")) is False
    assert reg.record(PeerId("a")).status is PeerStatus.LEFT
    assert reg.alive() == []


def test_one_connection_cannot_switch_ids():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    with pytest.raises(Refused, match="registered as 'a'"):
        reg.hello(b"r1", hello("b"), 0.0)


def test_restored_records_are_known_but_not_alive():
    reg = Registry(liveness_s=5, features=FEATURES)
    reg.restore(PeerRecord(PeerId("a"), b"old", 1.0, 2.0, PeerStatus.ALIVE, 3))
    assert reg.alive() == [] and len(reg) == 1
    record = reg.hello(b"r9", hello("a", shard="auto"), 10.0)
    assert record.shard == 3 and record.status is PeerStatus.ALIVE


# -- shards (--shard auto) --------------------------------------------------------


def auto(reg: Registry, peer: str, routing: bytes, now: float = 0.0) -> int:
    return reg.hello(routing, hello(peer, shard="auto"), now).shard


def test_identical_peers_get_distinct_shards_from_one():
    reg = Registry(liveness_s=5)
    assert [auto(reg, p, p.encode()) for p in ("c", "a", "b")] == [1, 2, 3]


def test_a_peer_without_auto_holds_no_shard():
    reg = Registry(liveness_s=5)
    assert reg.hello(b"r1", hello("a"), 0.0).shard == 0
    assert auto(reg, "b", b"r2") == 1


def test_a_shard_is_never_held_twice_while_its_holder_is_alive():
    reg = Registry(liveness_s=5)
    assert auto(reg, "a", b"ra") == 1
    assert auto(reg, "b", b"rb") == 2
    assert reg.leave(PeerId("a"))
    # a's shard passes to the next newcomer, and a gets a free one when it returns.
    assert auto(reg, "c", b"rc", 1.0) == 1
    assert auto(reg, "a", b"ra2", 2.0) == 3
    held = [r.shard for r in reg if r.status is PeerStatus.ALIVE]
    assert sorted(held) == [1, 2, 3]


def test_a_returning_peer_keeps_its_shard_when_still_free():
    reg = Registry(liveness_s=5)
    auto(reg, "a", b"ra")
    auto(reg, "b", b"rb")
    assert reg.expire(6.0) == ["a", "b"]
    assert auto(reg, "b", b"rb2", 7.0) == 2
    assert auto(reg, "a", b"ra2", 7.0) == 1
    assert auto(reg, "a", b"ra2", 8.0) == 1  # a repeated Hello on the same connection


def test_with_max_shards_extra_peers_wait_and_a_refusal_changes_nothing():
    reg = Registry(liveness_s=5, max_shards=2)
    auto(reg, "a", b"ra")
    auto(reg, "b", b"rb")
    with pytest.raises(Refused, match="all 2 shards are held") as info:
        auto(reg, "c", b"rc")
    assert info.value.retry is True
    assert len(reg) == 2 and reg.peer_at(b"rc") is None
    reg.leave(PeerId("b"))
    assert auto(reg, "c", b"rc", 1.0) == 2


def test_a_restored_shard_beyond_a_new_limit_is_replaced():
    reg = Registry(liveness_s=5, features=FEATURES, max_shards=2)
    reg.restore(PeerRecord(PeerId("a"), b"", 1.0, 2.0, PeerStatus.GONE, 7))
    assert auto(reg, "a", b"ra", 3.0) == 1


# -- CURVE identity ---------------------------------------------------------------


def test_an_authenticated_connection_must_claim_its_keys_name():
    reg = Registry(liveness_s=5)
    with pytest.raises(Refused, match="allowed as 'alice', not as 'bob'") as info:
        reg.hello(b"r1", hello("bob"), 0.0, authenticated=PeerId("alice"), public_key="K" * 40)
    assert info.value.retry is False
    assert len(reg) == 0 and reg.features is None
    record = reg.hello(
        b"r1", hello("alice"), 0.0, authenticated=PeerId("alice"), public_key="K" * 40
    )
    assert record.public_key == "K" * 40


def test_an_impostor_cannot_take_an_id_even_while_its_owner_is_away():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("alice"), 0.0, authenticated=PeerId("alice"), public_key="A" * 40)
    reg.leave(PeerId("alice"))
    with pytest.raises(Refused, match="not as 'alice'"):
        reg.hello(b"r2", hello("alice"), 1.0, authenticated=PeerId("bob"), public_key="B" * 40)
    assert reg.record(PeerId("alice")).public_key == "A" * 40


@pytest.mark.parametrize("out", ["left", "gone"])
def test_a_connection_cannot_collect_ids_by_leaving_in_between(out):
    """Hello, Bye, Hello under a new id, ...: one connection must not grow the table."""
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    if out == "left":
        reg.leave(PeerId("a"))
    else:
        assert reg.expire(10.0) == ["a"]
    with pytest.raises(Refused, match="registered as 'a'") as info:
        reg.hello(b"r1", hello("b"), 11.0)
    assert info.value.retry is False
    assert len(reg) == 1 and reg.peer_at(b"r1") is None
    assert reg.hello(b"r1", hello("a"), 12.0).status is PeerStatus.ALIVE
    assert reg.peer_at(b"r1") == "a"


@pytest.mark.parametrize("protocol", [1, 1000])
def test_a_peer_of_another_protocol_version_is_refused(protocol):
    reg = Registry(liveness_s=5)
    with pytest.raises(
        Refused, match=f"protocol {protocol}.*speaks protocol {WIRE_PROTOCOL}"
    ) as info:
        reg.hello(b"r1", Hello("", 0, PeerId("a"), FEATURES, protocol=protocol), 0.0)
    assert info.value.retry is False
    assert len(reg) == 0 and reg.features is None
