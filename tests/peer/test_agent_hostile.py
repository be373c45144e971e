"""The peer daemon's message handling under hostile input, in process.

A peer only talks to its hub, so hostile frames are fed to the real
PeerAgent's handler as if they came from the hub, mixed into the stream of a
real hub running next to it (tests/daemon/hostile.py). The handler must
never raise (any exception fails these tests), the agent must keep running
unless a frame told it to stop (Done, or an Error that retrying cannot fix),
and the rounds must go on: with every peer when the hostile frames are
garbage or belong to other rounds, without the damaged one when they are
current-round messages its session must refuse.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import threading
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.crypto.secagg.messages.advertise_keys import Roster
from fedd.crypto.secagg.messages.share_keys import ForwardedShares
from fedd.crypto.secagg.messages.unmask import UnmaskRequest
from fedd.crypto.secagg.peer import PeerStage
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Done
from fedd.daemon.transport.messages.rounds import Decline, RoundEnd, RoundStart
from fedd.learner.holdout import Split
from fedd.peer.state import PeerRoundRow, PeerState
from tests.daemon.hostile import (
    InProcessFederation,
    Mutator,
    Recorded,
    check_whole_run,
    record,
    squeeze_evaluations,
)

RUN = "run-hostile"
P1 = InProcessFederation.routing("p1")
# Messages a hub legitimately sends about other rounds than the current one.
STALE_TYPES = {
    "roster",
    "forwarded_shares",
    "unmask_request",
    "round_abort",
    "round_end",
    "heartbeat",
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[Recorded]:
    """A secure run of p1..p3 under RUN (statistics, two training rounds,
    evaluation): every frame, both ways."""
    return record(tmp_path_factory.mktemp("recording"), peers=3, rounds=2, run_id=RUN)


def hub_frames(recorded: list[Recorded]) -> list[bytes]:
    return [r.frame for r in recorded if r.direction == "to_peer"]


def is_garbage(frame: bytes) -> bool:
    try:
        wire.decode(frame)
    except wire.MalformedMessage:
        return True
    return False


def logged(rows: list[PeerRoundRow]) -> list[tuple[str, str]]:
    """A peer's rounds.csv as (kind, status), as `squeeze_evaluations` gives them."""
    return squeeze_evaluations((r.kind, r.status) for r in rows)


def stops(frame: bytes) -> bool:
    """Whether a frame tells a peer to stop: Done, or an Error not worth retrying."""
    with contextlib.suppress(wire.MalformedMessage):
        msg = wire.decode(frame)
        return type(msg) is Done or (type(msg) is Error and not msg.retry)
    return False


