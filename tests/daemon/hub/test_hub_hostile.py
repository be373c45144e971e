"""The hub daemon's message handling under hostile input, in process.

The real hub and real peers run in this process (tests/daemon/hostile.py);
attackers are connections the test controls: a stranger that never
registered, and mallory, registered after the round started (so not a
participant; it says Bye once the attacks are over, so that the rounds
after do not wait for it). Frames recorded from an honest federation with the
same run id are current-run messages of every type and round kind. Whatever
arrives, the hub's frame handler must not raise (any exception fails these
tests), every reply must be one valid frame, and a round running at the same
time, and the rest of the run, must complete with every honest peer.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedd.crypto.secagg.fields import PeerId
from fedd.crypto.secagg.messages.common import RoundAbort
from fedd.daemon.transport import wire
from fedd.daemon.transport.messages.common import Error
from fedd.daemon.transport.messages.membership import Bye, Done, Hello, Welcome
from fedd.daemon.transport.messages.status import StatusReply, StatusRequest
from tests.daemon.hostile import (
    InProcessFederation,
    Mutator,
    Recorded,
    check_whole_run,
    record,
)

RUN = "run-hostile"
FEATURES = ("V1", "V2", "V3")
STRANGER, MALLORY = b"stranger", b"r-mallory"
P1 = InProcessFederation.routing("p1")
STAGES = ["advertise-keys", "share-keys", "masked-input", "unmask"]
KINDS = ["statistics", "training", "evaluation"]
# What the hub may answer an outsider: a refusal, a registration, status, or "we are done".
REPLIES = (Error, Welcome, StatusReply, Done)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> list[Recorded]:
    """A secure run of p1..p3 under RUN (statistics, two training rounds,
    evaluation): every frame, both ways."""
    return record(tmp_path_factory.mktemp("recording"), peers=3, rounds=2, run_id=RUN)


def federation(root: Path, **options: object) -> InProcessFederation:
    return InProcessFederation(root, run_id=RUN, **options)  # type: ignore[arg-type]


def honest(peers: int) -> list[tuple[str, str, int]]:
    """The outcome (`InProcessFederation.outcome`) of a run of one training round
    that all `peers` went through."""
    return [("statistics", "ok", peers), ("training", "ok", peers), ("evaluation", "ok", peers)]


def decode_all(frames: list[bytes]) -> list[object]:
    return [wire.decode(f) for f in frames]


def hello(peer: str, features: tuple[str, ...] = FEATURES) -> bytes:
    return wire.encode(Hello("", 0, PeerId(peer), features))


def at_stage(fed: InProcessFederation, stage: str | None = None, kind: str = "training") -> int:
    """Pump until the first round of `kind` runs (at `stage`, if given); its number."""

    def there() -> bool:
        current = fed.hub.rounds.current
        if current is None or current.start.kind != kind:
            return False
        return stage is None or current.runner.stage == stage

    fed.run_until(there)
    assert fed.hub.rounds.current is not None
    return fed.hub.rounds.current.number


def join_mid_round(fed: InProcessFederation) -> None:
    assert [type(r) for r in decode_all(fed.to_hub(MALLORY, hello("mallory")))] == [Welcome]


def leave(fed: InProcessFederation, *senders: bytes) -> None:
    """Registered outsiders leave (they would be participants of the next rounds,
    which would wait for them); the others are told they are not registered."""
    for sender in senders:
        assert all(
            type(r) is Error for r in decode_all(fed.to_hub(sender, wire.encode(Bye("", 0))))
        )


@pytest.mark.parametrize(
    ("features", "reason"),
    [
        (("bias", "V1"), "'bias' is the model's intercept"),
        (("V1", "V1"), "appears twice"),
        (("V1\x01",), "control character"),
        (("V1", '=HYPERLINK("https://x.example/?"&A2)'), "would run as a formula"),
        (("@SUM(A1)",), "starts with '@'"),
    ],
    ids=["bias", "duplicate", "control-character", "formula", "at-formula"],
)
def test_a_first_hello_whose_features_cannot_name_a_model_is_refused(
    tmp_path: Path, features: tuple[str, ...], reason: str
) -> None:
    with InProcessFederation(tmp_path, peers=2, rounds=1) as fed:
        replies = decode_all(fed.to_hub(b"mallory", hello("m", features)))
        assert [type(r) for r in replies] == [Error]
        assert reason in replies[0].reason and replies[0].retry is False  # type: ignore[attr-defined]
        # Nothing was fixed by the refused peer: honest peers define the run.
        assert fed.hub.registry.features is None and fed.hub.rounds.model is None
        assert fed.outcome() == honest(2)
        assert fed.hub.registry.features == FEATURES


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stage", STAGES)
def test_every_valid_message_from_outsiders_in_any_stage_changes_nothing(
    tmp_path: Path, recorded: list[Recorded], stage: str, kind: str
) -> None:
    """Every message type, both directions, current run, this round, the ones
    before and the next, from a stranger and from a registered non-participant,
    in any stage of a round of any kind: refused or ignored."""
    with federation(tmp_path, peers=3, rounds=1) as fed:
        at_stage(fed, stage, kind)
        join_mid_round(fed)
        for sender in (STRANGER, MALLORY):
            for rec in recorded:
                if rec.type == "bye":
                    continue  # mallory would leave; tested below
                replies = decode_all(fed.to_hub(sender, rec.frame))
                assert len(replies) <= 1 and all(type(r) is Error for r in replies), rec.type
                if sender == STRANGER and rec.type != "hello":
                    assert [r.reason for r in replies] == ["not registered: send hello first"]  # type: ignore[attr-defined]
        assert fed.hub.registry.alive() == ["mallory", "p1", "p2", "p3"]
        leave(fed, MALLORY)
        assert fed.outcome() == honest(3)
        assert fed.hub.registry.alive() == ["p1", "p2", "p3"]
        with open(tmp_path / "hub" / "client_perf.csv", newline="") as f:
            assert [row["peer"] for row in csv.DictReader(f)] == ["p1", "p2", "p3"]


def test_a_participants_messages_for_other_rounds_are_dropped_without_penalty(
    tmp_path: Path, recorded: list[Recorded]
) -> None:
    with federation(tmp_path, peers=3, rounds=1) as fed:
        number = at_stage(fed, "advertise-keys")
        mine = [r for r in recorded if r.direction == "to_hub" and r.routing == P1]
        for other in (number - 1, number + 1):  # the statistics round's, the next training's
            frames = [r for r in mine if wire.decode(r.frame).round == other]
            assert {r.type for r in frames} >= {"key_advert", "encrypted_shares", "masked_input"}
            for rec in frames:
                assert fed.to_hub(P1, rec.frame) == []
        assert fed.outcome() == honest(3)


def test_a_participants_message_for_another_run_excludes_it_and_the_round_goes_on(
    tmp_path: Path, recorded: list[Recorded]
) -> None:
    """Same round number, other run: a protocol violation, like any message the
    session refuses; the sender is out of this round, the others finish it."""
    with InProcessFederation(tmp_path, peers=3, rounds=1) as fed:  # a run id of its own
        number = at_stage(fed, "advertise-keys")
        advert = next(
            r
            for r in recorded
            if r.routing == P1 and r.type == "key_advert" and wire.decode(r.frame).round == number
        )
        replies = decode_all(fed.to_hub(P1, advert.frame))
        assert [type(r) for r in replies] == [Error, RoundAbort]
        assert "of run 'run-hostile'" in replies[0].reason  # type: ignore[attr-defined]
        assert fed.outcome() == [
            ("statistics", "ok", 3),
            ("training", "ok", 2),
            ("evaluation", "ok", 3),
        ]


def test_a_flood_from_one_connection_during_a_round(
    tmp_path: Path, recorded: list[Recorded]
) -> None:
    """Mutated frames of every type, Hello/Bye cycles under new ids and status
    requests, thousands of them from one connection while a round runs."""
    mutator = Mutator([r.frame for r in recorded], seed=7)
    flood = b"flood"
    replies: list[bytes] = []
    with federation(tmp_path, peers=3, rounds=1) as fed:
        at_stage(fed, "advertise-keys")
        for i, frame in enumerate(mutator.frames(3000)):
            replies += fed.to_hub(flood, frame)
            if i % 3 == 0:
                replies += fed.to_hub(flood, hello(f"f{i}"))
                replies += fed.to_hub(flood, wire.encode(Bye("", 0)))
            if i % 10 == 0:
                request = StatusRequest("", 0, "peers")
                assert type(wire.decode(fed.to_hub(flood, wire.encode(request))[0])) is StatusReply
            if i % 50 == 0:
                fed.step()  # the round goes on meanwhile
        # One connection, one id: however many it tried, it holds at most one record.
        assert len(fed.hub.registry) <= 4
        assert fed.outcome() == honest(3)
    assert all(type(wire.decode(r)) in REPLIES for r in replies)


def test_a_participant_sending_garbage_is_answered_and_the_round_finishes(
    tmp_path: Path, recorded: list[Recorded]
) -> None:
    """p1's frames are mutated on their way (a third of them, seeded): whatever p1
    sends, the hub answers it and the run goes through all its rounds, each ok or
    aborted with a reason."""
    mutator = Mutator([r.frame for r in recorded], seed=3)

    def damage_p1(direction: str, routing: bytes, frame: bytes) -> list[bytes]:
        if direction == "to_hub" and routing == P1 and mutator.rng.random() < 0.33:
            return [mutator.mutate(frame)]
        return [frame]

    options = {"stage_timeout": 0.3, "train_timeout": 1.0}
    with federation(tmp_path, peers=3, rounds=2, hook=damage_p1, hub_options=options) as fed:
        rows = fed.run_rounds()
    check_whole_run(rows, rounds=2)


FRAMES = st.sampled_from(["recorded", "mutated", "bytes"])


@settings(max_examples=15, deadline=None)
@given(
    mode=st.sampled_from(["off", "full", "plus"]),
    kind=st.sampled_from(KINDS),
    attacks=st.lists(
        st.tuples(
            st.sampled_from([STRANGER, MALLORY]), FRAMES, st.integers(0, 2**32), st.integers(0, 30)
        ),
        max_size=30,
    ),
    data=st.data(),
)
def test_outsiders_frames_at_any_moment_leave_the_round_to_its_peers(
    recorded: list[Recorded],
    mode: str,
    kind: str,
    attacks: list[tuple[bytes, str, int, int]],
    data: st.DataObject,
) -> None:
    """Each attack comes at one step of a round of `kind` that mallory joined
    mid-way, or, if that round is over by then, once the run is done."""
    corpus = [r.frame for r in recorded]

    def attack(fed: InProcessFederation, step: int) -> None:
        for sender, source, seed, when in attacks:
            if when != step:
                continue
            if source == "recorded":
                frame = corpus[seed % len(corpus)]
            elif source == "mutated":
                frame = Mutator(corpus, seed=seed).mutate(corpus[seed % len(corpus)])
            else:
                frame = data.draw(st.binary(max_size=512), label="bytes")
            for reply in fed.to_hub(sender, frame):
                assert type(wire.decode(reply)) in REPLIES

    with (
        tempfile.TemporaryDirectory() as root,
        federation(Path(root), peers=3, rounds=1, secagg=mode) as fed,
    ):
        attacked = at_stage(fed, kind=kind)
        join_mid_round(fed)
        step = 0
        while step < 31 and fed.hub.store.committed_round < attacked:
            attack(fed, step)
            fed.step()
            step += 1
        leave(fed, STRANGER, MALLORY)
        assert fed.outcome() == honest(3)
        for late in range(step, 31):
            attack(fed, late)
