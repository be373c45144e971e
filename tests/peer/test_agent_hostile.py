"""The peer daemon's message handling under hostile input, in process.

A peer only talks to its hub, so frames are fed to the real PeerAgent's
handler as if they came from the hub (tests/daemon/hostile.py runs a real
hub next to it). The handler must never raise, the agent must keep running
unless the hub told it to stop (Done, or an Error that retrying cannot fix),
and a round running at the same time must complete.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import msgpack

from daemon import wire
from daemon.messages import Error, RoundEnd, RoundStart
from peer.state import PeerState
from tests.daemon.hostile import InProcessFederation

P1 = InProcessFederation.routing("p1")


def test_a_round_that_ends_while_the_peer_still_trains_is_logged(tmp_path: Path) -> None:
    """A hub stopped with SIGTERM mid-training ends the round at once: the peer
    must log it (no loss yet) and carry on, not crash on the missing loss."""
    cut: list[int] = []

    def end_at_once(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        if direction == "to_peer" and routing == P1 and type(msg) is RoundStart and not cut:
            cut.append(msg.round)
            ended = RoundEnd(msg.run, msg.round, "aborted", "hub shutting down")
            return [frame, wire.encode(ended)]
        return [frame]

    with InProcessFederation(
        tmp_path, peers=3, rounds=2, hook=end_at_once, hub_options={"train_timeout": 1.0}
    ) as fed:
        log = fed.run_rounds()
        agent = fed.agents[P1]
    assert cut == [1]
    first = agent.state.rounds()[0]
    assert (first.round, first.status, first.reason) == (1, "aborted", "hub shutting down")
    assert math.isnan(first.train_loss)
    assert math.isnan(PeerState.open(tmp_path / "p1").rounds()[0].train_loss)  # an empty cell
    # Round 1 went on without p1 (timed out in training); round 2 had everyone.
    assert [(r.status, r.survivors) for r in log] == [("ok", 2), ("ok", 3)]
    assert [r.status for r in agent.state.rounds()] == ["aborted", "ok"]
    assert P1 not in fed.exited or fed.exited[P1] == 0


def test_reasons_that_are_not_one_line_of_text_are_dropped_at_the_wire(tmp_path: Path) -> None:
    """They would end up in rounds.csv, the log and on the terminal."""
    with InProcessFederation(tmp_path, peers=2, rounds=1) as fed:
        fed.run_until(lambda: fed.agents[P1].round is not None)
        run, number = fed.hub.run_id, fed.agents[P1].round.number  # type: ignore[union-attr]
        for reason in ("two\nlines", "tab\there", "nul\x00", "\x1b[31mred", "c1\x85"):
            for msg in (RoundEnd(run, number, "aborted", "x"), Error(run, number, "x", False)):
                doc = msgpack.unpackb(wire.encode(msg))
                doc["body"]["reason"] = reason
                assert fed.to_peer(P1, msgpack.packb(doc)) is None
        assert fed.agents[P1].state.rounds() == [] and P1 not in fed.exited
        assert [(r.status, r.survivors) for r in fed.run_rounds()] == [("ok", 2)]
        assert [r.status for r in fed.agents[P1].state.rounds()] == ["ok"]


def test_a_burst_of_round_starts_queues_one_training_not_one_each(tmp_path: Path) -> None:
    """Each queued training held its RoundStart (up to 4,097 floats): a burst grew
    the peer's memory without bound and kept it training long after the burst."""
    release = threading.Event()
    starts: list[bytes] = []

    def keep_round_starts(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        if direction == "to_peer" and routing == P1 and type(wire.decode(frame)) is RoundStart:
            starts.append(frame)
        return [frame]

    with InProcessFederation(tmp_path, peers=2, rounds=1, hook=keep_round_starts) as fed:
        agent = fed.agents[P1]
        trained: list[int] = []
        real_train = agent._train

        def slow_train(msg: RoundStart) -> object:
            release.wait(10)
            trained.append(msg.round)
            return real_train(msg)

        agent._train = slow_train  # type: ignore[method-assign]
        fed.run_until(lambda: bool(starts))
        for _ in range(300):
            assert fed.to_peer(P1, starts[0]) is None
        release.set()
        assert [(r.status, r.survivors) for r in fed.run_rounds()] == [("ok", 2)]
    # The one that was running when the burst came, and the newest one.
    assert trained == [1, 1]


def test_a_round_start_before_any_welcome_is_answered_under_the_rounds_run(tmp_path: Path) -> None:
    """The peer learns the run id from Welcome; a RoundStart that comes first (the
    Welcome lost, or never sent) carries it too, and the round's messages use it."""
    dropped: list[bytes] = []

    def lose_first_welcome(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        first = direction == "to_peer" and routing == P1 and not dropped
        if first and msgpack.unpackb(frame)["type"] == "welcome":
            dropped.append(frame)
            return []
        return [frame]

    for mode in ("off", "full"):
        with InProcessFederation(
            tmp_path / mode, peers=2, rounds=1, secagg=mode, hook=lose_first_welcome
        ) as fed:
            assert [(r.status, r.survivors) for r in fed.run_rounds()] == [("ok", 2)]
        dropped.clear()