def test_a_round_that_ends_while_the_peer_still_trains_is_logged(tmp_path: Path) -> None:
    """A hub stopped with SIGTERM mid-training ends the round at once: the peer
    must log it (no loss yet) and carry on, not crash on the missing loss."""
    cut: list[int] = []

    def end_at_once(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        first = type(msg) is RoundStart and msg.kind == "training" and not cut
        if direction == "to_peer" and routing == P1 and first:
            cut.append(msg.round)
            ended = RoundEnd(msg.run, msg.round, "aborted", "hub shutting down")
            return [frame, wire.encode(ended)]
        return [frame]

    with InProcessFederation(
        tmp_path, peers=3, rounds=2, hook=end_at_once, hub_options={"train_timeout": 1.0}
    ) as fed:
        outcome = fed.outcome()
        agent = fed.agents[P1]
    assert cut == [2]  # after the statistics round
    cut_short = agent.state.rounds()[1]
    assert (cut_short.round, cut_short.kind, cut_short.status, cut_short.reason) == (
        2,
        "training",
        "aborted",
        "hub shutting down",
    )
    assert math.isnan(cut_short.train_loss)
    assert math.isnan(PeerState.open(tmp_path / "p1").rounds()[1].train_loss)  # an empty cell
    # Round 2 went on without p1 (timed out in training); round 3 had everyone.
    assert outcome == [
        ("statistics", "ok", 3),
        ("training", "ok", 2),
        ("training", "ok", 3),
        ("evaluation", "ok", 3),
    ]
    assert logged(agent.state.rounds()) == [
        ("statistics", "ok"),
        ("training", "aborted"),
        ("training", "ok"),
        ("evaluation", "ok"),
    ]
    assert P1 not in fed.exited or fed.exited[P1] == 0


def test_reasons_that_are_not_one_line_of_text_are_dropped_at_the_wire(tmp_path: Path) -> None:
    """They would end up in rounds.csv, the log and on the terminal."""
    with InProcessFederation(tmp_path, peers=2, rounds=1) as fed:
        fed.run_until(lambda: fed.agents[P1].rounds.current is not None)
        run, number = fed.hub.run_id, fed.agents[P1].rounds.current.number  # type: ignore[union-attr]
        for reason in ("two\nlines", "tab\there", "nul\x00", "\x1b[31mred", "c1\x85"):
            for msg in (RoundEnd(run, number, "aborted", "x"), Error(run, number, "x", False)):
                doc = msgpack.unpackb(wire.encode(msg))
                doc["body"]["reason"] = reason
                assert fed.to_peer(P1, msgpack.packb(doc)) is None
        assert fed.agents[P1].state.rounds() == [] and P1 not in fed.exited
        assert fed.outcome() == [
            ("statistics", "ok", 2),
            ("training", "ok", 2),
            ("evaluation", "ok", 2),
        ]
        assert logged(fed.agents[P1].state.rounds()) == [
            ("statistics", "ok"),
            ("training", "ok"),
            ("evaluation", "ok"),
        ]


def test_a_burst_of_round_starts_queues_one_training_not_one_each(tmp_path: Path) -> None:
    """Each queued training held its RoundStart (up to 4,097 floats): a burst grew
    the peer's memory without bound and kept it training long after the burst."""
    release = threading.Event()
    starts: list[bytes] = []

    def keep_round_starts(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        training = type(msg) is RoundStart and msg.kind == "training"
        if direction == "to_peer" and routing == P1 and training:
            starts.append(frame)
        return [frame]

    with InProcessFederation(tmp_path, peers=2, rounds=1, hook=keep_round_starts) as fed:
        agent = fed.agents[P1]
        trained: list[int] = []
        real_run = agent.rounds._work._run

        def slow_run(
            msg: RoundStart, data: Split, eligible: tuple[bool, ...], control: tuple[float, ...]
        ) -> object:
            if msg.kind == "training":
                release.wait(10)
                trained.append(msg.round)
            return real_run(msg, data, eligible, control)

        agent.rounds._work._run = slow_run  # type: ignore[method-assign]
        fed.run_until(lambda: bool(starts))
        for _ in range(300):
            assert fed.to_peer(P1, starts[0]) is None
        release.set()
        assert fed.outcome() == [
            ("statistics", "ok", 2),
            ("training", "ok", 2),
            ("evaluation", "ok", 2),
        ]
    # The one that was running when the burst came, and the newest one.
    assert trained == [2, 2]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    rate=st.sampled_from([0.2, 1.0, 3.0]),
    mode=st.sampled_from(["off", "full", "plus"]),
)
def test_garbage_and_other_rounds_messages_change_nothing(
    recorded: list[Recorded], seed: int, rate: float, mode: str
) -> None:
    """Undecodable frames, and protocol messages of other rounds than the one p1 is
    in (earlier ones, later ones), mixed into everything the hub sends p1 (`rate`
    extra frames per real one, on average), in every round of the run."""
    mutator = Mutator(hub_frames(recorded), seed=seed)
    stale = [(wire.decode(r.frame).round, r.frame) for r in recorded if r.type in STALE_TYPES]
    injected: list[bytes] = []

    def noise(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        if direction != "to_peer" or routing != P1:
            return [frame]
        # Messages of the round p1 is in, or of the one `frame` is about (a
        # RoundStart would make it p1's), would be current, not stale.
        current = fed.agents[P1].rounds.current
        busy = {wire.decode(frame).round, current.number if current else None}
        others = [f for number, f in stale if number not in busy]
        out = [frame]
        while mutator.rng.random() < rate / (1 + rate):
            if mutator.rng.random() < 0.5:
                extra = mutator.rng.choice(others)
            else:
                extra = mutator.mutate(mutator.rng.choice(mutator.corpus))
                if not is_garbage(extra):
                    continue
            injected.append(extra)
            out.insert(mutator.rng.randrange(len(out) + 1), extra)
        return out

    with tempfile.TemporaryDirectory() as root:
        fed = InProcessFederation(
            Path(root), peers=3, rounds=1, secagg=mode, run_id=RUN, hook=noise
        )
        with fed:
            assert fed.outcome() == [
                ("statistics", "ok", 3),
                ("training", "ok", 3),
                ("evaluation", "ok", 3),
            ]
            assert logged(fed.agents[P1].state.rounds()) == [
                ("statistics", "ok"),
                ("training", "ok"),
                ("evaluation", "ok"),
            ]


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_any_mutated_frame_from_the_hub_is_survived(recorded: list[Recorded], seed: int) -> None:
    """Mutations of everything a hub sends, current run, replacing or joining p1's
    frames: p1 may leave a round or, told so, stop, but its handler never raises."""
    mutator = Mutator(hub_frames(recorded), seed=seed)
    told_to_stop: list[bytes] = []

    def damage(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        if direction != "to_peer" or routing != P1 or mutator.rng.random() < 0.5:
            return [frame]
        bad = mutator.mutate(frame)
        if stops(bad):
            told_to_stop.append(bad)
        return [bad] if mutator.rng.random() < 0.5 else [frame, bad]

    # Short time-outs: a peer whose RoundStart or roster was destroyed is waited for.
    options = {"stage_timeout": 0.2, "train_timeout": 0.4}
    with tempfile.TemporaryDirectory() as root:
        fed = InProcessFederation(
            Path(root), peers=3, rounds=2, run_id=RUN, hook=damage, hub_options=options
        )
        with fed:
            check_whole_run(fed.run_rounds(), rounds=2)
            if fed.exited.get(P1) == 1:  # 0 is the hub's own Done at the end
                assert told_to_stop


OUT_OF_STAGE = [
    (PeerStage.AWAIT_ROSTER, ForwardedShares),
    (PeerStage.AWAIT_SHARES, UnmaskRequest),
    (PeerStage.AWAIT_UNMASK, Roster),
]


@pytest.mark.parametrize(("stage", "kind"), OUT_OF_STAGE, ids=["roster", "shares", "unmask"])
def test_a_current_round_message_out_of_stage_takes_the_peer_out_of_that_round_only(
    tmp_path: Path, recorded: list[Recorded], stage: PeerStage, kind: type
) -> None:
    # The first training round, in the recording as in this run.
    wrong = next(
        r.frame
        for r in recorded
        if r.routing == P1 and r.type == kind.TYPE and wire.decode(r.frame).round == 2
    )
    declined: list[int] = []

    def watch(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        msg = wire.decode(frame)
        if direction == "to_hub" and routing == P1 and type(msg) is Decline:
            declined.append(msg.round)
        return [frame]

    options = {"stage_timeout": 0.5}
    with InProcessFederation(
        tmp_path, peers=3, rounds=2, run_id=RUN, hub_options=options, hook=watch
    ) as fed:
        agent = fed.agents[P1]

        def in_stage() -> bool:
            current = agent.rounds.current
            if current is None or current.start.kind != "training" or current.session is None:
                return False
            return current.session.stage is stage

        fed.run_until(in_stage)
        assert agent.rounds.current.number == 2  # type: ignore[union-attr]
        session = agent.rounds.current.session  # type: ignore[union-attr]
        assert fed.to_peer(P1, wrong) is None
        assert session.stage is PeerStage.ABORTED  # type: ignore[union-attr]
        current = agent.rounds.current
        assert current is not None and current.status == "failed"
        assert current.reason.startswith(f"left the protocol: {kind.__name__} not allowed")
        outcome = fed.outcome()
    assert declined == [2]  # the hub need not wait for it
    # p1 is out of round 2 (its input is in the sum if it was already sent), not of round 3.
    survivors = 3 if stage is PeerStage.AWAIT_UNMASK else 2
    assert outcome == [
        ("statistics", "ok", 3),
        ("training", "ok", survivors),
        ("training", "ok", 3),
        ("evaluation", "ok", 3),
    ]
    rows = agent.state.rounds()
    assert logged([rows[0], *rows[2:]]) == [
        ("statistics", "ok"),
        ("training", "ok"),
        ("evaluation", "ok"),
    ]


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
            assert fed.outcome() == [
                ("statistics", "ok", 2),
                ("training", "ok", 2),
                ("evaluation", "ok", 2),
            ]
        dropped.clear()
