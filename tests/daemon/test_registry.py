"""The hub's peer table: registration, liveness, duplicate ids, feature checks."""

from __future__ import annotations

import pytest

from crypto.secagg.fields import PeerId
from daemon.messages import Hello
from daemon.registry import PeerRecord, PeerStatus, Refused, Registry

FEATURES = ("V1", "V2", "Amount")


def hello(peer: str, features: tuple[str, ...] = FEATURES) -> Hello:
    return Hello("", 0, PeerId(peer), features)


def test_first_peer_fixes_the_features_and_later_peers_must_match():
    reg = Registry(liveness_s=5)
    reg.hello(b"r1", hello("a"), 0.0)
    assert reg.features == FEATURES
    with pytest.raises(Refused, match="3 features, your data has 2") as info:
        reg.hello(b"r2", hello("b", ("V1", "V2")), 0.0)
    assert info.value.retry is False
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
    record = reg.hello(b"r9", hello("a"), 10.0)
    assert record.shard == 3 and record.status is PeerStatus.ALIVE


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


@pytest.mark.parametrize("protocol", [2, 1000])
def test_a_peer_of_another_protocol_version_is_refused(protocol):
    reg = Registry(liveness_s=5)
    with pytest.raises(Refused, match=f"protocol {protocol}.*speaks protocol 1") as info:
        reg.hello(b"r1", Hello("", 0, PeerId("a"), FEATURES, protocol=protocol), 0.0)
    assert info.value.retry is False
    assert len(reg) == 0 and reg.features is None
